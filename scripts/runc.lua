-- runc: a runc-compatible command line over ctrlua's runtime (run as `ctrlua-runc`)
--
-- ctrlua-runc [global options] COMMAND [command options] [arguments...]
-- The global options, commands, flags, output and exit codes are runc's, so that containerd's
-- shim (and through it Kubernetes) can use it as its runtime binary.
local runc = require("ctr.cmd.runc")

local PROG = "ctrlua-runc"

local GLOBAL = {
  root = "string", log = "string", ["log-format"] = "string", debug = "bool",
  ["systemd-cgroup"] = "bool", criu = "string", rootless = "string", help = "bool",
  version = "bool", h = "help", v = "version",
}

local BUNDLE = { bundle = "string", b = "bundle", ["console-socket"] = "string",
  ["pid-file"] = "string", ["no-pivot"] = "bool", ["no-new-keyring"] = "bool",
  ["preserve-fds"] = "string", help = "bool", h = "help" }

local COMMANDS = {
  create = { usage = "create [command options] <container-id>", desc = "create a container",
    flags = BUNDLE },
  run = { usage = "run [command options] <container-id>", desc = "create and run a container",
    flags = setmetatable({ detach = "bool", d = "detach", keep = "bool",
      ["no-subreaper"] = "bool" }, { __index = BUNDLE }) },
  start = { usage = "start <container-id>",
    desc = "executes the user defined process in a created container", flags = {} },
  state = { usage = "state <container-id>", desc = "output the state of a container",
    flags = {} },
  kill = { usage = "kill [command options] <container-id> [signal]",
    desc = "kill sends the specified signal (default: SIGTERM) to the container's init process",
    flags = { all = "bool", a = "all" } },
  delete = { usage = "delete [command options] <container-id>",
    desc = "delete any resources held by the container often used with detached container",
    flags = { force = "bool", f = "force" } },
  list = { usage = "list [command options]",
    desc = "lists containers started by runc with the given root",
    flags = { format = "string", f = "format", quiet = "bool", q = "quiet" } },
  ps = { usage = "ps [command options] <container-id> [ps options]",
    desc = "ps displays the processes running inside a container",
    flags = { format = "string", f = "format", help = "bool", h = "help" }, stop_after_id = true },
  exec = { usage = "exec [command options] <container-id> <command> [command options]",
    desc = "execute new process inside the container",
    flags = { ["console-socket"] = "string", cwd = "string", env = "multi", e = "env",
      tty = "bool", t = "tty", user = "string", u = "user", ["additional-gids"] = "multi",
      g = "additional-gids", process = "string", p = "process", detach = "bool", d = "detach",
      ["pid-file"] = "string", ["process-label"] = "string", apparmor = "string",
      ["no-new-privs"] = "bool", cap = "multi", c = "cap", ["preserve-fds"] = "string",
      cgroup = "multi", ["ignore-paused"] = "bool" },
    stop_after_id = true },
  pause = { usage = "pause <container-id>",
    desc = "pause suspends all processes inside the container", flags = {} },
  resume = { usage = "resume <container-id>",
    desc = "resumes all processes that have been previously paused", flags = {} },
  events = { usage = "events [command options] <container-id>",
    desc = "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    flags = { interval = "string", stats = "bool", help = "bool", h = "help" },
    options = [[
   --interval value  set the stats collection interval (a Go duration: 5s, 500ms) (default: 5s)
   --stats           display the container's stats then exit
]] },
  features = { usage = "features", desc = "show the enabled features", flags = {} },
  spec = { usage = "spec [command options]", desc = "create a new specification file",
    flags = { bundle = "string", b = "bundle", rootless = "bool" } },
  checkpoint = { usage = "checkpoint [command options] <container-id>",
    desc = "checkpoint a running container (not supported: an error)",
    flags = { ["image-path"] = "string", ["work-path"] = "string", ["parent-path"] = "string",
      ["leave-running"] = "bool", ["tcp-established"] = "bool", ["ext-unix-sk"] = "bool",
      ["shell-job"] = "bool", ["lazy-pages"] = "bool", ["status-fd"] = "string",
      ["page-server"] = "string", ["file-locks"] = "bool", ["pre-dump"] = "bool",
      ["manage-cgroups-mode"] = "string", ["empty-ns"] = "multi", ["auto-dedup"] = "bool" } },
  restore = { usage = "restore [command options] <container-id>",
    desc = "restore a container from a previous checkpoint (not supported: an error)",
    flags = setmetatable({ ["image-path"] = "string", ["work-path"] = "string",
      ["tcp-established"] = "bool", ["ext-unix-sk"] = "bool", ["shell-job"] = "bool",
      ["file-locks"] = "bool", ["manage-cgroups-mode"] = "string", detach = "bool",
      d = "detach", ["no-subreaper"] = "bool", ["empty-ns"] = "multi", ["auto-dedup"] = "bool",
      ["lazy-pages"] = "bool", ["lsm-profile"] = "string", ["lsm-mount-context"] = "string" },
      { __index = BUNDLE }) },
  update = { usage = "update [command options] <container-id>",
    desc = "update container resource constraints",
    flags = { resources = "string", r = "resources", ["blkio-weight"] = "string",
      ["cpu-period"] = "string", ["cpu-quota"] = "string", ["cpu-share"] = "string",
      ["cpu-rt-period"] = "string", ["cpu-rt-runtime"] = "string", ["cpuset-cpus"] = "string",
      ["cpuset-mems"] = "string", memory = "string", ["memory-reservation"] = "string",
      ["memory-swap"] = "string", ["pids-limit"] = "string", ["l3-cache-schema"] = "string",
      ["mem-bw-schema"] = "string", help = "bool", h = "help" },
    options = [[
   --resources value, -r value  path to the file containing the resources to update or '-' to
                                read from the standard input (a LinuxResources JSON: memory
                                limit, reservation, swap; cpu shares, quota, period,
                                realtimeRuntime, realtimePeriod, cpus, mems; blockIO weight;
                                pids limit; unified); all other options are then ignored
   --blkio-weight value         Specifies per cgroup weight, range is from 10 to 1000
   --cpu-period value           CPU CFS period to be used for hardcapping (in usecs)
   --cpu-quota value            CPU CFS hardcap limit (in usecs)
   --cpu-share value            CPU shares (relative weight vs. other containers)
   --cpu-rt-period value        CPU realtime period to be used for hardcapping (in usecs)
   --cpu-rt-runtime value       CPU realtime hardcap limit (in usecs)
   --cpuset-cpus value          CPU(s) to use
   --cpuset-mems value          Memory node(s) to use
   --memory value               Memory limit (in bytes, or 100M, 1g...; -1 unlimited)
   --memory-reservation value   Memory reservation or soft_limit (in bytes)
   --memory-swap value          Total memory usage (memory + swap); '-1' for unlimited swap
   --pids-limit value           Maximum number of pids allowed in the container
   --l3-cache-schema value      Intel RDT/CAT L3 cache schema (not supported: an error)
   --mem-bw-schema value        Intel RDT/MBA memory bandwidth schema (not supported: an error)
]] },
}

