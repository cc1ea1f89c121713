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
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")
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

-- Every manifest below d complete (for --all-platforms); `checked` holds the digests found
-- complete, each checked once (see resolve).
local function check_all(store, d, name, depth, checked)
  depth = depth or 0
  checked = checked or {}
  if depth > 4 then return nil, errors.invalid("%s: indexes nested too deep", name) end
  local doc, err = read_json(store, d, depth == 0 and "target" or "manifest")
  if not doc then return nil, err end
  local kind, mt = doc_kind(d, doc)
  if kind == "manifest" then
    local m, cerr = load_manifest(store, d, name, doc)
    if not m then return nil, cerr end
    return true
  elseif kind == "index" then
    for i, c in ipairs(type(doc.manifests) == "table" and doc.manifests or {}) do
      local ok, cerr = check_desc(c, "manifest " .. i)
      if not ok then return nil, cerr end
      if not checked[c.digest] then
        ok, cerr = check_all(store, c, name, depth + 1, checked)
        if not ok then return nil, cerr end
        checked[c.digest] = true
      end
    end
    return true
  end
  return nil, errors.invalid("%s %s: unsupported media type %s", name, d.digest, tostring(mt))
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

-- Resolve a symlink's target inside the archive's own namespace (never a host path).
local function archive_join(name, target)
  local parts = {}
  local base = target:sub(1, 1) == "/" and "" or (name:match("^(.*)/[^/]*$") or "")
  for c in (base .. "/" .. target):gmatch("[^/]+") do
    if c == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif c ~= "." then
      parts[#parts + 1] = c
    end
  end
  return table.concat(parts, "/")
end

local function is_doc_name(name)
  return name == "index.json" or name == "manifest.json" or name == "oci-layout" or
    name == "repositories" or name:match("%.json$") ~= nil
end

local function is_junk_name(name)
  local base = name:match("([^/]*)$")
  return base == "VERSION" or base == "json"
end

-- Read the archive once: blobs/sha256/<hex> are verified against their names, other regular
-- files are stored under their computed digests, small documents are read (capped).
local function read_archive(store, path, progress)
  local r, err = sys.archive_open(path)
  if not r then return nil, err end
  local files, docs, links = {}, {}, {}
  local function fail(err)
    r:close()
    if progress then progress(nil) end
    return nil, err
  end
  while true do
    local name, typ, size, link = sys.result(r:next())
    if name == nil then
      if typ then return fail(typ) end -- typ: the error (nil at the end)
      break
    end
    if progress and typ == "file" then progress(name, size) end
    if typ == "file" then
      local hex = name:match("^blobs/sha256/(.*)$")
      if hex then
        local d = "sha256:" .. hex
        if not content.valid_digest(d) then
          return fail(errors.invalid("archive entry %q: not a valid blob name", name))
        end
        local got, sz = sys.result(r:ingest(store.dir, { digest = d, size = size }))
        if not got then
          -- the blob is not what its name says (no errno): an invalid archive
          if sz.sym == nil then sz.errno, sz.sym = 22, "EINVAL" end
          return fail(sz)
        end
        files[name] = { digest = got, size = sz }
      elseif is_doc_name(name) then
        local data, rerr = sys.result(r:read(M.MAX_JSON))
        if not data then return fail(rerr) end
        docs[name] = data
      elseif not is_junk_name(name) then
        local got, sz = sys.result(r:ingest(store.dir, {}))
        if not got then return fail(sz) end
        files[name] = { digest = got, size = sz }
      end
    elseif typ == "symlink" then
      links[name] = archive_join(name, link or "") or false
    elseif typ == "hardlink" then
      links[name] = link
    end
  end
  r:close()
  if progress then progress(nil) end
  local function lookup(name)
    for _ = 1, 16 do
      if files[name] then return files[name], nil end
      if docs[name] then return nil, docs[name] end
      local l = links[name]
      if not l then return nil end
      name = l
    end
  end
  return { files = files, docs = docs, lookup = lookup }
end

local function decode_doc(data, what)
  local doc, jmsg = core.json_decode(data)
  if type(doc) ~= "table" then
    return nil, errors.invalid("%s: malformed JSON: %s", what, jmsg or "not an object")
  end
  return doc
end

local function oci_images(store, ar, opts, notes)
  local index, err = decode_doc(ar.docs["index.json"], "index.json")
  if not index then return nil, err end
  if ar.docs["oci-layout"] then
    local layout, lerr = decode_doc(ar.docs["oci-layout"], "oci-layout")
    if not layout then return nil, lerr end
  end
  if type(index.manifests) ~= "table" then
    return nil, errors.invalid("index.json: no manifests")
  end
  local out = {}
  for i, d in ipairs(index.manifests) do
    local ok, derr = check_desc(d, "index.json manifest " .. i)
    if not ok then return nil, derr end
    local ann = type(d.annotations) == "table" and d.annotations or {}
    local name = ann["io.containerd.image.name"]
    local refname = ann["org.opencontainers.image.ref.name"]
    if type(name) ~= "string" and type(refname) == "string" then
      if refname:find("[/:@]") then
        name = refname
      elseif opts.base_name then
        name = opts.base_name .. ":" .. refname
      end
    end
    if type(name) ~= "string" then
      notes[#notes + 1] = ("manifest %s has no name: skipped (%s)"):format(d.digest,
        type(refname) == "string" and "use --base-name to name tag " .. refname or "no ref name")
    else
      local cname, nerr = check_name(name)
      if not cname then return nil, nerr end
      out[#out + 1] = { name = name, target = { mediaType = d.mediaType or MT.oci_manifest,
        digest = d.digest, size = d.size } }
    end
  end
  return out
