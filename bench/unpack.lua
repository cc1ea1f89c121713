-- unpack: core.layer_apply against `tar -xzf` on the same gzip layer (>= 200 MB, thousands of files)
--
-- A module for bench/run.lua: `require("unpack")(report)` (or dofile) runs the benchmark and
-- calls report(result) once with
--   { name = "unpack", unit = "ratio", median = <median of layer_apply/tar>, runs = { {apply=, tar=,
--     ratio=}, ... }, bytes = <uncompressed size>, entries = <n>, ratio = <the median>,
--     target_ratio = 1.0, met = }.
-- Target: at or below tar (ratio 1.0).
-- Run directly (`luajit bench/unpack.lua` with LUA_CPATH=build/lib/?.so) it prints the same.
-- Each run unpacks into a file system made for it (a sparse file under /var/tmp, mkfs.ext4, a
-- loop device with direct I/O; unmounted and removed after), alternating, 5 pairs, which of
-- the two goes first alternating too; nothing is dropped from the page cache.  A file system
-- of its own for each: on an ext4 without a journal (this project's /var/tmp) the inode
-- allocator steps over every inode freed in the last minute or more (recently_deleted() in
-- fs/ext4/ialloc.c), reading the inode table to tell, so a run after an `rm -rf` of 17,000
-- files paid for scanning them (perf: three quarters of the kernel time); and a sync of a
-- shared file system writes whatever else is dirty on it too.  Needs root (losetup, mount).
-- Each run starts after a `sync`; layer_apply ends with syncfs, so tar's time includes a
-- `sync -f` of its output too (both are printed; the ratio uses the synced time).
local core = require("ctr.core")

local SOURCES = { "/usr/lib/python3.11", "/usr/share/doc", "/usr/include", "/usr/share/man",
  "/usr/share/locale", "/usr/share/perl" }
local MIN_BYTES = 200 * 1024 * 1024
local PAIRS = 5

local function sh(cmd)
  local ok = os.execute(cmd)
  if not (ok == 0 or ok == true) then error("command failed: " .. cmd, 2) end
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return s
end

-- fn(dir) with dir on a fresh ext4 of its own, dropped after.
local function with_fs(base, fn)
  local img = base .. "/fs.img"
  sh(string.format("truncate -s 4G '%s' && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 '%s'",
    img, img))
  local dev = (capture("losetup -f --show --direct-io=on '" .. img .. "'"):gsub("%s+$", ""))
  local mnt = base .. "/mnt"
  local ok, err = pcall(function()
    sh(string.format("mkdir -p '%s' && mount '%s' '%s'", mnt, dev, mnt))
    fn(mnt .. "/out")
  end)
  -- held for a moment still (a process on its way out): let go lazily rather than left mounted
  os.execute(string.format("umount '%s' || { sleep 0.5; umount '%s'; } || umount -l '%s'; "
    .. "losetup -d '%s'; rm -f '%s'; rmdir '%s'", mnt, mnt, mnt, dev, img, mnt))
  if not ok then error(err, 0) end
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function run(report)
  report = report or function(r)
    print(string.format("unpack: median ratio layer_apply/tar = %.3f (%d bytes, %d entries)",
      r.median, r.bytes, r.entries))
  end
  local dir = (capture("mktemp -d /var/tmp/ctrlua-bench-unpack.XXXXXX"):gsub("%s+$", ""))
  local ok, err = pcall(function()
    local src = dir .. "/src"
    sh("mkdir '" .. src .. "'")
    for _, s in ipairs(SOURCES) do
      local size = tonumber(capture("du -sb '" .. src .. "' | cut -f1"))
      if size >= MIN_BYTES then break end
      if core.stat(s, true) then
        sh(string.format("cp -a '%s' '%s/%s'", s, src, (s:gsub("^/", ""):gsub("/", "_"))))
      end
    end
    local layer = dir .. "/layer.tar.gz"
    local w = assert(core.layer_write(src, layer, { compression = "gzip" }))
    if w.uncompressed_size < MIN_BYTES then
      error(string.format("only %d bytes of test data", w.uncompressed_size))
    end
    print(string.format("unpack: layer %s: %d entries, %.0f MB uncompressed, %.0f MB gzip",
      layer, w.entries, w.uncompressed_size / 1e6, w.size / 1e6))
    local runs, ratios = {}, {}
    for i = 1, PAIRS do
      local apply, tar, tar_nosync, res
      local function run_apply()
        with_fs(dir, function(a_dir)
          sh(string.format("mkdir '%s'", a_dir))
          sh("sync") -- start each run with no writeback pending from the previous one
          local t0 = core.monotime()
          res = assert(core.layer_apply(a_dir, layer, { diff_id = w.diff_id }))
          apply = core.monotime() - t0
        end)
      end
      local function run_tar()
        with_fs(dir, function(t_dir)
          sh(string.format("mkdir '%s'", t_dir))
          sh("sync")
          local t1 = core.monotime()
          sh(string.format("tar -xzf '%s' -C '%s'", layer, t_dir))
          tar_nosync = core.monotime() - t1
          -- tar does not syncfs; layer_apply does (durability before commit).  Count a sync
          -- for tar too, so both have put their data on the way to disk.
          sh("sync -f '" .. t_dir .. "'")
          tar = core.monotime() - t1
        end)
      end
      if i % 2 == 1 then run_apply(); run_tar() else run_tar(); run_apply() end
      runs[i] = { apply = apply, tar = tar, tar_nosync = tar_nosync, ratio = apply / tar,
        first = i % 2 == 1 and "layer_apply" or "tar" }
      ratios[i] = apply / tar
      print(string.format("unpack: pair %d (%s first): layer_apply %.3fs (%d entries)  tar -xzf %.3fs"
        .. " (+sync; %.3fs without)  ratio %.3f", i, runs[i].first, apply, res.entries, tar,
        tar_nosync, apply / tar))
    end
    local m = median(ratios)
    report({ name = "unpack", unit = "ratio", median = m, runs = runs,
      bytes = w.uncompressed_size, entries = w.entries, ratio = m, target_ratio = 1.0,
      met = m <= 1.0, note = "layer_apply / tar -xzf, median of 5 alternating pairs" })
  end)
  sh("rm -rf '" .. dir .. "'")
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("unpack%.lua$") then
  run()
end
return run
