--- Registry hosts, as containerd's remotes/docker/config: for a registry host (`docker.io`,
-- `127.0.0.1:5000`), the list of hosts to try in order, each with its capabilities (pull,
-- resolve, push), TLS settings and extra headers, read from `<dir>/<host>/hosts.toml`:
--
--     server = "https://registry.example.com"
--     [host."http://127.0.0.1:5001"]
--       capabilities = ["pull", "resolve"]
--       skip_verify = true
--       ca = "ca.crt"                      # relative to the host's directory
--       client = [["client.cert", "client.key"]]
--       override_path = false              # true: the URL's path is used as is (no /v2)
--       [host."http://127.0.0.1:5001".header]
--         x-mirror = "yes"
--
-- The [host] entries come first, in the file's order, then the server.  A directory without
-- hosts.toml may hold docker's certs.d files (`*.crt` CAs, `*.cert` + `*.key` pairs).  The
-- directory of a host with a port is `host_port_` first, then `host:port`, then `_default`.
-- Default directories: /etc/ctrlua/certs.d, then /etc/containerd/certs.d.
-- @module ctr.remotes.hosts
local core = require("ctr.core")
local errors = require("ctr.errors")

local M = {}

M.DEFAULT_DIRS = { "/etc/ctrlua/certs.d", "/etc/containerd/certs.d" }

-- ---------------------------------------------------------------- a TOML subset

-- The parser's state: the text, where it is (pos, line), the document's key order and how deep
-- the values nest.  A syntax error is raised as a table {toml = true, msg} that parse_toml
-- turns into a returned error; anything else raised is a bug and propagates.
local function toml_fail(P, msg)
  return error({ toml = true, msg = ("%s line %d: %s"):format(P.name, P.line, msg) }, 0)
end

local function toml_peek(P) return P.text:sub(P.pos, P.pos) end

local function toml_skip_ws(P, newlines)
  local n = P.n
  while P.pos <= n do
    local c = toml_peek(P)
    if c == " " or c == "\t" or c == "\r" then
      P.pos = P.pos + 1
    elseif c == "#" then
      while P.pos <= n and toml_peek(P) ~= "\n" do P.pos = P.pos + 1 end
    elseif c == "\n" and newlines then
      P.pos = P.pos + 1
      P.line = P.line + 1
    else
      break
    end
  end
end

local TOML_ESCAPES = { n = "\n", t = "\t", r = "\r", ['"'] = '"', ["\\"] = "\\", b = "\b", f = "\f" }

-- A \u or \U escape at P.pos (the backslash), as UTF-8.
local function toml_unicode_escape(P, e)
  local text, pos = P.text, P.pos
  local len = e == "u" and 4 or 8
  local hex = text:sub(pos + 2, pos + 1 + len)
  if not hex:match("^" .. ("%x"):rep(len) .. "$") then toml_fail(P, "bad \\" .. e .. " escape") end
  local cp = tonumber(hex, 16)
  -- a Unicode scalar value, as TOML has it: string.char raises beyond U+1FFFFF, and
  -- surrogates or code points past U+10FFFF would be no UTF-8
  if cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then
    toml_fail(P, "bad \\" .. e .. " escape: not a Unicode scalar value")
  end
  P.pos = pos + 2 + len
  if cp < 128 then return string.char(cp)
  elseif cp < 2048 then return string.char(192 + math.floor(cp / 64), 128 + cp % 64)
  elseif cp < 65536 then return string.char(224 + math.floor(cp / 4096), 128 + math.floor(cp / 64) % 64, 128 + cp % 64)
  else return string.char(240 + math.floor(cp / 262144), 128 + math.floor(cp / 4096) % 64, 128 + math.floor(cp / 64) % 64, 128 + cp % 64) end
end

