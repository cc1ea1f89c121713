--- A process exec'd into a running task (containerd's Process of Task.Exec): it joins the
-- init's namespaces and cgroup (ctr.sys exec).  Made by a task's `exec`; loaded only by the
-- commands that exec, not by every one that makes or waits for a task.
-- @module ctr.process
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local Process = {}
Process.__index = Process
M.Process = Process

--- Describe an additional process of the running task (containerd's Task.Exec): nothing
-- runs until `start`.  The process joins the init's namespaces and cgroup, and runs with the
-- attributes of `process` and the seccomp filter of the task's spec.
-- @param task the running task (ctr.tasks)
-- @tparam function event the log of the process's events, ctr.tasks.event (this module is
-- below ctr.tasks in the graph of requires)
-- @tparam string exec_id the process's id (for events)
-- @tparam table process an OCI process (args, env, cwd, user, capabilities, terminal, ...),
-- usually the spec's process with args changed
-- @tparam[opt] table io an IO table from ctr.cio (default cio.stdio()); ignored when
-- process.terminal is true: the process then gets a pty whose master `wait` copies
-- @tparam[opt] table opts `pid_file`, `console_socket` (give the pty master to that socket
-- instead), `detach` (the caller will not wait: the process gets io's fds as they are, even
-- a terminal, since no one would copy them)
-- @return a Process, or nil, err (FAILED_PRECONDITION when the task is not running)
function M.exec(task, event, exec_id, process, io, opts)
  if type(exec_id) ~= "string" or exec_id == "" then
    error("exec_id: expected a non-empty string", 2)
  end
  if type(process) ~= "table" then error("process: expected table", 2) end
  if type(process.args) ~= "table" or type(process.args[1]) ~= "string" then
    error("process.args: expected a non-empty array of strings", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then error("opts: expected table", 2) end
  local status = task:status()
  if status ~= "running" then
    return nil, errors.new(("task %s: cannot exec in a %s task"):format(task.id,
      tostring(status or "missing")), 9, "FAILED_PRECONDITION")
  end
  return setmetatable({ task = task, id = exec_id, process = process,
    io = io or require("ctr.cio").stdio(), opts = opts or {}, event = event }, Process)
end

--- Start the process: returns once its program runs (then `pid` is set), or nil, err (err.exec
-- is true when the program was not found or could not be executed: "exec: `x': ...").
function Process:start()
  if self.pid then return nil, errors.new("exec " .. self.id .. ": already started", 17) end
  local task, opts = self.task, self.opts
  local proc = {}
  for k, v in pairs(self.process) do proc[k] = v end
  proc.args = core.json_array(self.process.args)
  if proc.env then proc.env = core.json_array(proc.env) end
  local sock, listen
  if proc.terminal and not opts.console_socket then
    sock = task.dir .. "/exec-" .. core.getpid() .. ".sock"
    core.unlink(sock)
    local err
    listen, err = sys.unix_listen(sock)
    if not listen then return nil, err end
  end
  local fds = self.io
  if not proc.terminal and not opts.detach and fds.pipe_terminals then
    -- the caller's terminal stays the caller's: pipes in its place, copied by wait
    local perr
    fds, perr = fds:pipe_terminals()
    if not fds then
      if listen then core.close(listen) end
      return nil, perr
    end
  end
  local pid, err = sys.exec(task.pid, proc, {
    bundle = task.dir, id = task.id, pid_file = opts.pid_file,
    console_socket = opts.console_socket or sock,
    stdin = not proc.terminal and fds.stdin or nil,
    stdout = not proc.terminal and fds.stdout or nil,
    stderr = not proc.terminal and fds.stderr or nil,
  })
  if sock then core.unlink(sock) end
  if fds ~= self.io then
    if pid then fds.started() else fds.close() end
    if pid then self.io = fds end
  end
  if not pid then
    if listen then core.close(listen) end
    return nil, err
  end
  if listen then
    local master, rerr = sys.recv_fd(listen)
    core.close(listen)
    if not master then
      core.kill(pid, 9)
      core.waitpid(pid)
      return nil, rerr
    end
    self.console = master
  end
  self.pid = pid
  self.event(task.client, "/tasks/exec-added", task.id, { exec_id = self.id })
  self.event(task.client, "/tasks/exec-started", task.id, { exec_id = self.id, pid = pid })
  return true
end

--- Wait for the process to exit: its exit code (128+N for signal N), or nil, err.
-- @tparam[opt] table opts `forward`: forward the caller's signals to it meanwhile
function Process:wait(opts)
  if not self.pid then return nil, errors.new("exec " .. self.id .. ": not started", 3) end
  local forward = opts and opts.forward or false
  local code, info
  if self.console and core.tty_run then
    code, info = sys.tty_run(self.console, self.pid, { forward = forward,
      stdin = self.io.stdin, stdout = self.io.stdout })
    core.close(self.console)
    self.console = nil
  else
    local copy = self.io.take_copy and self.io.take_copy()
    code, info = sys.wait(self.pid, { forward = forward, copy = copy })
  end
  if code == nil then return nil, info end
  self.event(self.task.client, "/tasks/exit", self.task.id, { exec_id = self.id, pid = self.pid,
    exit_status = code, exited_at = core.rfc3339() })
  return code
end

--- Send a signal (a number, default SIGTERM) to the process.
function Process:kill(sig)
  if not self.pid then return nil, errors.new("exec " .. self.id .. ": not started", 3) end
  local ok, err = sys.kill(self.pid, sig or 15)
  if not ok then return nil, err end
  return true
end

return M
