-- help: list the commands with one line each
local core = require("ctr.core")
local host = require("ctr.host")

local names = core.listdir(host.scripts) or {}
table.sort(names)
io.write("usage: ctrlua [--root DIR] [--state DIR] [-n NS] [--debug] COMMAND [ARGS...]\n\n",
  "commands:\n")
for _, f in ipairs(names) do
  if f:match("%.lua$") then
    local fh = io.open(host.scripts .. "/" .. f)
    local first = fh and fh:read("*l") or ""
    if fh then fh:close() end
    local name, desc = first:match("^%-%-%s*([%w%-_]+):%s*(.*)$")
    if name then io.write(("  %-12s %s\n"):format(f:gsub("%.lua$", ""), desc)) end
  end
end
io.write("\n`ctrlua COMMAND --help` tells more; `ctrlua --help` lists the global flags.\n")
