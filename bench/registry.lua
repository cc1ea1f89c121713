-- registry: pull (with unpack) and push against a docker-registry on loopback, beside Debian's
-- containerd (`ctr images pull`, which unpacks too; `ctr images push`) and `skopeo copy
-- docker://… oci:DIR` (which does not unpack), alternated (which goes first alternates too),
-- as paired ratios.
--
-- The large image (>= 200 MB in thousands of files, four layers) is made here from local
-- files with the project's own layer writer and pushed once (by skopeo).  Each pull starts
-- from an empty store on a file system made for it (a sparse file, mkfs.ext4, a loop device
-- with direct I/O; dropped after): a fresh ctrlua root, a fresh containerd (started outside
-- the timing), a fresh OCI directory.  In the same runs ctrlua's "fetch alone" (pull without
-- unpack) and "unpack alone" (images.lua unpack of what was fetched) are timed, for the
-- overlap target.  containerd makes no unpacked file durable (its content store fsyncs the
-- blobs, its archive.Apply and overlay Commit sync nothing), ctrlua syncs each layer's
-- contents before it commits the snapshot: so the notes give containerd's time with a
-- `sync -f` after it too, and, where eatmydata is installed, ctrlua's without its syncs.
-- Targets: the large pull with unpack at or below 0.6x containerd's time, and at or below 1.2x
-- the longer of fetch alone and unpack alone.  Needs root (losetup, mount), about 1.5 GB of
-- /var/tmp at a time.
local core = require("ctr.core")
local S = require("support.ctrlua")
local R = require("support.registry")
local C = require("support.containerd")

