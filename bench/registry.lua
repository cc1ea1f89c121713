-- registry: pull (with unpack) and push against a docker-registry on loopback, beside Debian's
-- containerd (`ctr images pull`, which unpacks too; `ctr images push`) and `skopeo copy
-- docker://… oci:DIR` (which does not unpack), alternated, as paired ratios.
--
-- The large image (>= 200 MB in thousands of files, four layers) is made here from local
-- files with the project's own layer writer and pushed once (by skopeo).  Each pull starts
-- from an empty store: a fresh ctrlua root, a fresh containerd (started outside the timing),
-- a fresh OCI directory.  In the same runs ctrlua's "fetch alone" (pull without unpack) and
-- "unpack alone" (images.lua unpack of what was fetched) are timed, for the overlap target.
-- Targets: the large pull with unpack at or below 0.6x containerd's time, and at or below 1.2x
-- the longer of fetch alone and unpack alone.
local core = require("ctr.core")
local S = require("support.ctrlua")
local R = require("support.registry")
local C = require("support.containerd")

local q = S.q
-- about 330 MB on Debian 12: one layer each
local SOURCES = { "/usr/lib/python3.11", "/usr/share/doc", "/usr/include", "/usr/share/man" }
local MIN_BYTES = 200 * 1024 * 1024
local PAIRS = tonumber(os.getenv("CTRLUA_BENCH_PAIRS") or "") or 3

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function timed(cmd)
  local t0 = core.monotime()
  local out, rc = S.sh(cmd)
  local t = core.monotime() - t0
  if rc ~= 0 then error(("failed (%d): %s\n%s"):format(rc, cmd, out), 0) end
  return t
end

