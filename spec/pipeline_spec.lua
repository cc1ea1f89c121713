-- CI pipelines (ctr.pipeline, scripts/pipeline.lua): expansion and checks of a job, then real
-- runs: a failing step (exit code and JUnit), a timeout, parallel steps (wall time below the
-- sum), needs order over a shared workspace, fail-fast against keep-going, logs, no leftovers.
local S = require("support.ctrlua")
local core = require("ctr.core")
local pipeline = require("ctr.pipeline")

local IMAGE = S.IMAGE

describe("ctr.pipeline expand", function()
  it("expands a matrix into named variants with their env, and needs into all of them", function()
    local steps = assert(pipeline.expand({ name = "j", image = IMAGE, env = { CI = "1" }, steps = {
      { name = "t", matrix = { B = { "x", "y" }, A = { "1" } }, run = "true" },
      { name = "r", needs = { "t" }, run = { "echo", "hi" }, image = "other:1" },
      { name = "i", matrix = { image = { "img:a", "img:b" } }, run = "true" },
    } }))
    local names = {}
    for _, s in ipairs(steps) do names[#names + 1] = s.name end
    assert.are.same({ "t[A=1,B=x]", "t[A=1,B=y]", "r", "i[image=img:a]", "i[image=img:b]" }, names)
    assert.are.same({ "CI=1", "A=1", "B=x" }, steps[1].env)
    assert.are.same({ "sh", "-c", "true" }, steps[1].argv)
    assert.are.same({ "echo", "hi" }, steps[3].argv)
    assert.are.equal("other:1", steps[3].image)
    assert.are.equal(2, #steps[3].deps)
    assert.are.equal("img:b", steps[5].image)
    assert.are.equal("/workspace", steps[1].workdir)
  end)

  local bad = {
    { "a cycle", { { name = "a", needs = { "b" }, run = "true" }, { name = "b", needs = { "a" }, run = "true" } },
      "pipeline: needs form a cycle: a -> b -> a" },
    { "a self need", { { name = "a", needs = { "a" }, run = "true" } }, "pipeline: needs form a cycle: a -> a" },
    { "an unknown need", { { name = "a", needs = { "zz" }, run = "true" } },
      'pipeline: step "a" needs "zz", which is not a step' },
    { "a step twice", { { name = "a", run = "true" }, { name = "a", run = "true" } },
      'pipeline: steps[2]: step "a" defined twice' },
    { "no run", { { name = "a" } }, "pipeline: steps[1].run: expected a shell command or an argv list" },
    { "a bad timeout", { { name = "a", run = "true", timeout = -1 } },
      "pipeline: steps[1].timeout: expected a number of seconds" },
    { "a bad name", { { name = "a b", run = "true" } }, "pipeline: steps[1].name: expected a name of [A-Za-z0-9_.-]" },
  }
  for _, row in ipairs(bad) do
    it("refuses " .. row[1], function()
      local steps, err = pipeline.expand({ name = "j", image = IMAGE, steps = row[2] })
      assert.is_nil(steps)
      assert.are.equal(row[3], err.msg)
    end)
  end

  it("writes JUnit XML with escaped text", function()
    local x = pipeline.junit({ name = "j<1>", time = 1.5, steps = {
      { name = "ok", status = "passed", code = 0, time = 0.5, output = "a & b\n" },
      { name = "bad", status = "failed", code = 3, time = 1, message = "exit code 3", output = "" },
      { name = "slow", status = "timeout", code = 124, time = 1, message = "timed out after 1s" },
      { name = "later", status = "cancelled", time = 0 },
    } })
    assert.matches('<testsuite name="j&lt;1&gt;" tests="4" failures="2" errors="0" skipped="1" time="1.500">', x, 1, true)
    assert.matches('<system-out>a &amp; b\n</system-out>', x, 1, true)
    assert.matches('<testcase name="bad" classname="j&lt;1&gt;" time="1.000">\n      <failure type="failed" message="exit code 3"/>', x, 1, true)
    assert.matches('<failure type="timeout" message="timed out after 1s"/>', x, 1, true)
    assert.matches('<skipped message="cancelled"/>', x, 1, true)
  end)
end)

describe("pipelines in containers #root", function()
  local env

  before_each(function() env = S.new_env() end)
  after_each(function() env:destroy() end)
  teardown(function() S.cleanup() end)

  local function file(name, text)
    local p = env.dir .. "/" .. name
    assert(core.write_file(p, text, { mode = 420 }))
    return p
  end

  local function job(steps, name)
    local parts = { "return { name = ", ("%q"):format(name or "p"), ", image = ", ("%q"):format(IMAGE), ", steps = {\n" }
    for _, s in ipairs(steps) do parts[#parts + 1] = "  " .. s .. ",\n" end
    parts[#parts + 1] = "} }\n"
    return file("pipeline.lua", table.concat(parts))
  end

  local function nothing_left()
    assert.are.same({}, env:containers())
    assert.are.same({}, env:leftovers())
    assert.are.same({}, S.mounts_under(env.dir))
  end

  it("exits with a failing step's code and reports it in the summary and JUnit", function()
    local p = job({
      '{ name = "good", run = "echo fine" }',
      '{ name = "bad", needs = { "good" }, run = "echo broken >&2; exit 3" }',
    })
    local junit = env.dir .. "/junit.xml"
    local r = env:run("pipeline.lua", "--junit", junit, p)
    assert.are.equal(3, r.code, r.stderr)
    assert.matches("[good] fine\n", r.stdout, 1, true)
    assert.matches("[bad] broken\n", r.stdout, 1, true)
    assert.matches("\nSTEP +STATUS +CODE +TIME\ngood +passed +0 +[%d.]+s\nbad +failed +3 +[%d.]+s\n", r.stdout)
    assert.matches("ctrlua: pipeline p failed: exit code 3", r.stderr, 1, true)
    local x = assert(S.slurp(junit))
    assert.matches('tests="2" failures="1" errors="0" skipped="0"', x, 1, true)
    assert.matches('<testcase name="bad" classname="p" time="[%d.]+">\n      <failure type="failed" message="exit code 3"/>\n      <system%-out>broken\n</system%-out>', x)
    nothing_left()
  end)

  it("kills a step past its timeout: status timeout, code 124", function()
    local p = job({ '{ name = "slow", run = "echo started; sleep 30", timeout = 0.5 }' })
    local junit = env.dir .. "/junit.xml"
    local t = core.monotime()
    local r = env:run("pipeline.lua", "--junit", junit, p)
    local took = core.monotime() - t
    assert.are.equal(124, r.code, r.stderr)
    assert.is_true(took < 5, "took " .. took)
    assert.matches("[slow] started\n", r.stdout, 1, true)
    assert.matches("\nslow +timeout +124 ", r.stdout)
    assert.matches('<failure type="timeout" message="timed out after 0.5s"/>', S.slurp(junit), 1, true)
    nothing_left()
  end)

  it("runs steps in parallel up to --jobs: two `sleep 1` finish in less than 1.8 s", function()
    local p = job({
      '{ name = "one", run = "sleep 1; echo one" }',
      '{ name = "two", run = "sleep 1; echo two" }',
    })
    local t = core.monotime()
    local r = env:run("pipeline.lua", "--jobs", "2", p)
    local took = core.monotime() - t
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(took < 1.8, "two 1 s steps with --jobs 2 took " .. took .. " s")
    -- and with one job at a time they do take the sum
    t = core.monotime()
    r = env:run("pipeline.lua", "--jobs", "1", p)
    took = core.monotime() - t
    assert.are.equal(0, r.code, r.stderr)
    assert.is_true(took >= 2, "two 1 s steps with --jobs 1 took " .. took .. " s")
    nothing_left()
  end)

  it("starts a step after the steps it needs, over one workspace", function()
    local ws = env.dir .. "/ws"
    local p = job({
      '{ name = "late", needs = { "first" }, run = "cat /workspace/stamp; echo late >> /workspace/order" }',
      '{ name = "first", run = "sleep 0.3; echo stamp > /workspace/stamp; echo first >> /workspace/order" }',
    })
    local r = env:run("pipeline.lua", "--jobs", "2", "--workspace", ws, p)
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("[late] stamp\n", r.stdout, 1, true)
    assert.are.equal("first\nlate\n", S.slurp(ws .. "/order"))
    nothing_left()
  end)

  it("fail-fast starts nothing after a failure; --keep-going runs the rest", function()
    local p = job({
      '{ name = "fails", run = "exit 2" }',
      '{ name = "independent", run = "echo ran" }',
      '{ name = "dependent", needs = { "fails" }, run = "echo never" }',
    })
    local r = env:run("pipeline.lua", p)
    assert.are.equal(2, r.code, r.stderr)
    assert.matches("\nfails +failed +2 .*\nindependent +cancelled +%- .*\ndependent +cancelled +%- ", r.stdout)
    assert.is_nil(r.stdout:find("[independent] ran", 1, true))

    r = env:run("pipeline.lua", "--keep-going", p)
    assert.are.equal(2, r.code, r.stderr)
    assert.matches("[independent] ran\n", r.stdout, 1, true)
    assert.matches("\nindependent +passed +0 .*\ndependent +skipped +%- ", r.stdout)
    assert.is_nil(r.stdout:find("never", 1, true))
    nothing_left()
  end)

  it("writes each step's log to --logs and passes env and workdir", function()
    local logs = env.dir .. "/logs"
    local p = file("pipeline.lua", ([[
      return { name = "envs", image = %q, env = { A = "job" }, steps = {
        { name = "show", env = { B = "step" }, workdir = "/tmp", run = "echo A=$A B=$B; pwd; echo err >&2" },
      } }]]):format(IMAGE))
    local r = env:run("pipeline.lua", "--logs", logs, p)
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("A=job B=step\n/tmp\nerr\n", S.slurp(logs .. "/show.log"))
    nothing_left()
  end)

  it("reports a step that cannot start (no such image) with code 125", function()
    local p = file("pipeline.lua", [[
      return { name = "noimg", image = "no.such/image:1", steps = { { name = "x", run = "true" } } }]])
    local r = env:run("pipeline.lua", p)
    assert.are.equal(125, r.code)
    assert.matches("\nx +error +125 ", r.stdout)
    nothing_left()
  end)

  it("refuses an invalid pipeline with exit 1", function()
    local p = job({ '{ name = "a", needs = { "a" }, run = "true" }' })
    local r = env:run("pipeline.lua", p)
    assert.are.equal(1, r.code)
    assert.are.equal("ctrlua: pipeline: needs form a cycle: a -> a\n", r.stderr)
  end)
end)
