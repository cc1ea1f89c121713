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

  it("nested-indexes-cubic: nested indexes are read once each, not as the product of their lengths", function()
    -- three levels of 30 entries without a platform over a manifest of another platform:
    -- resolved child by child, that was 30^3 reads for each resolution
    local stats = {}
    driver(read("manifest", "nested-indexes-cubic"), stats)
    assert.is_true(stats.reads < 1000, "reads: " .. stats.reads)
  end)
end)

describe("fuzz regressions: /etc/passwd and /etc/group (fuzz/passwd.lua)", function()
  local driver = dofile("fuzz/passwd.lua")
  local oci = require("ctr.oci")

  for _, input in ipairs(inputs("passwd")) do
    it("keeps its contracts on " .. input.name, function()
      driver(input.data)
    end)
  end

  it("blank-run-quadratic-trim: a run of blanks inside a line is trimmed in linear time", function()
    -- a megabyte of blanks between two words: the gsub trim took minutes over it
    local blanks = string.rep(" ", 1024 * 1024)
    local t = os.clock()
    local users = oci.parse_passwd("r:x:0:0:a" .. blanks .. "b:/:/bin/sh\n")
    local groups = oci.parse_group("g:x:1:a" .. blanks .. "b, c\n")
    assert.is_true(os.clock() - t < 2, "took " .. (os.clock() - t) .. " s")
    assert.are.equal(1, #users)
    assert.are.equal("/", users[1].home)
    assert.are.same({ "a" .. blanks .. "b", "c" }, groups[1].members)
  end)
end)

describe("fuzz regressions: hosts.toml (fuzz/hosts.lua)", function()
  local driver = dofile("fuzz/hosts.lua")
  local hosts = require("ctr.remotes.hosts")
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(core.mkdir_p(dir .. "/_default", 448))
  end)
  after_each(function() core.remove_tree(dir) end)

  for _, input in ipairs(inputs("hosts")) do
    it("keeps its contracts on " .. input.name, function()
      driver(input.data, dir)
    end)
  end

  it("value-copies-the-rest-quadratic: a long array is read in linear time", function()
    -- 400 KiB of integers: a copy of the rest of the text for each took minutes
    local t = os.clock()
    local doc = assert(hosts.parse_toml("a = [" .. ("1,"):rep(200000) .. "1]\nb = true\nc = false"))
    assert.is_true(os.clock() - t < 2, "took " .. (os.clock() - t) .. " s")
    assert.are.same({ 200001, true, false }, { #doc.a, doc.b, doc.c })
    assert.is_true(assert(hosts.parse_toml("a = true")).a)
  end)

  it("nested-arrays-stack-overflow: nesting is refused with the line, past 100 levels", function()
    assert.truthy(hosts.parse_toml("a = " .. ("["):rep(100) .. ("]"):rep(100)))
    local doc, err = hosts.parse_toml("a = 1\nb = " .. ("[{c = "):rep(60), "t.toml")
    assert.is_nil(doc)
    assert.are.equal("INVALID", err.sym)
    assert.matches("t.toml line 2: arrays and inline tables nested more than 100 deep", err.msg, 1, true)
  end)

  it("unicode-escape-*: escapes are Unicode scalar values", function()
    local doc = assert(hosts.parse_toml([[a = "\U0010FFFF\uD7FF\uE000\u00e9"]]))
    assert.are.equal("\244\143\191\191\237\159\191\238\128\128\195\169", doc.a)
    for _, esc in ipairs({ [[\uD800]], [[\uDFFF]], [[\U00110000]], [[\UFFFFFFFF]] }) do
      local _, err = hosts.parse_toml('a = "' .. esc .. '"')
      assert.are.equal("INVALID", err.sym, esc)
    end
  end)

  it("header-* and host-url-without-host: for_host refuses what makes no request", function()
    for _, text in ipairs({ '[host."http://m"]\nheader = ["x-a: 1"]\n', '[host."http://m".header]\n"" = "x"\n',
        '[host."http://m".header]\n"x a" = "x"\n', '[host."http://m".header]\nx = "a\\u0000b"\n',
        'server = "https:///v2"\n', 'server = ""\n' }) do
      assert(core.write_file(dir .. "/_default/hosts.toml", text))
      local list, err = hosts.for_host("registry.example", { hosts_dir = dir })
      assert.is_nil(list, text)
      assert.are.equal("INVALID", err.sym, text)
    end
  end)
end)

describe("fuzz regressions: registry challenges and tokens (fuzz/auth.lua)", function()
  local driver = dofile("fuzz/auth.lua")
  local auth = require("ctr.remotes.auth")

  for _, input in ipairs(inputs("auth")) do
    it("keeps its contracts on " .. input.name, function()
      driver(input.data)
    end)
  end

  -- an authorizer after a Bearer challenge, its token server answering body
  local function authorizer(body, log)
    local a = auth.new_authorizer({ session = { request = function(_, req)
      log[#log + 1] = req
      return { status = 200, body = body, header_table = {} }
    end } })
    assert.is_true(a:challenge("r.test", { status = 401, header_table = {
      ["www-authenticate"] = { 'Bearer realm="https://auth.test/token",service="r.test"' } } }, { "repository:a:pull" }))
    return a
  end

  it("token-with-a-control-character: a token that is no header value is refused", function()
    for _, tok in ipairs({ "a\\tb", "a\\r\\nX-Injected: 1", "\\u0001" }) do
      local _, err = authorizer('{"token":"' .. tok .. '"}', {}):header("r.test", { "repository:a:pull" })
      assert.are.equal("UNAUTHORIZED", err and err.sym, tok)
    end
  end)

  it("header-blank-run-quadratic-trim: a header line with a run of blanks is read in linear time", function()
    -- the registry's response headers (at most 64 KiB): the old trim took about 10 s over
    -- 64 Ki blanks inside a value (quadratic), this is well under a second
    local blanks = string.rep(" ", 64 * 1024)
    local t = os.clock()
    local h = require("ctr.remotes.http").parse_headers("HTTP/1.1 401 Unauthorized\r\n" ..
      "Www-Authenticate:  Bearer" .. blanks .. "realm=x  \r\nX-Empty:" .. blanks .. "\r\n")
    assert.is_true(os.clock() - t < 2, "took " .. (os.clock() - t) .. " s")
    assert.are.same({ "Bearer" .. blanks .. "realm=x" }, h["www-authenticate"])
    assert.are.same({ "" }, h["x-empty"])
  end)

  it("expires-in-nan: a token whose expiry is no number is kept as one without an expiry", function()
    for _, e in ipairs({ '"nan"', '"-nan"', '0', '"x"' }) do
      local log = {}
      local a = authorizer('{"token":"t","expires_in":' .. e .. '}', log)
      assert.are.equal("Authorization: Bearer t", a:header("r.test", { "repository:a:pull" }))
      assert.are.equal("Authorization: Bearer t", a:header("r.test", { "repository:a:pull" }))
      assert.are.equal(1, #log, e)
    end
  end)
end)

describe("fuzz regressions: the monitor's replies (fuzz/monitor.c)", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(core.mkdir(dir, 448))
  end)
  after_each(function() core.remove_tree(dir) end)

  -- A fake monitor on dir/monitor.sock that answers `n` connections with the reply of a
  -- regression input, its fds attached as fuzz/monitor.c's first byte says.
  local function serve(input, n)
    local py = [[
import array, os, socket, sys
path, data, n = sys.argv[1], open(sys.argv[2], 'rb').read(), int(sys.argv[3])
flags, reply = data[0], data[1:4097]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path); s.listen(4)
print('ready', flush=True)
for _ in range(n):
    c, _ = s.accept()
    c.recv(64)
    fds = [os.open('/dev/null', os.O_RDONLY)] * (flags & 3)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
    c.sendmsg([reply], anc * (2 if flags & 4 else 1))
    c.close()
]]
    local script = dir .. "/monitor.py"
    assert(core.write_file(script, py))
    local p = assert(io.popen(("python3 '%s' '%s/monitor.sock' '%s' %d"):format(script, dir,
      DIR .. "/monitor/" .. input, n)))
    assert.are.equal("ready", p:read("*l"))
    return p
  end

  local function open_fds() return #assert(core.listdir("/proc/self/fd")) end

  for _, input in ipairs(inputs("monitor")) do
    it("leaves no fd open after the reply of " .. input.name, function()
      local before = open_fds()
      local p = serve(input.name, 2)
      core.monitor_request(dir, "wait")
      local fd = core.monitor_console(dir)
      if fd then core.close(fd) end
      p:close()
      assert.are.equal(before, open_fds())
    end)
  end
end)
