--- The `ctr run` composition: flags → container opts and spec opts → a container record, as
-- containerd's cmd/ctr/commands/run package does (NewContainer in run_unix.go).  scripts/run.lua
-- (the command) and `policy.lua check` (the dry run) share it, so what is checked is what runs.
-- @module ctr.cmd.run
local oci = require("ctr.oci")
local containers = require("ctr.containers")
local cli = require("ctr.cmd.cli")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- A phase timer: with CTRLUA_TRACE=1 in the environment, `phase(name)` prints the time since
-- the previous call and the Lua heap then as `phase NAME X ms heap Y KB` on stderr (the
-- benchmark reads these); otherwise it does nothing.  The first phase counts from the host's
-- start (ctr.host.started: the Lua state, the script's modules), when there is one.
function M.tracer()
  local core = require("ctr.core")
  if core.getenv("CTRLUA_TRACE") ~= "1" then return function() end end
  local ok, host = pcall(require, "ctr.host")
  local last = ok and type(host) == "table" and host.started or core.monotime()
  return function(name)
    local t = core.monotime()
    io.stderr:write(("phase %-10s %.3f ms heap %.0f KB\n"):format(name, (t - last) * 1000,
      collectgarbage("count")))
    last = t
  end
end

-- ctr run's flags: each flag's definition here, its effect in the option builders below
-- (a flag is a short walk: this file, then the SpecOpt in ctr.oci it calls).

local function F(name, typ, usage, extra)
  local f = { name = name, type = typ, usage = usage }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end
local S = { supported = true }

--- The flags of `ctr run` of containerd 1.6.20 (names, aliases, usage texts, defaults exactly as
-- `ctr run --help` prints them).  `supported = true` marks those run.lua implements; the others
-- answer "--X is not supported yet".
M.run_flags = {
  F("rm", "bool", "remove the container after running, cannot be used with --detach", S),
  F("null-io", "bool", "send all IO to /dev/null", S),
  F("log-uri", "string", "log uri", S),
  F("detach", "bool", "detach from the task after it has started execution, cannot be used with --rm", { aliases = { "d" }, supported = true }),
  F("fifo-dir", "string", "directory used for storing IO FIFOs", S),
  F("cgroup", "string", 'cgroup path (To disable use of cgroup, set to "" explicitly)', S),
  F("platform", "string", "run image for specific platform", S),
  F("cni", "bool", "enable cni networking for the container", S),
  F("runc-binary", "string", "specify runc-compatible binary", S),
  F("runc-root", "string", "specify runc-compatible root", S),
  F("runc-systemd-cgroup", "bool", "start runc with systemd cgroup manager", S),
  F("uidmap", "string", "run inside a user namespace with the specified UID mapping range; specified with the format `container-uid:host-uid:length`", S),
  F("gidmap", "string", "run inside a user namespace with the specified GID mapping range; specified with the format `container-gid:host-gid:length`", S),
  F("remap-labels", "bool", "provide the user namespace ID remapping to the snapshotter via label options; requires snapshotter support", S),
  F("cpus", "float", "set the CFS cpu quota", { value = 0.0, supported = true }),
  F("cpu-shares", "uint", "set the cpu shares", { value = 1024, supported = true }),
  F("snapshotter", "string", "snapshotter name. Empty value stands for the default value.", { env = "CONTAINERD_SNAPSHOTTER", supported = true }),
  F("snapshotter-label", "strings", "labels added to the new snapshot for this container.", S),
  F("config", "string", "path to the runtime-specific spec config file", { aliases = { "c" }, supported = true }),
  F("cwd", "string", "specify the working directory of the process", S),
  F("env", "strings", "specify additional container environment variables (e.g. FOO=bar)", S),
  F("env-file", "string", "specify additional container environment variables in a file(e.g. FOO=bar, one per line)", S),
  F("label", "strings", "specify additional labels (e.g. foo=bar)", S),
  F("annotation", "strings", "specify additional OCI annotations (e.g. foo=bar)", S),
  F("mount", "strings", "specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)", S),
  F("net-host", "bool", "enable host networking for the container", S),
  F("privileged", "bool", "run privileged container", S),
  F("read-only", "bool", "set the containers filesystem as readonly", S),
  F("runtime", "string", "runtime name", { value = "io.containerd.runc.v2", supported = true }),
  F("runtime-config-path", "string", "optional runtime config path", S),
  F("tty", "bool", "allocate a TTY for the container", { aliases = { "t" }, supported = true }),
  F("with-ns", "strings", "specify existing Linux namespaces to join at container runtime (format '<nstype>:<path>')", S),
  F("pid-file", "string", "file path to write the task's pid", S),
  F("gpus", "ints", "add gpus to the container", S),
  F("allow-new-privs", "bool", "turn off OCI spec's NoNewPrivileges feature flag", S),
  F("memory-limit", "uint64", "memory limit (in bytes) for the container", { value = 0, supported = true }),
  F("device", "strings", "file path to a device to add to the container; or a path to a directory tree of devices to add to the container", S),
  F("cap-add", "strings", "add Linux capabilities (Set capabilities with 'CAP_' prefix)", S),
  F("cap-drop", "strings", "drop Linux capabilities (Set capabilities with 'CAP_' prefix)", S),
  F("seccomp", "bool", "enable the default seccomp profile", S),
  F("seccomp-profile", "string", "file path to custom seccomp profile. seccomp must be set to true, before using seccomp-profile", S),
  F("apparmor-default-profile", "string", 'enable AppArmor with the default profile with the specified name, e.g. "cri-containerd.apparmor.d"', S),
  F("apparmor-profile", "string", "enable AppArmor with an existing custom profile", S),
  F("rdt-class", "string", "name of the RDT class to associate the container with. Specifies a Class of Service (CLOS) for cache and memory bandwidth management.", S),
  F("rootfs", "bool", "use custom rootfs that is not managed by containerd snapshotter", S),
  F("no-pivot", "bool", "disable use of pivot-root (linux only)", S),
  F("cpu-quota", "int64", "Limit CPU CFS quota", { value = -1, supported = true }),
  F("cpu-period", "uint64", "Limit CPU CFS period", { value = 0, supported = true }),
  F("rootfs-propagation", "string", "set the propagation of the container rootfs", S),
}

--- ctrlua's run flags that ctr has not (hidden from the help, which stays ctr's): where CNI
-- looks for its conflists and plugins.
M.run_extra_flags = {
  F("policy", "strings", "a site policy file applied to the spec after those in /etc/ctrlua/policy.d (repeatable)", { hidden = true, supported = true }),
  F("cni-conf-dir", "string", "directory of CNI network configurations (default /etc/cni/net.d)", { hidden = true, supported = true }),
  F("cni-bin-dir", "string", "directories of CNI plugins, ':'-separated (default /opt/cni/bin:/usr/lib/cni)", { hidden = true, supported = true }),
  -- pulling a missing image, with pull's registry flags
  F("pull", "string", "pull the image: missing (when not in the store), always, never", { hidden = true, supported = true, value = "missing" }),
  F("skip-verify", "bool", "skip SSL certificate validation", { aliases = { "k" }, hidden = true, supported = true }),
  F("plain-http", "bool", "allow connections using plain HTTP", { hidden = true, supported = true }),
  F("user", "string", "user[:password] Registry user and password", { aliases = { "u" }, hidden = true, supported = true }),
  F("refresh", "string", "refresh token for authorization server", { hidden = true, supported = true }),
  F("hosts-dir", "string", "Custom hosts configuration directory", { hidden = true, supported = true }),
  F("tlscacert", "string", "path to TLS root CA", { hidden = true, supported = true }),
  F("tlscert", "string", "path to TLS client certificate", { hidden = true, supported = true }),
  F("tlskey", "string", "path to TLS client key", { hidden = true, supported = true }),
  F("http-dump", "bool", "dump all HTTP request/responses when interacting with container registry", { hidden = true, supported = true }),
  F("http-trace", "bool", "enable HTTP tracing for registry interactions", { hidden = true, supported = true }),
}

