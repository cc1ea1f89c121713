-- images prune and the garbage collection of content and snapshots (docs/crash-consistency.md,
-- "Garbage collection and leases"), on a real store: what no image, container or live lease
-- refers to goes, from the disk too; what a record that cannot be read might name stays; a
-- lease of a live process holds what it names; a pull completes while gc runs in a loop.
local core = require("ctr.core")
local S = require("support.ctrlua")
local R = require("support.registry")
local tar = require("support.tar")

local IMAGE = S.IMAGE
local q = S.q

local function blob_path(env, digest) return env.root .. "/content/blobs/sha256/" .. digest:sub(8) end
local function blob_there(env, digest) return core.stat(blob_path(env, digest)) ~= nil end

-- An image derived from the test image with one layer of its own, imported: its name, the
-- digest of its own layer and the digests of its manifest and config.
local function derived(env, name, tag)
  local dir = env.dir .. "/" .. tag
  S.must("mkdir -p " .. q(dir))
  local layer = tar.build({ { name = tag, type = "file", data = tag .. "\n", mode = 420 } })
  local path = S.derive_image(dir, name, nil, { layer })
  local r = env:run("images.lua", "import", path)
  assert.are.equal(0, r.code, r.stderr)
  local rec = core.json_decode(assert(core.read_file(env.root .. "/meta/" .. env.ns .. "/images/"
    .. require("ctr.store.meta").escape(name) .. ".json")))
  local manifest = core.json_decode(assert(core.read_file(blob_path(env, rec.target.digest))))
  return { name = name, layer = core.sha256(layer), manifest = rec.target.digest,
    config = manifest.config.digest, layers = manifest.layers }
end

