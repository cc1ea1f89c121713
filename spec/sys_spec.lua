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
end)
