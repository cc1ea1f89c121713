-- core.spawn: a program run with no shell (argv, environment, cwd, stdin, captured stdout and
-- stderr, a timeout), the way the library runs CNI plugins, external runtimes and ps.
local core = require("ctr.core")
local errors = require("ctr.errors")
local S = require("support.ctrlua")

local function spawn(opts)
  local r, msg, errno = core.spawn(opts)
  if not r then return nil, errors.new(msg, errno) end
  return r
end

-- The pids whose command line holds `marker`.
local function processes_with(marker)
  local found = {}
  for _, name in ipairs(core.listdir("/proc") or {}) do
    if name:match("^%d+$") then
      local cmd = core.read_file("/proc/" .. name .. "/cmdline", 65536)
      if cmd and cmd:find(marker, 1, true) then found[#found + 1] = tonumber(name) end
    end
  end
  return found
end

describe("core.spawn", function()
  local tmp
  before_each(function() tmp = S.tmpdir() end)
  after_each(function() core.remove_tree(tmp) end)

  it("passes argv intact: spaces, quotes, shell syntax and empty strings are just bytes", function()
    local args = { "a b", "it's", '"double"', "$HOME", "; rm -rf x", "`id`", "", "tab\there", "*" }
    local argv = { "printf", "[%s]\n" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local r = assert(spawn({ argv = argv }))
    assert.are.equal(0, r.code, r.stderr)
    local want = {}
    for _, a in ipairs(args) do want[#want + 1] = "[" .. a .. "]\n" end
    assert.are.equal(table.concat(want), r.stdout)
    assert.are.equal("", r.stderr)
  end)

  it("gives exactly the environment asked for, or ours", function()
    local r = assert(spawn({ argv = { "env" }, env = { PATH = "/usr/bin:/bin", X = "one two", Q = "'\"" } }))
    assert.are.equal("PATH=/usr/bin:/bin\nQ='\"\nX=one two\n", r.stdout)
    r = assert(spawn({ argv = { "env" }, env = {} }))
    assert.are.equal("", r.stdout)
    r = assert(spawn({ argv = { "sh", "-c", 'printf %s "$PATH"' } }))
    assert.are.equal(core.getenv("PATH"), r.stdout)
    -- a bare name is found in the PATH the program gets
    r = assert(spawn({ argv = { "pwd" }, env = { PATH = "/nonexistent:/bin" } }))
    assert.are.equal(0, r.code)
  end)

  it("runs in the directory asked for; a missing one is an error naming it", function()
    local r = assert(spawn({ argv = { "pwd" }, cwd = tmp }))
    assert.are.equal(tmp .. "\n", r.stdout)
    local _, err = spawn({ argv = { "pwd" }, cwd = tmp .. "/nope" })
    assert.are.equal("ENOENT", err.sym)
    assert.matches("spawn `pwd': chdir `" .. tmp .. "/nope'", err.msg, 1, true)
  end)

  it("stdin from bytes, from a descriptor, or /dev/null", function()
    local r = assert(spawn({ argv = { "cat" }, stdin = "line 1\n\0binary\n" }))
    assert.are.equal("line 1\n\0binary\n", r.stdout)
    assert(core.write_file(tmp .. "/in", "from a file\n"))
    local fd = assert(core.open(tmp .. "/in", "r"))
    r = assert(spawn({ argv = { "cat" }, stdin = fd }))
    core.close(fd)
    assert.are.equal("from a file\n", r.stdout)
    r = assert(spawn({ argv = { "cat" } }))
    assert.are.equal("", r.stdout)
    -- a program that never reads its stdin does not hurt us (no SIGPIPE)
    r = assert(spawn({ argv = { "true" }, stdin = string.rep("x", 4 * 1024 * 1024) }))
    assert.are.equal(0, r.code)
  end)

  it("stdout and stderr to descriptors or /dev/null instead of captured", function()
    local fd = assert(core.open(tmp .. "/out", "a"))
    local r = assert(spawn({ argv = { "sh", "-c", "echo out; echo err >&2" }, stdout = fd, stderr = fd }))
    core.close(fd)
    assert.is_nil(r.stdout)
    assert.is_nil(r.stderr)
    assert.are.equal("out\nerr\n", core.read_file(tmp .. "/out", 100))
    r = assert(spawn({ argv = { "sh", "-c", "echo out; echo err >&2" }, stdout = "null" }))
    assert.is_nil(r.stdout)
    assert.are.equal("err\n", r.stderr)
  end)

  it("moves a MiB each way on both pipes at once without a deadlock", function()
    local MiB = 1024 * 1024
    -- it fills stderr before it reads stdin, then echoes stdin: every pipe full at some point
    local input = string.rep("0123456789abcdef", 2 * MiB / 16)
    local r = assert(spawn({ argv = { "sh", "-c", "head -c 1048576 /dev/zero >&2; cat; head -c 1048576 /dev/zero" },
      stdin = input, timeout_ms = 60000 }))
    assert.are.equal(0, r.code)
    assert.are.equal(MiB, #r.stderr)
    assert.are.equal(2 * MiB + MiB, #r.stdout)
    assert.is_true(r.stdout:sub(1, 2 * MiB) == input)
    assert.are.equal(string.rep("\0", MiB), r.stderr)
  end)

  it("more output than cap kills the program: EFBIG", function()
    local _, err = spawn({ argv = { "sh", "-c", "head -c 100000 /dev/zero; sleep 100" }, cap = 1000 })
    assert.are.equal("EFBIG", err.sym)
    assert.matches("more than 1000 bytes on stdout", err.msg, 1, true)
  end)

  it("a timeout kills the program and reaps it: ETIMEDOUT, no process left", function()
    local marker = ("1000.%d%d"):format(core.getpid(), math.floor(core.monotime() * 1000) % 100000)
    local t0 = core.monotime()
    local r, err = spawn({ argv = { "sleep", marker }, timeout_ms = 300 })
    assert.is_nil(r)
    assert.are.equal("ETIMEDOUT", err.sym)
    assert.matches("spawn `sleep': still running after 300 ms: killed", err.msg, 1, true)
    assert.is_true(core.monotime() - t0 < 10)
    assert.are.same({}, processes_with(marker))
  end)

  it("a missing or unexecutable program is an error naming it, not exit 127", function()
    local _, err = spawn({ argv = { "no-such-program-ctrlua" } })
    assert.are.equal("ENOENT", err.sym)
    assert.matches("spawn `no-such-program-ctrlua': no such program in PATH", err.msg, 1, true)
    _, err = spawn({ argv = { tmp .. "/missing" } })
    assert.are.equal("ENOENT", err.sym)
    assert.matches("execve `" .. tmp .. "/missing'", err.msg, 1, true)
    assert(core.write_file(tmp .. "/noexec", "#!/bin/sh\n", { mode = 420 }))
    _, err = spawn({ argv = { tmp .. "/noexec" } })
    assert.are.equal("EACCES", err.sym)
    assert.matches("spawn `" .. tmp .. "/noexec': execve", err.msg, 1, true)
    -- no fallback to a shell for a file without #!: ENOEXEC
    assert(core.write_file(tmp .. "/script", "echo hi\n", { mode = 493 }))
    _, err = spawn({ argv = { tmp .. "/script" } })
    assert.are.equal("ENOEXEC", err.sym)
  end)

  it("exit codes as they are; a signal as 128+N with the signal", function()
    local r = assert(spawn({ argv = { "sh", "-c", "exit 3" } }))
    assert.are.equal(3, r.code)
    assert.is_nil(r.signal)
    r = assert(spawn({ argv = { "sh", "-c", "exit 255" } }))
    assert.are.equal(255, r.code)
    r = assert(spawn({ argv = { "sh", "-c", "kill -TERM $$" } }))
    assert.are.equal(143, r.code)
    assert.are.equal(15, r.signal)
  end)

  it("the program gets stdio only, default signal dispositions and an empty mask", function()
    local r = assert(spawn({ argv = { "sh", "-c", "ls /proc/self/fd; grep -e SigBlk -e SigIgn /proc/self/status" } }))
    -- ls holds one directory fd of its own (3)
    assert.matches("^0\n1\n2\n3\nSigBlk:%s+0+\nSigIgn:%s+0+\n$", r.stdout)
  end)

  it("foreground: a ^C meanwhile is the program's, not ours; our dispositions come back", function()
    local function ignored_here()
      local hex = core.read_file("/proc/self/status", 65536):match("SigIgn:%s*(%x+)")
      return tonumber(hex:sub(-1), 16) % 4 >= 2 -- SIGINT is bit 1
    end
    assert.is_false(ignored_here())
    -- SIGINT to the caller (this process) while the program runs; the program gets SIGINT too
    local r = assert(spawn({ argv = { "sh", "-c", "kill -INT $PPID; sleep 0.2; kill -INT $$" }, foreground = true }))
    assert.are.equal(2, r.signal)
    assert.is_false(ignored_here())
  end)

  it("raises on a wrong argument, naming it", function()
    assert.has_error(function() core.spawn({ argv = {} }) end, "spawn: argv: expected 1 to 65536 strings")
    assert.has_error(function() core.spawn({ argv = { "x", 1 } }) end, "spawn: argv[2]: expected string, got number")
    assert.has_error(function() core.spawn({ argv = { "x" }, env = { A = 1 } }) end, "spawn: env.A: expected string, got number")
    assert.has_error(function() core.spawn({ argv = { "x" }, stdout = "file" }) end)
  end)
end)

describe("core.spawn #root", function()
  it("hide_mounts: a private mount namespace without the given mounts", function()
    local tmp = S.tmpdir()
    local m = tmp .. "/m"
    assert(core.mkdir(m))
    assert(core.mount("tmpfs", "tmpfs", m, { "size=1m" }))
    local ok, r = pcall(spawn, { argv = { "cat", "/proc/self/mountinfo" }, hide_mounts = { m } })
    local mine = core.read_file("/proc/self/mountinfo", 4 * 1024 * 1024)
    core.unmount(m, { detach = true })
    core.remove_tree(tmp)
    assert.is_true(ok, r)
    assert.is_truthy(r, "spawn")
    assert.is_truthy(mine:find(" " .. m .. " ", 1, true))
    assert.is_nil(r.stdout:find(" " .. m .. " ", 1, true))
  end)
end)
