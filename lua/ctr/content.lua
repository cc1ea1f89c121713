--- The content store, as containerd's content package: content-addressed blobs under
-- ROOT/content/blobs/sha256/<hex>, written through ingest files (ROOT/content/ingest/<ref>)
-- that are hashed while written, fsynced, verified and only then renamed into place.  A blob
-- under its name always hashes to that name; an existing blob is never rewritten.
--
--     local store = require("ctr.content").new(client.root)
--     local digest = assert(store:write('{"a":1}'))
--     print(store:info(digest).size)
--
-- @module ctr.content
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- The default cap of `read`: JSON documents are never read unbounded (containerd
-- CVE-2023-25153).
M.DEFAULT_READ_CAP = 4 * 1024 * 1024

local Store = {}
Store.__index = Store
M.Store = Store

local DIGEST_RE = "^sha256:" .. ("[0-9a-f]"):rep(64) .. "$"

--- Is s a valid digest (`sha256:` and 64 lowercase hex digits)?
function M.valid_digest(s)
  return type(s) == "string" and s:match(DIGEST_RE) ~= nil
end

local function check(digest)
  if not M.valid_digest(digest) then
    return nil, errors.invalid("invalid digest %q: want sha256: and 64 lowercase hex digits",
      type(digest) == "string" and digest:sub(1, 80) or tostring(digest))
  end
  return true
end
M.check_digest = check

-- The store's only failures with no errno (so no sym) are its size and digest checks
-- (csrc/store/content.c).
local function cerr(err)
  if err.sym == nil then err.sym = "DIGEST_MISMATCH" end
  return err
end

--- Open the content store of a root (ROOT/content).
-- @tparam string root the store root (client.root)
function M.new(root)
  if type(root) ~= "string" or root == "" then error("content.new: root: expected string", 2) end
  return setmetatable({ root = root, dir = root .. "/content" }, Store)
end

--- Path of a blob (it may not exist), or nil, err for an invalid digest.
function Store:path(digest)
  local ok, err = check(digest)
  if not ok then return nil, err end
  return self.dir .. "/blobs/sha256/" .. digest:sub(8)
end

--- {digest=, size=, created_at=} of a blob, or nil, err (sym NOT_FOUND).
function Store:info(digest)
  local p, err = self:path(digest)
  if not p then return nil, err end
  local st, err = sys.stat(p)
  if not st then
    if err.sym == "ENOENT" then return nil, errors.not_found("content %s: not found", digest) end
    return nil, err
  end
  return { digest = digest, size = st.size, created_at = core.rfc3339(st.mtime), mtime = st.mtime }
end

--- Is the blob there?
function Store:exists(digest)
  local p = self:path(digest)
  return p ~= nil and core.stat(p) ~= nil
end

--- The blob's bytes, at most cap (default 4 MiB; a larger blob is an EFBIG error).
function Store:read(digest, cap)
  local p, err = self:path(digest)
  if not p then return nil, err end
  local data, err = sys.read_file(p, cap or M.DEFAULT_READ_CAP)
  if not data then
    if err.sym == "ENOENT" then return nil, errors.not_found("content %s: not found", digest) end
    return nil, err
  end
  return data
end

local function expect(expected, fname)
  if expected == nil then return {} end
  if type(expected) == "string" then return { digest = expected } end
  if type(expected) ~= "table" then error(fname .. ": expected: expected string or table", 3) end
  return expected
end

--- Store a string.  expected: a digest, or {digest=, size=}, checked before commit.
-- @return digest, or nil, err ("digest mismatch: expected sha256:..., got sha256:...")
function Store:write(data, expected)
  if type(data) ~= "string" then error("content:write: data: expected string", 2) end
  local e = expect(expected, "content:write")
  if e.digest then
    local ok, err = check(e.digest)
    if not ok then return nil, err end
  end
  local d, err = sys.content_write(self.dir, data, { digest = e.digest, size = e.size })
  if not d then return nil, cerr(err) end
  return d
end

--- Stream a file ("-": standard input) into the store.  With an expected digest whose blob is
-- already there, the source is not read.
-- @return digest, size, or nil, err
function Store:ingest(src_path, expected)
  if type(src_path) ~= "string" then error("content:ingest: src_path: expected string", 2) end
  local e = expect(expected, "content:ingest")
  if e.digest then
    local ok, err = check(e.digest)
    if not ok then return nil, err end
    local info = self:info(e.digest)
    if info and (e.size == nil or e.size == info.size) then return e.digest, info.size end
  end
  local d, size = sys.content_ingest(self.dir, src_path, { digest = e.digest, size = e.size })
  if not d then return nil, cerr(size) end -- size: the error
  return d, size
end

--- Every blob, sorted by digest: a list of {digest=, size=, created_at=}.  Ingest files and
-- anything that is not a valid digest name are ignored.
function Store:list()
  local out = {}
  for _, name in ipairs(core.listdir(self.dir .. "/blobs/sha256") or {}) do
    local d = "sha256:" .. name
    if M.valid_digest(d) then
      local info = self:info(d)
      if info then out[#out + 1] = info end
    end
  end
  table.sort(out, function(a, b) return a.digest < b.digest end)
  return out
end

--- Remove a blob (NOT_FOUND when absent).
function Store:delete(digest)
  local p, err = self:path(digest)
  if not p then return nil, err end
  local ok, err = sys.unlink(p)
  if not ok then
    if err.sym == "ENOENT" then return nil, errors.not_found("content %s: not found", digest) end
    return nil, err
  end
  return true
end

--- Hash a blob again and compare with its name: size, or nil, err.
function Store:verify(digest)
  local ok, err = check(digest)
  if not ok then return nil, err end
  local size, err = sys.content_verify(self.dir, digest)
  if not size then
    if err.sym == "ENOENT" then return nil, errors.not_found("content %s: not found", digest) end
    return nil, cerr(err)
  end
  return size
end

--- Remove ingest files older than max_age seconds (default an hour) that no writer holds.
function Store:sweep(max_age)
  local n, err = sys.content_sweep(self.dir, max_age or 3600)
  if not n then return nil, err end
  return n
end

return M
