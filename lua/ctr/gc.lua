--- Remove what interrupted operations left behind: `ctrlua gc` (docs/crash-consistency.md).
--
-- Every namespace of the store and of the state is swept, and only what no operation will ever
-- come back for goes:
-- - tasks nobody will delete (ctr.tasks.orphaned: the ctrlua that ran one in its foreground is
--   gone, or a detached one was never started and its ctrlua is gone): killed, unmounted, their
--   cgroups and state removed, as `tasks delete --force` does;
-- - task directories being made or removed by a process that is gone (STATE/NS/.tmp-…), and the
--   temporary mounts of a gone process (STATE/.rootfs-read-PID-N, STATE/remap-PID);
-- - partial snapshots (ctr.snapshots sweep_partial: unpack's `extract-…` keys and snapshots made
--   for a container record never written, their creator gone), then the snapshot directories
--   no record names;
-- - ingest files no writer holds, and record files half written by a process that is gone;
-- - then the garbage collection (ctr.store.collect): expired leases, and the blobs and committed
--   snapshots that no image, container or live lease refers to.
-- What a record that cannot be read might name is kept, and the record is reported.  A running
-- detached task, a stopped task that is not deleted yet, a container and its snapshot, an image
-- are not leftovers: the ordinary commands remove them.
-- @module ctr.gc
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local meta = require("ctr.store.meta")
local owner = require("ctr.store.owner")

local M = {}

local function is_dir(path)
  local st = core.stat(path, true)
  return st ~= nil and st.type == "directory"
end

local function pid_alive(pid)
  return core.stat("/proc/" .. tostring(pid), true) ~= nil and not owner.zombie(pid)
end

