-- run_latency: the time from command to exit of a container running /bin/true, for ctrlua and
-- for the OCI runtimes, on the same machine in the same run.
--
--   ctrlua   `ctrlua run.lua --rm IMAGE ID /bin/true`: the whole pipeline (image lookup, snapshot,
--            spec, bundle, create, start, wait, delete), a fresh ID each run; the image is
--            imported and unpacked once before.
--   runc     `runc run -b BUNDLE ID` of a ready bundle: the same busybox rootfs (the test image's
--            layer unpacked into a directory), config.json from `runc spec` with args
--            ["/bin/true"] and terminal false.
--   crun     `crun run -b BUNDLE ID` of the same bundle.  crun 1.8 refuses this machine's hybrid
--            cgroups, so it runs in a private mount namespace where /sys/fs/cgroup/unified is
--            unmounted, made once and held by a sleeping process; the bench steps into it
--            (setns) before the clock starts and out after it stops, so no wrapper is timed.
--   ctrlua-nocgroup  the same with `--cgroup ""` (no cgroup is made), beside the floor.
--   floor    `unshare -m -u -i -n -p -f --mount-proc=ROOTFS/proc chroot ROOTFS /bin/true`.
--
-- Times: 20 rounds after two of warm-up; each round runs every contestant once (core.spawn, an
-- argv, no shell), in an order that rotates from round to round.  The machine's speed drifts
-- (a shared VM's can change by half within minutes), so the ratios are the medians of the
-- per-round ratios (ctrlua / crun, ctrlua --cgroup "" / the floor of the same round), with
-- each contestant's median beside.  Peak RSS is GNU time's %M (wait4's ru_maxrss: the largest
-- resident set of the process and every descendant it reaped), in 21 rounds as the times are
-- (its files' part moves with the page cache's state, which drifts too), its ratio the median
-- of the rounds' ratios; and, for the
-- remainder of a missed RSS target, ctrlua's and crun's resident sets by part (anonymous, each
-- mapped file) read from /proc while their container sleeps, with the Lua heap of the traced
-- runs (run.lua's phase lines carry it).  ctrlua's
-- phases come from 20 more runs each, with and without a cgroup, alternating, with
-- CTRLUA_TRACE=1 (run.lua prints `phase NAME X ms` on stderr; the first counts from the host's
-- main).  All of it on an ext4 made for the run, in a namespace of the bench's own.  A missed
-- target's remainder says where the difference goes by phase, beside what
-- bench/_probes.lua measures of the kernel (the v1 grace period) and the store's file system
-- (an fsync, a directory's removal) on this machine.
--
-- A module for bench/run.lua: `require("run_latency")(report)` calls report(result) once per
-- contestant: { name = "run_latency/ctrlua", unit = "ms", median =, min =, p90 =, max =,
-- runs = 20, rss_kb =, note = }; with the targets (bench/run.lua prints MET or MISSED):
-- ctrlua's whole pipeline at or below crun's bundle-only time (ratio, target 1.0), with
-- `--cgroup ""` within 2x the floor (ratio to the floor, target 2.0), and one more result,
-- "run_latency/peak rss", ctrlua's peak RSS against crun's (ratio, target 1.0).  Run directly (`luajit bench/run_latency.lua`, with
-- LUA_PATH/LUA_CPATH/CTRLUA_BIN/CTRLUA_TEST_IMAGE as `make bench` sets them, as root) it
-- prints the same.
local core = require("ctr.core")

local N = 20
-- The peak RSS of one and the same command moves by about 150 KB from run to run here (GNU
-- time's %M of /bin/true: 964 to 1112 KB in twelve runs; crun --version 2988 to 3220), as much
-- as the margin the RSS target is about: the median of many runs.
local RSS_RUNS = 21
local BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
local IMAGE_TAR = os.getenv("CTRLUA_TEST_IMAGE") or "build/images/busybox.oci.tar"
local IMAGE = "ctrlua.test/busybox:latest"
local NS = "ctrlua-bench-run"
local PHASES = { "startup", "pull", "image", "container", "create", "start", "wait", "cleanup" }

local P = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_probes.lua")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function capture(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  return body, tonumber(rc)
end

local function sh(cmd)
  local out, rc = capture(cmd)
  if rc ~= 0 then error(("command failed (%s): %s\n%s"):format(rc, cmd, out), 0) end
  return out
end

local function sorted(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s
end

local function median(t)
  local s = sorted(t)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

-- nearest-rank percentile
local function pct(t, p)
  local s = sorted(t)
  return s[math.max(1, math.ceil(p / 100 * #s))]
end

local function stats(times_ms)
  local s = sorted(times_ms)
  return { median = median(s), min = s[1], p90 = pct(s, 90), max = s[#s], runs = #s }
end

-- hyperfine -N: the run times (ms) of each command of a run, from its JSON export.
local function hyperfine(dir, args, prefix)
  local json = dir .. "/hyperfine.json"
  os.remove(json)
  sh(("%shyperfine -N --style none --export-json %s %s"):format(prefix or "", q(json), args))
  local doc = core.json_decode(assert(core.read_file(json)))
  local times = {}
  for _, res in ipairs(doc.results) do
    for _, t in ipairs(res.times) do times[#times + 1] = t * 1000 end
  end
  return times
end

-- GNU time's %M (KB) of one run of the command argv; hide as core.spawn's hide_mounts.
local function peak_rss_once(argv, hide)
  local a = { "/usr/bin/time", "-f", "RSS %M", unpack(argv) }
  local r, err = core.spawn({ argv = a, stdout = "null", stderr = "pipe", hide_mounts = hide })
  if not r then error(tostring(err), 0) end
  if r.code ~= 0 then error(("%s: exit code %s: %s"):format(table.concat(a, " "), tostring(r.code), r.stderr or ""), 0) end
  return tonumber((r.stderr or ""):match("RSS (%d+)"))
end

-- The resident set of a runtime's process while its container runs (argv's command sleeps):
-- every phase but the cleanup has run by then.  ns as a contestant's (entered for the fork).
-- { hwm =, anon =, file =, files = { { name, kb }, ... } (largest first) } from its
-- /proc/PID/status and smaps, or nil.
local function resident_parts(argv, ns)
  local words = {}
  for i, a in ipairs(argv) do words[i] = q(a) end
  if ns then ns.enter() end
  local p = io.popen("exec sh -c 'echo $$; exec \"$@\" >/dev/null 2>&1' sh " .. table.concat(words, " "))
  if ns then ns.leave() end
  local pid = p and tonumber(p:read("*l") or "")
  if not pid then
    if p then p:close() end
    return nil
  end
  os.execute("sleep 0.3")
  local status = core.read_file(("/proc/%d/status"):format(pid)) or ""
  local smaps = core.read_file(("/proc/%d/smaps"):format(pid), 4 * 1024 * 1024) or ""
  p:close()
  local function kb(field) return tonumber(status:match(field .. ":%s+(%d+) kB")) end
  local r = { hwm = kb("VmHWM"), anon = kb("RssAnon"), file = kb("RssFile"), files = {} }
  if not r.hwm then return nil end
  local by, cur = {}, nil
  for line in smaps:gmatch("[^\n]+") do
    if line:match("^%x+%-%x+ ") then
      cur = line:match("^%x+%-%x+ %S+ %x+ %S+ %d+%s+(/%S+)")
    else
      local rss = line:match("^Rss:%s+(%d+) kB")
      if rss and cur then by[cur] = (by[cur] or 0) + tonumber(rss) end
    end
  end
  for path, n in pairs(by) do r.files[#r.files + 1] = { path:match("[^/]+$"), n } end
  table.sort(r.files, function(a, b) return a[2] > b[2] end)
  return r
end

-- The test image's layer, unpacked into rootfs (a plain directory, as `ctr` would not do).
local function unpack_rootfs(dir, rootfs)
  local layout = dir .. "/layout"
  sh(("mkdir -p %s %s && tar -C %s -xf %s"):format(q(layout), q(rootfs), q(layout), q(IMAGE_TAR)))
  local function blob(d) return layout .. "/blobs/sha256/" .. d:sub(8) end
  local index = core.json_decode(assert(core.read_file(layout .. "/index.json")))
  local manifest = core.json_decode(assert(core.read_file(blob(index.manifests[1].digest))))
  for _, l in ipairs(manifest.layers) do
    sh(("tar -C %s -xzf %s"):format(q(rootfs), q(blob(l.digest))))
  end
  sh("rm -rf " .. q(layout))
end

local function make_bundle(bundle, sleeping)
  unpack_rootfs(bundle, bundle .. "/rootfs")
  sh(("cd %s && runc spec"):format(q(bundle)))
  local spec = core.json_decode(assert(core.read_file(bundle .. "/config.json")))
  spec.process.args = core.json_array({ "/bin/true" })
  spec.process.terminal = false
  assert(core.write_file(bundle .. "/config.json", core.json_encode(spec, true), { mode = 420 }))
  -- the same container sleeping a second (for resident_parts), on the same rootfs
  sh("mkdir -p " .. q(sleeping))
  spec.process.args = core.json_array({ "/bin/sleep", "1" })
  spec.root.path = bundle .. "/rootfs"
  assert(core.write_file(sleeping .. "/config.json", core.json_encode(spec, true), { mode = 420 }))
end

-- A private mount namespace without the mount at `hidden`, held by a sleeping process, that
-- this process can step into and out of (setns) around a timed spawn: the namespace is made,
-- and the mount dropped, before the clock starts (dropping a mount waits for an RCU grace
-- period, a third of a millisecond here, which core.spawn's hide_mounts would put inside the
-- timed run).  Returns { enter =, leave = } and a function that ends the holder, or nil when
-- setns is refused (then the caller falls back to hide_mounts).
local ffi = require("ffi")
ffi.cdef [[
  int setns(int fd, int nstype);
  int open(const char *path, int flags, ...);
  int close(int fd);
  int chdir(const char *path);
  char *getcwd(char *buf, size_t size);
]]
local CLONE_NEWNS, O_RDONLY_CLOEXEC = 0x00020000, 0x80000
local priv_holder
local function private_mount_ns(hidden)
  local p = io.popen(("exec unshare -m --propagation private sh -c %s"):format(
    q("umount " .. hidden .. " && echo $$ && exec sleep 3600")))
  local pid = p and tonumber(p:read("*l") or "")
  if not pid then
    if p then p:close() end
    return nil
  end
  priv_holder = function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    p:close()
    priv_holder = nil
  end
  local buf = ffi.new("char[4096]")
  local cwd = ffi.C.getcwd(buf, 4096) ~= nil and ffi.string(buf) or "/"
  local mine = ffi.C.open("/proc/self/ns/mnt", O_RDONLY_CLOEXEC)
  local theirs = ffi.C.open(("/proc/%d/ns/mnt"):format(pid), O_RDONLY_CLOEXEC)
  local function back()
    assert(ffi.C.setns(mine, CLONE_NEWNS) == 0, "setns back to this process's mount namespace")
    ffi.C.chdir(cwd)
  end
  if mine < 0 or theirs < 0 or ffi.C.setns(theirs, CLONE_NEWNS) ~= 0 then
    priv_holder()
    return nil
  end
  back()
  return { enter = function() assert(ffi.C.setns(theirs, CLONE_NEWNS) == 0, "setns") end, leave = back }
end

local function run(report)
  local rows = {}
  report = report or function(r) rows[#rows + 1] = r end
  if core.geteuid() ~= 0 then error("run_latency: needs root", 0) end
  -- Everything (ctrlua's store and state, the bundle, runc's and crun's state) on a file
  -- system made for this run, as bench/unpack.lua and bench/registry.lua do: on the shared
  -- ext4 without a journal every new inode steps over the ones freed in the last seconds (a
  -- module before this one removes a store of a gigabyte), which would charge the runs here
  -- for what ran before them.
  local base = (sh("mktemp -d /var/tmp/ctrlua-bench-run.XXXXXX"):gsub("%s+$", ""))
  local dir, img = base .. "/fs", base .. "/fs.img"
  sh(("truncate -s 2G %s && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s && mkdir %s")
    :format(q(img), q(img), q(dir)))
  local dev = (sh("losetup -f --show --direct-io=on " .. q(img)):gsub("%s+$", ""))
  local mounted = os.execute(("mount %s %s"):format(q(dev), q(dir)))
  if not (mounted == true or mounted == 0) then
    sh(("losetup -d %s; rm -rf %s"):format(q(dev), q(base)))
    error("run_latency: mount " .. dev .. " on " .. dir, 0)
  end
  local results, phases, phases_nc, probes, paired = {}, {}, {}, {}, {}
  local ok, err = pcall(function()
    local root, state = dir .. "/root", dir .. "/state"
    -- a namespace of the bench's own: cgroup paths are /NAMESPACE/ID on the host, shared by
    -- every store
    local ctrlua = ("%s --root %s --state %s -n %s"):format(q(BIN), q(root), q(state), NS)
    sh(ctrlua .. " images.lua import " .. q(IMAGE_TAR))
    -- the first run unpacks the image; two more warm the page cache
    for i = 1, 3 do sh(("%s run.lua --rm %s warm%d /bin/true"):format(ctrlua, IMAGE, i)) end

    local bundle = dir .. "/bundle"
    make_bundle(bundle, dir .. "/bundle-sleep")
    local rootfs = bundle .. "/rootfs"
    -- crun runs in a private mount namespace without /sys/fs/cgroup/unified (see the header):
    -- core.spawn makes it in the child, before the exec, so no wrapper program is timed
    local hide = { "/sys/fs/cgroup/unified" }
    local priv = private_mount_ns(hide[1])
    local ctrlua_argv = { BIN, "--root", root, "--state", state, "-n", NS }
    local function ctrlua_run(extra, id)
      local a = { unpack(ctrlua_argv) }
      a[#a + 1] = "run.lua"
      a[#a + 1] = "--rm"
      for _, x in ipairs(extra) do a[#a + 1] = x end
      for _, x in ipairs({ IMAGE, id, "/bin/true" }) do a[#a + 1] = x end
      return a
    end
    local function bundle_run(rt, id) return { rt, "--root", dir .. "/" .. rt, "run", "-b", bundle, id } end
    local floor_argv = { "unshare", "-m", "-u", "-i", "-n", "-p", "-f", "--mount-proc=" .. rootfs .. "/proc",
      "chroot", rootfs, "/bin/true" }
    local contestants = {
      { name = "ctrlua", note = "whole pipeline: image, snapshot, spec, bundle, run, delete",
        argv = function(i) return ctrlua_run({}, "b" .. i) end },
      { name = "ctrlua-nocgroup", note = 'as ctrlua, with --cgroup ""',
        argv = function(i) return ctrlua_run({ "--cgroup", "" }, "n" .. i) end },
      { name = "runc", note = "ready bundle", argv = function(i) return bundle_run("runc", "bench-runc" .. i) end },
      { name = "crun", note = "ready bundle; in a private mount namespace without /sys/fs/cgroup/unified",
        argv = function(i) return bundle_run("crun", "bench-crun" .. i) end,
        ns = priv, hide = not priv and hide or nil },
      { name = "floor", note = "unshare -m -u -i -n -p -f --mount-proc chroot /bin/true",
        argv = function() return floor_argv end },
    }
    -- Interleaved: each round runs every contestant once, in an order that rotates, so a
    -- change of the machine's speed between rounds (a shared VM's) falls on all of them alike
    -- and the ratios compare runs of the same round.
    local times, failed = {}, {}
    for _, c in ipairs(contestants) do times[c.name] = {} end
    local function timed(c, i)
      if c.ns then c.ns.enter() end
      local t0 = core.monotime()
      local r, msg = core.spawn({ argv = c.argv(i), stdout = "null", stderr = "null", hide_mounts = c.hide })
      local t = (core.monotime() - t0) * 1000
      if c.ns then c.ns.leave() end
      if not r then return nil, tostring(msg) end
      if r.code ~= 0 then return nil, ("%s: exit code %s"):format(table.concat(c.argv(i), " "), tostring(r.code)) end
      return t
    end
    for w = 1, 2 do
      for _, c in ipairs(contestants) do
        local _, werr = timed(c, "w" .. w)
        if werr then failed[c.name] = failed[c.name] or werr end
      end
    end
    -- n rounds, each measuring every contestant not out yet once, in an order that rotates:
    -- into[name][i] = measure(c, i), or the contestant is out (out[name] = the error)
    local function rounds(n, into, out, measure)
      for i = 1, n do
        for k = 0, #contestants - 1 do
          local c = contestants[(i + k - 1) % #contestants + 1]
          if not out[c.name] then
            local v, verr = measure(c, i)
            if v then into[c.name][i] = v else out[c.name] = verr end
          end
        end
      end
    end
    -- per-round ratios: contestant / reference of the same round
    local function round_ratios(of, n, a, b)
      local t = {}
      for i = 1, n do
        if of[a][i] and of[b][i] then t[#t + 1] = of[a][i] / of[b][i] end
      end
      return #t > 0 and median(t) or nil
    end
    rounds(N, times, failed, timed)
    paired.ctrlua = round_ratios(times, N, "ctrlua", "crun")
    paired.nocgroup = round_ratios(times, N, "ctrlua-nocgroup", "floor")
    -- Peak RSS in rounds too: the files' part of a resident set moves with the page cache's
    -- state, which drifts as the timings do, and the ratio is the median of the rounds' ratios
    local rss, rss_failed = {}, {}
    for _, c in ipairs(contestants) do rss[c.name], rss_failed[c.name] = {}, failed[c.name] end
    rounds(RSS_RUNS, rss, rss_failed, function(c, i)
      if c.ns then c.ns.enter() end
      local okr, kb = pcall(peak_rss_once, c.argv("rss" .. i), c.hide)
      if c.ns then c.ns.leave() end
      if okr then return kb end
      return nil, kb
    end)
    paired.rss = round_ratios(rss, RSS_RUNS, "ctrlua", "crun")
    for _, c in ipairs(contestants) do
      local okc, res = pcall(function()
        if failed[c.name] then error(failed[c.name], 0) end
        if rss_failed[c.name] then error(rss_failed[c.name], 0) end
        local r = stats(times[c.name])
        local kbs = sorted(rss[c.name])
        r.rss_kb, r.rss_min, r.rss_max = median(kbs), kbs[1], kbs[#kbs]
        return r
      end)
      if okc then
        res.name, res.unit, res.note = "run_latency/" .. c.name, "ms", c.note
        results[c.name] = res
      else
        results[c.name] = { name = "run_latency/" .. c.name, unit = "ms", error = tostring(res) }
      end
    end

    -- ctrlua's phases, with and without a cgroup, alternating; spawned as the timed runs are,
    -- and timed too: what a run spends outside its phases is its own time less its own phases'
    -- (a median of the runs less the medians of the phases is not: their spreads differ)
    local trace_env = { CTRLUA_TRACE = "1" }
    for kv in (core.read_file("/proc/self/environ") or ""):gmatch("([^%z]+)") do
      local k, v = kv:match("^([^=]+)=(.*)$")
      if k and k ~= "CTRLUA_TRACE" then trace_env[k] = v end
    end
    local per, per_nc = { outside = {} }, { outside = {} }
    for i = 1, N do
      for _, w in ipairs({ { per, {}, "ph" }, { per_nc, { "--cgroup", "" }, "phn" } }) do
        local t0 = core.monotime()
        local r, msg = core.spawn({ argv = ctrlua_run(w[2], w[3] .. i), env = trace_env,
          stdout = "null", stderr = "pipe" })
        local wall = (core.monotime() - t0) * 1000
        if not r or r.code ~= 0 then
          error(("traced run: %s"):format(r and (r.stderr or "") or tostring(msg)), 0)
        end
        local sum, heap = 0, 0
        for name, ms in r.stderr:gmatch("phase%s+(%S+)%s+([%d.]+) ms") do
          w[1][name] = w[1][name] or {}
          table.insert(w[1][name], tonumber(ms))
          sum = sum + tonumber(ms)
        end
        for kb in r.stderr:gmatch("phase%s+%S+%s+[%d.]+ ms heap (%d+) KB") do heap = math.max(heap, tonumber(kb)) end
        table.insert(w[1].outside, wall - sum)
        w[1].heap = w[1].heap or {}
        table.insert(w[1].heap, heap)
      end
    end
    for _, name in ipairs(PHASES) do
      phases[name] = median(per[name] or {})
      phases_nc[name] = median(per_nc[name] or {})
    end
    phases.outside, phases_nc.outside = median(per.outside), median(per_nc.outside)
    probes.heap = median(per.heap)
    -- the resident sets by part, while the container sleeps, for the RSS target's remainder
    local sleeper = { unpack(ctrlua_argv) }
    for _, x in ipairs({ "run.lua", "--rm", IMAGE, "rss-parts", "/bin/sleep", "1" }) do sleeper[#sleeper + 1] = x end
    probes.parts_ctrlua = resident_parts(sleeper)
    if priv then
      probes.parts_crun = resident_parts({ "crun", "--root", dir .. "/crun", "run", "-b", dir .. "/bundle-sleep",
        "bench-crun-parts" }, priv)
    end
    -- what the kernel and the store's file system charge here, apart from ctrlua
    probes.grace = P.grace(5)
    probes.fsync = P.fsync(root, 10)
    probes.remove_dir = P.remove_dir(root, 10)
    probes.fs = P.mount_options(root)
    probes.version = median(hyperfine(dir, ("--warmup 3 --runs %d %s"):format(N, q(BIN .. " --version"))))
    -- what a process costs the timed runs' way (core.spawn from this process), whatever it
    -- does: part of every contestant's time, and most of what ctrlua spends outside its phases
    local function spawned(argv)
      local t = {}
      for _ = 1, N do
        local t0 = core.monotime()
        local r = core.spawn({ argv = argv, stdout = "null", stderr = "null" })
        if r and r.code == 0 then t[#t + 1] = (core.monotime() - t0) * 1000 end
      end
      return median(t)
    end
    probes.spawn_true = spawned({ "/bin/true" })
    probes.spawn_version = spawned({ BIN, "--version" })
  end)
  if priv_holder then priv_holder() end
  -- the namespace's cgroups, left empty by the runs' deletes (as containerd's leave theirs)
  os.execute("rmdir /sys/fs/cgroup/" .. NS .. " /sys/fs/cgroup/*/" .. NS .. " 2>/dev/null")
  sh("for m in $(grep -o ' " .. dir .. "[^ ]*' /proc/self/mountinfo | sort -r); do umount -l \"$m\"; done; losetup -d "
    .. q(dev) .. "; rm -rf " .. q(base))
  if not ok then error(err, 0) end

  -- the detail, then one result per contestant
  local c, cr, fl = results.ctrlua, results.crun, results.floor
  print(("run_latency: /bin/true in a container, %d interleaved rounds (ms; peak RSS of the process tree)"):format(N))
  print(("  %-16s %8s %8s %8s %8s %9s  %s"):format("", "median", "min", "p90", "max", "rss KB", "how"))
  for _, name in ipairs({ "ctrlua", "ctrlua-nocgroup", "runc", "crun", "floor" }) do
    local r = results[name]
    if r.error then
      print(("  %-16s failed: %s"):format(name, r.error))
    else
      print(("  %-16s %8.2f %8.2f %8.2f %8.2f %9d  %s"):format(name, r.median, r.min, r.p90, r.max,
        r.rss_kb or -1, r.note))
    end
  end
  local parts = {}
  local total = 0
  for _, name in ipairs(PHASES) do
    if phases[name] then
      parts[#parts + 1] = ("%s %.2f"):format(name, phases[name])
      total = total + phases[name]
    end
  end
  print(("  ctrlua phases (median ms): %s (sum %.2f)"):format(table.concat(parts, ", "), total))
  local parts_nc = {}
  for _, name in ipairs(PHASES) do
    if phases_nc[name] then parts_nc[#parts_nc + 1] = ("%s %.2f"):format(name, phases_nc[name]) end
  end
  print(("  ctrlua --cgroup '' phases (median ms): %s"):format(table.concat(parts_nc, ", ")))
  local function ms(v) return v and ("%.2f ms"):format(v) or "not measured" end
  print(("  probes: v1 grace period %s (first cgroup.procs write from idle), fsync of 4 KB %s, "
    .. "removing a directory with a 4 KB file %s, store on %s"):format(ms(probes.grace),
    ms(probes.fsync), ms(probes.remove_dir), probes.fs or "?"))
  local function phase_line(ph)
    local t = {}
    for _, name in ipairs(PHASES) do
      if ph[name] then t[#t + 1] = ("%s %.2f"):format(name, ph[name]) end
    end
    return table.concat(t, ", ")
  end
  -- what the phases do not cover: the exec and the dynamic linking before the host's main
  -- (the first phase counts from there), and the exit after the last
  local function outside_line(_, ph)
    return ("outside the phases (the spawn, the exec and linking before the host's main, the "
      .. "exit after the last phase): %.2f ms (the median over the traced runs of each run's "
      .. "time less its phases'); spawned the same way, a process that does nothing "
      .. "(/bin/true) takes %s and a whole `ctrlua --version` %s (%s by hyperfine): a "
      .. "process's own cost on this machine, which every contestant pays"):format(
      ph.outside or 0, ms(probes.spawn_true), ms(probes.spawn_version), ms(probes.version))
  end
  local function fs_line(ph)
    return ("the store's file system (%s): container %.2f ms makes the snapshot's directories and "
      .. "the two records (not fsynced for --rm; %s per fsync here), and the spec; cleanup %.2f ms "
      .. "removes the snapshot's upper and work directories, the bundle and the records (%s per "
      .. "directory with a block here)"):format(probes.fs or "?", ph.container or 0, ms(probes.fsync),
      ph.cleanup or 0, ms(probes.remove_dir))
  end
  local nc = results["ctrlua-nocgroup"]
  if not c.error and not cr.error then
    c.ratio, c.target_ratio = paired.ctrlua or c.median / cr.median, 1.0
    c.met, c.target_note = c.ratio <= 1.0, "ctrlua run --rm / crun run of a ready bundle"
    local runtime = (phases.create or 0) + (phases.start or 0) + (phases.wait or 0)
    c.remainder = {
      ("%.2f ms over crun's %.2f; ctrlua's phases (median ms): %s"):format(c.median - cr.median,
        cr.median, phase_line(phases)),
      ("the runtime's part (create, start, wait) %.2f ms against crun's whole run %.2f ms; crun "
        .. "waits for the kernel's v1 grace period at its cgroup.procs writes (%s from idle, "
        .. "probed), which ctrlua's init does not (it moves itself into its v1 cgroups); create "
        .. "%.2f ms with a cgroup, %.2f without: %.2f ms of cgroup work (the directories, their "
        .. "limits, the devices list)"):format(runtime, cr.median, ms(probes.grace),
        phases.create or 0, phases_nc.create or 0, (phases.create or 0) - (phases_nc.create or 0)),
      ("what crun does not do at all, running a ready bundle: start-up %.2f ms (the Lua state, "
        .. "the modules, the flags), pull %.2f (the image's record found), image %.2f, container "
        .. "%.2f and cleanup %.2f, %.2f ms in all; "):format(
        phases.startup or 0, phases.pull or 0, phases.image or 0, phases.container or 0,
        phases.cleanup or 0, (phases.startup or 0) + (phases.pull or 0) + (phases.image or 0)
        + (phases.container or 0) + (phases.cleanup or 0))
        .. fs_line(phases),
      outside_line(c, phases) }
  end
  if not nc.error and not fl.error then
    nc.ratio, nc.target_ratio = paired.nocgroup or nc.median / fl.median, 2.0
    nc.met, nc.target_note = nc.ratio <= 2.0, "ctrlua run --rm --cgroup '' / the floor"
    nc.remainder = {
      ("%.2f ms over 2x the floor (%.2f); phases (median ms): %s"):format(nc.median - 2 * fl.median,
        2 * fl.median, phase_line(phases_nc)),
      ("the floor is unshare + chroot of an existing directory: create %.2f ms does what it does "
        .. "not (an overlay mount, /dev, masked paths, capabilities, the exec fifo), and it has no "
        .. "start-up, snapshot, records or cleanup"):format(phases_nc.create or 0),
      fs_line(phases_nc), outside_line(nc, phases_nc) }
  end
  for _, name in ipairs({ "ctrlua", "ctrlua-nocgroup", "runc", "crun", "floor" }) do
    local r = results[name]
    if name == "ctrlua" and not r.error then r.phases = phases end
    report(r)
  end
  if not c.error and not cr.error and paired.rss then
    local ratio = paired.rss
    local function parts_line(name, pr)
      if not pr then return ("%s: its resident set by part was not read"):format(name) end
      local files = {}
      for i = 1, math.min(5, #pr.files) do files[i] = ("%s %d"):format(pr.files[i][1], pr.files[i][2]) end
      return ("%s while its container sleeps: peak %d KB, anonymous %d KB, files %d KB (%s)"):format(
        name, pr.hwm, pr.anon or 0, pr.file or 0, table.concat(files, ", "))
    end
    report({ name = "run_latency/peak rss", unit = "ratio", median = ratio, ratio = ratio,
      target_ratio = 1.0, met = ratio <= 1.0, runs = RSS_RUNS,
      note = ("median of %d rounds' ratios; medians ctrlua %d KB, crun %d KB, peak RSS of a run --rm")
        :format(RSS_RUNS, c.rss_kb, cr.rss_kb),
      target_note = "peak RSS of ctrlua run --rm / crun run",
      remainder = {
        ("medians of %d rounds: ctrlua %d KB (%d to %d), crun %d KB (%d to %d)"):format(
          RSS_RUNS, c.rss_kb, c.rss_min, c.rss_max, cr.rss_kb, cr.rss_min, cr.rss_max),
        parts_line("ctrlua", probes.parts_ctrlua) .. ("; the Lua heap at its largest %s KB (the traced runs' median)"):format(
          probes.heap and ("%d"):format(probes.heap) or "?"),
        parts_line("crun", probes.parts_crun),
        "the files' part is the page cache's: a fault maps more than the page it touched (the "
          .. "kernel's fault-around, whole large folios), so the text of each binary and of libc "
          .. "counts nearly whole once a few of its functions ran, and moves from run to run with "
          .. "what was touched first (the ranges above); ctrlua's own to cut is the anonymous part, "
          .. "most of it the Lua heap" } })
  end
  return results
end

if arg and arg[0] and arg[0]:match("run_latency%.lua$") then
  run()
end
return run
