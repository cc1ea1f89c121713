-- The suite's temporary directories: every spec's and helper's comes from here, so whatever a
-- test leaves in one (a file, a store, a dir a failed test never reached its cleanup for) is
-- removed once, after the last spec, by support.hygiene.  The removal never crosses a mount:
-- a directory that still holds one is not removed but reported, and fails the run.
--
--   local T = require("support.tmp")
--   local d = T.dir("run")    -- /tmp/ctrlua-run.XXXXXX, fresh
--   local left = T.sweep()    -- {} when every directory made so far is gone
local core = require("ctr.core")

local T = {}

local made = {}

--- A fresh directory /tmp/ctrlua-KIND.XXXXXX (mode 0700, as mktemp -d makes it).
function T.dir(kind)
  local p = assert(io.popen("mktemp -d /tmp/ctrlua-" .. kind .. ".XXXXXX"))
  local d = p:read("*l")
  p:close()
  assert(d and d ~= "", "mktemp -d /tmp/ctrlua-" .. kind .. ".XXXXXX failed")
  made[#made + 1] = d
  return d
end

--- Remove every directory T.dir made; one that cannot be removed (a mount left inside it) is
-- returned as "PATH: WHY", in the order they were made.
function T.sweep()
  local left = {}
  for _, d in ipairs(made) do
    local ok, err = core.remove_tree(d)
    if not ok then left[#left + 1] = d .. ": " .. tostring(err) end
  end
  made = {}
  return left
end

return T
