-- A private tmux server for the specs that need a real terminal (see M.server).
local core = require("ctr.core")
local S = require("support.ctrlua")

local q = S.q
local M = {}

--- A tmux server of our own (-S: a socket in dir, -f /dev/null: no user configuration), with
-- one session "t" running a script in a pane of 80x24: a real terminal for the specs of
-- `run -t`, `tasks attach` and ctrlua-runc's terminals.  T.start(script) (again: the previous
-- session and its records go first), T.run(cmd[, {go=}]), T.rc(), T.modes(), T.screen(),
-- T.wait_for(pattern), T.keys(text), T.size(), T.kill().
function M.server(dir)
  local sock = dir .. "/tmux.sock"
  local T = {}
  function T.cmd(...)
    local parts = { "tmux", "-S", q(sock), "-f", "/dev/null" }
    for i = 1, select("#", ...) do parts[#parts + 1] = q((select(i, ...))) end
    return S.must(table.concat(parts, " "))
  end
  function T.start(script)
    for _, f in ipairs({ "/rc", "/before", "/after", "/go" }) do core.unlink(dir .. f) end
    pcall(T.cmd, "kill-session", "-t", "t")
    local path = dir .. "/pane.sh"
    assert(core.write_file(path, script, { mode = 493 }))
    T.cmd("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "sh " .. path)
  end
  function T.screen() return T.cmd("capture-pane", "-p", "-J", "-S", "-200", "-t", "t") end
  function T.wait_for(pattern, what)
    return S.until_true(function() return T.screen():match(pattern) end, 15, what or pattern)
  end
  function T.keys(text) T.cmd("send-keys", "-t", "t", "-l", text); T.cmd("send-keys", "-t", "t", "Enter") end
  function T.size()
    local h, w = T.cmd("display-message", "-p", "-t", "t", "#{pane_height} #{pane_width}"):match("(%d+) (%d+)")
    return tonumber(h), tonumber(w)
  end
  function T.kill() S.sh("tmux -S " .. q(sock) .. " kill-server 2>/dev/null; true") end
  -- Run shell command `cmd` in the pane between two records of the pane's terminal mode and
  -- size (dir/before, dir/after); with opts.go, only once dir/go exists (T.go() makes it),
  -- so that the caller can set up first.  SIGINT is caught by the pane's shell (so a ^C is
  -- the command's alone) and reset to its default for the command.  T.rc() waits for the
  -- command to end: its exit status.
  function T.run(cmd, opts)
    local d = q(dir)
    T.start(("trap : INT; stty -g > %s/before; stty size >> %s/before; %s%s; echo $? > %s/rc.tmp; " ..
      "stty -g > %s/after; stty size >> %s/after; echo END-OF-RUN; mv %s/rc.tmp %s/rc; sleep 30\n")
      :format(d, d, opts and opts.go and ("while [ ! -e %s/go ]; do sleep 0.02; done; "):format(d) or "",
        cmd, d, d, d, d, d))
  end
  function T.go() assert(core.write_file(dir .. "/go", "", { mode = 420 })) end
  function T.rc()
    S.until_true(function() return S.exists(dir .. "/rc") end, 20, "the command in the pane to end")
    return tonumber(S.slurp(dir .. "/rc"):match("%d+"))
  end
  function T.modes() return S.slurp(dir .. "/before"), S.slurp(dir .. "/after") end
  return T
end

return M
