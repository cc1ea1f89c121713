-- TTYs and the caller's lifecycle points: `run -t`
-- under a real pty (tmux, on a private socket) gives an interactive shell whose `stty size`
-- is the pane's and follows a resize, and leaves the caller's terminal mode as it found it;
-- `run -d -t` keeps the pty with the monitor and `tasks attach` connects to it; poststart
-- runs after start and poststop on delete, with the state on stdin, a failure logged and not
-- fatal; --no-pivot runs; a SIGTERM that comes between start and the wait reaches the
-- container.  Real containers from the busybox test image.
local core = require("ctr.core")
local S = require("support.ctrlua")
local B = require("support.bundle")
local tmux_server = require("support.tmux").server

local q = S.q
local arr = core.json_array


-- A container command that reports which of its fds 0, 1, 2 are terminals ("fds:tty,pipe,...").
local REPORT_FDS = "for n in 0 1 2; do if [ -t $n ]; then f=$f,tty; else f=$f,pipe; fi; done; echo fds:${f#,}"

describe("tty and lifecycle hooks #root", function()
  local env, T
  before_each(function()
    env = S.new_env()
    T = tmux_server(env.dir)
  end)
  after_each(function()
    if T then T.kill() end
    T = nil
    for _, id in ipairs(core.listdir(env:state_dir()) or {}) do
      env:run("tasks.lua", "delete", "-f", id)
    end
    env:destroy()
    env = nil
  end)
  teardown(function() S.cleanup() end)

  it("run -t: an interactive shell on a pty whose size is the pane's and follows a resize; the terminal mode is restored", function()
    local d = env.dir
    T.start(("stty -g > %s/before; %s; echo $? > %s/rc.tmp; stty -g > %s/after; mv %s/rc.tmp %s/rc; sleep 30\n")
      :format(q(d), env:cmdline("run.lua", "--rm", "-t", S.IMAGE, "tt1", "sh"), q(d), q(d), q(d), q(d)))
    T.wait_for("/ # ", "the container's prompt")
    T.keys("echo answer-$((6*7))")
    T.wait_for("answer%-42", "the answer to a typed command")
    local h, w = T.size()
    T.keys("stty size")
    T.wait_for("\n" .. h .. " " .. w .. "\n", "stty size " .. h .. " " .. w)
    T.cmd("resize-window", "-t", "t", "-x", "100", "-y", "30")
    local h2, w2 = T.size()
    assert.are_not.equal(w, w2)
    -- the clear is tmux's: the second answer must come from after the resize
    T.cmd("clear-history", "-t", "t")
    T.keys("clear; stty size")
    T.wait_for("\n?" .. h2 .. " " .. w2 .. "\n", "stty size " .. h2 .. " " .. w2 .. " after the resize")
    T.keys("exit 3")
    S.until_true(function() return S.exists(d .. "/rc") end, 15, "the run to end")
    assert.are.equal("3\n", S.slurp(d .. "/rc"))
    assert.are.equal(S.slurp(d .. "/before"), S.slurp(d .. "/after"))
    assert.are.same({}, env:leftovers("tt1"))
  end)

  it("run -t without a terminal on stdin: the output still comes, and a piped stdin ends as ^D", function()
    local input = env.dir .. "/in"
    assert(core.write_file(input, "one\ntwo\n", { mode = 420 }))
    -- no line editor in the container (it could flush input when it changes the mode): the
    -- pty's canonical mode turns the final ^D into end of input
    local r = env:run("run.lua", "--rm", "-t", S.IMAGE, "tt2",
      "sh", "-c", "while read -r l; do echo got-$l; done; echo eof", { stdin = input })
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("got%-one\r\n", r.stdout)
    assert.matches("got%-two\r\n", r.stdout)
    assert.matches("\r\neof\r\n$", r.stdout)
    assert.are.same({}, env:leftovers("tt2"))
  end)

  it("run -d -t keeps the pty with the monitor; tasks attach connects the caller's terminal to it", function()
    local r = env:run("run.lua", "-d", "-t", S.IMAGE, "tt3", "sh")
    assert.are.equal(0, r.code, r.stderr)
    local pid = env:wait_running("tt3")
    assert.is_true(S.exists("/proc/" .. pid))
    local d = env.dir
    T.start(("stty -g > %s/before; %s 2> %s/attach.err; echo $? > %s/rc.tmp; stty -g > %s/after; " ..
      "mv %s/rc.tmp %s/rc; sleep 30\n")
      :format(q(d), env:cmdline("tasks.lua", "attach", "tt3"), q(d), q(d), q(d), q(d), q(d)))
    -- keys go to the pane only once attach has put its terminal in raw mode (before that the
    -- pane's line discipline would echo them itself); an attach that ended says why
    local tty = T.cmd("display-message", "-p", "-t", "t", "#{pane_tty}"):match("%S+")
    S.until_true(function()
      if S.exists(d .. "/rc") then
        error("tasks attach ended early: " .. S.slurp(d .. "/rc") .. (S.slurp(d .. "/attach.err") or ""))
      end
      return S.sh("stty -a -F " .. q(tty)):match("%-icanon")
    end, 15, "tasks attach to put the pane's terminal in raw mode")
    T.keys("echo attached-$((6*7)) $$")
    T.wait_for("attached%-42 1", "the detached shell's answer")
    local h, w = T.size()
    T.keys("stty size")
    T.wait_for("\n" .. h .. " " .. w .. "\n", "stty size " .. h .. " " .. w)
    T.keys("exit 5")
    S.until_true(function() return S.exists(d .. "/rc") end, 15, "the attach to end")
    assert.are.equal("5\n", S.slurp(d .. "/rc"))
    assert.are.equal(S.slurp(d .. "/before"), S.slurp(d .. "/after"))
    local del = env:run("tasks.lua", "delete", "tt3")
    assert.are.equal(0, del.code, del.stderr)
    assert.is_false(S.exists(env:state_dir() .. "/tt3"))
  end)

  describe("without -t, the caller's terminal is not the container's", function()
    it("a run gets pipes in its place: stty raw -echo and a new size inside leave the caller's terminal as it was", function()
      T.run(env:cmdline("run.lua", "--rm", S.IMAGE, "ta1", "sh", "-c",
        REPORT_FDS .. "; stty raw -echo; stty rows 5 cols 9; exit 0"))
      assert.are.equal(0, T.rc())
      local before, after = T.modes()
      assert.are.equal(before, after)
      assert.matches("fds:pipe,pipe,pipe", T.screen())
      assert.are.same({}, env:leftovers("ta1"))
    end)

    it("what the container writes right before it exits is all there, and its exit code comes back", function()
      local out = env.dir .. "/pane.out"
      T.run(env:cmdline("run.lua", "--rm", S.IMAGE, "ta2", "sh", "-c",
        "head -c 204800 /dev/zero | tr '\\0' @; head -c 10000 /dev/zero | tr '\\0' % >&2; exit 7"), { go = true })
      -- every byte the pane's programs write, from before the run
      T.cmd("pipe-pane", "-t", "t", "-o", "cat >> " .. q(out))
      T.go()
      assert.are.equal(7, T.rc())
      local data = S.until_true(function()
        local d = S.slurp(out)
        return d and d:find("END-OF-RUN", 1, true) and d
      end, 15, "the pane's output")
      assert.are.equal(204800, select(2, data:gsub("@", "")))
      assert.are.equal(10000, select(2, data:gsub("%%", "")))
      assert.are.same({}, env:leftovers("ta2"))
    end)

    it("typed input reaches the container, and ^D ends it", function()
      T.run(env:cmdline("run.lua", "--rm", S.IMAGE, "ta3", "sh", "-c",
        "echo ready; read line; echo got-$line; cat; echo cat-done; exit 5"))
      T.wait_for("ready", "the container to run")
      T.keys("hello")
      T.wait_for("got%-hello", "the typed line to reach the container")
      T.keys("more")
      T.wait_for("more\nmore", "cat's copy of the second line")
      T.cmd("send-keys", "-t", "t", "C-d")
      assert.are.equal(5, T.rc())
      assert.matches("cat%-done", T.screen())
      local before, after = T.modes()
      assert.are.equal(before, after)
      assert.are.same({}, env:leftovers("ta3"))
    end)

    it("a ^C reaches the container through ctrlua while the copy runs", function()
      T.run(env:cmdline("run.lua", "--rm", S.IMAGE, "ta4", "sh", "-c",
        "trap 'echo got-int; exit 42' INT; echo ready; while :; do sleep 0.05; done"))
      T.wait_for("ready", "the container to run")
      T.cmd("send-keys", "-t", "t", "C-c")
      assert.are.equal(42, T.rc())
      assert.matches("got%-int", T.screen())
      assert.are.same({}, env:leftovers("ta4"))
    end)

    it("tasks exec gets pipes too, and its stty leaves the caller's terminal as it was", function()
      local r = env:run("run.lua", "-d", S.IMAGE, "ta5", "sleep", "30")
      assert.are.equal(0, r.code, r.stderr)
      T.run(env:cmdline("tasks.lua", "exec", "--exec-id", "e1", "ta5", "sh", "-c",
        REPORT_FDS .. "; stty raw -echo; exit 6"))
      assert.are.equal(6, T.rc())
      local before, after = T.modes()
      assert.are.equal(before, after)
      assert.matches("fds:pipe,pipe,pipe", T.screen())
    end)

    it("fds that are not terminals are the container's as they are: no pipe, no copy", function()
      local input = env.dir .. "/in.txt"
      assert(core.write_file(input, "line-one\n", { mode = 420 }))
      local r = env:run("run.lua", "--rm", S.IMAGE, "ta6", "sh", "-c",
        "readlink /proc/self/fd/0; readlink /proc/self/fd/1; readlink /proc/self/fd/2; cat", { stdin = input })
      assert.are.equal(0, r.code, r.stderr)
      local fd0, fd1, fd2, rest = r.stdout:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$")
      assert.are.equal(input, fd0)
      assert.matches("^" .. env.dir:gsub("%p", "%%%0") .. "/out%.%d+%.stdout$", fd1)
      assert.matches("^" .. env.dir:gsub("%p", "%%%0") .. "/out%.%d+%.stderr$", fd2)
      assert.are.equal("line-one\n", rest)
      assert.are.same({}, env:leftovers("ta6"))
    end)
  end)

  it("tasks attach to a task without a terminal or fifos is refused", function()
    local r = env:run("run.lua", "-d", S.IMAGE, "tt4", "sleep", "30")
    assert.are.equal(0, r.code, r.stderr)
    local a = env:run("tasks.lua", "attach", "tt4")
    assert.are_not.equal(0, a.code)
    assert.matches("no fifos to attach to", a.stderr)
  end)

  describe("hooks", function()
    local function hook(log, kind)
      return { path = "/bin/sh", args = arr({ "sh", "-c", 'read -r s; echo "' .. kind .. ' $s" >> ' .. q(log) }) }
    end

    it("poststart runs after start and poststop on delete, in order, each with the state on stdin", function()
      local bdir = env.dir .. "/bundle"
      local log = env.dir .. "/hooks.log"
      B.make(bdir, { args = { "sh", "-c", "echo main" }, edit = function(spec)
        spec.root.path = bdir .. "/rootfs"
        spec.annotations = { ["org.test"] = "yes" }
        spec.hooks = { poststart = arr({ hook(log, "poststart") }), poststop = arr({ hook(log, "poststop") }) }
      end })
      local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "hk1")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("main\n", r.stdout)
      assert.are.equal("", r.stderr)
      local lines = {}
      for l in assert(core.read_file(log)):gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(2, #lines)
      local kinds, states = {}, {}
      for i, l in ipairs(lines) do
        local kind, json = l:match("^(%S+) (%b{})$")
        kinds[i], states[i] = kind, core.json_decode(json)
      end
      assert.are.same({ "poststart", "poststop" }, kinds)
      local bundle = env:state_dir() .. "/hk1"
      assert.are.equal("hk1", states[1].id)
      assert.are.equal("running", states[1].status)
      assert.are.equal(bundle, states[1].bundle)
      assert.is_number(states[1].pid)
      assert.is_true(states[1].pid > 1)
      assert.are.equal("1.0.2-dev", states[1].ociVersion)
      assert.are.equal("yes", states[1].annotations["org.test"])
      assert.are.equal("stopped", states[2].status)
      assert.are.equal("hk1", states[2].id)
      assert.are.equal(bundle, states[2].bundle)
      assert.are.same({}, env:leftovers("hk1"))
    end)

    it("poststart and poststop of a detached task: start runs one, tasks delete the other", function()
      local bdir = env.dir .. "/bundle"
      local log = env.dir .. "/hooks.log"
      B.make(bdir, { args = { "sleep", "30" }, edit = function(spec)
        spec.root.path = bdir .. "/rootfs"
        spec.hooks = { poststart = arr({ hook(log, "poststart") }), poststop = arr({ hook(log, "poststop") }) }
      end })
      local r = env:run("run.lua", "-d", "--config", bdir .. "/config.json", "hk2")
      assert.are.equal(0, r.code, r.stderr)
      assert.matches("^poststart {.*\"status\":\"running\"", assert(core.read_file(log)))
      assert.are.equal(0, env:run("tasks.lua", "kill", "-s", "KILL", "hk2").code)
      assert.are.equal(137, env:run("tasks.lua", "wait", "hk2").code)
      local del = env:run("tasks.lua", "delete", "hk2")
      assert.are.equal(0, del.code, del.stderr)
      local text = assert(core.read_file(log))
      assert.matches("^poststart [^\n]*\npoststop {[^\n]*\"status\":\"stopped\"[^\n]*}\n$", text)
    end)

    it("a failing poststart hook is logged and the container still runs", function()
      local bdir = env.dir .. "/bundle"
      B.make(bdir, { args = { "sh", "-c", "sleep 0.1; echo still-ran" }, edit = function(spec)
        spec.root.path = bdir .. "/rootfs"
        spec.hooks = { poststart = arr({ { path = "/bin/false" } }) }
      end })
      local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "hk3")
      assert.are.equal(0, r.code, r.stderr)
      assert.are.equal("still-ran\n", r.stdout)
      assert.matches("^ctrlua: task hk3: poststart hook `/bin/false': exit status 1\n$", r.stderr)
      assert.are.same({}, env:leftovers("hk3"))
    end)
  end)

  it("--no-pivot runs the container (MS_MOVE + chroot)", function()
    local r = env:run("run.lua", "--rm", "--no-pivot", S.IMAGE, "np1", "sh", "-c", "echo no-pivot; cat /etc/passwd | head -1")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^no%-pivot\nroot:", r.stdout)
    assert.are.same({}, env:leftovers("np1"))
  end)

  it("a SIGTERM that comes between start and the wait reaches the container (no leftover)", function()
    -- the poststart hook runs in exactly that window: it waits until the container's shell
    -- catches SIGTERM (SigCgt bit 15), then sends SIGTERM to its parent, ctrlua
    local bdir = env.dir .. "/bundle"
    local hook = [[
read -r s
pid=$(echo "$s" | sed 's/.*"pid":\([0-9]*\).*/\1/')
i=0
while [ $i -lt 500 ]; do
  hex=$(awk '/^SigCgt/ {print $2}' /proc/$pid/status)
  [ $(( 0x$hex & 0x4000 )) -ne 0 ] && break
  sleep 0.01; i=$((i+1))
done
kill -TERM $PPID
]]
    B.make(bdir, { args = { "sh", "-c", "trap 'echo got-term; exit 42' TERM; while :; do sleep 0.05; done" },
      edit = function(spec)
        spec.root.path = bdir .. "/rootfs"
        spec.hooks = { poststart = arr({ { path = "/bin/sh", args = arr({ "sh", "-c", hook }) } }) }
      end })
    local r = env:run("run.lua", "--rm", "--config", bdir .. "/config.json", "sig1")
    assert.are.equal(42, r.code, r.stderr)
    assert.are.equal("got-term\n", r.stdout)
    assert.are.same({}, env:leftovers("sig1"))
  end)
end)
