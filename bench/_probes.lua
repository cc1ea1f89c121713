-- Probes of what the kernel and the store's file system charge on this machine, measured apart
-- from ctrlua, so a MISSED line can say which part of a phase is not ctrlua's own work.  Not a
-- benchmark module (bench/run.lua skips names starting with "_"): run_latency.lua and tasks.lua
-- load it with dofile.
--
--   grace(n)          median ms of moving a fresh process into a new cgroup of every hierarchy
--                     ctrlua makes one in (one cgroup.procs write each, in one go, as create
--                     does), from idle: on cgroup v1 the first write waits for an RCU grace
--                     period (percpu_down_write of the threadgroup lock)
--   fsync(dir, n)     median ms of write + fsync of a 4 KB file in dir (a record's durability)
--   remove_dir(dir, n) median ms of removing a directory holding one 4 KB file, the shape of a
--                     snapshot's upper directory or a bundle; on an ext4 mounted with `discard`
--                     each freed block is discarded synchronously
--   mount_options(dir) the options of the file system holding dir
local core = require("ctr.core")

local M = {}

local median = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_util.lua").median

local function write(path, s)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  local ok, werr = f:write(s)
  local cok, cerr = f:close()
  if not ok then return nil, werr end
  if not cok then return nil, cerr end
  return true
end

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- The cgroup hierarchies under /sys/fs/cgroup: each mount point of type cgroup or cgroup2
-- (a symlink such as cpu -> cpu,cpuacct is the same hierarchy and is skipped).
local function hierarchies()
  local list = {}
  for line in io.lines("/proc/self/mountinfo") do
    local mnt, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .- %- (%S+) ")
    if mnt and (fstype == "cgroup" or fstype == "cgroup2") and mnt:match("^/sys/fs/cgroup") then
      list[#list + 1] = { path = mnt, v1 = fstype == "cgroup", cpuset = fstype == "cgroup"
        and core.stat(mnt .. "/cpuset.cpus") ~= nil }
    end
  end
  return list
end

function M.grace(n)
  if core.geteuid() ~= 0 then return nil, "needs root" end
  local hs = hierarchies()
  if #hs == 0 then return nil, "no cgroup hierarchy mounted under /sys/fs/cgroup" end
  local times = {}
  for i = 1, n do
    local name = ("ctrlua-bench-probe-%d-%d"):format(core.getpid(), i)
    local made = {}
    local p = assert(io.popen("sleep 30 & echo $!"))
    local pid = tonumber(p:read("*l"))
    p:close()
    local ok, err = pcall(function()
      for _, h in ipairs(hs) do
        local d = h.path .. "/" .. name
        assert(core.mkdir(d, 493))
        made[#made + 1] = d
        if h.cpuset then -- a v1 cpuset takes no process until it has cpus and mems
          assert(write(d .. "/cpuset.cpus", assert(read(h.path .. "/cpuset.cpus"))))
          assert(write(d .. "/cpuset.mems", assert(read(h.path .. "/cpuset.mems"))))
        end
      end
      -- after a write the kernel keeps the fast path open for about one more grace period; a
      -- run starts from idle, so the probe waits that out first
      os.execute("sleep 0.3")
      local t0 = core.monotime()
      for _, d in ipairs(made) do assert(write(d .. "/cgroup.procs", tostring(pid))) end
      times[#times + 1] = (core.monotime() - t0) * 1000
    end)
    core.kill(pid, 9)
    -- the killed sleeper leaves its cgroups once it has exited
    for _ = 1, 200 do
      local st = read("/proc/" .. pid .. "/stat")
      if not st or st:match("^%d+ %b() ([ZX])") then break end
      os.execute("sleep 0.01")
    end
    for k = #made, 1, -1 do
      for _ = 1, 100 do
        if core.rmdir(made[k]) or not core.stat(made[k]) then break end
        os.execute("sleep 0.01")
      end
    end
    if not ok then return nil, tostring(err) end
  end
  return median(times)
end

local BLOCK = string.rep("x", 4096)

function M.fsync(dir, n)
  local ffi = require("ffi")
  pcall(ffi.cdef, "int fsync(int fd); int fileno(void *stream);")
  local times = {}
  for i = 1, n do
    local path = ("%s/.probe-fsync-%d"):format(dir, i)
    local t0 = core.monotime()
    local f = assert(io.open(path, "w"))
    f:write(BLOCK)
    f:flush()
    local rc = ffi.C.fsync(ffi.C.fileno(f))
    f:close()
    times[#times + 1] = (core.monotime() - t0) * 1000
    os.remove(path)
    if rc ~= 0 then return nil, "fsync " .. path .. " failed" end
  end
  return median(times)
end

function M.remove_dir(dir, n)
  local times = {}
  for i = 1, n do
    local d = ("%s/.probe-rm-%d"):format(dir, i)
    assert(core.mkdir(d, 448))
    assert(write(d .. "/f", BLOCK))
    os.execute("sync -f " .. d .. "/f") -- the blocks allocated, as a record's or a run's are
    local t0 = core.monotime()
    assert(os.remove(d .. "/f"))
    assert(core.rmdir(d))
    times[#times + 1] = (core.monotime() - t0) * 1000
  end
  return median(times)
end

function M.mount_options(dir)
  local p = io.popen("findmnt -n -o FSTYPE,OPTIONS -T '" .. dir:gsub("'", "'\\''") .. "'")
  local s = p and p:read("*l")
  if p then p:close() end
  return s
end

return M
