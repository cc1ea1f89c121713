-- Host hygiene for the whole suite: what the host's /dev and mount table look like when the
-- runner starts, compared with what they look like when it ends.  A test that chowns or
-- replaces a device node of the host, or leaves a mount (or changes a mount's propagation)
-- outside its own temporary directories, fails the run here even when its own checks pass.
--
--   local H = require("support.hygiene")
--   H.start()                  -- spec/runner.lua, before the first spec
--   local diffs = H.check()    -- spec/support/summary.lua, after the last: {} when unchanged
--   H.compare(H.snapshot(opts), H.snapshot(opts))   -- the same, on a fake /dev or mountinfo
--
-- /dev: every node (/dev/* and below) by inode, owner, mode, birth time, type and device
-- number; the numbered ptys of /dev/pts and the files in /dev/shm and /dev/mqueue come and
-- go with any terminal or program on the machine and are left out.  Mounts: each line of
-- cgroups: the top-level directories of every hierarchy; those the suite made (its runs'
-- namespaces) are removed when empty before the comparison, and one left is a difference.
-- /proc/self/mountinfo without its mount ids (a remount of the same thing is the same), as a
-- multiset, minus the mounts under the suite's temporary directories (/tmp/ctrlua-*, the
-- /tmp/tmp.* of mktemp -d) and the named network namespaces the specs make
-- (/run/netns/ctrlua-*), which other runs of the suite on this machine make too.  Those
-- temporary directories (support.tmp) are removed first, never across a mount: one that
-- still holds a mount is a difference.

-- support.tmp is loaded here, before busted insulates the spec files (each of which gets a
-- fresh copy of every module it loads), so that all of them share one list of directories
local tmp = require("support.tmp")

local H = {}

local function lines_of(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The nodes of /dev (or of dev, a directory laid out as it): name -> "inode uid:gid mode
-- birth type major:minor".
function H.dev_nodes(dev)
  dev = dev or "/dev"
  local cmd = ("find %s -path %s -prune -o -path %s -prune -o -path %s -prune -o " ..
    "-exec stat -c '%%n %%i %%u:%%g %%a %%W %%F %%t:%%T' {} + 2>/dev/null"):format(q(dev),
    q(dev .. "/pts/[0-9]*"), q(dev .. "/shm/*"), q(dev .. "/mqueue/*"))
  local t = {}
  for _, l in ipairs(lines_of(cmd)) do
    local name, rest = l:match("^(%S+) (.*)$")
    if name then t[name] = rest end
  end
  return t
end

local IGNORED = { "^/tmp/ctrlua%-", "^/tmp/tmp%.", "^/run/netns/ctrlua%-" }

local function ignored(mountpoint)
  for _, p in ipairs(IGNORED) do
    if mountpoint:match(p) then return true end
  end
  return false
end

-- mountinfo escapes space, tab, newline and backslash as \ooo
local function unescape(s)
  return (s:gsub("\\(%d%d%d)", function(o) return string.char(tonumber(o, 8)) end))
end

--- The host's mounts outside the test directories (from mountinfo, default
-- /proc/self/mountinfo): a multiset, line -> count, each line "MOUNTPOINT ROOT OPTIONS
-- [OPTIONAL FIELDS] - FSTYPE SOURCE SUPEROPTIONS".
function H.mounts(mountinfo)
  local t = {}
  local f = assert(io.open(mountinfo or "/proc/self/mountinfo", "r"))
  for l in f:lines() do
    -- drop the mount id, the parent id and the device number: they change with a remount
    local root, mp, rest = l:match("^%S+ %S+ %S+ (%S+) (%S+) (.*)$")
    if mp and not ignored(unescape(mp)) then
      local key = mp .. " " .. root .. " " .. rest
      t[key] = (t[key] or 0) + 1
    end
  end
  f:close()
  return t
end

--- The top-level directories of the host's cgroup hierarchies (those mounted under
-- /sys/fs/cgroup): a set of paths.  A run's cgroup is /NAMESPACE/ID; delete removes ID and,
-- as containerd's does, leaves /NAMESPACE, so the suite's namespaces are its to remove.
function H.cgroup_tops()
  local set = {}
  for line in io.lines("/proc/self/mountinfo") do
    local mnt, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .- %- (%S+) ")
    if mnt and (fstype == "cgroup" or fstype == "cgroup2") and mnt:match("^/sys/fs/cgroup/?") then
      for _, d in ipairs(lines_of(("find %s -mindepth 1 -maxdepth 1 -type d 2>/dev/null"):format(q(mnt)))) do
        set[d] = true
      end
    end
  end
  return set
end

--- Remove the top-level cgroups made since `before` (a set from H.cgroup_tops) that are empty
-- (the namespaces of the suite's runs); one that still holds a cgroup is left, and reported.
function H.sweep_cgroups(before)
  for d in pairs(H.cgroup_tops()) do
    if not before[d] then os.remove(d) end
  end
end

--- The state of the host (or, with opts.dev and opts.mountinfo, of a fake one): {dev=, mounts=}.
function H.snapshot(opts)
  opts = opts or {}
  return { dev = H.dev_nodes(opts.dev), mounts = H.mounts(opts.mountinfo) }
end

--- What differs from snapshot `before` to snapshot `after`: one-line descriptions, sorted
-- (empty when nothing does).
function H.compare(before, after)
  local diffs = {}
  local dev = after.dev
  local names = {}
  for n in pairs(before.dev) do names[n] = true end
  for n in pairs(dev) do names[n] = true end
  local sorted = {}
  for n in pairs(names) do sorted[#sorted + 1] = n end
  table.sort(sorted)
  for _, n in ipairs(sorted) do
    local a, b = before.dev[n], dev[n]
    if a == nil then diffs[#diffs + 1] = ("/dev: %s appeared (%s)"):format(n, b)
    elseif b == nil then diffs[#diffs + 1] = ("/dev: %s is gone (was %s)"):format(n, a)
    elseif a ~= b then diffs[#diffs + 1] = ("/dev: %s changed: %s -> %s"):format(n, a, b) end
  end
  local mounts = after.mounts
  local keys = {}
  for k in pairs(before.mounts) do keys[k] = true end
  for k in pairs(mounts) do keys[k] = true end
  sorted = {}
  for k in pairs(keys) do sorted[#sorted + 1] = k end
  table.sort(sorted)
  for _, k in ipairs(sorted) do
    local a, b = before.mounts[k] or 0, mounts[k] or 0
    if b > a then diffs[#diffs + 1] = ("mount added: %s%s"):format(k, b - a > 1 and (" (x%d)"):format(b - a) or "")
    elseif a > b then diffs[#diffs + 1] = ("mount gone: %s%s"):format(k, a - b > 1 and (" (x%d)"):format(a - b) or "") end
  end
  if before.cgroups and after.cgroups then
    sorted = {}
    for d in pairs(after.cgroups) do
      if not before.cgroups[d] then sorted[#sorted + 1] = d end
    end
    table.sort(sorted)
    for _, d in ipairs(sorted) do diffs[#diffs + 1] = ("cgroup left: %s"):format(d) end
  end
  return diffs
end

local start

--- Record the host as it is now (the state H.check compares with).
function H.start()
  start = H.snapshot()
  start.cgroups = H.cgroup_tops()
end

--- What changed on the host since H.start (see H.compare), or nil when H.start was not
-- called.
function H.check()
  if not start then return nil end
  local left = tmp.sweep()
  H.sweep_cgroups(start.cgroups)
  local now = H.snapshot()
  now.cgroups = H.cgroup_tops()
  local diffs = H.compare(start, now)
  for _, d in ipairs(left) do diffs[#diffs + 1] = "temporary directory left: " .. d end
  return diffs
end

return H
