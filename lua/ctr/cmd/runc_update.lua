--- runc's `update`, `events` and `ps` as data: the resources an update asks for (from its
-- flags or a LinuxResources JSON, with runc's parsing and messages), what of them is written
-- and what is recorded, ps's table filtered to a container's pids, the statistics in runc's
-- `types.Event` shape, and Go's durations.
-- No I/O but the reads of cgroup files for the statistics; ctr.cmd.runc does the rest.
-- @module ctr.cmd.runc_update
local core = require("ctr.core")
local errors = require("ctr.errors")
local json = require("ctr.json")

local M = {}

local function fail(fmt, ...)
  return nil, errors.invalid("%s", select("#", ...) > 0 and fmt:format(...) or fmt)
end

-- ------------------------------------------------------------------- value parsing

local MAX_I64 = 9223372036854775807

--- docker/go-units' RAMInBytes, which runc's update uses for sizes: a number (decimals
-- allowed), an optional space, an optional unit k, m, g, t or p (any case, binary multiples)
-- with an optional i and an optional b.
-- @tparam string s
-- @return bytes (an integer), or nil, message
function M.ram_in_bytes(s)
  local num, unit = s:match("^(%d+[%.%d]*) ?([kKmMgGtTpP]?)[iI]?[bB]?$")
  if not num or num:find("%.%.") or num:sub(-1) == "." then
    return nil, ("invalid size: '%s'"):format(s)
  end
  if select(2, num:gsub("%.", "")) > 1 then
    return nil, ('strconv.ParseFloat: parsing "%s": invalid syntax'):format(num)
  end
  local mult = ({ [""] = 1, k = 2 ^ 10, m = 2 ^ 20, g = 2 ^ 30, t = 2 ^ 40,
    p = 2 ^ 50 })[unit:lower()]
  local v = math.floor(tonumber(num) * mult)
  if v > MAX_I64 then v = MAX_I64 end
  return v
end

-- strconv.ParseUint(s, 10, 64) and ParseInt(s, 10, 64), with Go's messages
local function parse_uint(s)
  if not s:match("^%d+$") then
    return nil, ('strconv.ParseUint: parsing "%s": invalid syntax'):format(s)
  end
  local v = tonumber(s)
  if v >= 2 ^ 64 then
    return nil, ('strconv.ParseUint: parsing "%s": value out of range'):format(s)
  end
  return v
end

local function parse_int(s)
  if not s:match("^[+-]?%d+$") then
    return nil, ('strconv.ParseInt: parsing "%s": invalid syntax'):format(s)
  end
  local v = tonumber(s)
  if v > MAX_I64 or v < -MAX_I64 - 1 then
    return nil, ('strconv.ParseInt: parsing "%s": value out of range'):format(s)
  end
  return v
end

-- a flag of urfave/cli's IntFlag (Go's flag package: ParseInt with base 0)
local function parse_int_flag(name, s)
  local neg, body = s:match("^([+-]?)(.+)$")
  local v
  if body:match("^0[xX]%x+$") then v = tonumber(body:sub(3), 16)
  elseif body:match("^0[bB][01]+$") then v = tonumber(body:sub(3), 2)
  elseif body:match("^0[oO]?[0-7]+$") then v = tonumber(body:gsub("^0[oO]?", ""), 8) or 0
  elseif body:match("^%d+$") then v = tonumber(body) end
  if not v or v > MAX_I64 then
    return nil, ('invalid value "%s" for flag -%s: parse error'):format(s, name)
  end
  return neg == "-" and -v or v
end

-- ---------------------------------------------------------------- the resources asked

-- An update's resources, as runc's update reads them: every field runc takes, 0 or "" where
-- not given.  `unified` is a table or nil.
local function empty()
  return { memory = { limit = 0, reservation = 0, swap = 0 },
    cpu = { shares = 0, quota = 0, period = 0, realtimeRuntime = 0, realtimePeriod = 0,
      cpus = "", mems = "" },
    blockIO = { weight = 0 }, pids = { limit = 0 } }
end

--- The integer flags of update, checked as the flag parser checks them (before anything
-- else: an error here is a usage error).
M.INT_FLAGS = { "blkio-weight", "pids-limit" }

