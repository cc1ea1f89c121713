-- snapshots: manage snapshots (prepare, view, commit, ls, tree, usage...) as `ctr snapshots`
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")
local format = require("ctr.cmd.format")
local json = require("ctr.json")

local KIND = { active = "Active", view = "View", committed = "Committed" }

-- the snapshotter named by the app's --snapshotter (default the client's: overlayfs)
local function snapshotter(ctx)
  local name = ctx.global.snapshotter
  if name == "" then name = nil end
  local c, err = ctr.client({ snapshotter = name })
  if not c then app.fail(err) end
  local sn
  sn, err = c:snapshotter(name)
  if not sn then app.fail(err) end
  return sn
end

local function print_mounts(target, mounts)
  for _, m in ipairs(mounts) do
    io.stdout:write(("mount -t %s %s %s -o %s\n"):format(m.type, m.source, target,
      table.concat(m.options or {}, ",")))
  end
end

-- containerd's mount.Mount as ctr's --mounts prints it (PrintAsJSON)
local function mounts_json(mounts)
  local out = {}
  for i, m in ipairs(mounts) do
    out[i] = json.ordered({ Type = m.type, Source = m.source, Options = json.array(m.options or {}) },
      { "Type", "Source", "Options" })
  end
  return assert(json.encode_indent(json.array(out)))
end

local function show_mounts(ctx, mounts)
  if ctx.flags.target ~= "" then print_mounts(ctx.flags.target, mounts) end
  if ctx.flags.mounts then io.stdout:write(mounts_json(mounts), "\n") end
  return true
end

-- The snapshots, with a warning for each record that cannot be read.
local function infos(sn)
  local list, bad = sn:list()
  app.warn(bad)
  return list
end