local function toml_basic_string(P)
  local text = P.text
  P.pos = P.pos + 1
  if text:sub(P.pos, P.pos + 1) == '""' then toml_fail(P, "multi-line strings are not supported") end
  local buf = {}
  while true do
    local c = toml_peek(P)
    if c == "" or c == "\n" then toml_fail(P, "unterminated string") end
    if c == '"' then P.pos = P.pos + 1 break end
    if c == "\\" then
      local e = text:sub(P.pos + 1, P.pos + 1)
      if TOML_ESCAPES[e] then
        buf[#buf + 1] = TOML_ESCAPES[e]
        P.pos = P.pos + 2
      elseif e == "u" or e == "U" then
        buf[#buf + 1] = toml_unicode_escape(P, e)
      else
        toml_fail(P, "unknown escape \\" .. e)
      end
    else
      buf[#buf + 1] = c
      P.pos = P.pos + 1
    end
  end
  return table.concat(buf)
end

local function toml_literal_string(P)
  local text, pos = P.text, P.pos
  if text:sub(pos, pos + 2) == "'''" then toml_fail(P, "multi-line strings are not supported") end
  local e = text:find("'", pos + 1, true)
  local nl = text:find("\n", pos + 1, true)
  if not e or (nl and nl < e) then toml_fail(P, "unterminated string") end
  local s = text:sub(pos + 1, e - 1)
  P.pos = e + 1
  return s
end

-- ---- keys

local function toml_key_part(P)
  local c = toml_peek(P)
  if c == '"' then return toml_basic_string(P) end
  if c == "'" then return toml_literal_string(P) end
  local k = P.text:match("^[%w_%-]+", P.pos)
  if not k then toml_fail(P, ("expected a key, found %q"):format(P.text:sub(P.pos, P.pos + 10))) end
  P.pos = P.pos + #k
  return k
end

local function toml_dotted_key(P)
  local parts = { toml_key_part(P) }
  while true do
    toml_skip_ws(P, false)
    if toml_peek(P) ~= "." then break end
    P.pos = P.pos + 1
    toml_skip_ws(P, false)
    parts[#parts + 1] = toml_key_part(P)
  end
  return parts
end

-- t[k] in the document's key order
local function toml_note_key(P, t, k)
  local order = P.order
  order[t] = order[t] or {}
  table.insert(order[t], k)
end

-- t[parts...] = v, the tables on the way made as needed
local function toml_set(P, t, parts, v)
  for i = 1, #parts - 1 do
    local k = parts[i]
    if t[k] == nil then
      t[k] = {}
      toml_note_key(P, t, k)
    end
    if type(t[k]) ~= "table" then toml_fail(P, ("key %q is not a table"):format(k)) end
    t = t[k]
  end
  local k = parts[#parts]
  if t[k] ~= nil then toml_fail(P, ("key %q is defined twice"):format(k)) end
  t[k] = v
  toml_note_key(P, t, k)
end

-- ---- values

local toml_value

local function toml_array(P)
  P.pos = P.pos + 1
  local arr = {}
  while true do
    toml_skip_ws(P, true)
    if toml_peek(P) == "]" then P.pos = P.pos + 1 break end
    arr[#arr + 1] = toml_value(P)
    toml_skip_ws(P, true)
    if toml_peek(P) == "," then
      P.pos = P.pos + 1
    elseif toml_peek(P) == "]" then
      P.pos = P.pos + 1
      break
    else
      toml_fail(P, "expected , or ] in an array")
    end
  end
  P.depth = P.depth - 1
  return arr
end

local function toml_inline_table(P)
  P.pos = P.pos + 1
  local t = {}
  toml_skip_ws(P, false)
  if toml_peek(P) == "}" then P.pos = P.pos + 1 P.depth = P.depth - 1 return t end
  while true do
    toml_skip_ws(P, false)
    local parts = toml_dotted_key(P)
    toml_skip_ws(P, false)
    if toml_peek(P) ~= "=" then toml_fail(P, "expected = in an inline table") end
    P.pos = P.pos + 1
    toml_skip_ws(P, false)
    toml_set(P, t, parts, toml_value(P))
    toml_skip_ws(P, false)
    if toml_peek(P) == "," then P.pos = P.pos + 1
    elseif toml_peek(P) == "}" then P.pos = P.pos + 1 break
    else toml_fail(P, "expected , or } in an inline table") end
  end
  P.depth = P.depth - 1
  return t
end

-- a boolean or an integer
local function toml_scalar(P)
  local text, pos = P.text, P.pos
  -- (at the end of the text: a sub of one more byte than the word, not a copy of the rest
  -- of the text for every value, which made a long file quadratic)
  if text:match("^true[%s,%]}#]", pos) or text:sub(pos, pos + 4) == "true" then P.pos = pos + 4 return true end
  if text:match("^false[%s,%]}#]", pos) or text:sub(pos, pos + 5) == "false" then P.pos = pos + 5 return false end
  local num = text:match("^[+-]?%d[%d_]*", pos)
  if num and not text:match("^[%w%.:%-]", pos + #num) then
    P.pos = pos + #num
    return tonumber((num:gsub("_", "")))
  end
  toml_fail(P, ("cannot read the value %q (strings, booleans, integers, arrays and inline tables only)")
    :format((text:match("^[^\n]*", pos) or ""):sub(1, 40)))
end

-- arrays and inline tables in one another: each level is a few Lua calls, and LuaJIT's stack
-- overflows (an error raised, not returned) some thousands of levels down
function toml_value(P)
  local c = toml_peek(P)
  if c == "[" or c == "{" then
    P.depth = P.depth + 1
    if P.depth > 100 then toml_fail(P, "arrays and inline tables nested more than 100 deep") end
  end
  if c == '"' then return toml_basic_string(P) end
  if c == "'" then return toml_literal_string(P) end
  if c == "[" then return toml_array(P) end
  if c == "{" then return toml_inline_table(P) end
  return toml_scalar(P)
end

-- ---- the document

-- `[a.b]`: the table it names, made as needed
local function toml_table_header(P, root)
  if P.text:sub(P.pos, P.pos + 1) == "[[" then toml_fail(P, "arrays of tables are not supported") end
  P.pos = P.pos + 1
  toml_skip_ws(P, false)
  local parts = toml_dotted_key(P)
  toml_skip_ws(P, false)
  if toml_peek(P) ~= "]" then toml_fail(P, "expected ] after a table name") end
  P.pos = P.pos + 1
  local cur = root
  for _, k in ipairs(parts) do
    if cur[k] == nil then
      cur[k] = {}
      toml_note_key(P, cur, k)
    end
    if type(cur[k]) ~= "table" then toml_fail(P, ("%q is not a table"):format(k)) end
    cur = cur[k]
  end
  return cur
end

-- `key = value` into the current table
local function toml_key_value(P, cur)
  local parts = toml_dotted_key(P)
  toml_skip_ws(P, false)
  if toml_peek(P) ~= "=" then toml_fail(P, "expected = after a key") end
  P.pos = P.pos + 1
  toml_skip_ws(P, false)
  toml_set(P, cur, parts, toml_value(P))
end

local function toml_document(P, root)
  local cur = root
  while true do
    toml_skip_ws(P, true)
    if P.pos > P.n then break end
    if toml_peek(P) == "[" then
      cur = toml_table_header(P, root)
    else
      toml_key_value(P, cur)
    end
    toml_skip_ws(P, false)
    if P.pos <= P.n and toml_peek(P) ~= "\n" then
      toml_fail(P, ("unexpected %q after a value"):format(P.text:match("^[^\n]*", P.pos):sub(1, 20)))
    end
  end
end

--- Parse the TOML that hosts.toml uses: tables (`[a."b".c]`), key = value with bare, quoted
-- and dotted keys, basic and literal strings, booleans, integers, arrays (over several lines)
-- and inline tables.  Anything else is an error naming its line.
-- @return the document and, under `order`, each table path's keys in the order they came; or
-- nil, err (sym INVALID)
function M.parse_toml(text, name)
  local P = { text = text, name = name or "hosts.toml", pos = 1, line = 1, n = #text, depth = 0,
    order = setmetatable({}, { __mode = "k" }) }
  local root = {}
  local ok, err = pcall(toml_document, P, root)
  if not ok then
    if type(err) == "table" and err.toml then return nil, errors.invalid("%s", err.msg) end
    error(err, 0)
  end
  return root, P.order
end

-- ---------------------------------------------------------------- hosts

local CAPS = { pull = true, resolve = true, push = true }

local function abs(dir, p)
  if type(p) ~= "string" then return nil end
  if p:sub(1, 1) == "/" then return p end
  return dir .. "/" .. p
end

--- The directory names a host's configuration may have, in the order they are tried.
function M.host_dirs(host)
  local out = {}
  local h, port = host:match("^(.*):(%d+)$")
  if h then out[#out + 1] = h .. "_" .. port .. "_" end
  out[#out + 1] = host
  out[#out + 1] = "_default"
  return out
end

local function parse_url(u)
  local scheme, rest = u:match("^(https?)://(.+)$")
  if not scheme then
    if u:match("^%a[%w+.-]*://") then return nil end
    scheme, rest = "https", u
  end
  local hostport, path = rest:match("^([^/]+)(.*)$")
  return scheme, hostport, path
end

-- One host's settings from a table of hosts.toml (or the top level).
local function host_entry(t, url, dir, what)
  local scheme, hostport, path = parse_url(url)
  if not scheme then return nil, errors.invalid("%s: %q: only http and https hosts", what, url) end
  if not hostport then return nil, errors.invalid("%s: %q: no host", what, url) end
  local e = { scheme = scheme, host = hostport, header = {} }
  if t.override_path then
    e.path = path ~= "" and path or "/v2"
  else
    path = (path or ""):gsub("/+$", "")
    e.path = path:match("/v2$") and path or (path .. "/v2")
  end
  if t.capabilities ~= nil then
    if type(t.capabilities) ~= "table" then return nil, errors.invalid("%s: capabilities: expected a list", what) end
    e.capabilities = {}
    for _, c in ipairs(t.capabilities) do
      if not CAPS[c] then return nil, errors.invalid("%s: unknown capability %q", what, tostring(c)) end
      e.capabilities[c] = true
    end
  else
    e.capabilities = { pull = true, resolve = true, push = true }
  end
  local ca = t.ca
  if type(ca) == "table" then ca = ca[1] end
  if ca ~= nil and type(ca) ~= "string" then return nil, errors.invalid("%s: ca: expected a path", what) end
  e.ca = abs(dir, ca)
  local client = t.client
  if type(client) == "string" then
    e.cert = abs(dir, client)
  elseif type(client) == "table" then
    local pair = type(client[1]) == "table" and client[1] or client
    e.cert, e.key = abs(dir, pair[1]), abs(dir, pair[2])
  elseif client ~= nil then
    return nil, errors.invalid("%s: client: expected a path or a [cert, key] pair", what)
  end
  if t.skip_verify ~= nil then
    if type(t.skip_verify) ~= "boolean" then return nil, errors.invalid("%s: skip_verify: expected a boolean", what) end
    e.insecure = t.skip_verify
  end
  if t.header ~= nil then
    if type(t.header) ~= "table" then return nil, errors.invalid("%s: header: expected a table", what) end
    for k, v in pairs(t.header) do
      local vals = type(v) == "table" and v or { v }
      for _, one in ipairs(vals) do
        -- (a name of blanks, controls or none and a NUL make no header line; a list under
        -- header has number keys)
        if type(one) ~= "string" or one:find("[%z\r\n]")
          or type(k) ~= "string" or not k:match("^[^%s%c:]+$") then
          return nil, errors.invalid("%s: header %q: expected a string", what, tostring(k))
        end
        e.header[#e.header + 1] = k .. ": " .. one
      end
    end
    table.sort(e.header)
  end
  return e
end

-- docker's certs.d layout: *.crt are CAs, NAME.cert with NAME.key a client pair.
local function certs_d(dir)
  local files = core.listdir(dir) or {}
  table.sort(files)
  local tls = {}
  for _, f in ipairs(files) do
    if f:match("%.crt$") and not tls.ca then tls.ca = dir .. "/" .. f end
    local base = f:match("^(.*)%.cert$")
    if base and core.stat(dir .. "/" .. base .. ".key") and not tls.cert then
      tls.cert, tls.key = dir .. "/" .. f, dir .. "/" .. base .. ".key"
    end
  end
  return tls
end

local function default_server(host, scheme)
  if host == "docker.io" then return (scheme or "https") .. "://registry-1.docker.io" end
  return (scheme or "https") .. "://" .. host
end

--- The hosts to try for a registry host.
-- @tparam string host the reference's domain ("docker.io", "127.0.0.1:5000")
-- @tparam[opt] table opts `hosts_dir` (a directory; default the DEFAULT_DIRS), `plain_http`
-- (http for the default server), `skip_verify`, `ca`, `cert`, `key` (for every host unless
-- its hosts.toml says otherwise)
-- @return a list of `{scheme=, host=, path=, capabilities={pull=,resolve=,push=}, ca=, cert=,
-- key=, insecure=, header={lines}}`, or nil, err
function M.for_host(host, opts)
  opts = opts or {}
  local roots = opts.hosts_dir and opts.hosts_dir ~= "" and { opts.hosts_dir } or M.DEFAULT_DIRS
  local dir
  for _, root in ipairs(roots) do
    for _, d in ipairs(M.host_dirs(host)) do
      local p = root .. "/" .. d
      local st = core.stat(p)
      if st and st.type == "directory" then dir = p break end
    end
    if dir then break end
  end
  local list = {}
  local server_t, server_url = {}, nil
  if dir then
    local file = dir .. "/hosts.toml"
    local text = core.read_file(file, 1024 * 1024)
    if text then
      local doc, order = M.parse_toml(text, file)
      if not doc then return nil, order end
      if doc.server ~= nil and type(doc.server) ~= "string" then
        return nil, errors.invalid("%s: server: expected a URL", file)
      end
      server_url = doc.server
      server_t = doc
      local hosts = type(doc.host) == "table" and doc.host or {}
      for _, url in ipairs(order[hosts] or {}) do
        if type(hosts[url]) ~= "table" then return nil, errors.invalid("%s: host %q: expected a table", file, url) end
        local e, err = host_entry(hosts[url], url, dir, file .. ": host " .. url)
        if not e then return nil, err end
        list[#list + 1] = e
      end
    else
      server_t = certs_d(dir)
      server_t.cert_files = true
    end
  end
  local e, err = host_entry(server_t, server_url or default_server(host, opts.plain_http and "http" or nil),
    dir or ".", "server of " .. host)
  if not e then return nil, err end
  if server_t.cert_files then e.ca, e.cert, e.key = server_t.ca, server_t.cert, server_t.key end
  if host == "docker.io" and not server_url then e.path = "/v2" end
  list[#list + 1] = e
  for _, h in ipairs(list) do
    if h.insecure == nil then h.insecure = opts.skip_verify or false end
    h.ca = h.ca or (opts.ca ~= "" and opts.ca or nil)
    h.cert = h.cert or (opts.cert ~= "" and opts.cert or nil)
    h.key = h.key or (opts.key ~= "" and opts.key or nil)
  end
  return list
end

return M
