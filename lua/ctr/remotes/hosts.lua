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

--- Parse the TOML that hosts.toml uses: tables (`[a."b".c]`), key = value with bare, quoted
-- and dotted keys, basic and literal strings, booleans, integers, arrays (over several lines)
-- and inline tables.  Anything else is an error naming its line.
-- @return the document and, under `order`, each table path's keys in the order they came; or
-- nil, err (sym INVALID)
function M.parse_toml(text, name)
  name = name or "hosts.toml"
  local pos, line, n = 1, 1, #text
  local root = {}
  local order = setmetatable({}, { __mode = "k" })
  local function fail(msg)
    return error({ toml = true, msg = ("%s line %d: %s"):format(name, line, msg) }, 0)
  end
  local function peek() return text:sub(pos, pos) end
  local function skip_ws(newlines)
    while pos <= n do
      local c = peek()
      if c == " " or c == "\t" or c == "\r" then
        pos = pos + 1
      elseif c == "#" then
        while pos <= n and peek() ~= "\n" do pos = pos + 1 end
      elseif c == "\n" and newlines then
        pos = pos + 1
        line = line + 1
      else
        break
      end
    end
  end
  local function basic_string()
    pos = pos + 1
    if text:sub(pos, pos + 1) == '""' then fail("multi-line strings are not supported") end
    local buf = {}
    while true do
      local c = peek()
      if c == "" or c == "\n" then fail("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local map = { n = "\n", t = "\t", r = "\r", ['"'] = '"', ["\\"] = "\\", b = "\b", f = "\f" }
        if map[e] then
          buf[#buf + 1] = map[e]
          pos = pos + 2
        elseif e == "u" or e == "U" then
          local len = e == "u" and 4 or 8
          local hex = text:sub(pos + 2, pos + 1 + len)
          if not hex:match("^" .. ("%x"):rep(len) .. "$") then fail("bad \\" .. e .. " escape") end
          local cp = tonumber(hex, 16)
          -- a Unicode scalar value, as TOML has it: string.char raises beyond U+1FFFFF, and
          -- surrogates or code points past U+10FFFF would be no UTF-8
          if cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then
            fail("bad \\" .. e .. " escape: not a Unicode scalar value")
          end
          if cp < 128 then buf[#buf + 1] = string.char(cp)
          elseif cp < 2048 then buf[#buf + 1] = string.char(192 + math.floor(cp / 64), 128 + cp % 64)
          elseif cp < 65536 then buf[#buf + 1] = string.char(224 + math.floor(cp / 4096), 128 + math.floor(cp / 64) % 64, 128 + cp % 64)
          else buf[#buf + 1] = string.char(240 + math.floor(cp / 262144), 128 + math.floor(cp / 4096) % 64, 128 + math.floor(cp / 64) % 64, 128 + cp % 64) end
          pos = pos + 2 + len
        else
          fail("unknown escape \\" .. e)
        end
      else
        buf[#buf + 1] = c
        pos = pos + 1
      end
    end
    return table.concat(buf)
  end
  local function literal_string()
    if text:sub(pos, pos + 2) == "'''" then fail("multi-line strings are not supported") end
    local e = text:find("'", pos + 1, true)
    local nl = text:find("\n", pos + 1, true)
    if not e or (nl and nl < e) then fail("unterminated string") end
    local s = text:sub(pos + 1, e - 1)
    pos = e + 1
    return s
  end
  local function key_part()
    local c = peek()
    if c == '"' then return basic_string() end
    if c == "'" then return literal_string() end
    local k = text:match("^[%w_%-]+", pos)
    if not k then fail(("expected a key, found %q"):format(text:sub(pos, pos + 10))) end
    pos = pos + #k
    return k
  end
  local function dotted_key()
    local parts = { key_part() }
    while true do
      skip_ws(false)
      if peek() ~= "." then break end
      pos = pos + 1
      skip_ws(false)
      parts[#parts + 1] = key_part()
    end
    return parts
  end
  local value
  local function set(t, parts, v)
    for i = 1, #parts - 1 do
      local k = parts[i]
      if t[k] == nil then
        t[k] = {}
        order[t] = order[t] or {}
        table.insert(order[t], k)
      end
      if type(t[k]) ~= "table" then fail(("key %q is not a table"):format(k)) end
      t = t[k]
    end
    local k = parts[#parts]
    if t[k] ~= nil then fail(("key %q is defined twice"):format(k)) end
    t[k] = v
    order[t] = order[t] or {}
    table.insert(order[t], k)
  end
  -- arrays and inline tables in one another: each level is a Lua call, and LuaJIT's stack
  -- overflows (an error raised, not returned) some thousands of levels down
  local depth = 0
  function value()
    local c = peek()
    if c == "[" or c == "{" then
      depth = depth + 1
      if depth > 100 then fail("arrays and inline tables nested more than 100 deep") end
    end
    if c == '"' then return basic_string() end
    if c == "'" then return literal_string() end
    if c == "[" then
      pos = pos + 1
      local arr = {}
      while true do
        skip_ws(true)
        if peek() == "]" then pos = pos + 1 break end
        arr[#arr + 1] = value()
        skip_ws(true)
        if peek() == "," then
          pos = pos + 1
        elseif peek() == "]" then
          pos = pos + 1
          break
        else
          fail("expected , or ] in an array")
        end
      end
      depth = depth - 1
      return arr
    end
    if c == "{" then
      pos = pos + 1
      local t = {}
      skip_ws(false)
      if peek() == "}" then pos = pos + 1 depth = depth - 1 return t end
      while true do
        skip_ws(false)
        local parts = dotted_key()
        skip_ws(false)
        if peek() ~= "=" then fail("expected = in an inline table") end
        pos = pos + 1
        skip_ws(false)
        set(t, parts, value())
        skip_ws(false)
        if peek() == "," then pos = pos + 1
        elseif peek() == "}" then pos = pos + 1 break
        else fail("expected , or } in an inline table") end
      end
      depth = depth - 1
      return t
    end
    -- (at the end of the text: a sub of one more byte than the word, not a copy of the rest
    -- of the text for every value, which made a long file quadratic)
    if text:match("^true[%s,%]}#]", pos) or text:sub(pos, pos + 4) == "true" then pos = pos + 4 return true end
    if text:match("^false[%s,%]}#]", pos) or text:sub(pos, pos + 5) == "false" then pos = pos + 5 return false end
    local num = text:match("^[+-]?%d[%d_]*", pos)
    if num and not text:match("^[%w%.:%-]", pos + #num) then
      pos = pos + #num
      return tonumber((num:gsub("_", "")))
    end
    fail(("cannot read the value %q (strings, booleans, integers, arrays and inline tables only)")
      :format((text:match("^[^\n]*", pos) or ""):sub(1, 40)))
  end
  local ok, err = pcall(function()
    local cur = root
    while true do
      skip_ws(true)
      if pos > n then break end
      if peek() == "[" then
        if text:sub(pos, pos + 1) == "[[" then fail("arrays of tables are not supported") end
        pos = pos + 1
        skip_ws(false)
        local parts = dotted_key()
        skip_ws(false)
        if peek() ~= "]" then fail("expected ] after a table name") end
        pos = pos + 1
        cur = root
        for _, k in ipairs(parts) do
          if cur[k] == nil then
            cur[k] = {}
            order[cur] = order[cur] or {}
            table.insert(order[cur], k)
          end
          if type(cur[k]) ~= "table" then fail(("%q is not a table"):format(k)) end
          cur = cur[k]
        end
      else
        local parts = dotted_key()
        skip_ws(false)
        if peek() ~= "=" then fail("expected = after a key") end
        pos = pos + 1
        skip_ws(false)
        set(cur, parts, value())
      end
      skip_ws(false)
      if pos <= n and peek() ~= "\n" then
        fail(("unexpected %q after a value"):format(text:match("^[^\n]*", pos):sub(1, 20)))
      end
    end
  end)
  if not ok then
    if type(err) == "table" and err.toml then return nil, errors.invalid("%s", err.msg) end
    error(err, 0)
  end
  return root, order
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
