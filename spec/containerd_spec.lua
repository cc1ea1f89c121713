-- containerd through ctrlua-runc: Debian's containerd, started by this spec on a private socket
-- with its root and state in a temporary directory and the CRI plugin disabled (the host's
-- /etc/containerd is never read), runs the test image with `ctr run --runc-binary
-- build/ctrlua-runc`; each case is compared with the same command through runc.
local core = require("ctr.core")
local S = require("support.ctrlua")
local C = require("support.containerd")

local q = S.q
local RUNC_BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
if RUNC_BIN:sub(1, 1) ~= "/" then RUNC_BIN = core.readlink("/proc/self/cwd") .. "/" .. RUNC_BIN end
local RUNC = "/usr/sbin/runc"

local have = C.available() and core.stat(RUNC)

describe("containerd with ctrlua-runc #root", function()
  if not have then
    it("needs containerd, ctr and runc (Debian's containerd and runc packages)", function()
      pending("containerd, ctr or runc is not installed")
    end)
    return
  end

  local dir

  local function pat(s) return (s:gsub("%p", "%%%0")) end

  -- a shell command; output (stdout and stderr) and exit code
  local function sh(cmd) return S.sh(cmd) end
  local cd
  local function ctr(args) return cd:ctr(args) end
  local function runtime_flags(which)
    local bin = which == "ctrlua" and RUNC_BIN or RUNC
    return ("--runc-binary %s --runc-root %s"):format(q(bin), q(dir .. "/rt-" .. which))
  end

  setup(function()
    cd = C.start()
    dir = cd.dir
  end)

  teardown(function()
    -- tasks and containers this spec left, then containerd itself (only the one we started)
    if cd then cd:stop() end
  end)

  -- the same command through runc and through ctrlua-runc: both outputs, both exit codes
  local function both(fmt, ...)
    local r = {}
    for _, which in ipairs({ "runc", "ctrlua" }) do
      local args = fmt:gsub("{RT}", runtime_flags(which)):gsub("{ID}", which .. "-" .. select(1, ...))
      local out, code = ctr(args)
      r[which] = { out = out, code = code }
    end
    return r.runc, r.ctrlua
  end

  it("a foreground run: the output and the exit code", function()
    local runc, mine = both("run --rm {RT} " .. S.IMAGE .. " {ID} sh -c 'echo hello; echo err >&2; exit 5'", "fg")
    assert.are.equal(5, runc.code)
    assert.are.equal(runc.code, mine.code)
    -- stdout and stderr come through two pipes: compare the lines, not their interleaving
    local function lines(t)
      local l = {}
      for x in t:gmatch("[^\n]+") do l[#l + 1] = x end
      table.sort(l)
      return l
    end
    assert.are.same(lines(runc.out), lines(mine.out))
    assert.are.same({ "err", "hello" }, lines(mine.out))
    -- and nothing left: no container, no state under our runtime root
    local out = ctr("containers ls -q")
    assert.is_nil(out:find("ctrlua-fg", 1, true))
    assert.are.same({}, core.listdir(dir .. "/rt-ctrlua/" .. cd.ns) or {})
  end)

  it("-d, then task kill and task delete", function()
    for _, which in ipairs({ "runc", "ctrlua" }) do
      local id = "d-" .. which
      local out, code = ctr(("run -d %s %s %s sleep 60"):format(runtime_flags(which), S.IMAGE, id))
      assert(code == 0, out)
      out = ctr("task ls")
      assert.truthy(out:match(pat(id) .. "%s+%d+%s+RUNNING"), out)
      local tpid = tonumber(out:match(pat(id) .. "%s+(%d+)"))
      if which == "ctrlua" then
        -- our state, as runc keeps it: ROOT/ID, 0700, and the init's pid
        local st = core.json_decode(S.must(("%s --root %s state %s"):format(q(RUNC_BIN),
          q(dir .. "/rt-ctrlua/" .. cd.ns), id)))
        assert.are.equal("running", st.status)
        assert.are.equal(tpid, st.pid)
      end
      -- a task that is running cannot be deleted, as with runc
      local _, dcode = ctr("task delete " .. id)
      assert.are_not.equal(0, dcode)
      out, code = ctr("task kill -s KILL " .. id)
      assert(code == 0, out)
      S.until_true(function() return ctr("task ls"):match(pat(id) .. "%s+%d+%s+STOPPED") end, 10, "stopped")
      out, code = ctr("task delete " .. id)
      assert(code == 0, out)
      assert.is_nil(core.stat("/proc/" .. tpid .. "/stat"))
      out, code = ctr("containers rm " .. id)
      assert(code == 0, out)
    end
    assert.are.same({}, core.listdir(dir .. "/rt-ctrlua/" .. cd.ns) or {})
  end)

  it("-t: the process has a terminal, and its exit code comes back", function()
    -- ctr -t wants a terminal of its own: run it under script(1)
    local r = {}
    for _, which in ipairs({ "runc", "ctrlua" }) do
      local cmd = ("%s run --rm -t %s %s tty-%s sh -c 'tty; exit 4'"):format(cd:ctr_cmd(),
        runtime_flags(which), S.IMAGE, which)
      local out, code = sh("script -qec " .. q(cmd) .. " /dev/null")
      r[which] = { out = out, code = code }
    end
    assert.are.equal(4, r.runc.code)
    assert.are.equal(r.runc.code, r.ctrlua.code)
    assert.truthy(r.ctrlua.out:find("/dev/pts/0", 1, true), r.ctrlua.out)
  end)

  it("--memory-limit: the container's cgroup has the limit", function()
    for _, which in ipairs({ "runc", "ctrlua" }) do
      local id = "mem-" .. which
      local out, code = ctr(("run -d --memory-limit 33554432 %s %s %s sleep 60"):format(
        runtime_flags(which), S.IMAGE, id))
      assert(code == 0, out)
      -- containerd's cgroupsPath is /NAMESPACE/ID
      local dirs = assert(require("ctr.cgroups").dirs("/" .. cd.ns .. "/" .. id))
      local limit
      for _, d in pairs(dirs) do
        limit = limit or core.read_file(d .. "/memory.limit_in_bytes") or core.read_file(d .. "/memory.max")
      end
      assert.are.equal(33554432, tonumber(limit), which)
      ctr("task kill -s KILL " .. id)
      S.until_true(function() return ctr("task ls"):match(pat(id) .. "%s+%d+%s+STOPPED") end, 10, "stopped")
      out, code = ctr("task delete " .. id)
      assert(code == 0, out)
      ctr("containers rm " .. id)
      -- the cgroup goes with the task
      for _, d in pairs(dirs) do assert.is_nil(core.stat(d), d) end
    end
  end)

  -- the first column of each line after the header: a table's keys
  local function first_column(out)
    local keys = {}
    for line in out:gmatch("[^\n]+") do keys[#keys + 1] = line:match("^(%S+)") end
    table.remove(keys, 1)
    table.sort(keys)
    return keys
  end

  local function stop_and_remove(id)
    ctr("task kill -s KILL " .. id)
    S.until_true(function() return ctr("task ls"):match(pat(id) .. "%s+%d+%s+STOPPED") end, 10, "stopped")
    local out, code = ctr("task delete " .. id)
    assert(code == 0, out)
    ctr("containers rm " .. id)
  end

  it("task ps, pause, resume, metrics and exec: what ctr shows is the same as under runc", function()
    local r = {}
    for _, which in ipairs({ "runc", "ctrlua" }) do
      local id = "pm-" .. which
      local t = {}
      r[which] = t
      local out, code = ctr(("run -d %s %s %s sleep 60"):format(runtime_flags(which), S.IMAGE, id))
      assert(code == 0, out)
      local tpid = tonumber(ctr("task ls"):match(pat(id) .. "%s+(%d+)"))
      -- ps: the init alone, then with a detached exec's process too (runc ps --format json)
      out, code = ctr("task ps " .. id)
      assert(code == 0, which .. ": " .. out)
      assert.truthy(out:match("\n" .. tpid .. "%s"), which .. ": " .. out)
      -- the header's columns, not its padding: tabwriter pads to the widest pid, and the
      -- two runs' pids may differ in digits
      local cols = {}
      for w in out:match("^[^\n]*"):gmatch("%S+") do cols[#cols + 1] = w end
      t.ps_header = table.concat(cols, " ")
      t.ps_rows = #first_column(out)
      out, code = ctr(("task exec -d --exec-id bg %s sleep 60"):format(id))
      assert(code == 0, which .. ": " .. out)
      S.until_true(function() return #first_column(ctr("task ps " .. id)) == 2 end, 10, which .. ": 2 processes")
      -- exec: output and exit code, its environment and user
      t.exec = { ctr(("task exec --exec-id e1 %s sh -c 'echo in-$((40+2)); exit 3'"):format(id)) }
      t.exec_user = { ctr(("task exec --exec-id e2 --user 1000 %s id -u"):format(id)) }
      t.exec_missing = select(2, ctr(("task exec --exec-id e3 %s /no/such/program"):format(id))) ~= 0
      -- pause and resume, and the status ctr shows for each
      out, code = ctr("task pause " .. id)
      assert(code == 0, which .. ": " .. out)
      t.paused = ctr("task ls"):match(pat(id) .. "%s+%d+%s+(%u+)")
      -- a paused task takes no exec (runc exec without --ignore-paused)
      t.exec_paused = select(2, ctr(("task exec --exec-id e4 %s true"):format(id))) ~= 0
      out, code = ctr("task resume " .. id)
      assert(code == 0, which .. ": " .. out)
      t.resumed = ctr("task ls"):match(pat(id) .. "%s+%d+%s+(%u+)")
      -- metrics: the shim reads the container's cgroup, found through the runtime's state
      out, code = ctr("task metrics " .. id)
      assert(code == 0, which .. ": " .. out)
      t.metrics = {}
      for _, k in ipairs(first_column(out)) do
        if k ~= id then t.metrics[#t.metrics + 1] = k end
      end
      stop_and_remove(id)
    end
    assert.are.same({ "in-42\n", 3 }, r.ctrlua.exec)
    assert.are.same({ "1000\n", 0 }, r.ctrlua.exec_user)
    assert.is_true(r.ctrlua.exec_missing)
    assert.are.equal(2, r.ctrlua.ps_rows + 1)
    assert.are.equal("PAUSED", r.ctrlua.paused)
    assert.is_true(r.ctrlua.exec_paused)
    assert.are.equal("RUNNING", r.ctrlua.resumed)
    assert.are.same(r.runc, r.ctrlua)
  end)

  it("a runtime error reaches ctr through the shim's log.json", function()
    -- a command that does not exist: both runtimes fail create, and say why
    local runc, mine = both("run --rm {RT} " .. S.IMAGE .. " {ID} /no/such/program", "err")
    assert.are_not.equal(0, runc.code)
    assert.are_not.equal(0, mine.code)
    assert.truthy(mine.out:find("/no/such/program", 1, true), mine.out)
  end)
end)
