--- Snapshotters, as containerd's snapshots.Snapshotter: "overlayfs" and "native".
--
-- A snapshot is a directory ROOT/snapshots/NAME/snapshots/ID/fs (and work/ for overlayfs),
-- shared by all namespaces; each namespace has its own records (key → id, kind, parent,
-- labels) in ROOT/meta/NS/snapshots.NAME/.  An active snapshot is writable; committing it
-- makes it a committed snapshot that others can be prepared on; a view is a read-only
-- snapshot of a committed parent.
--
-- Crash consistency (docs/crash-consistency.md): a snapshot directory is built under a
-- temporary name (.tmp-ID) and renamed into place before its record is written; so a crash
-- leaves at worst a directory that no record names, which the sweep (`snapshots.gc`; also run
-- by each process's first use of a snapshotter when there are temporary directories, or more
-- directories than records) removes.  The sweep never removes a directory
-- that a record it cannot read might name: while such a record is there (and its id cannot be
-- made out of its bytes), every directory stays.  Records change under the namespace lock, and
-- every change of a directory or record holds the snapshotter's lock shared, which the sweep
-- takes exclusively.
--
-- A snapshot made for something that is not recorded yet (unpack's `extract-…` keys, a
-- container's snapshot before its container record) is prepared with `partial = true`: its
-- record names its creator (this process, ctr.store.owner).  Once the creator is gone and no container
-- record names the snapshot, it is the leftover of an interrupted operation, which
-- `sweep_partial` (`ctrlua gc`, and each unpack for its `extract-…` keys) removes.
--
-- A directory holds fs/ (and work/ on overlayfs) and, from its prepare until a commit begins,
-- an empty directory `sole`: only one record, the active or view snapshot's, names it, so its removal need
-- not read every other record (which a commit's record may share it with, and an active or
-- view snapshot cannot be a parent).  A commit removes `sole` before the syncfs that precedes
-- its record; a directory without it (a commit cut short, or one made before `sole` was) is
-- removed as before, after every record of the namespace has been read.
-- @module ctr.snapshots
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")
local meta = require("ctr.store.meta")
local owner = require("ctr.store.owner")
local records = require("ctr.store.records")

local M = {}

local Snapshotter = {}
Snapshotter.__index = Snapshotter
M.Snapshotter = Snapshotter

local KINDS = { active = true, view = true, committed = true }
local DRIVERS = { overlayfs = true, native = true }

local function failed_precondition(fmt, ...)
  return errors.new(fmt:format(...) .. ": failed precondition", 0, "FAILED_PRECONDITION")
end

local function check_string(v, name, level)
  if type(v) ~= "string" or v == "" then
    error(("%s: expected non-empty string, got %s"):format(name, v == "" and "\"\"" or type(v)), level + 1)
  end
end

local function check_opts(opts, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("opts: expected table, got " .. type(opts), level + 1) end
  if opts.partial ~= nil and type(opts.partial) ~= "boolean" then
    error("opts.partial: expected boolean", level + 1)
  end
  if opts.ephemeral ~= nil and type(opts.ephemeral) ~= "boolean" then
    error("opts.ephemeral: expected boolean", level + 1)
  end
  if opts.nofsync ~= nil and type(opts.nofsync) ~= "boolean" then
    error("opts.nofsync: expected boolean", level + 1)
  end
  if opts.labels ~= nil then
    if type(opts.labels) ~= "table" then error("opts.labels: expected table", level + 1) end
    for k, v in pairs(opts.labels) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("opts.labels: keys and values must be strings", level + 1)
      end
    end
  end
  return opts
end

local function copy_labels(labels)
  local t = {}
  for k, v in pairs(labels or {}) do t[k] = v end
  return t
end

-- 96 random bits: unique across processes without a counter file or a lock
local function new_id()
  return assert(core.random_hex(12))
end

-- Is overlayfs usable?  /sys/module/overlay exists once the module is loaded (or built in);
-- otherwise try a real overlay mount in a scratch directory, as containerd's
-- overlayutils.Supported does (mounting loads the module).
local overlay_supported_cache = {}
local function overlay_supported(dir)
  if overlay_supported_cache[dir] ~= nil then return overlay_supported_cache[dir] end
  local ok = core.stat("/sys/module/overlay") ~= nil
  if not ok and core.geteuid() == 0 then
    local tmp = dir .. "/.tmp-probe-" .. new_id()
    if core.mkdir_p(tmp .. "/lower", 448) and core.mkdir(tmp .. "/upper", 448)
      and core.mkdir(tmp .. "/work", 448) and core.mkdir(tmp .. "/merged", 448) then
      ok = core.mount("overlay", "overlay", tmp .. "/merged",
        { "lowerdir=" .. tmp .. "/lower", "upperdir=" .. tmp .. "/upper", "workdir=" .. tmp .. "/work" }) ~= nil
      if ok then core.unmount(tmp .. "/merged", { detach = true }) end
    end
    core.remove_tree(tmp)
  end
  overlay_supported_cache[dir] = ok
  return ok
end

-- A kernel whose overlay knows the parameter keeps knowing it: a yes is asked once per
-- process, a no again each time (the module may be loaded since).
local overlay_index_known = false
local function overlay_has_index()
  if not overlay_index_known then
    overlay_index_known = core.stat("/sys/module/overlay/parameters/index") ~= nil
  end
  return overlay_index_known
end

local swept = {}

--- Open a snapshotter of the client's store.
-- @param client a ctr.client
-- @tparam[opt] string name "overlayfs" (the default: the client's) or "native"
-- @return the snapshotter, or nil, err (an unknown name: INVALID; overlayfs without kernel
-- support: an error suggesting `--snapshotter native`)
function M.get(client, name)
  if type(client) ~= "table" or type(client.root) ~= "string" then
    error("client: expected a ctr.client", 2)
  end
  name = name or client.snapshotter_name or "overlayfs"
  if type(name) ~= "string" then error("name: expected string", 2) end
  if not DRIVERS[name] then
    return nil, errors.invalid("snapshotter not loaded: %s (known: overlayfs, native)", name)
  end
  local base = client.root .. "/snapshots/" .. name
  local ok, err = meta.mkdir_p(base .. "/snapshots", 448)
  if not ok then return nil, err end
  if name == "overlayfs" and not overlay_supported(base) then
    return nil, errors.new("snapshotter overlayfs: the kernel does not support overlay mounts;"
      .. " use --snapshotter native", 95, "NOT_SUPPORTED")
  end
  local sn = setmetatable({
    client = client, name = name, root = client.root, namespace = client.namespace,
    base = base, dir = base .. "/snapshots", kind = "snapshots." .. name,
  }, Snapshotter)
  if not swept[base] then
    swept[base] = true
    sn:_sweep_at_open()
  end
  return sn
end

-- A process's first use of the snapshotter: the whole sweep (every record of the root read)
-- when an operation was cut short (a temporary directory is there) or there are more
-- directories than records (then one is named by none); else nothing.  Run on every first
-- use, the sweep read each record of the root again: with 300 snapshots a `run --rm` spent
-- 1.5 ms more in it.  What this leaves (a directory no record names beside a record that names
-- none, from two interrupted operations) `ctrlua gc` removes.
function Snapshotter:_sweep_at_open()
  local dirs, tmp = core.count_entries(self.dir)
  if not dirs then return 0 end
  if tmp > 0 then return self:gc({ nonblock = true }) end
  if dirs == 0 then return 0 end
  local recs = 0
  for _, ns in ipairs(meta.namespaces(self.root)) do
    recs = recs + meta.count(self.root, ns, self.kind)
    if recs >= dirs then return 0 end
  end
  return self:gc({ nonblock = true })
end

--- Sweep the leftovers of interrupted operations: directories under snapshots/ that no record
-- of any namespace names (and temporary ones).  Takes the snapshotter's lock exclusively.
-- @param client a ctr.client
-- @tparam[opt] string name the snapshotter ("overlayfs" by default)
-- @return the number of directories removed, or nil, err
function M.gc(client, name)
  local sn, err = M.get(client, name)
  if not sn then return nil, err end
  return sn:gc()
end

-- ------------------------------------------------------------------ locking and records

-- Run fn holding the snapshotter's lock (shared unless excl).  With nonblock, returns
-- nil, err (EAGAIN) instead of waiting.
function Snapshotter:_with_store_lock(excl, nonblock, fn)
  local fd, err = sys.lock(self.base .. "/lock", excl, nonblock)
  if not fd then return nil, err end
  return errors.finally(function() core.close(fd) end, fn)
end

-- A change: the namespace lock, then the store lock shared.
function Snapshotter:_txn(fn)
  return meta.with_lock(self.root, self.namespace, function()
    return self:_with_store_lock(false, false, fn)
  end)
end

function Snapshotter:_get(key)
  local rec, err = meta.get(self.root, self.namespace, self.kind, key)
  if not rec then
    if err.sym == "NOT_FOUND" then return nil, errors.not_found("snapshot %s does not exist", key) end
    return nil, err
  end
  return rec
end

-- Every record of the namespace (but skip's), and the errors of those that cannot be read.
function Snapshotter:_all(skip)
  return meta.all(self.root, self.namespace, self.kind, skip)
end

-- The id an unreadable record names, when its bytes still show one (a record cut short keeps its
-- first fields), or nil: then it might name any directory.
local function salvage_id(err)
  local id = type(err.data) == "string" and err.data:match('"id"%s*:%s*"(%x+)"')
  return id
end
M._salvage_id = salvage_id

function Snapshotter:_fs(id) return self.dir .. "/" .. id .. "/fs" end
function Snapshotter:_work(id) return self.dir .. "/" .. id .. "/work" end

--- The fs directory of a snapshot (the upper directory for overlayfs): where a layer is
-- applied into an active snapshot without mounting it.
-- @tparam string key
-- @return path, or nil, err
function Snapshotter:fs_path(key)
  check_string(key, "key", 2)
  local rec, err = self:_get(key)
  if not rec then return nil, err end
  return self:_fs(rec.id)
end

local function info_of(rec)
  return { name = rec.name, parent = rec.parent, kind = rec.kind, labels = copy_labels(rec.labels),
    created_at = rec.created_at, updated_at = rec.updated_at }
end

-- The ids of the parents of rec, nearest first: its parent_ids, or for a record without them
-- (an older ctrlua's), each parent's record read.  known: the parent's record, when the caller
-- has just read it.
function Snapshotter:_parent_ids(rec, known)
  if not rec.parent then return {} end
  if rec.parent_ids then return { unpack(rec.parent_ids) } end
  local ids = {}
  local p = rec.parent
  while p do
    local prec, err
    if known and known.name == p then prec = known else prec, err = self:_get(p) end
    if not prec then return nil, errors.wrap(err, "parent of snapshot %s", rec.name) end
    ids[#ids + 1] = prec.id
    p = prec.parent
    if #ids > 1000 then return nil, errors.new("snapshot " .. rec.name .. ": parent chain too long", 40) end
  end
  return ids
end

-- Mounts as containerd 1.6's overlayfs and native snapshotters return them.
function Snapshotter:_mounts(rec, parent_rec)
  local ro = rec.kind == "view"
  if self.name == "native" then
    return { { type = "bind", source = self:_fs(rec.id), options = { ro and "ro" or "rw", "rbind" } } }
  end
  local parents, err = self:_parent_ids(rec, parent_rec)
  if not parents then return nil, err end
  if #parents == 0 then
    -- overlay needs at least one lower directory: a bind mount of the snapshot itself
    return { { type = "bind", source = self:_fs(rec.id), options = { ro and "ro" or "rw", "rbind" } } }
  end
  local options = {}
  -- containerd sets index=off whenever the kernel knows the parameter, so that a lower
  -- directory may be mounted by several overlays at once.
  if overlay_has_index() then options[#options + 1] = "index=off" end
  if rec.kind == "active" then
    options[#options + 1] = "workdir=" .. self:_work(rec.id)
    options[#options + 1] = "upperdir=" .. self:_fs(rec.id)
  elseif #parents == 1 then
    return { { type = "bind", source = self:_fs(parents[1]), options = { "ro", "rbind" } } }
  end
  local lowers = {}
  for i, id in ipairs(parents) do lowers[i] = self:_fs(id) end
  options[#options + 1] = "lowerdir=" .. table.concat(lowers, ":")
  return { { type = "overlay", source = "overlay", options = options } }
end

--- What makes a snapshot prepared `partial` and `nofsync` durable at the durability point of
-- the record that claims it (ctr.store.meta.sync): `{fsync = {...}, syncfs = {...}}` with its
-- record, its fs directory (its owner), its directory (the names fs and work), the snapshots'
-- directory (its name) and its record's directory (the record's name); a native snapshot's
-- tree, a copy of its parent's, by a syncfs of its directory's file system.  Or nil, err.
function Snapshotter:durable_paths(key)
  check_string(key, "key", 2)
  local rec, err = self:_get(key)
  if not rec then return nil, err end
  local dir = self.dir .. "/" .. rec.id
  return {
    fsync = { meta.path(self.root, self.namespace, self.kind, key), self:_fs(rec.id), dir, self.dir,
      meta.dir(self.root, self.namespace, self.kind) },
    syncfs = self.name == "native" and { dir } or {},
  }
end

-- Build the directory of a new snapshot under a temporary name and rename it into place.
-- The rename is made durable here unless `later`: then by the durability point of the
-- operation that claims the snapshot (a container record's meta.sync of durable_paths, a
-- commit's syncfs).
function Snapshotter:_create_dir(id, parent_rec, later)
  local tmp = self.dir .. "/.tmp-" .. id
  local function fail(err)
    core.remove_tree(tmp)
    return nil, err
  end
  local ok, err = sys.mkdir(tmp, 448)
  if not ok then return nil, err end
  if self.name == "native" and parent_rec then
    ok, err = sys.copy_tree(self:_fs(parent_rec.id), tmp .. "/fs")
    if not ok then return fail(err) end
  else
    ok, err = sys.mkdir(tmp .. "/fs", 493) -- 0755
    if not ok then return fail(err) end
    if parent_rec then
      -- the upper directory takes the owner of the parent's root, as containerd does, so
      -- that the merged root does not change owner
      local st = core.stat(self:_fs(parent_rec.id))
      if st then
        ok, err = sys.lchown(tmp .. "/fs", st.uid, st.gid)
        if not ok then return fail(err) end
      end
    end
  end
  if self.name == "overlayfs" then
    ok, err = sys.mkdir(tmp .. "/work", 457) -- 0711
    if not ok then return fail(err) end
  end
  -- an empty directory, one mkdir (no file to write and rename); a power cut that loses it
  -- leaves only the slower removal
  ok, err = sys.mkdir(tmp .. "/sole", 448)
  if not ok then return fail(err) end
  ok, err = sys.rename(tmp, self.dir .. "/" .. id, { sync = not later })
  if not ok then return fail(err) end
  fault.point("snapshot.dir-renamed")
  return true
end

function Snapshotter:_create(kind, key, parent, opts)
  return self:_txn(function()
    local old, gerr = meta.get(self.root, self.namespace, self.kind, key)
    if old then return nil, errors.exists("snapshot %q: already exists", key) end
    if gerr.sym ~= "NOT_FOUND" then return nil, gerr end
    local prec, err
    if parent then
      prec, err = self:_get(parent)
      if not prec then
        if err.sym == "NOT_FOUND" then return nil, errors.not_found("parent snapshot %s does not exist", parent) end
        return nil, err
      end
      if prec.kind ~= "committed" then
        return nil, failed_precondition("parent %s is not committed snapshot", parent)
      end
    end
    local parent_ids
    if prec then
      parent_ids, err = self:_parent_ids(prec)
      if not parent_ids then return nil, err end
      table.insert(parent_ids, 1, prec.id)
    end
    local id = new_id()
    local ok
    -- a partial snapshot is claimed by a record written next (a container's, a commit's),
    -- whose durability point covers its directory's name and its record's: until then a
    -- power cut leaves at worst a directory no record names, or no record at all
    ok, err = self:_create_dir(id, prec, opts.partial)
    if not ok then return nil, errors.wrap(err, "create snapshot %s", key) end
    local now = core.rfc3339()
    local rec = { name = key, id = id, kind = kind, parent = parent, parent_ids = parent_ids,
      labels = copy_labels(opts.labels), created_at = now, updated_at = now,
      creator = opts.partial and owner.me() or nil }
    ok, err = meta.put(self.root, self.namespace, self.kind, key, rec,
      { create = true, sync = (opts.ephemeral or opts.nofsync) and opts.partial and "none" or opts.partial and "data" or nil })
    if not ok then
      core.remove_tree(self.dir .. "/" .. id)
      if err.sym == "EXISTS" then return nil, errors.exists("snapshot %q: already exists", key) end
      return nil, err
    end
    fault.point("snapshot.recorded")
    -- the parent read above, under the same lock
    return self:_mounts(rec, prec)
  end)
end

-- ------------------------------------------------------------------ the Snapshotter interface

--- Prepare an active (writable) snapshot on a committed parent (containerd's Prepare).
-- @tparam string key
-- @tparam[opt] string parent a committed snapshot's name, or nil for an empty snapshot
-- @tparam[opt] table opts `labels`; `partial`: record this process as its creator, for a
-- snapshot that something else (a container record, a commit) is to claim: should this process
-- die first, `sweep_partial` removes it; `nofsync` (with `partial`): its record's file is not
-- fsynced either, for a snapshot whose claim makes it durable, file and name, with its own
-- record at one syncfs (a container's durability point); `ephemeral` (with `partial`): its
-- record is not synced at all, for a snapshot removed before its creator returns
-- (containers.with_ephemeral)
-- @return mounts (array of `{type=, source=, options=}`), or nil, err (EXISTS,
-- NOT_FOUND parent, FAILED_PRECONDITION parent not committed)
function Snapshotter:prepare(key, parent, opts)
  check_string(key, "key", 2)
  if parent == "" then parent = nil end
  if parent ~= nil then check_string(parent, "parent", 2) end
  return self:_create("active", key, parent, check_opts(opts, 2))
end

--- Make a read-only view of a committed parent (containerd's View).
-- @tparam string key
-- @tparam[opt] string parent
-- @tparam[opt] table opts `labels`, `partial` (as prepare)
-- @return mounts, or nil, err
function Snapshotter:view(key, parent, opts)
  check_string(key, "key", 2)
  if parent == "" then parent = nil end
  if parent ~= nil then check_string(parent, "parent", 2) end
  return self:_create("view", key, parent, check_opts(opts, 2))
end

--- The mounts of a snapshot (containerd's Mounts).
-- @tparam string key
-- @return mounts, or nil, err
function Snapshotter:mounts(key)
  check_string(key, "key", 2)
  local rec, err = self:_get(key)
  if not rec then return nil, err end
  return self:_mounts(rec)
end

--- Read a file of snapshot key's tree without mounting it: the layer directories are searched
-- top-most first, each read inside its own root (ctr.spec.rootfs).  Used to resolve an image's
-- user against its /etc/passwd while the container is made, where containerd mounts the
-- snapshot for it.  Returns the content, or nil, err.
-- @param[opt] mounts the snapshot's mounts, as its prepare returned them to this caller (not
-- asked again)
function Snapshotter:read_file(key, path, cap, mounts)
  local err
  if not mounts then mounts, err = self:mounts(key) end
  if not mounts then return nil, err end
  return require("ctr.spec.rootfs").reader(mounts, cap)(path)
end

--- Commit an active snapshot under name (containerd's Commit).  The contents are synced to
-- disk and the usage recorded.
-- @tparam string name the committed snapshot's name
-- @tparam string key the active snapshot
-- @tparam[opt] table opts `labels` (replace the active snapshot's); `parent`: the committed
-- snapshot to commit it on, for an overlayfs snapshot prepared without one (containerd's
-- rebase: an upper directory does not depend on its lowers, so layers can be applied before
-- their parents are committed)
-- @return true, or nil, err (NOT_FOUND, EXISTS, FAILED_PRECONDITION when key is not active)
function Snapshotter:commit(name, key, opts)
  check_string(name, "name", 2)
  check_string(key, "key", 2)
  opts = check_opts(opts, 2)
  if opts.parent ~= nil then check_string(opts.parent, "opts.parent", 2) end
  return self:_txn(function()
    local rec, err = self:_get(key)
    if not rec then return nil, err end
    if rec.kind ~= "active" then
      return nil, failed_precondition("snapshot %s is not active", key)
    end
    local taken, terr = meta.get(self.root, self.namespace, self.kind, name)
    if taken then return nil, errors.exists("snapshot %q: already exists", name) end
    if terr.sym ~= "NOT_FOUND" then return nil, terr end
    local fs = self:_fs(rec.id)
    local parent, parent_ids = rec.parent, rec.parent_ids
    if opts.parent then
      if rec.parent or self.name ~= "overlayfs" then
        return nil, failed_precondition("snapshot %s: a parent at commit needs an overlayfs snapshot prepared without one", key)
      end
      local prec, perr = self:_get(opts.parent)
      if not prec then return nil, errors.wrap(perr, "parent of snapshot %s", key) end
      if prec.kind ~= "committed" then
        return nil, failed_precondition("parent %s is not committed snapshot", opts.parent)
      end
      -- the owner of the parent's root, as a prepare on it gives (_create_dir)
      local st = core.stat(self:_fs(prec.id))
      if st then
        local ok, cerr = sys.lchown(fs, st.uid, st.gid)
        if not ok then return nil, cerr end
      end
      parent = opts.parent
      parent_ids, err = self:_parent_ids(prec)
      if not parent_ids then return nil, err end
      table.insert(parent_ids, 1, prec.id)
    end
    -- from here another record may name the directory: `sole` goes, and the syncfs below
    -- makes that durable before the record is written
    local ok
    ok, err = sys.rmdir(self.dir .. "/" .. rec.id .. "/sole")
    if not ok and err.sym ~= "ENOENT" then return nil, err end
    local usage, err = sys.usage(fs)
    if not usage then return nil, err end
    ok, err = sys.syncfs(fs)
    if not ok then return nil, err end
    local now = core.rfc3339()
    local new = { name = name, id = rec.id, kind = "committed", parent = parent, parent_ids = parent_ids,
      labels = opts.labels and copy_labels(opts.labels) or copy_labels(rec.labels),
      created_at = now, updated_at = now, size = usage.size, inodes = usage.inodes }
    -- The new record first: a crash between the two leaves the stale active key naming the
    -- same directory, which remove() then deletes without touching the directory.
    ok, err = meta.put(self.root, self.namespace, self.kind, name, new, { create = true })
    if not ok then
      if err.sym == "EXISTS" then return nil, errors.exists("snapshot %q: already exists", name) end
      return nil, err
    end
    fault.point("snapshot.commit-recorded")
    ok, err = meta.delete(self.root, self.namespace, self.kind, key)
    if not ok then return nil, err end
    return true
  end)
end

--- Remove a snapshot (containerd's Remove): refused while a snapshot has it as parent.  A key
-- whose record cannot be read is removed too (this is the explicit repair of one): its record
-- goes, and its directory, which that record alone could name, is left to the sweep, which
-- removes it once no unreadable record might name it.
-- @tparam string key
-- @return true, or nil, err (NOT_FOUND; FAILED_PRECONDITION "cannot remove snapshot with child")
function Snapshotter:remove(key)
  check_string(key, "key", 2)
  return self:_txn(function()
    local rec, err = self:_get(key)
    if not rec then
      if err.sym ~= "CORRUPT" then return nil, err end
      local ok, derr = meta.delete(self.root, self.namespace, self.kind, key)
      if not ok then return nil, derr end
      fault.point("snapshot.unrecorded")
      return true
    end
    local shared = false
    -- the others, unless the directory is this record's alone (see the module): key's own was
    -- read just above, under the same locks
    if rec.kind == "committed" or not core.stat(self.dir .. "/" .. rec.id .. "/sole") then
      local all, bad = self:_all(key)
      for _, other in ipairs(all) do
        if other.parent == key then
          return nil, failed_precondition("cannot remove snapshot with child")
        end
        if other.id == rec.id and other.name ~= key then shared = true end
      end
      -- an unreadable record may name this directory too: keep it (for the sweep to judge)
      for _, b in ipairs(bad) do
        local id = salvage_id(b)
        if id == nil or id == rec.id then shared = true end
      end
    end
    local ok
    ok, err = meta.delete(self.root, self.namespace, self.kind, key)
    if not ok then return nil, err end
    fault.point("snapshot.unrecorded")
    if not shared then
      -- out of the way first, so that a half-removed tree is never a live snapshot; what
      -- cannot be removed now (a mount still on it) is left to the sweep.  Not synced: a
      -- removal undone by a power cut leaves a directory no record names, which the sweep
      -- removes
      local dead = self.dir .. "/.tmp-rm-" .. rec.id
      if core.rename(self.dir .. "/" .. rec.id, dead, { sync = false }) then core.remove_tree(dead) end
    end
    return true
  end)
end

--- Information about a snapshot (containerd's Stat).
-- @tparam string key
-- @return `{name=, parent=, kind=, labels=, created_at=, updated_at=}`, or nil, err
function Snapshotter:stat(key)
  check_string(key, "key", 2)
  local rec, err = self:_get(key)
  if not rec then return nil, err end
  return info_of(rec)
end

--- Is there a committed snapshot `name`?
-- @return true or false, or nil, err (FAILED_PRECONDITION when the snapshot of that name is
-- not a committed one)
function Snapshotter:committed(name)
  local info, err = self:stat(name)
  if info then
    if info.kind ~= "committed" then
      return nil, errors.new(("snapshot %s exists but is %s, not committed"):format(name, info.kind),
        0, "FAILED_PRECONDITION")
    end
    return true
  end
  if err.sym == "NOT_FOUND" then return false end
  return nil, err
end

--- Replace the labels of a snapshot (containerd's Update with the labels field).
-- @tparam string key
-- @tparam table opts `labels`
-- @return the updated info, or nil, err
function Snapshotter:update(key, opts)
  check_string(key, "key", 2)
  opts = check_opts(opts, 2)
  return self:_txn(function()
    local rec, err = self:_get(key)
    if not rec then return nil, err end
    rec.labels = copy_labels(opts.labels)
    rec.updated_at = core.rfc3339()
    local ok
    ok, err = meta.put(self.root, self.namespace, self.kind, key, rec)
    if not ok then return nil, err end
    return info_of(rec)
  end)
end

--- The infos of all snapshots of the namespace, sorted by name, and the errors of the records
-- that could not be read (each names its file).
-- @return array of infos, array of errors
function Snapshotter:list()
  local out = {}
  local all, bad = self:_all()
  for i, rec in ipairs(all) do out[i] = info_of(rec) end
  return out, bad
end

--- Call fn(info) for each snapshot (containerd's Walk); a fn that returns nil, err stops the
-- walk and walk returns nil, err.
-- @tparam function fn
-- @return true, or nil, err
function Snapshotter:walk(fn)
  if type(fn) ~= "function" then error("fn: expected function", 2) end
  for _, info in ipairs(self:list()) do
    local ok, err = fn(info)
    if ok == nil and err ~= nil then return nil, err end
  end
  return true
end

--- Disk usage of a snapshot (containerd's Usage): for a committed one, as recorded at commit;
-- else measured now.  Hardlinks count once; mounts below are not entered.
-- @tparam string key
-- @return `{size=, inodes=}`, or nil, err
function Snapshotter:usage(key)
  check_string(key, "key", 2)
  local rec, err = self:_get(key)
  if not rec then return nil, err end
  if rec.kind == "committed" and rec.size and rec.inodes then
    return { size = rec.size, inodes = rec.inodes }
  end
  local u, err = sys.usage(self:_fs(rec.id))
  if not u then return nil, err end
  return u
end

-- Add to named the ids the snapshot records of namespace ns name.  Every process's first use
-- of a snapshotter sweeps, so this reads every record of the root: a record whose bytes hold no
-- backslash names its id literally, and every hex string that is the value of an "id" key in
-- it is taken as named (the record's own id among them, and at worst others: directories kept,
-- never one removed), without decoding it; the others are read as records.  Returns false when
-- a record names ids that cannot be made out (then any directory may be named).
function Snapshotter:_named_ids(ns, named)
  local sure = true
  for _, name in ipairs(meta.list(self.root, ns, self.kind)) do
    local data = sys.read_file(meta.path(self.root, ns, self.kind, name), records.MAX)
    local found = false
    if data and not data:find("\\", 1, true) then
      for id in data:gmatch('"id"%s*:%s*"(%x+)"') do
        named[id] = true
        found = true
      end
    end
    if not found then
      local rec, err = meta.get(self.root, ns, self.kind, name)
      if rec then
        named[rec.id] = true
      elseif err.sym ~= "NOT_FOUND" then
        local id = salvage_id(err)
        if id then named[id] = true else sure = false end
      end
    end
  end
  return sure
end

--- Sweep directories no record names (see the module's description).
-- @tparam[opt] table opts `nonblock` (skip, returning 0, when another process holds the lock)
-- @return the number of directories removed, or nil, err
function Snapshotter:gc(opts)
  opts = opts or {}
  local n, err = self:_with_store_lock(true, opts.nonblock, function()
    local named, unsure = {}, false
    for _, ns in ipairs(meta.namespaces(self.root)) do
      if not self:_named_ids(ns, named) then unsure = true end
    end
    local removed = 0
    for _, entry in ipairs(core.listdir(self.dir) or {}) do
      -- .tmp-ID (being built: we hold the lock its builder shares, so it was abandoned) and
      -- .tmp-rm-ID (being removed) are never named; any other may be named by an unreadable
      -- record that we could not make out
      local tmp = entry:match("^%.tmp%-") ~= nil
      if tmp or (not named[entry] and not unsure) then
        -- one that cannot go now (a mount still on it) stays for a later sweep
        if core.remove_tree(self.dir .. "/" .. entry) then removed = removed + 1 end
      end
    end
    return removed
  end)
  if n == nil and opts.nonblock and err and err.sym == "EAGAIN" then return 0 end
  return n, err
end

--- Remove the partial snapshots of the namespace: active ones whose creator (see prepare's
-- `partial`) is gone and that no container record names.  While a container record of the
-- namespace cannot be read, only unpack's own (`extract-…` keys, which no container names) go.
-- @tparam[opt] table opts `extract_only`: only those
-- @return a list of `{key=, creator=}` removed, and a list of errors (what could not be removed)
function Snapshotter:sweep_partial(opts)
  opts = opts or {}
  local all = self:_all()
  local candidates = {}
  for _, rec in ipairs(all) do
    if rec.kind == "active" and rec.creator and owner.gone(rec.creator) then
      local extract = rec.name:match("^extract%-") ~= nil
      if extract or not opts.extract_only then candidates[#candidates + 1] = { rec = rec, extract = extract } end
    end
  end
  local removed, errs = {}, {}
  if #candidates == 0 then return removed, errs end
  local named, unsure = {}, false
  local crecs, cbad = meta.all(self.root, self.namespace, "containers")
  for _, c in ipairs(crecs) do
    if c.snapshot_key and (c.snapshotter or self.client.snapshotter_name) == self.name then
      named[c.snapshot_key] = true
    end
  end
  if #cbad > 0 then unsure = true end
  for _, c in ipairs(candidates) do
    local key = c.rec.name
    if not named[key] and (c.extract or not unsure) then
      local ok, err = self:remove(key)
      if ok then
        removed[#removed + 1] = { key = key, creator = c.rec.creator }
      elseif err.sym ~= "NOT_FOUND" then
        errs[#errs + 1] = errors.wrap(err, "remove partial snapshot %q", key)
      end
    end
  end
  return removed, errs
end

--- Forget the creator of a snapshot (prepare's `partial`): from now on it is kept whoever names
-- it, as a snapshot kept on purpose (`containers rm --keep-snapshot`) must be.
-- @tparam string key
-- @return true, or nil, err
function Snapshotter:disown(key)
  check_string(key, "key", 2)
  return self:_txn(function()
    local rec, err = self:_get(key)
    if not rec then return nil, err end
    if rec.creator == nil then return true end
    rec.creator = nil
    return meta.put(self.root, self.namespace, self.kind, key, rec)
  end)
end

M.KINDS = KINDS

return M
