--- Task metrics read from the container's cgroup, as `ctr tasks metrics` prints them (a table,
-- or JSON shaped like containerd's cgroups v1 / v2 Metrics), and the OOM check the tasks layer
-- does when a task exits.
-- @module ctr.metrics
local core = require("ctr.core")
local errors = require("ctr.errors")
local cgroups = require("ctr.cgroups")
local format = require("ctr.cmd.format")
local tasks = require("ctr.tasks")

local M = {}

local HUGE = math.huge

-- An unlimited value (math.huge) as the kernel's "max": v1 prints the largest page-aligned
-- int64 (9223372036854771712), containerd's v2 metrics print 0 for "max" (no limit read).
local function lim(v, mode)
  if v == nil then return nil end
  if v == HUGE then return mode == "v2" and 0 or 9223372036854771712 end
  return v
end

--- Did the OOM killer kill a process of the cgroup at `path`?  See ctr.cgroups.oom_killed
-- (it lives there so that the tasks layer, below this one, can ask too).
-- @function oom_killed
M.oom_killed = cgroups.oom_killed

--- The metrics of container id's task: `{id=, timestamp=, mode="v1"|"v2", cgroup=, stats=
-- (ctr.cgroups.stat's table), oom=bool}`.
-- @param client a ctr.client
-- @tparam string id
-- @tparam[opt] table opts fake cgroup tree (ctr.cgroups)
-- @return table, or nil, err (NOT_FOUND without a task, FAILED_PRECONDITION without a cgroup)
function M.metrics(client, id, opts)
  if type(client) ~= "table" then error("client: expected table, got " .. type(client), 2) end
  if type(id) ~= "string" then error("id: expected string, got " .. type(id), 2) end
  local status, st = tasks.status(client, id)
  if not status then return nil, errors.not_found("no running task found: task %s not found", id) end
  if type(st) ~= "table" then
    local data = core.read_file(client:state_dir(id) .. "/status", 65536)
    st = data and core.json_decode(data) or {}
  end
  if not st.cgroup or st.cgroup == "" then
    return nil, errors.new(("task %s: has no cgroup (run with --cgroup \"\")"):format(id), 0, "FAILED_PRECONDITION")
  end
  local mode, err = cgroups.mode(opts)
  if not mode then return nil, err end
  local stats
  stats, err = cgroups.stat(st.cgroup, opts)
  if not stats then return nil, err end
  return { id = id, timestamp = core.rfc3339(), mode = mode == "v2" and "v2" or "v1",
    cgroup = st.cgroup, stats = stats, oom = st.oom == true or (stats.oom_kill or 0) > 0 }
end

local function usec(ns) return ns and math.floor(ns / 1000) or nil end

--- The METRIC/VALUE rows of a metrics table, in ctr's order and names for the hierarchy
-- (v1: memory.usage_in_bytes ... pids.limit; v2: pids.current ... memory.swap_limit), then
-- ctrlua's OOM rows (memory.oom_kill, oom).
function M.rows(m)
  local s, rows = m.stats, {}
  local function row(k, v) if v ~= nil then rows[#rows + 1] = { k, ("%.0f"):format(v) } end end
  if m.mode == "v2" then
    row("pids.current", s.pids_current)
    row("pids.limit", lim(s.pids_limit, "v2"))
    row("cpu.usage_usec", usec(s.cpu_usage))
    row("cpu.user_usec", usec(s.cpu_user))
    row("cpu.system_usec", usec(s.cpu_system))
    row("cpu.nr_periods", s.cpu_periods)
    row("cpu.nr_throttled", s.cpu_throttled_periods)
    row("cpu.throttled_usec", usec(s.cpu_throttled_time))
    row("memory.usage", s.memory_usage)
    row("memory.usage_limit", lim(s.memory_limit, "v2"))
    row("memory.swap_usage", s.memory_swap_usage)
  else
    row("memory.usage_in_bytes", s.memory_usage)
    row("memory.limit_in_bytes", lim(s.memory_limit, "v1"))
    row("memory.stat.cache", s.memory_cache)
    row("cpuacct.usage", s.cpu_usage)
    row("pids.current", s.pids_current)
    row("pids.limit", s.pids_limit == HUGE and 0 or s.pids_limit)
  end
  row("memory.oom_kill", s.oom_kill)
  rows[#rows + 1] = { "oom", m.oom and "true" or "false" }
  return rows
end

--- The metrics as `ctr tasks metrics` prints its table: ID/TIMESTAMP, a blank line, then
-- METRIC/VALUE rows (tabwriter, padding 4).
function M.format_table(m)
  local head = format.table({ { "ID", "TIMESTAMP", "" }, { m.id, m.timestamp, "" } }, 4)
  local rows = { { "METRIC", "VALUE", "" } }
  for _, r in ipairs(M.rows(m)) do rows[#rows + 1] = { r[1], r[2], "" } end
  return head .. "\n" .. format.table(rows, 4)
end

--- The metrics as JSON, shaped like containerd's cgroups v1 Metrics (pids, cpu.usage,
-- cpu.throttling, memory.usage, memory_oom_control) or v2 Metrics (pids, cpu, memory), plus
-- ctrlua's `oom` flag; pretty-printed.
function M.format_json(m)
  local s, t = m.stats, nil
  if m.mode == "v2" then
    t = {
      pids = { current = s.pids_current, limit = lim(s.pids_limit, "v2") },
      cpu = { usage_usec = usec(s.cpu_usage), user_usec = usec(s.cpu_user),
        system_usec = usec(s.cpu_system), nr_periods = s.cpu_periods,
        nr_throttled = s.cpu_throttled_periods, throttled_usec = usec(s.cpu_throttled_time) },
      memory = { usage = s.memory_usage, usage_limit = lim(s.memory_limit, "v2"),
        swap_usage = s.memory_swap_usage },
      memory_events = { oom_kill = s.oom_kill },
    }
  else
    t = {
      pids = { current = s.pids_current, limit = s.pids_limit == HUGE and 0 or s.pids_limit },
      cpu = { usage = { total = s.cpu_usage, kernel = s.cpu_system, user = s.cpu_user },
        throttling = { periods = s.cpu_periods, throttled_periods = s.cpu_throttled_periods,
          throttled_time = s.cpu_throttled_time } },
      memory = { cache = s.memory_cache, rss = s.memory_rss,
        usage = { usage = s.memory_usage, limit = lim(s.memory_limit, "v1"),
          max = s.memory_max_usage, failcnt = s.memory_failcnt },
        swap = { usage = s.memory_swap_usage } },
      memory_oom_control = { oom_kill = s.oom_kill },
    }
  end
  t.oom = m.oom
  return core.json_encode(t, true)
end

return M
