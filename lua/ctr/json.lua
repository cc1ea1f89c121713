--- JSON as ctr prints it: Go's encoding/json (json.Marshal, json.MarshalIndent(v, "", "    ")).
--
--     local json = require("ctr.json")
--     io.write(json.encode_indent(record), "\n")       -- as ctr's commands.PrintAsJSON
--     local t, err = json.decode(text)
--
-- Object keys come out sorted, as Go writes a map; `json.ordered(t, keys)` makes a table come out
-- in a struct's field order instead.  Strings are escaped as Go does: `<`, `>`, `&`, U+2028 and
-- U+2029 as \u escapes, control bytes as \u00xx, invalid UTF-8 as \ufffd.  Numbers: integers
-- in full (never 1e+20), others in Go's shortest form.  `json.array(t)` marks a table that must
-- be written `[]` when empty; `json.null` is JSON null.  Decoding is the core's (cJSON).
-- @module ctr.json
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- JSON null, as decode returns it and encode takes it.
M.null = core.null
--- The metatable of decoded arrays.
M.array_mt = core.array_mt

--- Mark t as a JSON array (written `[]` when empty); returns t.
function M.array(t)
  if type(t) ~= "table" then error("json.array: t: expected table", 2) end
  return core.json_array(t)
end

--- Write t's keys in this order (a Go struct's field order); keys not listed follow, sorted.
-- Returns t.
function M.ordered(t, keys)
  if type(t) ~= "table" then error("json.ordered: t: expected table", 2) end
  if type(keys) ~= "table" then error("json.ordered: keys: expected table", 2) end
  return setmetatable(t, { __json_order = keys })
end

--- Decode a JSON text.
-- @return the value (objects as tables, arrays with json.array_mt, null as json.null), or nil,
-- err (sym INVALID)
function M.decode(s)
  if type(s) ~= "string" then error("json.decode: s: expected string", 2) end
  local v, err = sys.json_decode(s)
  if v == nil then
    err.sym = "INVALID"
    return nil, err
  end
  return v
end

-- ---------------------------------------------------------------- strings

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
  ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026" }
for b = 0, 31 do
  local c = string.char(b)
  ESC[c] = ESC[c] or ("\\u%04x"):format(b)
end

