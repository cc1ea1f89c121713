-- core.layer_apply and core.layer_write: hostile layers (containerd's TestBreakouts, as a
-- table), whiteouts through a real overlay mount, metadata preservation, digests, round trips.
local core = require("ctr.core")
local tar = require("support.tar")

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok == 0 or ok == true, "command failed: " .. cmd)
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return s
end

local function tmpdir() return require("support.tmp").dir("archive") end

-- What a tree looks like: every path with type, mode, size, link count, owner, mtime, symlink
-- target, and the content of every file.
local function snapshot(dir)
  return capture("cd '" .. dir .. "' && find . -printf '%p %y %m %s %n %U %G %T@ %l\\n' | LC_ALL=C sort"
    .. " && find . -type f -exec md5sum {} + | LC_ALL=C sort")
end

local function exists(path) return core.stat(path) ~= nil end

local function xattr(path, name)
  return (capture(string.format("python3 -c \"import os,sys; sys.stdout.write(os.getxattr('%s','%s',"
    .. "follow_symlinks=False).decode())\" 2>/dev/null", path, name)))
end

local SANDBOX -- set per test: the sandbox directory; ROOT = SANDBOX/root, sentinel beside it

-- containerd TestBreakouts, one row a case.  `err`: a pattern the error must match, false
-- when the layer must apply, nil when either outcome is safe (then only the checks count).
-- `check(root)` returns true when what must (not) exist is right.
local breakouts = {
  { name = "dotdot", err = "`%.%.' component",
    entries = function() return { { name = "../sentinel/pwn", data = "x" } } end },
  { name = "dotdot in the middle", err = "`%.%.' component",
    entries = function() return { { name = "a/../../sentinel/pwn", data = "x" } } end },
  { name = "absolute path", err = "absolute",
    entries = function() return { { name = SANDBOX .. "/sentinel/pwn", data = "x" } } end },
  { name = "symlink out then write through (relative)", err = false,
    entries = function()
      return { { name = "sentinel", type = "dir", mode = 493 },
        { name = "evil", type = "symlink", link = "../sentinel" },
        { name = "evil/pwn", data = "inside" } }
    end,
    check = function(root) return core.read_file(root .. "/sentinel/pwn") == "inside" end },
  { name = "symlink out then write through (absolute)", err = false,
    entries = function()
      return { { name = "etc", type = "dir", mode = 493 },
        { name = "evil", type = "symlink", link = "/etc" },
        { name = "evil/passwd", data = "root::0:0::/:/bin/sh\n" } }
    end,
    check = function(root)
      return core.read_file(root .. "/etc/passwd") == "root::0:0::/:/bin/sh\n"
    end },
  { name = "symlink to the host sandbox, then write through", err = nil,
    entries = function()
      return { { name = "evil", type = "symlink", link = SANDBOX .. "/sentinel" },
        { name = "evil/pwn", data = "x" } }
    end },
  { name = "symlink chain out", err = false,
    entries = function()
      return { { name = "sentinel", type = "dir", mode = 493 },
        { name = "a", type = "symlink", link = "b" },
        { name = "b", type = "symlink", link = "../../../sentinel" },
        { name = "a/pwn", data = "inside" } }
    end,
    check = function(root) return core.read_file(root .. "/sentinel/pwn") == "inside" end },
  { name = "symlink loop", err = "Too many levels",
    entries = function()
      return { { name = "l1", type = "symlink", link = "l2" },
        { name = "l2", type = "symlink", link = "l1" }, { name = "l1/pwn", data = "x" } }
    end },
  { name = "hardlink to outside", err = "`%.%.' component",
    entries = function()
      return { { name = "h", type = "hardlink", link = "../sentinel/secret" } }
    end },
  { name = "hardlink absolute", err = "absolute",
    entries = function()
      return { { name = "h", type = "hardlink", link = SANDBOX .. "/sentinel/secret" } }
    end },
  { name = "hardlink through a symlink out", err = "No such file",
    entries = function()
      return { { name = "evil", type = "symlink", link = SANDBOX .. "/sentinel" },
        { name = "h", type = "hardlink", link = "evil/secret" } }
    end },
  { name = "hardlink to a symlink out, then write the link", err = false,
    entries = function()
      return { { name = "s", type = "symlink", link = SANDBOX .. "/sentinel/secret" },
        { name = "h", type = "hardlink", link = "s" },
        { name = "h", data = "pwned" } }
    end,
    check = function(root) return core.read_file(root .. "/h") == "pwned" end },
  { name = "whiteout of ..", err = "whiteout of `%.%.'",
    entries = function() return { { name = "a/.wh..." } } end },
  { name = "whiteout of .", err = "whiteout of `%.'",
    entries = function() return { { name = ".wh.." } } end },
  { name = "whiteout of nothing", err = "whiteout of `'",
    entries = function() return { { name = ".wh." } } end },
  { name = "whiteout through a symlinked parent (native)", err = false,
    entries = function()
      return { { name = "evil", type = "symlink", link = SANDBOX .. "/sentinel" },
        { name = "evil/.wh.secret" } }
    end },
  { name = "whiteout through a relative symlinked parent (native)", err = false,
    entries = function()
      return { { name = "evil", type = "symlink", link = "../sentinel" },
        { name = "evil/.wh.secret" } }
    end },
  { name = "whiteout through a symlinked parent (overlay)", err = nil, opts = { whiteouts = "overlay" },
    entries = function()
      return { { name = "evil", type = "symlink", link = "../sentinel" },
        { name = "evil/.wh.secret" } }
    end },
  { name = "opaque through a symlink (native)", err = false,
    entries = function()
      return { { name = "evil", type = "symlink", link = SANDBOX .. "/sentinel" },
        { name = "evil/.wh..wh..opq" } }
    end },
  { name = "opaque through a symlink (overlay)", err = nil, opts = { whiteouts = "overlay" },
    entries = function()
      return { { name = "evil", type = "symlink", link = "../sentinel" },
        { name = "evil/.wh..wh..opq" } }
    end },
  { name = "uid 2^31 (CVE-2024-40635)", err = "CVE%-2024%-40635",
    entries = function() return { { name = "f", data = "x", uid = 2 ^ 31 } } end },
  { name = "uid 2^32 wraps to 0 (CVE-2024-40635)", err = "CVE%-2024%-40635",
    entries = function() return { { name = "f", data = "x", uid = 2 ^ 32 } } end },
  { name = "gid 2^31 (CVE-2024-40635)", err = "CVE%-2024%-40635",
    entries = function() return { { name = "f", data = "x", gid = 2 ^ 31 } } end },
  { name = "trusted xattr", err = "trusted xattr",
    entries = function()
      return { { name = "d", type = "dir", xattrs = { ["trusted.overlay.opaque"] = "y" } } }
    end },
  { name = "security xattr other than capability", err = "security xattr",
    entries = function()
      return { { name = "f", data = "x", xattrs = { ["security.selinux"] = "system_u" } } }
    end },
  { name = "device in userns mode is skipped", err = false, opts = { userns = true },
    entries = function()
      return { { name = "sda", type = "block", major = 8, minor = 0 },
        { name = "null", type = "char", major = 1, minor = 3 }, { name = "ok", data = "y" } }
    end,
    check = function(root)
      return not exists(root .. "/sda") and not exists(root .. "/null") and exists(root .. "/ok")
    end },
  { name = "file replacing a symlink that points out", err = false,
    entries = function()
      return { { name = "s", type = "symlink", link = SANDBOX .. "/sentinel/secret" },
        { name = "s", data = "pwned", mode = 511 } }
    end,
    check = function(root) return core.stat(root .. "/s").type == "file" end },
  { name = "relative symlink out replaced by a file", err = false,
    entries = function()
      return { { name = "s", type = "symlink", link = "../sentinel/secret" },
        { name = "s", data = "pwned", mode = 511 } }
    end,
    check = function(root) return core.read_file(root .. "/s") == "pwned" end },
  { name = "dir over a symlink to outside (CVE-2021-32760)", err = false,
    entries = function()
      return { { name = "d", type = "symlink", link = "../sentinel" },
        { name = "d", type = "dir", mode = 511, uid = 1234 } }
    end,
    check = function(root)
      local st = core.stat(root .. "/d")
      return st.type == "directory" and st.uid == 1234
    end },
  { name = "fifo over a symlink out", err = false,
    entries = function()
      return { { name = "s", type = "symlink", link = "../sentinel/secret" },
        { name = "s", type = "fifo", mode = 511 } }
    end,
    check = function(root) return core.stat(root .. "/s").type == "fifo" end },
  { name = "dir entry below a symlink out", err = nil,
    entries = function()
      return { { name = "d", type = "symlink", link = SANDBOX .. "/sentinel" },
        { name = "d/sub", type = "dir", mode = 511 } }
    end },
}

