--- The garbage collection of content and snapshots, as containerd's metadata GC: mark from the
-- roots, sweep what is not marked (docs/crash-consistency.md, "Garbage collection and leases").
--
-- The roots, in every namespace of the root:
-- - leases of live processes (ctr.leases): the blobs and snapshots they name, and every blob and
--   committed snapshot made since the oldest of them was taken; an expired lease (its process
--   gone) is removed first;
-- - image records: their target and, for an index, every child present, each manifest's config
--   and layers, and the committed snapshots of each manifest's layer chain (its chain IDs) in
--   every snapshotter;
-- - container records: their snapshot (and so its parents);
-- - every snapshot that is not committed (active, view: a container's, unpack's, one made with
--   `snapshots prepare`) and one labelled containerd.io/gc.root, and so their parents.
-- What a root reaches through a parent is marked too.  Content is shared by the namespaces of a
-- root, so a blob is live when any namespace reaches it; snapshots are per namespace (their
-- records are; a directory belongs to one record).
--
-- Only blobs and committed snapshots are collected: ingests, partial snapshots and the rest of
-- what interrupted operations leave are ctr.gc's.  A record that cannot be read might name
-- anything: an unreadable lease or image record keeps every blob (and every committed snapshot
-- of its namespace), an unreadable container or snapshot record every committed snapshot of its
-- namespace; each is reported.  The caller holds the collector's lock (ctr.leases.with_gc_lock,
-- exclusive), so that no lease is taken or grown meanwhile.
-- @module ctr.store.collect
local core = require("ctr.core")
local errors = require("ctr.errors")
local leases = require("ctr.leases")
local meta = require("ctr.store.meta")
local owner = require("ctr.store.owner")

local M = {}

M.SNAPSHOTTERS = { "overlayfs", "native" }
M.GC_ROOT_LABEL = "containerd.io/gc.root"

