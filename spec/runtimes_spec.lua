-- External runtimes: `run.lua --runc-binary PATH` (and `--runtime NAME`) runs the bundle the
-- built-in runtime would get through Debian's runc and crun, with the same exit code and
-- output; the runtime flags that cannot apply fail clearly.
local core = require("ctr.core")
local runtime = require("ctr.runtime")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE

describe("runtime options", function()
  local function opts(t)
    local f = { runtime = "io.containerd.runc.v2", ["runc-binary"] = "", ["runc-root"] = "",
      ["runc-systemd-cgroup"] = false, ["runtime-config-path"] = "" }
    for k, v in pairs(t) do f[k] = v end
    return runtime.options(f)
  end

  it("the built-in runtime by default", function()
    local o, err = opts({})
    assert.is_nil(o)
    assert.is_nil(err)
  end)

  it("--runc-binary NAME or PATH, --runc-root", function()
    local o = assert(opts({ ["runc-binary"] = "/bin/sh", ["runc-root"] = "/run/x" }))
    assert.are.same({ binary = "/bin/sh", root = "/run/x" }, o)
  end)

  it("clear errors", function()
    for _, case in ipairs({
      { { ["runc-binary"] = "no-such-runtime-binary" }, '--runc-binary: exec: "no-such-runtime-binary": executable file not found in $PATH' },
      { { runtime = "io.containerd.nosuch.v9" }, 'runtime "io.containerd.nosuch.v9": not found' },
      { { ["runtime-config-path"] = "/etc/x.toml" }, "--runtime-config-path: runtime io.containerd.runc.v2 takes no config file" },
      { { runtime = "/bin/sh", ["runtime-config-path"] = "/etc/x.toml" }, "reads no runtime config file" },
      { { ["runc-root"] = "/x" }, "--runc-root needs --runc-binary" },
      { { ["runc-systemd-cgroup"] = true }, "--runc-systemd-cgroup needs --runc-binary" },
    }) do
      local o, err = opts(case[1])
      assert.is_nil(o)
      assert.matches(case[2], err.msg, 1, true)
    end
  end)
end)

describe("runtimes #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    if env then env:destroy() end
    env = nil
  end)
  teardown(function() S.cleanup() end)

  -- the cgroup the runtime made (the same path); the unified line is left out: crun runs where
  -- the cgroup2 mount is hidden (see ctr.runtime)
  local SCRIPT = "echo out $(hostname); echo err >&2; grep -e :memory: -e :pids: /proc/self/cgroup; exit 7"

  local function run_with(id, ...)
    local args = { "run.lua", "--rm", ... }
    args[#args + 1] = IMAGE
    args[#args + 1] = id
    for _, a in ipairs({ "sh", "-c", SCRIPT }) do args[#args + 1] = a end
    local r = env:run(unpack(args))
    r.left = env:leftovers(id)
    return r
  end

  for _, rt in ipairs({ "runc", "crun" }) do
    it(rt .. " via --runc-binary gives the built-in runtime's exit code and output", function()
      local path = runtime.look_path(rt)
      if not path then pending(rt .. " is not installed") return end
      local ref = run_with("same")
      assert.are.equal(7, ref.code, ref.stderr)
      local r = run_with("same", "--runc-binary", path)
      assert.are.equal(ref.code, r.code, r.stderr)
      assert.are.equal(ref.stdout, r.stdout)
      assert.are.equal(ref.stderr, r.stderr)
      assert.are.same({}, r.left)
    end)
  end

  it("--runtime crun (a name found in PATH) and --runc-root", function()
    if not runtime.look_path("crun") then pending("crun is not installed") return end
    local root = env.dir .. "/crun-root"
    local r = env:run("run.lua", "--rm", "--runtime", "crun", "--runc-root", root, IMAGE, "byname",
      "sh", "-c", "exit 5")
    assert.are.equal(5, r.code, r.stderr)
    assert.is_truthy(core.stat(root), "crun used its root")
    assert.are.same({}, env:leftovers("byname"))
  end)

  it("a failing flag fails the run before anything is made", function()
    local r = env:run("run.lua", "--rm", "--runtime-config-path", "/nonexistent.toml", IMAGE, "rc", "true")
    assert.are.equal(125, r.code)
    assert.matches("^ctrlua: %-%-runtime%-config%-path: ", r.stderr)
    assert.are.same({}, env:leftovers("rc"))
    r = env:run("run.lua", "--rm", "--runc-binary", "/nonexistent/runc", IMAGE, "rc", "true")
    assert.are.equal(125, r.code)
    assert.matches("--runc-binary", r.stderr, 1, true)
  end)
end)
