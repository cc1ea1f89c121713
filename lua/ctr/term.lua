--- The terminal and the clock, for commands: is a stream a terminal, progress lines, time.
-- @module ctr.term
local core = require("ctr.core")
local format = require("ctr.format")

local M = {}

local FDS = { stdin = 0, stdout = 1, stderr = 2 }

--- Is fd (a number, or "stdin" | "stdout" | "stderr") a terminal?
function M.isatty(fd)
  if type(fd) == "string" then fd = FDS[fd] end
  if type(fd) ~= "number" then error("term.isatty: fd: expected number or stream name", 2) end
  return core.isatty(fd) and true or false
end

--- Seconds since the epoch (a float).
function M.now() return core.now() end

--- Seconds of a monotonic clock (a float), for intervals.
function M.monotime() return core.monotime() end

--- A progress callback for ctr.images.import's opts.progress when stderr is a terminal, else
-- nil.  It draws one line "\r\27[K<name> (<size>)" at most every `interval` seconds (default
-- 0.05) and clears it when called with no name (the end).
-- @tparam[opt] table opts `stream` (default io.stderr), `interval`, `force` (draw even when
-- stderr is not a terminal), `width` (longest name shown, default 60)
function M.progress(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("term.progress: opts: expected table", 2) end
  if not opts.force and not M.isatty(2) then return nil end
  local stream = opts.stream or io.stderr
  local interval = opts.interval or 0.05
  local width = opts.width or 60
  local last = -math.huge
  return function(name, size)
    if name == nil then
      stream:write("\r\27[K")
    else
      local t = core.monotime()
      if t - last < interval then return end
      last = t
      local n = #name > width and "..." .. name:sub(-(width - 3)) or name
      stream:write("\r\27[K", n, " (", format.bytes(size or 0), ")")
    end
    stream:flush()
  end
end

return M