-- documents larger than this are not read for the blobs they name (ctr.images' cap)
local MAX_JSON = 4 * 1024 * 1024
-- a blob or snapshot record whose mtime is this close to a lease's start is held by it: clocks
-- of file systems and of core.now() differ in their rounding
local SLACK = 2

local LAYER_TYPES = {
  ["application/vnd.oci.image.layer.v1.tar"] = true,
  ["application/vnd.oci.image.layer.v1.tar+gzip"] = true,
  ["application/vnd.oci.image.layer.v1.tar+zstd"] = true,
  ["application/vnd.docker.image.rootfs.diff.tar"] = true,
  ["application/vnd.docker.image.rootfs.diff.tar.gzip"] = true,
}

local function is_dir(path)
  local st = core.stat(path, true)
  return st ~= nil and st.type == "directory"
end

local DIGEST_RE = "^sha256:" .. ("[0-9a-f]"):rep(64) .. "$"
local function valid_digest(d) return type(d) == "string" and d:match(DIGEST_RE) ~= nil end

-- ------------------------------------------------------------------ mark

local function new_marks()
  return {
    content = {},        -- digest -> true
    chains = {},         -- ns -> {chain id -> true}
    snap_roots = {},     -- ns -> driver -> {key -> true}
    keep_all_content = nil, -- the first unreadable record that might name any blob
    keep_snaps = {},     -- ns -> the first unreadable record that might name any snapshot there
    since = nil,         -- the start of the oldest live lease
    warnings = {},
    expired = {},        -- {ns=, id=, owner=}
    errors = {},
  }
end

local function snap_root(marks, ns, driver, key)
  marks.snap_roots[ns] = marks.snap_roots[ns] or {}
  local t = marks.snap_roots[ns][driver] or {}
  marks.snap_roots[ns][driver] = t
  t[key] = true
end

local function warn(marks, err) marks.warnings[#marks.warnings + 1] = err end

local function mark_leases(root, ns, marks, opts)
  local recs, bad = leases.list(root, ns)
  for _, b in ipairs(bad) do
    warn(marks, b)
    marks.keep_all_content = marks.keep_all_content or b
    marks.keep_snaps[ns] = marks.keep_snaps[ns] or b
  end
  for _, rec in ipairs(recs) do
    if leases.live(rec) then
      for _, d in ipairs(rec.content or {}) do marks.content[d] = true end
      for driver, keys in pairs(rec.snapshots or {}) do
        for _, k in ipairs(keys) do snap_root(marks, ns, driver, k) end
      end
      if not marks.since or rec.since < marks.since then marks.since = rec.since end
    else
      local ok, err = true, nil
      if not opts.dry_run then ok, err = leases.delete(root, ns, rec.id) end
      if ok or err.sym == "NOT_FOUND" then
        marks.expired[#marks.expired + 1] = { ns = ns, id = rec.id, owner = rec.owner }
      else
        marks.errors[#marks.errors + 1] = err
        -- still there: what it names stays, as a live lease's would
        for _, d in ipairs(rec.content or {}) do marks.content[d] = true end
      end
    end
  end
end

-- The chain IDs of a config's layers, or nil.
local function chain_of(store, config_desc)
  if not valid_digest(config_desc.digest) or (tonumber(config_desc.size) or 0) > MAX_JSON then return nil end
  local data = store:read(config_desc.digest, MAX_JSON)
  local config = data and core.json_decode(data)
  local diff_ids = type(config) == "table" and type(config.rootfs) == "table" and config.rootfs.diff_ids
  if type(diff_ids) ~= "table" or #diff_ids == 0 then return nil end
  return require("ctr.store.unpack").chain_ids(diff_ids)
end

-- Mark what a descriptor reaches: a blob, and for a present index or manifest what it names.
local function walk(store, d, marks, chains, depth)
  if type(d) ~= "table" or not valid_digest(d.digest) or depth > 8 then return end
  if marks.content[d.digest] == "walked" then return end
  marks.content[d.digest] = "walked"
  if LAYER_TYPES[d.mediaType] or (tonumber(d.size) or 0) > MAX_JSON then return end
  local data = store:read(d.digest, MAX_JSON)
  local doc = data and core.json_decode(data)
  if type(doc) ~= "table" then return end
  if type(doc.manifests) == "table" then
    for _, c in ipairs(doc.manifests) do walk(store, c, marks, chains, depth + 1) end
  end
  if type(doc.config) == "table" and type(doc.layers) == "table" then
    if valid_digest(doc.config.digest) then
      marks.content[doc.config.digest] = marks.content[doc.config.digest] or true
      for _, id in ipairs(chain_of(store, doc.config) or {}) do chains[id] = true end
    end
    for _, l in ipairs(doc.layers) do
      if type(l) == "table" and valid_digest(l.digest) then
        marks.content[l.digest] = marks.content[l.digest] or true
      end
    end
  end
end

local function mark_images(root, ns, store, marks, opts)
  local recs, bad = meta.all(root, ns, "images")
  for _, b in ipairs(bad) do
    warn(marks, b)
    marks.keep_all_content = marks.keep_all_content or b
    marks.keep_snaps[ns] = marks.keep_snaps[ns] or b
  end
  marks.chains[ns] = marks.chains[ns] or {}
  local gone = opts.removed_images and opts.removed_images[ns] or {}
  for _, rec in ipairs(recs) do
    if not gone[rec.name] then walk(store, rec.target, marks, marks.chains[ns], 0) end
  end
end

local function mark_containers(root, ns, marks, default_driver)
  local recs, bad = meta.all(root, ns, "containers")
  for _, b in ipairs(bad) do
    warn(marks, b)
    marks.keep_snaps[ns] = marks.keep_snaps[ns] or b
  end
  for _, c in ipairs(recs) do
    if c.snapshot_key then snap_root(marks, ns, c.snapshotter or default_driver, c.snapshot_key) end
  end
end

-- ------------------------------------------------------------------ sweep

-- The committed snapshots of one namespace and snapshotter that nothing reaches, children
-- before their parents: a list of {key=, size=}.
local function unreached_snapshots(root, ns, driver, marks)
  local kind = "snapshots." .. driver
  local recs, bad = meta.all(root, ns, kind)
  for _, b in ipairs(bad) do
    warn(marks, b)
    marks.keep_snaps[ns] = marks.keep_snaps[ns] or b
  end
  if marks.keep_snaps[ns] then return {} end
  local by_name = {}
  for _, r in ipairs(recs) do by_name[r.name] = r end
  local roots = (marks.snap_roots[ns] or {})[driver] or {}
  local chains = marks.chains[ns] or {}
  local live = {}
  local function reach(name)
    local n = 0
    while name and not live[name] and n < 10000 do
      live[name] = true
      local r = by_name[name]
      name = r and r.parent
      n = n + 1
    end
  end
  for _, r in ipairs(recs) do
    local labels = r.labels or {}
    local young = false
    if marks.since then
      local st = core.stat(meta.path(root, ns, kind, r.name))
      young = st ~= nil and st.mtime >= marks.since - SLACK
    end
    if r.kind ~= "committed" or roots[r.name] or chains[r.name] or labels[M.GC_ROOT_LABEL] or young then
      reach(r.name)
    end
  end
  local depth = {}
  local function depth_of(name)
    if depth[name] then return depth[name] end
    local d, p, n = 0, by_name[name] and by_name[name].parent, 0
    while p and n < 10000 do
      d, n = d + 1, n + 1
      p = by_name[p] and by_name[p].parent
    end
    depth[name] = d
    return d
  end
  local out = {}
  for _, r in ipairs(recs) do
    if not live[r.name] then out[#out + 1] = { key = r.name, size = r.size or 0, depth = depth_of(r.name) } end
  end
  table.sort(out, function(a, b)
    if a.depth ~= b.depth then return a.depth > b.depth end
    return a.key < b.key
  end)
  return out
end

--- Collect: remove the blobs and committed snapshots nothing reaches, and expired leases.  The
-- caller holds ctr.leases.with_gc_lock(root, true).
-- @param client a ctr.client (its root; its namespace does not matter)
-- @tparam[opt] table opts `dry_run` (remove nothing, report what would go), `removed_images`
-- (`{ns = {name = true}}`: image records taken as gone, for a prune's dry run)
-- @return a report `{content = {{digest=, size=}}, snapshots = {{driver=, ns=, key=, size=}},
-- expired = {{ns=, id=, owner=}}, reclaimed = bytes, warnings = {errors: unreadable records,
-- what they might name kept}, errors = {errors: what could not be removed}}`
function M.run(client, opts)
  opts = opts or {}
  local root = client.root
  local store = client:content_store()
  local marks = new_marks()
  local nss = meta.namespaces(root)
  -- leases first: an operation records what it made before it gives its lease up, so whatever
  -- a lease read here no longer holds is named by a record read after
  for _, ns in ipairs(nss) do mark_leases(root, ns, marks, opts) end
  for _, ns in ipairs(nss) do
    mark_images(root, ns, store, marks, opts)
    mark_containers(root, ns, marks, client.snapshotter_name or "overlayfs")
  end
  local report = { content = {}, snapshots = {}, expired = marks.expired, reclaimed = 0,
    warnings = marks.warnings, errors = marks.errors }
  for _, driver in ipairs(M.SNAPSHOTTERS) do
    if is_dir(root .. "/snapshots/" .. driver) then
      for _, ns in ipairs(nss) do
        local gone = unreached_snapshots(root, ns, driver, marks)
        local sn
        if #gone > 0 and not opts.dry_run then
          local c, cerr = client:with_namespace(ns)
          local serr
          if c then sn, serr = c:snapshotter(driver) end
          if not sn then
            report.errors[#report.errors + 1] = errors.wrap(cerr or serr, "snapshotter %s of namespace %s", driver, ns)
            gone = {}
          end
        end
        for _, g in ipairs(gone) do
          local ok, err = true, nil
          if sn then ok, err = sn:remove(g.key) end
          if ok then
            report.snapshots[#report.snapshots + 1] = { driver = driver, ns = ns, key = g.key, size = g.size }
            report.reclaimed = report.reclaimed + g.size
          elseif err.sym ~= "NOT_FOUND" then
            report.errors[#report.errors + 1] = errors.wrap(err, "remove snapshot %s %s/%q", driver, ns, g.key)
          end
        end
      end
    end
  end
  if not marks.keep_all_content then
    for _, info in ipairs(store:list()) do
      local young = marks.since and info.mtime >= marks.since - SLACK
      if not marks.content[info.digest] and not young then
        local ok, err = true, nil
        if not opts.dry_run then ok, err = store:delete(info.digest) end
        if ok then
          report.content[#report.content + 1] = { digest = info.digest, size = info.size }
          report.reclaimed = report.reclaimed + info.size
        elseif err.sym ~= "NOT_FOUND" then
          report.errors[#report.errors + 1] = err
        end
      end
    end
  end
  return report
end

--- Lines for a report: "content sha256:… (N bytes)", "snapshot overlayfs NS/KEY", "lease NS/ID
-- (pid P is gone)".
function M.lines(report)
  local out = {}
  for _, l in ipairs(report.expired) do
    out[#out + 1] = ("lease %s/%s (expired: pid %s is gone)"):format(l.ns, l.id, owner.format(l.owner))
  end
  for _, s in ipairs(report.snapshots) do
    out[#out + 1] = ("snapshot %s %s/%s (nothing refers to it)"):format(s.driver, s.ns, s.key)
  end
  for _, c in ipairs(report.content) do
    out[#out + 1] = ("content %s (%d bytes, nothing refers to it)"):format(c.digest, c.size)
  end
  return out
end

return M
