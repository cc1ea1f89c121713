-- cgroups: layout detection, resources written to v1 and v2 files, cleanup on failure (over
-- fake cgroup trees: spec/support/cgroup_fake.lua), and on this machine's real hierarchy
-- (#root): limits read back, a real process added, measured, frozen, thawed, OOM-killed, and
-- every directory removed.
local core = require("ctr.core")
local cgroups = require("ctr.cgroups")
local fake_mod = require("support.cgroup_fake")

local function json(t) return core.json_encode(t) end

describe("cgroups over a fake tree", function()
  local fake
  after_each(function()
    if fake then fake:remove() end
    fake = nil
  end)

  describe("layout", function()
    it("detects v1: co-mounted controllers, name=systemd, own cgroup, bind mounts ignored", function()
      fake = fake_mod.new("v1")
      local l = assert(cgroups.layout(fake.opts))
      assert.are.equal("v1", l.mode)
      assert.is_nil(l.unified)
      assert.are.equal(8, #l.v1)
      local base = fake.tmp .. "/sys/fs/cgroup/"
      assert.are.equal(base .. "cpu,cpuacct", l.controllers.cpu)
      assert.are.equal(base .. "cpu,cpuacct", l.controllers.cpuacct)
      assert.are.equal(base .. "memory", l.controllers.memory)
      assert.is_nil(l.controllers.hugetlb)
      local names, own = {}, {}
      for _, h in ipairs(l.v1) do
        if h.name then names[#names + 1] = h.name end
        own[h.mountpoint] = h.own
      end
      assert.are.same({ "systemd" }, names)
      assert.are.equal("/user.slice", own[base .. "memory"])
      assert.are.equal("", own[base .. "pids"])
    end)

    it("detects v2 and its controllers from cgroup.controllers", function()
      fake = fake_mod.new("v2")
      local l = assert(cgroups.layout(fake.opts))
      assert.are.equal("v2", l.mode)
      assert.are.equal(0, #l.v1)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup", l.unified.mountpoint)
      assert.are.equal("/user.slice/session-1.scope", l.unified.own)
      table.sort(l.unified.controllers)
      assert.are.same({ "cpu", "cpuset", "hugetlb", "io", "memory", "pids" }, l.unified.controllers)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup", l.controllers.memory)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup", l.controllers.blkio)
    end)

    it("detects hybrid: v1 controllers, the unified mount holding only what v1 lacks", function()
      fake = fake_mod.new("hybrid")
      local l = assert(cgroups.layout(fake.opts))
      assert.are.equal("hybrid", l.mode)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/unified", l.unified.mountpoint)
      assert.are.same({ "hugetlb" }, l.unified.controllers)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/memory", l.controllers.memory)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/unified", l.controllers.hugetlb)
    end)

    it("says none when nothing is mounted, and refuses to create there", function()
      fake = fake_mod.new("none")
      assert.are.equal("none", cgroups.mode(fake.opts))
      local cg, err = cgroups.new("/x", nil, fake.opts)
      assert.is_nil(cg)
      assert.matches("no cgroup hierarchy", err.msg)
    end)

    it("fails naming a missing mountinfo", function()
      local l, err = cgroups.layout({ mountinfo = "/nonexistent/mountinfo" })
      assert.is_nil(l)
      assert.matches("/nonexistent/mountinfo", err.msg)
      assert.are.equal("ENOENT", err.sym)
    end)
  end)

  describe("hierarchy", function()
    it("is the layout read once: a call given it reads no mount table", function()
      fake = fake_mod.new("hybrid")
      fake:cgroup("/default")
      fake:cgroup("/default/c1")
      local h = assert(cgroups.hierarchy(fake.opts))
      local given = { hierarchy = h }
      -- the fake tree's mount table and /proc/self/cgroup gone: a call without the hierarchy
      -- cannot find the tree, one given it still does
      assert(os.remove(fake.opts.mountinfo))
      assert(os.remove(fake.opts.proc_cgroup))
      local none, err = cgroups.dirs("/default/c1", fake.opts)
      assert.is_nil(none)
      assert.are.equal("ENOENT", err.sym)
      local d = assert(cgroups.dirs("/default/c1", given))
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/memory/default/c1", d.memory)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/unified/default/c1", d.unified)
      assert.are.equal("hybrid", cgroups.mode(given))
      -- written and read through it
      assert(cgroups.new("/default/c1", { pids = { limit = 7 } }, given))
      assert.are.equal("7", fake:value("pids", "/default/c1", "pids.max"))
      assert.is_true(cgroups.oom_killed("/default/c1", given)) -- the fake's oom_kill 2
    end)

    it("refuses, as hierarchy or cgroup_hierarchy, a value it did not make", function()
      assert.has_error(function() cgroups.dirs("/x", { hierarchy = {} }) end,
        "option hierarchy: expected what cgroup_hierarchy returned")
      assert.has_error(function() core.create("/nonexistent", { cgroup_hierarchy = "v1" }) end,
        "option cgroup_hierarchy: expected what cgroup_hierarchy returned")
    end)
  end)

  describe("paths", function()
    it("puts absolute paths below the mount and relative ones below the caller's cgroup", function()
      fake = fake_mod.new("hybrid")
      local d = assert(cgroups.dirs("/default/c1", fake.opts))
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/memory/default/c1", d.memory)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/systemd/default/c1", d["name=systemd"])
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/unified/default/c1", d.unified)
      d = assert(cgroups.dirs("ctrlua//./c1/", fake.opts))
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/memory/user.slice/ctrlua/c1", d.memory)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/pids/ctrlua/c1", d.pids)
      assert.are.equal(fake.tmp .. "/sys/fs/cgroup/unified/user.slice/session-1.scope/ctrlua/c1", d.unified)
    end)

    it("refuses `..', the root itself, and an empty path", function()
      fake = fake_mod.new("v1")
      for _, p in ipairs({ "/a/../../etc", "..", "/", "//." }) do
        local cg, err = cgroups.new(p, nil, fake.opts)
        assert.is_nil(cg, p)
        assert.are.equal("EINVAL", err.sym)
      end
      assert.has_error(function() cgroups.new("", nil, fake.opts) end)
      assert.has_error(function() cgroups.new(7) end)
      -- nothing was made
      assert.is_nil(core.stat(fake.tmp .. "/etc"))
    end)
  end)

  describe("v1 resources", function()
    before_each(function()
      fake = fake_mod.new("v1", { hugetlb_v1 = true })
      fake:cgroup("/d")
      fake:cgroup("/d/c", { ["memory.limit_in_bytes"] = "9223372036854771712\n" })
    end)

    it("writes memory (memsw = memory+swap), cpu, cpuset, pids, blkio, hugetlb", function()
      assert(core.mkdir_p(fake:dir("cpuset", "/d"), 493))
      local f = io.open(fake:dir("cpuset", "/d") .. "/cpuset.mems", "w") f:write("0\n") f:close()
      assert(cgroups.new("/d/c", {
        memory = { limit = 67108864, swap = 134217728, reservation = 33554432, swappiness = 10,
          kernel = 1000, kernelTCP = 2000, disableOOMKiller = true, useHierarchy = true },
        cpu = { shares = 512, quota = 50000, period = 100000, realtimeRuntime = 950,
          realtimePeriod = 1000, cpus = "0-1" },
        pids = { limit = 20 },
        blockIO = { weight = 500, leafWeight = 300,
          weightDevice = { { major = 8, minor = 0, weight = 600, leafWeight = 200 } },
          throttleReadBpsDevice = { { major = 8, minor = 0, rate = 1048576 } },
          throttleWriteIOPSDevice = { { major = 8, minor = 16, rate = 100 } } },
        hugepageLimits = { { pageSize = "2MB", limit = 4194304 } },
      }, fake.opts))
      local function v(h, file) return fake:value(h, "/d/c", file) end
      assert.are.equal("67108864", v("memory", "memory.limit_in_bytes"))
      assert.are.equal("134217728", v("memory", "memory.memsw.limit_in_bytes"))
      assert.are.equal("33554432", v("memory", "memory.soft_limit_in_bytes"))
      assert.are.equal("10", v("memory", "memory.swappiness"))
      assert.are.equal("1", v("memory", "memory.oom_control"))
      assert.are.equal("1", v("memory", "memory.use_hierarchy"))
      -- kernel memory only where the kernel still has the file
      assert.is_nil(core.stat(fake:dir("memory", "/d/c") .. "/memory.kmem.limit_in_bytes"))
      assert.are.equal("2000", v("memory", "memory.kmem.tcp.limit_in_bytes"))
      assert.are.equal("512", v("cpu,cpuacct", "cpu.shares"))
      assert.are.equal("50000", v("cpu,cpuacct", "cpu.cfs_quota_us"))
      assert.are.equal("100000", v("cpu,cpuacct", "cpu.cfs_period_us"))
      assert.are.equal("1000", v("cpu,cpuacct", "cpu.rt_period_us"))
      assert.are.equal("950", v("cpu,cpuacct", "cpu.rt_runtime_us"))
      assert.are.same({ "0-3", "0-1" }, fake:lines("cpuset", "/d/c", "cpuset.cpus"))
      -- mems was empty: copied from the parent
      assert.are.equal("0", v("cpuset", "cpuset.mems"))
      assert.are.equal("20", v("pids", "pids.max"))
      assert.are.equal("500", v("blkio", "blkio.weight"))
      assert.are.equal("300", v("blkio", "blkio.leaf_weight"))
      assert.are.equal("8:0 600", v("blkio", "blkio.weight_device"))
      assert.are.equal("8:0 200", v("blkio", "blkio.leaf_weight_device"))
      assert.are.equal("8:0 1048576", v("blkio", "blkio.throttle.read_bps_device"))
      assert.are.equal("8:16 100", v("blkio", "blkio.throttle.write_iops_device"))
      assert.are.same({}, fake:lines("blkio", "/d/c", "blkio.throttle.write_bps_device"))
      assert.are.equal("4194304", v("hugetlb", "hugetlb.2MB.limit_in_bytes"))
    end)

    it("writes pids.max max for a limit <= 0", function()
      assert(cgroups.new("/d/c", { pids = { limit = -1 } }, fake.opts))
      assert.are.equal("max", fake:value("pids", "/d/c", "pids.max"))
      assert(cgroups.new("/d/c", { pids = { limit = 0 } }, fake.opts))
      assert.are.same({ "max", "max" }, fake:lines("pids", "/d/c", "pids.max"))
    end)

    it("denies every device first, then writes the rules in their order (a list that opens with deny-all starts with it)", function()
      assert(cgroups.new("/d/c", { devices = {
        { allow = false, access = "rwm" },
        { allow = true, type = "c", major = 1, minor = 3, access = "rwm" },
        { allow = true, type = "c", major = 136, access = "rw" },
        { allow = false, type = "c", major = 1, minor = 3, access = "m" },
        { allow = true, type = "b", minor = 7, access = "r" },
      } }, fake.opts))
      assert.are.same({ "a *:* rwm", "c 1:3 m" }, fake:lines("devices", "/d/c", "devices.deny"))
      assert.are.same({ "c 1:3 rwm", "c 136:* rw", "b *:7 r" },
        fake:lines("devices", "/d/c", "devices.allow"))
      fake:cgroup("/d/e")
      assert(cgroups.new("/d/e", { devices = {
        { allow = false, type = "c", major = 1, minor = 3, access = "rwm" },
        { allow = true, type = "c", major = 1, minor = 5, access = "rwm" },
      } }, fake.opts))
      assert.are.same({ "a", "c 1:3 rwm" }, fake:lines("devices", "/d/e", "devices.deny"))
      assert.are.same({ "c 1:5 rwm" }, fake:lines("devices", "/d/e", "devices.allow"))
    end)

    it("refuses malformed device rules before writing any", function()
      for _, bad in ipairs({ { { allow = true, type = "x" } }, { { allow = true, access = "rwx" } },
        { { type = "c" } }, { { allow = true, access = "" } } }) do
        local cg, err = cgroups.new("/d/c", { devices = bad }, fake.opts)
        assert.is_nil(cg)
        assert.are.equal("EINVAL", err.sym)
      end
      assert.are.same({}, fake:lines("devices", "/d/c", "devices.deny"))
    end)

    it("orders memsw before the limit when raising above the current limit (runc)", function()
      fake:cgroup("/d/c", { ["memory.limit_in_bytes"] = "1000\n" })
      assert(cgroups.new("/d/c", { memory = { limit = 2000, swap = 4000 } }, fake.opts))
      assert.are.equal("2000", fake:value("memory", "/d/c", "memory.limit_in_bytes"))
      assert.are.equal("4000", fake:value("memory", "/d/c", "memory.memsw.limit_in_bytes"))
    end)

    it("names the file and the value of a failed write", function()
      local cg, err = cgroups.new("/d/c", { cpu = { idle = 1 } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("write `[^']*/d/c/cpu.idle' = 1: No such file or directory", err.msg)
      assert.are.equal("ENOENT", err.sym)
    end)

    it("refuses unified on a v1-only machine, and wrong types naming the field", function()
      local cg, err = cgroups.new("/d/c", { unified = { ["memory.high"] = "1" } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("cgroup v2 is not mounted", err.msg)
      cg, err = cgroups.new("/d/c", '{"memory":{"limit":"lots"}}', fake.opts)
      assert.is_nil(cg)
      assert.matches("linux.resources.memory.limit: expected an integer", err.msg)
      cg, err = cgroups.new("/d/c", '{"blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":"0"}]}}', fake.opts)
      assert.is_nil(cg)
      assert.matches("linux.resources.blockIO.throttleReadBpsDevice%[0%].minor: expected an integer", err.msg)
      assert.are.equal("EINVAL", err.sym)
      assert(cgroups.new("/d/c", "null", fake.opts)) -- JSON null: no resources
      cg, err = cgroups.new("/d/c", '{"memory":{"swappiness":101}}', fake.opts)
      assert.is_nil(cg)
      assert.matches("swappiness", err.msg)
    end)

    it("removes every directory it created when a step fails, and only those", function()
      -- /d exists; /d/new/deep does not: mkdir makes it, and the fake has no cpuset files in
      -- it to inherit (a cpuset that cannot be read)
      local cg, err = cgroups.new("/d/new/deep", { pids = { limit = 5 } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("cpuset/d/new/cpuset.cpus", err.msg, 1, true)
      for name in pairs(fake.hier) do
        assert.is_nil(core.stat(fake:dir(name, "/d/new")), name)
        assert.is_truthy(core.stat(fake:dir(name, "/d")), name)
      end
    end)

    it("tells an OOM kill from memory.oom_control alone", function()
      assert.is_true(cgroups.oom_killed("/d/c", fake.opts)) -- the fake's oom_kill 2
      fake:cgroup("/d/e", { ["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" })
      assert.is_false(cgroups.oom_killed("/d/e", fake.opts))
      assert.is_false(cgroups.oom_killed("/d/none", fake.opts))
      assert.is_false(cgroups.oom_killed("", fake.opts))
    end)

    it("adds a pid to every hierarchy, lists, measures and freezes", function()
      assert(cgroups.new("/d/c", nil, fake.opts))
      assert(cgroups.add("/d/c", 4242, fake.opts))
      for name in pairs(fake.hier) do
        assert.are.same({ "4242" }, fake:lines(name, "/d/c", "cgroup.procs"), name)
      end
      assert.are.same({ 4242 }, assert(cgroups.processes("/d/c", fake.opts)))
      local s = assert(cgroups.stat("/d/c", fake.opts))
      assert.are.equal(4096, s.memory_usage)
      assert.are.equal(math.huge, s.memory_limit)
      assert.are.equal(8192, s.memory_max_usage)
      assert.are.equal(11, s.memory_cache)
      assert.are.equal(21, s.memory_rss)
      assert.are.equal(2, s.oom_kill)
      assert.are.equal(123456789, s.cpu_usage)
      assert.are.equal(100000000, s.cpu_user)
      assert.are.equal(23456789, s.cpu_system)
      assert.are.equal(3, s.cpu_throttled_periods)
      assert.are.equal(5000, s.cpu_throttled_time)
      assert.are.equal(3, s.pids_current)
      -- the fake freezer.state says THAWED until written: the write is what it reads back
      assert(cgroups.freeze("/d/c", fake.opts))
      assert.are.equal("FROZEN", fake:value("freezer", "/d/c", "freezer.state"))
      io.open(fake:dir("freezer", "/d/c") .. "/freezer.state", "w"):close()
      assert(cgroups.thaw("/d/c", fake.opts))
      assert.are.equal("THAWED", fake:value("freezer", "/d/c", "freezer.state"))
    end)
  end)

  describe("v2 resources", function()
    before_each(function()
      fake = fake_mod.new("v2")
      fake:cgroup("/d")
      fake:cgroup("/d/c")
    end)

    local function v(file) return fake:value("unified", "/d/c", file) end

    it("writes no value a new cgroup holds already: pids.max max is not written where it made the cgroup", function()
      -- /d/n is made by this call; the fake gives it no files, so that any write there fails
      local ok, err = cgroups.new("/d/n", { pids = { limit = -1 } }, fake.opts)
      assert.is_truthy(ok, err and err.msg)
      assert.is_nil(core.stat(fake:dir("unified", "/d/n") .. "/pids.max"))
      -- one that was there already is written
      assert(cgroups.new("/d/c", { pids = { limit = -1 } }, fake.opts))
      assert.are.same({ "max" }, fake:lines("unified", "/d/c", "pids.max"))
    end)

    it("reads cgroup.controllers once: what a level offers is what its parent enabled", function()
      -- the root's list was read with the layout; /d's file says nothing the create may use
      local f = io.open(fake:dir("unified", "/d") .. "/cgroup.controllers", "w") f:write("bogus\n") f:close()
      assert(cgroups.new("/d/c/e", nil, fake.opts))
      assert.are.same({ "+cpuset", "+cpu", "+io", "+memory", "+hugetlb", "+pids" },
        fake:lines("unified", "/d", "cgroup.subtree_control"))
    end)

    it("tells an OOM kill from memory.events alone", function()
      assert.is_true(cgroups.oom_killed("/d/c", fake.opts)) -- the fake's oom_kill 1
      fake:cgroup("/d/e", { ["memory.events"] = "low 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 4\n" })
      assert.is_false(cgroups.oom_killed("/d/e", fake.opts))
    end)

    it("converts shares to cpu.weight as runc does", function()
      for _, case in ipairs({ { 1024, "39" }, { 2, "1" }, { 262144, "10000" }, { 512, "20" } }) do
        assert(cgroups.new("/d/c", { cpu = { shares = case[1] } }, fake.opts))
        assert.are.equal(case[2], v("cpu.weight"), "shares " .. case[1])
      end
    end)

    it("writes cpu.max as quota period, max period, and quota alone", function()
      assert(cgroups.new("/d/c", { cpu = { quota = 50000, period = 100000 } }, fake.opts))
      assert.are.equal("50000 100000", v("cpu.max"))
      assert(cgroups.new("/d/c", { cpu = { quota = -1, period = 250000 } }, fake.opts))
      assert.are.equal("max 250000", v("cpu.max"))
      assert(cgroups.new("/d/c", { cpu = { quota = 20000 } }, fake.opts))
      assert.are.equal("20000", v("cpu.max"))
      local cg, err = cgroups.new("/d/c", { cpu = { realtimeRuntime = 5 } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("not supported on cgroup v2", err.msg)
    end)

    it("writes memory.max, memory.swap.max = swap - limit, memory.low", function()
      assert(cgroups.new("/d/c", { memory = { limit = 67108864, swap = 100663296,
        reservation = 1048576, swappiness = 5, kernel = 7 } }, fake.opts))
      assert.are.equal("67108864", v("memory.max"))
      assert.are.equal("33554432", v("memory.swap.max"))
      assert.are.equal("1048576", v("memory.low"))
      assert(cgroups.new("/d/c", { memory = { limit = 1000, swap = 1000 } }, fake.opts))
      assert.are.equal("0", v("memory.swap.max"))
      assert(cgroups.new("/d/c", { memory = { limit = -1 } }, fake.opts))
      assert.are.equal("max", v("memory.max"))
      assert.are.equal("max", v("memory.swap.max"))
      local cg, err = cgroups.new("/d/c", { memory = { limit = 2000, swap = 1000 } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("below the memory limit", err.msg)
    end)

    it("writes pids, io, cpuset, hugetlb", function()
      assert(cgroups.new("/d/c", {
        pids = { limit = 0 }, cpu = { cpus = "1", mems = "0" },
        blockIO = { weight = 500, throttleReadBpsDevice = { { major = 8, minor = 0, rate = 1048576 } },
          throttleWriteIOPSDevice = { { major = 8, minor = 0, rate = 120 } } },
        hugepageLimits = { { pageSize = "2MB", limit = 2097152 } },
      }, fake.opts))
      assert.are.equal("max", v("pids.max"))
      assert.are.equal("1", v("cpuset.cpus"))
      assert.are.equal("0", v("cpuset.mems"))
      assert.are.equal(tostring(1 + math.floor((500 - 10) * 9999 / 990)), v("io.weight"))
      assert.are.same({ "8:0 rbps=1048576", "8:0 wiops=120" }, fake:lines("unified", "/d/c", "io.max"))
      assert.are.equal("2097152", v("hugetlb.2MB.max"))
      local cg, err = cgroups.new("/d/c", { hugepageLimits = { { pageSize = "../2MB", limit = 1 } } },
        fake.opts)
      assert.is_nil(cg)
      assert.matches("pageSize", err.msg)
    end)

    it("enables the parent's controllers in cgroup.subtree_control on the way down", function()
      assert(cgroups.new("/d/c", { pids = { limit = 3 } }, fake.opts))
      local root = fake.tmp .. "/sys/fs/cgroup"
      local got = assert(core.read_file(root .. "/cgroup.subtree_control"))
      for _, c in ipairs({ "+cpu", "+cpuset", "+io", "+memory", "+hugetlb", "+pids" }) do
        assert.is_truthy(got:find(c .. "\n", 1, true), c)
      end
      got = assert(core.read_file(root .. "/d/cgroup.subtree_control"))
      assert.is_truthy(got:find("+pids\n", 1, true))
    end)

    it("writes unified keys, and refuses keys with / or .. before writing anything", function()
      assert(cgroups.new("/d/c", { memory = { limit = 1000 },
        unified = { ["memory.max"] = "2000", ["cpu.idle"] = "1" } }, fake.opts))
      -- unified comes last and wins
      assert.are.same({ "1000", "2000" }, fake:lines("unified", "/d/c", "memory.max"))
      assert.are.equal("1", v("cpu.idle"))
      for _, key in ipairs({ "../memory.max", "sub/memory.max", "..", "memory..max" }) do
        local cg, err = cgroups.new("/d/c", { unified = { ["pids.max"] = "1", [key] = "1" } }, fake.opts)
        assert.is_nil(cg, key)
        assert.are.equal("EINVAL", err.sym)
      end
      assert.are.same({}, fake:lines("unified", "/d/c", "pids.max"))
    end)

    it("makes an eBPF device filter of the rules, last rule first (recorded on a fake tree)", function()
      assert(cgroups.new("/d/c", { devices = {
        { allow = false, access = "rwm" }, { allow = true, type = "c", major = 1, minor = 3 },
        { allow = true, type = "c", access = "m" }, { allow = false, type = "b", major = 8, access = "w" } } },
        fake.opts))
      assert.are.same({ "deny b 8:* w", "allow c *:* m", "allow c 1:3 rwm", "deny a *:* rwm" },
        fake:lines("unified", "/d/c", "devices.bpf"))
    end)

    it("denies every device for an empty list, and attaches nothing for allow-all", function()
      assert(cgroups.new("/d/c", { devices = {} }, fake.opts))
      assert.are.same({ "deny" }, fake:lines("unified", "/d/c", "devices.bpf"))
      fake:cgroup("/d/f") -- rules before one that matches everything never decide
      assert(cgroups.new("/d/f", { devices = { { allow = true, type = "c", major = 1, minor = 3 },
        { allow = false, type = "a", access = "mwr" } } }, fake.opts))
      assert.are.same({ "deny a *:* mwr" }, fake:lines("unified", "/d/f", "devices.bpf"))
      fake:cgroup("/d/e")
      fake:cgroup("/d/e")
      assert(cgroups.new("/d/e", { devices = { { allow = false, access = "rwm" },
        { allow = true, access = "rwm" } } }, fake.opts))
      assert.are.same({}, fake:lines("unified", "/d/e", "devices.bpf"))
    end)

    it("refuses malformed device rules before writing anything", function()
      for _, bad in ipairs({
        { { allow = "yes" } }, { { allow = true, type = "x" } }, { { allow = true, access = "rwx" } },
        { { allow = true, access = "" } }, { { allow = true, type = "c", major = 2 ^ 32 } },
      }) do
        local cg, err = cgroups.new("/d/c", { devices = bad }, fake.opts)
        assert.is_nil(cg)
        assert.are.equal("EINVAL", err.sym)
        assert.matches("linux.resources.devices%[0%]", err.msg)
      end
      assert.are.same({}, fake:lines("unified", "/d/c", "devices.bpf"))
    end)

    it("removes every directory it created when a write fails, and only those", function()
      -- /d exists; /d/new/deep does not: mkdir makes it empty, the first write fails
      local cg, err = cgroups.new("/d/new/deep", { pids = { limit = 5 } }, fake.opts)
      assert.is_nil(cg)
      assert.matches("write `[^']*/d/new/deep/pids.max' = 5: No such file or directory", err.msg)
      assert.is_nil(core.stat(fake:dir("unified", "/d/new")))
      assert.is_truthy(core.stat(fake:dir("unified", "/d")))
    end)

    it("adds, measures from v2 files and freezes through cgroup.freeze", function()
      assert(cgroups.add("/d/c", 77, fake.opts))
      assert.are.same({ "77" }, fake:lines("unified", "/d/c", "cgroup.procs"))
      assert.are.same({ 77 }, assert(cgroups.processes("/d/c", fake.opts)))
      local s = assert(cgroups.stat("/d/c", fake.opts))
      assert.are.equal(5000, s.memory_usage)
      assert.are.equal(2, s.oom)
      assert.are.equal(1, s.oom_kill)
      assert.are.equal(30, s.memory_rss)
      assert.are.equal(40, s.memory_cache)
      assert.are.equal(1500000, s.cpu_usage)
      assert.are.equal(1000000, s.cpu_user)
      assert.are.equal(4, s.cpu_throttled_periods)
      assert.are.equal(7000, s.cpu_throttled_time)
      assert.are.equal(2, s.pids_current)
      assert(cgroups.freeze("/d/c", fake.opts))
      assert.are.equal("1", v("cgroup.freeze"))
      local _, err = cgroups.stat("/d/none", fake.opts)
      assert.are.equal("ENOENT", err.sym)
    end)
  end)

  describe("hybrid", function()
    it("uses v1 for the controllers and the unified mount for hugetlb and unified keys", function()
      fake = fake_mod.new("hybrid")
      fake:cgroup("/d")
      fake:cgroup("/d/c")
      assert(cgroups.new("/d/c", { memory = { limit = 4096 },
        hugepageLimits = { { pageSize = "2MB", limit = 0 } },
        unified = { ["hugetlb.2MB.max"] = "max" } }, fake.opts))
      assert.are.equal("4096", fake:value("memory", "/d/c", "memory.limit_in_bytes"))
      assert.are.same({ "0", "max" }, fake:lines("unified", "/d/c", "hugetlb.2MB.max"))
      assert.are.same({}, fake:lines("unified", "/d/c", "memory.max"))
      assert(cgroups.add("/d/c", 99, fake.opts))
      assert.are.same({ "99" }, fake:lines("unified", "/d/c", "cgroup.procs"))
      assert.are.same({ "99" }, fake:lines("systemd", "/d/c", "cgroup.procs"))
    end)
  end)
end)

-- ------------------------------------------------------------------ the real hierarchy

local function sh_ok(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == 0 end

local function uuid()
  local s = assert(core.read_file("/proc/sys/kernel/random/uuid"))
  return s:sub(1, 8)
end

describe("cgroups on this machine #root", function()
  local top, path, procs, tmp
  local layout = cgroups.layout()
  local usable = layout and layout.mode ~= "none"

  before_each(function()
    top = "/ctrlua-test-" .. uuid()
    path = top .. "/x"
    procs = {}
    tmp = require("support.tmp").dir("cg")
  end)

  after_each(function()
    for _, pr in ipairs(procs) do core.kill(pr.pid, 9) end
    cgroups.thaw(path) -- a frozen task cannot die
    for _, pr in ipairs(procs) do pr.handle:close() end
    local ok1, e1 = cgroups.delete(path)
    local ok2, e2 = cgroups.delete(top)
    core.remove_tree(tmp)
    assert(ok1, e1 and e1.msg)
    assert(ok2, e2 and e2.msg)
    for _, dir in pairs(assert(cgroups.dirs(top))) do
      assert.is_nil(core.stat(dir), dir)
    end
  end)

  -- start `sh -c SCRIPT` that waits until it is in our cgroup before going on
  local function start(script)
    local cmd = ("sh -c 'echo $$; while ! grep -q %s /proc/$$/cgroup; do sleep 0.02; done; %s' 2>/dev/null")
      :format(top:sub(2), script)
    local h = assert(io.popen(cmd))
    local pid = tonumber(h:read("*l"))
    procs[#procs + 1] = { pid = pid, handle = h }
    return pid
  end

  local function wait_for(pred, secs)
    local deadline = core.monotime() + (secs or 5)
    while core.monotime() < deadline do
      if pred() then return true end
      sh_ok("sleep 0.02")
    end
    return pred()
  end

  it("creates with limits, reads every file back, and deletes every directory", function()
    if not usable then pending("no cgroups mounted") return end
    local cg = assert(cgroups.new(path, { memory = { limit = 64 * 1048576 },
      cpu = { shares = 512, quota = 50000, period = 100000 }, pids = { limit = 20 } }))
    local d = assert(cg:dirs())
    for _, dir in pairs(d) do assert.are.equal("directory", assert(core.stat(dir)).type) end
    local function read(dir, file) return (assert(core.read_file(dir .. "/" .. file)):gsub("%s+$", "")) end
    if layout.mode == "v2" then
      assert.are.equal(tostring(64 * 1048576), read(d.memory, "memory.max"))
      assert.are.equal("50000 100000", read(d.cpu, "cpu.max"))
      assert.are.equal("20", read(d.cpu, "cpu.weight"))
      assert.are.equal("20", read(d.pids, "pids.max"))
    else
      assert.are.equal(tostring(64 * 1048576), read(d.memory, "memory.limit_in_bytes"))
      assert.are.equal("512", read(d.cpu, "cpu.shares"))
      assert.are.equal("50000", read(d.cpu, "cpu.cfs_quota_us"))
      assert.are.equal("100000", read(d.cpu, "cpu.cfs_period_us"))
      assert.are.equal("20", read(d.pids, "pids.max"))
      if d.cpuset then assert.are_not.equal("", read(d.cpuset, "cpuset.cpus")) end
    end
    local s = assert(cg:stat())
    assert.are.equal(64 * 1048576, s.memory_limit)
    assert.are.equal(20, s.pids_limit)
    assert.are.equal(0, s.pids_current)
    assert(cg:delete())
    for _, dir in pairs(d) do assert.is_nil(core.stat(dir), dir) end
    assert(cg:delete()) -- missing is success
  end)

  it("is made and deleted through a hierarchy read once", function()
    if not usable then pending("no cgroups mounted") return end
    local given = { hierarchy = assert(cgroups.hierarchy()) }
    local cg = assert(cgroups.new(path, { pids = { limit = 20 } }, given))
    local d = assert(cgroups.dirs(path, given))
    assert.are.same(assert(cgroups.dirs(path)), d)
    for _, dir in pairs(d) do assert.are.equal("directory", assert(core.stat(dir)).type) end
    assert.is_false(cgroups.oom_killed(path, given))
    assert(cgroups.delete(path, given))
    for _, dir in pairs(d) do assert.is_nil(core.stat(dir), dir) end
    assert(cg:delete())
  end)

  it("gives a new cgroup its parent's cpuset through the kernel: the levels it makes have clone_children", function()
    if not usable or not layout.v1 or not cgroups.dirs(top).cpuset then pending("no v1 cpuset") return end
    local root = assert(cgroups.dirs(top)).cpuset:gsub("/[^/]*$", "")
    local function read(dir, file) return (assert(core.read_file(dir .. "/" .. file)):gsub("%s+$", "")) end
    -- a parent narrower than the root: what the container gets can only come from it
    local cpus = read(root, "cpuset.cpus")
    local first = cpus:match("^(%d+)")
    local cg = assert(cgroups.new(path, nil))
    local d = assert(cg:dirs())
    local top_dir = d.cpuset:gsub("/x$", "")
    assert.are.equal("1", read(top_dir, "cgroup.clone_children"))
    assert.are.equal(read(top_dir, "cpuset.cpus"), read(d.cpuset, "cpuset.cpus"))
    assert.are.equal(read(top_dir, "cpuset.mems"), read(d.cpuset, "cpuset.mems"))
    assert(cg:delete())
    -- the parent narrowed: the next container below it has the parent's cpus, not the root's
    local function put(file, v) local f = assert(io.open(top_dir .. "/" .. file, "w")) f:write(v .. "\n") f:close() end
    put("cpuset.cpus", first)
    cg = assert(cgroups.new(path, nil))
    assert.are.equal(first, read(d.cpuset, "cpuset.cpus"))
    assert(cg:delete())
    -- a parent made by someone else, without clone_children: filled from it all the same
    put("cgroup.clone_children", "0")
    cg = assert(cgroups.new(path, nil))
    assert.are.equal(first, read(d.cpuset, "cpuset.cpus"))
    assert.are.equal(read(top_dir, "cpuset.mems"), read(d.cpuset, "cpuset.mems"))
    assert(cg:delete())
  end)

  it("refuses a bad limit with the file and value, leaving nothing behind", function()
    if not usable or layout.mode == "v2" then pending("v1 cpu.shares") return end
    local cg, err = cgroups.new(path, { cpu = { shares = 1 } })
    assert.is_nil(cg)
    assert.matches("minimum allowed is 2", err.msg)
    for _, dir in pairs(assert(cgroups.dirs(top))) do assert.is_nil(core.stat(dir), dir) end
  end)

  it("adds a real process, measures it, lists it, freezes and thaws it", function()
    if not usable then pending("no cgroups mounted") return end
    local cg = assert(cgroups.new(path, { pids = { limit = 20 }, memory = { limit = 64 * 1048576 } }))
    local counter = tmp .. "/counter"
    local pid = start(("i=0; while :; do i=$((i+1)); echo $i > %s; sleep 0.01; done"):format(counter))
    assert(cg:add(pid))
    assert.is_true(wait_for(function() return core.read_file(counter) ~= nil end))
    local listed = assert(cg:processes())
    local found = false
    for _, p in ipairs(listed) do found = found or p == pid end
    assert.is_true(found)
    local s = assert(cg:stat())
    assert.is_true(s.pids_current >= 1)
    assert.is_true(s.memory_usage > 0)
    assert.is_truthy(s.cpu_usage)
    assert.is_true(wait_for(function() return assert(cg:stat()).cpu_usage > 0 end))

    assert(cg:freeze())
    local a = core.read_file(counter)
    sh_ok("sleep 0.3")
    assert.are.equal(a, core.read_file(counter))
    local d = cg:dirs()
    if d.freezer then
      assert.are.equal("FROZEN", (core.read_file(d.freezer .. "/freezer.state"):gsub("%s+$", "")))
    end
    assert(cg:thaw())
    assert.is_true(wait_for(function() return core.read_file(counter) ~= a end))

    core.kill(pid, 9)
    procs[1].handle:close()
    procs = {}
    assert.is_true(wait_for(function() return #assert(cg:processes()) == 0 end))
    assert(cg:delete())
    for _, dir in pairs(d) do assert.is_nil(core.stat(dir), dir) end
  end)

  it("OOM-kills an allocation past the memory limit and counts it", function()
    if not usable then pending("no cgroups mounted") return end
    -- swap = limit: no swap to escape into
    local cg = assert(cgroups.new(path, { memory = { limit = 32 * 1048576, swap = 32 * 1048576 } }))
    local pid = start([[x=$(head -c 200m /dev/zero | tr "\0" a); echo survived]])
    assert(cg:add(pid))
    local out = procs[1].handle:read("*a")
    procs[1].handle:close()
    procs = {}
    assert.are_not.matches("survived", out)
    local s = assert(cg:stat())
    assert.is_true((s.oom_kill or 0) >= 1, "oom_kill " .. tostring(s.oom_kill))
    assert.is_true(s.memory_max_usage == nil or s.memory_max_usage > 16 * 1048576)
  end)
end)

-- ------------------------------------------------------------------ the eBPF device filter

describe("cgroup v2 eBPF device filter on this machine #root", function()
  local layout = cgroups.layout()
  local unified = layout and layout.unified and layout.unified.mountpoint
  local dir, tmp, top, mountinfo

  local function rules(list) return core.json_encode(core.json_array(list)) end

  before_each(function()
    tmp = require("support.tmp").dir("cgbpf")
    if unified then
      top = "/ctrlua-test-" .. uuid()
      dir = unified .. top
      assert(core.mkdir(dir, 493))
    end
  end)

  after_each(function()
    -- every shell of a test has exited: the cgroups are empty
    local errs = {}
    if unified then
      for _, d in ipairs({ dir .. "/c", dir }) do
        if core.stat(d) then
          local ok, msg = core.rmdir(d)
          if not ok then errs[#errs + 1] = msg end
        end
      end
      assert.is_nil(core.stat(dir), dir)
    end
    core.remove_tree(tmp)
    assert.are.same({}, errs)
  end)

  -- run `script` in a shell that first moves itself into cgroup directory `d`; its output
  local function run_in(d, script)
    local h = assert(io.popen(("echo $$ > %s/cgroup.procs || exit 99; %s 2>&1; echo end")
      :format(d, script)))
    local out = h:read("*a")
    h:close()
    assert.matches("end\n$", out)
    return out
  end

  -- "ok NAME" or "denied NAME" per check, run in the cgroup
  local function probe(d, checks)
    local parts = {}
    for _, c in ipairs(checks) do
      parts[#parts + 1] = ("if %s >/dev/null 2>&1; then echo 'ok %s'; else echo 'denied %s'; fi")
        :format(c[2], c[1], c[1])
    end
    -- the shell's own >/dev/null would need /dev/null: send to a file instead
    local script = table.concat(parts, "; "):gsub(">/dev/null 2>&1", ">" .. tmp .. "/o 2>&1")
    local out = run_in(d, script)
    local seen = {}
    for verdict, name in out:gmatch("(%a+) ([%w_]+)\n") do seen[name] = verdict end
    return seen
  end

  local read_null = { "read_null", "cat /dev/null" }
  local write_null = { "write_null", "sh -c 'echo x > /dev/null'" }
  local rdwr_null = { "rdwr_null", "sh -c 'exec 3<>/dev/null'" }
  local read_zero = { "read_zero", "head -c1 /dev/zero" }
  local read_full = { "read_full", "head -c1 /dev/full" }
  local function mknod(name, t, ma, mi)
    return { name, ("mknod %s/%s %s %d %d"):format(tmp, name, t, ma, mi) }
  end

  it("allows /dev/null only after deny-all: reads it, cannot open /dev/zero nor mknod c 1:5", function()
    if not unified then pending("no cgroup2 mount") return end
    assert(core.cgroup_device_filter(dir, rules({ { allow = false, access = "rwm" },
      { allow = true, type = "c", major = 1, minor = 3, access = "rwm" } })))
    local r = probe(dir, { read_null, write_null, read_zero, mknod("z", "c", 1, 5), mknod("n", "c", 1, 3) })
    assert.are.same({ read_null = "ok", write_null = "ok", read_zero = "denied", z = "denied", n = "ok" }, r)
    -- the kernel's own words: EPERM
    assert.matches("Operation not permitted", run_in(dir, "head -c1 /dev/zero"))
    -- outside the cgroup nothing changed
    local f = assert(io.open("/dev/zero", "rb"))
    assert.are.equal("\0", f:read(1))
    f:close()
  end)

  it("honours wildcards and access bits: c *:* m, r without w, deny w refuses read-write", function()
    if not unified then pending("no cgroup2 mount") return end
    assert(core.cgroup_device_filter(dir, rules({ { allow = false, access = "rwm" },
      { allow = true, type = "c", access = "m" }, { allow = true, type = "c", major = 1, minor = 3, access = "r" } })))
    local r = probe(dir, { read_null, write_null, mknod("z", "c", 1, 5), mknod("b", "b", 7, 0),
      { "read_made", "head -c1 " .. tmp .. "/z" } })
    assert.are.same({ read_null = "ok", write_null = "denied", z = "ok", b = "denied", read_made = "denied" }, r)

    local sub = dir .. "/c"
    assert(core.mkdir(sub, 493))
    assert(core.cgroup_device_filter(sub, rules({ { allow = true, access = "rwm" },
      { allow = false, type = "c", major = 1, minor = 3, access = "w" } })))
    -- the parent's program runs too (BPF_F_ALLOW_MULTI): both must allow
    r = probe(sub, { read_null, write_null, rdwr_null, read_zero })
    assert.are.same({ read_null = "ok", write_null = "denied", rdwr_null = "denied", read_zero = "denied" }, r)
  end)

  it("lets the last matching rule win", function()
    if not unified then pending("no cgroup2 mount") return end
    assert(core.cgroup_device_filter(dir, rules({ { allow = false, access = "rwm" },
      { allow = true, type = "c", access = "rwm" },
      { allow = false, type = "c", major = 1, minor = 5, access = "rwm" } })))
    local r = probe(dir, { read_null, read_zero, read_full })
    assert.are.same({ read_null = "ok", read_zero = "denied", read_full = "ok" }, r)

    local sub = dir .. "/c"
    assert(core.mkdir(sub, 493))
    assert(core.cgroup_device_filter(sub, rules({ { allow = false, type = "c", major = 1, minor = 3 },
      { allow = true, access = "rwm" } })))
    -- /dev/null is denied first and allowed after: allowed (the parent still refuses /dev/zero)
    r = probe(sub, { read_null, read_zero, read_full })
    assert.are.same({ read_null = "ok", read_zero = "denied", read_full = "ok" }, r)
  end)

  it("denies every device for an empty list", function()
    if not unified then pending("no cgroup2 mount") return end
    assert(core.cgroup_device_filter(dir, "[]"))
    local r = probe(dir, { read_null, read_zero, mknod("n", "c", 1, 3) })
    assert.are.same({ read_null = "denied", read_zero = "denied", n = "denied" }, r)
  end)

  it("refuses a directory that is not cgroup2, and malformed rules, naming them", function()
    if not unified then pending("no cgroup2 mount") return end
    local ok, msg, errno = core.cgroup_device_filter(tmp, "[]")
    assert.is_nil(ok)
    assert.matches("not a cgroup v2 directory", msg)
    assert.are.equal(95, errno)
    ok, msg = core.cgroup_device_filter(dir, rules({ { allow = true, access = "rwx" } }))
    assert.is_nil(ok)
    assert.matches("devices%[0%]%.access: `rwx'", msg)
  end)

  it("is what cgroups.new attaches when devices has no v1 hierarchy (a v2-only mountinfo)", function()
    if not unified then pending("no cgroup2 mount") return end
    -- this machine seen as pure v2: only its cgroup2 mount in the mountinfo given
    local line
    for l in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      if l:match(" %- cgroup2 ") and l:find(" " .. unified .. " ", 1, true) then line = l end
    end
    assert.is_truthy(line)
    assert(core.write_file(tmp .. "/mountinfo", line .. "\n"))
    mountinfo = { mountinfo = tmp .. "/mountinfo" }
    local cg = assert(cgroups.new(top .. "/c", { devices = { { allow = false, access = "rwm" },
      { allow = true, type = "c", major = 1, minor = 3, access = "rwm" } } }, mountinfo))
    local r = probe(dir .. "/c", { read_null, read_zero })
    assert.are.same({ read_null = "ok", read_zero = "denied" }, r)
    assert(cg:delete())
    assert.is_nil(core.stat(dir .. "/c"))
  end)
end)

describe("cgroup v2: the init cloned into its cgroup #root", function()
  local BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
  local IMAGE_TAR = os.getenv("CTRLUA_TEST_IMAGE") or "build/images/busybox.oci.tar"
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

  it("is in its cgroup from its first instruction: a pid written to cgroup.procs would not count", function()
    if not sh_ok("command -v unshare") then pending("no unshare") return end
    local tmp = require("support.tmp").dir("cg2")
    local T, id = "ctrlua-test-" .. uuid(), "cg2-" .. uuid()
    local c = ("%s --root %s/root --state %s/state"):format(q(BIN), q(tmp), q(tmp))
    -- this machine seen as pure v2 (its cgroup2 mount alone at /sys/fs/cgroup, in a mount
    -- namespace of the test's own), and the container's cgroup.procs covered by a plain
    -- file: a pid written there reaches no cgroup, so only a clone into the cgroup puts the
    -- init in it
    local script = table.concat({
      "set -e",
      "umount -R /sys/fs/cgroup",
      "mount -t cgroup2 none /sys/fs/cgroup",
      ("mkdir -p /sys/fs/cgroup/%s/c"):format(T),
      (": > %s/procs"):format(q(tmp)),
      ("mount --bind %s/procs /sys/fs/cgroup/%s/c/cgroup.procs"):format(q(tmp), T),
      ("%s images.lua import %s >/dev/null"):format(c, q(IMAGE_TAR)),
      ("%s run.lua -d --cpu-shares 0 --cgroup /%s/c ctrlua.test/busybox:latest %s sleep 30 >/dev/null")
        :format(c, T, id),
      ("umount /sys/fs/cgroup/%s/c/cgroup.procs"):format(T),
      ("pid=$(%s tasks.lua ls | awk '$1 == %q { print $2 }')"):format(c, id),
      ("cat /proc/$pid/cgroup > %s/cgroup"):format(q(tmp)),
      ("%s tasks.lua delete -f %s"):format(c, id),
      ("%s containers.lua delete %s"):format(c, id),
      ("rmdir /sys/fs/cgroup/%s/c /sys/fs/cgroup/%s/default /sys/fs/cgroup/%s 2>/dev/null || true"):format(T, T, T),
    }, "\n")
    local ok = os.execute(("unshare -m --propagation private sh -c %s >%s/out 2>&1"):format(q(script), q(tmp)))
    local out = core.read_file(tmp .. "/out") or ""
    local cg = core.read_file(tmp .. "/cgroup") or ""
    local written = core.read_file(tmp .. "/procs") or "?"
    core.remove_tree(tmp)
    assert(ok == true or ok == 0, out)
    assert.matches("0::/" .. T .. "/c\n", cg, 1, true)
    assert.are.equal("", written)
  end)
end)

describe("the v1 grace period begun at a run's start #root", function()
  local BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
  local IMAGE_TAR = os.getenv("CTRLUA_TEST_IMAGE") or "build/images/busybox.oci.tar"
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  local function v1_procs()
    local l = assert(cgroups.layout())
    if l.mode ~= "v1" and l.mode ~= "hybrid" then return nil end
    local h = l.v1[1]
    return h.mountpoint .. (h.own ~= "" and "/" .. h.own or "") .. "/cgroup.procs"
  end
  -- the lines of an strace -f log that open `procs' for writing, and writes of "0"
  local function traced(log, procs)
    local opened, zero = false, false
    for line in io.lines(log) do
      if line:find('openat(AT_FDCWD, "' .. procs .. '", O_WRONLY', 1, true) then opened = true end
      if opened and line:find('write%(%d+, "0", 1%)%s+= 1') then zero = true end
    end
    return opened, zero
  end

  it("moves a child into the cgroup this process is in, changes nothing, and reaps it", function()
    local procs = v1_procs()
    if not procs then pending("no cgroup v1 hierarchy here") return end
    if not core.stat("/usr/bin/strace") then pending("no strace") return end
    local before = assert(core.read_file("/proc/self/cgroup"))
    local pid = assert(cgroups.warm_attach())
    assert.is_true(pid > 0)
    assert.is_true(cgroups.warm_done(pid))
    assert.is_nil(core.stat("/proc/" .. pid)) -- reaped: no zombie left
    assert.are.equal(before, assert(core.read_file("/proc/self/cgroup")))
    local tmp = require("support.tmp").dir("warm")
    local code = "local c = require('ctr.cgroups') assert(c.warm_done(assert(c.warm_attach())))"
    assert(core.write_file(tmp .. "/warm.lua", code))
    -- (CTRLUA_LUA: under `make asan`, the instrumented host that runs the specs)
    local r = os.execute(("strace -f -qq -e trace=openat,write -o %s/log %s %s/warm.lua"):format(q(tmp),
      os.getenv("CTRLUA_LUA") or "luajit", q(tmp)))
    local opened, zero = traced(tmp .. "/log", procs)
    core.remove_tree(tmp)
    assert(r == 0 or r == true, "the traced warm_attach failed")
    assert.is_true(opened, "no open of " .. procs)
    assert.is_true(zero, "no write of 0 to " .. procs)
  end)

  -- strace -f of `run --rm [flags]` in a store of its own: what its processes opened for
  -- writing in the container's cgroups, and whether run began the grace period (`procs')
  local function traced_run(flags, procs)
    local tmp = require("support.tmp").dir("warm")
    local ns, id = "ctrlua-test-" .. uuid(), "warm-" .. uuid()
    local c = ("%s --root %s/root --state %s/state -n %s"):format(q(BIN), q(tmp), q(tmp), ns)
    local ok = os.execute(("%s images.lua import %s >/dev/null"):format(c, q(IMAGE_TAR)))
    assert(ok == true or ok == 0, "import")
    local log = tmp .. "/log"
    ok = os.execute(("strace -f -qq -e trace=openat,write -o %s %s run.lua --rm %s ctrlua.test/busybox:latest %s /bin/true >/dev/null 2>&1")
      :format(q(log), c, flags, id))
    local res = { ok = ok == true or ok == 0, warm = (traced(log, procs)), tasks = 0, zero = 0, procs = 0 }
    local mine = "/" .. ns .. "/" .. id .. "/"
    local opened_tasks = {}
    for line in io.lines(log) do
      local pid, path = line:match('^(%d+)%s+openat%(AT_FDCWD, "(/sys/fs/cgroup/[^"]*)", O_WRONLY')
      if path and path:find(mine, 1, true) then
        if path:sub(-#"/tasks") == "/tasks" then
          res.tasks = res.tasks + 1
          opened_tasks[pid] = true
        elseif path:sub(-#"/cgroup.procs") == "/cgroup.procs" then
          res.procs = res.procs + 1
        end
      end
      -- (the call's start: another process's line may come between it and its result)
      local wpid = line:match('^(%d+)%s+write%(%d+, "0[\\n]*", %d')
      if wpid and opened_tasks[wpid] then res.zero = res.zero + 1 end
    end
    core.remove_tree(tmp)
    return res
  end

  it("is begun by run only for an init in a new user namespace, and not with --cgroup ''", function()
    local procs = v1_procs()
    if not procs then pending("no cgroup v1 hierarchy here") return end
    if not core.stat("/usr/bin/strace") then pending("no strace") return end
    local plain = traced_run("", procs)
    local userns = traced_run("--uidmap 0:100000:65536 --gidmap 0:100000:65536", procs)
    local none = traced_run("--cgroup ''", procs)
    assert.is_true(plain.ok and userns.ok and none.ok, "run --rm")
    assert.is_false(plain.warm, "run began the grace period for an init that joins its cgroups itself")
    assert.is_true(userns.warm, "run did not begin the grace period for an init in a user namespace")
    assert.is_false(none.warm, "run --cgroup '' began it")
  end)

  it("an init in the host's user namespace moves itself into its v1 cgroups: no cgroup.procs write", function()
    local procs = v1_procs()
    if not procs then pending("no cgroup v1 hierarchy here") return end
    if not core.stat("/usr/bin/strace") then pending("no strace") return end
    local plain = traced_run("", procs)
    assert.is_true(plain.ok, "run --rm")
    assert.is_true(plain.tasks > 0, "no v1 hierarchy's tasks file of the container was opened")
    assert.is_true(plain.zero >= plain.tasks, "each tasks file opened gets \"0\": the init moving itself")
    assert.are.equal(0, plain.procs, "the init's pid was written to a cgroup.procs")
    -- in a user namespace the host's cgroup files are not the init's to write: the parent does
    local userns = traced_run("--uidmap 0:100000:65536 --gidmap 0:100000:65536", procs)
    assert.is_true(userns.ok, "run --rm --uidmap")
    assert.are.equal(0, userns.tasks)
    assert.is_true(userns.procs > 0, "no cgroup.procs write for an init in a user namespace")
  end)
end)
