-- exec into a running container: `tasks.lua exec` (containerd's Task.Exec) and `ctrlua-runc
-- exec` (runc's), with real containers; the kernel (/proc/PID/ns, /proc/PID/status,
-- cgroup.procs) is the check that the new process is inside.
local core = require("ctr.core")
local S = require("support.ctrlua")
local B = require("support.bundle")

local IMAGE = S.IMAGE

local function alive(pid)
  local data = core.read_file("/proc/" .. pid .. "/stat", 4096)
  local state = data and data:match(".*%)%s(%S)")
  return state ~= nil and state ~= "Z"
end

local function caps_of(status_text)
  local t = {}
  for k, v in status_text:gmatch("(Cap%a+):%s*(%x+)") do t[k] = v end
  return t
end

describe("tasks exec #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    if not env then return end
    for _, id in ipairs(core.listdir(env:state_dir()) or {}) do
      local st = env:task_status(id)
      if st then
        env:run("tasks.lua", "delete", "-f", id)
        if st.monitor_pid and alive(st.monitor_pid) then core.kill(st.monitor_pid, 9) end
      end
    end
    env:destroy()
    env = nil
  end)
  teardown(function() S.cleanup() end)

  local function tasks(...) return env:run("tasks.lua", ...) end

  -- a detached container whose init records what it sees, then sleeps
  local function start(id)
    local r = env:run("run.lua", "-d", IMAGE, id, "sh", "-c",
      "echo only-in-here >/marker; hostname >/init-host; cat /proc/self/cgroup >/init-cg; " ..
      "touch /ready; exec sleep 100")
    assert.are.equal(0, r.code, r.stderr)
    local rootfs = env:state_dir() .. "/" .. id .. "/rootfs"
    S.until_true(function() return core.stat(rootfs .. "/ready") end, 10, "the init")
    return env:task_status(id).pid, rootfs
  end

  it("runs in the init's namespaces, root, cgroup and capabilities; the exit code comes back", function()
    local pid = start("x1")
    local r = tasks("exec", "--exec-id", "e1", "x1", "sh", "-c",
      "echo pid=$$; cat /marker; hostname; cat /proc/self/cgroup; " ..
      "for n in ipc mnt net pid uts cgroup; do " ..
      "[ \"$(readlink /proc/self/ns/$n)\" = \"$(readlink /proc/1/ns/$n)\" ] || echo ns-differs $n; done; " ..
      "grep ^Cap /proc/self/status; exit 3")
    assert.are.equal(3, r.code, r.stderr)
    local out = r.stdout
    -- its pid namespace: a small pid, the init is 1
    local mypid = tonumber(out:match("pid=(%d+)"))
    assert.truthy(mypid and mypid < 10, out)
    -- its root: a file only the container has
    assert.truthy(out:find("only-in-here", 1, true), out)
    local rootfs = env:state_dir() .. "/x1/rootfs"
    assert.truthy(out:find(S.slurp(rootfs .. "/init-host"), 1, true), out)
    assert.truthy(out:find(S.slurp(rootfs .. "/init-cg"), 1, true), out)
    assert.is_nil(out:find("ns-differs", 1, true), out)
    -- and none of them is ours
    assert.are_not.equal(core.readlink("/proc/self/ns/pid"), core.readlink("/proc/" .. pid .. "/ns/pid"))
    assert.are_not.equal(core.readlink("/proc/self/ns/mnt"), core.readlink("/proc/" .. pid .. "/ns/mnt"))
    -- the capabilities of the init, exactly
    local want = caps_of(assert(core.read_file("/proc/" .. pid .. "/status")))
    local got = caps_of(out)
    assert.truthy(want.CapEff)
    assert.are.same(want, got)
    assert.are.equal("0000000000000000", got.CapInh)
  end)

  it("--cwd, --env and --user apply; the spec's env is kept", function()
    start("x2")
    local r = tasks("exec", "--exec-id", "e2", "--cwd", "/tmp", "--env", "FOO=bar",
      "--user", "1000:1001", "x2", "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g) $PATH; grep ^CapEff /proc/self/status")
    assert.are.equal(0, r.code, r.stderr)
    assert.truthy(r.stdout:find("bar /tmp 1000:1001 /", 1, true), r.stdout)
    assert.truthy(r.stdout:find("/usr/bin", 1, true), r.stdout)
    -- a non-root user keeps no effective capabilities (as runc)
    assert.truthy(r.stdout:find("CapEff:%s*0000000000000000"), r.stdout)
  end)

  it("a missing command is a clear error with 127, and leaves no process behind", function()
    local pid = start("x3")
    local r = tasks("exec", "--exec-id", "e3", "x3", "no-such-cmd")
    assert.are.equal(127, r.code)
    assert.truthy(r.stderr:find("no-such-cmd': executable file not found in $PATH", 1, true), r.stderr)
    local procs = tasks("ps", "x3")
    assert.are.equal(0, procs.code, procs.stderr)
    local n = 0
    for _ in procs.stdout:gmatch("\n%d+") do n = n + 1 end
    assert.are.equal(1, n, procs.stdout)
    assert.truthy(procs.stdout:find("\n" .. pid .. "%s"), procs.stdout)
    -- a directory is found but cannot be executed
    r = tasks("exec", "--exec-id", "e3", "x3", "/tmp")
    assert.are_not.equal(0, r.code)
  end)

  it("CVE-2019-5736: a link or #! to /proc/self/exe never runs the host's binary inside", function()
    local _, rootfs = start("x4")
    local r = tasks("exec", "--exec-id", "e4", "x4", "sh", "-c",
      "ln -s /proc/self/exe /evil && printf '#!/proc/self/exe\\n' >/evil.sh && chmod +x /evil.sh")
    assert.are.equal(0, r.code, r.stderr)
    for _, prog in ipairs({ "/evil", "/evil.sh" }) do
      r = tasks("exec", "--exec-id", "e4", "x4", prog)
      assert.are_not.equal(0, r.code, prog)
      assert.truthy(r.stderr:find("CVE-2019-5736", 1, true), r.stderr)
    end
    -- and /proc/self/exe named directly
    r = tasks("exec", "--exec-id", "e4", "x4", "/proc/self/exe", "x")
    assert.truthy(r.stderr:find("CVE-2019-5736", 1, true), r.stderr)
    -- a normal script still runs through its interpreter, with its arguments
    r = tasks("exec", "--exec-id", "e4", "x4", "sh", "-c",
      "printf '#!/bin/sh -e\\necho script \"$0\" \"$@\"\\n' >/ok.sh && chmod +x /ok.sh && /ok.sh a b")
    assert.are.equal(0, r.code, r.stderr)
    r = tasks("exec", "--exec-id", "e4", "x4", "/ok.sh", "a", "b c")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("script /ok.sh a b c\n", r.stdout)
    assert.truthy(core.stat(rootfs .. "/ok.sh"))
  end)

  it("-d leaves the process running; errors: no exec-id, a stopped task", function()
    local _, rootfs = start("x5")
    local t0 = core.monotime()
    local r = tasks("exec", "-d", "--exec-id", "e5", "x5", "sh", "-c", "sleep 1; echo done >/detached")
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(core.monotime() - t0 < 1)
    S.until_true(function() return core.stat(rootfs .. "/detached") end, 10, "the detached exec")

    r = tasks("exec", "x5", "true")
    assert.are.equal(1, r.code)
    assert.truthy(r.stderr:find('Required flag "exec-id" not set', 1, true), r.stderr)

    assert.are.equal(0, tasks("kill", "-s", "KILL", "x5").code)
    S.until_true(function() return tasks("ls").stdout:match("x5%s+%d+%s+STOPPED") end, 10, "stopped")
    r = tasks("exec", "--exec-id", "e5", "x5", "true")
    assert.are.equal(1, r.code)
    assert.truthy(r.stderr:find("cannot exec in a stopped task", 1, true), r.stderr)
  end)
end)

describe("ctrlua-runc exec #root", function()
  local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
  local q = B.q
  local dir, root, cg

  local function rc(...)
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = q(a) end
    local cmd = ("%s --root %s %s >%s 2>%s </dev/null"):format(q(BIN), q(root),
      table.concat(args, " "), q(dir .. "/out"), q(dir .. "/err"))
    local ok, _, code = os.execute(cmd)
    if type(ok) == "number" then code = ok >= 256 and math.floor(ok / 256) or ok end
    return B.slurp(dir .. "/out"), B.slurp(dir .. "/err"), code
  end
  local function must(...)
    local out, err, code = rc(...)
    assert(code == 0, ("ctrlua-runc %s: exit %s: %s"):format(table.concat({ ... }, " "),
      tostring(code), err))
    return out
  end

  before_each(function()
    dir = B.tmpdir()
    root = dir .. "/root"
    cg = "/ctrlua-exec-spec/" .. dir:match("[^/]+$")
    assert(core.mkdir(dir .. "/b", 493))
    B.make(dir .. "/b", { args = { "sleep", "60" }, edit = function(spec)
      spec.linux.cgroupsPath = cg
    end })
    must("run", "-d", "--bundle", dir .. "/b", "r1")
  end)

  after_each(function()
    os.execute(q(BIN) .. " --root " .. q(root) .. " delete --force r1 >/dev/null 2>&1")
    require("ctr.cgroups").delete(cg)
    require("ctr.cgroups").delete("/ctrlua-exec-spec")
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  it("with args: the container's pid namespace and hostname, the exit code", function()
    local out, err, code = rc("exec", "r1", "sh", "-c", "echo $$ $(hostname); exit 5")
    assert.are.equal(5, code, err)
    local pid, host = out:match("^(%d+) (%S+)\n$")
    assert.truthy(tonumber(pid) < 10, out)
    assert.are.equal("ctrlua-test", host)
    out = must("exec", "--env", "A=1", "--cwd", "/tmp", "--user", "65534:65534", "r1",
      "sh", "-c", "echo $A $(pwd) $(id -u)")
    assert.are.equal("1 /tmp 65534\n", out)
  end)

  it("with --process, -d and --pid-file: a process in the init's namespaces and cgroup", function()
    local proc = B.default_spec().process
    proc.args = core.json_array({ "sh", "-c", "echo from-process-file >/tmp/pf; exec sleep 30" })
    proc.cwd = "/tmp"
    assert(core.write_file(dir .. "/process.json", core.json_encode(proc)))
    must("exec", "--process", dir .. "/process.json", "-d", "--pid-file", dir .. "/exec.pid", "r1")
    local pid = tonumber(B.slurp(dir .. "/exec.pid"))
    assert.truthy(pid)
    local init = core.json_decode(must("state", "r1")).pid
    for _, ns in ipairs({ "pid", "mnt", "net", "ipc", "uts" }) do
      assert.are.equal(core.readlink("/proc/" .. init .. "/ns/" .. ns),
        core.readlink("/proc/" .. pid .. "/ns/" .. ns), ns)
    end
    local pids = assert(require("ctr.cgroups").processes(cg))
    local found = false
    for _, p in ipairs(pids) do found = found or p == pid end
    assert.is_true(found, "exec pid " .. pid .. " in the container's cgroup")
    B.until_true(function() return core.stat(dir .. "/b/rootfs/tmp/pf") end, 10, "the process")
    -- the init's status is not changed by it
    assert.are.equal("running", core.json_decode(must("state", "r1")).status)
  end)

  it("errors as runc's: exit 255, `exec failed: ...'", function()
    local _, err, code = rc("exec", "nope", "true")
    assert.are.equal(255, code)
    assert.truthy(err:find("exec failed: container does not exist", 1, true), err)
    _, err, code = rc("exec", "r1", "no-such-cmd")
    assert.are.equal(255, code)
    assert.truthy(err:find("exec failed: exec: `no-such-cmd': executable file not found in $PATH", 1, true), err)
  end)
end)