local ORDER = { "checkpoint", "create", "delete", "events", "exec", "features", "kill", "list", "pause", "ps",
  "restore", "resume", "run", "spec", "start", "state", "update" }

-- Parse flags as urfave/cli does (--name, -n, --name=value, --name value); positional
-- arguments may be interleaved, except after the id of a command with trailing arguments.
-- Returns flags, positional, or nil, message.
local function parse(defs, args, first, stop_at_first, stop_after_id)
  local flags, pos = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    end
    if a:sub(1, 1) == "-" and #a > 1 and not (stop_after_id and #pos >= 1) then
      local name, val = a:match("^%-%-?([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-?(.+)$") end
      local kind = defs[name]
      if type(kind) == "string" and defs[kind] then name, kind = kind, defs[kind] end
      if not kind then return nil, "flag provided but not defined: -" .. name end
      if kind == "bool" then
        flags[name] = val == nil or val == "true" or val == "1"
      else
        if val == nil then
          i = i + 1
          val = args[i]
          if val == nil then return nil, "flag needs an argument: -" .. name end
        end
        if kind == "multi" then
          flags[name] = flags[name] or {}
          table.insert(flags[name], val)
        else
          flags[name] = val
        end
      end
    else
      if stop_at_first then
        for j = i, #args do pos[#pos + 1] = args[j] end
        break
      end
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return flags, pos
end

