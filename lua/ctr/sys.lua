--- The C core (`ctr.core`) with the library's error values: every function of ctr.core under
-- the same name, returning what it returns on success and `nil, err` on failure, err a
-- ctr.errors value (`err.msg`, `err.errno`, `err.sym` from core.errno_name).  The one place
-- where the core's `nil, message, errno` becomes an error object: the library calls these,
-- and compares `err.sym`.
--
-- A failure is a nil followed by a message.  A bare nil, or false, is an answer and passes
-- as it is: `waitpid(pid, {nohang = true})` while pid runs, a reader's `next()` at the end.
-- Values the core returns after the errno (the `death` of an init that died in `create`)
-- follow err.
-- @module ctr.sys
local core = require("ctr.core")
local errors = require("ctr.errors")

local M = {}

-- The functions that never fail: their nil or false is a result, so they are the core's own.
local AS_IS = {
  errno_name = "a name for every number",
  strerror = "a text for every number",
  getenv = "nothing: the variable is not set",
  isatty = "false: not a terminal",
  seccomp_syscall_known = "false: libseccomp knows no such syscall",
  seccomp_native_arch = "nil: libseccomp has no name for this machine",
  getpid = "cannot fail", geteuid = "cannot fail", now = "cannot fail", monotime = "cannot fail",
  rfc3339 = "cannot fail", sha256 = "cannot fail", json_array = "cannot fail",
  http_redact_url = "cannot fail",
  json_encode = "raises on what it cannot encode (callers pcall it)",
}
M.AS_IS = AS_IS

local function result(v, msg, ...)
  if v == nil and msg ~= nil then
    local errno = ...
    return nil, errors.new(msg, errno), select(2, ...)
  end
  return v, msg, ...
end

--- Turn a core result (`v...` or `nil, message, errno...`) into `v...` or `nil, err...`; for
-- the methods of the objects the core returns (an archive reader, an HTTP session).
-- @function result
M.result = result

-- A failure of the container's program itself (not found, not executable: run answers 127
-- or 126) comes with a fifth value, true, after the slot of create's death: err.exec.
local EXEC = { create = true, monitor_create = true, exec = true }

local function exec_result(v, err, death, program)
  if v == nil and errors.is_error(err) then err.exec = program == true end
  return v, err, death
end

-- Each wrapper is made on first use: a command calls a few dozen of the core's functions, and
-- making all of them at load took a closure and an upvalue each (15 KB of a run's heap).
return setmetatable(M, { __index = function(t, name)
  local v = core[name]
  if v == nil then return nil end
  local w = v
  if EXEC[name] then
    w = function(...) return exec_result(result(v(...))) end
  elseif type(v) == "function" and not AS_IS[name] then
    w = function(...) return result(v(...)) end
  end
  rawset(t, name, w)
  return w
end })
