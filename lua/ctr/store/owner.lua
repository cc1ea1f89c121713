--- Which process made something, and is it still there.  A process is named by its pid and its
-- start time (field 22 of /proc/PID/stat, in clock ticks since boot), so a reused pid is never
-- taken for the process that made a partial snapshot or a task.  What an interrupted operation
-- leaves is removed (by `ctrlua gc`, by the next unpack) only once its owner is provably gone:
-- no such pid, a pid whose start time differs, or a zombie (an exited process its parent has not
-- reaped: it does nothing more).
-- @module ctr.store.owner
local core = require("ctr.core")

local M = {}

--- The start time of a process, or nil when it is gone.
function M.start_time(pid)
  local st = core.proc_stat(pid)
  return st and st.start_time
end

--- Is pid a zombie (exited, not yet reaped)?
function M.zombie(pid)
  local st = core.proc_stat(pid)
  return st ~= nil and (st.state == "Z" or st.state == "X")
end

local me
--- This process: `{pid=, start_time=}`.
function M.me()
  if not me then
    local pid = core.getpid()
    me = { pid = pid, start_time = M.start_time(pid) }
  end
  return { pid = me.pid, start_time = me.start_time }
end

--- Is the process o (`{pid=, start_time=}`; start_time may be nil) running?
function M.alive(o)
  if type(o) ~= "table" or type(o.pid) ~= "number" or o.pid <= 0 then return false end
  local t = M.start_time(o.pid)
  if t == nil or (o.start_time ~= nil and t ~= o.start_time) then return false end
  return not M.zombie(o.pid)
end

--- Is o a process that is provably gone?  false when o names no process (nil, malformed): what
-- cannot be attributed is never taken for abandoned.
function M.gone(o)
  if type(o) ~= "table" or type(o.pid) ~= "number" or o.pid <= 0 or type(o.start_time) ~= "number" then
    return false
  end
  return not M.alive(o)
end

--- "PID" for messages.
function M.format(o)
  return type(o) == "table" and tostring(o.pid) or "?"
end

return M
