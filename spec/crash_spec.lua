-- Crash consistency (docs/crash-consistency.md): each operation killed at every one of its steps
-- in turn (CTRLUA_FAULT=STEP), and `run --rm` and `images import` killed at random times.  After
-- each crash: the listing commands work; everything left is visible (a state directory, a mount,
-- a cgroup or a process belongs to a task `tasks ls` lists; the rest is garbage under a .tmp-
-- name); `ctrlua gc` and then `containers rm -f` of what `containers ls` lists leave no mount,
-- cgroup, state directory, process, partial snapshot, snapshot directory or ingest file; and
-- the same run or import then succeeds.
local core = require("ctr.core")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE
local KILLED = 137 -- the shell's status of a process that SIGKILLed itself

-- The operations and their steps, in order, as docs/crash-consistency.md lists them.
local RUN = { "snapshot.dir-renamed", "snapshot.recorded", "container.recorded", "task.reserved",
  "task.mounted", "task.bundle-written", "create.cgroup-made", "create.cloned", "create.ready",
  "task.created", "task.started", "task.exited", "task.cgroup-deleted", "task.unmounted",
  "task.removed", "snapshot.unrecorded", "container.snapshot-removed" }
-- container.synced: the durability point of a run that keeps its container (not --rm); in run
-- -d its fsyncs run in the monitor's launch, while the monitor creates the init
local RUN_D = { "snapshot.dir-renamed", "snapshot.recorded", "container.recorded",
  "task.reserved", "task.mounted", "task.bundle-written", "monitor.forked", "create.cgroup-made",
  "create.cloned", "create.ready", "container.synced", "task.created", "task.started" }
-- in run -d these are the monitor's: the monitor dies, and run reports it and undoes the run
local IN_MONITOR = { ["create.cgroup-made"] = true, ["create.cloned"] = true, ["create.ready"] = true }
local DELETE = { "task.cgroup-deleted", "task.unmounted", "task.removed" }
local DELETE_FORCE = { "task.killed", "task.cgroup-deleted", "task.unmounted", "task.removed" }
local IMPORT = { "content.ingest-written", "import.blobs-written", "import.recorded",
  "snapshot.dir-renamed", "snapshot.recorded", "unpack.applied", "snapshot.commit-recorded" }
local UNPACK = { "snapshot.dir-renamed", "snapshot.recorded", "unpack.applied", "snapshot.commit-recorded" }

local function listdir(p) return core.listdir(p) or {} end

local function fault(step) return { env = "CTRLUA_FAULT=" .. step } end

