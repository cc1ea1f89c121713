--- HTTP for the registry client: a thin layer over the core's transfer sessions
-- (core.http_session), which do the transfers on a thread of their own.  This module only
-- shapes requests and results: response headers as a table, a synchronous `request`, and
-- errors as ctr.errors values whose `sym` says what happened (ECONNREFUSED, ETIMEDOUT,
-- ECONNRESET, EPROTO, EFBIG, DIGEST_MISMATCH, ECANCELED, ...).
-- @module ctr.remotes.http
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local Session = {}
Session.__index = Session

--- A session: `{dump=, trace=}` as --http-dump and --http-trace.
-- @return session, or nil, err
function M.session(opts)
  opts = opts or {}
  local s, err = sys.http_session({ dump = opts.dump and true or false,
    trace = opts.trace and true or false })
  if not s then return nil, err end
  return setmetatable({ s = s, results = {} }, Session)
end

-- the transfer layer's EBADMSG: a body whose digest is not the one asked for
local function err_of(err)
  if err.sym == "EBADMSG" then err.sym = "DIGEST_MISMATCH" end
  return err
end

--- Response headers as a table: lowercase name → list of values.
function M.parse_headers(raw)
  local h = {}
  for line in (raw or ""):gmatch("[^\r\n]+") do
    -- (trimmed from the first non-blank to the last, each found in one pass: `(.-)%s*$`
    -- retries at every blank of a line, quadratic in a run of them, and a registry sends
    -- the headers)
    local k, rest = line:match("^([^:%s]+):(.*)$")
    local first = rest and rest:find("%S")
    local v = first and rest:match("^(.*%S)", first) or ""
    if k then
      k = k:lower()
      h[k] = h[k] or {}
      table.insert(h[k], v)
    end
  end
  return h
end

--- The first value of a header, or nil.
function M.header(res, name)
  local l = res.header_table and res.header_table[name:lower()]
  return l and l[1]
end

local function shape(res)
  res.header_table = M.parse_headers(res.headers)
  return res
end

--- Start a request (see core.http_session's start for the fields); returns its id.
function Session:start(req)
  local id, err = sys.result(self.s:start(req))
  if not id then return nil, err_of(err) end
  return id
end

--- Wait up to ms for finished transfers: a list of ids.
function Session:wait(ms) return self.s:wait(ms or 0) end

--- Take a finished transfer: its result (status, header_table, body, url, digest, size...),
-- or nil, err.
function Session:take(id)
  local res, err = sys.result(self.s:take(id))
  if not res then return nil, err_of(err) end
  return shape(res)
end

--- Bytes done, total (or nil), state of a transfer.
function Session:progress(id) return self.s:progress(id) end

function Session:cancel(id) return self.s:cancel(id) end

function Session:ingest_path(id) return self.s:ingest_path(id) end

--- A request to its end: result, or nil, err.  Results of other transfers that finish
-- meanwhile are kept for their own take.
function Session:request(req)
  local id, err = self:start(req)
  if not id then return nil, err end
  while true do
    local done = self.s:wait(200)
    for _, d in ipairs(done) do
      if d == id then return self:take(id) end
      self.results[d] = true
    end
    if self.results[id] then
      self.results[id] = nil
      return self:take(id)
    end
  end
end

--- Ids that finished while a synchronous request ran (and were not taken), and ids now done.
function Session:finished(ms)
  local out = {}
  for id in pairs(self.results) do out[#out + 1] = id end
  self.results = {}
  if #out > 0 then ms = 0 end
  for _, id in ipairs(self.s:wait(ms or 0)) do out[#out + 1] = id end
  return out
end

function Session:close()
  if self.s then self.s:close() end
  self.s = nil
end

--- A URL made safe to print (no user info, token-like query values replaced).
function M.redact(url) return core.http_redact_url(url) end

return M