local function usage(out)
  out:write(([[NAME:
   %s - Open Container Initiative runtime over ctrlua

USAGE:
   %s [global options] command [command options] [arguments...]

VERSION:
   %s
spec: %s

COMMANDS:
]]):format(PROG, PROG, runc.VERSION, runc.OCI_VERSION))
  for _, name in ipairs(ORDER) do
    out:write(("   %-10s  %s\n"):format(name, COMMANDS[name].desc))
  end
  out:write([[

GLOBAL OPTIONS:
   --debug             enable debug logging
   --log value         set the log file to write runtime logs to (default: stderr)
   --log-format value  set the log format ('text' (default), or 'json') (default: "text")
   --root value        root directory for storage of container state (default: "/run/ctrlua-runc")
   --systemd-cgroup    enable systemd cgroup support (not supported: create and run fail)
   --criu value        path to the criu binary used for checkpoint and restore (accepted;
                       checkpoint and restore are not supported)
   --help, -h          show help
   --version, -v       print the version
]])
end

local args = { ... }
local g, pos = parse(GLOBAL, args, 1, true)
if not g then
  io.stderr:write("Incorrect Usage. ", pos, "\n\n")
  usage(io.stderr)
  os.exit(1)
end
if g.version then
  io.stdout:write(("%s version %s\nspec: %s\n"):format(PROG, runc.VERSION, runc.OCI_VERSION))
  os.exit(0)
end
if g.help or #pos == 0 or pos[1] == "help" then
  if pos[1] == "help" and COMMANDS[pos[2] or ""] then
    io.stdout:write(("USAGE:\n   %s %s\n"):format(PROG, COMMANDS[pos[2]].usage))
  else
    usage(io.stdout)
  end
  os.exit(0)
end

local lf = g["log-format"] or "text"
if lf ~= "text" and lf ~= "json" then
  io.stderr:write(("invalid log-format: %s\n"):format(lf))
  os.exit(1)
end
local rt = runc.new({ root = g.root, log = g.log, log_format = lf, debug = g.debug })

-- runc's fatal(): the error goes to the log; to stderr as a plain line when the log is a file
local function die(err, code)
  local msg = tostring(err)
  rt:log("error", msg)
  if rt.log_file then io.stderr:write(msg, "\n") end
  os.exit(code or 1)
end

local cmdname = table.remove(pos, 1)
local cmd = COMMANDS[cmdname]
if not cmd then
  die(("No help topic for '%s'"):format(cmdname))
end

-- as runc: a failure of create or run is prefixed with the command (shims match the rest)
local function fail_prefix()
  if cmdname == "create" or cmdname == "run" then return "runc " .. cmdname .. " failed: " end
  return ""
end

-- as runc, --systemd-cgroup matters to the commands that make a cgroup; where systemd does
-- not run, runc's own words; where it does, ctrlua has no systemd driver
local function check_systemd()
  if not g["systemd-cgroup"] or (cmdname ~= "create" and cmdname ~= "run") then return end
  if not runc.systemd_running() then
    die(fail_prefix() .. "systemd not running on this host, cannot use systemd cgroups manager")
  end
  die(fail_prefix() .. "systemd cgroup driver (--systemd-cgroup) is not supported by " .. PROG ..
    "; use cgroupfs paths (containerd: SystemdCgroup = false)")
