-- Debian's containerd for the specs that compare ctrlua with `ctr`: started on a private
-- socket with its root and state in a temporary directory and the CRI plugin disabled (the
-- host's /etc/containerd is never read), the test image imported, and stopped again (only the
-- containerd it started) with every task and container it still holds.
--
--   local C = require("support.containerd")
--   if not C.available() then pending(...) end
--   local d = C.start()           -- d.dir, d.sock, d.pid; d:ctr("task ls") -> output, code
--   d:stop()                      -- kills what is left, stops containerd, removes d.dir
--                                 -- and its namespace's empty cgroups
local core = require("ctr.core")
local S = require("support.ctrlua")

local q = S.q

local C = {}

--- Are containerd and ctr installed (Debian's containerd package)?
function C.available()
  return core.stat("/usr/bin/containerd") ~= nil and core.stat("/usr/bin/ctr") ~= nil
end

local D = {}
D.__index = D

--- `ctr -a SOCK -n NS` (a shell fragment): the command line of this containerd's ctr.
function D:ctr_cmd() return ("ctr -a %s -n %s"):format(q(self.sock), q(self.ns)) end

--- `ctr -a SOCK -n NS ARGS` (a shell fragment): its output (stdout and stderr) and exit code.
function D:ctr(args) return S.sh(self:ctr_cmd() .. " " .. args) end

--- Start containerd in a fresh temporary directory (opts.dir: in that one, made here) and
-- import the test image (opts.image = false: do not).  Its containers live in a namespace of
-- their own (d.ns): containerd's cgroups are /NAMESPACE/ID on the host, as ctrlua's are.
-- Raises when it does not come up.
function C.start(opts)
  local dir = opts and opts.dir
  if dir then S.must("mkdir -p " .. q(dir)) else dir = S.tmpdir() end
  local d = setmetatable({ dir = dir, ns = S.unique_ns("ctr") }, D)
  d.sock = d.dir .. "/containerd.sock"
  assert(core.write_file(d.dir .. "/config.toml", ([[
version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
]]):format(d.dir .. "/root", d.dir .. "/state", d.sock, d.sock .. ".ttrpc", d.dir .. "/debug.sock")))
  d.pid = tonumber((S.must(("containerd --config %s >%s 2>&1 & echo $!"):format(
    q(d.dir .. "/config.toml"), q(d.dir .. "/containerd.log"))):match("%d+")))
  S.until_true(function() return select(2, d:ctr("version")) == 0 end, 20, "containerd")
  if not (opts and opts.image == false) then
    local out, code = d:ctr("images import " .. q(S.IMAGE_TAR))
    assert(code == 0, out)
  end
  return d
end

--- Kill and delete the tasks and containers left, stop containerd, unmount and remove its
-- directory.
function D:stop()
  local out = self:ctr("containers ls -q") or ""
  for id in out:gmatch("%S+") do
    self:ctr("task kill -s KILL " .. q(id))
    self:ctr("task delete -f " .. q(id))
    self:ctr("containers rm " .. q(id))
  end
  if self.pid then
    local pid = self.pid
    core.kill(pid, 15)
    S.until_true(function() return not core.stat("/proc/" .. pid .. "/stat") or
      (core.read_file("/proc/" .. pid .. "/stat") or ""):match("%) Z ") end, 20, "containerd exit")
    self.pid = nil
  end
  S.unmount_under(self.dir)
  assert(core.remove_tree(self.dir))
  -- runc removes a container's /NAMESPACE/ID, never the namespace's own (empty) cgroup
  S.sh(("rmdir /sys/fs/cgroup/*/%s /sys/fs/cgroup/%s 2>/dev/null"):format(q(self.ns), q(self.ns)))
end

return C
