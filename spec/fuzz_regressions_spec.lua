-- What the fuzz harnesses found (README "Fuzzing"), kept: every input under
-- fuzz/regressions/NAME/ is fed again to what it broke.  The inputs of the Lua harnesses go
-- through their own drivers (fuzz/NAME.lua), which raise on any broken contract; the others
-- are replayed through the bindings of the code they reached.
local core = require("ctr.core")

local DIR = "fuzz/regressions"

local function inputs(name)
  local out = {}
  for _, f in ipairs(core.listdir(DIR .. "/" .. name) or {}) do
    out[#out + 1] = { name = f, data = assert(core.read_file(DIR .. "/" .. name .. "/" .. f)) }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function read(name, file) return assert(core.read_file(DIR .. "/" .. name .. "/" .. file)) end

describe("fuzz regressions: image documents (fuzz/manifest.lua)", function()
  local driver = dofile("fuzz/manifest.lua")

  for _, input in ipairs(inputs("manifest")) do
    it("keeps its contracts on " .. input.name, function()
      driver(input.data, {})
    end)
  end

  it("json-nul-as-white-space: a NUL byte or \\u0000 makes a text no JSON", function()
    local v, err = core.json_decode(read("manifest", "json-nul-as-white-space"))
    assert.is_nil(v)
    assert.matches("NUL", err)
    for _, text in ipairs({ '{"a":1}\0', '[1,\0 2]', '["a\0b"]', '["a\\u0000b"]', '{"k\\u0000":1}' }) do
      v, err = core.json_decode(text)
      assert.is_nil(v, text)
      assert.matches("syntax error", err)
    end
    -- an escaped backslash before u0000 is text, not an escape
    assert.are.equal("\\u0000", core.json_decode('["\\\\u0000"]')[1])
    assert.are.equal(" ", core.json_decode('["\\u0020"]')[1])
  end)
end)
