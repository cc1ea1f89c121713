--- Tasks: a container's running init, as containerd's Task.
-- A task lives in STATE/NAMESPACE/ID/, which is also its OCI bundle: config.json (the
-- container's spec, written once), rootfs/ (the snapshot mounted there), exec.fifo (until
-- start) and `status`, a JSON record {status, pid, start_time, exit_code, exited_at} written
-- atomically.  The state directory is created exclusively, so two tasks for one container can
-- never both start.  Status is checked against the kernel: a "running" record whose pid is
-- gone, or is another process (its start time differs), is reported as stopped.
-- @module ctr.tasks
local core = require("ctr.core")
local errors = require("ctr.errors")

local M = {}

local Task = {}
Task.__index = Task
M.Task = Task

local function read_status(dir)
  local data = core.read_file(dir .. "/status", 65536)
  if not data then return nil end
  return core.json_decode(data)
end

local function write_status(dir, st)
  local ok, msg, errno = core.write_file(dir .. "/status", core.json_encode(st), { mode = 384 })
  if not ok then return nil, errors.new(msg, errno) end
  return true
end

--- The start time of a process (field 22 of /proc/PID/stat, in clock ticks), or nil when gone.
-- With the pid it identifies a process across pid reuse.
function M.proc_start_time(pid)
  local data = core.read_file("/proc/" .. tostring(pid) .. "/stat", 4096)
  if not data then return nil end
  -- comm may hold spaces and parentheses: fields start after the last ')'
  local rest = data:match(".*%)%s(.*)$")
  if not rest then return nil end
  local i = 3
  for field in rest:gmatch("%S+") do
    if i == 22 then return tonumber(field) end
    i = i + 1
  end
  return nil
end

local function alive(st)
  if not st.pid or st.pid <= 0 then return false end
  local t = M.proc_start_time(st.pid)
  return t ~= nil and (st.start_time == nil or t == st.start_time)
end

--- The status of container id's task: "created", "running", "stopped", or nil (no task).
function M.status(client, id)
  local st = read_status(client:state_dir(id))
  if not st then return nil end
  if (st.status == "running" or st.status == "created") and not alive(st) then
    return "stopped", st
  end
  return st.status, st
end

local function cleanup(client, dir, rootfs_mounted)
  if rootfs_mounted then
    require("ctr.mount").unmount_all(dir .. "/rootfs")
  end
  core.remove_tree(dir)
end

