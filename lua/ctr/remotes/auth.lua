--- Registry authorization, as containerd's remotes/docker authorizer: the challenge of a 401
-- (`Www-Authenticate: Bearer realm=…,service=…,scope=…` or `Basic realm=…`) decides; Bearer
-- tokens are fetched from the realm (OAuth2 POST with the credentials or a refresh token,
-- falling back to GET with Basic auth, or anonymous), cached per host, service and scope until
-- they expire, and a refresh token the server hands out is used for the next fetch.
--
-- Credentials come, in order, from `-u user[:password]`, then the auth files: REGISTRY_AUTH_FILE,
-- $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json (podman's), then
-- $DOCKER_CONFIG/config.json or ~/.docker/config.json (docker's), each with `auths` (`auth`,
-- `username`/`password`, `identitytoken`), `credHelpers` and `credsStore`: a
-- docker-credential-NAME program run with an argv and pipes (no shell), the server on its
-- stdin, the secret on its stdout.  No secret is ever put in an argv, an environment variable,
-- an error or a log line.
-- @module ctr.remotes.auth
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local rhttp = require("ctr.remotes.http")

local M = {}

-- ---------------------------------------------------------------- base64

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = { math.floor(n / 262144) % 64, math.floor(n / 4096) % 64, math.floor(n / 64) % 64, n % 64 }
    out[#out + 1] = B64:sub(q[1] + 1, q[1] + 1) .. B64:sub(q[2] + 1, q[2] + 1) ..
      (b and B64:sub(q[3] + 1, q[3] + 1) or "=") .. (c and B64:sub(q[4] + 1, q[4] + 1) or "=")
  end
  return table.concat(out)
end

function M.base64_decode(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("[%s=]", "")
  local out, bits, n = {}, 0, 0
  for ch in s:gmatch(".") do
    local v = B64:find(ch, 1, true)
    if not v then return nil end
    bits = bits * 64 + (v - 1)
    n = n + 6
    if n >= 8 then
      n = n - 8
      local byte = math.floor(bits / 2 ^ n) % 256
      out[#out + 1] = string.char(byte)
      bits = bits % 2 ^ n
    end
  end
  return table.concat(out)
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.urlencode = urlencode

-- ---------------------------------------------------------------- challenges

--- Parse Www-Authenticate values: a list of `{scheme = "bearer"|"basic"|..., params = {k = v}}`.
-- Quoted values may hold commas and escaped quotes (scope="repository:a/b:pull,push").
function M.parse_challenges(values)
  local out = {}
  for _, v in ipairs(values or {}) do
    local i, n = 1, #v
    local cur
    while i <= n do
      local s = v:match("^[%s,]*()", i)
      i = s
      if i > n then break end
      local tok, after = v:match("^([!#$%%&'*+%-%.^_`|~%w]+)()", i)
      if not tok then break end
      local eq = v:match("^%s*=()", after)
      if eq and cur then
        -- a parameter of the current challenge
        local j = v:match("^%s*()", eq)
        local val
        if v:sub(j, j) == '"' then
          local buf, k = {}, j + 1
          while k <= n do
            local ch = v:sub(k, k)
            if ch == "\\" then
              buf[#buf + 1] = v:sub(k + 1, k + 1)
              k = k + 2
            elseif ch == '"' then
              k = k + 1
              break
            else
              buf[#buf + 1] = ch
              k = k + 1
            end
          end
          val, i = table.concat(buf), k
        else
          val, i = v:match("^([^,%s]*)()", j)
        end
        cur.params[tok:lower()] = val
      else
        cur = { scheme = tok:lower(), params = {} }
        out[#out + 1] = cur
        i = after
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------- credentials

local function read_json(path)
  if not path or path == "" then return nil end
  local data = core.read_file(path, 4 * 1024 * 1024)
  if not data then return nil end
  local doc = core.json_decode(data)
  return type(doc) == "table" and doc or nil
end

local function home() return core.getenv("HOME") or "/root" end

--- The auth files in the order they are read: a list of paths (they may not exist).
function M.auth_files()
  local out = {}
  local raf = core.getenv("REGISTRY_AUTH_FILE")
  if raf and raf ~= "" then out[#out + 1] = raf end
  local xdg = core.getenv("XDG_RUNTIME_DIR")
  if xdg and xdg ~= "" then out[#out + 1] = xdg .. "/containers/auth.json" end
  out[#out + 1] = home() .. "/.config/containers/auth.json"
  out[#out + 1] = M.docker_config_path()
  return out
end

--- docker's config.json: $DOCKER_CONFIG/config.json, or ~/.docker/config.json.
function M.docker_config_path()
  local dc = core.getenv("DOCKER_CONFIG")
  if dc and dc ~= "" then return dc .. "/config.json" end
  return home() .. "/.docker/config.json"
end

--- The file `login` writes: REGISTRY_AUTH_FILE when set, else docker's config.json.
function M.login_file()
  local raf = core.getenv("REGISTRY_AUTH_FILE")
  if raf and raf ~= "" then return raf end
  return M.docker_config_path()
end

local function server_url(host)
  if host == "docker.io" then return "https://index.docker.io/v1/" end
  return host
end

-- The keys an auths entry may have for host (and repository path, most specific first).
local function auth_keys(host, repo)
  local keys = {}
  if repo then
    local parts = {}
    for p in repo:gmatch("[^/]+") do parts[#parts + 1] = p end
    for i = #parts, 1, -1 do keys[#keys + 1] = host .. "/" .. table.concat(parts, "/", 1, i) end
  end
  keys[#keys + 1] = host
  keys[#keys + 1] = "https://" .. host
  keys[#keys + 1] = "http://" .. host
  if host == "docker.io" then
    for _, k in ipairs({ "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io",
      "https://registry-1.docker.io" }) do keys[#keys + 1] = k end
  end
  return keys
end

-- A helper that could not be run: AUTH_HELPER, with the errno of why.
local function helper_err(err, fmt, ...)
  local e = errors.wrap(err, fmt, ...)
  e.sym = "AUTH_HELPER"
  return e
end

--- Ask docker-credential-NAME for host's credentials: {username=, secret=, refresh=} or nil
-- (none stored), or nil, err.
function M.helper_get(name, host)
  if not name:match("^[%w%-_%.]+$") then
    return nil, errors.invalid("credential helper %q: not a helper name", name)
  end
  local out, status = sys.run_capture({ "docker-credential-" .. name, "get" }, server_url(host),
    { cap = 65536, timeout_ms = 30000 })
  if not out then return nil, helper_err(status, "credential helper docker-credential-%s", name) end
  if status ~= 0 then
    if out:find("credentials not found", 1, true) then return nil end
    return nil, errors.new(("credential helper docker-credential-%s get: exit status %d"):format(name, status), 0, "AUTH_HELPER")
  end
  local doc = core.json_decode(out)
  if type(doc) ~= "table" then
    return nil, errors.new(("credential helper docker-credential-%s: malformed answer"):format(name), 0, "AUTH_HELPER")
  end
  if doc.Username == "<token>" then return { refresh = doc.Secret } end
  return { username = doc.Username, secret = doc.Secret }
end

local function helper_run(name, verb, input)
  if not name:match("^[%w%-_%.]+$") then
    return nil, errors.invalid("credential helper %q: not a helper name", name)
  end
  local out, status = sys.run_capture({ "docker-credential-" .. name, verb }, input,
    { cap = 65536, timeout_ms = 30000 })
  if not out then return nil, helper_err(status, "docker-credential-%s %s", name, verb) end
  if status ~= 0 then
    return nil, errors.new(("docker-credential-%s %s: exit status %d"):format(name, verb, status), 0, "AUTH_HELPER")
  end
  return true
end

local function entry_creds(e)
  if type(e) ~= "table" then return nil end
  local c = {}
  if type(e.auth) == "string" and e.auth ~= "" then
    local dec = M.base64_decode(e.auth)
    local u, p = (dec or ""):match("^([^:]*):(.*)$")
    if u then c.username, c.secret = u, p end
  end
  if type(e.username) == "string" and e.username ~= "" then c.username = e.username end
  if type(e.password) == "string" and e.password ~= "" then c.secret = e.password end
  if type(e.identitytoken) == "string" and e.identitytoken ~= "" then c.refresh = e.identitytoken end
  if c.username or c.refresh then return c end
  return nil
end

--- Credentials for host (and repository path repo) from the auth files: a table
-- {username=, secret=, refresh=}, or nil; or nil, err when a helper failed.
function M.from_files(host, repo)
  for _, path in ipairs(M.auth_files()) do
    local doc = read_json(path)
    if doc then
      local helpers = type(doc.credHelpers) == "table" and doc.credHelpers or {}
      if type(helpers[host]) == "string" then return M.helper_get(helpers[host], host) end
      local auths = type(doc.auths) == "table" and doc.auths or {}
      for _, k in ipairs(auth_keys(host, repo)) do
        local c = entry_creds(auths[k])
        if c then return c end
      end
      if type(doc.credsStore) == "string" and doc.credsStore ~= "" then
        local c, err = M.helper_get(doc.credsStore, host)
        if c or err then return c, err end
      end
    end
  end
  return nil
end

--- A credentials function for the resolver: `-u user[:password]` (user) first, then the files.
-- opts.user: "user[:password]"; opts.refresh: a refresh token (--refresh).
function M.credentials(opts)
  opts = opts or {}
  local fixed
  if opts.user and opts.user ~= "" then
    local u, p = opts.user:match("^([^:]*):(.*)$")
    fixed = { username = u or opts.user, secret = p or opts.password }
  end
  if opts.refresh and opts.refresh ~= "" then
    fixed = fixed or {}
    fixed.refresh = opts.refresh
  end
  local cache = {}
  return function(host, repo)
    if fixed then return fixed end
    local key = host .. " " .. (repo or "")
    if cache[key] == nil then
      local c, err = M.from_files(host, repo)
      if err then return nil, err end
      cache[key] = c or false
    end
    return cache[key] or nil
  end
end

-- ---------------------------------------------------------------- login files

local function write_json_0600(path, doc)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then
    local ok, err = sys.mkdir_p(dir, 448)
    if not ok then return nil, err end
  end
  local ok, err = sys.write_file(path, require("ctr.json").encode_indent(doc) .. "\n", { mode = 384 })
  if not ok then return nil, err end
  return true
end

--- Store host's credentials in the login file (or its credential store): true, or nil, err.
function M.store(host, username, secret)
  local path = M.login_file()
  local doc = read_json(path) or {}
  local helpers = type(doc.credHelpers) == "table" and doc.credHelpers or {}
  local helper = helpers[host] or (type(doc.credsStore) == "string" and doc.credsStore ~= "" and doc.credsStore)
  if helper then
    return helper_run(helper, "store", core.json_encode({ ServerURL = server_url(host),
      Username = username, Secret = secret }))
  end
  doc.auths = type(doc.auths) == "table" and doc.auths or {}
  doc.auths[server_url(host)] = { auth = M.base64_encode(username .. ":" .. secret) }
  return write_json_0600(path, doc)
end

--- Remove host's credentials from the login file (or its credential store): true when an
-- entry was removed, false when there was none, or nil, err.
function M.erase(host)
  local path = M.login_file()
  local doc = read_json(path)
  if not doc then return false end
  local helpers = type(doc.credHelpers) == "table" and doc.credHelpers or {}
  local helper = helpers[host] or (type(doc.credsStore) == "string" and doc.credsStore ~= "" and doc.credsStore)
  if helper then
    local ok, err = helper_run(helper, "erase", server_url(host))
    if not ok then return nil, err end
    return true
  end
  local found = false
  if type(doc.auths) == "table" then
    for _, k in ipairs(auth_keys(host)) do
      if doc.auths[k] ~= nil then
        doc.auths[k] = nil
        found = true
      end
    end
  end
  if not found then return false end
  if next(doc.auths) == nil then doc.auths = setmetatable({}, nil) end
  local ok, err = write_json_0600(path, doc)
  if not ok then return nil, err end
  return true
end

-- ---------------------------------------------------------------- the authorizer

local Authorizer = {}
Authorizer.__index = Authorizer

--- An authorizer: opts.session (ctr.remotes.http), opts.credentials (function(host, repo)),
-- opts.tls (function(url) -> request fields for TLS), opts.client_id.
function M.new_authorizer(opts)
  return setmetatable({ session = opts.session, credentials = opts.credentials or function() end,
    tls = opts.tls or function() return {} end, client_id = opts.client_id or "ctrlua",
    hosts = {}, tokens = {}, refresh = {} }, Authorizer)
end

local function now() return core.monotime() end

local function scope_key(scopes) return table.concat(scopes, " ") end

local function repo_of(scopes)
  for _, s in ipairs(scopes or {}) do
    local r = s:match("^repository:(.-):[^:]*$")
    if r then return r end
  end
end

--- The Authorization header for a request to host under scopes, or nil (none yet known).
-- @return header line, or nil; or nil, err when a token could not be had
function Authorizer:header(host, scopes)
  local h = self.hosts[host]
  if not h then return nil end
  if h.scheme == "basic" then
    local c, err = self.credentials(host, repo_of(scopes))
    if err then return nil, err end
    if not c or not c.username then return nil end
    return "Authorization: Basic " .. M.base64_encode(c.username .. ":" .. (c.secret or ""))
  end
  local key = host .. " " .. (h.params.service or "") .. " " .. scope_key(scopes)
  local t = self.tokens[key]
  if t and t.expires > now() then return "Authorization: Bearer " .. t.token end
  local token, err = self:fetch_token(host, h, scopes)
  if not token then return nil, err end
  return "Authorization: Bearer " .. token
end

local function status_err(method, url, res, what)
  local msg = ("unexpected status from %s request to %s: %d"):format(method, rhttp.redact(url), res.status)
  local body = res.body and res.body:match('"message"%s*:%s*"([^"]*)"')
  if body and body ~= "" then msg = msg .. ": " .. body end
  local e = errors.new((what and (what .. ": ") or "") .. msg, 0, res.status == 401 and "UNAUTHORIZED"
    or res.status == 403 and "FORBIDDEN" or "UNEXPECTED_STATUS")
  e.status = res.status
  return e
end
M.status_err = status_err

local function form(t)
  local parts = {}
  for _, kv in ipairs(t) do parts[#parts + 1] = urlencode(kv[1]) .. "=" .. urlencode(kv[2]) end
  return table.concat(parts, "&")
end

function Authorizer:fetch_token(host, h, scopes)
  local realm = h.params.realm
  if not realm or not realm:match("^https?://") then
    return nil, errors.new(("failed to authorize: %s: the challenge has no realm"):format(host), 0, "UNAUTHORIZED")
  end
  local service = h.params.service
  local c, cerr = self.credentials(host, repo_of(scopes))
  if cerr then return nil, cerr end
  c = c or {}
  local refresh = self.refresh[host] or c.refresh
  local tls = self.tls(realm)
  local res, err
  local function req(fields)
    for k, v in pairs(tls) do fields[k] = v end
    return self.session:request(fields)
  end
  local secret = refresh or c.secret
  if secret and (refresh or c.username) then
    local f = { { "grant_type", refresh and "refresh_token" or "password" } }
    if service then f[#f + 1] = { "service", service } end
    if #scopes > 0 then f[#f + 1] = { "scope", table.concat(scopes, " ") } end
    f[#f + 1] = { "client_id", self.client_id }
    f[#f + 1] = { "access_type", "offline" }
    if refresh then
      f[#f + 1] = { "refresh_token", refresh }
    else
      f[#f + 1] = { "username", c.username }
      f[#f + 1] = { "password", secret }
    end
    res, err = req({ method = "POST", url = realm, body = form(f), max_body = 1024 * 1024,
      headers = { "Content-Type: application/x-www-form-urlencoded" } })
    if not res then return nil, errors.wrap(err, "failed to authorize: failed to fetch oauth token") end
    -- registries without the POST endpoint answer these: ask with GET instead
    if res.status == 404 or res.status == 405 or res.status == 400 or (res.status == 401 and not refresh) then
      res = nil
    elseif res.status ~= 200 then
      return nil, status_err("POST", realm, res, "failed to authorize: failed to fetch oauth token")
    end
  end
  if not res then
    local q = {}
    if service then q[#q + 1] = { "service", service } end
    for _, s in ipairs(scopes) do q[#q + 1] = { "scope", s } end
    if c.username then
      q[#q + 1] = { "offline_token", "true" }
      q[#q + 1] = { "client_id", self.client_id }
    end
    local url = realm .. (realm:find("?", 1, true) and "&" or "?") .. form(q)
    local headers = {}
    if c.username then
      headers[1] = "Authorization: Basic " .. M.base64_encode(c.username .. ":" .. (c.secret or ""))
    end
    res, err = req({ method = "GET", url = url, headers = headers, max_body = 1024 * 1024 })
    if not res then return nil, errors.wrap(err, "failed to authorize: failed to fetch token") end
    if res.status ~= 200 then
      return nil, status_err("GET", realm, res, c.username and "failed to authorize: failed to fetch token"
        or "failed to authorize: failed to fetch anonymous token")
    end
  end
  local doc = core.json_decode(res.body)
  local token = type(doc) == "table" and (doc.token or doc.access_token)
  -- (it is sent as a header value: a control character in it, CR or LF above all, makes no
  -- header line)
  if type(token) ~= "string" or token == "" or token:find("%c") then
    return nil, errors.new(("failed to authorize: %s answered no token"):format(rhttp.redact(realm)), 0, "UNAUTHORIZED")
  end
  if type(doc.refresh_token) == "string" and doc.refresh_token ~= "" then
    self.refresh[host] = doc.refresh_token
  end
  local expires_in = tonumber(doc.expires_in) or 60
  -- (NaN too, as tonumber reads "nan": a token whose expiry never compares as later than now
  -- would be fetched again for every request)
  if not (expires_in >= 1) then expires_in = 60 end
  local key = host .. " " .. (service or "") .. " " .. scope_key(scopes)
  -- a little early, so that a token is never sent in its last seconds
  self.tokens[key] = { token = token, expires = now() + math.max(1, expires_in - 5) }
  return token
end

--- A 401 from host: learn its challenge.  true when a retry may now succeed: the request
-- went without credentials and the challenge says how to send them, or a cached token was
-- refused (dropped, so the retry fetches a fresh one); false when it cannot.
-- @tparam string host the registry host
-- @param res the response (its WWW-Authenticate header)
-- @param scopes the scopes the request needed
-- @param sent the Authorization header the request carried, or nil
function Authorizer:challenge(host, res, scopes, sent)
  local chs = M.parse_challenges(res.header_table and res.header_table["www-authenticate"])
  local pick
  for _, c in ipairs(chs) do
    if c.scheme == "bearer" then pick = c break end
  end
  if not pick then
    for _, c in ipairs(chs) do if c.scheme == "basic" then pick = c break end end
  end
  if not pick then return false end
  self.hosts[host] = pick
  if not sent then
    if pick.scheme == "basic" then
      local c = self.credentials(host, repo_of(scopes))
      return c ~= nil and c.username ~= nil
    end
    return true
  end
  if pick.scheme == "basic" or not sent:find("^Authorization: Bearer ") then return false end
  if pick.params.error == "insufficient_scope" then return false end
  local key = host .. " " .. (pick.params.service or "") .. " " .. scope_key(scopes)
  local t = self.tokens[key]
  if t and sent == "Authorization: Bearer " .. t.token then
    self.tokens[key] = nil
    return true
  end
  return false
end

return M
