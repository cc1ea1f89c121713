-- tasks: manage tasks (ls, start, attach, kill, wait, delete, ps, pause, resume, metrics, exec, checkpoint) as `ctr tasks`
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")
local tasks = require("ctr.tasks")
-- ctr.cio, ctr.json and ctr.cmd.format are required by the commands that use them: kill and
-- delete, which scripts run once a container, need none of them

local function client()
  local c, err = ctr.client()
  if not c then app.fail(err) end
  return c
end

local function need_id(ctx)
  local id = ctx.args[1]
  if id == nil or id == "" then app.fail("container id must be provided: invalid argument") end
  return id
end

local function load(cl, id)
  local t, err = tasks.load(cl, id)
  if not t then app.fail(err) end
  return t
end

local function parse_signal(s)
  local n = tasks.signal_number(s)
  if not n then app.fail(("invalid signal %q"):format(s)) end
  return n
end

local IO_FLAGS = {
  { name = "null-io", type = "bool", usage = "send all IO to /dev/null" },
  { name = "log-uri", type = "string", usage = "log uri" },
  { name = "fifo-dir", type = "string", usage = "directory used for storing IO FIFOs" },
  { name = "pid-file", type = "string", usage = "file path to write the task's pid" },
  { name = "detach", aliases = { "d" }, type = "bool", usage = "detach from the task after it has started execution" },
}

