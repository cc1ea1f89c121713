--- CI pipelines: a job described in Lua whose steps run in containers.
--
--     -- build-test.lua
--     return {
--       name = "build-test", image = "ctrlua.test/busybox:latest",
--       env = { CI = "1" },
--       steps = {
--         { name = "build", run = "echo built > /workspace/out.txt" },
--         { name = "unit", needs = { "build" }, run = "grep built /workspace/out.txt" },
--         { name = "lint", needs = { "build" }, run = { "test", "-s", "/workspace/out.txt" }, timeout = 30 },
--         { name = "matrix", needs = { "build" }, matrix = { SHELL_LEVEL = { "1", "2" } },
--           run = "echo level $SHELL_LEVEL" },
--       },
--     }
--
-- A step: `name`, `run` (a shell command for `sh -c`, or an argv list), `image` (default the
-- job's), `env` (a map or a "K=V" list, over the job's), `needs` (names of steps that must pass
-- first; a matrix step's name means all its variants), `timeout` (seconds: the task is killed,
-- the step's status is "timeout" and its code 124), `workdir` (default /workspace), `matrix`
-- (`{KEY = {values}}`: one variant per combination, named `name[KEY=value,...]`, KEY set in
-- its env; the key `image` picks the image instead).
--
-- Each step runs as its own container `pipeline-JOB-STEP-N` (removed afterwards) with the
-- workspace directory bind-mounted read-write at /workspace.  Steps whose needs passed start
-- as soon as a slot is free (up to `jobs` at once).  Fail-fast (default): after a failure no
-- new step starts and running ones finish; with `keep_going`, every step whose needs passed
-- still runs.  Output is shown live, each line prefixed `[STEP] `, and kept per step (a file in
-- `logs` and the JUnit report's system-out).  The site's spec policies apply to every step.
-- @module ctr.pipeline
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local oci = require("ctr.oci")
local containers = require("ctr.containers")

local M = {}

--- Exit code of a step that timed out (as GNU timeout's).
M.EXIT_TIMEOUT = 124
--- Exit code of a step that could not be started.
M.EXIT_ERROR = 125
--- Bytes of each step's output kept in memory for the report.
M.MAX_OUTPUT = 1024 * 1024
--- Seconds to wait for a step's output to end after its process exited.
M.DRAIN_GRACE = 2

local function invalid(fmt, ...) return nil, errors.invalid("pipeline: " .. fmt, ...) end

-- ---------------------------------------------------------------- loading and expanding

--- Load a pipeline file (trusted Lua that returns the job table).
-- @tparam string path the file
-- @return the job table, or nil, err
function M.load(path)
  if type(path) ~= "string" then error("path: expected string", 2) end
  local text, err = sys.read_file(path, 4 * 1024 * 1024)
  if not text then return nil, err end
  local chunk, perr = loadstring(text, "@" .. path)
  if not chunk then return nil, errors.invalid("%s", perr) end
  local ok, job = pcall(chunk)
  if not ok then return nil, errors.invalid("%s: %s", path, tostring(job)) end
  if type(job) ~= "table" then return invalid("%s must return a table, returned %s", path, type(job)) end
  return job
end

local function env_list(v, what)
  local out = {}
  if v == nil then return out end
  if type(v) ~= "table" then return nil, what .. ": expected a table" end
  if #v > 0 then
    for i, e in ipairs(v) do
      if type(e) ~= "string" or not e:find("=", 2, true) then return nil, ("%s[%d]: expected \"K=V\""):format(what, i) end
      out[#out + 1] = e
    end
  else
    local keys = {}
    for k in pairs(v) do
      if type(k) ~= "string" then return nil, what .. ": keys must be strings" end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(v[k]) end
  end
  return out
end

-- the combinations of a matrix {KEY = {values}}: a list of {{key, value}, ...} in key order
local function combinations(matrix)
  local keys = {}
  for k, vals in pairs(matrix) do
    if type(k) ~= "string" or type(vals) ~= "table" or #vals == 0 then return nil end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = { {} }
  for _, k in ipairs(keys) do
    local next_out = {}
    for _, combo in ipairs(out) do
      for _, v in ipairs(matrix[k]) do
        local c = { unpack(combo) }
        c[#c + 1] = { k, tostring(v) }
        next_out[#next_out + 1] = c
      end
    end
    out = next_out
  end
  return out
end

--- Check a job and expand its matrix steps: a list of plain steps
-- `{name=, base=, image=, argv={...}, env={"K=V"...}, needs={names}, timeout=, workdir=}` in
-- the job's order, or nil, err (unknown needs, a cycle, a bad field).
function M.expand(job)
  if type(job) ~= "table" then return invalid("job: expected table") end
  if type(job.name) ~= "string" or job.name == "" then return invalid("job.name: expected a string") end
  if type(job.steps) ~= "table" or #job.steps == 0 then return invalid("job.steps: expected a list of steps") end
  local job_env, eerr = env_list(job.env, "job.env")
  if not job_env then return invalid("%s", eerr) end
  local steps, by_base, by_name = {}, {}, {}
  for i, s in ipairs(job.steps) do
    local what = ("steps[%d]"):format(i)
    if type(s) ~= "table" then return invalid("%s: expected table", what) end
    if type(s.name) ~= "string" or not s.name:match("^[%w_%.%-]+$") then
      return invalid("%s.name: expected a name of [A-Za-z0-9_.-]", what)
    end
    if by_base[s.name] then return invalid("%s: step %q defined twice", what, s.name) end
    local argv
    if type(s.run) == "string" then argv = { "sh", "-c", s.run }
    elseif type(s.run) == "table" and #s.run > 0 then
      argv = {}
      for j, a in ipairs(s.run) do
        if type(a) ~= "string" then return invalid("%s.run[%d]: expected string", what, j) end
        argv[j] = a
      end
    else return invalid("%s.run: expected a shell command or an argv list", what) end
    local env, err2 = env_list(s.env, what .. ".env")
    if not env then return invalid("%s", err2) end
    if s.timeout ~= nil and (type(s.timeout) ~= "number" or s.timeout <= 0) then
      return invalid("%s.timeout: expected a number of seconds", what)
    end
    if s.workdir ~= nil and (type(s.workdir) ~= "string" or s.workdir:sub(1, 1) ~= "/") then
      return invalid("%s.workdir: expected an absolute path", what)
    end
    if s.needs ~= nil and type(s.needs) ~= "table" then return invalid("%s.needs: expected a list", what) end
    local combos = { {} }
    if s.matrix ~= nil then
      combos = type(s.matrix) == "table" and combinations(s.matrix)
      if not combos then return invalid("%s.matrix: expected {KEY = {value, ...}, ...}", what) end
    end
    by_base[s.name] = {}
    for _, combo in ipairs(combos) do
      local step = { base = s.name, name = s.name, image = s.image or job.image, argv = argv,
        timeout = s.timeout, workdir = s.workdir or "/workspace", needs = {}, env = {} }
      for _, e in ipairs(job_env) do step.env[#step.env + 1] = e end
      for _, e in ipairs(env) do step.env[#step.env + 1] = e end
      if #combo > 0 then
        local parts = {}
        for _, kv in ipairs(combo) do
          parts[#parts + 1] = kv[1] .. "=" .. kv[2]
          if kv[1] == "image" then step.image = kv[2] else step.env[#step.env + 1] = kv[1] .. "=" .. kv[2] end
        end
        step.name = s.name .. "[" .. table.concat(parts, ",") .. "]"
      end
      if type(step.image) ~= "string" or step.image == "" then
        return invalid("%s: no image (set job.image or the step's image)", what)
      end
      for j, n in ipairs(s.needs or {}) do
        if type(n) ~= "string" then return invalid("%s.needs[%d]: expected string", what, j) end
        step.needs[#step.needs + 1] = n
      end
      steps[#steps + 1] = step
      step.index = #steps
      by_name[step.name] = step
      table.insert(by_base[s.name], step)
    end
  end
  -- needs name steps (a base name stands for all its variants)
  for _, step in ipairs(steps) do
    local deps = {}
    for _, n in ipairs(step.needs) do
      local list = by_base[n] or (by_name[n] and { by_name[n] })
      if not list then return invalid("step %q needs %q, which is not a step", step.name, n) end
      for _, d in ipairs(list) do deps[#deps + 1] = d end
    end
    step.deps = deps
  end
  -- no cycles: depth-first search, naming the cycle
  local mark, path = {}, {}
  local function visit(s)
    if mark[s] == "done" then return true end
    if mark[s] == "active" then
      local names, on = {}, false
      for _, p in ipairs(path) do
        if p == s then on = true end
        if on then names[#names + 1] = p.name end
      end
      names[#names + 1] = s.name
      return nil, table.concat(names, " -> ")
    end
    mark[s] = "active"
    path[#path + 1] = s
    for _, d in ipairs(s.deps) do
      local ok, cyc = visit(d)
      if not ok then return nil, cyc end
    end
    path[#path] = nil
    mark[s] = "done"
    return true
  end
  for _, s in ipairs(steps) do
    local ok, cyc = visit(s)
    if not ok then return invalid("needs form a cycle: %s", cyc) end
  end
  return steps
end

-- ---------------------------------------------------------------- running steps

local function container_id(job_name, step)
  local function clean(s) return (s:gsub("[^%w_%.%-]", "_")) end
  local id = ("pipeline-%s-%s-%d"):format(clean(job_name), clean(step.name), step.index)
  if #id > 76 then id = id:sub(1, 60) .. "-" .. core.sha256(id):sub(1, 15) end
  return id
end

local function log_name(step) return (step.name:gsub("[^%w_%.%-]", "_")) .. ".log" end

-- Create and start step's container; returns the running record or nil, err.
local function start_step(client, job, step, ws, opts)
  if step.pull_error then return nil, step.pull_error end
  local image, err = client:get_image(step.image)
  if not image then return nil, err end
  local manifest, config = require("ctr.images").manifest(client, image)
  if not manifest then return nil, config end
  image.config = config
  local id = container_id(job.name, step)
  local sopts = {
    oci.with_default_unix_devices,
    oci.with_image_config(image),
    oci.with_env(step.env),
    oci.with_process_cwd(step.workdir),
    oci.with_process_args(unpack(step.argv)),
    oci.with_mounts({ { type = "bind", source = ws, destination = "/workspace", options = { "rbind", "rw" } } }),
  }
  local copts = {
    containers.with_image(image),
    containers.with_snapshotter(client.snapshotter_name),
    containers.with_new_snapshot(id, image),
    containers.with_image_stop_signal(image, "SIGTERM"),
    containers.with_new_spec(unpack(sopts)),
    containers.with_container_labels({ ["ctrlua.pipeline"] = job.name, ["ctrlua.pipeline.step"] = step.name }),
  }
  if opts.policies ~= false then
    copts[#copts + 1] = require("ctr.policy").with_policies({ pipeline = job.name, step = step.name },
      { dir = opts.policy_dir, files = opts.policy_files })
  end
  local container
  container, err = client:new_container(id, unpack(copts))
  if not container then return nil, err end
  local run = { step = step, container = container, out = {}, out_len = 0, buf = "" }
  local function fail(e)
    if run.rfd then core.close(run.rfd) end
    if run.null then core.close(run.null) end
    container:delete({ snapshot_cleanup = true })
    return nil, e
  end
  local rfd, wfd = sys.pipe(true)
  if not rfd then return fail(wfd) end -- wfd: the error
  run.rfd = rfd
  local null
  null, err = sys.open("/dev/null", "r")
  if not null then
    core.close(wfd)
    return fail(err)
  end
  run.null = null
  local task
  task, err = container:new_task({ stdin = null, stdout = wfd, stderr = wfd, kind = "pipe",
    close = function() end })
  core.close(wfd)
  if not task then return fail(err) end
  run.task = task
  local ok
  ok, err = task:start()
  if not ok then
    task:kill(9)
    task:wait()
    task:delete()
    return fail(err)
  end
  local pidfd
  pidfd, err = sys.pidfd_open(task.pid)
  if not pidfd then
    task:kill(9)
    task:wait()
    task:delete()
    return fail(err)
  end
  run.pidfd = pidfd
  run.started = core.monotime()
  if step.timeout then run.deadline = run.started + step.timeout end
  if opts.logs then
    run.log = io.open(opts.logs .. "/" .. log_name(step), "wb")
  end
  return run
end

local function emit(run, line, opts)
  if run.out_len < M.MAX_OUTPUT then
    run.out[#run.out + 1] = line .. "\n"
    run.out_len = run.out_len + #line + 1
  end
  if run.log then run.log:write(line, "\n") end
  opts.output(("[%s] %s\n"):format(run.step.name, line))
end

-- read what the step wrote; true at end of file
local function drain(run, opts)
  while true do
    local data, err = sys.read(run.rfd, 65536)
    if data == nil then
      if err.sym == "EAGAIN" then return false end
      emit(run, "ctrlua: " .. tostring(err), opts)
      return true
    end
    if data == "" then return true end
    run.buf = run.buf .. data
    while true do
      local nl = run.buf:find("\n", 1, true)
      if not nl then break end
      emit(run, run.buf:sub(1, nl - 1), opts)
      run.buf = run.buf:sub(nl + 1)
    end
  end
end

local function close_output(run, opts)
  if run.rfd then
    core.close(run.rfd)
    run.rfd = nil
  end
  if run.buf ~= "" then
    emit(run, run.buf, opts)
    run.buf = ""
  end
  if run.log then
    run.log:close()
    run.log = nil
  end
end

-- the step has exited and its output ended: record, clean up
local function finish(run, opts)
  close_output(run, opts)
  if run.pidfd then core.close(run.pidfd) run.pidfd = nil end
  if run.null then core.close(run.null) run.null = nil end
  local step = run.step
  step.time = core.monotime() - run.started
  step.output = table.concat(run.out)
  if run.timed_out then
    step.status, step.code = "timeout", M.EXIT_TIMEOUT
    step.message = ("timed out after %gs"):format(step.timeout)
  elseif run.code == 0 then
    step.status, step.code = "passed", 0
  else
    step.status, step.code = "failed", run.code or M.EXIT_ERROR
    step.message = run.wait_err and tostring(run.wait_err) or ("exit code %d"):format(step.code)
  end
  local ok, err = run.task:delete()
  if ok == nil and err then opts.output(("[%s] ctrlua: %s\n"):format(step.name, tostring(err))) end
  ok, err = run.container:delete({ snapshot_cleanup = true })
  if not ok then opts.output(("[%s] ctrlua: %s\n"):format(step.name, tostring(err))) end
end

--- Run a job.
-- @param client a client
-- @tparam table job the job table (see the module's description)
-- @tparam[opt] table opts `jobs` (steps at once, default 1), `keep_going`, `workspace` (an
-- absolute directory; default job.workspace, else a fresh one under the client's state that is
-- removed afterwards), `logs` (a directory for STEP.log files), `output` (function(text) for
-- the live, prefixed output; default io.stdout), `policies` (false: no site policies),
-- `policy_dir`, `policy_files`
-- @return a report `{name=, steps={...}, code=, time=, workspace=}` (each step with `status`
-- "passed" | "failed" | "timeout" | "error" | "skipped" | "cancelled", `code`, `time`,
-- `output`, `message`), or nil, err for an invalid job
function M.run(client, job, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("opts: expected table", 2) end
  local jobs = opts.jobs or 1
  if type(jobs) ~= "number" or jobs < 1 then error("opts.jobs: expected a number >= 1", 2) end
  opts.output = opts.output or function(s) io.stdout:write(s) io.stdout:flush() end
  local steps, err = M.expand(job)
  if not steps then return nil, err end
  local t0 = core.monotime()
  -- each image once, before any step: pulled when missing, as `run --pull missing` does
  -- (job.pull = "always" | "never"; job.registry = run's registry flags by name)
  local pulled = {}
  for _, step in ipairs(steps) do
    if pulled[step.image] == nil then
      local f = {}
      for k, v in pairs(type(job.registry) == "table" and job.registry or {}) do f[k] = v end
      f.pull = job.pull or "missing"
      local v = { ref = step.image }
      local pok, perr = require("ctr.cmd.run").ensure_image(client, f, v)
      pulled[step.image] = pok and v.ref or { err = perr }
    end
    local p = pulled[step.image]
    if type(p) == "table" then step.pull_error = p.err else step.image = p end
  end

  local ws = opts.workspace or job.workspace
  local own_ws = false
  if ws == nil then
    ws = ("%s/pipelines/%s-%d"):format(client.state, (job.name:gsub("[^%w_%.%-]", "_")), core.getpid())
    own_ws = true
  end
  if type(ws) ~= "string" or ws:sub(1, 1) ~= "/" then return invalid("workspace: expected an absolute path") end
  local ok, err = sys.mkdir_p(ws, 493)
  if not ok then return nil, err end
  if opts.logs then
    ok, err = sys.mkdir_p(opts.logs, 493)
    if not ok then return nil, err end
  end

  local running, stop, first_fail = {}, false, nil
  local function settle(step)
    if step.status ~= "passed" and step.status ~= "skipped" and step.status ~= "cancelled" then
      if not first_fail then first_fail = step end
      if not opts.keep_going then stop = true end
    end
  end
  local function schedule()
    for _, step in ipairs(steps) do
      if step.status == nil then
        if stop then
          step.status = "cancelled"
        else
          local ready, blocked = true, false
          for _, d in ipairs(step.deps) do
            if d.status == nil or d.status == "running" then ready = false
            elseif d.status ~= "passed" then blocked = true end
          end
          if blocked then
            step.status, step.message = "skipped", "a step it needs did not pass"
          elseif ready and #running < jobs then
            step.status = "running"
            local run, serr = start_step(client, job, step, ws, opts)
            if run then
              running[#running + 1] = run
            else
              step.status, step.code, step.time = "error", M.EXIT_ERROR, 0
              step.message = tostring(serr)
              step.output = ""
              opts.output(("[%s] ctrlua: %s\n"):format(step.name, step.message))
              settle(step)
            end
          end
        end
      end
    end
  end

  while true do
    schedule()
    if #running == 0 then
      -- nothing runs: either everything is settled or what is left can never start
      local again = false
      for _, step in ipairs(steps) do if step.status == nil then again = true end end
      if not again then break end
    else
      local fds, timeout = {}, nil
      local now = core.monotime()
      for _, run in ipairs(running) do
        if run.rfd then fds[#fds + 1] = run.rfd end
        if run.pidfd and not run.exited then fds[#fds + 1] = run.pidfd end
        local limit = run.exited and (run.exited + M.DRAIN_GRACE) or (not run.killed and run.deadline)
        if limit then
          local left = math.max(0, limit - now)
          if not timeout or left < timeout then timeout = left end
        end
      end
      local ready
      ready, err = sys.poll(fds, timeout and math.ceil(timeout * 1000) or -1)
      if not ready then return nil, err end
      now = core.monotime()
      local still = {}
      for _, run in ipairs(running) do
        if run.rfd and ready[run.rfd] then
          if drain(run, opts) then close_output(run, opts) end
        end
        if not run.exited and ready[run.pidfd] then
          local code, werr = run.task:wait()
          run.code, run.wait_err = code, werr
          run.exited = core.monotime()
        end
        if not run.exited and not run.killed and run.deadline and now >= run.deadline then
          run.timed_out, run.killed = true, true
          run.task:kill(9)
        end
        if run.exited and (run.rfd == nil or now >= run.exited + M.DRAIN_GRACE) then
          if run.rfd then drain(run, opts) end
          finish(run, opts)
          settle(run.step)
        else
          still[#still + 1] = run
        end
      end
      running = still
    end
  end

  if own_ws then core.remove_tree(ws) end
  local report = { name = job.name, steps = steps, time = core.monotime() - t0, workspace = ws,
    code = first_fail and first_fail.code or 0 }
  for _, s in ipairs(steps) do s.time = s.time or 0 end
  return report
end

-- ---------------------------------------------------------------- reports

--- The summary table: STEP STATUS CODE TIME, one line a step.
function M.summary(report)
  local lines = { "STEP\tSTATUS\tCODE\tTIME\t" }
  for _, s in ipairs(report.steps) do
    lines[#lines + 1] = ("%s\t%s\t%s\t%s\t"):format(s.name, s.status or "?", s.code and tostring(s.code) or "-",
      s.time and ("%.2fs"):format(s.time) or "-")
  end
  return (require("ctr.cmd.cli").tabwrite(table.concat(lines, "\n") .. "\n", 1, 3):gsub(" +\n", "\n"))
end

local function xml(s)
  s = tostring(s):gsub("[%z\1-\8\11\12\14-\31]", "?")
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
end

--- A JUnit XML report: one testsuite (tests, failures, errors, skipped, time), a testcase per
-- step with its failure and its output as system-out.
function M.junit(report)
  local failures, errs, skipped = 0, 0, 0
  for _, s in ipairs(report.steps) do
    if s.status == "failed" or s.status == "timeout" then failures = failures + 1
    elseif s.status == "error" then errs = errs + 1
    elseif s.status == "skipped" or s.status == "cancelled" then skipped = skipped + 1 end
  end
  local b = { '<?xml version="1.0" encoding="UTF-8"?>\n',
    ('<testsuites name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">\n'):format(
      xml(report.name), #report.steps, failures, errs, skipped, report.time or 0),
    ('  <testsuite name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f">\n'):format(
      xml(report.name), #report.steps, failures, errs, skipped, report.time or 0) }
  for _, s in ipairs(report.steps) do
    b[#b + 1] = ('    <testcase name="%s" classname="%s" time="%.3f">\n'):format(xml(s.name), xml(report.name), s.time or 0)
    if s.status == "failed" or s.status == "timeout" then
      b[#b + 1] = ('      <failure type="%s" message="%s"/>\n'):format(s.status, xml(s.message or ""))
    elseif s.status == "error" then
      b[#b + 1] = ('      <error type="error" message="%s"/>\n'):format(xml(s.message or ""))
    elseif s.status == "skipped" or s.status == "cancelled" then
      b[#b + 1] = ('      <skipped message="%s"/>\n'):format(xml(s.message or s.status))
    end
    if s.output and s.output ~= "" then
      b[#b + 1] = "      <system-out>" .. xml(s.output) .. "</system-out>\n"
    end
    b[#b + 1] = "    </testcase>\n"
  end
  b[#b + 1] = "  </testsuite>\n</testsuites>\n"
  return table.concat(b)
end

return M
