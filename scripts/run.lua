-- run: run a container from an image or a rootfs, in the foreground (ctr run)
--
-- ctrlua run.lua [flags] IMAGE|ROOTFS ID [COMMAND] [ARG...]
-- Flags go before IMAGE; everything after ID is the container's command (ctr's SkipArgReorder).
-- Exit status: the container's own (128+N when signal N ended it); 125 when ctrlua failed
-- before the process could start; 126 when the command cannot be invoked; 127 when it is not
-- found.
local core = require("ctr.core")
local ctr = require("ctr")
local cli = require("ctr.cli")
local oci = require("ctr.oci")
local containers = require("ctr.containers")
local cio = require("ctr.cio")
local images = require("ctr.images")

local EXIT_FAILED, EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND = 125, 126, 127

-- CTRLUA_TRACE=1 prints the time of each phase on stderr (the bench reads it).
local trace = core.getenv("CTRLUA_TRACE") == "1"
local t_last = core.monotime()
local function phase(name)
  if not trace then return end
  local t = core.monotime()
  io.stderr:write(("phase %-10s %.3f ms\n"):format(name, (t - t_last) * 1000))
  t_last = t
end

local function die(err, code)
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(code or EXIT_FAILED)
end

local def = cli.run_def("ctrlua run.lua")
def.description = [[
Runs IMAGE (or, with --rootfs, the directory ROOTFS) as container ID in the foreground,
forwarding signals to it, and exits with its exit status: the container's own (128+N when
signal N ended it), 125 when ctrlua failed before the process could start, 126 when the
command cannot be invoked, 127 when it is not found.]]
local r, perr = cli.parse(def, { ... })
if not r then
  io.stdout:write("Incorrect Usage: ", tostring(perr), "\n\n", cli.usage(def))
  die(perr)
end
if r.help then
  io.stdout:write(cli.usage(def))
  os.exit(0)
end
local f, args = r.flags, r.args

-- ctr's own checks, in ctr's order and words
local ref, id, cmd
if f.config and f.config ~= "" then
  id = args[1]
  if #args > 1 then die("with spec config file, only container id should be provided") end
else
  ref, id = args[1], args[2]
  if ref == nil or ref == "" then die("image ref must be provided") end
  cmd = { unpack(args, 3) }
end
if id == nil or id == "" then die("container id must be provided") end
if f.rm and f.detach then die("flags --detach and --rm cannot be specified together") end
local unsupported = cli.unsupported(def, r)
if unsupported then die(("--%s is not supported yet"):format(unsupported)) end
if f.runtime ~= "io.containerd.runc.v2" then
  die(("runtime %q is not supported yet: only the built-in runtime (io.containerd.runc.v2)"):format(f.runtime))
end
local err = containers.validate_id(id)
if err then die(err) end
phase("startup")

local client
client, err = ctr.client()
if not client then die(err) end

-- NewContainer: spec opts and container opts, as ctr's run_unix.go composes them
local copts, sopts = {}, {}
local function c(o) copts[#copts + 1] = o end
local function s(o) sopts[#sopts + 1] = o end

if f.config and f.config ~= "" then
  s(oci.with_spec_from_file(f.config))
else
  if f.rootfs then
    s(oci.with_rootfs_path(ref))
  else
    local image
    image, err = client:get_image(ref)
    if not image then die(err) end
    local manifest, config = images.manifest(client, image, f.platform ~= "" and f.platform or nil)
    if not manifest then die(config) end
    image.config = config
    phase("image")
    local snapshotter = (f.snapshotter and f.snapshotter ~= "") and f.snapshotter or client.snapshotter_name
    c(containers.with_image(image))
    c(containers.with_snapshotter(snapshotter))
    c(containers.with_new_snapshot(id, image, { labels = cli.label_args(f["snapshotter-label"]),
      platform = f.platform ~= "" and f.platform or nil }))
    c(containers.with_image_stop_signal(image, "SIGTERM"))
    s(oci.with_image_config(image))
  end
  if #f.env > 0 then s(oci.with_env(f.env)) end
  if f["env-file"] and f["env-file"] ~= "" then s(oci.with_env_file(f["env-file"])) end
  if f.cwd and f.cwd ~= "" then s(oci.with_process_cwd(f.cwd)) end
  if #cmd > 0 then s(oci.with_process_args(unpack(cmd))) end
end
c(containers.with_new_spec(unpack(sopts)))
c(containers.with_container_labels(cli.label_args(f.label)))
c(containers.with_runtime(f.runtime))

local container
container, err = client:new_container(id, unpack(copts))
if not container then die(err) end
phase("container")

-- From here on a failure removes what this run made: nothing is left behind.
local function abandon(e, code)
  container:delete({ snapshot_cleanup = true })
  die(e, code)
end

local task
task, err = container:new_task(cio.stdio())
if not task then
  local code = EXIT_FAILED
  if err.exec and err.sym == "ENOENT" then code = EXIT_NOT_FOUND
  elseif err.exec and (err.sym == "EACCES" or err.sym == "ENOEXEC" or err.sym == "EISDIR") then
    code = EXIT_CANNOT_INVOKE
  end
  abandon(err, code)
end
phase("create")

local ok
ok, err = task:start()
if not ok then
  task:kill(9)
  task:wait()
  task:delete()
  abandon(err)
end
phase("start")

local code
code, err = task:wait({ forward = true })
if not code then die(err) end
phase("wait")
task:delete()
if f.rm then
  ok, err = container:delete({ snapshot_cleanup = true })
  if not ok then die(err) end
end
phase("cleanup")
io.stdout:flush()
os.exit(code)