local q = S.q
-- about 330 MB on Debian 12: one layer each
local SOURCES = { "/usr/lib/python3.11", "/usr/share/doc", "/usr/include", "/usr/share/man" }
local MIN_BYTES = 200 * 1024 * 1024
local PAIRS = tonumber(os.getenv("CTRLUA_BENCH_PAIRS") or "") or 3
-- CTRLUA_BENCH_REGISTRY=large: the large pulls only (no small pulls, no pushes)
local LARGE_ONLY = os.getenv("CTRLUA_BENCH_REGISTRY") == "large"

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

    -- Each timed pull (and the fetch alone with its unpack alone) gets a file system of its
    -- own, made for it and dropped after it: so no run pays for another's removed files (an
    -- ext4 steps over recently freed inodes, fs/ext4/ialloc.c recently_deleted()), and a
    -- syncfs syncs the pull's own writes only, not the host's.  The loop device does direct
    -- I/O to its file, so a sync reaches the disk and is not only a copy into the page cache.
    local function with_fs(fn)
      local img = fresh("fs") .. ".img"
      S.must(("truncate -s 8G %s && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s"):format(q(img), q(img)))
      local dev = (S.must("losetup -f --show --direct-io=on " .. q(img)):gsub("%s+$", ""))
      local mnt = fresh("mnt")
      local ok, res = pcall(function()
        S.must(("mkdir %s && mount %s %s"):format(q(mnt), q(dev), q(mnt)))
        return fn(mnt)
      end)
      S.unmount_under(mnt .. "/")
      -- a file system something still holds for a moment (a process on its way out) is let
      -- go lazily rather than left mounted: the loop device then goes with its last user
      S.sh(("umount %s || { sleep 0.5; umount %s; } || umount -l %s; losetup -d %s; rm -f %s; rmdir %s")
        :format(q(mnt), q(mnt), q(mnt), q(dev), q(img), q(mnt)))
      if not ok then error(res, 0) end
      return res
    end
    -- without ctrlua's syncs (fsync, syncfs made no-ops), for the comparison with containerd,
    -- which makes no unpacked file durable: only when eatmydata is installed
    local nosync = core.stat("/usr/bin/eatmydata") and "eatmydata " or nil

    local function pulls(ref, n, with_parts)
      local r = { ctrlua = {}, ctr = {}, ctr_sync = {}, nosync = {}, skopeo = {}, fetch = {}, unpack = {},
        ratio_ctr = {}, ratio_ctr_sync = {}, ratio_nosync = {}, ratio_overlap = {} }
      local function run_ctrlua(i)
        r.ctrlua[i] = with_fs(function(mnt)
          S.must("sync")
          return timed(ctrlua(mnt .. "/root", "images.lua", "pull", "--plain-http", ref))
        end)
      end
      local function run_ctr(i)
        with_fs(function(mnt)
          local d = C.start({ image = false, dir = mnt .. "/containerd" })
          S.must("sync")
          local t0 = core.monotime()
          local ok, e = pcall(timed, d:ctr_cmd() .. " images pull --plain-http " .. q(ref) .. " >/dev/null 2>&1")
          if ok then
            r.ctr[i] = e
            -- what it takes containerd's unpacked files to be on disk too
            S.must("sync -f " .. q(mnt))
            r.ctr_sync[i] = core.monotime() - t0
          end
          d:stop()
          if not ok then error(e, 0) end
        end)
      end
      for i = 1, n do
        -- which goes first alternates
        if i % 2 == 1 then run_ctrlua(i) run_ctr(i) else run_ctr(i) run_ctrlua(i) end
        local u1 = S.sh("uptime"):match("load average: ([%d.]+)")
        r.skopeo[i] = with_fs(function(mnt)
          S.must("sync")
          return timed(("skopeo copy -q --src-tls-verify=false docker://%s oci:%s:x"):format(ref, q(mnt .. "/oci")))
        end)
        r.ratio_ctr[i], r.ratio_ctr_sync[i] = r.ctrlua[i] / r.ctr[i], r.ctrlua[i] / r.ctr_sync[i]
        local extra = ""
        if with_parts then
          with_fs(function(mnt)
            local root = mnt .. "/root"
            S.must("sync")
            r.fetch[i] = timed(("%s --root %s --state %s %s %s >/dev/null 2>&1"):format(q(S.BIN), q(root),
              q(root .. ".state"), q(fetch), q(ref)))
            S.must("sync")
            r.unpack[i] = timed(ctrlua(root, "images.lua", "unpack", ref))
          end)
          r.ratio_overlap[i] = r.ctrlua[i] / math.max(r.fetch[i], r.unpack[i])
          extra = (", fetch alone %.2f s, unpack alone %.2f s"):format(r.fetch[i], r.unpack[i])
          if nosync then
            r.nosync[i] = with_fs(function(mnt)
              S.must("sync")
              return timed(nosync .. ctrlua(mnt .. "/root", "images.lua", "pull", "--plain-http", ref))
            end)
            r.ratio_nosync[i] = r.nosync[i] / r.ctr[i]
            extra = extra .. (", ctrlua without its syncs %.2f s"):format(r.nosync[i])
          end
        end
        print(("registry: %s pair %d (%s first; load %s): ctrlua %.2f s, ctr %.2f s (%.2f s with a sync after), skopeo %.2f s%s"):format(
          ref, i, i % 2 == 1 and "ctrlua" or "ctr", u1 or "?", r.ctrlua[i], r.ctr[i], r.ctr_sync[i], r.skopeo[i], extra))
      end
      return r
    end

    -- one pull before the timed ones, untimed: the first pull from the registry after the push
    -- took 0.8 to 0.9 s longer than every later one (ctrlua went first; the pairs after it,
    -- whichever went first, did not)
    with_fs(function(mnt)
      S.must(ctrlua(mnt .. "/root", "images.lua", "pull", "--plain-http", reg.host .. "/bench/large:1"))
    end)
    local large = pulls(reg.host .. "/bench/large:1", PAIRS, true)
    local lr, lo = median(large.ratio_ctr), median(large.ratio_overlap)
    local ls, ln = median(large.ratio_ctr_sync), nosync and median(large.ratio_nosync)
    local function large_report()
      report({ name = "registry: large pull+unpack, ctrlua / ctr", unit = "ratio", median = lr,
        min = math.min(unpack(large.ratio_ctr)), max = math.max(unpack(large.ratio_ctr)), runs = large.ratio_ctr,
        note = ("ctrlua %.2f s, ctr %.2f s (%.2f s with a sync after: ratio %.2f)%s, skopeo (no unpack) %.2f s; target <= 0.6: %s"):format(
          median(large.ctrlua), median(large.ctr), median(large.ctr_sync), ls,
          ln and (", ctrlua without its syncs %.2f s (ratio %.2f)"):format(median(large.nosync), ln) or "",
          median(large.skopeo), lr <= 0.6 and "MET" or "MISSED") })
      report({ name = "registry: large pull+unpack / max(fetch, unpack)", unit = "ratio", median = lo,
        min = math.min(unpack(large.ratio_overlap)), max = math.max(unpack(large.ratio_overlap)), runs = large.ratio_overlap,
        note = ("fetch alone %.2f s, unpack alone %.2f s; target <= 1.2: %s"):format(median(large.fetch),
          median(large.unpack), lo <= 1.2 and "MET" or "MISSED") })
      print(("registry: TARGET large pull+unpack <= 0.6x containerd: %.2f %s (against containerd and a sync: %.2f%s)"):format(
        lr, lr <= 0.6 and "MET" or "MISSED", ls, ln and ("; ctrlua without its syncs: %.2f"):format(ln) or ""))
      print(("registry: TARGET large pull+unpack <= 1.2x max(fetch alone, unpack alone): %.2f %s"):format(lo,
        lo <= 1.2 and "MET" or "MISSED"))
    end
    if LARGE_ONLY then return large_report() end
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

    large_report()
    report({ name = "registry: small pull+unpack, ctrlua / ctr", unit = "ratio", median = median(small.ratio_ctr),
      min = math.min(unpack(small.ratio_ctr)), max = math.max(unpack(small.ratio_ctr)), runs = small.ratio_ctr,
      note = ("ctrlua %.3f s, ctr %.3f s, skopeo %.3f s"):format(median(small.ctrlua), median(small.ctr), median(small.skopeo)) })
    report({ name = "registry: large push, ctrlua / ctr", unit = "ratio", median = median(push.ratio),
      min = math.min(unpack(push.ratio)), max = math.max(unpack(push.ratio)), runs = push.ratio,
      note = ("ctrlua %.2f s, ctr %.2f s"):format(median(push.ctrlua), median(push.ctr)) })
  end)
  reg:stop()
  S.sh("rm -rf " .. q(dir))
  if not ok then error(err, 0) end
end
