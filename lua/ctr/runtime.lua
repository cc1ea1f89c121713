--- External runtimes: run a container's bundle through a runc-compatible binary (runc, crun)
-- instead of the built-in runtime, as containerd's runc shim does with `BinaryName` and `Root`.
--
-- The bundle is the one the built-in runtime gets (STATE/NS/ID: config.json and the mounted
-- rootfs/); only the last step differs: `BINARY --root ROOT run --bundle DIR ID` runs in the
-- foreground with the task's stdio and gives the container's exit code (runc and crun answer
-- 128+N when signal N ended it).  `runc create` + `runc start` would leave the init a child of
-- nobody we can wait for (it is reparented away from us), so its exit code would be lost.
--
-- ctrlua: differences from containerd.
-- - `--runc-binary` is accepted with any `--runtime` name (ctr refuses it for other names); a
--   runtime name other than io.containerd.runc.v2 that is an absolute path or found in PATH is
--   itself taken as the runc-compatible binary.
-- - `--runtime-config-path` is refused: containerd hands it to a non-runc shim as its options
--   file (ConfigPath); a runc-compatible binary reads no such file.
-- - crun 1.8 refuses hybrid cgroup hosts whose cgroup2 mount holds a controller ("cgroups in
--   hybrid mode not supported, drop all controllers from cgroupv2"): for a binary named crun*
--   on such a host the run happens in a private mount namespace (core.spawn's hide_mounts)
--   where the cgroup2 mount is unmounted, so crun sees plain cgroup v1.
-- - While the external runtime runs, the task record has no pid (the init is runc's child).
-- @module ctr.runtime
local core = require("ctr.core")
local cgroups = require("ctr.cgroups")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- The built-in runtime's name (also the name under which --runc-binary applies in ctr).
M.RUNC_V2 = "io.containerd.runc.v2"

local function executable(path)
  local st = core.stat(path, true)
  if not st or st.type ~= "file" then return false end
  local m = st.mode % 512
  return math.floor(m / 64) % 2 + math.floor(m / 8) % 2 + m % 2 > 0
end

--- exec.LookPath: an absolute or relative path is checked as is, a bare name is looked up
-- in $PATH.  Returns the path, or nil, err with Go's words
-- (`exec: "NAME": executable file not found in $PATH`).
function M.look_path(name)
  if type(name) ~= "string" then error("name: expected string, got " .. type(name), 2) end
  if name:find("/", 1, true) then
    if executable(name) then return name end
    return nil, errors.not_found("exec: %q: not an executable file", name)
  end
  for dir in ((core.getenv("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") .. ":"):gmatch("([^:]*):") do
    if dir == "" then dir = "." end
    local p = dir .. "/" .. name
    if executable(p) then return p end
  end
  return nil, errors.not_found("exec: %q: executable file not found in $PATH", name)
end

--- The runtime options of `ctr run`'s flags: nil for the built-in runtime, or
-- `{binary=PATH, root=DIR|nil, systemd_cgroup=bool}` for an external runc-compatible one.
-- @param f the parsed flags (runtime, runc-binary, runc-root, runc-systemd-cgroup,
--   runtime-config-path)
-- @param[opt] set the flags given on the command line (name -> true)
-- @return options or nil; or nil, err for a flag that cannot apply here
function M.options(f, set)
  if type(f) ~= "table" then error("f: expected table, got " .. type(f), 2) end
  set = set or {}
  local name = f.runtime or M.RUNC_V2
  local binary = f["runc-binary"] or ""
  local root = f["runc-root"] or ""
  local systemd = f["runc-systemd-cgroup"] == true
  if f["runtime-config-path"] and f["runtime-config-path"] ~= "" then
    if name == M.RUNC_V2 then
      return nil, errors.invalid("--runtime-config-path: runtime %s takes no config file (containerd passes it only to other runtimes' shims; use --runc-binary and --runc-root)", name)
    end
    return nil, errors.invalid("--runtime-config-path: runtime %q runs as a runc-compatible binary, which reads no runtime config file (containerd hands it to a shim as its ConfigPath)", name)
  end
  if binary == "" and name ~= M.RUNC_V2 then
    local p = M.look_path(name)
    if not p then
      return nil, errors.not_found("runtime %q: not found: only the built-in runtime (%s) is built in; give --runc-binary PATH of a runc-compatible binary (runc, crun)", name, M.RUNC_V2)
    end
    binary = p
  end
  if binary == "" then
    if root ~= "" then
      return nil, errors.invalid("--runc-root needs --runc-binary: the built-in runtime keeps its state under --state")
    end
    if systemd then
      return nil, errors.invalid("--runc-systemd-cgroup needs --runc-binary: the built-in runtime manages cgroupfs itself")
    end
    return nil
  end
  local path, err = M.look_path(binary)
  if not path then return nil, errors.wrap(err, "--runc-binary") end
  if systemd and not core.stat("/run/systemd/system") then
    return nil, errors.invalid("--runc-systemd-cgroup: systemd is not running on this machine (no /run/systemd/system)")
  end
  return { binary = path, root = root ~= "" and root or nil, systemd_cgroup = systemd or nil }
end

--- Check that RDT can apply: resctrl mounted at /sys/fs/resctrl and the class (a directory
-- there, made by the administrator) present.  Returns true, or nil, err saying what is missing.
function M.check_rdt(class, opts)
  if type(class) ~= "string" then error("class: expected string, got " .. type(class), 2) end
  local mountinfo = (opts and opts.mountinfo) or "/proc/self/mountinfo"
  local mi = core.read_file(mountinfo, 4 * 1024 * 1024) or ""
  local mp
  for line in mi:gmatch("[^\n]+") do
    local point, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .- %- (%S+)")
    if fstype == "resctrl" then mp = point break end
  end
  if not mp then
    return nil, errors.new("--rdt-class: resctrl is not mounted (RDT needs a CPU with Intel RDT or AMD QoS and `mount -t resctrl resctrl /sys/fs/resctrl`)", 19, "ENODEV")
  end
  if class ~= "" and not core.stat(mp .. "/" .. class) then
    return nil, errors.not_found("--rdt-class: class %q: no directory %s/%s", class, mp, class)
  end
  return true
end

-- Does a binary named crun* need the cgroup2 mount hidden (hybrid host, cgroup2 with
-- controllers)?  Returns the cgroup2 mount point to hide, or nil.
local function crun_hide_unified(binary)
  local base = binary:match("([^/]+)$") or binary
  if not base:match("^crun") then return nil end
  local ok, layout = pcall(cgroups.layout)
  if not ok or type(layout) ~= "table" or layout.mode ~= "hybrid" or not layout.unified then return nil end
  local ctrls = layout.unified.controllers
  if type(ctrls) ~= "table" or next(ctrls) == nil then return nil end
  return layout.unified.mountpoint
end

-- Can the run take this IO table?
local function io_supported(io)
  return io == nil or io.kind == "stdio" or io.kind == "null" or (io.kind == "file" and io.path ~= nil)
end

-- The standard streams of the run for an IO table, as core.spawn takes them, and the
-- descriptors opened for them (to close once the run is over); or nil, err.
local function streams(io)
  if io == nil or io.kind == "stdio" then
    -- ours; one we were started without is /dev/null for the runtime
    local function ours(fd, closed) return core.stat("/proc/self/fd/" .. fd) and fd or closed end
    return { stdin = ours(0, nil), stdout = ours(1, "null"), stderr = ours(2, "null") }, {}
  end
  if io.kind == "null" then return { stdout = "null", stderr = "null" }, {} end
  -- appended to, created as a shell's >> creates it (0666 less the umask), stdin /dev/null
  local fd, err = sys.open(io.path, "a", 438)
  if not fd then return nil, err end
  return { stdout = fd, stderr = fd }, { fd }
end

-- STATE is never fsynced (docs/crash-consistency.md): it describes processes, which a power cut
-- takes with it, as ctr.tasks writes the built-in task's
local function write_status(dir, st)
  local ok, err = sys.write_file(dir .. "/status", core.json_encode(st), { mode = 384, sync = false })
  if not ok then return nil, err end
  return true
end

-- An external runtime's task is the built-in one (ctr.tasks.Task, handed in by new_task as
-- `base`) but for what the runtime binary does: this module stays below ctr.tasks.
local ExternalTask = {}
ExternalTask.__index = function(t, k)
  local v = ExternalTask[k]
  if v ~= nil then return v end
  local base = rawget(t, "base")
  return base and base[k]
end
M.ExternalTask = ExternalTask

--- The task of a container whose record names an external runtime (called by
-- ctr.tasks.new_task once the bundle is written).  The process runs in `wait`; `start` only
-- marks the task running.
-- @param container the container
-- @param io the task's IO (ctr.cio: stdio, null, file)
-- @param opts `pid_file`, `no_pivot`
-- @param dir the bundle (the task's state directory)
-- @param spec the spec written to config.json
-- @param base the built-in task class (ctr.tasks.Task), whose methods the task has too
-- @return a task with tasks.Task's methods, or nil, err
function M.new_task(container, io, opts, dir, spec, base)
  local ro = container.record.runtime.options
  if not io_supported(io) then
    return nil, errors.invalid("runtime %s: IO of kind %q is not supported with an external runtime", ro.binary, tostring(io.kind))
  end
  local st = { status = "created", pid = 0, created_at = core.rfc3339(), runtime = ro.binary,
    runtime_root = ro.root or (dir .. "/runtime"),
    cgroup = type(spec.linux) == "table" and type(spec.linux.cgroupsPath) == "string"
      and spec.linux.cgroupsPath ~= "" and spec.linux.cgroupsPath or nil }
  local ok, err = write_status(dir, st)
  if not ok then return nil, err end
  return setmetatable({ client = container.client, container = container, id = container.id,
    pid = 0, dir = dir, io = io, st = st, ropts = ro, opts = opts or {}, base = base }, ExternalTask)
end

--- The command of the run: its argv (`BINARY --root ROOT [--systemd-cgroup] run --bundle DIR
-- [--no-pivot] [--pid-file FILE] ID`).
function ExternalTask:command()
  local ro, st = self.ropts, self.st
  local argv = { ro.binary, "--root", st.runtime_root }
  if ro.systemd_cgroup then argv[#argv + 1] = "--systemd-cgroup" end
  for _, a in ipairs({ "run", "--bundle", self.dir }) do argv[#argv + 1] = a end
  if self.opts.no_pivot then argv[#argv + 1] = "--no-pivot" end
  if self.opts.pid_file then
    argv[#argv + 1] = "--pid-file"
    argv[#argv + 1] = self.opts.pid_file
  end
  argv[#argv + 1] = self.id
  return argv
end

--- Mark the task running; the external runtime runs it in wait().
function ExternalTask:start()
  self.st.status = "running"
  self.st.started_at = core.rfc3339()
  return write_status(self.dir, self.st)
end

--- Run the bundle through the external runtime in the foreground; record and return its
-- exit code.  Terminal signals (^C) reach the runtime, which forwards them to the container;
-- meanwhile they are ignored here, as system(3) does, so the exit code is still recorded.
-- A runtime that cannot be started is an error (the task is then stopped with code 255).
function ExternalTask:wait()
  if self.st.status == "stopped" then return self.st.exit_code end
  io.stdout:flush()
  local opts, fds = streams(self.io)
  local r, err
  if opts then
    opts.argv, opts.foreground = self:command(), true
    local hide = crun_hide_unified(self.ropts.binary)
    if hide then opts.hide_mounts = { hide } end
    r, err = sys.spawn(opts)
    for _, fd in ipairs(fds) do core.close(fd) end
  else
    err = fds
  end
  local code = r and r.code or 255
  if self.st.cgroup then
    local oom = cgroups.oom_killed(self.st.cgroup)
    if oom then self.st.oom = true end
  end
  self.st.status = "stopped"
  self.st.exit_code = code
  self.st.exited_at = core.rfc3339()
  write_status(self.dir, self.st)
  if err then return nil, err end
  return code
end

--- Signal the container through the runtime (`BINARY --root R kill ID SIG`).
function ExternalTask:kill(sig)
  local r, err = sys.spawn({ argv = { self.ropts.binary, "--root", self.st.runtime_root,
    "kill", self.id, tostring(sig or 15) }, stdout = "null", stderr = "null" })
  if not r then return nil, err end
  local code = r.code
  if code ~= 0 then return nil, errors.new(("%s kill %s: exit status %d"):format(self.ropts.binary, self.id, code), 3, "ESRCH") end
  return true
end

--- Delete the stopped task: the runtime's leftover state (`delete --force`), then as the
-- built-in runtime's tasks.
function ExternalTask:delete()
  if self.st.status ~= "stopped" and self.st.status ~= "created" then
    -- ask the runtime: running means it must be stopped first
    return nil, errors.new(("task %q must be stopped before deletion: %s"):format(self.id, self.st.status),
      16, "FAILED_PRECONDITION")
  end
  -- best effort: the state may never have been made (the run failed early)
  core.spawn({ argv = { self.ropts.binary, "--root", self.st.runtime_root, "delete", "--force",
    self.id }, stdout = "null", stderr = "null" })
  if self.st.status == "created" then self.st.status = "stopped" end
  return self.base.delete(self)
end

return M
