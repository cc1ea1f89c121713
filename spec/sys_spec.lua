-- ctr.sys: the core's functions with error objects, and the results that are no errors.
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

describe("ctr.sys", function()
  it("has every function of ctr.core under its name", function()
    for name, v in pairs(core) do
      if type(v) == "function" then
        assert.are.equal("function", type(sys[name]), name)
      else
        assert.are.equal(v, sys[name], name)
      end
    end
  end)

  it("rfc3339 is UTC with nanoseconds, the calendar's days and leap years right", function()
    assert.are.equal("1970-01-01T00:00:00.000000000Z", core.rfc3339(0))
    assert.are.equal("2000-02-29T23:59:59.500000000Z", core.rfc3339(951868799.5))
    assert.are.equal("2100-03-01T00:00:00.000000000Z", core.rfc3339(4107542400))
    -- every 61 days and 3607 seconds over four centuries, against the C library's gmtime
    for t = 0, 12622780800, 61 * 86400 + 3607 do
      assert.are.equal(os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".000000000Z", core.rfc3339(t))
    end
    assert.truthy(core.rfc3339():match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ$"))
  end)

  it("returns a failure as nil, err with msg, errno and sym", function()
    local v, err = sys.read_file("/nonexistent/ctrlua-sys-spec")
    assert.is_nil(v)
    assert.is_true(errors.is_error(err))
    assert.are.equal(2, err.errno)
    assert.are.equal("ENOENT", err.sym)
    assert.truthy(tostring(err):find("/nonexistent/ctrlua-sys-spec", 1, true))
  end)

  it("passes results through, several values and false ones too", function()
    local r, w = sys.pipe(true)
    assert.is_number(r)
    assert.is_number(w)
    local data, err = sys.read(r, 10)
    assert.is_nil(data)
    assert.are.equal("EAGAIN", err.sym) -- nothing written yet: an error with its symbol
    assert.is_true(sys.write(w, "x"))
    assert.are.same({ [r] = true }, sys.poll({ r }, 0))
    assert.are.equal("x", sys.read(r, 10))
    sys.close(w)
    assert.are.equal("", sys.read(r, 10)) -- end of file
    assert.are.same({}, sys.poll({}, 0)) -- nothing ready
    sys.close(r)
    assert.is_false(sys.isatty(r))
    assert.is_nil(sys.getenv("CTRLUA_SYS_SPEC_UNSET"))
  end)

  it("keeps a bare nil as an answer, and a nil with a message as a failure", function()
    local v, err = sys.waitpid(1, { nohang = true }) -- not our child
    assert.is_nil(v)
    assert.are.equal("ECHILD", err.sym)
    assert.is_nil(select(2, sys.result(nil)))
  end)

  it("turns an object's method results the same way (sys.result)", function()
    local v, err = sys.result(nil, "boom `x'", 17)
    assert.is_nil(v)
    assert.are.equal("EEXIST", err.sym)
    assert.are.same({ 1, 2 }, { sys.result(1, 2) })
    assert.is_nil((sys.result(nil)))
  end)

  it("names the functions it leaves as they are, each for a reason", function()
    for name, why in pairs(sys.AS_IS) do
      assert.are.equal(core[name], sys[name], name)
      assert.is_string(why)
    end
  end)

  it("mkdir_p makes what is missing, refuses a non-directory, and asks nothing more of one there", function()
    local dir = require("support.ctrlua").tmpdir()
    local deep = dir .. "/a//b/c/"
    assert.is_true(sys.mkdir_p(deep, 448))
    assert.are.equal("directory", core.stat(dir .. "/a/b/c").type)
    assert.is_true(sys.mkdir_p(dir .. "/a/b/c", 448))
    assert(core.write_file(dir .. "/f", "x"))
    local ok, err = sys.mkdir_p(dir .. "/f", 448)
    assert.is_nil(ok)
    assert.are.equal("ENOTDIR", err.sym)
    ok, err = sys.mkdir_p(dir .. "/f/x/y", 448)
    assert.is_nil(ok)
    assert.are.equal("ENOTDIR", err.sym)
    assert.truthy(tostring(err):find(dir .. "/f/x", 1, true))
    if core.stat("/usr/bin/strace") then
      -- a directory that is there already costs one stat, not a mkdir of every component
      local out = dir .. "/strace.out"
      local code = "local c = require('ctr.core') assert(c.mkdir_p('" .. dir .. "/a/b/c', 448))"
      assert(core.write_file(dir .. "/probe.lua", code))
      -- (CTRLUA_LUA: under `make asan`, the instrumented host that runs the specs)
      local r = os.execute(("strace -f -qq -e trace=mkdir,mkdirat -o '%s' %s '%s'"):format(out,
        os.getenv("CTRLUA_LUA") or "luajit", dir .. "/probe.lua"))
      assert(r == 0 or r == true, "the traced mkdir_p failed")
      local f = assert(io.open(out))
      local trace = f:read("*a")
      f:close()
      assert.are.equal("", trace)
      assert.is_true(sys.mkdir_p(dir .. "/a/b/d/e", 448))
      assert.are.equal("directory", core.stat(dir .. "/a/b/d/e").type)
    end
    assert(core.remove_tree(dir))
  end)

  it("count_entries counts names by suffix, the store's temporary ones apart, and keeps none", function()
    local dir = require("support.tmp").dir("count")
    for _, name in ipairs({ "a.json", "b.json", "c.txt", ".tmp-a.json.12", ".tmp-0123", "d" }) do
      assert(core.write_file(dir .. "/" .. name, "", { mode = 384 }))
    end
    assert(core.mkdir_p(dir .. "/e.json", 448))
    assert.are.same({ 3, 2 }, { core.count_entries(dir, ".json") })
    assert.are.same({ 5, 2 }, { core.count_entries(dir) })
    assert.are.same({ 0, 0 }, { core.count_entries(dir .. "/e.json") })
    local n, err = sys.count_entries(dir .. "/none")
    assert.is_nil(n)
    assert.are.equal("ENOENT", err.sym)
    core.remove_tree(dir)
  end)

  it("reads a directory past many refills of its buffer: listdir, count_entries, remove_tree", function()
    -- 400 names of 60 bytes fill the 2 KB buffer of getdents64 some 15 times; a nest of 200
    -- directories holds a reader at every level of the removal
    local dir = require("support.ctrlua").tmpdir() .. "/many"
    assert(sys.mkdir_p(dir, 448))
    local want = {}
    for i = 1, 400 do
      local name = ("%03d-"):format(i) .. ("n"):rep(56)
      want[#want + 1] = name
      assert(core.write_file(dir .. "/" .. name, "", { mode = 384 }))
    end
    local names = assert(core.listdir(dir))
    table.sort(names)
    assert.are.same(want, names)
    assert.are.same({ 400, 0 }, { core.count_entries(dir) })
    local deep = dir .. "/d"
    for _ = 1, 200 do
      assert(core.mkdir_p(deep, 448))
      assert(core.write_file(deep .. "/f", "x"))
      deep = deep .. "/d"
    end
    assert.is_true(sys.remove_tree(dir))
    assert.is_nil(core.stat(dir))
  end)

  it("remove_tree stats directories only, and still refuses to cross a mount", function()
    local dir = require("support.ctrlua").tmpdir()
    local top = dir .. "/t"
    assert(sys.mkdir_p(top .. "/d/e", 448))
    for _, f in ipairs({ "/a", "/d/b", "/d/e/c" }) do assert(core.write_file(top .. f, "x")) end
    assert(core.symlink("/nonexistent", top .. "/d/l"))
    if core.stat("/usr/bin/strace") then
      local out = dir .. "/strace.out"
      local code = "local c = require('ctr.core') assert(c.remove_tree('" .. top .. "'))"
      assert(core.write_file(dir .. "/probe.lua", code))
      -- (CTRLUA_LUA: under `make asan`, the instrumented host that runs the specs)
      local r = os.execute(("strace -f -qq -e trace=stat,lstat,newfstatat,statx -o '%s' %s '%s'"):format(out,
        os.getenv("CTRLUA_LUA") or "luajit", dir .. "/probe.lua"))
      assert(r == 0 or r == true, "the traced remove_tree failed")
      local f = assert(io.open(out))
      local n = 0
      for line in f:lines() do
        if line:find(top, 1, true) or line:find('"d"', 1, true) or line:find('"e"', 1, true)
          or line:find('"a"', 1, true) or line:find('"b"', 1, true) or line:find('"c"', 1, true)
          or line:find('"l"', 1, true) then
          n = n + 1
        end
      end
      f:close()
      -- the top (one lstat), d and e (one each): none of the files nor the link
      assert.are.equal(3, n)
    else
      assert(core.remove_tree(top))
    end
    assert.is_nil(core.stat(top))
    assert.is_true(sys.remove_tree(top)) -- gone already: nothing to do
    assert(core.write_file(dir .. "/file", "x"))
    assert.is_true(sys.remove_tree(dir .. "/file"))
    assert.is_nil(core.stat(dir .. "/file"))
    if core.geteuid() == 0 then
      assert(sys.mkdir_p(top .. "/m", 448))
      assert(core.mount("tmpfs", "tmpfs", top .. "/m", {}))
      local ok, err = sys.remove_tree(top)
      core.unmount(top .. "/m", { detach = true })
      assert.is_nil(ok)
      assert.are.equal("EBUSY", err.sym)
    end
    assert(core.remove_tree(dir))
  end)
end)
