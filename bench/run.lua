-- The `make bench` driver: runs every benchmark module in bench/ (each a file returning
-- `function(report)`, which calls report(result) once per result), each in its own pcall so
-- one failing does not stop the others, and prints one table of all results at the end.
--
--   luajit bench/run.lua [OPTION] [NAME...]   every module in name order, or only bench/NAME.lua
--     --check FILE      then compare with the baseline FILE (`make bench-check`): exit 1 when
--                       a ratio is more than 20% above the baseline's; a baseline taken on
--                       another kind of machine (nproc, memory, kernel) is reported, skipped
--     --baseline FILE   then write the results with targets to FILE (`make bench-baseline`)
--     --note TEXT       with --baseline: a note kept in the file (how it was taken)
--
-- A result is a table { name =, unit =, median = [, min =, p90 =, max =, runs =, rss_kb =,
-- note =] } or { name =, error = }.  A result with a target has either target_ratio, ratio and
-- met (a ratio against another program, lower is better) or target (an absolute bound in its
-- unit, on median) and met; after the table one line each says `MET name: measured X
-- (target Y)` or `MISSED ...`; a MISSED result's remainder (a list of lines: where the
-- difference goes, by phase, and which part of it the kernel or the file system charges, as
-- bench/_probes.lua measures it) is printed under it.  The Makefile sets LUA_PATH, LUA_CPATH, CTRLUA_BIN and
-- CTRLUA_TEST_IMAGE.
local core = require("ctr.core")

local BENCH_DIR = (arg and arg[0] or "bench/run.lua"):match("^(.*)/[^/]*$") or "."

local function module_names()
  local names = {}
  for _, f in ipairs(assert(core.listdir(BENCH_DIR))) do
    local name = f:match("^(.+)%.lua$")
    -- soak.lua is a script of its own (`make soak`), not a module; _NAME.lua are helpers
    if name and name ~= "run" and name ~= "soak" and not name:match("^_") then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local function fmt_num(v, unit)
  if type(v) ~= "number" then return "" end
  if unit == "seconds" then return ("%.3f ms"):format(v * 1000) end
  if unit == "ms" then return ("%.2f ms"):format(v) end
  return ("%.3f"):format(v)
end