end

local function sniff_layer(store, digest, docker)
  local head = core.read_head(store:path(digest), 4) or ""
  if head:sub(1, 2) == "\31\139" then return docker and MT.docker_layer_gzip or MT.oci_layer_gzip end
  if head == "\40\181\47\253" then return MT.oci_layer_zstd end
  return docker and MT.docker_layer or MT.oci_layer
end

local function docker_images(store, ar, opts, notes)
  local mf, err = decode_doc(ar.docs["manifest.json"], "manifest.json")
  if not mf then return nil, err end
  if getmetatable(mf) ~= core.array_mt and #mf == 0 then
    return nil, errors.invalid("manifest.json: expected an array")
  end
  local out = {}
  for i, e in ipairs(mf) do
    local what = "manifest.json entry " .. i
    if type(e) ~= "table" or type(e.Config) ~= "string" or type(e.Layers) ~= "table" then
      return nil, errors.invalid("%s: want Config and Layers", what)
    end
    -- the config: a document read from the archive, or a blob
    local file, data = ar.lookup(e.Config)
    local cdigest, csize
    if data then
      local cfg, cerr = decode_doc(data, "config " .. e.Config)
      if not cfg then return nil, cerr end
      cdigest, cerr = store:write(data)
      if not cdigest then return nil, cerr end
      csize = #data
    elseif file then
      local cfg, cerr = read_json(store, { digest = file.digest, size = file.size },
        "config " .. e.Config)
      if not cfg then return nil, cerr end
      cdigest, csize = file.digest, file.size
    else
      return nil, errors.not_found("%s: config %q not in the archive", what, e.Config)
    end
    local layers = {}
    for j, lp in ipairs(e.Layers) do
      local lf = type(lp) == "string" and ar.lookup(lp)
      if not lf then
        return nil, errors.not_found("%s: layer %q not in the archive", what, tostring(lp))
      end
      layers[j] = { mediaType = sniff_layer(store, lf.digest, true), digest = lf.digest,
        size = lf.size }
    end
    local manifest = {
      schemaVersion = 2,
      mediaType = MT.docker_manifest,
      config = { mediaType = MT.docker_config, digest = cdigest, size = csize },
      layers = core.json_array(layers),
    }
    local mdata = core.json_encode(manifest)
    local mdigest, merr = store:write(mdata)
    if not mdigest then return nil, merr end
    local target = { mediaType = MT.docker_manifest, digest = mdigest, size = #mdata }
    local tags = type(e.RepoTags) == "table" and e.RepoTags or {}
    if #tags == 0 then
      notes[#notes + 1] = ("manifest.json entry %d has no RepoTags: skipped"):format(i)
    end
    for _, tag in ipairs(tags) do
      if type(tag) ~= "string" then return nil, errors.invalid("%s: RepoTags: expected strings", what) end
      local name, nerr = M.normalize_name(tag)
      if not name then return nil, nerr end
      out[#out + 1] = { name = name, target = target }
    end
  end
  return out
end

--- The images an image archive names, from its documents: the OCI layout's index.json, or
-- docker's manifest.json (whose config and layers are looked up in the archive, and for which
-- a manifest is written to the store).  The documents are untrusted: anything malformed is
-- `nil, err`, never an error raised.  Nothing a target points at is checked here (import does
-- that before any record is written).
-- @param store the content store (info, read, write, path)
-- @tparam table ar `docs` (archive name -> text of the small documents read) and
-- `lookup(name)` (-> a stored file {digest=, size=}, or nil and a document's text)
-- @tparam[opt] table opts `base_name` (names bare OCI tags base:tag)
-- @return list of {name=, target={mediaType=, digest=, size=}}, list of notes; or nil, err
function M.archive_images(store, ar, opts)
  opts = opts or {}
  local notes = {}
  local imgs, err
  if ar.docs["index.json"] then
    imgs, err = oci_images(store, ar, opts, notes)
  elseif ar.docs["manifest.json"] then
    imgs, err = docker_images(store, ar, opts, notes)
  else
    err = errors.invalid("not an image archive (no index.json nor manifest.json)")
  end
  if not imgs then return nil, err end
  return imgs, notes
end

-- The lease of an import holds every blob the archive put in the store (or found there) and the
-- targets of its images, before the import checks that they are all there: blobs whose digest
-- is known only once ingested are held by the lease's start time until then.
local function hold_archive(lease, ar, imgs)
  local digests = {}
  for _, f in pairs(ar.files) do digests[#digests + 1] = f.digest end
  for _, img in ipairs(imgs) do digests[#digests + 1] = img.target.digest end
  return lease:add({ content = digests })
end

--- Import an image archive: an oci-archive (OCI image layout) or a docker-archive
-- (`docker save`), plain or compressed, from a file or "-" (standard input).
-- @param client the client
-- @tparam string path the archive, or "-"
-- @tparam[opt] table opts `base_name` (names bare OCI tags base:tag), `platform` ("linux/arm64"),
-- `all_platforms`, `no_unpack`, `progress` (function(name, size) per entry; (nil) at the end),
-- `index_name` (ignored)
-- @return list of image records, list of notes (strings); or nil, err
function M.import(client, path, opts)
  if type(path) ~= "string" then error("images.import: path: expected string", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("images.import: opts: expected table", 2) end
  if opts.base_name ~= nil and type(opts.base_name) ~= "string" then
    error("images.import: opts.base_name: expected string", 2)
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    error("images.import: opts.progress: expected function", 2)
  end
  local want, explicit = want_platform(opts.platform)
  if not want then return nil, explicit end
  local store = client:content_store()
  -- ingest files no writer holds (each holds its file's lock while it writes): partial writes
  -- of killed imports
  store:sweep(0)
  -- what the import writes or finds is held by a lease until the records name it (ctr.leases)
  local lease, lerr = require("ctr.leases").create(client)
  if not lease then return nil, lerr end
  local function done(...)
    lease:release()
    return ...
  end
  local ar, err = read_archive(store, path, opts.progress)
  if not ar then return done(nil, err) end
  if not ar.docs["index.json"] and not ar.docs["manifest.json"] then
    return done(nil, errors.invalid("%s: not an image archive (no index.json nor manifest.json)", path))
  end
  local imgs, notes = M.archive_images(store, ar, opts)
  if not imgs then return done(nil, notes) end
  local held, herr = hold_archive(lease, ar, imgs)
  if not held then return done(nil, herr) end
  -- everything the records will point at must be there before any record is written
  for _, img in ipairs(imgs) do
    local ok, cerr
    if opts.all_platforms then
      ok, cerr = check_all(store, img.target, img.name)
    else
      ok, cerr = resolve(store, img.target, want, explicit, img.name)
    end
    if not ok then return done(nil, cerr) end
  end
  fault.point("import.blobs-written")
  local records, perr = meta.with_lock(client.root, client.namespace, function()
    local recs = {}
    for _, img in ipairs(imgs) do
      local rec, e = M.create_or_update(client, img.name, img.target)
      if not rec then return nil, e end
      recs[#recs + 1] = rec
    end
    return recs
  end)
  if not records then return done(nil, perr) end
  fault.point("import.recorded")
  if not opts.no_unpack then
    for _, rec in ipairs(records) do
      local r, uerr = M.unpack(client, rec, { snapshotter = client.snapshotter_name })
      if not r then
        if uerr.sym ~= "NOT_AVAILABLE" and uerr.sym ~= "NOT_FOUND" then
          return done(nil, errors.wrap(uerr, "unpack %s", rec.name))
        end
        notes[#notes + 1] = ("%s: not unpacked: %s"):format(rec.name, uerr.msg)
      end
    end
  end
  return done(records, notes)
end

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
