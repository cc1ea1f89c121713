--- Control groups v1, v2 and hybrid, after containerd's cgroups package: `new` creates a
-- cgroup with the limits of an OCI spec's `linux.resources` in every mounted hierarchy,
-- `load` finds one again, and the cgroup object adds processes, lists them, freezes, thaws,
-- measures and deletes.  The C core does the work (csrc/cgroups/); the layout comes from
-- /proc/self/mountinfo on each call, or once, from `hierarchy` (opts.hierarchy).
--
-- A path is `linux.cgroupsPath`: "/default/ID" is below each hierarchy's root, "ctrlua/ID"
-- below the caller's own cgroup (as runc does); ".." is refused; "" means "no cgroup".
--
-- Every function takes an optional last `opts` table pointing at a fake tree (specs):
-- `mountinfo` (a mountinfo file), `proc_cgroup` (a /proc/self/cgroup file), `root` (a prefix
-- put before every mount point); or `hierarchy`, what `hierarchy` returned.
-- @module ctr.cgroups
local core = require("ctr.core")
local sys = require("ctr.sys")

local M = {}

local function check_path(path, level)
  if type(path) ~= "string" then error("path: expected string, got " .. type(path), level + 1) end
  if path == "" then error("path: empty (no cgroup): the caller skips cgroups then", level + 1) end
end

local function check_opts(opts, level)
  if opts ~= nil and type(opts) ~= "table" then
    error("opts: expected table, got " .. type(opts), level + 1)
  end
end

-- linux.resources fields that are arrays even when empty
local array_fields = { devices = true, hugepageLimits = true }
local blkio_arrays = { weightDevice = true, throttleReadBpsDevice = true,
  throttleWriteBpsDevice = true, throttleReadIOPSDevice = true, throttleWriteIOPSDevice = true }

local function encode_resources(resources, level)
  if resources == nil or type(resources) == "string" then return resources end
  if type(resources) ~= "table" then
    error("resources: expected table or JSON string, got " .. type(resources), level + 1)
  end
  local copy = {}
  for k, v in pairs(resources) do
    if array_fields[k] and type(v) == "table" then v = core.json_array(v) end
    if k == "blockIO" and type(v) == "table" then
      local b = {}
      for bk, bv in pairs(v) do
        b[bk] = (blkio_arrays[bk] and type(bv) == "table") and core.json_array(bv) or bv
      end
      v = b
    end
    copy[k] = v
  end
  return core.json_encode(copy)
end

--- The mounted hierarchies.
-- @tparam[opt] table opts fake tree (see the module)
-- @return `{mode="v1"|"v2"|"hybrid"|"none", v1={{mountpoint=, own=, name=, controllers={...}}...},
--   unified={mountpoint=, own=, controllers={...}} or nil, controllers={memory=MOUNTPOINT,...}}`,
--   or nil, err
function M.layout(opts)
  check_opts(opts, 2)
  return sys.cgroup_layout(opts)
end

