--- Push an image to a registry (containerd's client.Push / remotes.PushContent): every blob
-- first — skipped when the registry has it (HEAD), mounted from the repository it was pulled
-- from when that is on the same registry (POST ?mount=&from=, a plain upload when the registry
-- answers 202), uploaded in one PUT when small or in PATCH chunks with Content-Range when large
-- — up to `max_concurrent_uploaded_layers` at once; then the manifests, children before the
-- index, the top one under the reference's tag.
-- @module ctr.remotes.push
local core = require("ctr.core")
local errors = require("ctr.errors")
local platforms = require("ctr.platforms")
local reference = require("ctr.reference")
local docker = require("ctr.remotes.docker")
local pull = require("ctr.remotes.pull")

local M = {}

M.CHUNK = 16 * 1024 * 1024

local INDEX = { ["application/vnd.oci.image.index.v1+json"] = true,
  ["application/vnd.docker.distribution.manifest.list.v2+json"] = true }

local function non_distributable(mt)
  return type(mt) == "string" and (mt:find("nondistributable", 1, true) or mt:find("foreign", 1, true)) ~= nil
end

-- The manifest to push: opts.manifest from the store, else the target of the image local_ref
-- (and its record, whose name tells where its blobs can be mounted from); or nil, nil, err.
local function resolve_target(client, store, local_ref, opts)
  if opts.manifest and opts.manifest ~= "" then
    local info = store:info(opts.manifest)
    if not info then
      return nil, nil, errors.not_found("manifest %s: not found in the content store", opts.manifest)
    end
    return { digest = opts.manifest, size = info.size,
      mediaType = opts.manifest_type or "application/vnd.oci.image.manifest.v1+json" }
  end
  local rec, err = require("ctr.images").get(client, local_ref)
  if not rec then return nil, nil, err end
  return rec.target, rec
end

-- A document of the store, verified against its digest.
local function read_doc(store, d)
  local data, rerr = store:read(d.digest, docker.MAX_MANIFEST)
  if not data then return nil, rerr end
  if core.sha256(data) ~= d.digest then
    return nil, errors.new(("%s: the store's copy does not verify"):format(d.digest), 0, "DIGEST_MISMATCH")
  end
  local doc = core.json_decode(data)
  if type(doc) ~= "table" then return nil, errors.invalid("%s: malformed JSON", d.digest) end
  return doc, data
end

-- What to push: the plan's blobs (deduplicated, in the order found) and its manifests in the
-- order they must go, children before their index.
local function add_blob(plan, d, what)
  if plan.blobs[d.digest] then return true end
  if not plan.store:info(d.digest) then
    return nil, errors.not_found("%s %s: content digest not found", what, d.digest)
  end
  plan.blobs[d.digest] = { desc = d, state = "waiting" }
  plan.blob_list[#plan.blob_list + 1] = d.digest
  return true
end

local function walk(plan, d, depth)
  if depth > 4 then return nil, errors.invalid("indexes nested too deep") end
  local doc, data = read_doc(plan.store, d)
  if not doc then return nil, data end
  local mt = d.mediaType or doc.mediaType
  if INDEX[mt] or type(doc.manifests) == "table" then
    for _, c in ipairs(doc.manifests or {}) do
      local p = type(c.platform) == "table" and type(c.platform.architecture) == "string" and
        platforms.normalize({ os = c.platform.os or "linux", architecture = c.platform.architecture,
          variant = c.platform.variant }) or nil
      local take = #plan.wants == 0
      for _, w in ipairs(plan.wants) do if p and platforms.match(w, p) then take = true end end
      if take then
        local ok, werr = walk(plan, c, depth + 1)
        if not ok then return nil, werr end
      end
    end
  else
    if type(doc.config) ~= "table" or type(doc.layers) ~= "table" then
      return nil, errors.invalid("manifest %s: no config or layers", d.digest)
    end
    local ok, berr = add_blob(plan, doc.config, "config")
    if not ok then return nil, berr end
    for _, l in ipairs(doc.layers) do
      if not non_distributable(l.mediaType) or plan.allow_non_distributable then
        ok, berr = add_blob(plan, l, "layer")
        if not ok then return nil, berr end
      end
    end
  end
  plan.manifests[#plan.manifests + 1] = { desc = { digest = d.digest, size = #data, mediaType = mt },
    data = data, top = depth == 0 }
  return true
end

-- The display's rows: one per blob.
local function show_blobs(r, display, plan)
  if not display then return end
  for _, d in ipairs(plan.blob_list) do
    local B = plan.blobs[d]
    local kind = B.desc.mediaType and B.desc.mediaType:find("config", 1, true) and "config" or "layer"
    if B.state == "uploading" and B.id then
      local n, total = r.session:progress(B.id)
      display:set(kind .. "-" .. d, "uploading", (B.base or 0) + (n or 0), B.desc.size)
    else
      display:set(kind .. "-" .. d, B.state, B.state == "waiting" and 0 or B.desc.size, B.desc.size)
    end
  end
  display:draw()
end

-- Every blob of the plan to host h, up to max at once: skipped, mounted from repository
-- `from`, or uploaded.  Counts each outcome in stats; the first error stops the rest.
local function upload_blobs(r, h, spec, plan, from, stats, opts)
  local store, blobs = plan.store, plan.blobs
  local max = tonumber(opts.max_concurrent_uploaded_layers) or 3
  if max < 1 then max = 3 end
  local active, first_err, queue = 0, nil, {}
  for _, d in ipairs(plan.blob_list) do queue[#queue + 1] = d end
  while true do
    while active < max and #queue > 0 and not first_err do
      local d = table.remove(queue, 1)
      local B = blobs[d]
      B.state = "uploading"
      active = active + 1
      r:spawn(function()
        local how, perr = r:push_blob(h, spec, B.desc, store:path(d), { from = from,
          chunk = opts.chunk or M.CHUNK, on_bytes = function(n) B.base = n end }, function(id) B.id = id end)
        active = active - 1
        B.id = nil
        if how then
          B.state = how == "pushed" and "done" or how
          stats[how] = stats[how] + 1
        else
          B.state = "failed"
          first_err = first_err or errors.wrap(perr, "blob %s", d)
        end
      end)
    end
    show_blobs(r, opts.display, plan)
    if first_err or (active == 0 and #queue == 0) then break end
    r:step(100)
  end
  if first_err then return nil, first_err end
  return true
end

-- The manifests, in the plan's order, the top one under the reference's tag (or digest).
local function push_manifests(r, h, spec, plan, display)
  for _, m in ipairs(plan.manifests) do
    local object = m.top and (spec.tag or spec.digest) or m.desc.digest
    local pok, perr = r:push_manifest(h, spec, m.desc, m.data, object)
    if not pok then return nil, perr end
    if display then display:set("manifest-" .. m.desc.digest, "done") end
  end
  return true
end

--- Push the image `opts.local_ref` (default ref) of the client's store to ref.
-- @param client a ctr.client
-- @tparam string ref where to push it
-- @tparam[opt] table opts the registry options (ctr.remotes.pull.resolver) and `strict`,
-- `local_ref`, `manifest` (a digest to push instead of the image's target), `manifest_type`,
-- `platforms` (push only these of an index), `max_concurrent_uploaded_layers` (default 3),
-- `allow_non_distributable`, `display`, `chunk` (bytes above which a blob goes in chunks)
-- @return `{digest=, mediaType=, size=, pushed=n, exists=n, mounted=n}`, or nil, err
function M.push(client, ref, opts)
  if type(ref) ~= "string" then error("push: ref: expected string", 2) end
  opts = opts or {}
  local spec, err = pull.parse_ref(ref, opts.strict)
  if not spec then return nil, err end
  local store = client:content_store()
  local target, rec, terr = resolve_target(client, store, opts.local_ref or ref, opts)
  if not target and not rec then return nil, terr end
  local wants = {}
  for _, p in ipairs(opts.platforms or {}) do
    local w, perr = platforms.parse(p)
    if not w then return nil, perr end
    wants[#wants + 1] = w
  end
  local plan = { store = store, wants = wants, allow_non_distributable = opts.allow_non_distributable,
    blobs = {}, blob_list = {}, manifests = {} }
  local ok, werr = walk(plan, target, 0)
  if not ok then return nil, errors.wrap(werr, "push %s", ref) end

  local r = opts.resolver
  if not r then
    r, err = pull.resolver(opts)
    if not r then return nil, err end
  end
  local function done(v, e)
    if not opts.resolver then r.session:close() end
    if opts.display then opts.display:draw(true) end
    if v == nil then return nil, errors.wrap(e, "push %s", reference.string(spec)) end
    return v
  end
  local hs
  hs, err = r:hosts(spec.domain, "push")
  if not hs then return done(nil, err) end
  local h = hs[1]
  -- a blob pulled from another repository of this registry can be mounted from there
  local from
  if rec then
    local src = reference.parse_normalized_named(rec.name)
    if src and src.domain == spec.domain and src.path ~= spec.path then from = src.path end
  end
  local stats = { pushed = 0, exists = 0, mounted = 0 }
  ok, err = upload_blobs(r, h, spec, plan, from, stats, opts)
  if not ok then return done(nil, err) end
  ok, err = push_manifests(r, h, spec, plan, opts.display)
  if not ok then return done(nil, err) end
  local top = plan.manifests[#plan.manifests].desc
  stats.digest, stats.mediaType, stats.size = top.digest, top.mediaType, top.size
  return done(stats)
end

return M
