-- policy-no-privileged: refuse privileged containers, CAP_SYS_ADMIN and host namespaces
--
-- Install as /etc/ctrlua/policy.d/10-no-privileged.lua (or pass `run.lua --policy FILE`).
-- A refused run prints `ctrlua: policy FILE refused: REASON` and creates nothing.
--
-- Privileged means what `ctr run --privileged` does to a spec: every capability in the
-- bounding set, or no masked paths (the /proc and /sys files a container must not read).
-- A host namespace is one of pid, ipc, uts, mount, network missing from
-- spec.linux.namespaces, or one joined by path (`--with-ns network:/proc/1/ns/net`).

local REQUIRED_NAMESPACES = { "pid", "ipc", "uts", "mount", "network" }

return {
  -- rules run in name order; each refuses with `return false, reason` (or refuse(reason))
  a_not_privileged = function(spec)
    local masked = spec.linux and spec.linux.maskedPaths
    if masked == nil or #masked == 0 then
      return false, "privileged containers are not allowed (no masked paths)"
    end
    local caps = spec.process and spec.process.capabilities or {}
    local known = 0
    for _ in pairs(ctr.oci.KNOWN_CAPS) do known = known + 1 end
    if caps.bounding and #caps.bounding >= known then
      return false, "privileged containers are not allowed (every capability requested)"
    end
  end,

  b_no_sys_admin = function(spec)
    if ctr.has_cap(spec, "CAP_SYS_ADMIN") then
      return false, "CAP_SYS_ADMIN is not allowed"
    end
  end,

  c_no_host_namespaces = function(spec)
    local have = {}
    for _, ns in ipairs(spec.linux and spec.linux.namespaces or {}) do
      if ns.path and ns.path ~= "" then
        return false, ("joining the %s namespace %s is not allowed"):format(ns.type, ns.path)
      end
      have[ns.type] = true
    end
    for _, t in ipairs(REQUIRED_NAMESPACES) do
      if not have[t] then return false, ("the host %s namespace is not allowed"):format(t) end
    end
  end,
}