--- The hierarchies mounted here, read once (as containerd's cgroup1.WithHiearchy gives a
-- cgroup its subsystems): passed as `opts.hierarchy` to the functions of this module (and as
-- core.create's `cgroup_hierarchy`), none of them reads the mount table, /proc/self/cgroup and
-- the v2 root's controllers again.  A task that makes, watches and removes a cgroup reads
-- them once; what it holds is what the host had then.
-- @tparam[opt] table opts fake tree (see the module)
-- @return the hierarchy (an opaque value), or nil, err
function M.hierarchy(opts)
  check_opts(opts, 2)
  return sys.cgroup_hierarchy(opts)
end

--- Begin now the kernel's grace period that the next move of a process into a v1 cgroup waits
-- for, so that it runs while the caller does other work (a short-lived child moves itself
-- into the cgroup it is already in; csrc/cgroups/warm.c says why).  Returns at once.  `run`
-- calls it at its start when its init will have its pid written into a new cgroup (an init in
-- a new user namespace; any other moves itself, with no such wait), and reaps the child with
-- warm_done once its init is in its cgroup.
-- @return the child's pid (0 on pure cgroup v2: nothing to do), or nil, err
function M.warm_attach()
  return sys.cgroup_warm_attach()
end

--- Reap the child of warm_attach (a pid of 0 is nothing to reap).
-- @return true, or nil, err
function M.warm_done(pid)
  return sys.cgroup_warm_done(pid)
end

--- The cgroup mode of this machine (containerd's cgroups.Mode): "v1", "v2", "hybrid" or "none".
-- @tparam[opt] table opts
-- @return string, or nil, err
function M.mode(opts)
  local l, err = M.layout(opts)
  if not l then return nil, err end
  return l.mode
end

local Cgroup = {}
Cgroup.__index = Cgroup

local function wrap(path, opts)
  return setmetatable({ path = path, opts = opts }, Cgroup)
end

--- Create the cgroup in every hierarchy and apply the resources (containerd's cgroups.New).
-- On failure nothing this call created is left behind.
-- @tparam string path linux.cgroupsPath
-- @tparam[opt] table|string resources linux.resources (a table, or its JSON text)
-- @tparam[opt] table opts
-- @return a cgroup object, or nil, err
function M.new(path, resources, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  local json = encode_resources(resources, 2)
  local ok, err = sys.cgroup_create(path, json, opts)
  if not ok then return nil, err end
  return wrap(path, opts)
end

--- Apply resources to an existing cgroup (runc's update, containerd's cgroup.Update): the
-- values that are set are written as `new` writes them (0 is "unchanged"); nothing is created.
-- @tparam string path linux.cgroupsPath
-- @tparam table|string resources linux.resources (a table, or its JSON text)
-- @tparam[opt] table opts
-- @return true, or nil, err (ENOENT when the cgroup is not there)
function M.update(path, resources, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  if resources == nil then error("resources: expected table or JSON string, got nil", 2) end
  return sys.cgroup_update(path, encode_resources(resources, 2), opts)
end

--- An existing cgroup (containerd's cgroups.Load); fails when it is not there.
-- @tparam string path
-- @tparam[opt] table opts
-- @return a cgroup object, or nil, err
function M.load(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  local dirs, err = sys.cgroup_dirs(path, opts)
  if not dirs then return nil, err end
  local _, perr = M.processes(path, opts)
  if perr then return nil, perr end
  return wrap(path, opts)
end

--- The directory of the cgroup in each hierarchy: `{memory=DIR, cpu=DIR, ["name=systemd"]=DIR,
-- unified=DIR, ...}`.
-- @tparam string path
-- @tparam[opt] table opts
-- @return table, or nil, err
function M.dirs(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_dirs(path, opts)
end

--- Move a process into the cgroup in every hierarchy.
-- @tparam string path
-- @tparam number pid
-- @tparam[opt] table opts
-- @return true, or nil, err
function M.add(path, pid, opts)
  check_path(path, 2)
  if type(pid) ~= "number" or pid <= 0 or pid % 1 ~= 0 then error("pid: expected a pid", 2) end
  check_opts(opts, 2)
  return sys.cgroup_add_pid(path, pid, opts)
end

--- The pids in the cgroup (its cgroup.procs).
-- @tparam string path
-- @tparam[opt] table opts
-- @return array of numbers, or nil, err
function M.processes(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_pids(path, opts)
end

--- Freeze every process of the cgroup and wait until the kernel says they are.
-- @tparam string path
-- @tparam[opt] table opts
-- @return true, or nil, err
function M.freeze(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_freeze(path, true, opts)
end

--- Thaw a frozen cgroup.
-- @tparam string path
-- @tparam[opt] table opts
-- @return true, or nil, err
function M.thaw(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_freeze(path, false, opts)
end

--- Statistics: the fields the kernel has, among memory_usage, memory_limit, memory_max_usage,
-- memory_cache, memory_rss, memory_swap_usage, memory_failcnt, oom, oom_kill, cpu_usage,
-- cpu_user, cpu_system (nanoseconds), cpu_periods, cpu_throttled_periods,
-- cpu_throttled_time (ns), pids_current, pids_limit.  Unlimited is math.huge.
-- @tparam string path
-- @tparam[opt] table opts
-- @return table, or nil, err
function M.stat(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_stats(path, opts)
end

--- Remove the cgroup from every hierarchy (retrying while a dying process leaves it); a
-- cgroup that is not there is success.
-- @tparam string path
-- @tparam[opt] table opts
-- @return true, or nil, err
function M.delete(path, opts)
  check_path(path, 2)
  check_opts(opts, 2)
  return sys.cgroup_delete(path, opts)
end

--- cgroup object methods: `cg:add(pid)`, `cg:processes()`, `cg:freeze()`, `cg:thaw()`,
-- `cg:stat()`, `cg:dirs()`, `cg:update(resources)`, `cg:delete()`; `cg.path` is its path.
-- @section cgroup
function Cgroup:add(pid) return M.add(self.path, pid, self.opts) end
function Cgroup:processes() return M.processes(self.path, self.opts) end
function Cgroup:freeze() return M.freeze(self.path, self.opts) end
function Cgroup:thaw() return M.thaw(self.path, self.opts) end
function Cgroup:stat() return M.stat(self.path, self.opts) end
function Cgroup:dirs() return M.dirs(self.path, self.opts) end
function Cgroup:update(resources) return M.update(self.path, resources, self.opts) end
function Cgroup:delete() return M.delete(self.path, self.opts) end

--- Did the OOM killer kill a process of the cgroup at `path` (its memory oom_kill count is
-- above zero; the cgroup is the container's own, made for it)?  false when unknown.
-- @tparam string path linux.cgroupsPath
-- @tparam[opt] table opts fake cgroup tree
function M.oom_killed(path, opts)
  if type(path) ~= "string" or path == "" then return false end
  -- the one file that counts it, not every statistic (this is asked after every exit)
  local dirs = M.dirs(path, opts)
  if not dirs then return false end
  local text
  if dirs.memory then text = core.read_file(dirs.memory .. "/memory.oom_control")
  elseif dirs.unified then text = core.read_file(dirs.unified .. "/memory.events") end
  local n = text and tonumber(("\n" .. text):match("\noom_kill (%d+)"))
  return (n or 0) > 0
end

return M
