--- Error values of the ctr library.
-- Operations return `nil, err` where err is one of these: `err.msg` the message (what failed, on
-- which path), `err.errno` a number (0 when no syscall failed), `err.sym` its name ("ENOENT"),
-- and `tostring(err)` the message.  Policy code matches `err.sym`, never message text.
-- Misuse of the API (a wrong argument type) raises instead, naming the parameter.
-- @module ctr.errors
local core = require("ctr.core")

local M = {}

local Error = {}
Error.__index = Error
Error.__tostring = function(e) return e.msg end
Error.__concat = function(a, b) return tostring(a) .. tostring(b) end

-- errnos the core's table has no name for (it answers "E74"), which the library compares
local NAMES = { [6] = "ENXIO", [71] = "EPROTO", [74] = "EBADMSG" }

--- The name of an errno ("ENOENT"), nil for 0 (no syscall failed).
-- @tparam number errno
function M.errno_name(errno)
  if not errno or errno <= 0 then return nil end
  return NAMES[errno] or core.errno_name(errno)
end

--- Make an error value.
-- @tparam string msg the message
-- @tparam[opt] number errno the errno, 0 or nil when not a syscall's
-- @tparam[opt] string sym a symbolic name for a non-syscall error ("NOT_FOUND", "EXISTS", ...)
function M.new(msg, errno, sym)
  errno = errno or 0
  return setmetatable({ msg = msg, errno = errno, sym = sym or M.errno_name(errno) }, Error)
end

--- Is v an error value of this module?
function M.is_error(v) return getmetatable(v) == Error end

--- Turn a core result (`v` or `nil, message, errno`) into `v` or `nil, err`.
function M.check(v, msg, errno)
  if v == nil then return nil, M.new(msg or "unknown error", errno) end
  return v
end

local function pack(...) return { n = select("#", ...), ... } end

--- Run fn(...), then after(), whether fn returned or raised: Lua's try/finally, for the holders
-- of locks and leases.  fn's error is raised again as it was (no position added), else fn's
-- results are returned.
function M.finally(after, fn, ...)
  local res = pack(pcall(fn, ...))
  after()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

--- Add context in front of an error: "unpack layer 2: <msg>"; keeps errno and sym.
function M.wrap(err, fmt, ...)
  local prefix = select("#", ...) > 0 and fmt:format(...) or fmt
  if M.is_error(err) then
    return setmetatable({ msg = prefix .. ": " .. err.msg, errno = err.errno, sym = err.sym }, Error)
  end
  return M.new(prefix .. ": " .. tostring(err))
end

--- A not-found error (sym NOT_FOUND), as containerd's errdefs.ErrNotFound.
function M.not_found(fmt, ...) return M.new(fmt:format(...), 2, "NOT_FOUND") end
--- An already-exists error (sym EXISTS), as errdefs.ErrAlreadyExists.
function M.exists(fmt, ...) return M.new(fmt:format(...), 17, "EXISTS") end
--- An invalid-argument error (sym INVALID), as errdefs.ErrInvalidArgument.
function M.invalid(fmt, ...) return M.new(fmt:format(...), 22, "INVALID") end
--- A record that is there but cannot be read as what it should be (sym CORRUPT): malformed
-- JSON, a field of the wrong type.  Never to be taken as absent: a sweep keeps what such a
-- record might name, a listing warns about it, an explicit removal removes it.
function M.corrupt(fmt, ...) return M.new(fmt:format(...), 0, "CORRUPT") end

return M
