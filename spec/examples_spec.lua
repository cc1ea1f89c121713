-- Every file of examples/ runs here against the test image: the three policies (through the
-- library on specs built with ctr.oci, and in real containers), run-minimal.lua, and the two
-- pipelines.
local S = require("support.ctrlua")
local core = require("ctr.core")
local policy = require("ctr.policy")
local oci = require("ctr.oci")

local EX = "examples/"

local function spec_with(...)
  local spec = oci.default_spec("default", "ex")
  assert(oci.apply_opts(nil, nil, { id = "ex" }, spec, ...))
  return spec
end

local function check(example, spec, labels)
  return policy.apply(nil, spec, { id = "ex", labels = labels or {} }, {},
    { dir = "/nonexistent", files = { EX .. example } })
end

describe("examples/policy-no-privileged.lua", function()
  local file = EX .. "policy-no-privileged.lua"
  local rows = {
    { "the default spec", {}, nil },
    { "--privileged", { oci.with_privileged }, "privileged containers are not allowed (no masked paths)" },
    { "every known capability", { oci.with_all_known_capabilities }, "privileged containers are not allowed (every capability requested)" },
    { "no masked paths", { oci.with_masked_paths(nil) }, "privileged containers are not allowed (no masked paths)" },
    { "--cap-add CAP_SYS_ADMIN", { oci.with_added_capabilities({ "CAP_SYS_ADMIN" }) }, "CAP_SYS_ADMIN is not allowed" },
    { "--net-host", { oci.with_host_namespace("network") }, "the host network namespace is not allowed" },
    { "the host pid namespace", { oci.with_host_namespace("pid") }, "the host pid namespace is not allowed" },
    { "--with-ns network:/proc/1/ns/net", { oci.with_linux_namespace({ type = "network", path = "/proc/1/ns/net" }) },
      "joining the network namespace /proc/1/ns/net is not allowed" },
  }
  for _, row in ipairs(rows) do
    it((row[3] and "refuses " or "allows ") .. row[1], function()
      local out, err = check("policy-no-privileged.lua", spec_with(unpack(row[2])))
      if row[3] then
        assert.is_nil(out)
        assert.are.equal("policy " .. file .. " refused: " .. row[3], err.msg)
      else
        assert.is_table(out, err and err.msg)
      end
    end)
  end
end)

describe("examples/policy-mount-allowlist.lua", function()
  local file = EX .. "policy-mount-allowlist.lua"
  local function bind(src, typ, opts)
    return oci.with_mounts({ { destination = "/data", type = typ or "bind", source = src, options = opts or { "rbind", "rw" } } })
  end
  local rows = {
    { "a bind from /tmp/x", bind("/tmp/x"), nil },
    { "a bind from /srv/ctrlua exactly", bind("/srv/ctrlua"), nil },
    { "a tmpfs (not a bind)", oci.with_mounts({ { destination = "/t", type = "tmpfs", source = "tmpfs" } }), nil },
    { "a bind from /etc", bind("/etc"), "bind mount from /etc is not allowed (allowed: /srv/ctrlua, /tmp, /run/ctrlua/pipelines)" },
    { "a bind from /srv/ctrlua-evil (a prefix, not a parent)", bind("/srv/ctrlua-evil"),
      "bind mount from /srv/ctrlua-evil is not allowed (allowed: /srv/ctrlua, /tmp, /run/ctrlua/pipelines)" },
    { "a climb out with ..", bind("/tmp/../etc"), 'bind mount source "/tmp/../etc" has a ".." component' },
    { "a bind by option on a none-typed mount", bind("/root", "none", { "bind" }),
      "bind mount from /root is not allowed (allowed: /srv/ctrlua, /tmp, /run/ctrlua/pipelines)" },
    { "a relative source", bind("data"), 'bind mount source "data" is not an absolute path' },
  }
  for _, row in ipairs(rows) do
    it((row[3] and "refuses " or "allows ") .. row[1], function()
      local out, err = check("policy-mount-allowlist.lua", spec_with(row[2]))
      if row[3] then
        assert.is_nil(out)
        assert.are.equal("policy " .. file .. " refused: " .. row[3], err.msg)
      else
        assert.is_table(out, err and err.msg)
      end
    end)
  end
end)

describe("examples/policy-defaults.lua", function()
  it("adds memory and pids limits, a read-only rootfs and a tmpfs /tmp", function()
    local spec = assert(check("policy-defaults.lua", spec_with()))
    assert.are.equal(512 * 1024 * 1024, spec.linux.resources.memory.limit)
    assert.are.equal(1024, spec.linux.resources.pids.limit)
    assert.is_true(spec.root.readonly)
    local tmp
    for _, m in ipairs(spec.mounts) do if m.destination == "/tmp" then tmp = m end end
    assert.are.equal("tmpfs", tmp and tmp.type)
  end)

  it("keeps limits that are set, and a writable rootfs for the label", function()
    local spec = assert(check("policy-defaults.lua", spec_with(oci.with_memory_limit(1048576)),
      { ["ctrlua.policy/writable"] = "true" }))
    assert.are.equal(1048576, spec.linux.resources.memory.limit)
    assert.is_nil(spec.root.readonly)
    for _, m in ipairs(spec.mounts) do assert.are_not.equal("/tmp", m.destination) end
  end)
end)

