-- policy-mount-allowlist: bind mounts only from listed host directories
--
-- Install as /etc/ctrlua/policy.d/20-mount-allowlist.lua and edit ALLOWED.  A bind mount
-- (type "bind", or an option "bind"/"rbind") whose source is not one of ALLOWED or below one
-- of them is refused; so is a source with "." or ".." components, which could climb out.
-- (Pipelines bind their workspace: list the workspaces you use, e.g. /run/ctrlua/pipelines.)

local ALLOWED = { "/srv/ctrlua", "/tmp", "/run/ctrlua/pipelines" }

local function is_bind(m)
  if m.type == "bind" then return true end
  for _, o in ipairs(m.options or {}) do
    if o == "bind" or o == "rbind" then return true end
  end
  return false
end

local function allowed(src)
  for _, dir in ipairs(ALLOWED) do
    if src == dir or src:sub(1, #dir + 1) == dir .. "/" then return true end
  end
  return false
end

return function(spec)
  for _, m in ipairs(spec.mounts or {}) do
    if is_bind(m) then
      local src = m.source or ""
      if src:sub(1, 1) ~= "/" then
        return false, ("bind mount source %q is not an absolute path"):format(src)
      end
      for part in src:gmatch("[^/]+") do
        if part == "." or part == ".." then
          return false, ("bind mount source %q has a %q component"):format(src, part)
        end
      end
      if not allowed(src) then
        return false, ("bind mount from %s is not allowed (allowed: %s)"):format(src, table.concat(ALLOWED, ", "))
      end
    end
  end
end
