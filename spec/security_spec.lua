-- Security regressions: one named test per attack class of the threat model (SECURITY.md),
-- each labelled with the CVE that taught it (as runc labels its own), driven through the real
-- command line (run.lua, tasks.lua exec, ctrlua-runc) on the project's test image.
--
-- Covered elsewhere, not repeated here:
--   leaked host fds (CVE-2024-21626, fd part), inheritable capabilities (CVE-2022-29162), a /proc
--   symlink (CVE-2019-16884), a symlinked mount destination (CVE-2021-30465) and a fake
--   /dev/null (CVE-2025-31133): spec/runtime_spec.lua;
--   /proc/self/exe as an exec'd command (CVE-2019-5736, exec path): spec/exec_spec.lua;
--   oversized manifests (CVE-2023-25153): spec/images_spec.lua;
--   archive traversal, device nodes and trusted.* xattrs in layers, layer uid overflow:
--   spec/archive_spec.lua.
local core = require("ctr.core")
local S = require("support.ctrlua")
local B = require("support.bundle")

local q = S.q

-- containerd's default capability set, in setpriv's spelling (`+name,...`)
local DEFAULT_CAPS = ("chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap," ..
  "setpcap,net_bind_service,sys_chroot,kill,audit_write"):gsub("[%w_]+", "+%0")

local function alive(pid)
  local data = core.read_file("/proc/" .. pid .. "/stat", 4096)
  local state = data and data:match(".*%)%s(%S)")
  return state ~= nil and state ~= "Z"
end

-- field N (1-based) of /proc/PID/stat, as the host sees it
local function stat_field(pid, n)
  local data = assert(core.read_file("/proc/" .. pid .. "/stat", 4096))
  local rest = data:match(".*%)%s(.*)$")
  local f = { tostring(pid), "comm" }
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  return tonumber(f[n])
end

local function file_sha256(path) return core.sha256(assert(core.read_file(path, 64 * 1024 * 1024))) end

-- Host mountinfo lines that name `path`.
local function host_mounts(path) return S.mounts_under(path) end

