-- The driver of fuzz/auth.c: a registry's Www-Authenticate challenges and its token server's
-- answer through ctr.remotes.auth, as a pull meets them.
--
-- The input is the Www-Authenticate values, one a line, a NUL, and the body the token server
-- answers with (to every token request).  The challenges go through parse_challenges, then
-- to an authorizer (a 401 from the registry) whose header is asked for, anonymously, with a
-- user and password and with a refresh token, the token server answering 200, or 405 to the
-- POST and 200 to the GET, or an error status.
--
-- A finding is any Lua error out of the code under test (see luahost.h), and any of these
-- contracts broken, each checked with error():
--   - parse_challenges returns a list of challenges whose scheme is a lowercase token and
--     whose params map lowercase tokens to strings;
--   - quoted values may hold commas and escaped quotes: the challenges written out again
--     (every value quoted and escaped) parse to the same;
--   - parsing is linear: values of at most 64 bytes are parsed again with each byte repeated
--     1024 times, which a quadratic parser makes slow enough for libFuzzer's -timeout (the
--     Makefile gives this harness 10 s);
--   - challenge returns a boolean; header returns an Authorization line, or nil, or nil and
--     an error value with a sym;
--   - the Authorization line is one header line, "Authorization: Basic|Bearer CREDENTIALS"
--     without control characters, and a Bearer token once fetched is reused by the next
--     header for the same scopes (cached until it expires, a second at least);
--   - every request to the token server goes to the challenge's realm, has header lines
--     without CR or LF, and puts no secret in its URL; no error message holds a secret
--     (unless the input does).
local auth = require("ctr.remotes.auth")
local errors = require("ctr.errors")

local STRETCH_MAX, STRETCH = 64, 1024
local HOST = "registry.fuzz.test"
local SCOPES = { "repository:fuzz/app:pull" }
local SECRET, REFRESH = "fuzz-s3cret-pass", "fuzz-r3fresh-token"
local CREDS = {
  none = function() return nil end,
  user = function() return { username = "fuzz", secret = SECRET } end,
  refresh = function() return { refresh = REFRESH } end,
}
-- the token server's statuses, one per request (the last one repeated)
local SCENARIOS = {
  { creds = "none", statuses = { 200 } },
  { creds = "user", statuses = { 200 } },
  { creds = "user", statuses = { 405, 200 } },
  { creds = "refresh", statuses = { 200 } },
  { creds = "user", statuses = { 500 } },
  { creds = "none", statuses = { 401 } },
}

local TOKEN_CHARS = "^[!#$%%&'*+%-%.^_`|~%w]+$"

local function check_challenges(what, list)
  if type(list) ~= "table" then error(what .. ": returned a " .. type(list)) end
  for i, c in ipairs(list) do
    if type(c) ~= "table" or type(c.scheme) ~= "string" or not c.scheme:match(TOKEN_CHARS)
      or c.scheme ~= c.scheme:lower() then
      error(("%s: challenge %d has the scheme %q"):format(what, i, tostring(c.scheme)))
    end
    if type(c.params) ~= "table" then error(("%s: challenge %d has no params"):format(what, i)) end
    for k, v in pairs(c.params) do
      if type(k) ~= "string" or not k:match(TOKEN_CHARS) or k ~= k:lower() then
        error(("%s: challenge %d has the param %q"):format(what, i, tostring(k)))
      end
      if type(v) ~= "string" then error(("%s: param %s is a %s"):format(what, k, type(v))) end
    end
  end
end

local function quote(s) return '"' .. s:gsub('[\\"]', "\\%0") .. '"' end

