--- A runc-compatible runtime over ctrlua's C runtime: the commands of `ctrlua-runc` (runc's
-- create, start, run, state, kill, delete, list, ps, exec, pause, resume, update, events,
-- features, spec) as a library, so that specs can call them.
--
-- State lives under `root` (default /run/ctrlua-runc), one directory per container, 0700:
-- ROOT/ID/state.json {id, bundle, pid, start_time, created, annotations, cgroup, cgroup_dirs,
-- resources (what update set)} and ROOT/ID/exec.fifo until start.  The status is derived, as
-- runc derives it: no pid yet is "creating"; a frozen cgroup (its freezer, whoever froze it)
-- is "paused"; an init that is gone (or a pid now used by another process: its start time,
-- field 22 of /proc/PID/stat, differs, or it is a zombie) is "stopped"; an exec fifo still
-- there is "created"; else "running".
--
-- In this mode the caller is the supervisor (containerd's shim, or a shell): `create`
-- returns once the init waits on the fifo and leaves it to the caller's subreaper; no
-- monitor of ours stays behind.
-- @module ctr.cmd.runc
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local cgroups = require("ctr.cgroups")
local signals = require("ctr.signals")
local RU = require("ctr.cmd.runc_update")

local M = {}

M.VERSION = "0.1.0"
M.OCI_VERSION = "1.0.2-dev"
M.DEFAULT_ROOT = "/run/ctrlua-runc"

local function fail(fmt, ...)
  return nil, errors.new(select("#", ...) > 0 and fmt:format(...) or fmt)
end

-- ------------------------------------------------------------------------------- signals

--- Parse a signal as runc does: a number, or a name with or without SIG, any case (see
-- ctr.signals).
-- @tparam string s
-- @return number, or nil, err
function M.parse_signal(s)
  if type(s) ~= "string" then error("s: expected string, got " .. type(s), 2) end
  return signals.parse(s)
end

-- ---------------------------------------------------------------------- processes

--- The state letter and start time (clock ticks since boot) of a process, or nil if gone.
-- @tparam number pid
-- @return state letter, start time
function M.proc_info(pid)
  local st = core.proc_stat(pid)
  if not st then return nil end
  return st.state, st.start_time
end

local function alive(pid, start_time)
  if type(pid) ~= "number" or pid <= 0 then return false end
  local state, t = M.proc_info(pid)
  if not state or state == "Z" or state == "X" then return false end
  return start_time == nil or t == start_time
end

-- Wait until pid is gone (exited: a zombie counts), at most timeout_ms.
local function wait_gone(pid, start_time, timeout_ms)
  local fd = core.pidfd_open(pid)
  if fd then
    if alive(pid, start_time) then core.poll({ fd }, timeout_ms) end
    core.close(fd)
    return not alive(pid, start_time)
  end
  local deadline = core.monotime() + timeout_ms / 1000
  while alive(pid, start_time) and core.monotime() < deadline do core.poll({}, 10) end
  return not alive(pid, start_time)
end

local function sleep_ms(ms) core.poll({}, ms) end

-- ------------------------------------------------------------------------- logging

local function logfmt_quote(s)
  if s:match("^[%w%-%._/@^+]+$") then return s end
  return '"' .. s:gsub('[\\"]', "\\%0"):gsub("\n", "\\n"):gsub("\t", "\\t") .. '"'
end

--- A runtime context: `root`, and the log settings of runc's global flags.
-- @tparam table g `root`, `log` (file), `log_format` ("text"|"json"), `debug`
-- @return runtime object (`rt.root`, `rt:log(level, msg)`)
function M.new(g)
  g = g or {}
  if type(g) ~= "table" then error("g: expected table, got " .. type(g), 2) end
  local rt = { root = g.root or M.DEFAULT_ROOT, log_file = g.log, debug = g.debug or false,
    log_format = g.log_format or "text" }
  if rt.log_format ~= "text" and rt.log_format ~= "json" then
    error("log_format: expected text or json", 2)
  end
  rt.log = M.log
  return rt
end

--- A log line in runc's formats (logrus): text `time="..." level=error msg="..."`, or json
-- `{"level":"error","msg":"...","time":"..."}`.
function M.log_line(format, level, msg)
  local time = core.rfc3339():gsub("%.%d+Z$", "Z")
  if format == "json" then
    return core.json_encode({ level = level, msg = msg, time = time }) .. "\n"
  end
  return ("time=%s level=%s msg=%s\n"):format(logfmt_quote(time), level, logfmt_quote(msg))
end

--- Log a message at level ("debug", "info", "warning", "error") to the log file, or to
-- stderr when there is none (debug lines only with --debug).
function M.log(rt, level, msg)
  if level == "debug" and not rt.debug then return end
  local line = M.log_line(rt.log_format, level, msg)
  if rt.log_file then
    local fd = core.open(rt.log_file, "a", 420)
    if fd then
      core.write(fd, line)
      core.close(fd)
      return
    end
  end
  io.stderr:write(line)
end

-- ------------------------------------------------------------------------- records

local function check_id(id)
  if type(id) ~= "string" or id == "" then return fail("container id cannot be empty") end
  if id == "." or id == ".." or not id:match("^[%w+%-%._]+$") then
    return fail("invalid id format: %s", id)
  end
  return true
end

local function dir_of(rt, id) return rt.root .. "/" .. id end

local function read_record(rt, id)
  local data = core.read_file(dir_of(rt, id) .. "/state.json", 1048576)
  if not data then return nil end
  local ok, rec = pcall(core.json_decode, data)
  if not ok or type(rec) ~= "table" then return nil end
  return rec
end

local function write_record(rt, rec)
  return sys.write_file(dir_of(rt, rec.id) .. "/state.json", core.json_encode(rec),
    { mode = 384 })
end

local function not_exist() return nil, errors.new("container does not exist", 2, "NOT_FOUND") end

-- The directories of a container's cgroup: those create found (a relative cgroupsPath is
-- below the creator's cgroup, as runc keeps the paths in its state), else looked up now.
local function cg_dirs(rec)
  if type(rec.cgroup_dirs) == "table" then return rec.cgroup_dirs end
  return rec.cgroup and cgroups.dirs(rec.cgroup) or nil
end

-- Is the container's cgroup frozen (v1 freezer.state, else cgroup v2's cgroup.freeze)?  As
-- runc's isPaused, the kernel's word, not a note of ours: a thaw by someone else is seen.
local function frozen(rec)
  local dirs = cg_dirs(rec)
  if not dirs then return false end
  if dirs.freezer then
    local st = core.read_file(dirs.freezer .. "/freezer.state")
    return st ~= nil and st:match("^%s*(%u+)") ~= "THAWED"
  end
  if dirs.unified then
    local f = core.read_file(dirs.unified .. "/cgroup.freeze")
    return f ~= nil and f:match("^%s*1") ~= nil
  end
  return false
