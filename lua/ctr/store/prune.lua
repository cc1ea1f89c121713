--- `images prune`: remove the images of a namespace that no container uses (all of them, or
-- only the dangling ones), then collect the blobs and snapshots nothing refers to any more
-- (ctr.store.collect), all under the collector's lock.
--
-- Dangling, in ctrlua's store, is docker's rule: an image that is not tagged and that no
-- container uses.  An image record is named by its reference; it is tagged when the reference
-- ends in a tag (`docker.io/library/busybox:1.36`, `localhost:5000/app:v2`), untagged when it
-- is a digest (`…/busybox@sha256:…`, a bare `sha256:…`) or a repository without a tag
-- (`localhost:5000/app`): what a pull by digest or an import of an untagged manifest leaves.
--
-- A container record that cannot be read might use any image: then no image is removed (the
-- collection still runs).  An image record that cannot be read is not removed, and what it
-- might name is kept; both are reported.
-- @module ctr.store.prune
local errors = require("ctr.errors")
local leases = require("ctr.leases")
local meta = require("ctr.store.meta")
local collect = require("ctr.store.collect")

local M = {}

--- Is the image name untagged (see the module's description)?
function M.untagged(name)
  if name:match("^sha256:") then return true end
  local repo = name:gsub("@.*$", "")
  local last = repo:match("([^/]*)$")
  return not last:find(":", 1, true)
end

--- Prune the client's namespace.
-- @param client a ctr.client
-- @tparam[opt] table opts `all` (every image no container uses, not only the dangling ones),
-- `dry_run` (remove nothing: report what would go)
-- @return a report `{images = {{name=, digest=}}, collected = (ctr.store.collect's report),
-- reclaimed = bytes, warnings = {errors}, errors = {errors}}`, or nil, err (the lock)
function M.run(client, opts)
  opts = opts or {}
  return leases.with_gc_lock(client.root, true, function()
    local root, ns = client.root, client.namespace
    local report = { images = {}, warnings = {}, errors = {} }
    local imgs, bad = meta.all(root, ns, "images")
    for _, b in ipairs(bad) do report.warnings[#report.warnings + 1] = b end
    local ctrs, cbad = meta.all(root, ns, "containers")
    for _, b in ipairs(cbad) do report.warnings[#report.warnings + 1] = b end
    local used = {}
    for _, c in ipairs(ctrs) do
      if c.image then used[c.image] = true end
    end
    local gone = {}
    if #cbad == 0 then
      for _, rec in ipairs(imgs) do
        if not used[rec.name] and (opts.all or M.untagged(rec.name)) then
          local ok, err = true, nil
          if not opts.dry_run then ok, err = meta.delete(root, ns, "images", rec.name) end
          if ok then
            gone[rec.name] = true
            report.images[#report.images + 1] = { name = rec.name, digest = rec.target.digest }
          elseif err.sym ~= "NOT_FOUND" then
            report.errors[#report.errors + 1] = errors.wrap(err, "remove image %q", rec.name)
          end
        end
      end
    end
    local r = collect.run(client, { dry_run = opts.dry_run,
      removed_images = opts.dry_run and { [ns] = gone } or nil })
    report.collected = r
    report.reclaimed = r.reclaimed
    local seen = {}
    for _, w in ipairs(report.warnings) do seen[tostring(w)] = true end
    for _, w in ipairs(r.warnings) do
      if not seen[tostring(w)] then report.warnings[#report.warnings + 1] = w end
    end
    for _, e in ipairs(r.errors) do report.errors[#report.errors + 1] = e end
    return report
  end)
end

return M
