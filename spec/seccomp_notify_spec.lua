-- Seccomp agents, defaultErrnoRet and ENOSYS for new syscalls, in real containers.
--
-- The agent (spec/fixtures/seccomp-agent.c, built here with cc) listens on a unix socket: the
-- runtime sends it the container process state and the listener (SCMP_ACT_NOTIFY with
-- listenerPath), and it answers mkdir itself (success without a directory, or an errno it is
-- told).  The probe (spec/fixtures/seccomp-probe.c, built static) is bound into busybox
-- bundles to make exact syscalls.  Each ctrlua-runc case runs under Debian's runc too, where
-- it is installed, and the two must agree.
local core = require("ctr.core")
local B = require("support.bundle")
local S = require("support.ctrlua")
local seccomp = require("ctr.seccomp")

local arr = core.json_array
local q = B.q
local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
if BIN:sub(1, 1) ~= "/" then BIN = core.readlink("/proc/self/cwd") .. "/" .. BIN end
local RUNC = core.stat("/usr/sbin/runc") and "/usr/sbin/runc" or nil
local ENOSYS, EPERM, EACCES, EIO = 38, 1, 13, 5

describe("seccomp agents, defaultErrnoRet, ENOSYS #root", function()
  local tools, dir, agents, ids

  setup(function()
    tools = B.tmpdir()
    S.must(("cc -O2 -Wall -Werror -o %s/agent spec/fixtures/seccomp-agent.c"):format(q(tools)))
    S.must(("cc -O2 -static -Wall -Werror -o %s/probe spec/fixtures/seccomp-probe.c"):format(q(tools)))
  end)
  teardown(function()
    core.remove_tree(tools)
    S.cleanup()
  end)

  before_each(function()
    dir = B.tmpdir()
    agents, ids = {}, {}
  end)
  after_each(function()
    for _, c in ipairs(ids) do
      os.execute(("%s --root %s delete --force %s >/dev/null 2>&1"):format(q(c.bin), q(c.root), q(c.id)))
    end
    for _, pid in ipairs(agents) do core.kill(pid, 9) end
    S.unmount_under(dir)
    assert(core.remove_tree(dir))
  end)

  -- the runtimes a bundle runs under: ours, and Debian's runc where it is installed
  local function runtimes()
    local t = { { name = "ctrlua-runc", bin = BIN, root = dir .. "/root-ctrlua" } }
    if RUNC then t[2] = { name = "runc", bin = RUNC, root = dir .. "/root-runc" } end
    return t
  end

  -- rt ARGS...: stdout, stderr, exit code
  local seq = 0
  local function rc(rt, ...)
    seq = seq + 1
    local w = { q(rt.bin), "--root", q(rt.root) }
    for i = 1, select("#", ...) do w[#w + 1] = q((select(i, ...))) end
    local o, e = ("%s/out.%d"):format(dir, seq), ("%s/err.%d"):format(dir, seq)
    local _, code = S.sh(("%s >%s 2>%s </dev/null"):format(table.concat(w, " "), q(o), q(e)))
    return S.slurp(o) or "", S.slurp(e) or "", code
  end

  local function id_for(rt, name)
    local id = ("%s-%d-%s"):format(name, core.getpid(), rt.name)
    ids[#ids + 1] = { bin = rt.bin, root = rt.root, id = id }
    return id
  end

  -- an agent on DIR/NAME.sock answering mkdir with mode ("fake" or an errno); its states go
  -- to DIR/NAME.state.N
  local function agent(name, mode)
    local sock, out = dir .. "/" .. name .. ".sock", dir .. "/" .. name .. ".state"
    local pidf = dir .. "/" .. name .. ".pid"
    S.must(("(sh -c 'echo $$ >%s; exec %s %s %s %s' >%s.log 2>&1 </dev/null &)"):format(
      q(pidf), q(tools .. "/agent"), q(sock), q(out), q(tostring(mode)), q(out)))
    local pid = S.until_true(function() return tonumber(S.slurp(pidf) or "") end, 10, "the agent's pid")
    agents[#agents + 1] = pid
    S.until_true(function() return S.exists(sock) end, 10, "the agent's socket")
    return { sock = sock, out = out,
      -- the n-th state it received (decoded), waited for; the mkdirs it answered
      state = function(n)
        local s = S.until_true(function() return S.slurp(out .. "." .. n) end, 10, "state " .. n)
        return assert(core.json_decode(s)), s
      end,
      mkdirs = function(n) return S.slurp(out .. "." .. n .. ".log") or "" end,
      has = function(n) return S.exists(out .. "." .. n) end }
  end

  -- a busybox bundle in DIR/NAME running args, with the probe at /probe and linux.seccomp =
  -- profile; edit(spec) for anything else
  local function bundle(name, args, profile, edit)
    local b = dir .. "/" .. name
    assert(core.mkdir(b, 493))
    B.make(b, { args = args, edit = function(s)
      s.linux.seccomp = profile
      s.mounts[#s.mounts + 1] = { destination = "/probe", type = "bind", source = tools .. "/probe",
        options = arr({ "bind", "ro" }) }
      if edit then edit(s) end
    end })
    return b
  end

  local function notify_profile(sock, extra)
    local p = { defaultAction = "SCMP_ACT_ALLOW", listenerPath = sock, listenerMetadata = "agent-meta",
      architectures = arr({ "SCMP_ARCH_X86_64" }),
      syscalls = arr({ { names = arr({ "mkdir", "mkdirat" }), action = "SCMP_ACT_NOTIFY" } }) }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  -- the state of a create, checked field by field
  local function check_state(st, id, bundle_dir, status, pid)
    assert.are.equal("1.0.2-dev", st.ociVersion)
    assert.are.same({ "seccompFd" }, st.fds)
    assert.are.equal("agent-meta", st.metadata)
    assert.are.equal("number", type(st.pid))
    if pid then assert.are.equal(pid, st.pid) end
    assert.are.equal("1.0.2-dev", st.state.ociVersion)
    assert.are.equal(id, st.state.id)
    assert.are.equal(status, st.state.status)
    assert.are.equal(bundle_dir, st.state.bundle)
    assert.are.same({ ["org.ctrlua.test"] = "notify" }, st.state.annotations)
  end

  describe("SCMP_ACT_NOTIFY with listenerPath", function()
    for _, nnp in ipairs({ true, false }) do
      it(("hands the listener and the state to the agent, which answers mkdir (noNewPrivileges %s)")
        :format(tostring(nnp)), function()
        for _, rt in ipairs(runtimes()) do
          for _, mode in ipairs({ "fake", tostring(EACCES) }) do
            local ag = agent("a-" .. rt.name .. "-" .. mode, mode)
            local b = bundle("b-" .. rt.name .. "-" .. mode, { "/probe", "mkdir", "/tmp/made" },
              notify_profile(ag.sock), function(s)
                s.process.noNewPrivileges = nnp
                s.annotations = { ["org.ctrlua.test"] = "notify" }
              end)
            local id = id_for(rt, "n" .. mode)
            local out, err, code = rc(rt, "run", "--bundle", b, id)
            assert.are.equal(0, code, rt.name .. ": " .. err)
            if mode == "fake" then
              assert.are.equal("mkdir=0 exists=0\n", out, rt.name) -- success, and no directory
            else
              assert.are.equal("mkdir=errno=13 exists=0\n", out, rt.name)
            end
            local st = ag.state(1)
            check_state(st, id, b, "creating", st.state.pid)
            -- the agent answered the container's own mkdir, from the init's pid
            assert.are.equal("mkdir " .. st.pid .. "\n", ag.mkdirs(1), rt.name)
          end
        end
      end)
    end

    it("sends exec's process its own listener, with the container's state", function()
      for _, rt in ipairs(runtimes()) do
        local ag = agent("a-" .. rt.name, "fake")
        local b = bundle("b-" .. rt.name, { "sleep", "60" }, notify_profile(ag.sock), function(s)
          s.annotations = { ["org.ctrlua.test"] = "notify" }
        end)
        local id = id_for(rt, "x")
        local _, err, code = rc(rt, "run", "--detach", "--bundle", b, id)
        assert.are.equal(0, code, rt.name .. ": " .. err)
        local init = ag.state(1)
        local out, xerr, xcode = rc(rt, "exec", id, "/probe", "mkdir", "/tmp/by-exec")
        assert.are.equal(0, xcode, rt.name .. ": " .. xerr)
        assert.are.equal("mkdir=0 exists=0\n", out, rt.name)
        local st = ag.state(2)
        check_state(st, id, b, "running")
        assert.are.equal(init.pid, st.state.pid, "the state's pid is the init's")
        assert.are_not.equal(init.pid, st.pid, "the process's pid is the exec'd one's")
        assert.are.equal("mkdir " .. st.pid .. "\n", ag.mkdirs(2), rt.name)
      end
    end)

    it("works for ctrlua run.lua --seccomp-profile: the same C code", function()
      local env = S.new_env()
      local ok, e = pcall(function()
        local ag = agent("a-run", "fake")
        local prof = dir .. "/profile.json"
        assert(core.write_file(prof, core.json_encode(notify_profile(ag.sock))))
        local r = env:run("run.lua", "--rm", "--seccomp", "--seccomp-profile", prof, "--mount",
          "type=bind,src=" .. tools .. "/probe,dst=/probe,options=rbind:ro", S.IMAGE, "r1",
          "/probe", "mkdir", "/tmp/made")
        assert.are.equal(0, r.code, r.stderr)
        assert.are.equal("mkdir=0 exists=0\n", r.stdout)
        local st = ag.state(1)
        assert.are.equal("r1", st.state.id)
        assert.are.equal("creating", st.state.status)
        assert.are.equal(env:state_dir("r1"), st.state.bundle)
        assert.are.equal("agent-meta", st.metadata)
        assert.are.equal("mkdir " .. st.pid .. "\n", ag.mkdirs(1))
      end)
      env:destroy()
      if not ok then error(e, 0) end
    end)

    it("works for run.lua -d (the monitor creates the init) and tasks exec, with TSYNC and many architectures", function()
      local env = S.new_env()
      local ok, e = pcall(function()
        local ag = agent("a-d", "fake")
        local prof = dir .. "/profile.json"
        -- TSYNC with a listener needs TSYNC_ESRCH; the little-endian architectures mix
        assert(core.write_file(prof, core.json_encode(notify_profile(ag.sock, {
          flags = arr({ "SECCOMP_FILTER_FLAG_TSYNC" }),
          architectures = arr({ "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_MIPSEL64N32" }) }))))
        local r = env:run("run.lua", "-d", "--seccomp", "--seccomp-profile", prof, "--mount",
          "type=bind,src=" .. tools .. "/probe,dst=/probe,options=rbind:ro", S.IMAGE, "d1", "sleep", "60")
        assert.are.equal(0, r.code, r.stderr)
        local init = ag.state(1)
        assert.are.equal("d1", init.state.id)
        r = env:run("tasks.lua", "exec", "--exec-id", "e1", "d1", "/probe", "mkdir", "/tmp/made")
        assert.are.equal(0, r.code, r.stderr)
        assert.are.equal("mkdir=0 exists=0\n", r.stdout)
        local st = ag.state(2)
        assert.are.equal("d1", st.state.id)
        assert.are.equal("running", st.state.status)
        assert.are.equal(init.pid, st.state.pid)
        assert.are.equal("mkdir " .. st.pid .. "\n", ag.mkdirs(2))
      end)
      env:destroy()
      if not ok then error(e, 0) end
    end)

    -- refused as runc refuses them: create fails (runc: at the init; ctrlua: before clone)
    local refused = {
      { "NOTIFY without listenerPath", function(p) p.listenerPath = nil; p.listenerMetadata = nil end,
        "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath", "listenerPath is not set" },
      { "NOTIFY on write(2)", function(p)
          p.syscalls = arr({ { names = arr({ "write" }), action = "SCMP_ACT_NOTIFY" } })
        end, "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        "SCMP_ACT_NOTIFY cannot be used for the write syscall" },
      { "an agent that is not there", function(p) p.listenerPath = dir .. "/nobody.sock" end,
        "connect to the seccomp agent at linux.seccomp.listenerPath `" .. "DIR/nobody.sock': No such file or directory",
        "nobody.sock: connect: no such file or directory" },
    }
    for _, case in ipairs(refused) do
      it("refuses " .. case[1] .. ", naming it, and leaves nothing behind", function()
        for _, rt in ipairs(runtimes()) do
          local p = notify_profile(dir .. "/unused.sock")
          case[2](p)
          local cg = ("/seccomp-notify-%d/%s"):format(core.getpid(), rt.name)
          local b = bundle("b-" .. rt.name, { "/probe", "mkdir", "/tmp/made" }, p, function(s)
            s.linux.cgroupsPath = cg
          end)
          local id = id_for(rt, "v")
          local out, err, code = rc(rt, "run", "--bundle", b, id)
          assert.are.equal(1, code, rt.name .. ": " .. out .. err)
          local want = rt.name == "runc" and case[4] or case[3]:gsub("DIR", dir)
          assert.truthy(err:find(want, 1, true), rt.name .. ": " .. err)
          assert.are.equal("", out)
          if rt.name == "ctrlua-runc" then
            local list = rc(rt, "list", "--quiet")
            assert.are.equal("", list, "no container left")
            assert.is_nil(core.stat(rt.root .. "/" .. id), "no state left")
            for _, d in pairs(require("ctr.cgroups").dirs(cg) or {}) do
              assert.is_nil(core.stat(d), "no cgroup left: " .. d)
            end
          end
        end
      end)
    end

    it("ignores listenerPath when no rule notifies, as runc does (the runtime spec says so)", function()
      for _, rt in ipairs(runtimes()) do
        local p = notify_profile(dir .. "/nobody.sock",
          { syscalls = arr({ { names = arr({ "mkdir", "mkdirat" }), action = "SCMP_ACT_ERRNO", errnoRet = EACCES } }) })
        local b = bundle("b-" .. rt.name, { "/probe", "mkdir", "/tmp/made" }, p)
        local out, err, code = rc(rt, "run", "--bundle", b, id_for(rt, "i"))
        assert.are.equal(0, code, rt.name .. ": " .. err)
        assert.are.equal("mkdir=errno=13 exists=0\n", out, rt.name)
      end
    end)

    it("refuses NOTIFY as the default action (the runtime's own write would wait on it)", function()
      local ok, err = seccomp.check({ defaultAction = "SCMP_ACT_NOTIFY", listenerPath = "/x.sock" })
      assert.is_nil(ok)
      assert.truthy(err.msg:find("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as the default action", 1, true), err.msg)
    end)
  end)

  describe("errno returns", function()
    it("answers with defaultErrnoRet, a rule's errnoRet, and EPERM when neither is given", function()
      for _, rt in ipairs(runtimes()) do
        for _, c in ipairs({ { EIO, EIO }, { false, EPERM } }) do
          local b = bundle(("b-%s-%s"):format(rt.name, tostring(c[1])),
            { "sh", "-c", "/probe syscall 169; /probe syscall 163" }, nil, function(s)
              local p = seccomp.default_profile(s)
              p.defaultErrnoRet = c[1] or nil
              local calls = p.syscalls
              calls[#calls + 1] = { names = arr({ "acct" }), action = "SCMP_ACT_ERRNO", errnoRet = EACCES }
              s.linux.seccomp = p
            end)
          local out, err, code = rc(rt, "run", "--bundle", b, id_for(rt, "e" .. tostring(c[1])))
          assert.are.equal(0, code, rt.name .. ": " .. err)
          -- reboot(2) (169) is not in the profile: the default action's errno; acct(2) (163)
          -- is, with its own
          assert.are.equal(("errno=%d\nerrno=%d\n"):format(c[2], EACCES), out, rt.name)
        end
      end
    end)
  end)

  describe("syscalls newer than the profile", function()
    it("get ENOSYS under an errno default, where the older ones get its errno", function()
      for _, rt in ipairs(runtimes()) do
        local b = bundle("b-" .. rt.name,
          { "sh", "-c", "/probe syscall 463; /probe syscall 1000; /probe syscall 169" }, nil, function(s)
            s.linux.seccomp = seccomp.default_profile(s)
          end)
        local out, err, code = rc(rt, "run", "--bundle", b, id_for(rt, "s"))
        assert.are.equal(0, code, rt.name .. ": " .. err)
        -- 463 (setxattrat, Linux 6.13) and 1000 (none) are above the profile's newest call;
        -- 169 (reboot) is below it and not allowed
        assert.are.equal(("errno=%d\nerrno=%d\nerrno=%d\n"):format(ENOSYS, ENOSYS, EPERM), out, rt.name)
      end
    end)

    it("make a program fall back (clone3 to clone) under a kill default, where the old ones kill", function()
      local allow = { "read", "write", "close", "fstat", "newfstatat", "stat", "lstat", "mmap",
        "mprotect", "munmap", "mremap", "madvise", "brk", "rt_sigaction", "rt_sigprocmask",
        "rt_sigreturn", "sigaltstack", "ioctl", "access", "lseek", "poll", "fcntl", "dup2", "dup3",
        "pipe2", "execve", "exit", "exit_group", "wait4", "clone", "fork", "vfork", "kill", "tgkill",
        "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64", "getrandom",
        "readlink", "readlinkat", "uname", "getpid", "gettid", "getuid", "geteuid", "getgid",
        "getegid", "futex", "openat" }
      local p = { defaultAction = "SCMP_ACT_KILL_PROCESS", architectures = arr({ "SCMP_ARCH_X86_64" }),
        syscalls = arr({ { names = arr(allow), action = "SCMP_ACT_ALLOW" } }) }
      local json = core.json_encode(p)
      assert.is_true(core.seccomp_stub_len(json) > 0)
      -- clone3 (435) is newer than rseq (334), the profile's newest
      local code, out = core.seccomp_run(json, { tools .. "/probe", "clone3" })
      assert.are.equal(0, code, out)
      assert.are.equal("clone3=errno=38 fallback=ok\n", out)
      -- io_pgetevents (333) is older: the default action, SIGSYS
      code, out = core.seccomp_run(json, { tools .. "/probe", "syscall", "333" })
      assert.are.equal(128 + 31, code, out)
    end)

    it("get no stub under a permissive default, nor when the default answers ENOSYS already", function()
      for _, c in ipairs({ { "SCMP_ACT_ALLOW" }, { "SCMP_ACT_LOG" }, { "SCMP_ACT_TRACE" },
        { "SCMP_ACT_ERRNO", ENOSYS } }) do
        local json = core.json_encode({ defaultAction = c[1], defaultErrnoRet = c[2],
          syscalls = arr({ { names = arr({ "mkdir" }), action = "SCMP_ACT_KILL" } }) })
        assert.are.equal(0, core.seccomp_stub_len(json), c[1])
      end
      -- Docker's profile lists x86_64, x86 and x32: one section for AUDIT_ARCH_X86_64 split
      -- on the x32 bit, one for i386
      local docker = seccomp.default_profile({ process = {} }, { goarch = "amd64", kernel = 6, major = 1 })
      assert.is_true(core.seccomp_stub_len(core.json_encode(docker)) > 12)
    end)
  end)
end)
