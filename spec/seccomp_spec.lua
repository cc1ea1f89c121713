-- Seccomp: Docker's default profile as containerd 1.6 builds it (ctr.seccomp), profile files in
-- the OCI and Docker formats, the C filter builder (core.seccomp_check / export_pfc), and the
-- filter the kernel really runs: core.seccomp_run execs a host binary (Debian's busybox, luajit
-- with its FFI) under a filter with no_new_privs, so the rules are proved without a container.
-- The last block runs real containers and needs the runtime to load linux.seccomp (#seccomp_wired).
local core = require("ctr.core")
local oci = require("ctr.oci")
local seccomp = require("ctr.seccomp")
local data = require("ctr.spec.seccomp_default")

local BUSYBOX = "/bin/busybox"
local LUAJIT = (function()
  local p = io.popen("command -v luajit")
  local s = p:read("*l")
  p:close()
  return s
end)()

local AMD64 = { native = "SCMP_ARCH_X86_64", goarch = "amd64", kernel = 6, major = 1 }

local function tmpdir() return require("support.tmp").dir("seccomp") end

local function spec_with(extra_caps)
  local s = oci.default_spec("default", "sc")
  for _, c in ipairs(extra_caps or {}) do table.insert(s.process.capabilities.bounding, c) end
  return s
end

-- every rule naming `name`, in order
local function rules_for(profile, name)
  local found = {}
  for _, r in ipairs(profile.syscalls) do
    for _, n in ipairs(r.names) do
      if n == name then found[#found + 1] = r end
    end
  end
  return found
end

local function unconditional(profile, name, action)
  for _, r in ipairs(rules_for(profile, name)) do
    if r.action == (action or "SCMP_ACT_ALLOW") and (r.args == nil or #r.args == 0) then return true end
  end
  return false
end

local function run(profile, argv)
  local json = type(profile) == "string" and profile or core.json_encode(profile)
  local code, out = core.seccomp_run(json, argv)
  assert(code, out)
  return code, out
end

-- a luajit under the filter calling syscalls through the FFI; prints "name rc errno" lines
local FFI_PRELUDE = [[local ffi=require"ffi" ffi.cdef"long syscall(long n, ...); int personality(unsigned long);"
local function p(n, r) io.write(n, " ", tostring(tonumber(r)), " ", ffi.errno(), "\n") end
]]
local function ffi_run(profile, body)
  return run(profile, { LUAJIT, "-e", FFI_PRELUDE .. body })
end
local CLONE3 = [[p("clone3", ffi.C.syscall(435, nil, 0))]] -- clone3 is 435 on every arch
local function personality(v) return ("p('personality', ffi.C.personality(%d))"):format(v) end

local function write(path, text) assert(core.write_file(path, text, { mode = 420 })) end

describe("seccomp default profile", function()
  it("denies by default with EPERM and allows the big list", function()
    local p = seccomp.default_profile(spec_with(), AMD64)
    assert.are.equal("SCMP_ACT_ERRNO", p.defaultAction)
    assert.is_nil(p.defaultErrnoRet) -- runc's default for SCMP_ACT_ERRNO is EPERM
    for _, n in ipairs({ "read", "write", "execve", "openat2", "futex", "socket", "io_uring_setup" }) do
      assert.is_true(unconditional(p, n), n)
    end
    assert.are.equal(getmetatable(p.syscalls), core.array_mt)
    assert.are.equal(getmetatable(p.syscalls[1].names), core.array_mt)
  end)

  it("adds the host architectures (amd64, arm64, s390x; none for an unknown one)", function()
    assert.are.same({ "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" },
      { unpack(seccomp.default_profile(spec_with(), AMD64).architectures) })
    local arm = seccomp.default_profile(spec_with(), { goarch = "arm64", kernel = 6, major = 1 })
    assert.are.same({ "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64" }, { unpack(arm.architectures) })
    assert.is_true(unconditional(arm, "cacheflush"))
    assert.is_false(unconditional(arm, "arch_prctl"))
    assert.is_true(unconditional(seccomp.default_profile(spec_with(), AMD64), "arch_prctl"))
    local s390 = seccomp.default_profile(spec_with(), { goarch = "s390x", kernel = 6, major = 1 })
    assert.are.same({ "SCMP_ARCH_S390", "SCMP_ARCH_S390X" }, { unpack(s390.architectures) })
    assert.are.equal(1, rules_for(s390, "clone")[1].args[1].index) -- s390 passes flags second
    local odd = seccomp.default_profile(spec_with(), { goarch = "sparc64", kernel = 6, major = 1 })
    assert.are.equal(0, #odd.architectures)
    -- this host: the native architecture is the first of its list
    assert.are.equal(core.seccomp_native_arch(), seccomp.default_profile(spec_with()).architectures[1])
  end)

  it("without CAP_SYS_ADMIN: clone only without namespace flags, clone3 ENOSYS, no mount/unshare", function()
    local p = seccomp.default_profile(spec_with(), AMD64)
    for _, n in ipairs({ "mount", "umount2", "unshare", "setns", "bpf", "clone", "clone3", "keyctl",
      "kexec_load", "open_by_handle_at", "reboot" }) do
      assert.is_false(unconditional(p, n), n)
    end
    local clone = rules_for(p, "clone")
    assert.are.equal(1, #clone)
    assert.are.same({ index = 0, value = 0x7E020000, op = "SCMP_CMP_MASKED_EQ" }, clone[1].args[1])
    assert.are.equal(data.CLONE_NS_FLAGS, 0x7E020000)
    local c3 = rules_for(p, "clone3")
    assert.are.equal(1, #c3)
    assert.are.equal("SCMP_ACT_ERRNO", c3[1].action)
    assert.are.equal(38, c3[1].errnoRet)
    -- CAP_SYS_CHROOT is in containerd's default set
    assert.is_true(unconditional(p, "chroot"))
  end)

  it("with CAP_SYS_ADMIN: clone, clone3, unshare, mount allowed and no ENOSYS rule", function()
    local p = seccomp.default_profile(spec_with({ "CAP_SYS_ADMIN" }), AMD64)
    for _, n in ipairs({ "clone", "clone3", "unshare", "mount", "setns", "bpf", "syslog" }) do
      assert.is_true(unconditional(p, n), n)
    end
    for _, r in ipairs(p.syscalls) do
      assert.are_not.equal("SCMP_ACT_ERRNO", r.action)
      assert.is_nil(r.args ~= nil and r.args[1].op == "SCMP_CMP_MASKED_EQ" or nil)
    end
  end)

  it("unlocks each capability's syscalls, in the order of the bounding set", function()
    local caps = { "CAP_SYS_TIME", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG",
      "CAP_SYS_MODULE", "CAP_SYS_BOOT", "CAP_SYS_RAWIO", "CAP_SYS_PACCT", "CAP_SYS_TTY_CONFIG",
      "CAP_DAC_READ_SEARCH" }
    local s = spec_with()
    s.process.capabilities.bounding = core.json_array(caps)
    local p = seccomp.default_profile(s, AMD64)
    local want = { "settimeofday", "ptrace", "bpf", "perf_event_open", "syslog", "init_module",
      "reboot", "iopl", "acct", "vhangup", "open_by_handle_at" }
    local tail = {}
    for i = #p.syscalls - #caps - 1, #p.syscalls - 2 do tail[#tail + 1] = p.syscalls[i] end
    for i, n in ipairs(want) do
      local hit = false
      for _, x in ipairs(tail[i].names) do hit = hit or x == n end
      assert.is_true(hit, caps[i] .. " -> " .. n)
    end
  end)

  it("allows personality(2) for five personas only, ptrace from kernel 4.8", function()
    local p = seccomp.default_profile(spec_with(), AMD64)
    local vals = {}
    for _, r in ipairs(rules_for(p, "personality")) do
      assert.are.equal("SCMP_CMP_EQ", r.args[1].op)
      vals[#vals + 1] = r.args[1].value
    end
    assert.are.same({ 0, 8, 0x20000, 0x20008, 0xffffffff }, vals)
    assert.is_true(unconditional(p, "ptrace"))
    local old = seccomp.default_profile(spec_with(), { goarch = "amd64", kernel = 4, major = 4 })
    assert.is_false(unconditional(old, "ptrace"))
  end)

  it("encodes as containerd does: no empty args, no valueTwo 0", function()
    local json = core.json_encode(seccomp.default_profile(spec_with(), AMD64))
    assert.is_nil(json:find('"args":[]', 1, true))
    assert.is_nil(json:find('"valueTwo"', 1, true))
    assert.truthy(json:find('"value":2114060288', 1, true))
  end)

  it("with_default_profile() sets linux.seccomp, also on a spec without linux", function()
    local s = spec_with()
    s.linux = nil
    assert.is_nil(seccomp.with_default_profile()(nil, nil, nil, s))
    assert.are.equal("SCMP_ACT_ERRNO", s.linux.seccomp.defaultAction)
    assert.has_error(function() seccomp.default_profile("x") end, "spec: expected table, got string")
  end)
end)

describe("seccomp filter builder", function()
  it("accepts the default profile, for the default and for every capability", function()
    assert.is_true(seccomp.check(seccomp.default_profile(spec_with())))
    local all = spec_with()
    oci.with_all_known_capabilities(nil, nil, nil, all)
    assert.is_true(seccomp.check(seccomp.default_profile(all)))
  end)

  local bad = {
    { "an unknown default action", { defaultAction = "SCMP_ACT_FOO" },
      "linux.seccomp.defaultAction: unknown action `SCMP_ACT_FOO'" },
    { "an unknown rule action", { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { "read" }, action = "SCMP_ACT_NOPE" } } },
      "linux.seccomp.syscalls[0].action: unknown action `SCMP_ACT_NOPE'" },
    { "SCMP_ACT_NOTIFY without listenerPath", { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { "read" }, action = "SCMP_ACT_NOTIFY" } } },
      "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath" },
    { "an unknown operator", { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { "read" }, action = "SCMP_ACT_ERRNO",
        args = { { index = 0, value = 1, op = "SCMP_CMP_APPROX" } } } } },
      "linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_APPROX'" },
    { "an argument index past 5", { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { "read" }, action = "SCMP_ACT_ERRNO",
        args = { { index = 6, value = 1, op = "SCMP_CMP_EQ" } } } } },
      "linux.seccomp.syscalls[0].args[0].index: 6 is out of range" },
    { "an unknown architecture", { defaultAction = "SCMP_ACT_ALLOW",
      architectures = { "SCMP_ARCH_X86_64", "SCMP_ARCH_VAX" } },
      "linux.seccomp.architectures[1]: unknown architecture `SCMP_ARCH_VAX'" },
    { "an unknown flag", { defaultAction = "SCMP_ACT_ALLOW", flags = { "SECCOMP_FILTER_FLAG_MAGIC" } },
      "linux.seccomp.flags[0]: unknown flag `SECCOMP_FILTER_FLAG_MAGIC'" },
    { "no default action", { syscalls = {} }, "linux.seccomp.defaultAction: missing" },
    { "names that are not strings", { defaultAction = "SCMP_ACT_ALLOW",
      syscalls = { { names = { 1 }, action = "SCMP_ACT_ERRNO" } } },
      "linux.seccomp.syscalls[0].names[0]: expected string" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1] .. ", naming it", function()
      local ok, err = seccomp.check(case[2])
      assert.is_nil(ok)
      assert.truthy(err.msg:find(case[3], 1, true), err.msg)
    end)
  end

  it("refuses text that is not JSON", function()
    local ok, msg = core.seccomp_check("{nope")
    assert.is_nil(ok)
    assert.truthy(msg:find("invalid JSON", 1, true))
  end)

  it("skips syscall names this libseccomp does not know, keeps the others", function()
    assert.is_false(core.seccomp_syscall_known("no_such_syscall_ever"))
    assert.is_true(core.seccomp_syscall_known("mkdirat"))
    local j = core.json_encode({ defaultAction = "SCMP_ACT_ALLOW", syscalls = { { names =
      { "no_such_syscall_ever", "mkdirat" }, action = "SCMP_ACT_ERRNO", errnoRet = 13 } } })
    assert.is_true(core.seccomp_check(j))
    local pfc = assert(core.seccomp_export_pfc(j))
    assert.truthy(pfc:find('"mkdirat"', 1, true))
    assert.truthy(pfc:find("ERRNO(13)", 1, true))
    assert.is_nil(pfc:find("no_such_syscall_ever", 1, true))
  end)

  it("accepts the flags TSYNC, LOG and SPEC_ALLOW, and skips rules equal to the default", function()
    assert.is_true(seccomp.check({ defaultAction = "SCMP_ACT_ALLOW", flags = { "SECCOMP_FILTER_FLAG_TSYNC",
      "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW" },
      syscalls = { { names = { "read" }, action = "SCMP_ACT_ALLOW" } } }))
  end)

  it("ORs args on the same index (one rule each) and ANDs the others, as runc", function()
    local pfc = assert(core.seccomp_export_pfc(core.json_encode({ defaultAction = "SCMP_ACT_ALLOW",
      architectures = { core.seccomp_native_arch() },
      syscalls = {
        { names = { "personality" }, action = "SCMP_ACT_ERRNO", args = {
          { index = 0, value = 262144, op = "SCMP_CMP_EQ" }, { index = 0, value = 131072, op = "SCMP_CMP_EQ" } } },
        { names = { "kill" }, action = "SCMP_ACT_ERRNO", args = {
          { index = 0, value = 1, op = "SCMP_CMP_EQ" }, { index = 1, value = 9, op = "SCMP_CMP_EQ" } } },
      } })))
    local pers = pfc:match('"personality".-\n  #') or pfc:match('"personality".*')
    local _, n = pers:gsub("action ERRNO", "")
    assert.are.equal(2, n) -- two rules
    local kill = pfc:match('"kill".-default action')
    local _, k = kill:gsub("action ERRNO", "")
    assert.are.equal(1, k) -- one rule with both conditions
    assert.truthy(kill:find("$a1.lo32 == 9", 1, true))
  end)
