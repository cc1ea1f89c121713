--- Task IO creators, as containerd's cio package: each returns an IO table
-- `{stdin=fd, stdout=fd, stderr=fd, close=function}` that `container:new_task(io)` hands to the
-- runtime as the init's fds 0, 1 and 2.  stdio's also has `pipe_terminals` (see M.stdio).
-- @module ctr.cio
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local function noop() end

-- Do fds a and b (both terminals) lead to the same terminal?
local function same_terminal(a, b)
  local sa = core.stat("/proc/self/fd/" .. a, true)
  local sb = core.stat("/proc/self/fd/" .. b, true)
  return sa and sb and sa.rdev_major == sb.rdev_major and sa.rdev_minor == sb.rdev_minor
end

-- stdio's `pipe_terminals`: the fds a process without a terminal of its own gets.  See
-- M.stdio.  Returns io itself when none of its fds is a terminal, else an IO table whose
-- `copy` is for the wait (core.wait), or nil, err.
local function pipe_terminals(io)
  local theirs, ours = {}, {} -- the pipe ends of the process, and those the wait copies
  local pio = { stdin = io.stdin, stdout = io.stdout, stderr = io.stderr, kind = io.kind, copy = {} }
  local function close_all(list) for i = #list, 1, -1 do core.close(list[i]); list[i] = nil end end
  function pio.close() close_all(theirs); close_all(ours) end
  -- The process has its ends now: ours of them would keep its input from ever ending and
  -- our reads of its output from seeing end of file.
  function pio.started() close_all(theirs) end
  -- The wait has the other ends now (it closes them): returns the copy list.
  function pio.take_copy()
    local copy = pio.copy
    pio.copy, ours = nil, {}
    return copy
  end
  -- a pipe for the process's output (it writes) or for its input (it reads)
  local function pipe(output)
    local r, w = sys.pipe()
    if not r then
      pio.close()
      return nil, w -- the error
    end
    if output then theirs[#theirs + 1], ours[#ours + 1] = w, r
    else theirs[#theirs + 1], ours[#ours + 1] = r, w end
    return r, w
  end
  local r, w
  if core.isatty(io.stdin) then
    r, w = pipe(false)
    if not r then return nil, w end
    pio.stdin = r
    pio.copy[#pio.copy + 1] = { src = io.stdin, dst = w, input = true }
  end
  if core.isatty(io.stdout) then
    r, w = pipe(true)
    if not r then return nil, w end
    pio.stdout = w
    pio.copy[#pio.copy + 1] = { src = r, dst = io.stdout }
  end
  if core.isatty(io.stderr) then
    if pio.stdout ~= io.stdout and same_terminal(io.stdout, io.stderr) then
      -- one pipe for both: the caller's terminal shows them in the order they were written,
      -- as it did when they were the terminal itself
      pio.stderr = pio.stdout
    else
      r, w = pipe(true)
      if not r then return nil, w end
      pio.stderr = w
      pio.copy[#pio.copy + 1] = { src = r, dst = io.stderr }
    end
  end
  if #pio.copy == 0 then return io end
  return pio
end

--- The caller's own stdin, stdout and stderr (cio.WithStdio): the foreground default.  A
-- process with a terminal of its own (process.terminal, `-t`) has them as the other side of
-- its pty.  One without never gets the caller's terminal, where it could change the
-- terminal's modes or size, or read what is typed after ctrlua has exited: in place of each
-- of them that is a terminal, it gets a pipe that the wait copies to or from it (as ctr
-- gives FIFOs and copies); the others (files, pipes, /dev/null) it gets as they are.
-- `io:pipe_terminals()` makes those fds (Task:new_task and Process:start call it; a detached
-- task, which outlives the caller, gets the caller's fds).
function M.stdio()
  return { stdin = 0, stdout = 1, stderr = 2, close = noop, kind = "stdio",
    pipe_terminals = pipe_terminals }
end

--- /dev/null for all three (cio.NullIO, `--null-io`).
function M.null_io()
  local fd, err = sys.open("/dev/null", "rw")
  if not fd then return nil, err end
  return { stdin = fd, stdout = fd, stderr = fd, kind = "null",
    close = function() core.close(fd) end }
end

--- stdout and stderr appended to a file, stdin from /dev/null (cio.LogFile, `--log-uri file://`).
function M.log_file(path)
  local out, err = sys.open(path, "a", 384)
  if not out then return nil, err end
  local null, err2 = sys.open("/dev/null", "r")
  if not null then
    core.close(out)
    return nil, err2
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
  local null, err = sys.open("/dev/null", "rw")
  if not null then return nil, err end
  return { stdin = null, stdout = null, stderr = null, kind = "binary", logger = argv,
    needs_monitor = true, close = function() core.close(null) end }
end

-- Go's strconv.Quote, for messages in Go's words
local function go_quote(s)
  local quoted = s:gsub('[%c"\\]', function(ch)
    local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
    return map[ch] or ("\\x%02x"):format(ch:byte())
  end)
  return '"' .. quoted .. '"'
end

--- Parse a `--log-uri` value as ctr does (url.Parse, then the scheme decides): `file:///path`,
-- a bare path (a file), or `binary:///path?k=v` (a logging binary).  What url.Parse refuses is
-- refused in its words (`parse "::::": missing protocol scheme`), so that such a value is
-- never taken for a relative path.
-- @return `{kind = "file"|"binary", path =, query =}`, or nil, err (sym INVALID)
function M.parse_log_uri(uri)
  if type(uri) ~= "string" then error("parse_log_uri: uri: expected string", 2) end
  local function refuse(why) return nil, errors.invalid("parse %s: %s", go_quote(uri), why) end
  if uri:find("[%z\1-\31\127]") then return refuse("net/url: invalid control character in URL") end
  -- a "%" that is not an escape, before the query (url.Parse keeps the query raw)
  local bad
  for esc in uri:match("^[^?#]*"):gmatch("%%.?.?") do
    if not esc:match("^%%%x%x$") then
      bad = esc
      break
    end
  end
  -- the scheme: a letter, then letters, digits, "+", "-" or ".", up to the first ":"
  local scheme, rest = uri:match("^(%a[%w+.-]*):(.*)$")
  if not scheme then
    if uri:sub(1, 1) == ":" then return refuse("missing protocol scheme") end
    -- no scheme: a path, whose first segment may hold no ":" (it would read as one)
    if uri:match("^[^/]*"):find(":", 1, true) then
      return refuse("first path segment in URL cannot contain colon")
    end
  end
  if bad then return refuse(("invalid URL escape %s"):format(go_quote(bad))) end
  if not scheme then
    if uri == "" then return nil, errors.invalid("log-uri: empty") end
    return { kind = "file", path = uri }
  end
  scheme = scheme:lower()
  if scheme == "binary" then
    local bin, q = rest:match("^//(/[^?]*)%??(.*)$")
    if bin then return { kind = "binary", path = unescape(bin), query = q } end
  elseif scheme == "file" then
    local path = rest:match("^//(/.*)$")
    if path then return { kind = "file", path = unescape(path) } end
  end
  return nil, errors.invalid("log-uri %q: unsupported scheme (file:// or binary://)", uri)
end

--- An IO from a `--log-uri` value (see M.parse_log_uri).
function M.log_uri(uri)
  if type(uri) ~= "string" then error("log_uri: uri: expected string", 2) end
  local u, err = M.parse_log_uri(uri)
  if not u then return nil, err end
  if u.kind == "binary" then return M.binary(u.path, u.query) end
  return M.log_file(u.path)
end

--- Named pipes DIR/ID-stdin, DIR/ID-stdout, DIR/ID-stderr, as containerd's cio.NewFIFOSet
-- makes them, so that another process can attach.  The init holds each open read-write, so it
-- never sees EOF nor SIGPIPE when a reader comes and goes.  For a detached task the monitor
-- keeps output that no reader took when the container exits, for a late reader, until the
-- delete (see csrc/monitor/monitor.h).  `Task:delete` removes them.
function M.fifo_dir(dir, id)
  local ok, err = sys.mkdir_p(dir, 448)
  if not ok then return nil, err end
  local fds, fifos = {}, {}
  local function close() for _, fd in pairs(fds) do core.close(fd) end end
  for _, name in ipairs({ "stdin", "stdout", "stderr" }) do
    local path = dir .. "/" .. id .. "-" .. name
    ok, err = sys.mkfifo(path, 384)
    if not ok and err.sym ~= "EEXIST" then close(); return nil, err end
    local fd
    fd, err = sys.open(path, "rw")
    if not fd then close(); return nil, err end
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
