--- CNI networking for `ctr run --cni`, after containerd's go-cni as ctr uses it: the loopback
-- network, then the first network configuration found in the conf dir, set up in the task's
-- network namespace after create and before start, torn down when the task is deleted.
--
-- Plugins are run as the CNI spec (v1.0) says: the plugin binary (found in the bin dirs) with
-- CNI_COMMAND (ADD/DEL), CNI_CONTAINERID (NAMESPACE-ID, as ctr's FullID), CNI_NETNS
-- (/proc/PID/ns/net), CNI_IFNAME (lo, eth0), CNI_PATH (the bin dirs) and CNI_ARGS in an
-- otherwise empty environment, the network configuration on stdin, the result (or an error
-- object {code, msg, details}) on stdout.  A conflist runs its plugins in order for ADD, each
-- getting the previous one's result as `prevResult`, and in reverse order for DEL with the
-- ADD result as `prevResult`.  The ADD results are kept in the task (task.json) for DEL; the
-- addresses are also put in the container's labels (`ctrlua.cni/ips`, comma-separated CIDRs).
--
-- ctrlua: differences from ctr.
-- - With no network configuration in the conf dir, only loopback is set up (ctr fails with
--   "cni plugin not initialized").
-- - `--cni-conf-dir DIR` and `--cni-bin-dir DIR[:DIR...]` choose where to look (defaults
--   /etc/cni/net.d, and /opt/cni/bin then Debian's /usr/lib/cni).
-- - The container's network namespace must not be the host's (ctr would configure the host).
-- @module ctr.cni
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- The container extension that asks for CNI (its value: `{conf_dir=, bin_dir=}`).
M.EXTENSION = "ctrlua.cni"
--- The container label that holds the addresses.
M.LABEL_IPS = "ctrlua.cni/ips"
M.DEFAULT_CONF_DIR = "/etc/cni/net.d"
M.DEFAULT_BIN_DIRS = "/opt/cni/bin:/usr/lib/cni"
--- The largest network configuration file read.
M.MAX_CONF = 1024 * 1024

local PLUGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

local function check_type(v, want, what)
  if type(v) ~= want then error(("%s: expected %s, got %s"):format(what, want, type(v)), 3) end
end

-- The loopback network go-cni adds first (WithLoNetwork).
local function loopback_network()
  return { name = "cni-loopback", cniVersion = "0.3.1", ifname = "lo",
    plugins = core.json_array({ { type = "loopback" } }) }
end

-- Check a decoded conflist (or a single .conf, made a one-plugin list); returns the list or
-- nil, err naming the file.
local function as_list(doc, file)
  if type(doc) ~= "table" then return nil, errors.invalid("%s: not a JSON object", file) end
  local list
  if doc.plugins ~= nil then
    list = { name = doc.name, cniVersion = doc.cniVersion, plugins = doc.plugins }
  else
    list = { name = doc.name, cniVersion = doc.cniVersion, plugins = core.json_array({ doc }) }
  end
  if type(list.name) ~= "string" or list.name == "" then
    return nil, errors.invalid("%s: no network name", file)
  end
  if type(list.cniVersion) ~= "string" then list.cniVersion = "0.4.0" end
  if type(list.plugins) ~= "table" or #list.plugins == 0 then
    return nil, errors.invalid("%s: no plugins", file)
  end
  for i, p in ipairs(list.plugins) do
    -- a type is a file name in the bin dirs, never a path
    if type(p) ~= "table" or type(p.type) ~= "string" or not p.type:match("^[%w_.%-]+$")
      or p.type:match("^%.+$") then
      return nil, errors.invalid("%s: plugins[%d]: bad or missing type", file, i)
    end
  end
  return list
end

--- The networks to set up: loopback, then the first configuration (by file name) in conf_dir
-- with the extension .conflist, .conf or .json (as libcni's ConfFiles).
-- @tparam[opt] string conf_dir default /etc/cni/net.d
-- @return array of `{name=, cniVersion=, plugins=, ifname=, file=}`, or nil, err
function M.load(conf_dir)
  conf_dir = (conf_dir and conf_dir ~= "") and conf_dir or M.DEFAULT_CONF_DIR
  local nets = { loopback_network() }
  local names, err = sys.listdir(conf_dir)
  if not names then
    if err.sym == "ENOENT" then return nets end
    return nil, err
  end
  table.sort(names)
  for _, name in ipairs(names) do
    if name:match("%.conflist$") or name:match("%.conf$") or name:match("%.json$") then
      local file = conf_dir .. "/" .. name
      local data, rerr = sys.read_file(file, M.MAX_CONF)
      if not data then return nil, rerr end
      local ok, doc = pcall(core.json_decode, data)
      if not ok then return nil, errors.invalid("%s: %s", file, tostring(doc)) end
      local list, err = as_list(doc, file)
      if not list then return nil, err end
      list.ifname, list.file = "eth0", file
      nets[#nets + 1] = list
      break
    end
  end
  return nets
end

--- The container opt of `--cni` (containerd.WithContainerExtension of ctr's CNI metadata):
-- checks the configuration now, so that a bad one fails before anything is made.
-- @tparam[opt] table opts `conf_dir`, `bin_dir` (':'-separated)
-- @return a container opt, or nil, err
function M.with_cni(opts)
  opts = opts or {}
  check_type(opts, "table", "opts")
  local conf_dir = (opts.conf_dir and opts.conf_dir ~= "") and opts.conf_dir or M.DEFAULT_CONF_DIR
  local bin_dir = (opts.bin_dir and opts.bin_dir ~= "") and opts.bin_dir or M.DEFAULT_BIN_DIRS
  local nets, err = M.load(conf_dir)
  if not nets then return nil, err end
  for _, n in ipairs(nets) do
    for _, p in ipairs(n.plugins) do
      local _, ferr = M.find_plugin(p.type, bin_dir)
      if ferr then return nil, ferr end
    end
  end
  return function(_, _, c)
    c.extensions = c.extensions or {}
    c.extensions[M.EXTENSION] = { conf_dir = conf_dir, bin_dir = bin_dir }
  end
end

--- The path of plugin `typ` in the ':'-separated dirs, or nil, err (libcni's words).
function M.find_plugin(typ, bin_dir)
  check_type(typ, "string", "type")
  local tried = {}
  for dir in ((bin_dir or M.DEFAULT_BIN_DIRS) .. ":"):gmatch("([^:]*):") do
    if dir ~= "" then
      tried[#tried + 1] = dir
      local st = core.stat(dir .. "/" .. typ, true)
      if st and st.type == "file" then return dir .. "/" .. typ end
    end
  end
  return nil, errors.not_found("failed to find plugin %q in path [%s]", typ, table.concat(tried, " "))
end

--- Run one plugin: `exec(path, env, config)` → the decoded result (ADD) or true (DEL), or
-- nil, err with the plugin's error message.
-- @tparam string path the plugin binary
-- @tparam table env CNI_* variables
-- @tparam string config the JSON configuration (stdin)
-- @tparam[opt] string tmp unused (the configuration goes to the plugin through a pipe)
function M.exec(path, env, config, tmp)
  local vars = { PATH = PLUGIN_PATH }
  for _, k in ipairs({ "CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH" }) do
    vars[k] = env[k] or ""
  end
  local r, serr = sys.spawn({ argv = { path }, env = vars, stdin = config })
  local typ = path:match("([^/]+)$")
  local what = ("plugin type=%q failed (%s)"):format(typ, (env.CNI_COMMAND or ""):lower())
  if not r then return nil, errors.wrap(serr, what) end
  local body, rc, stderr = r.stdout, r.code, r.stderr
  local doc
  if body and body:match("%S") then
    local dok, d = pcall(core.json_decode, body)
    if dok then doc = d end
  end
  if rc ~= 0 then
    local detail = stderr:gsub("%s+$", "")
    if type(doc) == "table" and doc.msg then
      detail = tostring(doc.msg) .. (doc.details and doc.details ~= "" and (": " .. tostring(doc.details)) or "")
    end
    if detail == "" then detail = "exit status " .. rc end
    return nil, errors.new(what .. ": " .. detail, 5)
  end
  if env.CNI_COMMAND == "ADD" then
    if type(doc) ~= "table" then return nil, errors.new(what .. ": no result on stdout", 5) end
    return doc
  end
  return true
end

-- The configuration of plugin i of a list, with prevResult.
local function plugin_config(net, i, prev)
  local conf = {}
  for k, v in pairs(net.plugins[i]) do conf[k] = v end
  conf.name, conf.cniVersion = net.name, net.cniVersion
  conf.prevResult = prev
  return core.json_encode(conf)
end

local function env_of(command, cid, netns, ifname, bin_dir)
  return { CNI_COMMAND = command, CNI_CONTAINERID = cid, CNI_NETNS = netns, CNI_IFNAME = ifname,
    CNI_PATH = bin_dir, CNI_ARGS = "IgnoreUnknown=1" }
end

-- DEL a network: its plugins in reverse, with the ADD result as prevResult.
local function del_network(net, cid, netns, bin_dir, tmp)
  local first_err
  for i = #net.plugins, 1, -1 do
    local path, err = M.find_plugin(net.plugins[i].type, bin_dir)
    if path then
      local _, derr = M.exec(path, env_of("DEL", cid, netns, net.ifname, bin_dir),
        plugin_config(net, i, net.result), tmp)
      err = derr
    end
    first_err = first_err or err
  end
  if first_err then return nil, first_err end
  return true
end

-- The addresses of a result (CNI 0.3+ and 1.0: ips[].address).
local function addresses(result)
  local out = {}
  for _, ip in ipairs(type(result) == "table" and type(result.ips) == "table" and result.ips or {}) do
    if type(ip) == "table" and type(ip.address) == "string" then out[#out + 1] = ip.address end
  end
  return out
end

--- Set up the networks of container's task whose init is `pid` (CNI ADD; called by
-- ctr.tasks.new_task before start).  On failure what was added is deleted again.
-- @return `{conf_dir=, bin_dir=, cid=, netns=, networks={{name=, cniVersion=, ifname=,
--   plugins=, result=}...}, ips={CIDR...}}` (kept by the task for teardown), or nil, err
function M.setup(client, container, pid)
  check_type(client, "table", "client")
  check_type(container, "table", "container")
  check_type(pid, "number", "pid")
  local rec = container.record or {}
  local ext = type(rec.extensions) == "table" and rec.extensions[M.EXTENSION] or {}
  local conf_dir = ext.conf_dir or M.DEFAULT_CONF_DIR
  local bin_dir = ext.bin_dir or M.DEFAULT_BIN_DIRS
  local netns = "/proc/" .. pid .. "/ns/net"
  local mine, theirs = core.stat("/proc/self/ns/net", true), core.stat(netns, true)
  if not theirs then return nil, errors.not_found("cni: %s: the task's network namespace is gone", netns) end
  if mine and mine.ino == theirs.ino and mine.dev == theirs.dev then
    return nil, errors.invalid("cni: the container shares the host's network namespace (--net-host?): refusing to configure it")
  end
  local nets, err = M.load(conf_dir)
  if not nets then return nil, err end
  local cid = client.namespace .. "-" .. container.id
  local tmp = client:state_dir(container.id) .. "/cni"
  local state = { conf_dir = conf_dir, bin_dir = bin_dir, cid = cid, netns = netns,
    netns_ino = theirs.ino,
    networks = core.json_array({}), ips = core.json_array({}) }
  for _, net in ipairs(nets) do
    state.networks[#state.networks + 1] = net
    local prev
    for i, p in ipairs(net.plugins) do
      local path, ferr = M.find_plugin(p.type, bin_dir)
      local res = path
      if path then
        res, ferr = M.exec(path, env_of("ADD", cid, netns, net.ifname, bin_dir),
          plugin_config(net, i, prev), tmp)
      end
      if not res then
        net.result = prev
        M.teardown(client, container.id, state)
        return nil, errors.wrap(ferr, "cni network %q", net.name)
      end
      prev = res
    end
    net.result = prev
    if net.ifname ~= "lo" then
      for _, a in ipairs(addresses(prev)) do state.ips[#state.ips + 1] = a end
    end
  end
  if #state.ips > 0 and container.set_labels then
    container:set_labels({ [M.LABEL_IPS] = table.concat(state.ips, ",") })
  end
  return state
end

--- Tear down what setup made (CNI DEL, networks in reverse); called when the task is
-- deleted.  The namespace is usually gone by then (CNI_NETNS is then empty, as the spec
-- allows): plugins release their addresses, and the kernel removed the veth with the
-- namespace.
-- Every network is tried; the first error is returned.
-- @param client
-- @tparam string id the container id
-- @tparam table state what setup returned
-- @return true, or nil, err
function M.teardown(client, id, state)
  check_type(client, "table", "client")
  check_type(id, "string", "id")
  check_type(state, "table", "state")
  -- the same namespace still (the pid may have been reused by now), or none
  local netns = state.netns
  local st = netns and core.stat(netns, true)
  if not st or st.ino ~= state.netns_ino then netns = "" end
  local tmp = client:state_dir(id) .. "/cni"
  local first_err
  local nets = state.networks or {}
  for i = #nets, 1, -1 do
    local _, err = del_network(nets[i], state.cid or (client.namespace .. "-" .. id), netns or "",
      state.bin_dir or M.DEFAULT_BIN_DIRS, tmp)
    first_err = first_err or err
  end
  if first_err then return nil, first_err end
  -- through the client, which knows the containers: this module stays below them
  local ok, c = pcall(client.load_container, client, id)
  if ok and c then c:set_labels({ [M.LABEL_IPS] = "" }) end
  return true
end

return M