describe("core.layer_apply breakouts #root", function()
  local root
  before_each(function()
    SANDBOX = tmpdir()
    root = SANDBOX .. "/root"
    sh(string.format("mkdir -m 0755 '%s' '%s/sentinel' && printf keep > '%s/sentinel/secret'"
      .. " && chmod 0640 '%s/sentinel/secret'", root, SANDBOX, SANDBOX, SANDBOX))
  end)
  after_each(function()
    if SANDBOX then sh("rm -rf '" .. SANDBOX .. "'") end
  end)

  for _, case in ipairs(breakouts) do
    it(case.name, function()
      local before = snapshot(SANDBOX .. "/sentinel")
      local blob = tar.write(SANDBOX .. "/layer.tar", case.entries())
      local res, err = core.layer_apply(root, blob, case.opts)
      if case.err then
        assert.is_nil(res)
        assert.matches(case.err, err)
      elseif case.err == false then
        assert.is_nil(err)
        assert.is_table(res)
      end
      assert.are.equal(before, snapshot(SANDBOX .. "/sentinel"))
      assert.is_nil(core.stat(SANDBOX .. "/pwn"))
      if case.check then assert.is_true(case.check(root)) end
    end)
  end

  it("names the entry in the error", function()
    local blob = tar.write(SANDBOX .. "/layer.tar", { { name = "ok", data = "1" },
      { name = "x/../../etc/shadow", data = "x" } })
    local res, err, errno = core.layer_apply(root, blob)
    assert.is_nil(res)
    assert.matches("x/%.%./%.%./etc/shadow", err)
    assert.is_number(errno)
  end)
end)

