-- run: run a container from an image or a rootfs, in the foreground (ctr run)
--
-- ctrlua run.lua [flags] IMAGE|ROOTFS ID [COMMAND] [ARG...]
-- Flags go before IMAGE; everything after ID is the container's command (ctr's SkipArgReorder).
-- Exit status: the container's own (128+N when signal N ended it); 125 when ctrlua failed
-- before the process could start; 126 when the command cannot be invoked; 127 when it is not
-- found.
local ctr = require("ctr")
local cli = require("ctr.cmd.cli")
local cio = require("ctr.cio")
local run = require("ctr.cmd.run")

local EXIT_FAILED, EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND = 125, 126, 127

-- CTRLUA_TRACE=1 prints the time of each phase on stderr (the bench reads it).
local phase = run.tracer()

-- the child that begins the kernel's grace period for the init's cgroup (below), reaped
-- once the init is in its cgroup, or on the way out
local warm_pid
local function warm_done()
  if warm_pid and warm_pid > 0 then require("ctr.cgroups").warm_done(warm_pid) end
  warm_pid = nil
end

local function die(err, code)
  warm_done()
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(code or EXIT_FAILED)
end

local def = run.def("ctrlua run.lua")
def.description = [[
Runs IMAGE (or, with --rootfs, the directory ROOTFS) as container ID in the foreground,
forwarding signals to it, and exits with its exit status: the container's own (128+N when
signal N ended it), 125 when ctrlua failed before the process could start, 126 when the
command cannot be invoked, 127 when it is not found.

ctrlua's own flags (beside ctr's): --policy FILE (repeatable) applies a site policy to the
spec after those in /etc/ctrlua/policy.d (a refusal exits 1); --cni-conf-dir DIR and
--cni-bin-dir DIRS choose where --cni finds its configuration and plugins.

Pulling: --pull missing|always|never (default missing) pulls IMAGE from its registry when
it is not in the store (a short name is normalised as docker does: alpine is
docker.io/library/alpine:latest); never fails as ctr does when it is missing.  The pull
takes images pull's registry flags: --user/-u, --refresh, --hosts-dir, --plain-http,
--skip-verify/-k, --tlscacert, --tlscert, --tlskey, --http-dump, --http-trace.  A failed
pull exits 125.]]
local r, perr = cli.parse(def, { ... })
if not r then
  io.stdout:write("Incorrect Usage: ", tostring(perr), "\n\n", cli.usage(def))
  die(perr)
end
if r.help then
  io.stdout:write(cli.usage(def))
  os.exit(0)
end
local f = r.flags
local v, err = run.validate(def, r)
if not v then die(err) end
-- In a new user namespace the init cannot move itself into its v1 cgroups (runtime/create.c):
-- its pid is written for it, and that first write to a cgroup.procs waits for a grace period
-- of the kernel's; begun now, it passes while the image, the snapshot and the spec are made.
-- (An init that moves itself waits for none, and a writer here would only hold up its clone.)
if not (r.set.cgroup and f.cgroup == "") and ((f.uidmap or "") ~= "" or (f.gidmap or "") ~= "") then
  warm_pid = require("ctr.cgroups").warm_attach()
end
phase("startup")

local client
client, err = ctr.client()
if not client then die(err) end

local ok_img
ok_img, err = run.ensure_image(client, f, v, {
  display = require("ctr.cmd.term").isatty("stderr") and require("ctr.remotes.progress").new({ stream = io.stderr }) or nil })
if not ok_img then die(err) end
phase("pull")

local container
container, err = run.new_container(client, f, v, phase)
-- a policy's refusal is a decision, not a failure of ctrlua: exit 1, as the issue asks
if not container then die(err, err.sym == "POLICY_REFUSED" and 1 or nil) end
phase("container")

-- From here on a failure removes what this run made: nothing is left behind.
local function abandon(e, code)
  container:delete({ snapshot_cleanup = true })
  die(e, code)
end

-- IO: --null-io, --log-uri, --fifo-dir, or our stdio (foreground) / /dev/null (detached).
-- A logging binary needs the monitor, so such a run is detached and then waited for.
local tio
tio, err = cio.from_flags(f, v.id, f.detach)
if not tio then abandon(err) end
local detach = f.detach or tio.needs_monitor

local task, made
-- a raise (a bug, not a refusal) removes the container as well
made, task, err = pcall(container.new_task, container, tio, {
  pid_file = f["pid-file"] ~= "" and f["pid-file"] or nil, detach = detach,
  no_pivot = f["no-pivot"] or nil, volatile = f.rm or nil })
warm_done()
if not made then abandon(task) end
if not task then
  local code = EXIT_FAILED
  -- an init that died before it could run (OOM-killed at once): its status, as runc's
  -- callers report it
  if err.exit_code then code = err.exit_code
  elseif err.exec and err.sym == "ENOENT" then code = EXIT_NOT_FOUND
  elseif err.exec and (err.sym == "EACCES" or err.sym == "ENOEXEC" or err.sym == "EISDIR") then
    code = EXIT_CANNOT_INVOKE
  end
  abandon(err, code)
end
phase("create")

local ok
-- a foreground run holds the signals it forwards from here on: one that comes before the
-- wait stays pending for it (with -t, the wait is the terminal's copy loop)
ok, err = task:start({ forward = not detach })
if not ok then
  task:delete({ force = true })
  abandon(err, err.exit_code)
end
phase("start")
if f.detach then os.exit(0) end

local code
code, err = task:wait({ forward = not detach, record = false })
if not code then die(err) end
phase("wait")
if not detach and tio.close then tio.close() end
task:delete()
if f.rm then
  ok, err = container:delete({ snapshot_cleanup = true })
  if not ok then die(err) end
end
phase("cleanup")
io.stdout:flush()
os.exit(code)
