--- Leases, as containerd's leases package: what an operation holds while it writes blobs and
-- snapshots that no image or container record names yet, so that the garbage collection
-- (ctr.store.collect: `ctrlua gc`, `images prune`) does not take them from under it.
--
-- A lease is a record ROOT/meta/NS/leases/ID.json:
--
--     {"id": "…", "owner": {"pid": 123, "start_time": 456}, "since": 1700000000.5,
--      "content": ["sha256:…"], "snapshots": {"overlayfs": ["sha256:…"]}}
--
-- Its owner is the process that holds it (ctr.store.owner: a pid and its start time, so a
-- reused pid is never taken for it).  While the owner lives, the collector keeps what the lease
-- names, and every blob and committed snapshot made since the lease was taken (`since`): a blob
-- whose digest is known only once it is written is held from the moment it appears.  Once the
-- owner is gone the lease has expired: the collector removes it, and what only it held is
-- collected like anything else no record names.
--
-- The collector holds ROOT/gc.lock exclusively while it runs; a lease is taken and grown under
-- the same lock shared.  So a name added to a lease (`lease:add`) is either seen by a
-- collection that has not started yet, or added after one has ended: an operation adds what it
-- is about to rely on (a blob it found in the store, the parent snapshot of its next layer) and
-- only then looks whether it is there.
-- @module ctr.leases
local core = require("ctr.core")
local errors = require("ctr.errors")
local meta = require("ctr.store.meta")
local owner = require("ctr.store.owner")
local records = require("ctr.store.records")
local gclock = require("ctr.store.gclock")

local M = {}

local KIND = "leases"
M.KIND = KIND


--- The shape of a lease record (ctr.store.records).
M.shape = {
  id = "hex", owner = { fields = { pid = "count", start_time = "?count" } }, since = "number",
  created_at = "?string", content = "?table", snapshots = "?table",
}

-- ------------------------------------------------------------------ the collector's lock

--- The path of the collector's lock: ROOT/gc.lock (ctr.store.gclock).
M.lock_path = gclock.lock_path

--- Run fn() holding ROOT/gc.lock, exclusive when excl (the collector), else shared (an operation
-- creating or growing its lease); see ctr.store.gclock.with_gc_lock.
M.with_gc_lock = gclock.with_gc_lock

-- ------------------------------------------------------------------ records

-- The fields a lease's shape leaves loose: content an array of digests, snapshots an object of
-- arrays of keys.  nil, message when they are not.
local function check_resources(rec)
  local content = rec.content or {}
  if type(content) ~= "table" then return nil, 'field "content": expected array' end
  for i, d in pairs(content) do
    if type(i) ~= "number" or type(d) ~= "string" or not d:match("^sha256:" .. ("[0-9a-f]"):rep(64) .. "$") then
      return nil, ('field "content": entry %s is not a digest'):format(tostring(i))
    end
  end
  for driver, keys in pairs(rec.snapshots or {}) do
    if type(driver) ~= "string" or type(keys) ~= "table" then
      return nil, 'field "snapshots": expected an object of arrays of keys'
    end
    for _, k in pairs(keys) do
      if type(k) ~= "string" then return nil, ('field "snapshots.%s": expected strings'):format(driver) end
    end
  end
  return true
end

--- Read the lease `id` of namespace ns: the record, or nil, err (NOT_FOUND; CORRUPT naming the
-- file and the field).
function M.get(root, ns, id)
  local path = meta.path(root, ns, KIND, id)
  local rec, err = records.read(path, M.shape, { name_field = "id", name = id })
  if not rec then
    err.name = id
    return nil, err
  end
  local ok, msg = check_resources(rec)
  if not ok then
    local cerr = errors.corrupt("%s: %s", path, msg)
    cerr.path, cerr.name = path, id
    return nil, cerr
  end
  return rec
end

--- Every lease of namespace ns, and the errors of those that cannot be read.
-- @return recs, bad (arrays)
function M.list(root, ns)
  local recs, bad = {}, {}
  for _, id in ipairs(meta.list(root, ns, KIND)) do
    local rec, err = M.get(root, ns, id)
    if rec then
      recs[#recs + 1] = rec
    elseif err.sym ~= "NOT_FOUND" then
      bad[#bad + 1] = err
    end
  end
  return recs, bad
end

--- Is the lease rec held by a process that is still there?  false once its owner is provably
-- gone (ctr.store.owner.gone); a lease whose owner cannot be told is kept as live.
function M.live(rec)
  return not owner.gone(rec.owner)
end

--- Remove a lease record (NOT_FOUND when it is not there).
function M.delete(root, ns, id)
  return meta.delete(root, ns, KIND, id)
end

-- ------------------------------------------------------------------ a lease of this process

local Lease = {}
Lease.__index = Lease
M.Lease = Lease

local function arrays(rec)
  local snaps = {}
  for driver, keys in pairs(rec.snapshots) do
    local list = {}
    for k in pairs(keys) do list[#list + 1] = k end
    table.sort(list)
    snaps[driver] = core.json_array(list)
  end
  local content = {}
  for d in pairs(rec.content) do content[#content + 1] = d end
  table.sort(content)
  return { id = rec.id, owner = rec.owner, since = rec.since, created_at = rec.created_at,
    content = core.json_array(content), snapshots = snaps }
end

function Lease:_write(create)
  return M.with_gc_lock(self.root, false, function()
    return meta.put(self.root, self.namespace, KIND, self.id, arrays(self.rec), { create = create })
  end)
end

--- Take a lease for this process in the client's namespace.
-- @param client a ctr.client
-- @return the lease, or nil, err
function M.create(client)
  if type(client) ~= "table" or type(client.root) ~= "string" then
    error("leases.create: client: expected a ctr.client", 2)
  end
  local id = assert(core.random_hex(12))
  local lease = setmetatable({ root = client.root, namespace = client.namespace, id = id,
    rec = { id = id, owner = owner.me(), since = core.now(), created_at = core.rfc3339(),
      content = {}, snapshots = {} } }, Lease)
  local ok, err = lease:_write(true)
  if not ok then return nil, errors.wrap(err, "take a lease") end
  return lease
end

--- Add resources to the lease: `{content = {digest, ...}, snapshots = {driver = {key, ...}}}`.
-- When it returns, no collection removes them while this process lives; the caller looks
-- whether they are there only after.
-- @return true, or nil, err
function Lease:add(res)
  local new = false
  for _, d in ipairs(res.content or {}) do
    if not self.rec.content[d] then self.rec.content[d], new = true, true end
  end
  for driver, keys in pairs(res.snapshots or {}) do
    local have = self.rec.snapshots[driver] or {}
    self.rec.snapshots[driver] = have
    for _, k in ipairs(keys) do
      if not have[k] then have[k], new = true, true end
    end
  end
  if not new then return true end
  local ok, err = self:_write(false)
  if not ok then return nil, errors.wrap(err, "lease %s", self.id) end
  return true
end

--- Give the lease up: what it held is left to the records that name it.
-- @return true, or nil, err
function Lease:release()
  if self.released then return true end
  self.released = true
  local ok, err = M.delete(self.root, self.namespace, self.id)
  if not ok and err.sym ~= "NOT_FOUND" then return nil, err end
  return true
end

--- Run fn(lease) under a new lease, released afterwards (also when fn raises).  Returns fn's
-- results, or nil, err when no lease could be taken.
function M.with_lease(client, fn)
  local lease, err = M.create(client)
  if not lease then return nil, err end
  return errors.finally(function() lease:release() end, fn, lease)
end

return M