-- Go's handling of bytes >= 0x80: valid UTF-8 is kept, U+2028/U+2029 escaped, every byte of an
-- invalid sequence becomes \ufffd.
local function fix_utf8(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min = 0, 0
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000 end
    local cp
    if len == 1 then
      cp = c
    elseif len > 1 and i + len - 1 <= n then
      cp = c % (2 ^ (7 - len))
      for k = 1, len - 1 do
        local b = s:byte(i + k)
        if b < 0x80 or b > 0xBF then cp = nil break end
        cp = cp * 64 + (b - 0x80)
      end
      if cp and (cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF)) then cp = nil end
    end
    if cp == nil then
      out[#out + 1] = "\\ufffd"
      i = i + 1
    else
      if cp == 0x2028 or cp == 0x2029 then
        out[#out + 1] = ("\\u%04x"):format(cp)
      else
        out[#out + 1] = s:sub(i, i + len - 1)
      end
      i = i + len
    end
  end
  return table.concat(out)
end

local function quote(s)
  s = s:gsub('[%z\1-\31"\\<>&]', ESC)
  if s:find("[\128-\255]") then s = fix_utf8(s) end
  return '"' .. s .. '"'
end
M.quote = quote

-- ---------------------------------------------------------------- numbers

-- strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json chooses between them.
local function number(f)
  if f ~= f or f == math.huge or f == -math.huge then
    return nil, ("json: unsupported value: %s"):format(tostring(f))
  end
  if f == math.floor(f) and math.abs(f) < 1.8446744073709552e19 then
    return core.json_encode(f) -- integers as the core writes them (2^63 as INT64_MAX)
  end
  local s
  for p = 0, 16 do
    s = ("%." .. p .. "e"):format(f)
    if tonumber(s) == f then break end
  end
  local sign, int, frac, exp = s:match("^(%-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (int .. frac):gsub("0+$", "")
  if digits == "" then digits = "0" end
  exp = tonumber(exp)
  local a = math.abs(f)
  if a < 1e-6 or a >= 1e21 then
    local m = digits:sub(1, 1) .. (#digits > 1 and "." .. digits:sub(2) or "")
    if exp < 0 then return ("%s%se-%d"):format(sign, m, -exp) end
    return ("%s%se+%02d"):format(sign, m, exp)
  end
  if exp >= 0 then
    if #digits <= exp + 1 then return sign .. digits .. ("0"):rep(exp + 1 - #digits) end
    return sign .. digits:sub(1, exp + 1) .. "." .. digits:sub(exp + 2)
  end
  return sign .. "0." .. ("0"):rep(-exp - 1) .. digits
end
M.number = number

-- ---------------------------------------------------------------- values

local function is_array(t)
  if getmetatable(t) == core.array_mt then return true, #t end
  local n, max = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then return false end
    n = n + 1
    if k > max then max = k end
  end
  return n > 0 and n == max, n
end

local function object_keys(t)
  local keys, seen = {}, {}
  local mt = getmetatable(t)
  local order = type(mt) == "table" and mt.__json_order or nil
  if order then
    for _, k in ipairs(order) do
      if t[k] ~= nil and not seen[k] then
        keys[#keys + 1] = k
        seen[k] = true
      end
    end
  end
  local rest = {}
  for k in pairs(t) do
    if type(k) ~= "string" then return nil, ("json: object key of type %s"):format(type(k)) end
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

local function encode(v, out, indent, depth)
  local t = type(v)
  if v == nil or v == core.null then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    local s, err = number(v)
    if not s then return nil, err end
    out[#out + 1] = s
  elseif t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "table" then
    if depth > 200 then return nil, "json: nesting deeper than 200 (a cycle?)" end
    local nl, nl_end = "", ""
    if indent then
      nl = "\n" .. indent:rep(depth + 1)
      nl_end = "\n" .. indent:rep(depth)
    end
    local arr, n = is_array(v)
    if arr then
      if n == 0 then out[#out + 1] = "[]" return true end
      out[#out + 1] = "["
      for i = 1, n do
        out[#out + 1] = (i > 1 and "," or "") .. nl
        local ok, err = encode(v[i], out, indent, depth + 1)
        if not ok then return nil, err end
      end
      out[#out + 1] = nl_end .. "]"
    else
      local keys, kerr = object_keys(v)
      if not keys then return nil, kerr end
      if #keys == 0 then out[#out + 1] = "{}" return true end
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        out[#out + 1] = (i > 1 and "," or "") .. nl .. quote(k) .. (indent and ": " or ":")
        local ok, err = encode(v[k], out, indent, depth + 1)
        if not ok then return nil, err end
      end
      out[#out + 1] = nl_end .. "}"
    end
  else
    return nil, ("json: unsupported type: %s"):format(t)
  end
  return true
end

--- Encode a value as json.Marshal does (compact).
-- @return the text, or nil, err (sym INVALID: NaN, infinity, a function, a cycle, a mixed table)
function M.encode(v)
  local out = {}
  local ok, msg = encode(v, out, nil, 0)
  if not ok then return nil, errors.new(msg, 22, "INVALID") end
  return table.concat(out)
end

--- Encode a value as json.MarshalIndent(v, "", indent) does; indent defaults to four spaces,
-- as ctr's commands.PrintAsJSON.
-- @return the text (no final newline), or nil, err
function M.encode_indent(v, indent)
  indent = indent or "    "
  if type(indent) ~= "string" then error("json.encode_indent: indent: expected string", 2) end
  local out = {}
  local ok, msg = encode(v, out, indent, 0)
  if not ok then return nil, errors.new(msg, 22, "INVALID") end
  return table.concat(out)
end

return M
