-- mkimage: build the project's busybox test image (an oci-archive) from local files only
--
-- Usage: ctrlua tools/mkimage.lua --busybox /bin/busybox --name ctrlua.test/busybox:latest OUT.tar
--
-- A build tool, not a command: it uses ctr.core directly.  The rootfs is Debian's
-- busybox-static with a symlink per applet (as `busybox --install -s` makes), a minimal
-- /etc/passwd and /etc/group and the usual empty directories; the layer, config, manifest,
-- OCI layout and the outer tar are all written by core.layer_write with every mtime clamped
-- to a fixed time (SOURCE_DATE_EPOCH when set), so two runs give byte-identical output.
local core = require("ctr.core")

local function die(msg)
  io.stderr:write("ctrlua: mkimage: ", tostring(msg), "\n")
  os.exit(1)
end

-- inside the build: raise, so that the temporary directory is removed before exiting
local function fail(msg) error(msg, 0) end
local function check(v, err, ...)
  if v == nil then fail(err) end
  return v, err, ...
end

local function usage()
  die("usage: mkimage.lua --busybox PATH --name NAME[:TAG] OUT.tar")
end

local opts = { busybox = "/bin/busybox" }
local args = arg or {}
local i = 1
while i <= #args do
  local a = args[i]
  if a == "--busybox" or a == "--name" then
    opts[a:sub(3)] = args[i + 1] or usage()
    i = i + 2
  elseif a:sub(1, 1) == "-" then
    usage()
  else
    if opts.out then usage() end
    opts.out = a
    i = i + 1
  end
end
if not opts.out or not opts.name then usage() end

local EPOCH = tonumber(core.getenv("SOURCE_DATE_EPOCH") or "") or 1700000000
local CREATED = core.rfc3339(EPOCH)
local GOARCH = { x86_64 = "amd64", aarch64 = "arm64", armv7l = "arm", i686 = "386",
  ppc64le = "ppc64le", s390x = "s390x", riscv64 = "riscv64" }
local machine = core.uname().machine
local arch = GOARCH[machine] or die("unknown machine " .. machine)

local function mktemp()
  local p = io.popen("mktemp -d /tmp/ctrlua-mkimage.XXXXXX")
  local d = p and p:read("*l")
  if p then p:close() end
  return d or die("mktemp failed")
end

local tmp = mktemp()
local ok, err = pcall(function()
  local rootfs = tmp .. "/rootfs"
  local function dir(path, mode)
    check(core.mkdir_p(rootfs .. path, 493))
    check(core.chmod(rootfs .. path, mode or 493))
  end
  dir("")
  for _, d in ipairs({ "/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/etc", "/proc", "/sys",
    "/dev", "/home", "/var", "/run" }) do
    dir(d)
  end
  dir("/tmp", 1023)  -- 01777
  dir("/root", 448)  -- 0700

  local bb = check(core.read_file(opts.busybox, 64 * 1024 * 1024))
  check(core.write_file(rootfs .. "/bin/busybox", bb, { mode = 493 }))
  check(core.chmod(rootfs .. "/bin/busybox", 493))
  local p = io.popen("'" .. opts.busybox .. "' --list-full")
  local n = 0
  for applet in p:lines() do
    if applet ~= "bin/busybox" and applet:match("^[%w_/%.%[%]%-]+$") and not applet:find("..", 1, true) then
      local parent = applet:match("^(.*)/[^/]+$")
      if parent then dir("/" .. parent) end
      if not core.stat(rootfs .. "/" .. applet, false) then
        check(core.symlink("/bin/busybox", rootfs .. "/" .. applet))
        n = n + 1
      end
    end
  end
  p:close()
  if n < 50 then fail(opts.busybox .. " --list-full gave only " .. n .. " applets") end
  check(core.write_file(rootfs .. "/etc/passwd",
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    { mode = 420 }))
  check(core.write_file(rootfs .. "/etc/group", "root:x:0:\nnogroup:x:65534:\n", { mode = 420 }))

  -- the OCI layout
  local layout = tmp .. "/layout"
  local blobs = layout .. "/blobs/sha256"
  check(core.mkdir_p(blobs, 493))
  local layer = check(core.layer_write(rootfs, tmp .. "/layer.tar.gz",
    { compression = "gzip", mtime = EPOCH, uid = 0, gid = 0 }))
  check(core.rename(tmp .. "/layer.tar.gz", blobs .. "/" .. layer.digest:sub(8)))

  local function put_json(t)
    local data = core.json_encode(t)
    local digest = core.sha256(data)
    check(core.write_file(blobs .. "/" .. digest:sub(8), data, { mode = 420 }))
    return digest, #data
  end
  local array = core.json_array
  local config_digest, config_size = put_json({
    architecture = arch,
    os = "linux",
    created = CREATED,
    config = {
      Env = array({ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }),
      Cmd = array({ "sh" }),
      WorkingDir = "/",
    },
    rootfs = { type = "layers", diff_ids = array({ layer.diff_id }) },
    history = array({ { created = CREATED,
      created_by = "ctrlua tools/mkimage.lua: busybox from Debian busybox-static" } }),
  })
  local manifest_digest, manifest_size = put_json({
    schemaVersion = 2,
    mediaType = "application/vnd.oci.image.manifest.v1+json",
    config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = config_digest,
      size = config_size },
    layers = array({ { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip",
      digest = layer.digest, size = layer.size } }),
  })
  check(core.write_file(layout .. "/oci-layout", core.json_encode({ imageLayoutVersion = "1.0.0" }),
    { mode = 420 }))
  check(core.write_file(layout .. "/index.json", core.json_encode({
    schemaVersion = 2,
    mediaType = "application/vnd.oci.image.index.v1+json",
    manifests = array({ {
      mediaType = "application/vnd.oci.image.manifest.v1+json",
      digest = manifest_digest,
      size = manifest_size,
      platform = { architecture = arch, os = "linux" },
      annotations = {
        ["org.opencontainers.image.ref.name"] = opts.name,
        ["io.containerd.image.name"] = opts.name,
      },
    } }),
  }), { mode = 420 }))
  for _, d in ipairs({ layout, layout .. "/blobs", blobs }) do check(core.chmod(d, 493)) end

  local out = check(core.layer_write(layout, opts.out,
    { compression = "none", mtime = EPOCH, uid = 0, gid = 0 }))
  io.stdout:write(string.format("%s %s manifest %s layer %s (%d applets)\n", opts.out, out.digest,
    manifest_digest, layer.digest, n))
end)
core.remove_tree(tmp)
if not ok then die(err) end