end
local rest = {}
for _, a in ipairs(pos) do rest[#rest + 1] = a end
local f, p = parse(cmd.flags, rest, 1, false, cmd.stop_after_id)
if not f then
  io.stderr:write("Incorrect Usage: ", p, "\n\n")
  io.stderr:write(("USAGE:\n   %s %s\n"):format(PROG, cmd.usage))
  die(p)
end
if f.help then
  io.stdout:write(("NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s\n"):format(PROG, cmdname,
    cmd.desc, PROG, cmd.usage))
  if cmd.options then io.stdout:write("\nOPTIONS:\n", cmd.options) end
  os.exit(0)
end

-- runc's checkArgs
local function want_args(n, exact)
  if (exact and #p ~= n) or (not exact and #p < n) then
    die(('"%s" requires %s %d argument(s)'):format(cmdname, exact and "exactly" or "a minimum of",
      n))
  end
end

-- a flag's value the flag parser refuses (urfave/cli: the usage, then the error)
local function usage_die(msg)
  io.stderr:write("Incorrect Usage: ", msg, "\n\n")
  io.stderr:write(("USAGE:\n   %s %s\n"):format(PROG, cmd.usage))
  die(msg)
end

local function ok_or_die(v, err)
  if v == nil then die(fail_prefix() .. tostring(err)) end
  return v
end

local function preserve_fds()
  if not f["preserve-fds"] then return 0 end
  local n = tonumber(f["preserve-fds"])
  if not n or n < 0 or n % 1 ~= 0 then die("invalid --preserve-fds: " .. f["preserve-fds"]) end
  return n
end

local function create_opts(detach)
  return { bundle = f.bundle, pid_file = f["pid-file"], console_socket = f["console-socket"],
    no_pivot = f["no-pivot"], no_new_keyring = f["no-new-keyring"],
    preserve_fds = preserve_fds(), detach = detach }
end

local function pad(s, w) return s .. (" "):rep(w - #s) end

check_systemd()

if cmdname == "create" then
  want_args(1, true)
  ok_or_die(runc.create(rt, p[1], create_opts(true)))
elseif cmdname == "run" then
  want_args(1, true)
  local o = create_opts(f.detach or false)
  local code = ok_or_die(runc.run(rt, p[1], o))
  os.exit(code)
elseif cmdname == "start" then
  want_args(1, true)
  ok_or_die(runc.start(rt, p[1]))
elseif cmdname == "state" then
  want_args(1, true)
  local st = ok_or_die(runc.state(rt, p[1]))
  -- as runc: json.MarshalIndent's text, its fields in runc's order, with no newline after
  io.stdout:write(runc.state_json(st, true))
elseif cmdname == "kill" then
  want_args(1, false)
  if #p > 2 then die('"kill" requires a maximum of 2 argument(s)') end
  ok_or_die(runc.kill(rt, p[1], p[2] or "SIGTERM", f.all))
elseif cmdname == "delete" then
  want_args(1, true)
  ok_or_die(runc.delete(rt, p[1], f.force))
elseif cmdname == "list" then
  want_args(0, true)
  local list = runc.list(rt)
  local format = f.format or "table"
  if f.quiet then
    for _, st in ipairs(list) do io.stdout:write(st.id, "\n") end
  elseif format == "json" then
    -- as runc's json.Encoder: an empty list is null
    local items = {}
    for i, st in ipairs(list) do items[i] = runc.state_json(st) end
    io.stdout:write(#list == 0 and "null" or "[" .. table.concat(items, ",") .. "]", "\n")
  elseif format == "table" then
    -- Go's tabwriter(minwidth 12, padding 3); the last column is not aligned
    local rows = { { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" } }
    for _, st in ipairs(list) do
      rows[#rows + 1] = { st.id, tostring(st.pid), st.status, st.bundle, st.created, st.owner }
    end
    local w = {}
    for c = 1, 5 do
      w[c] = 12
      for _, r in ipairs(rows) do w[c] = math.max(w[c], #r[c] + 3) end
    end
    for _, r in ipairs(rows) do
      local line = {}
      for c = 1, 5 do line[c] = pad(r[c], w[c]) end
      io.stdout:write(table.concat(line), r[6], "\n")
    end
  else
    die("invalid format option")
  end
elseif cmdname == "ps" then
  want_args(1, false)
  local pids = ok_or_die(runc.ps(rt, p[1]))
  local format = f.format or "table"
  if format == "json" then
    -- Go encodes an empty slice of pids as null
    if #pids == 0 then io.stdout:write("null\n")
    else io.stdout:write(require("ctr.json").encode(require("ctr.json").array(pids)), "\n") end
  elseif format == "table" then
    -- as runc: the host's ps (its arguments after the id; `--` before them is dropped by the
    -- parser), filtered to the container's pids
    local out = ok_or_die(runc.ps_output({ unpack(p, 2) }))
    io.stdout:write(ok_or_die(require("ctr.cmd.runc_update").ps_filter(out, pids)))
  else
    die("invalid format option")
  end
elseif cmdname == "exec" then
  -- as runc: every failure is "exec failed: ..." with exit code 255
  local function exec_die(err) die("exec failed: " .. tostring(err), 255) end
  if #p < 1 then exec_die("container id cannot be empty") end
  -- runc's Int64SliceFlag: a gid that is not a number is a usage error
  local gids
  for _, g in ipairs(f["additional-gids"] or {}) do
    local n = g:match("^[+-]?%d+$") and tonumber(g)
    if not n then
      die(('invalid value "%s" for flag -additional-gids: strconv.ParseInt: parsing "%s": ' ..
        'invalid syntax'):format(g, g))
    end
    gids = gids or {}
    gids[#gids + 1] = n
  end
  local a = {}
  for i = 2, #p do a[#a + 1] = p[i] end
  local process = { args = a, env = f.env, cwd = f.cwd, terminal = f.tty or false,
    noNewPrivileges = f["no-new-privs"], apparmorProfile = f.apparmor,
    selinuxLabel = f["process-label"], caps = f.cap, user = f.user, additionalGids = gids }
  local code, err = runc.exec(rt, p[1], { process = process, process_file = f.process,
    detach = f.detach, pid_file = f["pid-file"], console_socket = f["console-socket"],
    preserve_fds = preserve_fds(), ignore_paused = f["ignore-paused"], cgroup = f.cgroup })
  if not code then exec_die(err) end
  os.exit(code)
elseif cmdname == "pause" then
  want_args(1, true)
  ok_or_die(runc.pause(rt, p[1]))
elseif cmdname == "resume" then
  want_args(1, true)
  ok_or_die(runc.resume(rt, p[1]))
elseif cmdname == "events" then
  local json = require("ctr.json")
  local interval = 5
  if f.interval then
    interval = require("ctr.cmd.runc_update").parse_duration(f.interval)
    if not interval then
      usage_die(('invalid value "%s" for flag -interval: parse error'):format(f.interval))
    end
  end
  want_args(1, true)
  ok_or_die(runc.state(rt, p[1]))
  if interval <= 0 then die("duration interval must be greater than 0") end
  if f.stats then
    io.stdout:write(json.encode(ok_or_die(runc.stats(rt, p[1]))), "\n")
  else
    ok_or_die(runc.events(rt, p[1], interval, function(ev)
      local ok = io.stdout:write(json.encode(ev), "\n")
      return ok ~= nil and io.stdout:flush() ~= nil
    end))
  end
elseif cmdname == "features" then
  io.stdout:write(runc.json_indent(runc.features()), "\n")
elseif cmdname == "spec" then
  ok_or_die(runc.spec(f.bundle, f.rootless))
elseif cmdname == "update" then
  -- runc's order: the flags' syntax, the container, the values, Intel RDT, then the cgroup
  local RU = require("ctr.cmd.runc_update")
  -- the integer flags are checked by the flag parser, even when --resources wins over them
  local r, rerr = RU.from_flags(f)
  if not r and rerr.usage then usage_die(tostring(rerr)) end
  want_args(1, true)
  ok_or_die(runc.state(rt, p[1]))
  if f.resources and f.resources ~= "" then
    local text
    if f.resources == "-" then
      text = io.stdin:read("*a")
    else
      text = require("ctr.cmd.term").read_file(f.resources, 16777216)
      if not text then die("open " .. f.resources .. ": no such file or directory") end
    end
    r, rerr = RU.from_json(text or "")
  end
  if not r then die(rerr) end
  -- ctrlua has no resctrl support: as runc on a host without Intel RDT
  if (f["l3-cache-schema"] or "") ~= "" then
    die("Intel RDT/CAT: l3 cache schema is not enabled")
  end
  if (f["mem-bw-schema"] or "") ~= "" then
    die("Intel RDT/MBA: memory bandwidth schema is not enabled")
  end
  ok_or_die(runc.update(rt, p[1], r))
elseif cmdname == "checkpoint" or cmdname == "restore" then
  -- --criu is accepted (containerd passes it) and named here; the container is looked up
  -- first, so that a missing one is reported as runc reports it
  if cmdname == "checkpoint" then
    want_args(1, true)
    ok_or_die(runc.state(rt, p[1]))
  end
  die(("%s is not supported by %s (no CRIU support; --criu %s)"):format(cmdname, PROG,
    g.criu or "criu"))
end
os.exit(0)
