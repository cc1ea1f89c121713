--- The layers of an unpack (ctr.store.unpack) that are not unpacked yet: each applied into an
-- extract snapshot of its own and committed by its chain ID.  Loaded only when an unpack has a
-- layer to apply; a run of an image already unpacked does not load it.
-- @module ctr.store.apply
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local fault = require("ctr.store.fault")

local M = {}

local function unique_part()
  return assert(core.random_hex(8))
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
      have, err = sn:committed(chain[i])
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
-- @return the chain ID of the top layer and stats, or nil, err (see ctr.store.unpack.unpack)
function M.apply(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
  return require("ctr.leases").with_lease(client, function(lease)
    local digests = {}
    for i, layer in ipairs(layers) do digests[i] = layer.digest end
    local ok, err = lease:add({ content = digests, snapshots = { [sn.name] = chain } })
    if not ok then return nil, err end
    return apply_layers(client, sn, image, layers, diff_ids, chain, whiteouts, stats, opts)
  end)
end

return M