describe("security regressions #root", function()
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

  local function run(flags, id, ...)
    local args = { "run.lua" }
    for _, f in ipairs(flags) do args[#args + 1] = f end
    args[#args + 1] = S.IMAGE
    args[#args + 1] = id
    for i = 1, select("#", ...) do args[#args + 1] = (select(i, ...)) end
    return env:run(unpack(args))
  end

  -- a detached container running `sh -c script` (after `touch /ready`); its init pid and rootfs
  local function start(id, script, flags)
    local args = { "-d" }
    for _, f in ipairs(flags or {}) do args[#args + 1] = f end
    local r = run(args, id, "sh", "-c", "touch /ready; " .. (script or "exec sleep 100"))
    assert.are.equal(0, r.code, r.stderr)
    local rootfs = env:state_dir() .. "/" .. id .. "/rootfs"
    S.until_true(function() return core.stat(rootfs .. "/ready") end, 10, "the init of " .. id)
    return env:task_status(id).pid, rootfs
  end

  -- `cmd` run on the host as root with exactly the container's default capabilities (no
  -- CAP_SYS_PTRACE): the kernel's ptrace access check then sees what a container process sees
  local function as_container_root(cmd)
    return S.sh(("setpriv --inh-caps=-all --bounding-set=-all,%s -- sh -c %s"):format(
      DEFAULT_CAPS, q(cmd)))
  end

  describe("CVE-2019-5736 (host binary overwrite through /proc/PID/exe)", function()
    it("the init is not dumpable between create and start: its exe and environ are refused to a container's root", function()
      local BIN = S.BIN:gsub("ctrlua$", "ctrlua-runc")
      local dir = env.dir .. "/r"
      assert(core.mkdir(dir, 448))
      assert(core.mkdir(dir .. "/b", 493))
      B.make(dir .. "/b", { args = { "sleep", "60" } })
      local function rc(...)
        local parts = { q(BIN), "--root", q(dir .. "/root") }
        for _, a in ipairs({ ... }) do parts[#parts + 1] = q(a) end
        -- (to files: the created init inherits the command's stdio and keeps it open)
        local out = dir .. "/rc.out"
        local _, code = S.sh(table.concat(parts, " ") .. " </dev/null >" .. q(out) .. " 2>&1")
        return S.slurp(out) or "", code
      end
      finally(function() rc("delete", "--force", "c1") end)
      local out, code = rc("create", "--bundle", dir .. "/b", "c1")
      assert.are.equal(0, code, out)
      out, code = rc("state", "c1")
      assert.are.equal(0, code, out)
      local pid = assert(tonumber(out:match('"pid"%s*:%s*(%d+)')), out)
      -- the created init still runs our own binary inside the container's namespaces: the
      -- very window runc's CVE-2019-5736 exploited
      local exe = core.readlink("/proc/" .. pid .. "/exe")
      assert.truthy(exe and exe:find("ctrlua", 1, true), exe)
      for _, f in ipairs({ "exe", "environ" }) do
        out, code = as_container_root(("head -c 4 /proc/%d/%s >/dev/null"):format(pid, f))
        assert.are_not.equal(0, code, f .. " of the created init was readable")
        assert.truthy(out:find("Permission denied", 1, true), out)
      end
      -- the same check against the started (dumpable, exec'd) init succeeds: the checker can
      -- tell the difference, so the refusal above is the dumpable flag's
      out, code = rc("start", "c1")
      assert.are.equal(0, code, out)
      S.until_true(function()
        local l = core.readlink("/proc/" .. pid .. "/exe")
        return l and not l:find("ctrlua", 1, true)
      end, 10, "the init to exec")
      out, code = as_container_root(("head -c 4 /proc/%d/exe >/dev/null && head -c 4 /proc/%d/environ >/dev/null"):format(pid, pid))
      assert.are.equal(0, code, out)
    end)

    it("a container opening every /proc/*/exe while the host runs tasks exec 30 times reaches no host binary", function()
      local bins = { S.BIN, S.BIN .. "-monitor" }
      local before = {}
      for i, b in ipairs(bins) do before[i] = file_sha256(b) end
      -- for every process it can see: hold its exe open (the attack keeps an O_PATH/O_RDONLY
      -- fd and writes through /proc/self/fd once the runtime is gone), record anything that
      -- is not the container's own busybox, and try writing it both ways
      local loop = [[
        while :; do
          for p in /proc/[0-9]*; do
            { t=$(readlink /proc/self/fd/3)
              case "$t" in /bin/*|/usr/bin/*|/sbin/*) ;;
                "/memfd:ctrlua-exec (deleted)")
                   # the runtime's sealed trampoline: reachable, and read-only
                   echo x >>/proc/self/fd/3 && echo "wrote $t" >>/leak ;;
                *) echo "opened $p $t" >>/leak
                   echo x >>/proc/self/fd/3 && echo "wrote $t" >>/leak ;;
              esac
            } 3<"$p/exe" 2>/dev/null
            echo x >>"$p/exe" 2>/dev/null && echo "wrote $p/exe" >>/leak
          done
        done]]
      local _, rootfs = start("race", loop)
      for i = 1, 30 do
        local r = env:run("tasks.lua", "exec", "--exec-id", "e" .. i, "race", "sh", "-c", "echo $$")
        assert.are.equal(0, r.code, r.stderr)
      end
      -- the loop is still running (it had all that time), and nothing got through
      assert.is_nil(core.stat(rootfs .. "/leak"), S.slurp(rootfs .. "/leak"))
      for i, b in ipairs(bins) do assert.are.equal(before[i], file_sha256(b), b) end
    end)
  end)

  describe("CVE-2024-21626 (a cwd outside the root through a leaked fd)", function()
    -- from the cwd, climbing `..` stops at the container's root when the cwd is inside it,
    -- and reaches the host's / when it is not
    local CLIMB = "/proc/self/cwd" .. ("/.."):rep(16)

    local function contained(r, what)
      if r.code ~= 0 then
        -- refused: with an error that says what (not the container's own failure)
        assert.truthy(r.stderr:find("cwd", 1, true) or r.stderr:find("/proc/self/fd/", 1, true),
          what .. ": " .. r.stderr)
        return "refused"
      end
      local a, b = r.stdout:match("^(%S+)\n(%S+)\n$")
      assert.truthy(a, what .. ": " .. r.stdout .. r.stderr)
      assert.are.equal(b, a, what .. ": the cwd's top is not the container's /")
      return "contained"
    end

    it("run --cwd /proc/self/fd/N (N = 3..10) never starts the process outside its root", function()
      local host_root = S.must("stat -L -c %d:%i /")
      for n = 3, 10 do
        local r = run({ "--rm", "--cwd", "/proc/self/fd/" .. n }, "cwd" .. n,
          "stat", "-L", "-c", "%d:%i", CLIMB, "/")
        contained(r, "--cwd /proc/self/fd/" .. n)
        assert.falsy(r.stdout:find(host_root, 1, true), r.stdout)
      end
    end)

    it("tasks exec --cwd /proc/self/fd/N (N = 3..10) never starts the process outside its root", function()
      start("cx")
      for n = 3, 10 do
        local r = env:run("tasks.lua", "exec", "--exec-id", "e" .. n, "--cwd", "/proc/self/fd/" .. n,
          "cx", "stat", "-L", "-c", "%d:%i", CLIMB, "/")
        contained(r, "exec --cwd /proc/self/fd/" .. n)
      end
    end)
  end)

  describe("masked /proc and /sys (the default capability set cannot undo them)", function()
    -- (/proc/kcore and /proc/sched_debug are absent from some kernels: /proc/keys and
    -- /proc/timer_list are the masked files every kernel here has)
    local SCRIPT = [[
      umount /proc/timer_list; echo timer=$?
      umount /proc/keys; echo keys=$?
      umount -l /proc; echo proc=$?
      mount -o remount,rw /sys; echo sys=$?
      mount -o remount,rw /proc/sys; echo procsys=$?
      mkdir -p /tmp/p; mount -t proc proc /tmp/p; echo newproc=$?
      mount -t sysfs sysfs /tmp/p; echo newsys=$?
      echo timer-size=$(wc -c </proc/timer_list)
      echo keys-size=$(wc -c </proc/keys)
      echo firmware=$(ls /sys/firmware | wc -l)
      touch /sys/x 2>/dev/null; echo touch-sys=$?
      grep -c ' /proc/keys ' /proc/self/mountinfo]]

    it("umount, remount rw and a new proc or sysfs all fail; the masks stay", function()
      local r = run({ "--rm" }, "m1", "sh", "-c", SCRIPT)
      assert.are.equal(0, r.code, r.stderr)
      for _, k in ipairs({ "timer", "keys", "proc", "sys", "procsys", "newproc", "newsys", "touch-sys" }) do
        local v = r.stdout:match(k:gsub("%-", "%%-") .. "=(%d+)")
        assert.truthy(v and v ~= "0", k .. " succeeded:\n" .. r.stdout)
      end
      assert.truthy(r.stdout:find("timer-size=0\n", 1, true), r.stdout)
      assert.truthy(r.stdout:find("keys-size=0\n", 1, true), r.stdout)
      assert.truthy(r.stdout:find("firmware=0\n", 1, true), r.stdout)
      assert.truthy(r.stdout:find("\n1\n$"), r.stdout)
      -- control: with CAP_SYS_ADMIN the same script does undo a mask, so the checks bite
      r = run({ "--rm", "--cap-add", "CAP_SYS_ADMIN" }, "m2", "sh", "-c", SCRIPT)
      assert.truthy(r.stdout:find("keys=0\n", 1, true), r.stdout .. r.stderr)
    end)
  end)

  -- A rootfs directory (busybox, as spec/support/bundle.lua makes it) for --rootfs, inside the env.
  local function hostile_rootfs(name)
    local b = env.dir .. "/" .. name
    assert(core.mkdir(b, 493))
    B.make(b, {})
    return b .. "/rootfs"
  end

  -- The hostile-symlink cases: the link is absolute or relative (../ past the root), and the
  -- host directory it names is either mirrored inside the rootfs (the path resolves in the
  -- root, so the runtime creates and mounts there) or not (the path dangles in the root: a
  -- refusal is the right answer).  Either way the host's directory gets nothing.
  local LINKS = {
    { name = "absolute", mirror = false, target = function(s) return s end },
    { name = "relative", mirror = false, target = function(s) return ("../"):rep(12) .. s:sub(2) end },
    { name = "absolute, mirrored in the root", mirror = true, target = function(s) return s end },
    { name = "relative, mirrored in the root", mirror = true,
      target = function(s) return ("../"):rep(12) .. s:sub(2) end },
  }

  -- a host directory with one file in it, removed (and unmounted) when the test ends
  local function sentinel_dir()
    local sentinel = S.tmpdir()
    finally(function() S.unmount_under(sentinel); core.remove_tree(sentinel) end)
    assert(core.write_file(sentinel .. "/marker", "host\n"))
    return sentinel
  end

  describe("fake /dev (CVE-2019-16884 / CVE-2025-52565 class)", function()
    for _, case in ipairs(LINKS) do
      it("a /dev that is a " .. case.name .. " symlink to a host directory gets nothing created or mounted there", function()
        local sentinel = sentinel_dir()
        local rootfs = hostile_rootfs("fd")
        assert(core.rmdir(rootfs .. "/dev"))
        assert(core.symlink(case.target(sentinel), rootfs .. "/dev"))
        if case.mirror then assert(core.mkdir_p(rootfs .. sentinel, 493)) end
        local r = env:run("run.lua", "-d", "--rootfs", rootfs, "fd1", "sh", "-c",
          "ls -l /dev/null >/devlist; touch /ready; exec sleep 100")
        if case.mirror then
          assert.are.equal(0, r.code, r.stderr)
          S.until_true(function() return core.stat(rootfs .. "/ready") end, 10, "the init")
          -- while it runs: the host's directory is untouched and nothing is mounted on it
          assert.are.same({ "marker" }, core.listdir(sentinel))
          assert.are.same({}, host_mounts(sentinel))
          -- the devices are there for the container, made where the link leads in the root
          assert.truthy(S.slurp(rootfs .. "/devlist"):find("^c.* 1, +3 "), S.slurp(rootfs .. "/devlist"))
          env:run("tasks.lua", "kill", "-s", "KILL", "fd1")
          S.until_true(function()
            return env:run("tasks.lua", "delete", "fd1").code == 0
          end, 10, "the task to stop")
        else
          assert.are_not.equal(0, r.code)
          assert.truthy(r.stderr:find("`/dev' in the container", 1, true), r.stderr)
        end
        assert.are.same({ "marker" }, core.listdir(sentinel))
        assert.are.same({}, host_mounts(sentinel))
      end)
    end
  end)

  describe("CVE-2024-45310 (mount points created on the host)", function()
    for _, case in ipairs(LINKS) do
      it("mount destinations under a " .. case.name .. " symlink to a host directory create nothing on the host", function()
        local sentinel = sentinel_dir()
        local rootfs = hostile_rootfs("mk")
        assert(core.symlink(case.target(sentinel), rootfs .. "/link"))
        if case.mirror then assert(core.mkdir_p(rootfs .. sentinel, 493)) end
        -- the runtime must create link/a/b and link/c/d: two levels each, below the link
        local r = env:run("run.lua", "--rm", "--rootfs",
          "--mount", "type=tmpfs,src=tmpfs,dst=/link/a/b,options=size=1m",
          "--mount", "type=bind,src=/etc,dst=/link/c/d,options=rbind:ro",
          rootfs, "mk1", "sh", "-c", "touch /link/a/b/in-tmpfs && cat /link/c/d/hostname")
        if case.mirror then
          assert.are.equal(0, r.code, r.stderr)
          assert.are.equal(S.slurp("/etc/hostname"), r.stdout)
          -- the mount points were made inside the root, where the link leads there
          assert.truthy(core.stat(rootfs .. sentinel .. "/a/b"))
          assert.truthy(core.stat(rootfs .. sentinel .. "/c/d"))
        else
          assert.are_not.equal(0, r.code)
          assert.truthy(r.stderr:find("`/link' in the container", 1, true), r.stderr)
        end
        assert.are.same({ "marker" }, core.listdir(sentinel))
        assert.are.same({}, host_mounts(sentinel))
      end)
    end
  end)

  describe("CVE-2021-30465 class (a bind remount that follows a second lookup)", function()
    it("a read-only bind stays read-only while a co-tenant swaps its destination (bind remount race)", function()
      local vol, src = env.dir .. "/vol", env.dir .. "/src"
      assert(core.mkdir_p(vol .. "/sub", 493))
      assert(core.mkdir(src, 493))
      assert(core.write_file(src .. "/marker", "src\n"))
      local shared = "type=bind,src=" .. vol .. ",dst=/vol,options=rbind:rw"
      -- A, sharing VOL: /vol/sub is the directory, then a symlink to /, and back, as fast as
      -- busybox sh goes.  busybox cannot exchange a directory and a symlink in one rename,
      -- so the directory moves to sub.dir and sub becomes a link swapped by one rename each
      -- time (never absent): to B's lookups it is the directory one instant and B's own
      -- root the next.
      start("swapper", "cd /vol && mv -T sub sub.dir && while :; do ln -s / t; mv -T t sub; " ..
        "ln -s sub.dir t; mv -T t sub; done", { "--mount", shared })
      local baseline = env:leftovers("b")
      -- B binds SRC read-only on /vol/sub.  The trailing "/." components keep the kernel
      -- walking after it has resolved sub: they widen the window between the lookup that
      -- places the mount and any later lookup, so a runtime that looks the destination up
      -- again (for the read-only remount) loses the race in a few percent of runs; one that
      -- acts on the mount it made has no second lookup to lose.  Where the bind landed on
      -- the directory it is at /vol/sub.dir; the probe pins its cwd there, so the marker
      -- it sees and the file it writes are in the same directory.
      local dst = "/vol/sub" .. ("/."):rep(1900)
      local PROBE = "cd /vol/sub.dir && [ -e marker ] || { echo other; exit 0; }; " ..
        "if touch probe 2>/dev/null; then echo WRITABLE; else echo ro; fi"
      local seen, started, failed, deadline = {}, 0, 0, core.monotime() + 35
      for i = 1, 300 do
        if core.monotime() > deadline then break end
        local r = run({ "--rm", "--mount", shared,
          "--mount", "type=bind,src=" .. src .. ",dst=" .. dst .. ",options=rbind:ro" }, "b", "sh", "-c", PROBE)
        if r.code == 0 then
          started = started + 1
          local word = r.stdout:match("%S+") or "nothing"
          seen[word] = (seen[word] or 0) + 1
          assert.are_not.equal("WRITABLE", word, ("run %d of B could write into its read-only bind"):format(i))
        else
          -- failing closed is fine, as long as the failed start cleaned up after itself
          failed = failed + 1
          assert.are.same(baseline, env:leftovers("b"), r.stderr)
        end
        assert.are.same({ "marker" }, core.listdir(src), "B wrote into SRC")
      end
      assert.truthy((seen.ro or 0) > 0,
        ("no run saw the bind (started %d, failed %d)"):format(started, failed))
      env:run("tasks.lua", "kill", "-s", "KILL", "swapper")
      S.until_true(function() return env:run("tasks.lua", "delete", "swapper").code == 0 end, 10,
        "the swapper to stop")
      assert.are.same({ "marker" }, core.listdir(src))
      assert.are.equal("src\n", S.slurp(src .. "/marker"))
    end)
  end)

  -- A container whose /dev is a bind (of the host's /dev, in the worst case) had the runtime
  -- unlink, mknod and chown the default devices and make the /dev links there, on the host's
  -- filesystem.  As runc does, /dev set-up is skipped when /dev is a bind, and no device is
  -- made in a directory that a bind brings in.  The sentinels stand in for the host's /dev.
  describe("host device nodes rewritten through a /dev bind", function()
    -- what a directory holds, entry by entry: inode, type, mode, owner, device numbers, content
    local function inventory(dir)
      local out = {}
      for _, n in ipairs(core.listdir(dir) or {}) do
        local st = assert(core.stat(dir .. "/" .. n, false))
        out[n] = { st.ino, st.type, st.mode, st.uid, st.gid, st.rdev_major, st.rdev_minor,
          st.type == "file" and S.slurp(dir .. "/" .. n) or "" }
      end
      return out
    end

    -- a sentinel /dev: a regular file `null' and a real null node under another name, in a
    -- directory of its own that a user namespace's root can reach (env.dir is 0700)
    local function sentinel_dev(owner)
      local top = S.tmpdir()
      finally(function() S.unmount_under(top); core.remove_tree(top) end)
      assert(core.chmod(top, 457))
      local dir = top .. "/devdir"
      assert(core.mkdir(dir, 493))
      assert(core.write_file(dir .. "/null", "the host's file\n", { mode = 420 }))
      S.must("mknod " .. q(dir .. "/realnull") .. " c 1 3")
      if owner then S.must(("chown -R %s %s"):format(owner, q(dir))) end
      return dir, inventory(dir)
    end

    local CASES = {
      { name = "", flags = {} },
      { name = " in a user namespace", owner = "100000:100000",
        flags = { "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536" } },
    }
    for _, case in ipairs(CASES) do
      it("a container whose /dev is a bind of a host directory creates, removes and chowns nothing in it" .. case.name, function()
        local dir, before = sentinel_dev(case.owner)
        local flags = { "--rm", "--mount", "type=bind,src=" .. dir .. ",dst=/dev,options=rbind:rw" }
        for _, f in ipairs(case.flags) do flags[#flags + 1] = f end
        local r = run(flags, "dv1", "true")
        if r.code ~= 0 then
          -- the image's (here: the host's) /dev/null is not the null device: masking refuses
          assert.truthy(r.stderr:find("`/dev/null' in the container is not the null device", 1, true), r.stderr)
        end
        assert.are.same(before, inventory(dir))
        assert.are.same({}, env:leftovers("dv1"))
      end)
    end

    it("a --device inside a bind under /dev is refused, naming the device and the bind", function()
      if not S.exists("/dev/net/tun") then return pending("the host has no /dev/net/tun") end
      local dir = env.dir .. "/netdir"
      assert(core.mkdir(dir, 493))
      assert(core.write_file(dir .. "/marker", "host\n"))
      local before = inventory(dir)
      local r = run({ "--rm", "--mount", "type=bind,src=" .. dir .. ",dst=/dev/net,options=rbind:rw",
        "--device", "/dev/net/tun" }, "dv2", "true")
      assert.are_not.equal(0, r.code)
      assert.truthy(r.stderr:find("device `/dev/net/tun': the directory is on the bind mount `/dev/net'", 1, true), r.stderr)
      assert.are.same(before, inventory(dir))
      assert.are.same({}, env:leftovers("dv2"))
    end)
  end)

  describe("CVE-2020-15257 (abstract or open sockets)", function()
    it("a detached task's monitor listens on a path socket in a 0700 directory; no abstract socket", function()
      start("sk")
      local dir = env:state_dir() .. "/sk"
      local st = assert(core.stat(dir))
      assert.are.same({ "directory", 448, 0 }, { st.type, st.mode % 4096, st.uid })
      local sock = assert(core.stat(dir .. "/monitor.sock"))
      assert.are.same({ "socket", 0 }, { sock.type, sock.uid })
      assert.are.equal(0, sock.mode % 8, "the socket is open to others")
      -- /proc/net/unix of the host's network namespace: the listening monitor is there by
      -- path, and no abstract name (@...) mentions ctrlua
      local unix = assert(core.read_file("/proc/net/unix", 16 * 1024 * 1024))
      for line in unix:gmatch("[^\n]+") do
        local name = line:match("%s(@%S*)$")
        assert.falsy(name and name:lower():find("ctr", 1, true), line)
      end
      -- and the monitor holds no abstract socket of any name
      local st2 = env:task_status("sk")
      local inodes = {}
      for _, fd in ipairs(core.listdir("/proc/" .. st2.monitor_pid .. "/fd") or {}) do
        local l = core.readlink("/proc/" .. st2.monitor_pid .. "/fd/" .. fd)
        local ino = l and l:match("^socket:%[(%d+)%]$")
        if ino then inodes[ino] = true end
      end
      assert.truthy(next(inodes), "the monitor holds no socket")
      for line in unix:gmatch("[^\n]+") do
        local f = {}
        for w in line:gmatch("%S+") do f[#f + 1] = w end
        if inodes[f[7]] and f[8] then assert.falsy(f[8]:find("^@"), line) end
      end
    end)
  end)

  describe("CVE-2021-41103 (world-readable state)", function()
    it("--root and --state are 0700/0711, nothing in them is writable by another user, a rootfs is out of reach", function()
      -- the env's own directory is 0700 (mktemp): open it, so only ctrlua's modes protect
      assert(core.chmod(env.dir, 493))
      start("ws")
      for _, d in ipairs({ env.root, env.state, env:state_dir() }) do
        local st = assert(core.stat(d))
        assert.truthy(st.mode % 4096 == 448 or st.mode % 4096 == 457, ("%s is %o"):format(d, st.mode % 4096))
      end
      local nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups "
      local out = S.sh(nobody .. "find " .. q(env.root) .. " " .. q(env.state) .. " -writable 2>/dev/null")
      assert.are.equal("", out)
      local _, code = S.sh(nobody .. "ls " .. q(env:state_dir() .. "/ws/rootfs"))
      assert.are_not.equal(0, code)
      _, code = S.sh(nobody .. "ls " .. q(env:state_dir() .. "/ws/rootfs/tmp"))
      assert.are_not.equal(0, code)
      -- control: the checker can read what is open to it
      _, code = S.sh(nobody .. "ls " .. q(env.dir))
      assert.are.equal(0, code)
    end)
  end)

  describe("CVE-2017-5226 (tty keystroke injection)", function()
    it("the init has a session of its own, not the caller's", function()
      local h = env:spawn("run.lua", "--rm", S.IMAGE, "ss", "sh", "-c", "touch /ready; exec sleep 100")
      local rootfs = env:state_dir() .. "/ss/rootfs"
      S.until_true(function() return core.stat(rootfs .. "/ready") end, 10, "the init")
      local pid = env:task_status("ss").pid
      local caller_sid = stat_field(h.pid, 6)
      assert.are.equal(pid, stat_field(pid, 6))
      assert.are_not.equal(caller_sid, stat_field(pid, 6))
      core.kill(pid, 9)
      h:wait()
    end)

    -- a static program that tries TIOCSTI on fds 0..2 and /dev/tty, printing one result each
    local function tiocsti_tool(dir)
      local src = dir .. "/tiocsti.c"
      assert(core.write_file(src, [[
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
int main(void) {
    int tty = open("/dev/tty", O_RDWR);
    int tty_errno = errno;
    int fds[4] = {0, 1, 2, tty};
    for (int i = 0; i < 4; i++) {
        int e = fds[i] < 0 ? tty_errno : 0;
        for (const char *c = "PWNED\n"; !e && *c; c++)
            if (ioctl(fds[i], TIOCSTI, c) < 0) e = errno;
        printf("fd%d=%s\n", i, e ? strerror(e) : "injected");
    }
    return 0;
}
]], { mode = 420 }))
      assert(core.mkdir(dir .. "/bin", 493))
      S.must(("gcc -static -O1 -o %s %s"):format(q(dir .. "/bin/tiocsti"), q(src)))
      return dir .. "/bin"
    end

    it("a container run from a terminal cannot push keystrokes into it (with and without -t)", function()
      local tool = tiocsti_tool(env.dir)
      for _, flags in ipairs({ {}, { "-t" } }) do
        -- the caller is a shell on a pty (script); after ctrlua it reads a line from that
        -- terminal: what the container injected would be there
        local args = { "run.lua", "--rm" }
        for _, f in ipairs(flags) do args[#args + 1] = f end
        for _, a in ipairs({ "--mount", "type=bind,src=" .. tool .. ",dst=/t,options=rbind:ro",
          S.IMAGE, "ti", "/t/tiocsti" }) do args[#args + 1] = a end
        local run_cmd = env:cmdline(unpack(args))
        local shcmd = run_cmd .. "; read -t 1 line; echo \"caller-read=[$line]\""
        local out = S.must("script -qec " .. q(shcmd) .. " /dev/null </dev/null")
        local err = out
        assert.falsy(out:find("caller-read=[PWNED", 1, true), out)
        if #flags == 0 then
          -- its stdio are pipes in place of the caller's terminal: no terminal to push into
          for i = 0, 2 do
            assert.truthy(err:find("fd" .. i .. "=Inappropriate ioctl for device", 1, true), err)
          end
        end
        if #flags == 0 then
          -- and no controlling terminal at all: /dev/tty does not open
          assert.falsy(err:find("fd3=injected", 1, true), err)
        end
      end
    end)
  end)

  describe("hardlinks in a remapped snapshot (each inode shifted once, not once per name)", function()
    -- a v2 security.capability granting cap_net_raw+ep (magic 0x02000000 | effective)
    local NET_RAW = "\1\0\0\2" .. "\0\32\0\0" .. string.rep("\0", 12)
    local files = {
      { name = "root-only", mode = 384, data = "secret\n", want = "600" },
      { name = "suid", mode = 2541, data = "#!/bin/sh\n", want = "4755" },
      { name = "fcaps", mode = 493, data = "#!/bin/sh\n", want = "755", xattrs = { ["security.capability"] = NET_RAW } },
    }
    local function image()
      local entries = {}
      for _, f in ipairs(files) do
        entries[#entries + 1] = { name = f.name, type = "file", mode = f.mode, data = f.data, xattrs = f.xattrs }
        entries[#entries + 1] = { name = f.name .. ".link", type = "hardlink", link = f.name }
      end
      local tar = S.derive_image(env.dir, "ctrlua.test/hardlinks:1", nil, { require("support.tar").build(entries) })
      local r = env:run("images.lua", "import", tar)
      assert.are.equal(0, r.code, r.stderr)
    end
    for _, snapshotter in ipairs({ "native", "overlayfs" }) do
      it("--snapshotter " .. snapshotter .. " --uidmap 0:100000:200000: a 0600 root file and a setuid-root file, each linked twice, stay the container root's with their modes and capabilities", function()
        image()
        local paths = {}
        for _, f in ipairs(files) do paths[#paths + 1] = "/" .. f.name; paths[#paths + 1] = "/" .. f.name .. ".link" end
        local r = env:run("run.lua", "--rm", "--snapshotter", snapshotter, "--uidmap", "0:100000:200000",
          "--gidmap", "0:100000:200000", "ctrlua.test/hardlinks:1", "h1", "stat", "-c", "%n %u:%g %a", unpack(paths))
        assert.are.equal(0, r.code, r.stderr)
        for _, f in ipairs(files) do
          for _, name in ipairs({ f.name, f.name .. ".link" }) do
            assert.truthy(r.stdout:find("/" .. name .. " 0:0 " .. f.want .. "\n", 1, true), r.stdout)
          end
        end
        -- on the host: every shifted copy (the remapped snapshot's) is 100000:100000, same mode
        for _, f in ipairs(files) do
          for _, name in ipairs({ f.name, f.name .. ".link" }) do
            local out = S.must(("find %s -path '*/fs/%s' \\( -uid +99999 -o -gid +99999 \\) -printf '%%U:%%G %%m\\n'"):format(
              q(env.root .. "/snapshots/" .. snapshotter), name))
            assert.truthy(out ~= "", "no shifted " .. name .. " under the " .. snapshotter .. " snapshots")
            for line in out:gmatch("[^\n]+") do
              assert.are.equal("100000:100000 " .. f.want, line, name)
            end
            if f.xattrs then
              local caps = S.must(("find %s -path '*/fs/%s' -uid 100000 -exec getcap {} +"):format(
                q(env.root .. "/snapshots/" .. snapshotter), name))
              assert.truthy(caps:find("cap_net_raw=ep", 1, true), caps)
            end
          end
        end
      end)
    end
  end)

  describe("joining a mount namespace that is not the container's own (--with-ns mount:PATH)", function()
    -- A runtime that joined one would make that namespace's / a slave and pivot_root there,
    -- moving the root of every process in it.  So the "host" here is a disposable mount
    -- namespace made by unshare, with its / made shared so that a change shows: the test can
    -- fail without taking the real host with it.
    local ROOT_PROPAGATION = [[awk '$5 == "/" { print $7 }' /proc/self/mountinfo]]
    local cases = {
      { name = "the runtime's own (/proc/self/ns/mnt)", path = "/proc/self/ns/mnt", says = "the runtime's own",
        outer = "unshare -m --propagation private", inner = "" },
      -- pid 1 of a pid namespace of its own, in a mount namespace that the runtime is not in
      { name = "pid 1's (/proc/1/ns/mnt)", path = "/proc/1/ns/mnt", says = "the host's (pid 1's)",
        outer = "unshare -m -p -f --mount-proc --propagation private", inner = "unshare -m --propagation unchanged " },
    }
    for _, case in ipairs(cases) do
      it("refuses " .. case.name .. " before clone, exit 125, and that namespace's / keeps its propagation", function()
        local script = ("mount --make-shared / && before=$(%s) && %s%s; echo \"code=$? before=$before after=$(%s)\"")
          :format(ROOT_PROPAGATION, case.inner,
            env:cmdline("run.lua", "--rm", "--with-ns", "mount:" .. case.path, S.IMAGE, "m1", "true"), ROOT_PROPAGATION)
        local out = S.sh(case.outer .. " sh -c " .. q(script))
        local code, before, after = out:match("code=(%d+) before=(%S*) after=(%S*)")
        assert.are.equal("125", code, out)
        assert.truthy(out:find("join the mount namespace `" .. case.path .. "': it is " .. case.says, 1, true), out)
        assert.truthy(before:find("^shared:"), out)
        assert.are.equal(before, after, out)
        assert.are.same({}, env:leftovers("m1"))
      end)
    end
  end)

  describe("CVE-2024-40635 (uid overflow in the image config)", function()
    for _, user in ipairs({ "4294967296", "2147483648", "0:4294967296" }) do
      it("refuses the image config User " .. user .. ", naming the value", function()
        local tar = S.derive_image(env.dir, "ctrlua.test/uid:overflow", function(c) c.User = user end)
        local r = env:run("images.lua", "import", tar)
        assert.are.equal(0, r.code, r.stderr)
        r = env:run("run.lua", "--rm", "ctrlua.test/uid:overflow", "u1", "id", "-u")
        assert.are_not.equal(0, r.code, r.stdout)
        assert.are_not.equal("0\n", r.stdout)
        local bad = user:match("(%d+)$")
        assert.truthy(r.stderr:find(bad, 1, true), r.stderr)
      end)
    end
  end)
end)