describe("examples in containers #root", function()
  local env
  local ctr = require("ctr")
  local containers = require("ctr.containers")
  local images = require("ctr.images")
  local cio = require("ctr.cio")

  before_each(function() env = S.new_env() end)
  after_each(function() env:destroy() end)
  teardown(function() S.cleanup() end)

  local function run_with(id, args, files, labels, mounts)
    local client = assert(ctr.client({ root = env.root, state = env.state, namespace = env.ns }))
    local image = assert(client:get_image(S.IMAGE))
    local _, config = images.manifest(client, image)
    image.config = config
    local container, err = client:new_container(id,
      containers.with_new_snapshot(id, image),
      containers.with_new_spec(oci.with_default_unix_devices, oci.with_image_config(image),
        oci.with_process_args(unpack(args)), oci.with_mounts(mounts or {})),
      containers.with_container_labels(labels or {}),
      policy.with_policies({}, { dir = env.dir .. "/none", files = files }))
    if not container then return nil, err end
    local log = env.dir .. "/" .. id .. ".log"
    local task = assert(container:new_task(assert(cio.log_file(log))))
    assert(task:start())
    local code = assert(task:wait())
    task:delete()
    assert(container:delete({ snapshot_cleanup = true }))
    return code, S.slurp(log)
  end

  local PROBE = "touch /etc/probe 2>/dev/null && echo rootfs=rw || echo rootfs=ro; " ..
    "touch /tmp/probe && echo tmp=rw; grep ' /tmp ' /proc/mounts | cut -d' ' -f3"

  it("policy-defaults.lua: a read-only rootfs with a writable tmpfs /tmp, unless labelled", function()
    local code, out = run_with("def1", { "sh", "-c", PROBE }, { EX .. "policy-defaults.lua" })
    assert.are.equal(0, code)
    assert.are.equal("rootfs=ro\ntmp=rw\ntmpfs\n", out)
    code, out = run_with("def2", { "sh", "-c", PROBE }, { EX .. "policy-defaults.lua" },
      { ["ctrlua.policy/writable"] = "true" })
    assert.are.equal(0, code)
    assert.are.equal("rootfs=rw\ntmp=rw\n", out)
    assert.are.same({}, env:leftovers())
  end)

  it("policy-mount-allowlist.lua: an allowed bind works, another is refused before anything exists", function()
    local data = env.dir .. "/data"
    assert(core.mkdir_p(data, 493))
    assert(core.write_file(data .. "/hello", "from the host\n", { mode = 420 }))
    local m = { { destination = "/data", type = "bind", source = data, options = { "rbind", "ro" } } }
    local code, out = run_with("mnt1", { "cat", "/data/hello" }, { EX .. "policy-mount-allowlist.lua" }, nil, m)
    assert.are.equal(0, code)
    assert.are.equal("from the host\n", out)
    m[1].source = "/etc"
    local c2, err = run_with("mnt2", { "true" }, { EX .. "policy-mount-allowlist.lua" }, nil, m)
    assert.is_nil(c2)
    assert.matches("refused: bind mount from /etc is not allowed", err.msg, 1, true)
    assert.are.same({}, env:leftovers("mnt2"))
  end)

  it("policy-no-privileged.lua passes `policy.lua check` for a default run", function()
    local r = env:run("policy.lua", "check", "--dir", env.dir .. "/none", "--policy",
      EX .. "policy-no-privileged.lua", "--", S.IMAGE, "np1")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("policies: no change\n", r.stdout)
  end)

  it("run-minimal.lua runs a container and exits with its code", function()
    local r = env:run(EX .. "run-minimal.lua", S.IMAGE, "mini1", "sh", "-c", "echo hi from minimal; exit 7")
    assert.are.equal(7, r.code, r.stderr)
    assert.are.equal("hi from minimal\n", r.stdout)
    assert.are.same({}, env:leftovers("mini1"))
    -- under 40 lines of code (comments and blank lines aside)
    local n = 0
    for line in assert(S.slurp(EX .. "run-minimal.lua")):gmatch("[^\n]*") do
      if line:match("%S") and not line:match("^%s*%-%-") then n = n + 1 end
    end
    assert.is_true(n < 40, n .. " lines")
  end)

  it("pipeline-build-test.lua: three steps, two in parallel, one workspace", function()
    local junit = env.dir .. "/junit.xml"
    local r = env:run("pipeline.lua", "--jobs", "2", "--junit", junit, EX .. "pipeline-build-test.lua")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("[build] built 21 bytes\n", r.stdout, 1, true)
    assert.matches("[test] test passed (CI=true)\n", r.stdout, 1, true)
    assert.matches("[lint] lint clean\n", r.stdout, 1, true)
    assert.matches('tests="3" failures="0"', S.slurp(junit), 1, true)
    assert.are.same({}, env:leftovers())
  end)

  it("pipeline-matrix.lua: one step per value", function()
    local r = env:run("pipeline.lua", "--jobs", "3", EX .. "pipeline-matrix.lua")
    assert.are.equal(0, r.code, r.stderr)
    for _, g in ipairs({ "hello", "bonjour", "hallo" }) do
      assert.matches(("[test[GREETING=%s]] ok: %s world\n"):format(g, g), r.stdout, 1, true)
    end
    assert.matches("[report] all greetings passed\n", r.stdout, 1, true)
    assert.are.same({}, env:leftovers())
  end)
end)