local names, check_file, baseline_file, baseline_note = {}, nil, nil, nil
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--check" then check_file, i = arg[i + 1], i + 1
    elseif a == "--baseline" then baseline_file, i = arg[i + 1], i + 1
    elseif a == "--note" then baseline_note, i = arg[i + 1], i + 1
    else names[#names + 1] = a end
    i = i + 1
  end
end
if #names == 0 then names = module_names() end

local results = {}
for _, name in ipairs(names) do
  io.stdout:write(("== %s\n"):format(name))
  io.stdout:flush()
  local t0 = core.monotime()
  local got = 0
  local ok, err = pcall(function()
    local path = BENCH_DIR .. "/" .. name .. ".lua"
    if not core.stat(path) then error("no benchmark " .. path, 0) end
    local fn = dofile(path)
    if type(fn) ~= "function" then error(path .. " does not return a function", 0) end
    fn(function(r)
      got = got + 1
      r.name = r.name or name
      results[#results + 1] = r
    end)
  end)
  if not ok then
    results[#results + 1] = { name = name, error = tostring(err) }
  elseif got == 0 then
    results[#results + 1] = { name = name, error = "reported no result" }
  end
  io.stdout:write(("== %s: %s (%.1f s)\n\n"):format(name, ok and "done" or "FAILED", core.monotime() - t0))
end

-- the table
local rows = { { "benchmark", "median", "min", "p90", "max", "runs", "peak RSS", "note" } }
for _, r in ipairs(results) do
  if r.error then
    rows[#rows + 1] = { r.name, "FAILED", "", "", "", "", "", (tostring(r.error):gsub("\n.*", "")) }
  else
    local note = r.note or ""
    if r.unit == "ratio" then note = "ratio" .. (note ~= "" and "; " .. note or "") end
    if r.mode then note = r.mode .. (note ~= "" and "; " .. note or "") end
    if r.phases then
      local parts = {}
      for _, p in ipairs({ "startup", "pull", "image", "container", "create", "start", "wait", "cleanup" }) do
        if r.phases[p] then parts[#parts + 1] = ("%s %.2f"):format(p, r.phases[p]) end
      end
      note = note .. "; phases ms: " .. table.concat(parts, ", ")
    end
    rows[#rows + 1] = { r.name, fmt_num(r.median, r.unit), fmt_num(r.min, r.unit), fmt_num(r.p90, r.unit),
      fmt_num(r.max, r.unit), type(r.runs) == "number" and tostring(r.runs) or (type(r.runs) == "table" and tostring(#r.runs) or ""),
      r.rss_kb and ("%d KB"):format(r.rss_kb) or "", note }
  end
end
local widths = {}
for _, row in ipairs(rows) do
  for i = 1, #row - 1 do widths[i] = math.max(widths[i] or 0, #row[i]) end
end
local failed = 0
for k, row in ipairs(rows) do
  local cells = {}
  for i = 1, #row - 1 do
    cells[i] = i == 1 and ("%-" .. widths[i] .. "s"):format(row[i]) or ("%" .. widths[i] .. "s"):format(row[i])
  end
  cells[#row] = row[#row]
  print(table.concat(cells, "  "))
  if k > 1 and row[2] == "FAILED" then failed = failed + 1 end
end
-- the targets
local function fmt_target(v, unit)
  if unit == "seconds" then return ("%.2f ms"):format(v * 1000) end
  if unit == "ratio" or unit == nil then return ("%.3f"):format(v) end
  return ("%s %s"):format(v == math.floor(v) and ("%d"):format(v) or ("%.2f"):format(v), unit)
end
local targeted = {}
print("")
for _, r in ipairs(results) do
  if not r.error and (r.target_ratio or r.target) then
    targeted[#targeted + 1] = r
    local measured, target
    if r.target_ratio then
      measured, target = ("%.3f"):format(r.ratio), ("%.3f"):format(r.target_ratio)
    else
      measured, target = fmt_target(r.median, r.unit), fmt_target(r.target, r.unit)
    end
    print(("%s %s: measured %s (target %s)%s"):format(r.met and "MET" or "MISSED", r.name, measured,
      target, r.target_note and "  [" .. r.target_note .. "]" or ""))
    if not r.met and r.remainder then
      for _, line in ipairs(r.remainder) do print("    " .. line) end
    end
  end
end

-- The kind of machine a baseline belongs to: numbers from one kind do not bound another's.
local function machine_kind()
  local meminfo = core.read_file("/proc/meminfo") or ""
  local kb = tonumber(meminfo:match("MemTotal:%s*(%d+)")) or 0
  local p = io.popen("nproc")
  local nproc = tonumber(p:read("*l"))
  p:close()
  return { nproc = nproc, memory_gib = math.floor(kb / 1048576 + 0.5),
    kernel = ((core.read_file("/proc/sys/kernel/osrelease") or "?"):gsub("%s+$", "")) }
end

local function same_kind(a, b)
  return a.nproc == b.nproc and a.memory_gib == b.memory_gib and a.kernel == b.kernel
end

local function kind_str(k)
  return ("nproc %s, %s GiB, kernel %s"):format(k.nproc, k.memory_gib, k.kernel)
end

local check_failed = 0
if baseline_file then
  local entries = {}
  for _, r in ipairs(targeted) do
    entries[#entries + 1] = { name = r.name, unit = r.unit, median = r.median, ratio = r.ratio,
      target = r.target, target_ratio = r.target_ratio, met = r.met }
  end
  local doc = { machine = machine_kind(), taken = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    note = baseline_note or "", results = entries }
  assert(core.write_file(baseline_file, core.json_encode(doc, true) .. "\n", { mode = 420 }))
  print(("baseline: %d results written to %s (%s)"):format(#entries, baseline_file,
    kind_str(doc.machine)))
end
if check_file then
  local text = core.read_file(check_file)
  local doc = text and core.json_decode(text)
  local here = machine_kind()
  if not doc or type(doc.machine) ~= "table" then
    print(("bench-check: no baseline in %s: nothing to compare"):format(check_file))
  elseif not same_kind(doc.machine, here) then
    print(("bench-check: skipped: the baseline is of another kind of machine (%s; this one: %s)")
      :format(kind_str(doc.machine), kind_str(here)))
  else
    local base = {}
    for _, b in ipairs(doc.results or {}) do base[b.name] = b end
    for _, r in ipairs(targeted) do
      local b = base[r.name]
      if b and r.ratio and b.ratio then
        local worse = r.ratio > b.ratio * 1.2
        if worse then check_failed = check_failed + 1 end
        print(("%s %s: ratio %.3f, baseline %.3f (%+.0f%%)"):format(worse and "WORSE" or "ok   ",
          r.name, r.ratio, b.ratio, (r.ratio / b.ratio - 1) * 100))
      elseif b and b.median and r.median then
        print(("info  %s: %s, baseline %s (%+.0f%%; absolute, not checked)"):format(r.name,
          fmt_target(r.median, r.unit), fmt_target(b.median, b.unit), (r.median / b.median - 1) * 100))
      elseif not b then
        print(("new   %s: not in the baseline"):format(r.name))
      end
    end
    print(("bench-check: %d ratio(s) more than 20%% worse than %s"):format(check_failed, check_file))
  end
end
os.exit((failed == 0 and check_failed == 0) and 0 or 1)
