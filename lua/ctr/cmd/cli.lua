--- Command-line flags with the semantics of urfave/cli v1 over Go's flag package, as ctr uses
-- them, so that commands accept what ctr accepts and fail with ctr's words.
--
-- A command definition: `{name = "run", help_name = "ctr run", usage = "run a container",
-- args_usage = "...", usage_text = "...", description = "...", skip_reorder = true,
-- flags = {flag, ...}}`.  A flag: `{name = "env", aliases = {"e"}, type = "bool" | "string" |
-- "strings" (repeatable) | "int" | "int64" | "uint" | "uint64" | "float" | "ints", usage = "...",
-- value = default, env = "ENV_VAR", hidden = true}`.
--
-- Semantics (Go's flag.FlagSet.Parse after urfave's reordering):
-- - `-x` and `--x` are the same; `--x=v` and `--x v` give a value; a bool takes no separate value
--   (`--rm`, `--rm=false`); a value flag takes the next argument whatever it is.
-- - Unless `skip_reorder`, flags found after positionals are moved in front of them (urfave's
--   reorderArgs), so `ls foo -q` works; with skip_reorder (ctr run) parsing stops at the first
--   positional and everything after IMAGE ID belongs to the command.  `--` ends the flags.
-- - Errors as Go words them: `flag provided but not defined: -foo`, `flag needs an argument:
--   -env`, `invalid value "x" for flag -cpus: parse error`, `invalid boolean value "x" for -rm:
--   parse error`, `bad flag syntax: ---x`.  `-h`/`--help`, when not defined, ask for help.
-- @module ctr.cmd.cli
local core = require("ctr.core")
local errors = require("ctr.errors")

local M = {}

local TYPES = { bool = true, string = true, strings = true, int = true, int64 = true, uint = true,
  uint64 = true, float = true, ints = true }

