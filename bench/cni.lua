-- cni: CNI setup (ADD: loopback, then a bridge with host-local IPAM) and teardown (DEL) of one
-- container's network namespace, 20 times, with Debian's plugins (/usr/lib/cni).
--
-- A module for bench/run.lua: `require("cni")(report)` runs it and calls report(result) once
-- with
--   { name = "cni", unit = "seconds", median = <median setup+teardown per container>,
--     setup = <median setup>, teardown = <median teardown>, runs = 20 }.
-- Run directly (`luajit bench/cni.lua` with LUA_PATH=lua/?.lua and LUA_CPATH=build/lib/?.so,
-- as root) it prints the same.  The namespace is held by an `unshare --net sleep` process; its
-- bridge (unique name) and the temporary conf, IPAM and state directories are removed at the
-- end.  /etc/cni is never read.
local core = require("ctr.core")
local cni = require("ctr.cni")

local N = 20
local BIN_DIR = "/opt/cni/bin:/usr/lib/cni"

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function run(report)
  report = report or function(r)
    print(string.format("cni: median setup+teardown %.3f ms (setup %.3f ms, teardown %.3f ms; %d runs)",
      r.median * 1e3, r.setup * 1e3, r.teardown * 1e3, r.runs))
  end
  local dir = sh("mktemp -d /tmp/ctrlua-bench-cni.XXXXXX"):gsub("%s+$", "")
  local bridge = "ctlb" .. core.getpid() % 100000
  assert(core.mkdir(dir .. "/net.d"))
  assert(core.mkdir_p(dir .. "/state/bench/c", 448))
  assert(core.write_file(dir .. "/net.d/10-bench.conflist", core.json_encode({
    cniVersion = "1.0.0", name = "ctrlua-bench",
    plugins = core.json_array({ { type = "bridge", bridge = bridge, isGateway = true,
      ipam = { type = "host-local", subnet = "10.252.7.0/24", dataDir = dir .. "/ipam" } } }) })))
  -- a process holding a network namespace of its own
  local holder = tonumber(sh("unshare --net sleep 600 >/dev/null 2>&1 & echo $!"):match("%d+"))
  local client = { namespace = "bench", state_dir = function(_, id) return dir .. "/state/bench/" .. id end }
  local container = { id = "c", record = { extensions = { [cni.EXTENSION] = {
    conf_dir = dir .. "/net.d", bin_dir = BIN_DIR } } } }
  local total, setups, teardowns = {}, {}, {}
  local ok, err = pcall(function()
    -- wait until the holder has its namespace
    local mine = core.stat("/proc/self/ns/net", true)
    for _ = 1, 200 do
      local st = core.stat("/proc/" .. holder .. "/ns/net", true)
      if st and st.ino ~= mine.ino then break end
      sh("sleep 0.01")
    end
    for i = 1, N do
      local t0 = core.monotime()
      local state = assert(cni.setup(client, container, holder))
      local t1 = core.monotime()
      assert(cni.teardown(client, "c", state))
      local t2 = core.monotime()
      setups[i], teardowns[i], total[i] = t1 - t0, t2 - t1, t2 - t0
    end
  end)
  if holder then core.kill(holder, 9) end
  os.execute("ip link del " .. bridge .. " 2>/dev/null")
  core.remove_tree(dir)
  if not ok then error(err, 0) end
  report({ name = "cni", unit = "seconds", median = median(total), setup = median(setups),
    teardown = median(teardowns), runs = N })
end

if arg and arg[0] and arg[0]:match("cni%.lua$") then
  run()
end
return run
