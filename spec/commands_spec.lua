-- The commands as a user meets them: ctr's help and flag errors for images, content and
-- snapshots, `ctrlua help`, `ctrlua --version`, unknown commands, and the rule that commands use
-- the library only.  Also the small modules the commands print through: ctr.json, ctr.cmd.format,
-- ctr.cmd.term, ctr.cmd.app.
local F = require("support.fixtures")
local app = require("ctr.cmd.app")
local format = require("ctr.cmd.format")
local json = require("ctr.json")
local term = require("ctr.cmd.term")

local function lines(s)
  local out = {}
  for l in s:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

-- the scripts of the tree, by listing the folder with ls (not with the code under test)
local function script_files()
  local out = {}
  for name in F.sh("ls scripts"):gmatch("[^\n]+") do
    if name:match("%.lua$") then out[#out + 1] = name end
  end
  return out
end

describe("ctr.json", function()
  it("indents as Go's json.MarshalIndent(v, \"\", \"    \") with sorted keys", function()
    local v = { b = json.array({ 1, 2 }), a = "x", c = {}, d = json.array({}), e = { f = true, g = json.null } }
    assert.are.equal('{\n    "a": "x",\n    "b": [\n        1,\n        2\n    ],\n    "c": {},\n    "d": [],\n' ..
      '    "e": {\n        "f": true,\n        "g": null\n    }\n}', assert(json.encode_indent(v)))
    assert.are.equal('{"a":"x","b":[1,2],"c":{},"d":[],"e":{"f":true,"g":null}}', assert(json.encode(v)))
    assert.are.equal("[]", json.encode(json.array({})))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[\n\t1\n]", json.encode_indent({ 1 }, "\t"))
  end)

  it("keeps a struct's field order with json.ordered, other keys sorted after", function()
    local t = json.ordered({ Name = "n", Kind = "Active", Zed = 1, Alpha = 2, Parent = nil },
      { "Kind", "Name", "Parent" })
    assert.are.equal('{"Kind":"Active","Name":"n","Alpha":2,"Zed":1}', json.encode(t))
  end)

  it("escapes strings as Go does", function()
    local cases = {
      { "plain", '"plain"' },
      { 'q"b\\', '"q\\"b\\\\"' },
      { "<a href='x'>&</a>", '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"' },
      { "\n\r\t\1\31", '"\\n\\r\\t\\u0001\\u001f"' },
      { "caf\195\169", '"caf\195\169"' },                  -- valid UTF-8 kept
      { "\226\128\168|\226\128\169", '"\\u2028|\\u2029"' }, -- line and paragraph separators
      { "a\255b", '"a\\ufffdb"' },                        -- invalid byte
      { "\192\175", '"\\ufffd\\ufffd"' },                 -- overlong "/"
      { "\237\160\128", '"\\ufffd\\ufffd\\ufffd"' },      -- a UTF-16 surrogate
      { "\240\159\144\179", '"\240\159\144\179"' },       -- 4-byte sequence
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], json.encode(c[1]), c[1]) end
  end)

  it("writes numbers as Go's encoding/json", function()
    local cases = {
      { 0, "0" }, { -0.0, "-0" }, { 42, "42" }, { -7, "-7" }, { 1.5, "1.5" }, { 0.1, "0.1" },
      { 1e20, "100000000000000000000" }, { 1e21, "1e+21" }, { 1.5e300, "1.5e+300" },
      { 0.000001, "0.000001" }, { 1e-7, "1e-7" }, { -2.5e-10, "-2.5e-10" }, { 123456.789, "123456.789" },
      { 2 ^ 53, "9007199254740992" }, { 2 ^ 63, "9223372036854775807" }, { 1 / 3, "0.3333333333333333" },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], json.encode(c[1]), tostring(c[1])) end
  end)

  it("refuses what JSON cannot hold, with an error value", function()
    for _, v in ipairs({ 0 / 0, math.huge, print, { [true] = 1 } }) do
      local s, err = json.encode(v)
      assert.is_nil(s)
      assert.are.equal("INVALID", err.sym)
    end
    local cyc = {}
    cyc.self = cyc
    local s, err = json.encode_indent(cyc)
    assert.is_nil(s)
    assert.matches("nesting", err.msg)
  end)

  it("decodes, and round-trips what it encodes", function()
    local v = { a = json.array({}), b = { 1, "two", false }, c = json.null, d = "<&>\n" }
    local back = assert(json.decode(assert(json.encode_indent(v))))
    assert.are.same({}, back.a)
    assert.are.equal(json.array_mt, getmetatable(back.a))
    assert.are.same({ 1, "two", false }, { back.b[1], back.b[2], back.b[3] })
    assert.are.equal(json.null, back.c)
    assert.are.equal("<&>\n", back.d)
    local none, err = json.decode("{nope")
    assert.is_nil(none)
    assert.are.equal("INVALID", err.sym)
    assert.has_error(function() json.decode(42) end, "json.decode: s: expected string")
  end)
