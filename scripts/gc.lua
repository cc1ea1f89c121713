-- gc: remove what interrupted (killed, crashed) commands left behind, and collect what nothing
-- refers to, in every namespace
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")

local def = { name = "gc", help_name = "ctrlua gc",
  usage = "remove what interrupted commands left behind, and unreferenced content and snapshots",
  description = [[Removes, in every namespace of the store and of the state, what a killed or crashed
command left and no command will come back for: tasks whose ctrlua is gone (a foreground
task, or a detached one never started: killed, unmounted, their cgroups and state
removed), task directories half made or half removed, temporary mounts, partial snapshots
(layers being unpacked, snapshots of containers never recorded), snapshot directories no
record names, ingest files no writer holds.  Then it collects, as containerd's garbage
collector, the blobs and committed snapshots that no image, container, uncommitted snapshot
or live lease refers to, and the leases of processes that are gone.  A record that cannot
be read is reported and kept, with whatever it might name.  Running and stopped tasks,
containers, uncommitted snapshots and images are kept: `tasks delete`, `containers rm`,
`snapshots rm` and `images rm` (or `images prune`) remove them.

Prints one line per thing removed; exits 1 if something could not be removed.
See docs/crash-consistency.md.]],
  flags = {} }
local r = cli.parse_or_exit(def, { ... })
if #r.args > 0 then app.fail("gc takes no arguments") end
local client, err = ctr.client()
if not client then app.fail(err) end
local report = require("ctr.gc").run(client)
for _, line in ipairs(report.removed) do io.stdout:write("removed ", line, "\n") end
for _, w in ipairs(report.warnings) do
  io.stderr:write("ctrlua: warning: ", tostring(w), ": kept\n")
end
for _, e in ipairs(report.errors) do io.stderr:write("ctrlua: ", tostring(e), "\n") end
io.stdout:flush()
os.exit(#report.errors > 0 and 1 or 0)
