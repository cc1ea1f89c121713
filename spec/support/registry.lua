-- Registries for the specs, started by the test on loopback in a temporary directory and
-- stopped again (only the processes it started): Debian's docker-registry (distribution 2.8)
-- plain, with TLS from a CA made here with openssl and htpasswd Basic auth, or with token auth
-- from a token server of the test's own (python3 + jwt: JWTs signed by a key whose certificate
-- is the registry's rootcertbundle); and a fault-injecting server (spec/support/faultserver.py)
-- that serves an OCI layout with the fault a test asks for.
--
--   local R = require("support.registry")
--   local reg = R.start({ tls = true, htpasswd = { alice = "secret" } })  -- reg.host, reg.dir
--   reg:push_image(S.IMAGE_TAR, "test/busybox:1")                          -- skopeo copy
--   reg:stop()
local core = require("ctr.core")
local S = require("support.ctrlua")

local q = S.q
local PY = "/usr/bin/python3"

local R = {}

function R.available()
  return core.stat("/usr/bin/docker-registry") ~= nil and core.stat("/usr/bin/skopeo") ~= nil
    and core.stat("/usr/bin/htpasswd") ~= nil and core.stat(PY) ~= nil
end

--- A free TCP port on 127.0.0.1.
function R.free_port()
  local out = S.must(PY .. [[ -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']])
  return tonumber(out:match("%d+"))
end

local function wait_port(port, what, scheme)
  S.until_true(function()
    local _, rc = S.sh(("curl -s -k -o /dev/null %s://127.0.0.1:%d/"):format(scheme or "http", port))
    return rc == 0
  end, 20, what)
end

local Reg = {}
Reg.__index = Reg

--- A CA and a server certificate for 127.0.0.1 under dir: dir/ca.crt, dir/server.{crt,key}.
function R.make_ca(dir)
  S.must(([[cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ctrlua-test-ca \
    -keyout ca.key -out ca.crt 2>/dev/null && \
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null && \
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext.cnf && \
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile ext.cnf -out server.crt 2>/dev/null]]):format(q(dir)))
  return dir .. "/ca.crt"
end

--- Start docker-registry.  opts: tls (a CA of its own), htpasswd = {user = password},
-- token = true (a token server beside it; reg.token_log lists what it was asked).
function R.start(opts)
  opts = opts or {}
  local dir = S.tmpdir()
  local port = R.free_port()
  local reg = setmetatable({ dir = dir, port = port, host = "127.0.0.1:" .. port, pids = {},
    scheme = opts.tls and "https" or "http" }, Reg)
  local cfg = { "version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
    "storage:", "  filesystem:", "    rootdirectory: " .. dir .. "/data", "  delete:", "    enabled: true",
    "http:", "  addr: 127.0.0.1:" .. port }
  if opts.tls then
    reg.ca = R.make_ca(dir)
    cfg[#cfg + 1] = "  tls:"
    cfg[#cfg + 1] = "    certificate: " .. dir .. "/server.crt"
    cfg[#cfg + 1] = "    key: " .. dir .. "/server.key"
  end
  if opts.htpasswd then
    local first = true
    for user, pass in pairs(opts.htpasswd) do
      S.must(("htpasswd -bB %s %s %s 2>/dev/null"):format(first and "-c" or "", q(dir .. "/htpasswd"), q(user) .. " " .. q(pass)))
      first = false
    end
    cfg[#cfg + 1] = "auth:"
    cfg[#cfg + 1] = "  htpasswd:"
    cfg[#cfg + 1] = "    realm: ctrlua-test"
    cfg[#cfg + 1] = "    path: " .. dir .. "/htpasswd"
  end
  if opts.token then
    local tport = R.free_port()
    reg.token_port = tport
    reg.token_log = dir .. "/token.log"
    S.must(([[cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ctrlua-token \
      -keyout token.key -out token.crt 2>/dev/null]]):format(q(dir)))
    local users = {}
    for u, p in pairs(opts.token_users or {}) do users[#users + 1] = u .. ":" .. p end
    local pid = S.must(("%s %s %d %s %s %s %s >%s 2>&1 & echo $!"):format(PY,
      q(core.realpath("spec/support/tokenserver.py")), tport, q(dir .. "/token.key"),
      q(dir .. "/token.crt"), q(reg.token_log), q(table.concat(users, ",")), q(dir .. "/token.out")))
    reg.pids[#reg.pids + 1] = tonumber(pid:match("%d+"))
    wait_port(tport, "the token server")
    cfg[#cfg + 1] = "auth:"
    cfg[#cfg + 1] = "  token:"
    cfg[#cfg + 1] = ("    realm: http://127.0.0.1:%d/token"):format(tport)
    cfg[#cfg + 1] = "    service: ctrlua-registry"
    cfg[#cfg + 1] = "    issuer: ctrlua-token-issuer"
    cfg[#cfg + 1] = "    rootcertbundle: " .. dir .. "/token.crt"
  end
  assert(core.write_file(dir .. "/config.yml", table.concat(cfg, "\n") .. "\n"))
  local pid = S.must(("docker-registry serve %s >%s 2>&1 & echo $!"):format(q(dir .. "/config.yml"),
    q(dir .. "/registry.log")))
  reg.pids[#reg.pids + 1] = tonumber(pid:match("%d+"))
  wait_port(port, "docker-registry", reg.scheme)
  return reg
end

--- skopeo copy of an oci-archive into this registry as repo:tag (with credentials if given).
function Reg:push_image(tar, repo_tag, creds)
  local flags = self.ca and ("--dest-cert-dir " .. q(self.dir .. "/skopeo-certs")) or "--dest-tls-verify=false"
  if self.ca then S.must(("mkdir -p %s && cp %s %s/ca.crt"):format(q(self.dir .. "/skopeo-certs"), q(self.ca), q(self.dir .. "/skopeo-certs"))) end
  if creds then flags = flags .. " --dest-creds " .. q(creds) end
  return S.must(("skopeo copy -q %s oci-archive:%s docker://%s/%s 2>&1"):format(flags, q(tar), self.host, repo_tag))
end

--- skopeo flags to read from this registry.
function Reg:skopeo_src_flags(creds)
  local flags = self.ca and ("--src-cert-dir " .. q(self.dir .. "/skopeo-certs")) or "--src-tls-verify=false"
  if creds then flags = flags .. " --src-creds " .. q(creds) end
  return flags
end

function Reg:stop()
  for _, pid in ipairs(self.pids) do core.kill(pid, 15) end
  for _, pid in ipairs(self.pids) do
    pcall(S.until_true, function() return not core.stat("/proc/" .. pid .. "/stat") or
      (core.read_file("/proc/" .. pid .. "/stat") or ""):match("%) Z ") end, 5, "server exit")
  end
  self.pids = {}
  core.remove_tree(self.dir)
end

--- The fault server over an OCI layout directory (an extracted oci-archive): faults is a
-- table the server reads at each request from dir/faults.json (see faultserver.py).
function R.fault_server(layout, faults)
  local dir = S.tmpdir()
  local port = R.free_port()
  local srv = setmetatable({ dir = dir, port = port, host = "127.0.0.1:" .. port, pids = {},
    log = dir .. "/requests.log" }, Reg)
  srv:set_faults(faults or {})
  local pid = S.must(("%s %s %d %s %s %s >%s 2>&1 & echo $!"):format(PY,
    q(core.realpath("spec/support/faultserver.py")), port, q(layout), q(dir .. "/faults.json"),
    q(srv.log), q(dir .. "/server.out")))
  srv.pids[#srv.pids + 1] = tonumber(pid:match("%d+"))
  wait_port(port, "the fault server")
  return srv
end

function Reg:set_faults(f)
  assert(core.write_file(self.dir .. "/faults.json", core.json_encode(f)))
end

--- The requests the fault server logged (one JSON object a line: method, path, headers).
function Reg:requests()
  local out = {}
  for line in (S.slurp(self.log) or ""):gmatch("[^\n]+") do out[#out + 1] = core.json_decode(line) end
  return out
end

return R
