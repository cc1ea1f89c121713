-- ctrlua-runc's update, ps and events as runc's: real containers, the cgroup files read on the
-- host as the check, and the same bundle run by Debian's runc (where it is installed) for the
-- values, messages and exit codes to agree.  update by flags and by `--resources -` with the
-- argv containerd's shim uses; a partial update keeps the rest; ps --format json|table with
-- ps(1) arguments; events --stats's fields, --interval, and an OOM event from a container that
-- allocates past its memory limit.
local core = require("ctr.core")
local B = require("support.bundle")
local S = require("support.ctrlua")
local RU = require("ctr.cmd.runc_update")

local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
local RUNC = core.stat("/usr/sbin/runc") and "/usr/sbin/runc" or nil
local q = B.q
local arr = core.json_array

describe("ctr.cmd.runc_update", function()
  it("parses sizes as go-units' RAMInBytes and flags as runc's update does", function()
    for _, c in ipairs({ { "100M", 104857600 }, { "1g", 1073741824 }, { "512", 512 },
      { "1.5k", 1536 }, { "2 MiB", 2097152 }, { "64kb", 65536 } }) do
      assert.are.equal(c[2], RU.ram_in_bytes(c[1]), c[1])
    end
    for _, bad in ipairs({ "abc", "10X", "-5", "", "1..2" }) do
      local v, msg = RU.ram_in_bytes(bad)
      assert.is_nil(v, bad)
      assert.are.equal("invalid size: '" .. bad .. "'", msg)
    end
    local r = assert(RU.from_flags({ memory = "-1", ["cpu-quota"] = "-5", ["pids-limit"] = "0x10",
      ["blkio-weight"] = "300" }))
    assert.are.same({ -1, -5, 16, 300 }, { r.memory.limit, r.cpu.quota, r.pids.limit,
      r.blockIO.weight })
    local _, err = RU.from_flags({ ["cpu-share"] = "-1" })
    assert.are.equal('invalid value for cpu-share: strconv.ParseUint: parsing "-1": invalid syntax',
      err.msg)
    _, err = RU.from_flags({ ["pids-limit"] = "ten" })
    assert.is_true(err.usage)
    assert.are.equal('invalid value "ten" for flag -pids-limit: parse error', err.msg)
  end)

  it("writes only what is set, keeps the rest in the record, and pairs period and quota", function()
    local old = RU.recorded({ memory = { limit = 100 }, cpu = { period = 100000, quota = 50000 } })
    local r = assert(RU.from_flags({ ["cpu-quota"] = "20000", ["pids-limit"] = "7" }))
    local write, rec = RU.plan(old, r)
    assert.are.same({ cpu = { quota = 20000, period = 100000 }, pids = { limit = 7 } }, write)
    assert.are.same({ 100, 100000, 20000, 7 }, { rec.memory.limit, rec.cpu.period, rec.cpu.quota,
      rec.pids.limit })
  end)

  it("filters ps(1)'s table to the container's pids by its PID column", function()
    local out = "  UID   PID COMMAND\n root     1 init\n root    42 sleep\n root   420 sh\n"
    assert.are.equal("  UID   PID COMMAND\n root    42 sleep\n", RU.ps_filter(out, { 42, 7 }))
    local v, err = RU.ps_filter("USER COMMAND\nroot sh\n", { 1 })
    assert.is_nil(v)
    assert.are.equal("couldn't find PID field in ps output", err.msg)
    v, err = RU.ps_filter("PID CMD\nx sh\n", { 1 })
    assert.is_nil(v)
    assert.truthy(err.msg:find('unable to parse pid', 1, true))
  end)

  it("parses Go durations", function()
    for _, c in ipairs({ { "1s", 1 }, { "500ms", 0.5 }, { "1m30s", 90 }, { "1.5h", 5400 },
      { "0", 0 }, { "-2s", -2 }, { "250us", 0.00025 } }) do
      assert.are.equal(c[2], RU.parse_duration(c[1]), c[1])
    end
    for _, bad in ipairs({ "abc", "5", "1x", "" }) do assert.is_nil(RU.parse_duration(bad), bad) end
  end)
end)

