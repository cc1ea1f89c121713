-- containers: manage containers (ls, info, rm, label) as `ctr containers`
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")
local json = require("ctr.json")

local function fail(err)
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(1)
end

local function client()
  local c, err = ctr.client()
  if not c then fail(err) end
  return c
end

-- A record in the layout of `ctr containers info` (containerd's containers.Container).
local function ctr_view(rec)
  local null = json.null
  local rt = rec.runtime or {}
  return {
    ID = rec.id,
    Labels = rec.labels or {},
    Image = rec.image or "",
    Runtime = { Name = rt.name or "", Options = rt.options or null },
    SnapshotKey = rec.snapshot_key or "",
    Snapshotter = rec.snapshotter or "",
    CreatedAt = rec.created_at or null,
    UpdatedAt = rec.updated_at or null,
    Extensions = rec.extensions or {},
    Spec = rec.spec or null,
  }
end

local commands = {}
local defs = {
  list = { name = "list", help_name = "ctrlua containers list", usage = "list containers",
    args_usage = "[flags] [<filter>, ...]",
    flags = {
      { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the container id" },
      { name = "format", type = "string", usage = "output format: table or json" },
    } },
  info = { name = "info", help_name = "ctrlua containers info", usage = "get info about a container",
    args_usage = "CONTAINER",
    flags = { { name = "spec", type = "bool", usage = "only display the spec" } } },
  delete = { name = "delete", help_name = "ctrlua containers delete",
    usage = "delete one or more existing containers",
    args_usage = "[flags] CONTAINER [CONTAINER, ...]",
    description = [[Deletes each container: its stopped task, its snapshot (unless --keep-snapshot), its
record.  With --force, the task goes whatever state it is in (killed, unmounted, its cgroup
and state removed), and so does a container whose record cannot be read (its snapshot is then
the one named by its id, if no other container names it: an active one, or one whose record
cannot be read either and that is no snapshot's parent).]],
    flags = {
      { name = "keep-snapshot", type = "bool", usage = "do not clean up snapshot with container" },
      { name = "force", aliases = { "f" }, type = "bool",
        usage = "kill and remove the task in any state, and remove a record that cannot be read" },
    } },
  label = { name = "label", help_name = "ctrlua containers label",
    usage = "set and clear labels for a container",
    usage_text = "ctrlua containers label [flags] CONTAINER [<key>=<value>, ...]",
    description = "set and clear labels for a container", flags = {} },
}

function commands.list(r)
  local list, bad = ctr.containers.list(client(), #r.args > 0 and r.args or nil)
  if not list then fail(bad) end
  app.warn(bad)
  if r.flags.quiet then
    for _, c in ipairs(list) do io.write(c.id, "\n") end
    return
  end
  if r.flags.format == "json" then
    local out = {}
    for _, c in ipairs(list) do out[#out + 1] = ctr_view(c.record) end
    io.write(json.encode_indent(json.array(out)), "\n")
    return
  elseif r.flags.format ~= "" and r.flags.format ~= "table" then
    fail(("unknown format %q: use table or json"):format(r.flags.format))
  end
  local b = { "CONTAINER\tIMAGE\tRUNTIME\t\n" }
  for _, c in ipairs(list) do
    local rec = c.record
    local image = (rec.image and rec.image ~= "") and rec.image or "-"
    b[#b + 1] = ("%s\t%s\t%s\t\n"):format(c.id, image, rec.runtime and rec.runtime.name or "")
  end
  io.write(cli.tabwrite(table.concat(b), 4, 4))
end

function commands.info(r)
  if #r.args < 1 then fail("container id must be provided: invalid argument") end
  local c, err = ctr.containers.load(client(), r.args[1])
  if not c then fail(err) end
  if r.flags.spec then
    io.write(json.encode_indent(c.record.spec or json.null), "\n")
  else
    io.write(json.encode_indent(ctr_view(c.record)), "\n")
  end
end

function commands.delete(r)
  if #r.args < 1 then fail("must specify at least one container to delete: invalid argument") end
  local cl = client()
  local first
  for _, id in ipairs(r.args) do
    local ok, err = ctr.containers.delete(cl, id, { snapshot_cleanup = not r.flags["keep-snapshot"],
      force = r.flags.force })
    if not ok and err.sym == "CORRUPT" then err = tostring(err) .. " (--force removes it)" end
    if not ok then
      io.stderr:write(("ctrlua: failed to delete container %q: %s\n"):format(id, tostring(err)))
      first = first or err
    end
  end
  if first then os.exit(1) end
end

function commands.label(r)
  if #r.args < 1 then fail("container id must be provided: invalid argument") end
  local c, err = ctr.containers.load(client(), r.args[1])
  if not c then fail(err) end
  local want = cli.label_args({ select(2, unpack(r.args)) })
  local labels
  labels, err = c:set_labels(want)
  if not labels then fail(err) end
  local keys = {}
  for k in pairs(labels) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. labels[k] end
  io.write(table.concat(parts, ","), "\n")
end

local aliases = { ls = "list", list = "list", info = "info", delete = "delete", del = "delete",
  remove = "delete", rm = "delete", label = "label" }

local function usage()
  io.write([[
NAME:
   ctrlua containers - manage containers

USAGE:
   ctrlua containers command [command options] [arguments...]

COMMANDS:
   delete, del, remove, rm  delete one or more existing containers
   info                     get info about a container
   list, ls                 list containers
   label                    set and clear labels for a container

OPTIONS:
   --help, -h  show help
]])
end

local argv = arg or {}
local sub = argv[1]
if sub == nil or sub == "-h" or sub == "--help" or sub == "help" then
  usage()
  os.exit(sub == nil and 1 or 0)
end
local name = aliases[sub]
if not name then
  io.stderr:write(("ctrlua: containers: no such command %q\n"):format(sub))
  usage()
  os.exit(1)
end
local rest = {}
for i = 2, #argv do rest[#rest + 1] = argv[i] end
local r = cli.parse_or_exit(defs[name], rest)
commands[name](r)
