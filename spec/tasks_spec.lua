-- Detached tasks end to end: `run.lua -d`, the monitor, and `tasks.lua` commands, with the
-- real binary, the busybox test image, real mounts, cgroups and processes.
local core = require("ctr.core")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE

local function alive(pid)
  local data = core.read_file("/proc/" .. pid .. "/stat", 4096)
  local state = data and data:match(".*%)%s(%S)")
  return state ~= nil and state ~= "Z"
end

local function cpu_ticks(pid)
  local data = core.read_file("/proc/" .. pid .. "/stat", 4096)
  local rest = data:match(".*%)%s(.*)$")
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  return tonumber(f[12]) + tonumber(f[13]) -- utime + stime (fields 14, 15)
end

describe("tasks #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    if not env then return end
    -- every task this test left: delete -f (ends the init and its monitor), then a monitor
    -- still there is killed by its own pid
    for _, id in ipairs(core.listdir(env:state_dir()) or {}) do
      local st = env:task_status(id)
      if st then
        env:run("tasks.lua", "delete", "-f", id)
        if st.monitor_pid and alive(st.monitor_pid) then core.kill(st.monitor_pid, 9) end
      end
    end
    env:destroy()
    env = nil
  end)
  teardown(function() S.cleanup() end)

  local function tasks(...) return env:run("tasks.lua", ...) end

  local function ls()
    local r = tasks("ls")
    assert.are.equal(0, r.code, r.stderr)
    local out = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local id, pid, status = line:match("^(%S+)%s+(%S+)%s+(%S+)")
      if id ~= "TASK" then out[id] = { pid = tonumber(pid), status = status } end
    end
    return out
  end

  it("run -d whose durability point fails (in the monitor's launch) leaves no init, no monitor, nothing", function()
    local run, cli = require("ctr.cmd.run"), require("ctr.cmd.cli")
    local client = assert(require("ctr.client").new({ root = env.root, state = env.state, namespace = env.ns }))
    local def = run.def()
    local r = assert(cli.parse(def, { "-d", IMAGE, "sf1", "sleep", "100" }))
    local c = assert(run.new_container(client, r.flags, assert(run.validate(def, r))))
    -- its durability point is the create's
    assert.is_true(c.unsynced)
    -- a record that cannot be synced: its path is gone by the time the launch opens it
    local gone = env.dir .. "/gone"
    c.sync_paths = function() return { fsync = { gone } } end
    local t, err = c:new_task(require("ctr.cio").null_io(), { detach = true })
    assert.is_nil(t)
    assert.are.equal("ENOENT", err.sym)
    assert.matches("fsync `" .. gone .. "'", err.msg, 1, true)
    assert.is_true(c.unsynced)
    -- no monitor of this task (its argv names the task directory) outlives the failure
    local dir = env:state_dir("sf1")
    local function monitors()
      local n = 0
      for _, name in ipairs(core.listdir("/proc") or {}) do
        local cmd = name:match("^%d+$") and core.read_file("/proc/" .. name .. "/cmdline", 4096)
        if cmd and cmd:find("ctrlua-monitor\0" .. dir .. "\0", 1, true) then n = n + 1 end
      end
      return n
    end
    local t0 = core.monotime()
    while monitors() > 0 and core.monotime() - t0 < 2 do core.poll({}, 10) end
    assert.are.equal(0, monitors())
    -- run undoes the container as for any failure of its create (scripts/run.lua)
    assert(c:delete({ snapshot_cleanup = true }))
    assert.are.same({}, env:leftovers("sf1"))
  end)

  it("run -d returns at once; ls shows RUNNING with the pid of --pid-file; kill + wait; delete cleans", function()
    local pidfile = env.dir .. "/pid"
    local t0 = core.monotime()
    local r = env:run("run.lua", "-d", "--pid-file", pidfile, IMAGE, "d1",
      "sh", "-c", "trap 'exit 143' TERM; sleep 100 & wait")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(core.monotime() - t0 < 5)
    local pid = tonumber(S.slurp(pidfile))
    assert.is_truthy(pid)
    local l = ls()
    assert.are.same({ pid = pid, status = "RUNNING" }, l.d1)
    -- the ctrlua that started it is gone; the container is not, and its parent is the monitor
    assert.is_true(alive(pid))
    local st = env:task_status("d1")
    local ppid = tonumber(core.read_file("/proc/" .. pid .. "/stat"):match(".*%)%s%S+%s(%d+)"))
    assert.are.equal(st.monitor_pid, ppid)

    local json = tasks("ls", "--format", "json")
    assert.are.equal(0, json.code)
    local list = core.json_decode(json.stdout)
    assert.are.equal("d1", list[1].ID)
    assert.are.equal("RUNNING", list[1].Status)

    local ps = tasks("ps", "d1")
    assert.are.equal(0, ps.code, ps.stderr)
    assert.is_truthy(ps.stdout:match("\n" .. pid .. "%s"))

    assert.are.equal(0, tasks("kill", "d1").code)
    local w = tasks("wait", "d1")
    assert.are.equal(143, w.code, w.stderr)
    assert.are.same({ pid = pid, status = "STOPPED" }, ls().d1)
    -- the exit code is kept until delete
    assert.are.equal(143, tasks("wait", "d1").code)
    assert.are.equal(143, env:task_status("d1").exit_code)

    local cg = env:run("containers.lua", "info", "--spec", "d1")
    local cgpath = core.json_decode(cg.stdout).linux.cgroupsPath
    local d = tasks("delete", "d1")
    assert.are.equal(0, d.code, d.stderr)
    assert.is_nil(ls().d1)
    assert.is_false(S.exists(env:state_dir() .. "/d1"))
    assert.are.same({}, S.mounts_under(env.dir))
    assert.is_false(alive(st.monitor_pid))
    if cgpath then
      for line in io.lines("/proc/self/mountinfo") do
        local mp, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .- %- (%S+)")
        if fstype == "cgroup2" or fstype == "cgroup" then
          assert.is_false(S.exists(mp .. cgpath), mp .. cgpath)
        end
      end
    end
    -- the events log tells the story
    local ev = S.slurp(env:state_dir() .. "/events.log")
    local topics = {}
    for line in ev:gmatch("[^\n]+") do topics[#topics + 1] = core.json_decode(line).topic end
    assert.are.same({ "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete" }, topics)
    local ee = env:run("events.lua")
    assert.are.equal(0, ee.code, ee.stderr)
    assert.is_truthy(ee.stdout:match("/tasks/exit"))
  end)

  -- the monitor logs the start between releasing the init and reaping it: an init that exits
  -- at once, or a run -d that dies right after the start, leaves the log in the order it happened
  it("the start is logged before the exit, even when run -d dies right after the start", function()
    local r = env:run("run.lua", "-d", IMAGE, "ev2", "true", { env = "CTRLUA_FAULT=task.started" })
    assert.are.equal(137, r.code, r.stderr)
    local out = S.until_true(function()
      local o = S.slurp(env:state_dir() .. "/events.log") or ""
      return o:match("/tasks/exit") and o
    end, 5, "the exit to be logged")
    local topics = {}
    for line in out:gmatch("[^\n]+") do
      local ev = core.json_decode(line)
      if ev.id == "ev2" then topics[#topics + 1] = ev.topic end
    end
    assert.are.same({ "/tasks/create", "/tasks/start", "/tasks/exit" }, topics)
    assert.are.equal(0, tasks("delete", "ev2").code)
    assert.are.equal(0, env:run("containers.lua", "rm", "ev2").code)
  end)

  it("events -f follows the log through inotify: no wakeups while idle, new events at once", function()
    local h = env:spawn("events.lua", "-f", "--format", "json")
    local function switches()
      local st = core.read_file("/proc/" .. h.pid .. "/status") or ""
      return tonumber(st:match("voluntary_ctxt_switches:%s*(%d+)"))
    end
    -- started and idle (it has made the namespace directory and watches it)
    S.until_true(function() return S.exists(env:state_dir()) end, 10, "events -f to start")
    S.sh("sleep 0.3")
    local before = switches()
    S.sh("sleep 1")
    -- a follower that slept in 200 ms steps would have woken 5 times
    assert.is_true(switches() - before <= 1, "woke while idle: " .. (switches() - before))
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "ev1", "true").code)
    local out = S.until_true(function()
      local o = S.slurp(h.out) or ""
      return o:match("/tasks/exit") and o
    end, 5, "events -f to print the exit")
    local topics = {}
    for line in out:gmatch("[^\n]+") do topics[#topics + 1] = core.json_decode(line).topic end
    assert.are.same({ "/tasks/create", "/tasks/start", "/tasks/exit" }, topics)
    core.kill(h.pid, 15)
    h:wait(5)
    assert.are.equal(0, tasks("delete", "ev1").code)
  end)

  -- events.log is bounded: past 1 MiB it becomes events.log.1 and a new one starts
  it("events.log rotates at 1 MiB, keeping one old file; events and events -f read across it", function()
    local log = env:state_dir("events.log")
    assert(core.mkdir_p(env:state_dir(), 457))
    -- many events (as a long-lived host has): a log just short of the bound
    local lines, size = {}, 0
    while size < 1024 * 1024 - 400 do
      local l = ('{"time":"2020-01-01T00:00:00Z","namespace":"%s","topic":"/tasks/old","id":"o%d"}')
        :format(env.ns, #lines + 1)
      lines[#lines + 1] = l
      size = size + #l + 1
    end
    assert(core.write_file(log, table.concat(lines, "\n") .. "\n", { mode = 384 }))
    local follow = env:spawn("events.lua", "-f", "--format", "json")
    S.sh("sleep 0.5")
    local all, filler = {}, #lines -- every real event, in order; the filler lines written
    for round = 1, 2 do
      for i = 1, round == 1 and 3 or 1 do
        local id = ("r%d%d"):format(round, i)
        assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, id, "true").code)
        for _, t in ipairs({ "create", "start", "exit", "delete" }) do all[#all + 1] = id .. " /tasks/" .. t end
      end
      if round == 1 then
        local st1, st = core.stat(log .. ".1"), core.stat(log)
        assert.is_truthy(st1, "no rotation")
        assert.is_true(st1.size <= 1024 * 1024 and st.size < 4096, st1.size .. " " .. st.size)
        -- fill the new log up to just short of the bound again: the next round rotates it,
        -- and the oldest file (the first filler and the first events) is dropped
        local f = assert(io.open(log, "a"))
        local n = 0
        for k = 1, #lines do
          if st.size + n + #lines[k] + 1 > 1024 * 1024 - 200 then break end
          f:write(lines[k], "\n")
          n, filler = n + #lines[k] + 1, filler + 1
        end
        f:close()
      end
    end
    assert.is_nil(core.stat(log .. ".2"))
    assert.is_true(core.stat(log).size <= 1024 * 1024 and core.stat(log .. ".1").size <= 1024 * 1024)
    local r = env:run("events.lua", "--format", "json")
    assert.are.equal(0, r.code, r.stderr)
    local ids, old = {}, 0
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = core.json_decode(line)
      if ev.topic ~= "/tasks/old" then ids[#ids + 1] = ev.id .. " " .. ev.topic else old = old + 1 end
    end
    -- the latest events, in order: a tail of them all that has the last rounds, not the first
    -- events (they went with the oldest file), and the second filler only
    assert.is_true(#ids >= 8 and #ids < #all, table.concat(ids, ", "))
    assert.are.same({ unpack(all, #all - #ids + 1) }, ids)
    assert.are.equal("r13 /tasks/create", ids[#ids - 7])
    assert.are.equal(filler - #lines, old)
    -- the follower saw every line of both rotations, once, in order
    local want = filler + #all
    local got = S.until_true(function()
      local o = S.slurp(follow.out) or ""
      local n = select(2, o:gsub("\n", ""))
      return n >= want and o
    end, 10, "events -f to follow across the rotations")
    local seen = {}
    for line in got:gmatch("[^\n]+") do
      local ev = core.json_decode(line)
      if ev.topic ~= "/tasks/old" then seen[#seen + 1] = ev.id .. " " .. ev.topic end
    end
    assert.are.same(all, seen)
    assert.are.equal(want, select(2, got:gsub("\n", "")))
    core.kill(follow.pid, 15)
    follow:wait(5)
  end)

  it("a container that exits on its own keeps its code until delete; delete refuses a running task", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "d2", "sh", "-c", "exit 7").code)
    local w = tasks("wait", "d2")
    assert.are.equal(7, w.code, w.stderr)
    assert.are.equal("STOPPED", ls().d2.status)
    assert.are.equal(0, tasks("delete", "d2").code)

    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "d3", "sleep", "100").code)
    local d = tasks("delete", "d3")
    assert.are.equal(1, d.code)
    assert.is_truthy(d.stderr:match("must be stopped"), d.stderr)
    local dirs = assert(require("ctr.cgroups").dirs(env:cgroup("d3")))
    assert.are.equal(0, tasks("delete", "-f", "d3").code)
    assert.is_nil(ls().d3)
    -- delete -f of a running task removes its cgroup too
    for name, dir in pairs(dirs) do assert.is_nil(core.stat(dir), name .. " " .. dir) end
  end)

  it("--rm and -d cannot be used together", function()
    local r = env:run("run.lua", "-d", "--rm", IMAGE, "x", "true")
    assert.are_not.equal(0, r.code)
    assert.is_truthy(r.stderr:match("flags %-%-detach and %-%-rm cannot be specified together"))
  end)

  it("--null-io gives no output", function()
    local r = env:run("run.lua", "--null-io", "--rm", IMAGE, "n1", "sh", "-c", "echo out; echo err >&2")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("", r.stdout)
    assert.are.equal("", r.stderr)
  end)

  it("--log-uri file:// captures both streams, in order per stream", function()
    local log = env.dir .. "/c.log"
    local r = env:run("run.lua", "-d", "--log-uri", "file://" .. log, IMAGE, "l1", "sh", "-c",
      "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, tasks("wait", "l1").code)
    local text = S.slurp(log)
    local outs, errs = {}, {}
    for line in text:gmatch("[^\n]+") do
      if line:match("^out") then outs[#outs + 1] = line else errs[#errs + 1] = line end
    end
    assert.are.same({ "out1", "out2", "out3" }, outs)
    assert.are.same({ "err1", "err2", "err3" }, errs)
    assert.are.equal(0, tasks("delete", "l1").code)
  end)

  it("a binary:// logger receives the output with CONTAINER_ID and CONTAINER_NAMESPACE", function()
    local logger = env.dir .. "/logger.sh"
    local out = env.dir .. "/logged"
    local f = io.open(logger, "w")
    f:write("#!/bin/sh\n",
      "echo \"id=$CONTAINER_ID ns=$CONTAINER_NAMESPACE arg=$1:$2\" > \"$2.env\"\n",
      "exec 5>&-\n",
      "cat <&3 > \"$2.out\" &\ncat <&4 > \"$2.err\"\nwait\n")
    f:close()
    core.chmod(logger, 493)
    local r = env:run("run.lua", "-d", "--log-uri", "binary://" .. logger .. "?file=" .. out, IMAGE,
      "b1", "sh", "-c", "echo hello; echo oops >&2")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, tasks("wait", "b1").code)
    S.until_true(function() return (S.slurp(out .. ".out") or "") ~= "" and (S.slurp(out .. ".err") or "") ~= "" end, 5, "the logger")
    assert.are.equal("hello\n", S.slurp(out .. ".out"))
    assert.are.equal("oops\n", S.slurp(out .. ".err"))
    assert.are.equal("id=b1 ns=" .. env.ns .. " arg=file:" .. out .. "\n", S.slurp(out .. ".env"))
    assert.are.equal(0, tasks("delete", "b1").code)
  end)

  it("a foreground binary:// run removes the task's cgroups, as every run does", function()
    local logger = env.dir .. "/logger.sh"
    local out = env.dir .. "/fg"
    assert(core.write_file(logger, "#!/bin/sh\nexec 5>&-\ncat <&3 > \"$2.out\" &\ncat <&4 > \"$2.err\"\nwait\n",
      { mode = 493 }))
    local dirs = assert(require("ctr.cgroups").dirs(env:cgroup("fg1")))
    local r = env:run("run.lua", "--rm", "--log-uri", "binary://" .. logger .. "?file=" .. out, IMAGE,
      "fg1", "sh", "-c", "echo hello; exit 3")
    assert.are.equal(3, r.code, r.stderr)
    S.until_true(function() return S.slurp(out .. ".out") == "hello\n" end, 5, "the logger")
    for name, dir in pairs(dirs) do assert.is_nil(core.stat(dir), name .. " " .. dir) end
    assert.are.same({}, env:leftovers("fg1"))
  end)

  -- containerd's shim fails the task create when it cannot start the logger
  for _, case in ipairs({
    { "missing", function(p) return p end, "No such file or directory" },
    { "not executable", function(p) assert(core.write_file(p, "#!/bin/sh\n", { mode = 420 })) return p end,
      "Permission denied" },
  }) do
    it("a binary:// logger that is " .. case[1] .. " fails the run before it starts: 125, nothing left", function()
      local logger = case[2](env.dir .. "/nologger")
      for _, mode in ipairs({ "--rm", "-d" }) do
        local r = env:run("run.lua", mode, "--log-uri", "binary://" .. logger, IMAGE, "nl", "echo", "lost")
        assert.are.equal(125, r.code, r.stderr)
        assert.are.equal("ctrlua: start the logging binary `" .. logger .. "': " .. case[3] .. "\n", r.stderr)
        assert.are.same({}, env:leftovers("nl"))
        assert.are.same({}, S.processes_in_ns(env.ns))
      end
    end)
  end

  -- ctr's url.Parse refuses a URI that starts with ":"; it is never a relative path
  it("--log-uri '::::' is refused in url.Parse's words, and nothing is written", function()
    local cwd = env.dir .. "/cwd"
    assert(core.mkdir(cwd, 493))
    for _, case in ipairs({
      { "::::", 'parse "::::": missing protocol scheme' },
      { "a b:c", 'parse "a b:c": first path segment in URL cannot contain colon' },
      { "file:///x%zz", 'parse "file:///x%zz": invalid URL escape "%zz"' },
    }) do
      local o, rc = S.sh("cd " .. S.q(cwd) .. " && " .. env:cmdline("run.lua", "--rm", "--log-uri", case[1],
        IMAGE, "u1", "echo", "hi") .. " </dev/null")
      assert.are.equal(125, rc, o)
      assert.are.equal("ctrlua: " .. case[2] .. "\n", o)
      assert.are.same({}, core.listdir(cwd))
      assert.are.same({}, env:leftovers("u1"))
    end
  end)

  it("--fifo-dir pipes can be read by another process; delete removes them", function()
    local fdir = env.dir .. "/fifos"
    local r = env:run("run.lua", "-d", "--fifo-dir", fdir, IMAGE, "f1", "sh", "-c",
      "read line; echo got:$line; echo bad >&2")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("fifo", core.stat(fdir .. "/f1-stdout").type)
    -- the reader opens first (the data lives in the pipe only while someone holds it open)
    local h = io.popen(("timeout 10 head -n1 %s/f1-stdout"):format(fdir))
    S.must(("timeout 10 sh -c 'echo hi > %s/f1-stdin'"):format(fdir))
    local line = h:read("*l")
    h:close()
    assert.are.equal("got:hi", line)
    assert.are.equal(0, tasks("wait", "f1").code)
    assert.are.equal(0, tasks("delete", "f1").code)
    assert.is_nil(core.stat(fdir .. "/f1-stdout"))
    assert.is_nil(core.stat(fdir .. "/f1-stdin"))
  end)

  it("--fifo-dir: output nobody read is kept past the exit for a late reader, EOF at delete", function()
    local fdir = env.dir .. "/fifos"
    local r = env:run("run.lua", "-d", "--fifo-dir", fdir, IMAGE, "f2", "sh", "-c",
      "echo out1; echo out2; echo err1 >&2")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(0, tasks("wait", "f2").code)
    -- the container is gone and nobody had the fifos open: the data is still there
    assert.are.equal("err1\n", S.must(("timeout 5 head -n1 %s/f2-stderr"):format(fdir)))
    local h = io.popen(("timeout 10 cat %s/f2-stdout; echo rc=$?"):format(fdir))
    S.until_true(function() -- two holders: the monitor and the reader
      local out = S.sh("fuser " .. fdir .. "/f2-stdout 2>/dev/null")
      return select(2, out:gsub("%d+", "")) >= 2
    end, 5, "the reader to open the fifo")
    -- the monitor holds the write end until the delete: then the reader sees EOF (not the
    -- timeout's 124)
    assert.are.equal(0, tasks("delete", "f2").code)
    assert.are.equal("out1\nout2\nrc=0\n", h:read("*a"))
    h:close()
  end)

  it("--fifo-dir: a reader attached while the container runs sees EOF when it exits", function()
    local fdir = env.dir .. "/fifos"
    local r = env:run("run.lua", "-d", "--fifo-dir", fdir, IMAGE, "f3", "sh", "-c",
      "sleep 0.5; echo done")
    assert.are.equal(0, r.code, r.stderr)
    local h = io.popen(("timeout 10 cat %s/f3-stdout; echo rc=$?"):format(fdir))
    assert.are.equal("done\nrc=0\n", h:read("*a"))
    h:close()
    assert.are.equal(0, tasks("wait", "f3").code)
    assert.are.equal(0, tasks("delete", "f3").code)
  end)

  it("pause stops a busy loop and resume lets it go on", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "p1", "sh", "-c", "while :; do :; done").code)
    local pid = env:task_status("p1").pid
    local p = tasks("pause", "p1")
    assert.are.equal(0, p.code, p.stderr)
    assert.are.equal("PAUSED", ls().p1.status)
    local t1 = cpu_ticks(pid)
    S.sh("sleep 0.3")
    assert.are.equal(t1, cpu_ticks(pid))
    assert.are.equal(0, tasks("resume", "p1").code)
    assert.are.equal("RUNNING", ls().p1.status)
    S.until_true(function() return cpu_ticks(pid) > t1 end, 10, "the resumed loop to run")
    local m = tasks("metrics", "p1", "--format", "json")
    assert.are.equal(0, m.code, m.stderr)
    assert.are.equal("table", type(core.json_decode(m.stdout)))
    assert.are.equal(0, tasks("kill", "-s", "KILL", "p1").code)
    assert.are.equal(137, tasks("wait", "p1").code)
  end)

  it("a SIGKILLed monitor leaves a state that ls reports honestly and delete -f cleans", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "k1", "sleep", "100").code)
    local st = env:task_status("k1")
    core.kill(st.monitor_pid, 9)
    S.until_true(function() return not alive(st.monitor_pid) end, 5, "the monitor to die")
    assert.are.same({ pid = st.pid, status = "RUNNING" }, ls().k1)
    core.kill(st.pid, 9)
    S.until_true(function() return not alive(st.pid) end, 5, "the init to die")
    assert.are.equal("STOPPED", ls().k1.status)
    -- the zombie's status, which ls recorded before the new parent could reap it
    assert.are.equal(137, tasks("wait", "k1").code)
    local d = tasks("delete", "-f", "k1")
    assert.are.equal(0, d.code, d.stderr)
    assert.is_nil(ls().k1)
    assert.are.same({}, S.mounts_under(env.dir))
  end)

  -- the init is reparented when its monitor dies; the kernel keeps its exit status while it
  -- is a zombie (pid 1 here reaps a second or two later): wait, ls and delete report that
  it("a SIGKILLed monitor, then a SIGKILLed init: wait returns 137, not 255, and delete says so", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "k2", "sleep", "100").code)
    local st = env:task_status("k2")
    core.kill(st.monitor_pid, 9)
    S.until_true(function() return not alive(st.monitor_pid) end, 5, "the monitor to die")
    local w = env:spawn("tasks.lua", "wait", "k2")
    S.sh("sleep 0.3")
    assert.is_nil(w.done())
    core.kill(st.pid, 9)
    local r = w:wait(10)
    assert.are.equal(137, r.code, r.stderr)
    -- recorded once seen: still known after the zombie is gone
    S.until_true(function() return not core.stat("/proc/" .. st.pid) end, 10, "the zombie to be reaped")
    assert.are.equal(137, tasks("wait", "k2").code)
    local rec = env:task_status("k2")
    assert.are.same({ "stopped", 137, 9 }, { rec.status, rec.exit_code, rec.signal })
    local d = tasks("delete", "k2")
    assert.are.equal(0, d.code, d.stderr)
    assert.matches("exit code 137", d.stderr, 1, true)
    local last
    for line in S.slurp(env:state_dir("events.log")):gmatch("[^\n]+") do last = core.json_decode(line) end
    assert.are.same({ "/tasks/delete", 137 }, { last.topic, last.exit_status })
  end)

  -- a delete right after a kill can find the init reaped by its monitor before the monitor has
  -- written the exit down (the status record still says running): the code is the monitor's
  it("delete between the monitor's reaping of the init and its record of it says 137, not 255", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "w1", "sleep", "100").code)
    local running = S.slurp(env:state_dir("w1", "status"))
    local st = env:task_status("w1")
    assert.are.equal(0, tasks("kill", "-s", "KILL", "w1").code)
    assert.are.equal(137, tasks("wait", "w1").code)
    S.until_true(function() return not core.stat("/proc/" .. st.pid) end, 5, "the init to be reaped")
    -- the record as it was before the monitor's write
    assert.is_true(core.write_file(env:state_dir("w1", "status"), running))
    local d = tasks("delete", "w1")
    assert.are.equal(0, d.code, d.stderr)
    assert.matches("exit code 137", d.stderr, 1, true)
    local last
    for line in S.slurp(env:state_dir("events.log")):gmatch("[^\n]+") do last = core.json_decode(line) end
    assert.are.same({ "/tasks/delete", 137 }, { last.topic, last.exit_status })
    S.until_true(function() return not alive(st.monitor_pid) end, 5, "the monitor to exit")
    assert.is_nil(core.stat(env:state_dir("w1")))
  end)

  -- a directory's block costs its removal a discard on a `discard` mount: the monitor removes
  -- rootfs/ once it has unmounted it, while nobody waits, rather than leave it to delete
  it("the monitor removes the unmounted rootfs directory at the init's exit; delete the rest", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "r1", "sleep", "100").code)
    local rootfs = env:state_dir("r1", "rootfs")
    assert.are.equal(1, #S.mounts_under(rootfs))
    assert.are.equal(0, tasks("kill", "-s", "KILL", "r1").code)
    assert.are.equal(137, tasks("wait", "r1").code)
    S.until_true(function() return not core.stat(rootfs) end, 5, "rootfs/ to be removed")
    assert.is_truthy(core.stat(env:state_dir("r1", "config.json")))
    local d = tasks("delete", "r1")
    assert.are.equal(0, d.code, d.stderr)
    assert.is_nil(core.stat(env:state_dir("r1")))
  end)

  it("kill -s takes names and numbers; a bad signal is refused", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "s1", "sleep", "100").code)
    local bad = tasks("kill", "-s", "SIGNOPE", "s1")
    assert.are.equal(1, bad.code)
    assert.is_truthy(bad.stderr:match("invalid signal"))
    assert.are.equal(0, tasks("kill", "-s", "9", "s1").code)
    assert.are.equal(137, tasks("wait", "s1").code)
  end)

  it("tasks checkpoint fails with a clear reason", function()
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "c1", "sleep", "100").code)
    local r = tasks("checkpoint", "c1")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.stderr:match("checkpoint: "), r.stderr)
  end)

  it("50 detached containers started and deleted leave nothing behind", function()
    for i = 1, 50 do
      local id = "m" .. i
      local r = env:run("run.lua", "-d", IMAGE, id, "sleep", "100")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal(0, tasks("kill", "-s", "KILL", id).code)
      assert.are.equal(137, tasks("wait", id).code)
      local d = tasks("delete", id)
      assert.are.equal(0, d.code, d.stderr)
      assert.are.equal(0, env:run("containers.lua", "rm", id).code)
    end
    assert.are.same({}, S.mounts_under(env.dir))
    assert.are.same({}, core.listdir(env:state_dir()) and
      (function() local t = {} for _, n in ipairs(core.listdir(env:state_dir())) do
        if n ~= "events.log" then t[#t + 1] = n end end return t end)())
    local left = S.sh("ps -eo args | grep -c '[c]trlua-monitor " .. env.state .. "'")
    assert.are.equal("0", left:match("%d+"))
  end)
end)
