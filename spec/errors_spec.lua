-- ctr.errors.finally: the try/finally of the lock and lease holders (ctr.store.meta,
-- ctr.store.gclock, ctr.snapshots, ctr.leases).
local errors = require("ctr.errors")

describe("errors.finally", function()
  it("runs after() once fn returns, and returns all of fn's results, nils among them", function()
    local log = {}
    local n, a, b, c = (function(...) return select("#", ...), ... end)(
      errors.finally(function() log[#log + 1] = "after" end,
        function(x, y) log[#log + 1] = "fn " .. x .. y; return 1, nil, 3 end, "p", "q"))
    assert.are.same({ "fn pq", "after" }, log)
    assert.are.same({ 3, 1, nil, 3 }, { n, a, b, c })
  end)

  it("runs after() once fn raises, and raises fn's error again as it was", function()
    local ran = 0
    local err = errors.new("the lock's holder failed", 5, "EIO")
    local ok, got = pcall(errors.finally, function() ran = ran + 1 end, function() error(err) end)
    assert.is_false(ok)
    assert.are.equal(1, ran)
    assert.are.equal(err, got) -- the same value: no position prepended, no copy
    ok, got = pcall(errors.finally, function() ran = ran + 1 end, function() error("plain", 0) end)
    assert.are.same({ false, "plain", 2 }, { ok, got, ran })
  end)
end)
