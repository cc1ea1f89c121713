--- Tasks: a container's running init, as containerd's Task.
-- A task's files are renamed into place whole but not fsynced: they describe processes that do
-- not outlive the machine (on most hosts STATE is a tmpfs), as runc's state.json.
-- A task lives in STATE/NAMESPACE/ID/, which is also its OCI bundle: task.json (what a later
-- ctrlua needs to know: the ctrlua that made the task, its cgroup, its IO), config.json (the container's spec, written once), rootfs/ (the snapshot
-- mounted there), exec.fifo (until start) and `status`, a JSON record {status, pid, start_time,
-- exit_code, exited_at} written atomically.  The state directory is made under a temporary
-- name with task.json in it and renamed into place exclusively, so two tasks for one container
-- can never both start, and every task directory names its owner.  Status is checked against
-- the kernel: a "running" record whose pid is gone, or is another process (its start time
-- differs), is reported as stopped.
--
-- Every state a crash can leave is a task (docs/crash-consistency.md): one with no status yet
-- (cut short while being made) is "stopped" once nothing of it runs, one whose status cannot be
-- read is "unknown" while something of it runs (found by its cgroup and its root); `delete` removes a stopped
-- one, `delete({force = true})` one in any state, and `orphaned` tells `ctrlua gc` which ones
-- nobody will ever delete.
-- @module ctr.tasks
-- ctr.cio, ctr.cni, ctr.mount and ctr.runtime are required where they are used: `tasks kill`
-- and `tasks delete` (a process each) need none of them, and each load costs
local cgroups = require("ctr.cgroups")
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local signals = require("ctr.signals")
local fault = require("ctr.store.fault")
local owner = require("ctr.store.owner")
local records = require("ctr.store.records")

local M = {}

local Task = {}
Task.__index = Task
M.Task = Task

-- The status record: st, or nil, err (NOT_FOUND, CORRUPT naming the file).
local function read_status(dir)
  return records.read(dir .. "/status", records.task_status, { cap = 65536 })
end

local function write_status(dir, st)
  local ok, err = sys.write_file(dir .. "/status", core.json_encode(st), { mode = 384, sync = false })
  if not ok then return nil, err end
  return true
end

local function dirname(p) return (p:match("^(.*)/[^/]*$")) end

