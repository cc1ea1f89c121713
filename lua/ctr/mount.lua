--- Mounts as containerd's mount package: a mount is `{type=, source=, options={...}}`, the
-- shape snapshotters return; `all` mounts a list on a host directory (containerd's
-- mount.All) and the unmount helpers take it down again.
-- @module ctr.mount
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local function check_mounts(mounts, level)
  if type(mounts) ~= "table" then error("mounts: expected table, got " .. type(mounts), level + 1) end
  for i, m in ipairs(mounts) do
    if type(m) ~= "table" then error(("mounts[%d]: expected table"):format(i), level + 1) end
    if type(m.type) ~= "string" then error(("mounts[%d].type: expected string"):format(i), level + 1) end
    if type(m.source) ~= "string" then error(("mounts[%d].source: expected string"):format(i), level + 1) end
    if m.options ~= nil and type(m.options) ~= "table" then
      error(("mounts[%d].options: expected table"):format(i), level + 1)
    end
  end
end

--- Mount one mount on target.
-- @tparam table m `{type=, source=, options={...}}`
-- @tparam string target a host directory
-- @return true, or nil, err
function M.mount(m, target)
  check_mounts({ m }, 2)
  if type(target) ~= "string" then error("target: expected string", 2) end
  return sys.mount(m.type, m.source, target, m.options or {})
end

--- Mount each mount of the list on target, in order (containerd's mount.All).  On a failure
-- the mounts already made are taken down again and the error is returned.
-- @tparam table mounts array of `{type=, source=, options={...}}`
-- @tparam string target a host directory
-- @return true, or nil, err
function M.all(mounts, target)
  check_mounts(mounts, 2)
  if type(target) ~= "string" then error("target: expected string", 2) end
  for i, m in ipairs(mounts) do
    local ok, err = sys.mount(m.type, m.source, target, m.options or {})
    if not ok then
      for _ = 1, i - 1 do core.unmount(target, { detach = true }) end
      return nil, err
    end
  end
  return true
end

--- Is path the mount point of a mount (a line of /proc/self/mountinfo)?
-- @tparam string path an absolute path, as mountinfo writes it (no trailing slash)
-- @return boolean, or nil, err
function M.is_mountpoint(path)
  if type(path) ~= "string" then error("path: expected string", 2) end
  path = path:gsub("(.)/+$", "%1")
  local info, err = sys.mountinfo()
  if not info then return nil, err end
  for _, e in ipairs(info) do
    if e.target == path then return true end
  end
  return false
end

--- Unmount target once (containerd's mount.Unmount).
-- @tparam string target
-- @tparam[opt] table opts `detach` (lazy unmount, MNT_DETACH)
-- @return true, or nil, err
function M.unmount(target, opts)
  if type(target) ~= "string" then error("target: expected string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("opts: expected table", 2) end
  return sys.unmount(target, opts)
end

--- Unmount target until nothing is mounted there (containerd's mount.UnmountAll); a target
-- with nothing mounted is success.
-- @tparam string target
-- @tparam[opt] table opts `detach`
-- @return true, or nil, err
function M.unmount_all(target, opts)
  if type(target) ~= "string" then error("target: expected string", 2) end
  for _ = 1, 1000 do
    local mounted, err = M.is_mountpoint(target)
    if mounted == nil then return nil, err end
    if not mounted then return true end
    local ok, err = sys.unmount(target, opts)
    if not ok and err.sym ~= "EINVAL" then return nil, err end -- EINVAL: gone
  end
  return nil, errors.new(("unmount `%s': still mounted"):format(target), 16)
end

return M
