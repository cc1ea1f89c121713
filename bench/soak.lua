-- soak: `make soak` (not part of `make test`).  On one store, in a namespace of its own:
--   1. SOAK_RUNS (1,000) `run.lua --rm IMAGE ID true`, each ID new;
--   2. SOAK_CYCLES (200) `run.lua -d` + `tasks.lua kill -s KILL` + `tasks.lua wait` +
--      `tasks.lua delete` + `containers.lua rm`;
--   3. SOAK_PARALLEL (8) `run.lua --rm` of distinct IDs at once, SOAK_ROUNDS (25) times.
-- Before and after each phase it counts what a leak would leave: mounts under the store,
-- cgroups under /NS in every hierarchy, entries under STATE, record files, snapshot directories,
-- ingest files, processes in the namespace's cgroups, monitors of the store, the open fds of a
-- sentinel task's monitor (asked to pause and resume now and then) and of a container's init;
-- all must be equal.  The host's allocated file handles (/proc/sys/fs/file-nr) are printed too,
-- for information only: other work on the machine moves them.  It prints the time per run at
-- the start and at the end (the medians of the first and the last 100 runs) beside the time of
-- a bare `sh -c true` measured after each run, whose ratio tells how much the machine's load
-- moved meanwhile: the runs must not drift by more than 50% beyond it.  Then a summary; it exits
-- 1 on any failure or leftover.
local core = require("ctr.core")

local RUNS = tonumber(os.getenv("SOAK_RUNS") or "") or 1000
local CYCLES = tonumber(os.getenv("SOAK_CYCLES") or "") or 200
local PARALLEL = tonumber(os.getenv("SOAK_PARALLEL") or "") or 8
local ROUNDS = tonumber(os.getenv("SOAK_ROUNDS") or "") or 25
local REF = "ctrlua.test/busybox:latest"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == 0 or ok == true
end

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("*a")
  p:close()
  return out
end

local function median(t, from, to)
  local s = {}
  for i = from or 1, to or #t do s[#s + 1] = t[i] end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

-- Entries under path; a task's rootfs (a mount of its snapshot) counts as one.
local function count_tree(path)
  local n = 0
  for _, name in ipairs(core.listdir(path) or {}) do
    n = n + 1
    local p = path .. "/" .. name
    local st = core.stat(p, true)
    if st and st.type == "directory" and name ~= "rootfs" then n = n + count_tree(p) end
  end
  return n
end

local function zombie(pid)
  local st = core.read_file("/proc/" .. pid .. "/stat", 4096)
  return not st or st:match(".*%)%s(%S)") == "Z"
end

local function fds(pid)
  return #(core.listdir("/proc/" .. pid .. "/fd") or {})
end

local bin = assert(core.getenv("CTRLUA_BIN"), "CTRLUA_BIN not set")
local image = assert(core.getenv("CTRLUA_TEST_IMAGE"), "CTRLUA_TEST_IMAGE not set")
local dir = capture("mktemp -d /tmp/ctrlua-soak.XXXXXX"):gsub("%s+$", "")
local ns = ("soak-%d"):format(core.getpid())
local root, state = dir .. "/root", dir .. "/state"
local base = ("%s --root %s --state %s -n %s "):format(q(bin), q(root), q(state), ns)

local sentinel_monitor

