--- Pull an image from a registry, unpacking its layers while they download (containerd's
-- client.Pull with WithPullUnpack, overlapped).
--
-- The documents (index, manifests, configs) are fetched first, each verified against its
-- descriptor and capped, and stored under the content store's rules.  Then up to
-- `max_concurrent_downloads` layers download at once, lowest first, each streamed into an
-- ingest with its digest computed as it arrives; and up to `max_concurrent_unpacks` layers are
-- applied at once, each into a temporary snapshot of its own, as soon as its blob starts to
-- arrive — reading the download's ingest as it grows when the blob is still on its way.  The
-- snapshots are committed in order, each only when its layer's digest and diff ID both
-- verified; a failure removes them.  The image record is written last, once every blob
-- it names is in the store: a pull that fails leaves no record, nothing under a wrong digest,
-- and partial downloads that the next pull resumes.
-- @module ctr.remotes.pull
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local reference = require("ctr.reference")
local platforms = require("ctr.platforms")
local docker = require("ctr.remotes.docker")
local rhttp = require("ctr.remotes.http")
local auth = require("ctr.remotes.auth")
local hosts = require("ctr.remotes.hosts")

local M = {}

local INDEX = { ["application/vnd.oci.image.index.v1+json"] = true,
  ["application/vnd.docker.distribution.manifest.list.v2+json"] = true }

