--- Linux signals by name and number, parsed as containerd and runc parse them (moby's
-- `signal.ParseSignal`, runc's `kill` argument): a number, or a name with or without "SIG" in
-- any case ("SIGTERM", "term"), the real-time ones as "RTMIN", "RTMIN+3", "RTMAX-1".  The one
-- table of them for the library: a task's stop signal (the image's StopSignal), `ctr tasks
-- kill --signal`, ctrlua-runc's `kill`, and the names in messages.
-- @module ctr.signals
local errors = require("ctr.errors")

local M = {}

-- glibc's SIGRTMIN (the kernel's 32 and 33 are the C library's own) and the kernel's last
local RTMIN, RTMAX = 34, 64

--- The numbered names, "HUP" = 1 ... "SYS" = 31 (IOT and POLL are aliases of ABRT and IO).
M.NUMBERS = {
  HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, IOT = 6, BUS = 7, FPE = 8,
  KILL = 9, USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15, STKFLT = 16,
  CHLD = 17, CONT = 18, STOP = 19, TSTP = 20, TTIN = 21, TTOU = 22, URG = 23, XCPU = 24,
  XFSZ = 25, VTALRM = 26, PROF = 27, WINCH = 28, IO = 29, POLL = 29, PWR = 30, SYS = 31,
}

-- number -> name, the first name of each (not its alias)
local NAMES = { "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
  "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
  "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS" }

--- The name of signal n ("SIGKILL", "SIGRTMIN+3"), or "signal N" for one without a name.
-- @tparam number n
function M.name(n)
  if NAMES[n] then return "SIG" .. NAMES[n] end
  if n == RTMIN then return "SIGRTMIN" end
  if type(n) == "number" and n > RTMIN and n <= RTMAX then return ("SIGRTMIN+%d"):format(n - RTMIN) end
  return ("signal %s"):format(tostring(n))
end

--- Parse a signal: a number 1..64 (a string of digits or a number), or a name.
-- @param s "SIGTERM", "TERM", "sigterm", "15", "RTMIN+3", or a number
-- @return the number, or nil, err (sym INVALID: "invalid signal" for a number out of range,
-- "unknown signal" for a name that is none)
function M.parse(s)
  if type(s) == "number" then
    if s >= 1 and s <= RTMAX and s % 1 == 0 then return s end
    return nil, errors.invalid("invalid signal %q", tostring(s))
  end
  if type(s) ~= "string" then error("signal: expected string or number, got " .. type(s), 2) end
  local n = tonumber(s)
  if n then
    if n >= 1 and n <= RTMAX and n % 1 == 0 then return n end
    return nil, errors.invalid("invalid signal %q", s)
  end
  local name = s:upper():gsub("^SIG", "")
  if M.NUMBERS[name] then return M.NUMBERS[name] end
  local rt, off = name:match("^RT(M[AI][XN])([+-]?%d*)$")
  local base = rt == "MIN" and RTMIN or rt == "MAX" and RTMAX or nil
  if base then
    local v = base + (tonumber(off ~= "" and off or "0") or 0)
    if v >= RTMIN and v <= RTMAX then return v end
  end
  return nil, errors.invalid("unknown signal %q", s)
end

return M