local function image_names(env)
  local r = env:run("images.lua", "ls", "-q")
  assert.are.equal(0, r.code, r.stderr)
  local t = {}
  for l in r.stdout:gmatch("[^\n]+") do t[#t + 1] = l end
  table.sort(t)
  return t
end

local function committed(env)
  local t = {}
  for _, s in ipairs(env:snapshots()) do
    if s.kind == "Committed" then t[#t + 1] = s.key end
  end
  table.sort(t)
  return t
end

local function snapshot_dirs(env)
  return #(core.listdir(env.root .. "/snapshots/overlayfs/snapshots") or {})
end

-- the chain ID of the top layer of a derived image (the test image's chain, then its layer)
local function top_chain(env, img)
  local config = core.json_decode(assert(core.read_file(blob_path(env, img.config))))
  local ids = assert(require("ctr.store.unpack").chain_ids(config.rootfs.diff_ids))
  return ids[#ids], ids[1]
end

local function base_image(env)
  local rec = core.json_decode(assert(core.read_file(env.root .. "/meta/" .. env.ns .. "/images/"
    .. require("ctr.store.meta").escape(IMAGE) .. ".json")))
  local manifest = core.json_decode(assert(core.read_file(blob_path(env, rec.target.digest))))
  return { manifest = rec.target.digest, config = manifest.config.digest, layer = manifest.layers[1].digest }
end

describe("dangling image names", function()
  it("are the untagged ones: a digest, or a repository with no tag", function()
    local untagged = require("ctr.store.prune").untagged
    local cases = {
      { "docker.io/library/busybox:latest", false },
      { "localhost:5000/app:v2", false },
      { "docker.io/library/busybox:1.36@sha256:" .. ("a"):rep(64), false },
      { "docker.io/library/busybox@sha256:" .. ("a"):rep(64), true },
      { "localhost:5000/app@sha256:" .. ("b"):rep(64), true },
      { "sha256:" .. ("c"):rep(64), true },
      { "localhost:5000/app", true },
      { "app", true },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], untagged(c[1]), c[1]) end
  end)
end)

describe("images prune and gc #root", function()
  local env
  before_each(function() env = S.new_env() end)
  after_each(function()
    for _, c in ipairs(env:containers()) do env:run("containers.lua", "rm", "-f", c) end
    env:destroy()
  end)
  teardown(function() S.cleanup() end)

  it("without --all removes the dangling images only, with --all every image no container uses; " ..
    "what only they used goes from the disk, shared layers stay", function()
    local dangling = derived(env, "ctrlua.test/dangling@sha256:" .. ("1"):rep(64), "dangling")
    local used = derived(env, "localhost:5000/used", "used")
    local tagged = derived(env, "ctrlua.test/tagged:1", "tagged")
    local base = base_image(env)
    local r = env:run("run.lua", "localhost:5000/used", "c1", "true")
    assert.are.equal(0, r.code, r.stderr)
    local dtop, base_chain = top_chain(env, dangling)
    local utop = top_chain(env, used)
    local dirs = snapshot_dirs(env)

    r = env:run("images.lua", "prune")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("", r.stderr)
    -- one line per image, then the total
    assert.are.same({ "deleted: " .. dangling.name .. " (" .. dangling.manifest .. ")" },
      { (r.stdout:match("^([^\n]*)\n")) })
    local bytes = tonumber(r.stdout:match("\nTotal reclaimed space: [^(]*%((%d+) bytes: 3 blobs, 1 snapshot%)\n$"))
    assert.is_truthy(bytes and bytes > 0, r.stdout)
    assert.are.same({ IMAGE, "ctrlua.test/tagged:1", "localhost:5000/used" }, image_names(env))
    for _, d in ipairs({ dangling.layer, dangling.manifest, dangling.config }) do
      assert.is_false(blob_there(env, d), d)
    end
    for _, d in ipairs({ used.layer, tagged.layer, base.layer, base.manifest, base.config }) do
      assert.is_true(blob_there(env, d), d)
    end
    local left = committed(env)
    for _, k in ipairs(left) do assert.are_not.equal(dtop, k) end
    assert.are.equal(dirs - 1, snapshot_dirs(env))

    -- --all: every image no container uses; the used one and its layers (the base's too) stay
    r = env:run("images.lua", "prune", "--all")
    assert.are.equal(0, r.code, r.stderr)
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.same({ "deleted: " .. IMAGE .. " (" .. base.manifest .. ")",
      "deleted: ctrlua.test/tagged:1 (" .. tagged.manifest .. ")" }, { lines[1], lines[2] })
    assert.matches("^Total reclaimed space: .*%(%d+ bytes: 5 blobs, 1 snapshot%)$", lines[3])
    assert.are.same({ "localhost:5000/used" }, image_names(env))
    local want = { base_chain, utop }
    table.sort(want)
    assert.are.same(want, committed(env))
    for _, d in ipairs({ tagged.layer, tagged.manifest, tagged.config, base.manifest, base.config }) do
      assert.is_false(blob_there(env, d), d)
    end
    for _, d in ipairs({ used.layer, used.manifest, used.config, base.layer }) do
      assert.is_true(blob_there(env, d), d)
    end
    -- the container still runs from what is left
    r = env:run("containers.lua", "rm", "c1")
    assert.are.equal(0, r.code, r.stderr)
    r = env:run("run.lua", "--rm", "localhost:5000/used", "c2", "cat", "/used")
    assert.are.equal(0, r.code, r.stderr)
    assert.are.equal("used\n", r.stdout)
  end)

  it("--dry-run lists what would go and removes nothing", function()
    local dangling = derived(env, "ctrlua.test/dangling", "dangling")
    local function state()
      return { images = image_names(env), snapshots = committed(env), dirs = snapshot_dirs(env),
        blobs = S.must("ls " .. q(env.root .. "/content/blobs/sha256")) }
    end
    local before = state()
    local r = env:run("images.lua", "prune", "-a", "-n")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^would delete: " .. IMAGE:gsub("%p", "%%%0") .. " ", r.stdout)
    assert.matches("\nwould delete: ctrlua.test/dangling ", r.stdout)
    assert.matches("\nTotal reclaimable space: .*%(%d+ bytes: 6 blobs, 2 snapshots%)\n$", r.stdout)
    r = env:run("images.lua", "prune", "--dry-run")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("^would delete: ctrlua.test/dangling %(" .. dangling.manifest .. "%)\n", r.stdout)
    assert.are.same(before, state())
  end)

  it("keeps a blob a live process's lease holds through gc, and collects it once that process is gone", function()
    local script = env.dir .. "/hold.lua"
    assert(core.write_file(script, [[
local ctr = require("ctr")
local c = assert(ctr.client())
local lease = assert(require("ctr.leases").create(c))
local store = c:content_store()
local d = assert(store:write("held by a lease\n"))
assert(lease:add({ content = { d } }))
io.stdout:write(d, "\n")
io.stdout:flush()
require("ctr.core").poll({}, 600000)
]]))
    -- an unreferenced blob from before any lease: collected at once
    local store = require("ctr.content").new(env.root)
    local loose = assert(store:write("nobody refers to this\n"))
    S.must("touch -d '1 hour ago' " .. q(blob_path(env, loose)))
    local h = env:spawn(script)
    local held = S.until_true(function() return (S.slurp(h.out) or ""):match("(sha256:%x+)") end, 10,
      "the lease holder to write its blob")
    -- made an hour ago as far as the clock is concerned: only the lease's list holds it
    S.must("touch -d '1 hour ago' " .. q(blob_path(env, held)))
    local g = env:run("gc")
    assert.are.equal(0, g.code, g.stderr)
    assert.matches("removed content " .. loose .. " ", g.stdout)
    assert.is_false(blob_there(env, loose))
    assert.is_true(blob_there(env, held), g.stdout)
    -- its process gone, the lease has expired
    core.kill(h.pid, 9)
    h:wait(20)
    g = env:run("gc")
    assert.are.equal(0, g.code, g.stderr)
    assert.matches("removed lease " .. env.ns:gsub("%p", "%%%0") .. "/%x+ %(expired: pid " .. h.pid .. " is gone%)", g.stdout)
    assert.matches("removed content " .. held .. " ", g.stdout)
    assert.is_false(blob_there(env, held))
    assert.are.same({}, core.listdir(env.root .. "/meta/" .. env.ns .. "/leases") or {})
    -- the image is still whole
    local r = env:run("run.lua", "--rm", IMAGE, "c1", "true")
    assert.are.equal(0, r.code, r.stderr)
  end)

  it("reports an image record it cannot read and keeps what it might name", function()
    local other = derived(env, "ctrlua.test/other:1", "other")
    local base = base_image(env)
    local otop = top_chain(env, other)
    local path = env.root .. "/meta/" .. env.ns .. "/images/" .. require("ctr.store.meta").escape(other.name) .. ".json"
    assert(core.write_file(path, '{"name": "ctrlua.test/other:1", "target": 7}\n'))
    local r = env:run("images.lua", "prune", "--all")
    assert.are.equal(0, r.code, r.stderr)
    assert.matches("warning: " .. path:gsub("%p", "%%%0") .. ": field \"target\": expected object, got number: kept", r.stderr)
    assert.matches("^deleted: " .. IMAGE:gsub("%p", "%%%0") .. " ", r.stdout)
    assert.matches("%(0 bytes: 0 blobs, 0 snapshots%)\n$", r.stdout)
    for _, d in ipairs({ other.layer, other.manifest, other.config, base.layer, base.manifest, base.config }) do
      assert.is_true(blob_there(env, d), d)
    end
    local g = env:run("gc")
    assert.are.equal(0, g.code, g.stderr)
    assert.matches("warning: " .. path:gsub("%p", "%%%0"), g.stderr)
    assert.is_true(blob_there(env, other.layer))
    assert.are.equal(2, #committed(env))
    -- once the record is removed, what it named goes
    r = env:run("images.lua", "rm", other.name)
    assert.are.equal(0, r.code, r.stderr)
    g = env:run("gc")
    assert.are.equal(0, g.code, g.stderr)
    assert.are.equal("", g.stderr)
    assert.matches("removed snapshot overlayfs " .. env.ns:gsub("%p", "%%%0") .. "/" .. otop, g.stdout)
    for _, d in ipairs({ other.layer, other.manifest, other.config, base.layer, base.manifest, base.config }) do
      assert.is_false(blob_there(env, d), d)
    end
    assert.are.same({}, committed(env))
    assert.are.equal(0, snapshot_dirs(env))
  end)
end)

describe("gc while pulling #root", function()
  if not R.available() then
    it("needs docker-registry, skopeo, htpasswd and python3", function() pending("not installed") end)
    return
  end
  local reg, env
  setup(function()
    reg = R.start()
    reg:push_image(S.IMAGE_TAR, "test/busybox:1")
  end)
  teardown(function()
    if reg then reg:stop() end
    S.cleanup()
  end)
  before_each(function() env = S.new_env({ empty = true }) end)
  after_each(function() env:destroy() end)

  it("a pull completes and its image runs while gc runs in a loop", function()
    local ref = reg.host .. "/test/busybox:1"
    local stop = env.dir .. "/stop"
    local loop = env.dir .. "/gc-loop.sh"
    assert(core.write_file(loop, ("n=0; while [ ! -e %s ]; do %s gc >/dev/null || exit 1; n=$((n+1)); done; echo $n\n")
      :format(q(stop), env:cmdline())))
    local gc_out = env.dir .. "/gc-loop.out"
    S.must(("sh %s >%s 2>&1 & echo $!"):format(q(loop), q(gc_out)))
    local ok, err = pcall(function()
      for i = 1, 4 do
        local r = env:run("images.lua", "pull", "--plain-http", ref)
        assert.are.equal(0, r.code, "pull " .. i .. ": " .. r.stderr)
        r = env:run("run.lua", "--rm", ref, "p" .. i, "sh", "-c", "echo ran")
        assert.are.equal(0, r.code, "run " .. i .. ": " .. r.stderr)
        assert.are.equal("ran\n", r.stdout)
        -- the next pull starts from nothing: the image goes and gc collects it
        r = env:run("images.lua", "rm", ref)
        assert.are.equal(0, r.code, r.stderr)
      end
    end)
    assert(core.write_file(stop, ""))
    local n = S.until_true(function() return tonumber((S.slurp(gc_out) or ""):match("^(%d+)\n")) end, 60,
      "the gc loop to end")
    assert(ok, err)
    assert.is_true(n > 0)
  end)
end)