-- The challenges as one header value, every param quoted.
local function write(list)
  local out = {}
  for _, c in ipairs(list) do
    local keys = {}
    for k in pairs(c.params) do keys[#keys + 1] = k end
    table.sort(keys)
    local params = {}
    for _, k in ipairs(keys) do params[#params + 1] = k .. "=" .. quote(c.params[k]) end
    out[#out + 1] = c.scheme .. (#params > 0 and " " .. table.concat(params, ", ") or "")
  end
  return table.concat(out, ", ")
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i].scheme ~= b[i].scheme then return false end
    for k, v in pairs(a[i].params) do if b[i].params[k] ~= v then return false end end
    for k in pairs(b[i].params) do if a[i].params[k] == nil then return false end end
  end
  return true
end

local function stretch(s) return (s:gsub(".", function(c) return c:rep(STRETCH) end)) end

-- A session as ctr.remotes.http's: request answers with the scenario's statuses in turn.
local function session(statuses, body, log)
  return { request = function(_, req)
    log[#log + 1] = req
    local status = statuses[math.min(#log, #statuses)]
    return { status = status, body = body, headers = "", header_table = {} }
  end }
end

local function secret_free(what, s, data)
  for _, secret in ipairs({ SECRET, REFRESH }) do
    if type(s) == "string" and s:find(secret, 1, true) and not data:find(secret, 1, true) then
      error(what .. " holds a secret: " .. s)
    end
  end
end

local function check_header(what, line, err, data)
  if line == nil then
    if err ~= nil then
      if not (errors.is_error(err) and type(err.msg) == "string" and type(err.sym) == "string") then
        error(("%s: returned nil and %s instead of an error value"):format(what, tostring(err)))
      end
      secret_free(what .. ": the error", err.msg, data)
    end
    return
  end
  if type(line) ~= "string" or not line:match("^Authorization: Basic [^%c]+$")
    and not line:match("^Authorization: Bearer [^%c]+$") then
    error(("%s: the header line %q"):format(what, tostring(line)))
  end
end

local function check_requests(what, log, realm, data)
  for i, req in ipairs(log) do
    local w = ("%s: token request %d"):format(what, i)
    if req.method ~= "GET" and req.method ~= "POST" then error(w .. ": method " .. tostring(req.method)) end
    if type(req.url) ~= "string" or req.url:sub(1, #realm) ~= realm then
      error(("%s: to %q, not the realm %q"):format(w, tostring(req.url), realm))
    end
    secret_free(w .. ": the URL", req.url, data)
    for _, l in ipairs(req.headers or {}) do
      if type(l) ~= "string" or l:find("[\r\n]") then error(("%s: header line %q"):format(w, tostring(l))) end
    end
  end
end

local function run_scenario(sc, values, body, data)
  local what = ("scenario %s %s"):format(sc.creds, table.concat(sc.statuses, ","))
  local log = {}
  local a = auth.new_authorizer({ session = session(sc.statuses, body, log), credentials = CREDS[sc.creds] })
  local res = { status = 401, body = "", header_table = { ["www-authenticate"] = values } }
  local retry = a:challenge(HOST, res, SCOPES, nil)
  if type(retry) ~= "boolean" then error(what .. ": challenge returned a " .. type(retry)) end
  local line, err = a:header(HOST, SCOPES)
  check_header(what .. ": header", line, err, data)
  if line and line:match("^Authorization: Bearer ") then
    local n = #log
    local again, aerr = a:header(HOST, SCOPES)
    check_header(what .. ": header again", again, aerr, data)
    if #log ~= n or again ~= line then error(what .. ": a token just fetched was not reused") end
  end
  -- the registry refuses what was sent
  local r2 = a:challenge(HOST, res, SCOPES, line)
  if type(r2) ~= "boolean" then error(what .. ": challenge after a refusal returned a " .. type(r2)) end
  line, err = a:header(HOST, SCOPES)
  check_header(what .. ": header after a refusal", line, err, data)
  local h = a.hosts[HOST]
  check_requests(what, log, h and h.params.realm or "", data)
end

return function(data)
  local z = data:find("\0", 1, true)
  local head, body = data:sub(1, (z or #data + 1) - 1), z and data:sub(z + 1) or ""
  local values = {}
  for l in (head .. "\n"):gmatch("([^\n]*)\n") do values[#values + 1] = l end

  local list = auth.parse_challenges(values)
  check_challenges("parse_challenges", list)
  local again = auth.parse_challenges({ write(list) })
  check_challenges("parse_challenges of its own output", again)
  if not same(list, again) then
    error(("parse_challenges: written out as %q, the challenges parse to another list"):format(write(list)))
  end

  -- (fuzz_coverage is the harness's; the regression spec runs this driver without it)
  local coverage = fuzz_coverage or function() end -- luacheck: ignore
  coverage(false)
  if #head <= STRETCH_MAX then
    local long = {}
    for i, v in ipairs(values) do long[i] = stretch(v) end
    auth.parse_challenges(long)
  end
  coverage(true)

  for _, sc in ipairs(SCENARIOS) do run_scenario(sc, values, body, data) end
end