-- A four-layer image of local files as an oci-archive.
local function make_image(dir, name)
  local layout = dir .. "/layout"
  S.must(("mkdir -p %s/blobs/sha256"):format(q(layout)))
  local layers, diff_ids, total, entries = {}, {}, 0, 0
  local groups = { { SOURCES[1] }, { SOURCES[2] }, { SOURCES[3] }, { SOURCES[4] } }
  for i, g in ipairs(groups) do
    local src = dir .. "/src" .. i
    S.must("mkdir -p " .. q(src))
    for _, s in ipairs(g) do
      if core.stat(s) then S.must(("cp -a %s %s/"):format(q(s), q(src))) end
    end
    local tmp = dir .. "/layer" .. i .. ".tar.gz"
    local w = assert(core.layer_write(src, tmp, { compression = "gzip" }))
    S.must(("mv %s %s/blobs/sha256/%s && rm -rf %s"):format(q(tmp), q(layout), w.digest:sub(8), q(src)))
    layers[#layers + 1] = { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = w.digest, size = w.size }
    diff_ids[#diff_ids + 1] = w.diff_id
    total, entries = total + w.uncompressed_size, entries + w.entries
  end
  if total < MIN_BYTES then error(("only %d bytes of local files"):format(total), 0) end
  local function put(t)
    local data = core.json_encode(t)
    local d = core.sha256(data)
    assert(core.write_file(layout .. "/blobs/sha256/" .. d:sub(8), data, { mode = 420 }))
    return d, #data
  end
  local plat = require("ctr.platforms").default()
  local cd, cs = put({ architecture = plat.architecture, os = "linux", config = { Cmd = core.json_array({ "/bin/true" }) },
    rootfs = { type = "layers", diff_ids = core.json_array(diff_ids) } })
  local md, ms = put({ schemaVersion = 2, mediaType = "application/vnd.oci.image.manifest.v1+json",
    config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cd, size = cs },
    layers = core.json_array(layers) })
  assert(core.write_file(layout .. "/index.json", core.json_encode({ schemaVersion = 2, manifests = core.json_array({
    { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = md, size = ms,
      annotations = { ["io.containerd.image.name"] = name, ["org.opencontainers.image.ref.name"] = "1" } } }) })))
  assert(core.write_file(layout .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}'))
  local tar = dir .. "/large.oci.tar"
  S.must(("tar -C %s -cf %s oci-layout index.json blobs && rm -rf %s"):format(q(layout), q(tar), q(layout)))
  return tar, total, entries
end

local function fetch_script(dir)
  local p = dir .. "/fetch-only.lua"
  assert(core.write_file(p, [[
local ctr = require("ctr")
local c = assert(ctr.client())
local rec, err = c:pull(arg[1], { strict = true, plain_http = true, unpack = false })
if not rec then io.stderr:write(tostring(err), "\n") os.exit(1) end
]]))
  return p
end

return function(report)
  if not (R.available() and C.available()) then error("needs docker-registry, skopeo and containerd", 0) end
  local dir = (S.must("mktemp -d /var/tmp/ctrlua-bench-registry.XXXXXX"):gsub("%s+$", ""))
  local reg = R.start()
  local ok, err = pcall(function()
    local tar, bytes, entries = make_image(dir, "bench.local/large:1")
    print(("registry: large image %d MB in %d files, four layers"):format(math.floor(bytes / 1e6), entries))
    reg:push_image(tar, "bench/large:1")
    reg:push_image(S.IMAGE_TAR, "bench/small:1")
    local fetch = fetch_script(dir)
    local function ctrlua(root, ...)
      local parts = { q(S.BIN), "--root", q(root), "--state", q(root .. ".state") }
      for i = 1, select("#", ...) do parts[#parts + 1] = q((select(i, ...))) end
      return table.concat(parts, " ") .. " >/dev/null 2>&1"
    end
    local function fresh(tag) return ("%s/%s-%d"):format(dir, tag, math.random(1e9)) end
    local function clean(root)
      S.unmount_under(root)
      S.sh(("rm -rf %s %s"):format(q(root), q(root .. ".state")))
    end

    local function pulls(ref, n, with_parts)
      local r = { ctrlua = {}, ctr = {}, skopeo = {}, fetch = {}, unpack = {}, ratio_ctr = {}, ratio_overlap = {} }
      for i = 1, n do
        local root = fresh("pull")
        S.must("sync")
        local p = timed(ctrlua(root, "images.lua", "pull", "--plain-http", ref))
        clean(root)
        local d = C.start({ image = false })
        S.must("sync")
        local c = timed(d:ctr_cmd() .. " images pull --plain-http " .. q(ref) .. " >/dev/null 2>&1")
        d:stop()
        local odir = fresh("oci")
        S.must("sync")
        local s = timed(("skopeo copy -q --src-tls-verify=false docker://%s oci:%s:x"):format(ref, q(odir)))
        S.sh("rm -rf " .. q(odir))
        r.ctrlua[i], r.ctr[i], r.skopeo[i] = p, c, s
        r.ratio_ctr[i] = p / c
        if with_parts then
          local froot = fresh("fetch")
          S.must("sync")
          local f = timed(("%s --root %s --state %s %s %s >/dev/null 2>&1"):format(q(S.BIN), q(froot), q(froot .. ".state"), q(fetch), q(ref)))
          S.must("sync")
          local u = timed(ctrlua(froot, "images.lua", "unpack", ref))
          clean(froot)
          r.fetch[i], r.unpack[i] = f, u
          r.ratio_overlap[i] = p / math.max(f, u)
        end
        print(("registry: %s pair %d: ctrlua %.2f s, ctr %.2f s, skopeo %.2f s%s"):format(ref, i, p, c, s,
          with_parts and (", fetch alone %.2f s, unpack alone %.2f s"):format(r.fetch[i], r.unpack[i]) or ""))
      end
      return r
    end

    local large = pulls(reg.host .. "/bench/large:1", PAIRS, true)
    local small = pulls(reg.host .. "/bench/small:1", PAIRS + 2, false)

    -- push of the large image: ctrlua and ctr from stores that have it, to fresh repositories
    local proot = fresh("push")
    S.must(ctrlua(proot, "images.lua", "import", "--no-unpack", tar))
    local d = C.start({ image = false })
    local out, code = d:ctr("images import --no-unpack " .. q(tar))
    if code ~= 0 then error("ctr images import: " .. out, 0) end
    local push = { ctrlua = {}, ctr = {}, ratio = {} }
    for i = 1, PAIRS do
      local a = timed(ctrlua(proot, "images.lua", "push", "--plain-http", reg.host .. "/bench/p" .. i .. "a:1", "bench.local/large:1"))
      local b = timed(d:ctr_cmd() .. (" images push --plain-http %s bench.local/large:1 >/dev/null 2>&1"):format(q(reg.host .. "/bench/p" .. i .. "b:1")))
      push.ctrlua[i], push.ctr[i], push.ratio[i] = a, b, a / b
      print(("registry: push pair %d: ctrlua %.2f s, ctr %.2f s"):format(i, a, b))
    end
    d:stop()
    clean(proot)

    local lr, lo = median(large.ratio_ctr), median(large.ratio_overlap)
    report({ name = "registry: large pull+unpack, ctrlua / ctr", unit = "ratio", median = lr,
      min = math.min(unpack(large.ratio_ctr)), max = math.max(unpack(large.ratio_ctr)), runs = large.ratio_ctr,
      note = ("ctrlua %.2f s, ctr %.2f s, skopeo (no unpack) %.2f s; target <= 0.6: %s"):format(median(large.ctrlua),
        median(large.ctr), median(large.skopeo), lr <= 0.6 and "MET" or "MISSED") })
    report({ name = "registry: large pull+unpack / max(fetch, unpack)", unit = "ratio", median = lo,
      min = math.min(unpack(large.ratio_overlap)), max = math.max(unpack(large.ratio_overlap)), runs = large.ratio_overlap,
      note = ("fetch alone %.2f s, unpack alone %.2f s; target <= 1.2: %s"):format(median(large.fetch),
        median(large.unpack), lo <= 1.2 and "MET" or "MISSED") })
    report({ name = "registry: small pull+unpack, ctrlua / ctr", unit = "ratio", median = median(small.ratio_ctr),
      min = math.min(unpack(small.ratio_ctr)), max = math.max(unpack(small.ratio_ctr)), runs = small.ratio_ctr,
      note = ("ctrlua %.3f s, ctr %.3f s, skopeo %.3f s"):format(median(small.ctrlua), median(small.ctr), median(small.skopeo)) })
    report({ name = "registry: large push, ctrlua / ctr", unit = "ratio", median = median(push.ratio),
      min = math.min(unpack(push.ratio)), max = math.max(unpack(push.ratio)), runs = push.ratio,
      note = ("ctrlua %.2f s, ctr %.2f s"):format(median(push.ctrlua), median(push.ctr)) })
    print(("registry: TARGET large pull+unpack <= 0.6x containerd: %.2f %s"):format(lr, lr <= 0.6 and "MET" or "MISSED"))
    print(("registry: TARGET large pull+unpack <= 1.2x max(fetch alone, unpack alone): %.2f %s"):format(lo,
      lo <= 1.2 and "MET" or "MISSED"))
  end)
  reg:stop()
  S.sh("rm -rf " .. q(dir))
  if not ok then error(err, 0) end
end
