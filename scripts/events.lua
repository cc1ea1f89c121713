-- events: print the task events (create, start, exit, delete, ...) of the namespace; -f follows
local ctr = require("ctr")
local cli = require("ctr.cmd.cli")
local json = require("ctr.json")
local tasks = require("ctr.tasks")

local def = { name = "events", help_name = "ctrlua events.lua", usage = "display events",
  flags = {
    { name = "follow", aliases = { "f" }, type = "bool", usage = "wait for new events" },
    { name = "format", type = "string", usage = "output format: text or json" },
  } }
local r = cli.parse_or_exit(def, { ... })
local client, err = ctr.client()
if not client then
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(1)
end

local function show(line)
  if r.flags.format == "json" then
    io.write(line, "\n")
  else
    local ev = json.decode(line)
    if type(ev) == "table" then
      local extra = {}
      for _, k in ipairs({ "pid", "exit_status" }) do
        if ev[k] ~= nil then extra[#extra + 1] = ('"%s":%s'):format(k, tostring(ev[k])) end
      end
      io.write(("%s %s %s {\"container_id\":\"%s\"%s}\n"):format(ev.time or "", ev.namespace or "",
        ev.topic or "", ev.id or "", #extra > 0 and "," .. table.concat(extra, ",") or ""))
    end
  end
  io.stdout:flush()
end

-- where we are in the log (its rotations included: tasks.read_events)
local pos
local pending = ""
local function drain()
  local data, npos = tasks.read_events(client, pos)
  if not data then
    io.stderr:write("ctrlua: ", tostring(npos), "\n")
    os.exit(1)
  end
  pos = npos
  if data == "" then return end
  local chunk = pending .. data
  local last = 1
  for line, stop in chunk:gmatch("([^\n]*)\n()") do
    if line ~= "" then show(line) end
    last = stop
  end
  pending = chunk:sub(last)
end

if not r.flags.follow then
  drain()
  os.exit(0)
end
-- follow: the watch is set before the first read, so nothing appended in between is missed
local watch
watch, err = tasks.watch_events(client)
if not watch then
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(1)
end
drain()
while true do
  local ok, werr = watch:wait()
  if ok == nil then
    io.stderr:write("ctrlua: ", tostring(werr), "\n")
    os.exit(1)
  end
  drain()
end
