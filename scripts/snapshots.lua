-- snapshots: manage snapshots of a snapshotter, as `ctr snapshots`
local ctr = require("ctr")
local core = require("ctr.core") -- json_encode: output only

local USAGE = [[
usage: ctrlua snapshots.lua [--snapshotter S] COMMAND [flags] [args]

commands:
  ls                               list snapshots: KEY PARENT KIND
  prepare [--target T] KEY [PARENT] prepare an active snapshot (prints mount commands with --target)
  view [--target T] KEY PARENT     make a read-only view of a committed snapshot
  commit NAME KEY                  commit an active snapshot as NAME
  rm KEY...                        remove snapshots
  mounts TARGET KEY                print the mount commands of a snapshot for TARGET
  tree                             show the snapshots as a tree of parents
  usage [KEY...]                   disk usage: KEY SIZE INODES
  info KEY                         a snapshot's information as JSON
  label KEY [K=V...]               replace a snapshot's labels (an empty V drops a label)

every command takes --snapshotter S (default overlayfs): overlayfs or native
]]

local function die(msg)
  io.stderr:write("ctrlua: ", tostring(msg), "\n")
  os.exit(1)
end

local FLAGS = { snapshotter = "string", target = "string", t = "string", help = "bool", h = "bool" }

local function parse(args)
  local flags, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local name, val = a:match("^%-%-?([^=]+)=(.*)$")
      name = name or a:match("^%-%-?(.+)$")
      local kind = FLAGS[name]
      if kind == nil then die("flag provided but not defined: -" .. name) end
      if kind == "bool" then
        flags[name] = val == nil or val == "true" or val == "1"
      else
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then die("flag needs an argument: -" .. name) end
        end
        flags[name] = val
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return flags, pos
end

-- Go's text/tabwriter as ctr sets it up (minwidth 1, padding 1, spaces).
local function print_table(rows)
  local widths = {}
  for _, r in ipairs(rows) do
    for j = 1, #r - 1 do widths[j] = math.max(widths[j] or 0, #r[j]) end
  end
  for _, r in ipairs(rows) do
    local parts = {}
    for j = 1, #r - 1 do parts[j] = r[j] .. (" "):rep(widths[j] - #r[j] + 1) end
    parts[#r] = r[#r]
    io.write(table.concat(parts), "\n")
  end
end

local UNITS = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" }
local function bytes(n)
  local f, i = n, 1
  while f >= 1024 and i < #UNITS do f, i = f / 1024, i + 1 end
  return ("%.1f %s"):format(f, UNITS[i])
end

local KIND = { active = "Active", view = "View", committed = "Committed" }

local function print_mounts(target, mounts)
  for _, m in ipairs(mounts) do
    io.write(("mount -t %s %s %s -o %s\n"):format(m.type, m.source, target,
      table.concat(m.options or {}, ",")))
  end
end

local function need(pos, n, what)
  if #pos < n then die(what) end
end

local args = {}
for i = 1, #arg do args[i] = arg[i] end
local flags, pos = parse(args)
local cmd = table.remove(pos, 1)
if cmd == nil or cmd == "help" or flags.help or flags.h then
  io.write(USAGE)
  os.exit(cmd == nil and not (flags.help or flags.h) and 1 or 0)
end

local client, err = ctr.client({ snapshotter = flags.snapshotter })
if not client then die(err) end
local sn
sn, err = client:snapshotter(flags.snapshotter)
if not sn then die(err) end
local target = flags.target or flags.t

local function check(ok, e, ...)
  if ok == nil then die(e) end
  return ok, e, ...
end

if cmd == "ls" or cmd == "list" then
  local rows = { { "KEY", "PARENT", "KIND" } }
  for _, info in ipairs(sn:list()) do
    rows[#rows + 1] = { info.name, info.parent or "", KIND[info.kind] or info.kind }
  end
  print_table(rows)
elseif cmd == "prepare" then
  need(pos, 1, "prepare: please provide a key")
  local mounts = check(sn:prepare(pos[1], pos[2]))
  if target then print_mounts(target, mounts) end
elseif cmd == "view" then
  need(pos, 1, "view: please provide a key")
  local mounts = check(sn:view(pos[1], pos[2]))
  if target then print_mounts(target, mounts) end
elseif cmd == "commit" then
  need(pos, 2, "commit: please provide a name and a key")
  check(sn:commit(pos[1], pos[2]))
elseif cmd == "rm" or cmd == "remove" or cmd == "delete" or cmd == "del" then
  need(pos, 1, "rm: please provide at least one key")
  local failed = false
  for _, key in ipairs(pos) do
    local ok, e = sn:remove(key)
    if not ok then
      io.stderr:write("ctrlua: failed to remove ", key, ": ", tostring(e), "\n")
      failed = true
    end
  end
  if failed then os.exit(1) end
elseif cmd == "mounts" or cmd == "m" or cmd == "mount" then
  need(pos, 2, "mounts: please provide a target and a key")
  print_mounts(pos[1], check(sn:mounts(pos[2])))
elseif cmd == "tree" then
  local nodes, roots = {}, {}
  local infos = sn:list()
  for _, info in ipairs(infos) do nodes[info.name] = { name = info.name, children = {} } end
  for _, info in ipairs(infos) do
    local p = info.parent and nodes[info.parent]
    if p then p.children[#p.children + 1] = info.name else roots[#roots + 1] = info.name end
  end
  local function show(name, level)
    local prefix = ("  "):rep(level)
    if level > 0 then prefix = prefix .. "\\_" end
    io.write(prefix, " ", name, "\n")
    for _, c in ipairs(nodes[name].children) do show(c, level + 1) end
  end
  for _, r in ipairs(roots) do show(r, 0) end
elseif cmd == "usage" or cmd == "du" then
  local keys = pos
  if #keys == 0 then
    for _, info in ipairs(sn:list()) do keys[#keys + 1] = info.name end
  end
  local rows = { { "KEY", "SIZE", "INODES" } }
  for _, key in ipairs(keys) do
    local u = check(sn:usage(key))
    rows[#rows + 1] = { key, bytes(u.size), ("%d"):format(u.inodes) }
  end
  print_table(rows)
elseif cmd == "info" then
  need(pos, 1, "info: please provide a key")
  local info = check(sn:stat(pos[1]))
  -- the field names of containerd's snapshots.Info, as `ctr snapshots info` prints them
  local out = { Kind = KIND[info.kind], Name = info.name, Parent = info.parent,
    Created = info.created_at, Updated = info.updated_at }
  if next(info.labels) then out.Labels = info.labels end
  io.write(core.json_encode(out, true), "\n")
elseif cmd == "label" then
  need(pos, 1, "label: please provide a key")
  local info = check(sn:stat(pos[1]))
  local labels = info.labels
  for i = 2, #pos do
    local k, v = pos[i]:match("^([^=]+)=(.*)$")
    if not k then die("label: expected KEY=VALUE, got " .. pos[i]) end
    labels[k] = v ~= "" and v or nil
  end
  check(sn:update(pos[1], { labels = labels }))
  local names = {}
  for k, v in pairs(labels) do names[#names + 1] = k .. "=" .. v end
  table.sort(names)
  io.write("updated snapshot ", pos[1], table.concat(names, ",") ~= "" and (" with " .. table.concat(names, ",")) or "", "\n")
else
  die("unknown command " .. tostring(cmd) .. " (see ctrlua snapshots.lua help)")
end
