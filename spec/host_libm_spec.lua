-- The host's libm, loaded on first use (csrc/lua/libm.c): Lua's arithmetic gives libm's own
-- results, libm is mapped only once a script does such arithmetic, and a `run --rm` of the
-- test image never maps it.
local core = require("ctr.core")
local S = require("support.ctrlua")
local F = require("support.fixtures")

local function maps(pid)
  return assert(core.read_file("/proc/" .. pid .. "/maps", 16 * 1024 * 1024))
end
local function has_libm(m) return m:find("/libm%.so") ~= nil end

-- Under the sanitizers (their runtime links libm) or against a shared libluajit (which needs
-- libm itself), libm is mapped at exec whatever the host does; only the results are checked.
local function libm_at_exec_expected()
  local probe = F.tmpdir() .. "/maps.lua"
  F.write(probe, 'io.write(assert(io.open("/proc/self/maps")):read("*a"))')
  local m = F.sh(S.q(S.BIN) .. " " .. S.q(probe))
  return m:find("libasan") ~= nil or m:find("libluajit") ~= nil
end

describe("the host's libm", function()
  teardown(function() F.cleanup() S.cleanup() end)

  it("gives libm's results for each function LuaJIT takes from it", function()
    -- no constant folding: the parser would call pow at compile time
    local script = F.tmpdir() .. "/math.lua"
    F.write(script, [[
local x, y = tonumber(arg[1]), tonumber(arg[2])
local r = { math.acos(x), math.asin(x), math.atan(x), math.atan2(x, y), math.cos(x), math.cosh(x),
  math.exp(x), math.fmod(y, x), math.log(y), math.log10(y), math.log(y, 2), math.pow(y, x),
  y ^ x, math.sin(x), math.sinh(x), math.sqrt(y), math.tan(x), math.tanh(x) }
for i = 1, #r do r[i] = ("%.17g"):format(r[i]) end
io.write(table.concat(r, " "))
]])
    local x, y = 0.37, 5.5
    local want = { math.acos(x), math.asin(x), math.atan(x), math.atan2(x, y), math.cos(x),
      math.cosh(x), math.exp(x), math.fmod(y, x), math.log(y), math.log10(y), math.log(y, 2),
      math.pow(y, x), y ^ x, math.sin(x), math.sinh(x), math.sqrt(y), math.tan(x), math.tanh(x) }
    for i = 1, #want do want[i] = ("%.17g"):format(want[i]) end
    local got = F.sh(S.q(S.BIN) .. " " .. S.q(script) .. " " .. x .. " " .. y)
    assert.are.equal(table.concat(want, " "), got)
  end)

  it("is mapped only once a script calls into it", function()
    if libm_at_exec_expected() then return end
    local script = F.tmpdir() .. "/lazy.lua"
    F.write(script, [[
local function mapped() return assert(io.open("/proc/self/maps")):read("*a"):find("/libm%.so") ~= nil end
local before = mapped()
local v = math.sin(tonumber(arg[1]))
io.write(tostring(before), " ", tostring(mapped()), " ", ("%.6f"):format(v))
]])
    assert.are.equal("false true 0.841471", F.sh(S.q(S.BIN) .. " " .. S.q(script) .. " 1"))
  end)

  it("is never mapped by a run --rm", function()
    if libm_at_exec_expected() then return end
    local env = S.new_env()
    local ok, err = pcall(function()
      local h = env:spawn("run.lua", "--rm", S.IMAGE, "libm1", "sh", "-c", "echo up; sleep 1")
      S.until_true(function() return (S.slurp(h.out) or ""):find("up") end, 20,
        "the container to start")
      local m = maps(h.pid)
      local r = h:wait(20)
      assert.are.equal(0, r.code, r.stderr)
      assert.is_truthy(m:find("/libc%.so"), "the maps of the run were read")
      assert.is_false(has_libm(m), "libm mapped by a run --rm")
    end)
    env:destroy()
    if not ok then error(err, 0) end
  end)
end)
