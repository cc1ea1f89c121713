-- The test runner behind `make test`: busted under luajit with our summary output, which ends
-- with the line `N passed, M failed` that CI reads.  Specs that need root are tagged `root`
-- and are skipped (visibly) when the runner is not root.  The host's /dev and mounts are
-- recorded first and compared after the last spec (support.hygiene): a change is one more
-- failed test, and the exit status says so.
local args = { "-o", "spec/support/summary.lua", "--pattern=_spec" }
local p = io.popen("id -u")
local uid = p and p:read("*l")
if p then p:close() end
if uid ~= "0" then
  io.stderr:write("not root: specs tagged `root` are skipped\n")
  args[#args + 1] = "--exclude-tags=root"
end
for i = 1, #arg do args[#args + 1] = arg[i] end
if #arg == 0 then args[#args + 1] = "spec" end
arg = args -- luacheck: ignore (busted reads the global arg)
local hygiene = require("support.hygiene")
hygiene.start()
-- it returns only when no test failed (it exits otherwise)
require("busted.runner")({ standalone = false })
if hygiene.failed then os.exit(1) end
