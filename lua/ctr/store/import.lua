--- The archive side of an image import (ctr.images.import): an oci-archive (OCI image layout)
-- or a docker-archive (`docker save`) read once into the content store, the images its
-- documents name, and their records.  Loaded by an import only; ctr.images keeps the readers
-- of documents both share (images.documents).
-- @module ctr.store.import
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")
local meta = require("ctr.store.meta")
local content = require("ctr.content")

local M = {}

-- Every function here takes ctr.images (`images`, with its readers of documents in
-- images.documents) from its caller, ctr.images itself: this module is below it in the graph
-- of requires.

-- Every manifest below d complete (for --all-platforms); `checked` holds the digests found
-- complete, each checked once (see resolve).
local function check_all(images, store, d, name, depth, checked)
  depth = depth or 0
  checked = checked or {}
  if depth > 4 then return nil, errors.invalid("%s: indexes nested too deep", name) end
  local doc, err = images.documents.read_json(store, d, depth == 0 and "target" or "manifest")
  if not doc then return nil, err end
  local kind, mt = images.documents.doc_kind(d, doc)
  if kind == "manifest" then
    local m, cerr = images.documents.load_manifest(store, d, name, doc)
    if not m then return nil, cerr end
    return true
  elseif kind == "index" then
    for i, c in ipairs(type(doc.manifests) == "table" and doc.manifests or {}) do
      local ok, cerr = images.documents.check_desc(c, "manifest " .. i)
      if not ok then return nil, cerr end
      if not checked[c.digest] then
        ok, cerr = check_all(images, store, c, name, depth + 1, checked)
        if not ok then return nil, cerr end
        checked[c.digest] = true
      end
    end
    return true
  end
  return nil, errors.invalid("%s %s: unsupported media type %s", name, d.digest, tostring(mt))
end

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
local function read_archive(images, store, path, progress)
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
        local data, rerr = sys.result(r:read(images.MAX_JSON))
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

local function oci_images(images, store, ar, opts, notes)
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
    local ok, derr = images.documents.check_desc(d, "index.json manifest " .. i)
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
      local cname, nerr = images.documents.check_name(name)
      if not cname then return nil, nerr end
      out[#out + 1] = { name = name, target = { mediaType = d.mediaType or images.media.oci_manifest,
        digest = d.digest, size = d.size } }
    end
  end
  return out
end

local function sniff_layer(images, store, digest, docker)
  local head = core.read_head(store:path(digest), 4) or ""
  if head:sub(1, 2) == "\31\139" then return docker and images.media.docker_layer_gzip or images.media.oci_layer_gzip end
  if head == "\40\181\47\253" then return images.media.oci_layer_zstd end
  return docker and images.media.docker_layer or images.media.oci_layer
end

local function docker_images(images, store, ar, opts, notes)
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
      local cfg, cerr = images.documents.read_json(store, { digest = file.digest, size = file.size },
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
      layers[j] = { mediaType = sniff_layer(images, store, lf.digest, true), digest = lf.digest,
        size = lf.size }
    end
    local manifest = {
      schemaVersion = 2,
      mediaType = images.media.docker_manifest,
      config = { mediaType = images.media.docker_config, digest = cdigest, size = csize },
      layers = core.json_array(layers),
    }
    local mdata = core.json_encode(manifest)
    local mdigest, merr = store:write(mdata)
    if not mdigest then return nil, merr end
    local target = { mediaType = images.media.docker_manifest, digest = mdigest, size = #mdata }
    local tags = type(e.RepoTags) == "table" and e.RepoTags or {}
    if #tags == 0 then
      notes[#notes + 1] = ("manifest.json entry %d has no RepoTags: skipped"):format(i)
    end
    for _, tag in ipairs(tags) do
      if type(tag) ~= "string" then return nil, errors.invalid("%s: RepoTags: expected strings", what) end
      local name, nerr = images.normalize_name(tag)
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
-- @param images ctr.images
-- @param store the content store (info, read, write, path)
-- @tparam table ar `docs` (archive name -> text of the small documents read) and
-- `lookup(name)` (-> a stored file {digest=, size=}, or nil and a document's text)
-- @tparam[opt] table opts `base_name` (names bare OCI tags base:tag)
-- @return list of {name=, target={mediaType=, digest=, size=}}, list of notes; or nil, err
function M.archive_images(images, store, ar, opts)
  opts = opts or {}
  local notes = {}
  local imgs, err
  if ar.docs["index.json"] then
    imgs, err = oci_images(images, store, ar, opts, notes)
  elseif ar.docs["manifest.json"] then
    imgs, err = docker_images(images, store, ar, opts, notes)
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
-- @param images ctr.images
-- @param client the client
-- @tparam string path the archive, or "-"
-- @tparam[opt] table opts `base_name` (names bare OCI tags base:tag), `platform` ("linux/arm64"),
-- `all_platforms`, `no_unpack`, `progress` (function(name, size) per entry; (nil) at the end),
-- `index_name` (ignored)
-- @return list of image records, list of notes (strings); or nil, err
function M.import(images, client, path, opts)
  if type(path) ~= "string" then error("images.import: path: expected string", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("images.import: opts: expected table", 2) end
  if opts.base_name ~= nil and type(opts.base_name) ~= "string" then
    error("images.import: opts.base_name: expected string", 2)
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    error("images.import: opts.progress: expected function", 2)
  end
  local want, explicit = images.documents.want_platform(opts.platform)
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
  local ar, err = read_archive(images, store, path, opts.progress)
  if not ar then return done(nil, err) end
  if not ar.docs["index.json"] and not ar.docs["manifest.json"] then
    return done(nil, errors.invalid("%s: not an image archive (no index.json nor manifest.json)", path))
  end
  local imgs, notes = M.archive_images(images, store, ar, opts)
  if not imgs then return done(nil, notes) end
  local held, herr = hold_archive(lease, ar, imgs)
  if not held then return done(nil, herr) end
  -- everything the records will point at must be there before any record is written
  for _, img in ipairs(imgs) do
    local ok, cerr
    if opts.all_platforms then
      ok, cerr = check_all(images, store, img.target, img.name)
    else
      ok, cerr = images.documents.resolve(store, img.target, want, explicit, img.name)
    end
    if not ok then return done(nil, cerr) end
  end
  fault.point("import.blobs-written")
  local records, perr = meta.with_lock(client.root, client.namespace, function()
    local recs = {}
    for _, img in ipairs(imgs) do
      local rec, e = images.create_or_update(client, img.name, img.target)
      if not rec then return nil, e end
      recs[#recs + 1] = rec
    end
    return recs
  end)
  if not records then return done(nil, perr) end
  fault.point("import.recorded")
  if not opts.no_unpack then
    for _, rec in ipairs(records) do
      local r, uerr = images.unpack(client, rec, { snapshotter = client.snapshotter_name })
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

return M
