-- The `make bench` driver: runs every benchmark module in bench/ (each a file returning
-- `function(report)`, which calls report(result) once per result), each in its own pcall so
-- one failing does not stop the others, and prints one table of all results at the end.
--
--   luajit bench/run.lua            every module, in name order
--   luajit bench/run.lua NAME...    only those (bench/NAME.lua)
--
-- A result is a table { name =, unit =, median = [, min =, p90 =, max =, runs =, rss_kb =,
-- note =] } or { name =, error = }.  The Makefile sets LUA_PATH, LUA_CPATH, CTRLUA_BIN and
-- CTRLUA_TEST_IMAGE.
local core = require("ctr.core")

local BENCH_DIR = (arg and arg[0] or "bench/run.lua"):match("^(.*)/[^/]*$") or "."

local function module_names()
  local names = {}
  for _, f in ipairs(assert(core.listdir(BENCH_DIR))) do
    local name = f:match("^(.+)%.lua$")
    if name and name ~= "run" then names[#names + 1] = name end
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

local names = {}
for i = 1, #arg do names[#names + 1] = arg[i] end
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
      for _, p in ipairs({ "startup", "image", "container", "create", "start", "wait", "cleanup" }) do
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
os.exit(failed == 0 and 0 or 1)
