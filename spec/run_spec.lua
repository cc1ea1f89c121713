-- `ctrlua run.lua` end to end, as a user runs it: the real binary, the project's busybox test
-- image, real mounts and real containers.  Every test has its own --root/--state (a copy of a
-- root where the image was imported once), and checks what the run left behind in the store,
-- in STATE and in the host's /proc/self/mountinfo.
local core = require("ctr.core")
local S = require("support.ctrlua")
local B = require("support.bundle")

local IMAGE = S.IMAGE

describe("run.lua #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    if env then env:destroy() end
    env = nil
  end)
  teardown(function() S.cleanup() end)

  -- run with --rm and check that nothing is left behind
  local function run_rm(id, ...)
    local r = env:run("run.lua", "--rm", IMAGE, id, ...)
    r.left = env:leftovers(id)
    return r
  end

  describe("exit codes", function()
    for _, case in ipairs({
      { "0", { "true" }, 0 },
      { "1", { "false" }, 1 },
      { "42", { "sh", "-c", "exit 42" }, 42 },
    }) do
      it(case[1], function()
        local r = run_rm("ec", unpack(case[2]))
        assert.are.equal(case[3], r.code, r.stderr)
        assert.are.equal("", r.stderr)
        assert.are.same({}, r.left)
      end)
    end

    it("137 when the container is killed by SIGKILL from outside", function()
      local h = env:spawn("run.lua", "--rm", IMAGE, "killed", "sleep", "60")
      local pid = env:wait_running("killed")
      assert.is_true(core.kill(pid, 9))
      local r = h:wait()
      assert.are.equal(137, r.code, r.stderr)
      assert.are.same({}, env:leftovers("killed"))
    end)
  end)

  describe("process", function()
    it("gets its args, as given after the ID", function()
      local r = run_rm("args", "sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "x", "a b", "", "--rm", "-c")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("[a b]\n[]\n[--rm]\n[-c]\n", r.stdout)
    end)

    it("runs the image's Cmd when no command is given", function()
      local r = env:run("run.lua", "--rm", IMAGE, "cmd", { stdin = "/dev/null" })
      -- Cmd is ["sh"]: a shell reading an empty stdin exits 0
      assert.are.equal(0, r.code, r.stderr)
      assert.are.same({}, env:leftovers("cmd"))
    end)

    it("has the image's Env and WorkingDir; --env and --cwd override them", function()
      local tar = S.derive_image(env.dir, "ctrlua.test/derived:1", function(c)
        c.Env = core.json_array({ "PATH=/bin:/sbin", "FROM_IMAGE=img", "OVERRIDE=img" })
        c.WorkingDir = "/etc"
      end)
      local r = env:run("images.lua", "import", tar)
      assert.are.equal(0, r.code, r.stderr)
      local show = { "sh", "-c", 'echo "PATH=$PATH"; echo "FROM_IMAGE=$FROM_IMAGE"; echo "OVERRIDE=$OVERRIDE"; pwd' }
      r = env:run("run.lua", "--rm", "ctrlua.test/derived:1", "d1", unpack(show))
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("PATH=/bin:/sbin\nFROM_IMAGE=img\nOVERRIDE=img\n/etc\n", r.stdout)

      r = env:run("run.lua", "--rm", "--env", "OVERRIDE=flag", "--env", "NEW=1", "--cwd", "/tmp",
        "ctrlua.test/derived:1", "d2", unpack(show))
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("PATH=/bin:/sbin\nFROM_IMAGE=img\nOVERRIDE=flag\n/tmp\n", r.stdout)
      assert.are.same({}, env:leftovers("d2"))
    end)

    it("frees the ID before --rm returns: the same ID runs again at once, and its cgroup is gone", function()
      for i = 1, 3 do
        local r = run_rm("again", "sh", "-c", "cat /proc/self/cgroup; grep ' / / ' /proc/self/mountinfo")
        assert.are.equal(0, r.code, ("run %d: %s"):format(i, r.stderr))
        assert.truthy(r.stdout:find("/again", 1, true), r.stdout)
        -- its writes go with it: the overlay is never synced
        assert.truthy(r.stdout:find(" overlay overlay [^\n]*volatile"), r.stdout)
        -- no container record, snapshot, mount, state directory nor cgroup
        assert.are.same({}, env:leftovers("again"))
      end
    end)

    it("has the test image's PATH, and --env PATH replaces it", function()
      local r = run_rm("p1", "sh", "-c", 'echo "$PATH"')
      assert.are.equal("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", r.stdout)
      r = env:run("run.lua", "--rm", "--env", "PATH=/bin", IMAGE, "p2", "sh", "-c", 'echo "$PATH"')
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("/bin\n", r.stdout)
    end)

    it("reads --env-file, skipping comments and blank lines", function()
      local f = env.dir .. "/env"
      assert(core.write_file(f, "# a comment\n\nA=1\n   \nB=two words\n# C=no\nD=\n", { mode = 420 }))
      local r = env:run("run.lua", "--rm", "--env-file", f, IMAGE, "ef", "sh", "-c",
        'echo "A=$A;B=$B;C=${C-unset};D=${D-unset}"; env | grep -c "^#" || true')
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("A=1;B=two words;C=unset;D=\n0\n", r.stdout)
    end)

    it("a missing --env-file is one clear error, exit 125, nothing left", function()
      local r = env:run("run.lua", "--rm", "--env-file", env.dir .. "/nope", IMAGE, "ef2", "true")
      assert.are.equal(125, r.code)
      assert.matches("^ctrlua: [^\n]*nope[^\n]*\n$", r.stderr)
      assert.are.same({}, env:leftovers("ef2"))
    end)
  end)

  describe("isolation", function()
    it("the process is pid 1 of its own pid namespace", function()
      local r = run_rm("pid1", "sh", "-c", 'echo $$; ls /proc | grep -c "^[0-9]"')
      assert.are.equal(0, r.code, r.stderr)
      -- itself, and ls's own pid... grep counts pids: only sh, ls and grep exist
      local pid, n = r.stdout:match("^(%d+)\n(%d+)\n$")
      assert.are.equal("1", pid)
      assert.is_true(tonumber(n) <= 3, r.stdout)
    end)

    it("has its own UTS namespace: the host's hostname is not reachable", function()
      local host_uts = assert(core.readlink("/proc/self/ns/uts"))
      local before = S.must("hostname")
      -- the default capabilities lack CAP_SYS_ADMIN, as containerd's: the attempt fails
      local r = run_rm("uts", "sh", "-c", "readlink /proc/self/ns/uts; hostname ctrlua-changed; echo rc=$?")
      assert.are.equal(0, r.code, r.stderr)
      local uts, rc = r.stdout:match("^(uts:%S+)\nrc=(%d+)\n$")
      assert.is_not_nil(uts, r.stdout)
      assert.are_not.equal(host_uts, uts)
      assert.are.equal("1", rc)
      assert.are.equal(before, S.must("hostname"))
    end)

    it("a spec's hostname is the container's; changing it inside leaves the host's", function()
      local before = S.must("hostname")
      local bdir = env.dir .. "/bundle"
      B.make(bdir, { args = { "sh", "-c", "hostname; hostname ctrlua-changed && hostname" },
        hostname = "ctrlua-spec", edit = function(spec)
          spec.root.path = bdir .. "/rootfs"
          for _, set in pairs(spec.process.capabilities) do table.insert(set, "CAP_SYS_ADMIN") end
        end })
      local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "uts2")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("ctrlua-spec\nctrlua-changed\n", r.stdout)
      assert.are.equal(before, S.must("hostname"))
      assert.are.same({}, env:leftovers("uts2"))
    end)

    it("has its own mount table: / is the overlay of the image, no host paths", function()
      local r = run_rm("mnt", "cat", "/proc/self/mountinfo")
      assert.are.equal(0, r.code, r.stderr)
      local points, root_fs = {}, nil
      for line in r.stdout:gmatch("[^\n]+") do
        local mp, fstype = line:match("^%S+ %S+ %S+ %S+ (%S+) .- %- (%S+)")
        points[#points + 1] = mp
        if mp == "/" then root_fs = fstype end
      end
      assert.are.equal("overlay", root_fs)
      assert.are.equal("/", points[1])
      -- nothing of the host's mounts: every mount point is one the spec asked for
      local allowed = { ["/"] = true, ["/proc"] = true, ["/dev"] = true, ["/dev/pts"] = true,
        ["/dev/shm"] = true, ["/dev/mqueue"] = true, ["/sys"] = true, ["/run"] = true }
      -- (and the masked and read-only paths under /proc and /sys, device nodes under /dev)
      for _, mp in ipairs(points) do
        assert.is_true(allowed[mp] or mp:match("^/proc/.") ~= nil or mp:match("^/sys/.") ~= nil
          or mp:match("^/dev/.") ~= nil,
          "unexpected mount point " .. mp)
      end
      assert.is_nil(r.stdout:find(env.state, 1, true))
      -- the image's files are at /
      r = run_rm("mnt2", "sh", "-c", "ls /bin/busybox /etc/passwd && cat /etc/group")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("/bin/busybox\n/etc/passwd\nroot:x:0:\nnogroup:x:65534:\n", r.stdout)
    end)

    it("/proc/kcore (and the other masked paths) read empty", function()
      -- a masked path that does not exist on this kernel stays absent; one that exists is
      -- covered: /dev/null (a char device) or an empty read-only tmpfs
      local r = run_rm("mask", "sh", "-c", [[
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
  if [ -e $p ]; then
    if [ -c $p ]; then echo "$p char $(wc -c <$p)"; else echo "$p other $(wc -c <$p 2>&1)"; fi
  else echo "$p absent"; fi
done]])
      assert.are.equal(0, r.code, r.stderr)
      local checked = 0
      for _, p in ipairs({ "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug" }) do
        local line = r.stdout:match("(" .. p:gsub("%p", "%%%0") .. " [^\n]*)")
        if S.exists(p) then
          assert.are.equal(p .. " char 0", line)
          checked = checked + 1
        else
          assert.are.equal(p .. " absent", line)
        end
      end
      assert.is_true(checked > 0, "no masked path exists on this host")
    end)

    it("the default devices work: /dev/null, /dev/zero, /dev/urandom, /dev/full", function()
      local r = run_rm("dev", "sh", "-c", [[
echo discard > /dev/null && echo null-w
wc -c < /dev/null
head -c 4 /dev/zero | od -An -tx1
head -c 16 /dev/urandom | wc -c
echo x > /dev/full || echo full-enospc
ls -l /dev/null | cut -c1]])
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("null-w\n0\n 00 00 00 00\n16\nfull-enospc\nc\n", r.stdout)
    end)

    it("/sys is read-only", function()
      local r = run_rm("sysro", "sh", "-c", "mkdir /sys/ctrlua-x; echo rc=$?; echo 1 > /sys/kernel/profiling; echo rc=$?")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("rc=1\nrc=1\n", r.stdout)
      assert.matches("Read%-only file system", r.stderr)
    end)
  end)

  describe("signals", function()
    it("SIGTERM sent to `ctrlua run` reaches the container", function()
      local h = env:spawn("run.lua", "--rm", IMAGE, "term", "sh", "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done")
      env:wait_running("term")
      S.until_true(function() return (S.slurp(h.out) or ""):find("ready") end, 10, "the trap")
      -- ctrlua forwards once it waits (it blocks the signals it forwards then); a signal in
      -- the moment between start and wait is not forwarded yet (see the report on the race)
      S.until_true(function() return S.blocks_signal(h.pid, 15) end, 10, "ctrlua to forward")
      assert.is_true(core.kill(h.pid, 15))
      local r = h:wait()
      assert.are.equal(7, r.code, r.stderr)
      assert.are.equal("ready\ngot TERM\n", r.stdout)
      assert.are.same({}, env:leftovers("term"))
    end)
  end)

  describe("the store", function()
    -- run.lua itself, under a probe that lists at its exit which of the modules a run of an
    -- unpacked image has no use for were loaded: applying layers (and the lease it holds),
    -- importing archives, exec
    it("a run loads the layer apply and leases only when there is a layer to apply, never import or exec", function()
      local probe = env.dir .. "/probe.lua"
      local f = assert(io.open(probe, "w"))
      f:write(([[
local exit = os.exit
os.exit = function(code)
  local seen = {}
  for _, m in ipairs({ "ctr.tasks", "ctr.store.apply", "ctr.leases", "ctr.store.import", "ctr.process" }) do
    if package.loaded[m] then seen[#seen + 1] = m end
  end
  io.stdout:write("loaded: ", table.concat(seen, " "), "\n")
  exit(code)
end
assert(loadfile(%q))(...)
os.exit(0)
]]):format(core.readlink("/proc/self/cwd") .. "/scripts/run.lua"))
      f:close()
      -- a layer of its own: the test image's layer is unpacked in every env already
      local layer = require("support.tar").build({ { name = "lazy", type = "file", data = "1\n", mode = 420 } })
      local path = S.derive_image(env.dir, "ctrlua.test/lazy:1", nil, { layer })
      local imp = env:run("images.lua", "import", "--no-unpack", path)
      assert.are.equal(0, imp.code, imp.stderr)
      local first = env:run(probe, "--rm", "--pull", "never", "ctrlua.test/lazy:1", "lazy1", "true")
      assert.are.equal(0, first.code, first.stderr)
      assert.are.equal("loaded: ctr.tasks ctr.store.apply ctr.leases\n", first.stdout)
      local second = env:run(probe, "--rm", "--pull", "never", "ctrlua.test/lazy:1", "lazy2", "true")
      assert.are.equal(0, second.code, second.stderr)
      assert.are.equal("loaded: ctr.tasks\n", second.stdout)
      assert.are.same({}, env:leftovers("lazy2"))
    end)

    it("an image of 128 layers mounts and runs (more lower directories than a page of options holds)", function()
      local tar = require("support.tar")
      local layers = {}
      for i = 1, 127 do
        layers[i] = tar.build({ { name = "layers", type = "dir", mode = 493 },
          { name = "layers/" .. i, type = "file", data = tostring(i) .. "\n", mode = 420 },
          { name = "top", type = "file", data = "layer " .. i .. "\n", mode = 420 } })
      end
      local path = S.derive_image(env.dir, "ctrlua.test/deep:128", nil, layers)
      local imp = env:run("images.lua", "import", path)
      assert.are.equal(0, imp.code, imp.stderr)
      local r = env:run("run.lua", "--rm", "--pull", "never", "ctrlua.test/deep:128", "deep1", "sh", "-c",
        "ls /layers | wc -l; cat /top /layers/1 /layers/127")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("127\nlayer 127\n1\n127\n", r.stdout)
      assert.are.same({}, env:leftovers("deep1"))
    end)

    it("--rm leaves no snapshot, no mount, no state directory", function()
      local before = env:snapshots()
      local r = run_rm("rm1", "sh", "-c", "echo data > /root/file")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.same({}, r.left)
      assert.are.same(before, env:snapshots())
      for _, s in ipairs(env:snapshots()) do assert.are.equal("Committed", s.kind) end
      assert.is_false(S.exists(env:state_dir() .. "/rm1"))
    end)

    it("without --rm the container stays; a second run with its ID fails as ctr's", function()
      local r = env:run("run.lua", IMAGE, "keep", "sh", "-c", "echo one > /root/f")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.same({ "keep" }, env:containers())
      -- its snapshot stays, with the file written
      local found
      for _, s in ipairs(env:snapshots()) do if s.key == "keep" then found = s end end
      assert.are.equal("Active", found and found.kind)
      -- the task is gone (no state dir, no mount), the container stays
      assert.is_false(S.exists(env:state_dir() .. "/keep"))
      assert.are.same({}, S.mounts_under(env.dir))

      r = env:run("run.lua", IMAGE, "keep", "true")
      assert.are.equal(125, r.code)
      assert.are.equal('ctrlua: snapshot "keep": already exists\n', r.stderr)
      assert.are.same({ "keep" }, env:containers())
      r = env:run("containers.lua", "rm", "keep")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.same({}, env:leftovers("keep"))
    end)

    it("--label shows in containers info", function()
      local r = env:run("run.lua", "--label", "k=v", "--label", "team=ops", IMAGE, "lab", "true")
      assert.are.equal(0, r.code, r.stderr)
      r = env:run("containers.lua", "info", "lab")
      assert.are.equal(0, r.code, r.stderr)
      local info = core.json_decode(r.stdout)
      assert.are.equal("v", info.Labels.k)
      assert.are.equal("ops", info.Labels.team)
      assert.are.equal(IMAGE, info.Image)
    end)

    it("--snapshotter native works and leaves nothing with --rm", function()
      local r = env:run("run.lua", "--rm", "--snapshotter", "native", IMAGE, "nat", "sh", "-c",
        "cat /proc/self/mountinfo | head -1")
      assert.are.equal(0, r.code, r.stderr)
      assert.is_nil(r.stdout:find("overlay", 1, true), r.stdout)
      assert.are.same({}, env:leftovers("nat", "native"))
    end)

    it("--state given through a symlink still runs (its bundles' paths are canonical)", function()
      assert(core.mkdir(env.state, 448))
      local link = env.dir .. "/state-link"
      assert(core.symlink(env.state, link))
      local cmd = env:cmdline("run.lua", "--rm", IMAGE, "sym", "echo", "through-link"):gsub(
        "%-%-state " .. S.q(env.state):gsub("%p", "%%%0"), "--state " .. S.q(link))
      local out, code = S.sh(cmd)
      assert.are.equal(0, code, out)
      assert.are.equal("through-link\n", out)
      assert.are.same({}, env:leftovers("sym"))
    end)

    it("--snapshotter-label labels the snapshot", function()
      local r = env:run("run.lua", "--snapshotter-label", "color=blue", IMAGE, "sl", "true")
      assert.are.equal(0, r.code, r.stderr)
      r = env:run("snapshots.lua", "info", "sl")
      assert.are.equal(0, r.code, r.stderr)
      local info = core.json_decode(r.stdout)
      local labels = info.Labels or info.labels
      assert.are.equal("blue", labels and labels.color, r.stdout)
    end)
  end)

  describe("failures in the child leave nothing behind", function()
    it("a missing binary: 127 and one line", function()
      local r = run_rm("nf", "/no/such/binary")
      assert.are.equal(127, r.code)
      assert.matches("^ctrlua: [^\n]*/no/such/binary[^\n]*\n$", r.stderr)
      assert.are.same({}, r.left)
      r = run_rm("nf2", "nosuchcommand")
      assert.are.equal(127, r.code)
      assert.matches("^ctrlua: [^\n]*nosuchcommand[^\n]*\n$", r.stderr)
      assert.are.same({}, r.left)
    end)

    it("a file that is not executable: 126 and one line", function()
      local r = run_rm("nx", "/etc/passwd")
      assert.are.equal(126, r.code)
      assert.matches("^ctrlua: [^\n]*/etc/passwd[^\n]*\n$", r.stderr)
      assert.are.same({}, r.left)
    end)

    it("a bad mount in a --config spec: 125 and one line naming the mount", function()
      local bdir = env.dir .. "/bundle"
      B.make(bdir, { args = { "true" }, edit = function(spec)
        spec.root.path = bdir .. "/rootfs"
        table.insert(spec.mounts, { destination = "/mnt/badmount", type = "bind",
          source = env.dir .. "/does-not-exist", options = core.json_array({ "rbind" }) })
      end })
      local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "badm")
      assert.are.equal(125, r.code)
      assert.matches("^ctrlua: [^\n]*/mnt/badmount[^\n]*\n$", r.stderr)
      assert.are.same({}, env:leftovers("badm"))
      assert.are.same({}, S.mounts_under(bdir))
    end)
  end)

  describe("spec sources", function()
    it("--config SPEC.json ID runs a spec file", function()
      local bdir = env.dir .. "/bundle"
      B.make(bdir, { args = { "sh", "-c", "echo from-config; hostname" }, hostname = "cfghost",
        edit = function(spec) spec.root.path = bdir .. "/rootfs" end })
      local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "cfg")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("from-config\ncfghost\n", r.stdout)
      assert.are.same({}, env:leftovers("cfg"))
    end)

    it("--rootfs DIR ID cmd runs a plain directory", function()
      local bdir = env.dir .. "/bundle"
      B.make(bdir)
      assert(core.write_file(bdir .. "/rootfs/marker", "plain-dir\n", { mode = 420 }))
      local r = env:run("run.lua", "--rm", "--rootfs", bdir .. "/rootfs", "rfs", "cat", "/marker")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("plain-dir\n", r.stdout)
      assert.are.same({}, env:leftovers("rfs"))
      assert.are.same({}, S.mounts_under(bdir))
    end)
  end)

  describe("two runs with the same ID at once", function()
    it("one runs, the other fails cleanly with 125, the winner's files intact", function()
      local ids = { "same", "same" }
      local h1 = env:spawn("run.lua", "--rm", IMAGE, ids[1], "sh", "-c", "sleep 1; echo winner")
      local h2 = env:spawn("run.lua", "--rm", IMAGE, ids[2], "sh", "-c", "sleep 1; echo winner")
      local r1, r2 = h1:wait(), h2:wait()
      local win, lose = r1, r2
      if r1.code ~= 0 then win, lose = r2, r1 end
      assert.are.equal(0, win.code, win.stderr)
      assert.are.equal("winner\n", win.stdout)
      assert.are.equal(125, lose.code, lose.stderr)
      assert.are.equal("", lose.stdout)
      assert.matches("^ctrlua: [^\n]*already exists[^\n]*\n$", lose.stderr)
      assert.are.same({}, env:leftovers("same"))
    end)

    it("the loser does not disturb a running winner", function()
      local h = env:spawn("run.lua", IMAGE, "busy", "sh", "-c",
        "echo hello > /root/mine; echo up; sleep 60")
      local pid = env:wait_running("busy")
      S.until_true(function() return (S.slurp(h.out) or ""):find("up") end, 10, "the winner")
      local r = env:run("run.lua", "--rm", IMAGE, "busy", "true")
      assert.are.equal(125, r.code)
      assert.matches("^ctrlua: [^\n]*already exists[^\n]*\n$", r.stderr)
      -- the winner still runs, with its rootfs mounted and its record and state in place
      assert.are.equal("running", env:task_status("busy").status)
      assert.is_true(S.exists(env:state_dir() .. "/busy/config.json"))
      assert.are.same({ "busy" }, env:containers())
      assert.are.equal(1, #S.mounts_under(env:state_dir() .. "/busy/rootfs"))
      assert.are.equal("hello\n", S.slurp(env:state_dir() .. "/busy/rootfs/root/mine"))
      core.kill(pid, 9)
      assert.are.equal(137, h:wait().code)
    end)
  end)

  describe("validation, in ctr's words", function()
    for _, case in ipairs({
      { "no image", {}, "image ref must be provided" },
      { "no id", { IMAGE }, "container id must be provided" },
      { "config with more", { "--config", "/dev/null", "x", "y" },
        "with spec config file, only container id should be provided" },
      { "config without id", { "--config", "/dev/null" }, "container id must be provided" },
      { "detach and rm", { "--rm", "-d", IMAGE, "x" }, "flags --detach and --rm cannot be specified together" },
      { "unknown image", { "--pull", "never", "ctrlua.test/nosuch:1", "x", "true" }, 'image "ctrlua.test/nosuch:1": not found' },
      { "invalid id", { IMAGE, "-bad/id", "true" },
        'invalid container id "-bad/id": must match [A-Za-z0-9][A-Za-z0-9_.-]{0,75}' },
      { "too long id", { IMAGE, ("a"):rep(77), "true" },
        'invalid container id "' .. ("a"):rep(77) .. '": must match [A-Za-z0-9][A-Za-z0-9_.-]{0,75}' },
      { "unknown flag", { "--bogus", IMAGE, "x" }, "flag provided but not defined: -bogus" },
      -- ctr passes these on (json then cannot encode infinity, and an active snapshot stayed)
      { "--cpus inf", { "--cpus", "inf", IMAGE, "x" },
        "invalid value for flag --cpus: +Inf is not a finite number of CPUs" },
      { "--cpus nan", { "--cpus", "nan", IMAGE, "x" }, "invalid value for flag --cpus: NaN is not a number of CPUs" },
      { "--cpus -2", { "--cpus", "-2", IMAGE, "x" }, "invalid value for flag --cpus: -2 is negative" },
    }) do
      it(case[1], function()
        local r = env:run("run.lua", unpack(case[2]))
        assert.are.equal(125, r.code)
        assert.are.equal("ctrlua: " .. case[3] .. "\n", r.stderr)
        assert.are.same({}, env:leftovers("x"))
      end)
    end

    -- the image's /etc/passwd is untrusted input: too big is refused, and the error names it
    -- as the image has it (it was `/proc/self/fd/4', the fd it was read through)
    it("an oversized /etc/passwd in the image: 125, the error names /etc/passwd, nothing left", function()
      local oci = require("ctr.oci")
      local tar = require("support.tar")
      local pw = ("x"):rep(oci.MAX_USER_FILE + 1)
      local layer = tar.build({ { name = "etc/", type = "dir", mode = 493 },
        { name = "etc/passwd", data = pw, mode = 420 } })
      local img = S.derive_image(env.dir, "ctrlua.test/bigpasswd:latest", function(c) c.User = "bob" end, { layer })
      assert.are.equal(0, env:run("images.lua", "import", img).code)
      local r = env:run("run.lua", "--rm", "ctrlua.test/bigpasswd:latest", "pw", "id")
      assert.are.equal(125, r.code, r.stderr)
      assert.matches("^ctrlua: read `/etc/passwd' in the image's rootfs %(layer `[^\n]*'%): " ..
        (#pw) .. " bytes is over the limit of " .. oci.MAX_USER_FILE .. "[^\n]*\n$", r.stderr)
      assert.is_nil(r.stderr:find("/proc/self/fd", 1, true))
      assert.are.same({}, env:leftovers("pw"))
    end)

    it("--platform linux/arm64 on the amd64-only image is a clear error", function()
      local r = env:run("run.lua", "--rm", "--platform", "linux/arm64", IMAGE, "arm", "true")
      assert.are.equal(125, r.code)
      assert.matches("^ctrlua: [^\n]*linux/arm64[^\n]*\n$", r.stderr)
      assert.are.same({}, env:leftovers("arm"))
    end)
  end)
end)