--- The resources of update's single-value flags (runc's order and messages).
-- @tparam table f the parsed flags (strings)
-- @return resources, or nil, err; err.usage is true for a flag the parser refuses
function M.from_flags(f)
  local r = empty()
  local ints = {}
  for _, name in ipairs(M.INT_FLAGS) do
    if f[name] ~= nil then
      local v, msg = parse_int_flag(name, f[name])
      if not v then
        local e = errors.invalid("%s", msg)
        e.usage = true
        return nil, e
      end
      ints[name] = v
    end
  end
  -- Go's uint16 conversion of the int flag
  if (ints["blkio-weight"] or 0) ~= 0 then r.blockIO.weight = ints["blkio-weight"] % 65536 end
  if (f["cpuset-cpus"] or "") ~= "" then r.cpu.cpus = f["cpuset-cpus"] end
  if (f["cpuset-mems"] or "") ~= "" then r.cpu.mems = f["cpuset-mems"] end
  for _, p in ipairs({ { "cpu-period", "period" }, { "cpu-rt-period", "realtimePeriod" },
    { "cpu-share", "shares" } }) do
    local val = f[p[1]]
    if val and val ~= "" then
      local v, msg = parse_uint(val)
      if not v then return fail("invalid value for %s: %s", p[1], msg) end
      r.cpu[p[2]] = v
    end
  end
  for _, p in ipairs({ { "cpu-quota", "quota" }, { "cpu-rt-runtime", "realtimeRuntime" } }) do
    local val = f[p[1]]
    if val and val ~= "" then
      local v, msg = parse_int(val)
      if not v then return fail("invalid value for %s: %s", p[1], msg) end
      r.cpu[p[2]] = v
    end
  end
  for _, p in ipairs({ { "memory", "limit" }, { "memory-swap", "swap" },
    { "memory-reservation", "reservation" } }) do
    local val = f[p[1]]
    if val and val ~= "" then
      local v, msg = -1, nil
      if val ~= "-1" then v, msg = M.ram_in_bytes(val) end
      if not v then return fail("invalid value for %s: %s", p[1], msg) end
      r.memory[p[2]] = v
    end
  end
  r.pids.limit = ints["pids-limit"] or 0
  return r
end

-- the Go types of the groups, named in decoding errors as encoding/json names them
local STRUCT = { memory = "LinuxMemory", cpu = "LinuxCPU", blockIO = "LinuxBlockIO",
  pids = "LinuxPids" }

local function is_int(v) return type(v) == "number" and v % 1 == 0 end

--- The resources of `update --resources`: a LinuxResources JSON text, of which runc takes
-- memory.limit, .reservation, .swap; cpu.shares, .quota, .period, .realtimeRuntime,
-- .realtimePeriod, .cpus, .mems; blockIO.weight; pids.limit; unified (the rest, devices
-- included, is ignored, as runc ignores it).
-- @tparam string text
-- @return resources, or nil, err
function M.from_json(text)
  local t, jerr = json.decode(text)
  if t == nil then
    local msg = tostring(jerr and jerr.msg or jerr):gsub(": Invalid argument$", "")
    return fail("%s", msg)
  end
  if type(t) ~= "table" or getmetatable(t) == json.array_mt then
    return fail("json: cannot unmarshal %s into Go value of type specs.LinuxResources",
      type(t) == "table" and "array" or type(t))
  end
  local r = empty()
  local function take(group, key, kind)
    local g = t[group]
    if type(g) ~= "table" then
      if g ~= nil and g ~= json.null then
        return fail("json: cannot unmarshal %s into Go struct field LinuxResources.%s of type %s",
          type(g), group, STRUCT[group])
      end
      return true
    end
    local v = g[key]
    if v == nil or v == json.null then return true end
    if kind == "string" then
      if type(v) ~= "string" then
        return fail("json: cannot unmarshal %s into Go struct field %s.%s.%s of type string",
          type(v), STRUCT[group], group, key)
      end
    elseif not is_int(v) or (kind == "uint" and v < 0) then
      return fail("json: cannot unmarshal %s into Go struct field %s.%s.%s of type %s",
        type(v) == "number" and "number " .. tostring(v) or type(v), STRUCT[group], group, key,
        kind == "uint" and "uint64" or "int64")
    end
    r[group][key] = v
    return true
  end
  local fields = {
    { "memory", "limit", "int" }, { "memory", "reservation", "int" }, { "memory", "swap", "int" },
    { "cpu", "shares", "uint" }, { "cpu", "quota", "int" }, { "cpu", "period", "uint" },
    { "cpu", "realtimeRuntime", "int" }, { "cpu", "realtimePeriod", "uint" },
    { "cpu", "cpus", "string" }, { "cpu", "mems", "string" }, { "blockIO", "weight", "uint" },
    { "pids", "limit", "int" },
  }
  for _, fl in ipairs(fields) do
    local okf, err = take(fl[1], fl[2], fl[3])
    if not okf then return nil, err end
  end
  if type(t.unified) == "table" and next(t.unified) then
    local u = {}
    for k, v in pairs(t.unified) do
      if type(k) ~= "string" or type(v) ~= "string" then
        return fail("json: cannot unmarshal unified.%s into Go value of type string", tostring(k))
      end
      u[k] = v
    end
    r.unified = u
  end
  return r
