-- Test archive builders for the content and image specs: real rootfs directories, real tar
-- layers (tar, gzip, zstd), digests computed with core.sha256 of the bytes, OCI layouts and
-- docker-archives written by hand (not by the project's image builder).
local core = require("ctr.core")

local F = {}

local BIG = 512 * 1024 * 1024

--- Run a shell command; raise with its output when it fails.  Returns stdout.
function F.sh(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  if rc ~= "0" then error("command failed (" .. tostring(rc) .. "): " .. cmd .. "\n" .. out, 2) end
  return body
end

function F.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local made = {}
--- A fresh temporary directory (removed by F.cleanup()).
function F.tmpdir()
  local d = require("support.tmp").dir("spec")
  made[#made + 1] = d
  return d
end

--- Remove every temporary directory made so far (never crossing mounts: remove_tree).
function F.cleanup()
  for _, d in ipairs(made) do core.remove_tree(d) end
  made = {}
end

function F.have(tool)
  return os.execute("command -v " .. tool .. " >/dev/null 2>&1") == 0
end

function F.read(path) return assert(core.read_file(path, BIG)) end

function F.write(path, data)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then assert(core.mkdir_p(dir)) end
  local fh = assert(io.open(path, "wb"))
  fh:write(data)
  fh:close()
end

--- A rootfs directory with files {["etc/hostname"] = "x\n", ...}.
function F.rootfs(files)
  local d = F.tmpdir()
  for path, data in pairs(files) do F.write(d .. "/" .. path, data) end
  return d
end

--- A layer from a files table: {data=, digest=, size=, diff_id=, mediaType=, compression=}.
-- compression: "none" (default), "gzip", "zstd".
function F.layer(files, compression, oci_types)
  compression = compression or "none"
  local dir = F.rootfs(files)
  local out = F.tmpdir() .. "/layer.tar"
  F.sh("tar --numeric-owner -C " .. F.q(dir) .. " -cf " .. F.q(out) .. " .")
  local tar = F.read(out)
  local path = out
  if compression == "gzip" then
    F.sh("gzip -n " .. F.q(out))
    path = out .. ".gz"
  elseif compression == "zstd" then
    F.sh("zstd -q --rm " .. F.q(out))
    path = out .. ".zst"
  end
  local data = F.read(path)
  local mt = ({ none = "application/vnd.oci.image.layer.v1.tar",
    gzip = "application/vnd.oci.image.layer.v1.tar+gzip",
    zstd = "application/vnd.oci.image.layer.v1.tar+zstd" })[compression]
  return { data = data, digest = core.sha256(data), size = #data, diff_id = core.sha256(tar),
    mediaType = mt, compression = compression, path = path }
end

--- A big layer of incompressible bytes (for the crash test): n MiB.
function F.big_layer(mib)
  local dir = F.tmpdir()
  F.sh("head -c " .. (mib * 1024 * 1024) .. " /dev/urandom > " .. F.q(dir .. "/big"))
  local out = F.tmpdir() .. "/layer.tar"
  F.sh("tar -C " .. F.q(dir) .. " -cf " .. F.q(out) .. " big")
  local data = F.read(out)
  return { data = data, digest = core.sha256(data), size = #data, diff_id = core.sha256(data),
    mediaType = "application/vnd.oci.image.layer.v1.tar", compression = "none", path = out }
end

local Layout = {}
Layout.__index = Layout

--- An OCI image layout being written in a temporary directory.
function F.layout()
  local l = setmetatable({ dir = F.tmpdir(), entries = {} }, Layout)
  F.write(l.dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  return l
end

--- Write a blob; returns its descriptor.
function Layout:blob(data, mediaType)
  local d = core.sha256(data)
  F.write(self.dir .. "/blobs/sha256/" .. d:sub(8), data)
  return { mediaType = mediaType, digest = d, size = #data }
end

--- An image config table for layers and a platform.
function F.config(layers, arch, os_, variant, extra)
  local diff_ids = {}
  for i, l in ipairs(layers) do diff_ids[i] = l.diff_id end
  local c = {
    architecture = arch or "amd64", os = os_ or "linux", variant = variant,
    config = { Env = { "PATH=/usr/bin:/bin" }, Cmd = { "sh" }, WorkingDir = "/" },
    rootfs = { type = "layers", diff_ids = core.json_array(diff_ids) },
  }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

--- Add an image manifest (config + layers); returns the manifest descriptor with a platform.
-- opts: layers (from F.layer), arch, os, variant, skip_layer_blobs
function Layout:image(opts)
  local layers = opts.layers or {}
  local cfg = F.config(layers, opts.arch, opts.os, opts.variant)
  local cdesc = self:blob(core.json_encode(cfg), "application/vnd.oci.image.config.v1+json")
  local ldescs = {}
  for i, l in ipairs(layers) do
    if not opts.skip_layer_blobs then self:blob(l.data) end
    ldescs[i] = { mediaType = l.mediaType, digest = l.digest, size = l.size }
  end
  local m = { schemaVersion = 2, mediaType = "application/vnd.oci.image.manifest.v1+json",
    config = cdesc, layers = core.json_array(ldescs) }
  local d = self:blob(core.json_encode(m), m.mediaType)
  d.platform = { os = cfg.os, architecture = cfg.architecture, variant = opts.variant }
  return d, cfg
end

--- Add an image index of manifest descriptors; returns its descriptor.
function Layout:index(manifests)
  local idx = { schemaVersion = 2, mediaType = "application/vnd.oci.image.index.v1+json",
    manifests = core.json_array(manifests) }
  return self:blob(core.json_encode(idx), idx.mediaType)
end

--- Name a descriptor in index.json: annotations {["io.containerd.image.name"]=...}.
function Layout:add(desc, annotations)
  local d = {}
  for k, v in pairs(desc) do d[k] = v end
  d.annotations = annotations
  self.entries[#self.entries + 1] = d
end

--- Write index.json and tar the layout into out (compression "none", "gzip").
function Layout:archive(out, compression)
  F.write(self.dir .. "/index.json", core.json_encode({ schemaVersion = 2,
    manifests = core.json_array(self.entries) }))
  F.sh("tar -C " .. F.q(self.dir) .. " -cf " .. F.q(out) .. " .")
  if compression == "gzip" then
    F.sh("gzip -n -c " .. F.q(out) .. " > " .. F.q(out .. ".gz") .. " && mv " .. F.q(out .. ".gz")
      .. " " .. F.q(out))
  end
  return out
end

--- A docker-archive (`docker save` format) at out.  images: list of {layers=, tags=, arch=}.
-- style "legacy": <id>/layer.tar and <hex>.json; "blobs": blobs/sha256/<hex> names.
function F.docker_archive(out, images, style)
  local dir = F.tmpdir()
  local mf = {}
  for i, img in ipairs(images) do
    local cfg = F.config(img.layers, img.arch)
    local cdata = core.json_encode(cfg)
    local chex = core.sha256(cdata):sub(8)
    local cpath = style == "blobs" and "blobs/sha256/" .. chex or chex .. ".json"
    F.write(dir .. "/" .. cpath, cdata)
    local lpaths = {}
    for j, l in ipairs(img.layers) do
      local p = style == "blobs" and "blobs/sha256/" .. l.digest:sub(8) or l.digest:sub(8) .. "/layer.tar"
      F.write(dir .. "/" .. p, l.data)
      if style ~= "blobs" then
        F.write(dir .. "/" .. l.digest:sub(8) .. "/VERSION", "1.0")
        F.write(dir .. "/" .. l.digest:sub(8) .. "/json", "{}")
      end
      lpaths[j] = p
    end
    mf[i] = { Config = cpath, RepoTags = core.json_array(img.tags or {}),
      Layers = core.json_array(lpaths) }
  end
  F.write(dir .. "/manifest.json", core.json_encode(core.json_array(mf)))
  F.sh("tar -C " .. F.q(dir) .. " -cf " .. F.q(out) .. " .")
  return out
end

--- Every file under a directory, relative names.
function F.files_under(dir)
  local out = {}
  local s = F.sh("cd " .. F.q(dir) .. " 2>/dev/null && find . -type f | sort || true")
  for line in s:gmatch("[^\n]+") do out[#out + 1] = line:sub(3) end
  return out
end

--- Run the ctrlua binary: output (stdout+stderr unless split), exit status.
function F.ctrlua(args, opts)
  opts = opts or {}
  local bin = os.getenv("CTRLUA_BIN") or "build/ctrlua"
  local errf = os.tmpname()
  local cmd = F.q(bin) .. " " .. args .. " 2>" .. F.q(errf)
  if opts.stdin then cmd = cmd .. " < " .. F.q(opts.stdin) end
  local p = io.popen(cmd .. "; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local stderr = F.read(errf)
  os.remove(errf)
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  return body, tonumber(rc), stderr
end

return F