local function names_of(f)
  local out = { f.name }
  for _, a in ipairs(f.aliases or {}) do out[#out + 1] = a end
  return out
end

-- name -> flag definition, checking the definitions (misuse raises).
local function index_flags(def)
  if type(def) ~= "table" then error("def: expected table", 3) end
  local idx = {}
  for i, f in ipairs(def.flags or {}) do
    if type(f) ~= "table" or type(f.name) ~= "string" then error(("def.flags[%d].name: expected string"):format(i), 3) end
    if not TYPES[f.type or "string"] then error(("def.flags[%d].type: unknown %q"):format(i, tostring(f.type)), 3) end
    for _, n in ipairs(names_of(f)) do idx[n] = f end
  end
  return idx
end

local function usage_error(fmt, ...)
  local e = errors.invalid(fmt, ...)
  e.usage = true
  return e
end

-- ---------------------------------------------------------------- value parsing (Go's strconv)

-- strconv.ParseInt/ParseUint with base 0: optional sign, 0x/0o/0b/0 prefixes, underscores
-- between digits.  Returns a number or nil, "parse error" | "value out of range".
local function parse_integer(s, unsigned, bits)
  local sign, body = s:match("^([+-]?)(.*)$")
  if unsigned and sign ~= "" then return nil, "parse error" end
  if body == "" then return nil, "parse error" end
  local base, digits = 10, body
  local lower = body:lower()
  if lower:match("^0x") then base, digits = 16, body:sub(3)
  elseif lower:match("^0b") then base, digits = 2, body:sub(3)
  elseif lower:match("^0o") then base, digits = 8, body:sub(3)
  elseif body:match("^0.") then base, digits = 8, body:sub(2) end
  if digits:find("_") then
    -- underscores only between digits (or right after a prefix), never doubled or trailing
    if digits:match("__") or digits:match("_$") or (base == 10 and digits:match("^_")) then
      return nil, "parse error"
    end
    digits = digits:gsub("_", "")
  end
  if digits == "" then return nil, "parse error" end
  local pat = ({ [2] = "^[01]+$", [8] = "^[0-7]+$", [10] = "^%d+$", [16] = "^%x+$" })[base]
  if not digits:match(pat) then return nil, "parse error" end
  local v = 0
  for ch in digits:gmatch(".") do v = v * base + tonumber(ch, 16) end
  if sign == "-" then v = -v end
  local max = unsigned and 2 ^ bits - 1 or 2 ^ (bits - 1) - 1
  local min = unsigned and 0 or -(2 ^ (bits - 1))
  if v > max or v < min then return nil, "value out of range" end
  return v
end
M.parse_integer = parse_integer

-- strconv.ParseFloat(s, 64): decimal and exponent forms, inf, infinity, nan, underscores are not
-- accepted (base 10 float syntax only).
local function parse_float(s)
  local l = s:lower()
  local sign, rest = l:match("^([+-]?)(.*)$")
  if rest == "inf" or rest == "infinity" then return sign == "-" and -math.huge or math.huge end
  if rest == "nan" and sign == "" then return 0 / 0 end
  if not rest:match("^%d+%.?%d*$") and not rest:match("^%.%d+$")
    and not rest:match("^%d+%.?%d*e[+-]?%d+$") and not rest:match("^%.%d+e[+-]?%d+$") then
    return nil, "parse error"
  end
  local v = tonumber(l)
  if v == nil then return nil, "parse error" end
  if v == math.huge or v == -math.huge then return nil, "value out of range" end
  return v
end
M.parse_float = parse_float

local BOOLS = { ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true, True = true,
  ["0"] = false, f = false, F = false, FALSE = false, ["false"] = false, False = false }

local function convert(f, s)
  local t = f.type or "string"
  if t == "string" or t == "strings" then return s end
  if t == "bool" then
    local b = BOOLS[s]
    if b == nil then return nil, "parse error" end
    return b
  end
  if t == "float" then return parse_float(s) end
  if t == "int" or t == "int64" or t == "ints" then return parse_integer(s, false, 64) end
  return parse_integer(s, true, 64)
end

local function default_of(f)
  local t = f.type or "string"
  if t == "strings" or t == "ints" then
    local out = {}
    for i, v in ipairs(f.value or {}) do out[i] = v end
    return out
  end
  if f.value ~= nil then return f.value end
  if t == "bool" then return false end
  if t == "string" then return "" end
  return 0
end

-- ---------------------------------------------------------------- parsing

-- urfave/cli v1's argIsFlag: "-x", "--x", "--x=v" naming a defined flag.
local function arg_is_flag(idx, arg)
  if arg == "-" or arg == "--" or arg:sub(1, 1) ~= "-" then return false end
  local name = arg:gsub("^%-%-?", "")
  name = name:match("^([^=]*)")
  return idx[name] ~= nil
end

-- urfave/cli v1's reorderArgs: defined flags (with their values) first, the rest after.
local function reorder(idx, args)
  local flags, rest = {}, {}
  local may_value = false
  for i, a in ipairs(args) do
    if a == "--" then
      for j = i, #args do rest[#rest + 1] = args[j] end
      break
    elseif may_value and a:sub(1, 1) ~= "-" then
      may_value = false
      flags[#flags + 1] = a
    elseif arg_is_flag(idx, a) then
      flags[#flags + 1] = a
      may_value = not a:find("=", 1, true)
    else
      rest[#rest + 1] = a
    end
  end
  for _, a in ipairs(rest) do flags[#flags + 1] = a end
  return flags
end

--- Parse args (a list of strings) against a command definition.
-- @return `{flags = {name = value (every name and alias)}, args = {positionals}, set = {name =
-- true for flags given}, help = true when -h/--help was asked}`, or nil, err (err.usage = true).
function M.parse(def, args)
  local idx = index_flags(def)
  if type(args) ~= "table" then error("args: expected table", 2) end
  local r = { flags = {}, set = {}, args = {}, help = false }
  for _, f in ipairs(def.flags or {}) do
    local v = default_of(f)
    if f.env then
      local ev = core.getenv(f.env)
      if ev and ev ~= "" then
        local cv = convert(f, ev)
        if cv ~= nil then
          if type(v) == "table" then v = { cv } else v = cv end
        end
      end
    end
    for _, n in ipairs(names_of(f)) do r.flags[n] = v end
  end
  local list = def.skip_reorder and { unpack(args) } or reorder(idx, args)
  local i = 1
  while i <= #list do
    local s = list[i]
    if #s < 2 or s:sub(1, 1) ~= "-" then break end
    local minuses = 1
    if s:sub(2, 2) == "-" then
      minuses = 2
      if #s == 2 then i = i + 1 break end -- "--" ends the flags
    end
    local name = s:sub(minuses + 1)
    if name == "" or name:sub(1, 1) == "-" or name:sub(1, 1) == "=" then
      return nil, usage_error("bad flag syntax: %s", s)
    end
    i = i + 1
    local value, has_value = nil, false
    local eq = name:find("=", 2, true)
    if eq then
      value, has_value = name:sub(eq + 1), true
      name = name:sub(1, eq - 1)
    end
    local f = idx[name]
    if not f then
      if name == "help" or name == "h" then
        r.help = true
        goto continue
      end
      return nil, usage_error("flag provided but not defined: -%s", name)
    end
    if (f.type or "string") == "bool" then
      local v = true
      if has_value then
        v = BOOLS[value]
        if v == nil then return nil, usage_error("invalid boolean value %q for -%s: parse error", value, name) end
      end
      for _, n in ipairs(names_of(f)) do r.flags[n] = v end
    else
      if not has_value and i <= #list then
        value, has_value = list[i], true
        i = i + 1
      end
      if not has_value then return nil, usage_error("flag needs an argument: -%s", name) end
      local v, perr = convert(f, value)
      if v == nil then return nil, usage_error("invalid value %q for flag -%s: %s", value, name, perr) end
      local t = f.type or "string"
      if t == "strings" or t == "ints" then
        local acc = r.set[f.name] and r.flags[f.name] or {}
        acc[#acc + 1] = v
        v = acc
      end
      for _, n in ipairs(names_of(f)) do r.flags[n] = v end
    end
    r.set[f.name] = true
    ::continue::
  end
  for j = i, #list do r.args[#r.args + 1] = list[j] end
  return r
end

-- ---------------------------------------------------------------- help (urfave/cli v1 layout)

local function text_width(s)
  local n = 0
  for _ in s:gmatch("[^\128-\191]") do n = n + 1 end
  return n
end

--- Go's text/tabwriter with padchar ' ' and no flags: cells end with "\t"; a column is as wide
-- as its widest cell plus padding (at least minwidth) over each block of consecutive lines
-- that have that cell.  Returns the formatted text.
function M.tabwrite(text, minwidth, padding)
  local lines = {}
  for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    local cells = {}
    for cell in (line .. "\0"):gmatch("([^\t]*)[\t%z]") do cells[#cells + 1] = cell end
    lines[#lines + 1] = cells
  end
  local out, widths = {}, {}
  local function write_lines(l0, l1)
    for li = l0, l1 - 1 do
      local cells = lines[li]
      for j, c in ipairs(cells) do
        if j <= #widths and j < #cells then
          out[#out + 1] = c .. (" "):rep(widths[j] - text_width(c))
        else
          out[#out + 1] = c
        end
      end
      out[#out + 1] = "\n"
    end
  end
  local function format(l0, l1)
    local column = #widths + 1
    local this = l0
    while this < l1 do
      if column < #lines[this] then
        write_lines(l0, this)
        l0 = this
        local width = minwidth
        while this < l1 and column < #lines[this] do
          local w = text_width(lines[this][column]) + padding
          if w > width then width = w end
          this = this + 1
        end
        widths[#widths + 1] = width
        format(l0, this)
        widths[#widths] = nil
        l0 = this
      else
        this = this + 1
      end
    end
    write_lines(l0, l1)
  end
  format(1, #lines + 1)
  local s = table.concat(out)
  if text:sub(-1) ~= "\n" then s = s:sub(1, -2) end
  return s
end

-- urfave's unquoteUsage: a `word` in backquotes is the placeholder.
local function unquote_usage(usage)
  local a = usage:find("`", 1, true)
  if a then
    local b = usage:find("`", a + 1, true)
    if b then
      local name = usage:sub(a + 1, b - 1)
      return name, usage:sub(1, a - 1) .. name .. usage:sub(b + 1)
    end
  end
  return "", usage
end

local function go_value(v)
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d"):format(v) end
    return tostring(v)
  end
  return tostring(v)
end

--- One flag's help line: "--name value, -n value\tusage (default: x) [$ENV]".
function M.flag_string(f)
  local t = f.type or "string"
  local placeholder, usage = unquote_usage(f.usage or "")
  local default = ""
  if t == "strings" or t == "ints" then
    local vals = {}
    for _, v in ipairs(f.value or {}) do
      if t == "ints" then vals[#vals + 1] = go_value(v) elseif v ~= "" then vals[#vals + 1] = ("%q"):format(v) end
    end
    if #vals > 0 then default = (" (default: %s)"):format(table.concat(vals, ", ")) end
    if placeholder == "" then placeholder = "value" end
  elseif t ~= "bool" then
    local v = default_of(f)
    if t == "string" then
      if v ~= "" then default = (" (default: %q)"):format(v) end
    else
      default = (" (default: %s)"):format(go_value(v))
    end
    if placeholder == "" then placeholder = "value" end
  end
  local names = {}
  for _, n in ipairs(names_of(f)) do
    local s = (#n == 1 and "-" or "--") .. n
    if placeholder ~= "" then s = s .. " " .. placeholder end
    names[#names + 1] = s
  end
  local text = (usage .. default):gsub("^%s+", ""):gsub("%s+$", "")
  local line = table.concat(names, ", ") .. "\t" .. text
  if f.env then line = line .. " [$" .. f.env .. "]" end
  return line
end

--- The help of a command in urfave/cli v1's layout (NAME, USAGE, DESCRIPTION, OPTIONS).
function M.usage(def)
  index_flags(def)
  local help_name = def.help_name or ("ctrlua " .. (def.name or ""))
  local visible = {}
  for _, f in ipairs(def.flags or {}) do if not f.hidden then visible[#visible + 1] = f end end
  local b = { "NAME:\n   ", help_name, " - ", def.usage or "", "\n\nUSAGE:\n   " }
  if def.usage_text then
    b[#b + 1] = def.usage_text
  else
    b[#b + 1] = help_name
    if #visible > 0 then b[#b + 1] = " [command options]" end
    b[#b + 1] = " " .. (def.args_usage or "[arguments...]")
  end
  if def.category then b[#b + 1] = "\n\nCATEGORY:\n   " .. def.category end
  if def.description then b[#b + 1] = "\n\nDESCRIPTION:\n   " .. def.description end
  if #visible > 0 then
    b[#b + 1] = "\n\nOPTIONS:\n   "
    for _, f in ipairs(visible) do b[#b + 1] = M.flag_string(f) .. "\n   " end
  end
  b[#b + 1] = "\n"
  return M.tabwrite(table.concat(b), 1, 2)
end

--- For commands: print "Incorrect Usage: <msg>" and the help on stdout (as urfave does), then
-- `ctrlua: <msg>` on stderr, and exit 1.
function M.fail_usage(def, err)
  io.stdout:write("Incorrect Usage: ", tostring(err), "\n\n", M.usage(def))
  io.stdout:flush()
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(1)
end

--- Parse or exit: on a usage error print as urfave does and exit 1; on -h/--help print the
-- help and exit 0.  Returns the parse result.
function M.parse_or_exit(def, args)
  local r, err = M.parse(def, args)
  if not r then M.fail_usage(def, err) end
  if r.help then
    io.stdout:write(M.usage(def))
    os.exit(0)
  end
  return r
end

--- ctr's LabelArgs: "k=v" -> k = v, "k" -> k = "true".
function M.label_args(list)
  local out = {}
  for _, s in ipairs(list or {}) do
    local k, v = s:match("^([^=]*)=(.*)$")
    if k then out[k] = v else out[s] = "true" end
  end
  return out
end

--- The first given flag of r (a parse result) that is not marked supported, or nil.
function M.unsupported(def, r)
  for _, f in ipairs(def.flags or {}) do
    if r.set[f.name] and not f.supported then return f.name end
  end
  return nil
end

return M
