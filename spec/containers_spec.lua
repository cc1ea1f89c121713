local core = require("ctr.core")
local errors = require("ctr.errors")
local containers = require("ctr.containers")
local oci = require("ctr.oci")

local function tmpdir() return require("support.tmp").dir("containers") end

-- A client on temporary directories with a fake snapshotter (records calls, serves files).
local function fake_client(dir, files)
  local sn = { calls = {}, files = files or {} }
  function sn:prepare(key, parent, opts)
    self.calls[#self.calls + 1] = { "prepare", key, parent, opts and opts.labels }
    return true
  end
  function sn:view(key, parent, opts)
    self.calls[#self.calls + 1] = { "view", key, parent, opts and opts.labels }
    return true
  end
  function sn:remove(key)
    self.calls[#self.calls + 1] = { "remove", key }
    return true
  end
  function sn:read_file(key, path)
    self.calls[#self.calls + 1] = { "read", key, path }
    if self.files[path] then return self.files[path] end
    return nil, errors.new(path .. ": not found", 2)
  end
  local client = require("ctr.client").new({ root = dir .. "/root", state = dir .. "/state", namespace = "testns" })
  assert(client)
  client.snapshotter_name = "fake"
  client.snapshotter = function(_, name)
    assert.are.equal("fake", name)
    return sn
  end
  return client, sn
end

local IMAGE = { name = "ctrlua.test/busybox:latest", config = { config = {
  Env = { "PATH=/bin" }, Cmd = { "sh" }, User = "app", StopSignal = "SIGQUIT", Labels = { maintainer = "me" } } } }

describe("containers", function()
  local dir, client, sn
  local saved_unpack, saved_tasks
  before_each(function()
    dir = tmpdir()
    client, sn = fake_client(dir, { ["/etc/passwd"] = "app:x:1000:1000::/:/bin/sh\n", ["/etc/group"] = "g:x:5:app\n" })
    saved_unpack, saved_tasks = package.loaded["ctr.store.unpack"], package.loaded["ctr.tasks"]
    package.loaded["ctr.store.unpack"] = { unpack = function(_, image, opts)
      assert.are.equal("fake", opts.snapshotter)
      return "sha256:chain-of-" .. image.name
    end }
    package.loaded["ctr.tasks"] = { status = function() return nil end }
  end)
  after_each(function()
    package.loaded["ctr.store.unpack"], package.loaded["ctr.tasks"] = saved_unpack, saved_tasks
    core.remove_tree(dir)
  end)

  it("accepts ids matching the rule and refuses others naming it", function()
    for _, id in ipairs({ "a", "A9", "x_y.z-1", ("a"):rep(76) }) do
      assert.is_nil(containers.validate_id(id))
    end
    for _, id in ipairs({ "", "x/y", ".a", "-a", "_a", ("a"):rep(77), "a b", "a\n", "../x" }) do
      local err = containers.validate_id(id)
      assert.is_truthy(err, id)
      assert.are.equal("INVALID", err.sym)
    end
    local c, err = containers.new(client, "x/y")
    assert.is_nil(c)
    assert.are.equal('invalid container id "x/y": must match [A-Za-z0-9][A-Za-z0-9_.-]{0,75}', err.msg)
  end)

  it("creates a record exclusively: a duplicate id fails with EXISTS", function()
    assert(containers.new(client, "c1"))
    local c, err = containers.new(client, "c1", containers.with_container_labels({ a = "b" }))
    assert.is_nil(c)
    assert.are.equal("EXISTS", err.sym)
    assert.are.equal('container "c1": already exists', err.msg)
    assert.are.same({}, assert(containers.load(client, "c1")):labels())
  end)

  it("round-trips a record with a snapshot and a spec", function()
    local c = assert(containers.new(client, "box",
      containers.with_snapshotter("fake"),
      containers.with_new_snapshot("box", IMAGE, { labels = { l = "1" } }),
      containers.with_image(IMAGE),
      containers.with_image_config_labels(IMAGE),
      containers.with_additional_container_labels({ extra = "x" }),
      containers.with_image_stop_signal(IMAGE, "SIGTERM"),
      containers.with_runtime("io.containerd.runc.v2", { BinaryName = "crun" }),
      containers.with_new_spec(oci.with_default_unix_devices, oci.with_image_config(IMAGE), oci.with_env({ "E=1" }))))
    assert.are.same({ "prepare", "box", "sha256:chain-of-ctrlua.test/busybox:latest", { l = "1" } }, sn.calls[1])
    -- the user came from the snapshot's /etc/passwd
    local reads = 0
    for _, call in ipairs(sn.calls) do if call[1] == "read" then reads = reads + 1 end end
    assert.is_true(reads >= 2)

    local path = dir .. "/root/meta/testns/containers/box.json"
    assert.are.equal("file", core.stat(path).type)
    assert.are.equal(384, core.stat(path).mode % 4096)
    local got = assert(containers.load(client, "box"))
    local rec = assert(got:info())
    assert.are.equal("box", rec.id)
    assert.are.equal("ctrlua.test/busybox:latest", rec.image)
    assert.are.equal("fake", rec.snapshotter)
    assert.are.equal("box", rec.snapshot_key)
    assert.are.same({ name = "io.containerd.runc.v2", options = { BinaryName = "crun" } }, rec.runtime)
    assert.are.same({ maintainer = "me", extra = "x", ["io.containerd.image.config.stop-signal"] = "SIGQUIT" }, rec.labels)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", rec.created_at)
    local spec = assert(got:spec())
    assert.are.equal(core.json_encode(c.record.spec), core.json_encode(spec))
    assert.are.equal("/testns/box", spec.linux.cgroupsPath)
    assert.are.same({ "PATH=/bin", "E=1" }, spec.process.env)
    assert.are.same({ uid = 1000, gid = 1000, additionalGids = { 1000, 5 } }, spec.process.user)
    assert.are.same({ "sh" }, spec.process.args)
    assert.are.equal(10, #spec.linux.resources.devices)
  end)

  it("uses SIGTERM when the image has no stop signal, and the client's snapshotter by default", function()
    local img = { name = "i", config = {} }
    local c = assert(containers.new(client, "c2", containers.with_new_snapshot_view("c2", img),
      containers.with_image_stop_signal(img, "SIGTERM")))
    assert.are.equal("SIGTERM", c.record.labels[containers.STOP_SIGNAL_LABEL])
    assert.are.equal("fake", c.record.snapshotter)
    assert.are.equal("view", sn.calls[1][1])
  end)

  it("removes the prepared snapshot when a later opt fails, and writes nothing", function()
    local c, err = containers.new(client, "bad", containers.with_new_snapshot("bad", IMAGE),
      containers.with_new_spec(oci.with_image_config({ name = "x", config = { config = { User = "nobody" } } })))
    assert.is_nil(c)
    assert.matches("no users found for nobody", err.msg)
    assert.are.same({ "remove", "bad" }, sn.calls[#sn.calls])
    local _, lerr = containers.load(client, "bad")
    assert.are.equal("NOT_FOUND", lerr.sym)
  end)

  it("removes the prepared snapshot when the record already exists", function()
    assert(containers.new(client, "dup"))
    local c, err = containers.new(client, "dup", containers.with_new_snapshot("dup-2", IMAGE))
    assert.is_nil(c)
    assert.are.equal("EXISTS", err.sym)
    assert.are.same({ "remove", "dup-2" }, sn.calls[#sn.calls])
  end)

  -- whatever fails after the snapshot was prepared removes it: a record JSON cannot hold
  -- (an infinite number) is an error like any other; an opt that raises is a bug, raised on
  -- once the snapshot is gone
  it("removes the prepared snapshot when the record cannot be encoded (infinity), and writes nothing", function()
    local c, err = containers.new(client, "inf", containers.with_new_snapshot("inf", IMAGE),
      function(_, _, rec) rec.spec = { linux = { resources = { cpu = { quota = math.huge } } } } end)
    assert.is_nil(c)
    assert.are.equal("INVALID", err.sym)
    assert.matches('container "inf": json: cannot encode infinity', err.msg, 1, true)
    assert.are.same({ "remove", "inf" }, sn.calls[#sn.calls])
    assert.are.equal("NOT_FOUND", select(2, containers.load(client, "inf")).sym)
  end)

  it("removes the prepared snapshot when a later opt raises, and raises on", function()
    assert.has_error(function()
      containers.new(client, "boom", containers.with_new_snapshot("boom", IMAGE),
        function() error("a bug in an opt", 0) end)
    end, "a bug in an opt")
    assert.are.same({ "remove", "boom" }, sn.calls[#sn.calls])
    assert.are.equal("NOT_FOUND", select(2, containers.load(client, "boom")).sym)
  end)

  it("passes an unpack failure through without preparing anything", function()
    package.loaded["ctr.store.unpack"] = { unpack = function() return nil, errors.new("layer 1: digest mismatch") end }
    local c, err = containers.new(client, "u", containers.with_new_snapshot("u", IMAGE))
    assert.is_nil(c)
    assert.are.equal("layer 1: digest mismatch", err.msg)
    assert.are.equal(0, #sn.calls)
  end)

  it("with_context supplies another rootfs reader", function()
    local c = assert(containers.new(client, "ctx",
      containers.with_context({ read_rootfs_file = function(path)
        if path == "/etc/passwd" then return "svc:x:77:78::/:/bin/sh\n" end
        return nil, errors.new("missing", 2)
      end }),
      containers.with_new_spec(oci.with_user("svc"))))
    assert.are.equal(77, c.record.spec.process.user.uid)
    assert.are.equal(78, c.record.spec.process.user.gid)
  end)

  it("merges and clears labels atomically", function()
    local c = assert(containers.new(client, "lab", containers.with_container_labels({ a = "1", b = "2" })))
    local labels = assert(c:set_labels({ b = "", c = "3" }))
    assert.are.same({ a = "1", c = "3" }, labels)
    assert.are.same({ a = "1", c = "3" }, assert(containers.load(client, "lab")):labels())
    local _, err = c:set_labels({ big = ("x"):rep(5000) })
    assert.matches("greater than maximum size", err.msg)
    assert.has_error(function() c:set_labels({ a = 1 }) end)
  end)

  it("lists records, filtered", function()
    assert(containers.new(client, "b", containers.with_container_labels({ env = "prod" }), containers.with_image_name("img1")))
    assert(containers.new(client, "a", containers.with_container_labels({ env = "dev" })))
    assert(containers.new(client, "c"))
    local function ids(list)
      local out = {}
      for _, c in ipairs(list) do out[#out + 1] = c.id end
      return out
    end
    assert.are.same({ "a", "b", "c" }, ids(assert(containers.list(client))))
    assert.are.same({ "b" }, ids(assert(containers.list(client, { labels = { env = "prod" } }))))
    assert.are.same({ "b" }, ids(assert(containers.list(client, { "labels.env==prod" }))))
    assert.are.same({ "a", "b" }, ids(assert(containers.list(client, { "labels.env" }))))
    assert.are.same({ "a", "c" }, ids(assert(containers.list(client, { "image!=img1" }))))
    assert.are.same({ "a", "b" }, ids(assert(containers.list(client, { "id==a", "image==img1" }))))
    assert.are.same({}, ids(assert(containers.list(client, { "id==a,labels.env==prod" }))))
    local v, err = containers.list(client, { "labels.x~=y" })
    assert.is_nil(v)
    assert.matches("not supported", err.msg)
  end)

  it("deletes the record and its snapshot; keeps the snapshot when asked", function()
    local c = assert(containers.new(client, "d1", containers.with_new_snapshot("d1", IMAGE)))
    assert(c:delete())
    assert.are.same({ "remove", "d1" }, sn.calls[#sn.calls])
    assert.are.equal("NOT_FOUND", select(2, containers.load(client, "d1")).sym)
    local c2 = assert(containers.new(client, "d2", containers.with_new_snapshot("d2", IMAGE)))
    local n = #sn.calls
    assert(c2:delete({ snapshot_cleanup = false }))
    assert.are.equal(n, #sn.calls)
    local _, err = c2:delete()
    assert.are.equal("NOT_FOUND", err.sym)
  end)

  it("refuses to delete a container whose task is not stopped", function()
    local c = assert(containers.new(client, "run1", containers.with_new_snapshot("run1", IMAGE)))
    package.loaded["ctr.tasks"] = { status = function(_, id) return id == "run1" and "running" or nil end }
    local ok, err = c:delete()
    assert.is_nil(ok)
    assert.are.equal("cannot delete a non stopped container: {running 0 0001-01-01 00:00:00 +0000 UTC}", err.msg)
    assert.are.equal("FAILED_PRECONDITION", err.sym)
    assert(containers.load(client, "run1"))
    local deleted = {}
    package.loaded["ctr.tasks"] = { status = function() return "stopped" end,
      delete = function(_, id) deleted[#deleted + 1] = id return 0 end }
    assert(c:delete())
    assert.are.same({ "run1" }, deleted)
  end)

  it("new_task hands over to ctr.tasks", function()
    local c = assert(containers.new(client, "t"))
    package.loaded["ctr.tasks"] = { new_task = function(container, io, opts) return { container = container, io = io, opts = opts } end }
    local t = c:new_task("IO", { x = 1 })
    assert.are.equal(c, t.container)
    assert.are.equal("IO", t.io)
  end)
end)

describe("containers command", function()
  local dir
  local bin = os.getenv("CTRLUA_BIN") or "build/ctrlua"
  before_each(function() dir = tmpdir() end)
  after_each(function() core.remove_tree(dir) end)

  local function run(args)
    local cmd = ("%s --root %s/root --state %s/state -n cmdns containers.lua %s 2>%s/err; echo \"rc=$?\""):format(
      bin, dir, dir, args, dir)
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    local code = tonumber(out:match("rc=(%d+)\n$"))
    out = out:gsub("rc=%d+\n$", "")
    local err = core.read_file(dir .. "/err") or ""
    return out, err, code
  end

  local function client()
    return assert(require("ctr.client").new({ root = dir .. "/root", state = dir .. "/state", namespace = "cmdns" }))
  end

  it("ls, ls -q, ls --format json, info, info --spec, label, rm", function()
    local cl = client()
    assert(containers.new(cl, "web", containers.with_image_name("docker.io/library/nginx:latest"),
      containers.with_container_labels({ tier = "front" }), containers.with_new_spec()))
    assert(containers.new(cl, "db"))

    local out, err, code = run("ls")
    assert.are.equal(0, code, err)
    assert.are.equal("CONTAINER    IMAGE                             RUNTIME                  \n" ..
      "db           -                                 io.containerd.runc.v2    \n" ..
      "web          docker.io/library/nginx:latest    io.containerd.runc.v2    \n", out)
    out = run("ls -q")
    assert.are.equal("db\nweb\n", out)
    out = run("ls -q labels.tier==front")
    assert.are.equal("web\n", out)
    out = run("ls --format json")
    local list = assert(core.json_decode(out))
    assert.are.equal(2, #list)
    assert.are.equal("web", list[2].ID)
    assert.are.equal("front", list[2].Labels.tier)

    out, err, code = run("info web")
    assert.are.equal(0, code, err)
    local info = assert(core.json_decode(out))
    assert.are.equal("web", info.ID)
    assert.are.equal("io.containerd.runc.v2", info.Runtime.Name)
    assert.are.equal("/cmdns/web", info.Spec.linux.cgroupsPath)
    out = run("info --spec web")
    assert.are.equal("/cmdns/web", assert(core.json_decode(out)).linux.cgroupsPath)

    out, err, code = run("label web a=1 tier= flag")
    assert.are.equal(0, code, err)
    assert.are.equal("a=1,flag=true\n", out)

    out, err, code = run("rm db nothere")
    assert.are.equal(1, code)
    assert.matches('failed to delete container "nothere"', err)
    assert.are.equal("web\n", (run("ls -q")))
    out, err, code = run("info nothere")
    assert.are.equal(1, code)
    assert.matches('^ctrlua: container "nothere": not found', err)
  end)

  it("usage errors print Incorrect Usage and fail", function()
    local out, err, code = run("ls --bogus")
    assert.are.equal(1, code)
    assert.matches("^Incorrect Usage: flag provided but not defined: %-bogus", out)
    assert.matches("ctrlua: flag provided but not defined: %-bogus", err)
    out, err, code = run("frobnicate")
    assert.are.equal(1, code)
    assert.matches("no such command", err)
  end)
end)

describe("containers on a real snapshotter #root", function()
  local dir, saved_unpack
  before_each(function()
    dir = tmpdir()
    saved_unpack = package.loaded["ctr.store.unpack"]
  end)
  after_each(function()
    package.loaded["ctr.store.unpack"] = saved_unpack
    -- take down anything left mounted under dir, then remove it
    local mi = core.read_file("/proc/self/mountinfo") or ""
    for mp in mi:gmatch("%S+ %S+ %S+ %S+ (%S+)") do
      if mp:sub(1, #dir) == dir then os.execute("umount -l " .. mp .. " 2>/dev/null") end
    end
    core.remove_tree(dir)
  end)

  for _, driver in ipairs({ "overlayfs", "native" }) do
    it("reads the image's /etc/passwd through a read-only temporary mount (" .. driver .. ")", function()
      local client = assert(require("ctr.client").new({ root = dir .. "/root", state = dir .. "/state",
        namespace = "rootns", snapshotter = driver }))
      local sn = assert(client:snapshotter(driver))
      -- a committed base layer holding /etc/passwd and /etc/group
      assert(sn:prepare("base-active", nil))
      local fs = assert(sn:fs_path("base-active"))
      assert(core.mkdir_p(fs .. "/etc"))
      assert(core.write_file(fs .. "/etc/passwd", "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/var/www:/bin/sh\n"))
      assert(core.write_file(fs .. "/etc/group", "www:x:34:\nlogs:x:99:web\n"))
      assert(sn:commit("base", "base-active"))
      package.loaded["ctr.store.unpack"] = { unpack = function() return "base" end }
      local image = { name = "local/web:1", config = { config = { User = "web", Cmd = { "httpd" } } } }

      local c = assert(containers.new(client, "web1", containers.with_snapshotter(driver),
        containers.with_new_snapshot("web1", image), containers.with_new_spec(oci.with_image_config(image))))
      assert.are.same({ uid = 33, gid = 34, additionalGids = { 34, 99 } }, c.record.spec.process.user)
      -- nothing stays mounted, no temporary directory is left
      assert.is_nil((core.read_file("/proc/self/mountinfo")):find(dir .. "/state", 1, true))
      for _, f in ipairs(core.listdir(dir .. "/state") or {}) do
        assert.is_nil(f:match("^%.rootfs%-read"), f)
      end
      assert(c:delete())
      local _, err = sn:stat("web1")
      assert.are.equal("NOT_FOUND", err.sym)
    end)
  end
end)
