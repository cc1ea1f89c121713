-- The core reads mount option strings and /proc/self/mountinfo itself, without libmount (which
-- would map four libraries into every run).  These tests hold the copy to the original: the
-- installed libmount, reached through the FFI, must say the same of every option it knows and
-- of every line of the mount table, escaped names included.
local ffi = require("ffi")
local core = require("ctr.core")
local S = require("support.ctrlua")

ffi.cdef([[
struct libmnt_optmap { const char *name; int id; int mask; };
const struct libmnt_optmap *mnt_get_builtin_optmap(int id);
int mnt_split_optstr(const char *optstr, char **user, char **vfs, char **fs, int ignore_user, int ignore_vfs);
int mnt_optstr_get_flags(const char *optstr, unsigned long *flags, const struct libmnt_optmap *map);
struct libmnt_table *mnt_new_table_from_file(const char *filename);
void mnt_unref_table(struct libmnt_table *tb);
struct libmnt_iter *mnt_new_iter(int direction);
void mnt_free_iter(struct libmnt_iter *itr);
int mnt_table_next_fs(struct libmnt_table *tb, struct libmnt_iter *itr, struct libmnt_fs **fs);
int mnt_fs_get_id(struct libmnt_fs *fs);
int mnt_fs_get_parent_id(struct libmnt_fs *fs);
unsigned long mnt_fs_get_devno(struct libmnt_fs *fs);
const char *mnt_fs_get_root(struct libmnt_fs *fs);
const char *mnt_fs_get_target(struct libmnt_fs *fs);
const char *mnt_fs_get_fstype(struct libmnt_fs *fs);
const char *mnt_fs_get_source(struct libmnt_fs *fs);
const char *mnt_fs_get_vfs_options(struct libmnt_fs *fs);
const char *mnt_fs_get_fs_options(struct libmnt_fs *fs);
void free(void *);
]])
local MNT_LINUX_MAP, MNT_USERSPACE_MAP = 1, 2
local mnt = ffi.load("libmount.so.1")

-- libmount's verdict on one option: kind, flags it leaves set from 0, flags it leaves from ~0
local function libmount_says(opt)
  local user, vfs, fs = ffi.new("char *[1]"), ffi.new("char *[1]"), ffi.new("char *[1]")
  assert.are.equal(0, mnt.mnt_split_optstr(opt, user, vfs, fs, 0, 0))
  local function take(p)
    if p[0] == nil then return nil end
    local s = ffi.string(p[0])
    ffi.C.free(p[0])
    return s
  end
  local u, v, f = take(user), take(vfs), take(fs)
  if v then
    local map = mnt.mnt_get_builtin_optmap(MNT_LINUX_MAP)
    local set, keep = ffi.new("unsigned long[1]", 0), ffi.new("unsigned long[1]", 0xffffffff)
    mnt.mnt_optstr_get_flags(v, set, map)
    mnt.mnt_optstr_get_flags(v, keep, map)
    return "vfs", tonumber(set[0]), tonumber(keep[0])
  end
  if f then return "fs" end
  return "user", u
end