--- A resolver for the registry options of pull, push and run (ctr's registry flags):
-- `user`, `password`, `refresh`, `hosts_dir`, `plain_http`, `skip_verify`, `tlscacert`,
-- `tlscert`, `tlskey`, `http_dump`, `http_trace`, `connect_timeout_ms`, `stall_timeout_s`.
-- @return resolver, or nil, err
function M.resolver(opts)
  opts = opts or {}
  local session, err = rhttp.session({ dump = opts.http_dump, trace = opts.http_trace })
  if not session then return nil, err end
  local r = docker.new_resolver({
    session = session,
    credentials = opts.credentials or auth.credentials({ user = opts.user, password = opts.password,
      refresh = opts.refresh }),
    hosts = function(domain)
      return hosts.for_host(domain, { hosts_dir = opts.hosts_dir, plain_http = opts.plain_http,
        skip_verify = opts.skip_verify, ca = opts.tlscacert, cert = opts.tlscert, key = opts.tlskey })
    end,
    default_tls = { ca = opts.tlscacert ~= "" and opts.tlscacert or nil,
      cert = opts.tlscert ~= "" and opts.tlscert or nil, key = opts.tlskey ~= "" and opts.tlskey or nil,
      insecure = opts.skip_verify or nil },
    connect_timeout_ms = opts.connect_timeout_ms, stall_timeout_s = opts.stall_timeout_s,
    max_attempts = opts.max_attempts,
  })
  return r
end

--- Parse a reference for pull: `strict` as ctr (containerd's reference.Parse: a host and a tag
-- or digest are required, in ctr's words), else as docker (short names normalised).
-- @return spec, or nil, err
function M.parse_ref(ref, strict)
  if strict then
    local spec, err = reference.parse(ref)
    if not spec then return nil, errors.wrap(err, "failed to resolve reference %q", ref) end
    if spec.object == "" then
      return nil, errors.new(('failed to resolve reference "%s": object required'):format(ref), 22, "INVALID")
    end
    if spec.path == "" then
      return nil, errors.new(('failed to resolve reference "%s": no repository in the reference'):format(ref), 22, "INVALID")
    end
    return spec
  end
  local spec, err = reference.parse_normalized_named(ref)
  if not spec then return nil, errors.wrap(err, "failed to resolve reference %q", ref) end
  return spec
end

local function want_platforms(opts)
  local list = {}
  for _, p in ipairs(opts.platforms or {}) do
    local w, err = platforms.parse(p)
    if not w then return nil, err end
    list[#list + 1] = w
  end
  local explicit = #list > 0
  if not explicit then list[1] = platforms.default() end
  return list, explicit
end

local function desc_platform(c)
  local p = type(c) == "table" and c.platform
  if type(p) ~= "table" or type(p.architecture) ~= "string" then return nil end
  return platforms.normalize({ os = type(p.os) == "string" and p.os or "linux",
    architecture = p.architecture, variant = type(p.variant) == "string" and p.variant or nil })
end

local function check_desc(d, what)
  if type(d) ~= "table" or not require("ctr.content").valid_digest(d.digest) or
    type(d.size) ~= "number" or d.size < 0 then
    return nil, errors.invalid("%s: invalid descriptor", what)
  end
  return d
end

-- The best child of an index for platform want: exact, then compatible, then one without a
-- platform (as images.manifest resolves it).
local function pick_child(manifests, want)
  local n = platforms.normalize(want)
  local exact, compat, unknown
  for _, c in ipairs(manifests) do
    local p = desc_platform(c)
    if p == nil then
      unknown = unknown or c
    elseif platforms.match(want, p) then
      if p.os == n.os and p.architecture == n.architecture and p.variant == n.variant then
        exact = exact or c
      else
        compat = compat or c
      end
    end
  end
  return exact or compat or unknown
end

-- The lease holds the layers of the selected manifests before the pull looks which are there.
local function hold_layers(lease, selected)
  local digests = {}
  for _, s in ipairs(selected) do
    for _, l in ipairs(s.manifest.layers) do digests[#digests + 1] = l.digest end
  end
  return lease:add({ content = digests })
end

-- ... and every snapshot of the chains before the pull looks which are unpacked.
local function hold_chains(lease, sn, chains)
  local keys = {}
  for _, U in ipairs(chains) do
    for _, id in ipairs(U.chain) do keys[#keys + 1] = id end
  end
  return lease:add({ snapshots = { [sn.name] = keys } })
end

-- A pull's state, passed to each of its steps: the client, the reference (`spec`, `name` once
-- resolved, `ref_shown` for the display), the options, the resolver `r`, the content store,
-- the display, the lease; then what the steps find: `selected` (the manifests whose layers are
-- wanted), `blobs` and `queue` (the layers), `chains` and `sn` (what to unpack), `active` and
-- `first_err` (the downloads), `stats`.

-- the session is the pull's own unless the caller lent its resolver
local function close_session(P)
  if not P.opts.resolver then P.r.session:close() end
end

-- Release what the pull holds and return nil, err (wrapped as `pull NAME`).
local function fail(P, e, ...)
  P.lease:release()
  close_session(P)
  if P.display then P.display:draw(true) end
  if select("#", ...) > 0 then e = errors.wrap(e, ...) end
  return nil, errors.wrap(e, "pull %s", P.name)
end

-- The reference resolved to its top descriptor, and the lease taken that holds what the pull
-- writes or finds until the image record names it.
local function resolve(P)
  local opts, display = P.opts, P.display
  P.store:sweep(3600)
  P.ref_shown = opts.strict and P.ref or reference.string(P.spec)
  if display then display:set(P.ref_shown, "resolving") display:draw() end
  local name, desc = P.r:resolve(P.spec)
  if not name then
    close_session(P)
    return nil, errors.wrap(desc, 'failed to resolve reference "%s"', P.ref_shown)
  end
  if opts.strict then name = P.ref end
  P.name, P.desc = name, desc
  if display then display:set(P.ref_shown, "resolved") display:draw() end
  local lease, lerr = require("ctr.leases").create(P.client)
  if not lease then
    close_session(P)
    return nil, errors.wrap(lerr, "pull %s", name)
  end
  P.lease = lease
  return true
end

-- ---- the documents, verified and stored

local function store_doc(P, d, data)
  local ok, werr = P.lease:add({ content = { d.digest } })
  if not ok then return nil, werr end
  ok, werr = P.store:write(data, { digest = d.digest, size = d.size })
  if not ok then return nil, werr end
  return true
end

local function fetch_json(P, d, is_manifest, kind)
  local data, ferr = P.r:fetch_document(P.spec, d, is_manifest)
  if not data then return nil, ferr end
  local doc = core.json_decode(data)
  if type(doc) ~= "table" then return nil, errors.invalid("%s %s: malformed JSON", kind, d.digest) end
  local ok, werr = store_doc(P, d, data)
  if not ok then return nil, werr end
  if P.display then P.display:set(kind .. "-" .. d.digest, "done") P.display:draw() end
  return doc
end

-- The children of index doc to visit: chosen[c] is true for the platforms wanted (or all of
-- them), false for what is no image, nil for the rest; and the list of those picked.
local function choose_platforms(P, d, doc)
  local chosen = {}
  for i, c in ipairs(doc.manifests) do
    local ok, cerr = check_desc(c, "index " .. d.digest .. " manifest " .. i)
    if not ok then return nil, cerr end
    if not docker.is_manifest_type(c.mediaType) and c.mediaType ~= nil then
      -- attestations and other artifacts are not images: left alone
      chosen[c] = false
    end
  end
  local picks = {}
  if P.opts.all_platforms then
    for _, c in ipairs(doc.manifests) do
      if chosen[c] == nil then picks[#picks + 1] = c chosen[c] = true end
    end
  else
    for _, w in ipairs(P.wants) do
      local usable = {}
      for _, c in ipairs(doc.manifests) do if chosen[c] ~= false then usable[#usable + 1] = c end end
      local c = pick_child(usable, w)
      if c and not chosen[c] then
        picks[#picks + 1] = c
        chosen[c] = true
      end
    end
  end
  return chosen, picks
end

local visit

local function visit_index(P, d, doc, depth, want_layers)
  if type(doc.manifests) ~= "table" then return nil, errors.invalid("index %s: no manifests", d.digest) end
  local chosen, picks = choose_platforms(P, d, doc)
  if not chosen then return nil, picks end
  for _, c in ipairs(doc.manifests) do
    if chosen[c] then
      local ok, verr = visit(P, c, depth + 1, want_layers, desc_platform(c))
      if not ok then return nil, verr end
    elseif chosen[c] == nil and P.opts.all_metadata then
      local ok, verr = visit(P, c, depth + 1, false, desc_platform(c))
      if not ok then return nil, verr end
    end
  end
  if #picks == 0 then
    return nil, errors.not_found("no manifest for platform %s", platforms.format(P.wants[1]))
  end
  return true
end

local function visit_manifest(P, d, doc, depth, want_layers, platform_of)
  local mt = d.mediaType
  if not docker.is_manifest_type(mt) and mt ~= nil then
    return nil, errors.new(("%s: unsupported media type %s"):format(d.digest, tostring(mt)), 22, "UNSUPPORTED")
  end
  if type(doc.config) ~= "table" or type(doc.layers) ~= "table" then
    return nil, errors.invalid("manifest %s: no config or layers", d.digest)
  end
  local ok, cerr = check_desc(doc.config, "manifest " .. d.digest .. " config")
  if not ok then return nil, cerr end
  local config
  config, cerr = fetch_json(P, doc.config, false, "config")
  if not config then return nil, cerr end
  local p = platform_of
  if not p and type(config.architecture) == "string" then
    p = platforms.normalize({ os = config.os or "linux", architecture = config.architecture,
      variant = config.variant })
  end
  if depth == 0 and P.explicit and p then
    local any = false
    for _, w in ipairs(P.wants) do if platforms.match(w, p) then any = true end end
    if not any then
      return nil, errors.not_found("no manifest for platform %s", platforms.format(P.wants[1]))
    end
  end
  for i, l in ipairs(doc.layers) do
    local lok, lerr = check_desc(l, "manifest " .. d.digest .. " layer " .. i)
    if not lok then return nil, lerr end
  end
  if want_layers then
    P.selected[#P.selected + 1] = { desc = d, manifest = doc, config = config, platform = p }
  end
  return true
end

-- Fetch the manifest (or index) d, and below it what the platforms want.
function visit(P, d, depth, want_layers, platform_of)
  if depth > 4 then return nil, errors.invalid("indexes nested too deep") end
  local mt = d.mediaType
  local doc, ferr = fetch_json(P, d, true, INDEX[mt] and "index" or "manifest")
  if not doc then return nil, ferr end
  if INDEX[mt] or (mt == nil and type(doc.manifests) == "table") then
    return visit_index(P, d, doc, depth, want_layers)
  end
  return visit_manifest(P, d, doc, depth, want_layers, platform_of)
end

-- ---- the layers

local function ingest_ref(d) return "pull-" .. d:sub(8) end

-- What is there already, what to download (lowest first).
local function schedule_blobs(P)
  local blobs, queue, store, display = P.blobs, P.queue, P.store, P.display
  local lok, laerr = hold_layers(P.lease, P.selected)
  if not lok then return nil, laerr end
  for _, s in ipairs(P.selected) do
    for _, l in ipairs(s.manifest.layers) do
      if not blobs[l.digest] then
        local info = store:info(l.digest)
        local L = { desc = l, state = "queued" }
        if info and info.size == l.size then L.state = "exists" end
        blobs[l.digest] = L
        if L.state == "queued" then queue[#queue + 1] = l.digest end
        if display then
          display:set("layer-" .. l.digest, L.state == "exists" and "exists" or "waiting", 0, l.size)
        end
      end
    end
  end
  return true
end

-- What to unpack: one chain per selected platform.
local function plan_chains(P)
  local unpack_mod = require("ctr.store.unpack")
  local sn, err = require("ctr.snapshots").get(P.client, P.opts.snapshotter or P.client.snapshotter_name)
  if not sn then return nil, err end
  P.sn = sn
  for _, s in ipairs(P.selected) do
    local diff_ids = type(s.config.rootfs) == "table" and s.config.rootfs.diff_ids
    if type(diff_ids) ~= "table" or #diff_ids ~= #s.manifest.layers then
      return nil, errors.invalid("config %s: rootfs.diff_ids do not match the %d layers",
        s.manifest.config.digest, #s.manifest.layers)
    end
    local chain, cerr = unpack_mod.chain_ids(diff_ids)
    if not chain then return nil, cerr end
    P.chains[#P.chains + 1] = { sel = s, diff_ids = diff_ids, chain = chain, i = 1, applies = {},
      running = 0 }
  end
  return hold_chains(P.lease, sn, P.chains)
end

local function start_downloads(P)
  local r, blobs, queue = P.r, P.blobs, P.queue
  while P.active < P.max and #queue > 0 and not P.first_err do
    local d = table.remove(queue, 1)
    local L = blobs[d]
    L.state = "downloading"
    P.active = P.active + 1
    r:spawn(function()
      local res, ferr = r:fetch_blob(P.spec, L.desc, { content = P.store.dir, ref = ingest_ref(d) },
        function(id) L.id = id end)
      P.active = P.active - 1
      L.id = nil
      if res then
        L.state = "done"
        P.stats.fetched = P.stats.fetched + L.desc.size
      else
        L.state = "failed"
        P.first_err = P.first_err or errors.wrap(ferr, "layer %s", d)
      end
    end)
  end
end

-- ---- unpack as the layers arrive
--
-- Up to P.max_unpacks layers of the current chain are applied at once, each on threads of its
-- own into an extract snapshot of its own, the lowest not started first (as soon as an apply
-- ends, whatever is still uncommitted below), and committed in order.  On overlayfs
-- a layer whose parent is not committed yet is prepared without a parent and committed on it
-- (the snapshot's commit with opts.parent, containerd's rebase): an upper directory does not
-- depend on its lowers, the apply writes the layer's own entries into it.  The native
-- snapshotter copies the parent into the new snapshot, so there a layer waits for its parent.
-- Each apply syncs its file system at its end (on its thread, beside the others' work), and
-- each commit after it: a snapshot is committed only once its contents are on disk.

local function committed(P, key)
  local info, serr = P.sn:stat(key)
  if info then return info.kind == "committed" end
  if serr.sym == "NOT_FOUND" then return false end
  return nil, serr
end

local function abandon(P, U)
  for j, A in pairs(U.applies) do
    if A.job then
      A.job:source_failed()
      A.job:wait()
      A.job = nil
    end
    if A.key then P.sn:remove(A.key) A.key = nil end
    U.applies[j] = nil
  end
  U.running = 0
end

-- Past the layers of chain U already committed (by an earlier pull or another process).
local function skip_committed(P, U)
  local n = #U.chain
  while not U.applies[U.i] and U.i <= n do
    local have, serr = committed(P, U.chain[U.i])
    if have == nil then return nil, serr end
    if not have then break end
    P.stats.reused = P.stats.reused + 1
    if P.display then P.display:set("unpack-" .. U.sel.manifest.layers[U.i].digest, "reused") end
    U.i = U.i + 1
  end
  return true
end

-- Start the apply of U's layer j into a new extract snapshot: from the blob when it is in the
-- store, from the download's ingest as it grows when it is on its way.  False when it is not
-- there yet.
local function begin_apply(P, U, j)
  local sn, store = P.sn, P.store
  local layer = U.sel.manifest.layers[j]
  local L = P.blobs[layer.digest]
  local path, follow
  if L.state == "exists" or L.state == "done" then
    path, follow = store:path(layer.digest), false
  elseif L.state == "downloading" and L.id then
    path, follow = store.dir .. "/ingest/" .. ingest_ref(layer.digest), true
  else
    return false -- not there yet
  end
  -- the lowest layer not committed has its parent committed; one above it is rebased
  local parent, rebase = U.chain[j - 1], j > U.i
  if rebase then parent = nil end
  local A = { key = ("extract-%s %s"):format(core.random_hex(8), U.chain[j]), rebase = rebase, L = L }
  local mounts, perr = sn:prepare(A.key, parent, { partial = true })
  if not mounts then return nil, perr end
  U.applies[j] = A
  local dir
  dir, perr = sn:fs_path(A.key)
  if not dir then return nil, perr end
  local job, err = sys.layer_apply_start(dir, path, { whiteouts = P.whiteouts,
    diff_id = U.diff_ids[j], follow = follow })
  if not job then return nil, err end
  A.job, A.follow = job, follow
  U.running = U.running + 1
  return true
end

-- Look at the apply of U's layer j: tell it its download is complete; once it is done,
-- verify it.
local function watch_apply(P, U, j, A)
  local layer = U.sel.manifest.layers[j]
  if A.follow and A.L.state == "done" and not A.told then
    A.job:source_complete(layer.size)
    A.told = true
  elseif A.follow and A.L.state == "failed" then
    return nil, P.first_err
  end
  if P.display then
    P.display:set("unpack-" .. layer.digest, "unpacking", A.job:progress(), layer.size)
  end
  if not A.job:done() then return true end
  local res, err = sys.result(A.job:wait())
  A.job = nil
  U.running = U.running - 1
  if not res then return nil, errors.wrap(err, "unpack layer %d (%s)", j, layer.digest) end
  if res.diff_id ~= U.diff_ids[j] then
    return nil, errors.new(("unpack layer %d (%s): diff ID mismatch: expected %s, got %s"):format(j,
      layer.digest, U.diff_ids[j], res.diff_id), 0, "DIGEST_MISMATCH")
  end
  -- the blob must have verified too (a followed download is taken before its apply ends)
  if A.L.state ~= "done" and A.L.state ~= "exists" then
    return nil, errors.new(("unpack layer %d: its download did not complete"):format(j), 0, "FAILED")
  end
  A.applied = true
  return true
end

-- Commit U's applied layers in order, each on the one below.
local function commit_applied(P, U)
  while U.applies[U.i] and U.applies[U.i].applied do
    local A, layer = U.applies[U.i], U.sel.manifest.layers[U.i]
    local cok, cerr = P.sn:commit(U.chain[U.i], A.key, { parent = A.rebase and U.chain[U.i - 1] or nil })
    if not cok then
      if cerr.sym ~= "EXISTS" then return nil, cerr end
      P.sn:remove(A.key)
    end
    A.key = nil
    U.applies[U.i] = nil
    P.stats.unpacked = P.stats.unpacked + 1
    if P.display then P.display:set("unpack-" .. layer.digest, "unpacked", layer.size, layer.size) end
    U.i = U.i + 1
  end
  return true
end

-- One step of the current chain's unpack: start the applies there is room for, look at those
-- running, commit what is done.
local function unpack_step(P, U)
  local ok, err = skip_committed(P, U)
  if not ok then return nil, err end
  local n = #U.chain
  local limit = P.sn.name == "overlayfs" and P.max_unpacks or 1
  for j, A in pairs(U.applies) do
    if A.job then
      ok, err = watch_apply(P, U, j, A)
      if not ok then return nil, err end
    end
  end
  -- the slots the applies just ended left, before the commits (each waits for a sync)
  for j = U.i, limit > 1 and n or U.i do
    if U.running >= limit then break end
    if not U.applies[j] then
      ok, err = begin_apply(P, U, j)
      if not ok then
        if ok == nil then return nil, err end
        break -- its blob is not there yet: neither are those above, which download later
      end
    end
  end
  return commit_applied(P, U)
end

local function show_downloads(P)
  local display = P.display
  for d, L in pairs(P.blobs) do
    if L.state == "downloading" and L.id then
      local done, total = P.r.session:progress(L.id)
      display:set("layer-" .. d, "downloading", done or 0, total or L.desc.size)
    elseif L.state == "done" then
      display:set("layer-" .. d, "done", L.desc.size, L.desc.size)
    end
  end
  display:draw()
end

-- Download and unpack until every chain is committed or something failed (P.first_err).
local function transfer(P)
  local chains, stats = P.chains, P.stats
  local ci = 1
  while true do
    start_downloads(P)
    local U = chains[ci]
    if U and not P.first_err then
      local uok, uerr = unpack_step(P, U)
      if not uok then
        P.first_err = uerr
      elseif U.i > #U.chain then
        stats.chain_ids[platforms.format(U.sel.platform or platforms.default())] = U.chain[#U.chain]
        ci = ci + 1
      end
    end
    if P.first_err then break end
    if P.display then show_downloads(P) end
    if P.active == 0 and #P.queue == 0 and ci > #chains then break end
    -- a followed apply makes progress without the network: look at it often
    P.r:step((chains[ci] and chains[ci].running > 0) and 20 or 100)
  end
end

-- ---- the image record, written last

local function record_image(P)
  local images = require("ctr.images")
  local meta = require("ctr.store.meta")
  local client = P.client
  local rec, err = meta.with_lock(client.root, client.namespace, function()
    return images.create_or_update(client, P.name, P.desc, P.opts.labels)
  end)
  P.lease:release()
  if not rec then return nil, errors.wrap(err, "pull %s", P.name) end
  return rec
end

--- Pull ref into the client's store and unpack it.
-- @param client a ctr.client
-- @tparam string ref the reference
-- @tparam[opt] table opts the registry options (see M.resolver) and `strict` (ctr's reference
-- rules), `platforms` (list of "os/arch[/variant]"), `all_platforms`, `all_metadata`,
-- `unpack` (default true), `snapshotter`, `labels`, `max_concurrent_downloads` (default 3),
-- `max_concurrent_unpacks` (layers applied at once, default 2; 1 on the native snapshotter),
-- `display` (a ctr.remotes.progress display), `resolver` (one to reuse)
-- @return the image record and `{chain_ids = {platform = chain id}, fetched = bytes, layers = n,
-- unpacked = n, reused = n, elapsed = s}`; or nil, err
function M.pull(client, ref, opts)
  if type(ref) ~= "string" then error("pull: ref: expected string", 2) end
  opts = opts or {}
  local t0 = core.monotime()
  local spec, err = M.parse_ref(ref, opts.strict)
  if not spec then return nil, err end
  local wants, explicit = want_platforms(opts)
  if not wants then return nil, explicit end
  local r = opts.resolver
  if not r then
    r, err = M.resolver(opts)
    if not r then return nil, err end
  end
  local P = { client = client, ref = ref, spec = spec, opts = opts, wants = wants,
    explicit = explicit, r = r, display = opts.display, store = client:content_store(),
    selected = {}, blobs = {}, queue = {}, chains = {}, active = 0,
    stats = { fetched = 0, layers = 0, unpacked = 0, reused = 0, chain_ids = {} } }
  local ok
  ok, err = resolve(P)
  if not ok then return nil, err end
  ok, err = visit(P, P.desc, 0, true, nil)
  if not ok then return fail(P, err) end
  ok, err = schedule_blobs(P)
  if not ok then return fail(P, err) end
  if opts.unpack ~= false then
    ok, err = plan_chains(P)
    if not ok then return fail(P, err) end
  end
  P.whiteouts = P.sn and P.sn.name == "overlayfs" and "overlay" or "native"
  P.max = tonumber(opts.max_concurrent_downloads) or 3
  if P.max < 1 then P.max = 3 end
  P.max_unpacks = tonumber(opts.max_concurrent_unpacks) or 2
  if P.max_unpacks < 1 then P.max_unpacks = 2 end
  transfer(P)
  if P.first_err then
    for _, U in ipairs(P.chains) do abandon(P, U) end
    return fail(P, P.first_err)
  end
  close_session(P)
  if P.display then P.display:draw(true) end
  local stats = P.stats
  stats.layers = 0
  for _ in pairs(P.blobs) do stats.layers = stats.layers + 1 end
  local rec
  rec, err = record_image(P)
  if not rec then return nil, err end
  stats.elapsed = core.monotime() - t0
  stats.platforms = {}
  for _, s in ipairs(P.selected) do
    stats.platforms[#stats.platforms + 1] = s.platform and platforms.format(s.platform) or nil
  end
  return rec, stats
end

return M
