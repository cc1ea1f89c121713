-- Attacks on the runtime's own binary (runc CVE-2019-5736), each played against a copy of the
-- built tree (S.copy_runtime) so that a regression damages the copy, never build/ctrlua.
--
-- The hostile image has its own /lib64/ld-linux-x86-64.so.2 (spec/fixtures/hostile-loader.c):
-- were ctrlua (a dynamic executable) ever executed inside the container, the kernel would map
-- that "loader", which keeps the executable open as fd 7 and runs /attack.sh; the script waits
-- until no ctrlua runs (the file is then no longer busy) and rewrites it through
-- /proc/self/fd/7.  Two ways in: the container's command is a symlink to /proc/self/exe (the
-- init), and `tasks exec` of a script whose #! chain ends at /proc/self/exe.  Against the
-- runtime before it ran its container processes from the sealed ctrlua-exec, both rewrote the
-- binary within a second or two.
local core = require("ctr.core")
local S = require("support.ctrlua")
local B = require("support.bundle")

local q = S.q

local function sha(path) return core.sha256(assert(core.read_file(path, 64 * 1024 * 1024))) end

local x86_64 = (core.uname() or {}).machine == "x86_64"

describe("runtime binary attacks (CVE-2019-5736) #root", function()
  if not x86_64 then
    it("needs x86_64 (the hostile loader is written for it)", function() pending("not x86_64") end)
    return
  end

  local env, bin, tree, loader
  setup(function()
    loader = S.tmpdir() .. "/ld.so"
    S.must(("cc -static -nostdlib -no-pie -fno-pie -ffreestanding -fno-stack-protector -Os -o %s %s")
      :format(q(loader), q("spec/fixtures/hostile-loader.c")))
  end)
  teardown(function()
    core.remove_tree(loader:match("^(.*)/"))
    S.cleanup()
  end)
  before_each(function()
    env = S.new_env()
    bin, tree = S.copy_runtime()
    env.bin = bin
  end)
  after_each(function()
    for _, id in ipairs(core.listdir(env:state_dir()) or {}) do
      env:run("tasks.lua", "delete", "-f", id)
    end
    env:destroy()
    core.remove_tree(tree)
  end)

  -- a busybox rootfs with the hostile loader, /attack.sh writing its outcome to /result.NAME
  local function hostile_rootfs()
    local b = env.dir .. "/bundle"
    assert(core.mkdir(b, 493))
    B.make(b, {})
    local rootfs = b .. "/rootfs"
    S.must(("mkdir -p %s/lib64 && cp %s %s/lib64/ld-linux-x86-64.so.2"):format(q(rootfs),
      q(loader), q(rootfs)))
    assert(core.write_file(rootfs .. "/attack.sh", [[
i=0
while [ $i -lt 250 ]; do
  if printf '#!/bin/sh\necho owned\n' 2>/dev/null >/proc/self/fd/7; then echo wrote >/result; exit 0; fi
  i=$((i+1)); sleep 0.02
done
echo "gave up: $(readlink /proc/self/fd/7)" >/result
]], { mode = 493 }))
    return rootfs
  end

  -- the outcome: the copy's binary unchanged, and what the attack script (if it ran) said
  local function outcome(rootfs, before, wait_for_result)
    if wait_for_result then
      pcall(S.until_true, function() return core.stat(rootfs .. "/result") end, 8, "the attack")
    end
    return sha(bin) == before, S.slurp(rootfs .. "/result")
  end

  it("the init: a command that is a #! script whose interpreter is /proc/self/exe, with the image's own loader", function()
    local rootfs = hostile_rootfs()
    assert(core.write_file(rootfs .. "/evil", "#!/proc/self/exe\n", { mode = 493 }))
    local before = sha(bin)
    local r = env:run("run.lua", "-d", "--rootfs", rootfs, "x1", "/evil")
    assert.are.equal(0, r.code, r.stderr)
    -- no ctrlua may run meanwhile (it would keep its binary busy): the status file is read
    pcall(S.until_true, function()
      local st = env:task_status("x1")
      return core.stat(rootfs .. "/result") or (st and st.status == "stopped")
    end, 8, "the attack or the init's exit")
    local same, result = outcome(rootfs, before, false)
    local w = env:run("tasks.lua", "wait", "x1")
    assert.is_true(same, "the runtime's binary was rewritten from inside the container")
    assert.are_not.equal("wrote\n", result)
    -- what stopped it: the kernel ran the init's /proc/self/exe, the sealed ctrlua-exec, which
    -- refuses to run as anything but the runtime's last step
    assert.are.equal(126, w.code, w.stderr)
  end)

  it("the init: a command that is a symlink to /proc/self/exe is refused before it starts", function()
    local rootfs = hostile_rootfs()
    assert(core.symlink("/proc/self/exe", rootfs .. "/evil"))
    local before = sha(bin)
    local r = env:run("run.lua", "-d", "--rootfs", rootfs, "x1", "/evil")
    local same, result = outcome(rootfs, before, r.code == 0)
    assert.is_true(same, "the runtime's binary was rewritten from inside the container")
    assert.are_not.equal("wrote\n", result)
    assert.are.equal(126, r.code, r.stderr)
    assert.truthy(r.stderr:find("the runtime's own executable: refused", 1, true), r.stderr)
    assert.are.same({}, env:leftovers("x1"))
  end)

  it("tasks exec of a script whose #! chain ends at /proc/self/exe", function()
    local rootfs = hostile_rootfs()
    assert(core.write_file(rootfs .. "/a.sh", "#!/b.sh\n", { mode = 493 }))
    assert(core.write_file(rootfs .. "/b.sh", "#!/proc/self/exe\n", { mode = 493 }))
    local before = sha(bin)
    local r = env:run("run.lua", "-d", "--rootfs", rootfs, "x2", "sleep", "100")
    assert.are.equal(0, r.code, r.stderr)
    -- detached, so that no ctrlua is left running the binary the attack wants to write
    r = env:run("tasks.lua", "exec", "-d", "--exec-id", "e1", "x2", "/a.sh")
    local same, result = outcome(rootfs, before, true)
    assert.is_true(same, "the runtime's binary was rewritten from inside the container")
    assert.are_not.equal("wrote\n", result)
    -- and the chain ends at the sealed ctrlua-exec, never at a host file
    r = env:run("tasks.lua", "exec", "--exec-id", "e2", "x2", "/a.sh")
    assert.are.equal(126, r.code, r.stderr)
    assert.truthy(r.stderr:find("refused (CVE-2019-5736)", 1, true), r.stderr)
  end)

  it("the monitor of a detached task runs from a sealed copy of its binary", function()
    local r = env:run("run.lua", "-d", S.IMAGE, "x3", "sleep", "100")
    assert.are.equal(0, r.code, r.stderr)
    local st = env:task_status("x3")
    local exe = core.readlink("/proc/" .. st.monitor_pid .. "/exe")
    assert.truthy(exe and exe:find("^/memfd:ctrlua%-monitor"), exe)
  end)
end)
