-- store: a `run --rm` in a store that holds many snapshots against one that holds only the
-- image's, 20 interleaved rounds on one ext4 made for the run.  The many are 300 active
-- snapshots prepared on the image's layer, as a host with many containers and layers has them;
-- a run reads one image record, one snapshot record and its own, and nothing of its command's
-- work should grow with the rest of the store (a sweep or a removal that reads every record
-- would: before `sole` and the counted sweep, the same run took 1.7 times as long here).
--
-- A module for bench/run.lua: `require("store")(report)` reports
--   { name = "store: run --rm, 300 snapshots / none", unit = "ratio", median =, ratio =,
--     target_ratio = 1.1, met =, note = }
-- Target: at or below 1.1 (the median of the per-round ratios).  Its remainder, when missed:
-- both runs' phases (CTRLUA_TRACE=1).
local core = require("ctr.core")

local N = 20
local MANY = 300

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == 0 or ok == true
end

local function out(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>/dev/null; echo \"rc=$?\""))
  local text = p:read("*a")
  p:close()
  local body, rc = text:match("^(.*)rc=(%d+)\n$")
  if rc ~= "0" then return nil end
  return (body:gsub("%s+$", ""))
end

-- prepares arg[1] active snapshots on the (one) committed snapshot of the store
local PREPARE = [[
local ctr = require("ctr")
local sn = assert(assert(ctr.client()):snapshotter())
local parent
for _, info in ipairs(assert(sn:list())) do if info.kind == "committed" then parent = info.name end end
for i = 1, tonumber(arg[1]) do assert(sn:prepare("bench-many-" .. i, parent)) end
]]

local function run(report)
  report = report or function(r) print(r.name, r.median, r.unit) end
  local bin = assert(core.getenv("CTRLUA_BIN"), "CTRLUA_BIN not set")
  local image = assert(core.getenv("CTRLUA_TEST_IMAGE"), "CTRLUA_TEST_IMAGE not set")
  if core.geteuid() ~= 0 then error("store: needs root", 0) end
  local tmp = assert(out("mktemp -d /var/tmp/ctrlua-bench-store.XXXXXX"), "mktemp")
  local dir, img = tmp .. "/fs", tmp .. "/fs.img"
  assert(sh(("truncate -s 2G %s && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s && mkdir %s")
    :format(q(img), q(img), q(dir))), "store: make the file system " .. img)
  local dev = out("losetup -f --show --direct-io=on " .. q(img))
  if not dev or not sh(("mount %s %s"):format(q(dev), q(dir))) then
    if dev then sh("losetup -d " .. q(dev)) end
    sh("rm -rf " .. q(tmp))
    error("store: mount " .. tostring(dev) .. " on " .. dir, 0)
  end
  -- a namespace of the bench's own (cgroup paths are /NAMESPACE/ID on the host)
  local ns = "ctrlua-bench-store"
  local ref = "ctrlua.test/busybox:latest"
  local trace_env = { CTRLUA_TRACE = "1" }
  for kv in (core.read_file("/proc/self/environ") or ""):gmatch("([^%z]+)") do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if k and k ~= "CTRLUA_TRACE" then trace_env[k] = v end
  end
  local ok, err = pcall(function()
    local stores = { none = dir .. "/none", many = dir .. "/many" }
    for _, root in pairs(stores) do
      assert(sh(("%s --root %s --state %s -n %s images.lua import %s"):format(q(bin), q(root),
        q(root .. ".state"), ns, q(image))), "store: import the test image")
    end
    local script = tmp .. "/prepare.lua"
    assert(core.write_file(script, PREPARE, { mode = 420 }))
    assert(sh(("%s --root %s --state %s -n %s %s %d"):format(q(bin), q(stores.many),
      q(stores.many .. ".state"), ns, q(script), MANY)), "store: prepare the snapshots")
    local function argv(root, id)
      return { bin, "--root", root, "--state", root .. ".state", "-n", ns, "run.lua", "--rm", ref, id, "/bin/true" }
    end
    local times, phases = { none = {}, many = {} }, { none = {}, many = {} }
    local function once(which, i, traced)
      local t0 = core.monotime()
      local r, serr = core.spawn({ argv = argv(stores[which], which .. i), env = traced and trace_env or nil,
        stdout = "null", stderr = traced and "pipe" or "null" })
      local t = (core.monotime() - t0) * 1000
      if not r or r.code ~= 0 then error(("store: run --rm in %s: %s"):format(which, r and (r.stderr or r.code) or tostring(serr)), 0) end
      if traced then
        for name, ms in (r.stderr or ""):gmatch("phase%s+(%S+)%s+([%d.]+) ms") do
          phases[which][name] = phases[which][name] or {}
          table.insert(phases[which][name], tonumber(ms))
        end
      end
      return t
    end
    -- two rounds of warm-up (the first run of each store unpacks nothing: import did), then
    -- interleaved, which goes first alternating
    for w = 1, 2 do once("none", "w" .. w) once("many", "w" .. w) end
    local ratios = {}
    for i = 1, N do
      local a, b
      if i % 2 == 1 then a = once("none", i) b = once("many", i) else b = once("many", i) a = once("none", i) end
      times.none[i], times.many[i], ratios[i] = a, b, b / a
    end
    for i = 1, 5 do once("none", "t" .. i, true) once("many", "t" .. i, true) end
    local ratio = median(ratios)
    local function phase_line(which)
      local t = {}
      for _, name in ipairs({ "startup", "pull", "image", "container", "create", "start", "wait", "cleanup" }) do
        if phases[which][name] then t[#t + 1] = ("%s %.2f"):format(name, median(phases[which][name])) end
      end
      return table.concat(t, ", ")
    end
    report({ name = ("store: run --rm, %d snapshots / none"):format(MANY), unit = "ratio", median = ratio,
      ratio = ratio, target_ratio = 1.1, met = ratio <= 1.1, runs = N,
      note = ("ratio of interleaved pairs; run --rm %.2f ms with %d snapshots in the store, %.2f ms with the image's alone"):format(
        median(times.many), MANY, median(times.none)),
      target_note = "a run's time does not grow with the store",
      remainder = {
        ("with %d snapshots, phases (median ms of 5 traced runs): %s"):format(MANY, phase_line("many")),
        ("with the image's alone: %s"):format(phase_line("none")) } })
  end)
  os.execute("rmdir /sys/fs/cgroup/" .. ns .. " /sys/fs/cgroup/*/" .. ns .. " 2>/dev/null")
  sh("for m in $(grep -o ' " .. dir .. "[^ ]*' /proc/self/mountinfo | sort -r); do umount -l \"$m\"; done; losetup -d "
    .. q(dev) .. "; rm -rf " .. q(tmp))
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("store%.lua$") then
  run()
end
return run
