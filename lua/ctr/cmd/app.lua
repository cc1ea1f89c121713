--- Commands with subcommands, as urfave/cli v1's App runs them under ctr (`ctr images import`):
-- the app's own flags, the list of subcommands with their aliases, `help [COMMAND]`, ctr's help
-- layout and ctr's words for usage errors.  Flags are parsed by ctr.cmd.cli.
--
--     app.run({
--       name = "images", usage = "manage images",
--       flags = {...},                          -- the app's own flags (before the subcommand)
--       commands = {
--         { name = "list", aliases = { "ls" }, usage = "list images known to containerd",
--           args_usage = "[flags] [<filter>, ...]", flags = {...},
--           action = function(ctx) ... end },   -- ctx.flags, ctx.args, ctx.set, ctx.global
--       },
--     }, { ... })
--
-- An action returns nothing (or true) on success; `nil, err` prints `ctrlua: <err>` on stderr
-- and exits 1; `false` exits 1 (it reported its errors itself).
-- @module ctr.cmd.app
local cli = require("ctr.cmd.cli")
local core = require("ctr.core")
local sys = require("ctr.sys")

local M = {}

local HELP_FLAG = { name = "help", aliases = { "h" }, type = "bool", usage = "show help" }

local function help_name(app) return app.help_name or ("ctrlua " .. app.name) end

local function check_app(app, level)
  if type(app) ~= "table" then error("app: expected table", level + 1) end
  if type(app.name) ~= "string" then error("app.name: expected string", level + 1) end
  if type(app.commands) ~= "table" then error("app.commands: expected table", level + 1) end
  for i, c in ipairs(app.commands) do
    if type(c) ~= "table" or type(c.name) ~= "string" then
      error(("app.commands[%d].name: expected string"):format(i), level + 1)
    end
    if type(c.action) ~= "function" then
      error(("app.commands[%d].action: expected function"):format(i), level + 1)
    end
  end
end

--- The command of app named name (or one of its aliases), or nil.
function M.find(app, name)
  for _, c in ipairs(app.commands) do
    if c.name == name then return c end
    for _, a in ipairs(c.aliases or {}) do
      if a == name then return c end
    end
  end
  return nil
end

--- The ctr.cmd.cli definition of a subcommand (help_name "ctrlua images import").
function M.command_def(app, cmd)
  return {
    name = cmd.name, help_name = help_name(app) .. " " .. cmd.name, usage = cmd.usage,
    args_usage = cmd.args_usage, usage_text = cmd.usage_text, description = cmd.description,
    skip_reorder = cmd.skip_reorder, flags = cmd.flags or {},
  }
end

--- The app's help as ctr prints `ctr images --help`: NAME, USAGE, COMMANDS, OPTIONS.
function M.usage(app)
  check_app(app, 2)
  local hn = help_name(app)
  local b = { "NAME:\n   ", hn, " - ", app.usage or hn, "\n\nUSAGE:\n   ", hn,
    " command [command options] [arguments...]" }
  if app.description then b[#b + 1] = "\n\nDESCRIPTION:\n   " .. app.description end
  b[#b + 1] = "\n\nCOMMANDS:"
  for _, c in ipairs(app.commands) do
    if not c.hidden then
      local names = { c.name }
      for _, a in ipairs(c.aliases or {}) do names[#names + 1] = a end
      b[#b + 1] = "\n   " .. table.concat(names, ", ") .. "\t" .. (c.usage or "")
    end
  end
  b[#b + 1] = "\n\nOPTIONS:\n   "
  for _, f in ipairs(app.flags or {}) do
    if not f.hidden then b[#b + 1] = cli.flag_string(f) .. "\n   " end
  end
  b[#b + 1] = cli.flag_string(HELP_FLAG) .. "\n   \n"
  return cli.tabwrite(table.concat(b), 1, 2)
end

--- Print `ctrlua: warning: <msg>` on stderr for each error of a list (the records a listing
-- could not read: it lists the others).
function M.warn(errs)
  for _, e in ipairs(errs or {}) do io.stderr:write("ctrlua: warning: ", tostring(e), "\n") end
end

--- Print `ctrlua: <err>` on stderr and exit with code (default 1).
function M.fail(err, code)
  io.stdout:flush()
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(code or 1)
end

local function no_topic(name)
  M.fail(("No help topic for '%s'"):format(name), 3)
end

--- Run the app on args (the script's arguments) and exit on every error, as ctr does:
-- - no subcommand, `-h`/`--help` or `help`: the app's help on stdout, exit 0;
-- - `help CMD` or `CMD --help`: the command's help, exit 0;
-- - a bad flag of the app: "Incorrect Usage. <msg>" and the app's help on stdout, `ctrlua: <msg>`
--   on stderr, exit 1 (a bad flag of a command: "Incorrect Usage: <msg>", as ctr.cmd.cli);
-- - an unknown command: `ctrlua: No help topic for 'CMD'` on stderr, exit 3.
-- Returns what the action returned when it succeeded.
function M.run(app, args)
  check_app(app, 2)
  if type(args) ~= "table" then error("args: expected table", 2) end
  local top = { name = app.name, help_name = help_name(app), usage = app.usage,
    flags = app.flags or {}, skip_reorder = true }
  local r, err = cli.parse(top, args)
  if not r then
    io.stdout:write("Incorrect Usage. ", tostring(err), "\n\n", M.usage(app))
    M.fail(err)
  end
  local name = r.args[1]
  if r.help or name == nil or name == "help" or name == "h" then
    local topic = (name == "help" or name == "h") and r.args[2] or nil
    if topic then
      local c = M.find(app, topic)
      if not c then no_topic(topic) end
      io.stdout:write(cli.usage(M.command_def(app, c)))
    else
      io.stdout:write(M.usage(app))
    end
    os.exit(0)
  end
  local cmd = M.find(app, name)
  if not cmd then no_topic(name) end
  local rest = {}
  for i = 2, #r.args do rest[#rest + 1] = r.args[i] end
  local cr = cli.parse_or_exit(M.command_def(app, cmd), rest)
  local ok, aerr = cmd.action({ flags = cr.flags, args = cr.args, set = cr.set, global = r.flags,
    app = app, command = cmd })
  if aerr ~= nil then M.fail(aerr) end
  if ok == false then
    io.stdout:flush()
    os.exit(1)
  end
  return ok
end

--- The scripts of a directory (default the host's scripts folder) with their descriptions,
-- sorted by name: a list of `{name = "images", file = "images.lua", path =, description =}`;
-- description is the text after `-- NAME:` on the script's first line, or nil when the first
-- line is not such a comment.
-- @return the list, or nil, err
function M.scripts(dir)
  if dir == nil then
    local ok, host = pcall(require, "ctr.host")
    dir = ok and type(host) == "table" and host.scripts or nil
    if dir == nil then return nil, require("ctr.errors").invalid("no scripts folder: not run by ctrlua") end
  end
  if type(dir) ~= "string" then error("app.scripts: dir: expected string", 2) end
  local names, err = sys.listdir(dir)
  if not names then return nil, err end
  table.sort(names)
  local out = {}
  for _, f in ipairs(names) do
    local base = f:match("^(.+)%.lua$")
    if base then
      local path = dir .. "/" .. f
      local fh = io.open(path, "rb")
      local first = fh and fh:read("*l") or ""
      if fh then fh:close() end
      local tag, desc = first:match("^%-%-%s*([%w%-_]+):%s*(.-)%s*$")
      out[#out + 1] = { name = base, file = f, path = path,
        description = (tag == base and desc ~= "") and desc or nil }
    end
  end
  return out
end

return M
