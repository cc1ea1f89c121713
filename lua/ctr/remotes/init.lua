--- Registries: what the commands share (ctr's registry flags into options, login).
-- The pieces: ctr.remotes.docker (the protocol), ctr.remotes.auth (authorization and
-- credentials), ctr.remotes.hosts (hosts.toml), ctr.remotes.http (transfers),
-- ctr.remotes.pull, ctr.remotes.push, ctr.remotes.progress (ctr's display).
-- @module ctr.remotes
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- Read a secret from the terminal without echo: the string, or nil, err (sym ENOTTY).
function M.read_secret(prompt)
  local s, err = sys.read_secret(prompt or "Password: ")
  if not s then return nil, err end
  return s
end

--- Options of ctrlua.remotes.pull/push from parsed registry flags (ctr's names): `-u user`
-- without a password asks for it on the terminal.
-- @return opts, or nil, err
function M.registry_opts(f)
  local o = {
    skip_verify = f["skip-verify"] or nil, plain_http = f["plain-http"] or nil,
    refresh = f.refresh ~= "" and f.refresh or nil, hosts_dir = f["hosts-dir"] ~= "" and f["hosts-dir"] or nil,
    tlscacert = f.tlscacert or "", tlscert = f.tlscert or "", tlskey = f.tlskey or "",
    http_dump = f["http-dump"] or nil, http_trace = f["http-trace"] or nil,
  }
  if (o.tlscert == "") ~= (o.tlskey == "") then
    return nil, errors.invalid("--tlscert and --tlskey must be given together")
  end
  local user = f.user or ""
  if user ~= "" then
    if not user:find(":", 1, true) then
      local p, err = M.read_secret("Password: ")
      if not p then
        return nil, errors.wrap(err, "--user %s: no password given and none could be asked for", user)
      end
      o.user, o.password = user, p
    else
      o.user = user
    end
  end
  return o
end

--- Check user and password against host (GET /v2/ answering its challenge) and store them
-- (ctr.remotes.auth.store).  true, or nil, err.
function M.login(host, user, password, opts)
  local pull = require("ctr.remotes.pull")
  local auth = require("ctr.remotes.auth")
  opts = opts or {}
  opts.credentials = function() return { username = user, secret = password } end
  local r, err = pull.resolver(opts)
  if not r then return nil, err end
  local hosts
  hosts, err = r:hosts(host, "resolve")
  if not hosts then r.session:close() return nil, err end
  local h = hosts[#hosts]
  local url = h.scheme .. "://" .. h.host .. h.path .. "/"
  local res
  res, err = r:do_request(h, "GET", url, {}, {})
  r.session:close()
  if not res then return nil, errors.wrap(err, "login to %s", host) end
  if res.status ~= 200 then
    return nil, errors.wrap(auth.status_err("GET", url, res), "login to %s", host)
  end
  return auth.store(host, user, password)
end

return M