-- env:run with the arguments in a list (some of them optional) and the options last.
local function run(env, args, opts)
  local all = {}
  for _, a in ipairs(args) do all[#all + 1] = a end
  all[#all + 1] = opts or {}
  return env:run(unpack(all))
end

-- `tasks ls`: id -> STATUS
local function listed_tasks(env)
  local r = env:run("tasks.lua", "ls")
  assert.are.equal(0, r.code, "tasks ls: " .. r.stderr)
  local t = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local id, status = line:match("^(%S+)%s+%S+%s+(%S+)")
    if id and id ~= "TASK" then t[id] = status end
  end
  return t
end

-- Every listing command works (a warning is allowed, a Lua error is not); `tasks ls` is
-- invisible()'s.
local function listings_work(env)
  for _, cmd in ipairs({ { "images.lua", "ls" }, { "containers.lua", "ls" }, { "snapshots.lua", "ls" },
    { "content.lua", "ls" } }) do
    local r = env:run(unpack(cmd))
    assert.are.equal(0, r.code, table.concat(cmd, " ") .. ": " .. r.stderr)
    assert.is_nil(r.stderr:find("attempt to", 1, true), r.stderr)
  end
end

local function cgroup_dirs(env, id)
  local out = {}
  for _, d in pairs(require("ctr.cgroups").dirs(env:cgroup(id)) or {}) do
    if core.stat(d) then out[#out + 1] = d end
  end
  return out
end

-- The task a process belongs to by its cgroup (/NS/ID), or nil.
local function task_of_process(env, line)
  local cg = core.read_file("/proc/" .. line:match("^(%d+)") .. "/cgroup", 65536) or ""
  local at = cg:find(":/" .. env.ns .. "/", 1, true)
  return at and cg:sub(at + #env.ns + 3):match("^([^/\n]+)")
end

-- What a crash left that nobody can see: a list of strings (empty when all is visible), and
-- the tasks listed.
local function invisible(env, id)
  local tasks = listed_tasks(env)
  local problems = {}
  for _, name in ipairs(listdir(env:state_dir())) do
    if name ~= "events.log" and not name:match("^%.tmp%-") and not tasks[name] then
      problems[#problems + 1] = "state directory of no listed task: " .. name
    end
  end
  local sdir = env:state_dir() .. "/"
  for _, m in ipairs(S.mounts_under(env.dir)) do
    local mp = m:match("^%S+ %S+ %S+ %S+ (%S+)")
    local task = mp and mp:sub(1, #sdir) == sdir and mp:sub(#sdir + 1):match("^([^/]+)")
    if not (task and tasks[task]) then problems[#problems + 1] = "mount of no listed task: " .. tostring(mp) end
  end
  for _, d in ipairs(cgroup_dirs(env, id)) do
    if not tasks[id] then problems[#problems + 1] = "cgroup of no listed task: " .. d end
  end
  for _, p in ipairs(S.processes_in_ns(env.ns)) do
    local task = task_of_process(env, p)
    if not (task and tasks[task]) then problems[#problems + 1] = "process of no listed task: " .. p end
  end
  return problems, tasks
end

-- Everything that should not be there once gc and the ordinary commands have run.
local function leftovers(env, id)
  local left = {}
  for _, m in ipairs(S.mounts_under(env.dir)) do left[#left + 1] = "mount " .. m end
  for _, name in ipairs(listdir(env:state_dir())) do
    if name ~= "events.log" then left[#left + 1] = "state " .. name end
  end
  for _, d in ipairs(cgroup_dirs(env, id)) do left[#left + 1] = "cgroup " .. d end
  for _, p in ipairs(S.processes_in_ns(env.ns)) do left[#left + 1] = "process " .. p end
  local committed = 0
  for _, s in ipairs(env:snapshots()) do
    if s.kind == "Committed" then committed = committed + 1 else left[#left + 1] = "snapshot " .. s.key end
  end
  local dirs = listdir(env.root .. "/snapshots/overlayfs/snapshots")
  if #dirs ~= committed then
    left[#left + 1] = ("%d snapshot directories for %d snapshots"):format(#dirs, committed)
  end
  for _, f in ipairs(listdir(env.root .. "/content/ingest")) do left[#left + 1] = "ingest " .. f end
  for _, c in ipairs(env:containers()) do left[#left + 1] = "container " .. c end
  return left
end

local function no_leftovers(env, id, what)
  local left = leftovers(env, id)
  assert.are.same({}, left, (what or "") .. ": " .. table.concat(left, "; "))
end

-- After a crash: visible, listings work, gc succeeds; returns the tasks listed after gc.
local function after_crash(env, id, what)
  assert.are.same({}, (invisible(env, id)), what)
  listings_work(env)
  local g = env:run("gc")
  assert.are.equal(0, g.code, what .. ": gc: " .. g.stderr)
  assert.are.equal("", g.stderr, what .. ": gc")
  local problems, tasks = invisible(env, id)
  assert.are.same({}, problems, what .. " (after gc)")
  return tasks, g
end

-- The ordinary commands remove what is left: every container, with its task.
local function remove_containers(env, what)
  for _, c in ipairs(env:containers()) do
    local r = env:run("containers.lua", "rm", "-f", c)
    assert.are.equal(0, r.code, what .. ": containers rm -f " .. c .. ": " .. r.stderr)
  end
end

local function kill_at(pid, when)
  local left = when - core.monotime()
  if left > 0 then core.poll({}, left * 1000) end
  core.kill(pid, 9)
  -- gone, or a zombie (this machine's pid 1 does not reap)
  S.until_true(function()
    local st = core.read_file("/proc/" .. pid .. "/stat", 4096)
    return not st or st:match(".*%)%s(%S)") == "Z"
  end, 10, "the killed ctrlua to end")
end

-- Start `ctrlua ARGS...` in the background and return its pid at once.
local function start(env, ...)
  local p = assert(io.popen(("%s >%s/bg.out 2>&1 </dev/null & echo $!"):format(env:cmdline(...), S.q(env.dir))))
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

describe("crash consistency #root", function()
  local env
  after_each(function()
    if env then
      for _, c in ipairs(env:containers()) do env:run("containers.lua", "rm", "-f", c) end
      env:destroy()
      env = nil
    end
  end)
  teardown(function() S.cleanup() end)

  it("names the same steps in docs/crash-consistency.md, in the code, and here", function()
    local doc = {}
    local in_steps = false
    for line in assert(io.open("docs/crash-consistency.md")):lines() do
      if line:match("^| step |") then
        in_steps = true
      elseif not line:match("^|") then
        in_steps = false
      elseif in_steps then
        local first = line:match("^|([^|]*)|")
        for step in first:gmatch("`([%w%-]+%.[%w%-]+)`") do doc[step] = true end
      end
    end
    local code = {}
    local out = S.must("grep -rhoE 'fault[.]point[(]\"[^\"]+\"[)]' lua/ctr; grep -rhoE 'ctr_fault[(]\"[^\"]+\"[)]' csrc")
    for step in out:gmatch('"([^"]+)"') do code[step] = true end
    local here = {}
    for _, list in ipairs({ RUN, RUN_D, DELETE, DELETE_FORCE, IMPORT, UNPACK }) do
      for _, step in ipairs(list) do here[step] = true end
    end
    assert.are.same(code, doc)
    assert.are.same(code, here)
  end)

  it("makes a kept run's records durable by fsyncs of what it made, and syncs nothing of a run --rm", function()
    if not core.stat("/usr/bin/strace") then pending("no strace") return end
    env = S.new_env()
    -- the syncs of one command and its children up to their execve (a detached task's
    -- monitor and init outlive the command): the paths fsynced, and the number of each call
    local function syncs(...)
      local out = env.dir .. "/strace.out"
      local r = run(env, { ... }, { env = "strace -f -qq -b execve -y -e trace=fsync,fdatasync,syncfs -o " .. S.q(out) })
      assert.are.equal(0, r.code, r.stderr)
      local n = { fsync = 0, fdatasync = 0, syncfs = 0, paths = {} }
      for line in (S.slurp(out) or ""):gmatch("[^\n]+") do
        local name, path = line:match("^%d+%s+(%a+)%(%d+<(.*)>%)%s+= 0$")
        if name and n[name] then
          n[name] = n[name] + 1
          n.paths[path] = true
        end
      end
      return n
    end
    -- the store's entries: path -> find's type letter
    local function tree()
      local t = {}
      for line in S.must("find " .. S.q(env.root) .. " -printf '%y %p\\n'"):gmatch("[^\n]+") do
        local ty, path = line:match("^(%a) (.*)$")
        t[path] = ty
      end
      return t
    end
    -- every entry the command made in the store has its name in a directory it fsynced, and
    -- every file it made was fsynced itself; the overlay's own work directory (the kernel's,
    -- remade at each mount) aside.  No syncfs, which would wait for every other writer's data.
    local function durable(what, ...)
      local before = tree()
      local n = syncs(...)
      assert.are.same({ 0, 0 }, { n.syncfs, n.fdatasync }, what .. ": syncfs, fdatasync")
      local made = 0
      for path, ty in pairs(tree()) do
        if not before[path] and not path:match("/snapshots/[^/]+/work/.") then
          made = made + 1
          assert.is_true(n.paths[path:match("^(.*)/[^/]+$")] or false, what .. ": the name of " .. path)
          if ty == "f" then assert.is_true(n.paths[path] or false, what .. ": the file " .. path) end
        end
      end
      -- the snapshot's directory, its fs and work, its record, the container's record
      assert.is_true(made >= 5, what .. ": " .. made .. " entries made")
    end
    -- a kept container: its records and its snapshot's directory, files and names; the first
    -- of the namespace, which makes the directory of its records (a new name in meta/NS)
    assert.is_nil(core.stat(env.root .. "/meta/" .. env.ns .. "/containers"))
    durable("run", "run.lua", IMAGE, "s2", "true")
    -- --rm: nothing at all (its records live as long as the run; what a power cut leaves of
    -- them, records_spec shows rm -f and gc removing)
    local n = syncs("run.lua", "--rm", IMAGE, "s1", "true")
    assert.are.same({ 0, 0, 0 }, { n.fsync, n.fdatasync, n.syncfs })
    -- its removal syncs nothing: a power cut that undoes it leaves what rm removes again
    n = syncs("containers.lua", "rm", "s2")
    assert.are.same({ 0, 0, 0 }, { n.fsync, n.fdatasync, n.syncfs })
    -- run -d the same, whoever makes them (the run, the monitor's launch)
    durable("run -d", "run.lua", "-d", IMAGE, "s3", "sleep", "30")
    assert.are.equal(0, env:run("tasks.lua", "delete", "-f", "s3").code)
    n = syncs("containers.lua", "rm", "s3")
    assert.are.same({ 0, 0, 0 }, { n.fsync, n.fdatasync, n.syncfs })
    -- a task of an external runtime (ctrlua-runc here, which syncs nothing of its own): its
    -- status in STATE is not fsynced either
    local runc = S.BIN:match("^(.*)/[^/]*$") .. "/ctrlua-runc"
    n = syncs("run.lua", "--rm", "--runc-binary", runc, IMAGE, "s4", "true")
    assert.are.same({ 0, 0, 0 }, { n.fsync, n.fdatasync, n.syncfs })
    no_leftovers(env, "s2", "after the runs")
    no_leftovers(env, "s3", "after the runs")
  end)

  it("run --rm killed at each step", function()
    env = S.new_env()
    for _, step in ipairs(RUN) do
      -- a container that still runs when its ctrlua is gone must be found and killed
      local args = { "run.lua", "--rm", IMAGE, "c1", "true" }
      if step == "task.started" then args[5], args[6] = "sleep", "30" end
      local r = run(env, args, fault(step))
      assert.are.equal(KILLED, r.code, step .. ": " .. r.stderr)
      local tasks = after_crash(env, "c1", step)
      -- a foreground task whose ctrlua is gone is gc's to remove, whatever its state
      assert.are.same({}, tasks, step .. ": tasks after gc")
      remove_containers(env, step)
      no_leftovers(env, "c1", step)
      r = env:run("run.lua", "--rm", IMAGE, "c1", "true")
      assert.are.equal(0, r.code, step .. ": the next run: " .. r.stderr)
      no_leftovers(env, "c1", step .. " (after the next run)")
    end
  end)

  it("run -d killed at each step", function()
    env = S.new_env()
    for _, step in ipairs(RUN_D) do
      local r = env:run("run.lua", "-d", IMAGE, "d1", "sleep", "30", fault(step))
      if IN_MONITOR[step] then
        assert.are.equal(125, r.code, step .. ": " .. r.stderr)
        assert.matches("monitor", r.stderr)
      else
        assert.are.equal(KILLED, r.code, step .. ": " .. r.stderr)
      end
      local tasks = after_crash(env, "d1", step)
      if step == "task.started" then
        -- what run -d makes: gc keeps it
        assert.are.same({ d1 = "RUNNING" }, tasks, step)
      else
        assert.are.same({}, tasks, step .. ": tasks after gc")
      end
      remove_containers(env, step)
      no_leftovers(env, "d1", step)
      r = env:run("run.lua", "-d", IMAGE, "d1", "true")
      assert.are.equal(0, r.code, step .. ": the next run: " .. r.stderr)
      remove_containers(env, step)
      no_leftovers(env, "d1", step .. " (after the next run)")
    end
  end)

  it("tasks delete, and tasks delete -f of a running task, killed at each step", function()
    env = S.new_env()
    for _, force in ipairs({ false, true }) do
      for _, step in ipairs(force and DELETE_FORCE or DELETE) do
        local what = (force and "delete -f: " or "delete: ") .. step
        local r = env:run("run.lua", "-d", IMAGE, "k1", "sleep", "30")
        assert.are.equal(0, r.code, r.stderr)
        if not force then
          assert.are.equal(0, env:run("tasks.lua", "kill", "-s", "KILL", "k1").code)
          assert.are.equal(137, env:run("tasks.lua", "wait", "k1").code)
        end
        r = run(env, force and { "tasks.lua", "delete", "-f", "k1" } or { "tasks.lua", "delete", "k1" }, fault(step))
        assert.are.equal(KILLED, r.code, what .. ": " .. r.stderr)
        local tasks = after_crash(env, "k1", what)
        -- what is left is a stopped task (a detached one: the user's to delete), or nothing
        assert.is_true(tasks.k1 == nil or tasks.k1 == "STOPPED", what .. ": " .. tostring(tasks.k1))
        if tasks.k1 then assert.are.equal(0, env:run("tasks.lua", "delete", "k1").code, what) end
        remove_containers(env, what)
        no_leftovers(env, "k1", what)
      end
    end
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "k1", "true").code)
  end)

  it("images import and images unpack killed at each step", function()
    for _, op in ipairs({ "import", "unpack" }) do
      for _, step in ipairs(op == "import" and IMPORT or UNPACK) do
        local what = op .. ": " .. step
        env = S.new_env({ empty = true })
        if op == "unpack" then
          local r = env:run("images.lua", "import", "--no-unpack", S.IMAGE_TAR)
          assert.are.equal(0, r.code, r.stderr)
        end
        local r = op == "import" and env:run("images.lua", "import", S.IMAGE_TAR, fault(step))
          or env:run("images.lua", "unpack", IMAGE, fault(step))
        assert.are.equal(KILLED, r.code, what .. ": " .. r.stderr)
        after_crash(env, "none", what)
        no_leftovers(env, "none", what)
        r = env:run("images.lua", "import", S.IMAGE_TAR)
        assert.are.equal(0, r.code, what .. ": the next import: " .. r.stderr)
        no_leftovers(env, "none", what .. " (after the next import)")
        r = env:run("run.lua", "--rm", IMAGE, "c1", "true")
        assert.are.equal(0, r.code, what .. ": a run of the image: " .. r.stderr)
        env:destroy()
        env = nil
      end
    end
  end)

  it("run --rm SIGKILLed at random times: gc and containers rm -f leave nothing", function()
    env = S.new_env()
    math.randomseed(core.getpid() + os.time())
    for i = 1, 20 do
      local t0 = core.monotime()
      local pid = start(env, "run.lua", "--rm", IMAGE, "rnd", "true")
      local ms = math.random(0, 40)
      kill_at(pid, t0 + ms / 1000)
      local what = ("try %d, killed at %d ms"):format(i, ms)
      after_crash(env, "rnd", what)
      remove_containers(env, what)
      no_leftovers(env, "rnd", what)
    end
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "rnd", "true").code)
    no_leftovers(env, "rnd", "after the last run")
  end)

  it("images import SIGKILLed at random times: gc leaves no partial snapshot nor ingest file", function()
    math.randomseed(core.getpid() + os.time() + 1)
    for i = 1, 6 do
      env = S.new_env({ empty = true })
      local t0 = core.monotime()
      local pid = start(env, "images.lua", "import", S.IMAGE_TAR)
      local ms = math.random(0, 120)
      kill_at(pid, t0 + ms / 1000)
      local what = ("try %d, killed at %d ms"):format(i, ms)
      after_crash(env, "none", what)
      no_leftovers(env, "none", what)
      local r = env:run("images.lua", "import", S.IMAGE_TAR)
      assert.are.equal(0, r.code, what .. ": " .. r.stderr)
      env:destroy()
      env = nil
    end
  end)
end)
