-- A fake cgroup tree for the cgroup specs: plain directories and files under a temporary
-- directory that look like cgroupfs in v1, v2 or hybrid mode, a mountinfo file and a
-- /proc/self/cgroup file that describe them.  The kernel makes a cgroup's files on mkdir; here
-- `fake:cgroup(path)` makes them, so the code under test finds what cgroupfs would show.
-- Writes append ("VALUE\n"), so `fake:lines(file)` is the sequence of writes.
local core = require("ctr.core")

local M = {}

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- v1 hierarchies of the fake: mount point, super options, files of each cgroup
M.V1 = {
  { dir = "cpu,cpuacct", opts = "rw,cpu,cpuacct", files = {
    ["cpu.shares"] = "", ["cpu.cfs_quota_us"] = "", ["cpu.cfs_period_us"] = "",
    ["cpu.rt_runtime_us"] = "", ["cpu.rt_period_us"] = "", ["cpu.cfs_burst_us"] = "",
    ["cpu.stat"] = "nr_periods 7\nnr_throttled 3\nthrottled_time 5000\n",
    ["cpuacct.usage"] = "123456789\n", ["cpuacct.usage_user"] = "100000000\n",
    ["cpuacct.usage_sys"] = "23456789\n" } },
  { dir = "cpuset", opts = "rw,cpuset", files = { ["cpuset.cpus"] = "", ["cpuset.mems"] = "",
    ["cgroup.clone_children"] = "" } },
  { dir = "memory", opts = "rw,memory", files = {
    ["memory.limit_in_bytes"] = "9223372036854771712\n", ["memory.memsw.limit_in_bytes"] = "",
    ["memory.soft_limit_in_bytes"] = "", ["memory.swappiness"] = "", ["memory.use_hierarchy"] = "",
    ["memory.kmem.tcp.limit_in_bytes"] = "",
    ["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    ["memory.usage_in_bytes"] = "4096\n", ["memory.max_usage_in_bytes"] = "8192\n",
    ["memory.stat"] = "cache 10\nrss 20\ntotal_cache 11\ntotal_rss 21\n" } },
  { dir = "devices", opts = "rw,devices", files = { ["devices.allow"] = "", ["devices.deny"] = "" } },
  { dir = "freezer", opts = "rw,freezer", files = { ["freezer.state"] = "" } },
  { dir = "blkio", opts = "rw,blkio", files = {
    ["blkio.weight"] = "", ["blkio.leaf_weight"] = "", ["blkio.weight_device"] = "",
    ["blkio.leaf_weight_device"] = "", ["blkio.throttle.read_bps_device"] = "",
    ["blkio.throttle.write_bps_device"] = "", ["blkio.throttle.read_iops_device"] = "",
    ["blkio.throttle.write_iops_device"] = "" } },
  { dir = "pids", opts = "rw,pids", files = { ["pids.max"] = "", ["pids.current"] = "3\n" } },
  { dir = "systemd", opts = "rw,xattr,name=systemd", files = {} },
}
M.V1_HUGETLB = { dir = "hugetlb", opts = "rw,hugetlb", files = { ["hugetlb.2MB.limit_in_bytes"] = "" } }

M.V2_FILES = {
  ["cgroup.controllers"] = "cpuset cpu io memory hugetlb pids\n", ["cgroup.subtree_control"] = "",
  ["cgroup.freeze"] = "", ["cgroup.events"] = "populated 1\nfrozen 1\n",
  ["memory.max"] = "", ["memory.swap.max"] = "", ["memory.low"] = "", ["memory.current"] = "5000\n",
  ["memory.events"] = "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n", ["memory.stat"] = "anon 30\nfile 40\n",
  ["cpu.weight"] = "", ["cpu.max"] = "", ["cpu.idle"] = "",
  ["cpu.stat"] = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 9\nnr_throttled 4\nthrottled_usec 7\n",
  ["cpuset.cpus"] = "", ["cpuset.mems"] = "", ["io.weight"] = "", ["io.max"] = "",
  ["pids.max"] = "", ["pids.current"] = "2\n", ["hugetlb.2MB.max"] = "",
  -- not a cgroupfs file: on a fake tree (opts.root set) the eBPF device filter is assembled
  -- but not loaded, and its rules are written here, in the order the program checks them
  -- (last rule first), then "deny" for what none matches
  ["devices.bpf"] = "",
}

--- A fake tree in `mode` ("v1", "v2", "hybrid"); `extra` may add {hugetlb_v1=true}.
function M.new(mode, extra)
  extra = extra or {}
  local self = setmetatable({}, { __index = M })
  self.tmp = require("support.tmp").dir("cgfake")
  self.mode = mode
  local base = self.tmp .. "/sys/fs/cgroup"
  local lines = {
    "22 1 0:21 / /proc rw,nosuid - proc proc rw",
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  }
  local pcg = {}
  self.hier = {} -- name -> {mount=, files=}
  if mode == "v1" or mode == "hybrid" then
    local list = {}
    for _, h in ipairs(M.V1) do list[#list + 1] = h end
    if extra.hugetlb_v1 then list[#list + 1] = M.V1_HUGETLB end
    for i, h in ipairs(list) do
      lines[#lines + 1] = ("%d 31 0:%d / /sys/fs/cgroup/%s rw,nosuid shared:%d - cgroup cgroup %s")
        :format(40 + i, 40 + i, h.dir, i, h.opts)
      local ctl = h.opts:gsub("^rw,", ""):gsub("xattr,", "")
      -- the caller sits in /user.slice in memory, at the root elsewhere
      pcg[#pcg + 1] = ("%d:%s:%s"):format(20 - i, ctl, h.dir == "memory" and "/user.slice" or "/")
      self.hier[h.dir] = { mount = base .. "/" .. h.dir, files = h.files }
      assert(core.mkdir_p(base .. "/" .. h.dir, 493))
      -- the root cgroup has the files too; its cpuset has every cpu and node
      for f, content in pairs(h.files) do write(base .. "/" .. h.dir .. "/" .. f, content) end
      if h.dir == "cpuset" then
        write(base .. "/cpuset/cpuset.cpus", "0-3\n")
        write(base .. "/cpuset/cpuset.mems", "0\n")
      end
    end
    -- a second (bind) mount of memory elsewhere is ignored
    lines[#lines + 1] = "99 22 0:44 /user.slice /mnt/mem\\040copy rw - cgroup cgroup rw,memory"
  end
  if mode == "v2" or mode == "hybrid" then
    local mp = mode == "v2" and "/sys/fs/cgroup" or "/sys/fs/cgroup/unified"
    lines[#lines + 1] = ("60 31 0:60 / %s rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate"):format(mp)
    pcg[#pcg + 1] = "0::/user.slice/session-1.scope"
    self.hier.unified = { mount = self.tmp .. mp, files = M.V2_FILES }
    assert(core.mkdir_p(self.tmp .. mp, 493))
    local controllers = mode == "v2" and M.V2_FILES["cgroup.controllers"] or "hugetlb\n"
    write(self.tmp .. mp .. "/cgroup.controllers", controllers)
    write(self.tmp .. mp .. "/cgroup.subtree_control", "")
  end
  write(self.tmp .. "/mountinfo", table.concat(lines, "\n") .. "\n")
  write(self.tmp .. "/cgroup", table.concat(pcg, "\n") .. "\n")
  self.opts = { mountinfo = self.tmp .. "/mountinfo", proc_cgroup = self.tmp .. "/cgroup",
    root = self.tmp }
  return self
end

--- Make cgroup `path` (absolute, below the mount points) in every hierarchy with the files
-- cgroupfs would show; `files` (optional) overrides contents: {["memory.stat"]="..."}.
function M:cgroup(path, files)
  for name, h in pairs(self.hier) do
    local dir = h.mount .. path
    assert(core.mkdir_p(dir, 493))
    for f, content in pairs(h.files) do write(dir .. "/" .. f, content) end
    if name == "unified" and self.mode == "hybrid" then
      write(dir .. "/cgroup.controllers", "hugetlb\n")
    end
    write(dir .. "/cgroup.procs", "")
    for f, content in pairs(files or {}) do
      if h.files[f] then write(dir .. "/" .. f, content) end
    end
  end
end

--- The directory of path in hierarchy `name` ("memory", "cpu,cpuacct", "unified", ...).
function M:dir(name, path) return self.hier[name].mount .. path end

--- The lines of a file of the fake tree.
function M:lines(name, path, file)
  local data = assert(core.read_file(self:dir(name, path) .. "/" .. file))
  local out = {}
  for l in data:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

--- The last line written to a file (its value).
function M:value(name, path, file)
  local l = self:lines(name, path, file)
  return l[#l]
end

function M:exists(name, path) return core.stat(self:dir(name, path)) ~= nil end

function M:remove() if self.tmp then core.remove_tree(self.tmp) end self.tmp = nil end

return M
