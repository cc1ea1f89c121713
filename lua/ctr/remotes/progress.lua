--- ctr's progress display for pull, push and import (cmd/ctr/commands/content's Display): one
-- line per blob — its ref, its status and a bar, with bytes while it moves — then
-- `elapsed: … total: … (…/s)`, redrawn in place on a terminal.  ctrlua adds one line per layer
-- being unpacked (bytes applied of the layer's size), since layers unpack while they download.
-- @module ctr.remotes.progress
local core = require("ctr.core")
local cli = require("ctr.cmd.cli")
local format = require("ctr.cmd.format")

local M = {}

local Display = {}
Display.__index = Display

--- A display writing to stream (default io.stdout), redrawn at most every interval seconds.
function M.new(opts)
  opts = opts or {}
  return setmetatable({ stream = opts.stream or io.stdout, interval = opts.interval or 0.1,
    start = core.monotime(), rows = {}, order = {}, lines = 0, last = -math.huge }, Display)
end

--- Set a row: ref (e.g. "layer-sha256:…"), status ("resolving", "waiting", "downloading",
-- "uploading", "unpacking", "done", "exists", ...), offset and total bytes.
function Display:set(ref, status, offset, total)
  local r = self.rows[ref]
  if not r then
    r = { ref = ref }
    self.rows[ref] = r
    self.order[#self.order + 1] = ref
  end
  r.status, r.offset, r.total = status, offset or r.offset or 0, total or r.total or 0
end

local function bar(frac)
  local pad = 38
  local done = math.floor(pad * math.max(0, math.min(1, frac)))
  return "|\27[32m" .. ("+"):rep(done) .. "\27[0m" .. (" "):rep(pad - done) .. "|"
end
M.bar = bar

local MOVING = { downloading = true, uploading = true, unpacking = true }

--- The display's text (as ctr's Display writes it into its tabwriter).
function Display:text(final)
  local b, total = {}, 0
  for _, ref in ipairs(self.order) do
    local r = self.rows[ref]
    if r.status ~= "unpacking" and r.status ~= "unpacked" then total = total + (r.offset or 0) end
    if MOVING[r.status] then
      local frac = (r.total or 0) > 0 and r.offset / r.total or 0
      b[#b + 1] = ("%s:\t%s\t%s\t%8.8s/%s\t\n"):format(r.ref, r.status, bar(frac),
        format.bytes(r.offset), format.bytes(r.total or 0))
    elseif r.status == "resolving" or r.status == "waiting" then
      b[#b + 1] = ("%s:\t%s\t%s\t\n"):format(r.ref, r.status, bar(0))
    else
      b[#b + 1] = ("%s:\t%s\t%s\t\n"):format(r.ref, r.status, bar(1))
    end
  end
  local el = core.monotime() - self.start
  b[#b + 1] = ("elapsed: %-4.1fs\ttotal: %7.6s\t(%s/s)\t\n"):format(el, format.bytes(total),
    format.bytes(el > 0 and total / el or 0))
  return cli.tabwrite(table.concat(b), 1, 1), total
end

--- Redraw (at most every interval seconds unless force).
function Display:draw(force)
  local t = core.monotime()
  if not force and t - self.last < self.interval then return end
  self.last = t
  local text = self:text()
  local out = {}
  if self.lines > 0 then out[1] = ("\27[%dA"):format(self.lines) end
  for line in text:gmatch("[^\n]*\n") do out[#out + 1] = "\27[2K" .. line end
  self.stream:write(table.concat(out))
  self.stream:flush()
  local n = 0
  for _ in text:gmatch("\n") do n = n + 1 end
  self.lines = n
end

return M
