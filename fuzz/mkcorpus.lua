-- Writes the seed corpora of the fuzz harnesses, fuzz/corpus/NAME/, from real inputs: the
-- project's test image (build/images/busybox.oci.tar), the bundle config of the runtime specs,
-- the hostile layers of spec/archive_spec.lua's breakout table, passwd/group files, monitor
-- requests and replies, hosts.toml files, registry challenges and token answers.  The files are
-- committed; run this again after a change of format (naming corpora writes only those):
--
--   make all image && LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' \
--     LUA_CPATH='build/lib/?.so;;' luajit fuzz/mkcorpus.lua [NAME...]
--
-- Each file is named after what it is, so a finding's ancestry reads.
local core = require("ctr.core")
local bundle = require("support.bundle")
local tar = require("support.tar")
local oci = require("ctr.oci")
local seccomp = require("ctr.seccomp")

local IMAGE = "build/images/busybox.oci.tar"
local OUT = "fuzz/corpus"

local function sh(cmd) assert(os.execute(cmd) == 0, cmd) end
local function put(name, file, data)
  local dir = OUT .. "/" .. name
  assert(core.mkdir_p(dir, 493))
  assert(core.write_file(dir .. "/" .. file, data, { mode = 420 }))
end
local function arr(t) return core.json_array(t) end
local json = core.json_encode