end)

describe("seccomp filters in the kernel", function()
  local default = seccomp.default_profile(spec_with())
  local admin = seccomp.default_profile(spec_with({ "CAP_SYS_ADMIN" }))
  local none = { defaultAction = "SCMP_ACT_ALLOW" }

  it("runs ordinary programs under the default profile", function()
    local code, out = run(default, { BUSYBOX, "sh", "-c", "echo ok; ls / >/dev/null && echo ls" })
    assert.are.equal(0, code, out)
    assert.are.equal("ok\nls\n", out)
  end)

  it("denies unshare(2) with EPERM without CAP_SYS_ADMIN, allows it with", function()
    local code, out = run(default, { BUSYBOX, "unshare", "-U", "true" })
    assert.are_not.equal(0, code)
    assert.truthy(out:find("Operation not permitted", 1, true), out)
    local base = run(none, { BUSYBOX, "unshare", "-U", "true" })
    assert.are.equal(base, (run(admin, { BUSYBOX, "unshare", "-U", "true" })))
  end)

  it("answers clone3 with ENOSYS without CAP_SYS_ADMIN and lets it through with", function()
    local _, out = ffi_run(default, CLONE3)
    assert.are.equal("clone3 -1 38\n", out)
    local _, base = ffi_run(none, CLONE3) -- clone3(NULL, 0): the kernel says EINVAL
    assert.are.equal("clone3 -1 22\n", base)
    assert.are.equal(base, select(2, ffi_run(admin, CLONE3)))
  end)

  it("allows personality(0xffffffff) and denies ADDR_NO_RANDOMIZE", function()
    local _, out = ffi_run(default, personality(0xffffffff) .. "\n" .. personality(0x0040000))
    assert.truthy(out:match("^personality %d+ %d+\npersonality %-1 1\n$"), out)
  end)

  it("honours a custom rule: mkdir denied with EACCES", function()
    local dir = tmpdir()
    finally(function() core.remove_tree(dir) end)
    local p = { defaultAction = "SCMP_ACT_ALLOW", syscalls = {
      { names = { "mkdir", "mkdirat" }, action = "SCMP_ACT_ERRNO", errnoRet = 13 } } }
    local code, out = run(p, { BUSYBOX, "mkdir", dir .. "/x" })
    assert.are_not.equal(0, code)
    assert.truthy(out:find("Permission denied", 1, true), out)
    assert.is_nil(core.stat(dir .. "/x"))
    assert.are.equal(0, (run(none, { BUSYBOX, "mkdir", dir .. "/y" })))
  end)

  it("applies defaultErrnoRet, KILL_PROCESS and ORed same-index args", function()
    local _, out = ffi_run({ defaultAction = "SCMP_ACT_ALLOW", syscalls = { { names = { "personality" },
      action = "SCMP_ACT_ERRNO", errnoRet = 95, args = {
        { index = 0, value = 0x40000, op = "SCMP_CMP_EQ" }, { index = 0, value = 0x20000, op = "SCMP_CMP_EQ" } } } } },
      personality(0x40000) .. "\n" .. personality(0x20000))
    assert.are.equal("personality -1 95\npersonality -1 95\n", out)
    local p = seccomp.default_profile(spec_with())
    p.defaultErrnoRet = 38
    assert.are.equal("clone3 -1 38\nkeyctl -1 38\n", select(2, ffi_run(p, CLONE3 ..
      "\np('keyctl', ffi.C.syscall(" .. (core.seccomp_native_arch() == "SCMP_ARCH_X86_64" and 250 or 219) .. ", 0))")))
    local code = run({ defaultAction = "SCMP_ACT_ALLOW", syscalls = { { names = { "getpid" },
      action = "SCMP_ACT_KILL_PROCESS" } } }, { BUSYBOX, "sh", "-c", "echo $$" })
    assert.are.equal(128 + 31, code) -- SIGSYS
  end)
end)