describe("ctr.cgroups.update and the stats event over a fake tree", function()
  local fake_mod = require("support.cgroup_fake")
  local cgroups = require("ctr.cgroups")
  local fake
  after_each(function()
    if fake then fake:remove() end
    fake = nil
  end)

  for _, mode in ipairs({ "v2", "hybrid", "v1" }) do
    it(mode .. ": writes the values set to the existing cgroup, creates nothing", function()
      fake = fake_mod.new(mode)
      fake:cgroup("/d/c")
      assert(cgroups.update("/d/c", { memory = { limit = 67108864 }, cpu = { quota = 20000,
        period = 100000, shares = 0 }, pids = { limit = 9 } }, fake.opts))
      if mode == "v2" then
        assert.are.same({ "67108864" }, fake:lines("unified", "/d/c", "memory.max"))
        assert.are.same({ "20000 100000" }, fake:lines("unified", "/d/c", "cpu.max"))
        assert.are.same({ "9" }, fake:lines("unified", "/d/c", "pids.max"))
        -- shares 0 is "unchanged": no cpu.weight written
        assert.are.same({}, fake:lines("unified", "/d/c", "cpu.weight"))
      else
        assert.are.same({ "9223372036854771712", "67108864" },
          fake:lines("memory", "/d/c", "memory.limit_in_bytes"))
        assert.are.same({ "20000" }, fake:lines("cpu,cpuacct", "/d/c", "cpu.cfs_quota_us"))
        assert.are.same({ "9" }, fake:lines("pids", "/d/c", "pids.max"))
        assert.are.same({}, fake:lines("cpu,cpuacct", "/d/c", "cpu.shares"))
      end
      local ok, err = cgroups.update("/d/gone", { pids = { limit = 3 } }, fake.opts)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", err.sym)
      assert.is_nil(core.stat(fake.tmp .. "/sys/fs/cgroup/pids/d/gone"))
      assert.is_nil(core.stat(fake.tmp .. "/sys/fs/cgroup/d/gone"))
    end)
  end

  it("v2: runc's stats fields (swap counts memory too, cache is file) and the OOM count", function()
    fake = fake_mod.new("v2")
    fake:cgroup("/d/c", { ["memory.max"] = "100000\n", ["memory.swap.max"] = "50000\n",
      ["pids.max"] = "max\n" })
    local dirs = assert(cgroups.dirs("/d/c", fake.opts))
    local ev = RU.stats_event("c", dirs, assert(cgroups.stat("/d/c", fake.opts)), true)
    local j = core.json_decode(require("ctr.json").encode(ev))
    assert.are.equal("stats", j.type)
    assert.are.equal(40, j.data.memory.cache)
    assert.are.equal(5000, j.data.memory.usage.usage)
    assert.are.equal(150000, j.data.memory.swap.limit)
    assert.are.equal(5000, j.data.memory.swap.usage)
    assert.are.equal(2, j.data.pids.current)
    assert.is_nil(j.data.pids.limit)
    assert.are.equal(1500000, j.data.cpu.usage.total)
    assert.are.equal(1, RU.oom_kills(dirs))
  end)
end)

