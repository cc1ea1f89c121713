-- images: manage images (import, ls, rm, tag, check, unpack) as `ctr images`
local ctr = require("ctr")
local core = require("ctr.core") -- isatty, json_encode: terminal and output helpers only
local images = require("ctr.images")

local USAGE = [[
usage: ctrlua images.lua COMMAND [flags] [args]

commands:
  import [--base-name B] [--platform P] [--all-platforms] [--no-unpack] FILE|-
  ls [-q] [--format json]
  rm REF...
  tag [--force] SRC DST
  check [REF...]
  unpack [--snapshotter S] [--platform P] REF
]]

local function die(msg)
  io.stderr:write("ctrlua: ", tostring(msg), "\n")
  os.exit(1)
end

-- Go-flag-like parsing: -f, --f, -f=v, --f v; flags anywhere before "--".
local function parse(args, spec)
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
      local kind = spec[name]
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

local UNITS = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" }
local function bytes(n)
  local f, i = n, 1
  while f >= 1024 and i < #UNITS do f, i = f / 1024, i + 1 end
  return ("%.1f %s"):format(f, UNITS[i])
end

-- tabwriter: columns padded to their widest cell plus one space
local function table_print(rows)
  local w = {}
  for _, r in ipairs(rows) do
    for c, v in ipairs(r) do w[c] = math.max(w[c] or 0, #v) end
  end
  for _, r in ipairs(rows) do
    local out = {}
    for c, v in ipairs(r) do
      out[#out + 1] = c < #r and v .. (" "):rep(w[c] - #v + 1) or v
    end
    io.stdout:write(table.concat(out), "\n")
  end
end

local function client_or_die(opts)
  local c, err = ctr.client(opts)
  if not c then die(err) end
  return c
end

local cmds = {}

function cmds.import(args)
  local f, pos = parse(args, { ["base-name"] = "string", platform = "string",
    ["all-platforms"] = "bool", ["no-unpack"] = "bool", ["index-name"] = "string",
    snapshotter = "string" })
  if #pos ~= 1 then die("import: expected one FILE (or - for standard input)") end
  local client = client_or_die({ snapshotter = f.snapshotter })
  local progress
  if core.isatty(2) then
    local last = 0
    progress = function(name, size)
      if name == nil then
        io.stderr:write("\r\27[K")
      else
        local t = core.monotime()
        if t - last > 0.05 then
          last = t
          local n = #name > 60 and "..." .. name:sub(-57) or name
          io.stderr:write("\r\27[K", n, " (", bytes(size or 0), ")")
        end
      end
      io.stderr:flush()
    end
  end
  local recs, notes = images.import(client, pos[1], {
    base_name = f["base-name"], platform = f.platform, all_platforms = f["all-platforms"],
    no_unpack = true, progress = progress,
  })
  if not recs then die(notes) end
  for _, n in ipairs(notes) do io.stderr:write("ctrlua: ", n, "\n") end
  if not f["no-unpack"] then
    for _, rec in ipairs(recs) do
      io.stdout:write(("unpacking %s (%s)..."):format(rec.name, rec.target.digest))
      io.stdout:flush()
      local ok, err = images.unpack(client, rec, { platform = f.platform })
      if ok then
        io.stdout:write("done\n")
      elseif err.sym == "NOT_AVAILABLE" or err.sym == "NOT_FOUND" then
        io.stdout:write("skipped: ", err.msg, "\n")
      else
        io.stdout:write("\n")
        die(err)
      end
    end
  end
end

function cmds.ls(args)
  local f = parse(args, { q = "bool", quiet = "bool", format = "string" })
  local client = client_or_die()
  local list = images.list(client)
  if f.q or f.quiet then
    for _, r in ipairs(list) do io.stdout:write(r.name, "\n") end
    return
  end
  if f.format == "json" then
    io.stdout:write(core.json_encode(core.json_array(list), true), "\n")
    return
  elseif f.format and f.format ~= "" and f.format ~= "table" then
    die("unknown format " .. f.format)
  end
  local rows = { { "REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS" } }
  for _, r in ipairs(list) do
    local size = images.size(client, r)
    local plats = images.platforms(client, r) or {}
    local labels = {}
    for k, v in pairs(r.labels or {}) do labels[#labels + 1] = k .. "=" .. tostring(v) end
    table.sort(labels)
    rows[#rows + 1] = { r.name, r.target.mediaType or "-", r.target.digest,
      size and bytes(size) or "-", #plats > 0 and table.concat(plats, ",") or "-",
      #labels > 0 and table.concat(labels, ",") or "-" }
  end
  table_print(rows)
end

function cmds.rm(args)
  local _, pos = parse(args, { sync = "bool" })
  if #pos == 0 then die("rm: expected at least one REF") end
  local client = client_or_die()
  local failed
  for _, ref in ipairs(pos) do
    local ok, err = images.delete(client, ref)
    if ok then
      io.stdout:write(ref, "\n")
    else
      io.stderr:write("ctrlua: ", err.msg, "\n")
      failed = true
    end
  end
  if failed then os.exit(1) end
end

function cmds.tag(args)
  local f, pos = parse(args, { force = "bool" })
  if #pos ~= 2 then die("tag: expected SRC and DST") end
  local client = client_or_die()
  local rec, err = images.tag(client, pos[1], pos[2], { force = f.force })
  if not rec then die(err) end
  io.stdout:write(rec.name, "\n")
end

function cmds.check(args)
  local f, pos = parse(args, { q = "bool", quiet = "bool", platform = "string" })
  local client = client_or_die()
  local refs = pos
  if #refs == 0 then
    for _, r in ipairs(images.list(client)) do refs[#refs + 1] = r.name end
  end
  local rows = { { "REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED" } }
  local failed
  for _, ref in ipairs(refs) do
    local res, err = images.check(client, ref, f.platform)
    if not res then
      io.stderr:write("ctrlua: ", err.msg, "\n")
      failed = true
    else
      local status = ("%s (%d/%d)"):format(res.complete and "complete" or "incomplete",
        res.present, res.required)
      local unpacked = images.is_unpacked(client, ref)
      rows[#rows + 1] = { res.name, res.target.mediaType or "-", res.target.digest, status,
        bytes(res.size) .. "/" .. bytes(res.total), unpacked == nil and "-" or tostring(unpacked) }
    end
  end
  if f.q or f.quiet then
    for i = 2, #rows do io.stdout:write(rows[i][1], "\n") end
  else
    table_print(rows)
  end
  if failed then os.exit(1) end
end

function cmds.unpack(args)
  local f, pos = parse(args, { snapshotter = "string", platform = "string" })
  if #pos ~= 1 then die("unpack: expected one REF") end
  local client = client_or_die({ snapshotter = f.snapshotter })
  local rec, err = images.get(client, pos[1])
  if not rec then die(err) end
  io.stdout:write(("unpacking %s (%s)..."):format(rec.name, rec.target.digest))
  io.stdout:flush()
  local ok, uerr = images.unpack(client, rec, { snapshotter = f.snapshotter, platform = f.platform })
  if not ok then
    io.stdout:write("\n")
    die(uerr)
  end
  io.stdout:write("done\n")
end

cmds.list = cmds.ls
cmds.remove = cmds.rm
cmds.delete = cmds.rm

local args = { ... }
local cmd = table.remove(args, 1)
if cmd == nil or cmd == "help" or cmd == "-h" or cmd == "--help" then
  io.stdout:write(USAGE)
  os.exit(cmd == nil and 1 or 0)
end
if not cmds[cmd] then die("images: unknown command " .. cmd) end
cmds[cmd](args)
