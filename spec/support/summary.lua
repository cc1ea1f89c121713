-- busted output handler: a line per test, the failures in full, then `N passed, M failed`.
-- After the last test comes one more, the host's hygiene (support.hygiene: /dev and the mount
-- table as they were when spec/runner.lua started), counted in that line.
local HYGIENE = "host hygiene: /dev and mounts unchanged"

return function(options)
  local busted = require("busted")
  local hygiene = require("support.hygiene")
  local handler = require("busted.outputHandlers.base")()
  local out = io.stdout

  local function name(element)
    return handler.getFullName(element)
  end

  handler.testEnd = function(element, parent, status)
    local mark = ({ success = "ok  ", failure = "FAIL", error = "ERR ", pending = "skip" })[status]
      or status
    out:write(mark, "  ", name(element), "\n")
    out:flush()
    return nil, true
  end

  local function report(kind, list)
    for _, f in ipairs(list) do
      out:write("\n", kind, ": ", name(f.element), "\n")
      if f.trace and f.trace.short_src then
        out:write("  at ", f.trace.short_src, ":", tostring(f.trace.currentline), "\n")
      end
      local msg = f.message
      if type(msg) ~= "string" then msg = require("pl.pretty").write(msg) end
      out:write("  ", tostring(msg):gsub("\n", "\n  "), "\n")
    end
  end

  handler.suiteEnd = function()
    local diffs = hygiene.check()
    local passed, failed = handler.successesCount, handler.failuresCount + handler.errorsCount
    if diffs then
      out:write(#diffs == 0 and "ok  " or "FAIL", "  ", HYGIENE, "\n")
      if #diffs == 0 then passed = passed + 1 else failed = failed + 1 end
      hygiene.failed = #diffs > 0
    end
    report("FAILED", handler.failures)
    report("ERROR", handler.errors)
    if diffs and #diffs > 0 then
      out:write("\nFAILED: ", HYGIENE, "\n  ", table.concat(diffs, "\n  "), "\n")
    end
    out:write("\n", passed, " passed, ", failed, " failed, ",
      handler.pendingsCount, " skipped\n")
    out:flush()
    return nil, true
  end

  handler.errorFile = function(element, parent, message)
    out:write("ERR   loading ", tostring(element and element.name), ": ", tostring(message), "\n")
    return nil, true
  end

  busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  busted.subscribe({ "error", "file" }, handler.errorFile)
  return handler
end
