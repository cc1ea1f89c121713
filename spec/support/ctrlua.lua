-- Helpers for the integration specs that drive the `ctrlua` binary as a user would:
-- a temporary --root/--state per test (the test image imported once per spec file into a
-- template root, then copied), running a command and capturing stdout, stderr and the exit
-- code, running one in the background (its pid, its exit code once it ends), and looking at
-- the host's /proc/self/mountinfo.
--
--   local S = require("support.ctrlua")
--   local env = S.new_env()            -- a fresh root/state with the test image imported
--   local r = env:run("run.lua", "--rm", S.IMAGE, "t1", "true")
--   -- r.code, r.stdout, r.stderr
--   env:destroy()                      -- unmounts anything left under it and removes it
local core = require("ctr.core")

local S = {}

S.BIN = os.getenv("CTRLUA_BIN") or "build/ctrlua"
S.IMAGE_TAR = os.getenv("CTRLUA_TEST_IMAGE") or "build/images/busybox.oci.tar"
S.IMAGE = "ctrlua.test/busybox:latest"

--- Quote a string for sh.
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.q = q

--- Run a shell command; returns its output (stdout and stderr) and its exit code.
function S.sh(cmd)
  -- (exec 2>&1: the shell's own "Killed" for a command that died of a signal is output too)
  local p = assert(io.popen("exec 2>&1; (" .. cmd .. ") 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  return body, tonumber(rc)
end

--- Run a shell command that must succeed; returns its output.
function S.must(cmd)
  local out, rc = S.sh(cmd)
  if rc ~= 0 then error("command failed (" .. tostring(rc) .. "): " .. cmd .. "\n" .. out, 2) end
  return out
end

function S.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function S.exists(path) return core.stat(path) ~= nil end

--- A fresh temporary directory (support.tmp: removed after the last spec).
function S.tmpdir() return require("support.tmp").dir("run") end

--- A network namespace of its own, pinned at DIR/netns (an nsfs bind mount there, as `ip netns
-- add` makes under /run/netns; not there, which would leave the host a /run/netns mount); its
-- path.  S.netns_del(path) unmounts and removes it.
function S.netns(dir)
  local path = dir .. "/netns"
  S.must("touch " .. q(path) .. " && unshare --net=" .. q(path) .. " true")
  return path
end

function S.netns_del(path)
  S.sh("umount " .. q(path) .. " 2>/dev/null; rm -f " .. q(path))
end

--- Poll until fn() returns a true value (returned), or raise after secs seconds.
function S.until_true(fn, secs, what)
  local deadline = core.monotime() + (secs or 10)
  repeat
    local v = fn()
    if v then return v end
    os.execute("sleep 0.02")
  until core.monotime() > deadline
  error("timed out waiting for " .. (what or "a condition"), 2)
end

--- Does process pid block signal sig (/proc/PID/status SigBlk)?
function S.blocks_signal(pid, sig)
  local st = core.read_file("/proc/" .. tostring(pid) .. "/status", 65536)
  local hex = st and st:match("SigBlk:%s*(%x+)")
  if not hex then return false end
  -- bit sig-1 of the mask, from its hex digits
  local digit = tonumber(hex:sub(#hex - math.floor((sig - 1) / 4), #hex - math.floor((sig - 1) / 4)), 16)
  return digit ~= nil and math.floor(digit / 2 ^ ((sig - 1) % 4)) % 2 == 1
end

--- The processes of the host whose cgroup (in any hierarchy) is under /NS/: a list of
-- "PID ARGS" strings.  Other tests and other runs of the suite use other namespaces, so
-- this sees only what a test of namespace ns started.  A zombie is gone (this machine's pid 1
-- does not reap the orphans it inherits): it is not listed.
function S.processes_in_ns(ns)
  local found = {}
  for _, name in ipairs(core.listdir("/proc") or {}) do
    local pid = name:match("^%d+$")
    local cg = pid and core.read_file("/proc/" .. pid .. "/cgroup", 65536)
    local stat = cg and core.read_file("/proc/" .. pid .. "/stat", 4096)
    local zombie = stat and stat:match(".*%)%s(%S)") == "Z"
    if cg and not zombie and cg:find(":/" .. ns .. "/", 1, true) then
      local args = (core.read_file("/proc/" .. pid .. "/cmdline", 65536) or ""):gsub("%z", " ")
      found[#found + 1] = pid .. " " .. args
    end
  end
  return found
end

--- The lines of the host's /proc/self/mountinfo that mention `path`.
function S.mounts_under(path)
  local found = {}
  for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
    if line:find(path, 1, true) then found[#found + 1] = line end
  end
  return found
end

--- Unmount (lazily, deepest first) every mount whose mount point is under `path`.
function S.unmount_under(path)
  local points = {}
  for line in assert(core.read_file("/proc/self/mountinfo")):gmatch("[^\n]+") do
    local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
    if mp and (mp == path or mp:sub(1, #path + 1) == path .. "/") then points[#points + 1] = mp end
  end
  table.sort(points, function(a, b) return #a > #b end)
  for _, mp in ipairs(points) do os.execute("umount -l " .. q(mp) .. " 2>/dev/null") end
end

-- the template root: the test image imported (and unpacked) once per process
local template
local function template_root()
  if template then return template end
  local dir = S.tmpdir()
  local out, rc = S.sh(("%s --root %s --state %s images.lua import %s"):format(
    q(S.BIN), q(dir .. "/root"), q(dir .. "/state"), q(S.IMAGE_TAR)))
  if rc ~= 0 then error("importing the test image failed: " .. out) end
  template = dir
  return dir
end

--- Remove the template root (call from the spec file's teardown).
function S.cleanup()
  if template then
    S.unmount_under(template)
    core.remove_tree(template)
    template = nil
  end
end

local Env = {}
Env.__index = Env

-- Cgroup paths are /NAMESPACE/ID on the host, shared by every store and every run of the
-- suite on this machine: each environment gets a namespace no other test (nor a second run
-- of the suite) uses, so the same ID in two tests never meets in one cgroup.
local ns_seq = 0
--- A namespace unique to this process and call: PREFIX-PID-N (PREFIX default "t").
function S.unique_ns(prefix)
  ns_seq = ns_seq + 1
  return ("%s-%d-%d"):format(prefix or "t", core.getpid(), ns_seq)
end

--- A fresh environment: dir/root (a copy of the template: the test image imported and
-- unpacked), dir/state and a namespace of its own (env.ns, passed as -n to every command).
-- opts.empty = true: no image; opts.ns: that namespace instead (another env's, for a second
-- store whose containers meet the first's in the host's cgroups /NS/ID).
function S.new_env(opts)
  local dir = S.tmpdir()
  local ns = opts and opts.ns or S.unique_ns()
  if not (opts and opts.empty) then
    -- the template's image is in namespace "default": its records move to the env's own
    S.must(("cp -a %s %s && mv %s %s"):format(q(template_root() .. "/root"), q(dir .. "/root"),
      q(dir .. "/root/meta/default"), q(dir .. "/root/meta/" .. ns)))
  end
  return setmetatable({ dir = dir, root = dir .. "/root", state = dir .. "/state", bg = {},
    ns = ns }, Env)
end

--- STATE/NS of this environment, or STATE/NS/ID... joined with "/".
function Env:state_dir(...)
  local parts = { self.state, self.ns, ... }
  return table.concat(parts, "/")
end

--- The cgroup path of container id in this environment's namespace (/NS/ID).
function Env:cgroup(id) return "/" .. self.ns .. "/" .. id end

--- A copy of the built tree (the ctrlua binaries beside lua/ and scripts/, as in build/) in a
-- new temporary directory: the path of its ctrlua.  For attacks on the runtime's own binary,
-- which must never reach the real one; an env runs it after `env.bin = S.copy_runtime()`.
function S.copy_runtime()
  local bin = S.BIN
  if bin:sub(1, 1) ~= "/" then bin = core.readlink("/proc/self/cwd") .. "/" .. bin end
  local bdir = bin:match("^(.*)/[^/]+$")
  local tree = bdir:match("^(.*)/[^/]+$")
  local dir = S.tmpdir()
  S.must(("mkdir -p %s/build && cp -a %s/lua %s/scripts %s/ && cp %s %s/ctrlua-monitor %s/build/ && " ..
    "ln -s ctrlua %s/build/ctrlua-runc"):format(q(dir), q(tree), q(tree), q(dir), q(bin), q(bdir),
    q(dir), q(dir)))
  return dir .. "/build/ctrlua", dir
end

--- The command line of `ctrlua --root R --state S -n NS ARGS...` (args are quoted).
function Env:cmdline(...)
  local parts = { q(self.bin or S.BIN), "--root", q(self.root), "--state", q(self.state), "-n",
    q(self.ns) }
  for i = 1, select("#", ...) do parts[#parts + 1] = q((select(i, ...))) end
  return table.concat(parts, " ")
end

local seq = 0
local function outfiles(self)
  seq = seq + 1
  local base = ("%s/out.%d"):format(self.dir, seq)
  return base .. ".stdout", base .. ".stderr", base .. ".rc", base .. ".pid"
end

--- Run `ctrlua ARGS...` to completion: returns {code=, stdout=, stderr=}.  A last argument
-- that is a table gives options: env = "K=V ..." (a prefix of shell assignments), stdin = path.
function Env:run(...)
  local args, opts = { ... }, {}
  if type(args[#args]) == "table" then opts = table.remove(args) end
  local o, e = outfiles(self)
  local cmd = ("%s%s >%s 2>%s <%s"):format(opts.env and (opts.env .. " ") or "",
    self:cmdline(unpack(args)), q(o), q(e), q(opts.stdin or "/dev/null"))
  local _, rc = S.sh(cmd)
  return { code = rc, stdout = S.slurp(o) or "", stderr = S.slurp(e) or "" }
end

--- Start `ctrlua ARGS...` in the background.  Returns a handle: h.pid (the ctrlua process
-- itself), h:done() (nil while it runs, else {code=, stdout=, stderr=}), h:wait(secs).
function Env:spawn(...)
  local o, e, rcf, pidf = outfiles(self)
  -- the inner sh records its pid and exec's ctrlua: that pid is ctrlua's
  local inner = ("echo $$ >%s; exec %s"):format(q(pidf), self:cmdline(...))
  local cmd = ("(sh -c %s >%s 2>%s </dev/null; echo $? >%s.tmp; mv %s.tmp %s) >/dev/null 2>&1 &")
    :format(q(inner), q(o), q(e), q(rcf), q(rcf), q(rcf))
  S.must(cmd)
  local h = { out = o, err = e, rcf = rcf }
  h.pid = S.until_true(function()
    local s = S.slurp(pidf)
    return s and tonumber(s:match("%d+"))
  end, 10, "the background ctrlua to start")
  function h.done()
    local rc = S.slurp(rcf)
    if not rc or rc == "" then return nil end
    return { code = tonumber(rc:match("%d+")), stdout = S.slurp(o) or "", stderr = S.slurp(e) or "" }
  end
  function h.wait(_, secs)
    return S.until_true(h.done, secs or 20, "the background ctrlua to exit")
  end
  self.bg[#self.bg + 1] = h
  return h
end

--- The task status record of container id (STATE/NS/ID/status), or nil.
function Env:task_status(id, ns)
  local data = core.read_file(("%s/%s/%s/status"):format(self.state, ns or self.ns, id), 65536)
  return data and core.json_decode(data) or nil
end

--- Wait until container id's task runs; returns its pid (the container's init on the host).
function Env:wait_running(id, secs)
  return S.until_true(function()
    local st = self:task_status(id)
    return st and st.status == "running" and st.pid
  end, secs or 10, "container " .. id .. " to run")
end

--- Snapshot keys and kinds: a list of {key=, parent=, kind=} from `snapshots.lua ls`.
function Env:snapshots(snapshotter)
  local r = snapshotter and self:run("snapshots.lua", "--snapshotter", snapshotter, "ls")
    or self:run("snapshots.lua", "ls")
  assert(r.code == 0, "snapshots.lua ls failed: " .. r.stderr)
  local list = {}
  local first = true
  for line in r.stdout:gmatch("[^\n]+") do
    if not first then
      local f = {}
      for w in line:gmatch("%S+") do f[#f + 1] = w end
      list[#list + 1] = { key = f[1], parent = #f == 3 and f[2] or "", kind = f[#f] }
    end
    first = false
  end
  return list
end

--- The IDs of the containers (`containers.lua ls -q`).
function Env:containers()
  local r = self:run("containers.lua", "ls", "-q")
  assert(r.code == 0, "containers.lua ls failed: " .. r.stderr)
  local ids = {}
  for id in r.stdout:gmatch("%S+") do ids[#ids + 1] = id end
  return ids
end

--- What a run of container id left behind: a list of strings (empty when nothing): a
-- container record, an active snapshot, a mount under the env, a state directory.
function Env:leftovers(id, snapshotter)
  local left = {}
  for _, c in ipairs(self:containers()) do left[#left + 1] = "container " .. c end
  for _, s in ipairs(self:snapshots(snapshotter)) do
    if s.kind ~= "Committed" then left[#left + 1] = "snapshot " .. s.key .. " (" .. s.kind .. ")" end
  end
  for _, m in ipairs(S.mounts_under(self.dir)) do left[#left + 1] = "mount " .. m end
  if id and S.exists(self:state_dir(id)) then
    left[#left + 1] = "state dir " .. self:state_dir(id)
  end
  -- the container's cgroup (the default path /NS/ID) in any hierarchy
  if id then
    for _, d in pairs(require("ctr.cgroups").dirs(self:cgroup(id)) or {}) do
      if core.stat(d) then left[#left + 1] = "cgroup " .. d end
    end
  end
  return left
end

--- Kill background runs still going, unmount everything under the env, remove it.
function Env:destroy()
  -- a detached task a test left running is deleted as a user would (its monitor would
  -- otherwise wait for that delete forever)
  for _, id in ipairs(core.listdir(self:state_dir()) or {}) do
    local st = self:task_status(id)
    if st and st.monitor_pid and st.monitor_pid > 0 and core.stat("/proc/" .. st.monitor_pid) then
      pcall(self.run, self, "tasks.lua", "delete", "-f", id)
    end
  end
  -- container inits still alive under this state first (that ends their runs), then the runs
  for _, id in ipairs(core.listdir(self:state_dir()) or {}) do
    local st = self:task_status(id)
    if st and st.pid and st.pid > 0 and (st.status == "running" or st.status == "created")
      and st.start_time and require("ctr.tasks").proc_start_time(st.pid) == st.start_time then
      core.kill(st.pid, 9)
    end
  end
  for _, h in ipairs(self.bg) do
    if not h.done() then
      if not pcall(h.wait, h, 5) then
        core.kill(h.pid, 9)
        pcall(h.wait, h, 5)
      end
    end
  end
  -- the cgroups of tasks a test left behind (a task is deleted with its cgroup; a test that
  -- stops halfway is not)
  for _, id in ipairs(core.listdir(self:state_dir()) or {}) do
    local data = core.read_file(self:state_dir(id, "task.json"), 65536)
    local t = data and core.json_decode(data) or self:task_status(id)
    if t and type(t.cgroup) == "string" and t.cgroup ~= "" then
      pcall(require("ctr.cgroups").delete, t.cgroup)
    end
  end
  S.unmount_under(self.dir)
  core.remove_tree(self.dir)
end

--- Build an image archive derived from the test image, its config changed by edit(config)
-- (config is the image config's `config` object; edit may be nil), with the uncompressed tar
-- layers of the list `layers` (their bytes, e.g. from support.tar's build) put on top, named
-- `name`.  Returns the path of the new oci-archive (inside dir).
function S.derive_image(dir, name, edit, layers)
  local src = dir .. "/layout"
  S.must(("mkdir -p %s && tar -C %s -xf %s"):format(q(src), q(src), q(S.IMAGE_TAR)))
  local function blob(d) return src .. "/blobs/sha256/" .. d:sub(8) end
  local function put(t)
    local data = core.json_encode(t)
    local d = core.sha256(data)
    assert(core.write_file(blob(d), data, { mode = 420 }))
    return d, #data
  end
  local index = core.json_decode(assert(core.read_file(src .. "/index.json")))
  local desc = index.manifests[1]
  local manifest = core.json_decode(assert(core.read_file(blob(desc.digest))))
  local config = core.json_decode(assert(core.read_file(blob(manifest.config.digest))))
  if edit then edit(config.config) end
  for _, bytes in ipairs(layers or {}) do
    local d = core.sha256(bytes)
    assert(core.write_file(blob(d), bytes, { mode = 420 }))
    manifest.layers[#manifest.layers + 1] = { mediaType = "application/vnd.oci.image.layer.v1.tar",
      digest = d, size = #bytes }
    config.rootfs.diff_ids[#config.rootfs.diff_ids + 1] = d
  end
  manifest.config.digest, manifest.config.size = put(config)
  desc.digest, desc.size = put(manifest)
  desc.annotations["io.containerd.image.name"] = name
  desc.annotations["org.opencontainers.image.ref.name"] = name
  assert(core.write_file(src .. "/index.json", core.json_encode(index), { mode = 420 }))
  local out = dir .. "/derived.oci.tar"
  S.must(("tar -C %s -cf %s oci-layout index.json blobs"):format(q(src), q(out)))
  return out
end

return S
