--- Output formats of ctr's commands: sizes, ages, tables.
-- @module ctr.cmd.format
local cli = require("ctr.cmd.cli")

local M = {}

local UNITS = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" }

--- A size as ctr's progress.Bytes prints it: "3.0 KiB", "512.0 B".
function M.bytes(n)
  if type(n) ~= "number" then error("format.bytes: n: expected number", 2) end
  local f, i = n, 1
  while f >= 1024 and i < #UNITS do f, i = f / 1024, i + 1 end
  return ("%.1f %s"):format(f, UNITS[i])
end

--- A duration in seconds as docker's units.HumanDuration (ctr content ls's AGE): "Less than a
-- second", "About a minute", "3 hours", "2 weeks".
function M.human_duration(d)
  if type(d) ~= "number" then error("format.human_duration: d: expected number", 2) end
  local s = math.floor(d)
  if s < 1 then return "Less than a second" end
  if s == 1 then return "1 second" end
  if s < 60 then return s .. " seconds" end
  local m = math.floor(d / 60)
  if m == 1 then return "About a minute" end
  if m < 60 then return m .. " minutes" end
  local h = math.floor(d / 3600 + 0.5)
  if h == 1 then return "About an hour" end
  if h < 48 then return h .. " hours" end
  if h < 24 * 7 * 2 then return math.floor(h / 24) .. " days" end
  if h < 24 * 30 * 2 then return math.floor(h / 24 / 7) .. " weeks" end
  if h < 24 * 365 * 2 then return math.floor(h / 24 / 30) .. " months" end
  return math.floor(d / 3600 / 24 / 365) .. " years"
end

--- Rows (lists of strings) as ctr's tabwriter.NewWriter(w, 1, 8, 1, ' ', 0) writes them: each
-- column as wide as its widest cell plus `padding` (default 1), the last column unpadded.  Tabs
-- and newlines inside a cell become spaces.
-- @return the text, one line per row
function M.table(rows, padding)
  if type(rows) ~= "table" then error("format.table: rows: expected table", 2) end
  local lines = {}
  for i, r in ipairs(rows) do
    if type(r) ~= "table" then error(("format.table: rows[%d]: expected table"):format(i), 2) end
    local cells = {}
    for j, c in ipairs(r) do cells[j] = (tostring(c):gsub("[\t\n]", " ")) end
    lines[i] = table.concat(cells, "\t") .. "\n"
  end
  return cli.tabwrite(table.concat(lines), 1, padding or 1)
end

return M
