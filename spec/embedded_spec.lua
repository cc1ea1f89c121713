-- The host's built-in bytecode (csrc/lua/embedded.h): an installed tree (`make install` into
-- a temporary DESTDIR) runs its modules and scripts from the bytecode while the installed
-- files keep the size and mtime of the sources they were compiled from, and runs the file the
-- moment either differs — an edit made by a site is the code that runs.
local F = require("support.fixtures")

local BIN = assert(os.getenv("CTRLUA_BIN"), "CTRLUA_BIN")
local BUILD = BIN:match("^(.*)/[^/]+$")

-- the first line of a file, replaced by one of the same length that sets a global: an edit the
-- host can only miss by not reading the file
local function edit_same_size(path, global)
  local body = F.read(path)
  local first, rest = body:match("^([^\n]*)(\n.*)$")
  local line = global .. " = true --"
  assert(#first >= #line, "first line of " .. path .. " too short for the edit")
  F.write(path, line .. ("-"):rep(#first - #line) .. rest)
  assert(#F.read(path) == #body)
end

describe("the host's built-in bytecode", function()
  local dest, prefix, ctrlua, share

  setup(function()
    dest = F.tmpdir()
    prefix = "/usr"
    -- `-o all`: install what the build made, never rebuild it from here
    F.sh("make -s -o all install DESTDIR=" .. F.q(dest) .. " PREFIX=" .. prefix .. " BUILD=" .. F.q(BUILD))
    ctrlua = dest .. prefix .. "/bin/ctrlua"
    share = dest .. prefix .. "/share/ctrlua"
  end)
  teardown(function() F.cleanup() end)

  local function probe(lua)
    local p = F.tmpdir() .. "/probe.lua"
    F.write(p, lua)
    return (F.sh(F.q(ctrlua) .. " " .. F.q(p)):gsub("\n$", ""))
  end

  it("install -p keeps the sources' mtimes, and a module loads from the binary", function()
    local src = F.sh("stat -c '%s %.9Y' lua/ctr/json.lua")
    assert.are.equal(src, F.sh("stat -c '%s %.9Y' " .. F.q(share .. "/lua/ctr/json.lua")))
    local json_file = share .. "/lua/ctr/json.lua"
    local keep = F.tmpdir() .. "/json.lua"
    F.sh("cp -p " .. F.q(json_file) .. " " .. F.q(keep))
    -- the same size, the mtime put back: the bytecode is what runs, so the edit is not seen
    edit_same_size(json_file, "PROBE_EDITED")
    F.sh("touch -r " .. F.q(keep) .. " " .. F.q(json_file))
    local lua = 'local json = require("ctr.json"); print(tostring(PROBE_EDITED), json.encode({ 1 }))'
    assert.are.equal("nil\t[1]", probe(lua))
    -- any mtime change (the edit as a site makes it): the file runs
    F.sh("touch " .. F.q(json_file))
    assert.are.equal("true\t[1]", probe(lua))
    -- a site's edit that changes the size, mtime kept: the file runs too
    F.sh("cp -p " .. F.q(keep) .. " " .. F.q(json_file))
    assert.are.equal("nil\t[1]", probe(lua))
    F.sh("printf 'PROBE_EDITED = 7\\n' >> " .. F.q(json_file) .. " && touch -r " .. F.q(keep) .. " " .. F.q(json_file))
    assert.has_error(function() probe(lua) end) -- a statement after `return M`: the file was parsed
    F.sh("cp -p " .. F.q(keep) .. " " .. F.q(json_file))
    assert.are.equal("nil\t[1]", probe(lua))
  end)

  it("a command from the scripts folder runs from the binary until its file is edited", function()
    local help = share .. "/scripts/help.lua"
    local before = F.sh(F.q(ctrlua) .. " help")
    assert.matches("images", before)
    local keep = F.tmpdir() .. "/help.lua"
    F.sh("cp -p " .. F.q(help) .. " " .. F.q(keep))
    local body = F.read(help)
    F.write(help, 'io.write("edited help\\n") os.exit(0)\n' .. body)
    assert.are.equal("edited help\n", F.sh(F.q(ctrlua) .. " help"))
    F.sh("cp -p " .. F.q(keep) .. " " .. F.q(help))
    assert.are.equal(before, F.sh(F.q(ctrlua) .. " help"))
  end)

  it("a module's bytecode is read from the executable, not through its mapping", function()
    -- Mapped, each blob touched would bring the 64 KiB around it into the resident set (most of
    -- the half megabyte of bytecode once a command has loaded its modules); read, none of it.
    local exe = F.sh("readlink -f " .. F.q(BIN)):gsub("\n$", "")
    local p = F.tmpdir() .. "/probe.lua"
    F.write(p, [[
local exe, lua = ...
local function resident()
  local kb, cur = 0, nil
  for line in io.lines("/proc/self/smaps") do
    if line:match("^%x+%-%x+ ") then cur = line:match("^%x+%-%x+ %S+ %x+ %S+ %d+%s+(.-)%s*$") end
    local rss = line:match("^Rss:%s+(%d+) kB")
    if rss and cur == exe then kb = kb + tonumber(rss) end
  end
  return kb
end
require("ctr.core") -- (its opening touches the binding's own code and names, not bytecode)
local before, n = resident(), 0
for f in io.popen("cd " .. lua .. " && ls ctr/*.lua ctr/*/*.lua"):lines() do
  if pcall(require, (f:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))) then n = n + 1 end
end
print(n, resident() - before)
]])
    local out = F.sh(F.q(BIN) .. " " .. F.q(p) .. " " .. F.q(exe) .. " " .. F.q(BUILD .. "/../lua"))
    local n, grown = out:match("^(%d+)\t(%-?%d+)")
    assert.is_true(tonumber(n) >= 40, "modules loaded: " .. out)
    assert.is_true(tonumber(grown) < 128, "the executable's resident KB grew by " .. grown)
  end)

  it("the bytecode carries no lines; under --debug the files run and a traceback names them", function()
    local p = F.tmpdir() .. "/probe.lua"
    F.write(p, 'local json = require("ctr.json")\n' ..
      'local i = debug.getinfo(json.encode, "S")\n' ..
      'print(i.source, i.linedefined > 0)\n' ..
      'print((select(2, xpcall(json.encode_indent, debug.traceback, {}, 5))))\n')
    local plain = F.sh(F.q(ctrlua) .. " " .. F.q(p))
    assert.matches("^ctr%.json\tfalse\n", plain)
    assert.not_matches("json%.lua:%d", plain)
    local traced = F.sh(F.q(ctrlua) .. " --debug " .. F.q(p))
    assert.matches("^@" .. share:gsub("%p", "%%%0") .. "/lua/ctr/json%.lua\ttrue\n", traced)
    assert.matches("/lua/ctr/json%.lua:%d+: in function", traced)
    -- a command of the scripts folder too: an edit that keeps the size and the mtime runs
    -- under --debug only
    local help = share .. "/scripts/help.lua"
    local keep = F.tmpdir() .. "/help.lua"
    F.sh("cp -p " .. F.q(help) .. " " .. F.q(keep))
    finally(function() F.sh("cp -p " .. F.q(keep) .. " " .. F.q(help)) end)
    local body = F.read(help)
    local first, rest = body:match("^([^\n]*)(\n.*)$")
    local line = 'io.write("edited\\n") os.exit(0) --'
    F.write(help, line .. ("-"):rep(#first - #line) .. rest)
    F.sh("touch -r " .. F.q(keep) .. " " .. F.q(help))
    assert.matches("images", F.sh(F.q(ctrlua) .. " help"))
    assert.are.equal("edited\n", F.sh(F.q(ctrlua) .. " --debug help"))
  end)

  it("a module found earlier on LUA_PATH (a site's own copy) wins over the built-in one", function()
    local site = F.tmpdir()
    F.write(site .. "/ctr/json.lua", 'return { encode = function() return "site" end }\n')
    local p = F.tmpdir() .. "/probe.lua"
    -- the host puts its own lua/ first on package.path; a script may put another folder
    -- ahead of it, and the file found there is the one that runs
    F.write(p, 'package.path = ' .. string.format("%q", site .. "/?.lua;") .. ' .. package.path\n' ..
      'print(require("ctr.json").encode({}))')
    assert.are.equal("site\n", F.sh(F.q(ctrlua) .. " " .. F.q(p)))
  end)

  it("a command of the scripts folder collects nothing below 1 MiB, then at a pause of 400; a script named by its path at luajit's", function()
    -- garbage until the heap holds 900 KB or shrinks (a cycle ran); then until one runs;
    -- setpause answers the pause it replaces
    local lua = [[
local last, shrank = collectgarbage("count"), false
while not shrank and collectgarbage("count") < 900 do
  local _ = { 1, 2, 3 }
  local now = collectgarbage("count")
  if now < last then shrank = true end
  last = now
end
local collected = false
for _ = 1, 1e6 do
  local _ = { 1, 2, 3 }
  local now = collectgarbage("count")
  if now < last then collected = true break end
  last = now
end
print(collectgarbage("setpause", 200), shrank, collected)
]]
    local cmd = share .. "/scripts/probe_pause.lua"
    F.write(cmd, lua)
    finally(function() os.remove(cmd) end)
    assert.are.equal("400\tfalse\ttrue\n", F.sh(F.q(ctrlua) .. " probe_pause"))
    assert.are.equal("200\ttrue\ttrue\n", F.sh(F.q(ctrlua) .. " " .. F.q(cmd)))
  end)
end)
