-- Resource flags of `ctr run` (--cgroup, --memory-limit, --cpus, --cpu-shares, --cpu-quota,
-- --cpu-period, --gpus, --rdt-class): the spec they make, the limits read back from the
-- container's cgroup on this machine's hierarchy, OOM (exit 137, recorded), metrics.
local core = require("ctr.core")
local cli = require("ctr.cmd.cli")
local run = require("ctr.cmd.run")
local oci = require("ctr.oci")
local metrics = require("ctr.metrics")
local runtime = require("ctr.runtime")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE

-- The spec that resource_opts makes of a command line (opts applied to an empty spec).
local function spec_of(...)
  local def = run.def()
  local r = assert(cli.parse(def, { ... }))
  local v = assert(run.validate(def, r))
  local sopts, copts = {}, {}
  local ok, err = run.resource_opts({ namespace = "default" }, r.flags, v,
    function(o) sopts[#sopts + 1] = o end, function(o) copts[#copts + 1] = o end)
  if ok == nil then return nil, err end
  local spec = { linux = { cgroupsPath = "/default/x" } }
  for _, o in ipairs(sopts) do
    local rv, oerr = o({ namespace = "default" }, {}, { id = "x" }, spec)
    if rv == nil and oerr then return nil, oerr end
  end
  return spec, copts, v
end

describe("resource flags", function()
  it("--cpus N: quota N*100000 over a period of 100000; shares 1024 by default", function()
    local spec = assert(spec_of("--cpus", "1.5", "img", "x"))
    assert.are.same({ quota = 150000, period = 100000, shares = 1024 }, spec.linux.resources.cpu)
  end)

  it("the built-in runtime's flags do not load ctr.runtime", function()
    local saved = package.loaded["ctr.runtime"]
    package.loaded["ctr.runtime"] = setmetatable({}, { __index = function(_, k)
      error("ctr.runtime." .. k .. " used", 2)
    end })
    local ok, spec, _, v = pcall(spec_of, "--runtime", "io.containerd.runc.v2", "img", "x")
    package.loaded["ctr.runtime"] = saved
    assert(ok, spec)
    assert(spec)
    assert.is_nil(v.runtime_options)
  end)

  it("--cpu-shares, --cpu-quota/--cpu-period", function()
    local spec = assert(spec_of("--cpu-shares", "512", "--cpu-quota", "5000", "--cpu-period", "10000", "img", "x"))
    assert.are.same({ quota = 5000, period = 10000, shares = 512 }, spec.linux.resources.cpu)
  end)

  it("--cpus with --cpu-quota or --cpu-period fails with ctr's words", function()
    for _, extra in ipairs({ { "--cpu-quota", "5000" }, { "--cpu-period", "10000" } }) do
      local spec, err = spec_of("--cpus", "1", extra[1], extra[2], "img", "x")
      assert.is_nil(spec)
      assert.are.equal("cpus and quota/period should be used separately", err.msg)
    end
  end)

  -- ctr passes any float on (Go's ParseFloat takes inf and nan); one that CFS cannot take is
  -- refused here, naming the value, before anything is made
  for _, case in ipairs({
    { "inf", "+Inf is not a finite number of CPUs" },
    { "-Infinity", "-Inf is not a finite number of CPUs" },
    { "nan", "NaN is not a number of CPUs" },
    { "-1", "-1 is negative" },
    { "0.001", "0.001 is below 0.01" },
    { "1e9", "1000000000 is above 175921860" },
  }) do
    it("--cpus " .. case[1] .. " is refused: " .. case[2], function()
      local spec, err = spec_of("--cpus", case[1], "img", "x")
      assert.is_nil(spec)
      assert.are.equal("INVALID", err.sym)
      assert.matches("invalid value for flag --cpus: " .. case[2], err.msg, 1, true)
    end)
  end

  it("--cpus at the bounds: 0 is no limit, 0.01 the smallest quota", function()
    assert.is_nil(assert(spec_of("--cpus", "0", "img", "x")).linux.resources.cpu.quota)
    assert.are.same({ quota = 1000, period = 100000, shares = 1024 },
      assert(spec_of("--cpus", "0.01", "img", "x")).linux.resources.cpu)
  end)

  it("--memory-limit sets linux.resources.memory.limit", function()
    local spec = assert(spec_of("--memory-limit", "33554432", "img", "x"))
    assert.are.equal(33554432, spec.linux.resources.memory.limit)
  end)

  it("--cgroup: a path replaces the default, \"\" disables, absent keeps /NS/ID", function()
    assert.are.equal("/mine/x", assert(spec_of("--cgroup", "/mine/x", "img", "x")).linux.cgroupsPath)
    assert.are.equal("", assert(spec_of("--cgroup", "", "img", "x")).linux.cgroupsPath)
    assert.are.equal("/default/x", assert(spec_of("img", "x")).linux.cgroupsPath)
  end)

  it("with --config the spec flags are ignored, as ctr does", function()
    local spec = assert(spec_of("--config", "/nonexistent.json", "--memory-limit", "1000000", "x"))
    assert.is_nil(spec.linux.resources)
  end)

  it("--gpus without nvidia-container-cli fails naming it", function()
    if runtime.look_path("nvidia-container-cli") then pending("nvidia-container-cli is installed") return end
    local spec, err = spec_of("--gpus", "0", "img", "x")
    assert.is_nil(spec)
    assert.matches('exec: "nvidia-container-cli": executable file not found in $PATH', err.msg, 1, true)
  end)

  it("--rdt-class: a clear error without resctrl, or without the class", function()
    local tmp = S.tmpdir()
    finally(function() core.remove_tree(tmp) end)
    local mi = tmp .. "/mountinfo"
    assert(core.write_file(mi, "22 1 0:20 / /sys rw - sysfs sysfs rw\n"))
    local ok, err = runtime.check_rdt("gold", { mountinfo = mi })
    assert.is_nil(ok)
    assert.matches("resctrl is not mounted", err.msg, 1, true)
    assert(core.write_file(mi, "22 1 0:20 / " .. tmp .. " rw - resctrl resctrl rw\n"))
    ok, err = runtime.check_rdt("gold", { mountinfo = mi })
    assert.is_nil(ok)
    assert.matches('class "gold"', err.msg, 1, true)
    assert(core.mkdir(tmp .. "/gold"))
    assert.is_true(runtime.check_rdt("gold", { mountinfo = mi }))
    -- and the spec it makes where resctrl is there
    local spec = { }
    oci.with_rdt("gold", "", "")(nil, nil, nil, spec)
    assert.are.same({ closID = "gold" }, spec.linux.intelRdt)
    if not core.stat("/sys/fs/resctrl/tasks") then
      local s2, e2 = spec_of("--rdt-class", "gold", "img", "x")
      assert.is_nil(s2)
      assert.matches("--rdt-class: resctrl is not mounted", e2.msg, 1, true)
    end
  end)
end)

describe("metrics formatting", function()
  local v1 = { id = "c1", timestamp = "2024-01-01T00:00:00Z", mode = "v1", oom = true,
    stats = { memory_usage = 4096, memory_limit = math.huge, memory_cache = 0, cpu_usage = 1000,
      pids_current = 2, pids_limit = 10, oom_kill = 1 } }
  it("v1 table as ctr's, with the OOM rows", function()
    local t = metrics.format_table(v1)
    assert.matches("^ID%s+TIMESTAMP%s*\nc1%s+2024%-01%-01T00:00:00Z%s*\n\nMETRIC%s+VALUE", t)
    assert.matches("\nmemory.usage_in_bytes%s+4096%s*\n", t)
    assert.matches("\nmemory.limit_in_bytes%s+9223372036854771712%s*\n", t)
    assert.matches("\npids.limit%s+10%s*\n", t)
    assert.matches("\nmemory.oom_kill%s+1%s*\n", t)
    assert.matches("\noom%s+true%s*\n", t)
  end)
  it("v1 and v2 JSON", function()
    local j = core.json_decode(metrics.format_json(v1))
    assert.are.equal(4096, j.memory.usage.usage)
    assert.are.equal(1, j.memory_oom_control.oom_kill)
    assert.are.equal(true, j.oom)
    local v2 = { id = "c1", timestamp = "t", mode = "v2", oom = false,
      stats = { memory_usage = 8192, memory_limit = 1048576, cpu_usage = 5000, pids_current = 1,
        pids_limit = math.huge } }
    j = core.json_decode(metrics.format_json(v2))
    assert.are.equal(8192, j.memory.usage)
    assert.are.equal(1048576, j.memory.usage_limit)
    assert.are.equal(5, j.cpu.usage_usec)
    assert.are.equal(0, j.pids.limit)
    assert.matches("\ncpu.usage_usec%s+5%s*\n", metrics.format_table(v2))
  end)
end)

describe("resources #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    if env then env:destroy() end
    env = nil
  end)
  teardown(function() S.cleanup() end)

  local cgroups = require("ctr.cgroups")

  local function read(dir, file)
    return (assert(core.read_file(dir .. "/" .. file), dir .. "/" .. file):gsub("%s+$", ""))
  end

  it("memory limit, cpu quota/period and shares read back from the cgroup; gone after", function()
    local h = env:spawn("run.lua", "--rm", "--memory-limit", "33554432", "--cpu-quota", "25000",
      "--cpu-period", "50000", "--cpu-shares", "512", IMAGE, "lim", "sleep", "30")
    local pid = env:wait_running("lim")
    local dirs = assert(cgroups.dirs(env:cgroup("lim")))
    local mode = assert(cgroups.mode())
    if mode == "v2" then
      assert.are.equal("33554432", read(dirs.unified, "memory.max"))
      assert.are.equal("25000 50000", read(dirs.unified, "cpu.max"))
      -- runc's conversion: 1 + ((shares - 2) * 9999) / 262142
      assert.are.equal(tostring(1 + math.floor((512 - 2) * 9999 / 262142)), read(dirs.unified, "cpu.weight"))
    else
      assert.are.equal("33554432", read(dirs.memory, "memory.limit_in_bytes"))
      assert.are.equal("25000", read(dirs.cpu, "cpu.cfs_quota_us"))
      assert.are.equal("50000", read(dirs.cpu, "cpu.cfs_period_us"))
      assert.are.equal("512", read(dirs.cpu, "cpu.shares"))
    end
    -- the init is in it
    local procs = assert(cgroups.processes(env:cgroup("lim")))
    assert.is_true(#procs >= 1)
    assert.are.equal(pid, procs[1])
    core.kill(pid, 9)
    local r = h:wait(20)
    assert.are.equal(137, r.code, r.stderr)
    for name, dir in pairs(dirs) do assert.is_nil(core.stat(dir), name .. " " .. dir) end
  end)

  -- runc 1.2's rule: two stores with the same namespace and ID would share /NS/ID, and a kill
  -- -a, pause or delete of one would act on the other's processes
  it("a second store's container with the same namespace and ID is refused: the cgroup holds the first", function()
    -- the same namespace (and so the same cgroup /NS/ID), another store
    local env2 = S.new_env({ ns = env.ns })
    finally(function() env2:destroy() end)
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "twin", "sleep", "60").code)
    local pid = env:wait_running("twin")
    local r = env2:run("run.lua", "-d", IMAGE, "twin", "sleep", "60")
    assert.are.equal(125, r.code, r.stderr)
    assert.matches("^ctrlua: container's cgroup is not empty: 1 process%(es%) found in `/sys/fs/cgroup/[^']*"
      .. env.ns:gsub("%-", "%%-") .. "/twin'", r.stderr)
    assert.are.equal(1, select(2, r.stderr:gsub("\n", "")), r.stderr)
    -- nothing of the second: no record, snapshot, mount, state, process
    assert.are.same({}, env2:leftovers())
    assert.is_nil(core.stat(env2:state_dir("twin")))
    assert.are.equal(1, #S.processes_in_ns(env.ns), table.concat(S.processes_in_ns(env.ns), "\n"))
    -- the first is untouched: running, not frozen, in its cgroup
    local st = env:task_status("twin")
    assert.are.equal("running", st.status)
    assert.are.equal(pid, st.pid)
    assert.are.same({ pid }, assert(cgroups.processes(env:cgroup("twin"))))
    local dirs = assert(cgroups.dirs(env:cgroup("twin")))
    if dirs.freezer then assert.are.equal("THAWED", read(dirs.freezer, "freezer.state")) end
    if dirs.unified then assert.are.equal("0", read(dirs.unified, "cgroup.freeze")) end
    assert.is_not_nil(core.read_file("/proc/" .. pid .. "/stat"):match("%) S "))
    assert.are.equal(0, env:run("tasks.lua", "kill", "-s", "9", "twin").code)
    assert.are.equal(137, env:run("tasks.lua", "wait", "twin").code)
    assert.are.equal(0, env:run("tasks.lua", "delete", "twin").code)
    assert.are.equal(0, env:run("containers.lua", "rm", "twin").code)
    assert.are.same({}, env:leftovers("twin"))
  end)

  it("a frozen cgroup, with no process in it, is refused, and left as it was", function()
    local dirs = assert(cgroups.dirs(env:cgroup("frz")))
    for _, hier in ipairs({ "freezer", "unified" }) do
      local dir = dirs[hier]
      if dir then
        assert(core.mkdir_p(dir, 493))
        local file, frozen, thawed = "cgroup.freeze", "1", "0"
        if hier == "freezer" then file, frozen, thawed = "freezer.state", "FROZEN", "THAWED" end
        finally(function()
          os.execute(("(echo %s > %s/%s; rmdir %s) 2>/dev/null"):format(thawed, dir, file, dir))
        end)
        S.must(("echo %s > %s/%s"):format(frozen, dir, file))
        -- bounded: a runtime that takes the cgroup starts a container that never runs (the
        -- finally above thaws it, which ends that run)
        local r = env:spawn("run.lua", "--rm", IMAGE, "frz", "true"):wait(20)
        assert.are.equal(125, r.code, r.stderr)
        assert.matches("^ctrlua: container's cgroup unexpectedly frozen: `" .. dir:gsub("[%-%.]", "%%%0"), r.stderr)
        -- the frozen cgroup is still there (it is not ours); nothing else of the run is
        assert.is_not_nil(core.stat(dir))
        for name, d in pairs(dirs) do
          if d ~= dir then assert.is_nil(core.stat(d), name .. " " .. d) end
        end
        assert.are.same({}, env:leftovers())
        assert.is_nil(core.stat(env:state_dir("frz")))
        S.must(("echo %s > %s/%s; rmdir %s"):format(thawed, dir, file, dir))
      end
    end
  end)

  it("--cgroup \"\" puts the container in no cgroup of its own", function()
    local r = env:run("run.lua", "--rm", "--cgroup", "", IMAGE, "nocg", "cat", "/proc/self/cgroup")
    assert.are.equal(0, r.code, r.stderr)
    local mine = assert(core.read_file("/proc/self/cgroup"))
    -- the same cgroups as the caller's (ctrlua's, ours)
    assert.are.equal(mine, r.stdout)
    assert.is_nil(r.stdout:find("nocg", 1, true))
  end)

  it("--cgroup PATH puts it there", function()
    local r = env:run("run.lua", "--rm", "--cgroup", "/ctrlua-test-res/p1", IMAGE, "cg1", "cat", "/proc/self/cgroup")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("memory:/ctrlua%-test%-res/p1\n", r.stdout)
    cgroups.delete("/ctrlua-test-res")
    assert.is_nil(core.stat(assert(cgroups.dirs("/ctrlua-test-res/p1")).memory or "/nonexistent"))
  end)

  it("a pids limit (set here by a site policy) stops a fork bomb", function()
    local pol = os.tmpname()
    finally(function() os.remove(pol) end)
    local f = assert(io.open(pol, "w"))
    f:write([[return function(spec)
  spec.linux.resources = spec.linux.resources or {}
  spec.linux.resources.pids = { limit = 20 }
end
]])
    f:close()
    -- a child shell forks sleeps until fork fails (EAGAIN: busybox sh then gives up); the
    -- init counts what runs with builtins only (no fork is left), then ends them all (kill
    -- -1 from pid 1 spares only itself)
    local r = env:run("run.lua", "--rm", "--policy", pol, IMAGE, "bomb", "sh", "-c",
      "sh -c 'while :; do sleep 30 & done'; " ..
      "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n; kill -9 -1; exit 0")
    assert.are.equal(0, r.code, r.stderr)
    local n = tonumber(r.stdout:match("%d+"))
    assert.is_true(n ~= nil and n <= 20 and n >= 10, r.stdout)
    assert.matches("fork", r.stderr)
  end)

  -- the task through the library, as scripts/run.lua drives it, keeping its record
  local function library_run(id, argv, opts)
    local client = assert(require("ctr.client").new({ root = env.root, state = env.state, namespace = env.ns }))
    local def = run.def()
    local args = {}
    for _, a in ipairs(argv) do args[#args + 1] = a end
    local r = assert(cli.parse(def, args))
    local v = assert(run.validate(def, r))
    local c = assert(run.new_container(client, r.flags, v))
    local task = assert(c:new_task(require("ctr.cio").null_io()))
    assert(task:start())
    if opts and opts.during then opts.during(client, task) end
    local code = assert(task:wait())
    return code, task, c
  end

  it("a process allocating past --memory-limit ends with 137 and OOM is recorded", function()
    local code, task, c = library_run("oom", { "--memory-limit", "16777216", IMAGE, "oom",
      "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done" })
    finally(function() task:delete() c:delete() end)
    assert.are.equal(137, code)
    assert.is_true(task.st.oom)
    local st = core.json_decode(assert(core.read_file(env:state_dir() .. "/oom/status")))
    assert.is_true(st.oom)
    assert.are.equal(137, st.exit_code)
  end)

  it("a detached task killed by the OOM killer: the monitor records 137 and OOM", function()
    local r = env:run("run.lua", "-d", "--memory-limit", "16777216", IMAGE, "doom", "sh", "-c",
      "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
    assert.are.equal(0, r.code, r.stderr)
    local w = env:run("tasks.lua", "wait", "doom")
    assert.are.equal(137, w.code, w.stderr)
    local st = core.json_decode(assert(core.read_file(env:state_dir() .. "/doom/status")))
    assert.are.equal(137, st.exit_code)
    assert.is_true(st.oom)
    assert.are.equal(0, env:run("tasks.lua", "delete", "doom").code)
    assert.are.equal(0, env:run("containers.lua", "rm", "doom").code)
  end)

  -- a limit below what any process needs: the init is OOM-killed as it sets up or waits for
  -- start, and the run says so, with the status runc's callers (and docker) report
  it("--memory-limit 1: the init is OOM-killed at once; exit 137, the cause named, nothing left", function()
    for _, flags in ipairs({ { "--rm" }, { "-d" } }) do
      local args = { "run.lua" }
      for _, f in ipairs(flags) do args[#args + 1] = f end
      for _, a in ipairs({ "--memory-limit", "1", IMAGE, "tiny", "echo", "hi" }) do args[#args + 1] = a end
      local r = env:run(unpack(args))
      assert.are.equal(137, r.code, r.stderr)
      assert.are.equal("", r.stdout)
      assert.matches("^ctrlua: [^\n]*the container init %d+ [^\n]*OOM%-killed[^\n]*\n$", r.stderr)
      assert.is_nil(r.stderr:find("no container init is waiting", 1, true))
      assert.are.same({}, env:leftovers("tiny"))
      -- recorded as containerd does, a /tasks/oom event
      local oom = 0
      for line in assert(S.slurp(env:state_dir("events.log"))):gmatch("[^\n]+") do
        local ev = core.json_decode(line)
        if ev.topic == "/tasks/oom" and ev.id == "tiny" then oom = oom + 1 end
      end
      assert.are.equal(1, oom)
      os.remove(env:state_dir("events.log"))
    end
  end)

  it("a task that is not OOM-killed records no OOM; metrics while it runs", function()
    local m, tbl
    local code, task, c = library_run("met", { "--memory-limit", "33554432", IMAGE, "met",
      "sh", "-c", "sleep 1; exit 3" }, { during = function(client)
        m = assert(metrics.metrics(client, "met"))
        tbl = metrics.format_table(m)
      end })
    finally(function() task:delete() c:delete() end)
    assert.are.equal(3, code)
    assert.is_nil(task.st.oom)
    assert.is_true(m.stats.pids_current >= 1)
    assert.are.equal(33554432, m.stats.memory_limit)
    assert.is_false(m.oom)
    assert.matches("\nMETRIC%s+VALUE", tbl)
    local j = core.json_decode(metrics.format_json(m))
    assert.is_true(j.pids.current >= 1)
  end)
end)
