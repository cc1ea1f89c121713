-- ctrlua-runc: the runc-compatible front end, driven as containerd's shim drives runc (the
-- binary, its global flags, its state directory), with real bundles, real containers and the
-- kernel's view (/proc/PID/stat, the cgroup directories) as the check.
local core = require("ctr.core")
local runc = require("ctr.cmd.runc")
local B = require("support.bundle")
local S = require("support.ctrlua")

local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
local q = B.q

describe("ctr.cmd.runc library", function()
  it("parses signals as runc does: names with or without SIG, any case, numbers", function()
    for _, c in ipairs({ { "KILL", 9 }, { "SIGKILL", 9 }, { "sigterm", 15 }, { "9", 9 },
      { "HUP", 1 }, { "SIGUSR1", 10 }, { "WINCH", 28 }, { "RTMIN+1", 35 }, { "64", 64 } }) do
      assert.are.equal(c[2], runc.parse_signal(c[1]), c[1])
    end
    for _, bad in ipairs({ "NOPE", "0", "65", "SIG", "1.5" }) do
      local v, err = runc.parse_signal(bad)
      assert.is_nil(v, bad)
      assert.truthy(tostring(err):find(bad, 1, true))
    end
    assert.has_error(function() runc.parse_signal(9) end)
  end)

  it("writes log lines in logrus's text and json formats", function()
    local j = core.json_decode(runc.log_line("json", "error", "boom \"x\""))
    assert.are.equal("error", j.level)
    assert.are.equal("boom \"x\"", j.msg)
    assert.truthy(j.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
    local t = runc.log_line("text", "error", "container does not exist")
    assert.truthy(t:match('^time="[^"]+" level=error msg="container does not exist"\n$'))
  end)

  it("reads the state and start time of a process from /proc/PID/stat", function()
    local state, start = runc.proc_info(core.getpid())
    assert.are.equal("R", state)
    assert.is_number(start)
    assert.is_nil(runc.proc_info(2 ^ 22 + 1))
  end)
end)

describe("ctrlua-runc #root", function()
  local dir, root, cg

  -- run the binary: stdout, stderr, exit code (the container's output goes to stdout too)
  local function rc(...)
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = q(a) end
    local cmd = ("%s --root %s %s >%s 2>%s </dev/null"):format(q(BIN), q(root),
      table.concat(args, " "), q(dir .. "/out"), q(dir .. "/err"))
    local ok, how, code = os.execute(cmd)
    if type(ok) == "number" then code = ok >= 256 and math.floor(ok / 256) or ok end
    return B.slurp(dir .. "/out"), B.slurp(dir .. "/err"), code
  end
  local function must(...)
    local out, err, code = rc(...)
    assert(code == 0, ("ctrlua-runc %s: exit %s: %s"):format(table.concat({ ... }, " "),
      tostring(code), err))
    return out
  end
  local function state(id) return core.json_decode(must("state", id)) end
  -- the host's mountinfo lines under the test's directory (other tests may mount elsewhere)
  local function mounts_here()
    local found = {}
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      if line:find(dir, 1, true) then found[#found + 1] = line end
    end
    return found
  end

  -- a bundle in dir/NAME (default b) whose cgroup is cg (cg .. "-" .. NAME for another name)
  local function bundle(args, edit, name)
    local b = dir .. "/" .. (name or "b")
    core.mkdir(b, 493)
    B.make(b, { args = args, edit = function(spec)
      spec.linux.cgroupsPath = name and (cg .. "-" .. name) or cg
      if edit then edit(spec) end
    end })
    return b
  end

  before_each(function()
    dir = B.tmpdir()
    root = dir .. "/root"
    cg = "/ctrlua-runc-spec/" .. dir:match("[^/]+$")
    assert(core.mkdir(dir .. "/b", 493))
  end)

  after_each(function()
    -- nothing a test made may stay: containers (killed), cgroups, mounts, files
    for _, id in ipairs(core.listdir(root) or {}) do os.execute(q(BIN) .. " --root " .. q(root) .. " delete --force " .. q(id) .. " >/dev/null 2>&1") end
    require("ctr.cgroups").delete(cg)
    require("ctr.cgroups").delete(cg .. "-b2")
    require("ctr.cgroups").delete("/ctrlua-runc-spec")
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  it("create leaves an init waiting on the fifo, start runs it, delete removes state and cgroup", function()
    local b = bundle({ "sh", "-c", "echo started >/tmp/mark; sleep 30" })
    must("create", "--bundle", b, "--pid-file", dir .. "/pid", "c1")
    local st = state("c1")
    assert.are.equal("created", st.status)
    assert.are.equal(b, st.bundle)
    assert.are.equal("c1", st.id)
    assert.are.equal(tonumber(B.slurp(dir .. "/pid")), st.pid)
    -- the init is alive, waiting, and no process of ours supervises it
    assert.truthy(runc.proc_info(st.pid))
    assert.is_nil(core.stat(b .. "/rootfs/tmp/mark"))
    local sdir = core.stat(root .. "/c1")
    assert.are.equal("directory", sdir.type)
    assert.are.equal(448, sdir.mode % 4096)
    local dirs = assert(require("ctr.cgroups").dirs(cg))
    local cgdir = select(2, next(dirs))
    assert.truthy(core.stat(cgdir))

    must("start", "c1")
    assert.are.equal("running", state("c1").status)
    B.until_true(function() return core.stat(b .. "/rootfs/tmp/mark") end, 10, "the process")
    local _, err, code = rc("start", "c1")
    assert.are.equal(1, code)
    assert.truthy(err:find("cannot start an already running container", 1, true))

    -- runc's refusal, then --force
    _, err, code = rc("delete", "c1")
    assert.are.equal(1, code)
    assert.truthy(err:find("cannot delete container c1 that is not stopped: running", 1, true))
    must("delete", "--force", "c1")
    assert.is_nil(core.stat(root .. "/c1"))
    assert.is_nil(core.stat(cgdir))
    assert.is_true(not runc.proc_info(st.pid) or runc.proc_info(st.pid) == "Z")
    _, err, code = rc("state", "c1")
    assert.are.equal(1, code)
    assert.truthy(err:find("container does not exist", 1, true))
  end)

  it("kill takes runc's signal names and numbers, and the status follows the init", function()
    local b = bundle({ "sleep", "30" })
    must("create", "--bundle", b, "k1")
    must("start", "k1")
    local pid = state("k1").pid
    local _, err, code = rc("kill", "k1", "NOSUCH")
    assert.are.equal(1, code)
    assert.truthy(err:find("unknown signal", 1, true))
    must("kill", "k1", "SIGKILL")
    B.until_true(function() return state("k1").status == "stopped" end, 10, "stopped")
    assert.are.equal(0, state("k1").pid)
    _, err, code = rc("kill", "k1", "9")
    assert.are.equal(1, code)
    assert.truthy(err:find("container not running", 1, true))
    must("delete", "k1")
    assert.is_nil(core.stat(root .. "/k1"))
    assert.is_true(pid > 0)
  end)

  it("kill --all signals every process of the container's cgroup", function()
    local b = bundle({ "sh", "-c", "sleep 30 & sleep 30 & wait" })
    must("run", "-d", "--bundle", b, "a1")
    local pids
    B.until_true(function()
      pids = core.json_decode(must("ps", "--format", "json", "a1"))
      return #pids == 3
    end, 10, "three processes")
    must("kill", "--all", "a1", "KILL")
    B.until_true(function() return state("a1").status == "stopped" end, 10, "stopped")
    for _, p in ipairs(pids) do
      local s = runc.proc_info(p)
      assert.is_true(s == nil or s == "Z", tostring(p))
    end
  end)

  it("run in the foreground gives the container's output and exit code, and deletes it", function()
    local b = bundle({ "sh", "-c", "echo out-line; exit 7" })
    local out, _, code = rc("run", "--bundle", b, "r1")
    assert.are.equal(7, code)
    assert.are.equal("out-line\n", out)
    assert.is_nil(core.stat(root .. "/r1"))
    -- a signal: 128+N
    -- (in the host's pid namespace: a pid 1 ignores signals it has no handler for)
    bundle({ "sh", "-c", "kill -TERM $$; sleep 5" }, function(spec)
      local ns = {}
      for _, n in ipairs(spec.linux.namespaces) do
        if n.type ~= "pid" then ns[#ns + 1] = n end
      end
      spec.linux.namespaces = core.json_array(ns)
    end)
    _, _, code = rc("run", "--bundle", b, "r2")
    assert.are.equal(143, code)
  end)

  it("a reused pid is not the container: the start time tells", function()
    local b = bundle({ "true" })
    must("run", "-d", "--bundle", b, "p1")
    B.until_true(function() return state("p1").status == "stopped" end, 10, "stopped")
    -- point the record at a live process (ourselves) with another start time
    local path = root .. "/p1/state.json"
    local rec = core.json_decode(assert(core.read_file(path)))
    rec.pid = core.getpid()
    rec.start_time = select(2, runc.proc_info(core.getpid())) + 1
    assert(core.write_file(path, core.json_encode(rec)))
    assert.are.equal("stopped", state("p1").status)
    rec.start_time = rec.start_time - 1
    assert(core.write_file(path, core.json_encode(rec)))
    assert.are.equal("running", state("p1").status)
    rec.pid = 2 ^ 22 + 1
    assert(core.write_file(path, core.json_encode(rec)))
    must("delete", "p1")
  end)

  it("list prints runc's table, its json and -q", function()
    local b = bundle({ "sleep", "30" })
    must("create", "--bundle", b, "l1")
    must("run", "-d", "--bundle", bundle({ "sleep", "30" }, nil, "b2"), "l2")
    local out = must("list")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.truthy(lines[1]:match("^ID%s+PID%s+STATUS%s+BUNDLE%s+CREATED%s+OWNER$"))
    assert.truthy(lines[2]:match("^l1%s+%d+%s+created%s+" .. b:gsub("%p", "%%%0") .. "%s+%S+Z%s+root$"))
    assert.truthy(lines[3]:match("^l2%s+%d+%s+running%s"))
    -- columns line up (Go's tabwriter)
    assert.are.equal(lines[1]:find("STATUS"), lines[2]:find("created"))
    assert.are.equal("l1\nl2\n", must("list", "-q"))
    local j = core.json_decode(must("list", "--format", "json"))
    assert.are.equal(2, #j)
    assert.are.equal("l1", j[1].id)
    assert.are.equal("running", j[2].status)
    local _, err, code = rc("delete", "l1")
    assert.are.equal(1, code)
    assert.truthy(err:find("cannot delete container l1 that is not stopped: created", 1, true))
    must("delete", "--force", "l1")
    assert.are.equal("running", state("l2").status)
    must("delete", "--force", "l2")
    assert.are.equal("null\n", must("list", "--format", "json"))
  end)

  it("pause and resume freeze the cgroup; ps and events --stats read it", function()
    local b = bundle({ "sleep", "30" }, function(spec)
      spec.linux.resources = { memory = { limit = 64 * 1048576 } }
    end)
    must("run", "-d", "--bundle", b, "z1")
    local pid = state("z1").pid
    assert.are.same({ pid }, core.json_decode(must("ps", "--format", "json", "z1")))
    local table_out = must("ps", "z1")
    assert.truthy(table_out:match("^%s*UID%s+PID"))
    assert.truthy(table_out:find("sleep 30", 1, true))
    must("pause", "z1")
    assert.are.equal("paused", state("z1").status)
    -- the kernel's word: v1 freezer.state, or v2 cgroup.freeze
    local frozen = false
    for _, d in pairs(assert(require("ctr.cgroups").dirs(cg))) do
      local v1 = core.read_file(d .. "/freezer.state")
      local v2 = core.read_file(d .. "/cgroup.freeze")
      if (v1 and v1:match("^FROZEN")) or (v2 and v2:match("^1")) then frozen = true end
    end
    assert.is_true(frozen)
    local _, err, code = rc("resume", "z2")
    assert.are.equal(1, code)
    assert.truthy(err:find("container does not exist", 1, true))
    must("resume", "z1")
    assert.are.equal("running", state("z1").status)
    _, err, code = rc("resume", "z1")
    assert.are.equal(1, code)
    assert.truthy(err:find("container not paused", 1, true))
    local ev = core.json_decode(must("events", "--stats", "z1"))
    assert.are.equal("stats", ev.type)
    assert.are.equal("z1", ev.id)
    assert.are.equal(64 * 1048576, ev.data.memory.usage.limit)
    assert.is_true(ev.data.pids.current >= 1)
  end)

  it("global flags: --log with --log-format json, --systemd-cgroup refused, --version", function()
    local log = dir .. "/log.json"
    local _, err, code = rc("--log", log, "--log-format", "json", "state", "nope")
    assert.are.equal(1, code)
    assert.are.equal("container does not exist\n", err)
    local line = core.json_decode((assert(B.slurp(log)):match("[^\n]+")))
    assert.are.equal("error", line.level)
    assert.are.equal("container does not exist", line.msg)
    assert.is_string(line.time)
    -- as runc, it matters to the commands that make a cgroup only
    local o = io.popen(q(BIN) .. " --root " .. q(root) .. " --systemd-cgroup create --bundle " ..
      q(dir) .. " sd1 2>&1; echo rc=$?")
    out = o:read("*a")
    o:close()
    assert.truthy(out:find("systemd", 1, true))
    assert.truthy(out:find("rc=1", 1, true))
    assert.is_nil(core.stat(root .. "/sd1"))
    local _
    _, _, code = rc("--systemd-cgroup", "list")
    assert.are.equal(0, code)
    o = io.popen(q(BIN) .. " --version")
    assert.truthy(o:read("*a"):match("^ctrlua%-runc version %S+\nspec: "))
    o:close()
  end)

  it("create refuses a tty without a console socket, an existing id, a bad id", function()
    local b = bundle({ "true" }, function(spec) spec.process.terminal = true end)
    local _, err, code = rc("create", "--bundle", b, "t1")
    assert.are.equal(1, code)
    assert.truthy(err:find("cannot allocate tty if runc will detach without setting console socket", 1, true))
    assert.is_nil(core.stat(root .. "/t1"))
    bundle({ "sleep", "30" })
    must("create", "--bundle", b, "t2")
    _, err, code = rc("create", "--bundle", b, "t2")
    assert.are.equal(1, code)
    assert.truthy(err:find("already exists", 1, true))
    _, err, code = rc("create", "--bundle", b, "../x")
    assert.are.equal(1, code)
    assert.truthy(err:find("invalid id format", 1, true))
    _, err, code = rc("create", "--bundle", dir, "t3")
    assert.are.equal(1, code)
    assert.truthy(err:find("config.json not found", 1, true))
  end)

  it("spec writes runc's default config.json and refuses to overwrite it", function()
    local d = dir .. "/s"
    assert(core.mkdir(d, 493))
    must("spec", "--bundle", d)
    local mine = core.json_decode(assert(core.read_file(d .. "/config.json")))
    assert.are.equal("sh", mine.process.args[1])
    assert.is_true(mine.process.terminal)
    assert.are.equal("runc", mine.hostname)
    local _, err, code = rc("spec", "--bundle", d)
    assert.are.equal(1, code)
    assert.truthy(err:find("exists. Remove it first", 1, true))
    if core.stat("/usr/sbin/runc") then
      local r = dir .. "/r"
      assert(core.mkdir(r, 493))
      B.sh("/usr/sbin/runc spec --bundle " .. q(r))
      assert.are.same(core.json_decode(assert(core.read_file(r .. "/config.json"))), mine)
    end
    local rl = dir .. "/rl"
    assert(core.mkdir(rl, 493))
    must("spec", "--rootless", "--bundle", rl)
    local spec = core.json_decode(assert(core.read_file(rl .. "/config.json")))
    assert.are.equal(core.geteuid(), spec.linux.uidMappings[1].hostID)
  end)

  it("features lists what the runtime supports", function()
    local f = core.json_decode(must("features"))
    assert.are.equal("1.0.0", f.ociVersionMin)
    assert.truthy(table.concat(f.hooks, " "):find("createContainer", 1, true))
    assert.truthy(table.concat(f.linux.namespaces, " "):find("user", 1, true))
    assert.truthy(table.concat(f.linux.seccomp.actions, " "):find("SCMP_ACT_ERRNO", 1, true))
    assert.is_false(f.linux.cgroup.systemd)
  end)
  describe("net.* sysctls and the network namespace joined by path (as runc's isHostNetNS)", function()
    -- a per-namespace sysctl that is harmless to get wrong, set to a value the host does not have
    local KEY, FILE = "net.ipv4.tcp_keepalive_probes", "/proc/sys/net/ipv4/tcp_keepalive_probes"
    local host_value, netns
    before_each(function() host_value = assert(core.read_file(FILE)) end)
    after_each(function()
      if core.read_file(FILE) ~= host_value then
        -- (a /proc/sys file takes a plain write, not core.write_file's rename)
        local f = assert(io.open(FILE, "w"))
        f:write(host_value)
        f:close()
      end
      if netns then S.netns_del(netns) end
      netns = nil
    end)
    local function other_value() return tostring(tonumber(host_value) + 1) end

    local function sysctl_bundle(path)
      return bundle({ "cat", FILE }, function(spec)
        for _, n in ipairs(spec.linux.namespaces) do
          if n.type == "network" then n.path = path end
        end
        spec.linux.sysctl = { [KEY] = other_value() }
      end)
    end

    it("refuses one in the caller's network namespace joined as /proc/PID/ns/net, and writes nothing", function()
      local mounts = mounts_here()
      local b = sysctl_bundle("/proc/" .. core.getpid() .. "/ns/net")
      local out, err, code = rc("run", "--bundle", b, "n1")
      assert.are.equal(1, code, out)
      -- (runc's log line escapes the quotes around the name)
      assert.truthy(err:find('sysctl \\?"' .. KEY:gsub("%.", "%%.") .. '\\?" not allowed in host network namespace'), err)
      assert.are.equal(host_value, core.read_file(FILE))
      assert.is_nil(core.stat(root .. "/n1"))
      assert.are.same(mounts, mounts_here())
      for _, d in pairs(require("ctr.cgroups").dirs(cg) or {}) do assert.is_nil(core.stat(d), d) end
    end)

    it("allows one in another network namespace joined by path, and writes it there only", function()
      netns = S.netns(dir)
      local b = sysctl_bundle(netns)
      local out, err, code = rc("run", "--bundle", b, "n2")
      assert.are.equal(0, code, err)
      assert.are.equal(other_value() .. "\n", out)
      assert.are.equal(host_value, core.read_file(FILE))
      assert.are.equal(other_value() .. "\n", B.sh("nsenter --net=" .. q(netns) .. " cat " .. FILE))
    end)
  end)
  describe("root.path with a symlink in it (refused as runc refuses it)", function()
    local cases = {
      { name = "a relative root.path that is a symlink to the rootfs", edit = function(b)
        assert(core.symlink("rootfs", b .. "/link"))
        return "link"
      end },
      { name = "an absolute root.path through a symlinked directory", edit = function(b)
        assert(core.symlink(b, dir .. "/alias"))
        return dir .. "/alias/rootfs"
      end },
    }
    for i, case in ipairs(cases) do
      it("refuses " .. case.name .. ", and nothing is left", function()
        local mounts = mounts_here()
        local b = bundle({ "true" })
        local path = case.edit(b)
        local spec = core.json_decode(assert(core.read_file(b .. "/config.json")))
        spec.root.path = path
        assert(core.write_file(b .. "/config.json", core.json_encode(spec)))
        local id = "l" .. i
        local out, err, code = rc("run", "--bundle", b, id)
        assert.are.equal(1, code, out .. err)
        assert.truthy(err:find("invalid rootfs: not an absolute path, or a symlink", 1, true), err)
        assert.is_nil(core.stat(root .. "/" .. id))
        assert.are.same(mounts, mounts_here())
        for _, d in pairs(require("ctr.cgroups").dirs(cg) or {}) do assert.is_nil(core.stat(d), d) end
      end)
    end
  end)
  describe("a config with no mount namespace (its mounts are made in ours, as runc makes them)", function()
    local function without_mntns(spec)
      local ns = {}
      for _, n in ipairs(spec.linux.namespaces) do
        if n.type ~= "mount" then ns[#ns + 1] = n end
      end
      spec.linux.namespaces = core.json_array(ns)
    end

    it("is refused with masked or read-only paths (runc's validator), and nothing is mounted", function()
      local mounts = mounts_here()
      local b = bundle({ "sleep", "30" }, without_mntns)
      local out, err, code = rc("create", "--bundle", b, "h1")
      assert.are.equal(1, code, out)
      assert.truthy(err:find("unable to restrict sys entries without a private MNT namespace", 1, true), err)
      assert.is_nil(core.stat(root .. "/h1"))
      assert.are.same(mounts, mounts_here())
    end)

    it("with mounts only: delete -f takes down every mount it made under the bundle", function()
      local mounts = mounts_here()
      local b = bundle({ "sleep", "30" }, function(spec)
        without_mntns(spec)
        spec.linux.maskedPaths, spec.linux.readonlyPaths = nil, nil
      end)
      must("create", "--bundle", b, "h2")
      -- proc, sysfs, the /dev tmpfs, devpts, shm, mqueue, /run and the rootfs bind they sit on
      assert.truthy(#mounts_here() >= #mounts + 8, table.concat(mounts_here(), "\n"))
      must("delete", "-f", "h2")
      assert.are.same(mounts, mounts_here())
      assert.is_nil(core.stat(root .. "/h2"))
    end)
  end)
end)
