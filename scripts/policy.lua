-- policy: list the site's spec policies and dry-run them on a `run` command line
--
-- ctrlua policy.lua list [--policy F]... [--dir DIR]
-- ctrlua policy.lua check [--policy F]... [--dir DIR] [--spec] -- RUN-FLAGS IMAGE ID [COMMAND...]
-- check builds the spec exactly as run.lua does, applies the policies, prints the diff of the
-- spec (before/after, pretty JSON with sorted keys) or the refusal, and creates nothing
-- (a snapshot it prepares is removed).  Exit 1 on a refusal.
local app = require("ctr.cmd.app")
local ctr = require("ctr")
local cli = require("ctr.cmd.cli")
local errors = require("ctr.errors")
local policy = require("ctr.policy")
local run = require("ctr.cmd.run")

local POLICY_FLAGS = {
  { name = "policy", type = "strings", usage = "a policy file (repeatable), after those of the policy directory" },
  { name = "dir", type = "string", usage = "the policy directory (default: /etc/ctrlua/policy.d)" },
}

local function policy_opts(f)
  return { files = f.policy, dir = (f.dir ~= "" and f.dir) or nil }
end

local function list(ctx)
  local client, err = ctr.client()
  if not client then return nil, err end
  local files
  files, err = policy.files(client, policy_opts(ctx.flags))
  if not files then return nil, err end
  for _, p in ipairs(files) do io.stdout:write(p, "\n") end
  return true
end

-- the ABORT sentinel stops new_container once the policies have run: nothing is written
local ABORT = errors.new("policy check: dry run", 0, "DRY_RUN")

local function check(ctx)
  local def = run.def("ctrlua policy.lua check --")
  local r, err = cli.parse(def, ctx.args)
  if not r then return nil, err end
  local v
  v, err = run.validate(def, r)
  if not v then return nil, err end
  local client
  client, err = ctr.client()
  if not client then return nil, err end
  local f = r.flags
  local before, after
  local files = {}
  for _, p in ipairs(ctx.flags.policy or {}) do files[#files + 1] = p end
  for _, p in ipairs(type(f.policy) == "table" and f.policy or {}) do files[#files + 1] = p end
  -- the very opts `run` uses, so what is checked is what would run
  local copts
  copts, err = run.container_opts(client, f, v, nil, { files = files, dir = policy_opts(ctx.flags).dir,
    before = function(c) before = policy.pretty_json(c.spec) end })
  if not copts then return nil, err end
  copts[#copts + 1] = function(_, _, c)
    after = policy.pretty_json(c.spec)
    return nil, ABORT
  end
  local _, cerr = client:new_container(v.id, unpack(copts))
  if cerr ~= ABORT then
    if cerr and cerr.sym == "POLICY_REFUSED" then
      io.stdout:flush()
      io.stderr:write("ctrlua: ", tostring(cerr), "\n")
      return false
    end
    return nil, cerr or errors.new("policy check: the container was created")
  end
  if ctx.flags.spec then
    io.stdout:write(after)
  else
    local d = policy.diff(before, after, "spec (before policies)", "spec (after policies)")
    io.stdout:write(d == "" and "policies: no change\n" or d)
  end
  return true
end

app.run({
  name = "policy", help_name = "ctrlua policy.lua", usage = "site spec policies",
  description = [[
Policies are Lua files from /etc/ctrlua/policy.d/*.lua and --policy, loaded in name order; each
returns function(spec, container, flags) or a table of such rules, which may change the spec
or refuse (return false, "reason" / refuse("reason")).  See the ctr.policy module.]],
  commands = {
    { name = "list", aliases = { "ls" }, usage = "list the policy files in load order",
      flags = POLICY_FLAGS, action = list },
    { name = "check", usage = "dry-run the policies on a run command line and show the spec diff",
      args_usage = "[--policy F]... -- [run flags] IMAGE ID [COMMAND] [ARG...]",
      skip_reorder = true,
      flags = { POLICY_FLAGS[1], POLICY_FLAGS[2],
        { name = "spec", type = "bool", usage = "print the final spec instead of the diff" } },
      action = check },
  },
}, { ... })
