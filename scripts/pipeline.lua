-- pipeline: run a CI job described in Lua, its steps in containers
--
-- ctrlua pipeline.lua [--jobs N] [--junit FILE] [--keep-going] [--workspace DIR] [--logs DIR] FILE.lua
-- Exit status: 0 when every step passed, else the exit code of the first step that failed
-- (124 for a timeout, 125 when a step could not be started); 1 for an invalid pipeline.
local ctr = require("ctr")
local cli = require("ctr.cmd.cli")
local term = require("ctr.cmd.term")
local pipeline = require("ctr.pipeline")

local def = {
  name = "pipeline", help_name = "ctrlua pipeline.lua", usage = "run a CI pipeline of container steps",
  args_usage = "[flags] FILE.lua",
  description = [[
FILE.lua returns {name=, image=, env=, steps={{name=, run=, image=, env=, needs=, timeout=,
workdir=, matrix=}, ...}}; see the ctr.pipeline module.  Each step runs in its own container
with the workspace bind-mounted at /workspace; its output is shown prefixed with [STEP].]],
  flags = {
    { name = "jobs", aliases = { "j" }, type = "int", value = 1, usage = "steps to run at once" },
    { name = "junit", type = "string", usage = "write a JUnit XML report to `FILE`" },
    { name = "keep-going", aliases = { "k" }, type = "bool", usage = "start the other steps after a failure" },
    { name = "workspace", type = "string", usage = "the workspace `DIR` (default: a temporary one, removed after)" },
    { name = "logs", type = "string", usage = "write each step's output to `DIR`/STEP.log" },
  },
}

local function fail(err, code)
  io.stdout:flush()
  io.stderr:write("ctrlua: ", tostring(err), "\n")
  os.exit(code or 1)
end

local r = cli.parse_or_exit(def, { ... })
local f = r.flags
if #r.args ~= 1 then cli.fail_usage(def, "expected one pipeline file") end
if f.jobs < 1 then fail("--jobs: expected a number >= 1") end

-- relative paths are the caller's
local function abs(p)
  if p == nil or p == "" or p:sub(1, 1) == "/" then return p ~= "" and p or nil end
  local cwd = os.getenv("PWD")
  if not cwd then fail(("%s: relative path and no $PWD"):format(p)) end
  return cwd .. "/" .. p
end

local job, err = pipeline.load(r.args[1])
if not job then fail(err) end
local client
client, err = ctr.client()
if not client then fail(err) end
local report
report, err = pipeline.run(client, job, { jobs = f.jobs, keep_going = f["keep-going"],
  workspace = abs(f.workspace), logs = abs(f.logs) })
if not report then fail(err) end

io.stdout:write("\n", pipeline.summary(report))
io.stdout:flush()
if f.junit ~= "" then
  local ok, werr = term.write_file(abs(f.junit), pipeline.junit(report), { mode = 420 })
  if not ok then fail(werr) end
end
if report.code ~= 0 then
  io.stderr:write(("ctrlua: pipeline %s failed: exit code %d\n"):format(report.name, report.code))
end
os.exit(report.code)
