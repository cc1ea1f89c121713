-- core.proc_stat: the one reader of /proc/PID/stat (base/procstat.c), which owner records,
-- task liveness and runc's state all rest on.  A process names itself (comm, up to 15 bytes)
-- and may put spaces and parentheses there; the fields after it must still be read right.
local core = require("ctr.core")
local S = require("support.ctrlua")

describe("core.proc_stat", function()
  local tmp
  before_each(function() tmp = S.tmpdir() end)
  after_each(function() core.remove_tree(tmp) end)

  it("reads state, parent and start time past a comm with spaces and parentheses", function()
    -- the executable's name becomes its comm: ") S 1 2 (x" would fool a parser that counts
    -- spaces from the start of the line, or stops at the first ')'
    local exe = tmp .. "/) S 1 2 (x"
    S.must("cp /bin/sleep " .. S.q(exe))
    local pidf = tmp .. "/pid"
    S.must(("(%s 30 & echo $! > %s) </dev/null >/dev/null 2>&1"):format(S.q(exe), S.q(pidf)))
    local pid = tonumber(S.slurp(pidf))
    finally(function() core.kill(pid, 9) end)
    -- (until the fork has exec'd it)
    local line = S.until_true(function()
      local l = core.read_file("/proc/" .. pid .. "/stat", 4096)
      return l and l:find("() S 1 2 (x) S ", 1, true) and l
    end, 10, "the renamed sleep to run")
    local st = assert(core.proc_stat(pid))
    assert.are.equal("S", st.state)
    -- the fields from the last ')': state, ppid, ..., starttime is field 22
    local rest = line:match(".*%) (.*)$")
    local f = {}
    for w in rest:gmatch("%S+") do f[#f + 1] = w end
    assert.are.equal(tonumber(f[2]), st.ppid)
    assert.are.equal(tonumber(f[20]), st.start_time)
    assert.is_nil(st.exit_code)
  end)

  it("gives a zombie's exit code and signal, and ENOENT for a pid that is gone", function()
    -- children of a parent that never reaps them (sh exec'd into sleep): zombies that keep
    -- their wait status in field 52
    -- the children wait for `go` so that they die once the parent is sleep (sh might reap)
    local f1, f2, fp, go = tmp .. "/z1", tmp .. "/z2", tmp .. "/parent", tmp .. "/go"
    local wait = ("while [ ! -e %s ]; do sleep 0.01; done"):format(go)
    assert(core.write_file(tmp .. "/parent.sh", ("(%s; exit 7) &\necho $! > %s\n(%s; exec sh -c 'kill -TERM $$') &\n" ..
      "echo $! > %s\necho $$ > %s\nexec sleep 30\n"):format(wait, f1, wait, f2, fp), { mode = 420 }))
    S.must("sh " .. S.q(tmp .. "/parent.sh") .. " </dev/null >/dev/null 2>&1 &")
    S.until_true(function() return (S.slurp(fp) or ""):match("^%d+\n$") end, 10, "the parent")
    local parent = tonumber(S.slurp(fp))
    finally(function() core.kill(parent, 9) end)
    S.until_true(function()
      local st = core.read_file("/proc/" .. parent .. "/stat", 4096)
      return st and st:find("(sleep)", 1, true)
    end, 10, "the parent to be sleep")
    assert(core.write_file(go, "", { mode = 420 }))
    local z1, z2 = tonumber(S.slurp(f1)), tonumber(S.slurp(f2))
    local st1 = S.until_true(function()
      local st = core.proc_stat(z1)
      return st and st.state == "Z" and st
    end, 10, "the first child to exit")
    assert.are.equal(7, st1.exit_code)
    assert.is_nil(st1.signal)
    assert.are.equal(parent, st1.ppid)
    local st2 = S.until_true(function()
      local st = core.proc_stat(z2)
      return st and st.state == "Z" and st
    end, 10, "the second child to die")
    assert.are.equal(143, st2.exit_code)
    assert.are.equal(15, st2.signal)

    local st, msg, errno = core.proc_stat(4194304)
    assert.is_nil(st)
    assert.are.equal("ENOENT", core.errno_name(errno), msg)
    assert.truthy(msg:find("/proc/4194304/stat", 1, true), msg)
  end)
end)