--- Create the task of a container (NewTask): mount its rootfs, write the bundle, create the
-- init, which then waits for start.
-- @param container a container object (ctr.containers)
-- @param io an IO table from ctr.cio (default cio.stdio())
-- @tparam[opt] table opts `pid_file`, `no_pivot`
-- @return task, or nil, err (err.sym "ENOENT"/"EACCES" when the command is not found / not
-- executable)
function M.new_task(container, io, opts)
  opts = opts or {}
  io = io or require("ctr.cio").stdio()
  local client = container.client
  local id = container.id
  local nsdir = client:state_dir()
  local ok, msg, errno = core.mkdir_p(nsdir, 457) -- 0711
  if not ok then return nil, errors.new(msg, errno) end
  local dir = client:state_dir(id)
  ok, msg, errno = core.mkdir(dir, 448) -- 0700
  if not ok then
    if errno == 17 then return nil, errors.exists("task %q: already exists", id) end
    return nil, errors.new(msg, errno)
  end

  -- the record as new_container wrote it or load read it: no second read on the run path
  local rec = container.record
  if not rec then
    local err
    rec, err = container:info()
    if not rec then
      core.remove_tree(dir)
      return nil, err
    end
  end
  local spec = rec.spec
  if type(spec) ~= "table" then
    core.remove_tree(dir)
    return nil, errors.not_found("container %q: no spec", id)
  end
  local rootfs_mounted = false
  local function fail(err)
    cleanup(client, dir, rootfs_mounted)
    return nil, err
  end

  if rec.snapshot_key and rec.snapshot_key ~= "" then
    local sn, err = client:snapshotter(rec.snapshotter)
    if not sn then return fail(err) end
    local mounts
    mounts, err = sn:mounts(rec.snapshot_key)
    if not mounts then return fail(err) end
    ok, msg, errno = core.mkdir(dir .. "/rootfs", 493) -- 0755
    if not ok then return fail(errors.new(msg, errno)) end
    local mok, merr = require("ctr.mount").all(mounts, dir .. "/rootfs")
    if not mok then return fail(merr) end
    rootfs_mounted = true
    spec.root = spec.root or {}
    spec.root.path = "rootfs"
  end

  ok, msg, errno = core.write_file(dir .. "/config.json", core.json_encode(spec), { mode = 384 })
  if not ok then return fail(errors.new(msg, errno)) end

  local pid
  pid, msg, errno = core.create(dir, {
    exec_fifo = dir .. "/exec.fifo",
    pid_file = opts.pid_file,
    no_pivot = opts.no_pivot,
    stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
  })
  if not pid then
    local err = errors.new(msg, errno)
    -- the init looks the command up before it reports ready (as runc's does): mark that
    -- failure so that run can answer 127 (not found) or 126 (cannot invoke)
    err.exec = msg:match("^exec: ") ~= nil
    return fail(err)
  end

  local st = { status = "created", pid = pid, start_time = M.proc_start_time(pid),
    created_at = core.rfc3339(),
    -- the runtime made this cgroup; delete removes it
    cgroup = type(spec.linux) == "table" and type(spec.linux.cgroupsPath) == "string"
      and spec.linux.cgroupsPath ~= "" and spec.linux.cgroupsPath or nil }
  ok, msg = write_status(dir, st)
  if not ok then
    core.kill(pid, 9)
    core.waitpid(pid)
    return fail(msg)
  end
  return setmetatable({ client = client, container = container, id = id, pid = pid, dir = dir,
    io = io, st = st }, Task)
end

--- Start the init: it execve's the process.
function Task:start()
  local ok, msg, errno = core.start(self.dir .. "/exec.fifo")
  if not ok then return nil, errors.new(msg, errno) end
  self.st.status = "running"
  self.st.started_at = core.rfc3339()
  return write_status(self.dir, self.st)
end

--- Wait for the init to exit and record it.
-- @tparam[opt] table opts `forward`: forward the caller's signals to the init meanwhile
-- @return exit code (128+N for signal N), or nil, err
function Task:wait(opts)
  local code, info = core.wait(self.pid, { forward = opts and opts.forward or false })
  if code == nil then return nil, errors.new(info, 10) end
  self.st.status = "stopped"
  self.st.exit_code = code
  self.st.exited_at = core.rfc3339()
  if type(info) == "table" and info.signal then self.st.signal = info.signal end
  write_status(self.dir, self.st)
  return code
end

--- Send a signal (a number, default SIGTERM) to the init.
function Task:kill(sig)
  local ok, msg, errno = core.kill(self.pid, sig or 15)
  if not ok then return nil, errors.new(msg, errno) end
  return true
end

--- The task's status: "created", "running", "stopped".
function Task:status()
  return (M.status(self.client, self.id))
end

--- Delete a stopped task: unmount its rootfs and remove its state.  Returns its exit code.
function Task:delete()
  local status = self:status()
  if status == "running" or status == "created" then
    return nil, errors.new(("task %q must be stopped before deletion: %s"):format(self.id, status),
      16, "FAILED_PRECONDITION")
  end
  if self.io and self.io.close then self.io.close() end
  if self.st.cgroup then
    local ok, err = require("ctr.cgroups").delete(self.st.cgroup)
    if not ok then return nil, err end
  end
  cleanup(self.client, self.dir, true)
  return self.st.exit_code
end

--- Load the task of container id from its state: task, or nil, err (sym NOT_FOUND).
function M.load(client, id, container)
  local dir = client:state_dir(id)
  local st = read_status(dir)
  if not st then return nil, errors.not_found("no running task found: task %s not found", id) end
  return setmetatable({ client = client, container = container, id = id, pid = st.pid,
    dir = dir, st = st }, Task)
end

--- Delete the stopped task of container id (what `containers rm` does before removing the
-- record).  Returns its exit code, or nil, err.
function M.delete(client, id)
  local task, err = M.load(client, id)
  if not task then return nil, err end
  return task:delete()
end

return M
