--- The collector's lock, ROOT/gc.lock: held exclusively while a collection runs, shared by an
-- operation while it creates or grows its lease (ctr.leases says what that orders) and by a
-- run while it prepares its snapshot on a chain it found unpacked.  A module of its own, so
-- that a run takes it without loading the leases' records.
-- @module ctr.store.gclock
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

-- flock() on a second open file of the same path waits for this process itself: a nested
-- with_gc_lock reuses the one already held (a shared one inside an exclusive one is held too).
local held = {}

--- The path of the collector's lock: ROOT/gc.lock.
function M.lock_path(root) return root .. "/gc.lock" end

--- Run fn() holding ROOT/gc.lock, exclusive when excl (the collector), else shared (an operation
-- creating or growing its lease).  Returns fn's results, or nil, err when the lock cannot be had.
-- Reentrant within a process.
function M.with_gc_lock(root, excl, fn)
  local path = M.lock_path(root)
  local h = held[path]
  if h then
    if excl and not h.excl then error("with_gc_lock: exclusive lock wanted inside a shared one", 2) end
    h.depth = h.depth + 1
    return errors.finally(function() h.depth = h.depth - 1 end, fn)
  end
  local fd, err = sys.lock(path, excl)
  if not fd and err.sym == "ENOENT" then
    -- a store not made yet (a first pull into a new root)
    local ok, merr = sys.mkdir_p(root, 448)
    if not ok then return nil, merr end
    fd, err = sys.lock(path, excl)
  end
  if not fd then return nil, err end
  held[path] = { excl = excl, depth = 1 }
  return errors.finally(function()
    held[path] = nil
    core.close(fd)
  end, fn)
end

return M