local function mounts_under(dir)
  local n = 0
  for _, e in ipairs(core.mountinfo() or {}) do
    if e.target == dir or e.target:sub(1, #dir + 1) == dir .. "/" then n = n + 1 end
  end
  return n
end

local function plural(n, one, many) return ("%d %s"):format(n, n == 1 and one or (many or one .. "s")) end

-- What a task holds, for the report: "1 process, 1 mount, 10 cgroups".
local function holdings(client, id)
  local tasks = require("ctr.tasks")
  local dir = client:state_dir(id)
  local parts = {}
  local t = tasks.load(client, id)
  local procs = 0
  if t then
    local seen = {}
    if t.pid and owner.alive(t.st) then seen[t.pid] = true end
    if t.st.cgroup then
      for _, p in ipairs(require("ctr.cgroups").processes(t.st.cgroup) or {}) do
        if not owner.zombie(p) then seen[p] = true end
      end
    end
    for _ in pairs(seen) do procs = procs + 1 end
  end
  if procs > 0 then parts[#parts + 1] = plural(procs, "process", "processes") end
  local m = mounts_under(dir)
  if m > 0 then parts[#parts + 1] = plural(m, "mount") end
  local cg = t and t.st.cgroup
  if cg then
    local n = 0
    for _, d in pairs(require("ctr.cgroups").dirs(cg) or {}) do
      if core.stat(d, true) then n = n + 1 end
    end
    if n > 0 then parts[#parts + 1] = plural(n, "cgroup") end
  end
  parts[#parts + 1] = "its state"
  return table.concat(parts, ", ")
end

-- The tasks of one namespace of the state.
local function sweep_tasks(client, ns, report)
  local tasks = require("ctr.tasks")
  local nsdir = client:state_dir()
  for _, name in ipairs(core.listdir(nsdir) or {}) do
    local path = nsdir .. "/" .. name
    if is_dir(path) then
      local pid, start = name:match("^%.tmp%-(%d+)%-(%d+)%-")
      local gone
      if name:match("^%.tmp%-rm%-") then
        gone = "a task's removal cut short"
      elseif pid and owner.gone({ pid = tonumber(pid), start_time = tonumber(start) }) then
        gone = ("a task being made by pid %s, which is gone"):format(pid)
      end
      if gone then
        local ok, err = tasks._remove_dir(client, path)
        if ok then
          report.removed[#report.removed + 1] = ("state %s (%s)"):format(path, gone)
        else
          report.errors[#report.errors + 1] = err
        end
      elseif name:sub(1, 1) ~= "." then
        local why = tasks.orphaned(client, name)
        if why then
          local what = holdings(client, name)
          local ok, err = tasks.remove(client, name)
          if ok then
            report.removed[#report.removed + 1] = ("task %s/%s (%s): %s"):format(ns, name, why, what)
          else
            report.errors[#report.errors + 1] = errors.wrap(err, "task %s/%s", ns, name)
          end
        else
          local _, st = tasks.status(client, name)
          if st and st.unreadable then report.warnings[#report.warnings + 1] = st.unreadable end
        end
      end
    end
  end
end

-- Mount points a process made for a moment directly under STATE: "<state>/.rootfs-read-PID-N"
-- (a file read from a snapshot) and "<state>/remap-PID" (a snapshot being remapped).
local function sweep_state_mounts(client, report)
  for _, name in ipairs(core.listdir(client.state) or {}) do
    local pid = name:match("^%.rootfs%-read%-(%d+)%-%d+$") or name:match("^remap%-(%d+)$")
    local path = client.state .. "/" .. name
    if pid and not pid_alive(tonumber(pid)) and is_dir(path) then
      local ok, err = require("ctr.tasks")._unmount_under(path)
      if ok then ok, err = sys.remove_tree(path) end
      if ok then
        report.removed[#report.removed + 1] = ("mount point %s (pid %s is gone)"):format(path, pid)
      else
        report.errors[#report.errors + 1] = err
      end
    end
  end
end

-- Record files written half by a process that is gone: meta's ".tmp-NAME.PID".
local function sweep_temp_records(root, ns, report)
  local base = root .. "/meta/" .. meta.escape(ns)
  for _, kind in ipairs(core.listdir(base) or {}) do
    local dir = base .. "/" .. kind
    for _, f in ipairs(is_dir(dir) and core.listdir(dir) or {}) do
      local pid = f:match("^%.tmp%-.*%.(%d+)$")
      if pid and not pid_alive(tonumber(pid)) and core.unlink(dir .. "/" .. f) then
        report.removed[#report.removed + 1] = ("record file %s/%s (half written by pid %s)"):format(dir, f, pid)
      end
    end
  end
end

local SNAPSHOTTERS = { "overlayfs", "native" }

-- The collection of content and snapshots, under the collector's lock, into report.
local function collect(client, report)
  local leases = require("ctr.leases")
  local store_collect = require("ctr.store.collect")
  local r, err = leases.with_gc_lock(client.root, true, function() return store_collect.run(client) end)
  if not r then
    report.errors[#report.errors + 1] = err
    return
  end
  for _, line in ipairs(store_collect.lines(r)) do report.removed[#report.removed + 1] = line end
  -- the records run() already warned about are reported once
  local seen = {}
  for _, w in ipairs(report.warnings) do seen[tostring(w)] = true end
  for _, w in ipairs(r.warnings) do
    if not seen[tostring(w)] then report.warnings[#report.warnings + 1] = w end
  end
  for _, e in ipairs(r.errors) do report.errors[#report.errors + 1] = e end
end

--- Sweep the store and the state of client (every namespace of both).
-- @param client a ctr.client (its root and state; its namespace does not matter)
-- @return a report `{removed = {lines}, warnings = {errors: unreadable records, kept},
-- errors = {errors: what could not be removed}}`
function M.run(client)
  local ctr = require("ctr")
  local report = { removed = {}, warnings = {}, errors = {} }
  local clients = {}
  local function client_of(ns)
    if clients[ns] == nil then
      clients[ns] = ctr.client({ root = client.root, state = client.state, namespace = ns }) or false
    end
    return clients[ns] or nil
  end
  -- tasks first: they hold mounts of snapshots, and name the containers' ones
  for _, ns in ipairs(core.listdir(client.state) or {}) do
    if ns:sub(1, 1) ~= "." and is_dir(client.state .. "/" .. ns) then
      local c = client_of(ns)
      if c then sweep_tasks(c, ns, report) end
    end
  end
  sweep_state_mounts(client, report)
  local drivers = {}
  for _, name in ipairs(SNAPSHOTTERS) do
    if is_dir(client.root .. "/snapshots/" .. name) then drivers[#drivers + 1] = name end
  end
  for _, ns in ipairs(meta.namespaces(client.root)) do
    local c = client_of(ns)
    if c then
      sweep_temp_records(client.root, ns, report)
      for _, name in ipairs(drivers) do
        local sn = c:snapshotter(name)
        if sn then
          local gone, errs = sn:sweep_partial()
          for _, g in ipairs(gone) do
            report.removed[#report.removed + 1] = ("snapshot %s %s/%q (partial: its creator, pid %s, is gone)")
              :format(name, ns, g.key, owner.format(g.creator))
          end
          for _, e in ipairs(errs) do report.errors[#report.errors + 1] = e end
          local _, bad = sn:list()
          for _, b in ipairs(bad) do report.warnings[#report.warnings + 1] = b end
        end
      end
      for _, kind in ipairs({ "images", "containers" }) do
        local _, bad = meta.all(client.root, ns, kind)
        for _, b in ipairs(bad) do report.warnings[#report.warnings + 1] = b end
      end
    end
  end
  collect(client, report)
  for _, name in ipairs(drivers) do
    local sn, err = client:snapshotter(name)
    local n
    if sn then n, err = sn:gc() end
    if n and n > 0 then
      report.removed[#report.removed + 1] = ("%s no record names (%s)"):format(
        plural(n, "snapshot directory", "snapshot directories"), name)
    elseif not n and err then
      report.errors[#report.errors + 1] = err
    end
  end
  local n, err = client:content_store():sweep(0)
  if n and n > 0 then
    report.removed[#report.removed + 1] = ("%s no writer holds"):format(plural(n, "ingest file"))
  elseif not n then
    report.errors[#report.errors + 1] = err
  end
  return report
end

return M
