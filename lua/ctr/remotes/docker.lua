--- The distribution protocol, as containerd's remotes/docker resolver, fetcher and pusher.
--
--     local r = docker.new_resolver{session = s, hosts = function(domain) ... end,
--                                   credentials = auth.credentials{...}}
--     local name, desc = r:resolve(spec)        -- GET /v2/<name>/manifests/<ref>
--     local data = r:fetch_document(spec, desc) -- a manifest or config, capped and verified
--
-- Requests go to the registry's hosts in order (hosts.toml mirrors first), each used for what
-- its capabilities allow; a host that refuses the connection, answers 404 or an error status is
-- skipped for the next one.  A 401 is answered once with what its challenge asks (see
-- ctr.remotes.auth).  Every manifest is checked against the reference's digest and against
-- Docker-Content-Digest, and capped at 4 MiB.
--
-- Work that runs concurrently (downloads, uploads) runs in coroutines of a small scheduler
-- (`r:spawn(fn)`, `r:step(ms)`): a coroutine's request yields until its transfer finishes, so
-- each blob's protocol (auth retry, next host, chunked upload) reads as straight-line code
-- while the core moves the bytes of all of them at once.
-- @module ctr.remotes.docker
local core = require("ctr.core")
local errors = require("ctr.errors")
local rhttp = require("ctr.remotes.http")
local auth = require("ctr.remotes.auth")

local M = {}

M.MAX_MANIFEST = 4 * 1024 * 1024

M.media = {
  oci_index = "application/vnd.oci.image.index.v1+json",
  oci_manifest = "application/vnd.oci.image.manifest.v1+json",
  docker_list = "application/vnd.docker.distribution.manifest.list.v2+json",
  docker_manifest = "application/vnd.docker.distribution.manifest.v2+json",
}
local MT = M.media
local MANIFEST_TYPES = { [MT.oci_index] = true, [MT.oci_manifest] = true, [MT.docker_list] = true,
  [MT.docker_manifest] = true }
M.ACCEPT = "Accept: " .. table.concat({ MT.oci_index, MT.oci_manifest, MT.docker_list,
  MT.docker_manifest, "*/*" }, ", ")

--- Is mt a manifest or index media type this client reads?
function M.is_manifest_type(mt) return MANIFEST_TYPES[mt] == true end

local Resolver = {}
Resolver.__index = Resolver

--- A resolver.
-- @tparam table opts `session` (ctr.remotes.http), `hosts` (function(domain) -> list of
-- hosts as ctr.remotes.hosts.for_host returns, or nil, err), `credentials` (function(host,
-- repo)), `connect_timeout_ms`, `stall_timeout_s`, `max_attempts`
function M.new_resolver(opts)
  local r = setmetatable({ session = opts.session, hosts_of = opts.hosts, host_cache = {},
    limits = { connect_timeout_ms = opts.connect_timeout_ms, stall_timeout_s = opts.stall_timeout_s,
      max_attempts = opts.max_attempts }, waiting = {}, tasks = {}, docs = {},
    default_tls = opts.default_tls or {} }, Resolver)
  r.authorizer = auth.new_authorizer({ session = r, credentials = opts.credentials,
    tls = function(url) return r:tls_for(url) end })
  return r
end

-- ---------------------------------------------------------------- the scheduler

--- Run fn(...) as a task: it may make requests that wait without blocking the others.
function Resolver:spawn(fn, ...)
  local co = coroutine.create(fn)
  local t = { co = co }
  self.tasks[co] = t
  local ok, err = coroutine.resume(co, ...)
  if not ok then error(err, 0) end
  if coroutine.status(co) == "dead" then self.tasks[co] = nil end
  return t
end

--- How many tasks still run.
function Resolver:running()
  local n = 0
  for _ in pairs(self.tasks) do n = n + 1 end
  return n
end

--- Wait up to ms for transfers and resume the tasks whose requests finished.
function Resolver:step(ms)
  for _, id in ipairs(self.session:finished(ms)) do
    local co = self.waiting[id]
    if co then
      self.waiting[id] = nil
      local res, err = self.session:take(id)
      local ok, e = coroutine.resume(co, res, err)
      if not ok then error(e, 0) end
      if coroutine.status(co) == "dead" then self.tasks[co] = nil end
    end
  end
end

--- A request: from a task, it yields until done; elsewhere it blocks.  Returns the result or
-- nil, err.  opts.on_start(id) is told the transfer's id (for progress).
function Resolver:send(req, on_start)
  local co = coroutine.running()
  if co and self.tasks[co] then
    local id, err = self.session:start(req)
    if not id then return nil, err end
    if on_start then on_start(id) end
    self.waiting[id] = co
    return coroutine.yield()
  end
  if on_start then
    local id, err = self.session:start(req)
    if not id then return nil, err end
    on_start(id)
    while true do
      for _, d in ipairs(self.session:finished(200)) do
        if d == id then return self.session:take(id) end
        self.session.results[d] = true
      end
    end
  end
  return self.session:request(req)
