-- store: what a `run --rm` pays for the store around it, 20 interleaved rounds each on one
-- ext4 made for the run:
-- - in a store that holds 300 more snapshots (active ones, prepared on the image's layer, as a
--   host with many containers and layers has them) against one that holds only the image's: a
--   run reads one image record, one snapshot record and its own, and nothing of its work should
--   grow with the rest of the store (a sweep or a removal that reads every record would: before
--   `sole` and the counted sweep, the same run took 1.7 times as long here);
-- - of the test image with 10 more layers (one small file each, support.ctrlua's derive_image)
--   against the image itself: the mounts come from the snapshot record's parent ids, not from
--   each parent's record (read twice per run before: 6% longer, 3% with them).
--
-- A module for bench/run.lua: `require("store")(report)` reports
--   { name = "store: run --rm, 300 snapshots / none", unit = "ratio", median =, ratio =,
--     target_ratio = 1.1, met =, note = }
--   { name = "store: run --rm, 11 layers / 1", unit = "ratio", median =, ratio =, note = }
-- Target: the first at or below 1.1 (the median of the per-round ratios; its remainder, when
-- missed: both runs' phases, CTRLUA_TRACE=1).  The second has none: each layer costs the kernel
-- a lower directory to mount and to unmount, and the user's lookup (/etc/passwd, /etc/group,
-- read through the layers without a mount) a directory to look in; its ratio is for `make
-- bench-check`, with both runs' phases in its note.
local core = require("ctr.core")

local N = 20
local MANY = 300

local U = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or "bench") .. "/_util.lua")
local q, median, sh = U.q, U.median, U.sh
local S = require("support.ctrlua")
local T = require("support.tar")

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
  local fs = U.scratch_fs("store")
  local dir = fs.dir
  -- a namespace of the bench's own (cgroup paths are /NAMESPACE/ID on the host)
  local ns = "ctrlua-bench-store"
  local ref = "ctrlua.test/busybox:latest"
  local trace_env = U.trace_env()
  local ok, err = pcall(function()
    local stores = { none = dir .. "/none", many = dir .. "/many" }
    for _, root in pairs(stores) do
      assert(sh(("%s --root %s --state %s -n %s images.lua import %s"):format(q(bin), q(root),
        q(root .. ".state"), ns, q(image))), "store: import the test image")
    end
    local script = dir .. "/prepare.lua"
    assert(core.write_file(script, PREPARE, { mode = 420 }))
    assert(sh(("%s --root %s --state %s -n %s %s %d"):format(q(bin), q(stores.many),
      q(stores.many .. ".state"), ns, q(script), MANY)), "store: prepare the snapshots")
    -- the test image with 10 more layers of one small file each (the specs' own builder)
    local layers = {}
    for i = 1, 10 do layers[i] = T.build({ { name = "layer" .. i, data = "layer " .. i .. "\n", mode = 420 } }) end
    local layered = S.derive_image(dir, "ctrlua.test/layers:10", nil, layers)
    assert(sh(("%s --root %s --state %s -n %s images.lua import %s"):format(q(bin), q(stores.none),
      q(stores.none .. ".state"), ns, q(layered))), "store: import the layered image")
    -- each case: a store and an image
    local cases = { none = { stores.none, ref }, many = { stores.many, ref },
      layers = { stores.none, "ctrlua.test/layers:10" } }
    local times, phases = {}, {}
    for name in pairs(cases) do times[name], phases[name] = {}, {} end
    local function once(which, i, traced)
      local root, img_ref = cases[which][1], cases[which][2]
      local t0 = core.monotime()
      local r, serr = core.spawn({ argv = { bin, "--root", root, "--state", root .. ".state", "-n", ns,
        "run.lua", "--rm", img_ref, which .. i, "/bin/true" }, env = traced and trace_env or nil,
        stdout = "null", stderr = traced and "pipe" or "null" })
      local t = (core.monotime() - t0) * 1000
      if not r or r.code ~= 0 then error(("store: run --rm (%s): %s"):format(which, r and (r.stderr or r.code) or tostring(serr)), 0) end
      if traced then
        for name, ms in (r.stderr or ""):gmatch("phase%s+(%S+)%s+([%d.]+) ms") do
          phases[which][name] = phases[which][name] or {}
          table.insert(phases[which][name], tonumber(ms))
        end
      end
      return t
    end
    local function phase_line(which)
      local t = {}
      for _, name in ipairs({ "startup", "pull", "image", "container", "create", "start", "wait", "cleanup" }) do
        if phases[which][name] then t[#t + 1] = ("%s %.2f"):format(name, median(phases[which][name])) end
      end
      return table.concat(t, ", ")
    end
    -- one against the other: two rounds of warm-up, then interleaved (which goes first
    -- alternating), then five traced runs each
    local function pair(a, b)
      for w = 1, 2 do once(a, "w" .. w) once(b, "w" .. w) end
      local ratios = {}
      for i = 1, N do
        local ta, tb
        if i % 2 == 1 then ta = once(a, i) tb = once(b, i) else tb = once(b, i) ta = once(a, i) end
        times[a][#times[a] + 1], times[b][#times[b] + 1], ratios[i] = ta, tb, tb / ta
      end
      for i = 1, 5 do once(a, "t" .. i, true) once(b, "t" .. i, true) end
      return median(ratios)
    end
    local ratio = pair("none", "many")
    report({ name = ("store: run --rm, %d snapshots / none"):format(MANY), unit = "ratio", median = ratio,
      ratio = ratio, target_ratio = 1.1, met = ratio <= 1.1, runs = N,
      note = ("ratio of interleaved pairs; run --rm %.2f ms with %d snapshots in the store, %.2f ms with the image's alone"):format(
        median(times.many), MANY, median(times.none)),
      target_note = "a run's time does not grow with the store",
      remainder = {
        ("with %d snapshots, phases (median ms of 5 traced runs): %s"):format(MANY, phase_line("many")),
        ("with the image's alone: %s"):format(phase_line("none")) } })
    times.none = {}
    ratio = pair("none", "layers")
    report({ name = "store: run --rm, 11 layers / 1", unit = "ratio", median = ratio, ratio = ratio, runs = N,
      note = ("ratio of interleaved pairs; run --rm %.2f ms of the image with 10 more layers, %.2f ms of the image; "
        .. "phases (median ms of 5 traced runs) with 11 layers: %s; with 1: %s"):format(
        median(times.layers), median(times.none), phase_line("layers"), phase_line("none")) })
  end)
  os.execute("rmdir /sys/fs/cgroup/" .. ns .. " /sys/fs/cgroup/*/" .. ns .. " 2>/dev/null")
  fs.drop()
  if not ok then error(err, 0) end
end

if arg and arg[0] and arg[0]:match("store%.lua$") then
  run()
end
return run
