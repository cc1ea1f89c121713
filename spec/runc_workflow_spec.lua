-- runc's lifecycle as a shell user drives it, scripted once (WORKFLOW, a shell script) and run
-- against Debian's runc and ctrlua-runc, each with a --root, a bundle and a cgroup of its own:
-- spec, an edit to run sleep, create, start, exec, pause, resume, state, list, kill, delete;
-- delete --force of a paused container; kill --all.  The two transcripts (exit codes, output,
-- state fields) must be the same once pids, times and paths are normalised.  Then the
-- lifecycle details one by one (kill, state and list, exec's flags, a cgroup that is busy or
-- frozen), checked on ctrlua-runc and, where runc 1.1 does the same, against runc.  The
-- rootfs is the test image's busybox, extracted from its layers.
local core = require("ctr.core")
local S = require("support.ctrlua")
local cgroups = require("ctr.cgroups")

local q = S.q
local BIN = (os.getenv("CTRLUA_BIN") or "build/ctrlua"):gsub("ctrlua$", "ctrlua-runc")
if BIN:sub(1, 1) ~= "/" then BIN = core.readlink("/proc/self/cwd") .. "/" .. BIN end
local RUNC = core.stat("/usr/sbin/runc") and "/usr/sbin/runc" or nil

-- $1 runtime, $2 its --root, $3 the bundle (empty but for rootfs/), $4 the id prefix, $5 the
-- cgroupsPath, $6 the container's cgroup directory in one hierarchy.  Polls are bounded.
local WORKFLOW = [=[
BIN=$1 ROOT=$2 B=$3 ID=$4 CG=$5 CGDIR=$6
r() { echo "== $*"; "$BIN" --root "$ROOT" "$@" 2>&1; echo "[rc=$?]"; }
until_status() {
  i=0
  while [ $i -lt 400 ]; do
    "$BIN" --root "$ROOT" state "$1" 2>/dev/null | grep -q "\"status\": \"$2\"" && return 0
    sleep 0.05; i=$((i+1))
  done
  echo "!! $1 never $2"
}
gone() { s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null); [ -z "$s" ] || [ "$s" = Z ]; }
until_gone() {
  i=0
  while [ $i -lt 400 ]; do gone "$1" && return 0; sleep 0.05; i=$((i+1)); done
  echo "!! $1 still running"
}
alive() { if gone "$(cat "$1")"; then echo "$1: gone"; else echo "$1: alive"; fi; }

cd "$B" || exit 1
r spec
sed -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"sleep", "1000"/' \
  -e "s#\"linux\": {#\"linux\": {\"cgroupsPath\": \"$CG\",#" config.json >config.new &&
  mv config.new config.json

r create "$ID-a"
r state "$ID-a"
r list
r start "$ID-a"
r start "$ID-a"
r state "$ID-a"
r exec "$ID-a" sh -c 'echo out; exit 3'
r exec "$ID-a" sh -c 'echo err >&2'
r exec -d --pid-file x1.pid "$ID-a" sleep 1000
alive x1.pid
r pause "$ID-a"
r pause "$ID-a"
r state "$ID-a"
r list
r list -q
r exec "$ID-a" true
r resume "$ID-a"
r resume "$ID-a"
r state "$ID-a"
r delete "$ID-a"
r kill "$ID-a" KILL
until_status "$ID-a" stopped
r state "$ID-a"
r kill "$ID-a"
r start "$ID-a"
r exec "$ID-a" true
r delete "$ID-a"
r state "$ID-a"
r kill "$ID-a"
r list
r list --format json

r run -d "$ID-b"
r exec -d --pid-file x2.pid "$ID-b" sleep 1000
r pause "$ID-b"
r kill "$ID-b" KILL
until_status "$ID-b" stopped
r state "$ID-b"
r delete "$ID-b"
r run -d "$ID-b"
r pause "$ID-b"
r delete "$ID-b"
r delete --force "$ID-b"
r state "$ID-b"
if [ -e "$CGDIR" ]; then echo "cgroup: left"; else echo "cgroup: gone"; fi

r run -d "$ID-c"
r exec -d --pid-file x3.pid "$ID-c" sleep 1000
r exec -d --pid-file x4.pid "$ID-c" sleep 1000
r pause "$ID-c"
r kill --all "$ID-c" TERM
until_gone "$(cat x3.pid)"
until_gone "$(cat x4.pid)"
alive x3.pid
alive x4.pid
r state "$ID-c"
r kill -a "$ID-c" KILL
until_status "$ID-c" stopped
r kill --all "$ID-c" KILL
r delete "$ID-c"
r delete --force "$ID-c"
r list -q
]=]

