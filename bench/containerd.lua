-- containerd: what ctrlua replaces, on the same machine in the same run.  Debian's containerd
-- is started by the bench on a private socket, with its root and state in a temporary
-- directory and the CRI plugin off (spec/support/containerd.lua; /etc/containerd and the
-- host's socket are never used), the test image imported into it, and stopped at the end.
--
--   containerd/ctr run --rm   `ctr run --rm IMAGE ID /bin/true`, a fresh ID each run (the
--                             counterpart of run_latency/ctrlua)
--   containerd/tasks cycle    `ctr run -d IMAGE ID sleep 100` + `ctr task kill -s KILL ID` +
--                             `ctr task delete ID` once the task has stopped (the counterpart
--                             of bench/tasks.lua's cycle; `ctr containers rm` is not timed)
--
-- N runs each after two warm-up runs, each command a process of its own started from a shell
-- (so a few hundred microseconds of sh are counted, as in bench/tasks.lua).
-- A module for bench/run.lua: `require("containerd")(report)` reports
--   { name = "containerd/ctr run --rm", unit = "ms", median =, min =, p90 =, max =, runs = N }
--   { name = "containerd/tasks cycle", unit = "seconds", median =, min =, max =, runs = N }
-- Neither has a target: they are the reference the ctrlua numbers are read against.
local core = require("ctr.core")
local C = require("support.containerd")
local S = require("support.ctrlua")

local N = 10
local q = S.q

local function sorted(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s
end

local function median(t)
  local s = sorted(t)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function timed(cmd)
  local t0 = core.monotime()
  local out, rc = S.sh(cmd .. " </dev/null")
  if rc ~= 0 then error(("command failed (%s): %s\n%s"):format(rc, cmd, out), 0) end
  return core.monotime() - t0
end

local function run(report)
  report = report or function(r) print(r.name, r.median, r.unit) end
  if not C.available() then error("containerd: /usr/bin/containerd and /usr/bin/ctr are needed", 0) end
  if core.geteuid() ~= 0 then error("containerd: needs root", 0) end
  local d = C.start()
  local ok, err = pcall(function()
    local ctr = d:ctr_cmd()
    local image = S.IMAGE
    for i = 1, 2 do timed(("%s run --rm %s warm%d /bin/true"):format(ctr, image, i)) end
    local times = {}
    for i = 1, N do
      times[i] = timed(("%s run --rm %s rm%d /bin/true"):format(ctr, image, i)) * 1000
    end
    local s = sorted(times)
    report({ name = "containerd/ctr run --rm", unit = "ms", median = median(s), min = s[1],
      p90 = s[math.max(1, math.ceil(0.9 * #s))], max = s[#s], runs = N,
      note = "ctr run --rm /bin/true (containerd 1.6, private socket)" })

    local cycle = {}
    for i = 1, N + 2 do
      local id = "d" .. i
      local t0 = core.monotime()
      timed(("%s run -d %s %s sleep 100"):format(ctr, image, q(id)))
      timed(("%s task kill -s KILL %s"):format(ctr, q(id)))
      -- `task delete` refuses a task that has not stopped yet: wait for it, as the kill
      -- returns before the exit is seen
      S.until_true(function()
        local out = S.sh(("%s task ls"):format(ctr))
        return not out:match("\n" .. id .. "%s+%d+%s+RUNNING")
      end, 10, "task " .. id .. " stopped")
      timed(("%s task delete %s"):format(ctr, q(id)))
      if i > 2 then cycle[#cycle + 1] = core.monotime() - t0 end
      S.sh(("%s containers rm %s"):format(ctr, q(id)))
    end
    local c = sorted(cycle)
    report({ name = "containerd/tasks cycle", unit = "seconds", median = median(c), min = c[1],
      max = c[#c], runs = N, note = "ctr run -d + task kill + task delete" })
  end)
  d:stop()
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("containerd%.lua$") then
  run()
end
return run