end

--- The status of a container record: creating, created, running, paused or stopped.
function M.status_of(rt, rec)
  if not rec.pid then
    -- the create that writes the pid is still running, or died before: then it is stopped
    if rec.creator and alive(rec.creator, rec.creator_start) then return "creating" end
    return "stopped"
  end
  -- as runc's refreshState: a frozen cgroup is paused before anything else is asked
  if frozen(rec) then return "paused" end
  if not alive(rec.pid, rec.start_time) then return "stopped" end
  if core.stat(dir_of(rt, rec.id) .. "/exec.fifo") then return "created" end
  return "running"
end

local function load(rt, id)
  local ok, err = check_id(id)
  if not ok then return nil, err end
  local rec = read_record(rt, id)
  if not rec then return not_exist() end
  return rec, M.status_of(rt, rec)
end

-- A time as Go's RFC3339Nano writes it: the fraction without its trailing zeros (none when
-- it is all zeros).
local function go_time(t)
  if type(t) ~= "string" then return "0001-01-01T00:00:00Z" end
  local head, frac = t:match("^(.-)%.(%d+)Z$")
  if not head then return t end
  frac = frac:gsub("0+$", "")
  return head .. (frac ~= "" and "." .. frac or "") .. "Z"
end

local function oci_state(rt, rec, status)
  local st = { ociVersion = M.OCI_VERSION, id = rec.id, status = status,
    pid = (status ~= "stopped" and rec.pid) or 0, bundle = rec.bundle, rootfs = rec.rootfs or "",
    created = go_time(rec.created), owner = "" }
  if type(rec.annotations) == "table" and next(rec.annotations) then
    st.annotations = rec.annotations
  end
  return st
end

