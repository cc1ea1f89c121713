-- CNI networking (`run.lua --cni`) with Debian's containernetworking-plugins: a conflist in a
-- temporary directory (a bridge with a unique name and subnet, host-local IPAM with a
-- temporary dataDir); never /etc/cni.
local core = require("ctr.core")
local cni = require("ctr.cni")
local S = require("support.ctrlua")

local IMAGE = S.IMAGE
local BIN_DIR = "/usr/lib/cni"

describe("cni configuration", function()
  local tmp
  before_each(function() tmp = S.tmpdir() end)
  after_each(function() core.remove_tree(tmp) end)

  it("loopback only where no configuration exists", function()
    local nets = assert(cni.load(tmp .. "/none"))
    assert.are.equal(1, #nets)
    assert.are.equal("cni-loopback", nets[1].name)
    assert.are.equal("lo", nets[1].ifname)
  end)

  it("the first file by name; a .conf becomes a one-plugin list", function()
    assert(core.write_file(tmp .. "/20-b.conflist", '{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}'))
    assert(core.write_file(tmp .. "/10-a.conf", '{"cniVersion":"0.4.0","name":"a","type":"ptp"}'))
    assert(core.write_file(tmp .. "/00-x.txt", 'not a config'))
    local nets = assert(cni.load(tmp))
    assert.are.equal(2, #nets)
    assert.are.equal("a", nets[2].name)
    assert.are.equal("ptp", nets[2].plugins[1].type)
    assert.are.equal("eth0", nets[2].ifname)
  end)

  it("refuses a plugin type that is a path, and names a missing plugin", function()
    assert(core.write_file(tmp .. "/10.conflist", '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}'))
    local nets, err = cni.load(tmp)
    assert.is_nil(nets)
    assert.matches("plugins%[1%]: bad or missing type", err.msg)
    local p, ferr = cni.find_plugin("nosuchplugin", tmp .. ":" .. BIN_DIR)
    assert.is_nil(p)
    assert.are.equal(('failed to find plugin "nosuchplugin" in path [%s %s]'):format(tmp, BIN_DIR), ferr.msg)
  end)
end)

describe("cni #root", function()
  local env, bridge, subnet, netdir, ipam
  before_each(function()
    env = S.new_env()
    local n = (core.getpid() * 7 + math.floor(core.monotime() * 1000)) % 200
    bridge = ("ctlt%d"):format(core.getpid() % 100000)
    subnet = ("10.251.%d"):format(n + 20)
    netdir, ipam = env.dir .. "/net.d", env.dir .. "/ipam"
    assert(core.mkdir(netdir))
    assert(core.write_file(netdir .. "/10-test.conflist", core.json_encode({
      cniVersion = "1.0.0", name = "ctrlua-test",
      plugins = core.json_array({ { type = "bridge", bridge = bridge, isGateway = true,
        ipam = { type = "host-local", subnet = subnet .. ".0/24", dataDir = ipam } } }) })))
  end)
  after_each(function()
    if env then env:destroy() end
    env = nil
    os.execute("ip link del " .. bridge .. " 2>/dev/null")
  end)
  teardown(function() S.cleanup() end)

  local function flags(...)
    return "--cni", "--cni-conf-dir", netdir, "--cni-bin-dir", "/opt/cni/bin:" .. BIN_DIR, ...
  end

  local function ports_on_bridge()
    local out = S.sh("ip -o link show master " .. bridge)
    local n = 0
    for _ in out:gmatch("[^\n]+") do n = n + 1 end
    return n
  end

  local function allocations()
    local names = core.listdir(ipam .. "/ctrlua-test") or {}
    local out = {}
    for _, name in ipairs(names) do
      if name:match("^%d+%.%d+%.%d+%.%d+$") then out[#out + 1] = name end
    end
    return out
  end

  it("two containers on a bridge reach each other; DEL cleans the veth and the IP", function()
    local a = env:spawn("run.lua", "--rm", flags(IMAGE, "cnia", "sleep", "30"))
    local pid = env:wait_running("cnia")
    -- the address is in the container record and in the task
    local extra = core.json_decode(assert(core.read_file(env:state_dir() .. "/cnia/task.json")))
    assert.are.equal(1, #extra.cni.ips)
    local ip = extra.cni.ips[1]:match("^([%d.]+)/24$")
    assert.is_truthy(ip, extra.cni.ips[1])
    assert.are.equal(subnet, ip:match("^(%d+%.%d+%.%d+)%."))
    local client = assert(require("ctr.client").new({ root = env.root, state = env.state, namespace = env.ns }))
    local c = assert(require("ctr.containers").load(client, "cnia"))
    assert.are.equal(extra.cni.ips[1], c.record.labels[cni.LABEL_IPS])
    assert.are.same({ ip }, allocations())
    assert.are.equal(1, ports_on_bridge())

    local r = env:run("run.lua", "--rm", flags(IMAGE, "cnib", "sh", "-c",
      "ip -o -4 addr show eth0; ping -c 1 -W 5 " .. ip))
    assert.are.equal(0, r.code, r.stdout .. r.stderr)
    assert.matches("eth0%s+inet " .. subnet:gsub("%.", "%%.") .. "%.%d+/24", r.stdout)
    assert.matches("1 packets received", r.stdout, 1, true)
    -- b's address is released, a's kept
    assert.are.same({ ip }, allocations())

    core.kill(pid, 9)
    local ra = a:wait(20)
    assert.are.equal(137, ra.code, ra.stderr)
    assert.are.same({}, allocations())
    S.until_true(function() return ports_on_bridge() == 0 end, 5, "the veths to go")
    assert.are.same({}, env:leftovers("cnia"))
  end)

  it("the default without a conflist: loopback up, no other interface", function()
    local empty = env.dir .. "/empty"
    assert(core.mkdir(empty))
    local r = env:run("run.lua", "--rm", "--cni", "--cni-conf-dir", empty, "--cni-bin-dir", BIN_DIR,
      IMAGE, "lo1", "ip", "-o", "link")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^1: lo: <LOOPBACK,UP,LOWER_UP>", r.stdout)
    assert.is_nil(r.stdout:find("\n2:", 1, true))
  end)

  it("a failing plugin fails the run and leaves nothing behind", function()
    -- a subnet host-local cannot allocate from
    assert(core.write_file(netdir .. "/10-test.conflist", core.json_encode({
      cniVersion = "1.0.0", name = "ctrlua-test",
      plugins = core.json_array({ { type = "bridge", bridge = bridge,
        ipam = { type = "host-local", subnet = "not-a-subnet", dataDir = ipam } } }) })))
    local r = env:run("run.lua", "--rm", flags(IMAGE, "bad", "true"))
    assert.are.equal(125, r.code)
    assert.matches('^ctrlua: cni network "ctrlua%-test": plugin type="bridge" failed %(add%): ', r.stderr)
    assert.are.same({}, env:leftovers("bad"))
  end)

  it("--cni with --net-host is refused", function()
    local r = env:run("run.lua", "--rm", "--net-host", flags(IMAGE, "nh", "true"))
    if r.stderr:match("not supported yet") then pending("--net-host is not implemented yet") return end
    assert.are.equal(125, r.code)
    assert.matches("shares the host's network namespace", r.stderr, 1, true)
  end)
end)