describe("runc's lifecycle, scripted once #root", function()
  local dir, layers, n = nil, nil, 0

  -- the test image's layers, in order (index.json, its manifest)
  local function image_layers(into)
    S.must(("mkdir -p %s && tar -xf %s -C %s"):format(q(into), q(S.IMAGE_TAR), q(into)))
    local function blob(digest) return into .. "/blobs/sha256/" .. digest:match("sha256:(%x+)") end
    local index = core.json_decode(assert(S.slurp(into .. "/index.json")))
    local manifest = core.json_decode(assert(S.slurp(blob(index.manifests[1].digest))))
    local out = {}
    for i, l in ipairs(manifest.layers) do out[i] = blob(l.digest) end
    return out
  end

  -- a bundle directory with the image's busybox as rootfs/ and no config.json
  local function bundle(name)
    local b = dir .. "/" .. name
    S.must(("mkdir -p %s/rootfs"):format(q(b)))
    for _, l in ipairs(layers) do S.must(("tar -xf %s -C %s/rootfs"):format(q(l), q(b))) end
    return b
  end

  local function unique(name)
    n = n + 1
    return ("%s-%s-%d"):format(name, dir:match("[^.]+$"), n)
  end

  -- the cgroup directory of path in the freezer hierarchy (runc's kill --all and pause use it)
  local function cg_dir(path)
    local l = assert(cgroups.layout())
    local mp = l.controllers.freezer or (l.unified and l.unified.mountpoint)
    return mp .. path
  end

  local started = {}
  local function run_rt(bin, root, args)
    local w = { q(bin), "--root", q(root) }
    for _, a in ipairs(args) do w[#w + 1] = q(a) end
    return S.sh(table.concat(w, " ") .. " </dev/null")
  end

  setup(function()
    dir = S.tmpdir()
    layers = image_layers(dir .. "/image")
  end)

  teardown(function()
    for _, s in ipairs(started) do
      -- a test that failed may have left a container paused
      if s.cgroup then cgroups.thaw(s.cgroup) end
      local ids = run_rt(s.bin, s.root, { "list", "-q" })
      for id in ids:gmatch("[^\n]+") do run_rt(s.bin, s.root, { "delete", "--force", id }) end
      if s.cgroup then cgroups.delete(s.cgroup) end
    end
    S.unmount_under(dir)
    core.remove_tree(dir)
  end)

  -- one runtime's run of WORKFLOW: its transcript
  local function workflow(which, bin)
    local root, b = dir .. "/root-" .. which, bundle(which)
    local cg = "/" .. unique("ctrlua-wf")
    started[#started + 1] = { bin = bin, root = root, cgroup = cg }
    local script = dir .. "/workflow.sh"
    assert(core.write_file(script, WORKFLOW, { mode = 420 }))
    local out = S.sh(("sh %s %s %s %s wf %s %s"):format(q(script), q(bin), q(root), q(b), q(cg),
      q(cg_dir(cg))))
    return out, b
  end

  -- what differs between two runs by nature: pids, times, the bundle's path; a table's
  -- spacing follows its cells' widths (checked on its own, see tabwriter)
  local function normalise(out, b)
    out = out:gsub(b:gsub("%p", "%%%0"), "BUNDLE")
    out = out:gsub('time="[^"]*" ', "")
    out = out:gsub("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z", "TIME")
    out = out:gsub('"pid": [1-9]%d*', '"pid": PID'):gsub('"pid":[1-9]%d*', '"pid":PID')
    local lines = {}
    for line in (out .. "\n"):gmatch("([^\n]*)\n") do
      if line:match("^wf%-%a%s") or line:match("^ID%s+PID") then
        line = line:gsub("%s%s+", "\t"):gsub("^(wf%-%a\t)%d+", "%1PID")
      end
      lines[#lines + 1] = line
    end
    return table.concat(lines, "\n")
  end

  -- Go's tabwriter (minwidth 12, padding 3): a column is as wide as its widest cell plus 3,
  -- at least 12; the last column is not padded
  local function check_tabwriter(out)
    local rows = {}
    for block in out:gmatch("== list\n(.-)%[rc=") do
      local t = {}
      for line in block:gmatch("[^\n]+") do t[#t + 1] = line end
      rows[#rows + 1] = t
    end
    assert.is_true(#rows > 0)
    for _, t in ipairs(rows) do
      local cells = {}
      for i, line in ipairs(t) do
        cells[i] = {}
        for c in line:gmatch("%S+") do cells[i][#cells[i] + 1] = c end
      end
      local w = {}
      for c = 1, 5 do
        w[c] = 12
        for _, r in ipairs(cells) do w[c] = math.max(w[c], #r[c] + 3) end
      end
      for i, r in ipairs(cells) do
        local want = ""
        for c = 1, 5 do want = want .. r[c] .. (" "):rep(w[c] - #r[c]) end
        assert.are.equal(want .. r[6], t[i])
      end
    end
  end

  it("runs the same against runc and ctrlua-runc: exit codes, output, state fields", function()
    local mine, mb = workflow("ctrl", BIN)
    local norm = normalise(mine, mb)
    -- ctrlua-runc on its own: the statuses of the lifecycle, as runc reports them
    local statuses = {}
    for s in mine:gmatch('"status": "(%a+)"') do statuses[#statuses + 1] = s end
    assert.are.same({ "created", "running", "paused", "running", "stopped", "stopped",
      "running" }, statuses, mine)
    assert.truthy(norm:find("== exec wf-a sh -c echo out; exit 3\nout\n[rc=3]", 1, true), norm)
    assert.truthy(norm:find("== exec wf-a sh -c echo err >&2\nerr\n[rc=0]", 1, true), norm)
    assert.truthy(norm:find("x1.pid: alive", 1, true), norm)
    assert.truthy(norm:find("x3.pid: gone\nx4.pid: gone", 1, true), norm)
    assert.truthy(norm:find("cgroup: gone", 1, true), norm)
    assert.truthy(norm:find('== list --format json\nnull\n[rc=0]', 1, true), norm)
    check_tabwriter(mine)
    if not RUNC then
      pending("runc is not installed: ctrlua-runc checked alone")
      return
    end
    local theirs, tb = workflow("runc", RUNC)
    check_tabwriter(theirs)
    local tnorm = normalise(theirs, tb)
    if tnorm ~= norm then
      -- the first line that differs, for the message
      local a, b = {}, {}
      for l in (tnorm .. "\n"):gmatch("([^\n]*)\n") do a[#a + 1] = l end
      for l in (norm .. "\n"):gmatch("([^\n]*)\n") do b[#b + 1] = l end
      for i = 1, math.max(#a, #b) do
        if a[i] ~= b[i] then
          error(("line %d: runc %q, ctrlua-runc %q\n--- runc:\n%s\n--- ctrlua-runc:\n%s"):format(i,
            tostring(a[i]), tostring(b[i]), tnorm, norm))
        end
      end
    end
  end)

  -- the runtimes a detail is checked on: ctrlua-runc, and runc where it is installed
  local function runtimes()
    local t = { { name = "ctrl", bin = BIN } }
    if RUNC then t[2] = { name = "runc", bin = RUNC } end
    return t
  end

  -- a runtime's own root, and a bundle running sleep with a cgroup of its own; edit(spec)
  local function prepare(rt, edit)
    rt.root = dir .. "/root-" .. unique(rt.name)
    rt.bundle = bundle(unique("b-" .. rt.name))
    rt.cg = "/" .. unique("ctrlua-wfd")
    rt.cgdir = cg_dir(rt.cg)
    started[#started + 1] = { bin = rt.bin, root = rt.root, cgroup = rt.cg }
    S.must(("cd %s && %s spec"):format(q(rt.bundle), q(BIN)))
    local spec = core.json_decode(assert(S.slurp(rt.bundle .. "/config.json")))
    spec.process.terminal = false
    spec.process.args = core.json_array({ "sleep", "1000" })
    spec.linux.cgroupsPath = rt.cg
    if edit then edit(spec) end
    assert(core.write_file(rt.bundle .. "/config.json", core.json_encode(spec), { mode = 420 }))
    return rt
  end

  -- rt with args (in dir `cwd`, default the bundle): output (stdout and stderr, the log's
  -- time left out) and exit code.  The output goes through a file: a detached container
  -- keeps its stdio, and a pipe would stay open as long as it runs.
  local function call(rt, args, cwd, extra)
    local w = { "cd", q(cwd or rt.bundle), "&&", q(rt.bin), "--root", q(rt.root) }
    for _, a in ipairs(args) do w[#w + 1] = q(a) end
    local file = dir .. "/call.out"
    local _, code = S.sh(("%s </dev/null >%s 2>&1 %s"):format(table.concat(w, " "), q(file),
      extra or ""))
    return (S.slurp(file) or ""):gsub('time="[^"]*" ', ""), code
  end
  local function must(rt, args)
    local out, code = call(rt, args)
    assert(code == 0, rt.name .. " " .. table.concat(args, " ") .. ": " .. out)
    return out
  end

  local function status(rt, id)
    local out = call(rt, { "state", id })
    return out:match('"status": "(%a+)"')
  end

  local function until_status(rt, id, want)
    S.until_true(function() return status(rt, id) == want end, 20,
      rt.name .. " " .. id .. " " .. want)
  end

  local function proc_gone(pid)
    local st = core.proc_stat(pid)
    return st == nil or st.state == "Z" or st.state == "X"
  end

  -- f(rt) on each runtime; its results must be the same on both
  local function same_on_both(f)
    local results = {}
    for _, rt in ipairs(runtimes()) do results[#results + 1] = f(rt) end
    if results[2] then assert.are.same(results[2], results[1]) end
    return results[1]
  end

  describe("kill", function()
    it("SIGKILL of a paused container thaws it, and the container stops", function()
      local r = same_on_both(function(rt)
        prepare(rt)
        must(rt, { "run", "-d", "k" })
        must(rt, { "pause", "k" })
        local out, code = call(rt, { "kill", "k", "KILL" })
        until_status(rt, "k", "stopped")
        return { out = out, code = code, frozen = core.read_file(rt.cgdir .. "/freezer.state") }
      end)
      assert.are.same({ out = "", code = 0, frozen = "THAWED\n" }, r)
    end)

    it("--all signals sub-cgroups' processes too and thaws; stopped: --all 0, kill refused", function()
      local r = same_on_both(function(rt)
        prepare(rt)
        must(rt, { "run", "-d", "k" })
        for c, d in pairs(assert(cgroups.dirs(rt.cg))) do
          assert(core.mkdir_p(d .. "/sub", 493))
          if c == "cpuset" then
            -- a v1 cpuset cgroup takes no process before it has cpus and mems
            for _, f in ipairs({ "cpuset.cpus", "cpuset.mems" }) do
              local fh = assert(io.open(d .. "/sub/" .. f, "w"))
              assert(fh:write((assert(core.read_file(d .. "/" .. f)))))
              fh:close()
            end
          end
        end
        must(rt, { "exec", "-d", "--cgroup", "sub", "--pid-file", "sub.pid", "k", "sleep", "1000" })
        local pid = tonumber(S.slurp(rt.bundle .. "/sub.pid"))
        must(rt, { "pause", "k" })
        local out, code = call(rt, { "kill", "--all", "k", "TERM" })
        S.until_true(function() return proc_gone(pid) end, 20, "the sub-cgroup's process")
        local st = status(rt, "k")
        -- stopped, and its cgroup gone: kill --all has nothing to do, kill is refused
        must(rt, { "kill", "k", "KILL" })
        until_status(rt, "k", "stopped")
        assert(cgroups.delete(rt.cg))
        local out2, code2 = call(rt, { "kill", "--all", "k", "KILL" })
        local out3, code3 = call(rt, { "kill", "k" })
        return { out = out, code = code, status = st, all_stopped = { out2, code2 },
          stopped = { out3, code3 } }
      end)
      assert.are.same({ out = "", code = 0, status = "running", all_stopped = { "", 0 },
        stopped = { 'level=error msg="container not running"\n', 1 } }, r)
    end)
  end)

  describe("state and list", function()
    it("are runc's containerState: field order, the runtime's ociVersion, Go's times, owner", function()
      same_on_both(function(rt)
        prepare(rt, function(spec)
          spec.ociVersion = "1.0.1"
          spec.annotations = { zeta = "z", alpha = "a<b" }
        end)
        must(rt, { "create", "s" })
        local text = must(rt, { "state", "s" })
        local keys = {}
        for k in text:gmatch('\n  "(%w+)":') do keys[#keys + 1] = k end
        assert.are.same({ "ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
          "annotations", "owner" }, keys, rt.name)
        assert.are.equal("}", text:sub(-1), rt.name .. ": no newline after the object")
        assert.truthy(text:find('\n    "alpha": "a\\u003cb",\n    "zeta": "z"\n  },\n', 1, true), text)
        local st = core.json_decode(text)
        -- runc's is its runtime-spec library's version, whatever config.json says
        assert.are.equal("1.0.2-dev", st.ociVersion)
        assert.are.equal("", st.owner)
        assert.truthy(st.created:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*Z$"), st.created)
        assert.is_nil(st.created:match("0Z$"), "RFC3339Nano drops the fraction's trailing zeros")
        local json = must(rt, { "list", "--format", "json" })
        assert.are.equal("\n", json:sub(-1))
        assert.truthy(json:match('^%[{"ociVersion":"1%.0%.2%-dev","id":"s","pid":%d+,"status":"created",'), json)
        local l = core.json_decode(json)
        assert.are.equal("root", l[1].owner)
        assert.are.equal(st.created, l[1].created)
        assert.are.equal("s\n", must(rt, { "list", "-q" }))
        local tab = must(rt, { "list" })
        assert.truthy(tab:match("^ID          PID         STATUS      BUNDLE%s+CREATED%s+OWNER\n"), tab)
        must(rt, { "delete", "--force", "s" })
        return { keys = keys }
      end)
    end)
  end)

  describe("exec", function()
    it("takes runc's flags as runc does, and fails where runc fails, with its words", function()
      local CASES = {
        { "-u", "1000", "id" },
        { "-u", "1000:8", "--additional-gids", "11", "--additional-gids", "12", "id" },
        { "-u", "x", "id" }, { "-u", "1:x", "id" }, { "--additional-gids", "-3", "id" },
        { "--cwd", "/tmp", "sh", "-c", "pwd" }, { "--cwd", "tmp", "true" },
        { "-e", "A=1", "-e", "B=2", "sh", "-c", "echo $A$B" },
        { "--cap", "CAP_SYS_ADMIN", "sh", "-c", "grep CapBnd /proc/self/status" },
        { "sh", "-c", "grep NoNewPrivs /proc/self/status" },
        { "--no-new-privs", "sh", "-c", "grep NoNewPrivs /proc/self/status" },
        { "--process-label", "system_u:system_r:container_t:s0", "true" },
        { "-p", "p.json" }, { "-p", "p.json", "-u", "9", "--cwd", "/tmp", "echo", "ignored" },
        { "-p", "nope.json" }, { "-p", "nocwd.json" }, {},
        { "--preserve-fds", "1", "sh", "-c", "cat <&3" },
        { "--cgroup", "memory,pids:sub", "sh", "-c", "grep -E ':(memory|pids|freezer):' /proc/self/cgroup" },
        { "--cgroup", "sub", "sh", "-c", "grep -E ':(memory|freezer|):' /proc/self/cgroup" },
        { "--cgroup", "a:b:c", "true" }, { "--cgroup", "sub", "--cgroup", "pids:sub", "true" },
        { "--cgroup", "nope:sub", "true" }, { "--cgroup", "../..", "true" },
      }
      -- where runc's words are its Go stack's, only the exit code is compared
      local CODE_ONLY = { ["--cgroup missing"] = true, ["--apparmor"] = true }
      local r = same_on_both(function(rt)
        prepare(rt, function(spec)
          spec.process.user = { uid = 0, gid = 7, additionalGids = core.json_array({ 5 }) }
          spec.process.noNewPrivileges = false
        end)
        must(rt, { "run", "-d", "x" })
        for c, d in pairs(assert(cgroups.dirs(rt.cg))) do
          assert(core.mkdir_p(d .. "/sub", 493))
          if c == "cpuset" then
            for _, f in ipairs({ "cpuset.cpus", "cpuset.mems" }) do
              local fh = assert(io.open(d .. "/sub/" .. f, "w"))
              assert(fh:write((assert(core.read_file(d .. "/" .. f)))))
              fh:close()
            end
          end
        end
        assert(core.write_file(rt.bundle .. "/p.json", core.json_encode({
          args = core.json_array({ "sh", "-c", "echo proc $X; id" }), cwd = "/",
          env = core.json_array({ "PATH=/bin:/usr/bin", "X=7" }), user = { uid = 5, gid = 6 } }),
          { mode = 420 }))
        assert(core.write_file(rt.bundle .. "/nocwd.json", '{"args":["true"]}', { mode = 420 }))
        assert(core.write_file(rt.bundle .. "/fd3", "from fd 3\n", { mode = 420 }))
        local results = {}
        for i, c in ipairs(CASES) do
          local args = { "exec" }
          for _, a in ipairs(c) do args[#args + 1] = a end
          -- the id goes after the flags: before the first word that is not a flag or its value
          local j = 2
          while j <= #args and args[j]:sub(1, 1) == "-" do
            j = j + ((args[j] == "--no-new-privs") and 1 or 2)
          end
          table.insert(args, j, "x")
          local out, code = call(rt, args, nil, c[1] == "--preserve-fds" and "3<fd3" or nil)
          out = out:gsub(rt.cg:gsub("%p", "%%%0"), "CG"):gsub(rt.bundle:gsub("%p", "%%%0"), "B")
          results[i] = { table.concat(c, " "), code, out }
        end
        -- an exec into a sub-cgroup that is not there, and an AppArmor profile on a host
        -- without AppArmor: refused, in words of each runtime's own
        local _, c1 = call(rt, { "exec", "--cgroup", "memory:nosuch", "x", "true" })
        local _, c2 = call(rt, { "exec", "--apparmor", "nosuch", "x", "true" })
        results[#results + 1] = { "--cgroup missing", c1 }
        results[#results + 1] = { "--apparmor", c2 }
        -- --pid-file is relative to the caller's directory, not the bundle
        assert(core.mkdir_p(dir .. "/cwd-" .. rt.name, 493))
        local _, c3 = call(rt, { "exec", "-d", "--pid-file", "rel.pid", "x", "true" },
          dir .. "/cwd-" .. rt.name)
        results[#results + 1] = { "--pid-file", c3,
          core.stat(dir .. "/cwd-" .. rt.name .. "/rel.pid") ~= nil }
        must(rt, { "delete", "--force", "x" })
        return results
      end)
      local by = {}
      for _, x in ipairs(r) do by[x[1]] = x end
      assert.are.equal("uid=1000 gid=7 groups=5\n", by["-u 1000 id"][3])
      assert.are.equal("uid=1000 gid=8 groups=5,11,12\n",
        by["-u 1000:8 --additional-gids 11 --additional-gids 12 id"][3])
      assert.truthy(by["-u x id"][3]:find('parsing x as int for uid failed', 1, true))
      assert.truthy(by[""][3]:find("exec failed: process args cannot be empty", 1, true))
      assert.truthy(by["-p p.json -u 9 --cwd /tmp echo ignored"][3]:find("proc 7\nuid=5 gid=6", 1, true))
      assert.truthy(by["--cgroup memory,pids:sub sh -c grep -E ':(memory|pids|freezer):' /proc/self/cgroup"][3]
        :find(":memory:CG/sub\n", 1, true))
      assert.are.equal("from fd 3\n", by["--preserve-fds 1 sh -c cat <&3"][3])
      assert.are.same({ "--pid-file", 0, true }, by["--pid-file"])
      assert.are.equal(255, by["--cgroup missing"][2])
      assert.are.equal(255, by["--apparmor"][2])
      for k in pairs(CODE_ONLY) do assert.is_nil(by[k][3]) end
    end)
  end)

  describe("a cgroup that is not the container's alone", function()
    local function busy_cgroup(rt)
      assert(cgroups.new(rt.cg))
      local pid = tonumber(S.must("sleep 1000 >/dev/null 2>&1 & echo $!"):match("%d+"))
      assert(cgroups.add(rt.cg, pid))
      return pid
    end

    it("that holds processes: a warning on the log, then create and run refuse (runc 1.2)", function()
      local rt = prepare({ name = "ctrl", bin = BIN })
      local pid = busy_cgroup(rt)
      finally(function() core.kill(pid, 9) end)
      local log = dir .. "/busy.log"
      for _, cmd in ipairs({ { "create", "busy" }, { "run", "-d", "busy" } }) do
        os.remove(log)
        local args = { "--log", log }
        for _, a in ipairs(cmd) do args[#args + 1] = a end
        local out, code = call(rt, args)
        assert.are.equal(1, code)
        assert.truthy(out:find("container's cgroup is not empty: 1 process(es) found", 1, true), out)
        local text = assert(S.slurp(log))
        local busy = "container's cgroup is not empty: 1 process(es) found"
        local warn = text:find('level=warning msg="' .. busy .. '"', 1, true)
        local err = text:find('level=error msg="runc ' .. cmd[1] .. " failed: " .. busy, 1, true)
        assert.truthy(warn and err and warn < err, text)
        -- nothing left: no state, the process where it was
        assert.is_nil(core.stat(rt.root .. "/busy"))
        assert.are_not.equal("stopped", status(rt, "busy"))
        assert.same({ pid }, cgroups.processes(rt.cg))
      end
      core.kill(pid, 9)
      S.until_true(function() return proc_gone(pid) and #assert(cgroups.processes(rt.cg)) == 0 end, 20,
        "the process out of the cgroup")
    end)

    it("that is frozen: create refuses (runc's `unexpectedly frozen')", function()
      local rt = prepare({ name = "ctrl", bin = BIN })
      assert(cgroups.new(rt.cg))
      assert(cgroups.freeze(rt.cg))
      finally(function() cgroups.thaw(rt.cg) end)
      local out, code = call(rt, { "create", "frozen" })
      assert.are.equal(1, code)
      assert.truthy(out:find("runc create failed: container's cgroup unexpectedly frozen", 1, true), out)
      assert.is_nil(core.stat(rt.root .. "/frozen"))
      assert(cgroups.thaw(rt.cg))
    end)
  end)
end)
