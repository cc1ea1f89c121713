-- Registries: pull, push, auth, hosts.toml and faults against real servers started by the
-- tests on loopback (docker-registry, a token server, a fault-injecting server; see
-- support/registry.lua), with skopeo and Debian's containerd on the other side of the round
-- trips.  HOME, DOCKER_CONFIG and REGISTRY_AUTH_FILE point into temporary directories.
local core = require("ctr.core")
local S = require("support.ctrlua")
local R = require("support.registry")
local C = require("support.containerd")

local q = S.q

local function lines(s)
  local out = {}
  for l in (s or ""):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- a home of its own for the credential files
local function private_env(env, extra)
  local home = env.dir .. "/home"
  S.must("mkdir -p " .. q(home))
  return ("HOME=%s DOCKER_CONFIG=%s/.docker REGISTRY_AUTH_FILE= XDG_RUNTIME_DIR= %s"):format(q(home),
    q(home), extra or "")
end

local function image_names(env)
  local r = env:run("images.lua", "ls", "-q")
  return lines(r.stdout)
end

local function blob_there(env, digest)
  return core.stat(env.root .. "/content/blobs/sha256/" .. digest:sub(8)) ~= nil
end

describe("references, challenges, hosts.toml", function()
  local reference = require("ctr.reference")
  local auth = require("ctr.remotes.auth")
  local hosts = require("ctr.remotes.hosts")

  it("normalises short names as docker and refuses them for pull as ctr does", function()
    local cases = {
      { "alpine", "docker.io/library/alpine:latest" },
      { "me/app:1", "docker.io/me/app:1" },
      { "localhost:5000/x", "localhost:5000/x:latest" },
      { "index.docker.io/library/busybox@sha256:" .. ("a"):rep(64), "docker.io/library/busybox@sha256:" .. ("a"):rep(64) },
      { "127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], reference.string(assert(reference.parse_normalized_named(c[1]))))
    end
    assert.is_nil((reference.parse_normalized_named("Upper/Case")))
    local pull = require("ctr.remotes.pull")
    local _, e1 = pull.parse_ref("alpine", true)
    assert.are.equal('failed to resolve reference "alpine": object required', e1.msg)
    local _, e2 = pull.parse_ref("alpine:latest", true)
    assert.are.equal('failed to resolve reference "alpine:latest": parse "dummy://alpine:latest": invalid port ":latest" after host', e2.msg)
    local _, e3 = pull.parse_ref("http://x/y:1", true)
    assert.are.equal('failed to resolve reference "http://x/y:1": invalid reference', e3.msg)
  end)

  it("reads challenges with quoted commas", function()
    local ch = auth.parse_challenges({ 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"',
      'Basic realm="x, y"' })
    assert.are.equal("bearer", ch[1].scheme)
    assert.are.equal("repository:a/b:pull,push", ch[1].params.scope)
    assert.are.equal("https://auth.example/token", ch[1].params.realm)
    assert.are.equal("basic", ch[2].scheme)
    assert.are.equal("x, y", ch[2].params.realm)
    assert.are.equal("user:pa:ss", auth.base64_decode(auth.base64_encode("user:pa:ss")))
  end)

  it("reads hosts.toml in order and names the line it cannot read", function()
    local doc, order = hosts.parse_toml([=[
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
    assert.truthy(doc)
    assert.are.same({ "http://m1:5000", "https://m2" }, order[doc.host])
    assert.are.equal("1", doc.host["http://m1:5000"].header["x-a"])
    local _, err = hosts.parse_toml('server = "x"\n\nfoo = 1.5\n', "t.toml")
    assert.matches("t.toml line 3:", err.msg, 1, true)
    assert.are.equal("INVALID", err.sym)
  end)

  it("redacts credentials from URLs", function()
    assert.are.equal("https://h/v2/x?service=r&token=REDACTED&a=b",
      core.http_redact_url("https://user:pw@h/v2/x?service=r&token=abc&a=b"))
  end)
end)

describe("registries #root", function()
  if not R.available() then
    it("needs docker-registry, skopeo, htpasswd and python3", function() pending("not installed") end)
    return
  end
  local reg, env
  setup(function()
    reg = R.start()
    reg:push_image(S.IMAGE_TAR, "test/busybox:1")
  end)
  teardown(function()
    if reg then reg:stop() end
    S.cleanup()
  end)
  before_each(function() env = S.new_env({ empty = true }) end)
  after_each(function() env:destroy() end)

  it("pulls an image pushed by skopeo, unpacked, and runs it", function()
    local ref = reg.host .. "/test/busybox:1"
    local r = env:run("images.lua", "pull", "--plain-http", "--print-chainid", ref)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^" .. ref:gsub("%p", "%%%0") .. " sha256:%x+: ", r.stdout)
    assert.matches("image chain ID: sha256:%x+", r.stdout)
    local c = env:run("images.lua", "check")
    assert.matches("complete %(3/3%).*true", c.stdout)
    local run = env:run("run.lua", "--rm", ref, "p1", "sh", "-c", "echo pulled-and-ran")
    assert.are.equal(0, run.code, run.stderr)
    assert.are.equal("pulled-and-ran\n", run.stdout)
    -- --format json, and a second pull unpacks nothing
    local j = env:run("images.lua", "pull", "--plain-http", "--format", "json", ref)
    local doc = core.json_decode(j.stdout)
    assert.are.equal(0, doc.unpacked)
    assert.are.equal(0, doc.fetched)
  end)

  it("refuses short names for images pull with ctr's words, and run --pull normalises them", function()
    local r = env:run("images.lua", "pull", "alpine")
    assert.are.equal(1, r.code)
    assert.are.equal('ctrlua: failed to resolve reference "alpine": object required\n', r.stderr)
    local n = env:run("run.lua", "--rm", "--pull", "never", reg.host .. "/test/busybox:1", "x", "true")
    assert.are.equal(125, n.code)
    assert.are.equal('ctrlua: image "' .. reg.host .. '/test/busybox:1": not found\n', n.stderr)
    local m = env:run("run.lua", "--rm", "--plain-http", reg.host .. "/test/nothing:1", "x", "true")
    assert.are.equal(125, m.code)
    assert.matches("not found", m.stderr)
    assert.are.same({}, env:leftovers("x"))
    assert.are.same({}, image_names(env))
  end)

  it("pushes an image that skopeo reads back with the same digests and containerd pulls and runs", function()
    local full = S.new_env()
    finally(function() full:destroy() end)
    local dst = reg.host .. "/rt/busybox:1"
    local p = full:run("images.lua", "push", "--plain-http", dst, S.IMAGE)
    assert.are.equal(0, p.code, p.stderr)
    local ls = core.json_decode(full:run("images.lua", "ls", "--format", "json").stdout)
    local digest = ls[1].target.digest
    local raw = S.must(("skopeo inspect --raw --tls-verify=false docker://%s"):format(dst))
    assert.are.equal(digest, core.sha256(raw))
    local oci = full.dir .. "/oci"
    S.must(("skopeo copy -q %s docker://%s oci:%s:x"):format(reg:skopeo_src_flags(), dst, q(oci)))
    local idx = core.json_decode(assert(core.read_file(oci .. "/index.json")))
    assert.are.equal(digest, idx.manifests[1].digest)
    -- a second push skips every blob
    local again = full:run("images.lua", "push", "--plain-http", dst, S.IMAGE)
    assert.matches("0 blobs pushed, 0 mounted, 2 already there", again.stdout)
    if C.available() then
      local d = C.start({ image = false })
      finally(function() d:stop() end)
      local out, code = d:ctr("images pull --plain-http " .. q(dst))
      assert.are.equal(0, code, out)
      out, code = d:ctr("run --rm " .. q(dst) .. " rt1 echo ran-in-containerd")
      assert.are.equal(0, code, out)
      assert.matches("ran%-in%-containerd", out)
    end
  end)

  it("uploads large blobs in chunks and mounts blobs from the repository they came from", function()
    local ctr = require("ctr")
    local client = assert(ctr.client({ root = env.root, state = env.state, namespace = env.ns }))
    local rec = assert(client:pull(reg.host .. "/test/busybox:1", { strict = true, plain_http = true }))
    local st = assert(client:push(reg.host .. "/chunked/bb:1", { strict = true, plain_http = true,
      local_ref = rec.name, chunk = 64 * 1024 }))
    -- pulled from test/busybox on this registry: the blobs are mounted, not uploaded
    assert.are.equal(2, st.mounted)
    local other = assert(ctr.client({ root = env.dir .. "/root2", state = env.dir .. "/state2", namespace = env.ns }))
    assert(other:import(S.IMAGE_TAR, { no_unpack = true }))
    local st2 = assert(other:push(reg.host .. "/chunked/fresh:1", { strict = true, plain_http = true,
      local_ref = S.IMAGE, chunk = 64 * 1024 }))
    assert.are.equal(1, st2.exists + st2.pushed - 1 + 0 * st2.mounted + 0) -- config and layer
    assert.are.equal(rec.target.digest, st2.digest)
    local again = assert(other:pull(reg.host .. "/chunked/fresh:1", { strict = true, plain_http = true }))
    assert.are.equal(rec.target.digest, again.target.digest)
  end)

  it("run --pull always pulls again, and a pipeline job pulls a missing image", function()
    local r = env:run("run.lua", "--rm", "--pull", "always", "--plain-http", reg.host .. "/test/busybox:1", "a1", "true")
    assert.are.equal(0, r.code, r.stderr)
    local ctr = require("ctr")
    local client = assert(ctr.client({ root = env.dir .. "/proot", state = env.dir .. "/pstate", namespace = env.ns }))
    local out = {}
    local report = assert(require("ctr.pipeline").run(client, { name = "pulls", image = reg.host .. "/test/busybox:1",
      registry = { ["plain-http"] = true }, steps = { { name = "s", run = "echo from-a-pulled-image" } } },
      { output = function(s) out[#out + 1] = s end }))
    assert.are.equal(0, report.code, table.concat(out))
    assert.matches("from%-a%-pulled%-image", table.concat(out))
  end)

  it("shows ctr's progress layout", function()
    local d = require("ctr.remotes.progress").new({ stream = { write = function() end, flush = function() end } })
    d:set("docker.io/library/x:1", "resolved")
    d:set("layer-sha256:ab", "downloading", 1024, 4096)
    local text = d:text()
    assert.matches("^docker.io/library/x:1:%s+resolved%s+|", text)
    assert.matches("layer%-sha256:ab:%s+downloading%s+|", text)
    assert.truthy(text:find("|\27[32m" .. ("+"):rep(9) .. "\27[0m" .. (" "):rep(29) .. "|  1.0 KiB/4.0 KiB", 1, true))
    assert.matches("\nelapsed: %d+%.%d s%s+total:%s+1.0 Ki %(", text)
  end)

  it("follows hosts.toml mirrors in order when the first one is down", function()
    local hd = env.dir .. "/hosts"
    local dead = R.free_port()
    local dir = hd .. "/" .. reg.host
    S.must("mkdir -p " .. q(dir))
    assert(core.write_file(dir .. "/hosts.toml", ([[
server = "http://%s"
[host."http://127.0.0.1:%d"]
  capabilities = ["pull", "resolve"]
]]):format(reg.host, dead)))
    local r = env:run("images.lua", "pull", "--hosts-dir", hd, reg.host .. "/test/busybox:1")
    assert.are.equal(0, r.code, r.stderr)
    assert(core.write_file(dir .. "/hosts.toml", 'server = "http://x"\n[host."http://y"]\n  capabilities = pull\n'))
    local bad = env:run("images.lua", "pull", "--hosts-dir", hd, reg.host .. "/test/busybox:1")
    assert.are.equal(1, bad.code)
    assert.matches("hosts.toml line 3: cannot read the value", bad.stderr, 1, true)
  end)
end)

describe("registries with TLS and auth #root", function()
  if not R.available() then return end
  local env
  before_each(function() env = S.new_env({ empty = true }) end)
  after_each(function() env:destroy() end)
  teardown(function() S.cleanup() end)

  it("TLS from a test CA with htpasswd Basic auth: a wrong password, login, logout", function()
    local reg = R.start({ tls = true, htpasswd = { alice = "s3cret" } })
    finally(function() reg:stop() end)
    reg:push_image(S.IMAGE_TAR, "sec/bb:1", "alice:s3cret")
    local ref = reg.host .. "/sec/bb:1"
    local pe = private_env(env)
    local no_ca = env:run("images.lua", "pull", "-u", "alice:s3cret", ref, { env = pe })
    assert.are.equal(1, no_ca.code)
    assert.matches("certificate", no_ca.stderr)
    local wrong = env:run("images.lua", "pull", "--tlscacert", reg.ca, "-u", "alice:nope", ref, { env = pe })
    assert.are.equal(1, wrong.code)
    assert.are.equal(1, #lines(wrong.stderr))
    assert.matches(ref, wrong.stderr, 1, true)
    assert.matches("401", wrong.stderr, 1, true)
    assert.is_nil(wrong.stderr:find("nope", 1, true))
    assert.are.same({}, image_names(env))
    -- login stores the credentials (0600); pull then needs no -u
    local authfile = env.dir .. "/auth.json"
    local login = env:run("images.lua", "login", "--tlscacert", reg.ca, "-u", "alice", "--password-stdin",
      reg.host, { env = pe .. " REGISTRY_AUTH_FILE=" .. q(authfile), stdin = (function()
        local p = env.dir .. "/pw"
        assert(core.write_file(p, "s3cret\n"))
        return p
      end)() })
    assert.are.equal(0, login.code, login.stderr)
    assert.are.equal(384, core.stat(authfile).mode % 512)
    local doc = core.json_decode(assert(core.read_file(authfile)))
    assert.truthy(doc.auths[reg.host].auth)
    local ok = env:run("images.lua", "pull", "--tlscacert", reg.ca, ref, { env = pe .. " REGISTRY_AUTH_FILE=" .. q(authfile) })
    assert.are.equal(0, ok.code, ok.stderr)
    local k = env:run("images.lua", "pull", "-k", ref, { env = pe .. " REGISTRY_AUTH_FILE=" .. q(authfile) })
    assert.are.equal(0, k.code, k.stderr)
    local out = env:run("images.lua", "logout", reg.host, { env = pe .. " REGISTRY_AUTH_FILE=" .. q(authfile) })
    assert.are.equal(0, out.code)
    doc = core.json_decode(assert(core.read_file(authfile)))
    assert.is_nil(doc.auths[reg.host])
  end)

  it("token auth: anonymous pull, push with a password grant, a refresh token from docker's config", function()
    local reg = R.start({ token = true, token_users = { alice = "pw1" } })
    finally(function() reg:stop() end)
    reg:push_image(S.IMAGE_TAR, "tok/bb:1", "alice:pw1")
    local ref = reg.host .. "/tok/bb:1"
    local pe = private_env(env)
    local anon = env:run("images.lua", "pull", "--plain-http", ref, { env = pe })
    assert.are.equal(0, anon.code, anon.stderr)
    local push = env:run("images.lua", "push", "--plain-http", "-u", "alice:pw1", reg.host .. "/tok/copy:1", ref, { env = pe })
    assert.are.equal(0, push.code, push.stderr)
    local denied = env:run("images.lua", "push", "--plain-http", reg.host .. "/tok/anon:1", ref, { env = pe })
    assert.are.equal(1, denied.code)
    local log = S.slurp(reg.token_log)
    assert.matches('"grant": "password"', log, 1, true)
    assert.is_nil(log:find("pw1", 1, true))
    -- an identity token in docker's config.json is used as a refresh token
    local tok = S.must(("curl -s -u alice:pw1 'http://127.0.0.1:%d/token?service=ctrlua-registry&offline_token=true&client_id=t'"):format(reg.token_port))
    local refresh = core.json_decode(tok).refresh_token
    S.must("mkdir -p " .. q(env.dir .. "/home/.docker"))
    assert(core.write_file(env.dir .. "/home/.docker/config.json", core.json_encode({ auths = {
      [reg.host] = { identitytoken = refresh } } })))
    assert(core.write_file(reg.token_log, ""))
    local viart = env:run("images.lua", "push", "--plain-http", reg.host .. "/tok/viart:1", ref, { env = pe })
    assert.are.equal(0, viart.code, viart.stderr)
    assert.matches('"grant": "refresh_token", "user": "alice"', S.slurp(reg.token_log), 1, true)
  end)
end)

describe("registry faults #root", function()
  if not R.available() then return end
  local layout, srv, env, layer, ref
  setup(function()
    layout = S.tmpdir()
    S.must(("tar -C %s -xf %s"):format(q(layout), q(S.IMAGE_TAR)))
    local idx = core.json_decode(assert(core.read_file(layout .. "/index.json")))
    local m = core.json_decode(assert(core.read_file(layout .. "/blobs/sha256/" .. idx.manifests[1].digest:sub(8))))
    layer = m.layers[1].digest
    srv = R.fault_server(layout, {})
    ref = srv.host .. "/f/bb:1"
  end)
  teardown(function()
    if srv then srv:stop() end
    core.remove_tree(layout)
    S.cleanup()
  end)
  before_each(function() env = S.new_env({ empty = true }) end)
  after_each(function() env:destroy() srv:set_faults({}) end)

  local function pull()
    return env:run("images.lua", "pull", "--plain-http", ref)
  end

  local cases = {
    { "a blob whose bytes do not match its digest", function() return { bad_blob = layer } end, "digest mismatch" },
    { "a manifest whose digest does not match", function() return { bad_digest_header = true } end, "manifest digest mismatch" },
    { "an oversized manifest", function() return { oversized_manifest = true } end, "over the limit" },
    { "an unknown media type", function() return { media_type = "application/x-ctrlua-unknown" } end, "unsupported media type application/x-ctrlua-unknown" },
    { "a 404", function() return { not_found = true } end, "not found" },
    { "a wrong password", function() return { require_basic = "u:right" } end, "401", { "-u", "u:wrong" } },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": a one-line error naming the reference, nothing left, the next pull succeeds", function()
      srv:set_faults(c[2]())
      local args = { "images.lua", "pull", "--plain-http" }
      for _, a in ipairs(c[4] or {}) do args[#args + 1] = a end
      args[#args + 1] = ref
      local r = env:run(unpack(args))
      assert.are.equal(1, r.code, r.stdout)
      assert.are.equal(1, #lines(r.stderr), r.stderr)
      assert.matches(ref, r.stderr, 1, true)
      assert.matches(c[3], r.stderr, 1, true)
      assert.are.same({}, image_names(env))
      assert.is_false(blob_there(env, layer))
      for _, s in ipairs(env:snapshots()) do assert.are.equal("Committed", s.kind) end
      srv:set_faults({})
      local ok = pull()
      assert.are.equal(0, ok.code, ok.stderr)
      assert.are.same({ ref }, image_names(env))
    end)
  end

  it("a transfer cut in the middle resumes with Range and the blob verifies", function()
    srv:set_faults({ cut_blob = layer })
    local r = pull()
    assert.are.equal(0, r.code, r.stderr)
    local ranged = false
    for _, rq in ipairs(srv:requests()) do
      if rq.path:find(layer, 1, true) and rq.headers.range then ranged = true end
    end
    assert.is_true(ranged)
    local v = env:run("content.lua", "ls")
    assert.matches(layer, v.stdout, 1, true)
    assert.matches("complete", env:run("images.lua", "check").stdout)
  end)

  it("a redirect to another server does not take the credentials along; --http-dump redacts them", function()
    local other = R.fault_server(layout, {})
    finally(function() other:stop() end)
    srv:set_faults({ require_basic = "u:pw", redirect_blobs = "http://" .. other.host })
    local r = env:run("images.lua", "pull", "--plain-http", "--http-dump", "-u", "u:pw", ref)
    assert.are.equal(0, r.code, r.stderr)
    local got = other:requests()
    assert.is_true(#got > 0)
    for _, rq in ipairs(got) do assert.is_nil(rq.headers.authorization) end
    assert.matches("Authorization: Basic [redacted]", r.stderr, 1, true)
    assert.is_nil(r.stderr:find(require("ctr.remotes.auth").base64_encode("u:pw"), 1, true))
  end)

  it("retries a 503 with backoff; --http-trace shows the timings", function()
    srv:set_faults({ flaky_blob = 2 })
    local r = env:run("images.lua", "pull", "--plain-http", "--http-trace", ref)
    assert.are.equal(0, r.code, r.stderr)
    local gets = 0
    for _, rq in ipairs(srv:requests()) do
      if rq.method == "GET" and rq.path:find("/blobs/", 1, true) then gets = gets + 1 end
    end
    assert.is_true(gets >= 4, "blob GETs: " .. gets) -- config and layer, two of them refused
    assert.matches("-> 503: dns", r.stderr, 1, true)
    assert.matches("first byte", r.stderr, 1, true)
  end)

  it("commands that never touch the network never map libcurl", function()
    local script = env.dir .. "/maps.lua"
    assert(core.write_file(script, [[
local ctr = require("ctr")
local c = assert(ctr.client())
ctr.images.list(c)
local function mapped()
  return (io.open("/proc/self/maps"):read("*a"):find("libcurl", 1, true)) ~= nil
end
local before = mapped()
assert(require("ctr.core").http_session())
print(before, mapped())
]]))
    local r = env:run(script)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("false\ttrue\n", r.stdout)
  end)

  it("credentials from a docker-credential helper named in docker's config", function()
    srv:set_faults({ require_basic = "helped:pw" })
    local bin = env.dir .. "/bin"
    S.must("mkdir -p " .. q(bin) .. " " .. q(env.dir .. "/home/.docker"))
    assert(core.write_file(bin .. "/docker-credential-ctrluatest",
      '#!/bin/sh\nread server\n[ "$1" = get ] && echo \'{"ServerURL":"\'"$server"\'","Username":"helped","Secret":"pw"}\'\n',
      { mode = 493 }))
    assert(core.write_file(env.dir .. "/home/.docker/config.json", core.json_encode({ credHelpers = { [srv.host] = "ctrluatest" } })))
    local r = env:run("images.lua", "pull", "--plain-http", ref, { env = private_env(env, "PATH=" .. q(bin) .. ":$PATH") })
    assert.are.equal(0, r.code, r.stderr)
  end)

  it("a pull killed with SIGKILL leaves a store whose next pull resumes and completes", function()
    srv:set_faults({ slow_blob = 200000 })
    local h = env:spawn("images.lua", "pull", "--plain-http", ref)
    local ingest = env.root .. "/content/ingest/pull-" .. layer:sub(8)
    S.until_true(function()
      local st = core.stat(ingest)
      return st and st.size > 100000
    end, 20, "the download to be under way")
    core.kill(h.pid, 9)
    h:wait(10)
    assert.are.same({}, image_names(env))
    srv:set_faults({})
    local r = pull()
    assert.are.equal(0, r.code, r.stderr)
    local resumed = false
    for _, rq in ipairs(srv:requests()) do
      if rq.path:find(layer, 1, true) and rq.headers.range then resumed = true end
    end
    assert.is_true(resumed)
    assert.matches("complete %(3/3%)", env:run("images.lua", "check").stdout)
  end)
end)

describe("registry pulls of several layers #root", function()
  if not R.available() then return end
  local layout, srv, env, layers, ref
  -- An OCI layout of four gzip layers of a file each, served by the fault server.
  setup(function()
    layout = S.tmpdir()
    S.must("mkdir -p " .. q(layout .. "/blobs/sha256"))
    layers = {}
    local diff_ids = {}
    for i = 1, 4 do
      local src = layout .. "/src" .. i
      S.must(("mkdir -p %s/l%d && head -c 400000 /dev/urandom > %s/l%d/f"):format(q(src), i, q(src), i))
      local tmp = layout .. "/l" .. i .. ".tar.gz"
      local w = assert(core.layer_write(src, tmp, { compression = "gzip" }))
      S.must(("mv %s %s/blobs/sha256/%s && rm -rf %s"):format(q(tmp), q(layout), w.digest:sub(8), q(src)))
      layers[i] = { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = w.digest, size = w.size }
      diff_ids[i] = w.diff_id
    end
    local function put(t)
      local data = core.json_encode(t)
      local d = core.sha256(data)
      assert(core.write_file(layout .. "/blobs/sha256/" .. d:sub(8), data))
      return d, #data
    end
    local plat = require("ctr.platforms").default()
    local cd, cs = put({ architecture = plat.architecture, os = "linux",
      rootfs = { type = "layers", diff_ids = core.json_array(diff_ids) } })
    local md, ms = put({ schemaVersion = 2, mediaType = "application/vnd.oci.image.manifest.v1+json",
      config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cd, size = cs },
      layers = core.json_array(layers) })
    assert(core.write_file(layout .. "/index.json", core.json_encode({ schemaVersion = 2,
      manifests = core.json_array({ { mediaType = "application/vnd.oci.image.manifest.v1+json",
        digest = md, size = ms } }) })))
    assert(core.write_file(layout .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}'))
    srv = R.fault_server(layout, {})
    ref = srv.host .. "/f/four:1"
  end)
  teardown(function()
    if srv then srv:stop() end
    core.remove_tree(layout)
    S.cleanup()
  end)
  before_each(function() env = S.new_env({ empty = true }) end)
  after_each(function() env:destroy() srv:set_faults({}) end)

  local function chain_ok()
    local parent_of = {}
    for _, s in ipairs(env:snapshots()) do
      assert.are.equal("Committed", s.kind)
      parent_of[s.key] = s.parent
    end
    local n, key = 0, nil
    for k in pairs(parent_of) do n = n + 1 key = key or k end
    assert.are.equal(4, n)
    -- each committed on the one below: the four in one chain
    local top
    for k in pairs(parent_of) do
      local child = false
      for _, p in pairs(parent_of) do if p == k then child = true end end
      if not child then assert.is_nil(top) top = k end
    end
    local depth = 0
    while top and top ~= "" do depth, top = depth + 1, parent_of[top] end
    assert.are.equal(4, depth)
  end

  it("a corrupt upper layer among those under way: only committed snapshots left, the next pull chains all four", function()
    srv:set_faults({ bad_blob = layers[3].digest })
    local r = env:run("images.lua", "pull", "--plain-http", ref)
    assert.are.equal(1, r.code, r.stdout)
    assert.matches("digest mismatch", r.stderr, 1, true)
    assert.are.same({}, image_names(env))
    for _, s in ipairs(env:snapshots()) do assert.are.equal("Committed", s.kind) end
    srv:set_faults({})
    r = env:run("images.lua", "pull", "--plain-http", ref)
    assert.are.equal(0, r.code, r.stderr)
    chain_ok()
  end)

  it("a pull killed while its layers apply leaves extract snapshots of its own, which gc removes", function()
    srv:set_faults({ slow_blob = 400000 })
    local h = env:spawn("images.lua", "pull", "--plain-http", ref)
    S.until_true(function()
      local n = 0
      for _, s in ipairs(env:snapshots()) do if s.kind == "Active" then n = n + 1 end end
      return n >= 2
    end, 20, "two layers to be applied at once")
    core.kill(h.pid, 9)
    h:wait(10)
    local g = env:run("gc")
    assert.are.equal(0, g.code, g.stderr)
    for _, s in ipairs(env:snapshots()) do assert.are.equal("Committed", s.kind) end
    srv:set_faults({})
    local r = env:run("images.lua", "pull", "--plain-http", ref)
    assert.are.equal(0, r.code, r.stderr)
    chain_ok()
  end)
end)
