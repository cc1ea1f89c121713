-- The C runtime: a bundle becomes a running, confined process (core.create / start / wait).
-- Every test builds its own bundle in a fresh temporary directory and runs a real container;
-- checks read the container's own /proc and the host's /proc/self/mountinfo.
local core = require("ctr.core")
local B = require("support.bundle")

local arr = core.json_array

local function host_mountinfo() return assert(core.read_file("/proc/self/mountinfo")) end

local function mounts_mentioning(text)
  local n = 0
  for line in host_mountinfo():gmatch("[^\n]+") do
    if line:find(text, 1, true) then n = n + 1 end
  end
  return n
end

-- the children of this process (a leftover init would be one), from /proc/*/stat
local function leftover_children()
  local me = core.getpid()
  local left = {}
  for _, name in ipairs(assert(core.listdir("/proc"))) do
    if name:match("^%d+$") then
      local stat = core.read_file("/proc/" .. name .. "/stat")
      local comm, ppid = (stat or ""):match("%((.*)%) %S+ (%d+)")
      if tonumber(ppid) == me then left[#left + 1] = name .. " " .. comm end
    end
  end
  return left
end

describe("runtime #root", function()
  local dir
  before_each(function() dir = B.tmpdir() end)
  after_each(function()
    -- a container's mounts live in its own mount namespace; anything found here under the
    -- bundle is a leak, and is cleaned so the next test starts clean
    for line in host_mountinfo():gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. B.q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  local function run(opts)
    B.make(dir, opts)
    return B.run(dir)
  end

  local function sh(script, opts)
    opts = opts or {}
    opts.args = { "sh", "-c", script }
    return run(opts)
  end

  describe("exit codes", function()
    for _, c in ipairs({ 0, 1, 42 }) do
      it("gives the init's exit status " .. c, function()
        local code, info = sh("exit " .. c)
        assert.are.equal(c, code)
        assert.are.equal(c, info.status)
        assert.is_nil(info.signal)
      end)
    end

    it("gives 128+9 for an init killed with SIGKILL", function()
      B.make(dir, { args = { "sleep", "100" } })
      B.spawn(dir)
      B.until_true(function() return B.slurp(dir .. "/started") end, 10, "the container to start")
      local pid = tonumber(B.slurp(dir .. "/init.pid"))
      assert(core.kill(pid, 9))
      B.until_true(function() return B.slurp(dir .. "/result.json") end, 10, "the runner to finish")
      local r = B.result(dir)
      assert.are.equal(137, r.code)
      assert.are.equal(9, r.info.signal)
    end)
  end)

  describe("process", function()
    it("passes args and exactly process.env", function()
      local code, _, out = run({ args = { "sh", "-c", 'echo "$1|$FOO|$HOME"; env | sort', "x", "a  b" },
        env = { "FOO=bar baz" } })
      assert.are.equal(0, code)
      local first = out:match("^[^\n]*")
      assert.are.equal("a  b|bar baz|", first)
      -- sh adds PWD, SHLVL; nothing from the host's environment (HOME, LUA_PATH) gets in
      assert.is_nil(out:find("LUA_PATH", 1, true))
      assert.truthy(out:find("\nFOO=bar baz\n", 1, true))
    end)

    it("runs the init as pid 1 of its own pid namespace", function()
      local _, _, out = sh("echo $$; ps -o pid= | wc -l")
      assert.are.equal("1", out:match("^(%d+)\n"))
    end)

    it("joins a namespace given by path", function()
      local host_net = core.readlink("/proc/self/ns/net")
      local _, _, out = sh("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc", { edit = function(s)
        s.linux.namespaces[5] = { type = "network", path = "/proc/self/ns/net" }
      end })
      assert.are.equal(host_net, out:match("^[^\n]+"))
      local ipc = core.readlink("/proc/self/ns/ipc")
      assert.are_not.equal(ipc, out:match("\n([^\n]+)"))
    end)

    it("enters the rootfs with MS_MOVE and chroot when asked not to pivot", function()
      B.make(dir, { args = { "sh", "-c", "cat /proc/self/mountinfo | head -1; ls /" } })
      local code, _, out = B.run(dir, { no_pivot = true })
      assert.are.equal(0, code)
      assert.matches("\nbin\n", out)
    end)

    it("resets the signal dispositions the caller ignored", function()
      -- the runner is started by a shell that ignores SIGPIPE (`trap '' PIPE`)
      local _, _, out = run({ args = { "grep", "SigIgn", "/proc/self/status" } })
      assert.matches("SigIgn:%s+0000000000000000", out)
    end)

    it("sets the hostname", function()
      local _, _, out = sh("hostname", { hostname = "box-42" })
      assert.are.equal("box-42\n", out)
    end)

    it("starts in process.cwd", function()
      local _, _, out = sh("pwd", { cwd = "/tmp" })
      assert.are.equal("/tmp\n", out)
    end)

    it("applies rlimits", function()
      local _, _, out = sh("ulimit -n; ulimit -Hn", { edit = function(s)
        s.process.rlimits = arr({ { type = "RLIMIT_NOFILE", soft = 512, hard = 600 } })
      end })
      assert.are.equal("512\n600\n", out)
    end)

    it("sets uid, gid and additional gids", function()
      local code, _, out = sh("id", { user = { uid = 65534, gid = 65534, additionalGids = arr({ 1, 2 }) } })
      assert.are.equal(0, code)
      assert.matches("uid=65534%(nobody%) gid=65534%(nogroup%)", out)
      assert.matches("groups=.*1", out)
      assert.matches("groups=.*2", out)
    end)

    it("leaves no fd of the caller open in the container (CVE-2024-21626)", function()
      local _, _, out = sh("ls /proc/self/fd")
      -- 0 1 2, and 3: ls's own directory fd; the runner's un-CLOEXEC fd would be one more
      assert.are.same({ "0", "1", "2", "3" }, (function()
        local t = {}
        for w in out:gmatch("%S+") do t[#t + 1] = w end
        return t
      end)())
    end)
  end)

  describe("capabilities", function()
    it("gives root exactly the default sets, none inheritable or ambient (CVE-2022-29162)", function()
      local _, _, out = sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
      assert.matches("CapInh:%s+0000000000000000", out)
      assert.matches("CapPrm:%s+00000000a80425fb", out)
      assert.matches("CapEff:%s+00000000a80425fb", out)
      assert.matches("CapBnd:%s+00000000a80425fb", out)
      assert.matches("CapAmb:%s+0000000000000000", out)
      assert.matches("NoNewPrivs:%s+1", out)
    end)

    it("gives a non-root user its ambient set and no more", function()
      local _, _, out = sh("grep -E '^Cap' /proc/self/status", {
        user = { uid = 1000, gid = 1000 },
        edit = function(s)
          s.process.capabilities = {
            bounding = arr({ "CAP_NET_BIND_SERVICE", "CAP_CHOWN" }),
            effective = arr({ "CAP_NET_BIND_SERVICE" }), permitted = arr({ "CAP_NET_BIND_SERVICE" }),
            inheritable = arr({ "CAP_NET_BIND_SERVICE" }), ambient = arr({ "CAP_NET_BIND_SERVICE" }),
          }
        end,
      })
      assert.matches("CapInh:%s+0000000000000400", out)
      assert.matches("CapPrm:%s+0000000000000400", out)
      assert.matches("CapEff:%s+0000000000000400", out)
      assert.matches("CapBnd:%s+0000000000000401", out)
      assert.matches("CapAmb:%s+0000000000000400", out)
    end)

    it("refuses an unknown capability name at create", function()
      B.make(dir, { edit = function(s) s.process.capabilities.bounding[3] = "CAP_FOO" end })
      local pid, err, errno = B.run(dir)
      assert.is_nil(pid)
      assert.are.equal("config.json: process.capabilities.bounding[2]: unknown capability CAP_FOO", err)
      assert.are.equal(22, errno)
    end)
  end)

  describe("filesystem", function()
    it("has its own mount table with the rootfs as /", function()
      local _, _, out = sh("cat /proc/self/mountinfo")
      local first = out:match("^[^\n]+")
      assert.are.equal("/", first:match("^%S+ %S+ %S+ %S+ (%S+)"))
      for line in out:gmatch("[^\n]+") do
        local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
        assert.truthy(mp == "/" or mp:match("^/proc") or mp:match("^/dev") or mp:match("^/sys")
          or mp == "/run", "unexpected mount " .. mp)
      end
    end)

    it("masks /proc/kcore and /proc/keys", function()
      local _, _, out = sh("wc -c < /proc/keys; test -e /proc/kcore && wc -c < /proc/kcore; grep -c ' /proc/keys ' /proc/self/mountinfo")
      local keys, rest = out:match("^(%d+)\n(.*)$")
      assert.are.equal("0", keys)
      if core.stat("/proc/kcore") then
        assert.matches("^0\n", rest)
      end
      assert.matches("1\n$", out)
    end)

    it("mounts /sys read-only", function()
      local _, _, out = sh("mkdir /sys/fs/x 2>&1; echo rc=$?")
      assert.matches("Read%-only file system", out)
      assert.matches("rc=1", out)
    end)

    it("binds host directories read-only and read-write", function()
      local host = dir .. "/hostdata"
      assert(core.mkdir(host))
      assert(core.write_file(host .. "/hello", "hi\n"))
      local code, _, out = sh("cat /ro/hello; echo a > /rw/from-rw; echo $?; echo b > /ro/from-ro 2>/dev/null; echo $?", {
        mounts = {
          { destination = "/ro", type = "bind", source = host, options = arr({ "rbind", "ro" }) },
          { destination = "/rw", type = "bind", source = host, options = arr({ "rbind", "rw" }) },
        } })
      assert.are.equal(0, code)
      assert.are.equal("hi\n0\n1\n", out)
      assert.are.equal("a\n", B.slurp(host .. "/from-rw"))
      assert.is_nil(core.stat(host .. "/from-ro"))
    end)

    it("binds a host file onto a file it creates", function()
      local f = dir .. "/host-file"
      assert(core.write_file(f, "file content\n"))
      local _, _, out = sh("cat /etc/extra/conf", { mounts = {
        { destination = "/etc/extra/conf", type = "bind", source = f, options = arr({ "bind", "ro" }) } } })
      assert.are.equal("file content\n", out)
    end)

    it("mounts a tmpfs with a size", function()
      local _, _, out = sh("df -k /scratch | tail -1", { mounts = {
        { destination = "/scratch", type = "tmpfs", source = "tmpfs", options = arr({ "size=1m", "mode=700" }) } } })
      assert.are.equal("1024", out:match("^%S+%s+(%d+)"))
    end)

    it("creates the default devices and /dev links", function()
      local _, _, out = sh("ls -l /dev/null /dev/zero /dev/urandom /dev/tty; for l in fd stdin ptmx; do readlink /dev/$l; done")
      assert.matches("crw%-rw%-rw%-%s+1 root%s+root%s+1,%s+3 [^\n]* /dev/null", out)
      assert.matches("1,%s+5 [^\n]* /dev/zero", out)
      assert.matches("5,%s+0 [^\n]* /dev/tty", out)
      assert.matches("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n", out)
    end)

    it("makes the root read-only with root.readonly", function()
      local _, _, out = sh("touch /x 2>&1; echo rc=$?", { edit = function(s) s.root.readonly = true end })
      assert.matches("Read%-only", out)
    end)
  end)

  describe("errors", function()
    it("fails create with ENOENT naming a missing binary, leaving nothing behind", function()
      B.make(dir, { args = { "nope" } })
      local before = mounts_mentioning(dir)
      local pid, err, errno = core.create(dir, { exec_fifo = dir .. "/exec.fifo" })
      assert.is_nil(pid)
      assert.are.equal(2, errno)
      assert.are.equal("exec: `nope': executable file not found in $PATH", err)
      assert.are.equal(0, before)
      assert.are.equal(0, mounts_mentioning(dir))
      assert.are.same({}, leftover_children())
      assert.is_nil(core.stat(dir .. "/exec.fifo"))
    end)

    it("fails create with EACCES for a file that is not executable", function()
      B.make(dir, { args = { "/bin/notexec" } })
      assert(core.write_file(dir .. "/rootfs/bin/notexec", "#!/bin/sh\n", { mode = 420 }))
      local pid, err, errno = core.create(dir, {})
      assert.is_nil(pid)
      assert.are.equal(13, errno)
      assert.matches("notexec", err)
    end)

    it("reports a bad mount as one clear error", function()
      B.make(dir, { mounts = { { destination = "/mnt", type = "nosuchfs", source = "x", options = arr({}) } } })
      local pid, err, errno = core.create(dir, {})
      assert.is_nil(pid)
      assert.are.equal("mount `x' on `/mnt': No such device", err)
      assert.are.equal(19, errno)
      assert.are.same({}, leftover_children())
    end)

    it("refuses a seccomp profile with an unknown action", function()
      B.make(dir, { edit = function(s) s.linux.seccomp = { defaultAction = "SCMP_ACT_BOGUS" } end })
      local pid, err = core.create(dir, {})
      assert.is_nil(pid)
      assert.truthy(err:find("SCMP_ACT_BOGUS", 1, true), err)
      assert.are.same({}, leftover_children())
    end)

    it("reads linux.resources with the config, before anything is cloned, naming a bad field", function()
      -- no cgroupsPath: the resources are never applied, and still checked
      B.make(dir, { edit = function(s) s.linux.resources = { pids = { limit = "many" } } end })
      local pid, err, errno = core.create(dir, {})
      assert.is_nil(pid)
      assert.are.equal("linux.resources.pids.limit: expected an integer: Invalid argument", err)
      assert.are.equal(22, errno)
      assert.are.same({}, leftover_children())
    end)

    it("names a field of the wrong type", function()
      B.make(dir, { edit = function(s) s.process.args = arr({ "sh", "-c", 7 }) end })
      local pid, err, errno = core.create(dir, {})
      assert.is_nil(pid)
      assert.are.equal("config.json: process.args[2]: expected string", err)
      assert.are.equal(22, errno)
    end)

    it("refuses an exec fifo that already exists", function()
      B.make(dir)
      B.sh("mkfifo " .. B.q(dir .. "/exec.fifo"))
      local pid, _, errno = core.create(dir, { exec_fifo = dir .. "/exec.fifo" })
      assert.is_nil(pid)
      assert.are.equal(17, errno)
    end)

    it("start fails when no init waits on the fifo", function()
      local ok, _, errno = core.start(dir .. "/none.fifo")
      assert.is_nil(ok)
      assert.are.equal(2, errno)
      B.sh("mkfifo " .. B.q(dir .. "/lonely.fifo"))
      ok, _, errno = core.start(dir .. "/lonely.fifo")
      assert.is_nil(ok)
      assert.are.equal(6, errno)
    end)

    -- The init reports ready just before it opens the fifo, and its ready often wakes the
    -- caller before it gets there: start then found no writer and slept 10 ms before it
    -- looked again, in half the runs of a busy machine.  What start blocks in while no writer
    -- has come is what tells: a writer that waits until we have sat in the same system call
    -- for three of its looks (/proc/PID/syscall; the fifo's read returns at once, a sleep
    -- lasts 10 ms, the wait for the write lasts until it) records that call, then writes.
    it("start waits for a late writer in poll, not in a sleep", function()
      local sleeps = { ["35"] = "nanosleep", ["230"] = "clock_nanosleep" }
      for i = 1, 3 do
        local fifo, seen = dir .. "/late" .. i .. ".fifo", dir .. "/late" .. i .. ".seen"
        B.sh("mkfifo " .. B.q(fifo))
        local writer = ([[prev=; same=0; n=0
while [ $same -lt 3 ] && [ $n -lt 2000 ]; do
  s=$(cut -d' ' -f1 /proc/%d/syscall 2>/dev/null)
  if [ "$s" != running ] && [ "$s" = "$prev" ]; then same=$((same + 1)); else same=0; fi
  prev=$s; n=$((n + 1)); sleep 0.002
done
echo "$s" > %s; printf 0 > %s]]):format(core.getpid(), B.q(seen), B.q(fifo))
        assert(os.execute("(" .. writer .. ") >/dev/null 2>&1 &"))
        assert(core.start(fifo))
        local call = assert(core.read_file(seen)):match("^(%S+)")
        assert.is_nil(sleeps[call], ("start sat in %s while it waited for the writer"):format(
          tostring(sleeps[call])))
      end
    end)
  end)

  describe("hostile rootfs", function()
    it("refuses a /proc that is a symlink to the host's /etc (CVE-2019-16884)", function()
      B.make(dir)
      assert(core.rmdir(dir .. "/rootfs/proc"))
      assert(core.symlink("/etc", dir .. "/rootfs/proc"))
      -- the host's mounts outside the test directories (other specs, and other runs of the
      -- suite, mount and unmount under theirs meanwhile)
      local hygiene = require("support.hygiene")
      local before = hygiene.mounts()
      local pid, err = core.create(dir, {})
      assert.is_nil(pid)
      assert.matches("mount `proc' on `/proc': the destination is a symlink", err)
      assert.are.same(before, hygiene.mounts())
      assert.are.same({}, leftover_children())
      -- and the rootfs's own /etc did not get procfs either
      assert.is_nil(core.stat(dir .. "/rootfs/etc/self"))
    end)

    it("resolves a symlinked mount destination inside the rootfs (CVE-2021-30465)", function()
      local sentinel = B.tmpdir()
      finally(function() core.remove_tree(sentinel) end)
      assert(core.write_file(sentinel .. "/marker", "host\n"))
      B.make(dir, { args = { "sh", "-c", "touch /mnt/link/from-container && ls /mnt/link" },
        mounts = { { destination = "/mnt/link", type = "tmpfs", source = "tmpfs", options = arr({ "size=1m" }) } } })
      assert(core.mkdir_p(dir .. "/rootfs/mnt"))
      assert(core.mkdir_p(dir .. "/rootfs" .. sentinel))
      assert(core.symlink(sentinel, dir .. "/rootfs/mnt/link"))
      local code, _, out = B.run(dir)
      assert.are.equal(0, code)
      -- the tmpfs landed on rootfs/<sentinel>, inside the root: the file went into it and
      -- vanished with it; neither the host's sentinel nor the rootfs's copy of the path got it
      assert.are.equal("from-container\n", out)
      assert.are.same({ "marker" }, core.listdir(sentinel))
      assert.are.same({}, core.listdir(dir .. "/rootfs" .. sentinel))
      assert.are.equal(0, mounts_mentioning(sentinel))
    end)

    it("checks that /dev/null is the null device before masking with it (CVE-2025-31133)", function()
      B.make(dir, { edit = function(s)
        -- no tmpfs on /dev: the image's /dev is used as it is
        local keep = arr({})
        for _, m in ipairs(s.mounts) do
          if not m.destination:match("^/dev") then keep[#keep + 1] = m end
        end
        s.mounts = keep
      end })
      -- the runtime replaces what the image has at a device path with a real node
      assert(core.write_file(dir .. "/rootfs/dev/null", "not a device\n"))
      local code, _, out = B.run(dir)
      assert.are.equal(0, code)
      assert.are.equal("", out)
      local st = core.stat(dir .. "/rootfs/dev/null")
      assert.are.same({ "char", 1, 3 }, { st.type, st.rdev_major, st.rdev_minor })
    end)

    it("refuses to mask with a /dev/null that is not char 1:3 (CVE-2025-31133)", function()
      B.make(dir, { edit = function(s)
        s.linux.devices = arr({ { path = "/dev/null", type = "c", major = 1, minor = 5 } })
      end })
      local pid, err = core.create(dir, {})
      assert.is_nil(pid)
      assert.are.equal("`/dev/null' in the container is not the null device (char 1:3)", err)
    end)
  end)

  describe("signals", function()
    it("forwards signals to the init while waiting, a second SIGINT included", function()
      B.make(dir, { args = { "sh", "-c",
        "n=0; trap 'n=$((n+1)); echo int$n; [ $n -ge 2 ] && exit 9' INT; trap 'echo term' TERM; " ..
        "echo ready; while :; do sleep 0.05; done" } })
      local runner = B.spawn(dir)
      B.until_true(function() return (B.slurp(dir .. "/stdout") or ""):find("ready") end, 10, "the container")
      assert(core.kill(runner, 15))
      B.until_true(function() return (B.slurp(dir .. "/stdout") or ""):find("term") end, 10, "SIGTERM")
      assert(core.kill(runner, 2))
      B.until_true(function() return (B.slurp(dir .. "/stdout") or ""):find("int1") end, 10, "SIGINT")
      assert(core.kill(runner, 2))
      B.until_true(function() return B.slurp(dir .. "/result.json") end, 10, "the runner to finish")
      local r = B.result(dir)
      assert.are.equal(9, r.code)
      assert.are.equal("ready\nterm\nint1\nint2\n", B.slurp(dir .. "/stdout"))
    end)
  end)
end)