end)

describe("ctr.cmd.format", function()
  it("bytes as ctr's progress.Bytes", function()
    assert.are.equal("0.0 B", format.bytes(0))
    assert.are.equal("1023.0 B", format.bytes(1023))
    assert.are.equal("1.0 KiB", format.bytes(1024))
    assert.are.equal("2.9 KiB", format.bytes(3000))
    assert.are.equal("1.5 GiB", format.bytes(1.5 * 2 ^ 30))
    assert.has_error(function() format.bytes("1") end, "format.bytes: n: expected number")
  end)

  it("ages as docker's units.HumanDuration", function()
    local cases = { { 0.5, "Less than a second" }, { 1, "1 second" }, { 59, "59 seconds" },
      { 60, "About a minute" }, { 150, "2 minutes" }, { 3600, "About an hour" }, { 5 * 3600, "5 hours" },
      { 3 * 86400, "3 days" }, { 20 * 86400, "2 weeks" }, { 90 * 86400, "3 months" },
      { 3 * 365 * 86400, "3 years" } }
    for _, c in ipairs(cases) do assert.are.equal(c[2], format.human_duration(c[1])) end
  end)

  it("tables as Go's tabwriter: padded columns, last column bare", function()
    assert.are.equal("KEY  PARENT KIND\nlong x      Active\n",
      format.table({ { "KEY", "PARENT", "KIND" }, { "long", "x", "Active" } }))
    assert.are.equal("a b\n", format.table({ { "a", "b" } }))
    assert.are.equal("a\tb c\n", (format.table({ { "a\tb", "c" } }):gsub(" ", "\t", 1)))
  end)
end)

describe("ctr.cmd.term", function()
  it("draws, throttles and clears a progress line on the stream it is given", function()
    local path = os.tmpname()
    local fh = assert(io.open(path, "w+b"))
    local p = term.progress({ force = true, stream = fh, interval = 3600, width = 10 })
    p("blobs/sha256/0123456789abcdef", 3000)
    p("second", 1) -- within the interval: not drawn
    p(nil)
    fh:seek("set")
    local got = fh:read("*a")
    fh:close()
    os.remove(path)
    assert.are.equal("\r\27[K...9abcdef (2.9 KiB)\r\27[K", got)
    -- no terminal, no progress
    assert.are.equal(term.isatty(2) and "function" or "nil", type(term.progress()))
    assert.is_boolean(term.isatty("stdout"))
    assert.is_true(term.monotime() > 0 and term.now() > 1.6e9)
  end)
end)

