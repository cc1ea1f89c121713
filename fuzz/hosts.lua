-- The driver of fuzz/hosts.c: a hosts.toml through ctr.remotes.hosts, as a pull reads it.
--
-- The input is the file's text.  It goes through parse_toml, then is written as
-- DIR/_default/hosts.toml for for_host, asked about docker.io (whose server is special), a
-- host with a port and one without, with and without the command line's TLS options.  DIR is
-- the harness's (CTRLUA_FUZZ_HOSTS_DIR) or the driver's second argument.
--
-- A finding is any Lua error out of the code under test (see luahost.h), and any of these
-- contracts broken, each checked with error():
--   - parse_toml returns a document and its order, or nil and an error value of sym INVALID
--     whose message is "NAME line N: ..." with N a line of the text;
--   - the document holds strings, booleans, integral numbers and tables only; a table that is
--     an array has the keys 1..n and no order, any other has its keys, each once, in order[t];
--   - when the text is UTF-8, so is every string of the document, keys included (a \u or \U
--     escape is a Unicode scalar value);
--   - parsing is linear: a text it accepts, parsed again with a line of a 96 KiB string
--     appended, allocates at most about that string's size more, not once more for every
--     value before it (a copy of the rest of the text per value is quadratic);
--   - for_host returns a list or nil and an error value with a sym; each host has scheme http
--     or https, a non-empty host, a path that starts with "/", capabilities among pull,
--     resolve and push, ca, cert and key paths or nil, insecure a boolean, and header lines
--     "name: value" with a name of no blanks, controls or colons and a value of no CR, LF or
--     NUL (a line the request is made of); the list is one host per [host] table in the file's
--     order, then the server.
local core = require("ctr.core")
local errors = require("ctr.errors")
local hosts = require("ctr.remotes.hosts")

