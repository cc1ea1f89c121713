-- cgroup: create-with-limits + delete of one container's cgroup, 100 times, on this machine's
-- hierarchy (every v1 hierarchy and the v2 mount, as the runtime does).
--
-- A module for bench/run.lua: `require("cgroup")(report)` runs it and calls report(result)
-- once with
--   { name = "cgroup", unit = "seconds", median = <median create+delete per container>,
--     create = <median create>, delete = <median delete>, runs = 100, mode = "v1"|"v2"|"hybrid" }.
-- Run directly (`luajit bench/cgroup.lua` with LUA_PATH=lua/?.lua and LUA_CPATH=build/lib/?.so,
-- as root) it prints the same.  The layout is read from mountinfo on every call, as the
-- Lua binding does, so that cost is included.
local core = require("ctr.core")

local N = 100

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function run(report)
  report = report or function(r)
    print(string.format("cgroup: median create+delete %.3f ms (create %.3f ms, delete %.3f ms; %d runs, %s)",
      r.median * 1e3, r.create * 1e3, r.delete * 1e3, r.runs, r.mode))
  end
  local layout = assert(core.cgroup_layout())
  if layout.mode == "none" then error("cgroup bench: no cgroup hierarchy is mounted", 0) end
  local resources = core.json_encode({
    memory = { limit = 64 * 1048576 },
    cpu = { shares = 512, quota = 50000, period = 100000 },
    pids = { limit = 100 },
  })
  local top = "/ctrlua-bench-" .. core.getpid()
  local total, creates, deletes = {}, {}, {}
  local ok, err = pcall(function()
    for i = 1, N do
      local path = top .. "/c" .. i
      local t0 = core.monotime()
      assert(core.cgroup_create(path, resources))
      local t1 = core.monotime()
      assert(core.cgroup_delete(path))
      local t2 = core.monotime()
      creates[i], deletes[i], total[i] = t1 - t0, t2 - t1, t2 - t0
    end
  end)
  core.cgroup_delete(top)
  if not ok then error(err, 0) end
  report({ name = "cgroup", unit = "seconds", median = median(total), create = median(creates),
    delete = median(deletes), runs = N, mode = layout.mode })
end

if arg and arg[0] and arg[0]:match("cgroup%.lua$") then
  run()
end
return run
