--- Image references, as containerd's reference packages read them.
--
-- Two readings, because ctr and docker differ:
-- - `parse(s)` is containerd's reference.Parse (what `ctr images pull` takes): a locator
--   `host/path` and an object (a tag, `@digest` or `tag@digest`), with no normalisation; a
--   name without a host part or without a tag is refused with ctr's own words ("object
--   required", `parse "dummy://alpine:latest": invalid port ":latest" after host`).
-- - `parse_normalized_named(s)` is reference/docker's ParseDockerRef (what docker, nerdctl and
--   ctrlua's `run` auto-pull take): `alpine` is `docker.io/library/alpine:latest`.
--
-- A parsed reference is `{domain=, path=, tag=, digest=}`; `M.string(r)` writes it back.
-- @module ctr.reference
local errors = require("ctr.errors")

local M = {}

local DIGEST_RE = "^sha256:" .. ("%x"):rep(64) .. "$"
local MAX_NAME = 255

local function invalid(fmt, ...)
  return nil, errors.new(fmt:format(...), 22, "INVALID")
end

-- domain-component ("." domain-component)* [":" port], or an IPv6 literal in brackets
local function valid_domain(d)
  if d:match("^%[[%x:%.]+%](:?%d*)$") then return true end
  local host, port = d:match("^([^:]+):(%d+)$")
  host = host or d
  if port == nil and d:find(":", 1, true) then return false end
  for comp in (host .. "."):gmatch("([^.]*)%.") do
    if comp == "" or not comp:match("^[%w]$") and not comp:match("^[%w][%w%-]*[%w]$") then
      return false
    end
  end
  return true
end

-- path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
local function valid_component(c)
  if c == "" then return false end
  local rest = c:match("^[a-z0-9]+(.*)$")
  if not rest then return false end
  while rest ~= "" do
    local sep, after = rest:match("^([%._%-]+)(.*)$")
    if not sep or not (sep == "." or sep == "_" or sep == "__" or sep:match("^%-+$")) then return false end
    local word
    word, rest = after:match("^([a-z0-9]+)(.*)$")
    if not word then return false end
  end
  return true
end

local function valid_tag(t) return t:match("^[%w_][%w_%.%-]*$") ~= nil and #t <= 128 end

--- Split "name[:tag][@digest]" into name, tag, digest (each may be nil).
local function split_object(s)
  local name, digest = s:match("^(.-)@(.*)$")
  name = name or s
  local base, tag = name:match("^(.*):([^/:]*)$")
  if base and not tag:find("/", 1, true) then name = base else tag = nil end
  return name, tag, digest
end

--- docker's ParseNormalizedNamed + TagNameOnly: the full reference of a (possibly short) name.
-- @return `{domain=, path=, tag=, digest=}`, or nil, err (sym INVALID)
function M.parse_normalized_named(s)
  if type(s) ~= "string" then error("reference: expected string", 2) end
  if s == "" then return invalid("invalid reference format") end
  if s:find("[%s%c]") or s:find("://", 1, true) then return invalid("invalid reference format: %q", s:sub(1, 200)) end
  local name, tag, digest = split_object(s)
  local first, rest = name:match("^([^/]+)/(.+)$")
  local domain, path
  if first and (first:find("[%.:]") or first == "localhost" or first:lower() ~= first) then
    domain, path = first, rest
  else
    domain, path = "docker.io", name
  end
  if domain == "index.docker.io" then domain = "docker.io" end
  if domain == "docker.io" and not path:find("/", 1, true) then path = "library/" .. path end
  if path:lower() ~= path then
    return invalid("invalid reference format: repository name must be lowercase")
  end
  if not valid_domain(domain) then return invalid("invalid reference format: %q", s:sub(1, 200)) end
  for comp in (path .. "/"):gmatch("([^/]*)/") do
    if not valid_component(comp) then return invalid("invalid reference format: %q", s:sub(1, 200)) end
  end
  if #domain + 1 + #path > MAX_NAME then
    return invalid("invalid reference format: repository name must not be more than %d characters", MAX_NAME)
  end
  if tag and not valid_tag(tag) then return invalid("invalid reference format: %q", s:sub(1, 200)) end
  if digest and not digest:match(DIGEST_RE) then return invalid("invalid reference format: %q", s:sub(1, 200)) end
  if not tag and not digest then tag = "latest" end
  return { domain = domain, path = path, tag = tag, digest = digest }
end

--- containerd's reference.Parse: `{locator=, object=, domain=, path=, tag=, digest=}`, or nil, err
-- with ctr's words.  The object is required ("object required") only by `resolve`; parse
-- accepts a locator alone.
function M.parse(s)
  if type(s) ~= "string" then error("reference: expected string", 2) end
  if s:find("://", 1, true) then return invalid("invalid reference") end
  -- Go's url.Parse("dummy://" .. s): the host ends at the first '/', and a ':' in it must be
  -- followed by a port number
  local host, path = s:match("^([^/]*)(.*)$")
  if host == "" then return invalid("hostname required") end
  local colon = host:match("^%[.-%](.*)$") or host
  local port = colon:match(":(.*)$")
  if port and not port:match("^%d*$") then
    return invalid('parse "dummy://%s": invalid port ":%s" after host', s, port)
  end
  if s:find("[%s%c]") then return invalid('parse "dummy://%s": invalid character in URL', s) end
  local object = ""
  local i = path:find("[:@]")
  if i then
    object = path:sub(i)
    if object:sub(1, 1) == ":" then object = object:sub(2) end
    path = path:sub(1, i - 1)
  end
  local spec = { locator = host .. path, object = object, domain = host, path = path:gsub("^/", "") }
  local tag, digest = object:match("^(.-)@(.*)$")
  if tag then
    spec.tag = tag ~= "" and tag or nil
    spec.digest = digest
  elseif object ~= "" then
    spec.tag = object
  end
  if spec.digest and not spec.digest:match(DIGEST_RE) then
    return invalid("invalid digest %q in %q", spec.digest, s)
  end
  return spec
end

--- The reference as a string: domain/path[:tag][@digest].
function M.string(r)
  local s = r.domain .. "/" .. r.path
  if r.tag then s = s .. ":" .. r.tag end
  if r.digest then s = s .. "@" .. r.digest end
  return s
end

--- The name part (domain/path).
function M.name(r) return r.domain .. "/" .. r.path end

--- The object to ask the registry for: the digest when there is one, else the tag.
function M.object(r) return r.digest or r.tag end

return M