describe("core.layer_apply whiteouts #root", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function()
    os.execute("umount '" .. dir .. "/merged' 2>/dev/null")
    sh("rm -rf '" .. dir .. "'")
  end)

  local function layer1()
    return (tar.write(dir .. "/l1.tar", {
      { name = "a", type = "dir", mode = 493 }, { name = "a/x", data = "x" },
      { name = "a/y", data = "y" }, { name = "o", type = "dir", mode = 493 },
      { name = "o/old", data = "old" }, { name = "o/sub", type = "dir", mode = 493 },
      { name = "o/sub/lower", data = "l" }, { name = "keep", data = "k" },
      { name = "gone", type = "dir", mode = 493 }, { name = "gone/deep", data = "d" } }))
  end
  -- the opaque marker before and after the directory's new entries: order must not matter
  local function layer2(opq_first)
    local opq = { name = "o/.wh..wh..opq" }
    local t = { { name = "a/.wh.x" }, { name = ".wh.gone" } }
    if opq_first then t[#t + 1] = opq end
    t[#t + 1] = { name = "o/new", data = "new" }
    t[#t + 1] = { name = "o/sub/upper", data = "u" }
    if not opq_first then t[#t + 1] = opq end
    return (tar.write(dir .. "/l2.tar", t))
  end
  local function check_view(v)
    assert.is_nil(core.stat(v .. "/a/x"))
    assert.are.equal("y", core.read_file(v .. "/a/y"))
    assert.is_nil(core.stat(v .. "/o/old"))
    assert.is_nil(core.stat(v .. "/o/sub/lower"))
    assert.are.equal("new", core.read_file(v .. "/o/new"))
    assert.are.equal("u", core.read_file(v .. "/o/sub/upper"))
    assert.are.equal("k", core.read_file(v .. "/keep"))
    assert.is_nil(core.stat(v .. "/gone"))
  end

  it("overlay mode through a real overlay mount", function()
    sh(string.format("mkdir '%s/lower' '%s/upper' '%s/work' '%s/merged'", dir, dir, dir, dir))
    assert(core.layer_apply(dir .. "/lower", layer1()))
    assert(core.layer_apply(dir .. "/upper", layer2(true), { whiteouts = "overlay" }))
    local wh = core.stat(dir .. "/upper/a/x")
    assert.are.equal("char", wh.type)
    assert.are.equal(0, wh.rdev_major)
    assert.are.equal(0, wh.rdev_minor)
    assert.are.equal("y", xattr(dir .. "/upper/o", "trusted.overlay.opaque"))
    sh(string.format("mount -t overlay overlay -o lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work"
      .. " '%s/merged'", dir, dir, dir, dir))
    finally(function() os.execute("umount '" .. dir .. "/merged' 2>/dev/null") end)
    assert.is_truthy(capture("cat /proc/self/mountinfo"):find(dir .. "/merged", 1, true))
    -- o/sub is not opaque itself, but o is: the lower o/sub is hidden with all of o
    check_view(dir .. "/merged")
  end)

  for _, first in ipairs({ true, false }) do
    it("native mode (opaque marker " .. (first and "first" or "last") .. ")", function()
      local d = dir .. "/native"
      sh("mkdir '" .. d .. "'")
      assert(core.layer_apply(d, layer1()))
      assert(core.layer_apply(d, layer2(first)))
      check_view(d)
    end)
  end

  it("native whiteout does not remove what the same layer created", function()
    local d = dir .. "/native"
    sh("mkdir '" .. d .. "'")
    assert(core.layer_apply(d, (tar.write(dir .. "/l.tar",
      { { name = "f", data = "mine" }, { name = ".wh.f" } }))))
    assert.are.equal("mine", core.read_file(d .. "/f"))
  end)

  it("native whiteout of a directory does not cross a mount", function()
    local d = dir .. "/native"
    sh(string.format("mkdir -p '%s/m/t' && mount -t tmpfs tmpfs '%s/m/t'", d, d))
    finally(function() os.execute("umount '" .. d .. "/m/t' 2>/dev/null") end)
    local res, err = core.layer_apply(d, (tar.write(dir .. "/l.tar", { { name = ".wh.m" } })))
    assert.is_nil(res)
    assert.matches("mount", err)
  end)
end)

describe("core.layer_apply metadata #root", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() sh("rm -rf '" .. dir .. "'") end)

  local entries = {
    { name = "./", type = "dir", mode = 493 },
    { name = "./d", type = "dir", mode = 1023, mtime = 1000000000, uid = 7, gid = 8 },
    { name = "./d/suid", data = "#!/bin/sh\n", mode = 3565, uid = 1000, gid = 2000,
      mtime = 1234567890, xattrs = { ["user.color"] = "blue" } },
    { name = "./d/link", type = "hardlink", link = "./d/suid" },
    { name = "./d/sym", type = "symlink", link = "/abs/target", uid = 5, gid = 6, mtime = 1111 },
    { name = "./d/fifo", type = "fifo", mode = 384 },
    { name = "./d/null", type = "char", major = 1, minor = 3, mode = 438 },
    { name = "./implicit/parent/file", data = "p" },
    { name = "./d/" .. string.rep("long", 40), data = "long name via pax" },
  }

  it("keeps owners, modes (setuid, sticky), xattrs, mtimes, hardlinks, symlinks, nodes", function()
    local root = dir .. "/root"
    sh("mkdir '" .. root .. "'")
    local blob, bytes = tar.write(dir .. "/l.tar", entries)
    local res = assert(core.layer_apply(root, blob))
    assert.are.equal(core.sha256(bytes), res.diff_id)
    assert.are.equal(#bytes, res.size)
    assert.are.equal(#entries, res.entries)
    local st = core.stat(root .. "/d/suid")
    assert.are.equal(3565, st.mode % 4096) -- 06755
    assert.are.equal(1000, st.uid)
    assert.are.equal(2000, st.gid)
    assert.are.equal(1234567890, math.floor(st.mtime))
    assert.are.equal(2, st.nlink)
    assert.are.equal(st.ino, core.stat(root .. "/d/link").ino)
    assert.are.equal("blue", xattr(root .. "/d/suid", "user.color"))
    local d = core.stat(root .. "/d")
    assert.are.equal(1023, d.mode % 4096) -- 01777
    assert.are.equal(1000000000, math.floor(d.mtime))
    assert.are.equal(7, d.uid)
    assert.are.equal("/abs/target", core.readlink(root .. "/d/sym"))
    local sym = core.stat(root .. "/d/sym")
    assert.are.equal(5, sym.uid)
    assert.are.equal(1111, math.floor(sym.mtime))
    assert.are.equal("fifo", core.stat(root .. "/d/fifo").type)
    local null = core.stat(root .. "/d/null")
    assert.are.equal("char", null.type)
    assert.are.equal(1, null.rdev_major)
    assert.are.equal(3, null.rdev_minor)
    assert.are.equal("p", core.read_file(root .. "/implicit/parent/file"))
    assert.are.equal("long name via pax", core.read_file(root .. "/d/" .. string.rep("long", 40)))
  end)

  it("adds uid_offset and gid_offset", function()
    local root = dir .. "/root"
    sh("mkdir '" .. root .. "'")
    assert(core.layer_apply(root, tar.write(dir .. "/l.tar", entries),
      { uid_offset = 100000, gid_offset = 200000 }))
    local st = core.stat(root .. "/d/suid")
    assert.are.equal(101000, st.uid)
    assert.are.equal(202000, st.gid)
    assert.are.equal(3565, st.mode % 4096)
    assert.are.equal(100000, core.stat(root .. "/implicit").uid)
  end)

  for _, c in ipairs({ "gzip", "zstd" }) do
    it("reads " .. c .. " layers and hashes the uncompressed stream", function()
      local root = dir .. "/root"
      sh("mkdir '" .. root .. "'")
      local blob, bytes = tar.write(dir .. "/l.tar." .. c, entries, c)
      assert.are_not.equal(core.sha256(bytes), core.sha256(core.read_file(blob)))
      local res = assert(core.layer_apply(root, blob, { diff_id = core.sha256(bytes) }))
      assert.are.equal(core.sha256(bytes), res.diff_id)
      assert.are.equal("p", core.read_file(root .. "/implicit/parent/file"))
    end)
  end

  it("refuses a diff_id mismatch, naming both digests", function()
    local root = dir .. "/root"
    sh("mkdir '" .. root .. "'")
    local blob, bytes = tar.write(dir .. "/l.tar.gz", entries, "gzip")
    local wrong = core.sha256("something else")
    local res, err = core.layer_apply(root, blob, { diff_id = wrong })
    assert.is_nil(res)
    assert.is_truthy(err:find(wrong, 1, true))
    assert.is_truthy(err:find(core.sha256(bytes), 1, true))
  end)

  it("reports a corrupt gzip stream", function()
    local root = dir .. "/root"
    sh("mkdir '" .. root .. "'")
    local blob = tar.write(dir .. "/l.tar.gz", entries, "gzip")
    local data = core.read_file(blob)
    assert(core.write_file(blob, data:sub(1, 40) .. string.rep("\255", 64) .. data:sub(105)))
    local res, err = core.layer_apply(root, blob)
    assert.is_nil(res)
    assert.is_string(err)
  end)

  -- gzip's own rule: members one after another are one stream (igzip inflates member by
  -- member; the tar here is cut in the middle of an entry's data, so a member that were
  -- dropped would lose a file or truncate one).
  it("reads a gzip stream of several members as one", function()
    local root = dir .. "/root"
    sh("mkdir '" .. root .. "'")
    local raw, bytes = tar.write(dir .. "/l.tar", entries, "none")
    local cut = 700
    assert(core.write_file(dir .. "/a", bytes:sub(1, cut)))
    assert(core.write_file(dir .. "/b", bytes:sub(cut + 1)))
    sh(("gzip -n -c '%s/a' > '%s/l.tar.gz' && gzip -n -c '%s/b' >> '%s/l.tar.gz'"):format(dir, dir, dir, dir))
    os.remove(raw)
    local res = assert(core.layer_apply(root, dir .. "/l.tar.gz", { diff_id = core.sha256(bytes) }))
    assert.are.equal(#bytes, res.size)
    assert.are.equal("p", core.read_file(root .. "/implicit/parent/file"))
  end)

  it("refuses a gzip stream that ends early, even when only its trailer is missing", function()
    local blob = tar.write(dir .. "/l.tar.gz", entries, "gzip")
    local data = core.read_file(blob)
    for _, keep in ipairs({ math.floor(#data / 2), #data - 4 }) do
      local root = dir .. "/root" .. keep
      sh("mkdir '" .. root .. "'")
      assert(core.write_file(dir .. "/cut.gz", data:sub(1, keep)))
      local res, err = core.layer_apply(root, dir .. "/cut.gz")
      assert.is_nil(res)
      -- (without its last 4 bytes the tar is whole: only the decompressor can refuse it)
      assert.is_truthy(err:find("cut.gz", 1, true), err)
    end
  end)

  it("raises on a bad option", function()
    assert.has_error(function() core.layer_apply(dir, dir .. "/x", { whiteouts = "aufs" }) end)
    assert.has_error(function() core.layer_apply(dir, dir .. "/x", { uid_offset = -1 }) end)
  end)
end)

describe("core.layer_write #root", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() sh("rm -rf '" .. dir .. "'") end)

  local function make_tree(src)
    sh(table.concat({
      "mkdir -p '%s/d/e' '%s/empty'", "printf hello > '%s/d/f'", "chown 1000:2000 '%s/d/f'",
      "chmod 4755 '%s/d/f'", "ln '%s/d/f' '%s/hard'", "ln -s /etc/passwd '%s/abs'",
      "ln -s d/f '%s/rel'", "mkfifo '%s/fifo'", "mknod '%s/null' c 1 3", "chmod 1777 '%s/empty'",
      "head -c 3000000 /dev/urandom > '%s/d/e/big'",
      "python3 -c \"import os; os.setxattr('%s/d/f','user.k',b'v')\"",
      "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.bind('%s/sock')\"",
      "touch -h -d @1500000000 '%s/abs' '%s/d/f' '%s/d/e/big' '%s/d/e' '%s/d'",
    }, " && "):gsub("%%s", src))
  end

  it("round-trips through layer_apply with everything preserved", function()
    make_tree(dir .. "/src")
    for _, c in ipairs({ "none", "gzip", "zstd" }) do
      local out = dir .. "/layer." .. c
      local w = assert(core.layer_write(dir .. "/src", out, { compression = c }))
      assert.are.equal(core.sha256(core.read_file(out)), w.digest)
      assert.are.equal(core.stat(out).size, w.size)
      if c == "none" then assert.are.equal(w.digest, w.diff_id) end
      local root = dir .. "/root." .. c
      sh("mkdir '" .. root .. "'")
      local a = assert(core.layer_apply(root, out, { diff_id = w.diff_id }))
      assert.are.equal(w.uncompressed_size, a.size)
      -- the socket is skipped; everything else is identical (root dir itself excluded)
      local want = snapshot(dir .. "/src"):gsub("[^\n]*%./sock [^\n]*\n", "")
      local got = snapshot(root)
      -- the writer keeps whole seconds
      want = want:gsub("(%d)%.%d+ ", "%1 ")
      got = got:gsub("(%d)%.%d+ ", "%1 ")
      want = want:gsub("\n%. [^\n]*", "\n"):gsub("^%. [^\n]*\n", "")
      got = got:gsub("\n%. [^\n]*", "\n"):gsub("^%. [^\n]*\n", "")
      assert.are.equal(want, got)
      assert.are.equal("v", xattr(root .. "/d/f", "user.k"))
    end
  end)

  it("writes sorted, relative, numeric PAX entries that GNU tar reads", function()
    make_tree(dir .. "/src")
    local out = dir .. "/layer.tar"
    assert(core.layer_write(dir .. "/src", out))
    local list = capture("tar --numeric-owner -tvf '" .. out .. "' 2>&1")
    assert.is_nil(list:find("Ignoring", 1, true))
    local names = capture("tar -tf '" .. out .. "'")
    assert.are.equal("abs\nd/\nd/e/\nd/e/big\nd/f\nempty/\nfifo\nhard\nnull\nrel\n", names)
    assert.is_truthy(list:find("\nhrwsr%-xr%-x 1000/2000 +0 [^\n]* hard link to d/f\n"), list)
    -- no user or group names in the headers: plain tar -tv shows the numbers
    assert.is_truthy(capture("tar -tvf '" .. out .. "'"):find("1000/2000", 1, true))
  end)

  it("is reproducible, and clamps mtimes", function()
    make_tree(dir .. "/src")
    local a = assert(core.layer_write(dir .. "/src", dir .. "/a.tgz",
      { compression = "gzip", mtime = 1600000000 }))
    sh("touch '" .. dir .. "/src/fifo' '" .. dir .. "/src/null'") -- stay newer than the clamp
    local b = assert(core.layer_write(dir .. "/src", dir .. "/b.tgz",
      { compression = "gzip", mtime = 1600000000 }))
    assert.are.equal(a.digest, b.digest)
    assert.are.equal(core.read_file(dir .. "/a.tgz"), core.read_file(dir .. "/b.tgz"))
    local list = capture("tar --full-time -tvzf '" .. dir .. "/a.tgz'")
    assert.is_truthy(list:find("2017%-07%-14 [0-9:]+ abs")) -- 1500000000 kept (older)
    assert.is_nil(list:find(os.date("!%Y", os.time()) .. "%-%d%d%-%d%d", 1))
    local c = assert(core.layer_write(dir .. "/src", dir .. "/c.tgz",
      { compression = "gzip", mtime = 1600000000, uid = 0, gid = 0 }))
    assert.are_not.equal(a.digest, c.digest)
    assert.is_truthy(capture("tar --numeric-owner -tvzf '" .. dir .. "/c.tgz'"):find("0/0 +5 "))
  end)

  it("leaves no temporary file behind on failure", function()
    local res, err = core.layer_write(dir .. "/missing", dir .. "/out.tar")
    assert.is_nil(res)
    assert.matches("missing", err)
    assert.are.equal("", capture("ls -A '" .. dir .. "'"))
  end)
end)