describe("ctrlua-runc update, ps, events as runc #root", function()
  local dir, ids, bgs

  local function runtimes()
    local t = { { name = "ctrlua-runc", bin = BIN, root = dir .. "/root-ctrlua" } }
    if RUNC then t[2] = { name = "runc", bin = RUNC, root = dir .. "/root-runc" } end
    return t
  end

  local function cmdline(rt, args, globals)
    local w = { q(rt.bin), "--root", q(rt.root) }
    for _, a in ipairs(globals or {}) do w[#w + 1] = q(a) end
    for _, a in ipairs(args) do w[#w + 1] = q(a) end
    return table.concat(w, " ")
  end

  -- run rt with args (and global flags after --root): stdout, stderr, exit code
  local function rc(rt, args, stdin, globals)
    local cmd = ("%s >%s 2>%s <%s"):format(cmdline(rt, args, globals), q(dir .. "/out"),
      q(dir .. "/err"), q(stdin or "/dev/null"))
    local ok, _, code = os.execute(cmd)
    if type(ok) == "number" then code = ok >= 256 and math.floor(ok / 256) or ok end
    return B.slurp(dir .. "/out") or "", B.slurp(dir .. "/err") or "", code
  end
  local function must(rt, args, stdin, globals)
    local out, err, code = rc(rt, args, stdin, globals)
    assert(code == 0, ("%s %s: exit %s: %s"):format(rt.name, table.concat(args, " "),
      tostring(code), err))
    return out
  end
  -- the message of runc's error line (logrus text: msg="..."), or the plain line
  local function msg_of(err)
    local m = err:match('level=error msg="(.-)"\n') or err:match("([^\n]+)\n?$") or ""
    return (m:gsub('\\"', '"'))
  end

  -- a running container of rt: its id and cgroup path; args its process
  local function start(rt, name, args, edit)
    local id = name .. "-" .. rt.name
    ids[#ids + 1] = { rt = rt, id = id }
    local b = dir .. "/" .. id
    assert(core.mkdir(b, 493))
    local cg = "/ctrlua-update-spec/" .. dir:match("[^.]+$") .. "/" .. id
    B.make(b, { args = args or { "sleep", "60" }, edit = function(spec)
      spec.linux.cgroupsPath = cg
      if edit then edit(spec) end
    end })
    must(rt, { "run", "-d", "--bundle", b, id })
    return id, cg, b
  end

  -- the files an update writes, as the kernel has them now
  local FILES = {
    { "memory", "memory.limit_in_bytes" }, { "memory", "memory.soft_limit_in_bytes" },
    { "memory", "memory.memsw.limit_in_bytes" }, { "cpu", "cpu.shares" },
    { "cpu", "cpu.cfs_quota_us" }, { "cpu", "cpu.cfs_period_us" }, { "pids", "pids.max" },
    { "cpuset", "cpuset.cpus" }, { "blkio", "blkio.bfq.weight" }, { "blkio", "blkio.weight" },
  }
  local function files(cg)
    local dirs = assert(require("ctr.cgroups").dirs(cg))
    local t = {}
    for _, f in ipairs(FILES) do
      local d = dirs[f[1]]
      local v = d and core.read_file(d .. "/" .. f[2])
      if v then t[f[2]] = v:gsub("%s+$", "") end
    end
    return t
  end

  before_each(function()
    dir = B.tmpdir()
    ids, bgs = {}, {}
    if require("ctr.cgroups").mode() ~= "hybrid" and require("ctr.cgroups").mode() ~= "v1" then
      pending("the file names below are cgroup v1's")
    end
  end)

  after_each(function()
    for _, pid in ipairs(bgs) do core.kill(pid, 9) end
    for _, c in ipairs(ids) do
      os.execute(cmdline(c.rt, { "delete", "--force", c.id }) .. " >/dev/null 2>&1")
    end
    local base = "/ctrlua-update-spec/" .. dir:match("[^.]+$")
    require("ctr.cgroups").delete(base)
    require("ctr.cgroups").delete("/ctrlua-update-spec")
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  it("update by flags writes the cgroup files as runc does; a partial update keeps the rest",
    function()
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      local id, cg = start(rt, "flags")
      local before = files(cg)
      must(rt, { "update", "--memory", "100M", "--memory-reservation", "50M", "--memory-swap",
        "200M", "--cpu-share", "512", "--cpu-period", "100000", "--cpu-quota", "50000",
        "--pids-limit", "20", "--cpuset-cpus", "0", "--blkio-weight", "300", id })
      local f1 = files(cg)
      assert.are.equal("104857600", f1["memory.limit_in_bytes"], rt.name)
      assert.are.equal("52428800", f1["memory.soft_limit_in_bytes"], rt.name)
      assert.are.equal("512", f1["cpu.shares"], rt.name)
      assert.are.equal("50000", f1["cpu.cfs_quota_us"], rt.name)
      assert.are.equal("20", f1["pids.max"], rt.name)
      assert.are.equal("0", f1["cpuset.cpus"], rt.name)
      if f1["memory.memsw.limit_in_bytes"] then
        assert.are.equal("209715200", f1["memory.memsw.limit_in_bytes"], rt.name)
      end
      assert.are_not.same(before, f1)
      -- one value: the others stay; a quota alone keeps the period
      must(rt, { "update", "--pids-limit", "30", id })
      must(rt, { "update", "--cpu-quota", "20000", id })
      local f2 = files(cg)
      assert.are.equal("30", f2["pids.max"], rt.name)
      assert.are.equal("20000", f2["cpu.cfs_quota_us"], rt.name)
      assert.are.equal("100000", f2["cpu.cfs_period_us"], rt.name)
      assert.are.equal("104857600", f2["memory.limit_in_bytes"], rt.name)
      assert.are.equal("512", f2["cpu.shares"], rt.name)
      -- unlimited again: memory, and swap with it
      must(rt, { "update", "--memory", "-1", "--pids-limit", "-1", id })
      local f3 = files(cg)
      seen[rt.name] = { f1, f2, f3 }
    end
    if seen.runc then assert.are.same(seen.runc, seen["ctrlua-runc"]) end
    -- the record keeps the values for the next update, and stats show them
    local rec = core.json_decode(assert(core.read_file(dir .. "/root-ctrlua/flags-ctrlua-runc/state.json")))
    assert.are.equal(512, rec.resources.cpu.shares)
    assert.are.equal(20000, rec.resources.cpu.quota)
  end)

  it("update --resources - with the shim's argv (--root R --log F --log-format json)", function()
    -- what containerd's shim writes on stdin: the whole linux.resources, devices included
    local res = {
      devices = arr({ { allow = false, access = "rwm" } }),
      memory = { limit = 67108864, swap = 134217728 },
      cpu = { shares = 256, quota = 30000, period = 100000, cpus = "", mems = "" },
      pids = { limit = 40 },
    }
    local stdin = dir .. "/res.json"
    assert(core.write_file(stdin, core.json_encode(res), { mode = 420 }))
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      local id, cg = start(rt, "shim")
      local log = dir .. "/log-" .. rt.name .. ".json"
      must(rt, { "update", "--resources", "-", id }, stdin, { "--log", log, "--log-format", "json" })
      local f = files(cg)
      assert.are.equal("67108864", f["memory.limit_in_bytes"], rt.name)
      assert.are.equal("256", f["cpu.shares"], rt.name)
      assert.are.equal("30000", f["cpu.cfs_quota_us"], rt.name)
      assert.are.equal("40", f["pids.max"], rt.name)
      -- the device list is not touched: the container still writes /dev/null
      must(rt, { "exec", id, "sh", "-c", "echo x >/dev/null" })
      -- a later update by flags keeps what the JSON set
      must(rt, { "update", "--pids-limit", "41", id })
      local g = files(cg)
      assert.are.equal("67108864", g["memory.limit_in_bytes"], rt.name)
      assert.are.equal("41", g["pids.max"], rt.name)
      -- go-runc's newer spelling, `--resources=-`, with only pids: the memory limit stays
      assert(core.write_file(dir .. "/pids.json", '{"pids":{"limit":42}}\n', { mode = 420 }))
      must(rt, { "update", "--resources=-", id }, dir .. "/pids.json",
        { "--log", log, "--log-format", "json" })
      local h = files(cg)
      assert.are.equal("67108864", h["memory.limit_in_bytes"], rt.name)
      assert.are.equal("42", h["pids.max"], rt.name)
      -- a bad JSON text: exit 1, the reason in the log as JSON
      assert(core.write_file(dir .. "/bad.json", "{bad", { mode = 420 }))
      local _, _, code = rc(rt, { "update", "-r", "-", id }, dir .. "/bad.json",
        { "--log", log, "--log-format", "json" })
      assert.are.equal(1, code, rt.name)
      local last
      for line in assert(B.slurp(log)):gmatch("[^\n]+") do last = core.json_decode(line) end
      assert.are.equal("error", last.level, rt.name)
      seen[rt.name] = { f, g, h }
    end
    if seen.runc then assert.are.same(seen.runc, seen["ctrlua-runc"]) end
  end)

  it("update's errors are runc's: a missing or stopped container, bad values, no RDT", function()
    local cases = {
      { "update", "--memory", "1M", "nosuch" },
      { "update", "--memory", "10X", "{ID}" },
      { "update", "--memory-reservation", "abc", "{ID}" },
      { "update", "--cpu-share", "abc", "{ID}" },
      { "update", "--cpu-quota", "1.5", "{ID}" },
      { "update", "--pids-limit", "abc", "{ID}" },
      { "update", "--l3-cache-schema", "L3:0=f", "{ID}" },
      { "update", "--mem-bw-schema", "MB:0=70", "{ID}" },
      { "update", "--memory", "1", "{ID}" },
      { "update", "{ID}", "extra" },
    }
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      local id, cg = start(rt, "err")
      local limit = files(cg)["memory.limit_in_bytes"]
      local r = {}
      for i, c in ipairs(cases) do
        local args = {}
        for j, a in ipairs(c) do args[j] = a == "{ID}" and id or a end
        local _, err, code = rc(rt, args)
        local m = msg_of(err):gsub(id, "{ID}"):gsub('^%S*runc: "', '"')
        -- the usage below a limit: the numbers are the container's
        m = m:gsub("%(current usage: %d+, peak usage: %d+%)", "(usage)")
        r[i] = { code = code, msg = m }
        assert.are.equal(1, code, rt.name .. " " .. table.concat(c, " "))
      end
      -- a failed update leaves the limits as they were
      assert.are.equal(limit, files(cg)["memory.limit_in_bytes"], rt.name)
      must(rt, { "kill", id, "KILL" })
      S.until_true(function() return core.json_decode(must(rt, { "state", id })).status == "stopped" end,
        10, "the container stopped")
      local _, err, code = rc(rt, { "update", "--memory", "1M", id })
      r[#r + 1] = { code = code, msg = msg_of(err) }
      seen[rt.name] = r
    end
    local mine = seen["ctrlua-runc"]
    local help = must(runtimes()[1], { "update", "--help" })
    for _, flag in ipairs({ "--resources value, -r value", "--memory-swap", "--pids-limit",
      "--mem-bw-schema" }) do
      assert.truthy(help:find(flag, 1, true), flag)
    end
    assert.are.equal("container does not exist", mine[1].msg)
    assert.are.equal("invalid value for memory: invalid size: '10X'", mine[2].msg)
    assert.are.equal('invalid value "abc" for flag -pids-limit: parse error', mine[6].msg)
    assert.are.equal("Intel RDT/CAT: l3 cache schema is not enabled", mine[7].msg)
    assert.are.equal("unable to set memory limit to 1 (usage)", mine[9].msg)
    assert.are.same({ code = 1, msg = "container not running" }, mine[#mine])
    if seen.runc then assert.are.same(seen.runc, mine) end
  end)

  it("ps: --format json is the pids, table is ps(1)'s lines with its arguments", function()
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      local id = start(rt, "ps", { "sh", "-c", "sleep 60 & exec sleep 61" })
      local pid = core.json_decode(must(rt, { "state", id })).pid
      local pids
      S.until_true(function()
        pids = core.json_decode(must(rt, { "ps", "--format", "json", id }))
        return #pids == 2
      end, 10, "two processes")
      table.sort(pids)
      assert.truthy(pids[1] == pid or pids[2] == pid, rt.name)
      local t = must(rt, { "ps", id, "-o", "pid,comm" })
      assert.truthy(t:match("^%s*PID COMMAND\n"), t)
      local lines = select(2, t:gsub("\n", ""))
      assert.are.equal(3, lines, t)
      assert.truthy(t:find("\n%s*" .. pid .. " sleep\n"), t)
      local def = must(rt, { "ps", id })
      assert.truthy(def:match("^UID%s+PID%s+PPID"), def)
      local _, err, code = rc(rt, { "ps", "--format", "yaml", id })
      local _, err2, code2 = rc(rt, { "ps", "nosuch" })
      local _, err3, code3 = rc(rt, { "ps", id, "--nosuchoption" })
      seen[rt.name] = { { code, msg_of(err) }, { code2, msg_of(err2) }, { code3, msg_of(err3):match("^exit status %d+") } }
    end
    local mine = seen["ctrlua-runc"]
    assert.are.same({ 1, "invalid format option" }, mine[1])
    assert.are.same({ 1, "container does not exist" }, mine[2])
    assert.are.same({ 1, "exit status 1" }, mine[3])
    if seen.runc then assert.are.same(seen.runc, mine) end
    -- ps's arguments after `--` (runc 1.1 hands `--` itself to ps, which refuses it)
    local id = "ps-ctrlua-runc"
    local t = must(runtimes()[1], { "ps", id, "--", "-o", "pid,comm" })
    assert.truthy(t:match("^%s*PID COMMAND\n"), t)
  end)

  it("events --stats: runc's fields, the limits an update set; --interval's syntax", function()
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      local id = start(rt, "ev")
      must(rt, { "update", "--memory", "48M", "--pids-limit", "25", id })
      local ev = core.json_decode(must(rt, { "events", "--stats", id }))
      assert.are.equal("stats", ev.type)
      assert.are.equal(id, ev.id)
      assert.are.equal(48 * 1048576, ev.data.memory.usage.limit, rt.name)
      assert.are.equal(25, ev.data.pids.limit, rt.name)
      assert.is_true(ev.data.pids.current >= 1)
      assert.is_true(ev.data.cpu.usage.total > 0)
      local function keys(t)
        local k = {}
        for name in pairs(t) do k[#k + 1] = name end
        table.sort(k)
        return table.concat(k, " ")
      end
      -- cache is left out when it is 0 (Go's omitempty), which differs from run to run
      ev.data.memory.cache = nil
      local r = { data = keys(ev.data), memory = keys(ev.data.memory),
        usage = keys(ev.data.memory.usage), cpu = keys(ev.data.cpu),
        cpuusage = keys(ev.data.cpu.usage) }
      assert.is_table(ev.data.memory.raw)
      assert.is_number(ev.data.memory.raw.total_rss)
      -- an interval: stats lines, the first after one interval
      local out = dir .. "/events-ev-" .. rt.name
      local pid = tonumber(B.sh(("%s >%s 2>&1 </dev/null & echo $!"):format(
        cmdline(rt, { "events", "--interval", "200ms", id }), q(out))))
      bgs[#bgs + 1] = pid
      S.until_true(function()
        local n = select(2, (B.slurp(out) or ""):gsub('{"type":"stats"', ""))
        return n >= 2
      end, 15, rt.name .. "'s second stats line: " .. tostring(B.slurp(out)))
      core.kill(pid, 9)
      for _, bad in ipairs({ { "0s", "duration interval must be greater than 0" },
        { "5", 'invalid value "5" for flag -interval: parse error' } }) do
        local _, err, code = rc(rt, { "events", "--interval", bad[1], id })
        assert.are.equal(1, code)
        r[#r + 1] = msg_of(err)
        assert.are.equal(bad[2], msg_of(err), rt.name)
      end
      local _, err, code = rc(rt, { "events", "--stats", "nosuch" })
      r[#r + 1] = { code, msg_of(err) }
      seen[rt.name] = r
    end
    assert.are.same({ 1, "container does not exist" }, seen["ctrlua-runc"][3])
    if seen.runc then assert.are.same(seen.runc, seen["ctrlua-runc"]) end
  end)

  it("events reports an OOM kill in the container's cgroup as {type: oom}", function()
    local seen = {}
    for _, rt in ipairs(runtimes()) do
      -- the init waits for a mark, then a child doubles a string past the limit: the OOM
      -- killer takes the child, the init lives on
      local script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; " ..
        "sh -c 'a=0123456789abcdef; while :; do a=$a$a; done'; sleep 60"
      local id, cg, b = start(rt, "oom", { "sh", "-c", script }, function(spec)
        spec.linux.resources = { memory = { limit = 16 * 1048576, swap = 16 * 1048576 } }
      end)
      local out = dir .. "/events-oom-" .. rt.name
      local pid = tonumber(B.sh(("%s >%s 2>&1 </dev/null & echo $!"):format(
        cmdline(rt, { "events", "--interval", "100ms", id }), q(out))))
      bgs[#bgs + 1] = pid
      -- a first stats line: events has read the OOM count it starts from
      S.until_true(function() return (B.slurp(out) or ""):find('"type":"stats"', 1, true) end,
        15, rt.name .. "'s first stats line")
      assert(core.write_file(b .. "/rootfs/tmp/go", "", { mode = 420 }))
      local line = S.until_true(function()
        return (B.slurp(out) or ""):match('[^\n]*"type":"oom"[^\n]*')
      end, 30, rt.name .. "'s oom event")
      seen[rt.name] = core.json_decode(line)
      assert.are.same({ type = "oom", id = id }, seen[rt.name])
      local dirs = assert(require("ctr.cgroups").dirs(cg))
      local oc = assert(core.read_file(dirs.memory .. "/memory.oom_control"))
      assert.truthy(tonumber(oc:match("oom_kill (%d+)")) >= 1)
      -- the container deleted, its cgroup gone: events ends
      must(rt, { "delete", "--force", id })
      S.until_true(function()
        local st = core.proc_stat(pid)
        return st == nil or st.state == "Z" or st.state == "X"
      end, 15, rt.name .. "'s events to end")
    end
  end)
end)