local NAME = "hosts.toml"
-- (under the 128 KiB that ASan's allocator serves without an mmap of its own)
local PAD = ("p"):rep(96 * 1024)
local PAD_LINES = { "\nfuzz_pad_ = '" .. PAD .. "'\n", "\nfuzz_pad_ = '" .. PAD:gsub("p", "q") .. "'\n" }
local HOSTS = { "docker.io", "127.0.0.1:5000", "registry.example" }
local OPTS = { {}, { plain_http = true, skip_verify = true, ca = "/etc/ca.pem", cert = "/c.pem", key = "/k.pem" } }

local function is_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min
    if c < 0x80 then len, min = 1, 0
    elseif c >= 0xc2 and c <= 0xdf then len, min = 2, 0x80
    elseif c >= 0xe0 and c <= 0xef then len, min = 3, 0x800
    elseif c >= 0xf0 and c <= 0xf4 then len, min = 4, 0x10000
    else return false end
    local cp = len == 1 and c or c % (2 ^ (7 - len))
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if not b or b < 0x80 or b > 0xbf then return false end
      cp = cp * 64 + b % 64
    end
    if cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then return false end
    i = i + len
  end
  return true
end

local function check_error(what, err, sym)
  if not (errors.is_error(err) and type(err.msg) == "string" and type(err.sym) == "string") then
    error(("%s: returned nil and %s instead of an error value"):format(what, tostring(err)), 2)
  end
  if sym and err.sym ~= sym then error(("%s: error of sym %s, not %s"):format(what, err.sym, sym), 2) end
end

local function check_doc(doc, order, utf8)
  local seen = {}
  local function walk(t, path)
    if seen[t] then error("parse_toml: table " .. path .. " is in the document twice") end
    seen[t] = true
    local keys = order[t]
    if keys == nil then
      local n = #t
      for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
          error(("parse_toml: %s has the key %s and no order"):format(path, tostring(k)))
        end
      end
    else
      local listed = {}
      for _, k in ipairs(keys) do
        if listed[k] then error(("parse_toml: order of %s lists %q twice"):format(path, tostring(k))) end
        if t[k] == nil then error(("parse_toml: order of %s lists %q, not in it"):format(path, tostring(k))) end
        listed[k] = true
      end
      for k in pairs(t) do
        if type(k) ~= "string" then error(("parse_toml: %s has a key of type %s"):format(path, type(k))) end
        if not listed[k] then error(("parse_toml: %s has %q, not in its order"):format(path, k)) end
        if utf8 and not is_utf8(k) then error(("parse_toml: key %q of %s is not UTF-8"):format(k, path)) end
      end
    end
    for k, v in pairs(t) do
      local p = path .. "." .. tostring(k)
      local ty = type(v)
      if ty == "table" then
        walk(v, p)
      elseif ty == "string" then
        if utf8 and not is_utf8(v) then error(("parse_toml: %s = %q is not UTF-8"):format(p, v)) end
      elseif ty == "number" then
        if v ~= math.floor(v) then error(("parse_toml: %s = %s is not an integer"):format(p, tostring(v))) end
      elseif ty ~= "boolean" then
        error(("parse_toml: %s is a %s"):format(p, ty))
      end
    end
  end
  walk(doc, "(root)")
end

local function parse(text)
  local doc, order = hosts.parse_toml(text, NAME)
  if doc == nil then
    check_error("parse_toml", order, "INVALID")
    local lines = select(2, text:gsub("\n", "")) + 1
    local line = order.msg:match("^" .. NAME:gsub("%p", "%%%0") .. " line (%d+): ")
    if not line then error("parse_toml: the message names no line: " .. order.msg) end
    if tonumber(line) > lines then
      error(("parse_toml: line %s of a text of %d lines"):format(line, lines))
    end
  elseif type(doc) ~= "table" or type(order) ~= "table" then
    error("parse_toml: returned " .. type(doc) .. ", " .. type(order))
  end
  return doc, order
end

-- KiB the parse of text allocates (the collector stopped meanwhile, so all of it counts).
local function allocated(text)
  collectgarbage("stop")
  local before = collectgarbage("count")
  hosts.parse_toml(text, NAME)
  local kib = collectgarbage("count") - before
  collectgarbage("restart")
  return kib
end

local function check_host(what, h)
  if type(h) ~= "table" then error(what .. ": not a table") end
  if h.scheme ~= "http" and h.scheme ~= "https" then error(what .. ": scheme " .. tostring(h.scheme)) end
  if type(h.host) ~= "string" or h.host == "" then error(what .. ": no host") end
  if type(h.path) ~= "string" or h.path:sub(1, 1) ~= "/" then error(what .. ": path " .. tostring(h.path)) end
  if type(h.capabilities) ~= "table" then error(what .. ": no capabilities") end
  for c, v in pairs(h.capabilities) do
    if (c ~= "pull" and c ~= "resolve" and c ~= "push") or v ~= true then
      error(("%s: capability %s = %s"):format(what, tostring(c), tostring(v)))
    end
  end
  for _, k in ipairs({ "ca", "cert", "key" }) do
    if h[k] ~= nil and (type(h[k]) ~= "string" or h[k] == "") then error(what .. ": " .. k .. " is not a path") end
  end
  if type(h.insecure) ~= "boolean" then error(what .. ": insecure is a " .. type(h.insecure)) end
  if type(h.header) ~= "table" then error(what .. ": no header list") end
  for i, l in ipairs(h.header) do
    if type(l) ~= "string" or not l:match("^[^%s%c:]+: ") or l:find("[%z\r\n]") then
      error(("%s: header line %d %q"):format(what, i, tostring(l)))
    end
  end
end

return function(data, dir)
  dir = dir or os.getenv("CTRLUA_FUZZ_HOSTS_DIR")
  if not dir then error("the hosts directory: CTRLUA_FUZZ_HOSTS_DIR or the second argument") end
  local doc, order = parse(data)
  if doc then check_doc(doc, order, is_utf8(data)) end

  -- (fuzz_coverage is the harness's; the regression spec runs this driver without it)
  local coverage = fuzz_coverage or function() end -- luacheck: ignore
  coverage(false)
  if doc then
    -- the lesser of two (a growth of the string table in one of them is no finding), with
    -- pads of their own (the copies a quadratic parser makes of one would be interned strings
    -- of the other)
    local extra = math.min(allocated(data .. PAD_LINES[1]), allocated(data .. PAD_LINES[2])) - allocated(data)
    if extra > 1.5 * #PAD / 1024 then
      error(("parse_toml: %d KiB more for a line of %d KiB at the end"):format(extra, #PAD / 1024))
    end
  end
  local ok, msg = core.write_file(dir .. "/_default/hosts.toml", data, { mode = 384, sync = false })
  if not ok then error("write hosts.toml: " .. tostring(msg)) end
  coverage(true)

  local want -- the [host] tables of the file, when the file is read
  if doc then
    local t = type(doc.host) == "table" and doc.host or {}
    want = #(order[t] or {}) + 1
  end
  for _, host in ipairs(HOSTS) do
    for _, o in ipairs(OPTS) do
      local opts = { hosts_dir = dir }
      for k, v in pairs(o) do opts[k] = v end
      local list, err = hosts.for_host(host, opts)
      if list == nil then
        check_error("for_host", err)
        if doc == nil and err.sym ~= "INVALID" then error("for_host: a file parse_toml refuses is not INVALID") end
      else
        if doc == nil then error("for_host: a list from a file parse_toml refuses") end
        if type(list) ~= "table" then error("for_host: returned a " .. type(list)) end
        if #list ~= want then
          error(("for_host %s: %d hosts for %d [host] tables"):format(host, #list, want - 1))
        end
        for i, h in ipairs(list) do check_host(("for_host %s: host %d"):format(host, i), h) end
      end
    end
  end
end
