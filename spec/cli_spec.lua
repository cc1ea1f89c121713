local cli = require("ctr.cmd.cli")
local run = require("ctr.cmd.run")
local core = require("ctr.core")

local function read(path)
  return assert(core.read_file(path))
end

local def = {
  name = "ls", help_name = "ctr containers list", usage = "list containers",
  args_usage = "[flags] [<filter>, ...]",
  flags = {
    { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the container id" },
    { name = "namespace", aliases = { "n" }, type = "string", usage = "namespace", value = "default" },
    { name = "env", type = "strings", usage = "env" },
    { name = "count", type = "int", usage = "count" },
    { name = "size", type = "uint64", usage = "size" },
    { name = "cpus", type = "float", usage = "cpus" },
    { name = "gpus", type = "ints", usage = "gpus" },
  },
}

local function parse(args, d)
  return cli.parse(d or def, args)
end

local function perr(args, d)
  local r, err = parse(args, d)
  assert.is_nil(r)
  assert.is_true(err.usage)
  return err.msg
end

describe("cli parse", function()
  it("gives defaults when nothing is set, under every name", function()
    local r = assert(parse({}))
    assert.is_false(r.flags.quiet)
    assert.is_false(r.flags.q)
    assert.are.equal("default", r.flags.namespace)
    assert.are.equal("default", r.flags.n)
    assert.are.same({}, r.flags.env)
    assert.are.equal(0, r.flags.count)
    assert.are.same({}, r.args)
    assert.are.same({}, r.set)
  end)

  it("accepts long and short forms with one or two dashes", function()
    for _, args in ipairs({ { "-n", "x" }, { "--n", "x" }, { "-namespace", "x" }, { "--namespace", "x" },
        { "--namespace=x" }, { "-n=x" } }) do
      local r = assert(parse(args))
      assert.are.equal("x", r.flags.namespace)
      assert.are.equal("x", r.flags.n)
      assert.is_true(r.set.namespace)
    end
  end)

  it("repeats string slices: --env K=V, --env=K=V", function()
    local r = assert(parse({ "--env", "A=1", "--env=B=2=3", "-env", "C" }))
    assert.are.same({ "A=1", "B=2=3", "C" }, r.flags.env)
    r = assert(parse({ "--gpus", "0", "--gpus=0x1" }))
    assert.are.same({ 0, 1 }, r.flags.gpus)
  end)

  it("bool flags: --q, -q, --quiet=false, =1, =T; no separate value", function()
    assert.is_true(assert(parse({ "-q" })).flags.quiet)
    assert.is_false(assert(parse({ "--quiet=false" })).flags.quiet)
    assert.is_true(assert(parse({ "--quiet=1" })).flags.quiet)
    assert.is_true(assert(parse({ "--quiet=T" })).flags.quiet)
    local r = assert(parse({ "--quiet", "false" }))
    assert.is_true(r.flags.quiet)
    assert.are.same({ "false" }, r.args)
  end)

  it("a value flag takes the next argument, even one starting with -", function()
    local r = assert(parse({ "--namespace", "-q" }))
    assert.are.equal("-q", r.flags.namespace)
    assert.is_false(r.flags.quiet)
  end)

  it("reorders flags after positionals (urfave v1) unless skip_reorder", function()
    local r = assert(parse({ "foo", "--namespace", "x", "bar", "-q" }))
    assert.is_true(r.flags.quiet)
    assert.are.equal("x", r.flags.namespace)
    assert.are.same({ "foo", "bar" }, r.args)
    -- urfave v1's quirk, kept: the word after a bool flag is moved along with it, and then
    -- ends the flags, so what follows it is positional
    r = assert(parse({ "foo", "-q", "bar", "--namespace", "x" }))
    assert.is_true(r.flags.quiet)
    assert.are.equal("default", r.flags.namespace)
    assert.are.same({ "bar", "--namespace", "x", "foo" }, r.args)
    local d = { name = "run", skip_reorder = true, flags = def.flags }
    r = assert(parse({ "-q", "image", "id", "sh", "-n", "x", "--env", "A=1" }, d))
    assert.is_true(r.flags.quiet)
    assert.are.equal("default", r.flags.namespace)
    assert.are.same({ "image", "id", "sh", "-n", "x", "--env", "A=1" }, r.args)
  end)

  it("-- ends the flags; - alone is a positional", function()
    local r = assert(parse({ "-q", "--", "-n", "x" }))
    assert.are.same({ "-n", "x" }, r.args)
    assert.are.equal("default", r.flags.namespace)
    r = assert(parse({ "-", "-q" }))
    assert.is_true(r.flags.quiet)
    assert.are.same({ "-" }, r.args)
    local d = { name = "run", skip_reorder = true, flags = def.flags }
    r = assert(parse({ "--", "-q" }, d))
    assert.are.same({ "-q" }, r.args)
    assert.is_false(r.flags.quiet)
  end)

  it("an undefined flag after a positional stays positional when reordering", function()
    local r = assert(parse({ "img", "-foo" }))
    assert.are.same({ "img", "-foo" }, r.args)
  end)

  it("words errors as Go's flag package", function()
    assert.are.equal("flag provided but not defined: -foo", perr({ "--foo" }))
    assert.are.equal("flag provided but not defined: -foo", perr({ "-foo=1" }))
    assert.are.equal("flag needs an argument: -env", perr({ "--env" }))
    assert.are.equal("flag needs an argument: -n", perr({ "-q", "-n" }))
    assert.are.equal('invalid value "x" for flag -cpus: parse error', perr({ "--cpus", "x" }))
    assert.are.equal('invalid value "1.5" for flag -count: parse error', perr({ "--count=1.5" }))
    assert.are.equal('invalid value "-1" for flag -size: parse error', perr({ "--size", "-1" }))
    assert.are.equal('invalid value "99999999999999999999" for flag -count: value out of range',
      perr({ "--count", "99999999999999999999" }))
    assert.are.equal('invalid boolean value "yes" for -quiet: parse error', perr({ "--quiet=yes" }))
    assert.are.equal("bad flag syntax: ---q", perr({ "---q" }))
    assert.are.equal("bad flag syntax: -=x", perr({ "-=x" }))
  end)

  it("parses numbers as Go's strconv with base 0", function()
    local r = assert(parse({ "--count", "0x10", "--size", "1_000", "--cpus", "1.5" }))
    assert.are.equal(16, r.flags.count)
    assert.are.equal(1000, r.flags.size)
    assert.are.equal(1.5, r.flags.cpus)
    assert.are.equal(8, assert(parse({ "--count=010" })).flags.count)
    assert.are.equal(-5, assert(parse({ "--count=-5" })).flags.count)
    assert.are.equal(5, assert(parse({ "--count=0b101" })).flags.count)
    assert.are.equal(1e3, assert(parse({ "--cpus=1e3" })).flags.cpus)
    assert.matches("parse error", perr({ "--count=08" }))
    assert.matches("parse error", perr({ "--count=" }))
  end)

  it("asks for help on -h/--help when they are not defined", function()
    local r = assert(parse({ "--help" }))
    assert.is_true(r.help)
    assert.is_true(assert(parse({ "-h" })).help)
  end)

  it("takes a default from the flag's environment variable", function()
    local d = { name = "x", flags = { { name = "snapshotter", type = "string", env = "PATH" } } }
    assert.are.equal(core.getenv("PATH"), assert(parse({}, d)).flags.snapshotter)
    assert.are.equal("native", assert(parse({ "--snapshotter", "native" }, d)).flags.snapshotter)
  end)

  it("raises on a malformed definition", function()
    assert.has_error(function() cli.parse({ flags = { { name = "x", type = "bogus" } } }, {}) end)
    assert.has_error(function() cli.parse(def, "x") end, "args: expected table")
  end)
end)

describe("cli help", function()
  it("prints ctr run's help exactly as containerd 1.6's ctr does", function()
    assert.are.equal(read("spec/fixtures/ctr-1.6-run-help.txt"), cli.usage(run.run_def("ctr run")))
  end)

  it("prints ctr containers list's help exactly", function()
    local d = { name = "list", help_name = "ctr containers list", usage = "list containers",
      args_usage = "[flags] [<filter>, ...]",
      flags = { { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the container id" } } }
    assert.are.equal(read("spec/fixtures/ctr-1.6-containers-ls-help.txt"), cli.usage(d))
  end)

  it("formats flag lines: placeholder, defaults, env hint", function()
    assert.are.equal("--runtime value\truntime name (default: \"io.containerd.runc.v2\")",
      cli.flag_string({ name = "runtime", type = "string", usage = "runtime name", value = "io.containerd.runc.v2" }))
    assert.are.equal("--config value, -c value\tpath", cli.flag_string({ name = "config", aliases = { "c" }, usage = "path" }))
    assert.are.equal("--uidmap a:b:c\tformat a:b:c", cli.flag_string({ name = "uidmap", usage = "format `a:b:c`" }))
    assert.are.equal("--cpu-quota value\tLimit (default: -1)", cli.flag_string({ name = "cpu-quota", type = "int64", usage = "Limit", value = -1 }))
    assert.are.equal("-s value\tname. [$X]", cli.flag_string({ name = "s", usage = "name.", env = "X" }))
  end)

  it("tabwrite pads every terminated cell like Go's tabwriter", function()
    assert.are.equal("CONTAINER    IMAGE    RUNTIME    \nab           -        r          \n",
      cli.tabwrite("CONTAINER\tIMAGE\tRUNTIME\t\nab\t-\tr\t\n", 4, 4))
    assert.are.equal("x\n  a    b\n  ccc  d\ny\n", cli.tabwrite("x\n  a\tb\n  ccc\td\ny\n", 1, 2))
  end)
end)

describe("cli run flags", function()
  it("parses a ctr run command line and stops at the image", function()
    local r = assert(cli.parse(run.run_def(), { "--rm", "-t", "--env", "A=1", "--env-file=/e", "-c", "/cfg",
      "--cpus", "0.5", "docker.io/library/busybox:latest", "box", "sh", "-c", "echo --rm" }))
    assert.is_true(r.flags.rm)
    assert.is_true(r.flags.tty)
    assert.is_true(r.flags.t)
    assert.are.same({ "A=1" }, r.flags.env)
    assert.are.equal("/e", r.flags["env-file"])
    assert.are.equal("/cfg", r.flags.config)
    assert.are.equal(0.5, r.flags.cpus)
    assert.are.equal(1024, r.flags["cpu-shares"])
    assert.are.equal(-1, r.flags["cpu-quota"])
    assert.are.equal("io.containerd.runc.v2", r.flags.runtime)
    assert.are.same({ "docker.io/library/busybox:latest", "box", "sh", "-c", "echo --rm" }, r.args)
  end)

  it("names the first unsupported flag given", function()
    local d = run.run_def()
    local r = assert(cli.parse(d, { "--rm", "--env", "A=1", "img", "id" }))
    assert.is_nil(cli.unsupported(d, r))
    -- a definition with a flag not marked supported (run's own flags may all be supported)
    local d2 = { name = "x", flags = { { name = "rm", type = "bool", supported = true },
      { name = "later", type = "string" } } }
    r = assert(cli.parse(d2, { "--rm", "--later", "v", "img" }))
    assert.are.equal("later", cli.unsupported(d2, r))
  end)

  it("has every flag of ctr run --help", function()
    local help = read("spec/fixtures/ctr-1.6-run-help.txt")
    local n = 0
    for name in help:gmatch("\n   %-%-([%w%-]+)") do
      n = n + 1
      local found = false
      for _, f in ipairs(run.run_flags) do if f.name == name then found = true end end
      assert.is_true(found, name)
    end
    assert.are.equal(#run.run_flags, n)
  end)

  it("label_args as ctr: k=v, k= and a bare k meaning true", function()
    assert.are.same({ a = "1", b = "", c = "true", d = "x=y" }, cli.label_args({ "a=1", "b=", "c", "d=x=y" }))
  end)
end)
