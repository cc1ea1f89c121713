--- Task IO creators, as containerd's cio package: each returns an IO table
-- `{stdin=fd, stdout=fd, stderr=fd, close=function}` that `container:new_task(io)` hands to the
-- runtime as the init's fds 0, 1 and 2.
-- @module ctr.cio
local core = require("ctr.core")
local errors = require("ctr.errors")

local M = {}

local function noop() end

--- The caller's own stdin, stdout and stderr (cio.WithStdio): the foreground default.
function M.stdio()
  return { stdin = 0, stdout = 1, stderr = 2, close = noop, kind = "stdio" }
end

--- /dev/null for all three (cio.NullIO, `--null-io`).
function M.null_io()
  local fd, msg, errno = core.open("/dev/null", "rw")
  if not fd then return nil, errors.new(msg, errno) end
  return { stdin = fd, stdout = fd, stderr = fd, kind = "null",
    close = function() core.close(fd) end }
end

--- stdout and stderr appended to a file, stdin from /dev/null (cio.LogFile, `--log-uri file://`).
function M.log_file(path)
  local out, msg, errno = core.open(path, "a", 384)
  if not out then return nil, errors.new(msg, errno) end
  local null, msg2, errno2 = core.open("/dev/null", "r")
  if not null then
    core.close(out)
    return nil, errors.new(msg2, errno2)
  end
  return { stdin = null, stdout = out, stderr = out, kind = "file", path = path,
    close = function() core.close(out); core.close(null) end }
end

--- An IO from a `--log-uri` value: `file:///path` or a bare absolute path.  Other schemes are
-- refused with a clear error until they are supported.
function M.log_uri(uri)
  local path = uri:match("^file://(/.*)$") or (uri:match("^/") and uri)
  if path then return M.log_file(path) end
  return nil, errors.invalid("log-uri %q: only file:///PATH (or an absolute path) is supported", uri)
end

return M
