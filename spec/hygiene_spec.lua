-- The suite's host hygiene check (spec/support/hygiene.lua, run by spec/runner.lua around the
-- whole suite): what it sees of /dev and of the mount table, and that a spec which leaves a
-- mount on the host fails the run with the check named in its `N passed, M failed` line.
local core = require("ctr.core")
local S = require("support.ctrlua")
local H = require("support.hygiene")

describe("host hygiene check #root", function()
  local tmp
  before_each(function() tmp = S.tmpdir() end)
  after_each(function()
    S.unmount_under(tmp)
    core.remove_tree(tmp)
  end)

  it("sees a /dev node chowned, chmodded, replaced, added or removed; not a numbered pty", function()
    local dev = tmp .. "/dev"
    S.must(("mkdir -p %s/pts %s/shm && mknod %s/null c 1 3 && mknod %s/zero c 1 5 && " ..
      "mknod %s/full c 1 7 && mknod %s/pts/0 c 136 0"):format(dev, dev, dev, dev, dev, dev))
    local before = H.snapshot({ dev = dev })
    assert.are.same({}, H.compare(before, H.snapshot({ dev = dev })))
    S.must(("chown 1:1 %s/null && chmod 600 %s/zero && rm %s/full && mknod %s/full c 1 3 && " ..
      "mknod %s/extra c 1 9 && rm %s/pts/0 && mknod %s/pts/1 c 136 1 && touch %s/shm/x"):format(
      dev, dev, dev, dev, dev, dev, dev, dev))
    local diffs = H.compare(before, H.snapshot({ dev = dev }))
    local seen = {}
    for _, d in ipairs(diffs) do seen[#seen + 1] = d:match("^/dev: (%S+ %S+)") end
    assert.are.same({ dev .. "/extra appeared", dev .. "/full changed:", dev .. "/null changed:",
      dev .. "/zero changed:" }, seen)
    assert.matches(" 0:0 %d+ .* %-> %d+ 1:1 %d+ ", diffs[3])
  end)

  it("sees a mount left outside the test directories, and its propagation changed; not those inside", function()
    local probe = (S.must("mktemp -d /tmp/hygiene-probe.XXXXXX"):gsub("%s+$", ""))
    finally(function()
      os.execute("umount -l " .. S.q(probe) .. " 2>/dev/null")
      core.rmdir(probe)
    end)
    local before = H.snapshot()
    S.must("mount -t tmpfs ctrlua-hygiene " .. S.q(tmp .. "/"))
    assert.are.same({}, H.compare(before, H.snapshot()))
    S.must("mount -t tmpfs ctrlua-hygiene " .. S.q(probe))
    local diffs = H.compare(before, H.snapshot())
    assert.are.equal(1, #diffs, table.concat(diffs, "\n"))
    assert.matches("^mount added: " .. probe:gsub("%p", "%%%0") .. " / .* %- tmpfs ctrlua%-hygiene ", diffs[1])
    S.must("mount --make-shared " .. S.q(probe))
    diffs = H.compare(before, H.snapshot())
    assert.matches(" shared:%d+ %- tmpfs", diffs[1])
    S.must("umount " .. S.q(probe))
    assert.are.same({}, H.compare(before, H.snapshot()))
  end)

  it("a spec that leaves a mount fails the run: the check is a failed test in the summary", function()
    local probe = (S.must("mktemp -d /tmp/hygiene-probe.XXXXXX"):gsub("%s+$", ""))
    finally(function()
      os.execute("umount -l " .. S.q(probe) .. " 2>/dev/null")
      core.rmdir(probe)
    end)
    local spec = tmp .. "/leak_spec.lua"
    assert(core.write_file(spec, ([[
describe("leak", function()
  it("mounts and forgets", function()
    assert(os.execute("mount -t tmpfs ctrlua-hygiene-leak %s") == 0)
  end)
end)
]]):format(S.q(probe)), { mode = 420 }))
    local out, rc = S.sh(("%s spec/runner.lua %s"):format(os.getenv("CTRLUA_LUA") or "luajit", S.q(spec)))
    assert.are_not.equal(0, rc, out)
    assert.matches("ok    leak mounts and forgets\n", out, 1, true)
    assert.matches("\nFAIL  host hygiene: /dev and mounts unchanged\n", out, 1, true)
    assert.matches("\nFAILED: host hygiene: /dev and mounts unchanged\n  mount added: " .. probe, out, 1, true)
    assert.matches("\n1 passed, 1 failed, 0 skipped\n$", out)
    -- and a clean one passes it
    assert(core.write_file(spec, 'describe("clean", function() it("does nothing", function() end) end)\n',
      { mode = 420 }))
    out, rc = S.sh(("%s spec/runner.lua %s"):format(os.getenv("CTRLUA_LUA") or "luajit", S.q(spec)))
    assert.are.equal(0, rc, out)
    assert.matches("\nok    host hygiene: /dev and mounts unchanged\n", out, 1, true)
    assert.matches("\n2 passed, 0 failed, 0 skipped\n$", out)
  end)

  it("removes the temporary directories a run's specs leave; one still holding a mount fails it", function()
    local spec, made = tmp .. "/tmpdirs_spec.lua", tmp .. "/made"
    assert(core.write_file(spec, ([[
local S = require("support.ctrlua")
describe("tmpdirs", function()
  it("leaves a file and a mount", function()
    local kept, mounted = S.tmpdir(), S.tmpdir()
    assert(io.open(kept .. "/file", "w")):close()
    assert(os.execute("mkdir " .. mounted .. "/m && mount -t tmpfs ctrlua-hygiene-tmp " .. mounted .. "/m") == 0)
    local f = assert(io.open(%q, "w"))
    f:write(kept, "\n", mounted, "\n")
    f:close()
  end)
end)
]]):format(made), { mode = 420 }))
    local out, rc = S.sh(("%s spec/runner.lua %s"):format(os.getenv("CTRLUA_LUA") or "luajit", S.q(spec)))
    local kept, mounted = (S.slurp(made) or ""):match("^(%S+)\n(%S+)\n$")
    assert.is_not_nil(mounted, out)
    finally(function()
      os.execute("umount " .. S.q(mounted .. "/m") .. " 2>/dev/null")
      core.remove_tree(mounted)
    end)
    assert.are_not.equal(0, rc, out)
    assert.is_false(S.exists(kept))
    assert.is_true(S.exists(mounted .. "/m"))
    assert.matches("\nFAILED: host hygiene: /dev and mounts unchanged\n  temporary directory left: " ..
      mounted .. ": ", out, 1, true)
    assert.matches("\n1 passed, 1 failed, 0 skipped\n$", out)
  end)
end)
