-- ctrlua-runc as a runc user meets it: the bundle `ctrlua-runc spec` writes, run unchanged
-- (run in a terminal, create and start with a console socket, --rootless); terminals (the
-- pty of a foreground run, exec -t, the slave's owner and mode, /dev/ptmx and /dev/tty
-- listed in linux.devices); bind sources relative to the bundle; the global flags and the
-- messages scripts and shims parse.  Where Debian's runc is installed, the same bundle is
-- run by it too and the two must agree (exit code, output), each with a --root of its own.
-- Terminals are real: a tmux server on a private socket, a pane of 80x24.
local core = require("ctr.core")
local B = require("support.bundle")
local S = require("support.ctrlua")
local tmux_server = require("support.tmux").server

local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
local RUNC = core.stat("/usr/sbin/runc") and "/usr/sbin/runc" or nil
local q = B.q
local arr = core.json_array


describe("ctrlua-runc as runc #root", function()
  local dir, T, ids

  -- the runtimes to run a bundle with: ours, and Debian's runc where it is installed
  local function runtimes()
    local t = { { name = "ctrlua-runc", bin = BIN, root = dir .. "/root-ctrlua" } }
    if RUNC then t[2] = { name = "runc", bin = RUNC, root = dir .. "/root-runc" } end
    return t
  end

  -- a runtime's command line (global flags first), as a shell word list
  local function cmdline(rt, args)
    local w = { q(rt.bin), "--root", q(rt.root) }
    for _, a in ipairs(args) do w[#w + 1] = q(a) end
    return table.concat(w, " ")
  end

  -- run rt with args: stdout, stderr, exit code
  local function rc(rt, args, stdin)
    local cmd = ("%s >%s 2>%s <%s"):format(cmdline(rt, args), q(dir .. "/out"), q(dir .. "/err"),
      q(stdin or "/dev/null"))
    local ok, _, code = os.execute(cmd)
    if type(ok) == "number" then code = ok >= 256 and math.floor(ok / 256) or ok end
    return B.slurp(dir .. "/out"), B.slurp(dir .. "/err"), code
  end
  local function must(rt, args)
    local out, err, code = rc(rt, args)
    assert(code == 0, ("%s %s: exit %s: %s"):format(rt.name, table.concat(args, " "),
      tostring(code), err))
    return out
  end

  -- an id unique to this test and runtime
  local function id_for(rt, name)
    local id = name .. "-" .. dir:match("[^.]+$") .. "-" .. rt.name
    ids[#ids + 1] = { rt = rt, id = id }
    return id
  end

  -- a bundle whose config.json is `ctrlua-runc spec`'s (with --rootless: its rootless
  -- variant), edited by edit(spec) when given; its rootfs is the test rootfs (busybox)
  local function spec_bundle(name, edit, rootless)
    local b = dir .. "/" .. name
    assert(core.mkdir(b, 493))
    B.make(b, {})
    assert(core.unlink(b .. "/config.json"))
    local args = { "spec", "--bundle", b }
    if rootless then args[#args + 1] = "--rootless" end
    must(runtimes()[1], args)
    if edit then
      local spec = core.json_decode(assert(core.read_file(b .. "/config.json")))
      edit(spec)
      assert(core.write_file(b .. "/config.json", core.json_encode(spec), { mode = 420 }))
    end
    return b
  end

  local function no_terminal(args)
    return function(spec)
      spec.process.terminal = false
      spec.process.args = arr(args)
    end
  end

  -- the log line's text without its time, for a comparison across runtimes
  local function untimed(s) return (s:gsub('time="[^"]*" ', ""):gsub('"time":"[^"]*"', "")) end

  before_each(function()
    dir = B.tmpdir()
    ids = {}
    T = tmux_server(dir)
  end)

  after_each(function()
    T.kill()
    for _, c in ipairs(ids) do
      os.execute(cmdline(c.rt, { "delete", "--force", c.id }) .. " >/dev/null 2>&1")
    end
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  describe("the default spec", function()
    it("runs unchanged under run in a terminal: an interactive shell, its exit code", function()
      local b = spec_bundle("b")
      for _, rt in ipairs(runtimes()) do
        T.run(cmdline(rt, { "run", "--bundle", b, id_for(rt, "d") }))
        T.wait_for("/ # ", rt.name .. "'s shell prompt")
        T.keys("echo hi-$((6*7)) $(cat /proc/self/status | grep CapAmb); exit 3")
        assert.are.equal(3, T.rc(), rt.name)
        assert.truthy(T.screen():find("hi-42 CapAmb: 0000000000000000", 1, true), T.screen())
        local before, after = T.modes()
        assert.are.equal(before, after, rt.name .. " leaves the terminal's mode as it found it")
      end
    end)

    it("runs unchanged under create and start with --console-socket", function()
      local b = spec_bundle("b")
      for _, rt in ipairs(runtimes()) do
        local id = id_for(rt, "cs")
        local sock = dir .. "/console-" .. rt.name .. ".sock"
        local listen = assert(core.unix_listen(sock))
        must(rt, { "create", "--bundle", b, "--console-socket", sock, id })
        local master, err = core.recv_fd(listen)
        core.close(listen)
        assert(master, err)
        assert.are.equal("created", core.json_decode(must(rt, { "state", id })).status)
        must(rt, { "start", id })
        assert(core.write(master, "echo hi-$((6*7)); exit 0\n"))
        local seen = ""
        S.until_true(function()
          local r = core.poll({ master }, 100)
          if r and r[master] then seen = seen .. (core.read(master, 4096) or "") end
          return seen:find("hi-42", 1, true)
        end, 15, rt.name .. "'s shell to answer on the pty")
        core.close(master)
        S.until_true(function()
          return core.json_decode(must(rt, { "state", id })).status == "stopped"
        end, 15, rt.name .. "'s container to stop")
      end
    end)

    it("keeps the capabilities runc keeps: the ambient set, not inheritable, is left out", function()
      local b = spec_bundle("b", no_terminal({ "grep", "^Cap", "/proc/self/status" }))
      local outs = {}
      for _, rt in ipairs(runtimes()) do
        local out, err, code = rc(rt, { "run", "--bundle", b, id_for(rt, "c") })
        assert.are.equal(0, code, rt.name .. ": " .. err)
        assert.are.equal("", err, rt.name)
        outs[#outs + 1] = out
      end
      assert.matches("CapPrm:%s+0000000020000420", outs[1])
      assert.matches("CapAmb:%s+0000000000000000", outs[1])
      if outs[2] then assert.are.equal(outs[2], outs[1]) end
    end)

    it("runs with --rootless (as root: a user namespace mapping root alone)", function()
      local b = spec_bundle("b", no_terminal({ "sh", "-c", "id; cat /proc/self/uid_map" }), true)
      local outs = {}
      for _, rt in ipairs(runtimes()) do
        local out, err, code = rc(rt, { "--rootless", "true", "run", "--bundle", b,
          id_for(rt, "r") })
        assert.are.equal(0, code, rt.name .. ": " .. err)
        outs[#outs + 1] = out
      end
      assert.matches("^uid=0%(root%) gid=0%(root%)\n%s+0%s+" .. core.geteuid() .. "%s+1\n$", outs[1])
      if outs[2] then assert.are.equal(outs[2], outs[1]) end
    end)
  end)

  describe("terminals", function()
    -- (the size last: runc sets it from a goroutine, racing the process, so it is compared
    -- for ctrlua-runc alone, which sets it before start)
    local REPORT = 'stat -c "%u %g %a" $(tty); stat -c "%F" /dev/tty; echo $(ls /dev/pts); stty size'
    local function check_report(rt, screen)
      local s = screen:gsub("%z", ""):gsub("%s+$", "")
      local at = s:find("1000 5 620\ncharacter special file\n0 ptmx\n", 1, true)
      assert.truthy(at, rt.name .. ": " .. s)
      local size = s:match("\n0 ptmx\n([^\n]*)", at)
      if rt.name == "ctrlua-runc" then assert.are.equal("24 80", size, s) end
      return s:sub(1, at + #"1000 5 620\ncharacter special file\n0 ptmx" - 1)
    end

    it("run in the foreground: the slave owned by the process's user, 0620, group tty; the pane's size", function()
      local b = spec_bundle("b", function(spec)
        spec.process.args = arr({ "sh", "-c", REPORT })
        spec.process.user = { uid = 1000, gid = 1000 }
        -- listed redundantly: the runtime makes both itself
        spec.linux.devices = arr({
          { path = "/dev/ptmx", type = "c", major = 5, minor = 2, fileMode = 438, uid = 0, gid = 0 },
          { path = "/dev/tty", type = "c", major = 5, minor = 0, fileMode = 438, uid = 0, gid = 0 },
        })
      end)
      local screens = {}
      for _, rt in ipairs(runtimes()) do
        T.run(cmdline(rt, { "run", "--bundle", b, id_for(rt, "t") }))
        assert.are.equal(0, T.rc(), rt.name .. ": " .. T.screen())
        local s = check_report(rt, T.screen())
        local before, after = T.modes()
        assert.are.equal(before, after, rt.name)
        screens[#screens + 1] = s
      end
      if screens[2] then assert.are.equal(screens[2], screens[1]) end
    end)

    it("exec -t: a pty of the caller's, its slave owned by the process's user", function()
      local b = spec_bundle("b", no_terminal({ "sleep", "30" }))
      local screens = {}
      for _, rt in ipairs(runtimes()) do
        local id = id_for(rt, "x")
        must(rt, { "create", "--bundle", b, id })
        must(rt, { "start", id })
        T.run(cmdline(rt, { "exec", "-t", "--user", "1000:1000", id, "sh", "-c", REPORT .. "; exit 4" }))
        assert.are.equal(4, T.rc(), rt.name .. ": " .. T.screen())
        local s = check_report(rt, T.screen())
        screens[#screens + 1] = s
      end
      if screens[2] then assert.are.equal(screens[2], screens[1]) end
    end)

    it("a foreground terminal without one of the caller's is refused as runc refuses it", function()
      local b = spec_bundle("b")
      local errs = {}
      for _, rt in ipairs(runtimes()) do
        local id = id_for(rt, "n")
        local _, err, code = rc(rt, { "run", "--bundle", b, id })
        assert.are.equal(1, code, rt.name)
        assert.is_nil(core.stat(rt.root .. "/" .. id), rt.name)
        errs[#errs + 1] = untimed(err):gsub(id, "ID")
      end
      assert.truthy(errs[1]:find("open /dev/tty: no such device or address", 1, true), errs[1])
      if errs[2] then assert.are.equal(errs[2], errs[1]) end
    end)
  end)

  it("binds a relative source from the bundle (runtime spec: relative to the bundle)", function()
    local b = spec_bundle("b", function(spec)
      no_terminal({ "sh", "-c", "cat /mnt/f; grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f4,5" })(spec)
      table.insert(spec.mounts, { destination = "/mnt", type = "bind", source = "data",
        options = arr({ "rbind", "ro" }) })
    end)
    assert(core.mkdir(b .. "/data", 493))
    assert(core.write_file(b .. "/data/f", "from the bundle\n", { mode = 420 }))
    assert(core.mkdir(b .. "/rootfs/mnt", 493))
    local outs = {}
    for _, rt in ipairs(runtimes()) do
      -- from another working directory: relative to the bundle, not to the caller
      local out, err, code = rc(rt, { "run", "--bundle", b, id_for(rt, "m") })
      assert.are.equal(0, code, rt.name .. ": " .. err)
      outs[#outs + 1] = out
    end
    local real = core.realpath(b)
    assert.are.equal("from the bundle\n" .. real .. "/data /mnt\n", outs[1])
    if outs[2] then assert.are.equal(outs[2], outs[1]) end
  end)

  it("says what runc says where scripts and shims parse it: the message, the exit code, the log", function()
    local b = spec_bundle("b", no_terminal({ "sleep", "30" }))
    local cases = {
      { { "state", "nope" } },
      { { "--log-format", "json", "state", "nope" } },
      { { "start", "nope" } },
      { { "kill", "nope" } },
      { { "delete", "nope" } },
      { { "exec", "nope", "true" } },
      { { "--criu", "/nonexistent/criu", "checkpoint", "nope" } },
      { { "--systemd-cgroup", "state", "nope" } },
      { { "--systemd-cgroup", "create", "--bundle", b, "SD" }, not core.stat("/run/systemd/system") },
      { { "run", "--bundle", dir .. "/nonexistent", "NB" } },
      { { "create", "--bundle", b, "DUP" }, "dup" },
    }
    for _, c in ipairs(cases) do
      if c[2] ~= false then
        local seen = {}
        for _, rt in ipairs(runtimes()) do
          local args = {}
          for i, a in ipairs(c[1]) do args[i] = a end
          local id
          for i, a in ipairs(args) do
            if a == "SD" or a == "NB" or a == "DUP" then
              id = id_for(rt, a:lower())
              args[i] = id
            end
          end
          if c[2] == "dup" then must(rt, args) end
          local out, err, code = rc(rt, args)
          local text = untimed(err)
          if id then text = text:gsub(id, "ID") end
          text = text:gsub(dir, "DIR")
          seen[#seen + 1] = { out = out, err = text, code = code }
        end
        local what = table.concat(c[1], " ")
        assert.are_not.equal(0, seen[1].code, what .. ": " .. seen[1].err)
        if seen[2] then
          assert.are.same(seen[2], seen[1], what)
        end
      end
    end
    -- with --log, the line in the log as JSON (logrus's keys), the message alone on stderr
    for _, rt in ipairs(runtimes()) do
      local log = dir .. "/" .. rt.name .. ".log"
      local _, err, code = rc(rt, { "--log", log, "--log-format", "json", "state", "nope" })
      assert.are.equal(1, code)
      assert.are.equal("container does not exist\n", err, rt.name)
      local line = assert(core.read_file(log))
      assert.truthy(line:match('^{"level":"error","msg":"container does not exist","time":"[^"]+"}\n$'),
        rt.name .. ": " .. line)
    end
  end)
end)