end

-- the authorizer's requests (token fetches) go through send too
function Resolver:request(req) return self:send(req) end

-- ---------------------------------------------------------------- hosts and requests

function Resolver:hosts(domain, cap)
  local list = self.host_cache[domain]
  if not list then
    local err
    list, err = self.hosts_of(domain)
    if not list then return nil, err end
    self.host_cache[domain] = list
  end
  local out = {}
  for _, h in ipairs(list) do
    if h.capabilities[cap] then out[#out + 1] = h end
  end
  if #out == 0 then
    return nil, errors.new(("no host of %s may %s"):format(domain, cap), 0, "NOT_FOUND")
  end
  return out
end

local function base_url(h) return h.scheme .. "://" .. h.host end

function Resolver:tls_for(url)
  for _, list in pairs(self.host_cache) do
    for _, h in ipairs(list) do
      if url:sub(1, #base_url(h) + 1) == base_url(h) .. "/" then
        return { ca = h.ca, cert = h.cert, key = h.key, insecure = h.insecure }
      end
    end
  end
  return self.default_tls
end

--- A URL resolved against a host's base (Location headers may be relative).
local function resolve_location(h, loc)
  if loc:match("^https?://") then return loc end
  if loc:sub(1, 1) == "/" then return base_url(h) .. loc end
  return base_url(h) .. h.path .. "/" .. loc
end
M.resolve_location = resolve_location

-- The request fields for host h: URL, headers (the host's, the caller's, authorization), TLS.
function Resolver:build(h, method, url, headers, scopes)
  local hdrs = {}
  for _, l in ipairs(h.header or {}) do hdrs[#hdrs + 1] = l end
  for _, l in ipairs(headers or {}) do hdrs[#hdrs + 1] = l end
  local a, err = self.authorizer:header(h.host, scopes)
  if err then return nil, err end
  if a then hdrs[#hdrs + 1] = a end
  local req = { method = method, url = url, headers = hdrs, ca = h.ca, cert = h.cert, key = h.key,
    insecure = h.insecure }
  for k, v in pairs(self.limits) do req[k] = v end
  return req, a
end

--- One request to host h, answering a 401 once: the result, or nil, err.
-- extra: more request fields (body, body_file, ingest, max_body, ...).
function Resolver:do_request(h, method, url, headers, scopes, extra, on_start)
  for _ = 1, 3 do
    local req, sent = self:build(h, method, url, headers, scopes)
    if not req then return nil, sent end
    for k, v in pairs(extra or {}) do req[k] = v end
    local res, err = self:send(req, on_start)
    if not res then return nil, err end
    if res.status ~= 401 then return res end
    if not self.authorizer:challenge(h.host, res, scopes, sent) then return res end
  end
  return nil, errors.new(("%s %s: still unauthorized after authenticating"):format(method, rhttp.redact(url)), 0, "UNAUTHORIZED")
end

function M.pull_scope(spec) return { "repository:" .. spec.path .. ":pull" } end
function M.push_scope(spec) return { "repository:" .. spec.path .. ":pull,push" } end

local function repo_url(h, spec, rest) return base_url(h) .. h.path .. "/" .. spec.path .. rest end
M.repo_url = repo_url

local function media_of(res, body)
  local ct = rhttp.header(res, "content-type")
  ct = ct and ct:match("^%s*([^;%s]+)") or nil
  if ct and MANIFEST_TYPES[ct] then return ct end
  local doc = core.json_decode(body)
  if type(doc) == "table" and type(doc.mediaType) == "string" then return doc.mediaType end
  if type(doc) == "table" then
    if type(doc.manifests) == "table" then return MT.oci_index end
    if type(doc.config) == "table" and type(doc.layers) == "table" then return MT.oci_manifest end
  end
  return ct or "unknown"
end

--- Resolve a reference to a descriptor: GET /v2/<name>/manifests/<tag or digest> on each host
-- that may resolve, in order.
-- @param spec a reference (ctr.reference)
-- @return name, descriptor {mediaType=, digest=, size=}; or nil, err (sym NOT_FOUND when no
-- host has it)
function Resolver:resolve(spec)
  local ref = require("ctr.reference").string(spec)
  local object = spec.digest or spec.tag
  if not object then return nil, errors.invalid("object required") end
  local hosts, err = self:hosts(spec.domain, "resolve")
  if not hosts then return nil, err end
  local first_err
  for _, h in ipairs(hosts) do
    local url = repo_url(h, spec, "/manifests/" .. object)
    local res, rerr = self:do_request(h, "GET", url, { M.ACCEPT }, M.pull_scope(spec),
      { max_body = M.MAX_MANIFEST })
    if not res then
      if rerr.sym == "EFBIG" then
        return nil, errors.new(("manifest %s: over the limit of %d bytes for a manifest"):format(ref,
          M.MAX_MANIFEST), 27, "EFBIG")
      end
      first_err = first_err or rerr
    elseif res.status == 404 then
      -- next host
    elseif res.status >= 300 then
      first_err = first_err or auth.status_err("GET", url, res)
    else
      local body = res.body
      local digest = core.sha256(body)
      local mt = media_of(res, body)
      if not MANIFEST_TYPES[mt] then
        return nil, errors.new(("%s: unsupported media type %s"):format(ref, mt), 22, "UNSUPPORTED")
      end
      if spec.digest and digest ~= spec.digest then
        return nil, errors.new(("%s: manifest digest mismatch: the reference says %s, the content is %s")
          :format(ref, spec.digest, digest), 0, "DIGEST_MISMATCH")
      end
      local dcd = rhttp.header(res, "docker-content-digest")
      if dcd and dcd ~= digest then
        return nil, errors.new(("%s: manifest digest mismatch: Docker-Content-Digest says %s, the content is %s")
          :format(ref, dcd, digest), 0, "DIGEST_MISMATCH")
      end
      self.docs[digest] = body
      return ref, { mediaType = mt, digest = digest, size = #body }
    end
  end
  if first_err then return nil, first_err end
  return nil, errors.not_found("%s: not found", ref)
end

--- A manifest, index or config: its bytes, checked against desc (digest, size, the cap).
-- Manifests and indexes come from /manifests/<digest>, configs from /blobs/<digest>.
function Resolver:fetch_document(spec, desc, is_manifest)
  if self.docs[desc.digest] then
    local d = self.docs[desc.digest]
    self.docs[desc.digest] = nil
    return d
  end
  if type(desc.size) == "number" and desc.size > M.MAX_MANIFEST then
    return nil, errors.new(("%s: %d bytes is over the limit of %d for a JSON document"):format(desc.digest,
      desc.size, M.MAX_MANIFEST), 27, "EFBIG")
  end
  local hosts, err = self:hosts(spec.domain, "pull")
  if not hosts then return nil, err end
  local first_err
  for _, h in ipairs(hosts) do
    local url = repo_url(h, spec, (is_manifest and "/manifests/" or "/blobs/") .. desc.digest)
    local res, rerr = self:do_request(h, "GET", url, is_manifest and { M.ACCEPT } or {},
      M.pull_scope(spec), { max_body = M.MAX_MANIFEST })
    if not res then
      if rerr.sym == "EFBIG" then return nil, rerr end
      first_err = first_err or rerr
    elseif res.status == 404 then
      -- next host
    elseif res.status >= 300 then
      first_err = first_err or auth.status_err("GET", url, res)
    else
      local digest = core.sha256(res.body)
      if digest ~= desc.digest then
        return nil, errors.new(("%s: digest mismatch: expected %s, got %s"):format(rhttp.redact(url),
          desc.digest, digest), 0, "DIGEST_MISMATCH")
      end
      if desc.size and #res.body ~= desc.size then
        return nil, errors.new(("%s: size mismatch: expected %d bytes, got %d"):format(desc.digest,
          desc.size, #res.body), 0, "DIGEST_MISMATCH")
      end
      return res.body
    end
  end
  if first_err then return nil, first_err end
  return nil, errors.not_found("%s: not found", desc.digest)
end

--- Download a blob into the content store (from a task: it yields).  ingest = {content=,
-- ref=}; on_start(id) is told each transfer's id.  A host that fails is skipped for the next;
-- a download cut short resumes from its ingest on the same host first.
-- @return {digest=, size=}, or nil, err
function Resolver:fetch_blob(spec, desc, ingest, on_start)
  local hosts, err = self:hosts(spec.domain, "pull")
  if not hosts then return nil, err end
  local first_err
  for _, h in ipairs(hosts) do
    local url = repo_url(h, spec, "/blobs/" .. desc.digest)
    local res, rerr = self:do_request(h, "GET", url, {}, M.pull_scope(spec),
      { ingest = { content = ingest.content, ref = ingest.ref, digest = desc.digest, size = desc.size } },
      on_start)
    if not res then
      -- content that does not verify is the same on every mirror: stop here
      if rerr.sym == "DIGEST_MISMATCH" or rerr.sym == "EFBIG" or rerr.sym == "ECANCELED" then
        return nil, rerr
      end
      first_err = first_err or rerr
    elseif res.status == 404 then
      first_err = first_err or errors.not_found("%s: blob %s not found", rhttp.redact(url), desc.digest)
    elseif res.status >= 300 then
      first_err = first_err or auth.status_err("GET", url, res)
    else
      return { digest = res.digest, size = res.size }
    end
  end
  return nil, first_err or errors.not_found("%s: not found", desc.digest)
end

-- ---------------------------------------------------------------- push

--- Does host h have the blob?  true, false, or nil, err.
function Resolver:blob_exists(h, spec, desc)
  local url = repo_url(h, spec, "/blobs/" .. desc.digest)
  local res, err = self:do_request(h, "HEAD", url, {}, M.push_scope(spec))
  if not res then return nil, err end
  if res.status == 200 then return true end
  if res.status == 404 then return false end
  return nil, auth.status_err("HEAD", url, res)
end

local function with_query(url, q)
  return url .. (url:find("?", 1, true) and "&" or "?") .. q
end

--- Push one blob from a file of the content store (from a task).  Skipped when the registry has
-- it; mounted from opts.from (a repository of the same registry) when it can; else uploaded:
-- in one PUT up to opts.chunk bytes, in PATCH chunks with Content-Range above.
-- @return "exists" | "mounted" | "pushed", or nil, err
function Resolver:push_blob(h, spec, desc, path, opts, on_start)
  opts = opts or {}
  local have, err = self:blob_exists(h, spec, desc)
  if have == nil then return nil, err end
  if have then return "exists" end
  local scopes = M.push_scope(spec)
  local uploads = repo_url(h, spec, "/blobs/uploads/")
  local res
  if opts.from and opts.from ~= spec.path then
    local mscopes = { scopes[1], "repository:" .. opts.from .. ":pull" }
    res, err = self:do_request(h, "POST", with_query(uploads, "mount=" .. auth.urlencode(desc.digest) ..
      "&from=" .. auth.urlencode(opts.from)), {}, mscopes, { body = "" })
    if not res then return nil, err end
    if res.status == 201 then return "mounted" end
    if res.status ~= 202 then res = nil end -- a registry that refuses mounts: a plain upload
  end
  if not res then
    res, err = self:do_request(h, "POST", uploads, {}, scopes, { body = "" })
    if not res then return nil, err end
    if res.status ~= 202 then return nil, auth.status_err("POST", uploads, res) end
  end
  local loc = rhttp.header(res, "location")
  if not loc then return nil, errors.new(("POST %s: no Location for the upload"):format(rhttp.redact(uploads)), 0, "UNEXPECTED_STATUS") end
  loc = resolve_location(h, loc)
  local chunk = opts.chunk or 16 * 1024 * 1024
  if desc.size > chunk then
    local off = 0
    while off < desc.size do
      local len = math.min(chunk, desc.size - off)
      res, err = self:do_request(h, "PATCH", loc, { "Content-Type: application/octet-stream",
        ("Content-Range: %d-%d"):format(off, off + len - 1) }, scopes,
        { body_file = path, body_offset = off, body_length = len }, on_start)
      if not res then return nil, err end
      if res.status ~= 202 then return nil, auth.status_err("PATCH", loc, res) end
      loc = resolve_location(h, rhttp.header(res, "location") or loc)
      off = off + len
      if opts.on_bytes then opts.on_bytes(off) end
    end
    res, err = self:do_request(h, "PUT", with_query(loc, "digest=" .. auth.urlencode(desc.digest)),
      {}, scopes, { body = "" })
  else
    res, err = self:do_request(h, "PUT", with_query(loc, "digest=" .. auth.urlencode(desc.digest)),
      { "Content-Type: application/octet-stream" }, scopes,
      { body_file = path, body_offset = 0, body_length = desc.size }, on_start)
  end
  if not res then return nil, err end
  if res.status ~= 201 and res.status ~= 204 then return nil, auth.status_err("PUT", loc, res) end
  return "pushed"
end

--- Put a manifest or index (from a task or not) under tag or digest.
function Resolver:push_manifest(h, spec, desc, data, object)
  local url = repo_url(h, spec, "/manifests/" .. (object or desc.digest))
  local res, err = self:do_request(h, "PUT", url, { "Content-Type: " .. desc.mediaType },
    M.push_scope(spec), { body = data })
  if not res then return nil, err end
  if res.status ~= 201 and res.status ~= 200 and res.status ~= 204 then
    return nil, auth.status_err("PUT", url, res)
  end
  local dcd = rhttp.header(res, "docker-content-digest")
  if dcd and dcd ~= desc.digest then
    return nil, errors.new(("PUT %s: the registry stored %s, not %s"):format(rhttp.redact(url), dcd,
      desc.digest), 0, "DIGEST_MISMATCH")
  end
  return true
end

return M