--- The monitor binary (build/ctrlua-monitor beside the ctrlua executable, or $CTRLUA_MONITOR),
-- or nil: then the monitor supervises from a fork of ctrlua itself (same code, larger RSS).
function M.monitor_bin()
  local cands = { core.getenv("CTRLUA_MONITOR") }
  local exe = core.readlink("/proc/self/exe")
  if exe then cands[#cands + 1] = dirname(exe) .. "/ctrlua-monitor" end
  local bin = core.getenv("CTRLUA_BIN")
  if bin then cands[#cands + 1] = dirname(bin) .. "/ctrlua-monitor" end
  for _, c in ipairs(cands) do
    local st = core.stat(c, true)
    if st and st.type == "file" then return c end
  end
  return nil
end

--- Append an event to STATE/NAMESPACE/events.log, one JSON line (containerd's topics:
-- /tasks/create, /tasks/start, /tasks/exit, /tasks/delete, /tasks/paused, /tasks/resumed,
-- /tasks/exec-added, /tasks/oom).  The monitor appends /tasks/exit of detached tasks itself.
-- The log is bounded: past 1 MiB it becomes events.log.1 (the one before is dropped) and a
-- new one starts, under the log's lock (see csrc/monitor/monitor.h); M.read_events reads both.
function M.event(client, topic, id, fields)
  local ev = { time = core.rfc3339(), namespace = client.namespace, topic = topic, id = id }
  for k, v in pairs(fields or {}) do ev[k] = v end
  -- an event is a record of what happened, not part of it: a failure to log is not the
  -- operation's
  core.events_append(client:state_dir() .. "/events.log", core.json_encode(ev) .. "\n")
end

--- The events logged since `pos` (nil: all of them, the rotated log's first): the text (JSON
-- lines; the last may be incomplete, its rest comes next time) and the position to read on
-- from, or nil, err.
function M.read_events(client, pos)
  local text, ino, offset = sys.events_read(client:state_dir() .. "/events.log",
    pos and pos.ino, pos and pos.offset)
  if not text then return nil, ino end -- ino: the error
  return text, { ino = ino, offset = offset }
end

--- Watch STATE/NAMESPACE/events.log for new events (inotify on the namespace's directory, so
-- a log that does not exist yet is seen when it is created).
-- @return a watcher: `w:wait([ms])` blocks until the log changed (true) or ms milliseconds
-- passed (false; no limit by default), or returns nil, err; `w:close()`.  Or nil, err.
function M.watch_events(client)
  local dir = client:state_dir()
  local ok, err = sys.mkdir_p(dir, 457) -- 0711, as new_task makes it
  if not ok then return nil, err end
  local fd
  fd, err = sys.inotify_watch(dir)
  if not fd then return nil, err end
  local w = {}
  function w.wait(_, ms)
    local deadline = ms and ms >= 0 and core.monotime() + ms / 1000 or nil
    while true do
      local left = deadline and math.max(0, (deadline - core.monotime()) * 1000) or -1
      local ready, perr = sys.poll({ fd }, left)
      if not ready then return nil, perr end
      if not ready[fd] then return false end
      local names, rerr = sys.inotify_read(fd)
      if not names then return nil, rerr end
      for _, name in ipairs(names) do
        if name == "events.log" then return true end
      end
    end
  end
  function w.close() core.close(fd) end
  return w
end

-- task.json: the table (empty when there is none or it cannot be read), and the error.
local function read_extra(dir)
  local extra, err = records.read(dir .. "/task.json", records.task, { cap = 65536 })
  if not extra then return {}, err end
  return extra
end

local function write_extra(dir, extra)
  local ok, err = sys.write_file(dir .. "/task.json", core.json_encode(extra), { mode = 384, sync = false })
  if not ok then return nil, err end
  return true
end

--- The start time of a process (field 22 of /proc/PID/stat, in clock ticks), or nil when gone.
-- With the pid it identifies a process across pid reuse.
M.proc_start_time = owner.start_time

--- Is pid a zombie (exited, not yet reaped)?  A reparented init whose new parent does not
-- reap stays one: it is stopped all the same.
M.proc_zombie = owner.zombie

--- The exit code of a zombie, as a run reports it (128+N for signal N), from its wait status
-- in field 52 of /proc/PID/stat (exit_code; the kernel keeps it until the zombie is reaped);
-- nil when pid is not a zombie.  An init whose monitor was killed is reparented, and a pid 1
-- that does not reap leaves it so: its status is still known.
function M.proc_zombie_exit(pid)
  local st = core.proc_stat(pid)
  if not st or st.state ~= "Z" then return nil end
  return st.exit_code, st.signal
end

-- owner.alive's answer from one read of /proc/PID/stat (it reads it twice): this is asked on
-- every status
local function alive(st)
  if not st.pid or st.pid <= 0 then return false end
  local ps = core.proc_stat(st.pid)
  if not ps or (st.start_time ~= nil and ps.start_time ~= st.start_time) then return false end
  return ps.state ~= "Z" and ps.state ~= "X"
end

local function is_dir(path)
  local st = core.stat(path, true)
  return st ~= nil and st.type == "directory"
end

-- The cgroup of a task whose task.json is gone or unreadable: its bundle's.
local function bundle_cgroup(dir)
  local data = core.read_file(dir .. "/config.json", 16 * 1024 * 1024)
  local ok, spec = pcall(core.json_decode, data or "")
  local p = ok and type(spec) == "table" and type(spec.linux) == "table" and spec.linux.cgroupsPath
  return type(p) == "string" and p ~= "" and p or nil
end

-- What runs of a task that no readable status describes: the processes whose root is its
-- rootfs or that its cgroup holds, the first of them to have started (the init: it made the
-- others), and its monitor (whose working directory is the task's).  The records name these
-- whenever they can be read; this is the way to them when they cannot.
local function find_processes(dir, cgroup)
  -- by inode, not by path: a container that pivoted into its root names it "/"
  local function id_of(path)
    local st = core.stat(path, true)
    return st and (st.dev .. ":" .. st.ino)
  end
  local rootfs, here = id_of(dir .. "/rootfs"), id_of(dir)
  local found = { pids = {} }
  local seen = {}
  local me = core.getpid()
  local function add(pid)
    if pid ~= me and not seen[pid] and not owner.zombie(pid) then
      seen[pid] = true
      found.pids[#found.pids + 1] = pid
    end
  end
  for _, name in ipairs(core.listdir("/proc") or {}) do
    local pid = tonumber(name:match("^%d+$"))
    if pid then
      local root = rootfs and id_of("/proc/" .. name .. "/root")
      if root and root == rootfs then
        add(pid)
      elseif pid ~= me and here and id_of("/proc/" .. name .. "/cwd") == here and not owner.zombie(pid) then
        found.monitor = pid
      end
    end
  end
  if cgroup then
    for _, p in ipairs(cgroups.processes(cgroup) or {}) do add(p) end
  end
  for _, p in ipairs(found.pids) do
    local t = owner.start_time(p)
    if t and p ~= found.monitor and (not found.start_time or t < found.start_time) then
      found.init, found.start_time = p, t
    end
  end
  return found
end

--- The status of container id's task: "created", "running", "paused", "stopped", "unknown"
-- (its status record cannot be read and its init, or the ctrlua making it, still runs), or nil
-- (no task).  The second value is the status record (or, without one, what task.json and the
-- processes found in the task's cgroup and root tell);
-- `st.unreadable` is the error of a status record that cannot be read, `st.unknown_exit` is
-- set when the task ended without its exit being recorded.
function M.status(client, id)
  local dir = client:state_dir(id)
  local st, err = read_status(dir)
  if st then
    if (st.status == "running" or st.status == "created" or st.status == "paused")
      and not alive(st) then
      -- the monitor (or the foreground ctrlua) died without recording the exit: the kernel
      -- still has it while the init is an unreaped zombie (the same process: its start time);
      -- else the code is unknown, and says so
      local code, sig
      if st.pid and st.pid > 0 and (st.start_time == nil or M.proc_start_time(st.pid) == st.start_time) then
        code, sig = M.proc_zombie_exit(st.pid)
      end
      if code then
        st.exit_code, st.signal = code, sig
        -- and only until the new parent reaps it: with no monitor left to record it, the
        -- first to see it does
        local monitor = st.monitor_pid and core.kill(st.monitor_pid, 0) and not M.proc_zombie(st.monitor_pid)
        if not monitor then
          local rec = {}
          for k, v in pairs(st) do rec[k] = v end
          rec.status, rec.exited_at = "stopped", core.rfc3339()
          write_status(dir, rec)
        end
      else
        st.unknown_exit = true
      end
      return "stopped", st
    end
    return st.status, st
  end
  if err.sym == "NOT_FOUND" and not is_dir(dir) then return nil end
  -- a task directory with no readable status: a task cut short while it was made, or one whose
  -- record was damaged
  local extra, xerr = read_extra(dir)
  local info = { cgroup = extra.cgroup or bundle_cgroup(dir), detached = extra.detached,
    unreadable = err.sym ~= "NOT_FOUND" and err or nil,
    unreadable_extra = xerr and xerr.sym ~= "NOT_FOUND" and xerr or nil }
  if err.sym == "NOT_FOUND" and not xerr and owner.alive(extra.owner) then
    return "unknown", info -- being made right now
  end
  local found = find_processes(dir, info.cgroup)
  info.pid, info.start_time, info.monitor_pid, info.found = found.init, found.start_time, found.monitor, found.pids
  if found.init or found.monitor then return "unknown", info end
  info.unknown_exit = true
  return "stopped", info
end

-- An init that died on its own before it ran the container's program: OOM-killed as it set
-- up or waited for start, when the memory limit is below what any process needs.  err says
-- how (the C core's words); err.exit_code is the exit status a run reports for it (128+N, as
-- runc's callers and docker see it), err.oom whether its cgroup counted an OOM kill, which
-- is also an event (/tasks/oom, as containerd's).
local function died_early(client, id, err, exit_code, oom)
  err.exit_code = exit_code
  err.oom = oom or nil
  err.sym = oom and "OOM_KILLED" or "EXITED"
  if oom then M.event(client, "/tasks/oom", id) end
  return err
end

-- Unmount whatever is mounted under dir, deepest first (stacked mounts come off one a round);
-- true, or nil, err.
local function unmount_under(dir)
  for _ = 1, 100 do
    local points, err = sys.mount_points_under(dir)
    if not points then return nil, err end
    if #points == 0 then return true end
    table.sort(points, function(a, b) return #a > #b end)
    -- each point is unmounted until the kernel says nothing is mounted there (EINVAL): then
    -- the table need not be read again to know it, unless a point could not be reached
    local seen = true
    for _, mp in ipairs(points) do
      local ok
      ok, err = sys.unmount(mp)
      if not ok and err.sym == "EBUSY" then ok, err = sys.unmount(mp, { detach = true }) end
      if ok then
        -- another mount under it (stacked) is left for the next round, which reads the table
        local again, aerr = sys.unmount(mp)
        if again or aerr.sym ~= "EINVAL" then seen = false end
      elseif err.sym == "ENOENT" then
        seen = false
      elseif err.sym ~= "EINVAL" then
        return nil, err
      end
    end
    if seen then return true end
  end
  return nil, errors.new(("unmount under `%s': still mounted"):format(dir), 16)
end
M._unmount_under = unmount_under

-- Remove a task directory: its mounts first (a tree is never removed through a mount: a bind of
-- the snapshot would be emptied), then renamed out of the way, so that the id is free at once
-- and a removal cut short leaves a .tmp-rm-… directory (ctrlua gc removes it), never a task
-- with half its files.
local function remove_dir(client, dir)
  local ok, err = unmount_under(dir)
  if not ok then return nil, err end
  fault.point("task.unmounted")
  local gone = ("%s/.tmp-rm-%s"):format(client:state_dir(), assert(core.random_hex(8)))
  if core.rename(dir, gone, { sync = false }) then
    fault.point("task.removed")
    dir = gone
  end
  local err
  ok, err = sys.remove_tree(dir)
  if not ok then return nil, err end
  return true
end
M._remove_dir = remove_dir

local function cleanup(client, dir)
  return remove_dir(client, dir)
end

-- What a later ctrlua needs to know of a task (its status record belongs to the monitor):
-- task.json's table.
local function task_extra(rec, spec, io, opts, me, cgroup)
  local hooks = type(spec.hooks) == "table" and spec.hooks or {}
  return { owner = me, cgroup = cgroup, io = io.kind, fifos = io.fifos, detached = opts.detach or nil,
    stop_signal = rec.labels and rec.labels["io.containerd.image.config.stop-signal"] or nil,
    terminal = type(spec.process) == "table" and spec.process.terminal == true or nil,
    -- which of the caller's lifecycle hooks exist: no read of config.json when none does
    hooks = (hooks.poststart or hooks.poststop) and
      { poststart = hooks.poststart and true or nil, poststop = hooks.poststop and true or nil } or nil }
end

-- The directory is made whole under a name that says whose it is, then renamed into place
-- exclusively: every task directory has its task.json, naming the ctrlua that owns it, and a
-- crash before the rename leaves a .tmp-PID-START-ID directory that gc can tell abandoned.
local function reserve_dir(nsdir, dir, id, extra)
  local me = extra.owner
  local tmp = ("%s/.tmp-%d-%d-%s"):format(nsdir, me.pid, me.start_time or 0, id)
  core.remove_tree(tmp) -- ours: a failed earlier attempt of this very process
  local ok, err = sys.mkdir(tmp, 448) -- 0700
  if not ok then return nil, err end
  ok, err = write_extra(tmp, extra)
  if ok then
    ok, err = sys.rename(tmp, dir, { noreplace = true, sync = false })
    if not ok and err.sym == "EEXIST" then err = errors.exists("task %q: already exists", id) end
  end
  if not ok then
    core.remove_tree(tmp)
    return nil, err
  end
  fault.point("task.reserved")
  return true
end

-- A task being made: what a failure must undo, in the order undo() undoes it.
local Making = {}
Making.__index = Making

function Making:undo(err)
  if self.pio then self.pio.close() end
  if self.console then core.close(self.console) end
  if self.console_listen then core.close(self.console_listen) end
  if self.dir_fd then core.close(self.dir_fd) end
  if self.monitored then
    -- the monitor reaps the init; once it has, it exits on "delete"
    core.kill(self.monitored, 9)
    core.monitor_request(self.dir, "wait")
    core.monitor_request(self.dir, "delete")
  end
  if self.made_cgroup then cgroups.delete(self.made_cgroup, self.cg_opts) end
  cleanup(self.client, self.dir)
  return nil, err
end

-- An overlay with an upper directory mounted "volatile": the kernel then skips the sync of
-- the upper filesystem (a journal commit, most of a --rm run's cleanup) at every syncfs and at
-- the unmount.  Only for a container whose writes go away with it (run --rm): after a crash
-- the overlay refuses that upper directory, and the container is removed anyway.
local function volatile_mounts(mounts)
  local out, changed = {}, false
  for i, m in ipairs(mounts) do
    out[i] = m
    if m.type == "overlay" then
      for _, o in ipairs(m.options or {}) do
        if o:match("^upperdir=") then
          local opts = { unpack(m.options) }
          opts[#opts + 1] = "volatile"
          out[i] = { type = m.type, source = m.source, target = m.target, options = opts }
          changed = true
          break
        end
      end
    end
  end
  return changed and out or nil
end

-- The bundle: the snapshot mounted at rootfs/ (when the container has one), config.json.
local function write_bundle(client, rec, spec, dir, volatile)
  if rec.snapshot_key and rec.snapshot_key ~= "" then
    local sn, err = client:snapshotter(rec.snapshotter)
    if not sn then return nil, err end
    local mounts
    mounts, err = sn:mounts(rec.snapshot_key)
    if not mounts then return nil, err end
    local ok
    ok, err = sys.mkdir(dir .. "/rootfs", 493) -- 0755
    if not ok then return nil, err end
    local vm = volatile and volatile_mounts(mounts)
    ok, err = nil, nil
    if vm then
      ok, err = require("ctr.mount").all(vm, dir .. "/rootfs")
      -- a kernel before 5.10 does not know the option: the mount as it is
      if not ok and err.sym ~= "EINVAL" then return nil, err end
    end
    if not ok then
      ok, err = require("ctr.mount").all(mounts, dir .. "/rootfs")
      if not ok then return nil, err end
    end
    fault.point("task.mounted")
    spec.root = spec.root or {}
    spec.root.path = "rootfs"
  end
  local encoded, text = pcall(core.json_encode, spec)
  if not encoded then return nil, errors.invalid("config.json: %s", tostring(text)) end
  local ok, err = sys.write_file(dir .. "/config.json", text, { mode = 384, sync = false })
  if not ok then return nil, err end
  fault.point("task.bundle-written")
  return true
end

-- The init under a monitor of its own (detached): pid, monitor pid, or nil, err, death.
-- points: what to make durable meanwhile, as meta.sync takes it (the container's durability
-- point), or nil.
local function create_monitored(mk, io, opts, cgroup, terminal, points)
  local oom_file
  if cgroup then
    local dirs = cgroups.dirs(cgroup)
    if type(dirs) == "table" then
      -- the memory controller's own hierarchy: v1's when there is one (a hybrid host's
      -- cgroup2 mount holds other controllers), else v2's
      if dirs.memory then oom_file = dirs.memory .. "/memory.oom_control"
      elseif dirs.unified then oom_file = dirs.unified .. "/memory.events" end
    end
  end
  -- the monitor makes the cgroup; should it die before it reports, the cgroup is left to us
  mk.made_cgroup = cgroup
  local dir, id = mk.dir, mk.id
  local pid, mon, death = sys.monitor_create(dir, {
    exec_fifo = dir .. "/exec.fifo", pid_file = opts.pid_file, no_pivot = opts.no_pivot,
    stdin = io.stdin, stdout = io.stdout, stderr = io.stderr,
    monitor_bin = M.monitor_bin(), oom_file = oom_file, id = id,
    console = terminal, -- the monitor keeps the pty master (core.monitor_console)
    keep_fifos = io.kind == "fifo", -- and unread output of --fifo-dir fifos
    logger = io.logger, logger_env = io.logger and {
      "CONTAINER_ID=" .. id, "CONTAINER_NAMESPACE=" .. mk.client.namespace,
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" } or nil,
    -- should a sync fail, the init is killed and the monitor gone before this returns
    fsync = points and points.fsync, syncfs = points and points.syncfs,
  })
  if pid then mk.monitored = pid end
  -- the monitor holds the init's IO now
  if io.close then io.close() end
  return pid, mon, death
end

-- process.terminal: the init sends its pty master to a socket (runc's console socket) in the
-- 0700 task directory; a path too long for sun_path goes through an fd of the directory.
local function listen_console(mk)
  local sock = mk.dir .. "/console.sock"
  if #sock >= 100 then
    local fd, err = sys.open(mk.dir, "r")
    if not fd then return nil, err end
    mk.dir_fd = fd
    sock = ("/proc/self/fd/%d/console.sock"):format(fd)
  end
  local fd, err = sys.unix_listen(sock)
  if not fd then return nil, err end
  mk.console_listen = fd
  return sock
end

-- create has returned: the master waits on the connection.  Then the caller's window size
-- from the start (tty_run follows it from then on).
local function receive_console(mk, io, pid)
  local console, err = sys.recv_fd(mk.console_listen)
  core.close(mk.console_listen)
  mk.console_listen = nil
  core.unlink(mk.dir .. "/console.sock")
  if not console then
    core.kill(pid, 9)
    core.waitpid(pid)
    return nil, err
  end
  mk.console = console
  local rows, cols = core.tty_get_size(io.stdin or 0)
  if not rows then rows, cols = core.tty_get_size(io.stdout or 1) end
  if rows and rows > 0 then core.tty_set_size(console, rows, cols) end
  return true
end

-- The init as our own child (the caller waits in the foreground): pid, or nil, err, death.
-- The cgroup hierarchies are read once, here, for the create, the exit's OOM check and the
-- delete (mk.cg_opts, then the task's); should that fail, create reads them and says why.
local function create_child(mk, io, opts, cgroup, terminal)
  if cgroup then
    local h = cgroups.hierarchy()
    mk.cg_opts = h and { hierarchy = h } or nil
  end
  local sock, err
  if terminal then
    sock, err = listen_console(mk)
    if not sock then return nil, err end
  elseif io.pipe_terminals then
    -- the caller's terminal stays the caller's: pipes in its place, copied by wait
    local pio, perr = io:pipe_terminals()
    if not pio then return nil, perr end
    if pio ~= io then mk.pio = pio end
  end
  local fds = mk.pio or io
  local dir = mk.dir
  local pid, death
  pid, err, death = sys.create(dir, {
    exec_fifo = dir .. "/exec.fifo",
    pid_file = opts.pid_file,
    no_pivot = opts.no_pivot,
    stdin = fds.stdin, stdout = fds.stdout, stderr = fds.stderr,
    console_socket = sock, id = mk.id, die_with_parent = true,
    cgroup_hierarchy = mk.cg_opts and mk.cg_opts.hierarchy,
  })
  if pid then mk.made_cgroup = cgroup end
  if pid and mk.pio then mk.pio.started() end
  if mk.dir_fd then
    core.close(mk.dir_fd)
    mk.dir_fd = nil
  end
  if not pid then return nil, err, death end
  if mk.console_listen then
    local ok, cerr = receive_console(mk, io, pid)
    if not ok then return nil, cerr end
  end
  return pid
end

--- Create the task of a container (NewTask): mount its rootfs, write the bundle, create the
-- init, which then waits for start.
-- @param container a container object (ctr.containers)
-- @param io an IO table from ctr.cio (default cio.stdio())
-- @tparam[opt] table opts `pid_file`, `no_pivot`, `volatile` (the rootfs's writes go away
-- with the container, as with run --rm: its overlay is mounted "volatile", never synced)
-- @return task, or nil, err (err.sym "ENOENT"/"EACCES" when the command is not found / not
-- executable)
function M.new_task(container, io, opts)
  opts = opts or {}
  io = io or require("ctr.cio").stdio()
  local client = container.client
  local id = container.id
  local nsdir = client:state_dir()
  local ok, err = sys.mkdir_p(nsdir, 457) -- 0711
  if not ok then return nil, err end
  local dir = client:state_dir(id)
  if core.stat(dir, true) then return nil, errors.exists("task %q: already exists", id) end

  -- the record as new_container wrote it or load read it: no second read on the run path
  local rec = container.record
  if not rec then
    rec, err = container:info()
    if not rec then return nil, err end
  end
  local spec = rec.spec
  if type(spec) ~= "table" then return nil, errors.not_found("container %q: no spec", id) end
  local cgroup = type(spec.linux) == "table" and type(spec.linux.cgroupsPath) == "string"
    and spec.linux.cgroupsPath ~= "" and spec.linux.cgroupsPath or nil
  local terminal = type(spec.process) == "table" and spec.process.terminal == true
  local extra = task_extra(rec, spec, io, opts, owner.me(), cgroup)

  ok, err = reserve_dir(nsdir, dir, id, extra)
  if not ok then return nil, err end
  local mk = setmetatable({ client = client, id = id, dir = dir }, Making)
  ok, err = write_bundle(client, rec, spec, dir, opts.volatile)
  if not ok then return mk:undo(err) end

  -- an external runc-compatible runtime (ctr.runtime) runs this bundle instead
  if type(rec.runtime) == "table" and type(rec.runtime.options) == "table" and rec.runtime.options.binary then
    local t, terr = require("ctr.runtime").new_task(container, io, opts, dir, spec, Task)
    if not t then return mk:undo(terr) end
    if container.unsynced then
      ok, err = container:sync()
      if not ok then return mk:undo(err) end
    end
    return t
  end

  local pid, monitor_pid, death
  -- a container whose records wait for the create to be durable (containers.with_sync_at_create)
  local unsynced = container.unsynced
  if opts.detach then
    local points
    if unsynced then
      points, err = container:sync_paths()
      if not points then return mk:undo(err) end
    end
    pid, monitor_pid, death = create_monitored(mk, io, opts, cgroup, terminal, points)
    if not pid then err = monitor_pid end
    if pid and unsynced then container:sync(true) end
  else
    pid, err, death = create_child(mk, io, opts, cgroup, terminal)
    if pid and unsynced then
      ok, err = container:sync()
      if not ok then
        core.kill(pid, 9)
        core.waitpid(pid)
        return mk:undo(err)
      end
    end
  end
  if not pid then
    -- the init looks the command up before it reports ready (as runc's does): err.exec marks
    -- that failure (ctr.sys), so that run can answer 127 (not found) or 126 (cannot invoke)
    if death then died_early(client, id, err, death.exit_code, death.oom) end
    return mk:undo(err)
  end

  -- CNI networking (ctr.cni): ADD after create, before start; the result is kept for DEL
  local cni = type(rec.extensions) == "table" and next(rec.extensions) and require("ctr.cni")
  if cni and rec.extensions[cni.EXTENSION] then
    local res, cerr = cni.setup(client, container, pid)
    if not res then
      core.kill(pid, 9)
      if not monitor_pid then core.waitpid(pid) end
      return mk:undo(cerr)
    end
    extra.cni = res
    core.write_file(dir .. "/task.json", core.json_encode(extra), { mode = 384, sync = false })
  end
  M.event(client, "/tasks/create", id, { pid = pid })
  if monitor_pid then
    local st = read_status(dir) or { status = "created", pid = pid, monitor_pid = monitor_pid }
    st.cgroup = cgroup
    fault.point("task.created")
    return setmetatable({ client = client, container = container, id = id, pid = pid, dir = dir,
      io = io, st = st, monitor_pid = monitor_pid, extra = extra }, Task)
  end
  local st = { status = "created", pid = pid, start_time = M.proc_start_time(pid),
    created_at = core.rfc3339(),
    -- the runtime made this cgroup; delete removes it
    cgroup = cgroup }
  ok, err = write_status(dir, st)
  if not ok then
    core.kill(pid, 9)
    core.waitpid(pid)
    return mk:undo(err)
  end
  fault.point("task.created")
  return setmetatable({ client = client, container = container, id = id, pid = pid, dir = dir,
    io = mk.pio or io, st = st, extra = extra, console = mk.console, cg_opts = mk.cg_opts }, Task)
end

--- Start the init: it execve's the process.
local function monitor_call(self, req)
  local reply, err = sys.monitor_request(self.dir, req)
  if not reply then return nil, err end
  local e = reply:match("^error: (.*)$")
  if e then return nil, errors.new(("task %s: %s"):format(self.id, e), 9, "FAILED_PRECONDITION") end
  return reply
end

-- Read the monitor's status record again.  It has no cgroup (task.json has it): keep ours, or
-- the delete would leave the cgroup behind.
local function refresh(self)
  local cgroup = self.st.cgroup
  self.st = read_status(self.dir) or self.st
  self.st.cgroup = self.st.cgroup or cgroup
end

--- Is this task supervised by a monitor (started detached)?
function Task:detached()
  return self.st.monitor_pid ~= nil
end

-- Run the task's OCI hooks of one kind ("poststart", "poststop") with the runtime-spec
-- state on their stdin.  Their failures are logged on stderr and are not the operation's
-- (runtime-spec: poststart and poststop failures are warnings).
local function run_hooks(self, kind, status)
  local extra = self.extra or read_extra(self.dir)
  if not (type(extra.hooks) == "table" and extra.hooks[kind]) then return end
  local data = core.read_file(self.dir .. "/config.json", 16 * 1024 * 1024)
  local spec = data and core.json_decode(data) or {}
  local state = { ociVersion = spec.ociVersion or "1.0.2", id = self.id, status = status,
    bundle = self.dir,
    pid = status ~= "stopped" and self.pid or nil,
    annotations = type(spec.annotations) == "table" and next(spec.annotations) and spec.annotations or nil }
  local ok, msg = core.run_hooks(self.dir, kind, core.json_encode(state))
  if not ok then io.stderr:write("ctrlua: task ", self.id, ": ", msg, "\n") end
end

--- Start the init: it execve's the process; then the poststart hooks run.
-- @tparam[opt] table opts `forward`: the caller will wait with `forward` (Task:wait): the
-- signals it forwards are held pending from before the start, so that one that comes
-- between start and wait reaches the container instead of ending the caller
function Task:start(opts)
  if self:detached() then
    local ok, err = monitor_call(self, "start")
    if not ok then
      refresh(self)
      if self.st.status == "stopped" and self.st.exit_code then
        return nil, died_early(self.client, self.id, err, self.st.exit_code, self.st.oom)
      end
      return nil, err
    end
    fault.point("task.started")
    refresh(self)
    -- (the monitor logged /tasks/start itself, before it could see the init's exit)
    run_hooks(self, "poststart", "running")
    return true
  end
  if opts and opts.forward then
    local ok, err = sys.block_signals()
    if not ok then return nil, err end
  end
  M.event(self.client, "/tasks/start", self.id, { pid = self.pid })
  local ok, err = sys.start(self.dir .. "/exec.fifo", self.pid)
  if not ok then
    local code, info = core.waitpid(self.pid, { nohang = true })
    if code then
      -- it is gone: how, rather than that nobody waits on the fifo
      local oom = self.st.cgroup and cgroups.oom_killed(self.st.cgroup, self.cg_opts) or false
      local how = type(info) == "table" and info.signal and ("killed by %s"):format(M.signal_name(info.signal))
        or ("exit code %d"):format(code)
      err = errors.new(("task %s: the container init %d exited before start: %s%s"):format(self.id,
        self.pid, how, oom and (" (OOM-killed in cgroup `%s')"):format(self.st.cgroup) or ""))
      self.st.status, self.st.exit_code, self.st.oom = "stopped", code, oom or nil
      write_status(self.dir, self.st)
      return nil, died_early(self.client, self.id, err, code, oom)
    end
    return nil, err
  end
  self.st.status = "running"
  self.st.started_at = core.rfc3339()
  ok, err = write_status(self.dir, self.st)
  if not ok then return nil, err end
  fault.point("task.started")
  run_hooks(self, "poststart", "running")
  return true
end

--- Wait for the init to exit and record it.
-- @tparam[opt] table opts `forward`: forward the caller's signals to the init meanwhile;
-- `record = false`: do not write the exit into the status record (for a caller that deletes
-- the task next)
-- @return exit code (128+N for signal N), or nil, err
function Task:wait(opts)
  if self:detached() then
    local reply, err = monitor_call(self, "wait")
    if reply then
      local code = tonumber(reply:match("^exit (%d+)$"))
      refresh(self)
      return code or 255
    end
    -- no monitor (killed): wait on the pid itself; its exit code is the zombie's (255 when
    -- something reaped it: lost)
    local status, st = M.status(self.client, self.id)
    if status == "stopped" then return st and st.exit_code or 255 end
    if status == nil then return nil, err end
    local ok, err = sys.pid_wait(self.pid)
    if not ok and err.sym ~= "ESRCH" then return nil, err end
    status, st = M.status(self.client, self.id)
    return st and st.exit_code or 255
  end
  local code, info
  if self.console then
    -- process.terminal: copy between the caller's terminal and the pty until the init exits
    code, info = sys.tty_run(self.console, self.pid, { forward = opts and opts.forward or false,
      stdin = self.io and self.io.stdin, stdout = self.io and self.io.stdout })
    if code == nil then return nil, info end
    core.close(self.console)
    self.console = nil
  else
    -- the caller's terminals the init did not get: copied to and from its pipes meanwhile
    local copy = self.io and self.io.take_copy and self.io.take_copy()
    code, info = sys.wait(self.pid, { forward = opts and opts.forward or false, copy = copy })
  end
  if code == nil then return nil, info end
  self.reaped = true
  self.st.status = "stopped"
  self.st.exit_code = code
  self.st.exited_at = core.rfc3339()
  if type(info) == "table" and info.signal then self.st.signal = info.signal end
  -- a caller that deletes the task right away (run) need not record the exit: until the
  -- delete, status() sees the pid gone and answers "stopped" anyway
  if self.st.cgroup and cgroups.oom_killed(self.st.cgroup, self.cg_opts) then self.st.oom = true end
  if not (opts and opts.record == false) then write_status(self.dir, self.st) end
  fault.point("task.exited")
  M.event(self.client, "/tasks/exit", self.id, { pid = self.pid, exit_status = code,
    exited_at = self.st.exited_at })
  return code
end

--- Send a signal (a number, default SIGTERM) to the init; with opts.all, to every process of
-- its cgroup.  A task whose init is gone answers NOT_FOUND, as containerd's does.
function Task:kill(sig, opts)
  local status = self:status()
  if status == "stopped" or status == nil then
    return nil, errors.not_found("process already finished: not found")
  end
  if not self.pid then
    return nil, errors.new(("task %s: its init is not known (%s)"):format(self.id,
      tostring(self.st.unreadable or "no status")), 3, "ESRCH")
  end
  if opts and opts.all and self.st.cgroup then
    local pids, err = self:pids()
    if not pids then return nil, err end
    for _, p in ipairs(pids) do core.kill(p, sig or 15) end
    return true
  end
  local ok, err = sys.kill(self.pid, sig or 15)
  if not ok then return nil, err end
  return true
end

--- The task's status: "created", "running", "paused", "stopped", "unknown" (see M.status).
function Task:status()
  return (M.status(self.client, self.id))
end

-- Kill every process of the task and wait until each is gone: the init (when it is still the
-- process the records name), what its cgroup holds, and, when no record names the init, what
-- runs in its root.  Then the monitor, if any, has reaped the init and recorded its end.
function Task:_kill_all(status)
  local cg = self.st.cgroup
  if cg and (status == "paused" or status == "unknown") then cgroups.thaw(cg) end
  local pids, seen = {}, {}
  local function add(p)
    if p and p > 0 and not seen[p] then
      seen[p] = true
      pids[#pids + 1] = p
    end
  end
  if self.pid and alive(self.st) then add(self.pid) end
  if cg then
    for _, p in ipairs(cgroups.processes(cg) or {}) do add(p) end
  end
  for _, p in ipairs(self.st.found or {}) do add(p) end
  for _, p in ipairs(pids) do core.kill(p, 9) end
  local code
  if self:detached() then
    -- the monitor reaps the init and records its end; one that does not answer (a task whose
    -- status it has not written yet) is killed too: the init dies with it
    local reply = monitor_call(self, "wait")
    code = reply and (tonumber(reply:match("^exit (%d+)$")) or 255)
    local mon = self.st.monitor_pid
    if not reply and mon and not owner.zombie(mon) then
      core.kill(mon, 9)
      add(mon)
    end
  end
  for _, p in ipairs(pids) do core.pid_wait(p) end
  fault.point("task.killed")
  return code
end

--- Delete a stopped task: unmount its rootfs, remove its cgroup and its state.  Returns its
-- exit code.  With `opts.force`, a task in any state (running, paused, being made, or with a
-- status record that cannot be read) is killed first, and what cannot be undone cleanly (a
-- CNI teardown that fails) does not stop the removal.
function Task:delete(opts)
  local force = opts and opts.force
  -- an init this process waited for and reaped is gone: no record or /proc to ask again
  local status = self.reaped and "stopped" or self:status()
  if force and status ~= "stopped" and status ~= nil then
    local code = self:_kill_all(status)
    status = self:status()
    if status ~= "stopped" then
      return nil, errors.new(("task %q: still %s after SIGKILL"):format(self.id, tostring(status)), 16)
    end
    self.st.exit_code = self.st.exit_code or code
  elseif status == "stopped" and not self.reaped and self:detached() and self.st.status ~= "stopped" then
    -- the init is gone but its monitor had not recorded the exit when the status was read (a
    -- delete right after a kill): the monitor may have reaped it already, leaving no zombie to
    -- tell the code.  Its answer to "wait" is the code; by then it has recorded the exit, and
    -- it unmounts the rootfs before it takes the "delete" below.  A dead monitor: the kernel's
    -- word.
    local reply = monitor_call(self, "wait")
    local code = reply and tonumber(reply:match("^exit (%d+)$"))
    if code then self.st.exit_code, self.st.unknown_exit = code, nil end
  end
  if status ~= "stopped" and status ~= nil then
    local why = self.st.unreadable and (": " .. self.st.unreadable.msg) or ""
    return nil, errors.new(("task %q must be stopped before deletion: %s%s"):format(self.id, status, why),
      16, "FAILED_PRECONDITION")
  end
  if self.io and self.io.close then self.io.close() end
  local cni_result = (self.extra or read_extra(self.dir)).cni
  if cni_result then
    local ok, err = require("ctr.cni").teardown(self.client, self.id, cni_result)
    if not ok and not force then return nil, err end
  end
  if self.st.cgroup then
    local ok, err = cgroups.delete(self.st.cgroup, self.cg_opts)
    if not ok then return nil, err end
    fault.point("task.cgroup-deleted")
  end
  if self:detached() then
    -- the monitor exits once it has answered; a dead monitor is fine
    core.monitor_request(self.dir, "delete")
  end
  local extra = self.extra or read_extra(self.dir)
  for _, path in pairs(type(extra.fifos) == "table" and extra.fifos or {}) do core.unlink(path) end
  if self.console then
    core.close(self.console)
    self.console = nil
  end
  if type(extra.hooks) == "table" and extra.hooks.poststop then
    -- the container is gone (its rootfs too); its config.json is still there for the hooks
    require("ctr.mount").unmount_all(self.dir .. "/rootfs")
    self.extra = extra
    run_hooks(self, "poststop", "stopped")
  end
  local ok, err = cleanup(self.client, self.dir)
  if not ok then return nil, err end
  M.event(self.client, "/tasks/delete", self.id, { pid = self.pid,
    exit_status = self.st.exit_code or 255 })
  return self.st.exit_code or (self.st.unknown_exit and 255) or nil
end

--- The pids in the task's cgroup (ctr tasks ps), or just the init without a cgroup.
function Task:pids()
  if self.st.cgroup then
    local pids, err = cgroups.processes(self.st.cgroup)
    if not pids then return nil, err end
    table.sort(pids)
    return pids
  end
  return { self.pid }
end

local function set_frozen(self, freeze)
  if not self.st.cgroup then
    return nil, errors.new(("task %s: no cgroup to freeze"):format(self.id), 95, "EOPNOTSUPP")
  end
  local cg = cgroups
  local ok, err
  if freeze then ok, err = cg.freeze(self.st.cgroup) else ok, err = cg.thaw(self.st.cgroup) end
  if not ok then return nil, err end
  if self:detached() then
    local r, merr = monitor_call(self, freeze and "pause" or "resume")
    if not r and merr.sym ~= "ECONNREFUSED" and merr.sym ~= "ENOENT" then return nil, merr end
  else
    self.st = read_status(self.dir) or self.st
    self.st.status = freeze and "paused" or "running"
    write_status(self.dir, self.st)
  end
  self.st.status = freeze and "paused" or "running"
  M.event(self.client, freeze and "/tasks/paused" or "/tasks/resumed", self.id)
  return true
end

--- Freeze every process of the task (cgroup freezer, v1 or v2).
function Task:pause()
  local status = self:status()
  if status ~= "running" then
    return nil, errors.new(("task %s: cannot pause a %s task"):format(self.id, tostring(status)), 9, "FAILED_PRECONDITION")
  end
  return set_frozen(self, true)
end

--- Thaw a paused task.
function Task:resume()
  local status = self:status()
  if status ~= "paused" then
    return nil, errors.new(("task %s: cannot resume a %s task"):format(self.id, tostring(status)), 9, "FAILED_PRECONDITION")
  end
  return set_frozen(self, false)
end

--- The cgroup statistics of the task (ctr.cgroups.stat).
function Task:metrics()
  if not self.st.cgroup then
    return nil, errors.new(("task %s: no cgroup"):format(self.id), 95, "EOPNOTSUPP")
  end
  return cgroups.stat(self.st.cgroup)
end

--- The task's OCI spec (its bundle's config.json) as a table, or nil, err.
function Task:spec()
  local data, err = sys.read_file(self.dir .. "/config.json", 16 * 1024 * 1024)
  if not data then return nil, err end
  return core.json_decode(data)
end

--- Describe an additional process of the running task (containerd's Task.Exec): nothing
-- runs until its `start`; see ctr.process.exec.
-- @return a ctr.process Process, or nil, err (FAILED_PRECONDITION when the task is not running)
function Task:exec(exec_id, process, io, opts)
  return require("ctr.process").exec(self, M.event, exec_id, process, io, opts)
end

--- The name of signal n ("SIGKILL"), or "signal N" for one without a name (ctr.signals.name).
-- @function signal_name
M.signal_name = signals.name

--- A signal by name ("SIGTERM", "TERM", "sigterm", "SIGRTMIN+3") or number ("9"): its number,
-- or nil (ctr.signals.parse).
function M.signal_number(s)
  if type(s) ~= "number" and type(s) ~= "string" then error("signal: expected string or number", 2) end
  return (signals.parse(s))
end

--- Attach to a detached task until it exits: for a task with a terminal (process.terminal),
-- the caller's terminal (opts.stdin, opts.stdout: default 0 and 1) is connected to the pty
-- the monitor keeps, in raw mode, its window size followed; SIGINT, SIGTERM, SIGHUP or
-- SIGQUIT sent to the caller end the attach (err.sym "EINTR"), not the task.  Otherwise the
-- task's output fifos (a task started with --fifo-dir) are copied to opts.stdout and
-- opts.stderr.
function Task:attach(opts)
  opts = opts or {}
  local extra = self.extra or read_extra(self.dir)
  if extra.terminal then
    if not self:detached() then
      return nil, errors.new(("task %s: its terminal belongs to the ctrlua that runs it"):format(self.id), 95, "EOPNOTSUPP")
    end
    local master, err = sys.monitor_console(self.dir)
    if not master then return nil, err end
    local ok
    ok, err = sys.tty_run(master, self.pid, { child = false, forward = false,
      stdin = opts.stdin or 0, stdout = opts.stdout or 1 })
    core.close(master)
    if not ok then return nil, err end
    return true
  end
  local fifos = extra.fifos
  if type(fifos) ~= "table" then
    return nil, errors.new(("task %s: no fifos to attach to (start it with --fifo-dir)"):format(self.id), 95, "EOPNOTSUPP")
  end
  local out = {}
  local map = {}
  for name, dst in pairs({ stdout = opts.stdout or 1, stderr = opts.stderr or 2 }) do
    local fd, err = sys.open(fifos[name], "r")
    if not fd then return nil, err end
    out[#out + 1] = fd
    map[fd] = dst
  end
  local pfd, err = sys.pidfd_open(self.pid)
  if not pfd then return nil, err end
  local watch = { pfd, unpack(out) }
  while true do
    local ready = core.poll(watch, -1) or {}
    for _, fd in ipairs(out) do
      if ready[fd] then
        local data = core.read(fd, 65536)
        if data and data ~= "" then core.write(map[fd], data) end
      end
    end
    if ready[pfd] then break end
  end
  -- the init is gone: drain what is left
  for _, fd in ipairs(out) do
    while next(core.poll({ fd }, 0) or {}) do
      local data = core.read(fd, 65536)
      if not data or data == "" then break end
      core.write(map[fd], data)
    end
  end
  core.close(pfd)
  for _, fd in ipairs(out) do core.close(fd) end
  return true
end

--- Checkpoint the task with criu (ctr tasks checkpoint).  Not supported yet: the reason is
-- the error.
function Task:checkpoint()
  local st = core.stat("/usr/sbin/criu", true)
  if not st then
    return nil, errors.new("checkpoint: criu is not installed (apt-get install criu)", 95, "EOPNOTSUPP")
  end
  return nil, errors.new("checkpoint: not supported: criu is installed, but ctrlua's runtime does not " ..
    "yet describe the container's mounts, namespaces and cgroups to criu (runc's --external and " ..
    "--ext-mount-map setup), so a dump of its init would fail or be unrestorable", 95, "EOPNOTSUPP")
end

--- Every task of the client's namespace: array of {id=, pid=, status=, exit_code=}, by id;
-- and the errors of the records that could not be read (each names its file): such a task is
-- listed all the same, "unknown" while it may still run.
function M.list(client)
  local sdir = client:state_dir()
  local names = core.listdir(sdir)
  local out, bad = {}, {}
  for _, name in ipairs(names or {}) do
    -- .tmp-… directories are tasks being made or removed (ctrlua gc removes abandoned ones)
    if name:sub(1, 1) ~= "." and is_dir(sdir .. "/" .. name) then
      local status, st = M.status(client, name)
      if status then
        out[#out + 1] = { id = name, pid = st.pid or 0, status = status,
          exit_code = st.exit_code, exited_at = st.exited_at }
        if st.unreadable then bad[#bad + 1] = st.unreadable end
        if st.unreadable_extra then bad[#bad + 1] = st.unreadable_extra end
      end
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out, bad
end

--- Load the task of container id from its state: task, or nil, err (sym NOT_FOUND).  A task
-- whose records cannot all be read loads too, with what the others know (see M.status).
function M.load(client, id, container)
  local dir = client:state_dir(id)
  local status, st = M.status(client, id)
  if not status then return nil, errors.not_found("no running task found: task %s not found", id) end
  local extra, xerr = read_extra(dir)
  st.cgroup = st.cgroup or extra.cgroup or (xerr and bundle_cgroup(dir)) or nil
  return setmetatable({ client = client, container = container, id = id, pid = st.pid,
    dir = dir, st = st, extra = extra }, Task)
end

--- Delete the stopped task of container id (what `containers rm` does before removing the
-- record).  Returns its exit code, or nil, err.
function M.delete(client, id)
  local task, err = M.load(client, id)
  if not task then return nil, err end
  return task:delete()
end

--- Remove container id's task whatever state it is in (`delete({force = true})`); true when
-- there is none.
-- @return true, or nil, err
function M.remove(client, id)
  local task, err = M.load(client, id)
  if not task then
    if err.sym == "NOT_FOUND" then return true end
    return nil, err
  end
  local code, derr = task:delete({ force = true })
  if code == nil and derr ~= nil then return nil, derr end
  return true
end

--- Is container id's task one that nobody will ever delete: the ctrlua that made it is gone
-- and it ran in that ctrlua's foreground, or it was to be detached but was never started?
-- Then `ctrlua gc` removes it.  A task whose task.json cannot be read, or names no owner, is
-- never taken for one, nor is a detached task whose status cannot be read.
-- @return the reason (a string), or nil
function M.orphaned(client, id)
  local dir = client:state_dir(id)
  local extra, xerr = read_extra(dir)
  if xerr or not owner.gone(extra.owner) then return nil end
  local status, st = M.status(client, id)
  if not status then return nil end
  local who = ("its ctrlua (pid %s) is gone"):format(owner.format(extra.owner))
  if not extra.detached then return "a foreground task whose " .. who:sub(5) end
  if st.unreadable then return nil end
  if st.status == nil or st.status == "created" then return "never started, and " .. who end
  return nil
end

return M
