--- The terminal, the clock and whole files, for commands: is a stream a terminal, progress
-- lines, time, reading and writing a file.
-- @module ctr.cmd.term
local core = require("ctr.core")
local sys = require("ctr.sys")

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

--- A time (seconds since the epoch; default now) in RFC 3339 with nanoseconds, UTC, as
-- containerd prints times.
function M.rfc3339(t) return core.rfc3339(t) end

--- Wait `ms` milliseconds (a poll(2) on nothing: no signal games).
function M.sleep(ms) core.poll({}, ms) end

--- Read a whole file of at most `cap` bytes (default 16 MiB): its content, or nil, err.
function M.read_file(path, cap)
  local data, err = sys.read_file(path, cap or 16 * 1024 * 1024)
  if not data then return nil, err end
  return data
end

--- Write a file atomically (temporary file, fsync, rename): true, or nil, err.
-- @tparam string path
-- @tparam string data
-- @tparam[opt] table opts `mode` (default 0644)
function M.write_file(path, data, opts)
  local ok, err = sys.write_file(path, data, opts or { mode = 420 })
  if not ok then return nil, err end
  return true
end

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
      -- (ctr.cmd.format is loaded by the first progress line, not by every command that asks
      -- whether a stream is a terminal)
      stream:write("\r\27[K", n, " (", require("ctr.cmd.format").bytes(size or 0), ")")
    end
    stream:flush()
  end
end

return M
