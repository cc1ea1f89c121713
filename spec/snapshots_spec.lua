-- Snapshotters (overlayfs, native), their records, mounts and sweep; ctr.mount; core.copy_tree
-- and core.usage.  Real directories, real overlay and bind mounts, /proc/self/mountinfo.
local core = require("ctr.core")
local client_mod = require("ctr.client")
local snapshots = require("ctr.snapshots")
local mount = require("ctr.mount")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  assert(ok == true or ok == 0, ("command failed (%s): %s\n%s"):format(tostring(code), cmd, out))
  return (out:gsub("\n$", ""))
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function exists(path) return core.stat(path) ~= nil end

-- A fresh store per test; every mount made under it is taken down afterwards.
local tmp, client
local function setup(snapshotter)
  tmp = require("support.tmp").dir("snap")
  client = assert(client_mod.new({ root = tmp .. "/root", state = tmp .. "/state", namespace = "test",
    snapshotter = snapshotter }))
  return client
end

local function teardown()
  if not tmp then return end
  -- deepest first: every mount below tmp, as mountinfo lists them
  local targets = {}
  for _, e in ipairs(core.mountinfo() or {}) do
    if e.target:sub(1, #tmp + 1) == tmp .. "/" then targets[#targets + 1] = e.target end
  end
  table.sort(targets, function(a, b) return #a > #b end)
  for _, t in ipairs(targets) do core.unmount(t, { detach = true }) end
  sh("rm -rf " .. q(tmp))
  tmp = nil
end

local function mkdir(p) assert(core.mkdir_p(p, 493)) return p end

describe("snapshots #root", function()
  after_each(teardown)

  describe("records", function()
    local sn
    before_each(function()
      setup()
      sn = assert(client:snapshotter("overlayfs"))
    end)

    it("prepares, commits, views and removes with containerd's errors", function()
      local m = assert(sn:prepare("a", nil, { labels = { x = "1" } }))
      assert.are.equal(1, #m)
      local info = assert(sn:stat("a"))
      assert.are.equal("active", info.kind)
      assert.are.equal("1", info.labels.x)
      assert.is_nil(info.parent)

      local v, err = sn:prepare("a")
      assert.is_nil(v)
      assert.are.equal("EXISTS", err.sym)
      assert.are.equal('snapshot "a": already exists', err.msg)

      v, err = sn:prepare("b", "a")
      assert.is_nil(v)
      assert.are.equal("FAILED_PRECONDITION", err.sym)
      assert.matches("parent a is not committed", err.msg)

      v, err = sn:prepare("b", "missing")
      assert.is_nil(v)
      assert.are.equal("NOT_FOUND", err.sym)

      assert(sn:commit("base", "a"))
      assert.are.equal("NOT_FOUND", select(2, sn:stat("a")).sym)
      info = assert(sn:stat("base"))
      assert.are.equal("committed", info.kind)
      assert.are.equal("1", info.labels.x)

      v, err = sn:commit("other", "a")
      assert.is_nil(v)
      assert.are.equal("NOT_FOUND", err.sym)

      assert(sn:prepare("b", "base"))
      v, err = sn:commit("base", "b")
      assert.is_nil(v)
      assert.are.equal("EXISTS", err.sym)
      assert.are.equal("active", sn:stat("b").kind)

      assert(sn:view("v", "base"))
      assert.are.equal("view", sn:stat("v").kind)
      v, err = sn:commit("vv", "v")
      assert.is_nil(v)
      assert.are.equal("FAILED_PRECONDITION", err.sym)

      -- children block removal; once they are gone the parent goes, directory and all
      local base_dir = assert(sn:fs_path("base")):gsub("/fs$", "")
      v, err = sn:remove("base")
      assert.is_nil(v)
      assert.are.equal("FAILED_PRECONDITION", err.sym)
      assert.matches("cannot remove snapshot with child", err.msg)
      assert(sn:remove("b"))
      assert(sn:remove("v"))
      assert.is_true(exists(base_dir))
      assert(sn:remove("base"))
      assert.is_false(exists(base_dir))
      assert.are.equal("NOT_FOUND", select(2, sn:remove("base")).sym)
      assert.are.same({}, core.listdir(tmp .. "/root/snapshots/overlayfs/snapshots"))
    end)

    it("keeps records per namespace, lists, walks and updates labels", function()
      assert(sn:prepare("k1"))
      assert(sn:commit("c1", "k1"))
      assert(sn:prepare("k2", "c1"))
      local other = assert(client_mod.new({ root = client.root, state = client.state, namespace = "other" }))
      local sn2 = assert(other:snapshotter("overlayfs"))
      assert.are.equal(0, #sn2:list())
      assert.are.equal("NOT_FOUND", select(2, sn2:stat("c1")).sym)

      local names = {}
      for _, i in ipairs(sn:list()) do names[#names + 1] = i.name .. ":" .. (i.parent or "") .. ":" .. i.kind end
      assert.are.same({ "c1::committed", "k2:c1:active" }, names)
      local seen = 0
      assert(sn:walk(function() seen = seen + 1 return true end))
      assert.are.equal(2, seen)
      local r, err = sn:walk(function() return nil, "stop" end)
      assert.is_nil(r)
      assert.are.equal("stop", err)

      local info = assert(sn:update("k2", { labels = { a = "b" } }))
      assert.are.same({ a = "b" }, info.labels)
      assert.are.same({ a = "b" }, sn:stat("k2").labels)
      assert.has_error(function() sn:prepare(nil) end)
      assert.has_error(function() sn:prepare("x", nil, { labels = { a = 1 } }) end)
    end)

    it("refuses an unknown snapshotter", function()
      local s, err = snapshots.get(client, "zfs")
      assert.is_nil(s)
      assert.are.equal("INVALID", err.sym)
      assert.matches("snapshotter not loaded: zfs", err.msg)
    end)
  end)

  describe("overlayfs mounts", function()
    local sn
    local function fs(key) return assert(sn:fs_path(key)) end
    before_each(function()
      setup()
      sn = assert(client:snapshotter("overlayfs"))
    end)

    local function chain()
      assert(sn:prepare("k-base"))
      write(fs("k-base") .. "/base.txt", "base\n")
      write(fs("k-base") .. "/shadowed.txt", "old\n")
      assert(sn:commit("base", "k-base"))
      assert(sn:prepare("k-l2", "base"))
      write(fs("k-l2") .. "/l2.txt", "l2\n")
      write(fs("k-l2") .. "/shadowed.txt", "new\n")
      assert(sn:commit("l2", "k-l2"))
    end

    it("have containerd's shapes", function()
      chain()
      local index = exists("/sys/module/overlay/parameters/index")
      local m = assert(sn:prepare("work", "l2"))
      assert.are.equal(1, #m)
      assert.are.equal("overlay", m[1].type)
      assert.are.equal("overlay", m[1].source)
      local want = {}
      if index then want[#want + 1] = "index=off" end
      local wdir = fs("work"):gsub("/fs$", "")
      want[#want + 1] = "workdir=" .. wdir .. "/work"
      want[#want + 1] = "upperdir=" .. wdir .. "/fs"
      want[#want + 1] = "lowerdir=" .. fs("l2") .. ":" .. fs("base")
      assert.are.same(want, m[1].options)

      m = assert(sn:view("v1", "base"))
      assert.are.same({ { type = "bind", source = fs("base"), options = { "ro", "rbind" } } }, m)
      m = assert(sn:view("v2", "l2"))
      want = {}
      if index then want[#want + 1] = "index=off" end
      want[#want + 1] = "lowerdir=" .. fs("l2") .. ":" .. fs("base")
      assert.are.same({ { type = "overlay", source = "overlay", options = want } }, m)
      m = assert(sn:prepare("empty"))
      assert.are.same({ { type = "bind", source = fs("empty"), options = { "rw", "rbind" } } }, m)
      assert.are.same(m, sn:mounts("empty"))
    end)

    it("come from the record's parent ids: the parents' records are not read again", function()
      chain()
      local base_dir, l2_dir = fs("base"), fs("l2")
      assert(sn:prepare("work", "l2"))
      local meta_dir = tmp .. "/root/meta/test/snapshots.overlayfs"
      local rec = core.json_decode(assert(core.read_file(meta_dir .. "/work.json")))
      assert.are.same({ l2_dir:match("([^/]+)/fs$"), base_dir:match("([^/]+)/fs$") }, { unpack(rec.parent_ids) })
      -- base's record unreadable: a walk up the chain would fail on it; the ids need none of it
      write(meta_dir .. "/base.json", "{cut short")
      local m = assert(sn:mounts("work"))
      assert.are.equal("lowerdir=" .. l2_dir .. ":" .. base_dir, m[1].options[#m[1].options])
      -- a record of an older ctrlua, without them: the chain is read (and so base's fails)
      rec.parent_ids = nil
      write(meta_dir .. "/work.json", core.json_encode(rec))
      local none, err = sn:mounts("work")
      assert.is_nil(none)
      assert.are.equal("CORRUPT", err.sym)
      -- ids that are not directory names are a record no reader takes
      rec.parent_ids = core.json_array({ "../../etc" })
      write(meta_dir .. "/work.json", core.json_encode(rec))
      none, err = sn:mounts("work")
      assert.is_nil(none)
      assert.are.equal("CORRUPT", err.sym)
      assert.matches('field "parent_ids"', err.msg)
    end)

    it("ask the kernel about overlay's index parameter once per process", function()
      if not core.stat("/usr/bin/strace") or not exists("/sys/module/overlay/parameters/index") then
        pending("no strace, or no index parameter")
        return
      end
      chain()
      local out = tmp .. "/strace.out"
      local code = ("local c = assert(require('ctr.client').new({ root = '%s', state = '%s', namespace = 'test' }))"
        .. " local sn = assert(c:snapshotter('overlayfs'))"
        .. " assert(sn:prepare('w1', 'l2')) assert(sn:prepare('w2', 'l2'))"
        .. " assert(sn:mounts('w1')) assert(sn:mounts('w2'))"):format(client.root, client.state)
      assert(core.write_file(tmp .. "/probe.lua", code))
      -- (CTRLUA_LUA: under `make asan`, the instrumented host that runs the specs)
      sh(("strace -f -qq -e trace=stat,newfstatat,statx,access,openat -o %s %s %s"):format(q(out),
        os.getenv("CTRLUA_LUA") or "luajit", q(tmp .. "/probe.lua")))
      local n = 0
      for line in io.lines(out) do
        if line:find("/sys/module/overlay/parameters/index", 1, true) then n = n + 1 end
      end
      assert.are.equal(1, n)
      local m = assert(sn:mounts("w2"))
      assert.are.equal("index=off", m[1].options[1])
    end)

    it("mount a 2-level chain: writes land in the upper directory only", function()
      chain()
      local target = mkdir(tmp .. "/mnt")
      assert(mount.all(assert(sn:prepare("work", "l2")), target))
      assert.is_true(mount.is_mountpoint(target))
      local found
      for _, e in ipairs(core.mountinfo()) do if e.target == target then found = e end end
      assert.are.equal("overlay", found.fstype)

      assert.are.equal("base\n", core.read_file(target .. "/base.txt"))
      assert.are.equal("l2\n", core.read_file(target .. "/l2.txt"))
      assert.are.equal("new\n", core.read_file(target .. "/shadowed.txt"))
      write(target .. "/written.txt", "hello\n")
      assert.are.equal("hello\n", core.read_file(fs("work") .. "/written.txt"))
      assert.is_false(exists(fs("l2") .. "/written.txt"))
      assert.is_false(exists(fs("base") .. "/written.txt"))

      assert(mount.unmount_all(target))
      assert.is_false(mount.is_mountpoint(target))
      assert(mount.unmount_all(target)) -- nothing mounted: still fine
    end)

    it("mount views read-only (bind remounted ro, and overlay without upper)", function()
      chain()
      local t1, t2 = mkdir(tmp .. "/v1"), mkdir(tmp .. "/v2")
      assert(mount.all(assert(sn:view("v1", "base")), t1))
      assert(mount.all(assert(sn:view("v2", "l2")), t2))
      assert.are.equal("base\n", core.read_file(t1 .. "/base.txt"))
      assert.are.equal("l2\n", core.read_file(t2 .. "/l2.txt"))
      for _, t in ipairs({ t1, t2 }) do
        local ok, msg, errno = core.write_file(t .. "/nope", "x")
        assert.is_nil(ok, msg)
        assert.are.equal("EROFS", core.errno_name(errno))
      end
      for _, e in ipairs(core.mountinfo()) do
        if e.target == t1 then assert.matches("^ro", e.vfs_options) end
      end
      assert(mount.unmount_all(t1))
      assert(mount.unmount_all(t2))
    end)

    it("mount.all takes down what it mounted when a later mount fails", function()
      local target = mkdir(tmp .. "/mnt")
      local src = mkdir(tmp .. "/src")
      local ok, err = mount.all({
        { type = "bind", source = src, options = { "rbind" } },
        { type = "bind", source = tmp .. "/does-not-exist", options = { "rbind" } },
      }, target)
      assert.is_nil(ok)
      assert.are.equal("ENOENT", err.sym)
      assert.is_false(mount.is_mountpoint(target))
      assert.has_error(function() mount.all({ { type = 1, source = "x" } }, target) end,
        "mounts[1].type: expected string")
    end)

    it("applies propagation options with separate calls and drops userspace options", function()
      local target = mkdir(tmp .. "/mnt")
      local src = mkdir(tmp .. "/src")
      assert(mount.all({ { type = "bind", source = src, options = { "rbind", "ro", "nosuid", "x-ctrlua.test=1", "private" } } }, target))
      local found
      for _, e in ipairs(core.mountinfo()) do if e.target == target then found = e end end
      assert.truthy(found)
      assert.matches("^ro", found.vfs_options)
      assert.matches("nosuid", found.vfs_options)
      assert(mount.unmount(target))
      assert.is_false(mount.is_mountpoint(target))
    end)

    it("record usage at commit and measure active snapshots, hardlinks once", function()
      assert(sn:prepare("k"))
      local d = fs("k")
      write(d .. "/big", string.rep("x", 100000))
      sh("ln " .. q(d .. "/big") .. " " .. q(d .. "/big2") .. " && mkdir " .. q(d .. "/sub"))
      local u = assert(sn:usage("k"))
      assert.are.equal(3, u.inodes) -- fs, big (twice linked), sub
      assert.are.equal(tonumber(sh("du -sB1 " .. q(d) .. " | cut -f1")), u.size)
      assert(sn:commit("c", "k"))
      assert.are.same(u, sn:usage("c"))
    end)
  end)

  describe("sweep", function()
    it("removes directories no record names, at open and on demand", function()
      setup()
      local dir = tmp .. "/root/snapshots/overlayfs/snapshots"
      mkdir(dir .. "/.tmp-0123")
      mkdir(dir .. "/deadbeef/fs")
      write(dir .. "/deadbeef/fs/file", "x")
      local sn = assert(client:snapshotter("overlayfs")) -- first open in this process sweeps
      assert.are.same({}, core.listdir(dir))

      assert(sn:prepare("live"))
      local live = core.listdir(dir)[1]
      mkdir(dir .. "/.tmp-rm-feed")
      mkdir(dir .. "/cafe/fs")
      assert.are.equal(2, snapshots.gc(client))
      assert.are.same({ live }, core.listdir(dir))
      -- records of another namespace protect their directories too
      local other = assert(client_mod.new({ root = client.root, state = client.state, namespace = "other" }))
      assert(other:snapshotter():prepare("o"))
      assert.are.equal(0, sn:gc())
      assert.are.equal(2, #core.listdir(dir))
    end)

    it("sweeps at a process's first use only when an operation was cut short or directories outnumber records", function()
      setup()
      local dir = mkdir(tmp .. "/root/snapshots/overlayfs/snapshots")
      local meta_dir = mkdir(tmp .. "/root/meta/test/snapshots.overlayfs")
      -- a directory no record names beside a record that names no directory, as many of each:
      -- nothing at open says which is garbage (reading every record would)
      mkdir(dir .. "/cafe/fs")
      write(meta_dir .. "/gone.json", '{"name":"gone","id":"beef","kind":"active"}')
      local sn = assert(client:snapshotter("overlayfs"))
      assert.is_true(exists(dir .. "/cafe"))
      assert.are.equal(1, sn:gc()) -- the whole sweep (ctrlua gc) finds it
      assert.is_false(exists(dir .. "/cafe"))
      -- a temporary directory is an operation cut short: the first use sweeps
      teardown()
      setup()
      dir = mkdir(tmp .. "/root/snapshots/overlayfs/snapshots")
      meta_dir = mkdir(tmp .. "/root/meta/test/snapshots.overlayfs")
      write(meta_dir .. "/gone.json", '{"name":"gone","id":"beef","kind":"active"}')
      mkdir(dir .. "/.tmp-0456/fs")
      assert(client:snapshotter("overlayfs"))
      assert.are.same({}, core.listdir(dir))
    end)

    it("removes an active snapshot's own directory without reading the other records", function()
      setup()
      local dir = tmp .. "/root/snapshots/overlayfs/snapshots"
      local sn = assert(client:snapshotter("overlayfs"))
      local function id_of(key) return assert(sn:fs_path(key)):match("([^/]+)/fs$") end
      assert(sn:prepare("a"))
      assert(sn:prepare("b"))
      local ida, idb = id_of("a"), id_of("b")
      assert.is_true(exists(dir .. "/" .. ida .. "/sole"))
      -- a record that cannot be read, nor its id made out: it might name any directory
      write(tmp .. "/root/meta/test/snapshots.overlayfs/junk.json", "{not json")
      assert(sn:remove("a"))
      assert.is_false(exists(dir .. "/" .. ida))
      -- without `sole` (a directory made before it, or a commit cut short) the others are read,
      -- and the unreadable one keeps the directory for the sweep to judge
      assert(os.remove(dir .. "/" .. idb .. "/sole"))
      assert(sn:remove("b"))
      assert.is_true(exists(dir .. "/" .. idb))
      -- a commit takes `sole` away before its record names the directory too
      assert(sn:prepare("k"))
      local idk = id_of("k")
      assert(sn:commit("c", "k"))
      assert.is_false(exists(dir .. "/" .. idk .. "/sole"))
      assert.is_true(exists(dir .. "/" .. idk .. "/fs"))
    end)

    it("keeps every directory a record names, however its JSON spells the id", function()
      setup()
      local dir = tmp .. "/root/snapshots/overlayfs/snapshots"
      local sn = assert(client:snapshotter("overlayfs"))
      local meta_dir = mkdir(tmp .. "/root/meta/test/snapshots.overlayfs")
      local function record(key, text, id)
        mkdir(dir .. "/" .. id .. "/fs")
        write(meta_dir .. "/" .. key .. ".json", text)
      end
      -- the id spelled with an escape, and a label called "id" beside it: only a reader of the
      -- JSON sees which directory it names
      record("esc", '{"name": "esc", "id": "\\u0061bc1", "kind": "active", "labels": {"id": "beef1"}}', "abc1")
      record("key", '{"name": "key", "\\u0069d": "abc2", "kind": "active", "labels": {"id": "beef2"}}', "abc2")
      record("plain", '{"kind":"active","name":"plain","id":"abc3"}', "abc3")
      mkdir(dir .. "/abc4/fs") -- named by nothing
      assert.are.equal(1, sn:gc())
      assert.are.same({ "abc1", "abc2", "abc3" }, (function()
        local l = core.listdir(dir)
        table.sort(l)
        return l
      end)())
    end)
  end)

  describe("native", function()
    it("copies the parent faithfully and mounts by bind", function()
      setup("native")
      local sn = assert(client:snapshotter())
      assert.are.equal("native", sn.name)
      local m = assert(sn:prepare("k"))
      local d = assert(sn:fs_path("k"))
      assert.are.same({ { type = "bind", source = d, options = { "rw", "rbind" } } }, m)
      sh(table.concat({
        "cd " .. q(d),
        "printf hello > suid && chown 1234:5678 suid && chmod 4755 suid",
        "ln suid hard",
        "ln -s /etc/passwd abs-link && chown -h 42:43 abs-link",
        "mkfifo fifo && mknod null c 1 3 && mknod wh c 0 0",
        "mkdir -p dir/sub && chmod 1777 dir && printf data > dir/sub/f",
        "touch -h -d '2001-02-03 04:05:06' abs-link",
        "touch -d '2001-02-03 04:05:06' suid dir/sub/f dir/sub dir",
        "python3 -c \"import os; os.setxattr('dir/sub/f', 'user.ctrlua', b'v1')\"",
      }, " && "))
      assert(sn:commit("base", "k"))
      m = assert(sn:prepare("child", "base"))
      local c = assert(sn:fs_path("child"))
      assert.are_not.equal(d, c)

      local function st(p) return assert(core.stat(p)) end
      local s = st(c .. "/suid")
      assert.are.same({ 1234, 5678, tonumber("4755", 8), "file" }, { s.uid, s.gid, s.mode, s.type })
      assert.are.equal(st(d .. "/suid").mtime, s.mtime)
      assert.are.equal(s.ino, st(c .. "/hard").ino)
      assert.are_not.equal(st(d .. "/suid").ino, s.ino)
      assert.are.equal(2, s.nlink)
      assert.are.equal("/etc/passwd", core.readlink(c .. "/abs-link"))
      s = st(c .. "/abs-link")
      assert.are.same({ 42, 43, "link" }, { s.uid, s.gid, s.type })
      assert.are.equal(st(d .. "/abs-link").mtime, s.mtime)
      assert.are.equal("fifo", st(c .. "/fifo").type)
      s = st(c .. "/null")
      assert.are.same({ "char", 1, 3 }, { s.type, s.rdev_major, s.rdev_minor })
      assert.are.equal(tonumber("1777", 8), st(c .. "/dir").mode)
      assert.are.equal(st(d .. "/dir").mtime, st(c .. "/dir").mtime)
      assert.are.equal(st(d .. "/dir/sub").mtime, st(c .. "/dir/sub").mtime)
      assert.are.equal("data", core.read_file(c .. "/dir/sub/f"))
      assert.are.equal("v1", sh("cd " .. q(c) .. " && python3 -c \"import os,sys; sys.stdout.write(os.getxattr('dir/sub/f', 'user.ctrlua').decode())\""))

      -- the child is its own copy
      write(c .. "/dir/sub/f", "changed")
      assert.are.equal("data", core.read_file(d .. "/dir/sub/f"))
      -- a view is a read-only bind of its own copy
      m = assert(sn:view("v", "base"))
      assert.are.equal("ro", m[1].options[1])
      assert.are.equal("data", core.read_file(m[1].source .. "/dir/sub/f"))
    end)

    it("copy_tree refuses to cross a mount and never follows symlinks", function()
      setup()
      local src, dst = mkdir(tmp .. "/src"), tmp .. "/dst"
      mkdir(src .. "/m")
      core.symlink(tmp .. "/outside", src .. "/escape")
      assert(core.mount("tmpfs", "tmpfs", src .. "/m", { "size=1m" }))
      local ok, msg, errno = core.copy_tree(src, dst)
      assert.is_nil(ok)
      assert.are.equal("EXDEV", core.errno_name(errno))
      assert.matches("a mount is there", msg)
      assert(core.unmount(src .. "/m"))
      sh("rm -rf " .. q(dst))
      assert(core.copy_tree(src, dst))
      assert.are.equal("link", core.stat(dst .. "/escape").type)
      assert.is_false(exists(tmp .. "/outside"))
    end)
  end)
end)
