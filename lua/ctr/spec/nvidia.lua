--- NVIDIA GPUs for `ctr run --gpus`, after containerd's contrib/nvidia: a prestart hook that
-- runs `nvidia-container-cli --load-kmods configure --device=LIST <capabilities>
-- --pid=PID ROOTFS`, which mounts the driver and device nodes into the container.
--
-- ctrlua: containerd's hook is `containerd oci-hook -- nvidia-container-cli ...`, which fills
-- {{pid}} and {{rootfs}} from the hook's state; ctrlua has no such command, so the hook is a
-- /bin/sh script that reads the pid and bundle from the state JSON on its stdin.
-- @module ctr.spec.nvidia
local errors = require("ctr.errors")

local M = {}

M.CLI = "nvidia-container-cli"

--- The capabilities of nvidia.WithAllCapabilities, as flags.
M.ALL_CAPABILITIES = { "--compute", "--compat32", "--graphics", "--utility", "--video", "--display" }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The spec opt adding GPUs `devices` (an array of indexes), or nil, err naming what is
-- missing (containerd's error: exec: "nvidia-container-cli": executable file not found in $PATH).
function M.with_gpus(devices)
  if type(devices) ~= "table" then error("devices: expected table, got " .. type(devices), 2) end
  for i, d in ipairs(devices) do
    if type(d) ~= "number" or d < 0 or d % 1 ~= 0 then error(("devices[%d]: expected an index"):format(i), 2) end
  end
  local cli, err = require("ctr.runtime").look_path(M.CLI)
  if not cli then
    return nil, errors.new(("--gpus: %s (install the NVIDIA Container Toolkit: libnvidia-container-tools)"):format(err.msg), 2, "NOT_FOUND")
  end
  local args = { q(cli), "--load-kmods", "configure" }
  if #devices > 0 then
    local list = {}
    for i, d in ipairs(devices) do list[i] = ("%d"):format(d) end
    args[#args + 1] = "--device=" .. table.concat(list, ",")
  end
  for _, c in ipairs(M.ALL_CAPABILITIES) do args[#args + 1] = c end
  local script = 'state=$(cat); ' ..
    'pid=$(printf %s "$state" | sed -n \'s/.*"pid":[ ]*\\([0-9][0-9]*\\).*/\\1/p\'); ' ..
    'bundle=$(printf %s "$state" | sed -n \'s/.*"bundle":[ ]*"\\([^"]*\\)".*/\\1/p\'); ' ..
    'exec ' .. table.concat(args, " ") .. ' --pid="$pid" "$bundle/rootfs"'
  return function(_, _, _, spec)
    local core = require("ctr.core")
    spec.hooks = spec.hooks or {}
    spec.hooks.prestart = spec.hooks.prestart or core.json_array({})
    spec.hooks.prestart[#spec.hooks.prestart + 1] = { path = "/bin/sh",
      args = core.json_array({ "sh", "-c", script }) }
  end
end

return M
