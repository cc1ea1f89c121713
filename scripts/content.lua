-- content: list, read and remove blobs of the content store, as `ctr content`
local ctr = require("ctr")
local core = require("ctr.core") -- json_encode and now: output helpers only

local USAGE = [[
usage: ctrlua content.lua COMMAND [flags] [args]

commands:
  ls [-q] [--format json]   list blobs: DIGEST SIZE AGE
  get DIGEST                write a blob's bytes to standard output
  rm DIGEST...              remove blobs
]]

local function die(msg)
  io.stderr:write("ctrlua: ", tostring(msg), "\n")
  os.exit(1)
end

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

-- Docker's units.HumanDuration, as `ctr content ls` prints AGE
local function human_duration(d)
  local s = math.floor(d)
  if s < 1 then return "Less than a second" end
  if s == 1 then return "1 second" end
  if s < 60 then return s .. " seconds" end
  local m = math.floor(d / 60)
  if m == 1 then return "About a minute" end
  if m < 60 then return m .. " minutes" end
  local h = math.floor(d / 3600 + 0.5)
  if h == 1 then return "About an hour" end
  if h < 48 then return h .. " hours" end
  if h < 24 * 7 * 2 then return math.floor(h / 24) .. " days" end
  if h < 24 * 30 * 2 then return math.floor(h / 24 / 7) .. " weeks" end
  if h < 24 * 365 * 2 then return math.floor(h / 24 / 30) .. " months" end
  return math.floor(d / 3600 / 24 / 365) .. " years"
end

local function store_or_die()
  local c, err = ctr.client()
  if not c then die(err) end
  return c:content_store()
end

local cmds = {}

function cmds.ls(args)
  local f = parse(args, { q = "bool", quiet = "bool", format = "string" })
  local list = store_or_die():list()
  if f.q or f.quiet then
    for _, b in ipairs(list) do io.stdout:write(b.digest, "\n") end
    return
  end
  if f.format == "json" then
    local out = {}
    for i, b in ipairs(list) do
      out[i] = { digest = b.digest, size = b.size, created_at = b.created_at }
    end
    io.stdout:write(core.json_encode(core.json_array(out), true), "\n")
    return
  elseif f.format and f.format ~= "" and f.format ~= "table" then
    die("unknown format " .. f.format)
  end
  local now = core.now()
  local rows = { { "DIGEST", "SIZE", "AGE" } }
  for _, b in ipairs(list) do
    rows[#rows + 1] = { b.digest, bytes(b.size), human_duration(now - b.mtime) }
  end
  local w = {}
  for _, r in ipairs(rows) do
    for c, v in ipairs(r) do w[c] = math.max(w[c] or 0, #v) end
  end
  for _, r in ipairs(rows) do
    io.stdout:write(r[1], (" "):rep(w[1] - #r[1] + 1), r[2], (" "):rep(w[2] - #r[2] + 1), r[3], "\n")
  end
end

function cmds.get(args)
  local _, pos = parse(args, {})
  if #pos ~= 1 then die("get: expected one DIGEST") end
  local store = store_or_die()
  local path, err = store:path(pos[1])
  if not path then die(err) end
  local info
  info, err = store:info(pos[1])
  if not info then die(err) end
  local fh, msg = io.open(path, "rb")
  if not fh then die(msg) end
  while true do
    local chunk = fh:read(1024 * 1024)
    if not chunk then break end
    io.stdout:write(chunk)
  end
  fh:close()
end

function cmds.rm(args)
  local _, pos = parse(args, {})
  if #pos == 0 then die("rm: expected at least one DIGEST") end
  local store = store_or_die()
  local failed
  for _, d in ipairs(pos) do
    local ok, err = store:delete(d)
    if ok then
      io.stdout:write(d, "\n")
    else
      io.stderr:write("ctrlua: ", err.msg, "\n")
      failed = true
    end
  end
  if failed then os.exit(1) end
end

cmds.list = cmds.ls
cmds.delete = cmds.rm
cmds.remove = cmds.rm

local args = { ... }
local cmd = table.remove(args, 1)
if cmd == nil or cmd == "help" or cmd == "-h" or cmd == "--help" then
  io.stdout:write(USAGE)
  os.exit(cmd == nil and 1 or 0)
end
if not cmds[cmd] then die("content: unknown command " .. cmd) end
cmds[cmd](args)
