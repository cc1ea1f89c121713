-- policy-defaults: default memory and pids limits; a read-only rootfs with a tmpfs /tmp
--
-- Install as /etc/ctrlua/policy.d/50-defaults.lua.  Limits a container sets itself
-- (`--memory-limit`) are kept.  A container labelled `ctrlua.policy/writable=true`
-- (`run.lua --label ctrlua.policy/writable=true ...`) keeps a writable rootfs.

local MEMORY_LIMIT = 512 * 1024 * 1024 -- bytes
local PIDS_LIMIT = 1024
local WRITABLE_LABEL = "ctrlua.policy/writable"

return function(spec, container)
  local r = ctr.oci.ensure_resources(spec)
  if not (r.memory and r.memory.limit and r.memory.limit > 0) then
    r.memory = r.memory or {}
    r.memory.limit = MEMORY_LIMIT
  end
  if not (r.pids and r.pids.limit and r.pids.limit > 0) then
    r.pids = { limit = PIDS_LIMIT }
  end

  local labels = container.labels or {}
  if labels[WRITABLE_LABEL] ~= "true" then
    ctr.oci.ensure_root(spec).readonly = true
    local has_tmp = false
    for _, m in ipairs(spec.mounts or {}) do
      if m.destination == "/tmp" then has_tmp = true end
    end
    if not has_tmp then
      ctr.apply(spec, container, ctr.oci.with_mounts({
        { destination = "/tmp", type = "tmpfs", source = "tmpfs",
          options = { "nosuid", "nodev", "mode=1777", "size=65536k" } },
      }))
    end
  end
end
