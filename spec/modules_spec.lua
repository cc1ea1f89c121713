-- The module graph of lua/ctr/: every module loads on its own, and no module requires, directly
-- or through others, itself.  A cycle works in Lua only as long as the require that closes it
-- stays inside a function, so the graph is read from the source (every `require("ctr...")`,
-- wherever it is), not from what loading happens to touch.
local core = require("ctr.core")

local M = {}

-- modules that are no files under lua/ctr: the C core, and what the ctrlua host preloads
M.BUILTIN = { ["ctr.core"] = true, ["ctr.host"] = true }

-- module name -> file, for every .lua under dir (init.lua names its folder)
function M.modules(dir, prefix, into)
  into = into or {}
  for _, name in ipairs(core.listdir(dir)) do
    local path = dir .. "/" .. name
    local st = core.stat(path)
    if st and st.type == "directory" then
      M.modules(path, prefix .. "." .. name, into)
    elseif name:match("%.lua$") then
      local mod = name == "init.lua" and prefix or prefix .. "." .. name:gsub("%.lua$", "")
      into[mod] = path
    end
  end
  return into
end

-- the ctr modules a source text requires, in order, each once; comments (usage examples in
-- a module's header) are no requires
function M.requires(text)
  local seen, out = {}, {}
  text = text:gsub("%-%-[^\n]*", "")
  -- require("ctr.x"), require "ctr.x", and pcall(require, "ctr.x")
  for _, pat in ipairs({ "require%s*%(?%s*([\"'])(ctr[%w_.]*)%1", "require%s*,%s*([\"'])(ctr[%w_.]*)%1" }) do
    for _, name in text:gmatch(pat) do
      -- "ctr." .. k: a name made at run time, not a module
      if not seen[name] and not M.BUILTIN[name] and name:sub(-1) ~= "." then
        seen[name] = true
        out[#out + 1] = name
      end
    end
  end
  return out
end

-- the first cycle found in graph (module -> {module, ...}), as a path a -> ... -> a, or nil
function M.cycle(graph)
  local state, stack = {}, {}
  local names = {}
  for m in pairs(graph) do names[#names + 1] = m end
  table.sort(names)
  local function visit(m)
    state[m] = "open"
    stack[#stack + 1] = m
    for _, d in ipairs(graph[m] or {}) do
      if state[d] == "open" then
        local path = {}
        for i = #stack, 1, -1 do
          table.insert(path, 1, stack[i])
          if stack[i] == d then break end
        end
        path[#path + 1] = d
        return path
      elseif state[d] == nil and graph[d] then
        local c = visit(d)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[m] = "done"
  end
  for _, m in ipairs(names) do
    if state[m] == nil then
      local c = visit(m)
      if c then return c end
    end
  end
end

function M.graph(dir)
  local graph = {}
  for mod, path in pairs(M.modules(dir, "ctr")) do
    graph[mod] = M.requires(assert(core.read_file(path)))
  end
  return graph
end

describe("the modules of lua/ctr", function()
  local graph = M.graph("lua/ctr")

  it("are found, and their requires read", function()
    assert.truthy(graph["ctr"] and graph["ctr.tasks"] and graph["ctr.cmd.runc"] and graph["ctr.store.meta"])
    assert.are.same({ "ctr.errors", "ctr.x.y", "ctr.z" },
      M.requires('local e = require("ctr.errors")\nlocal c = require("ctr.core")\n' ..
        '-- local ctr = require("ctr")\n' ..
        "local function f() return require 'ctr.x.y', require('ctr.errors'), pcall(require, \"ctr.z\") end"))
  end)

  it("name only modules that exist", function()
    for mod, deps in pairs(graph) do
      for _, d in ipairs(deps) do
        assert(graph[d], mod .. " requires " .. d .. ", which is no module under lua/ctr")
      end
    end
  end)

  it("form no cycle", function()
    local c = M.cycle(graph)
    assert(c == nil, "require cycle: " .. table.concat(c or {}, " -> "))
  end)

  it("the cycle check sees a cycle, direct or through others", function()
    assert.are.same({ "a", "b", "a" }, M.cycle({ a = { "b" }, b = { "a" } }))
    assert.are.same({ "b", "c", "d", "b" }, M.cycle({ a = { "b" }, b = { "c" }, c = { "d" }, d = { "b" } }))
    assert.is_nil(M.cycle({ a = { "b", "c" }, b = { "c" }, c = {} }))
  end)

  it("each load on its own", function()
    -- each into an empty package.loaded (but for the core), which is put back whole after: the
    -- other specs keep the module instances they hold
    local function ours(name) return name == "ctr" or name:match("^ctr%.") and name ~= "ctr.core" end
    local saved = {}
    for name, v in pairs(package.loaded) do
      if ours(name) then saved[name] = v end
    end
    local function reset(to)
      for name in pairs(package.loaded) do
        if ours(name) then package.loaded[name] = nil end
      end
      for name, v in pairs(to) do package.loaded[name] = v end
    end
    finally(function() reset(saved) end)
    for mod in pairs(graph) do
      reset({})
      local ok, v = pcall(require, mod)
      assert(ok, mod .. ": " .. tostring(v))
      assert.are.equal("table", type(v), mod .. " returns a table")
    end
  end)
end)

return M
