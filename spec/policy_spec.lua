-- Site spec policies (ctr.policy, scripts/policy.lua): loading in name order, rules, refusals
-- with the exact message, the sandbox (os.execute, io.popen, require, ctr.core), failing
-- closed, and a policy's change seen inside a real container.
local S = require("support.ctrlua")
local core = require("ctr.core")
local policy = require("ctr.policy")
local oci = require("ctr.oci")

local function write(path, text)
  assert(core.write_file(path, text, { mode = 420 }))
  return path
end

local function spec_of()
  return oci.default_spec("default", "c1")
end

local function env_of(spec)
  local out = {}
  for _, e in ipairs(spec.process.env or {}) do out[#out + 1] = e end
  return table.concat(out, " ")
end

describe("ctr.policy (library)", function()
  local dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function() core.remove_tree(dir) end)

  local function apply(files, spec, container, opts)
    opts = opts or {}
    opts.files = files
    opts.dir = opts.dir or (dir .. "/none")
    return policy.apply(nil, spec or spec_of(), container or { id = "c1", labels = {} }, {}, opts)
  end

  it("refuses with `policy FILE refused: REASON` and the refusal's fields", function()
    local p = write(dir .. "/deny.lua", 'return function() return false, "no containers today" end')
    local spec, err = apply({ p })
    assert.is_nil(spec)
    assert.are.equal("policy " .. p .. " refused: no containers today", err.msg)
    assert.are.equal("POLICY_REFUSED", err.sym)
    assert.are.equal(p, err.policy)
    assert.are.equal("no containers today", err.reason)
  end)

  it("refuses through refuse(), even when the policy catches it", function()
    local p = write(dir .. "/r.lua", [[
      return function(spec)
        pcall(refuse, "caught but still refused")
      end]])
    local _, err = apply({ p })
    assert.are.equal("policy " .. p .. " refused: caught but still refused", err.msg)
  end)

  it("changes the spec and the container labels in place", function()
    local p = write(dir .. "/env.lua", [[
      return function(spec, container, flags)
        spec.process.env = ctr.array({ "POLICY=1" })
        container.labels.checked = "yes"
        assert(ctr.apply(spec, container, ctr.oci.with_memory_limit(1048576)))
      end]])
    local spec, c = spec_of(), { id = "c1", labels = {} }
    local out = assert(apply({ p }, spec, c))
    assert.are.equal(spec, out)
    assert.are.equal("POLICY=1", env_of(spec))
    assert.are.equal(1048576, spec.linux.resources.memory.limit)
    assert.are.equal("yes", c.labels.checked)
  end)

  it("loads the directory, files and client policies in name order", function()
    local pdir = dir .. "/policy.d"
    assert(core.mkdir_p(pdir, 493))
    local body = 'return function(spec) spec.process.env[#spec.process.env + 1] = "%s" end'
    write(pdir .. "/20-b.lua", body:format("B"))
    write(pdir .. "/README", "not a policy")
    local a = write(dir .. "/10-a.lua", body:format("A"))
    local c = write(dir .. "/30-c.lua", body:format("C"))
    local spec = spec_of()
    spec.process.env = { "X=0" }
    local files = assert(policy.files({ policies = { a } }, { dir = pdir, files = { c } }))
    assert.are.same({ a, pdir .. "/20-b.lua", c }, files)
    assert(policy.apply({ policies = { a } }, spec, { labels = {} }, {}, { dir = pdir, files = { c } }))
    assert.are.equal("X=0 A B C", env_of(spec))
  end)

  it("run's container opts leave the policies out when none can apply, and only then", function()
    local run, cli = require("ctr.cmd.run"), require("ctr.cmd.cli")
    local def = run.def()
    local function count(args, popts, client)
      local r = assert(cli.parse(def, args))
      local v = assert(run.validate(def, r))
      return #assert(run.container_opts(client or { namespace = "default" }, r.flags, v, nil, popts))
    end
    local rootfs = { "--rootfs", dir, "c1", "true" }
    local none = count(rootfs, { dir = dir .. "/none" })
    assert.are.equal(none + 1, count(rootfs, { dir = dir }))
    assert.are.equal(none + 1, count(rootfs, { dir = dir .. "/none", files = { dir .. "/p.lua" } }))
    assert.are.equal(none + 1, count(rootfs, { dir = dir .. "/none" },
      { namespace = "default", policies = { dir .. "/p.lua" } }))
  end)

  it("runs a table of named rules in name order and stops at the first refusal", function()
    local p = write(dir .. "/rules.lua", [[
      return {
        z_last = function(spec) spec.process.env[#spec.process.env + 1] = "Z" end,
        a_first = function(spec) spec.process.env[#spec.process.env + 1] = "A" end,
        m_middle = function(spec) if spec.hostname == "bad" then return false, "bad host" end end,
      }]])
    local spec = spec_of()
    spec.process.env = {}
    assert(apply({ p }, spec))
    assert.are.equal("A Z", env_of(spec))
    spec = spec_of()
    spec.process.env = {}
    spec.hostname = "bad"
    local _, err = apply({ p }, spec)
    assert.are.equal("policy " .. p .. " refused: bad host", err.msg)
    assert.are.equal("A", env_of(spec))
  end)

  it("fails closed when a policy raises, naming the file and the error", function()
    local p = write(dir .. "/boom.lua", 'return function(spec) local x = nil; return x.field end')
    local _, err = apply({ p })
    assert.are.equal("POLICY_REFUSED", err.sym)
    assert.matches("^policy " .. p:gsub("%p", "%%%0") .. " refused: error in rule boom: ", err.msg)
    assert.matches("attempt to index", err.msg)
    -- a file that does not compile, or returns no rule
    local q = write(dir .. "/syntax.lua", "return function(")
    _, err = apply({ q })
    assert.matches("refused: error: ", err.msg)
    local r = write(dir .. "/nothing.lua", "return 42")
    _, err = apply({ r })
    assert.matches("must return a function or a table of rules, returned number", err.msg, 1, true)
    -- a named file that does not exist is a refusal too, not a silent pass
    _, err = apply({ dir .. "/missing.lua" })
    assert.matches("refused: cannot read it", err.msg, 1, true)
  end)

  -- one row per forbidden thing: the policy catches the error with pcall and still fails
  local forbidden = {
    { "os.execute", 'pcall(os.execute, "touch %s/pwned")' },
    { "io.popen", 'pcall(function() return io.popen("touch %s/pwned") end)' },
    { "io.open", 'pcall(function() return io.open("%s/pwned", "w") end)' },
    { "os.getenv", 'pcall(os.getenv, "HOME")' },
    { "require", 'pcall(require, "ctr.core")' },
    { "loadstring", 'pcall(loadstring, "return 1")' },
    { "debug.sethook", 'pcall(function() debug.sethook() end)' },
    { "setmetatable", 'pcall(setmetatable, {}, {})' },
  }
  for _, row in ipairs(forbidden) do
    it("refuses a policy that uses " .. row[1] .. " (fail closed)", function()
      local p = write(dir .. "/bad.lua", ("return function(spec) %s end"):format(row[2]:format(dir)))
      local _, err = apply({ p })
      assert.are.equal("policy " .. p .. " refused: " .. row[1] .. " is not allowed in a policy", err.msg)
      assert.is_false(S.exists(dir .. "/pwned"))
    end)
  end

  it("gives no ctr.core and a read-only ctr facade", function()
    local p = write(dir .. "/facade.lua", [[
      return function(spec)
        if ctr.core ~= nil then return false, "ctr.core is visible" end
        if rawget ~= nil and rawget(ctr, "core") then return false, "rawget" end
        local ok = pcall(function() ctr.core = 1 end)
        if ok then return false, "ctr is writable" end
        ok = pcall(function() ctr.oci.with_env = nil end)
        if ok then return false, "ctr.oci is writable" end
        if ctr.oci.with_spec_from_file ~= nil then return false, "host file reader visible" end
      end]])
    -- rawget is itself forbidden: touching it fails closed, so the policy must not touch it
    local spec, err = apply({ p })
    assert.is_nil(spec)
    assert.are.equal("policy " .. p .. " refused: rawget is not allowed in a policy", err.msg)
    write(p, (core.read_file(p):gsub("if rawget[^\n]*\n", "")))
    assert(apply({ p }))
  end)

  it("keeps the host's libraries intact", function()
    local p = write(dir .. "/clobber.lua", [[
      string.rep = nil; table.concat = nil; math.floor = nil
      return function() end]])
    assert(apply({ p }))
    assert.are.equal("aa", string.rep("a", 2))
    assert.are.equal("a,b", table.concat({ "a", "b" }, ","))
  end)

  it("stops a policy that loops forever", function()
    local p = write(dir .. "/loop.lua", "return function() while true do end end")
    local t = core.monotime()
    local _, err = apply({ p }, nil, nil, { instruction_limit = 2000000 })
    assert.matches("refused: error in rule loop: .*ran past its instruction budget", err.msg)
    assert.is_true(core.monotime() - t < 5)
  end)

  it("refuses precompiled policies", function()
    local p = write(dir .. "/bc.lua", string.dump(function() return function() end end))
    local _, err = apply({ p })
    assert.are.equal("policy " .. p .. " refused: precompiled policies are not allowed", err.msg)
  end)

  it("refuses a policy that leaves a spec that is not JSON", function()
    local p = write(dir .. "/fn.lua", "return function(spec) spec.process.env = { print } end")
    local _, err = apply({ p })
    assert.matches("refused: error in rule fn: the spec is not JSON", err.msg, 1, true)
  end)

  it("diffs pretty JSON as diff -u does", function()
    local a = policy.pretty_json({ b = { 1, 2 }, a = "x", e = core.json_array({}) })
    assert.are.equal('{\n  "a": "x",\n  "b": [\n    1,\n    2\n  ],\n  "e": []\n}\n', a)
    local b = policy.pretty_json({ b = { 1, 3 }, a = "x", e = core.json_array({}) })
    local d = policy.diff(a, b, "old", "new")
    assert.are.equal("--- old\n+++ new\n@@ -2,7 +2,7 @@\n   \"a\": \"x\",\n   \"b\": [\n     1,\n-    2\n+    3\n   ],\n   \"e\": []\n }\n", d)
    assert.are.equal("", policy.diff(a, a))
  end)

  -- what patch(1) makes of a with diff d: the diff must say how to get b, whichever way it
  -- was found (a common subsequence, unique lines as anchors, or line by line)
  local function patched(a, d)
    local tmp = S.tmpdir()
    finally(function() core.remove_tree(tmp) end)
    assert(core.write_file(tmp .. "/a", a, { mode = 420 }))
    assert(core.write_file(tmp .. "/d", d, { mode = 420 }))
    S.must(("patch -s %s %s"):format(S.q(tmp .. "/a"), S.q(tmp .. "/d")))
    return S.slurp(tmp .. "/a")
  end

  it("diffs 100,000 lines in linear time and memory: unique lines, repeated lines, small pieces", function()
    local N = 100000
    local function text(f)
      local t = {}
      for i = 1, N do t[i] = f(i) end
      return table.concat(t, "\n") .. "\n"
    end
    local cases = {
      -- env-like: every line unique; changes at both ends and in the middle
      { text(function(i) return ("E%d=v%d"):format(i, i) end),
        text(function(i)
          if i == 1 then return "first" elseif i == N / 2 then return "middle" elseif i == N then return "last" end
          return ("E%d=v%d"):format(i, i)
        end) },
      -- no line is unique: two lines repeated, every 1000th changed
      { text(function(i) return i % 2 == 0 and "a" or "b" end),
        text(function(i) return i % 1000 == 0 and "c" or (i % 2 == 0 and "a" or "b") end) },
      -- a line inserted and one removed far apart
      { text(function(i) return "L" .. i end),
        text(function(i) return i == 10 and "L10\nNEW" or (i == N - 10 and "" or "L" .. i) end):gsub("\n\n", "\n") },
    }
    local t0 = os.clock()
    for k, c in ipairs(cases) do
      local d = policy.diff(c[1], c[2])
      assert.are_not.equal("", d, "case " .. k)
      assert.is_true(#d < 200000, "case " .. k .. ": a diff of " .. #d .. " bytes")
      assert.are.equal(c[2], patched(c[1], d), "case " .. k)
    end
    assert.is_true(os.clock() - t0 < 30, "took " .. (os.clock() - t0) .. " s")
    -- and a small one keeps the shortest edit script
    assert.are.equal("--- before\n+++ after\n@@ -1,3 +1,3 @@\n x\n-y\n+z\n x\n",
      policy.diff("x\ny\nx\n", "x\nz\nx\n"))
  end)
end)

describe("policies on real containers #root", function()
  local env, dir
  local ctr = require("ctr")
  local containers = require("ctr.containers")
  local images = require("ctr.images")
  local cio = require("ctr.cio")

  before_each(function()
    env = S.new_env()
    dir = env.dir .. "/p"
    assert(core.mkdir_p(dir, 493))
  end)
  after_each(function() env:destroy() end)
  teardown(function() S.cleanup() end)

  -- run args in a container made through the library with the policies applied; its output
  local function run_with(id, args, popts, labels)
    local client = assert(ctr.client({ root = env.root, state = env.state, namespace = env.ns }))
    local image = assert(client:get_image(S.IMAGE))
    local _, config = images.manifest(client, image)
    image.config = config
    local container, err = client:new_container(id,
      containers.with_new_snapshot(id, image),
      containers.with_new_spec(oci.with_image_config(image), oci.with_process_args(unpack(args))),
      containers.with_container_labels(labels or {}),
      policy.with_policies({}, popts))
    if not container then return nil, err end
    local log = env.dir .. "/" .. id .. ".log"
    local io_ = assert(cio.log_file(log))
    local task = assert(container:new_task(io_))
    assert(task:start())
    local code = assert(task:wait())
    task:delete()
    assert(container:delete({ snapshot_cleanup = true }))
    return code, S.slurp(log), container
  end

  it("a policy's change is seen inside the container", function()
    write(dir .. "/10-env.lua", [[
      return function(spec)
        spec.process.env[#spec.process.env + 1] = "POLICY=1"
      end]])
    local code, out = run_with("pol1", { "sh", "-c", "echo policy=$POLICY" }, { dir = dir })
    assert.are.equal(0, code)
    assert.are.equal("policy=1\n", out)
    assert.are.same({}, env:leftovers("pol1"))
  end)

  it("a refusal creates nothing", function()
    local p = write(dir .. "/deny.lua", 'return function() return false, "nope" end')
    local code, err = run_with("pol2", { "true" }, { dir = env.dir .. "/none", files = { p } })
    assert.is_nil(code)
    assert.are.equal("policy " .. p .. " refused: nope", err.msg)
    assert.are.same({}, env:leftovers("pol2"))
  end)

  it("policy.lua check prints the spec diff, or the refusal with exit 1", function()
    write(dir .. "/10-env.lua", [[
      return function(spec) spec.process.env[#spec.process.env + 1] = "POLICY=1" end]])
    local r = env:run("policy.lua", "check", "--dir", dir, "--", "--env", "A=B", S.IMAGE, "chk1", "echo", "hi")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("--- spec (before policies)\n+++ spec (after policies)\n", r.stdout, 1, true)
    assert.matches('\n-      "A=B"\n+      "A=B",\n+      "POLICY=1"\n', r.stdout, 1, true)
    assert.are.same({}, env:leftovers("chk1"))

    local deny = write(env.dir .. "/deny.lua", [[
      return function(spec) if spec.process.args[1] == "echo" then return false, "no echo" end end]])
    r = env:run("policy.lua", "check", "--dir", dir, "--policy", deny, "--", S.IMAGE, "chk2", "echo", "hi")
    assert.are.equal(1, r.code)
    assert.are.equal("ctrlua: policy " .. deny .. " refused: no echo\n", r.stderr)
    assert.are.same({}, env:leftovers("chk2"))

    r = env:run("policy.lua", "check", "--dir", env.dir .. "/none", "--", S.IMAGE, "chk3")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("policies: no change\n", r.stdout)

    r = env:run("policy.lua", "list", "--dir", dir, "--policy", deny)
    assert.are.equal(dir .. "/10-env.lua\n" .. deny .. "\n", r.stdout)
  end)

  -- the diff of two specs with 100,000 env entries was n×m: past 8 GB.  It must finish, and
  -- quickly, with a peak RSS under 1 GB (measured, not imposed with ulimit -v: a sanitizer
  -- build reserves terabytes of address space for its shadow memory).
  it("policy.lua check of an image with 100,000 env entries: the right diff, in bounded memory", function()
    local big = S.derive_image(env.dir, "ctrlua.test/bigenv:latest", function(c)
      local envs = {}
      for i = 1, 100000 do envs[i] = ("E%d=value-%d"):format(i, i) end
      c.Env = core.json_array(envs)
    end)
    assert.are.equal(0, env:run("images.lua", "import", big).code)
    -- changes before and after the env array, and at its end
    local p = write(dir .. "/10-big.lua", [[
      return function(spec)
        spec.linux.resources = spec.linux.resources or {}
        spec.linux.resources.pids = { limit = 100 }
        spec.process.env[#spec.process.env + 1] = "POLICY=1"
        spec.root.readonly = true
      end]])
    local t0 = core.monotime()
    local rss_file = env.dir .. "/rss"
    local out, rc = S.sh(("timeout 120 /usr/bin/time -o %s -f %%M %s 2>/dev/null"):format(S.q(rss_file),
      env:cmdline("policy.lua", "check", "--dir", env.dir .. "/none", "--policy", p, "--",
        "ctrlua.test/bigenv:latest", "big1")))
    local secs = core.monotime() - t0
    assert.are.equal(0, rc, out:sub(1, 2000))
    local kib = tonumber((S.slurp(rss_file) or ""):match("(%d+)%s*$"))
    assert.is_true(kib ~= nil and kib < 1024 * 1024, "peak RSS " .. tostring(kib) .. " KiB")
    assert.is_true(secs < 30, ("took %.1f s"):format(secs))
    local changed, hunks = {}, 0
    for line in out:gmatch("[^\n]*") do
      if line:match("^@@ ") then hunks = hunks + 1
      elseif line:match("^[+-]") and not line:match("^%-%-%- ") and not line:match("^%+%+%+ ") then
        changed[#changed + 1] = line
      end
    end
    assert.are.equal(3, hunks, out:sub(1, 2000))
    assert.are.same({
      "-      ]", "+      ],", '+      "pids": {', '+        "limit": 100', "+      }",
      '-      "E100000=value-100000"', '+      "E100000=value-100000",', '+      "POLICY=1"',
      '-    "path": "rootfs"', '+    "path": "rootfs",', '+    "readonly": true',
    }, changed)
    assert.are.same({}, env:leftovers("big1"))
  end)
end)
