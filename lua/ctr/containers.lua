--- Containers: metadata records of what to run (containerd's containers package and the
-- client's NewContainerOpts).
--
-- A record lives under ROOT/meta/NAMESPACE/containers/ID.json:
-- `{id=, labels={}, image=, runtime={name=, options=}, spec=, snapshotter=, snapshot_key=,
-- created_at=, updated_at=, extensions={}}`.  It is created exclusively (a duplicate id is an
-- EXISTS error) and rewritten atomically.
--
-- `containers.new(client, id, opt...)` applies NewContainerOpts `function(ctx, client, c)`
-- (nothing or true on success, `nil, err` on failure) to a fresh record, then writes it.  If an
-- opt fails or the write fails, every snapshot an opt prepared is removed again.
--
-- The ctx handed to the opts (and through with_spec/with_new_spec to the spec opts) is
-- `{namespace = client.namespace, read_rootfs_file = fn}`.  The default read_rootfs_file reads
-- a file of the container's snapshot through `snapshotter:read_file(key, path, cap)` (or, for an
-- unmanaged rootfs, inside spec.root.path).  `containers.with_context(t)` merges fields into ctx
-- (e.g. another read_rootfs_file); put it before the opts that use them.
-- @module ctr.containers
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")
local meta = require("ctr.store.meta")

local M = {}

local KIND = "containers"

--- The runtime used when none is given.
M.DEFAULT_RUNTIME = "io.containerd.runc.v2"

--- The label holding the image's stop signal.
M.STOP_SIGNAL_LABEL = "io.containerd.image.config.stop-signal"

local ID_RE = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
local ID_RULE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,75}"
local MAX_LABEL = 4096

local Container = {}
Container.__index = Container
M.Container = Container

local function check_type(v, want, what)
  if type(v) ~= want then error(("%s: expected %s, got %s"):format(what, want, type(v)), 3) end
end

--- nil when id is a valid container id, or an INVALID error naming the rule.
function M.validate_id(id)
  if type(id) ~= "string" or #id > 76 or not id:match(ID_RE) then
    return errors.invalid("invalid container id %q: must match %s", tostring(id), ID_RULE)
  end
  return nil
end