describe("ctr.cmd.app", function()
  local demo = {
    name = "demo", usage = "a demo",
    flags = { { name = "snapshotter", type = "string", usage = "snapshotter name" } },
    commands = {
      { name = "list", aliases = { "ls" }, usage = "list things", action = function() end },
      { name = "delete", aliases = { "del", "remove", "rm" }, usage = "remove things", action = function() end },
    },
  }

  it("lays out the help as urfave/cli under ctr", function()
    assert.are.equal([[
NAME:
   ctrlua demo - a demo

USAGE:
   ctrlua demo command [command options] [arguments...]

COMMANDS:
   list, ls                 list things
   delete, del, remove, rm  remove things

OPTIONS:
   --snapshotter value  snapshotter name
   --help, -h           show help
   
]], app.usage(demo))
  end)

  it("finds commands by name and alias", function()
    assert.are.equal("delete", app.find(demo, "rm").name)
    assert.are.equal("list", app.find(demo, "list").name)
    assert.is_nil(app.find(demo, "nosuch"))
    assert.has_error(function() app.usage({ name = "x", commands = { { name = "a" } } }) end,
      "app.commands[1].action: expected function")
  end)

  it("lists scripts with their descriptions, and notices a missing one", function()
    local d = F.tmpdir()
    F.write(d .. "/good.lua", "-- good: does good things\nreturn 1\n")
    F.write(d .. "/bad.lua", "local x = 1\n")
    F.write(d .. "/wrong.lua", "-- other: names another command\n")
    F.write(d .. "/notes.txt", "-- notes: not a script\n")
    local list = assert(app.scripts(d))
    F.cleanup()
    assert.are.same({ "bad", "good", "wrong" }, { list[1].name, list[2].name, list[3].name })
    assert.are.equal(3, #list)
    assert.is_nil(list[1].description)
    assert.are.equal("does good things", list[2].description)
    assert.is_nil(list[3].description)
    local none, err = app.scripts(d .. "/gone")
    assert.is_nil(none)
    assert.are.equal("ENOENT", err.sym)
  end)
end)

describe("commands", function()
  local root
  before_each(function() root = F.tmpdir() end)
  after_each(function() F.cleanup() end)

  local function run(args) return F.ctrlua("--root " .. F.q(root) .. " --state " .. F.q(root .. "/state") .. " " .. args) end

  it("every script starts with `-- NAME: description`", function()
    local files = script_files()
    assert.is_true(#files >= 5)
    for _, f in ipairs(files) do
      local first = F.read("scripts/" .. f):match("^([^\n]*)")
      local name, desc = first:match("^%-%- ([%w_%-]+): (%S.*)$")
      assert.are.equal(f:gsub("%.lua$", ""), name, "first line of scripts/" .. f .. ": " .. first)
      assert.is_truthy(desc)
    end
  end)

  it("`ctrlua` alone and `ctrlua help` list every script with its line", function()
    local out0, rc0 = run("")
    local out, rc, err = run("help")
    assert.are.equal(0, rc, err)
    assert.are.equal(0, rc0)
    assert.are.equal(out, out0)
    assert.matches("^NAME:\n   ctrlua %- ", out)
    assert.matches("\nGLOBAL OPTIONS:\n   %-%-root value ", out)
    local listed = {}
    for name, desc in out:gmatch("\n   ([%w_%-]+)  +([^\n]+)") do listed[name] = desc end
    for _, f in ipairs(script_files()) do
      local name = f:gsub("%.lua$", "")
      local desc = F.read("scripts/" .. f):match("^%-%- [%w_%-]+: ([^\n]*)")
      assert.are.equal(desc, listed[name], "ctrlua help line of " .. name)
    end
    -- help COMMAND: the command's own help
    local h1 = run("help images")
    local h2 = run("images --help")
    assert.are.equal(h2, h1)
    assert.matches("^NAME:\n   ctrlua images %- manage images\n", h1)
    local _, rc3, err3 = run("help nosuch")
    assert.are.equal(3, rc3)
    assert.are.equal("ctrlua: No help topic for 'nosuch'\n", err3)
  end)

  it("`ctrlua --version` prints its version and its libraries'", function()
    local out, rc = run("--version")
    assert.are.equal(0, rc)
    local l = lines(out)
    assert.matches("^ctrlua %d+%.%d+%.%d+", l[1])
    assert.matches("LuaJIT 2%.%d", l[2])
    assert.matches("libseccomp %d+%.%d+%.%d+", l[2])
    assert.matches("libarchive %d+%.%d+%.%d+", l[2])
    assert.matches("cJSON %d+%.%d+%.%d+", l[2])
    if not F.have("pkg-config") then
      pending("pkg-config missing: versions not compared")
      return
    end
    for lib, pc in pairs({ libseccomp = "libseccomp", libarchive = "libarchive", cJSON = "libcjson" }) do
      local v = F.sh("pkg-config --modversion " .. pc .. " || true"):gsub("%s+$", "")
      if v ~= "" then assert.is_truthy(l[2]:find(lib .. " " .. v, 1, true), lib .. " " .. v .. " in " .. l[2]) end
    end
  end)

  it("`ctrlua nosuch` fails with one line", function()
    local out, rc, err = run("nosuch")
    assert.are_not.equal(0, rc)
    assert.are.equal("", out)
    assert.matches("^ctrlua: [^\n]*nosuch[^\n]*\n$", err)
  end)

  it("`images`, `content`, `snapshots` alone list their subcommands as ctr does", function()
    local want = {
      images = { "check", "import", "list, ls", "delete, del, remove, rm", "tag" },
      content = { "delete, del, remove, rm", "get", "ingest", "list, ls" },
      snapshots = { "commit", "info", "list, ls", "mounts, m, mount", "prepare",
        "delete, del, remove, rm", "label", "tree", "usage", "view" },
    }
    for cmd, names in pairs(want) do
      local out, rc, err = run(cmd)
      assert.are.equal(0, rc, err)
      assert.are.equal("", err)
      assert.matches("^NAME:\n   ctrlua " .. cmd .. " %- manage ", out)
      assert.matches("\nUSAGE:\n   ctrlua " .. cmd .. " command %[command options%] %[arguments%.%.%.%]\n", out)
      for _, n in ipairs(names) do
        assert.is_truthy(out:find("\n   " .. n .. "  ", 1, true), cmd .. ": " .. n)
      end
      assert.are.equal(out, (run(cmd .. " --help")))
      assert.are.equal(out, (run(cmd .. " help")))
      local _, rc2, err2 = run(cmd .. " nosuch")
      assert.are.equal(3, rc2)
      assert.are.equal("ctrlua: No help topic for 'nosuch'\n", err2)
    end
  end)

  it("prints a subcommand's help as ctr", function()
    local out, rc = run("images ls --help")
    assert.are.equal(0, rc)
    assert.are.equal([[
NAME:
   ctrlua images list - list images known to containerd

USAGE:
   ctrlua images list [command options] [flags] [<filter>, ...]

DESCRIPTION:
   list images registered with containerd

OPTIONS:
   --quiet, -q     print only the image refs
   --format value  output format: table or json
   
]], out)
    assert.are.equal(out, (run("images help list")))
    -- as ctr: -h before the subcommand asks for the group's help
    assert.are.equal((run("images")), (run("images -h ls")))
    out = run("content get -h")
    assert.are.equal("NAME:\n   ctrlua content get - get the data for an object\n\nUSAGE:\n" ..
      "   ctrlua content get [<digest>, ...]\n\nDESCRIPTION:\n   display the image object\n", out)
  end)

  it("prints the same help as Debian's ctr where the commands are the same", function()
    if not F.have("ctr") then
      pending("ctr (containerd) missing: not compared")
      return
    end
    local same = { "images tag", "images delete", "images rm", "content get", "content delete",
      "snapshots commit", "snapshots info", "snapshots list", "snapshots mounts", "snapshots prepare",
      "snapshots delete", "snapshots label", "snapshots tree", "snapshots usage", "snapshots view" }
    for _, c in ipairs(same) do
      local ours = run(c .. " --help"):gsub("ctrlua ", "ctr ")
      local theirs = F.sh("ctr " .. c .. " --help")
      assert.are.equal(theirs, ours, c)
    end
    -- import: the same flags, in the same order, with the same words
    local ours = run("images import --help"):match("\nOPTIONS:\n.*$")
    local theirs = F.sh("ctr images import --help"):match("\nOPTIONS:\n.*$")
    assert.are.equal(theirs, ours)
    -- snapshots: ctr's list but for the subcommands ctrlua lacks (diff, unpack)
    ours = run("snapshots --help"):gsub("ctrlua ", "ctr ")
    theirs = F.sh("ctr snapshots --help"):gsub("\n   diff [^\n]*", ""):gsub("\n   unpack [^\n]*", "")
    assert.are.equal(theirs, ours)
  end)

  it("answers an unknown flag as ctr: Incorrect Usage and the help, ctrlua: on stderr, 1", function()
    for _, c in ipairs({ { "images ls -x", "images list", "-x" }, { "images import --bogus x.tar", "images import", "-bogus" },
      { "content ls --nope", "content list", "-nope" }, { "snapshots usage -q", "snapshots usage", "-q" },
      { "snapshots prepare --mount k", "snapshots prepare", "-mount" } }) do
      local out, rc, err = run(c[1])
      assert.are.equal(1, rc, c[1])
      assert.are.equal("ctrlua: flag provided but not defined: " .. c[3] .. "\n", err)
      local help = run(c[2]:gsub(" ", " help ", 1))
      assert.are.equal("Incorrect Usage: flag provided but not defined: " .. c[3] .. "\n\n" .. help, out)
    end
    -- a flag of the command group itself (snapshots --snapshotter): urfave's "Incorrect Usage."
    local out, rc, err = run("snapshots --snapshotter")
    assert.are.equal(1, rc)
    assert.are.equal("ctrlua: flag needs an argument: -snapshotter\n", err)
    assert.are.equal("Incorrect Usage. flag needs an argument: -snapshotter\n\n" .. run("snapshots"), out)
    -- ... which is not a flag of the subcommands, as in ctr
    _, rc, err = run("snapshots ls --snapshotter native")
    assert.are.equal(1, rc)
    assert.are.equal("ctrlua: flag provided but not defined: -snapshotter\n", err)
    -- unsupported ctr flags say so
    _, rc, err = run("images import --digests x.tar")
    assert.are.equal(1, rc)
    assert.are.equal("ctrlua: --digests is not supported yet\n", err)
  end)

  it("snapshots through the command: prepare, commit, mounts, ls, tree, usage, info, label, rm", function()
    local s = "snapshots --snapshotter native "
    local out, rc, err = run(s .. "prepare a")
    assert.are.equal(0, rc, err)
    assert.are.equal("", out)
    out, rc, err = run(s .. "commit c1 a")
    assert.are.equal(0, rc, err)
    out, rc, err = run(s .. "prepare --mounts -t /mnt b c1")
    assert.are.equal(0, rc, err)
    local mount_line, js = out:match("^(mount [^\n]*)\n(.*)$")
    assert.matches("^mount %-t bind /[^ ]+/fs /mnt %-o rw,rbind$", mount_line)
    assert.matches('^%[\n    {\n        "Type": "bind",\n        "Source": "/[^"]+",\n        "Options": %[\n', js)
    local mounts = assert(json.decode(js))
    assert.are.equal("bind", mounts[1].Type)
    -- the source is the real directory of snapshot b
    F.sh("test -d " .. F.q(mounts[1].Source))
    assert.are.equal(mount_line .. "\n", (run(s .. "mounts /mnt b")))
    assert.are.equal("KEY PARENT KIND\nb   c1     Active\nc1         Committed\n", (run(s .. "ls")))
    assert.are.equal(" c1\n  \\_ b\n", (run(s .. "tree")))
    out = run(s .. "usage -b c1")
    assert.matches("^KEY SIZE INODES\nc1  %d+ +%d+\n$", out)
    local info = assert(json.decode((run(s .. "info c1"))))
    assert.are.equal("Committed", info.Kind)
    assert.are.equal("c1", info.Name)
    assert.is_nil(info.Labels)
    assert.are.equal("x=1,y=true\n", (run(s .. "label c1 x=1 y")))
    assert.are.equal("y=true\n", (run(s .. "label c1 x=")))
    out = run(s .. "info c1")
    assert.matches('^{\n    "Kind": "Committed",\n    "Name": "c1",\n    "Labels": {\n        "y": "true"\n    },\n    "Created": ', out)
    -- the default snapshotter (overlayfs) has none of these
    assert.are.equal("KEY PARENT KIND\n", (run("snapshots ls")))
    _, rc, err = run(s .. "rm b nosuch c1")
    assert.are.equal(1, rc)
    assert.matches('^ctrlua: failed to remove "nosuch": [^\n]+\n$', err)
    assert.are.equal("KEY PARENT KIND\nc1         Committed\n", (run(s .. "ls")))
    _, rc, err = run(s .. "rm c1")
    assert.are.equal(0, rc, err)
  end)

  it("content ingest from standard input, checked against --expected-digest", function()
    local blob = F.tmpdir() .. "/blob"
    F.write(blob, "ingested\n")
    local d = F.sh("sha256sum " .. F.q(blob)):match("^(%x+)")
    local out, rc, err = F.ctrlua("--root " .. F.q(root) .. " content ingest --expected-digest sha256:" .. d ..
      " --expected-size 9 ref1", { stdin = blob })
    assert.are.equal(0, rc, err)
    assert.are.equal("sha256:" .. d .. "\n", out)
    assert.are.equal("ingested\n", (run("content get sha256:" .. d)))
    local bad = ("0"):rep(64)
    _, rc, err = F.ctrlua("--root " .. F.q(root) .. " content ingest --expected-digest sha256:" .. bad .. " ref2",
      { stdin = blob })
    assert.are.equal(1, rc)
    assert.matches("^ctrlua: digest mismatch", err)
    assert.are.equal("sha256:" .. d .. "\n", (run("content ls -q")))
  end)

  it("no script nor example uses ctr.core: commands go through the library", function()
    local out = F.sh("grep -rlE 'ctr[.]core' scripts examples 2>/dev/null || true")
    assert.are.equal("", out)
  end)
end)
