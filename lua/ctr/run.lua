--- The `ctr run` composition: flags → container opts and spec opts → a container record, as
-- containerd's cmd/ctr/commands/run package does (NewContainer in run_unix.go).  scripts/run.lua
-- (the command) and `policy.lua check` (the dry run) share it, so what is checked is what runs.
-- @module ctr.run
local oci = require("ctr.oci")
local containers = require("ctr.containers")
local cli = require("ctr.cli")
local errors = require("ctr.errors")

local M = {}

--- A phase timer: with CTRLUA_TRACE=1 in the environment, `phase(name)` prints the time since
-- the previous call as `phase NAME X ms` on stderr (the benchmark reads these); otherwise it
-- does nothing.
function M.tracer()
  local core = require("ctr.core")
  if core.getenv("CTRLUA_TRACE") ~= "1" then return function() end end
  local last = core.monotime()
  return function(name)
    local t = core.monotime()
    io.stderr:write(("phase %-10s %.3f ms\n"):format(name, (t - last) * 1000))
    last = t
  end
end

--- The definition of the run command's flags (ctr run's, see ctr.cli.run_flags).
function M.def(help_name) return cli.run_def(help_name or "ctrlua run.lua") end

--- Check a parse result as ctr does, in ctr's order and words.
-- @param r a ctr.cli parse result
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
  if f.runtime ~= "io.containerd.runc.v2" then
    return nil, errors.invalid("runtime %q is not supported yet: only the built-in runtime (io.containerd.runc.v2)", f.runtime)
  end
  local err = containers.validate_id(out.id)
  if err then return nil, err end
  return out
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
      local image, err = client:get_image(v.ref)
      if not image then return nil, err end
      local manifest, config = require("ctr.images").manifest(client, image, platform)
      if not manifest then return nil, config end
      image.config = config
      if trace then trace("image") end
      local snapshotter = (f.snapshotter and f.snapshotter ~= "") and f.snapshotter or client.snapshotter_name
      c(containers.with_image(image))
      c(containers.with_snapshotter(snapshotter))
      c(containers.with_new_snapshot(v.id, image, { labels = cli.label_args(f["snapshotter-label"]),
        platform = platform }))
      c(containers.with_image_stop_signal(image, "SIGTERM"))
      s(oci.with_image_config(image))
    end
    if #f.env > 0 then s(oci.with_env(f.env)) end
    if f["env-file"] and f["env-file"] ~= "" then s(oci.with_env_file(f["env-file"])) end
    if f.cwd and f.cwd ~= "" then s(oci.with_process_cwd(f.cwd)) end
    if #v.args > 0 then s(oci.with_process_args(unpack(v.args))) end
  end
  local ok, err = M.isolation_opts(client, f, v, s, c)
  if ok == nil and err then return nil, err end
  ok, err = M.resource_opts(client, f, v, s, c)
  if ok == nil and err then return nil, err end
  return copts, sopts
end

--- Isolation flags (--privileged, --cap-add/--cap-drop, --read-only, --seccomp, --mount,
-- --uidmap, --with-ns, --net-host, --device, ...): add spec opts with s(opt), container opts
-- with c(opt).  Returns nil, err on a bad flag value.
function M.isolation_opts(client, f, v, s, c)
  return true
end

--- Resource, network and runtime flags (--cgroup, --memory-limit, --cpus, --cpu-shares,
-- --cpu-quota/--cpu-period, --cni, --gpus, --rdt-class, ...): as isolation_opts.
function M.resource_opts(client, f, v, s, c)
  return true
end

--- Make the container record of a `run`: validate nothing (see validate), build the opts and
-- create the container.  Returns the container, or nil, err.
function M.new_container(client, f, v, trace)
  local copts, sopts = M.opts(client, f, v, trace)
  if not copts then return nil, sopts end
  copts[#copts + 1] = containers.with_new_spec(unpack(sopts))
  copts[#copts + 1] = containers.with_container_labels(cli.label_args(f.label))
  copts[#copts + 1] = containers.with_runtime(f.runtime)
  return client:new_container(v.id, unpack(copts))
end

return M
