-- Records that cannot be misread (docs/crash-consistency.md, "A record that cannot be read is
-- never taken as absent"): one reader per kind checks the type of every field it uses and names
-- the file at fault; the listings warn and list the rest; no sweep removes what an unreadable
-- record might name; `rm`/`rm -f` remove what exists whatever the records say.  And the init of a
-- task dies with the process that made it, until it is started.
local core = require("ctr.core")
local records = require("ctr.store.records")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE

describe("ctr.store.records", function()
  it("checks the type of every field a reader uses, and names the field", function()
    local function check(rec, shape, opts)
      local ok, msg = records.check(rec, shape, opts)
      return ok and true or msg
    end
    local image = { name = "x", target = { digest = "sha256:" .. ("a"):rep(64), size = 10 } }
    assert.is_true(check(image, records.image))
    assert.are.equal("expected a JSON object, got number", check(123, records.image))
    assert.are.equal("expected a JSON object, got array", check(core.json_decode("[]"), records.image))
    assert.are.equal('field "target": expected object, got string',
      check({ name = "x", target = "y" }, records.image))
    assert.are.equal('field "target.digest": expected digest (sha256: and 64 lowercase hex digits), got number',
      check({ name = "x", target = { digest = 5, size = 1 } }, records.image))
    assert.are.equal('field "target.size": expected non-negative integer, got number',
      check({ name = "x", target = { digest = image.target.digest, size = -1 } }, records.image))
    assert.are.equal('field "labels": expected object of strings, got object',
      check({ name = "x", target = image.target, labels = { a = 1 } }, records.image))
    assert.are.equal('field "name": missing', check({ target = image.target }, records.image))
    assert.are.equal('field "name": "y" is not the record\'s own name "x"',
      check({ name = "y", target = image.target }, records.image, { name_field = "name", name = "x" }))
    -- a snapshot id is a path component: never anything but hex
    assert.are.equal('field "id": expected hex identifier, got string',
      check({ name = "k", id = "../../x", kind = "active" }, records.snapshot))
    assert.are.equal('field "kind": expected one of active, view, committed, got "gone"',
      check({ name = "k", id = "ab", kind = "gone" }, records.snapshot))
    assert.are.equal('field "id": expected string, got number', check({ id = 5 }, records.container))
    assert.are.equal('field "runtime.name": expected string, got boolean',
      check({ id = "c", runtime = { name = true } }, records.container))
    assert.are.equal('field "pid": expected non-negative integer, got string',
      check({ status = "running", pid = "12" }, records.task_status))
    -- an optional null reads as absent
    local rec = core.json_decode('{"id":"c","image":null}')
    assert.is_true(check(rec, records.container))
    assert.is_nil(rec.image)
  end)

  it("reads a record, or says why not, naming the file", function()
    local dir = S.tmpdir()
    local p = dir .. "/x.json"
    local rec, err = records.read(p, records.image)
    assert.is_nil(rec)
    assert.are.equal("NOT_FOUND", err.sym)
    for _, case in ipairs({
      { "", "empty file" },
      { '{"name": "x", "tar', "malformed JSON" },
      { "123", "expected a JSON object, got number" },
      { ("["):rep(5000), "malformed JSON" },
    }) do
      assert(core.write_file(p, case[1]))
      rec, err = records.read(p, records.image)
      assert.is_nil(rec)
      assert.are.equal("CORRUPT", err.sym)
      assert.are.equal(p, err.path)
      assert.are.equal(1, err.msg:find(p .. ": " .. case[2], 1, true), err.msg)
    end
    assert(core.write_file(p, ("x"):rep(100)))
    rec, err = records.read(p, records.image, { cap = 10 })
    assert.are.equal("CORRUPT", err.sym)
    core.remove_tree(dir)
  end)
end)

describe("records on disk #root", function()
  local env
  after_each(function()
    if env then
      for _, c in ipairs(env:containers()) do env:run("containers.lua", "rm", "-f", c) end
      env:destroy()
      env = nil
    end
  end)
  teardown(function() S.cleanup() end)

  local function snap_path(key)
    return ("%s/meta/%s/snapshots.overlayfs/%s.json"):format(env.root, env.ns, require("ctr.store.meta").escape(key))
  end
  local function snap_dir(key)
    local rec = core.json_decode(assert(core.read_file(snap_path(key))))
    return env.root .. "/snapshots/overlayfs/snapshots/" .. rec.id
  end
  local function chain_id()
    for _, s in ipairs(env:snapshots()) do
      if s.kind == "Committed" then return s.key end
    end
  end
  -- Run each command (each sweeps the snapshot directories, gc too), and check(cmd) after each.
  local function every_command(check)
    for _, cmd in ipairs({ { "images.lua", "ls" }, { "containers.lua", "ls" }, { "tasks.lua", "ls" },
      { "content.lua", "ls" }, { "snapshots.lua", "ls" }, { "gc" } }) do
      local r = env:run(unpack(cmd))
      if check then check(table.concat(cmd, " ")) end
      assert.are.equal(0, r.code, table.concat(cmd, " ") .. ": " .. r.stderr)
    end
  end

  it("a truncated snapshot record keeps the directory it names: reported, kept, removed by rm", function()
    env = S.new_env()
    local r = env:run("run.lua", "-d", IMAGE, "c1", "sh", "-c", "echo mine >/data; exec sleep 60")
    assert.are.equal(0, r.code, r.stderr)
    local upper = snap_dir("c1")
    S.until_true(function() return S.exists(upper .. "/fs/data") end, 10, "the container to write")
    -- cut short to nothing: not even its id can be made out
    assert(core.write_file(snap_path("c1"), ""))
    every_command(function(cmd)
      assert.is_true(S.exists(upper .. "/fs/data"), cmd .. " removed the writable layer of a running container")
    end)
    r = env:run("snapshots.lua", "ls")
    assert.are.equal(0, r.code)
    assert.is_truthy(r.stderr:find("ctrlua: warning: " .. snap_path("c1") .. ": empty file", 1, true), r.stderr)
    assert.is_truthy(r.stdout:find(chain_id(), 1, true), "the other snapshots are listed")
    -- the image's layer, cut in the middle: its id can be made out, and its directory is kept
    local layer = chain_id()
    local lower = snap_dir(layer)
    local data = assert(core.read_file(snap_path(layer)))
    assert(core.write_file(snap_path(layer), data:sub(1, math.floor(#data / 2))))
    every_command(function(cmd)
      assert.is_true(S.exists(lower .. "/fs/bin/busybox"), cmd .. " removed an image's unpacked layer")
      assert.is_true(S.exists(upper .. "/fs/data"), cmd)
    end)
    r = env:run("run.lua", "--rm", IMAGE, "c2", "true")
    assert.are.equal(125, r.code)
    assert.is_truthy(r.stderr:find(snap_path(layer), 1, true), r.stderr)
    assert.is_nil(r.stderr:find("attempt to", 1, true))
    -- the explicit repair: rm removes the records; the directories go at the next sweep
    r = env:run("containers.lua", "rm", "-f", "c1")
    assert.are.equal(0, r.code, r.stderr)
    r = env:run("snapshots.lua", "rm", layer)
    assert.are.equal(0, r.code, r.stderr)
    every_command()
    assert.is_false(S.exists(upper))
    assert.is_false(S.exists(lower))
    assert.are.equal(0, env:run("images.lua", "unpack", IMAGE).code)
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "c1", "true").code)
    assert.are.same({}, env:leftovers("c1"))
  end)

  it("a run --rm cut by a power cut (its records never synced: empty, zeros, cut short) is removed by rm -f and gc", function()
    env = S.new_env()
    local meta = require("ctr.store.meta")
    local function ctr_path(id) return ("%s/meta/%s/containers/%s.json"):format(env.root, env.ns, meta.escape(id)) end
    local dirs_before = #(core.listdir(env.root .. "/snapshots/overlayfs/snapshots") or {})
    local tears = {
      empty = function() return "" end,
      zeros = function(data) return ("\0"):rep(#data) end,
      half = function(data) return data:sub(1, math.floor(#data / 2)) end,
    }
    for _, how in ipairs({ "empty", "zeros", "half" }) do
      local id = "pc-" .. how
      -- killed with both records written, and then what a power cut may leave of files never
      -- synced: the name, with less than the data (STATE goes with the machine)
      local r = env:run("run.lua", "--rm", IMAGE, id, "true", { env = "CTRLUA_FAULT=container.recorded" })
      assert.are.equal(137, r.code, r.stderr)
      for _, p in ipairs({ ctr_path(id), snap_path(id) }) do
        local data = assert(core.read_file(p))
        assert(core.write_file(p, tears[how](data)))
      end
      every_command()
      r = env:run("containers.lua", "rm", id)
      assert.are.equal(1, r.code)
      assert.matches("%-%-force removes it", r.stderr)
      r = env:run("containers.lua", "rm", "-f", id)
      assert.are.equal(0, r.code, r.stderr)
      assert.is_false(S.exists(ctr_path(id)))
      assert.is_false(S.exists(snap_path(id)), how .. ": the snapshot named by the container's id goes with it")
      r = env:run("gc")
      assert.are.equal(0, r.code, r.stderr)
      for _, cmd in ipairs({ "containers.lua", "snapshots.lua" }) do
        r = env:run(cmd, "ls")
        assert.are.equal(0, r.code, r.stderr)
        assert.are.equal("", r.stderr, cmd .. " ls: nothing unreadable is left")
      end
      assert.are.equal(dirs_before, #(core.listdir(env.root .. "/snapshots/overlayfs/snapshots") or {}),
        how .. ": the sweep removed the run's snapshot directory")
      assert.are.same({}, env:leftovers(id))
      assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, id, "true").code)
    end
  end)

  it("a container record over the reader's limit is never written; one left by another is removable", function()
    env = S.new_env()
    -- a spec of 5 MB (create reads at most 16)
    local r = env:run("run.lua", "-d", IMAGE, "s1", "true")
    assert.are.equal(0, r.code, r.stderr)
    local spec = core.json_decode(assert(core.read_file(env:state_dir("s1", "config.json"))))
    assert.are.equal(0, env:run("containers.lua", "rm", "-f", "s1").code)
    spec.annotations = { big = ("x"):rep(5 * 1024 * 1024) }
    local file = env.dir .. "/big.json"
    assert(core.write_file(file, core.json_encode(spec)))
    r = env:run("run.lua", "--config", file, "big1")
    assert.are.equal(125, r.code)
    assert.matches("over the limit", r.stderr)
    assert.are.same({}, env:containers())
    assert.are.same({}, env:leftovers("big1"))
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "big1", "true").code)
    -- such a record, written by an older ctrlua: listed as unreadable, removed by rm -f only
    local path = ("%s/meta/%s/containers/big2.json"):format(env.root, env.ns)
    assert(core.write_file(path, core.json_encode({ id = "big2", spec = spec })))
    r = env:run("containers.lua", "ls")
    assert.are.equal(0, r.code)
    assert.is_truthy(r.stderr:find("ctrlua: warning: read `" .. path .. "'", 1, true), r.stderr)
    r = env:run("containers.lua", "info", "big2")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.stderr:find(path, 1, true))
    r = env:run("containers.lua", "rm", "big2")
    assert.are.equal(1, r.code)
    assert.matches("%-%-force removes it", r.stderr)
    assert.are.equal(0, env:run("containers.lua", "rm", "-f", "big2").code)
    assert.is_false(S.exists(path))
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "big2", "true").code)
  end)

  it("a garbled task status hides nothing: listed UNKNOWN, refused by rm, removed by delete -f", function()
    env = S.new_env()
    local r = env:run("run.lua", "-d", IMAGE, "g1", "sleep", "60")
    assert.are.equal(0, r.code, r.stderr)
    local pid = env:wait_running("g1")
    local upper = snap_dir("g1")
    local status = env:state_dir("g1", "status")
    assert(core.write_file(status, '{"status": "runn'))
    r = env:run("tasks.lua", "ls")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("g1%s+" .. pid .. "%s+UNKNOWN", r.stdout)
    assert.is_truthy(r.stderr:find("ctrlua: warning: " .. status .. ": malformed JSON", 1, true), r.stderr)
    -- neither rm nor a plain delete takes it for stopped
    r = env:run("containers.lua", "rm", "g1")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.stderr:find(status, 1, true), r.stderr)
    assert.are.equal(1, env:run("tasks.lua", "delete", "g1").code)
    every_command(function(cmd)
      assert.is_true(S.exists(upper .. "/fs"), cmd .. " removed the running container's upper directory")
    end)
    -- kill and wait still reach it; the monitor records the exit anew
    assert.are.equal(0, env:run("tasks.lua", "kill", "-s", "KILL", "g1").code)
    assert.are.equal(137, env:run("tasks.lua", "wait", "g1").code)
    assert.matches("g1%s+%d+%s+STOPPED", env:run("tasks.lua", "ls").stdout)
    assert.are.equal(0, env:run("tasks.lua", "delete", "g1").code)
    assert.are.equal(0, env:run("containers.lua", "rm", "g1").code)

    -- both of its records garbled: delete -f finds its processes by their root, its cgroup by
    -- its bundle
    r = env:run("run.lua", "-d", IMAGE, "g2", "sleep", "60")
    assert.are.equal(0, r.code, r.stderr)
    env:wait_running("g2")
    assert(core.write_file(env:state_dir("g2", "status"), "[]"))
    assert(core.write_file(env:state_dir("g2", "task.json"), '{"pid": "x"}'))
    r = env:run("tasks.lua", "ls")
    assert.matches("g2%s+%d+%s+UNKNOWN", r.stdout)
    assert.are.equal(0, env:run("tasks.lua", "delete", "-f", "g2").code)
    assert.are.same({}, S.processes_in_ns(env.ns))
    assert.are.equal(0, env:run("containers.lua", "rm", "g2").code)
    assert.are.same({}, env:leftovers("g2"))
  end)

  it("records of the wrong JSON type are named, the others listed, and rm removes them", function()
    env = S.new_env()
    local meta = env.root .. "/meta/" .. env.ns
    local function put(kind, name, text)
      local p = ("%s/%s/%s.json"):format(meta, kind, name)
      assert(core.mkdir_p(meta .. "/" .. kind, 448))
      assert(core.write_file(p, text))
      return p
    end
    local i1 = put("images", "bad1", "123")
    local i2 = put("images", "bad2", '{"name": "bad2", "target": "sha256:x"}')
    local r = env:run("images.lua", "ls", "-q")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal(IMAGE .. "\n", r.stdout)
    assert.is_truthy(r.stderr:find("ctrlua: warning: " .. i1 .. ": expected a JSON object, got number", 1, true), r.stderr)
    assert.is_truthy(r.stderr:find("ctrlua: warning: " .. i2 .. ': field "target": expected object, got string', 1, true), r.stderr)
    r = env:run("run.lua", "--rm", "bad1", "x1", "true")
    assert.are.equal(125, r.code)
    assert.is_truthy(r.stderr:find(i1, 1, true), r.stderr)
    assert.are.equal(0, env:run("images.lua", "rm", "bad1", "bad2").code)

    local c1 = put("containers", "bad3", '{"id": 5}')
    r = env:run("containers.lua", "ls", "-q")
    assert.are.equal(0, r.code)
    assert.are.equal("", r.stdout)
    assert.is_truthy(r.stderr:find(c1 .. ': field "id": expected string, got number', 1, true), r.stderr)
    r = env:run("containers.lua", "info", "bad3")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.stderr:find(c1, 1, true))
    assert.are.equal(0, env:run("containers.lua", "rm", "-f", "bad3").code)

    local s1 = put("snapshots.overlayfs", "bad4", "[]")
    local s2 = put("snapshots.overlayfs", "bad5", '{"name": "bad5", "id": "../../../etc", "kind": "active"}')
    r = env:run("snapshots.lua", "ls")
    assert.are.equal(0, r.code)
    assert.is_truthy(r.stdout:find("Committed", 1, true))
    assert.is_truthy(r.stderr:find(s1 .. ": expected a JSON object, got array", 1, true), r.stderr)
    assert.is_truthy(r.stderr:find(s2 .. ': field "id": expected hex identifier', 1, true), r.stderr)
    assert.are.equal(0, env:run("snapshots.lua", "rm", "bad4", "bad5").code)
    assert.is_false(S.exists(s1))
    assert.are.equal(0, env:run("run.lua", "--rm", IMAGE, "x1", "true").code)
  end)

  it("containers rm -f removes a container whatever state its task is in", function()
    env = S.new_env()
    -- paused
    assert.are.equal(0, env:run("run.lua", "-d", IMAGE, "p1", "sleep", "60").code)
    env:wait_running("p1")
    assert.are.equal(0, env:run("tasks.lua", "pause", "p1").code)
    -- created, never to be started (its ctrlua killed)
    assert.are.equal(137, env:run("run.lua", "-d", IMAGE, "n1", "sleep", "60",
      { env = "CTRLUA_FAULT=task.created" }).code)
    -- running in the foreground of another ctrlua
    local h = env:spawn("run.lua", IMAGE, "f1", "sleep", "60")
    env:wait_running("f1")
    for _, id in ipairs({ "p1", "n1", "f1" }) do
      local r = env:run("containers.lua", "rm", "-f", id)
      assert.are.equal(0, r.code, id .. ": " .. r.stderr)
    end
    h:wait(10)
    assert.are.same({}, env:containers())
    for _, id in ipairs({ "p1", "n1", "f1" }) do assert.are.same({}, env:leftovers(id)) end
    assert.are.same({}, S.processes_in_ns(env.ns))
  end)

  it("an init waiting to be started dies with the process that made it", function()
    env = S.new_env()
    -- the processes of task id (by their cgroup, /NS/ID)
    local function procs_of(id)
      local out = {}
      for _, p in ipairs(S.processes_in_ns(env.ns)) do
        local cg = core.read_file("/proc/" .. p:match("^%d+") .. "/cgroup", 65536) or ""
        if cg:find(":/" .. env.ns .. "/" .. id .. "\n", 1, true) then out[#out + 1] = p end
      end
      return out
    end
    local function dies(id)
      S.until_true(function() return #procs_of(id) == 0 end, 5, "the init of " .. id .. " to die")
    end
    -- in the foreground, its parent is run; detached, the monitor (which dies here)
    local r = env:run("run.lua", "--rm", IMAGE, "w1", "sleep", "60", { env = "CTRLUA_FAULT=create.ready" })
    assert.are.equal(137, r.code, r.stderr)
    dies("w1")
    r = env:run("run.lua", "-d", IMAGE, "w2", "sleep", "60", { env = "CTRLUA_FAULT=create.ready" })
    assert.are.equal(125, r.code, r.stderr)
    dies("w2")
    -- cloned by a helper that joined a user namespace (CLONE_PARENT: still run's child)
    local holder = tonumber(S.must("unshare --user sleep 60 >/dev/null 2>&1 & echo $!"):match("%d+"))
    S.until_true(function()
      return (core.readlink("/proc/" .. holder .. "/ns/user") or "") ~= core.readlink("/proc/self/ns/user")
    end, 5, "unshare to make its user namespace")
    for _, m in ipairs({ "uid_map", "gid_map" }) do
      local f = assert(io.open("/proc/" .. holder .. "/" .. m, "w"))
      assert(f:write("0 0 65536\n"))
      assert(f:close())
    end
    r = env:run("run.lua", "--rm", "--with-ns", "user:/proc/" .. holder .. "/ns/user", IMAGE, "w3",
      "sleep", "60", { env = "CTRLUA_FAULT=create.ready" })
    core.kill(holder, 9)
    assert.are.equal(137, r.code, r.stderr)
    dies("w3")
    assert.are.equal(0, env:run("gc").code)
    for _, id in ipairs({ "w1", "w2", "w3" }) do env:run("containers.lua", "rm", "-f", id) end
    for _, id in ipairs({ "w1", "w2", "w3" }) do assert.are.same({}, env:leftovers(id)) end
  end)
end)
