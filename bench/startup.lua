-- startup: what a ctrlua process costs before it does any work, against a bare LuaJIT start.
--
--   version    `ctrlua --version` (the host alone: its libraries mapped, no Lua run)
--   images ls  `ctrlua images.lua ls` on a store holding the test image (the host, the script
--              and the modules of a small command, one record read)
--   floor      `luajit -e ''`
--
-- The machine is shared, so the runs are paired: each round runs the floor and each contestant
-- once, alternating, and the result is the median of the per-round ratios (contestant time /
-- floor time of the same round), with the median times beside.  No shell in between
-- (core.spawn with an argv, stdout and stderr to /dev/null).
--
-- A module for bench/run.lua: reports
--   { name = "startup/version", unit = "ratio", median = <ratio>, ratio =, target_ratio = 1.5,
--     met =, runs =, note = }
--   { name = "startup/images ls", ..., target_ratio = 2 }
--   { name = "startup/luajit", unit = "seconds", median = <floor time> }
-- and prints a MET or MISSED line for each target.  Run directly (`luajit bench/startup.lua`
-- with the environment `make bench` sets) it prints the same.
local core = require("ctr.core")

local N = 200
local WARMUP = 20
local BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
local IMAGE_TAR = os.getenv("CTRLUA_TEST_IMAGE") or "build/images/busybox.oci.tar"

local median = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_util.lua").median

local function time(argv)
  local t0 = core.monotime()
  local r, msg = core.spawn({ argv = argv, stdout = "null", stderr = "null" })
  local t = core.monotime() - t0
  if not r then error(table.concat(argv, " ") .. ": " .. tostring(msg), 0) end
  if r.code ~= 0 then error(table.concat(argv, " ") .. ": exit code " .. r.code, 0) end
  return t
end

local function run(report)
  report = report or function(r) print(r.name, r.median, r.unit) end
  local dir = io.popen("mktemp -d"):read("*l")
  local ok, err = pcall(function()
    local store = { BIN, "--root", dir .. "/root", "--state", dir .. "/state" }
    local function with(...)
      local argv = {}
      for i, v in ipairs(store) do argv[i] = v end
      for _, v in ipairs({ ... }) do argv[#argv + 1] = v end
      return argv
    end
    time(with("images.lua", "import", IMAGE_TAR))
    local floor_argv = { "luajit", "-e", "" }
    local contestants = {
      { name = "startup/version", argv = { BIN, "--version" }, target = 1.5 },
      { name = "startup/images ls", argv = with("images.lua", "ls"), target = 2 },
    }
    for _ = 1, WARMUP do
      time(floor_argv)
      for _, c in ipairs(contestants) do time(c.argv) end
    end
    local floor = {}
    for _, c in ipairs(contestants) do c.times, c.ratios = {}, {} end
    for i = 1, N do
      local f = time(floor_argv)
      floor[i] = f
      for _, c in ipairs(contestants) do
        local t = time(c.argv)
        c.times[i] = t
        c.ratios[i] = t / f
      end
    end
    report({ name = "startup/luajit", unit = "seconds", median = median(floor), runs = N,
      note = "luajit -e '' (the floor of the ratios)" })
    for _, c in ipairs(contestants) do
      local ratio = median(c.ratios)
      local met = ratio <= c.target
      report({ name = c.name, unit = "ratio", median = ratio, ratio = ratio, target_ratio = c.target,
        met = met, runs = N,
        note = ("%.2f ms vs luajit %.2f ms, paired; target <= %.1fx"):format(median(c.times) * 1000,
          median(floor) * 1000, c.target) })
      print(("%s %s: %.2fx bare luajit start-up (target %.1fx)"):format(met and "MET" or "MISSED", c.name,
        ratio, c.target))
    end
  end)
  core.remove_tree(dir)
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("startup%.lua$") then
  run()
end
return run
