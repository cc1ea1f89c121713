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

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- A logging binary (cio.BinaryIO, `--log-uri binary:///path?k=v`), with containerd's shim
-- protocol: the monitor starts it with the container's stdout on fd 3, stderr on fd 4, fd 5
-- to close once ready, and CONTAINER_ID / CONTAINER_NAMESPACE in its environment; each
-- query pair k=v becomes the arguments k v.  Only a detached task (the monitor) runs it.
function M.binary(path, query)
  local argv = { path }
  for pair in (query or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    argv[#argv + 1] = unescape(k)
    if v ~= "" then argv[#argv + 1] = unescape(v) end
  end
  local null, msg, errno = core.open("/dev/null", "rw")
  if not null then return nil, errors.new(msg, errno) end
  return { stdin = null, stdout = null, stderr = null, kind = "binary", logger = argv,
    needs_monitor = true, close = function() core.close(null) end }
end

--- An IO from a `--log-uri` value: `file:///path`, a bare path (a file), or
-- `binary:///path?k=v` (a logging binary).
function M.log_uri(uri)
  if type(uri) ~= "string" then error("log_uri: uri: expected string", 2) end
  local bin, q = uri:match("^binary://(/[^?]*)%??(.*)$")
  if bin then return M.binary(unescape(bin), q) end
  local path = uri:match("^file://(/.*)$") or (not uri:match("^%a[%w+.-]*:") and uri)
  if path and path ~= "" then return M.log_file(path) end
  return nil, errors.invalid("log-uri %q: unsupported scheme (file:// or binary://)", uri)
end

--- Named pipes DIR/ID-stdin, DIR/ID-stdout, DIR/ID-stderr, as containerd's cio.NewFIFOSet
-- makes them, so that another process can attach.  The init holds each open read-write, so it
-- never sees EOF nor SIGPIPE when a reader comes and goes.  For a detached task the monitor
-- keeps output that no reader took when the container exits, for a late reader, until the
-- delete (see csrc/monitor.h).  `Task:delete` removes them.
function M.fifo_dir(dir, id)
  local ok, msg, errno = core.mkdir_p(dir, 448)
  if not ok then return nil, errors.new(msg, errno) end
  local fds, fifos = {}, {}
  local function close() for _, fd in pairs(fds) do core.close(fd) end end
  for _, name in ipairs({ "stdin", "stdout", "stderr" }) do
    local path = dir .. "/" .. id .. "-" .. name
    ok, msg, errno = core.mkfifo(path, 384)
    if not ok and errno ~= 17 then close(); return nil, errors.new(msg, errno) end
    local fd
    fd, msg, errno = core.open(path, "rw")
    if not fd then close(); return nil, errors.new(msg, errno) end
    fds[name], fifos[name] = fd, path
  end
  return { stdin = fds.stdin, stdout = fds.stdout, stderr = fds.stderr, kind = "fifo",
    fifos = fifos, close = close }
end

--- The IO of `ctr run`/`ctr tasks start` flags: --null-io, --log-uri, --fifo-dir, else the
-- caller's stdio (foreground) or /dev/null (detached).
function M.from_flags(f, id, detach)
  if f["null-io"] then return M.null_io() end
  if f["log-uri"] and f["log-uri"] ~= "" then return M.log_uri(f["log-uri"]) end
  if f["fifo-dir"] and f["fifo-dir"] ~= "" then return M.fifo_dir(f["fifo-dir"], id) end
  if detach then return M.null_io() end
  return M.stdio()
end

return M