end

-- ------------------------------------------------------------------ what is written

local GROUPS = { memory = { "limit", "reservation", "swap" },
  cpu = { "shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems" },
  blockIO = { "weight" }, pids = { "limit" } }

local function unset(v) return v == nil or v == 0 or v == "" end

--- The resources recorded for a container before any update: the runc fields of its spec's
-- linux.resources.
-- @tparam[opt] table res linux.resources
function M.recorded(res)
  local out = empty()
  if type(res) ~= "table" then return out end
  for g, keys in pairs(GROUPS) do
    if type(res[g]) == "table" then
      for _, k in ipairs(keys) do
        local v = res[g][k]
        if type(v) == (type(out[g][k])) then out[g][k] = v end
      end
    end
  end
  return out
end

--- What an update writes and what it records (runc's update: a value that is 0 or "" leaves
-- the cgroup's as it is; a period or a quota given alone is written with the other's last
-- value, as runc keeps it).
-- @tparam table old the recorded resources (M.recorded, or an earlier update's record)
-- @tparam table r the update's (M.from_flags or M.from_json)
-- @return linux.resources to write (only the set values), the new record
function M.plan(old, r)
  local write, rec = {}, empty()
  for g, keys in pairs(GROUPS) do
    for _, k in ipairs(keys) do
      local v, was = r[g][k], (old[g] or {})[k]
      if not unset(v) then
        write[g] = write[g] or {}
        write[g][k] = v
        rec[g][k] = v
      elseif not unset(was) then
        rec[g][k] = was
      end
    end
  end
  local p, q = r.cpu.period, r.cpu.quota
  if (p ~= 0) ~= (q ~= 0) then
    local other = p ~= 0 and "quota" or "period"
    local was = (old.cpu or {})[other]
    if not unset(was) then write.cpu[other] = was end
  end
  if r.unified then
    write.unified = r.unified
    rec.unified = r.unified
  elseif old.unified then
    rec.unified = old.unified
  end
  return write, rec
end

-- ------------------------------------------------------------------------------- ps

--- runc's `ps` table: the header line of ps's output and its lines whose PID is one of pids.
-- @tparam string out ps's output
-- @tparam table pids
-- @return the lines (a string), or nil, err
function M.ps_filter(out, pids)
  local lines = {}
  for line in (out .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local pidcol
  local i = 0
  for field in (lines[1] or ""):gmatch("%S+") do
    i = i + 1
    if field == "PID" then pidcol = i break end
  end
  if not pidcol then return fail("couldn't find PID field in ps output") end
  local want = {}
  for _, pid in ipairs(pids) do want[pid] = true end
  local keep = { lines[1] }
  for j = 2, #lines do
    if lines[j] ~= "" then
      local n, pid = 0, nil
      for x in lines[j]:gmatch("%S+") do
        n = n + 1
        if n == pidcol then pid = x break end
      end
      local p = tonumber(pid or "")
      if not p or p % 1 ~= 0 then
        return fail('unable to parse pid: strconv.Atoi: parsing "%s": invalid syntax', pid or "")
      end
      if want[p] then keep[#keep + 1] = lines[j] end
    end
  end
  return table.concat(keep, "\n") .. "\n"
end

-- ------------------------------------------------------------------------ durations

local UNITS = { ns = 1e-9, us = 1e-6, ["\194\181s"] = 1e-6, ["\206\188s"] = 1e-6, ms = 1e-3,
  s = 1, m = 60, h = 3600 }

--- Go's time.ParseDuration ("1s", "500ms", "1m30s", "1.5h", "-1s"): seconds, or nil, message.
function M.parse_duration(s)
  local orig, sign = s, 1
  if s:sub(1, 1) == "-" or s:sub(1, 1) == "+" then
    if s:sub(1, 1) == "-" then sign = -1 end
    s = s:sub(2)
  end
  if s == "0" then return 0 end
  if s == "" then return nil, ('time: invalid duration "%s"'):format(orig) end
  local total = 0
  while s ~= "" do
    local num, rest = s:match("^(%d*%.?%d*)(.*)$")
    if num == "" or num == "." then return nil, ('time: invalid duration "%s"'):format(orig) end
    local unit = rest:match("^([^%d%.]+)")
    if not unit then return nil, ('time: missing unit in duration "%s"'):format(orig) end
    if not UNITS[unit] then
      return nil, ('time: unknown unit "%s" in duration "%s"'):format(unit, orig)
    end
    total = total + tonumber(num) * UNITS[unit]
    s = rest:sub(#unit + 1)
  end
  return sign * total
end

-- ----------------------------------------------------------------------- statistics

local function read(dir, file)
  if not dir then return nil end
  return core.read_file(dir .. "/" .. file, 1048576)
end

local function num_file(dir, file)
  local t = read(dir, file)
  return t and tonumber(t:match("^%s*(%d+)"))
end

local function nums(text)
  local t = {}
  for n in (text or ""):gmatch("%d+") do t[#t + 1] = tonumber(n) end
  return t
end

-- a positive number, else nil (Go's omitempty)
local function nz(v)
  if v == nil or v == 0 or v == math.huge then return nil end
  return v
end

local UNLIMITED = 9223372036854771712

local function lim(v)
  if v == nil or v == math.huge then return UNLIMITED end
  return v
end

-- runc's MemoryEntry: limit and failcnt always, usage and max when not 0
local function entry(limit, usage, max, failcnt)
  return json.ordered({ limit = lim(limit), usage = nz(usage), max = nz(max),
    failcnt = failcnt or 0 }, { "limit", "usage", "max", "failcnt" })
end

local function v1_memory(mem, s)
  local raw = {}
  for k, v in (read(mem, "memory.stat") or ""):gmatch("(%S+) (%d+)") do raw[k] = tonumber(v) end
  local function e(prefix)
    if not mem or not core.stat(mem .. "/" .. prefix .. "usage_in_bytes") then
      -- runc reads what the kernel has; a kernel without swap accounting has no memsw files
      return nil
    end
    return entry(num_file(mem, prefix .. "limit_in_bytes"),
      num_file(mem, prefix .. "usage_in_bytes"), num_file(mem, prefix .. "max_usage_in_bytes"),
      num_file(mem, prefix .. "failcnt"))
  end
  return json.ordered({
    cache = nz(raw.cache),
    usage = entry(s.memory_limit, s.memory_usage, s.memory_max_usage, s.memory_failcnt),
    swap = e("memory.memsw."), kernel = e("memory.kmem."), kernelTCP = e("memory.kmem.tcp."),
    raw = next(raw) and raw or nil,
  }, { "cache", "usage", "swap", "kernel", "kernelTCP", "raw" })
end

local function v2_memory(dir, s)
  local raw = {}
  for k, v in (read(dir, "memory.stat") or ""):gmatch("(%S+) (%d+)") do raw[k] = tonumber(v) end
  local usage = entry(s.memory_limit, s.memory_usage, s.memory_max_usage, s.memory_failcnt)
  -- as runc: v1's swap counts memory and swap together, and v2's is given the same way
  local swap_cur, swap_max = num_file(dir, "memory.swap.current"), read(dir, "memory.swap.max")
  local swap_limit = swap_max and swap_max:match("^max") and math.huge or tonumber(swap_max or "")
  if swap_limit and swap_limit ~= math.huge and s.memory_limit and s.memory_limit ~= math.huge then
    swap_limit = swap_limit + s.memory_limit
  end
  return json.ordered({ cache = nz(raw.file), usage = usage,
    swap = entry(swap_limit, (swap_cur or 0) + (s.memory_usage or 0), nil, 0),
    raw = next(raw) and raw or nil }, { "cache", "usage", "swap", "raw" })
end

local function cpu_stats(dirs, s)
  local acct = dirs.cpuacct
  local usage = { total = s.cpu_usage or 0, kernel = s.cpu_system or 0, user = s.cpu_user or 0 }
  if acct then
    local percpu = nums(read(acct, "cpuacct.usage_percpu"))
    if #percpu > 0 then usage.percpu = json.array(percpu) end
    -- cpuacct.usage_all: "cpu user system" lines
    local pk, pu = {}, {}
    for _, u, k in (read(acct, "cpuacct.usage_all") or ""):gmatch("\n(%d+) (%d+) (%d+)") do
      pu[#pu + 1], pk[#pk + 1] = tonumber(u), tonumber(k)
    end
    if #pk > 0 then
      usage.percpu_kernel, usage.percpu_user = json.array(pk), json.array(pu)
    end
  end
  return json.ordered({
    usage = json.ordered(usage, { "total", "percpu", "percpu_kernel", "percpu_user", "kernel",
      "user" }),
    throttling = json.ordered({ periods = nz(s.cpu_periods),
      throttledPeriods = nz(s.cpu_throttled_periods), throttledTime = nz(s.cpu_throttled_time) },
      { "periods", "throttledPeriods", "throttledTime" }),
  }, { "usage", "throttling" })
end

local function cpuset_stats(dir)
  if not dir then return {} end
  local function list(file)
    local out = {}
    for part in (read(dir, file) or ""):gmatch("[^,%s]+") do
      local a, b = part:match("^(%d+)%-(%d+)$")
      a, b = tonumber(a or part), tonumber(b or part)
      if a and b then for i = a, b do out[#out + 1] = i end end
    end
    return json.array(out)
  end
  local cpus = read(dir, "cpuset.cpus") and "cpuset.cpus" or "cpuset.cpus.effective"
  local mems = read(dir, "cpuset.mems") and "cpuset.mems" or "cpuset.mems.effective"
  return json.ordered({ cpus = list(cpus), mems = list(mems) }, { "cpus", "mems" })
end

--- The statistics of a cgroup as runc's `events` writes them: `{type="stats", id=, data=}`
-- with data's fields named as runc's types.Stats (cpu, cpuset, memory, pids, blkio, hugetlb,
-- intel_rdt, network_interfaces).
-- @tparam string id the container
-- @tparam table dirs the cgroup's directories (ctr.cgroups.dirs)
-- @tparam table s its statistics (ctr.cgroups.stat)
-- @tparam boolean v2 the memory controller is cgroup v2's
function M.stats_event(id, dirs, s, v2)
  local memory = v2 and v2_memory(dirs.unified, s) or v1_memory(dirs.memory, s)
  local data = json.ordered({
    cpu = cpu_stats(dirs, s),
    cpuset = cpuset_stats(dirs.cpuset or (v2 and dirs.unified)),
    memory = memory,
    pids = json.ordered({ current = nz(s.pids_current), limit = nz(s.pids_limit) },
      { "current", "limit" }),
    blkio = {}, hugetlb = {}, intel_rdt = {},
    network_interfaces = json.null,
  }, { "cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
    "network_interfaces" })
  return json.ordered({ type = "stats", id = id, data = data }, { "type", "id", "data" })
end

--- The OOM kills a cgroup has seen (v1 memory.oom_control's oom_kill, v2 memory.events'),
-- or nil when its memory controller's file is not there (the cgroup is gone).
-- @tparam table dirs ctr.cgroups.dirs of the cgroup
function M.oom_kills(dirs)
  local text
  if dirs.memory then text = read(dirs.memory, "memory.oom_control")
  elseif dirs.unified then text = read(dirs.unified, "memory.events") end
  if not text then return nil end
  return tonumber(("\n" .. text):match("\noom_kill (%d+)")) or 0
end

--- runc's OOM event.
function M.oom_event(id)
  return json.ordered({ type = "oom", id = id }, { "type", "id" })
end

return M
