--- Unpack an image's layers into snapshots, as containerd's image.Unpack / rootfs.ApplyLayers.
--
-- Each layer becomes a committed snapshot named by its chain ID (the identity of the stack of
-- layers up to it), so a layer stack already unpacked by any image is reused and a second
-- unpack unpacks nothing.  A layer is applied into a new active snapshot under a unique
-- temporary key (the tar is applied straight into the snapshot's fs directory: for overlayfs
-- that is the upper directory, with overlay whiteouts); on overlayfs two layers are applied
-- at once (see apply_layers); on any failure the temporary snapshots are removed, so nothing
-- is left behind.  Two processes unpacking the same image at once both
-- succeed: one commits, the other finds the name taken and drops its copy.  A process killed
-- while it applies a layer leaves its temporary snapshot, which names it as its creator: the
-- next unpack that has a layer to apply (and `ctrlua gc`) removes every such snapshot whose
-- creator is gone (docs/crash-consistency.md).
-- @module ctr.store.unpack
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")
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

local function unique_part()
  return assert(core.random_hex(8))
end

-- Is there a committed snapshot `name`?  true / false, or nil, err.
local function committed(sn, name)
  local info, err = sn:stat(name)
  if info then
    if info.kind ~= "committed" then
      return nil, errors.new(("snapshot %s exists but is %s, not committed"):format(name, info.kind),
        0, "FAILED_PRECONDITION")
    end
    return true
  end
  if err.sym == "NOT_FOUND" then return false end
  return nil, err
end

-- Start the apply of one layer into a new extract snapshot on parent (nil: on none, to be
-- committed on its parent later).  Returns the apply `{key=, job=}`, or nil, err with
-- nothing left behind.
local function begin_apply(client, sn, layer, diff_id, chain_id, parent, whiteouts)
  local blob, err = client:content_store():path(layer.digest)
  if not blob then return nil, err end
  local key = ("extract-%s %s"):format(unique_part(), chain_id)
  local mounts
  mounts, err = sn:prepare(key, parent, { partial = true })
  if not mounts then return nil, err end
  local dir, job
  dir, err = sn:fs_path(key)
  if dir then
    job, err = sys.layer_apply_start(dir, blob, { whiteouts = whiteouts, diff_id = diff_id })
  end
  if not job then
    sn:remove(key)
    return nil, err
  end
  return { key = key, job = job, rebase = parent == nil }
end

-- The apply A done: verify it.  true, or nil, err (A.key is still there to remove).
local function end_apply(A, diff_id)
  local res, err = sys.result(A.job:wait())
  A.job = nil
  if not res then return nil, err end
  if res.diff_id ~= diff_id then
    return nil, errors.new(("digest mismatch: expected diff ID %s, got %s"):format(diff_id,
      tostring(res.diff_id)), 0, "DIGEST_MISMATCH")
  end
  A.applied = true
  return true
end

-- Commit the applied layer A as chain_id (on parent, when it was prepared on none).  Returns
-- "unpacked" or "reused" (another process committed it first), or nil, err.
local function commit_apply(sn, A, chain_id, parent)
  fault.point("unpack.applied")
  local ok, err = sn:commit(chain_id, A.key, { parent = A.rebase and parent or nil })
  if not ok then
    if err.sym ~= "EXISTS" then return nil, err end
    sn:remove(A.key)
    A.key = nil
    return "reused"
  end
  A.key = nil
  return "unpacked"
end

local function abandon(sn, applies)
  for j, A in pairs(applies) do
    if A.job then A.job:wait() end
    if A.key then sn:remove(A.key) end
    applies[j] = nil
  end
end

-- The layers not unpacked yet: up to opts.max_concurrent (default 2) applied at once, each on
-- threads of its own into an extract snapshot of its own, the lowest not started first, and
-- committed in order.  On overlayfs a layer above the lowest one not committed is prepared
-- without a parent and committed on it (an upper directory does not depend on its lowers: the
-- apply writes the layer's own entries into it), so a layer starts as soon as an apply ends,
-- however far below it the lowest uncommitted one is, and before the commits that apply's end
-- allows (each waits for its file system's sync); the native snapshotter copies the parent
-- into each new snapshot, so there the layers go one at a time.
local function apply_layers(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
  local limit = sn.name == "overlayfs" and (tonumber(opts.max_concurrent) or 2) or 1
  if limit < 1 then limit = 1 end
  local n, i, running, applies, swept = #layers, 1, 0, {}, false
  local function failed(j, err)
    abandon(sn, applies)
    return nil, errors.wrap(err, "unpack %s layer %d (%s)", image.name or "image", j,
      tostring(layers[j].digest))
  end
  while i <= n do
    local have, err = true, nil
    if not applies[i] then
      -- the lowest not applied: committed already (then so are its parents)?
      have, err = committed(sn, chain[i])
      if have == nil then return failed(i, err) end
      if have then
        stats.reused = stats.reused + 1
        i = i + 1
      end
    end
    if not have or applies[i] then
      if not swept then
        -- what killed unpacks left (their creators are gone): before adding more
        sn:sweep_partial({ extract_only = true })
        swept = true
      end
      for j, A in pairs(applies) do
        if A.job and A.job:done() then
          running = running - 1
          local ok, aerr = end_apply(A, diff_ids[j])
          if not ok then return failed(j, aerr) end
          if opts.progress then opts.progress(j, layers[j], layers[j].size) end
        elseif A.job and opts.progress then
          opts.progress(j, layers[j], A.job:progress())
        end
      end
      for j = i, limit > 1 and n or i do
        if running >= limit then break end
        if not applies[j] then
          local A, aerr = begin_apply(client, sn, layers[j], diff_ids[j], chain[j],
            j == i and chain[j - 1] or nil, whiteouts)
          if not A then return failed(j, aerr) end
          applies[j], running = A, running + 1
        end
      end
      while applies[i] and applies[i].applied do
        local how, cerr = commit_apply(sn, applies[i], chain[i], chain[i - 1])
        if not how then return failed(i, cerr) end
        stats[how] = stats[how] + 1
        applies[i] = nil
        i = i + 1
      end
      if running > 0 and not (applies[i] and applies[i].applied) then core.poll({}, 10) end
    end
  end
  return chain[#chain], stats
end

-- apply_layers under a lease that holds the layers' blobs and every snapshot of the chain
-- (ctr.leases): between one layer's commit and the prepare of the next nothing else names what
-- is there so far, and a pull names no image until its unpack is done.  The lease is grown
-- before anything is looked at.
local function apply_leased(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
  return require("ctr.leases").with_lease(client, function(lease)
    local digests = {}
    for i, layer in ipairs(layers) do digests[i] = layer.digest end
    local ok, err = lease:add({ content = digests, snapshots = { [sn.name] = chain } })
    if not ok then return nil, err end
    return apply_layers(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
  end)
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
  top, err = committed(sn, chain[#chain])
  if top == nil then return nil, err end
  if top then
    stats.reused = #layers
    return chain[#chain], stats
  end
  return apply_leased(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
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
  have, err = committed(sn, chain[#chain])
  if have == nil then return nil, err end
  if have then return true, chain[#chain] end
  return false
end

return M
