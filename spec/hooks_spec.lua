-- The runtime's lifecycle details: OCI hooks at their points
-- with the state on stdin, process.terminal over a console socket, sysctls, rootfs
-- propagation, oomScoreAdj, user namespaces at the runtime level.  Real bundles, real
-- containers (support.bundle).
local core = require("ctr.core")
local B = require("support.bundle")

local arr = core.json_array

describe("runtime lifecycle #root", function()
  local dir
  before_each(function() dir = B.tmpdir() end)
  after_each(function()
    for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
      local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
      if mp and mp:find(dir, 1, true) == 1 then os.execute("umount -l " .. B.q(mp)) end
    end
    assert(core.remove_tree(dir))
  end)

  local function hook(kind, log, extra)
    local h = { path = "/bin/sh", args = arr({ "sh", "-c", 'read -r s; echo "' .. kind .. ' $s $X" >> ' .. log .. (extra or "") }),
      env = arr({ "X=env-" .. kind }) }
    return h
  end

  describe("hooks", function()
    it("runs every create-time hook in order with the state on stdin, and startContainer in the container", function()
      local log = dir .. "/hooks.log"
      B.make(dir, { args = { "sh", "-c", "cat /started.log; echo main" }, edit = function(s)
        s.annotations = { ["org.test"] = "yes" }
        s.hooks = {
          prestart = arr({ hook("prestart", log) }),
          createRuntime = arr({ hook("createRuntime", log) }),
          createContainer = arr({ hook("createContainer", log, "; readlink /proc/self/ns/mnt >> " .. log) }),
          -- in the container: its own /bin/sh, its own filesystem
          startContainer = arr({ { path = "/bin/sh", args = arr({ "sh", "-c", 'read -r s; echo "startContainer $s" > /started.log' }) } }),
        }
      end })
      local code, _, out, err = B.run(dir)
      assert.are.equal(0, code, err)
      local text = assert(core.read_file(log))
      local lines = {}
      for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(4, #lines, text)
      assert.truthy(lines[1]:match("^prestart {.*} env%-prestart$"), lines[1])
      assert.truthy(lines[2]:match("^createRuntime "), lines[2])
      assert.truthy(lines[3]:match("^createContainer "), lines[3])
      -- createContainer ran in the container's mount namespace, the others in ours
      assert.are_not.equal(core.readlink("/proc/self/ns/mnt"), lines[4])
      local state = core.json_decode(lines[1]:match("^prestart (%b{})"))
      -- prestart sees "created" as runc passes it (runtime-tools' hooks_stdin checks it),
      -- createRuntime "creating"
      assert.are.equal("created", state.status)
      assert.are.equal("creating", core.json_decode(lines[2]:match("^createRuntime (%b{})")).status)
      assert.are.equal(dir, state.bundle)
      assert.are.equal("yes", state.annotations["org.test"])
      assert.is_number(state.pid)
      assert.truthy(out:match("^startContainer {.*\"status\":\"running\".*}\nmain\n$"), out)
    end)

    it("fails create when a createRuntime hook fails, leaving no init behind", function()
      B.make(dir, { args = { "true" }, edit = function(s)
        s.hooks = { createRuntime = arr({ { path = "/bin/false" } }) }
      end })
      local code, err = B.run(dir)
      assert.is_nil(code)
      assert.truthy(err:find("createRuntime hook `/bin/false': exit status 1", 1, true), err)
    end)

    it("kills a hook after its timeout", function()
      B.make(dir, { args = { "true" }, edit = function(s)
        s.hooks = { prestart = arr({ { path = "/bin/sleep", args = arr({ "sleep", "30" }), timeout = 1 } }) }
      end })
      local t0 = core.monotime()
      local code, err = B.run(dir)
      assert.is_nil(code)
      assert.truthy(err:find("killed after its timeout of 1 s", 1, true), err)
      assert.truthy(core.monotime() - t0 < 10)
    end)

    it("run_hooks runs every poststart hook and reports the first failure", function()
      local log = dir .. "/post.log"
      B.make(dir, { edit = function(s)
        s.hooks = { poststart = arr({ { path = "/bin/false" }, hook("poststart", log) }) }
      end })
      local ok, err = core.run_hooks(dir, "poststart", '{"id":"x","status":"running"}')
      assert.is_nil(ok)
      assert.truthy(err:find("poststart hook `/bin/false'", 1, true), err)
      assert.are.equal('poststart {"id":"x","status":"running"} env-poststart\n', core.read_file(log))
    end)
  end)

  describe("terminal", function()
    it("sends the pty master over the console socket; the shell answers on it", function()
      B.make(dir, { args = { "sh" }, edit = function(s) s.process.terminal = true end })
      local sock = dir .. "/console.sock"
      local lfd = assert(core.unix_listen(sock))
      local pid, msg = core.create(dir, { console_socket = sock, exec_fifo = dir .. "/fifo" })
      assert.truthy(pid, msg)
      local master, name = core.recv_fd(lfd)
      core.close(lfd)
      assert.truthy(master, name)
      assert.are.equal("/dev/ptmx", name)
      local ok, serr = core.start(dir .. "/fifo")
      if not ok then
        local ready = core.poll({ master }, 500)
        error(serr .. " / " .. tostring(ready[master] and core.read(master, 4096)))
      end
      assert(core.write(master, "tty; echo hi-$((40+2)); exit 3\n"))
      local buf = ""
      local deadline = core.monotime() + 10
      while not buf:find("hi%-42") and core.monotime() < deadline do
        local ready = core.poll({ master }, 200)
        if ready[master] then
          local chunk = core.read(master, 4096)
          if not chunk or chunk == "" then break end
          buf = buf .. chunk
        end
      end
      local code = core.wait(pid)
      core.close(master)
      assert.truthy(buf:find("hi-42", 1, true), buf)
      assert.truthy(buf:find("/dev/pts/0", 1, true), buf)
      assert.are.equal(3, code)
    end)

    it("refuses process.terminal without a console socket", function()
      B.make(dir, { args = { "true" }, edit = function(s) s.process.terminal = true end })
      local pid, err = core.create(dir, {})
      assert.is_nil(pid)
      assert.truthy(err:find("no console socket", 1, true), err)
    end)
  end)

  describe("linux details", function()
    it("writes namespaced sysctls inside the container", function()
      B.make(dir, { args = { "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni" }, edit = function(s)
        s.linux.sysctl = { ["net.ipv4.ip_forward"] = "1", ["kernel.shmmni"] = "1234" }
      end })
      local code, _, out, err = B.run(dir)
      assert.are.equal(0, code, err)
      assert.are.equal("1\n1234\n", out)
    end)

    it("refuses a sysctl outside the container's namespaces, as runc", function()
      B.make(dir, { args = { "true" }, edit = function(s) s.linux.sysctl = { ["kernel.panic"] = "1" } end })
      local code, err = B.run(dir)
      assert.is_nil(code)
      assert.truthy(err:find('sysctl "kernel.panic" is not in a separate kernel namespace', 1, true), err)
      B.make(dir, { args = { "true" }, edit = function(s)
        s.linux.sysctl = { ["net.ipv4.ip_forward"] = "1" }
        table.remove(s.linux.namespaces, 5) -- network
      end })
      code, err = B.run(dir)
      assert.truthy(err:find('sysctl "net.ipv4.ip_forward" not allowed in host network namespace', 1, true), err)
    end)

    for _, p in ipairs({ { "shared", "shared:" }, { "unbindable", "unbindable" }, { "private", nil } }) do
      it("applies rootfsPropagation " .. p[1] .. " to the container's /", function()
        B.make(dir, { args = { "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo" }, edit = function(s)
          s.linux.rootfsPropagation = p[1]
        end })
        local code, _, out, err = B.run(dir)
        assert.are.equal(0, code, err)
        if p[2] then assert.truthy(out:find(p[2], 1, true), out)
        else assert.falsy(out:find("shared:", 1, true) or out:find("master:", 1, true), out) end
      end)
    end

    it("sets oomScoreAdj", function()
      B.make(dir, { args = { "cat", "/proc/self/oom_score_adj" }, edit = function(s) s.process.oomScoreAdj = 500 end })
      local code, info, out, err = B.run(dir)
      assert.are.equal(0, code, tostring(info) .. tostring(err))
      assert.are.equal("500\n", out)
    end)

    it("runs in a new user namespace with the maps written by the parent", function()
      B.make(dir, { args = { "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u" }, edit = function(s)
        table.insert(s.linux.namespaces, { type = "user" })
        s.linux.uidMappings = arr({ { containerID = 0, hostID = 200000, size = 65536 } })
        s.linux.gidMappings = arr({ { containerID = 0, hostID = 200000, size = 65536 } })
      end })
      B.sh("chown -R 200000:200000 " .. B.q(dir .. "/rootfs"))
      local code, _, out, err = B.run(dir)
      assert.are.equal(0, code, err)
      assert.truthy(out:match("^%s*0%s+200000%s+65536\n%s*0%s+200000%s+65536\n0\n$"), out)
    end)

    it("joins a user namespace by path before the others", function()
      -- a holder process in a user namespace of its own (unshare maps root to root)
      local hold = B.sh("unshare -U --map-root-user sleep 30 >/dev/null 2>&1 & echo $!"):match("%d+")
      finally(function() os.execute("kill " .. hold .. " 2>/dev/null") end)
      B.until_true(function() return core.readlink("/proc/" .. hold .. "/ns/user") ~= core.readlink("/proc/self/ns/user") end, 5)
      B.make(dir, { args = { "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map" }, edit = function(s)
        table.insert(s.linux.namespaces, { type = "user", path = "/proc/" .. hold .. "/ns/user" })
        -- only root is mapped there: devpts cannot take gid=5
        for _, m in ipairs(s.mounts) do
          if m.type == "devpts" then m.options = arr({ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" }) end
        end
      end })
      local code, info, out, err = B.run(dir)
      assert.are.equal(0, code, tostring(info) .. tostring(err))
      assert.truthy(out:find(core.readlink("/proc/" .. hold .. "/ns/user"), 1, true), out)
    end)

    it("refuses an unknown capability at create", function()
      B.make(dir, { args = { "true" }, edit = function(s) table.insert(s.process.capabilities.bounding, "CAP_BOGUS") end })
      local code, err = B.run(dir)
      assert.is_nil(code)
      assert.truthy(err:find("unknown capability CAP_BOGUS", 1, true), err)
    end)
  end)
end)