describe("seccomp profile files", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() core.remove_tree(dir) end)

  local function load(text, spec)
    write(dir .. "/p.json", text)
    spec = spec or spec_with()
    local ok, err = seccomp.with_profile(dir .. "/p.json")(nil, nil, nil, spec)
    if err then return nil, err end
    assert.is_nil(ok)
    return spec.linux.seccomp
  end

  it("loads an OCI profile as it is", function()
    local p = assert(load([[{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
      "architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}]]))
    assert.are.equal("SCMP_ACT_ERRNO", p.defaultAction)
    assert.are.equal(1, p.defaultErrnoRet)
    assert.are.same({ "SCMP_ARCH_X86_64" }, { unpack(p.architectures) })
    assert.are.same({ "read", "write" }, { unpack(p.syscalls[1].names) })
  end)

  it("converts Docker's format: archMap, name, includes/excludes by cap, arch and kernel", function()
    local native = core.seccomp_native_arch()
    local doc = core.json_encode({
      defaultAction = "SCMP_ACT_ERRNO",
      archMap = {
        { architecture = native, subArchitectures = { "SCMP_ARCH_X86", "SCMP_ARCH_X32" } },
        { architecture = native == "SCMP_ARCH_AARCH64" and "SCMP_ARCH_X86_64" or "SCMP_ARCH_AARCH64",
          subArchitectures = { "SCMP_ARCH_ARM" } },
      },
      syscalls = {
        { names = { "read", "write", "exit_group" }, action = "SCMP_ACT_ALLOW", comment = "basics" },
        { name = "getpid", action = "SCMP_ACT_ALLOW" },
        { names = { "mount" }, action = "SCMP_ACT_ALLOW", includes = { caps = { "CAP_SYS_ADMIN" } } },
        { names = { "clone" }, action = "SCMP_ACT_ALLOW", excludes = { caps = { "CAP_SYS_ADMIN" } },
          args = { { index = 0, value = 2114060288, valueTwo = 0, op = "SCMP_CMP_MASKED_EQ" } } },
        { names = { "arch_prctl" }, action = "SCMP_ACT_ALLOW", includes = { arches = { "amd64", "x32" } } },
        { names = { "cacheflush" }, action = "SCMP_ACT_ALLOW", includes = { arches = { "arm64" } } },
        { names = { "ptrace" }, action = "SCMP_ACT_ALLOW", includes = { minKernel = "4.8" } },
        { names = { "futuristic" }, action = "SCMP_ACT_ALLOW", includes = { minKernel = "99.0" } },
      },
    })
    local function names(p)
      local t = {}
      for _, r in ipairs(p.syscalls) do t[#t + 1] = table.concat(r.names, ",") end
      return table.concat(t, " ")
    end
    local p = assert(load(doc))
    local arch = native == "SCMP_ARCH_X86_64" and "arch_prctl " or ""
    assert.are.same({ native, "SCMP_ARCH_X86", "SCMP_ARCH_X32" }, { unpack(p.architectures) })
    assert.are.equal("read,write,exit_group getpid clone " .. arch .. "ptrace", names(p))
    assert.is_nil(p.syscalls[1].comment)
    assert.are.equal("SCMP_CMP_MASKED_EQ", p.syscalls[3].args[1].op)
    assert.is_nil(p.archMap)
    local a = assert(load(doc, spec_with({ "CAP_SYS_ADMIN" })))
    assert.are.equal("read,write,exit_group getpid mount " .. arch .. "ptrace", names(a))
    -- and for an arm64 host
    local arm = assert(seccomp.convert_profile(core.json_decode(doc), spec_with(),
      { native = "SCMP_ARCH_AARCH64", goarch = "arm64", kernel = 4, major = 4 }))
    assert.are.equal("read,write,exit_group getpid clone cacheflush", names(arm))
    if native ~= "SCMP_ARCH_AARCH64" then
      assert.are.same({ "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" }, { unpack(arm.architectures) })
    end
  end)

  it("refuses both architectures and archMap, and name with names", function()
    local _, err = load([[{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
      "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}]])
    assert.truthy(err.msg:find("both 'architectures' and 'archMap'", 1, true), err.msg)
    _, err = load([[{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_LOG"}]}]])
    assert.truthy(err.msg:find("use either 'name' or 'names'", 1, true), err.msg)
  end)

  it("reports a missing, oversized, malformed or invalid file", function()
    local _, err = seccomp.with_profile(dir .. "/missing.json")(nil, nil, nil, spec_with())
    assert.are.equal("ENOENT", err.sym)
    assert.truthy(err.msg:find("cannot load seccomp profile", 1, true))
    write(dir .. "/big.json", '{"defaultAction":"SCMP_ACT_ALLOW","x":"' .. ("a"):rep(seccomp.MAX_PROFILE) .. '"}')
    _, err = seccomp.with_profile(dir .. "/big.json")(nil, nil, nil, spec_with())
    assert.are.equal("EFBIG", err.sym)
    _, err = load("{not json")
    assert.truthy(err.msg:find("decoding seccomp profile failed", 1, true), err.msg)
    _, err = load([[{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_BOGUS"}]}]])
    assert.truthy(err.msg:find("unknown action `SCMP_ACT_BOGUS'", 1, true), err.msg)
    assert.has_error(function() seccomp.with_profile(42) end, "path: expected string, got number")
  end)
end)

-- These need the runtime to build and load linux.seccomp (csrc/runtime/seccomp.c wired into
-- config.c/spawn.c); until then create refuses the spec.
describe("seccomp in containers #root #seccomp_wired", function()
  local B = require("support.bundle")
  local dir
  before_each(function() dir = B.tmpdir() end)
  after_each(function()
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. B.q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  local function sh(script, profile)
    B.make(dir, { args = { "sh", "-c", script }, edit = function(s)
      s.linux.seccomp = profile or seccomp.default_profile(s)
    end })
    return B.run(dir)
  end

  it("runs `echo ok` and refuses unshare and mount under the default profile", function()
    local code, info, out, err = sh("echo ok; unshare -U true || echo unshare-denied; mount -t tmpfs t /tmp || echo mount-denied")
    assert.are.equal(0, code, tostring(info) .. tostring(err))
    assert.are.equal("ok\nunshare-denied\nmount-denied\n", out)
    assert.truthy(err:find("Operation not permitted", 1, true), err)
  end)

  it("honours a custom rule: mkdir denied with EACCES", function()
    local code, _, out, err = sh("mkdir /tmp/x || echo denied; test -d /tmp/x || echo absent", {
      defaultAction = "SCMP_ACT_ALLOW",
      syscalls = core.json_array({ { names = core.json_array({ "mkdir", "mkdirat" }),
        action = "SCMP_ACT_ERRNO", errnoRet = 13 } }) })
    assert.are.equal(0, code, err)
    assert.are.equal("denied\nabsent\n", out)
    assert.truthy(err:find("Permission denied", 1, true), err)
  end)

  it("loads the filter without no_new_privs too (before the capabilities are dropped)", function()
    B.make(dir, { args = { "sh", "-c", "grep NoNewPrivs /proc/self/status; unshare -U true || echo denied" },
      edit = function(s)
        s.process.noNewPrivileges = false
        s.linux.seccomp = seccomp.default_profile(s)
      end })
    local code, info, out, err = B.run(dir)
    assert.are.equal(0, code, tostring(info) .. tostring(err))
    assert.are.equal("NoNewPrivs:\t0\ndenied\n", out)
  end)

  it("refuses a profile with an unknown action before anything runs", function()
    local pid, msg = sh("true", { defaultAction = "SCMP_ACT_WHATEVER" })
    assert.is_nil(pid)
    assert.truthy(msg:find("SCMP_ACT_WHATEVER", 1, true), msg)
  end)
end)

-- libseccomp is loaded on first use (csrc/base/lazylib.c): a run without a filter never maps
-- it, one with --seccomp does, in the process that compiles the filter.
describe("libseccomp in a run #root", function()
  local S = require("support.ctrlua")
  teardown(function() S.cleanup() end)

  local function run_maps(id, flags)
    local env = S.new_env()
    local m
    local ok, err = pcall(function()
      local argv = { "run.lua", "--rm" }
      for _, f in ipairs(flags) do argv[#argv + 1] = f end
      for _, a in ipairs({ S.IMAGE, id, "sh", "-c", "echo up; sleep 1" }) do argv[#argv + 1] = a end
      local h = env:spawn(unpack(argv))
      S.until_true(function() return (S.slurp(h.out) or ""):find("up") end, 20,
        "the container to start")
      m = assert(core.read_file("/proc/" .. h.pid .. "/maps", 16 * 1024 * 1024))
      local r = h:wait(20)
      assert.are.equal(0, r.code, r.stderr)
    end)
    env:destroy()
    if not ok then error(err, 0) end
    assert.is_truthy(m:find("/libc%.so"), "the maps of the run were read")
    return m:find("/libseccomp%.so") ~= nil
  end

  it("is never mapped by a run without a filter", function()
    assert.is_false(run_maps("lsc1", {}))
  end)

  it("is mapped by a run with --seccomp", function()
    assert.is_true(run_maps("lsc2", { "--seccomp" }))
  end)
end)