--- nil when labels are valid (key+value at most 4096 bytes, as containerd), or an error.
function M.validate_labels(labels)
  for k, v in pairs(labels or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then
      return errors.invalid("label %s: keys and values must be strings", tostring(k))
    end
    if #k == 0 then return errors.invalid("label key must not be empty") end
    if #k + #v > MAX_LABEL then
      return errors.invalid("label key and value greater than maximum size (%d bytes), key: %s", MAX_LABEL, k:sub(1, 64))
    end
  end
  return nil
end

local tmp_counter = 0

-- Read a file of a snapshot the way containerd's WithReadonlyTempMount does: mount the
-- snapshot read-only on a private temporary directory, read the file inside that root
-- (openat2 RESOLVE_IN_ROOT), unmount.  A snapshotter with its own read_file is asked instead.
-- prepared: the mounts the snapshot's prepare returned, if it was made by this ctx.
local function read_snapshot_file(client, name, key, path, cap, prepared)
  local sn, serr = client:snapshotter(name)
  if not sn then return nil, serr end
  if type(sn.read_file) == "function" then return sn:read_file(key, path, cap, prepared) end
  local mounts, err = sn:mounts(key)
  if not mounts then return nil, err end
  local ro = {}
  for i, m in ipairs(mounts) do
    local opts = {}
    for _, o in ipairs(m.options or {}) do if o ~= "rw" then opts[#opts + 1] = o end end
    opts[#opts + 1] = "ro"
    ro[i] = { type = m.type, source = m.source, options = core.json_array(opts) }
  end
  tmp_counter = tmp_counter + 1
  local dir = ("%s/.rootfs-read-%d-%d"):format(client.state, core.getpid(), tmp_counter)
  local made, err = sys.mkdir_p(dir, 448)
  if not made then return nil, err end
  local mount = require("ctr.mount")
  local mok, merr = mount.all(ro, dir)
  if not mok then
    core.rmdir(dir)
    return nil, merr
  end
  local data
  data, err = sys.read_file_in_root(dir, path, cap, ("snapshot %q"):format(key))
  mount.unmount_all(dir)
  core.rmdir(dir)
  if not data then return nil, err end
  return data
end

local function make_ctx(client, c)
  local ctx = { namespace = client.namespace }
  local cache = {}
  ctx.read_rootfs_file = function(path, cap)
    if c.snapshotter and c.snapshot_key then
      local ck = c.snapshotter .. "\0" .. c.snapshot_key .. "\0" .. path
      if not cache[ck] then
        local mounts = ctx._mounts and ctx._mounts[c.snapshotter .. "\0" .. c.snapshot_key]
        cache[ck] = { read_snapshot_file(client, c.snapshotter, c.snapshot_key, path, cap, mounts) }
      end
      return cache[ck][1], cache[ck][2]
    end
    local spec = c.spec
    local root = spec and spec.root and spec.root.path
    if type(root) == "string" and root:sub(1, 1) == "/" then
      local data, err = sys.read_file_in_root(root, path, cap)
      if not data then return nil, err end
      return data
    end
    if c.snapshotter == nil then return nil, errors.new("no snapshotter set for container", 0, "FAILED_PRECONDITION") end
    return nil, errors.new("rootfs snapshot not created for container", 0, "FAILED_PRECONDITION")
  end
  return ctx
end

local function wrap(client, rec)
  return setmetatable({ client = client, id = rec.id, record = rec }, Container)
end

--- Make a container record: apply opts, write it (exclusively).  Container, or nil, err.
-- @param client a ctr.client
-- @tparam string id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,75}
-- @param ... NewContainerOpts
function M.new(client, id, ...)
  check_type(client, "table", "client")
  local n = select("#", ...)
  local opts = { ... }
  for i = 1, n do check_type(opts[i], "function", ("opts[%d]"):format(i)) end
  local err = M.validate_id(id)
  if err then return nil, err end
  local now = core.rfc3339()
  local c = {
    id = id, labels = {}, extensions = {},
    runtime = { name = M.DEFAULT_RUNTIME },
    created_at = now, updated_at = now,
  }
  local ctx = make_ctx(client, c)
  ctx._prepared = {}
  local function cleanup()
    for i = #ctx._prepared, 1, -1 do
      local p = ctx._prepared[i]
      local ok, sn = pcall(client.snapshotter, client, p.snapshotter)
      if ok and type(sn) == "table" and sn.remove then pcall(sn.remove, sn, p.key) end
    end
  end
  for i = 1, n do
    -- an opt that raises has still prepared what it prepared: remove it, then raise on
    local called, ok, oerr = pcall(opts[i], ctx, client, c)
    if not called then
      cleanup()
      error(ok, 0)
    end
    if ok == nil and oerr ~= nil or ok == false then
      cleanup()
      if not errors.is_error(oerr) then oerr = errors.new(tostring(oerr)) end
      return nil, oerr
    end
  end
  err = M.validate_labels(c.labels)
  if not err and (c.id ~= id) then err = errors.invalid("container opts must not change the id") end
  local ok
  if not err then
    -- not synced here: the file and its name, with the snapshot this container claims (its
    -- directory, its record, written unsynced too), reach the disk at the one durability
    -- point below (Container:sync).  An ephemeral one is never synced: it is gone before the
    -- run returns
    ok, err = meta.put(client.root, client.namespace, KIND, id, c, { create = true, sync = "none" })
  end
  if not ok then
    cleanup()
    return nil, err
  end
  fault.point("container.recorded")
  -- an ephemeral container (run --rm) is removed by the process that makes it: a power cut
  -- loses it with that process, and what reached the disk of it is what a crash leaves
  local made = wrap(client, c)
  if ctx._ephemeral then return made end
  if ctx._sync_at_create then
    made.unsynced = true
    return made
  end
  ok, err = made:sync()
  if not ok then
    meta.delete(client.root, client.namespace, KIND, id)
    cleanup()
    return nil, err
  end
  return made
end

--- Load a container record by id: Container, or nil, err (sym NOT_FOUND).
function M.load(client, id)
  check_type(client, "table", "client")
  check_type(id, "string", "id")
  local rec, err = meta.get(client.root, client.namespace, KIND, id)
  if not rec then return nil, err end
  return wrap(client, rec)
end

-- ---------------------------------------------------------------- filters

-- One filter "a.b==v" / "a.b!=v" / "a.b" (present); "," joins conditions that must all hold.
local function parse_filter(s)
  local conds = {}
  for part in (s .. ","):gmatch("([^,]*),") do
    part = part:gsub("^%s+", ""):gsub("%s+$", "")
    if part ~= "" then
      local field, op, value = part:match("^([%w_%.%-/]+)%s*([!=~]=)%s*(.*)$")
      if not field then
        field = part:match("^([%w_%.%-/]+)$")
        if not field then return nil, errors.invalid("filter %q: expected FIELD, FIELD==VALUE or FIELD!=VALUE", s) end
      end
      if op == "~=" then return nil, errors.invalid("filter %q: regular expressions are not supported", s) end
      if value then value = value:gsub('^"(.*)"$', "%1") end
      conds[#conds + 1] = { path = field, op = op, value = value }
    end
  end
  return conds
end

local function field_of(rec, path)
  if path == "id" then return rec.id end
  if path == "image" then return rec.image end
  if path == "snapshotter" then return rec.snapshotter end
  if path == "runtime" or path == "runtime.name" then return rec.runtime and rec.runtime.name end
  local key = path:match("^labels%.(.+)$")
  if key then return rec.labels and rec.labels[key] end
  return nil
end

local function matches(rec, conds)
  for _, cnd in ipairs(conds) do
    local v = field_of(rec, cnd.path)
    if cnd.op == nil then
      if v == nil then return false end
    elseif cnd.op == "==" then
      if v ~= cnd.value then return false end
    elseif v == cnd.value then
      return false
    end
  end
  return true
end

--- Container records of the client's namespace, sorted by id, and the errors of the records
-- that could not be read (each names its file).
-- @param client a ctr.client
-- @param[opt] filters a list of containerd-style filters ("labels.env==prod", "image==x",
-- "id!=y", "labels.k"; "," inside one means and, several filters mean or), or a table
-- `{labels = {k = v}}` matching every label.
function M.list(client, filters)
  check_type(client, "table", "client")
  local any = nil
  if type(filters) == "table" and filters.labels then
    local conds = {}
    for k, v in pairs(filters.labels) do conds[#conds + 1] = { path = "labels." .. k, op = "==", value = v } end
    any = { conds }
  elseif type(filters) == "table" and #filters > 0 then
    any = {}
    for i, f in ipairs(filters) do
      check_type(f, "string", ("filters[%d]"):format(i))
      local conds, err = parse_filter(f)
      if not conds then return nil, err end
      any[#any + 1] = conds
    end
  elseif filters ~= nil and type(filters) ~= "table" then
    error("filters: expected table", 2)
  end
  local out = {}
  local recs, bad = meta.all(client.root, client.namespace, KIND)
  for _, rec in ipairs(recs) do
    local ok = any == nil
    for _, conds in ipairs(any or {}) do if matches(rec, conds) then ok = true break end end
    if ok then out[#out + 1] = wrap(client, rec) end
  end
  return out, bad
end

-- ---------------------------------------------------------------- Container methods

--- The record, freshly read: a table, or nil, err.
function Container:info()
  local rec, err = meta.get(self.client.root, self.client.namespace, KIND, self.id)
  if not rec then return nil, err end
  self.record = rec
  return rec
end

--- The container's OCI spec table, or nil, err.
function Container:spec()
  local rec, err = self:info()
  if not rec then return nil, err end
  if type(rec.spec) ~= "table" then return nil, errors.not_found("container %q: no spec", self.id) end
  return rec.spec
end

--- The container's labels, or nil, err.
function Container:labels()
  local rec, err = self:info()
  if not rec then return nil, err end
  return rec.labels or {}
end

--- The container's image name ("" when none).
function Container:image()
  local rec, err = self:info()
  if not rec then return nil, err end
  return rec.image or ""
end

--- Merge labels into the record (an empty value removes the label) and rewrite it atomically.
-- Returns the new labels, or nil, err.
function Container:set_labels(t)
  check_type(t, "table", "labels")
  for k, v in pairs(t) do
    check_type(k, "string", "labels key")
    check_type(v, "string", ("labels[%q]"):format(k))
  end
  local client = self.client
  return meta.with_lock(client.root, client.namespace, function()
    local rec, err = meta.get(client.root, client.namespace, KIND, self.id)
    if not rec then return nil, err end
    rec.labels = rec.labels or {}
    for k, v in pairs(t) do
      if v == "" then rec.labels[k] = nil else rec.labels[k] = v end
    end
    err = M.validate_labels(rec.labels)
    if err then return nil, err end
    rec.updated_at = core.rfc3339()
    local ok
    ok, err = meta.put(client.root, client.namespace, KIND, self.id, rec)
    if not ok then return nil, err end
    self.record = rec
    return rec.labels
  end)
end

-- The task status of a container: "running", "created", "stopped", ... or nil (no task).
local function task_status(client, id)
  local ok, tasks = pcall(require, "ctr.tasks")
  if not ok or type(tasks) ~= "table" or type(tasks.status) ~= "function" then return nil end
  local ok2, status = pcall(tasks.status, client, id)
  if not ok2 then return nil end
  return status
end
M._task_status = task_status

-- Does a readable snapshot record of sn have key as its parent?
local function has_child(sn, key)
  for _, info in ipairs((sn:list())) do
    if info.parent == key then return true end
  end
  return false
end

-- The snapshot of container id whose record cannot be read: the key `run` gives it (the id),
-- in a snapshotter where no other container record names it, and where it is active, or
-- unreadable too and no snapshot's parent: a run --rm cut by a power cut leaves both records
-- so (neither is synced), and snapshots:remove takes an unreadable one.
local function guess_snapshot(client, id)
  local named = {}
  for _, c in ipairs((meta.all(client.root, client.namespace, KIND))) do
    if c.id ~= id and c.snapshot_key then named[(c.snapshotter or "") .. "\0" .. c.snapshot_key] = true end
  end
  for _, name in ipairs({ "overlayfs", "native" }) do
    if core.stat(client.root .. "/snapshots/" .. name, true) and not named[name .. "\0" .. id] then
      local sn = client:snapshotter(name)
      local info, serr
      if sn then info, serr = sn:stat(id) end
      if info and info.kind == "active" then return sn, id end
      if not info and serr and serr.sym == "CORRUPT" and not has_child(sn, id) then return sn, id end
    end
  end
  return nil
end

--- Delete container id: its record; with `opts.snapshot_cleanup` (default true) its snapshot
-- first (else the snapshot is kept, and will be however long nothing names it).  Refuses while
-- a task exists that is not stopped, as ctr does; with `opts.force`, removes the task whatever
-- state it is in (killed, unmounted, its cgroup and state removed), and a record that cannot
-- be read (then its snapshot is the active one named by the id, if no other container names
-- it).  Each step is atomic and comes before the record's removal, so an interrupted delete
-- leaves a container that can be deleted again.
-- @tparam table client
-- @tparam string id
-- @tparam[opt] table opts `snapshot_cleanup`, `force`
-- @tparam[opt] table known the record as the caller holds it, used when the stored one cannot
-- be read
-- @return true, or nil, err (sym FAILED_PRECONDITION for a live task)
function M.delete(client, id, opts, known)
  check_type(client, "table", "client")
  check_type(id, "string", "id")
  opts = opts or {}
  check_type(opts, "table", "opts")
  local tasks = require("ctr.tasks")
  if opts.force then
    local ok, err = tasks.remove(client, id)
    if not ok then return nil, err end
  else
    local status, st = tasks.status(client, id)
    if status ~= nil and status ~= "stopped" then
      -- ctr prints the task's Status struct with %v: {running 0 0001-01-01 00:00:00 +0000 UTC}
      local why = st and st.unreadable and ("; " .. st.unreadable.msg) or ""
      return nil, errors.new(("cannot delete a non stopped container: {%s 0 0001-01-01 00:00:00 +0000 UTC}%s"):format(status, why),
        0, "FAILED_PRECONDITION")
    end
    if status == "stopped" then
      local r, err = tasks.delete(client, id)
      if r == nil and err ~= nil then return nil, err end
    end
  end
  -- no namespace lock here: the snapshotter takes it itself; the record goes last, by one
  -- atomic unlink, so an interrupted delete leaves a record that can be deleted again
  local rec, err = meta.get(client.root, client.namespace, KIND, id)
  if not rec then
    if not (opts.force and err.sym == "CORRUPT") then return nil, err end
    rec = known
  end
  local sn, key
  if rec then
    if rec.snapshotter and rec.snapshot_key then
      local rerr
      sn, rerr = client:snapshotter(rec.snapshotter)
      if not sn then return nil, rerr end
      key = rec.snapshot_key
    end
  else
    sn, key = guess_snapshot(client, id)
  end
  if sn then
    local ok, rerr
    if opts.snapshot_cleanup ~= false then
      ok, rerr = sn:remove(key)
    elseif sn.disown then -- kept on purpose: no longer partial (ctr.snapshots)
      ok, rerr = sn:disown(key)
    end
    if ok == nil and rerr ~= nil and rerr.sym ~= "NOT_FOUND" and rerr.sym ~= "ENOENT" then
      return nil, errors.wrap(rerr, "remove snapshot %q", key)
    end
    fault.point("container.snapshot-removed")
  end
  return meta.delete(client.root, client.namespace, KIND, id)
end

--- Make the records of a new container durable, its snapshot's with them: an fsync of each
-- of sync_paths() (meta.sync), or, with `done`, none: the caller made it (the monitor's launch
-- does, while it creates the init).  True, or nil, err.
function Container:sync(done)
  if not done then
    local points, err = self:sync_paths()
    if not points then return nil, err end
    local ok
    ok, err = meta.sync(points)
    if not ok then return nil, err end
  end
  self.unsynced = nil
  fault.point("container.synced")
  return true
end

--- What Container:sync makes durable (see meta.sync): `{fsync = {...}, syncfs = {...}}`,
-- its snapshot's (Snapshotter:durable_paths; a syncfs of the store for a snapshotter without
-- it), the container's record and its directory.  Or nil, err.
function Container:sync_paths()
  local rec, points = self.record, { fsync = {}, syncfs = {} }
  if rec.snapshot_key and rec.snapshot_key ~= "" then
    local sn, err = self.client:snapshotter(rec.snapshotter)
    if not sn then return nil, err end
    if sn.durable_paths then
      points, err = sn:durable_paths(rec.snapshot_key)
      if not points then return nil, err end
    else
      -- a snapshotter that cannot name what it made (a site's own): the store's whole file
      -- system
      points.syncfs = { self.client.root }
    end
  end
  local root, ns = self.client.root, self.client.namespace
  table.insert(points.fsync, 1, meta.path(root, ns, KIND, self.id))
  points.fsync[#points.fsync + 1] = meta.dir(root, ns, KIND)
  return points
end

--- Delete the container; see M.delete.
function Container:delete(opts)
  opts = opts or {}
  check_type(opts, "table", "opts")
  return M.delete(self.client, self.id, opts, self.record)
end

--- Create the container's task; see ctr.tasks.new_task.
function Container:new_task(io_opts, opts)
  return require("ctr.tasks").new_task(self, io_opts, opts)
end

-- ---------------------------------------------------------------- NewContainerOpts

--- Merge fields into the ctx the following opts (and spec opts) see.
function M.with_context(t)
  check_type(t, "table", "ctx")
  return function(ctx)
    for k, v in pairs(t) do ctx[k] = v end
  end
end

--- Mark the container ephemeral: it lives as long as the process that makes it, which
-- removes it (run --rm).  Its records (the container's and its snapshot's, whose files no
-- container fsyncs) then have no durability point: neither files nor names are synced: a crash
-- of that process leaves what it would leave otherwise, and a power cut at worst records that
-- are empty or cut short, which `containers rm -f` (and `snapshots rm`) remove, and then
-- `ctrlua gc` the rest.  Nothing of it is stored in the record.
function M.with_ephemeral()
  return function(ctx) ctx._ephemeral = true end
end

--- Leave the durability point of the new container's records to its task's create
-- (ctr.tasks.new_task, run -d): its fsyncs run while the init is created, in the
-- monitor's launch, or after the create (container:sync()).  Until then the container's
-- `unsynced` is true.  Without a task nothing syncs them: the caller must sync or remove them.
function M.with_sync_at_create()
  return function(ctx) ctx._sync_at_create = true end
end

--- Set the image name of the container.
function M.with_image(image)
  check_type(image, "table", "image")
  check_type(image.name, "string", "image.name")
  return function(_, _, c) c.image = image.name end
end

--- Set the image name of the container from a plain name.
function M.with_image_name(name)
  check_type(name, "string", "image name")
  return function(_, _, c) c.image = name end
end

--- Set the snapshotter.
function M.with_snapshotter(name)
  check_type(name, "string", "snapshotter")
  return function(_, _, c) c.snapshotter = name end
end

local function snapshot_opt(kind, key, image, opts)
  check_type(key, "string", "key")
  check_type(image, "table", "image")
  opts = opts or {}
  check_type(opts, "table", "opts")
  return function(ctx, client, c)
    if not c.snapshotter or c.snapshotter == "" then c.snapshotter = client.snapshotter_name end
    local chain, err = require("ctr.store.unpack").unpack(client, image, { snapshotter = c.snapshotter })
    if not chain then return nil, err end
    local sn, ok
    sn, err = client:snapshotter(c.snapshotter)
    if not sn then return nil, err end
    -- partial until the container record names it (ctr.snapshots); made under the collector's
    -- lock shared (ctr.store.gclock), so that the chain found unpacked is still there to be its
    -- parent: from then on the new snapshot holds its parents, and a collection keeps it
    ok, err = require("ctr.store.gclock").with_gc_lock(client.root, false, function()
      return sn[kind](sn, key, chain, { labels = opts.labels, partial = true, nofsync = true })
    end)
    if ok == nil and err ~= nil then return nil, err end
    if ctx._prepared then ctx._prepared[#ctx._prepared + 1] = { snapshotter = c.snapshotter, key = key } end
    -- the spec opts read the image's /etc/passwd and /etc/group through these: the snapshot is
    -- this process's own until the record is written, so they do not change meanwhile
    if type(ok) == "table" then
      ctx._mounts = ctx._mounts or {}
      ctx._mounts[c.snapshotter .. "\0" .. key] = ok
    end
    c.snapshot_key = key
    c.image = image.name
  end
end

--- Unpack the image if needed and prepare a writable snapshot `key` on its top layer's chain
-- ID; sets snapshotter (the client's when unset), snapshot_key and image.
-- @tparam string key the snapshot's key
-- @tparam table image an image record
-- @param[opt] opts `{labels = {k = v}}` for the snapshot
function M.with_new_snapshot(key, image, opts) return snapshot_opt("prepare", key, image, opts) end

--- As with_new_snapshot, with a read-only view.
function M.with_new_snapshot_view(key, image, opts) return snapshot_opt("view", key, image, opts) end

--- Use an existing snapshot key as the rootfs (no new snapshot).
function M.with_snapshot(key)
  check_type(key, "string", "key")
  return function(_, client, c)
    if not c.snapshotter or c.snapshotter == "" then c.snapshotter = client.snapshotter_name end
    c.snapshot_key = key
  end
end

--- Set the spec: apply spec opts to `spec` (a table) and store it.
function M.with_spec(spec, ...)
  check_type(spec, "table", "spec")
  local sopts = { n = select("#", ...), ... }
  return function(ctx, client, c)
    local oci = require("ctr.oci")
    local ok, err = oci.apply_opts(ctx, client, c, spec, unpack(sopts, 1, sopts.n))
    if not ok then return nil, err end
    c.spec = spec
  end
end

--- Generate the spec: the default one, then spec opts (containerd's WithNewSpec).
function M.with_new_spec(...)
  local sopts = { n = select("#", ...), ... }
  return function(ctx, client, c)
    local oci = require("ctr.oci")
    local spec, err = oci.generate_spec(ctx, client, c, unpack(sopts, 1, sopts.n))
    if not spec then return nil, err end
    c.spec = spec
  end
end

--- Set the runtime name and its options table.
function M.with_runtime(name, options)
  check_type(name, "string", "runtime")
  if options ~= nil then check_type(options, "table", "runtime options") end
  return function(_, _, c) c.runtime = { name = name, options = options } end
end

--- Replace the container's labels.
function M.with_container_labels(t)
  check_type(t, "table", "labels")
  return function(_, _, c)
    c.labels = {}
    for k, v in pairs(t) do c.labels[k] = v end
  end
end

--- Add labels to the container's labels.
function M.with_additional_container_labels(t)
  check_type(t, "table", "labels")
  return function(_, _, c)
    c.labels = c.labels or {}
    for k, v in pairs(t) do c.labels[k] = v end
  end
end

--- Replace the labels with the image config's Labels (containerd's WithImageConfigLabels).
function M.with_image_config_labels(image)
  check_type(image, "table", "image")
  return function(_, _, c)
    local cfg, err = require("ctr.oci").image_config(image)
    if not cfg then return nil, err end
    c.labels = {}
    if type(cfg.Labels) == "table" then
      for k, v in pairs(cfg.Labels) do
        if type(k) == "string" and type(v) == "string" then c.labels[k] = v end
      end
    end
  end
end

--- Record the image's StopSignal (or default_signal) in the label
-- io.containerd.image.config.stop-signal.
function M.with_image_stop_signal(image, default_signal)
  check_type(image, "table", "image")
  check_type(default_signal, "string", "default signal")
  return function(_, _, c)
    local cfg, err = require("ctr.oci").image_config(image)
    if not cfg then return nil, err end
    local sig = cfg.StopSignal
    if type(sig) ~= "string" or sig == "" then sig = default_signal end
    c.labels = c.labels or {}
    c.labels[M.STOP_SIGNAL_LABEL] = sig
  end
end

--- Set an extension (a JSON-able value) by name.
function M.with_container_extension(name, value)
  check_type(name, "string", "extension name")
  return function(_, _, c)
    c.extensions = c.extensions or {}
    c.extensions[name] = value
  end
end

return M