local function list(ctx)
  local json = require("ctr.json")
  local cl = client()
  local all, bad = tasks.list(cl)
  app.warn(bad)
  if ctx.flags.quiet then
    for _, t in ipairs(all) do io.write(t.id, "\n") end
    return true
  end
  if ctx.flags.format == "json" then
    local out = {}
    for _, t in ipairs(all) do
      out[#out + 1] = { ID = t.id, PID = t.pid, Status = t.status:upper(),
        ExitStatus = t.exit_code, ExitedAt = t.exited_at }
    end
    io.write(json.encode_indent(json.array(out)), "\n")
    return true
  elseif ctx.flags.format ~= "" and ctx.flags.format ~= "table" then
    return nil, ("unknown format %q: use table or json"):format(ctx.flags.format)
  end
  -- ctr's tabwriter.NewWriter(os.Stdout, 4, 8, 4, ' ', 0), its header ending in a tab
  local lines = { "TASK\tPID\tSTATUS\t\n" }
  for _, t in ipairs(all) do
    lines[#lines + 1] = ("%s\t%d\t%s\n"):format(t.id, t.pid, t.status:upper())
  end
  io.write(cli.tabwrite(table.concat(lines), 4, 4))
  return true
end

local function start(ctx)
  local cl = client()
  local id = need_id(ctx)
  local f = ctx.flags
  local container, err = cl:load_container(id)
  if not container then return nil, err end
  local tio
  tio, err = require("ctr.cio").from_flags(f, id, f.detach)
  if not tio then return nil, err end
  local detach = f.detach or tio.needs_monitor
  local task
  task, err = container:new_task(tio, { detach = detach,
    pid_file = f["pid-file"] ~= "" and f["pid-file"] or nil })
  if not task then return nil, err end
  local ok
  ok, err = task:start({ forward = not detach })
  if not ok then
    task:delete({ force = true })
    return nil, err
  end
  if f.detach then return true end
  local code
  code, err = task:wait({ forward = not detach })
  if not code then return nil, err end
  if not detach and tio.close then tio.close() end
  task:delete()
  io.stdout:flush()
  os.exit(code)
end

local function attach(ctx)
  local cl = client()
  local t = load(cl, need_id(ctx))
  local ok, err = t:attach({ stdout = 1, stderr = 2 })
  if not ok then return nil, err end
  local code = t:wait()
  io.stdout:flush()
  os.exit(code or 255)
end

local function kill(ctx)
  local cl = client()
  local id = need_id(ctx)
  local t = load(cl, id)
  local sig
  if ctx.flags.signal ~= "" then
    sig = parse_signal(ctx.flags.signal)
  else
    sig = parse_signal(t.extra and t.extra.stop_signal or "SIGTERM")
  end
  local ok, err = t:kill(sig, { all = ctx.flags.all })
  if not ok then return nil, err end
  return true
end

local function wait(ctx)
  local cl = client()
  local t = load(cl, need_id(ctx))
  local code, err = t:wait()
  if not code then return nil, err end
  io.stdout:flush()
  os.exit(code)
end

local function delete(ctx)
  local cl = client()
  if #ctx.args == 0 then return nil, "task id must be provided: invalid argument" end
  local failed = false
  for _, id in ipairs(ctx.args) do
    local t, err = tasks.load(cl, id)
    local code
    if t then code, err = t:delete({ force = ctx.flags.force }) end
    if code and code ~= 0 then
      -- ctr warns, and exits 0 all the same
      io.stderr:write(("ctrlua: warning: task %s exit with non-zero exit code %d\n"):format(id, code))
    end
    if err then
      io.stderr:write("ctrlua: ", tostring(err), "\n")
      failed = true
    end
  end
  if failed then return false end
  return true
end

local function ps(ctx)
  local json, format = require("ctr.json"), require("ctr.cmd.format")
  local cl = client()
  local t = load(cl, need_id(ctx))
  local pids, err = t:pids()
  if not pids then return nil, err end
  if ctx.flags.format == "json" then
    local out = {}
    for _, p in ipairs(pids) do out[#out + 1] = { pid = p } end
    io.write(json.encode_indent(json.array(out)), "\n")
    return true
  end
  local rows = { { "PID", "INFO" } }
  for _, p in ipairs(pids) do rows[#rows + 1] = { tostring(p), "-" } end
  io.write(format.table(rows))
  return true
end

local function pause(ctx)
  local t = load(client(), need_id(ctx))
  return t:pause()
end

local function resume(ctx)
  local t = load(client(), need_id(ctx))
  return t:resume()
end

local function metrics(ctx)
  local json, format = require("ctr.json"), require("ctr.cmd.format")
  local t = load(client(), need_id(ctx))
  local m, err = t:metrics()
  if not m then return nil, err end
  for k, v in pairs(m) do
    if v == math.huge then m[k] = "max" end -- no limit: as cgroup v2 writes it
  end
  if ctx.flags.format == "json" then
    local text, jerr = json.encode_indent(m)
    if not text then return nil, jerr end
    io.write(text, "\n")
    return true
  end
  local keys = {}
  for k in pairs(m) do keys[#keys + 1] = k end
  table.sort(keys)
  io.write(format.table({ { "ID", "TIMESTAMP" }, { t.id, require("ctr.cmd.term").rfc3339() } }), "\n")
  local rows = { { "METRIC", "VALUE" } }
  for _, k in ipairs(keys) do
    local v = m[k]
    rows[#rows + 1] = { k, type(v) == "table" and json.encode(v) or tostring(v) }
  end
  io.write(format.table(rows))
  return true
end

local function exec(ctx)
  local f = ctx.flags
  if f["exec-id"] == nil or f["exec-id"] == "" then
    return nil, 'Required flag "exec-id" not set'
  end
  local id = ctx.args[1]
  if id == nil or id == "" then return nil, "container id must be provided" end
  local args = { select(2, unpack(ctx.args)) }
  if #args == 0 then return nil, "command must be provided: invalid argument" end
  local cl = client()
  local t = load(cl, id)
  -- as ctr: the container's spec process, with the args, terminal, cwd and user of the flags
  local spec, err = t:spec()
  if not spec then return nil, err end
  local proc = spec.process or {}
  proc.args = args
  proc.terminal = f.tty or false
  if f.cwd and f.cwd ~= "" then proc.cwd = f.cwd end
  if f.env then
    local env = {}
    for _, kv in ipairs(proc.env or {}) do env[#env + 1] = kv end
    for _, kv in ipairs(f.env) do env[#env + 1] = kv end
    proc.env = env
  end
  if f.user and f.user ~= "" then
    local ospec = { process = proc, root = { path = t.dir .. "/rootfs" } }
    local ok, uerr = require("ctr.oci").with_user(f.user)(nil, cl, nil, ospec)
    if not ok then return nil, uerr end
  end
  local p, perr = t:exec(f["exec-id"], proc, require("ctr.cio").stdio(), { detach = f.detach or nil })
  if not p then return nil, perr end
  local ok, serr = p:start()
  if not ok then
    -- as run: 127 when the program is not found, 126 when it cannot be executed
    if serr.exec then app.fail(serr, serr.sym == "ENOENT" and 127 or 126) end
    return nil, serr
  end
  if f.detach then return true end
  local code, werr = p:wait({ forward = true })
  if not code then return nil, werr end
  io.stdout:flush()
  os.exit(code)
end

local function checkpoint(ctx)
  local t = load(client(), need_id(ctx))
  local ok, err = t:checkpoint({ image_path = ctx.flags["image-path"] })
  if not ok then return nil, err end
  return true
end

app.run({
  name = "tasks", usage = "manage tasks",
  commands = {
    { name = "list", aliases = { "ls" }, usage = "list tasks", action = list,
      flags = {
        { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the task id" },
        { name = "format", type = "string", usage = "output format: table or json" },
      } },
    { name = "start", usage = "start a container that has been created", args_usage = "[flags] CONTAINER",
      flags = IO_FLAGS, action = start },
    { name = "attach", usage = "attach to the IO of a running container", args_usage = "CONTAINER",
      action = attach },
    { name = "kill", usage = "signal a container (default: SIGTERM)", args_usage = "[flags] CONTAINER",
      flags = {
        { name = "signal", aliases = { "s" }, type = "string", usage = "signal to send to the container" },
        { name = "exec-id", type = "string", usage = "process ID to kill" },
        { name = "all", aliases = { "a" }, type = "bool", usage = "send signal to all processes inside the container" },
      }, action = kill },
    { name = "wait", usage = "wait for a task to exit and exit with its status", args_usage = "CONTAINER",
      action = wait },
    { name = "delete", aliases = { "del", "remove", "rm" }, usage = "delete one or more tasks",
      args_usage = "CONTAINER [CONTAINER, ...]",
      flags = {
        { name = "force", aliases = { "f" }, type = "bool", usage = "force delete task process" },
        { name = "exec-id", type = "string", usage = "process ID to kill" },
      }, action = delete },
    { name = "ps", usage = "list processes for container", args_usage = "CONTAINER",
      flags = { { name = "format", type = "string", usage = "output format: table or json" } }, action = ps },
    { name = "pause", usage = "pause an existing container", args_usage = "CONTAINER", action = pause },
    { name = "resume", usage = "resume a paused container", args_usage = "CONTAINER", action = resume },
    { name = "metrics", aliases = { "metric" }, usage = "get a single data point of metrics for a task with the built-in Linux runtime",
      args_usage = "CONTAINER",
      flags = { { name = "format", type = "string", usage = "\"table\" or \"json\"" } }, action = metrics },
    { name = "exec", usage = "execute additional processes in an existing container",
      args_usage = "[flags] CONTAINER CMD [ARG...]", skip_reorder = true,
      flags = {
        { name = "cwd", type = "string", usage = "working directory of the new process" },
        { name = "tty", aliases = { "t" }, type = "bool", usage = "allocate a TTY for the container" },
        { name = "detach", aliases = { "d" }, type = "bool", usage = "detach from the task after it has started execution" },
        { name = "exec-id", type = "string", usage = "exec specific id for the process" },
        { name = "env", type = "strings", usage = "add environment variables (K=V)" },
        { name = "user", type = "string", usage = "user that will run the command" },
      }, action = exec },
    { name = "checkpoint", usage = "checkpoint a container", args_usage = "[flags] CONTAINER",
      flags = { { name = "image-path", type = "string", usage = "path to criu image files" } },
      action = checkpoint },
  },
}, { ... })
-- the command is done: exit without closing the Lua state, whose every object lua_close would
-- free one by one in a process that is about to end (start, wait and exec exit so already)
io.stdout:flush()
os.exit(0)
