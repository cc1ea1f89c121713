--- Pull an image from a registry, unpacking its layers while they download (containerd's
-- client.Pull with WithPullUnpack, overlapped).
--
-- The documents (index, manifests, configs) are fetched first, each verified against its
-- descriptor and capped, and stored under the content store's rules.  Then up to
-- `max_concurrent_downloads` layers download at once, lowest first, each streamed into an
-- ingest with its digest computed as it arrives; and each layer is applied into a temporary
-- snapshot as soon as its parent is committed — reading the download's ingest as it grows when
-- the blob is still on its way.  A snapshot is committed only when its layer's digest and diff
-- ID both verified; a failure removes it.  The image record is written last, once every blob
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

--- Pull ref into the client's store and unpack it.
-- @param client a ctr.client
-- @tparam string ref the reference
-- @tparam[opt] table opts the registry options (see M.resolver) and `strict` (ctr's reference
-- rules), `platforms` (list of "os/arch[/variant]"), `all_platforms`, `all_metadata`,
-- `unpack` (default true), `snapshotter`, `labels`, `max_concurrent_downloads` (default 3),
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
  local display = opts.display
  local store = client:content_store()
  store:sweep(3600)
  local name, desc
  local ref_shown = opts.strict and ref or reference.string(spec)
  if display then display:set(ref_shown, "resolving") display:draw() end
  name, desc = r:resolve(spec)
  if not name then
    if not opts.resolver then r.session:close() end
    return nil, errors.wrap(desc, 'failed to resolve reference "%s"', ref_shown)
  end
  if opts.strict then name = ref end
  if display then display:set(ref_shown, "resolved") display:draw() end
  -- what the pull writes or finds is held by a lease until the image record names it
  local lease, lerr = require("ctr.leases").create(client)
  if not lease then
    if not opts.resolver then r.session:close() end
    return nil, errors.wrap(lerr, "pull %s", name)
  end
  local function fail(e, ...)
    lease:release()
    if not opts.resolver then r.session:close() end
    if display then display:draw(true) end
    if select("#", ...) > 0 then e = errors.wrap(e, ...) end
    return nil, errors.wrap(e, "pull %s", name)
  end

  -- the documents, verified and stored; the manifests whose layers are wanted
  local selected = {} -- { {desc=, manifest=, config=, platform=} }
  local function store_doc(d, data)
    local ok, werr = lease:add({ content = { d.digest } })
    if not ok then return nil, werr end
    ok, werr = store:write(data, { digest = d.digest, size = d.size })
    if not ok then return nil, werr end
    return true
  end
  local function fetch_json(d, is_manifest, kind)
    local data, ferr = r:fetch_document(spec, d, is_manifest)
    if not data then return nil, ferr end
    local doc = core.json_decode(data)
    if type(doc) ~= "table" then return nil, errors.invalid("%s %s: malformed JSON", kind, d.digest) end
    local ok, werr = store_doc(d, data)
    if not ok then return nil, werr end
    if display then display:set(kind .. "-" .. d.digest, "done") display:draw() end
    return doc
  end
  local function visit(d, depth, want_layers, platform_of)
    if depth > 4 then return nil, errors.invalid("indexes nested too deep") end
    local mt = d.mediaType
    local doc, ferr = fetch_json(d, true, INDEX[mt] and "index" or "manifest")
    if not doc then return nil, ferr end
    if INDEX[mt] or (mt == nil and type(doc.manifests) == "table") then
      if type(doc.manifests) ~= "table" then return nil, errors.invalid("index %s: no manifests", d.digest) end
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
      if opts.all_platforms then
        for _, c in ipairs(doc.manifests) do
          if chosen[c] == nil then picks[#picks + 1] = c chosen[c] = true end
        end
      else
        for _, w in ipairs(wants) do
          local usable = {}
          for _, c in ipairs(doc.manifests) do if chosen[c] ~= false then usable[#usable + 1] = c end end
          local c = pick_child(usable, w)
          if c and not chosen[c] then
            picks[#picks + 1] = c
            chosen[c] = true
          end
        end
      end
      for _, c in ipairs(doc.manifests) do
        if chosen[c] then
          local ok, verr = visit(c, depth + 1, want_layers, desc_platform(c))
          if not ok then return nil, verr end
        elseif chosen[c] == nil and opts.all_metadata then
          local ok, verr = visit(c, depth + 1, false, desc_platform(c))
          if not ok then return nil, verr end
        end
      end
      if #picks == 0 then
        return nil, errors.not_found("no manifest for platform %s", platforms.format(wants[1]))
      end
      return true
    end
    if not docker.is_manifest_type(mt) and mt ~= nil then
      return nil, errors.new(("%s: unsupported media type %s"):format(d.digest, tostring(mt)), 22, "UNSUPPORTED")
    end
    if type(doc.config) ~= "table" or type(doc.layers) ~= "table" then
      return nil, errors.invalid("manifest %s: no config or layers", d.digest)
    end
    local ok, cerr = check_desc(doc.config, "manifest " .. d.digest .. " config")
    if not ok then return nil, cerr end
    local config
    config, cerr = fetch_json(doc.config, false, "config")
    if not config then return nil, cerr end
    local p = platform_of
    if not p and type(config.architecture) == "string" then
      p = platforms.normalize({ os = config.os or "linux", architecture = config.architecture,
        variant = config.variant })
    end
    if depth == 0 and explicit and p then
      local any = false
      for _, w in ipairs(wants) do if platforms.match(w, p) then any = true end end
      if not any then
        return nil, errors.not_found("no manifest for platform %s", platforms.format(wants[1]))
      end
    end
    for i, l in ipairs(doc.layers) do
      local lok, lerr = check_desc(l, "manifest " .. d.digest .. " layer " .. i)
      if not lok then return nil, lerr end
    end
    if want_layers then
      selected[#selected + 1] = { desc = d, manifest = doc, config = config, platform = p }
    end
    return true
  end
  local ok, verr = visit(desc, 0, true, nil)
  if not ok then return fail(verr) end

  -- the layers: what is there already, what to download (lowest first)
  local blobs, queue = {}, {}
  local function ingest_ref(d) return "pull-" .. d:sub(8) end
  local lok, laerr = hold_layers(lease, selected)
  if not lok then return fail(laerr) end
  for _, s in ipairs(selected) do
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

  -- what to unpack: one chain per selected platform
  local unpack = opts.unpack ~= false
  local chains = {}
  local sn
  if unpack then
    local unpack_mod = require("ctr.store.unpack")
    sn, err = require("ctr.snapshots").get(client, opts.snapshotter or client.snapshotter_name)
    if not sn then return fail(err) end
    for _, s in ipairs(selected) do
      local diff_ids = type(s.config.rootfs) == "table" and s.config.rootfs.diff_ids
      if type(diff_ids) ~= "table" or #diff_ids ~= #s.manifest.layers then
        return fail(errors.invalid("config %s: rootfs.diff_ids do not match the %d layers",
          s.manifest.config.digest, #s.manifest.layers))
      end
      local chain, cerr = unpack_mod.chain_ids(diff_ids)
      if not chain then return fail(cerr) end
      chains[#chains + 1] = { sel = s, diff_ids = diff_ids, chain = chain, i = 1 }
    end
    local hok, herr = hold_chains(lease, sn, chains)
    if not hok then return fail(herr) end
  end
  local whiteouts = sn and sn.name == "overlayfs" and "overlay" or "native"
  local max = tonumber(opts.max_concurrent_downloads) or 3
  if max < 1 then max = 3 end
  local active, first_err = 0, nil
  local stats = { fetched = 0, layers = 0, unpacked = 0, reused = 0, chain_ids = {} }

  local function start_downloads()
    while active < max and #queue > 0 and not first_err do
      local d = table.remove(queue, 1)
      local L = blobs[d]
      L.state = "downloading"
      active = active + 1
      r:spawn(function()
        local res, ferr = r:fetch_blob(spec, L.desc, { content = store.dir, ref = ingest_ref(d) },
          function(id) L.id = id end)
        active = active - 1
        L.id = nil
        if res then
          L.state = "done"
          stats.fetched = stats.fetched + L.desc.size
        else
          L.state = "failed"
          first_err = first_err or errors.wrap(ferr, "layer %s", d)
        end
      end)
    end
  end

  local function committed(key)
    local info, serr = sn:stat(key)
    if info then return info.kind == "committed" end
    if serr.sym == "NOT_FOUND" then return false end
    return nil, serr
  end

  -- one step of the current chain's unpack: start the next layer's apply, or finish one
  local function abandon(U)
    if U.job then
      U.job:source_failed()
      U.job:wait()
      U.job = nil
    end
    if U.key then sn:remove(U.key) U.key = nil end
  end
  local function unpack_step(U)
    local n = #U.chain
    while not U.job and U.i <= n do
      local have, serr = committed(U.chain[U.i])
      if have == nil then return nil, serr end
      if not have then break end
      stats.reused = stats.reused + 1
      if display then display:set("unpack-" .. U.sel.manifest.layers[U.i].digest, "reused") end
      U.i = U.i + 1
    end
    if U.i > n then return true end
    local layer = U.sel.manifest.layers[U.i]
    local L = blobs[layer.digest]
    if not U.job then
      local path, follow
      if L.state == "exists" or L.state == "done" then
        path, follow = store:path(layer.digest), false
      elseif L.state == "downloading" and L.id then
        path, follow = store.dir .. "/ingest/" .. ingest_ref(layer.digest), true
      else
        return true -- not there yet
      end
      U.key = ("extract-%s %s"):format(core.random_hex(8), U.chain[U.i])
      local mounts, perr = sn:prepare(U.key, U.chain[U.i - 1])
      if not mounts then U.key = nil return nil, perr end
      local dir
      dir, perr = sn:fs_path(U.key)
      if not dir then return nil, perr end
      local job, err = sys.layer_apply_start(dir, path, { whiteouts = whiteouts,
        diff_id = U.diff_ids[U.i], follow = follow })
      if not job then return nil, err end
      U.job, U.follow, U.L = job, follow, L
    end
    if U.follow and U.L.state == "done" and not U.told then
      U.job:source_complete(layer.size)
      U.told = true
    elseif U.follow and U.L.state == "failed" then
      return nil, first_err
    end
    if display then
      display:set("unpack-" .. layer.digest, "unpacking", U.job:progress(), layer.size)
    end
    if not U.job:done() then return true end
    local res, err = sys.result(U.job:wait())
    U.job = nil
    if not res then return nil, errors.wrap(err, "unpack layer %d (%s)", U.i, layer.digest) end
    if res.diff_id ~= U.diff_ids[U.i] then
      return nil, errors.new(("unpack layer %d (%s): diff ID mismatch: expected %s, got %s"):format(U.i,
        layer.digest, U.diff_ids[U.i], res.diff_id), 0, "DIGEST_MISMATCH")
    end
    -- the blob must have verified too (a followed download is taken before its apply ends)
    if L.state ~= "done" and L.state ~= "exists" then
      return nil, errors.new(("unpack layer %d: its download did not complete"):format(U.i), 0, "FAILED")
    end
    local cok, cerr = sn:commit(U.chain[U.i], U.key)
    if not cok then
      if cerr.sym ~= "EXISTS" then return nil, cerr end
      sn:remove(U.key)
    end
    U.key, U.told = nil, nil
    stats.unpacked = stats.unpacked + 1
    if display then display:set("unpack-" .. layer.digest, "unpacked", layer.size, layer.size) end
    U.i = U.i + 1
    return unpack_step(U)
  end

  local ci = 1
  while true do
    start_downloads()
    local U = chains[ci]
    if U and not first_err then
      local uok, uerr = unpack_step(U)
      if not uok then
        first_err = uerr
      elseif U.i > #U.chain then
        stats.chain_ids[platforms.format(U.sel.platform or platforms.default())] = U.chain[#U.chain]
        ci = ci + 1
      end
    end
    if first_err then break end
    if display then
      for d, L in pairs(blobs) do
        if L.state == "downloading" and L.id then
          local done, total = r.session:progress(L.id)
          display:set("layer-" .. d, "downloading", done or 0, total or L.desc.size)
        elseif L.state == "done" then
          display:set("layer-" .. d, "done", L.desc.size, L.desc.size)
        end
      end
      display:draw()
    end
    if active == 0 and #queue == 0 and ci > #chains then break end
    -- a followed apply makes progress without the network: look at it often
    r:step((chains[ci] and chains[ci].job) and 20 or 100)
  end
  if first_err then
    for _, U in ipairs(chains) do abandon(U) end
    return fail(first_err)
  end
  if not opts.resolver then r.session:close() end
  if display then display:draw(true) end
  stats.layers = 0
  for _ in pairs(blobs) do stats.layers = stats.layers + 1 end

  local images = require("ctr.images")
  local meta = require("ctr.store.meta")
  local rec
  rec, err = meta.with_lock(client.root, client.namespace, function()
    return images.create_or_update(client, name, desc, opts.labels)
  end)
  lease:release()
  if not rec then return nil, errors.wrap(err, "pull %s", name) end
  stats.elapsed = core.monotime() - t0
  stats.platforms = {}
  for _, s in ipairs(selected) do
    stats.platforms[#stats.platforms + 1] = s.platform and platforms.format(s.platform) or nil
  end
  return rec, stats
end

return M
