-- The driver of fuzz/manifest.c: image documents through ctr.images, ctr.store.unpack, ctr.oci and
-- ctr.containers, as an import and a run read them.
--
-- The input is up to eight documents separated by NUL bytes.  Document i is in an in-memory
-- content store under two digests: its own sha256 (so the real documents of an image resolve
-- as they are) and the slot digest "sha256:000...0i" (i in hex, 64 digits), which a fuzzed
-- descriptor can name without knowing a hash.  Each of the first three documents is then the
-- target of an image record, resolved for four platforms; and the first one is an archive's
-- index.json (or docker's manifest.json when it starts with `[`) whose other documents are the
-- archive's c<i>.json files, l<i>.tar its layer files.
--
-- A finding is any Lua error out of the code under test (see luahost.h), and any of these
-- contracts broken, each checked with error():
--   - an operation returns a value, or nil and a ctr.errors value with a message;
--   - core.json_decode refuses a text with a NUL byte (a document is its whole text);
--   - what images.manifest resolves has the shape its callers index without checking
--     (manifest.config and manifest.layers[i] descriptors, a config table);
--   - a record or spec made from the documents can be written: core.json_encode takes the
--     image records archive_images names, the spec with_image_config makes and the
--     container record of with_image_config_labels/with_image_stop_signal.
local core = require("ctr.core")
local errors = require("ctr.errors")
local content = require("ctr.content")
local images = require("ctr.images")
local unpack = require("ctr.store.unpack")
local oci = require("ctr.oci")
local containers = require("ctr.containers")

local MAX_DOCS = 8
local PLATFORMS = { false, "linux/amd64", "linux/arm64/v8", "linux/arm/v6" }
local ROOTFS = {
  ["/etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\nfuzz:x:1000:1000::/home/fuzz:/bin/sh\n",
  ["/etc/group"] = "root:x:0:\nwheel:x:10:root,fuzz\nfuzz:x:1000:\n",
}

local function slot(i) return ("sha256:%064x"):format(i) end

-- v, or nil and an error value: anything else breaks the library's contract.
local function contract(what, v, err, ...)
  if v == nil and err ~= nil and not (errors.is_error(err) and type(err.msg) == "string") then
    error(("%s: returned nil and %s instead of an error value"):format(what, tostring(err)), 2)
  end
  return v, err, ...
end

local function must(what, v, err, ...)
  if v == nil and err == nil then error(what .. ": returned nil without an error", 2) end
  return contract(what, v, err, ...)
end

local function is_desc(d)
  return type(d) == "table" and content.valid_digest(d.digest) and type(d.size) == "number"
end

local Store = {}
Store.__index = Store

function Store:info(d)
  local b = self.blobs[d]
  if not b then return nil, errors.not_found("content %s: not found", tostring(d)) end
  return { digest = d, size = #b }
end

function Store:read(d, cap)
  self.stats.reads = self.stats.reads + 1
  local b = self.blobs[d]
  if not b then return nil, errors.not_found("content %s: not found", tostring(d)) end
  if #b > (cap or content.DEFAULT_READ_CAP) then return nil, errors.new("over the cap", 27, "EFBIG") end
  return b
end

function Store:path(d)
  local ok, err = content.check_digest(d)
  if not ok then return nil, err end
  return "/nonexistent/ctrlua-fuzz/blobs/" .. d:sub(8)
end

function Store:exists(d) return self.blobs[d] ~= nil end

function Store:write(data)
  assert(type(data) == "string", "store:write: data: expected string")
  local d = core.sha256(data)
  self.blobs[d] = data
  return d
end

local function split(data)
  local docs, pos = {}, 1
  while #docs < MAX_DOCS do
    local z = data:find("\0", pos, true)
    docs[#docs + 1] = data:sub(pos, (z or #data + 1) - 1)
    if not z then break end
    pos = z + 1
  end
  return docs
end

local function use_config(client, config)
  local diff_ids = type(config.rootfs) == "table" and config.rootfs.diff_ids
  if type(diff_ids) == "table" then must("unpack.chain_ids", unpack.chain_ids(diff_ids)) end
  local image = { name = "fuzz.test/img:latest", config = config }
  local spec = oci.default_spec("fuzz", "c")
  local ctx = { namespace = "fuzz", read_rootfs_file = function(path)
    local data = ROOTFS[path]
    if not data then return nil, errors.not_found("%s: not found", path) end
    return data
  end }
  local c = { id = "c" }
  contract("oci.with_image_config", oci.with_image_config(image)(ctx, client, c, spec))
  core.json_encode(spec) -- written as the bundle's config.json
  contract("containers.with_image_config_labels",
    containers.with_image_config_labels(image)(ctx, client, c, spec))
  contract("containers.with_image_stop_signal",
    containers.with_image_stop_signal(image, "SIGTERM")(ctx, client, c, spec))
  core.json_encode(c) -- written as the container record
end

local function resolve_all(client, rec)
  for _, p in ipairs(PLATFORMS) do
    local m, config, md = must("images.manifest", images.manifest(client, rec, p or nil))
    if m then
      if type(m) ~= "table" or not is_desc(m.config) or type(m.layers) ~= "table" then
        error("images.manifest: a manifest without a config descriptor or layers")
      end
      for i, l in ipairs(m.layers) do
        if not is_desc(l) then error(("images.manifest: layer %d is not a descriptor"):format(i)) end
      end
      if not is_desc(md) then error("images.manifest: no manifest descriptor") end
      if type(config) ~= "table" then error("images.manifest: config is not a table") end
      use_config(client, config)
    end
  end
  must("images.platforms", images.platforms(client, rec))
  must("images.check", images.check(client, rec))
  must("images.size", images.size(client, rec))
end

-- stats (optional; the regression spec passes one): reads counts the documents read.
return function(data, stats)
  stats = stats or {}
  stats.reads = 0
  local whole, werr = core.json_decode(data)
  if whole == nil and type(werr) ~= "string" then error("json_decode: nil without a message") end
  if whole ~= nil and data:find("\0", 1, true) then
    error("json_decode: accepted a text with a NUL byte in it")
  end

  local docs = split(data)
  local blobs = {}
  for i, doc in ipairs(docs) do
    blobs[slot(i)] = doc
    blobs[core.sha256(doc)] = doc
  end
  local store = setmetatable({ blobs = blobs, stats = stats }, Store)
  local client = { root = "/nonexistent/ctrlua-fuzz", namespace = "fuzz",
    snapshotter_name = "native", content_store = function() return store end }

  for i = 1, math.min(#docs, 3) do
    resolve_all(client, { name = "fuzz.test/img:" .. i, target = { digest = slot(i), size = #docs[i] } })
  end

  local ar_docs = { ["oci-layout"] = '{"imageLayoutVersion":"1.0.0"}' }
  ar_docs[docs[1]:match("^%s*%[") and "manifest.json" or "index.json"] = docs[1]
  local files = {}
  for i = 2, #docs do
    ar_docs["c" .. i .. ".json"] = docs[i]
    files["l" .. i .. ".tar"] = { digest = slot(i), size = #docs[i] }
    local d = core.sha256(docs[i])
    files["blobs/sha256/" .. d:sub(8)] = { digest = d, size = #docs[i] }
  end
  local ar = { docs = ar_docs, lookup = function(name)
    if files[name] then return files[name] end
    return nil, ar_docs[name]
  end }
  local imgs = must("images.archive_images", images.archive_images(store, ar, { base_name = "fuzz.test/base" }))
  for _, img in ipairs(imgs or {}) do
    core.json_encode({ name = img.name, target = img.target }) -- import writes it as a record
    resolve_all(client, { name = img.name, target = img.target })
  end
end
