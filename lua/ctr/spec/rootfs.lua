--- Reading files of a container's rootfs before it is mounted, for resolving the image's
-- user against its /etc/passwd and /etc/group (containerd mounts the snapshot for this; we read
-- the layer directories directly, which costs no mount).  The content is untrusted: every read
-- goes through core.read_file_in_root (openat2 RESOLVE_IN_ROOT, size-capped, regular files
-- only), so a symlinked /etc in an image never reads a host file.
-- @module ctr.spec.rootfs
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local function layer_dirs(mounts)
  local dirs = {}
  for _, m in ipairs(mounts or {}) do
    if m.type == "bind" or m.type == "rbind" then
      dirs[#dirs + 1] = m.source
    elseif m.type == "overlay" then
      local upper, lower
      for _, o in ipairs(m.options or {}) do
        upper = upper or o:match("^upperdir=(.*)$")
        lower = lower or o:match("^lowerdir=(.*)$")
      end
      if upper then dirs[#dirs + 1] = upper end
      for d in (lower or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
    end
  end
  return dirs
end

--- A reader over a snapshot's mounts (or a rootfs directory): `reader(path)` returns the file's
-- content, or nil, err (sym NOT_FOUND when no layer has it).  Layers are searched top-most
-- first; a whiteout (or anything not a regular file) in an upper layer hides the lower ones.
-- Opaque directories are not honoured: a file deleted with its whole directory may still be
-- read from a lower layer, which for /etc/passwd means the older users, never a host file.
function M.reader(mounts_or_dir, cap)
  local dirs = type(mounts_or_dir) == "string" and { mounts_or_dir } or layer_dirs(mounts_or_dir)
  cap = cap or 1024 * 1024
  return function(path)
    for _, d in ipairs(dirs) do
      -- messages name the file as the image has it, then where it was read
      local data, err = sys.read_file_in_root(d, path, cap,
        type(mounts_or_dir) ~= "string" and ("the image's rootfs (layer `%s')"):format(d) or nil)
      if data then return data end
      if err.sym ~= "ENOENT" then
        if err.sym == "EINVAL" then break end -- a whiteout or a non-file hides what is below
        return nil, err
      end
    end
    return nil, errors.not_found("%s: not found in the rootfs", path)
  end
end

return M
