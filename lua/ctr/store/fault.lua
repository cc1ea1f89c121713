--- Fault injection for the crash tests: with CTRLUA_FAULT=STEP in the environment, the process
-- that reaches the point named STEP kills itself with SIGKILL there, as a crash would (no
-- finalizer, no close, no cleanup runs).  The steps are those of docs/crash-consistency.md; the
-- C core has its own points (csrc/base/fault.c) under the same scheme.  The variable is read once,
-- when this module loads: when it is unset, `point` is an empty function.
-- @module ctr.store.fault
local core = require("ctr.core")

local M = {}

local want = core.getenv("CTRLUA_FAULT")

if want == nil or want == "" then
  --- Crash here when CTRLUA_FAULT names this step.
  -- @tparam string step the step's name ("task.mounted")
  function M.point() end
else
  function M.point(step)
    if step == want then
      io.stdout:flush()
      core.kill(core.getpid(), 9)
      os.exit(99) -- not reached: SIGKILL cannot be blocked
    end
  end
end

return M
