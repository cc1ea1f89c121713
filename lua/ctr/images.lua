--- Images, as containerd's images package and `ctr images`: records per namespace
-- (ROOT/meta/NS/images/NAME.json: {name=, target={mediaType=, digest=, size=}, labels=,
-- created_at=, updated_at=}), import of oci-archive and docker-archive tarballs into the content
-- store, and resolution of an image to the manifest and config of a platform.
--
-- Every JSON document read from an archive or the store is capped at 4 MiB (containerd
-- CVE-2023-25153); a malformed document, a missing blob or a wrong digest fails the import with
-- a one-line error and no image record is written (blobs already verified may stay: they are
-- content-addressed and harmless).
-- @module ctr.images
local core = require("ctr.core")
local errors = require("ctr.errors")
local meta = require("ctr.store.meta")
local platforms = require("ctr.platforms")
local content = require("ctr.content")

local M = {}

M.MAX_JSON = 4 * 1024 * 1024

M.media = {
  oci_index = "application/vnd.oci.image.index.v1+json",
  oci_manifest = "application/vnd.oci.image.manifest.v1+json",
  oci_config = "application/vnd.oci.image.config.v1+json",
  oci_layer = "application/vnd.oci.image.layer.v1.tar",
  oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip",
  oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd",
  docker_list = "application/vnd.docker.distribution.manifest.list.v2+json",
  docker_manifest = "application/vnd.docker.distribution.manifest.v2+json",
  docker_config = "application/vnd.docker.container.image.v1+json",
  docker_layer = "application/vnd.docker.image.rootfs.diff.tar",
  docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
local MT = M.media

local KIND = "images"

local function is_index_type(mt)
  return mt == MT.oci_index or mt == MT.docker_list
end

local function is_manifest_type(mt)
  return mt == MT.oci_manifest or mt == MT.docker_manifest
end

local function now() return core.rfc3339() end

-- ------------------------------------------------------------------ references

--- Normalise a reference as docker does: "busybox" → "docker.io/library/busybox:latest",
-- "example.com/x" → "example.com/x:latest"; a reference with a tag or digest keeps it.
-- @return the reference, or nil, err
function M.normalize_name(ref)
  if type(ref) ~= "string" then error("images.normalize_name: ref: expected string", 2) end
  if ref == "" or #ref > 4096 or ref:find("[%s%c]") or ref:find("^[/:@]") then
    return nil, errors.invalid("invalid reference %q", ref:sub(1, 200))
  end
  local first, rest = ref:match("^([^/]+)/(.+)$")
  local domain, remainder
  if not first or (not first:find("[%.:]") and first ~= "localhost") then
    domain, remainder = "docker.io", ref
  else
    domain, remainder = first, rest
  end
  if domain == "index.docker.io" then domain = "docker.io" end
  if domain == "docker.io" and not remainder:find("/", 1, true) then
    remainder = "library/" .. remainder
  end
  local last = remainder:match("([^/]*)$")
  if not last:find(":", 1, true) and not last:find("@", 1, true) then
    remainder = remainder .. ":latest"
  end
  return domain .. "/" .. remainder
end

local function check_name(name)
  if type(name) ~= "string" or name == "" or #name > 4096 or name:find("[%s%c]") then
    return nil, errors.invalid("invalid image name %q", tostring(name):sub(1, 200))
  end
  return name
end

-- ------------------------------------------------------------------ reading documents

local function check_desc(d, what)
  if type(d) ~= "table" then return nil, errors.invalid("%s: descriptor is not an object", what) end
  if not content.valid_digest(d.digest) then
    return nil, errors.invalid("%s: invalid digest %q", what, tostring(d.digest):sub(1, 100))
  end
  -- (a whole number a record can hold: 1e999 is infinity, which floor keeps and no JSON
  -- encoder writes; sizes past 2^53 are not exact in a double anyway)
  if type(d.size) ~= "number" or d.size < 0 or d.size ~= math.floor(d.size) or d.size > 2 ^ 53 then
    return nil, errors.invalid("%s %s: invalid size", what, d.digest)
  end
  if d.mediaType ~= nil and type(d.mediaType) ~= "string" then
    return nil, errors.invalid("%s %s: invalid mediaType", what, d.digest)
  end
  return d
end

-- A blob that must be there with the descriptor's size.
local function check_blob(store, d, what)
  local info = store:info(d.digest)
  if not info then
    return nil, errors.not_found("%s %s: blob not found in the content store", what, d.digest)
  end
  if info.size ~= d.size then
    return nil, errors.invalid("%s %s: size %d in the store, %d in the descriptor", what,
      d.digest, info.size, d.size)
  end
  return info
end

-- A JSON document from the store, checked against its descriptor and capped.
local function read_json(store, d, what)
  local ok, err = check_desc(d, what)
  if not ok then return nil, err end
  if d.size > M.MAX_JSON then
    return nil, errors.new(("%s %s: %d bytes is over the limit of %d for a JSON document")
      :format(what, d.digest, d.size, M.MAX_JSON), 27, "EFBIG")
  end
  ok, err = check_blob(store, d, what)
  if not ok then return nil, err end
  local data
  data, err = store:read(d.digest, M.MAX_JSON)
  if not data then return nil, errors.wrap(err, "%s %s", what, d.digest) end
  local doc, jmsg = core.json_decode(data)
  if type(doc) ~= "table" then
    return nil, errors.invalid("%s %s: malformed JSON: %s", what, d.digest, jmsg or "not an object")
  end
  return doc
end

local function platform_of_config(config)
  if type(config) ~= "table" or type(config.architecture) ~= "string" or config.architecture == "" then
    return nil
  end
  return platforms.normalize({ os = type(config.os) == "string" and config.os or "linux",
    architecture = config.architecture,
    variant = type(config.variant) == "string" and config.variant or nil })
end

-- The platform of an index entry, if it names one (strings only: the index is untrusted).
local function desc_platform(c)
  local p = c.platform
  if type(p) ~= "table" or type(p.architecture) ~= "string" or p.architecture == "" then return nil end
  return platforms.normalize({ os = type(p.os) == "string" and p.os or "linux",
    architecture = p.architecture, variant = type(p.variant) == "string" and p.variant or nil })
end

local function doc_kind(d, doc)
  local mt = d.mediaType or (type(doc.mediaType) == "string" and doc.mediaType) or nil
  if is_index_type(mt) then return "index" end
  if is_manifest_type(mt) then return "manifest" end
  if mt == nil then
    if type(doc.manifests) == "table" then return "index" end
    if type(doc.layers) == "table" and type(doc.config) == "table" then return "manifest" end
  end
  return nil, mt
end

-- A manifest: its config decoded, every layer present with its size.  `m`: the manifest as
-- the caller already read it (read_json of d), not read a second time.
local function load_manifest(store, d, name, m)
  local err
  if not m then
    m, err = read_json(store, d, "manifest")
    if not m then return nil, err end
  end
  if type(m.config) ~= "table" or type(m.layers) ~= "table" then
    return nil, errors.invalid("manifest %s of %s: no config or layers", d.digest, name)
  end
  local config
  config, err = read_json(store, m.config, "config")
  if not config then return nil, err end
  for i, l in ipairs(m.layers) do
    local ok
    ok, err = check_desc(l, "layer " .. i)
    if not ok then return nil, err end
    ok, err = check_blob(store, l, "layer " .. i)
    if not ok then return nil, err end
  end
  return m, config
end

-- No manifest for the platform: NOT_FOUND, as containerd's; err.no_platform tells it from the
-- other failures of a manifest (a missing blob), so that a search goes on past it.
local function no_platform(want, name)
  local err = errors.not_found("no manifest for platform %s in %s", platforms.format(want), name)
  err.no_platform = true
  return err
end

-- Resolve a descriptor to the manifest of a platform (want: platform table; `explicit`: the
-- caller named it, so a single manifest of another platform is refused too).  `tried` holds
-- the digests already resolved below the target, which all had no manifest for the platform
-- (any other outcome ends the walk): each is resolved once, however many indexes list it, so
-- the work is linear in the documents and not the product of the lengths of nested indexes.
-- @return manifest, config, manifest descriptor; or nil, err
local function resolve(store, d, want, explicit, name, depth, tried)
  depth = depth or 0
  tried = tried or {}
  if depth > 4 then return nil, errors.invalid("%s: indexes nested too deep", name) end
  local doc, err = read_json(store, d, depth == 0 and "target" or "manifest")
  if not doc then return nil, err end
  local kind, mt = doc_kind(d, doc)
  if kind == "manifest" then
    local m, config = load_manifest(store, d, name, doc)
    if not m then return nil, config end
    local have = platform_of_config(config)
    if (explicit or depth > 0) and have and not platforms.match(want, have) then
      return nil, no_platform(want, name)
    end
    return m, config, d
  elseif kind == "index" then
    if type(doc.manifests) ~= "table" then
      return nil, errors.invalid("index %s of %s: no manifests", d.digest, name)
    end
    -- exact platform first, then compatible ones (arm/v7 runs v6), then children without one
    local exact, compat, unknown = {}, {}, {}
    for i, c in ipairs(doc.manifests) do
      local ok, cerr = check_desc(c, "manifest " .. i)
      if not ok then return nil, cerr end
      local p = desc_platform(c)
      if p == nil then
        unknown[#unknown + 1] = c
      elseif platforms.match(want, p) then
        local n = platforms.normalize(want)
        local same = p.os == n.os and p.architecture == n.architecture and p.variant == n.variant
        table.insert(same and exact or compat, c)
      end
    end
    for _, list in ipairs({ exact, compat, unknown }) do
      for _, c in ipairs(list) do
        if not tried[c.digest] then
          tried[c.digest] = true
          local m, config, md = resolve(store, c, want, explicit, name, depth + 1, tried)
          if m then return m, config, md end
          if list ~= unknown or not config.no_platform then
            return nil, config
          end
        end
      end
    end
    return nil, no_platform(want, name)
  end
  return nil, errors.invalid("%s %s of %s: unsupported media type %s", depth == 0 and "target"
    or "manifest", d.digest, name, tostring(mt))
end

local function want_platform(p)
  if p == nil then return platforms.default(), false end
  if type(p) == "table" then return platforms.normalize(p), true end
  if type(p) ~= "string" then error("images: platform: expected string or table", 3) end
  local w, err = platforms.parse(p)
  if not w then return nil, err end
  return w, true
end

-- ------------------------------------------------------------------ records

--- An image record by reference, or nil, err (sym NOT_FOUND).
function M.get(client, ref)
  if type(ref) ~= "string" then error("images.get: ref: expected string", 2) end
  local rec, err = meta.get(client.root, client.namespace, KIND, ref)
  if not rec then
    if err.sym == "NOT_FOUND" then return nil, errors.not_found("image %q: not found", ref) end
    return nil, err
  end
  return rec
end

--- Every image record of the namespace, sorted by name, and the errors of the records that
-- could not be read (each names its file).
function M.list(client)
  return meta.all(client.root, client.namespace, KIND)
end

local function put(client, rec, create)
  return meta.put(client.root, client.namespace, KIND, rec.name, rec, { create = create })
end

--- Create or update an image record (containerd's images.Store Create/Update): keeps
-- created_at and labels of an existing record.
function M.create_or_update(client, name, target, labels)
  local old = meta.get(client.root, client.namespace, KIND, name)
  local t = now()
  local rec = {
    name = name,
    target = { mediaType = target.mediaType, digest = target.digest, size = target.size },
    labels = labels or (old and old.labels) or {},
    created_at = old and old.created_at or t,
    updated_at = t,
  }
  local ok, err = put(client, rec, false)
  if not ok then return nil, err end
  return rec
end

--- Tag: a new record `dst` with the target of `src`.  opts.force replaces an existing dst.
function M.tag(client, src, dst, opts)
  if type(src) ~= "string" then error("images.tag: src: expected string", 2) end
  if type(dst) ~= "string" then error("images.tag: dst: expected string", 2) end
  local ok, err = check_name(dst)
  if not ok then return nil, err end
  return meta.with_lock(client.root, client.namespace, function()
    local rec, gerr = M.get(client, src)
    if not rec then return nil, gerr end
    local t = now()
    local new = { name = dst, target = rec.target, labels = rec.labels or {}, created_at = t,
      updated_at = t }
    local pok, perr = put(client, new, not (opts and opts.force))
    if not pok then return nil, perr end
    return new
  end)
end

--- Remove an image record (content stays, as in containerd until garbage collection).
function M.delete(client, ref)
  if type(ref) ~= "string" then error("images.delete: ref: expected string", 2) end
  local ok, err = meta.delete(client.root, client.namespace, KIND, ref)
  if not ok then
    if err.sym == "NOT_FOUND" then return nil, errors.not_found("image %q: not found", ref) end
    return nil, err
  end
  return true
end

local function as_record(client, image)
  if type(image) == "string" then return M.get(client, image) end
  if type(image) ~= "table" or type(image.target) ~= "table" then
    error("images: image: expected a reference or an image record", 3)
  end
  return image
end

--- The manifest and config of an image for a platform (default this machine's), resolving an
-- index.  manifest.layers[i] = {mediaType, digest, size}; config.rootfs.diff_ids;
-- config.config = {Env, Cmd, Entrypoint, User, WorkingDir, StopSignal, ...};
-- config.architecture/os/variant.
-- @param client the client
-- @param image an image record or a reference
-- @param[opt] platform "linux/arm64/v8" or a platform table
-- @return manifest, config, manifest descriptor; or nil, err
function M.manifest(client, image, platform)
  local rec, err = as_record(client, image)
  if not rec then return nil, err end
  local want, explicit = want_platform(platform)
  if not want then return nil, explicit end
  return resolve(client:content_store(), rec.target, want, explicit, rec.name)
end

local function platforms_of(store, rec)
  local doc, err = read_json(store, rec.target, "target")
  if not doc then return nil, err end
  local out = {}
  if doc_kind(rec.target, doc) == "index" then
    for _, c in ipairs(type(doc.manifests) == "table" and doc.manifests or {}) do
      local p = type(c) == "table" and desc_platform(c)
      if p then out[#out + 1] = platforms.format(p) end
    end
  else
    local cfg = type(doc.config) == "table" and read_json(store, doc.config, "config")
    local p = platform_of_config(cfg)
    if p then out[1] = platforms.format(p) end
  end
  return out
end

--- Platforms an image provides: a list of "os/arch[/variant]".
function M.platforms(client, image)
  local rec, err = as_record(client, image)
  if not rec then return nil, err end
  return platforms_of(client:content_store(), rec)
end

local function size_of(store, rec, platform)
  local want, explicit = want_platform(platform)
  if not want then return nil, explicit end
  local m, _, md = resolve(store, rec.target, want, explicit, rec.name)
  if not m then return nil, _ end
  local size = rec.target.size
  if md.digest ~= rec.target.digest then size = size + md.size end
  size = size + (m.config.size or 0)
  for _, l in ipairs(m.layers) do size = size + l.size end
  return size
end

--- Size of an image for a platform: target, manifest, config and layers (as `ctr images ls`).
function M.size(client, image, platform)
  local rec, err = as_record(client, image)
  if not rec then return nil, err end
  return size_of(client:content_store(), rec, platform)
end

local function pack(...) return { n = select("#", ...), ... } end

-- A view of a content store that asks it once per blob for info and for the bytes: the size
-- and the platforms of an image read the same target, manifest and config.
local function once_store(store)
  local infos, reads = {}, {}
  return {
    info = function(_, digest)
      infos[digest] = infos[digest] or pack(store:info(digest))
      return unpack(infos[digest], 1, infos[digest].n)
    end,
    read = function(_, digest, cap)
      local k = digest .. " " .. tostring(cap)
      reads[k] = reads[k] or pack(store:read(digest, cap))
      return unpack(reads[k], 1, reads[k].n)
    end,
  }
end

--- An image's size for this machine's platform and the platforms it provides, each what
-- M.size and M.platforms answer (`images ls` shows both), its documents read once.
-- @return size or nil, platforms or nil; or nil, err when the image is not found
function M.size_and_platforms(client, image)
  local rec, err = as_record(client, image)
  if not rec then return nil, err end
  local store = once_store(client:content_store())
  return (size_of(store, rec)), (platforms_of(store, rec))
end

--- Is an image complete for a platform?  (`ctr images check`)
-- @return {name=, complete=bool, present=n, required=n, missing={digest...}, size=, total=}
function M.check(client, ref, platform)
  local rec, err = as_record(client, ref)
  if not rec then return nil, err end
  local want, explicit = want_platform(platform)
  if not want then return nil, explicit end
  local store = client:content_store()
  local res = { name = rec.name, target = rec.target, present = 0, required = 0, missing = {},
    size = 0, total = 0 }
  local function need(d)
    res.required = res.required + 1
    res.total = res.total + (tonumber(d.size) or 0)
    local info = content.valid_digest(d.digest) and store:info(d.digest)
    if info and info.size == d.size then
      res.present = res.present + 1
      res.size = res.size + info.size
      return true
    end
    res.missing[#res.missing + 1] = tostring(d.digest)
    return false
  end
  local d = rec.target
  for _ = 1, 5 do
    if not need(d) then break end
    local doc = read_json(store, d, "target")
    if not doc then break end
    local kind = doc_kind(d, doc)
    if kind == "index" then
      local _, _, md = resolve(store, d, want, explicit, rec.name)
      local pick
      if md then
        pick = md
      else
        for _, c in ipairs(type(doc.manifests) == "table" and doc.manifests or {}) do
          local p = type(c) == "table" and desc_platform(c)
          if p and platforms.match(want, p) then pick = c break end
        end
      end
      if not pick then break end
      d = pick
    elseif kind == "manifest" then
      if type(doc.config) == "table" then need(doc.config) end
      for _, l in ipairs(type(doc.layers) == "table" and doc.layers or {}) do
        if type(l) == "table" then need(l) end
      end
      break
    else
      break
    end
  end
  res.complete = #res.missing == 0 and res.required > 0
  return res
end

-- ------------------------------------------------------------------ import

-- The readers of untrusted documents, for ctr.store.import: the import's archive side lives
-- there, loaded by an import alone, not by every command that reads an image.
M.documents = { check_desc = check_desc, check_name = check_name, read_json = read_json,
  doc_kind = doc_kind, load_manifest = load_manifest, resolve = resolve,
  want_platform = want_platform }

--- The images an image archive names, from its documents (ctr.store.import.archive_images).
function M.archive_images(store, ar, opts) return require("ctr.store.import").archive_images(M, store, ar, opts) end

--- Import an image archive: an oci-archive (OCI image layout) or a docker-archive
-- (`docker save`), plain or compressed, from a file or "-" (standard input); see
-- ctr.store.import.import.
-- @return list of image records, list of notes (strings); or nil, err
function M.import(client, path, opts) return require("ctr.store.import").import(M, client, path, opts) end

--- Unpack an image into snapshots for a platform (default this machine's) through ctr.store.unpack.
-- @return chain id, stats; or nil, err (sym NOT_AVAILABLE when ctr.store.unpack is not installed,
-- NOT_FOUND when the image has no manifest for the platform)
function M.unpack(client, image, opts)
  opts = opts or {}
  local rec, err = as_record(client, image)
  if not rec then return nil, err end
  local m, merr = M.manifest(client, rec, opts.platform)
  if not m then return nil, merr end
  local ok, unpack = pcall(require, "ctr.store.unpack")
  if not ok or type(unpack) ~= "table" or type(unpack.unpack) ~= "function" then
    return nil, errors.new("ctr.store.unpack is not available", 0, "NOT_AVAILABLE")
  end
  return unpack.unpack(client, rec, { snapshotter = opts.snapshotter or client.snapshotter_name,
    platform = opts.platform, progress = opts.progress })
end

--- Prune the namespace's unused images and collect what nothing refers to (ctr.store.prune).
-- @param client the client
-- @tparam[opt] table opts `all`, `dry_run`
-- @return a report, or nil, err
function M.prune(client, opts) return require("ctr.store.prune").run(client, opts) end

--- Is the image unpacked (ctr.store.unpack's is_unpacked), or nil when that cannot be told.
function M.is_unpacked(client, image, opts)
  local ok, unpack = pcall(require, "ctr.store.unpack")
  if not ok or type(unpack) ~= "table" or type(unpack.is_unpacked) ~= "function" then return nil end
  local rec = as_record(client, image)
  if not rec then return nil end
  local r = unpack.is_unpacked(client, rec, opts or {})
  if r == nil then return nil end
  return r and true or false
end

return M
