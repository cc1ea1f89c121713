-- help: list the commands with one line each; `help COMMAND` shows a command's help
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")
local host = require("ctr.host")

-- the host's global flags (csrc/lua/host.c), for the help only: the host parses them
local GLOBAL_FLAGS = {
  { name = "root", type = "string", value = "/var/lib/ctrlua", usage = "the store: images, content, snapshots, containers" },
  { name = "state", type = "string", value = "/run/ctrlua", usage = "the state of tasks" },
  { name = "namespace", aliases = { "n" }, type = "string", value = "default", env = "CTRLUA_NAMESPACE",
    usage = "namespace to use" },
  { name = "debug", type = "bool", usage = "tracebacks and debug output" },
  { name = "help", aliases = { "h" }, type = "bool", usage = "show help" },
  { name = "version", aliases = { "v" }, type = "bool", usage = "print the version" },
}

local scripts, err = app.scripts()
if not scripts then app.fail(err) end

local args = { ... }
local topic = args[1]
if topic == "-h" or topic == "--help" then topic = nil end
if topic then
  -- `ctrlua help images`: the command's own --help
  local name = topic:gsub("%.lua$", "")
  for _, s in ipairs(scripts) do
    if s.name == name then
      local chunk, lerr = loadfile(s.path)
      if not chunk then app.fail(lerr) end
      arg = { [0] = s.path, "--help" } -- luacheck: ignore (scripts read arg, as under the host)
      chunk("--help")
      os.exit(0)
    end
  end
  app.fail(("No help topic for '%s'"):format(topic), 3)
end

local b = { "NAME:\n   ctrlua - containerd's ctr, without a daemon: C and LuaJIT\n\n",
  "USAGE:\n   ctrlua [global options] command [command options] [arguments...]\n\n",
  "VERSION:\n   ", host.version or "unknown", "\n\n",
  "COMMANDS:\n" }
for _, s in ipairs(scripts) do
  b[#b + 1] = ("   %s\t%s\n"):format(s.name, s.description or
    ("(no description: the first line of %s should be `-- %s: ...`)"):format(s.file, s.name))
end
b[#b + 1] = "\nGLOBAL OPTIONS:\n   "
for _, f in ipairs(GLOBAL_FLAGS) do b[#b + 1] = cli.flag_string(f) .. "\n   " end
b[#b + 1] = "\n`ctrlua COMMAND --help` or `ctrlua help COMMAND` tells more about a command.\n"
io.stdout:write(cli.tabwrite(table.concat(b), 1, 2))