-- ------------------------------------------------------------------ config
local function config_seeds()
  local base = bundle.default_spec()
  put("config", "bundle-default", json(base))
  put("config", "oci-default", json(oci.default_spec("default", "c1")))
  local full = bundle.default_spec()
  full.process.terminal = true
  full.process.consoleSize = { height = 24, width = 80 }
  full.process.user = { uid = 1000, gid = 1000, umask = 18, additionalGids = arr({ 1000, 10 }) }
  full.process.oomScoreAdj = 100
  full.process.capabilities.ambient = arr({ "CAP_NET_BIND_SERVICE" })
  full.process.capabilities.inheritable = arr({ "CAP_NET_BIND_SERVICE" })
  full.process.rlimits = arr({ { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 },
    { type = "RLIMIT_CORE", hard = 18446744073709551615, soft = 0 } })
  full.hooks = { prestart = arr({ { path = "/bin/true", args = arr({ "true", "x" }), env = arr({ "A=1" }), timeout = 5 } }),
    poststop = arr({ { path = "/bin/false" } }) }
  full.annotations = { ["org.example"] = "v" }
  full.linux.devices = arr({ { path = "/dev/fuse", type = "c", major = 10, minor = 229, fileMode = 438, uid = 0, gid = 0 },
    { path = "/dev/p", type = "p" } })
  full.linux.sysctl = { ["net.ipv4.ip_forward"] = "1", ["kernel.shmmax"] = "1000", ["fs.mqueue.msg_max"] = "10" }
  full.linux.rootfsPropagation = "rprivate"
  full.linux.cgroupsPath = "/fuzz/c1"
  full.linux.resources = { memory = { limit = 1048576 }, pids = { limit = 10 } }
  full.mounts[#full.mounts + 1] = { destination = "/data", type = "bind", source = "/tmp",
    options = arr({ "rbind", "ro", "nosuid", "rslave" }) }
  full.mounts[#full.mounts + 1] = { destination = "/opt", source = "/opt", options = arr({ "bind", "rro" }) }
  put("config", "bundle-full", json(full))
  local userns = bundle.default_spec()
  userns.linux.namespaces[#userns.linux.namespaces + 1] = { type = "user" }
  userns.linux.namespaces[#userns.linux.namespaces + 1] = { type = "cgroup" }
  userns.linux.uidMappings = arr({ { containerID = 0, hostID = 100000, size = 65536 } })
  userns.linux.gidMappings = arr({ { containerID = 0, hostID = 100000, size = 65536 } })
  put("config", "bundle-userns", json(userns))
  local joined = bundle.default_spec()
  joined.linux.namespaces = arr({ { type = "network", path = "/proc/1/ns/net" }, { type = "mount" },
    { type = "user", path = "/proc/1/ns/user" } })
  joined.linux.maskedPaths, joined.linux.readonlyPaths = arr({}), arr({})
  put("config", "bundle-joined-ns", json(joined))
  local sc = bundle.default_spec()
  local profile = seccomp.default_profile(sc, { goarch = "amd64", kernel = 6, major = 1 })
  -- a few rules of the default profile and its argument rules: the whole of it is 20 KiB
  local rules = {}
  for i, r in ipairs(profile.syscalls) do
    if i == 1 then r.names = arr({ "read", "write", "openat", "nosuchcall" }) end
    if i <= 3 or r.args then rules[#rules + 1] = r end
  end
  rules[#rules + 1] = { names = arr({ "mmap" }), action = "SCMP_ACT_ERRNO", errnoRet = 1,
    args = arr({ { index = 2, value = 4, op = "SCMP_CMP_MASKED_EQ", valueTwo = 4 },
      { index = 2, value = 1, op = "SCMP_CMP_GE" } }) }
  profile.syscalls = arr(rules)
  profile.flags = arr({ "SECCOMP_FILTER_FLAG_LOG" })
  sc.linux.seccomp = profile
  put("config", "bundle-seccomp", json(sc))
  local nomnt = bundle.default_spec()
  nomnt.linux.namespaces = arr({ { type = "pid" } })
  nomnt.linux.maskedPaths, nomnt.linux.readonlyPaths = arr({}), arr({})
  nomnt.hostname = nil
  put("config", "bundle-host-mount-ns", json(nomnt))
  -- config, NUL, the process of an exec
  local process = json({ args = arr({ "sh", "-c", "id" }), env = arr({ "A=1" }), cwd = "/tmp",
    terminal = false, user = { uid = 5, gid = 6, additionalGids = arr({ 7 }) },
    capabilities = { bounding = arr({ "CAP_KILL" }), effective = arr({ "CAP_KILL" }) },
    rlimits = arr({ { type = "RLIMIT_NPROC", soft = 10, hard = 20 } }), noNewPrivileges = true })
  put("config", "bundle-default-exec", json(base) .. "\0" .. process)
  put("config", "exec-only", "\0" .. process)
end

-- ------------------------------------------------------------------ manifest
local function slot(i) return ("sha256:%064x"):format(i) end

local function manifest_seeds()
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -p '" .. dir .. "' && tar -xf " .. IMAGE .. " -C '" .. dir .. "'")
  local index = assert(core.read_file(dir .. "/index.json"))
  local idoc = assert(core.json_decode(index))
  local mdesc = idoc.manifests[1]
  local manifest = assert(core.read_file(dir .. "/blobs/sha256/" .. mdesc.digest:sub(8)))
  local mdoc = assert(core.json_decode(manifest))
  local config = assert(core.read_file(dir .. "/blobs/sha256/" .. mdoc.config.digest:sub(8)))
  sh("rm -rf '" .. dir .. "'")
  local MT = require("ctr.images").media
  -- the image as it is: index.json, its manifest, its config (real digests)
  put("manifest", "busybox-index", index .. "\0" .. manifest .. "\0" .. config)
  put("manifest", "busybox-manifest", manifest .. "\0" .. config)
  put("manifest", "busybox-config", config)

  -- the same image through slot digests: index -> manifest (slot 2) -> config (slot 3), a
  -- layer (slot 4)
  local layer = "a layer's bytes"
  local cfg = assert(core.json_decode(config))
  cfg.config.User = "fuzz:wheel"
  cfg.config.Entrypoint = arr({ "/bin/sh", "-c" })
  cfg.config.Labels = { a = "b" }
  cfg.config.StopSignal = "SIGINT"
  cfg.rootfs.diff_ids = arr({ core.sha256(layer) })
  local cfg_s = json(cfg)
  local function manifest_of(cfg_slot, layer_slot)
    return json({ schemaVersion = 2, mediaType = MT.oci_manifest,
      config = { mediaType = MT.oci_config, digest = slot(cfg_slot), size = #cfg_s },
      layers = arr({ { mediaType = MT.oci_layer, digest = slot(layer_slot), size = #layer } }) })
  end
  local man = manifest_of(3, 4)
  local function index_of(entries) return json({ schemaVersion = 2, mediaType = MT.oci_index, manifests = arr(entries) }) end
  local idx = index_of({ { mediaType = MT.oci_manifest, digest = slot(2), size = #man,
    platform = { os = "linux", architecture = "amd64" },
    annotations = { ["org.opencontainers.image.ref.name"] = "v1" } } })
  put("manifest", "slots-index", idx .. "\0" .. man .. "\0" .. cfg_s .. "\0" .. layer)
  -- several platforms, one without a platform, arm variants
  local arm = json({ architecture = "arm", variant = "v7", os = "linux", config = {},
    rootfs = { type = "layers", diff_ids = arr({}) } })
  local arm_man = json({ schemaVersion = 2, config = { digest = slot(4), size = #arm }, layers = arr({}) })
  local multi = index_of({
    { mediaType = MT.oci_manifest, digest = slot(3), size = #arm_man, platform = { os = "linux", architecture = "arm", variant = "v7" } },
    { mediaType = MT.oci_manifest, digest = slot(3), size = #arm_man, platform = { os = "linux", architecture = "arm64", variant = "v8" } },
    { mediaType = MT.oci_manifest, digest = slot(3), size = #arm_man },
    { mediaType = MT.docker_manifest, digest = slot(3), size = #arm_man, platform = { os = "linux", architecture = "amd64" } } })
  put("manifest", "slots-multi-platform", multi .. "\0" .. "{}" .. "\0" .. arm_man .. "\0" .. arm)
  -- an index of an index
  local inner = index_of({ { mediaType = MT.oci_manifest, digest = slot(3), size = #man,
    platform = { os = "linux", architecture = "amd64" } } })
  local outer = index_of({ { mediaType = MT.oci_index, digest = slot(2), size = #inner } })
  local man3 = manifest_of(4, 5)
  put("manifest", "slots-nested-index", outer .. "\0" .. inner .. "\0" .. man3 .. "\0" .. cfg_s .. "\0" .. layer)
  -- docker save's manifest.json: config and layers named in the archive
  local dcfg = json({ architecture = "amd64", os = "linux", config = { Env = arr({ "A=1" }), Cmd = arr({ "sh" }), User = "1000:10" },
    rootfs = { type = "layers", diff_ids = arr({ core.sha256(layer) }) } })
  local dm = json(arr({ { Config = "c2.json", RepoTags = arr({ "busybox:latest", "example.com/x:1" }), Layers = arr({ "l3.tar" }) } }))
  put("manifest", "docker-manifest-json", dm .. "\0" .. dcfg .. "\0" .. layer)
  -- an OCI index.json that names its manifest by the org.opencontainers ref name
  put("manifest", "oci-ref-name", index_of({ { mediaType = MT.oci_manifest, digest = slot(2), size = #man,
    annotations = { ["org.opencontainers.image.ref.name"] = "latest" } } }) .. "\0" .. man .. "\0" .. cfg_s .. "\0" .. layer)
  put("manifest", "json-scalars", '[1, -0, 1e308, 2e308, "\\u00e9\\ud83d\\ude00", null, true, {"": {}}]')
end

-- ------------------------------------------------------------------ layer
local function layer_seeds()
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -p '" .. dir .. "'")
  local SANDBOX = "/tmp/ctrlua-fuzz-layer.XXXXXX"
  local seeds = {
    dotdot = { { name = "../sentinel/pwn", data = "x" } },
    ["symlink-out-write-through"] = { { name = "evil", type = "symlink", link = "../sentinel" },
      { name = "evil/pwn", data = "inside" } },
    ["symlink-abs-write-through"] = { { name = "etc", type = "dir", mode = 493 },
      { name = "evil", type = "symlink", link = "/etc" }, { name = "evil/passwd", data = "root::0:0::/:/bin/sh\n" } },
    ["symlink-chain"] = { { name = "a", type = "symlink", link = "b" },
      { name = "b", type = "symlink", link = "../../../sentinel" }, { name = "a/pwn", data = "x" } },
    ["symlink-loop"] = { { name = "l1", type = "symlink", link = "l2" },
      { name = "l2", type = "symlink", link = "l1" }, { name = "l1/pwn", data = "x" } },
    ["hardlink-out"] = { { name = "h", type = "hardlink", link = "../sentinel/secret" } },
    ["hardlink-to-symlink-out"] = { { name = "s", type = "symlink", link = "../sentinel/secret" },
      { name = "h", type = "hardlink", link = "s" }, { name = "h", data = "pwned" } },
    ["whiteouts"] = { { name = "a/.wh.x" }, { name = ".wh.gone" }, { name = "o/.wh..wh..opq" },
      { name = "o/new", data = "new" }, { name = "o/sub/upper", data = "u" }, { name = ".wh.up" } },
    ["whiteout-through-symlink"] = { { name = "evil", type = "symlink", link = "../sentinel" },
      { name = "evil/.wh.secret" }, { name = "evil/.wh..wh..opq" } },
    ["whiteout-dotdot"] = { { name = "a/.wh..." } },
    ["uid-2p31"] = { { name = "f", data = "x", uid = 2 ^ 31 } },
    ["xattrs"] = { { name = "d", type = "dir", xattrs = { ["trusted.overlay.opaque"] = "y" } },
      { name = "f", data = "x", xattrs = { ["user.k"] = "v", ["security.capability"] = "\1\0\0\2" } } },
    ["devices"] = { { name = "sda", type = "block", major = 8, minor = 0 },
      { name = "null", type = "char", major = 1, minor = 3 }, { name = "ok", data = "y" } },
    ["replace-symlink-out"] = { { name = "s", type = "symlink", link = "../sentinel/secret" },
      { name = "s", data = "pwned", mode = 511 }, { name = "d", type = "symlink", link = "../sentinel" },
      { name = "d", type = "dir", mode = 511, uid = 1234 }, { name = "p", type = "symlink", link = "../sentinel/secret" },
      { name = "p", type = "fifo" } },
    ["absolute"] = { { name = SANDBOX .. "/sentinel/pwn", data = "x" } },
    ["metadata"] = { { name = "./", type = "dir", mode = 493 },
      { name = "./d", type = "dir", mode = 1023, mtime = 1000000000, uid = 7, gid = 8 },
      { name = "./d/suid", data = "#!/bin/sh\n", mode = 3565, uid = 1000, gid = 2000, mtime = 1234567890,
        xattrs = { ["user.color"] = "blue" } },
      { name = "./d/link", type = "hardlink", link = "./d/suid" },
      { name = "./d/sym", type = "symlink", link = "/abs/target", uid = 5, gid = 6, mtime = 1111 },
      { name = "./d/fifo", type = "fifo", mode = 384 },
      { name = "./implicit/parent/file", data = "p" },
      { name = "./d/" .. string.rep("long", 40), data = "long name via pax" } },
  }
  local flags = { dotdot = 0, whiteouts = 4, ["whiteout-through-symlink"] = 5, metadata = 2,
    ["replace-symlink-out"] = 4 }
  for name, entries in pairs(seeds) do
    local f = string.char(flags[name] or 0)
    local _, bytes = tar.write(dir .. "/l.tar", entries)
    put("layer", name, f .. bytes)
    if name == "whiteouts" then put("layer", name .. "-overlay", string.char(5) .. bytes) end
  end
  for _, c in ipairs({ "gzip", "zstd" }) do
    local blob = tar.write(dir .. "/l.tar." .. c, seeds.metadata, c)
    put("layer", "metadata-" .. c, string.char(8) .. assert(core.read_file(blob)))
    blob = tar.write(dir .. "/w.tar." .. c, seeds.whiteouts, c)
    put("layer", "whiteouts-" .. c, string.char(4) .. assert(core.read_file(blob)))
  end
  -- a GNU tar of a small tree, as an image layer usually is
  sh(table.concat({ "cd '" .. dir .. "' && mkdir -p t/etc t/bin t/var/empty", "printf 'root:x:0:0::/root:/bin/sh\\n' > t/etc/passwd",
    "ln -s ../etc/passwd t/bin/pw", "ln t/etc/passwd t/etc/hard", "touch -d @1500000000 t/etc/passwd",
    "tar --numeric-owner --format=gnu -C t -cf gnu.tar .", "tar --numeric-owner --format=posix -C t -czf pax.tgz ." }, " && "))
  put("layer", "gnu-tar", "\0" .. assert(core.read_file(dir .. "/gnu.tar")))
  put("layer", "pax-tgz", "\4" .. assert(core.read_file(dir .. "/pax.tgz")))
  put("layer", "empty", "\0")
  sh("rm -rf '" .. dir .. "'")
end

-- ------------------------------------------------------------------ passwd
local function passwd_seeds()
  local passwd = table.concat({
    "root:x:0:0:root:/root:/bin/bash", "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
    "# a comment", "", "  nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin  ",
    "fuzz:x:1000:1000:,,,:/home/fuzz:/bin/sh", "big:x:2147483648:0::/:/bin/sh", "short:x:5",
    "neg:x:-1:0::/:", "" }, "\n")
  local group = table.concat({ "root:x:0:", "wheel:x:10:root, fuzz ,,daemon", "fuzz:x:1000:",
    "nogroup:x:65534:", "big:x:4294967296:fuzz", "bad:x:abc:fuzz", "" }, "\n")
  for i, user in ipairs({ "", "root", "fuzz", "1000", "fuzz:wheel", "1000:10", "0:0", "nobody",
      "big", "2147483648", "fuzz:big", "-1", "+5:wheel", "a:b:c", "missing" }) do
    put("passwd", ("user-%02d"):format(i), passwd .. "\0" .. group .. "\0" .. user)
  end
  put("passwd", "busybox", "root:x:0:0:root:/root:/bin/sh\n\0root:x:0:\n\0root")
  -- short files, as a minimal image has them (the driver parses short ones amplified too)
  put("passwd", "short-gecos", "root:x:0:0:Super User:/root:/bin/sh\n\0wheel:x:10: root , fuzz\n\0root:wheel")
end

-- ------------------------------------------------------------------ monitor
local function monitor_seeds()
  for _, r in ipairs({ "start", "wait", "pause", "resume", "console", "delete", "exit", "start\0x" }) do
    put("monitor", "request-" .. r:gsub("%z", "-nul-"), "\0" .. r)
  end
  -- replies, with the fds the first byte asks for (see fuzz/monitor.c)
  put("monitor", "reply-ok-fd", "\9ok")
  put("monitor", "reply-exit", "\0exit 137")
  put("monitor", "reply-error", "\24error: task is running, not created")
  put("monitor", "reply-two-fds", "\10ok")
  put("monitor", "reply-empty-with-fd", "\9")
  put("monitor", "reply-two-messages", "\13ok")
end

-- ------------------------------------------------------------------ hosts
-- hosts.toml files in the shapes containerd's docs (docs/hosts.md) give them
local function hosts_seeds()
  put("hosts", "docker-io-mirrors", [=[
server = "https://registry-1.docker.io"

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]

[host."https://docker-mirror.internal"]
  capabilities = ["pull", "resolve"]
  ca = "docker-mirror.crt"
]=])
  put("hosts", "insecure-http", [=[
server = "http://192.168.31.250:5000"

[host."http://192.168.31.250:5000"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
]=])
  put("hosts", "client-certs", [=[
server = "https://registry.example.com"

[host."https://registry.example.com"]
  ca = "/etc/certs/myca.pem"
  client = [["/etc/certs/client.cert", "/etc/certs/client.key"],["/etc/certs/client.pem", ""]]
]=])
  put("hosts", "ca-list-client-string", [=[
[host."https://registry.example.com:8443"]
  ca = ["/etc/certs/a.pem", "/etc/certs/b.pem"]
  client = "/etc/certs/client.pem"
  skip_verify = false
]=])
  put("hosts", "override-path-headers", [=[
[host."https://harbor.example.com/v2/proxy-docker.io"]
  capabilities = ["pull", "resolve"]
  override_path = true
  [host."https://harbor.example.com/v2/proxy-docker.io".header]
    x-custom-1 = "custom header"
    x-custom-2 = ["value1", "value2"]
    Authorization = "Basic dXNlcjpwYXNz"
]=])
  put("hosts", "server-only", 'server = "https://registry.example.com"\n')
  put("hosts", "mirrors-then-server", [=[
server = "https://reg.example"   # the server
[host."http://m1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  [host."http://m1:5000".header]
    x-a = "1"
[host."https://m2"]
  ca = "ca.crt"
  client = [["c.cert", "c.key"]]
]=])
  -- the TOML the parser reads beyond what containerd's examples use
  put("hosts", "toml-features", table.concat({
    "# comment line",
    "server = 'https://literal.example/v2/' # literal string",
    "",
    "[host.'http://127.0.0.1:5001']",
    "capabilities = [",
    "  \"pull\",   # one a line",
    "  'resolve',",
    "]",
    "header = { x-inline = \"a\\tb\", \"x-quoted\" = 'v', x.dotted = \"\\u00e9\\U0001F600\" }",
    "a.b.\"c\" = 1_000",
    "n = -42",
    "t = true",
    "f = false",
    "e = []",
    "", }, "\r\n"))
  put("hosts", "empty", "")
  put("hosts", "refused-float", 'server = "x"\n\nfoo = 1.5\n')
  put("hosts", "refused-array-of-tables", '[[host]]\nurl = "https://a"\n')
end

-- ------------------------------------------------------------------ auth
-- Www-Authenticate values (one a line), NUL, the token server's answer: the challenges of
-- docker.io, ghcr.io, quay.io, ECR and the distribution spec's token authentication
local function auth_seeds()
  local jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhdXRoLmRvY2tlci5pbyJ9.c2lnbmF0dXJl"
  put("auth", "docker-io", 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' ..
    'scope="repository:library/alpine:pull"\0' ..
    '{"token":"' .. jwt .. '","access_token":"' .. jwt .. '","expires_in":300,"issued_at":"2024-05-01T10:00:00.123456789Z"}')
  put("auth", "ghcr-io", 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"\0' ..
    '{"token":"djE6dXNlci9pbWFnZToxNzE0NTU2MDAwMDAwMDAwMDAw"}')
  put("auth", "distribution-spec", 'Bearer realm="https://auth.example.com/token",service="registry.example.com",' ..
    'scope="repository:samalba/my-app:pull,push"\0' ..
    '{"token":"' .. jwt .. '","expires_in":3600,"issued_at":"2009-11-10T23:00:00Z"}')
  put("auth", "insufficient-scope", 'Bearer realm="https://auth.example.com/token",service="registry.example.com",' ..
    'scope="repository:samalba/my-app:push",error="insufficient_scope"\0' ..
    '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}')
  put("auth", "oauth-refresh", 'Bearer realm="https://auth.example.com/token",service="registry.example.com"\0' ..
    '{"access_token":"' .. jwt .. '","refresh_token":"kas9Da81Dfa8","expires_in":900,"scope":"repository:fuzz/app:pull"}')
  put("auth", "quay-io", 'Bearer realm="https://quay.io/v2/auth",service="quay.io"\0{"token":"' .. jwt .. '"}')
  put("auth", "realm-with-query", 'Bearer realm="https://gitlab.example.com/jwt/auth?client=docker",service="container_registry"\0' ..
    '{"token":"t0k3n","expires_in":"60"}')
  put("auth", "basic-htpasswd", 'Basic realm="Registry Realm"\0')
  put("auth", "basic-ecr", 'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"\0')
  put("auth", "basic-and-bearer", 'Basic realm="x, y"\nBearer realm="https://t.example/token", service=reg, scope="repository:a/b:pull"\0' ..
    '{"token":"a"}')
  put("auth", "rfc7235-example", 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"\0')
  put("auth", "unauthorized-answer", 'Bearer realm="https://auth.example.com/token"\0' ..
    '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}')
end

local ALL = { config = config_seeds, manifest = manifest_seeds, layer = layer_seeds, passwd = passwd_seeds,
  monitor = monitor_seeds, hosts = hosts_seeds, auth = auth_seeds }
local ORDER = { "config", "manifest", "layer", "passwd", "monitor", "hosts", "auth" }
-- names on the command line: only those corpora
local names = #arg > 0 and arg or ORDER
for _, name in ipairs(names) do
  assert(ALL[name], "no corpus " .. name)()
end
