-- Test bundles for the runtime specs: a rootfs with Debian's static busybox and its applet
-- links, /etc/passwd and /etc/group, and a config.json from a minimal default spec (written
-- here as a Lua table, independent of lua/ctr/oci.lua) with overrides.
local core = require("ctr.core")

local B = {}

local BUSYBOX = "/bin/busybox"

local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local body, rc = out:match("^(.*)rc=(%d+)\n$")
  if rc ~= "0" then error("command failed (" .. tostring(rc) .. "): " .. cmd .. "\n" .. out, 2) end
  return body
end
B.sh = sh

--- A fresh temporary directory (support.tmp: removed after the last spec).
function B.tmpdir() return require("support.tmp").dir("rt") end

local function arr(t) return core.json_array(t) end

local DEFAULT_CAPS = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

--- The default spec (containerd 1.6's, reduced to what the runtime reads).
function B.default_spec()
  local function caps() return arr({ unpack(DEFAULT_CAPS) }) end
  return {
    ociVersion = "1.0.2-dev",
    root = { path = "rootfs" },
    hostname = "ctrlua-test",
    process = {
      args = arr({ "sh" }),
      env = arr({ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }),
      cwd = "/",
      user = { uid = 0, gid = 0 },
      noNewPrivileges = true,
      capabilities = { bounding = caps(), effective = caps(), permitted = caps() },
      rlimits = arr({ { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 } }),
    },
    mounts = arr({
      { destination = "/proc", type = "proc", source = "proc", options = arr({ "nosuid", "noexec", "nodev" }) },
      { destination = "/dev", type = "tmpfs", source = "tmpfs", options = arr({ "nosuid", "strictatime", "mode=755", "size=65536k" }) },
      { destination = "/dev/pts", type = "devpts", source = "devpts",
        options = arr({ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" }) },
      { destination = "/dev/shm", type = "tmpfs", source = "shm", options = arr({ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" }) },
      { destination = "/dev/mqueue", type = "mqueue", source = "mqueue", options = arr({ "nosuid", "noexec", "nodev" }) },
      { destination = "/sys", type = "sysfs", source = "sysfs", options = arr({ "nosuid", "noexec", "nodev", "ro" }) },
      { destination = "/run", type = "tmpfs", source = "tmpfs", options = arr({ "nosuid", "strictatime", "mode=755", "size=65536k" }) },
    }),
    linux = {
      namespaces = arr({ { type = "pid" }, { type = "ipc" }, { type = "uts" }, { type = "mount" }, { type = "network" } }),
      maskedPaths = arr({ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" }),
      readonlyPaths = arr({ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" }),
    },
  }
end

local function write(path, data, mode)
  assert(core.write_file(path, data, { mode = mode or 420 }))
end

--- Build a bundle in dir: dir/rootfs and dir/config.json.  opts:
--   args (array), env (extra entries), cwd, hostname, mounts (appended), user,
--   edit = function(spec) ... end (any other change), no_rootfs = true (config only).
-- Returns the spec table that was written.
function B.make(dir, opts)
  opts = opts or {}
  local rootfs = dir .. "/rootfs"
  if not opts.no_rootfs then
    for _, d in ipairs({ "", "/bin", "/etc", "/tmp", "/proc", "/sys", "/dev", "/root", "/home" }) do
      assert(core.mkdir_p(rootfs .. d, 493))
    end
    assert(core.chmod(rootfs .. "/tmp", 1023))
    write(rootfs .. "/bin/busybox", assert(core.read_file(BUSYBOX)), 493)
    for applet in sh(BUSYBOX .. " --list"):gmatch("[^\n]+") do
      if applet ~= "busybox" then core.symlink("busybox", rootfs .. "/bin/" .. applet) end
    end
    write(rootfs .. "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    write(rootfs .. "/etc/group", "root:x:0:\nnogroup:x:65534:\n")
  end
  local spec = B.default_spec()
  if opts.args then spec.process.args = arr(opts.args) end
  for _, e in ipairs(opts.env or {}) do table.insert(spec.process.env, e) end
  if opts.cwd then spec.process.cwd = opts.cwd end
  if opts.hostname then spec.hostname = opts.hostname end
  if opts.user then spec.process.user = opts.user end
  for _, m in ipairs(opts.mounts or {}) do table.insert(spec.mounts, m) end
  if opts.edit then opts.edit(spec) end
  write(dir .. "/config.json", core.json_encode(spec, true))
  return spec
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
B.q = q

--- The body of a runner process (`CTRLUA_RT_DIR=DIR CTRLUA_RT_MODE=forward|- luajit -e
-- 'require("support.bundle").main()'`):
-- create, start, wait (forwarding signals with "forward"), and write DIR/result.json.  Its
-- stdout and stderr are the container's.
function B.main()
  local dir, mode = os.getenv("CTRLUA_RT_DIR"), os.getenv("CTRLUA_RT_MODE")
  local fifo = dir .. "/exec.fifo"
  local result
  -- an fd without CLOEXEC (stdio's fopen), as a careless caller would hold: the container must
  -- not see it
  local leak = assert(io.open(dir .. "/config.json", "r")) -- luacheck: ignore
  local pid, msg, errno = core.create(dir, { exec_fifo = fifo, pid_file = dir .. "/init.pid",
    no_pivot = os.getenv("CTRLUA_RT_NOPIVOT") == "1" })
  if not pid then
    result = { error = msg, errno = errno }
  else
    -- the signals to forward are held from before the start, as Task:start holds them: one
    -- sent as soon as the container is up must reach it, not end this runner before its wait
    if mode == "forward" then assert(core.block_signals()) end
    assert(core.start(fifo))
    core.write_file(dir .. "/started", "")
    local code, info = core.wait(pid, { forward = mode == "forward" })
    result = { code = code, info = info, error = info == nil and tostring(code) or nil }
  end
  io.stdout:flush()
  leak:close()
  assert(core.write_file(dir .. "/result.json", core.json_encode(result)))
end

local function runner_cmd(dir, mode)
  -- SIGPIPE ignored, as many callers have it: the runtime must not pass that on
  -- CTRLUA_LUA: the Lua that runs specs' child scripts (luajit; under `make asan` the
  -- instrumented ctrlua, since the instrumented ctr.core cannot load into a plain luajit)
  return string.format("trap '' PIPE; CTRLUA_RT_DIR=%s CTRLUA_RT_MODE=%s %s spec/support/run_bundle.lua >%s 2>%s </dev/null",
    q(dir), mode or "-", os.getenv("CTRLUA_LUA") or "luajit", q(dir .. "/stdout"), q(dir .. "/stderr"))
end

local function result(dir)
  local text = B.slurp(dir .. "/result.json")
  if not text then error("the runner wrote no result; stderr: " .. tostring(B.slurp(dir .. "/stderr")), 2) end
  return core.json_decode(text)
end

--- Run a container to completion in a runner process.  Returns code, info, stdout, stderr;
-- or nil, message, errno when create failed.
function B.run(dir, opts)
  os.remove(dir .. "/result.json")
  os.execute((opts and opts.no_pivot and "CTRLUA_RT_NOPIVOT=1 " or "") .. runner_cmd(dir))
  local r = result(dir)
  if r.error then return nil, r.error, r.errno end
  return r.code, r.info, B.slurp(dir .. "/stdout"), B.slurp(dir .. "/stderr")
end

--- Start a runner in the background (forwarding signals); returns its pid.
function B.spawn(dir)
  os.remove(dir .. "/result.json")
  return tonumber((sh(runner_cmd(dir, "forward") .. " & echo $!"):match("%d+")))
end

--- Poll until fn() is true (or raise after `secs`).
function B.until_true(fn, secs, what)
  local deadline = core.monotime() + (secs or 10)
  while core.monotime() < deadline do
    if fn() then return true end
    os.execute("sleep 0.05")
  end
  error("timed out waiting for " .. (what or "a condition"), 2)
end

function B.result(dir) return result(dir) end

function B.slurp(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

return B
