--- Unpack an image's layers into snapshots, as containerd's image.Unpack / rootfs.ApplyLayers.
--
-- Each layer becomes a committed snapshot named by its chain ID (the identity of the stack of
-- layers up to it), so a layer stack already unpacked by any image is reused and a second
-- unpack unpacks nothing.  A layer is applied into a new active snapshot under a unique
-- temporary key (the tar is applied straight into the snapshot's fs directory: for overlayfs
-- that is the upper directory, with overlay whiteouts); on overlayfs two layers are applied
-- at once (see ctr.store.apply); on any failure the temporary snapshots are removed, so nothing
-- is left behind.  Two processes unpacking the same image at once both
-- succeed: one commits, the other finds the name taken and drops its copy.  A process killed
-- while it applies a layer leaves its temporary snapshot, which names it as its creator: the
-- next unpack that has a layer to apply (and `ctrlua gc`) removes every such snapshot whose
-- creator is gone (docs/crash-consistency.md).
-- @module ctr.store.unpack
local core = require("ctr.core")
local errors = require("ctr.errors")
local snapshots = require("ctr.snapshots")

local M = {}

local DIGEST_RE = "^sha256:" .. ("%x"):rep(64) .. "$"

--- Chain IDs of a list of diff IDs (OCI image spec: ChainID(L1) = DiffID(L1);
-- ChainID(Ln) = sha256(ChainID(Ln-1) .. " " .. DiffID(Ln))).
-- @tparam table diff_ids array of "sha256:<hex>"
-- @return array of chain IDs, or nil, err (INVALID for a malformed diff ID)
function M.chain_ids(diff_ids)
  if type(diff_ids) ~= "table" then error("diff_ids: expected table", 2) end
  local out = {}
  for i, d in ipairs(diff_ids) do
    if type(d) ~= "string" or not d:match(DIGEST_RE) then
      return nil, errors.invalid("diff_ids[%d]: invalid digest %q", i, tostring(d))
    end
    out[i] = i == 1 and d or core.sha256(out[i - 1] .. " " .. d)
  end
  return out
end

local function check_args(client, image, opts, level)
  if type(client) ~= "table" or type(client.root) ~= "string" then
    error("client: expected a ctr.client", level + 1)
  end
  if type(image) ~= "table" then error("image: expected an image record", level + 1) end
  if opts ~= nil and type(opts) ~= "table" then error("opts: expected table", level + 1) end
  return opts or {}
end

-- Chain IDs are a function of the config's diff_ids, so they are cached by the config's
-- digest (ROOT/cache/chainids/HEX.json): a run of an unpacked image then hashes nothing, and
-- does not load libcrypto at all (about 2 ms).  The cache is only an optimisation: a missing or
-- unreadable entry is recomputed.
local function chain_cache_path(client, cfg_digest)
  local hex = type(cfg_digest) == "string" and cfg_digest:match("^sha256:(" .. ("%x"):rep(64) .. ")$")
  return hex and (client.root .. "/cache/chainids/" .. hex .. ".json")
end

local function cached_chain(client, cfg_digest, n)
  local path = chain_cache_path(client, cfg_digest)
  local data = path and core.read_file(path, 65536)
  local chain = data and core.json_decode(data)
  if type(chain) ~= "table" or #chain ~= n then return nil end
  for i = 1, n do
    if type(chain[i]) ~= "string" or not chain[i]:match(DIGEST_RE) then return nil end
  end
  return chain
end

local function cache_chain(client, cfg_digest, chain)
  local path = chain_cache_path(client, cfg_digest)
  if not path then return end
  if core.mkdir_p(client.root .. "/cache/chainids", 448) then
    core.write_file(path, core.json_encode(core.json_array(chain)), { mode = 384 })
  end
end

-- The layers and chain IDs of an image.
local function layers_of(client, image, opts)
  local manifest, config = client:image_manifest(image, opts.platform)
  if not manifest then return nil, config end
  local name = image.name or "image"
  local diff_ids = type(config) == "table" and type(config.rootfs) == "table" and config.rootfs.diff_ids
  if type(diff_ids) ~= "table" then
    return nil, errors.invalid("image %s: config has no rootfs.diff_ids", name)
  end
  local layers = type(manifest.layers) == "table" and manifest.layers or {}
  if #layers ~= #diff_ids then
    return nil, errors.invalid("image %s: %d layers but %d diff IDs", name, #layers, #diff_ids)
  end
  if #layers == 0 then return nil, errors.invalid("image %s: no layers", name) end
  local cfg_digest = type(manifest.config) == "table" and manifest.config.digest
  local chain = cached_chain(client, cfg_digest, #diff_ids)
  if not chain then
    local err
    chain, err = M.chain_ids(diff_ids)
    if not chain then return nil, errors.wrap(err, "image %s", name) end
    cache_chain(client, cfg_digest, chain)
  end
  return layers, diff_ids, chain
end

--- Unpack an image into snapshots (containerd's Image.Unpack).
-- @param client a ctr.client
-- @tparam table image an image record `{name=, target=}`
-- @tparam[opt] table opts `snapshotter` (default the client's), `platform`, `progress`
-- (function(i, layer, bytes) while layer i is applied: compressed bytes read so far),
-- `max_concurrent` (layers applied at once on overlayfs, default 2)
-- @return the chain ID of the top layer, and stats `{unpacked=n, reused=m}`; or nil, err
function M.unpack(client, image, opts)
  opts = check_args(client, image, opts, 2)
  local layers, diff_ids, chain = layers_of(client, image, opts)
  if not layers then return nil, diff_ids end
  local sn, err = snapshots.get(client, opts.snapshotter)
  if not sn then return nil, err end
  local whiteouts = sn.name == "overlayfs" and "overlay" or "native"
  local stats = { unpacked = 0, reused = 0 }
  -- A committed snapshot keeps its parents (remove refuses while children exist): when the
  -- top one is there, the whole stack is.
  local top
  top, err = sn:committed(chain[#chain])
  if top == nil then return nil, err end
  if top then
    stats.reused = #layers
    return chain[#chain], stats
  end
  -- the apply is loaded only when there is a layer to apply
  return require("ctr.store.apply").apply(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
end

--- Is every layer of the image unpacked in the snapshotter?
-- @param client a ctr.client
-- @tparam table image an image record
-- @tparam[opt] table opts `snapshotter`, `platform`
-- @return boolean (and the top chain ID when true), or nil, err
function M.is_unpacked(client, image, opts)
  opts = check_args(client, image, opts, 2)
  local layers, _, chain = layers_of(client, image, opts)
  if not layers then return nil, _ end
  local sn, err = snapshots.get(client, opts.snapshotter)
  if not sn then return nil, err end
  local have
  have, err = sn:committed(chain[#chain])
  if have == nil then return nil, err end
  if have then return true, chain[#chain] end
  return false
end

return M
