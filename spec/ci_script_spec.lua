-- A CI pipeline written as a shell script behaves the same with
-- `ctr -a SOCK` (Debian's containerd, started by this spec on a private socket) and with
-- `build/ctrlua --root R --state S`.  One script text; a short prelude per tool names the
-- commands: RUN (`ctr run` / `ctrlua run.lua`), TASKS, CONTAINERS and task_wait.
-- ctr 1.6 has no `tasks wait`: its task_wait follows `ctr events` for the task's /tasks/exit
-- and returns its exit_status, as `ctrlua tasks.lua wait` returns the exit code.
local core = require("ctr.core")
local S = require("support.ctrlua")
local C = require("support.containerd")

local q = S.q

-- The pipeline: detached jobs waited for and deleted, a job stopped with SIGTERM once it is
-- ready, the leftovers listed, and a failing step that fails the script (set -e).
local SCRIPT = [[
set -e
# A container's init ignores a signal it has no handler for (it is pid 1 of its namespace): a
# kill before sh has set its trap would be lost, so job2 is killed once it says it is ready.
job_ready() {
  i=0
  until grep -q ready "$OUT/$1.log" 2>/dev/null; do
    i=$((i+1)); [ $i -le 1500 ] || { echo "$1: not ready in 30 s" >&2; exit 98; }
    sleep 0.02
  done
}
$RUN -d --log-uri "file://$OUT/job1.log" "$IMAGE" job1 sh -c 'echo job1 out; echo job1 err >&2; exit 3'
code=0; task_wait job1 || code=$?
echo "job1 wait: $code"
show_log job1
code=0; $TASKS delete job1 || code=$?
echo "job1 delete: $code"
$CONTAINERS rm job1
$RUN -d --log-uri "file://$OUT/job2.log" "$IMAGE" job2 sh -c "trap 'exit 143' TERM; echo ready; sleep 100 & wait"
job_ready job2
$TASKS ls
$TASKS kill job2
code=0; task_wait job2 || code=$?
echo "job2 wait: $code"
$TASKS ls
code=0; $TASKS delete job2 || code=$?
echo "job2 delete: $code"
$CONTAINERS rm job2
$RUN -d "$IMAGE" job3 true
code=0; task_wait job3 || code=$?
echo "job3 wait: $code"
$TASKS delete job3
$CONTAINERS rm job3
echo "tasks: $($TASKS ls -q)"
echo "containers: $($CONTAINERS ls -q)"
$RUN --rm "$IMAGE" job4 sh -c 'echo job4 fails; exit 7'
echo "not reached"
]]

-- containerd's shim copies a task's output to a --log-uri file on its own goroutines, which
-- may still hold a line when the exit event is out (and lose it once the task is deleted):
-- show_log, before the delete, waits (bounded, 30 s: a loaded machine has delayed the shim by
-- more than 10) until the log has the two lines the job writes, and says so on stderr when
-- the bound passed.  The events subscription is known to be up once it
-- has delivered an event of our own making (a label on the namespace).
local PRELUDE_CTR = [[
CTR="ctr -a $SOCK -n $NS"
RUN="$CTR run"; TASKS="$CTR tasks"; CONTAINERS="$CTR containers"
$CTR events >"$OUT/events" 2>&1 &
EVPID=$!
trap 'kill $EVPID' EXIT
i=0
until grep -q "/namespaces/update" "$OUT/events"; do
  i=$((i+1)); [ $i -le 500 ] || { echo "ctr events: no subscription" >&2; exit 99; }
  $CTR namespaces label "$NS" probe=$i; sleep 0.02
done
show_log() {
  i=0
  while [ "$(cat "$OUT/$1.log" 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 1500 ]; do i=$((i+1)); sleep 0.02; done
  [ $i -lt 1500 ] || echo "show_log $1: the shim wrote $(wc -l <"$OUT/$1.log") lines in 30 s" >&2
  sort "$OUT/$1.log"
}
task_wait() {
  i=0
  while ! grep -q "/tasks/exit {\"container_id\":\"$1\"" "$OUT/events"; do
    i=$((i+1)); sleep 0.02
    [ $i -lt 1500 ] && continue
    echo "task_wait $1: no /tasks/exit event in 30 s; tasks: $($TASKS ls 2>&1)" >&2
    return 99
  done
  line=$(grep "/tasks/exit {\"container_id\":\"$1\"" "$OUT/events" | tail -1)
  case "$line" in *'"exit_status":'*) c=${line##*\"exit_status\":}; return ${c%%,*};; esac
  return 0
}
]]

-- ctrlua's log is complete when `tasks wait` returns: no waiting here.
local PRELUDE_CTRLUA = [[
CTR="$CTRLUA --root $ROOT --state $STATE -n $NS"
RUN="$CTR run.lua"; TASKS="$CTR tasks.lua"; CONTAINERS="$CTR containers.lua"
show_log() { sort "$OUT/$1.log"; }
task_wait() { $TASKS wait "$1"; }
]]

describe("a CI shell script: ctr and ctrlua #root", function()
  if not C.available() then
    it("needs containerd and ctr (Debian's containerd package)", function()
      pending("containerd or ctr is not installed")
    end)
    return
  end

  local cd, env

  setup(function()
    cd = C.start()
    env = S.new_env()
  end)

  teardown(function()
    if env then env:destroy() end
    if cd then cd:stop() end
    S.cleanup()
  end)

  -- run the script with a prelude; {code=, stdout=, stderr=, out=OUT}
  local function run_script(which, prelude, vars)
    local out = env.dir .. "/out-" .. which
    assert(core.mkdir_p(out))
    local assign = { "OUT=" .. q(out), "IMAGE=" .. q(S.IMAGE) }
    for k, v in pairs(vars) do assign[#assign + 1] = k .. "=" .. q(v) end
    local file = env.dir .. "/" .. which .. ".sh"
    assert(core.write_file(file, table.concat(assign, "\n") .. "\n" .. prelude .. SCRIPT))
    local so, se = out .. ".stdout", out .. ".stderr"
    local _, code = S.sh(("timeout 60 sh %s >%s 2>%s </dev/null"):format(q(file), q(so), q(se)))
    return { code = code, stdout = S.slurp(so) or "", stderr = S.slurp(se) or "", out = out }
  end

  local function warnings(stderr)
    local w = {}
    for m in stderr:gmatch("task %S+ exit with non%-zero exit code %d+") do w[#w + 1] = m end
    return w
  end

  it("gives the same exit code, output, warnings and leftovers", function()
    local ctr = run_script("ctr", PRELUDE_CTR, { SOCK = cd.sock, NS = cd.ns })
    local mine = run_script("ctrlua", PRELUDE_CTRLUA,
      { CTRLUA = S.BIN, ROOT = env.root, STATE = env.state, NS = env.ns })

    -- the failing step fails the script, with its code
    assert.are.equal(7, ctr.code, ctr.stdout .. ctr.stderr)
    assert.are.equal(ctr.code, mine.code, mine.stdout .. mine.stderr)
    -- the same lines, but for the pids in `tasks ls` and the column widths they set
    local function norm(s) return (s:gsub("(job2%s+)%d+(%s+)", "%1PID%2"):gsub(" +", " ")) end
    local theirs, ours = norm(ctr.stdout), norm(mine.stdout)
    if ctr.stderr:find("show_log job1: the shim wrote", 1, true) then
      -- containerd's shim lost a line of job1's log (seen on a loaded machine: one of the two
      -- never came): compare the rest; ctrlua's log lines are checked below all the same
      io.stderr:write("ci_script_spec: containerd's shim lost a line of job1's log\n")
      theirs = theirs:gsub("job1 err\n", ""):gsub("job1 out\n", "")
      ours = ours:gsub("job1 err\n", ""):gsub("job1 out\n", "")
    end
    assert.are.equal(theirs, ours, "ctr's stderr: " .. ctr.stderr)
    -- and what that output says, so that a shared mistake cannot pass
    local o = mine.stdout
    assert.truthy(o:find("job1 wait: 3\njob1 err\njob1 out\njob1 delete: 0\n", 1, true), o)
    assert.truthy(o:find("job2 wait: 143\n", 1, true), o)
    assert.truthy(o:match("job2%s+%d+%s+RUNNING\n"), o)
    assert.truthy(o:match("job2%s+%d+%s+STOPPED\n"), o)
    assert.truthy(o:find("job3 wait: 0\n", 1, true), o)
    assert.truthy(o:find("tasks: \ncontainers: \njob4 fails\n", 1, true), o)
    assert.truthy(o:find("job4 fails\n", 1, true), o)
    assert.is_nil(o:find("not reached", 1, true))
    -- ctr's delete warns of a non-zero exit code (and exits 0): so does ctrlua's
    assert.are.same(warnings(ctr.stderr), warnings(mine.stderr))
    assert.are.same({ "task job1 exit with non-zero exit code 3",
      "task job2 exit with non-zero exit code 143" }, warnings(mine.stderr))

    -- nothing left on either side: no task, container, active snapshot or mount; ctrlua's
    -- state holds no task directory and no process of a job runs
    local out, code = cd:ctr("tasks ls -q")
    assert.are.same({ "", 0 }, { out, code })
    assert.are.same({}, env:leftovers())
    assert.are.same({}, S.mounts_under(cd.dir .. "/root"))
    out = cd:ctr("snapshots ls")
    assert.is_nil(out:find("Active", 1, true), out)
    for _, name in ipairs(core.listdir(env:state_dir()) or {}) do
      assert.are.equal("events.log", name)
    end
    assert.are.same({}, S.processes_in_ns(env.ns))
    assert.are.same({}, S.processes_in_ns(cd.ns))
  end)
end)
