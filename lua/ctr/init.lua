--- ctr: the public API, as containerd's Go client.
--
--     local ctr = require("ctr")
--     local client = assert(ctr.client{ root = "/var/lib/ctrlua", namespace = "default" })
--     local image = assert(client:get_image("ctrlua.test/busybox:latest"))
--
-- @module ctr
local M = {}

--- Make a client; see ctr.client.new.
function M.client(opts) return require("ctr.client").new(opts) end

setmetatable(M, {
  -- ctr.oci, ctr.containers, ctr.cio, ... load on first use
  __index = function(t, k)
    local ok, mod = pcall(require, "ctr." .. k)
    if ok then
      rawset(t, k, mod)
      return mod
    end
    return nil
  end,
})

return M
