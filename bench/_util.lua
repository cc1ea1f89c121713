-- What the bench modules that run ctrlua on a file system of their own share.  Not a benchmark
-- module (bench/run.lua skips names starting with "_"): tasks.lua, store.lua, startup.lua and
-- _probes.lua load it with dofile.
--
--   q(s)              s quoted for sh
--   median(t)         the median of a list of numbers (nil for none)
--   sh(cmd)           true when cmd exits 0 (its output discarded)
--   out(cmd)          cmd's stdout without its trailing blanks, or nil when it fails
--   trace_env()       this process's environment with CTRLUA_TRACE=1 (run.lua's phase timer)
--   scratch_fs(what)  an ext4 made for the caller (a sparse 2 GB file, mkfs.ext4, a loop device
--                     with direct I/O, mounted): { dir = mount point, drop = function } where
--                     drop unmounts everything under dir and removes it all.  On the shared
--                     file system new inodes step over the ones a module before freed, and a
--                     sync waits for other writers' data: each module's numbers would carry
--                     what ran before it.
local core = require("ctr.core")

local M = {}

function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local q = M.q

function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

function M.sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == 0 or ok == true
end

function M.out(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>/dev/null; echo \"rc=$?\""))
  local text = p:read("*a")
  p:close()
  local body, rc = text:match("^(.*)rc=(%d+)\n$")
  if rc ~= "0" then return nil end
  return (body:gsub("%s+$", ""))
end

function M.trace_env()
  local env = { CTRLUA_TRACE = "1" }
  for kv in (core.read_file("/proc/self/environ") or ""):gmatch("([^%z]+)") do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if k and k ~= "CTRLUA_TRACE" then env[k] = v end
  end
  return env
end

function M.scratch_fs(what)
  local tmp = assert(M.out("mktemp -d /var/tmp/ctrlua-bench-" .. what .. ".XXXXXX"), what .. ": mktemp")
  local dir, img = tmp .. "/fs", tmp .. "/fs.img"
  assert(M.sh(("truncate -s 2G %s && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 %s && mkdir %s")
    :format(q(img), q(img), q(dir))), what .. ": make the file system " .. img)
  local dev = M.out("losetup -f --show --direct-io=on " .. q(img))
  if not dev or not M.sh(("mount %s %s"):format(q(dev), q(dir))) then
    if dev then M.sh("losetup -d " .. q(dev)) end
    M.sh("rm -rf " .. q(tmp))
    error(what .. ": mount " .. tostring(dev) .. " on " .. dir, 0)
  end
  return { dir = dir, drop = function()
    os.execute("grep -o ' " .. dir .. "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r umount -l 2>/dev/null")
    M.sh("losetup -d " .. q(dev) .. "; rm -rf " .. q(tmp))
  end }
end

return M