local function names_of(map_id)
  local names = {}
  local m = mnt.mnt_get_builtin_optmap(map_id)
  while m.name ~= nil do
    names[#names + 1] = ffi.string(m.name)
    m = m + 1
  end
  return names
end

describe("mount options", function()
  it("are what libmount makes of each name it knows, with and without a value", function()
    local opts = { "size=64m", "mode=755", "lowerdir=/a:/b", "uid=0", "gvfs", "nosuidx",
      "x-systemd.automount", "X-mount.mkdir", "comment=foo", "loop=/dev/loop0" }
    for _, map in ipairs({ MNT_LINUX_MAP, MNT_USERSPACE_MAP }) do
      for _, name in ipairs(names_of(map)) do
        local base = name:gsub("%[?=%]?$", "")
        opts[#opts + 1] = base
        opts[#opts + 1] = base .. "=1"
      end
    end
    assert.is_true(#opts > 60)
    for _, opt in ipairs(opts) do
      local kind, flags, invert = core.mount_option(opt)
      local lkind, set, keep = libmount_says(opt)
      if lkind == "user" and opt:match("^defaults") then
        lkind = "user" -- libmount drops it from every list: it means nothing to anyone
      end
      assert.are.equal(lkind, kind, opt)
      if kind == "vfs" then
        if invert then
          assert.are.equal(0, set, opt)
          assert.are.equal(0xffffffff - flags, keep, opt)
        else
          assert.are.equal(flags, set, opt)
          assert.are.equal(0xffffffff, keep, opt)
        end
      end
    end
  end)
end)

describe("the mount table", function()
  local function libmount_table()
    local tb = mnt.mnt_new_table_from_file("/proc/self/mountinfo")
    assert.is_not_nil(tb)
    local it = mnt.mnt_new_iter(0)
    local fs = ffi.new("struct libmnt_fs *[1]")
    local rows = {}
    local function str(p) return p ~= nil and ffi.string(p) or "" end
    while mnt.mnt_table_next_fs(tb, it, fs) == 0 do
      local f = fs[0]
      local dev = tonumber(mnt.mnt_fs_get_devno(f))
      rows[#rows + 1] = {
        id = mnt.mnt_fs_get_id(f), parent_id = mnt.mnt_fs_get_parent_id(f),
        -- glibc's dev_t encoding (gnu_dev_major/minor)
        major = bit.bor(bit.band(bit.rshift(dev, 8), 0xfff), bit.band(math.floor(dev / 2^32), 0xfffff000)),
        minor = bit.bor(bit.band(dev, 0xff), bit.band(bit.rshift(dev, 12), 0xffffff00)),
        root = str(mnt.mnt_fs_get_root(f)), target = str(mnt.mnt_fs_get_target(f)),
        fstype = str(mnt.mnt_fs_get_fstype(f)), source = str(mnt.mnt_fs_get_source(f)),
        vfs_options = str(mnt.mnt_fs_get_vfs_options(f)),
        fs_options = str(mnt.mnt_fs_get_fs_options(f)),
      }
    end
    mnt.mnt_free_iter(it)
    mnt.mnt_unref_table(tb)
    return rows
  end

  it("is read line for line as libmount reads it, escaped names included #root", function()
    local dir = S.tmpdir()
    -- a name with a space, a tab, a newline and a backslash: the kernel writes them \NNN
    local odd = dir .. "/a b\tc\nd\\e"
    assert.is_true(core.mkdir_p(odd, 493))
    assert.is_true(core.mount("tmpfs", "ctrlua src", odd, { "size=1m", "mode=700" }))
    local ok, err = pcall(function()
      local ours, theirs = assert(core.mountinfo()), libmount_table()
      assert.are.equal(#theirs, #ours)
      local found = false
      for i, row in ipairs(theirs) do
        assert.are.same(row, ours[i])
        if row.target == odd then
          found = true
          assert.are.equal("ctrlua src", row.source)
        end
      end
      assert.is_true(found)
    end)
    core.unmount(odd)
    S.sh("rm -rf " .. S.q(dir))
    assert(ok, err)
  end)

  it("gives the mount points at and below a directory, and no others #root", function()
    local dir = S.tmpdir()
    local a, b, sib = dir .. "/a b", dir .. "/a b/c", dir .. "/a bc"
    for _, d in ipairs({ a, sib }) do assert.is_true(core.mkdir_p(d, 493)) end
    local mounted = {}
    local ok, err = pcall(function()
      for _, d in ipairs({ a, sib }) do
        assert.is_true(core.mount("tmpfs", "ctrlua", d, { "size=1m" }))
        mounted[#mounted + 1] = d
      end
      assert.is_true(core.mkdir_p(b, 493))
      assert.is_true(core.mount("tmpfs", "ctrlua", b, { "size=1m" }))
      mounted[#mounted + 1] = b
      -- a sibling whose name begins with the directory's is not below it
      assert.are.same({ a, b }, core.mount_points_under(a))
      assert.are.same({ b }, core.mount_points_under(b))
      assert.are.same({}, core.mount_points_under(dir .. "/none"))
    end)
    for i = #mounted, 1, -1 do core.unmount(mounted[i]) end
    S.sh("rm -rf " .. S.q(dir))
    assert(ok, err)
  end)
end)