--- The runtime-spec state of container id (runc's `state`: ociVersion (the runtime's, not
-- config.json's: runc's is its runtime-spec library's), id, pid
-- (0 once stopped), status, bundle, rootfs, created, annotations (when there are any) and
-- owner, "" here as in runc's state; list names it).
-- @return table, or nil, err ("container does not exist")
function M.state(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  return oci_state(rt, rec, status)
end

-- A JSON string as Go's encoding/json writes it (<, > and & escaped too).
local GO_ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026" }
local function go_string(v)
  v = tostring(v)
  return '"' .. v:gsub('[%c"\\<>&]', function(c)
    return GO_ESC[c] or ("\\u%04x"):format(c:byte())
  end):gsub("\226\128\168", "\\u2028"):gsub("\226\128\169", "\\u2029") .. '"'
end

local STATE_FIELDS = { "ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
  "annotations", "owner" }

--- A state (from state() or list()) as runc's containerState marshals: its fields in runc's
-- order, annotations' keys sorted; with indent, json.MarshalIndent's two spaces.
-- @tparam table st
-- @tparam[opt] boolean indent
-- @return string (no trailing newline)
function M.state_json(st, indent)
  local nl = indent and "\n" or ""
  local pad1, pad2 = indent and "  " or "", indent and "    " or ""
  local colon = indent and ": " or ":"
  local parts = {}
  for _, k in ipairs(STATE_FIELDS) do
    local v = st[k]
    if k == "annotations" then
      if type(v) == "table" and next(v) then
        local keys = {}
        for ak in pairs(v) do keys[#keys + 1] = ak end
        table.sort(keys)
        local a = {}
        for i, ak in ipairs(keys) do a[i] = pad2 .. go_string(ak) .. colon .. go_string(v[ak]) end
        parts[#parts + 1] = pad1 .. go_string(k) .. colon .. "{" .. nl ..
          table.concat(a, "," .. nl) .. nl .. pad1 .. "}"
      end
    else
      local text = type(v) == "number" and ("%d"):format(v) or go_string(v == nil and "" or v)
      parts[#parts + 1] = pad1 .. go_string(k) .. colon .. text
    end
  end
  return "{" .. nl .. table.concat(parts, "," .. nl) .. nl .. "}"
end

local function hook_state(rec, status)
  local s = { ociVersion = M.OCI_VERSION, id = rec.id, status = status, bundle = rec.bundle,
    annotations = rec.annotations or {} }
  if status ~= "stopped" and rec.pid then s.pid = rec.pid end
  return core.json_encode(s)
end

-- poststart/poststop: run by the caller; failures are logged, never fatal
local function run_hooks(rt, rec, kind, status)
  if type(core.run_hooks) ~= "function" or not rec.has_hooks then return end
  local ok, msg = core.run_hooks(rec.bundle, kind, hook_state(rec, status))
  if not ok then rt:log("warning", ("%s hook: %s"):format(kind, tostring(msg))) end
end

-- ------------------------------------------------------------------------ create

local function names_set(list)
  local t = {}
  for _, n in ipairs(type(list) == "table" and list or {}) do t[n] = true end
  return t
end

-- The kernel raises an ambient capability only if it is both permitted and inheritable; the
-- runtime leaves the others out, as runc 1.1 does (silently: its capability library drops
-- the error), so this is said at debug level only.
local function ambient_note(rt, spec)
  local c = type(spec.process) == "table" and spec.process.capabilities
  if type(c) ~= "table" or type(c.ambient) ~= "table" then return end
  local p, i, left = names_set(c.permitted), names_set(c.inheritable), {}
  for _, n in ipairs(c.ambient) do
    if not (p[n] and i[n]) then left[#left + 1] = n end
  end
  if #left > 0 then
    rt:log("debug", "ambient capabilities not raised (not both permitted and inheritable): " ..
      table.concat(left, " "))
  end
end

-- Every pid in the container's cgroup and in the cgroups below it (runc's GetAllPids: an exec
-- --cgroup or the container itself may have made some), from one hierarchy.
local function all_pids(rec)
  local dirs = cg_dirs(rec)
  if not dirs then return nil end
  local top = dirs.freezer or dirs.devices or dirs.memory or dirs.unified or select(2, next(dirs))
  if not top then return {} end
  local pids = {}
  local function walk(dir, depth)
    local text = core.read_file(dir .. "/cgroup.procs")
    for n in (text or ""):gmatch("%d+") do pids[#pids + 1] = tonumber(n) end
    if depth > 32 then return end
    for _, name in ipairs(core.listdir(dir) or {}) do
      local st = core.stat(dir .. "/" .. name)
      if st and st.type == "directory" then walk(dir .. "/" .. name, depth + 1) end
    end
  end
  if core.stat(top) then walk(top, 0) else return nil end
  return pids
end

-- runc 1.1 warns of a cgroup that already holds processes and goes on; runc 1.2 refuses, and
-- so does the runtime (the error names the path).  The warning is logged first, as 1.1's.
-- Returns whether the cgroup is there.
local function busy_note(rt, path)
  local pids = path and all_pids({ cgroup = path })
  if pids and #pids > 0 then
    rt:log("warning", ("container's cgroup is not empty: %d process(es) found"):format(#pids))
  end
  return pids ~= nil
end

local function getcwd() return core.readlink("/proc/self/cwd") or "." end

local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local cwd = getcwd()
  if p == "." or p == "" then return cwd end
  return (cwd .. "/" .. p):gsub("/%./", "/"):gsub("/%.$", "")
end

local function load_spec(bundle)
  local data = core.read_file(bundle .. "/config.json", 16777216)
  if not data then return fail("JSON specification file config.json not found") end
  local ok, spec = pcall(core.json_decode, data)
  if not ok or type(spec) ~= "table" then
    return fail("config.json: invalid JSON: %s", tostring(spec))
  end
  return spec
end

-- a new pid namespace (not one joined by path)
local function own_pidns(linux)
  for _, ns in ipairs(type(linux.namespaces) == "table" and linux.namespaces or {}) do
    if type(ns) == "table" and ns.type == "pid" and (ns.path == nil or ns.path == "") then
      return true
    end
  end
  return false
end

local function has_mntns(linux)
  for _, ns in ipairs(type(linux.namespaces) == "table" and linux.namespaces or {}) do
    if type(ns) == "table" and ns.type == "mount" then return true end
  end
  return false
end

-- With no mount namespace listed, the init's mounts (a bind of the rootfs, and everything on
-- it) are made in ours, as runc makes them: the record keeps the rootfs (canonical, as the
-- mount table names it) and the mount that was on top of it before, for delete to take down
-- what is above.
local function host_mounts(linux, rootfs)
  if has_mntns(linux) or not rootfs then return nil end
  local real = core.realpath(rootfs)
  local top = real and core.mount_top(real)
  if not top then return nil end
  return { rootfs = real, below = top }
end

local function unstack_host_mounts(rec)
  if type(rec.host_mounts) ~= "table" then return true end
  return sys.mount_unstack(rec.host_mounts.rootfs, rec.host_mounts.below)
end

--- Create container id from the bundle: returns once the init waits on its exec fifo.
-- @tparam table rt from new()
-- @tparam string id
-- @tparam table opts `bundle` (default "."), `pid_file`, `console_socket`, `no_pivot`,
--   `no_new_keyring`, `preserve_fds`, `detach` (false for run in the foreground)
-- @return the record (rec.pid the init's pid), or nil, err
function M.create(rt, id, opts)
  if type(opts) ~= "table" then error("opts: expected table", 2) end
  local ok, err = check_id(id)
  if not ok then return nil, err end
  local bundle = abspath(opts.bundle or ".")
  local bst = core.stat(bundle)
  if not bst then return fail("chdir %s: no such file or directory", bundle) end
  if bst.type ~= "directory" then return fail("chdir %s: not a directory", bundle) end
  local spec
  spec, err = load_spec(bundle)
  if not spec then return nil, err end
  local terminal = type(spec.process) == "table" and spec.process.terminal == true
  local detach = opts.detach ~= false
  if terminal and detach and not opts.console_socket then
    return fail("cannot allocate tty if runc will detach without setting console socket")
  end
  if not terminal and opts.console_socket then
    return fail("cannot use console socket if runc will not detach or allocate tty")
  end

  if terminal and not detach and not opts.console_socket then
    -- as runc: a foreground terminal needs the caller's controlling terminal
    local fd, _, errno = core.open("/dev/tty", "r")
    if not fd then
      local text = core.strerror(errno or 0)
      return fail("open /dev/tty: %s", text:sub(1, 1):lower() .. text:sub(2))
    end
    core.close(fd)
  end

  ok, err = sys.mkdir_p(rt.root, 448)
  if not ok then return nil, err end
  local dir = dir_of(rt, id)
  ok, err = sys.mkdir(dir, 448)
  if not ok and err.sym == "EEXIST" then return nil, errors.exists("container with given ID already exists") end
  if not ok then return nil, err end

  local linux = type(spec.linux) == "table" and spec.linux or {}
  local rec = { id = id, bundle = bundle, created = core.rfc3339(),
    annotations = type(spec.annotations) == "table" and spec.annotations or nil,
    rootfs = type(spec.root) == "table" and type(spec.root.path) == "string"
      and (spec.root.path:sub(1, 1) == "/" and spec.root.path or bundle .. "/" .. spec.root.path)
      or nil,
    cgroup = type(linux.cgroupsPath) == "string" and linux.cgroupsPath ~= "" and linux.cgroupsPath
      or nil,
    has_hooks = type(spec.hooks) == "table" and next(spec.hooks) ~= nil or nil,
    own_pidns = own_pidns(linux) or nil,
    creator = core.getpid(), owner = "" }
  rec.host_mounts = host_mounts(linux, rec.rootfs)
  rec.creator_start = select(2, M.proc_info(rec.creator))
  local st = core.stat(dir)
  if st then rec.owner = M.user_name(st.uid) end
  ok, err = write_record(rt, rec)
  if not ok then
    core.remove_tree(dir)
    return nil, err
  end

  ambient_note(rt, spec)
  -- a cgroup that was there before (a busy or frozen one create refuses, a parent's) is not
  -- this create's to remove when it fails
  local cg_before = rec.cgroup and busy_note(rt, rec.cgroup)
  -- a foreground run with a terminal: as runc, a pty of our own, its master received over a
  -- socket in the container's state directory and copied to our stdio by run
  local sock, listen
  if terminal and not opts.console_socket then
    sock = dir .. "/console.sock"
    listen, err = sys.unix_listen(sock)
    if not listen then
      core.remove_tree(dir)
      return nil, err
    end
  end
  local pid
  pid, err = sys.create(bundle, {
    exec_fifo = dir .. "/exec.fifo",
    pid_file = opts.pid_file and abspath(opts.pid_file) or nil,
    no_pivot = opts.no_pivot or false,
    preserve_fds = opts.preserve_fds or 0,
    console_socket = opts.console_socket and abspath(opts.console_socket) or sock,
    id = id,
  })
  if sock then core.unlink(sock) end
  local master
  if pid and listen then
    master, err = sys.recv_fd(listen)
    if not master then
      core.kill(pid, 9)
      core.waitpid(pid)
      unstack_host_mounts(rec)
      pid = nil
    else
      -- the caller's window size before the process starts (tty_run follows it from then)
      local rows, cols = core.tty_get_size(0)
      if not rows then rows, cols = core.tty_get_size(1) end
      if rows and rows > 0 then core.tty_set_size(master, rows, cols) end
    end
  end
  if listen then core.close(listen) end
  if not pid then
    core.remove_tree(dir)
    if rec.cgroup and not cg_before then cgroups.delete(rec.cgroup) end
    return nil, err
  end
  rec.pid = pid
  rec.start_time = select(2, M.proc_info(pid))
  rec.cgroup_dirs = rec.cgroup and cgroups.dirs(rec.cgroup) or nil
  rec.creator, rec.creator_start = nil, nil
  ok, err = write_record(rt, rec)
  if not ok then
    if master then core.close(master) end
    core.kill(pid, 9)
    core.waitpid(pid)
    unstack_host_mounts(rec)
    core.remove_tree(dir)
    if rec.cgroup and not cg_before then cgroups.delete(rec.cgroup) end
    return nil, err
  end
  rt:log("debug", ("created container %s: init pid %d"):format(id, pid))
  return rec, master
end

--- Start a created container: its init execs the process; poststart hooks follow.
-- @return true, or nil, err
function M.start(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status == "stopped" then return fail("cannot start a container that has stopped") end
  if status == "running" or status == "paused" then
    return fail("cannot start an already running container")
  end
  if status ~= "created" then return fail("cannot start a container in the %s state", status) end
  local ok, err = sys.start(dir_of(rt, id) .. "/exec.fifo")
  if not ok then return nil, err end
  run_hooks(rt, rec, "poststart", "running")
  return true
end

-- ------------------------------------------------------------------- kill, delete

-- runc's signalAllProcesses: freeze (so that nothing forks away meanwhile), signal every
-- process of the cgroup and of the cgroups below it, thaw.  The thaw is unconditional, as
-- runc's: a paused container is running after a kill --all.
local function signal_all(rec, sig)
  if not rec.cgroup then
    return fail("cannot signal all processes: the container has no cgroup (linux.cgroupsPath)")
  end
  local froze = cgroups.freeze(rec.cgroup)
  local pids = all_pids(rec)
  if not pids then
    if froze then cgroups.thaw(rec.cgroup) end
    return fail("cannot signal all processes: the cgroup %s is gone", rec.cgroup)
  end
  for _, p in ipairs(pids) do core.kill(p, sig) end
  cgroups.thaw(rec.cgroup)
  return true
end

--- Send a signal to the init (or with all, to every process of the container's cgroup).
-- @tparam table rt
-- @tparam string id
-- @tparam[opt] number|string sig default SIGTERM
-- @tparam[opt] boolean all
-- @return true, or nil, err
function M.kill(rt, id, sig, all)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  local err
  if type(sig) == "string" then
    sig, err = M.parse_signal(sig)
    if not sig then return nil, err end
  end
  sig = sig or 15
  if all then
    -- as runc: a stopped container whose cgroup is gone has nothing left to signal
    if status == "stopped" and rec.cgroup and not all_pids(rec) then return true end
    return signal_all(rec, sig)
  end
  if status == "stopped" or status == "creating" then return fail("container not running") end
  -- a paused container's init may be gone (it is still "paused"): its pid is not signalled
  -- then, lest it name another process now
  if alive(rec.pid, rec.start_time) then
    local ok, kerr = sys.kill(rec.pid, sig)
    if not ok then return fail("unable to signal init: %s", tostring(kerr)) end
  end
  -- as runc: a frozen process dies only once thawed, so SIGKILL thaws (other signals wait)
  if status == "paused" and sig == 9 then cgroups.thaw(rec.cgroup) end
  return true
end

local function destroy(rt, rec)
  if rec.pid and alive(rec.pid, rec.start_time) then
    core.kill(rec.pid, 9)
    if not wait_gone(rec.pid, rec.start_time, 10000) then
      return fail("container init %d still alive after SIGKILL", rec.pid)
    end
  end
  -- as runc's destroy: what is left in the cgroup dies too when the container has no pid
  -- namespace of its own (with one, the kernel killed them all with the init); the state goes
  -- even when the cgroup cannot, and the first error is the result
  local err
  if rec.cgroup then
    if not rec.own_pidns then signal_all(rec, 9) end
    local ok, cerr_ = cgroups.delete(rec.cgroup)
    if not ok then err = cerr_ end
  end
  local ok, uerr = unstack_host_mounts(rec)
  if not ok and not err then err = uerr end
  local rerr
  ok, rerr = sys.remove_tree(dir_of(rt, rec.id))
  if not ok and not err then err = rerr end
  run_hooks(rt, rec, "poststop", "stopped")
  if err then return nil, err end
  return true
end

--- Delete a container: its cgroup and state.  One that is not stopped only with force (its
-- processes are killed then).
-- @return true, or nil, err
function M.delete(rt, id, force)
  local ok, err = check_id(id)
  if not ok then return nil, err end
  local rec, status = load(rt, id)
  if not rec then
    -- an aborted create may leave a directory with no record
    if core.stat(dir_of(rt, id)) then core.remove_tree(dir_of(rt, id)) end
    if force then return true end
    return nil, status
  end
  -- the runtime-spec: deleting a container that is not stopped is an error (a created one too,
  -- as crun; runc 1.1 kills a created one, which the validation suite refuses)
  if status ~= "stopped" then
    if not force then
      return fail("cannot delete container %s that is not stopped: %s", id, status)
    end
    if status == "paused" and rec.cgroup then cgroups.thaw(rec.cgroup) end
  end
  return destroy(rt, rec)
end

-- ------------------------------------------------------------------ list, ps, pause

local users
--- The user name of uid (from the host's /etc/passwd), or "#UID".
function M.user_name(uid)
  if not users then
    users = {}
    for line in (core.read_file("/etc/passwd", 1048576) or ""):gmatch("[^\n]+") do
      local name, u = line:match("^([^:]*):[^:]*:(%d+):")
      if name and not users[tonumber(u)] then users[tonumber(u)] = name end
    end
  end
  return users[uid] or ("#" .. tostring(uid))
end

--- Every container under the root, as runc's list: an array of state tables (sorted by id).
function M.list(rt)
  local names = core.listdir(rt.root)
  local out = {}
  if not names then return out end
  table.sort(names)
  for _, id in ipairs(names) do
    local rec = check_id(id) and read_record(rt, id)
    if rec then
      local st = oci_state(rt, rec, M.status_of(rt, rec))
      local s = core.stat(dir_of(rt, id))
      if s then st.owner = M.user_name(s.uid) end
      out[#out + 1] = st
    end
  end
  return out
end

--- The pids of the container's processes (its cgroup's), or nil, err.
function M.ps(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if not rec.cgroup then
    if status == "stopped" then return {} end
    return { rec.pid }
  end
  local pids = cgroups.processes(rec.cgroup)
  return pids or {}
end

--- The host's `ps ARGS...` (default `-ef`), whose lines `ps` filters to the container's pids:
-- its output, or nil, err.  The arguments go to ps as they are, as runc passes them; a ps that
-- fails is runc's "exit status N: OUTPUT".
function M.ps_output(args)
  local argv = { "ps" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  if #argv == 1 then argv[2] = "-ef" end
  local r, err = sys.spawn({ argv = argv })
  if not r then return nil, err end
  if r.code ~= 0 then
    return fail("exit status %d: %s", r.code, (r.stdout or "") .. (r.stderr or ""))
  end
  return r.stdout
end

--- Freeze every process of a running container.
function M.pause(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status ~= "running" and status ~= "created" then return fail("container not running") end
  if not rec.cgroup then return fail("cannot pause: the container has no cgroup") end
  return cgroups.freeze(rec.cgroup)
end

--- Thaw a paused container.
function M.resume(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status ~= "paused" then return fail("container not paused") end
  return cgroups.thaw(rec.cgroup)
end

-- ------------------------------------------------------------- update, events

-- the statistics event of a container's cgroup, whatever its status
local function stats_event(rec)
  if not rec.cgroup then return fail("no statistics: the container has no cgroup") end
  local dirs, err = cgroups.dirs(rec.cgroup)
  if not dirs then return nil, err end
  local s
  s, err = cgroups.stat(rec.cgroup)
  if not s then return nil, err end
  return RU.stats_event(rec.id, dirs, s, dirs.memory == nil)
end

--- The container's statistics in runc's events format (`runc events --stats`):
-- `{type="stats", id=, data={cpu=, cpuset=, memory=, pids=, blkio=, hugetlb=, ...}}`, with
-- the field names of runc's types.Stats (ctr.cmd.runc_update.stats_event).
-- @return table (encode it with ctr.json, which keeps runc's field order), or nil, err
function M.stats(rt, id)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status == "stopped" then return fail("container with id %s is not running", id) end
  return stats_event(rec)
end

-- how often events looks at the OOM kill count (runc waits on an eventfd; a read of one
-- cgroup file ten times a second costs as little and works on v1 and v2 alike)
local OOM_POLL_MS = 100

--- runc's `events`: a stats event every `interval` seconds (the first after one interval) and
-- an `{type="oom", id=}` event for each OOM kill in the container's cgroup, passed to emit,
-- until the cgroup is removed (the container deleted) or emit returns false.
-- @tparam table rt
-- @tparam string id
-- @tparam number interval seconds
-- @tparam function emit called with each event (a table)
-- @return true, or nil, err
function M.events(rt, id, interval, emit)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if type(interval) ~= "number" or interval <= 0 then
    return fail("duration interval must be greater than 0")
  end
  if status == "stopped" then return fail("container with id %s is not running", id) end
  local dirs = rec.cgroup and cgroups.dirs(rec.cgroup)
  local kills = dirs and RU.oom_kills(dirs) or 0
  local tick = core.monotime() + interval
  while true do
    local now = core.monotime()
    if now >= tick then
      local ev, err = stats_event(rec)
      if ev then
        if emit(ev) == false then return true end
      else
        rt:log("error", tostring(err))
      end
      tick = math.max(tick + interval, now)
    end
    if dirs then
      local k = RU.oom_kills(dirs)
      if k == nil then return true end
      for _ = kills + 1, k do
        if emit(RU.oom_event(id)) == false then return true end
      end
      kills = math.max(kills, k)
    elseif not alive(rec.pid, rec.start_time) then
      return true
    end
    sleep_ms(math.max(1, math.min(OOM_POLL_MS, (tick - core.monotime()) * 1000)))
  end
end

--- Change the resources of a container's cgroup (runc's `update`): `r` is what
-- ctr.cmd.runc_update.from_flags or from_json made.  Values that are 0 or "" stay as they
-- are; the result is recorded in the container's state (a later update starts from it).  A
-- failed write is undone as runc undoes it (the earlier values written again).
-- @return true, or nil, err ("container not running" for a stopped container)
function M.update(rt, id, r)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status == "stopped" then return fail("container not running") end
  if not rec.cgroup then
    return fail("cannot update: the container has no cgroup (linux.cgroupsPath)")
  end
  if r.unified and cgroups.mode() ~= "v2" then
    return fail("invalid configuration: cannot use unified on cgroup v1")
  end
  local old = rec.resources
  if type(old) ~= "table" then
    local spec = load_spec(rec.bundle)
    old = RU.recorded(spec and type(spec.linux) == "table" and spec.linux.resources or nil)
  end
  local write, new = RU.plan(old, r)
  if next(write) then
    local ok, err = cgroups.update(rec.cgroup, write)
    if not ok then
      local back = RU.plan(RU.recorded(nil), old)
      local bok, berr = true, nil
      if next(back) then bok, berr = cgroups.update(rec.cgroup, back) end
      if not bok then
        rt:log("warning", ("Setting back cgroup configs failed due to error: %s, your " ..
          "state.json and actual configs might be inconsistent."):format(tostring(berr)))
      end
      return nil, err
    end
  end
  rec.resources = new
  return write_record(rt, rec)
end

-- ----------------------------------------------------------------------------- run

--- Create, start and wait (foreground; signals forwarded to the container), then delete:
-- runc's `run`.  With opts.detach it returns once started.
-- @return the exit code (128+N for signal N), or nil, err
function M.run(rt, id, opts)
  local rec, master = M.create(rt, id, { bundle = opts.bundle, pid_file = opts.pid_file,
    console_socket = opts.console_socket, no_pivot = opts.no_pivot,
    preserve_fds = opts.preserve_fds, detach = opts.detach or false })
  if not rec then return nil, master end
  local ok, err = M.start(rt, id)
  if not ok then
    if master then core.close(master) end
    core.kill(rec.pid, 9)
    core.waitpid(rec.pid)
    destroy(rt, rec)
    return nil, err
  end
  if opts.detach then return 0 end
  local code, info
  if master then
    code, info = sys.tty_run(master, rec.pid, { forward = true, stdin = 0, stdout = 1 })
    core.close(master)
  else
    code, info = sys.wait(rec.pid, { forward = true })
  end
  if code == nil then return nil, info end
  local dok, derr = destroy(rt, rec)
  if not dok then rt:log("warning", tostring(derr)) end
  return code
end

-- Go's strconv.Atoi, with its message
local function atoi(v, what)
  local n = type(v) == "string" and v:match("^[+-]?%d+$") and tonumber(v)
  if not n then
    return fail('parsing %s as int for %s failed: strconv.Atoi: parsing "%s": invalid syntax',
      tostring(v), what, tostring(v))
  end
  return n % 4294967296
end

-- runc's validateProcessSpec
local function validate_process(proc)
  if type(proc) ~= "table" then return fail("process property must not be empty") end
  if type(proc.cwd) ~= "string" or proc.cwd == "" then
    return fail("Cwd property must not be empty")
  end
  if proc.cwd:sub(1, 1) ~= "/" then return fail("Cwd must be an absolute path") end
  if type(proc.args) ~= "table" or #proc.args == 0 then return fail("args must not be empty") end
  if type(proc.selinuxLabel) == "string" and proc.selinuxLabel ~= "" then
    -- ctrlua has no SELinux support: as runc where SELinux is off
    return fail("selinux label is specified in config, but selinux is disabled or not supported")
  end
  return proc
end

--- The process an exec runs, as runc's getProcess builds it: the JSON text of --process as
-- it is (every other flag is then ignored, as runc ignores them), or the container's spec
-- process with the fields of `p` (args; env appended; cwd, terminal, user ("UID[:GID]", the
-- spec's gid kept without one), additionalGids (appended), noNewPrivileges when given,
-- apparmorProfile and selinuxLabel when set; capabilities added to every set).
local function exec_process(rec, p)
  if type(p) == "string" then
    local ok, t, msg = pcall(core.json_decode, p)
    if not ok or type(t) ~= "table" then
      return fail("process: invalid JSON: %s", tostring(ok and msg or t))
    end
    return validate_process(t)
  end
  local spec, err = load_spec(rec.bundle)
  if not spec then return nil, err end
  local proc = type(spec.process) == "table" and spec.process or {}
  proc.args = core.json_array(p.args)
  if p.cwd and p.cwd ~= "" then proc.cwd = p.cwd end
  if p.apparmorProfile and p.apparmorProfile ~= "" then proc.apparmorProfile = p.apparmorProfile end
  if p.selinuxLabel and p.selinuxLabel ~= "" then proc.selinuxLabel = p.selinuxLabel end
  if p.caps and #p.caps > 0 then
    proc.capabilities = proc.capabilities or {}
    for _, set in ipairs({ "bounding", "effective", "permitted", "ambient" }) do
      local have, list = {}, {}
      for _, c in ipairs(proc.capabilities[set] or {}) do have[c] = true list[#list + 1] = c end
      for _, c in ipairs(p.caps) do if not have[c] then list[#list + 1] = c end end
      proc.capabilities[set] = core.json_array(list)
    end
  end
  local env = {}
  for _, kv in ipairs(proc.env or {}) do env[#env + 1] = kv end
  for _, kv in ipairs(p.env or {}) do env[#env + 1] = kv end
  proc.env = core.json_array(env)
  proc.terminal = p.terminal or false
  if p.noNewPrivileges ~= nil then proc.noNewPrivileges = p.noNewPrivileges end
  proc.user = type(proc.user) == "table" and proc.user or { uid = 0, gid = 0 }
  if type(p.user) == "table" then
    proc.user.uid, proc.user.gid = p.user.uid, p.user.gid or proc.user.gid
  elseif type(p.user) == "string" and p.user ~= "" then
    local u, g = p.user:match("^([^:]*):(.*)$")
    if not u then u = p.user end
    if g then
      local gid, gerr = atoi(g, "gid")
      if not gid then return nil, gerr end
      proc.user.gid = gid
    end
    local uid, uerr = atoi(u, "uid")
    if not uid then return nil, uerr end
    proc.user.uid = uid
  end
  if p.additionalGids and #p.additionalGids > 0 then
    local gids = {}
    for _, g in ipairs(proc.user.additionalGids or {}) do gids[#gids + 1] = g end
    for _, g in ipairs(p.additionalGids) do
      if g < 0 then return fail("additional-gids must be a positive number %d", g) end
      gids[#gids + 1] = g
    end
    proc.user.additionalGids = core.json_array(gids)
  end
  return validate_process(proc)
end

-- runc's getSubCgroupPaths and the checks of its newSetnsProcess: each --cgroup is
-- "[CONTROLLERS:]PATH" (several controllers comma-separated; a bare PATH, for every
-- hierarchy, only alone); PATH stays below the init's cgroup; a controller must be one the
-- init has.  Returns the entries for ctr.core exec ("CONTROLLER:SUB", ":SUB"), or nil, err.
local function sub_cgroups(init, args)
  if not args or #args == 0 then return nil end
  local paths = {}
  for _, c in ipairs(args) do
    local parts = {}
    for x in (c .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = x end
    if #parts > 2 then return fail("invalid --cgroup argument: %s", c) end
    if #parts == 1 then
      if #args ~= 1 then
        return fail("invalid --cgroup argument: %s (missing <controller>: prefix)", c)
      end
      paths[#paths + 1] = { "", c }
    else
      for ctrl in (parts[1] .. ","):gmatch("([^,]*),") do paths[#paths + 1] = { ctrl, parts[2] } end
    end
  end
  local have = {}
  for line in (core.read_file("/proc/" .. init .. "/cgroup") or ""):gmatch("[^\n]+") do
    local ctrls = line:match("^%d+:([^:]*):")
    for x in (ctrls or ""):gmatch("[^,]+") do have[x] = true end
  end
  local out = {}
  for _, e in ipairs(paths) do
    local ctrl, add = e[1], e[2]
    if ctrl ~= "" and not have[ctrl] then
      return fail("unable to create new parent process: unknown controller %s in SubCgroupPaths",
        ctrl)
    end
    local stack = {}
    for part in add:gmatch("[^/]+") do
      if part == ".." then
        if #stack == 0 then
          return fail("unable to create new parent process: %s is not a sub cgroup path", add)
        end
        stack[#stack] = nil
      elseif part ~= "." then
        stack[#stack + 1] = part
      end
    end
    out[#out + 1] = ctrl .. ":" .. table.concat(stack, "/")
  end
  return out
end

--- Run a new process in a running container (runc's `exec`): it joins the init's namespaces
-- and cgroup (or sub-cgroups of it) and runs with the given process (see ctr.core exec).
-- The checks are runc's, in its order.
-- @tparam table rt from new()
-- @tparam string id the container
-- @tparam table opts `process` (a table of the flags: args, env, cwd, terminal, user
-- ("UID[:GID]"), additionalGids, noNewPrivileges, apparmorProfile, selinuxLabel, caps; or the
-- JSON text of a process), or `process_file` (runc's --process: read once the container is
-- found), `detach`, `pid_file`, `console_socket`, `preserve_fds`, `ignore_paused`,
-- `cgroup` (runc's --cgroup arguments)
-- @return the process's exit code (0 when detached), or nil, err
function M.exec(rt, id, opts)
  local rec, status = load(rt, id)
  if not rec then return nil, status end
  if status == "stopped" then return fail("cannot exec in a stopped container") end
  if status == "paused" and not opts.ignore_paused then
    return fail("cannot exec in a paused container (use --ignore-paused to override)")
  end
  if status == "creating" then return fail("cannot exec in a container that is being created") end
  local process = opts.process
  if opts.process_file then
    local data, _, errno = core.read_file(opts.process_file, 16777216)
    if not data then
      local text = core.strerror(errno or 0)
      return fail("open %s: %s", opts.process_file, text:sub(1, 1):lower() .. text:sub(2))
    end
    process = data
  elseif type(process) == "table" and (type(process.args) ~= "table" or #process.args == 0) then
    return fail("process args cannot be empty")
  end
  local proc, perr = exec_process(rec, process)
  if not proc then return nil, perr end
  local subs, serr = sub_cgroups(rec.pid, opts.cgroup)
  if serr then return nil, serr end
  if proc.terminal and opts.detach and not opts.console_socket then
    return fail("cannot allocate tty if runc will detach without setting console socket")
  end
  if not proc.terminal and opts.console_socket then
    return fail("cannot use console socket if runc will not detach or allocate tty")
  end
  local sock, listen
  if proc.terminal and not opts.console_socket then
    -- as runc: a pty of our own, copied to our stdio until the process exits
    if type(core.tty_run) ~= "function" then
      return fail("exec --tty without --console-socket is not supported yet by ctrlua-runc")
    end
    sock = dir_of(rt, id) .. "/exec-" .. core.getpid() .. ".sock"
    core.unlink(sock)
    local err
    listen, err = sys.unix_listen(sock)
    if not listen then return nil, err end
  end
  local pid, err = sys.exec(rec.pid, proc, {
    bundle = rec.bundle, id = id,
    pid_file = opts.pid_file and abspath(opts.pid_file) or nil,
    console_socket = opts.console_socket and abspath(opts.console_socket) or sock,
    preserve_fds = tonumber(opts.preserve_fds) or 0,
    sub_cgroups = subs,
  })
  if sock then core.unlink(sock) end
  if not pid then
    if listen then core.close(listen) end
    return nil, err
  end
  local master
  if listen then
    local rerr
    master, rerr = sys.recv_fd(listen)
    core.close(listen)
    if not master then
      core.kill(pid, 9)
      core.waitpid(pid)
      return nil, rerr
    end
  end
  if opts.detach then return 0 end
  local code, info
  if master then
    code, info = sys.tty_run(master, pid, { forward = true, stdin = 0, stdout = 1 })
    core.close(master)
  else
    code, info = sys.wait(pid, { forward = true })
  end
  if code == nil then return nil, info end
  return code
end

-- ------------------------------------------------------------------ features, spec

local function arr(t) return core.json_array(t) end

local MOUNT_OPTIONS = { "acl", "async", "atime", "bind", "defaults", "dev", "diratime",
  "dirsync", "exec", "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev",
  "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
  "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rro",
  "rrw", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
  "suid", "symfollow", "sync", "tmpcopyup", "unbindable" }

local CAPS = { "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
  "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
  "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE" }

--- The runtime-spec features document (runc's `features`).
function M.features()
  local mode = cgroups.mode() or "none"
  return {
    ociVersionMin = "1.0.0", ociVersionMax = M.OCI_VERSION,
    hooks = arr({ "prestart", "createRuntime", "createContainer", "startContainer",
      "poststart", "poststop" }),
    mountOptions = arr(MOUNT_OPTIONS),
    linux = {
      namespaces = arr({ "cgroup", "ipc", "mount", "network", "pid", "user", "uts" }),
      capabilities = arr(CAPS),
      cgroup = { v1 = mode == "v1" or mode == "hybrid", v2 = mode == "v2" or mode == "hybrid",
        systemd = false, systemdUser = false },
      seccomp = {
        enabled = true,
        actions = arr({ "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
          "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
          "SCMP_ACT_TRACE", "SCMP_ACT_TRAP" }),
        operators = arr({ "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
          "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE" }),
        archs = arr({ "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS",
          "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC",
          "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390",
          "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64" }),
      },
      apparmor = { enabled = false },
      selinux = { enabled = false },
    },
    annotations = { ["org.ctrlua.runc.version"] = M.VERSION },
  }
end

--- runc's default spec (`runc spec`), or with rootless its rootless variant.
function M.default_spec(rootless)
  local caps = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" }
  local spec = {
    ociVersion = M.OCI_VERSION,
    process = {
      terminal = true, user = { uid = 0, gid = 0 }, args = arr({ "sh" }),
      env = arr({ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=xterm" }),
      cwd = "/",
      capabilities = { bounding = arr(caps), effective = arr(caps), permitted = arr(caps),
        ambient = arr(caps) },
      rlimits = arr({ { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 } }),
      noNewPrivileges = true,
    },
    root = { path = "rootfs", readonly = true },
    hostname = "runc",
    mounts = arr({
      { destination = "/proc", type = "proc", source = "proc" },
      { destination = "/dev", type = "tmpfs", source = "tmpfs",
        options = arr({ "nosuid", "strictatime", "mode=755", "size=65536k" }) },
      { destination = "/dev/pts", type = "devpts", source = "devpts",
        options = arr({ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" }) },
      { destination = "/dev/shm", type = "tmpfs", source = "shm",
        options = arr({ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" }) },
      { destination = "/dev/mqueue", type = "mqueue", source = "mqueue",
        options = arr({ "nosuid", "noexec", "nodev" }) },
      { destination = "/sys", type = "sysfs", source = "sysfs",
        options = arr({ "nosuid", "noexec", "nodev", "ro" }) },
      { destination = "/sys/fs/cgroup", type = "cgroup", source = "cgroup",
        options = arr({ "nosuid", "noexec", "nodev", "relatime", "ro" }) },
    }),
    linux = {
      resources = { devices = arr({ { allow = false, access = "rwm" } }) },
      namespaces = arr({ { type = "pid" }, { type = "network" }, { type = "ipc" },
        { type = "uts" }, { type = "mount" } }),
      maskedPaths = arr({ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/sys/firmware", "/proc/scsi" }),
      readonlyPaths = arr({ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
        "/proc/sysrq-trigger" }),
    },
  }
  -- runc adds a cgroup namespace on a cgroup v2 host only
  if cgroups.mode() == "v2" then table.insert(spec.linux.namespaces, { type = "cgroup" }) end
  if rootless then
    -- runc's specconv.ToRootless
    local ns = {}
    for _, n in ipairs(spec.linux.namespaces) do
      if n.type ~= "network" and n.type ~= "user" then ns[#ns + 1] = n end
    end
    ns[#ns + 1] = { type = "user" }
    spec.linux.namespaces = arr(ns)
    spec.linux.uidMappings = arr({ { hostID = core.geteuid(), containerID = 0, size = 1 } })
    spec.linux.gidMappings = arr({ { hostID = core.geteuid(), containerID = 0, size = 1 } })
    local mounts = {}
    for _, m in ipairs(spec.mounts) do
      if m.destination == "/sys" then
        mounts[#mounts + 1] = { destination = "/sys", type = "none", source = "/sys",
          options = arr({ "rbind", "nosuid", "noexec", "nodev", "ro" }) }
      elseif m.type ~= "cgroup" then
        local o = {}
        for _, opt in ipairs(m.options or {}) do
          if not opt:match("^gid=") and not opt:match("^uid=") then o[#o + 1] = opt end
        end
        if m.options then m.options = arr(o) end
        mounts[#mounts + 1] = m
      end
    end
    spec.mounts = arr(mounts)
    spec.linux.resources = nil
  end
  return spec
end

--- JSON with two-space indentation, as Go's json.MarshalIndent writes it.
function M.json_indent(v)
  local s = core.json_encode(v, true)
  s = s:gsub("\n(\t+)", function(t) return "\n" .. ("  "):rep(#t) end)
  s = s:gsub('":\t', '": ')
  return s
end

--- Write the default spec to BUNDLE/config.json (refusing to overwrite one).
function M.spec(bundle, rootless)
  bundle = bundle or "."
  local path = bundle .. "/config.json"
  if core.stat(path) then return fail("File %s exists. Remove it first", "config.json") end
  return sys.write_file(path, M.json_indent(M.default_spec(rootless)) .. "\n",
    { mode = 438, noreplace = true })
end

--- Whether systemd runs this host (as runc and sd_booted ask: /run/systemd/system exists).
function M.systemd_running()
  local st = core.stat("/run/systemd/system")
  return st ~= nil and st.type == "directory"
end

M.sleep_ms = sleep_ms
return M
