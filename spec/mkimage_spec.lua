-- tools/mkimage.lua: the project's busybox test image, reproducible and readable by umoci,
-- skopeo and our own layer_apply.
local core = require("ctr.core")

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  local ok, _, code = p:close()
  return s, (ok == true or ok == 0) and 0 or (code or 1)
end

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok == 0 or ok == true, "command failed: " .. cmd)
end

local BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
local NAME = "ctrlua.test/busybox:latest"

describe("tools/mkimage.lua #root", function()
  local dir
  before_each(function() dir = require("support.tmp").dir("mkimage-spec") end)
  after_each(function() sh("rm -rf '" .. dir .. "'") end)

  local function build(out, env)
    local s, code = capture(string.format("%s %s tools/mkimage.lua --busybox /bin/busybox --name %s '%s' 2>&1",
      env or "", BIN, NAME, out))
    assert.are.equal(0, code, s)
    return s
  end

  local function blob(layout, digest)
    return assert(core.read_file(layout .. "/blobs/sha256/" .. digest:sub(8), 64 * 1024 * 1024))
  end

  it("gives byte-identical output on two runs", function()
    build(dir .. "/a.tar")
    build(dir .. "/b.tar")
    assert.are.equal(core.sha256(assert(core.read_file(dir .. "/a.tar", 1e8))),
      core.sha256(assert(core.read_file(dir .. "/b.tar", 1e8))))
    build(dir .. "/c.tar", "SOURCE_DATE_EPOCH=1600000000")
    assert.are_not.equal(core.read_file(dir .. "/a.tar", 1e8), core.read_file(dir .. "/c.tar", 1e8))
  end)

  it("writes an OCI layout that skopeo and umoci accept", function()
    local out = dir .. "/img.tar"
    build(out)
    local js, code = capture("skopeo inspect oci-archive:" .. out .. " 2>&1")
    assert.are.equal(0, code, js)
    local info = assert(core.json_decode(js))
    assert.are.equal("linux", info.Os)
    assert.are.equal(1, #info.Layers)
    local layout = dir .. "/layout"
    sh(string.format("mkdir '%s' && tar -xf '%s' -C '%s'", layout, out, layout))
    local ls, lcode = capture("umoci ls --layout '" .. layout .. "' 2>&1")
    assert.are.equal(0, lcode, ls)
    assert.are.equal(NAME .. "\n", ls)
    local st, scode = capture(string.format("umoci stat --image '%s:%s' 2>&1", layout, NAME))
    assert.are.equal(0, scode, st)
  end)

  it("holds busybox, its applets, passwd, group and the empty directories", function()
    local out = dir .. "/img.tar"
    build(out)
    local layout = dir .. "/layout"
    sh(string.format("mkdir '%s' && tar -xf '%s' -C '%s'", layout, out, layout))
    assert.are.equal('{"imageLayoutVersion":"1.0.0"}', core.read_file(layout .. "/oci-layout"))
    local index = assert(core.json_decode(core.read_file(layout .. "/index.json")))
    local desc = index.manifests[1]
    assert.are.equal(NAME, desc.annotations["org.opencontainers.image.ref.name"])
    assert.are.equal(NAME, desc.annotations["io.containerd.image.name"])
    assert.are.equal("linux", desc.platform.os)
    local mdata = blob(layout, desc.digest)
    assert.are.equal(desc.digest, core.sha256(mdata))
    local manifest = assert(core.json_decode(mdata))
    assert.are.equal("application/vnd.oci.image.manifest.v1+json", manifest.mediaType)
    assert.are.equal("application/vnd.oci.image.config.v1+json", manifest.config.mediaType)
    local config = assert(core.json_decode(blob(layout, manifest.config.digest)))
    local arch = ({ x86_64 = "amd64", aarch64 = "arm64" })[core.uname().machine]
    assert.are.equal(arch, config.architecture)
    assert.are.same({ "sh" }, { config.config.Cmd[1] })
    assert.are.equal(1, #config.config.Cmd)
    assert.are.equal("/", config.config.WorkingDir)
    local layer = manifest.layers[1]
    assert.are.equal("application/vnd.oci.image.layer.v1.tar+gzip", layer.mediaType)
    local lpath = layout .. "/blobs/sha256/" .. layer.digest:sub(8)
    assert.are.equal(layer.size, core.stat(lpath).size)

    local root = dir .. "/rootfs"
    sh("mkdir '" .. root .. "'")
    local res = assert(core.layer_apply(root, lpath, { diff_id = config.rootfs.diff_ids[1] }))
    assert.is_true(res.entries > 250)
    assert.are.equal("/bin/busybox", core.readlink(root .. "/bin/sh"))
    assert.are.equal("/bin/busybox", core.readlink(root .. "/usr/bin/awk"))
    assert.are.equal(493, core.stat(root .. "/bin/busybox").mode)
    assert.are.equal(1023, core.stat(root .. "/tmp").mode)
    assert.are.equal(448, core.stat(root .. "/root").mode)
    for _, d in ipairs({ "proc", "sys", "dev", "home", "var", "run" }) do
      assert.are.equal("directory", core.stat(root .. "/" .. d).type)
    end
    assert.matches("^root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:", core.read_file(root .. "/etc/passwd"))
    assert.matches("^root:x:0:\nnogroup:x:65534:\n$", core.read_file(root .. "/etc/group"))
    assert.is_nil(core.stat(root .. "/etc/hosts"))
    local hello = capture("chroot '" .. root .. "' /bin/sh -c 'echo hello; id -u' 2>&1")
    assert.are.equal("hello\n0\n", hello)
  end)
end)
