--- The OCI runtime spec, composed by SpecOpts (containerd's pkg/oci).
--
-- A spec is a plain Lua table shaped like config.json; arrays are marked with core.json_array so
-- that an empty array stays `[]` in JSON.  A SpecOpt is `function(ctx, client, container, spec)`
-- returning nothing (or true) on success and `nil, err` (a ctr.errors value) on failure.  Opts
-- never assume another opt ran first: they call ensure_process/ensure_linux/... themselves.
--
-- ctx is a table: `ctx.namespace` (the client's namespace when absent) and
-- `ctx.read_rootfs_file(path, cap)`, a function that returns the content of a file inside the
-- container's root filesystem (resolved inside that root, never on the host) or `nil, err`
-- (err.errno 2 / err.sym "ENOENT" or "NOT_FOUND" when the file is missing).  When ctx has no
-- reader and spec.root.path is absolute (the `--rootfs` case), files are read with
-- core.read_file_in_root.  Everything read from the rootfs is untrusted: /etc/passwd and
-- /etc/group are size-capped and parsed strictly (malformed lines are ignored, ids range-checked).
--
-- Deliberate differences from containerd 1.6 are marked "ctrlua:" in the comments below.
-- @module ctr.oci
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local function arr(t) return core.json_array(t or {}) end

--- The default PATH of a Linux container (containerd's defaultUnixEnv).
M.DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

--- The version written to spec.ociVersion (what containerd 1.6.20 vendors).
M.VERSION = "1.0.2-dev"

--- Largest uid or gid accepted from an image (containerd CVE-2024-40635: larger values wrapped
-- to 0 when narrowed to uint32/int32 along the way).
M.MAX_ID = 2147483647

--- Largest /etc/passwd or /etc/group read from an image.
M.MAX_USER_FILE = 4 * 1024 * 1024

--- Label keys and values are capped as containerd's labels.Validate does.
M.MAX_LABEL = 4096

local DEFAULT_CAPS = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

--- Capability names by number (linux/capability.h), as containerd's pkg/cap knows them.
M.KNOWN_CAPS = {
  [0] = "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
  "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
  "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
}

--- The device nodes runc creates in /dev when the spec lists none (libcontainer's
-- AllowedDevices); containerd's spec does not list them, the runtime adds them.  Data for the
-- runtime, in linux.devices form.
M.DEFAULT_DEVICE_NODES = {
  { path = "/dev/null", type = "c", major = 1, minor = 3, fileMode = 438, uid = 0, gid = 0 },
  { path = "/dev/zero", type = "c", major = 1, minor = 5, fileMode = 438, uid = 0, gid = 0 },
  { path = "/dev/full", type = "c", major = 1, minor = 7, fileMode = 438, uid = 0, gid = 0 },
  { path = "/dev/tty", type = "c", major = 5, minor = 0, fileMode = 438, uid = 0, gid = 0 },
  { path = "/dev/urandom", type = "c", major = 1, minor = 9, fileMode = 438, uid = 0, gid = 0 },
  { path = "/dev/random", type = "c", major = 1, minor = 8, fileMode = 438, uid = 0, gid = 0 },
}

-- ------------------------------------------------------------------ argument checks (raise)

local function check_type(v, want, what, level)
  if type(v) ~= want then
    error(("%s: expected %s, got %s"):format(what, want, type(v)), (level or 2) + 1)
  end
end

local function check_string_list(t, what, level)
  check_type(t, "table", what, (level or 2) + 1)
  for i, v in ipairs(t) do check_type(v, "string", ("%s[%d]"):format(what, i), (level or 2) + 1) end
end

local function copy_list(t)
  local out = {}
  for i, v in ipairs(t or {}) do out[i] = v end
  return arr(out)
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return setmetatable(out, getmetatable(v))
end
M.deep_copy = deep_copy

-- ------------------------------------------------------------------ ensure helpers

--- spec.process, created when absent (with user 0:0).
function M.ensure_process(spec)
  spec.process = spec.process or {}
  spec.process.user = spec.process.user or { uid = 0, gid = 0 }
  return spec.process
end

--- spec.root, created when absent.
function M.ensure_root(spec)
  spec.root = spec.root or {}
  return spec.root
end

--- spec.linux, created when absent.
function M.ensure_linux(spec)
  spec.linux = spec.linux or {}
  return spec.linux
end

--- spec.linux.resources, created when absent.
function M.ensure_resources(spec)
  local linux = M.ensure_linux(spec)
  linux.resources = linux.resources or {}
  return linux.resources
end

--- spec.process.capabilities, created when absent.
function M.ensure_capabilities(spec)
  local p = M.ensure_process(spec)
  p.capabilities = p.capabilities or {}
  return p.capabilities
end

local function ensure_namespaces(spec)
  local linux = M.ensure_linux(spec)
  linux.namespaces = linux.namespaces or arr()
  return linux.namespaces
end

local function ensure_mounts(spec)
  spec.mounts = spec.mounts or arr()
  return spec.mounts
end

local function ensure_env(spec)
  local p = M.ensure_process(spec)
  p.env = p.env or arr()
  return p.env
end

-- ------------------------------------------------------------------ compose and generate

--- One opt that applies each opt in order, stopping at the first error.
function M.compose(...)
  local opts = { n = select("#", ...), ... }
  for i = 1, opts.n do check_type(opts[i], "function", ("compose: opts[%d]"):format(i)) end
  return function(ctx, client, c, spec)
    return M.apply_opts(ctx, client, c, spec, unpack(opts, 1, opts.n))
  end
end

--- Apply opts to an existing spec in order; true, or nil, err from the first that fails.
function M.apply_opts(ctx, client, c, spec, ...)
  for i = 1, select("#", ...) do
    local o = select(i, ...)
    check_type(o, "function", ("opts[%d]"):format(i))
    local ok, err = o(ctx, client, c, spec)
    if ok == nil and err ~= nil or ok == false then
      if not errors.is_error(err) then err = errors.new(tostring(err or "spec option failed")) end
      return nil, err
    end
  end
  return true
end

local function namespace_of(ctx, client)
  local ns = ctx and ctx.namespace or client and client.namespace
  if ns == nil or ns == "" then return nil, errors.new("namespace is required: failed precondition", 0, "FAILED_PRECONDITION") end
  return ns
end

local function default_mounts()
  local function m(dest, typ, src, opts) return { destination = dest, type = typ, source = src, options = arr(opts) } end
  return arr({
    m("/proc", "proc", "proc", { "nosuid", "noexec", "nodev" }),
    m("/dev", "tmpfs", "tmpfs", { "nosuid", "strictatime", "mode=755", "size=65536k" }),
    m("/dev/pts", "devpts", "devpts", { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" }),
    m("/dev/shm", "tmpfs", "shm", { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" }),
    m("/dev/mqueue", "mqueue", "mqueue", { "nosuid", "noexec", "nodev" }),
    m("/sys", "sysfs", "sysfs", { "nosuid", "noexec", "nodev", "ro" }),
    m("/run", "tmpfs", "tmpfs", { "nosuid", "strictatime", "mode=755", "size=65536k" }),
  })
end

--- The default Linux spec of containerd 1.6 (populateDefaultUnixSpec) for a namespace and a
-- container id: `ctr oci spec` prints the same with an empty id.  process.args, process.env and
-- process.terminal are absent (Go omits them while empty/false) until opts fill them.
-- ctrlua: no seccomp profile by default, as containerd 1.6 (`--seccomp` adds it).
function M.default_spec(namespace, id)
  check_type(namespace, "string", "namespace")
  if id ~= nil then check_type(id, "string", "id") end
  local cgroup = "/" .. namespace
  if id and id ~= "" then cgroup = cgroup .. "/" .. id end
  return {
    ociVersion = M.VERSION,
    process = {
      user = { uid = 0, gid = 0 },
      cwd = "/",
      capabilities = {
        bounding = copy_list(DEFAULT_CAPS),
        effective = copy_list(DEFAULT_CAPS),
        permitted = copy_list(DEFAULT_CAPS),
      },
      rlimits = arr({ { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 } }),
      noNewPrivileges = true,
    },
    root = { path = "rootfs" },
    mounts = default_mounts(),
    linux = {
      resources = { devices = arr({ { allow = false, access = "rwm" } }) },
      cgroupsPath = cgroup,
      namespaces = arr({ { type = "pid" }, { type = "ipc" }, { type = "uts" }, { type = "mount" },
        { type = "network" } }),
      maskedPaths = arr({ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/sys/firmware", "/proc/scsi" }),
      readonlyPaths = arr({ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" }),
    },
  }
end

local function replace_contents(dst, src)
  for k in pairs(dst) do dst[k] = nil end
  for k, v in pairs(src) do dst[k] = v end
end

--- Replace the spec with the default one (namespace from ctx, id from the container).
function M.with_default_spec()
  return function(ctx, client, c, spec)
    local ns, err = namespace_of(ctx, client)
    if not ns then return nil, err end
    replace_contents(spec, M.default_spec(ns, c and c.id or ""))
  end
end

--- A spec: the default one, then opts in order.  spec or nil, err.
function M.generate_spec(ctx, client, c, ...)
  local spec = {}
  local ok, err = M.apply_opts(ctx, client, c, spec, M.with_default_spec(), ...)
  if not ok then return nil, err end
  return spec
end

--- Replace the spec with one decoded from JSON text (`ctr run --config`).
function M.with_spec_from_bytes(data)
  check_type(data, "string", "data")
  return function(_, _, _, spec)
    local t, jerr = core.json_decode(data)
    if type(t) ~= "table" then
      return nil, errors.invalid("decoding spec config file failed, current supported OCI runtime-spec : v%s: %s",
        M.VERSION, jerr or "not an object")
    end
    replace_contents(spec, t)
  end
end

--- Replace the spec with the one in a JSON file.
function M.with_spec_from_file(path)
  check_type(path, "string", "path")
  return function(ctx, client, c, spec)
    local data, err = sys.read_file(path, 16 * 1024 * 1024)
    if not data then return nil, errors.wrap(err, "cannot load spec config file") end
    return M.with_spec_from_bytes(data)(ctx, client, c, spec)
  end
end

-- ------------------------------------------------------------------ environment

local function env_key(e)
  local k = e:match("^([^=]*)=")
  return k, k ~= nil
end

--- containerd's replaceOrAppendEnvValues: overrides replace a default of the same key or are
-- appended; an override without "=" removes the key.
function M.replace_or_append_env(defaults, overrides)
  local results, index = {}, {}
  for i, e in ipairs(defaults or {}) do
    results[i] = e
    index[e:match("^([^=]*)") or e] = i
  end
  for _, v in ipairs(overrides or {}) do
    local k, has = env_key(v)
    if not has then
      if index[v] then results[index[v]] = false end
    elseif index[k] then
      results[index[k]] = v
    else
      results[#results + 1] = v
      -- ctrlua: containerd 1.6 does not index appended values, so a later override of the same
      -- key appends a duplicate; we replace it instead (the last one wins either way).
      index[k] = #results
    end
  end
  local out = {}
  for _, e in ipairs(results) do if e then out[#out + 1] = e end end
  return arr(out)
end

--- Set environment variables: "KEY=V" replaces KEY or appends; "KEY" alone unsets KEY.
function M.with_env(list)
  check_string_list(list, "env")
  return function(_, _, _, spec)
    if #list == 0 then return end
    local p = M.ensure_process(spec)
    p.env = M.replace_or_append_env(p.env, list)
  end
end

--- Parse env-file text into a list for with_env.  ctrlua: blank lines and lines whose first
-- non-blank character is "#" are skipped (containerd 1.6 passes every line through, so a
-- comment containing "=" became a variable); "\r" before a line end is dropped (as Go's
-- bufio.Scanner does).  A line without "=" unsets that variable, as ctr does (ctr does not take
-- it from the host environment as docker does).
function M.parse_env_file(text)
  check_type(text, "string", "text")
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line:match("%S") and not line:match("^%s*#") then out[#out + 1] = line end
  end
  return out
end

--- Read environment variables from a host file (`--env-file`); see parse_env_file.
function M.with_env_file(path)
  check_type(path, "string", "path")
  return function(ctx, client, c, spec)
    local data, err = sys.read_file(path, 1024 * 1024)
    if not data then return nil, err end
    return M.with_env(M.parse_env_file(data))(ctx, client, c, spec)
  end
end

--- Replace $PATH with the default one.
function M.with_default_path_env(_, _, _, spec)
  local p = M.ensure_process(spec)
  p.env = M.replace_or_append_env(p.env, { M.DEFAULT_PATH_ENV })
end

-- ------------------------------------------------------------------ process

--- Replace the process arguments.
function M.with_process_args(...)
  local args = { ... }
  for i = 1, select("#", ...) do check_type(args[i], "string", ("args[%d]"):format(i)) end
  return function(_, _, _, spec)
    M.ensure_process(spec).args = copy_list(args)
  end
end

--- Set the working directory of the process.
function M.with_process_cwd(cwd)
  check_type(cwd, "string", "cwd")
  return function(_, _, _, spec) M.ensure_process(spec).cwd = cwd end
end

--- Allocate a terminal: process.terminal and TERM=xterm.
function M.with_tty(_, _, _, spec)
  local p = M.ensure_process(spec)
  p.terminal = true
  if spec.linux then
    local env = ensure_env(spec)
    env[#env + 1] = "TERM=xterm"
  end
end

--- Set the console size of a terminal.
function M.with_tty_size(width, height)
  check_type(width, "number", "width")
  check_type(height, "number", "height")
  return function(_, _, _, spec)
    M.ensure_process(spec).consoleSize = { width = width, height = height }
  end
end

--- Turn off no_new_privileges.
function M.with_new_privileges(_, _, _, spec) M.ensure_process(spec).noNewPrivileges = false end

--- Turn on no_new_privileges.
function M.with_no_new_privileges(_, _, _, spec) M.ensure_process(spec).noNewPrivileges = true end

--- Add or replace one rlimit, e.g. with_rlimit("RLIMIT_NOFILE", 4096, 4096).
function M.with_rlimit(typ, hard, soft)
  check_type(typ, "string", "type")
  check_type(hard, "number", "hard")
  check_type(soft, "number", "soft")
  return function(_, _, _, spec)
    local p = M.ensure_process(spec)
    p.rlimits = p.rlimits or arr()
    for _, r in ipairs(p.rlimits) do
      if r.type == typ then r.hard, r.soft = hard, soft return end
    end
    p.rlimits[#p.rlimits + 1] = { type = typ, hard = hard, soft = soft }
  end
end

-- ------------------------------------------------------------------ root, hostname, mounts, annotations

--- Set the container's hostname.
function M.with_hostname(name)
  check_type(name, "string", "hostname")
  return function(_, _, _, spec) spec.hostname = name end
end

--- Use an unmanaged root filesystem at path (`ctr run --rootfs`).
function M.with_rootfs_path(path)
  check_type(path, "string", "path")
  return function(_, _, _, spec) M.ensure_root(spec).path = path end
end

--- Mount the root filesystem read-only.
function M.with_rootfs_readonly()
  return function(_, _, _, spec) M.ensure_root(spec).readonly = true end
end

local function check_mount(m, what)
  check_type(m, "table", what, 3)
  check_type(m.destination, "string", what .. ".destination", 3)
  if m.type ~= nil then check_type(m.type, "string", what .. ".type", 3) end
  if m.source ~= nil then check_type(m.source, "string", what .. ".source", 3) end
  if m.options ~= nil then check_string_list(m.options, what .. ".options", 3) end
end

--- Append mounts ({destination=, type=, source=, options={...}}).
function M.with_mounts(list)
  check_type(list, "table", "mounts")
  for i, m in ipairs(list) do check_mount(m, ("mounts[%d]"):format(i)) end
  return function(_, _, _, spec)
    local mounts = ensure_mounts(spec)
    for _, m in ipairs(list) do
      local c = deep_copy(m)
      if c.options then c.options = copy_list(c.options) end
      mounts[#mounts + 1] = c
    end
  end
end

local function clean_path(p)
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." then parts[#parts] = nil elseif seg ~= "." then parts[#parts + 1] = seg end
  end
  local s = table.concat(parts, "/")
  if p:sub(1, 1) == "/" then return "/" .. s end
  return s == "" and "." or s
end

--- Remove the mounts whose (cleaned) destination is one of dests.
function M.without_mounts(...)
  local dests = { ... }
  for i = 1, select("#", ...) do check_type(dests[i], "string", ("dests[%d]"):format(i)) end
  return function(_, _, _, spec)
    local out = {}
    for _, m in ipairs(spec.mounts or {}) do
      local drop = false
      for _, d in ipairs(dests) do if clean_path(m.destination) == d then drop = true end end
      if not drop then out[#out + 1] = m end
    end
    spec.mounts = arr(out)
  end
end

local function host_file_mount(path)
  return function(_, _, _, spec)
    local mounts = ensure_mounts(spec)
    mounts[#mounts + 1] = { destination = path, type = "bind", source = path, options = arr({ "rbind", "ro" }) }
  end
end
--- Bind-mount the host's /etc/hosts read-only.
M.with_host_hosts_file = host_file_mount("/etc/hosts")
--- Bind-mount the host's /etc/resolv.conf read-only.
M.with_host_resolvconf = host_file_mount("/etc/resolv.conf")
--- Bind-mount the host's /etc/localtime read-only.
M.with_host_localtime = host_file_mount("/etc/localtime")

--- Set the size (in KiB) of the /dev/shm mount; nil, err when the spec has none.
function M.with_dev_shm_size(kb)
  check_type(kb, "number", "kb")
  return function(_, _, _, spec)
    for _, m in ipairs(spec.mounts or {}) do
      if clean_path(m.destination) == "/dev/shm" and m.source == "shm" and m.type == "tmpfs" then
        local opts = {}
        for _, o in ipairs(m.options or {}) do if not o:match("^size=") then opts[#opts + 1] = o end end
        opts[#opts + 1] = ("size=%dk"):format(kb)
        m.options = arr(opts)
        return
      end
    end
    return nil, errors.new("no /dev/shm mount specified", 0, "NOT_FOUND")
  end
end

--- Merge annotations into spec.annotations.
function M.with_annotations(t)
  check_type(t, "table", "annotations")
  for k, v in pairs(t) do
    check_type(k, "string", "annotations key")
    check_type(v, "string", ("annotations[%q]"):format(k))
  end
  return function(_, _, _, spec)
    spec.annotations = spec.annotations or {}
    for k, v in pairs(t) do spec.annotations[k] = v end
  end
end

-- ------------------------------------------------------------------ namespaces and cgroups

local NS_TYPES = { pid = true, network = true, mount = true, ipc = true, uts = true, user = true, cgroup = true, time = true }

--- Share a namespace with the host: remove it from linux.namespaces.
function M.with_host_namespace(ns)
  check_type(ns, "string", "namespace type")
  if not NS_TYPES[ns] then error(("namespace type: unknown %q"):format(ns), 2) end
  return function(_, _, _, spec)
    local list = ensure_namespaces(spec)
    for i, n in ipairs(list) do
      if n.type == ns then table.remove(list, i) return end
    end
  end
end

--- Use a namespace ({type=, path=}): replaces one of the same type or is appended.
function M.with_linux_namespace(ns)
  check_type(ns, "table", "namespace")
  check_type(ns.type, "string", "namespace.type")
  if not NS_TYPES[ns.type] then error(("namespace.type: unknown %q"):format(ns.type), 2) end
  if ns.path ~= nil then check_type(ns.path, "string", "namespace.path") end
  return function(_, _, _, spec)
    local list = ensure_namespaces(spec)
    local entry = { type = ns.type, path = ns.path }
    for i, n in ipairs(list) do
      if n.type == ns.type then list[i] = entry return end
    end
    list[#list + 1] = entry
  end
end

--- Run in a new user namespace with these id maps ({containerID=, hostID=, size=} each).
function M.with_user_namespace(uid_maps, gid_maps)
  check_type(uid_maps, "table", "uid_maps")
  check_type(gid_maps, "table", "gid_maps")
  return function(_, _, _, spec)
    local list = ensure_namespaces(spec)
    local has = false
    for _, n in ipairs(list) do if n.type == "user" then has = true end end
    if not has then list[#list + 1] = { type = "user" } end
    local linux = M.ensure_linux(spec)
    linux.uidMappings = linux.uidMappings or arr()
    linux.gidMappings = linux.gidMappings or arr()
    for _, m in ipairs(uid_maps) do linux.uidMappings[#linux.uidMappings + 1] = deep_copy(m) end
    for _, m in ipairs(gid_maps) do linux.gidMappings[#linux.gidMappings + 1] = deep_copy(m) end
  end
end

--- Set linux.cgroupsPath ("" disables the cgroup, as `ctr run --cgroup ""`).
function M.with_cgroup(path)
  check_type(path, "string", "cgroup path")
  return function(_, _, _, spec) M.ensure_linux(spec).cgroupsPath = path end
end

--- Set linux.cgroupsPath to /NAMESPACE/ID.
function M.with_namespaced_cgroup()
  return function(ctx, client, c, spec)
    local ns, err = namespace_of(ctx, client)
    if not ns then return nil, err end
    M.ensure_linux(spec).cgroupsPath = "/" .. ns .. "/" .. (c and c.id or "")
  end
end

--- Memory limit in bytes (linux.resources.memory.limit).
function M.with_memory_limit(bytes)
  check_type(bytes, "number", "memory limit")
  return function(_, _, _, spec)
    local r = M.ensure_resources(spec)
    r.memory = r.memory or {}
    r.memory.limit = bytes
  end
end

--- CFS quota and period (linux.resources.cpu.quota/period); quota -1 = unlimited.
function M.with_cpu_cfs(quota, period)
  check_type(quota, "number", "quota")
  check_type(period, "number", "period")
  return function(_, _, _, spec)
    local r = M.ensure_resources(spec)
    r.cpu = r.cpu or {}
    r.cpu.quota, r.cpu.period = quota, period
  end
end

--- `ctr run --cpus N`: quota N*100000 over a period of 100000.
function M.with_cpus(cpus)
  check_type(cpus, "number", "cpus")
  return M.with_cpu_cfs(math.floor(cpus * 100000), 100000)
end

--- CPU shares (linux.resources.cpu.shares).
function M.with_cpu_shares(shares)
  check_type(shares, "number", "shares")
  return function(_, _, _, spec)
    local r = M.ensure_resources(spec)
    r.cpu = r.cpu or {}
    r.cpu.shares = shares
  end
end

--- Maximum number of pids (linux.resources.pids.limit).
function M.with_pids_limit(limit)
  check_type(limit, "number", "pids limit")
  return function(_, _, _, spec)
    local r = M.ensure_resources(spec)
    r.pids = { limit = limit }
  end
end

--- Intel RDT class of service (containerd's WithRdt): linux.intelRdt.closID, with optional L3
-- cache and memory bandwidth schemata ("" or nil: none).
function M.with_rdt(closid, l3, mb)
  check_type(closid, "string", "closid")
  return function(_, _, _, spec)
    local rdt = { closID = closid }
    if l3 and l3 ~= "" then rdt.l3CacheSchema = l3 end
    if mb and mb ~= "" then rdt.memBwSchema = mb end
    M.ensure_linux(spec).intelRdt = rdt
  end
end

-- ------------------------------------------------------------------ devices

local function devcg(major, minor)
  return { allow = true, type = "c", major = major, minor = minor, access = "rwm" }
end

--- Allow the default Unix devices in the device cgroup (containerd's WithDefaultUnixDevices:
-- null, random, full, tty, zero, urandom, console, /dev/pts/*, ptmx).  As in containerd this
-- adds no linux.devices: the runtime creates the default nodes (see DEFAULT_DEVICE_NODES).
function M.with_default_unix_devices(_, _, _, spec)
  local r = M.ensure_resources(spec)
  r.devices = r.devices or arr()
  local pts = { allow = true, type = "c", major = 136, access = "rwm" }
  for _, d in ipairs({ devcg(1, 3), devcg(1, 8), devcg(1, 7), devcg(5, 0), devcg(1, 5),
      devcg(1, 9), devcg(5, 1), pts, devcg(5, 2) }) do
    r.devices[#r.devices + 1] = d
  end
end

--- Allow every device in the device cgroup (`--privileged`).
function M.with_all_devices_allowed(_, _, _, spec)
  M.ensure_resources(spec).devices = arr({ { allow = true, access = "rwm" } })
end

--- Inherit the parent cgroup's device rules (no linux.resources.devices).
function M.with_parent_cgroup_devices(_, _, _, spec)
  M.ensure_resources(spec).devices = nil
end

--- Append linux.devices entries ({path=, type=, major=, minor=, fileMode=, uid=, gid=}).
function M.with_linux_devices(list)
  check_type(list, "table", "devices")
  for i, d in ipairs(list) do
    check_type(d, "table", ("devices[%d]"):format(i))
    check_type(d.path, "string", ("devices[%d].path"):format(i))
    check_type(d.type, "string", ("devices[%d].type"):format(i))
  end
  return function(_, _, _, spec)
    local linux = M.ensure_linux(spec)
    linux.devices = linux.devices or arr()
    for _, d in ipairs(list) do linux.devices[#linux.devices + 1] = deep_copy(d) end
  end
end

-- The linux.devices entry of a host device node (containerd's DeviceFromPath), or nil when path
-- is not a char or block device (or a fifo); host paths are trusted (the caller names them).
local function device_from_path(path)
  local st = core.stat(path, false)
  if not st then return nil end
  local t = ({ char = "c", block = "b", fifo = "p" })[st.type]
  if not t then return nil end
  return { path = path, type = t, major = st.rdev_major, minor = st.rdev_minor,
    fileMode = st.mode % 512, uid = st.uid, gid = st.gid }
end
M.device_from_path = device_from_path

-- containerd's getDevices: a device node, or every node of a directory tree (skipping the
-- directories containerd skips, and symlinks, which are not devices).
local SKIP_DEV_DIRS = { pts = true, shm = true, fd = true, mqueue = true, [".lxc"] = true,
  [".lxd-mounts"] = true, [".udev"] = true }
local function get_devices(path, container_path, out, depth, top)
  local st, err = sys.stat(path, false)
  if not st then return nil, err end
  if st.type == "directory" then
    if depth > 16 then return out end
    local names, lerr = sys.listdir(path)
    if not names then return nil, lerr end
    table.sort(names)
    for _, n in ipairs(names) do
      if not SKIP_DEV_DIRS[n] then
        local sub = path .. "/" .. n
        local ok, err = get_devices(sub, container_path and (container_path .. "/" .. n), out, depth + 1, false)
        if not ok then return nil, err end
      end
    end
    return out
  end
  local d = device_from_path(path)
  if d then
    if container_path then d.path = container_path end
    out[#out + 1] = d
  elseif top then
    return nil, errors.invalid("error gathering device information while adding custom device %q: not a device node", path)
  end
  return out
end

--- Add the device node at path (or every node of the directory tree at path) to linux.devices
-- with the host's major/minor/mode/owner, and allow each in the device cgroup with
-- `permissions` (containerd's WithDevices; `ctr run --device`).
-- @param path a host device node or directory
-- @param[opt] container_path where it appears in the container (default: path)
-- @param[opt] permissions "rwm" by default
function M.with_devices(path, container_path, permissions)
  check_type(path, "string", "device path")
  if container_path == "" then container_path = nil end
  if container_path ~= nil then check_type(container_path, "string", "container path") end
  permissions = permissions or "rwm"
  return function(_, _, _, spec)
    local devs, err = get_devices(path, container_path, {}, 0, true)
    if not devs then return nil, err end
    local linux = M.ensure_linux(spec)
    linux.devices = linux.devices or arr()
    local r = M.ensure_resources(spec)
    r.devices = r.devices or arr()
    for _, d in ipairs(devs) do
      linux.devices[#linux.devices + 1] = d
      r.devices[#r.devices + 1] = { allow = true, type = d.type, major = d.major, minor = d.minor,
        access = permissions }
    end
  end
end

--- Every device node of the host's /dev in linux.devices (containerd's WithHostDevices, for
-- `--privileged`; the device cgroup is opened by with_all_devices_allowed).
function M.with_host_devices(_, _, _, spec)
  local devs, err = get_devices("/dev", nil, {}, 0, false)
  if not devs then return nil, err end
  local linux = M.ensure_linux(spec)
  linux.devices = linux.devices or arr()
  for _, d in ipairs(devs) do linux.devices[#linux.devices + 1] = d end
end

--- Set linux.rootfsPropagation (shared, slave, private, unbindable, or their r* forms).
function M.with_rootfs_propagation(p)
  check_type(p, "string", "propagation")
  return function(_, _, _, spec) M.ensure_linux(spec).rootfsPropagation = p end
end

--- Set linux.sysctl entries (merged).
function M.with_sysctls(t)
  check_type(t, "table", "sysctls")
  return function(_, _, _, spec)
    local linux = M.ensure_linux(spec)
    linux.sysctl = linux.sysctl or {}
    for k, v in pairs(t) do linux.sysctl[k] = v end
  end
end

--- Add a hook ({path=, args=, env=, timeout=}) of a kind (prestart, createRuntime,
-- createContainer, startContainer, poststart, poststop).
function M.with_hook(kind, hook)
  check_type(kind, "string", "kind")
  check_type(hook, "table", "hook")
  check_type(hook.path, "string", "hook.path")
  return function(_, _, _, spec)
    spec.hooks = spec.hooks or {}
    spec.hooks[kind] = spec.hooks[kind] or arr()
    local h = deep_copy(hook)
    if h.args then h.args = arr(h.args) end
    if h.env then h.env = arr(h.env) end
    table.insert(spec.hooks[kind], h)
  end
end

--- AppArmor with the default profile `name` (containerd's apparmor.WithDefaultProfile): the
-- host must have AppArmor; ctrlua does not generate and load profiles, so the profile must be
-- loaded already (apparmor_parser).  nil, err naming what is missing otherwise.
function M.with_apparmor_default_profile(name)
  check_type(name, "string", "profile name")
  return function(_, _, _, spec)
    local enabled = core.read_file("/sys/module/apparmor/parameters/enabled", 16)
    if not enabled or enabled:sub(1, 1) ~= "Y" then
      return nil, errors.new("apparmor is not supported on this host: /sys/module/apparmor/parameters/enabled is "
        .. (enabled and "not Y" or "missing (the kernel has no AppArmor)"), 95, "NOT_SUPPORTED")
    end
    local profiles = core.read_file("/sys/kernel/security/apparmor/profiles", 4 * 1024 * 1024) or ""
    local found = false
    for line in profiles:gmatch("[^\n]+") do
      if line:match("^(.-) %(") == name then found = true end
    end
    if not found then
      return nil, errors.new(("apparmor profile %q is not loaded (ctrlua does not generate profiles: load it with apparmor_parser)"):format(name), 2, "NOT_FOUND")
    end
    M.ensure_process(spec).apparmorProfile = name
  end
end

-- ------------------------------------------------------------------ capabilities and privileges

local function remove_value(list, v)
  local out = {}
  for _, x in ipairs(list or {}) do if x ~= v then out[#out + 1] = x end end
  return arr(out)
end

--- Set bounding, effective and permitted capabilities to caps.
function M.with_capabilities(caps)
  check_string_list(caps, "capabilities")
  return function(_, _, _, spec)
    local c = M.ensure_capabilities(spec)
    c.bounding, c.effective, c.permitted = copy_list(caps), copy_list(caps), copy_list(caps)
  end
end

--- Add capabilities to bounding, effective and permitted (`--cap-add`).
function M.with_added_capabilities(caps)
  check_string_list(caps, "capabilities")
  return function(_, _, _, spec)
    local c = M.ensure_capabilities(spec)
    for _, set in ipairs({ "bounding", "effective", "permitted" }) do
      c[set] = c[set] or arr()
      for _, cap in ipairs(caps) do
        local present = false
        for _, x in ipairs(c[set]) do if x == cap then present = true end end
        if not present then c[set][#c[set] + 1] = cap end
      end
    end
  end
end

--- Remove capabilities from bounding, effective and permitted (`--cap-drop`).
function M.with_dropped_capabilities(caps)
  check_string_list(caps, "capabilities")
  return function(_, _, _, spec)
    local c = M.ensure_capabilities(spec)
    for _, set in ipairs({ "bounding", "effective", "permitted" }) do
      for _, cap in ipairs(caps) do c[set] = remove_value(c[set], cap) end
    end
  end
end

--- Set inheritable and ambient capabilities (only for non-root users who know why).
function M.with_ambient_capabilities(caps)
  check_string_list(caps, "capabilities")
  return function(_, _, _, spec)
    local c = M.ensure_capabilities(spec)
    c.inheritable, c.ambient = copy_list(caps), copy_list(caps)
  end
end

--- Every capability this library knows.
function M.with_all_known_capabilities(ctx, client, c, spec)
  local caps = {}
  for i = 0, #M.KNOWN_CAPS do caps[#caps + 1] = M.KNOWN_CAPS[i] end
  return M.with_capabilities(caps)(ctx, client, c, spec)
end

--- Names of the capabilities in a CapEff-style hex mask (unknown bits are left out).
function M.caps_from_mask(hex)
  check_type(hex, "string", "mask")
  hex = ("0"):rep(16 - math.min(#hex, 16)) .. hex:sub(-16)
  local hi, lo = tonumber(hex:sub(1, 8), 16), tonumber(hex:sub(9, 16), 16)
  if not hi or not lo then return nil end
  local caps = {}
  for i = 0, #M.KNOWN_CAPS do
    local word, bit = lo, i
    if i >= 32 then word, bit = hi, i - 32 end
    if math.floor(word / 2 ^ bit) % 2 == 1 then caps[#caps + 1] = M.KNOWN_CAPS[i] end
  end
  return caps
end

--- The caller's effective capabilities (`--privileged`, containerd's WithAllCurrentCapabilities).
function M.with_all_current_capabilities(ctx, client, c, spec)
  local status, err = sys.read_file("/proc/self/status", 65536)
  if not status then return nil, err end
  local mask = status:match("\nCapEff:%s*(%x+)")
  local caps = mask and M.caps_from_mask(mask)
  if not caps then return nil, errors.new("/proc/self/status: no CapEff line") end
  return M.with_capabilities(caps)(ctx, client, c, spec)
end

--- Set linux.maskedPaths (nil clears).
function M.with_masked_paths(paths)
  if paths ~= nil then check_string_list(paths, "paths") end
  return function(_, _, _, spec) M.ensure_linux(spec).maskedPaths = paths and copy_list(paths) end
end

--- Set linux.readonlyPaths (nil clears).
function M.with_readonly_paths(paths)
  if paths ~= nil then check_string_list(paths, "paths") end
  return function(_, _, _, spec) M.ensure_linux(spec).readonlyPaths = paths and copy_list(paths) end
end

local function make_writable(fstype)
  return function(_, _, _, spec)
    for _, m in ipairs(spec.mounts or {}) do
      if m.type == fstype then
        for i, o in ipairs(m.options or {}) do if o == "ro" then m.options[i] = "rw" end end
      end
    end
  end
end
--- Make sysfs mounts writable.
M.with_writable_sysfs = make_writable("sysfs")
--- Make cgroup mounts writable.
M.with_writable_cgroupfs = make_writable("cgroup")

--- Set the SELinux label of the process ("" clears).
function M.with_selinux_label(label)
  check_type(label, "string", "label")
  return function(_, _, _, spec) M.ensure_process(spec).selinuxLabel = label ~= "" and label or nil end
end

--- Set the AppArmor profile of the process ("" clears).
function M.with_apparmor_profile(profile)
  check_type(profile, "string", "profile")
  return function(_, _, _, spec) M.ensure_process(spec).apparmorProfile = profile ~= "" and profile or nil end
end

--- Remove any seccomp profile.
function M.with_seccomp_unconfined(_, _, _, spec) M.ensure_linux(spec).seccomp = nil end

--- A privileged container (containerd's WithPrivileged): all current capabilities, no masked or
-- read-only paths, writable sysfs and cgroupfs, no LSM label, no seccomp.  `ctr run
-- --privileged` adds with_all_devices_allowed and host devices as well.
M.with_privileged = M.compose(
  M.with_all_current_capabilities,
  M.with_masked_paths(nil),
  M.with_readonly_paths(nil),
  M.with_writable_sysfs,
  M.with_writable_cgroupfs,
  M.with_selinux_label(""),
  M.with_apparmor_profile(""),
  M.with_seccomp_unconfined)

-- ------------------------------------------------------------------ users and groups (untrusted input)

local function is_missing(err)
  return type(err) == "table" and (err.sym == "ENOENT" or err.sym == "NOT_FOUND")
end

-- Read /etc/passwd or /etc/group of the container: content, or nil, err (missing: err.missing).
local function read_rootfs(ctx, spec, path)
  local data, err
  if ctx and type(ctx.read_rootfs_file) == "function" then
    data, err = ctx.read_rootfs_file(path, M.MAX_USER_FILE)
    if data == nil and not errors.is_error(err) then err = errors.new(tostring(err or ("read " .. path))) end
  elseif spec.root and type(spec.root.path) == "string" and spec.root.path:sub(1, 1) == "/" then
    data, err = sys.read_file_in_root(spec.root.path, path, M.MAX_USER_FILE)
  else
    return nil, errors.new(("read %s of the container: no rootfs reader (ctx.read_rootfs_file) and root.path is not absolute"):format(path),
      0, "FAILED_PRECONDITION")
  end
  if data == nil then return nil, err end
  if type(data) ~= "string" then return nil, errors.new(path .. ": rootfs reader returned no string") end
  if #data > M.MAX_USER_FILE then
    return nil, errors.new(("%s: size exceeds %d bytes"):format(path, M.MAX_USER_FILE), 27, "EFBIG")
  end
  return data
end

-- A decimal id, or nil when s is not a plain decimal number.
local function parse_id(s)
  if not s:match("^%d+$") or #s > 12 then return nil end
  return tonumber(s)
end

-- Parse a numeric user string part as Go's strconv.Atoi would accept it; returns the number, or
-- nil when s is not numeric (then it is a name).
local function atoi(s)
  if not s:match("^[+-]?%d+$") then return nil end
  return tonumber(s)
end

local function check_range(v, what, raw)
  if v < 0 or v > M.MAX_ID then
    return nil, errors.invalid("%s %q is out of range (0-%d)", what, raw, M.MAX_ID)
  end
  return v
end

-- s without its leading and trailing white space, in time linear in s: gsub("%s+$", "")
-- tries the pattern at every position of a run of blanks and scans the rest of it from each,
-- which a line of blanks in an image's /etc/passwd makes quadratic (hours for 4 MiB).
local function trim(s)
  local from = s:match("^%s*()")
  return from > #s and "" or s:match(".*%S", from)
end

-- The records of an /etc/passwd or /etc/group text: for each line that is not blank nor a
-- comment, its colon-separated fields.
local function colon_records(text)
  return coroutine.wrap(function()
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      line = trim(line)
      if line ~= "" and line:sub(1, 1) ~= "#" then
        local f = {}
        for field in (line .. ":"):gmatch("([^:]*):") do f[#f + 1] = field end
        coroutine.yield(f)
      end
    end
  end)
end

--- Parse /etc/passwd text: a list of {name=, uid=, gid=, home=, shell=}.  Malformed lines
-- (fewer than 4 fields, a uid or gid that is not a decimal number) are ignored; entries whose
-- uid or gid is beyond MAX_ID are kept with `out_of_range = true` so a match can be refused.
function M.parse_passwd(text)
  local out = {}
  for f in colon_records(text) do
    local uid, gid = parse_id(f[3] or ""), parse_id(f[4] or "")
    if #f >= 4 and f[1] ~= "" and uid and gid then
      out[#out + 1] = { name = f[1], uid = uid, gid = gid, home = f[6], shell = f[7],
        out_of_range = uid > M.MAX_ID or gid > M.MAX_ID }
    end
  end
  return out
end

--- Parse /etc/group text: a list of {name=, gid=, members={...}}; malformed lines ignored.
function M.parse_group(text)
  local out = {}
  for f in colon_records(text) do
    local gid = parse_id(f[3] or "")
    if #f >= 3 and f[1] ~= "" and gid then
      local members = {}
      for m in (f[4] or ""):gmatch("[^,]+") do
        m = trim(m)
        if m ~= "" then members[#members + 1] = m end
      end
      out[#out + 1] = { name = f[1], gid = gid, members = members, out_of_range = gid > M.MAX_ID }
    end
  end
  return out
end

-- First passwd entry matching pred; nil, err (sym NOT_FOUND "no users found") or the read error.
local function user_from_rootfs(ctx, spec, pred)
  local data, err = read_rootfs(ctx, spec, "/etc/passwd")
  if not data then return nil, err end
  for _, u in ipairs(M.parse_passwd(data)) do
    if pred(u) then
      if u.out_of_range then
        return nil, errors.invalid("/etc/passwd: user %q: uid %d or gid %d is out of range (0-%d)", u.name, u.uid, u.gid, M.MAX_ID)
      end
      return u
    end
  end
  return nil, errors.new("no users found", 0, "NOT_FOUND")
end

local function gid_from_rootfs(ctx, spec, name)
  local data, err = read_rootfs(ctx, spec, "/etc/group")
  if not data then return nil, err end
  for _, g in ipairs(M.parse_group(data)) do
    if g.name == name then
      if g.out_of_range then
        return nil, errors.invalid("/etc/group: group %q: gid %d is out of range (0-%d)", g.name, g.gid, M.MAX_ID)
      end
      return g.gid
    end
  end
  return nil, errors.new("no groups found", 0, "NOT_FOUND")
end

-- containerd's ensureAdditionalGids: the primary gid is always first among additionalGids
-- (containerd CVE-2023-25173: supplementary groups were otherwise not set up properly).
local function ensure_additional_gids(spec)
  local u = M.ensure_process(spec).user
  for _, g in ipairs(u.additionalGids or {}) do if g == u.gid then return end end
  local gids = { u.gid }
  for _, g in ipairs(u.additionalGids or {}) do gids[#gids + 1] = g end
  u.additionalGids = arr(gids)
end

local function set_ids(spec, uid, gid)
  local u = M.ensure_process(spec).user
  u.uid, u.gid = uid, gid
end

local function finish(spec, ok, err)
  ensure_additional_gids(spec)
  if ok == nil and err ~= nil then return nil, err end
  return true
end

--- Set uid and gid directly (range-checked).
function M.with_uidgid(uid, gid)
  check_type(uid, "number", "uid")
  check_type(gid, "number", "gid")
  return function(_, _, _, spec)
    local ok, err = check_range(uid, "uid", tostring(uid))
    if ok then ok, err = check_range(gid, "gid", tostring(gid)) end
    if not ok then return nil, err end
    M.ensure_process(spec).user.additionalGids = nil
    set_ids(spec, uid, gid)
    return finish(spec, true)
  end
end

--- Set the uid, and the gid from the image's /etc/passwd; without a passwd entry (or a passwd)
-- the gid is 0, as containerd does.
function M.with_user_id(uid)
  check_type(uid, "number", "uid")
  return function(ctx, _, _, spec)
    local ok, err = check_range(uid, "uid", tostring(uid))
    if not ok then return nil, err end
    M.ensure_process(spec).user.additionalGids = nil
    local u
    u, err = user_from_rootfs(ctx, spec, function(x) return x.uid == uid end)
    if u then
      set_ids(spec, u.uid, u.gid)
    elseif is_missing(err) then
      set_ids(spec, uid, 0)
      err = nil
    end
    return finish(spec, err == nil or nil, err)
  end
end

--- Set uid and gid from the image's /etc/passwd entry of a user name; an error when there is
-- no such user (or no /etc/passwd).
function M.with_username(name)
  check_type(name, "string", "username")
  return function(ctx, _, _, spec)
    M.ensure_process(spec).user.additionalGids = nil
    local u, err = user_from_rootfs(ctx, spec, function(x) return x.name == name end)
    if u then set_ids(spec, u.uid, u.gid) end
    if not u and err and err.sym == "NOT_FOUND" and err.msg == "no users found" then
      err = errors.not_found("no users found for %s", name)
    end
    return finish(spec, u and true, err)
  end
end

--- Set the user from an image USER string: "name", "uid", "name:group", "uid:gid", "uid:group",
-- "name:gid".  Names are looked up in the image's /etc/passwd and /etc/group; numbers are
-- range-checked (0..2^31-1) and an out-of-range value is an error naming it.
function M.with_user(userstr)
  check_type(userstr, "string", "user")
  return function(ctx, client, c, spec)
    M.ensure_process(spec).user.additionalGids = nil
    local parts = {}
    for p in (userstr .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
    if #parts == 1 then
      local v = atoi(parts[1])
      if v == nil then return M.with_username(userstr)(ctx, client, c, spec) end
      local ok, err = check_range(v, "uid", parts[1])
      if not ok then return finish(spec, nil, err) end
      return M.with_user_id(v)(ctx, client, c, spec)
    elseif #parts == 2 then
      local uid, gid = atoi(parts[1]), atoi(parts[2])
      local username = uid == nil and parts[1] or ""
      local groupname = gid == nil and parts[2] or ""
      local ok, err
      if uid then ok, err = check_range(uid, "uid", parts[1]) if not ok then return finish(spec, nil, err) end end
      if gid then ok, err = check_range(gid, "gid", parts[2]) if not ok then return finish(spec, nil, err) end end
      uid, gid = uid or 0, gid or 0
      if username ~= "" then
        local u
        u, err = user_from_rootfs(ctx, spec, function(x) return x.name == username end)
        if not u then return finish(spec, nil, err) end
        uid = u.uid
      end
      if groupname ~= "" then
        gid, err = gid_from_rootfs(ctx, spec, groupname)
        if not gid then return finish(spec, nil, err) end
      end
      set_ids(spec, uid, gid)
      return finish(spec, true)
    end
    return finish(spec, nil, errors.invalid("invalid USER value %s", userstr))
  end
end

--- Set additionalGids to the groups of /etc/group that list the user (a name, or a uid looked
-- up in /etc/passwd) as a member, after the primary gid.  Missing files are not an error.
function M.with_additional_gids(userstr)
  check_type(userstr, "string", "user")
  return function(ctx, _, _, spec)
    local user = M.ensure_process(spec).user
    user.additionalGids = nil
    local username = userstr
    local uid = atoi(userstr)
    if uid then
      local u, err = user_from_rootfs(ctx, spec, function(x) return x.uid == uid end)
      if not u then
        if is_missing(err) then return finish(spec, true) end
        return finish(spec, nil, err)
      end
      username = u.name
    end
    local data, err = read_rootfs(ctx, spec, "/etc/group")
    if not data then
      if is_missing(err) then return finish(spec, true) end
      return finish(spec, nil, err)
    end
    local gids = {}
    for _, g in ipairs(M.parse_group(data)) do
      if g.name ~= username then
        for _, m in ipairs(g.members) do
          if m == username then
            if g.out_of_range then
              return finish(spec, nil, errors.invalid("/etc/group: group %q: gid %d is out of range (0-%d)", g.name, g.gid, M.MAX_ID))
            end
            gids[#gids + 1] = g.gid
            break
          end
        end
      end
    end
    user.additionalGids = arr(gids)
    return finish(spec, true)
  end
end

-- ------------------------------------------------------------------ image config

local function image_config(image)
  check_type(image, "table", "image", 3)
  local cfg = image.config
  if type(cfg) == "function" then
    local doc, err = cfg(image)
    if doc == nil then return nil, err end
    cfg = doc
  end
  if type(cfg) ~= "table" then return nil, errors.invalid("image %q: no image config", tostring(image.name)) end
  local c = cfg.config
  if c == nil or c == core.null then c = {} end
  if type(c) ~= "table" then return nil, errors.invalid("image %q: config is not an object", tostring(image.name)) end
  return c
end
M.image_config = image_config

local function string_list(v, what)
  if v == nil or v == core.null then return {} end
  if type(v) ~= "table" then return nil, errors.invalid("image config %s: expected an array of strings", what) end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return nil, errors.invalid("image config %s[%d]: expected string", what, i) end
    out[i] = s
  end
  return out
end

local function opt_string(v, what)
  if v == nil or v == core.null then return "" end
  if type(v) ~= "string" then return nil, errors.invalid("image config %s: expected string", what) end
  return v
end

--- Configure the process from an image's config (containerd's WithImageConfigArgs): environment
-- (the image's Env, then the spec's own env over it), Entrypoint + (args or Cmd), WorkingDir
-- ("/" when empty), User, and additional gids.  image = {name=, config=<image config document>}
-- (config may also be a method returning the document).
-- ctrlua: when the image's Env has no PATH, the default PATH is put first (containerd 1.6 adds
-- it only when Env is empty altogether).
function M.with_image_config_args(image, args)
  check_type(image, "table", "image")
  if args ~= nil then check_string_list(args, "args") end
  return function(ctx, client, c, spec)
    local cfg, err = image_config(image)
    if not cfg then return nil, err end
    local env, entrypoint, cmd, cwd, user
    env, err = string_list(cfg.Env, "Env")
    if env then entrypoint, err = string_list(cfg.Entrypoint, "Entrypoint") end
    if entrypoint then cmd, err = string_list(cfg.Cmd, "Cmd") end
    if cmd then cwd, err = opt_string(cfg.WorkingDir, "WorkingDir") end
    if cwd then user, err = opt_string(cfg.User, "User") end
    if not user then return nil, err end

    local has_path = false
    for _, e in ipairs(env) do if e:match("^PATH=") then has_path = true end end
    if not has_path then table.insert(env, 1, M.DEFAULT_PATH_ENV) end

    local p = M.ensure_process(spec)
    p.env = M.replace_or_append_env(env, p.env)
    if args and #args > 0 then cmd = args end
    local full = {}
    for _, a in ipairs(entrypoint) do full[#full + 1] = a end
    for _, a in ipairs(cmd) do full[#full + 1] = a end
    p.args = arr(full)
    p.cwd = cwd ~= "" and cwd or "/"
    if user ~= "" then
      local ok
      ok, err = M.with_user(user)(ctx, client, c, spec)
      if not ok then return nil, err end
      return M.with_additional_gids(("%d"):format(p.user.uid))(ctx, client, c, spec)
    end
    -- as containerd: look up root's supplementary groups even when the image names no user
    return M.with_additional_gids("root")(ctx, client, c, spec)
  end
end

--- with_image_config_args(image) with the image's own Cmd.
function M.with_image_config(image) return M.with_image_config_args(image, nil) end

return M