-- What a leak would leave, by name.
local function counts()
  local c = {}
  local mounts = 0
  for _, e in ipairs(core.mountinfo() or {}) do
    if e.target:sub(1, #dir + 1) == dir .. "/" then mounts = mounts + 1 end
  end
  c.mounts = mounts
  -- the task cgroups /NS/ID (directories; the rest under /NS are the controllers' files)
  local cgroups = 0
  for _, e in ipairs(core.mountinfo() or {}) do
    if e.fstype == "cgroup" or e.fstype == "cgroup2" then
      for _, name in ipairs(core.listdir(e.target .. "/" .. ns) or {}) do
        local st = core.stat(e.target .. "/" .. ns .. "/" .. name, true)
        if st and st.type == "directory" then cgroups = cgroups + 1 end
      end
    end
  end
  c.cgroups = cgroups
  c.state_entries = count_tree(state)
  c.records = count_tree(root .. "/meta")
  c.snapshot_dirs = #(core.listdir(root .. "/snapshots/overlayfs/snapshots") or {})
  c.ingest_files = #(core.listdir(root .. "/content/ingest") or {})
  local procs, monitors = 0, 0
  for _, name in ipairs(core.listdir("/proc") or {}) do
    if name:match("^%d+$") and not zombie(name) then
      local cg = core.read_file("/proc/" .. name .. "/cgroup", 65536) or ""
      if cg:find(":/" .. ns .. "/", 1, true) then procs = procs + 1 end
      local cmd = (core.read_file("/proc/" .. name .. "/cmdline", 65536) or ""):gsub("%z", " ")
      if cmd:match("^ctrlua%-monitor ") and cmd:find(state, 1, true) then monitors = monitors + 1 end
    end
  end
  c.processes = procs
  c.monitors = monitors
  c.sentinel_monitor_fds = sentinel_monitor and fds(sentinel_monitor) or 0
  return c
end

local function file_nr()
  local s = core.read_file("/proc/sys/fs/file-nr") or ""
  return tonumber(s:match("^(%d+)")) or 0
end

local failures = {}
local function fail(msg)
  failures[#failures + 1] = msg
  io.stderr:write("soak: FAIL: ", msg, "\n")
end

local KEYS = { "mounts", "cgroups", "state_entries", "records", "snapshot_dirs", "ingest_files",
  "processes", "monitors", "sentinel_monitor_fds" }

local function compare(phase, before, after)
  local parts = {}
  for _, k in ipairs(KEYS) do
    parts[#parts + 1] = ("%s %d→%d"):format(k, before[k], after[k])
    if before[k] ~= after[k] then fail(("%s: %s %d before, %d after"):format(phase, k, before[k], after[k])) end
  end
  print(("  %s: %s"):format(phase, table.concat(parts, ", ")))
end

-- The fds of a run's init, as it counts them itself (0, 1, 2 and the one ls opens).
local function init_fds(id)
  local out = capture(base .. "run.lua --rm " .. REF .. " " .. id .. " sh -c 'ls /proc/self/fd | wc -l'")
  return tonumber(out:match("(%d+)"))
end

local ok, err = pcall(function()
  assert(sh(base .. "images.lua import " .. q(image)), "import the test image")
  -- the sentinel: a detached task whose monitor lives through the whole soak
  assert(sh(base .. "run.lua -d " .. REF .. " sentinel sleep 100000"), "run -d the sentinel")
  local st = core.json_decode(assert(core.read_file(state .. "/" .. ns .. "/sentinel/status")))
  sentinel_monitor = st.monitor_pid
  core.poll({}, 100)
  local start = counts()
  local nr0 = file_nr()
  local fds0 = init_fds("fds0")
  print(("soak: store %s, namespace %s"):format(dir, ns))
  print(("  start: %s; the host's file handles %d; a container's init has %s fds"):format(
    (function()
      local p = {}
      for _, k in ipairs(KEYS) do p[#p + 1] = k .. " " .. start[k] end
      return table.concat(p, ", ")
    end)(), nr0, tostring(fds0)))

  -- 1. run --rm
  local times, floor = {}, {}
  local t_all = core.monotime()
  for i = 1, RUNS do
    local t0 = core.monotime()
    if not sh(base .. "run.lua --rm " .. REF .. " r" .. i .. " true") then fail("run --rm r" .. i) end
    local t1 = core.monotime()
    times[i] = t1 - t0
    sh("sh -c true")
    floor[i] = core.monotime() - t1
  end
  local total = core.monotime() - t_all
  local n = math.min(100, #times)
  local first, last = median(times, 1, n), median(times, #times - n + 1, #times)
  local ffirst, flast = median(floor, 1, n), median(floor, #floor - n + 1, #floor)
  local drift = (last / first) / (flast / ffirst)
  print(("run --rm: %d runs in %.1f s; median of the first 100 %.1f ms, of the last 100 %.1f ms, of all %.1f ms")
    :format(RUNS, total, first * 1000, last * 1000, median(times) * 1000))
  print(("  a bare sh -c true meanwhile: %.2f ms at the start, %.2f ms at the end; the runs' drift beyond the load's: %.2f")
    :format(ffirst * 1000, flast * 1000, drift))
  if drift > 1.5 then fail(("run --rm drifts: %.1f ms at the start, %.1f ms at the end (x%.2f beyond the load's)")
    :format(first * 1000, last * 1000, drift)) end
  local after1 = counts()
  compare("after the runs", start, after1)

  -- 2. run -d, kill, wait, delete
  local ctimes = {}
  for i = 1, CYCLES do
    local id = "d" .. i
    local t0 = core.monotime()
    local good = sh(base .. "run.lua -d " .. REF .. " " .. id .. " sleep 100")
      and sh(base .. "tasks.lua kill -s KILL " .. id)
    os.execute(base .. "tasks.lua wait " .. id .. " >/dev/null 2>&1")
    good = good and sh(base .. "tasks.lua delete " .. id) and sh(base .. "containers.lua rm " .. id)
    ctimes[i] = core.monotime() - t0
    if not good then fail("run -d cycle " .. id) end
    if i % 10 == 0 then
      -- requests to a monitor that lives on: none may cost it an fd
      if not (sh(base .. "tasks.lua pause sentinel") and sh(base .. "tasks.lua resume sentinel")) then
        fail("pause/resume the sentinel")
      end
    end
  end
  print(("run -d + kill + wait + delete + rm: %d cycles; median of the first 50 %.1f ms, of the last 50 %.1f ms")
    :format(CYCLES, median(ctimes, 1, math.min(50, #ctimes)) * 1000,
      median(ctimes, math.max(1, #ctimes - 49), #ctimes) * 1000))
  compare("after the cycles", start, counts())

  -- 3. PARALLEL runs at once
  local pt0 = core.monotime()
  for r = 1, ROUNDS do
    local parts = {}
    for j = 1, PARALLEL do
      parts[#parts + 1] = ("(%srun.lua --rm %s p%d-%d true >/dev/null 2>&1 || echo fail) &"):format(base, REF, r, j)
    end
    local out = capture(table.concat(parts, " ") .. " wait")
    local nfail = select(2, out:gsub("fail", ""))
    if nfail > 0 then fail(("round %d: %d of %d concurrent runs failed"):format(r, nfail, PARALLEL)) end
  end
  print(("concurrent run --rm: %d rounds of %d in %.1f s"):format(ROUNDS, PARALLEL, core.monotime() - pt0))
  compare("after the concurrent runs", start, counts())

  local fds1 = init_fds("fds1")
  if fds0 ~= fds1 then fail(("a container's init had %s fds at the start, %s at the end"):format(tostring(fds0), tostring(fds1))) end
  local nr1 = file_nr()
  print(("  the host's file handles: %d at the start, %d at the end (for information: other work moves them)")
    :format(nr0, nr1))
  print(("  a container's init: %s fds at the start, %s at the end"):format(tostring(fds0), tostring(fds1)))
end)
if not ok then fail(tostring(err)) end
sh(base .. "tasks.lua delete -f sentinel")
sh(base .. "containers.lua rm -f sentinel")
os.execute("grep -o ' " .. dir .. "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r umount -l 2>/dev/null")
core.remove_tree(dir)
if #failures > 0 then
  print(("soak: %d failure(s)"):format(#failures))
  os.exit(1)
end
print("soak: no leftovers, no drift")
