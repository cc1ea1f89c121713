local core = require("ctr.core")
local oci = require("ctr.oci")

local FIXTURE = "spec/fixtures/containerd-1.6-default-spec.json"

local function tmpdir() return require("support.tmp").dir("oci") end

-- A ctx whose rootfs reader serves files from a table (nil = missing, as ENOENT).
local function fake_ctx(files, ns)
  local reads = {}
  return {
    namespace = ns or "default",
    reads = reads,
    read_rootfs_file = function(path, cap)
      reads[#reads + 1] = { path = path, cap = cap }
      local v = files[path]
      if v == nil then return nil, require("ctr.errors").new("open " .. path .. ": No such file or directory", 2) end
      return v
    end,
  }
end

local function gen(ctx, c, ...)
  return oci.generate_spec(ctx, {}, c or { id = "c1" }, ...)
end

local function json(t) return core.json_encode(t) end

local function image(cfg) return { name = "docker.io/library/test:latest", config = { config = cfg } } end

describe("oci default spec", function()
  it("equals containerd 1.6's `ctr oci spec` output with the namespace and id substituted", function()
    local want = assert(core.json_decode(assert(core.read_file(FIXTURE))))
    assert.are.equal("/default", want.linux.cgroupsPath) -- ctr oci spec has no container id
    want.linux.cgroupsPath = "/ns1/box"
    local got = assert(oci.generate_spec({ namespace = "ns1" }, {}, { id = "box" }))
    assert.are.equal(json(want), json(got))
    assert.are.equal(json(want), json(oci.default_spec("ns1", "box")))
  end)

  it("keeps the fixture's field order irrelevant but every value exact (round trip through JSON)", function()
    local got = oci.default_spec("default", "")
    local back = assert(core.json_decode(core.json_encode(got, true)))
    assert.are.equal(json(got), json(back))
    assert.is_nil(got.process.args)
    assert.is_nil(got.process.env)
    assert.is_nil(got.process.terminal)
    assert.is_nil(got.process.capabilities.inheritable)
  end)

  it("takes the namespace from the client when ctx has none and fails without any", function()
    local s = assert(oci.generate_spec(nil, { namespace = "other" }, { id = "x" }))
    assert.are.equal("/other/x", s.linux.cgroupsPath)
    local v, err = oci.generate_spec(nil, {}, { id = "x" })
    assert.is_nil(v)
    assert.matches("namespace is required", err.msg)
  end)

  it("with_default_unix_devices appends containerd's device cgroup allow list", function()
    local s = assert(gen(fake_ctx({}), nil, oci.with_default_unix_devices))
    local d = s.linux.resources.devices
    assert.are.equal(10, #d)
    assert.are.same({ allow = false, access = "rwm" }, d[1])
    local seen = {}
    for i = 2, #d do
      assert.is_true(d[i].allow)
      assert.are.equal("rwm", d[i].access)
      assert.are.equal("c", d[i].type)
      seen[#seen + 1] = d[i].major .. ":" .. tostring(d[i].minor)
    end
    assert.are.same({ "1:3", "1:8", "1:7", "5:0", "1:5", "1:9", "5:1", "136:nil", "5:2" }, seen)
    assert.is_nil(s.linux.devices)
    assert.is_truthy(json(s):find('{"access":"rwm","allow":true,"major":136,"type":"c"}', 1, true))
  end)
end)

describe("oci compose", function()
  it("applies in order and stops at the first error", function()
    local calls = {}
    local function rec(name) return function() calls[#calls + 1] = name end end
    local bad = function() return nil, require("ctr.errors").new("boom") end
    local s = {}
    local ok, err = oci.compose(rec("a"), bad, rec("c"))(nil, nil, nil, s)
    assert.is_nil(ok)
    assert.are.equal("boom", err.msg)
    assert.are.same({ "a" }, calls)
    assert.is_true(oci.compose(rec("x"), rec("y"))(nil, nil, nil, s))
    assert.are.same({ "a", "x", "y" }, calls)
  end)

  it("raises on a non-function opt naming it", function()
    assert.has_error(function() oci.compose(function() end, 42) end, "compose: opts[2]: expected function, got number")
  end)

  it("opts work on an empty spec (ensure helpers)", function()
    local s = {}
    assert.is_true(oci.apply_opts(nil, nil, {}, s, oci.with_env({ "A=1" }), oci.with_host_namespace("network"),
      oci.with_added_capabilities({ "CAP_SYS_ADMIN" }), oci.with_memory_limit(1024), oci.with_rootfs_readonly(),
      oci.with_linux_namespace({ type = "pid", path = "/proc/1/ns/pid" })))
    assert.are.same({ "A=1" }, s.process.env)
    assert.are.same({ type = "pid", path = "/proc/1/ns/pid" }, s.linux.namespaces[1])
    assert.are.equal(1024, s.linux.resources.memory.limit)
    assert.is_true(s.root.readonly)
  end)
end)

describe("oci options", function()
  local ctx = fake_ctx({})

  it("with_env replaces by key, appends new keys and unsets KEY without =", function()
    local s = assert(gen(ctx, nil, oci.with_env({ "A=1", "B=2", "C=3" }), oci.with_env({ "B=20", "D=4", "A", "C=" })))
    assert.are.same({ "B=20", "C=", "D=4" }, s.process.env)
    assert.are.equal('["B=20","C=","D=4"]', json(s.process.env))
    local e = assert(gen(ctx, nil, oci.with_env({ "X=1" }), oci.with_env({ "X" })))
    assert.are.equal("[]", json(e.process.env))
  end)

  it("with_env_file skips comments and blank lines and follows ctr for KEY without =", function()
    local d = tmpdir()
    finally(function() core.remove_tree(d) end)
    assert(core.write_file(d .. "/env", "# a comment=with equals\n\nFOO=bar\r\n  # indented\nEMPTY=\nX=1=2\nGONE\n   \n"))
    local s = assert(gen(ctx, nil, oci.with_env({ "GONE=yes", "KEEP=1" }), oci.with_env_file(d .. "/env")))
    assert.are.same({ "KEEP=1", "FOO=bar", "EMPTY=", "X=1=2" }, s.process.env)
    local v, err = gen(ctx, nil, oci.with_env_file(d .. "/missing"))
    assert.is_nil(v)
    assert.are.equal("ENOENT", err.sym)
    assert.matches("missing", err.msg)
  end)

  it("sets args, cwd, hostname, tty, annotations, rootfs path", function()
    local s = assert(gen(ctx, nil, oci.with_env({ "A=1" }), oci.with_process_args("sh", "-c", "true"),
      oci.with_process_cwd("/work"), oci.with_hostname("box"), oci.with_tty,
      oci.with_annotations({ a = "1" }), oci.with_annotations({ b = "2" }), oci.with_rootfs_path("/abs/root")))
    assert.are.same({ "sh", "-c", "true" }, s.process.args)
    assert.are.equal("/work", s.process.cwd)
    assert.are.equal("box", s.hostname)
    assert.is_true(s.process.terminal)
    assert.are.same({ "A=1", "TERM=xterm" }, s.process.env)
    assert.are.same({ a = "1", b = "2" }, s.annotations)
    assert.are.equal("/abs/root", s.root.path)
    local e = assert(gen(ctx, nil, oci.with_process_args()))
    assert.are.equal("[]", json(e.process.args))
  end)

  it("appends mounts, keeps empty options an array, removes by destination", function()
    local s = assert(gen(ctx, nil, oci.with_mounts({ { destination = "/data", type = "bind", source = "/tmp", options = { "rbind", "ro" } },
      { destination = "/x", type = "tmpfs", source = "tmpfs", options = {} } })))
    assert.are.equal(9, #s.mounts)
    assert.are.same({ destination = "/data", type = "bind", source = "/tmp", options = { "rbind", "ro" } }, s.mounts[8])
    assert.is_truthy(json(s.mounts[9]):find('"options":[]', 1, true))
    local w = assert(gen(ctx, nil, oci.without_mounts("/dev/shm", "/run")))
    for _, m in ipairs(w.mounts) do assert.is_not.equal("/dev/shm", m.destination) assert.is_not.equal("/run", m.destination) end
    assert.are.equal(5, #w.mounts)
    assert.has_error(function() oci.with_mounts({ { type = "bind" } }) end, "mounts[1].destination: expected string, got nil")
  end)

  it("host namespaces, joined namespaces and user namespaces", function()
    local s = assert(gen(ctx, nil, oci.with_host_namespace("network"), oci.with_host_namespace("network"),
      oci.with_linux_namespace({ type = "ipc", path = "/proc/1/ns/ipc" }),
      oci.with_linux_namespace({ type = "cgroup" }),
      oci.with_user_namespace({ { containerID = 0, hostID = 100000, size = 65536 } }, { { containerID = 0, hostID = 100000, size = 65536 } })))
    local types = {}
    for _, n in ipairs(s.linux.namespaces) do types[#types + 1] = n.type .. (n.path and ("=" .. n.path) or "") end
    assert.are.same({ "pid", "ipc=/proc/1/ns/ipc", "uts", "mount", "cgroup", "user" }, types)
    assert.are.equal(100000, s.linux.uidMappings[1].hostID)
    assert.has_error(function() oci.with_host_namespace("bogus") end, 'namespace type: unknown "bogus"')
  end)

  it("privileges, read-only rootfs, cgroup and resources", function()
    local s = assert(gen(ctx, nil, oci.with_new_privileges, oci.with_rootfs_readonly(), oci.with_cgroup(""),
      oci.with_memory_limit(64 * 1024 * 1024), oci.with_cpus(1.5), oci.with_cpu_shares(512), oci.with_pids_limit(10),
      oci.with_rlimit("RLIMIT_NOFILE", 4096, 2048)))
    assert.is_false(s.process.noNewPrivileges)
    assert.is_true(s.root.readonly)
    assert.are.equal("", s.linux.cgroupsPath)
    assert.are.equal(67108864, s.linux.resources.memory.limit)
    assert.are.same({ quota = 150000, period = 100000, shares = 512 }, s.linux.resources.cpu)
    assert.are.equal(10, s.linux.resources.pids.limit)
    assert.are.same({ { type = "RLIMIT_NOFILE", hard = 4096, soft = 2048 } }, s.process.rlimits)
    local n = assert(gen(ctx, nil, oci.with_new_privileges, oci.with_no_new_privileges))
    assert.is_true(n.process.noNewPrivileges)
  end)

  it("capabilities: set, add (no duplicates), drop, inheritable untouched", function()
    local s = assert(gen(ctx, nil, oci.with_added_capabilities({ "CAP_SYS_ADMIN", "CAP_KILL" }),
      oci.with_dropped_capabilities({ "CAP_NET_RAW", "CAP_MKNOD" })))
    local c = s.process.capabilities
    for _, set in ipairs({ "bounding", "effective", "permitted" }) do
      assert.are.equal(13, #c[set])
      assert.are.equal("CAP_SYS_ADMIN", c[set][13])
      for _, x in ipairs(c[set]) do assert.is_not.equal("CAP_NET_RAW", x) end
    end
    assert.is_nil(c.inheritable)
    local t = assert(gen(ctx, nil, oci.with_capabilities({})))
    assert.are.equal("[]", json(t.process.capabilities.bounding))
  end)

  it("caps_from_mask decodes CapEff bits", function()
    assert.are.same({ "CAP_CHOWN", "CAP_KILL" }, oci.caps_from_mask("0000000000000021"))
    assert.are.same({ "CAP_CHECKPOINT_RESTORE" }, oci.caps_from_mask("0000010000000000"))
    assert.are.equal(41, #oci.caps_from_mask("000001ffffffffff"))
  end)

  it("with_privileged clears masked/readonly paths and makes sysfs writable", function()
    local s = assert(gen(ctx, nil, oci.with_privileged))
    assert.is_nil(s.linux.maskedPaths)
    assert.is_nil(s.linux.readonlyPaths)
    for _, m in ipairs(s.mounts) do
      if m.type == "sysfs" then assert.are.same({ "nosuid", "noexec", "nodev", "rw" }, m.options) end
    end
    assert.is_table(s.process.capabilities.bounding)
  end)

  it("with_dev_shm_size rewrites the size option", function()
    local s = assert(gen(ctx, nil, oci.with_dev_shm_size(1024)))
    assert.are.same({ "nosuid", "noexec", "nodev", "mode=1777", "size=1024k" }, s.mounts[4].options)
    local v, err = gen(ctx, nil, oci.without_mounts("/dev/shm"), oci.with_dev_shm_size(1))
    assert.is_nil(v)
    assert.matches("no /dev/shm mount", err.msg)
  end)

  it("with_spec_from_file replaces the spec; bad JSON is an error", function()
    local d = tmpdir()
    finally(function() core.remove_tree(d) end)
    assert(core.write_file(d .. "/config.json", '{"ociVersion":"1.0.2","process":{"args":["x"]}}'))
    assert(core.write_file(d .. "/bad.json", '{"ociVersion":'))
    local s = assert(gen(ctx, nil, oci.with_spec_from_file(d .. "/config.json")))
    assert.are.same({ ociVersion = "1.0.2", process = { args = { "x" } } }, s)
    local v, err = gen(ctx, nil, oci.with_spec_from_file(d .. "/bad.json"))
    assert.is_nil(v)
    assert.matches("decoding spec config file failed", err.msg)
  end)
end)

describe("oci with_image_config", function()
  local passwd = table.concat({
    "root:x:0:0:root:/root:/bin/sh",
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "app:x:1000:1001:App:/home/app:/bin/sh",
    "", "garbage line without colons", "broken:x:notanumber:5::/:/bin/sh", "short:x:7",
    "huge:x:4294967296:4294967296::/:/bin/sh",
    "neg:x:-1:0::/:/bin/sh",
    "# comment:x:9:9::/:/bin/sh",
  }, "\n")
  local group = table.concat({
    "root:x:0:", "wheel:x:10:root,app", "audio:x:29:app", "app:x:1001:app", "bad:x:zz:app",
    "biggid:x:99999999999:nobody", "video:x:44: app ,other",
  }, "\n")
  local files = { ["/etc/passwd"] = passwd, ["/etc/group"] = group }

  it("sets env (image over default PATH, spec env over image), args, cwd", function()
    local ctx = fake_ctx(files)
    local s = assert(gen(ctx, nil, oci.with_env({ "FOO=cli", "ONLY=cli" }), oci.with_image_config(image({
      Env = { "FOO=image", "BAR=image" }, Entrypoint = { "/entry" }, Cmd = { "a", "b" }, WorkingDir = "/srv" }))))
    assert.are.same({ oci.DEFAULT_PATH_ENV, "FOO=cli", "BAR=image", "ONLY=cli" }, s.process.env)
    assert.are.same({ "/entry", "a", "b" }, s.process.args)
    assert.are.equal("/srv", s.process.cwd)
    assert.are.same({ uid = 0, gid = 0, additionalGids = { 0, 10 } }, s.process.user)
    -- the reader got a size cap
    assert.are.equal(oci.MAX_USER_FILE, ctx.reads[1].cap)
  end)

  it("keeps the image's PATH, defaults cwd to / and args to Cmd; args override Cmd", function()
    local s = assert(gen(fake_ctx(files), nil, oci.with_image_config_args(image({
      Env = { "PATH=/bin" }, Cmd = { "sh" } }), { "echo", "hi" })))
    assert.are.same({ "PATH=/bin" }, s.process.env)
    assert.are.same({ "echo", "hi" }, s.process.args)
    assert.are.equal("/", s.process.cwd)
    local e = assert(gen(fake_ctx({}), nil, oci.with_image_config({ name = "x", config = {} })))
    assert.are.same({ oci.DEFAULT_PATH_ENV }, e.process.env)
    assert.are.equal("[]", json(e.process.args))
    assert.are.same({ 0 }, e.process.user.additionalGids) -- no /etc/group: just the primary gid
  end)

  local cases = {
    { "name", "app", 1000, 1001, { 1001, 10, 29, 44 } },
    { "uid in passwd", "1000", 1000, 1001, { 1001, 10, 29, 44 } },
    { "uid not in passwd", "4242", 4242, 0, { 0 } },
    { "name:group", "app:wheel", 1000, 10, { 10, 29, 44 } },
    { "uid:gid", "5:6", 5, 6, { 6 } },
    { "uid:group", "5:audio", 5, 29, { 29 } },
    { "name:gid", "daemon:3", 1, 3, { 3 } },
    { "root by name", "root", 0, 0, { 0, 10 } },
    { "max uid", "2147483647", 2147483647, 0, { 0 } },
  }
  for _, c in ipairs(cases) do
    it("resolves USER " .. c[1] .. " (" .. c[2] .. ")", function()
      local s = assert(gen(fake_ctx(files), nil, oci.with_image_config(image({ User = c[2] }))))
      assert.are.equal(c[3], s.process.user.uid)
      assert.are.equal(c[4], s.process.user.gid)
      assert.are.same(c[5], s.process.user.additionalGids)
    end)
  end

  local failing = {
    { "uid beyond 2^31-1 (CVE-2024-40635)", "2147483648", '"2147483648" is out of range' },
    { "uid 2^32 (CVE-2024-40635)", "4294967296", '"4294967296" is out of range' },
    { "negative uid", "-1", 'uid "-1" is out of range' },
    { "gid beyond range", "0:4294967295", 'gid "4294967295" is out of range' },
    { "passwd entry out of range", "huge", 'user "huge": uid 4294967296' },
    { "unknown user", "nobody", "no users found for nobody" },
    { "user with a malformed passwd line", "broken", "no users found for broken" },
    { "unknown group", "app:nogroup", "no groups found" },
    { "malformed group line", "app:bad", "no groups found" },
    { "too many colons", "a:b:c", "invalid USER value a:b:c" },
  }
  for _, c in ipairs(failing) do
    it("refuses USER " .. c[1], function()
      local v, err = gen(fake_ctx(files), nil, oci.with_image_config(image({ User = c[2] })))
      assert.is_nil(v)
      assert.is_truthy(err.msg:find(c[3], 1, true), err.msg)
    end)
  end

  it("refuses a supplementary group whose gid is out of range", function()
    local v, err = gen(fake_ctx({ ["/etc/passwd"] = "nobody:x:65534:65534::/:/bin/sh",
      ["/etc/group"] = "biggid:x:99999999999:nobody" }), nil, oci.with_image_config(image({ User = "nobody" })))
    assert.is_nil(v)
    assert.matches("out of range", err.msg)
  end)

  it("a numeric uid works without any /etc/passwd; a name does not", function()
    local s = assert(gen(fake_ctx({}), nil, oci.with_image_config(image({ User = "1234" }))))
    assert.are.same({ uid = 1234, gid = 0, additionalGids = { 0 } }, s.process.user)
    local v, err = gen(fake_ctx({}), nil, oci.with_image_config(image({ User = "app" })))
    assert.is_nil(v)
    assert.are.equal(2, err.errno)
  end)

  it("reports other read errors and oversized files", function()
    local errctx = { namespace = "default", read_rootfs_file = function()
      return nil, require("ctr.errors").new("openat2 `etc/passwd': Too many levels of symbolic links", 40)
    end }
    local v, err = gen(errctx, nil, oci.with_image_config(image({ User = "1000" })))
    assert.is_nil(v)
    assert.are.equal(40, err.errno)
    local big = fake_ctx({ ["/etc/passwd"] = ("x"):rep(oci.MAX_USER_FILE + 1) })
    v, err = gen(big, nil, oci.with_image_config(image({ User = "app" })))
    assert.is_nil(v)
    assert.matches("exceeds", err.msg)
  end)

  it("reads an absolute unmanaged rootfs when ctx has no reader", function()
    local d = tmpdir()
    finally(function() core.remove_tree(d) end)
    assert(core.mkdir_p(d .. "/etc"))
    assert(core.write_file(d .. "/etc/passwd", "app:x:1000:1001::/:/bin/sh\n"))
    local s = assert(oci.generate_spec({ namespace = "default" }, {}, { id = "x" }, oci.with_rootfs_path(d),
      oci.with_image_config(image({ User = "app" }))))
    assert.are.equal(1000, s.process.user.uid)
    assert.are.equal(1001, s.process.user.gid)
    local v, err = oci.generate_spec({ namespace = "default" }, {}, { id = "x" }, oci.with_image_config(image({ User = "app" })))
    assert.is_nil(v)
    assert.matches("no rootfs reader", err.msg)
  end)

  it("refuses config values of the wrong type", function()
    local v, err = gen(fake_ctx(files), nil, oci.with_image_config(image({ Env = "PATH=/x" })))
    assert.is_nil(v)
    assert.matches("Env", err.msg)
    v, err = gen(fake_ctx(files), nil, oci.with_image_config(image({ Cmd = { "a", 1 } })))
    assert.is_nil(v)
    assert.matches("Cmd%[2%]", err.msg)
  end)

  it("parse_passwd and parse_group ignore malformed lines", function()
    local users = oci.parse_passwd(passwd)
    local names = {}
    for _, u in ipairs(users) do names[#names + 1] = u.name end
    assert.are.same({ "root", "daemon", "app", "huge" }, names)
    assert.is_true(users[4].out_of_range)
    local groups = oci.parse_group(group)
    assert.are.equal(6, #groups)
    assert.are.same({ "app", "other" }, groups[6].members)
  end)
end)