local function list(ctx)
  local rows = { { "KEY", "PARENT", "KIND" } }
  for _, info in ipairs(infos(snapshotter(ctx))) do
    rows[#rows + 1] = { info.name, info.parent or "", KIND[info.kind] or info.kind }
  end
  io.stdout:write(format.table(rows))
  return true
end

local function prepare(ctx)
  if #ctx.args < 1 or #ctx.args > 2 then return nil, "please provide a key and an optional parent" end
  local mounts, err = snapshotter(ctx):prepare(ctx.args[1], ctx.args[2])
  if not mounts then return nil, err end
  return show_mounts(ctx, mounts)
end

local function view(ctx)
  if #ctx.args < 1 or #ctx.args > 2 then return nil, "please provide a key and an optional parent" end
  local mounts, err = snapshotter(ctx):view(ctx.args[1], ctx.args[2])
  if not mounts then return nil, err end
  return show_mounts(ctx, mounts)
end

local function commit(ctx)
  if #ctx.args ~= 2 then return nil, "please provide a name and the key of an active snapshot" end
  return snapshotter(ctx):commit(ctx.args[1], ctx.args[2])
end

local function delete(ctx)
  if #ctx.args == 0 then return nil, "please provide at least one key to remove" end
  local sn = snapshotter(ctx)
  for _, key in ipairs(ctx.args) do
    local ok, err = sn:remove(key)
    if not ok then return nil, ("failed to remove %q: %s"):format(key, tostring(err)) end
  end
  return true
end

local function mounts(ctx)
  if #ctx.args ~= 2 then return nil, "please provide a target and a key" end
  local ms, err = snapshotter(ctx):mounts(ctx.args[2])
  if not ms then return nil, err end
  print_mounts(ctx.args[1], ms)
  return true
end

local function tree(ctx)
  local all = infos(snapshotter(ctx))
  local nodes, roots = {}, {}
  for _, info in ipairs(all) do nodes[info.name] = { name = info.name, children = {} } end
  for _, info in ipairs(all) do
    local p = info.parent and nodes[info.parent]
    if p then p.children[#p.children + 1] = info.name else roots[#roots + 1] = info.name end
  end
  local function show(name, level)
    local prefix = ("  "):rep(level)
    if level > 0 then prefix = prefix .. "\\_" end
    io.stdout:write(prefix, " ", name, "\n")
    for _, c in ipairs(nodes[name].children) do show(c, level + 1) end
  end
  for _, r in ipairs(roots) do show(r, 0) end
  return true
end

local function usage(ctx)
  local sn = snapshotter(ctx)
  local keys = ctx.args
  if #keys == 0 then
    for _, info in ipairs(infos(sn)) do keys[#keys + 1] = info.name end
  end
  local rows = { { "KEY", "SIZE", "INODES" } }
  for _, key in ipairs(keys) do
    local u, err = sn:usage(key)
    if not u then return nil, err end
    rows[#rows + 1] = { key, ctx.flags.b and ("%d"):format(u.size) or format.bytes(u.size),
      ("%d"):format(u.inodes) }
  end
  io.stdout:write(format.table(rows))
  return true
end

local function info(ctx)
  if #ctx.args ~= 1 then return nil, "please provide a key" end
  local i, err = snapshotter(ctx):stat(ctx.args[1])
  if not i then return nil, err end
  -- containerd's snapshots.Info, fields in its order, as `ctr snapshots info` prints it
  local out = json.ordered({ Kind = KIND[i.kind] or i.kind, Name = i.name, Parent = i.parent,
    Labels = next(i.labels or {}) and i.labels or nil, Created = i.created_at, Updated = i.updated_at },
    { "Kind", "Name", "Parent", "Labels", "Created", "Updated" })
  io.stdout:write(assert(json.encode_indent(out)), "\n")
  return true
end

-- ctr snapshots label: k=v sets, k= clears, a bare k means k=true; prints the labels after.
local function label(ctx)
  if #ctx.args < 1 then return nil, "please provide a key" end
  local sn = snapshotter(ctx)
  local key = ctx.args[1]
  local i, err = sn:stat(key)
  if not i then return nil, err end
  local labels = i.labels or {}
  if #ctx.args > 1 then
    for k, v in pairs(cli.label_args({ select(2, unpack(ctx.args)) })) do
      labels[k] = v ~= "" and v or nil
    end
    i, err = sn:update(key, { labels = labels })
    if not i then return nil, err end
    labels = i.labels or {}
  end
  local parts = {}
  for k, v in pairs(labels) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  io.stdout:write(table.concat(parts, ","), "\n")
  return true
end

local MOUNT_FLAGS = {
  { name = "target", aliases = { "t" }, type = "string", usage = "mount target path, will print mount, if provided" },
  { name = "mounts", type = "bool", usage = "Print out snapshot mounts as JSON" },
}

app.run({
  name = "snapshots", usage = "manage snapshots",
  flags = {
    { name = "snapshotter", type = "string", env = "CONTAINERD_SNAPSHOTTER",
      usage = "snapshotter name. Empty value stands for the default value." },
  },
  commands = {
    { name = "commit", usage = "commit an active snapshot into the provided name",
      usage_text = "ctrlua snapshots commit <key> <active>", action = commit },
    { name = "info", usage = "get info about a snapshot", usage_text = "ctrlua snapshots info <key>",
      action = info },
    { name = "list", aliases = { "ls" }, usage = "list snapshots", action = list },
    { name = "mounts", aliases = { "m", "mount" }, usage = "mount gets mount commands for the snapshots",
      usage_text = "ctrlua snapshots mounts <target> <key>", action = mounts },
    { name = "prepare", usage = "prepare a snapshot from a committed snapshot",
      args_usage = "[flags] <key> [<parent>]", flags = MOUNT_FLAGS, action = prepare },
    { name = "delete", aliases = { "del", "remove", "rm" }, usage = "remove snapshots",
      usage_text = "ctrlua snapshots delete <key> [<key>, ...]", action = delete },
    { name = "label", usage = "add labels to content",
      usage_text = "ctrlua snapshots label <name> [<label>=<value> ...]",
      description = "labels snapshots in the snapshotter", action = label },
    { name = "tree", usage = "display tree view of snapshot branches", action = tree },
    { name = "usage", usage = "usage snapshots", args_usage = "[flags] [<key>, ...]",
      flags = { { name = "b", type = "bool", usage = "display size in bytes" } }, action = usage },
    { name = "view", usage = "create a read-only snapshot from a committed snapshot",
      args_usage = "[flags] <key> [<parent>]", flags = MOUNT_FLAGS, action = view },
  },
}, { ... })