--- ctr run's flags followed by ctrlua's extra ones (a new array).
function M.all_run_flags()
  local all = {}
  for _, f in ipairs(M.run_flags) do all[#all + 1] = f end
  for _, f in ipairs(M.run_extra_flags) do all[#all + 1] = f end
  return all
end

--- The definition of `ctr run` (flags above, skip_reorder as ctr).
function M.run_def(help_name)
  return {
    name = "run", help_name = help_name or "ctrlua run", usage = "run a container",
    args_usage = "[flags] Image|RootFS ID [COMMAND] [ARG...]",
    skip_reorder = true, flags = M.all_run_flags(),
  }
end

--- The definition of the run command's flags (M.run_flags and M.run_extra_flags).
function M.def(help_name) return M.run_def(help_name or "ctrlua run.lua") end

--- Check a parse result as ctr does, in ctr's order and words.
-- @param def the command definition (M.def())
-- @param r a ctr.cmd.cli parse result
-- @return `{ref=, id=, args={command...}}`, or nil, err
function M.validate(def, r)
  local f, args = r.flags, r.args
  local out = {}
  if f.config and f.config ~= "" then
    out.id = args[1]
    if #args > 1 then return nil, errors.invalid("with spec config file, only container id should be provided") end
    out.args = {}
  else
    out.ref, out.id = args[1], args[2]
    if out.ref == nil or out.ref == "" then return nil, errors.invalid("image ref must be provided") end
    out.args = { unpack(args, 3) }
  end
  if out.id == nil or out.id == "" then return nil, errors.invalid("container id must be provided") end
  if f.rm and f.detach then return nil, errors.invalid("flags --detach and --rm cannot be specified together") end
  local unsupported = cli.unsupported(def, r)
  if unsupported then return nil, errors.invalid("--%s is not supported yet", unsupported) end
  -- before anything exists (ctr finds out only once the container is made)
  if f["log-uri"] and f["log-uri"] ~= "" then
    local _, uerr = require("ctr.cio").parse_log_uri(f["log-uri"])
    if uerr then return nil, uerr end
  end
  out.set = r.set
  local err = containers.validate_id(out.id)
  if err then return nil, err end
  return out
end

--- Make sure the image of a run is in the store, as `--pull` says: "missing" (the default)
-- pulls it when neither the reference as given nor its normalised name (`alpine` →
-- docker.io/library/alpine:latest, as docker and nerdctl) is there, "always" pulls it, "never"
-- leaves the lookup to fail with ctr's words.  Sets v.ref to the name found or pulled, and
-- v.found_image to the record found, which M.opts then takes instead of reading it again.
-- opts.display: a progress display for the pull.
-- @return true, or nil, err
function M.ensure_image(client, f, v, opts)
  if (f.config and f.config ~= "") or f.rootfs then return true end
  local policy = f.pull or "missing"
  if policy ~= "missing" and policy ~= "always" and policy ~= "never" then
    return nil, errors.invalid("--pull: %q: expected missing, always or never", policy)
  end
  if policy == "never" then return true end
  local images = require("ctr.images")
  if policy == "missing" then
    -- only an image that is not there is missing: a record that cannot be read is an error
    -- of its own (the lookup reports it), never a reason to fetch over it
    local found, gerr = images.get(client, v.ref)
    if found then
      v.found_image = found -- M.opts uses it rather than read it again
      return true
    end
    if gerr and gerr.sym ~= "NOT_FOUND" then return nil, gerr end
    local norm = images.normalize_name(v.ref)
    if norm then
      found, gerr = images.get(client, norm)
      if found then
        v.ref = norm
        v.found_image = found
        return true
      end
      if gerr and gerr.sym ~= "NOT_FOUND" then return nil, gerr end
    end
  end
  local remotes = require("ctr.remotes")
  local ropts, err = remotes.registry_opts(f)
  if not ropts then return nil, err end
  ropts.platforms = (f.platform and f.platform ~= "") and { f.platform } or nil
  ropts.snapshotter = (f.snapshotter and f.snapshotter ~= "") and f.snapshotter or nil
  ropts.display = opts and opts.display
  local rec
  rec, err = client:pull(v.ref, ropts)
  if not rec then return nil, err end
  v.ref = rec.name
  return true
end

--- The spec opts and container opts for flags f and the validated positionals v.
-- @return copts, sopts (arrays), or nil, err
function M.opts(client, f, v, trace)
  local copts, sopts = {}, {}
  local function c(o) copts[#copts + 1] = o end
  local function s(o) sopts[#sopts + 1] = o end
  local platform = (f.platform and f.platform ~= "") and f.platform or nil

  if f.config and f.config ~= "" then
    s(oci.with_spec_from_file(f.config))
  else
    -- ctr's run_unix.go: WithDefaultSpec (generate_spec's base), then WithDefaultUnixDevices,
    -- the device cgroup's allow list for /dev/null, zero, full, random, urandom, tty, pts
    s(oci.with_default_unix_devices)
    if f.rootfs then
      s(oci.with_rootfs_path(v.ref))
    else
      local image, err = v.found_image, nil
      if not (image and image.name == v.ref) then image, err = client:get_image(v.ref) end
      if not image then return nil, err end
      local manifest, config = client:image_manifest(image, platform)
      if not manifest then return nil, config end
      image.config = config
      if trace then trace("image") end
      local snapshotter = (f.snapshotter and f.snapshotter ~= "") and f.snapshotter or client.snapshotter_name
      c(containers.with_image(image))
      c(containers.with_snapshotter(snapshotter))
      v.image = image -- isolation_opts: --uidmap/--gidmap prepare a remapped snapshot instead
      if (f.uidmap or "") == "" or (f.gidmap or "") == "" then
        c(containers.with_new_snapshot(v.id, image, { labels = cli.label_args(f["snapshotter-label"]),
          platform = platform }))
      end
      c(containers.with_image_stop_signal(image, "SIGTERM"))
      s(oci.with_image_config(image))
    end
    if #f.env > 0 then s(oci.with_env(f.env)) end
    if f["env-file"] and f["env-file"] ~= "" then s(oci.with_env_file(f["env-file"])) end
    if f.cwd and f.cwd ~= "" then s(oci.with_process_cwd(f.cwd)) end
    if #v.args > 0 then s(oci.with_process_args(unpack(v.args))) end
    if f.tty then s(oci.with_tty) end
  end
  local ok, err = M.isolation_opts(client, f, v, s, c)
  if ok == nil and err then return nil, err end
  ok, err = M.resource_opts(client, f, v, s, c)
  if ok == nil and err then return nil, err end
  return copts, sopts
end

--- Parse a `--mount` value as ctr's parseMountFlag: CSV fields key=value (type, source|src,
-- destination|dst, options=a:b).  Returns the mount, or nil, err naming the bad part.
function M.parse_mount_flag(str)
  local m = {}
  -- Go's csv reader: fields split on commas, a field may be double-quoted
  local fields, i = {}, 1
  while i <= #str + 1 do
    if str:sub(i, i) == '"' then
      local j, buf = i + 1, {}
      while true do
        local ch = str:sub(j, j)
        if ch == "" then return nil, errors.invalid("invalid mount specification: unterminated quote in %q", str) end
        if ch == '"' then
          if str:sub(j + 1, j + 1) == '"' then buf[#buf + 1] = '"'; j = j + 2 else break end
        else buf[#buf + 1] = ch; j = j + 1 end
      end
      fields[#fields + 1] = table.concat(buf)
      i = j + 2
    else
      local j = str:find(",", i, true) or (#str + 1)
      fields[#fields + 1] = str:sub(i, j - 1)
      i = j + 1
    end
  end
  for _, field in ipairs(fields) do
    local key, val = field:match("^([^=]*)=(.*)$") -- Go's strings.Cut(field, "=")
    if not key then
      return nil, errors.invalid("invalid mount specification: expected key=val (in %q)", field)
    end
    if key == "type" then m.type = val
    elseif key == "source" or key == "src" then m.source = val
    elseif key == "destination" or key == "dst" then m.destination = val
    elseif key == "options" then
      m.options = {}
      for o in (val .. ":"):gmatch("([^:]*):") do m.options[#m.options + 1] = o end
      m.options = require("ctr.core").json_array(m.options)
    else
      return nil, errors.invalid("mount option %q not supported", key)
    end
  end
  if not m.destination or m.destination == "" then
    return nil, errors.invalid("invalid mount specification %q: no destination (dst=)", str)
  end
  return m
end

--- Parse a `--uidmap`/`--gidmap` value `container-id:host-id:size` as ctr's parseIDMapping
-- (numbers in Go's base-0 syntax: 10, 0x10, 0o10).  Returns {containerID=, hostID=, size=}.
function M.parse_id_mapping(str)
  local parts = {}
  for p in (str .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
  if #parts ~= 3 then
    return nil, errors.invalid("user namespace mappings require the format `container-id:host-id:size`")
  end
  local function num(s)
    local n
    if s:match("^0[xX]%x+$") then n = tonumber(s:sub(3), 16)
    elseif s:match("^0[oO][0-7]+$") then n = tonumber(s:sub(3), 8)
    elseif s:match("^0[bB][01]+$") then n = tonumber(s:sub(3), 2)
    elseif s:match("^0[0-7]+$") then n = tonumber(s:sub(2), 8)
    elseif s:match("^%d+$") then n = tonumber(s) end
    if n and n <= 4294967295 then return n end
    return nil
  end
  local names = { "container id", "host id", "size" }
  local out = {}
  for k, p in ipairs(parts) do
    local n = num(p)
    if not n then
      return nil, errors.invalid("invalid %s for user namespace remapping: strconv.ParseUint: parsing %q: invalid syntax", names[k], p)
    end
    out[k] = n
  end
  return { containerID = out[1], hostID = out[2], size = out[3] }
end

local NS_VALID = { pid = true, network = true, uts = true, mount = true, user = true, ipc = true, cgroup = true }

-- containerd's WithRemappedSnapshot: the image's top snapshot with every owner shifted by the
-- host ids, committed once per mapping as "<chain>-<uid>-<gid>" (reused by the next container
-- with that mapping), and the container's snapshot prepared on it.
local function with_remapped_snapshot(key, image, uid, gid, platform)
  return function(ctx, client, c)
    local core = require("ctr.core")
    if not c.snapshotter or c.snapshotter == "" then c.snapshotter = client.snapshotter_name end
    local chain, err = require("ctr.store.unpack").unpack(client, image, { snapshotter = c.snapshotter, platform = platform })
    if not chain then return nil, err end
    local sn
    sn, err = client:snapshotter(c.snapshotter)
    if not sn then return nil, err end
    local parent = ("%s-%d-%d"):format(chain, uid, gid)
    if not sn:stat(parent) then
      local work = parent .. "-remap-" .. core.getpid()
      local mounts
      mounts, err = sn:prepare(work, chain, { partial = true })
      if not mounts then return nil, err end
      local mnt = require("ctr.mount")
      local dir = client.state .. "/remap-" .. core.getpid()
      local ok
      ok, err = sys.mkdir_p(dir, 448)
      if ok then ok, err = mnt.all(mounts, dir) end
      if ok then
        ok, err = sys.shift_tree(dir, uid, gid)
        if not ok then err = errors.wrap(err, "remap the snapshot for the user namespace") end
        mnt.unmount(dir, { detach = true })
      end
      core.rmdir(dir)
      if ok then ok, err = sn:commit(parent, work) end
      if not ok then
        sn:remove(work)
        return nil, err
      end
    end
    local ok
    ok, err = sn:prepare(key, parent, { partial = true, nofsync = true })
    if ok == nil and err ~= nil then return nil, err end
    if ctx._prepared then ctx._prepared[#ctx._prepared + 1] = { snapshotter = c.snapshotter, key = key } end
    c.snapshot_key = key
    c.image = image.name
  end
end

--- Isolation flags (--privileged, --cap-add/--cap-drop, --read-only, --seccomp, --mount,
-- --uidmap, --with-ns, --net-host, --device, ...): add spec opts with s(opt), container opts
-- with c(opt).  Returns nil, err on a bad flag value.  The order and the words are those of
-- containerd 1.6's NewContainer (cmd/ctr/commands/run/run_unix.go).
function M.isolation_opts(client, f, v, s, c)
  local core = require("ctr.core")
  for _, str in ipairs(f.mount or {}) do
    local m, err = M.parse_mount_flag(str)
    if not m then return nil, err end
    s(oci.with_mounts({ m }))
  end
  local uidmap, gidmap = f.uidmap or "", f.gidmap or ""
  if uidmap ~= "" or gidmap ~= "" then
    if uidmap == "" or gidmap == "" then
      return nil, errors.invalid("--uidmap and --gidmap must be given together")
    end
    local um, err = M.parse_id_mapping(uidmap)
    if not um then return nil, err end
    local gm
    gm, err = M.parse_id_mapping(gidmap)
    if not gm then return nil, err end
    s(oci.with_user_namespace({ um }, { gm }))
    if f.rootfs then
      -- ctrlua: an unmanaged rootfs is used as it is (its owner is the caller's business)
    elseif f["remap-labels"] then
      return nil, errors.invalid("--remap-labels: the snapshotter %q does not support remapping labels; use --uidmap/--gidmap alone (a remapped snapshot)", client.snapshotter_name)
    else
      -- in place of the plain snapshot (opts() leaves it out when both maps are given)
      c(with_remapped_snapshot(v.id, v.image, um.hostID, gm.hostID, (f.platform or "") ~= "" and f.platform or nil))
    end
  elseif f["remap-labels"] then
    return nil, errors.invalid("--remap-labels needs --uidmap and --gidmap")
  end
  if f["read-only"] then s(oci.with_rootfs_readonly()) end
  if f.privileged then
    s(oci.with_privileged); s(oci.with_all_devices_allowed); s(oci.with_host_devices)
  end
  if f["net-host"] then
    local hostname = core.uname().nodename
    s(oci.with_host_namespace("network")); s(oci.with_host_hosts_file); s(oci.with_host_resolvconf)
    s(oci.with_env({ "HOSTNAME=" .. hostname }))
  end
  if f.annotation and #f.annotation > 0 then
    local t = {}
    for _, a in ipairs(f.annotation) do
      local k, val = a:match("^([^=]*)=(.*)$")
      if not k then return nil, errors.invalid("invalid key=value format annotation: %s", a) end
      t[k] = val
    end
    s(oci.with_annotations(t))
  end
  for _, flag in ipairs({ "cap-add", "cap-drop" }) do
    local caps = f[flag] or {}
    if #caps > 0 then
      for _, cap in ipairs(caps) do
        if cap:sub(1, 4) ~= "CAP_" then return nil, errors.invalid("capabilities must be specified with 'CAP_' prefix") end
      end
      local list = caps
      if flag == "cap-add" then
        for _, cap in ipairs(caps) do
          if cap == "CAP_ALL" then list = nil end
        end
        s(list and oci.with_added_capabilities(list) or oci.with_all_known_capabilities)
      else
        for _, cap in ipairs(caps) do
          if cap == "CAP_ALL" then list = nil end
        end
        s(list and oci.with_dropped_capabilities(list) or oci.with_capabilities({}))
      end
    end
  end
  local profile = f["seccomp-profile"] or ""
  if not f.seccomp and profile ~= "" then
    return nil, errors.invalid("seccomp must be set to true, if using a custom seccomp-profile")
  end
  if f.seccomp then
    local seccomp = require("ctr.seccomp")
    s(profile ~= "" and seccomp.with_profile(profile) or seccomp.with_default_profile())
  end
  local aa_default, aa = f["apparmor-default-profile"] or "", f["apparmor-profile"] or ""
  if aa_default ~= "" then s(oci.with_apparmor_default_profile(aa_default)) end
  if aa ~= "" then
    if aa_default ~= "" then return nil, errors.invalid("apparmor-profile conflicts with apparmor-default-profile") end
    s(oci.with_apparmor_profile(aa))
  end
  for _, ns in ipairs(f["with-ns"] or {}) do
    local parts = {}
    for p in (ns .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = p end
    if #parts ~= 2 then
      return nil, errors.invalid("joining a Linux namespace using --with-ns requires the format 'nstype:path'")
    end
    if not NS_VALID[parts[1]] then
      return nil, errors.invalid("the Linux namespace type specified in --with-ns is not valid: " .. parts[1])
    end
    s(oci.with_linux_namespace({ type = parts[1], path = parts[2] }))
  end
  if f["allow-new-privs"] then s(oci.with_new_privileges) end
  for _, dev in ipairs(f.device or {}) do s(oci.with_devices(dev, "", "rwm")) end
  if f["rootfs-propagation"] and f["rootfs-propagation"] ~= "" then
    s(oci.with_rootfs_propagation(f["rootfs-propagation"]))
  end
  return true
end

-- The CFS quota the kernel takes (kernel/sched/core.c): at least 1 ms, at most 2^44 - 1 µs.
-- --cpus N is a quota of N * 100 ms over a period of 100 ms.
local CFS_PERIOD, CFS_QUOTA_MIN, CFS_QUOTA_MAX = 100000, 1000, 2 ^ 44 - 1

--- Check a `--cpus` value (0: not set).  ctr passes any float on, and one the CFS cannot take
-- (NaN, infinity, a negative or huge number) would fail later, or not at all: an
-- invalid-argument error naming the value, or nil when it is usable.
function M.check_cpus(cpus)
  if cpus ~= cpus then return errors.invalid("invalid value for flag --cpus: NaN is not a number of CPUs") end
  if cpus == math.huge or cpus == -math.huge then
    return errors.invalid("invalid value for flag --cpus: %sInf is not a finite number of CPUs", cpus > 0 and "+" or "-")
  end
  if cpus < 0 then return errors.invalid("invalid value for flag --cpus: %.14g is negative", cpus) end
  if cpus == 0 then return nil end
  local quota = math.floor(cpus * CFS_PERIOD)
  if quota < CFS_QUOTA_MIN then
    return errors.invalid("invalid value for flag --cpus: %.14g is below %.2f (the smallest CFS quota, 1 ms per 100 ms)",
      cpus, CFS_QUOTA_MIN / CFS_PERIOD)
  end
  if quota > CFS_QUOTA_MAX then
    return errors.invalid("invalid value for flag --cpus: %.14g is above %d (the largest CFS quota, 2^44-1 µs per 100 ms)",
      cpus, math.floor(CFS_QUOTA_MAX / CFS_PERIOD))
  end
  return nil
end

-- The flags that make ctr.runtime.options anything but nil (the built-in runtime): without
-- them a run does not load ctr.runtime.
local function external_runtime(f)
  return (f.runtime or "io.containerd.runc.v2") ~= "io.containerd.runc.v2"
    or (f["runc-binary"] or "") ~= "" or (f["runc-root"] or "") ~= ""
    or f["runc-systemd-cgroup"] == true or (f["runtime-config-path"] or "") ~= ""
end

--- Resource, network and runtime flags (--cgroup, --memory-limit, --cpus, --cpu-shares,
-- --cpu-quota/--cpu-period, --cni, --gpus, --rdt-class, ...): as isolation_opts.
-- In ctr's order (run_unix.go NewContainer); as in ctr the spec flags apply only without
-- --config.  The runtime flags (--runtime, --runc-binary, --runc-root, --runc-systemd-cgroup,
-- --runtime-config-path) become `v.runtime_options` (see ctr.runtime.options).
function M.resource_opts(client, f, v, s, c)
  local set = v.set or {}
  local ropts
  if external_runtime(f) then
    local rerr
    ropts, rerr = require("ctr.runtime").options(f, set)
    if rerr then return nil, rerr end
  end
  v.runtime_options = ropts
  if f.config and f.config ~= "" then return true end
  local cpus = f.cpus or 0
  local cerr = M.check_cpus(cpus)
  if cerr then return nil, cerr end
  if cpus > 0 then s(oci.with_cpus(cpus)) end
  if (f["cpu-shares"] or 0) > 0 then s(oci.with_cpu_shares(f["cpu-shares"])) end
  local quota, period = f["cpu-quota"] or -1, f["cpu-period"] or 0
  if quota ~= -1 or period ~= 0 then
    if cpus > 0 then return nil, errors.invalid("cpus and quota/period should be used separately") end
    s(oci.with_cpu_cfs(quota, period))
  end
  if set.gpus then
    local opt, err = require("ctr.spec.nvidia").with_gpus(f.gpus)
    if not opt then return nil, err end
    s(opt)
  end
  if set.cgroup then s(oci.with_cgroup(f.cgroup or "")) end
  if (f["memory-limit"] or 0) ~= 0 then s(oci.with_memory_limit(f["memory-limit"])) end
  if f.cni then
    local opt, err = require("ctr.cni").with_cni({ conf_dir = f["cni-conf-dir"],
      bin_dir = f["cni-bin-dir"] })
    if not opt then return nil, err end
    if ropts then
      return nil, errors.invalid("--cni with an external runtime (--runc-binary) is not supported: its init is not ctrlua's child between create and start")
    end
    c(opt)
  end
  if set["rdt-class"] then
    local ok, err = require("ctr.runtime").check_rdt(f["rdt-class"])
    if not ok then return nil, err end
    s(oci.with_rdt(f["rdt-class"], "", ""))
  end
  return true
end

-- ctr.policy's DEFAULT_DIR: a run that no policy can apply to (no such directory, no file
-- named) does not load ctr.policy, its sandbox and its diff (load time, and heap that is the
-- bulk of a run's peak RSS).  A directory that cannot be looked at is ctr.policy's to report.
local POLICY_DIR = "/etc/ctrlua/policy.d"
local ENOENT = 2

local function policies_may_apply(client, popts)
  if (popts.files and #popts.files > 0) or (client.policies and #client.policies > 0) then
    return true
  end
  local pkg = package.loaded["ctr.policy"]
  local dir = popts.dir or (pkg and pkg.DEFAULT_DIR) or POLICY_DIR
  local _, _, code = require("ctr.core").stat(dir, true)
  return code ~= ENOENT
end

--- Make the container record of a `run`: validate nothing (see validate), build the opts and
-- create the container.  Returns the container, or nil, err.
function M.new_container(client, f, v, trace)
  local copts, err = M.container_opts(client, f, v, trace)
  if not copts then return nil, err end
  return client:new_container(v.id, unpack(copts))
end

--- Every container opt of a run, in order: the snapshot and image opts, the spec (generated
-- from the spec opts), labels, runtime, and last the site policies over the finished spec.
-- `policy.lua check` appends its own opt after these to stop before anything is written.
-- @param client a ctr.client
-- @param f the parsed flags
-- @param v the validated positionals (M.validate)
-- @param[opt] trace a phase timer (M.tracer)
-- @param[opt] popts policy options (default `{files = f.policy}`; see ctr.policy.with_policies), and
-- `before`: a function(container) called with the record just before the policies run
-- @return an array of container opts, or nil, err
function M.container_opts(client, f, v, trace, popts)
  local copts, sopts = M.opts(client, f, v, trace)
  if not copts then return nil, sopts end
  -- a --rm container is gone when run returns: no durability point for its records
  if f.rm then table.insert(copts, 1, containers.with_ephemeral())
  -- a detached run's syncfs overlaps its create (ctr.tasks: the monitor's launch makes it)
  elseif f.detach then copts[#copts + 1] = containers.with_sync_at_create() end
  copts[#copts + 1] = containers.with_new_spec(unpack(sopts))
  copts[#copts + 1] = containers.with_container_labels(cli.label_args(f.label))
  copts[#copts + 1] = containers.with_runtime(f.runtime, v.runtime_options)
  popts = popts or { files = f.policy }
  if popts.before then copts[#copts + 1] = function(_, _, c) popts.before(c) end end
  if policies_may_apply(client, popts) then
    copts[#copts + 1] = require("ctr.policy").with_policies(f, popts)
  end
  return copts
end

return M
