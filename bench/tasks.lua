-- tasks: the detached cycle `run.lua -d` + `tasks.lua kill -s KILL` + `tasks.lua delete` (each
-- a ctrlua process spawned with an argv, no shell, as a CI program in Lua runs them), 20 times,
-- and the resident memory of the monitor of a sleeping container (VmRSS of /proc/PID/status),
-- on an ext4 made for the run, in a namespace of the bench's own.
--
-- A module for bench/run.lua: `require("tasks")(report)` reports
--   { name = "tasks cycle", unit = "seconds", median =, min =, max =, runs = 20, target = 0.015, met = }
--   { name = "tasks run -d beside a writer", unit = "seconds", median =, runs = 3 } (no target: a
--     run -d while 200 MB another process wrote wait unsynced on the store's file system)
--   { name = "monitor rss", unit = "KiB", median = <VmRSS>, rss_kb = <VmRSS>, target = 256, met = }
-- Targets: the cycle at or below 15 ms, the monitor at or below 256 KiB.  The cycle's remainder,
-- when missed: run -d's phases (CTRLUA_TRACE=1), the v1 grace period and a directory's removal
-- as bench/_probes.lua measures them here.  (containerd's
-- `ctr run -d` + `ctr task kill` + `ctr task delete` is in bench/containerd.lua.)
local core = require("ctr.core")

local N = 20
local P = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_probes.lua")

local U = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_util.lua")
local q, median, sh = U.q, U.median, U.sh

local function run(report)
  report = report or function(r) print(r.name, r.median, r.unit) end
  local bin = assert(core.getenv("CTRLUA_BIN"), "CTRLUA_BIN not set")
  local image = assert(core.getenv("CTRLUA_TEST_IMAGE"), "CTRLUA_TEST_IMAGE not set")
  if core.geteuid() ~= 0 then error("tasks: needs root", 0) end
  -- The store and the state on an ext4 made for this run, as bench/run_latency.lua does: on
  -- the shared file system the cycle swung from 24 to 40 ms with what other processes wrote
  -- (each syncfs of run -d waits for their dirty data too, and new inodes step over the ones
  -- a module before this one freed).
  local fs = U.scratch_fs("tasks")
  local dir = fs.dir
  -- a namespace of the bench's own: cgroup paths are /NAMESPACE/ID on the host, shared by
  -- every store
  local ns = "ctrlua-bench-tasks"
  local base = ("%s --root %s --state %s -n %s "):format(q(bin), q(dir .. "/root"), q(dir .. "/state"), ns)
  -- the cycle's commands run as a CI program in Lua runs them: an argv each, no shell
  local function argv(...)
    local a = { bin, "--root", dir .. "/root", "--state", dir .. "/state", "-n", ns }
    for _, x in ipairs({ ... }) do a[#a + 1] = x end
    return a
  end
  -- this process's environment with CTRLUA_TRACE=1, for run.lua's phase timer
  local trace_env = U.trace_env()
  local function spawn_ok(a, env, stderr)
    local r, err = core.spawn({ argv = a, env = env, stdout = "null", stderr = stderr or "null" })
    if not r then error(table.concat(a, " ") .. ": " .. tostring(err), 0) end
    if r.code ~= 0 then
      error(("%s: exit code %s %s"):format(table.concat(a, " "), tostring(r.code), r.stderr or ""), 0)
    end
    return r
  end
  local ref = "ctrlua.test/busybox:latest"
  local ok, err = pcall(function()
    assert(sh(base .. "images.lua import " .. q(image)), "import the test image")
    local times, each, phases = {}, { run = {}, kill = {}, delete = {} }, {}
    for i = 1, N do
      local id = "b" .. i
      local t0 = core.monotime()
      local r = spawn_ok(argv("run.lua", "-d", ref, id, "sleep", "100"), trace_env, "pipe")
      local t1 = core.monotime()
      for name, ms in r.stderr:gmatch("phase%s+(%S+)%s+([%d.]+) ms") do
        phases[name] = phases[name] or {}
        table.insert(phases[name], tonumber(ms))
      end
      spawn_ok(argv("tasks.lua", "kill", "-s", "KILL", id))
      local t2 = core.monotime()
      spawn_ok(argv("tasks.lua", "delete", "-f", id))
      times[i] = core.monotime() - t0
      each.run[i], each.kill[i], each.delete[i] = t1 - t0, t2 - t1, t0 + times[i] - t2
      sh(base .. "containers.lua rm " .. id)
    end
    local s = {}
    for i, v in ipairs(times) do s[i] = v end
    table.sort(s)
    local m = median(times)
    -- where the cycle goes: each command's own median (they need not add up to the cycle's)
    local grace = P.grace(5)
    local parts = {}
    for _, name in ipairs({ "startup", "pull", "image", "container", "create", "start" }) do
      if phases[name] then parts[#parts + 1] = ("%s %.2f"):format(name, median(phases[name])) end
    end
    local function ms(v) return v and ("%.2f ms"):format(v) or "not measured" end
    local remainder = {
      ("%.2f ms over the target; run -d %.2f ms, its phases (median ms): %s"):format(m * 1000 - 15,
        median(each.run) * 1000, table.concat(parts, ", ")),
      ("run -d's create holds the monitor's start and, beside it, the durability point: an fsync "
        .. "of each record and directory the run made (%s for one record's fsync here, probed on a "
        .. "quiet file system); the kernel's v1 grace period (%s from "
        .. "idle, probed) is not waited for: the init moves itself into its v1 cgroups"):format(
        ms(P.fsync(dir, 10)), ms(grace)),
      ("kill %.2f ms and delete %.2f ms are a ctrlua process each; delete unmounts nothing (the "
        .. "monitor did at the init's exit) but removes the bundle and ten cgroups (%s per "
        .. "directory with a block on this store, probed); the snapshot goes with containers rm, "
        .. "not timed"):format(
        median(each.kill) * 1000, median(each.delete) * 1000, ms(P.remove_dir(dir, 10))) }
    report({ name = "tasks cycle", unit = "seconds", median = m, min = s[1],
      max = s[#s], runs = N, target = 0.015, met = m <= 0.015, remainder = remainder,
      note = ("run -d + tasks kill + tasks delete, target <= 15 ms; medians ms: run -d %.1f, kill %.1f, delete %.1f"):format(
        median(each.run) * 1000, median(each.kill) * 1000, median(each.delete) * 1000) })

    -- run -d while another process's writes wait unsynced on the store's file system: the
    -- durability point fsyncs what the run made, and a syncfs would wait for all of it
    local beside = {}
    for i = 1, 3 do
      local id = "w" .. i
      assert(sh(("dd if=/dev/zero of=%s bs=1M count=200 status=none"):format(q(dir .. "/root/writer"))),
        "write 200 MB beside the run")
      local t0 = core.monotime()
      spawn_ok(argv("run.lua", "-d", ref, id, "sleep", "100"))
      beside[i] = core.monotime() - t0
      spawn_ok(argv("tasks.lua", "delete", "-f", id))
      sh(base .. "containers.lua rm " .. id)
      os.remove(dir .. "/root/writer")
      sh("sync -f " .. q(dir))
    end
    table.sort(beside)
    report({ name = "tasks run -d beside a writer", unit = "seconds", median = median(beside),
      min = beside[1], max = beside[#beside], runs = #beside,
      note = "run -d with 200 MB another process wrote, unsynced, on the store's file system" })

    assert(sh(base .. "run.lua -d " .. ref .. " rss sleep 100"), "run -d")
    local st = core.json_decode(assert(core.read_file(dir .. "/state/" .. ns .. "/rss/status")))
    core.poll({}, 200) -- let it settle into its poll(2)
    local status = assert(core.read_file("/proc/" .. st.monitor_pid .. "/status"))
    local kb = tonumber(status:match("VmRSS:%s*(%d+)"))
    report({ name = "monitor rss", unit = "KiB", median = kb, rss_kb = kb, runs = 1,
      target = 256, met = kb <= 256, note = "target <= 256 KiB; containerd-shim-runc-v2 ~13 MB" })
    sh(base .. "tasks.lua delete -f rss")
    sh(base .. "containers.lua rm rss")
  end)
  fs.drop()
  os.execute("rmdir /sys/fs/cgroup/" .. ns .. " /sys/fs/cgroup/*/" .. ns .. " 2>/dev/null")
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("tasks%.lua$") then
  run()
end
return run
