-- Unpacking images into snapshots: chain IDs, reuse, shared layers, failures that leave nothing
-- behind, whiteouts through a real overlay mount, and two processes unpacking at once.
-- Fixtures are built by hand: real tar files (some gzipped) stored as blobs, and a stub
-- ctr.images that returns their manifest and config.
local core = require("ctr.core")
local client_mod = require("ctr.client")
local unpack_mod = require("ctr.store.unpack")
local mount = require("ctr.mount")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  assert(ok == true or ok == 0, ("command failed (%s): %s\n%s"):format(tostring(code), cmd, out))
  return (out:gsub("\n$", ""))
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function exists(path) return core.stat(path) ~= nil end

local tmp, client, images
local saved_images = package.loaded["ctr.images"]

-- Make a layer from a shell script run in an empty directory; store it as a blob.
-- Returns {digest=, diff_id=, size=, mediaType=}.
local function layer(name, script, gzip)
  local dir = tmp .. "/src-" .. name
  sh("mkdir -p " .. q(dir) .. " && cd " .. q(dir) .. " && " .. script)
  local tar = tmp .. "/" .. name .. ".tar"
  sh("tar -C " .. q(dir) .. " -cf " .. q(tar) .. " .")
  local diff_id = "sha256:" .. sh("sha256sum " .. q(tar) .. " | cut -d' ' -f1")
  local blob = tar
  if gzip then
    sh("gzip -n -k " .. q(tar))
    blob = tar .. ".gz"
  end
  local hex = sh("sha256sum " .. q(blob) .. " | cut -d' ' -f1")
  local blobs = client.root .. "/content/blobs/sha256"
  sh("mkdir -p " .. q(blobs) .. " && cp " .. q(blob) .. " " .. q(blobs .. "/" .. hex))
  return {
    mediaType = gzip and "application/vnd.oci.image.layer.v1.tar+gzip"
      or "application/vnd.oci.image.layer.v1.tar",
    digest = "sha256:" .. hex, size = core.stat(blob).size, diff_id = diff_id,
  }
end

-- An image record and its manifest and config in the stub.
local function image(name, layers, diff_ids)
  local m = { schemaVersion = 2, layers = {} }
  local c = { rootfs = { type = "layers", diff_ids = {} } }
  for i, l in ipairs(layers) do
    m.layers[i] = { mediaType = l.mediaType, digest = l.digest, size = l.size }
    c.rootfs.diff_ids[i] = diff_ids and diff_ids[i] or l.diff_id
  end
  images[name] = { m, c }
  return { name = name, target = { digest = "sha256:" .. string.rep("0", 64) } }
end

local function setup(snapshotter)
  tmp = require("support.tmp").dir("unpack")
  client = assert(client_mod.new({ root = tmp .. "/root", state = tmp .. "/state", namespace = "test",
    snapshotter = snapshotter }))
  images = {}
  package.loaded["ctr.images"] = {
    manifest = function(_, img)
      local e = images[img.name]
      if not e then return nil, require("ctr.errors").not_found("image %s", img.name) end
      return e[1], e[2]
    end,
  }
end

local function teardown()
  package.loaded["ctr.images"] = saved_images
  if not tmp then return end
  for _, e in ipairs(core.mountinfo() or {}) do
    if e.target:sub(1, #tmp + 1) == tmp .. "/" then core.unmount(e.target, { detach = true }) end
  end
  sh("rm -rf " .. q(tmp))
  tmp = nil
end

local L1 = table.concat({
  "mkdir -p etc dir opq bin",
  "printf one > etc/hostname",
  "printf keep > dir/keep && printf gone > dir/gone",
  "printf old > opq/old && printf rm > rm-me",
  "printf '#!/bin/sh\\n' > bin/tool && chmod 4755 bin/tool",
}, " && ")
local L2 = table.concat({
  "mkdir -p dir opq",
  "touch .wh.rm-me dir/.wh.gone opq/.wh..wh..opq",
  "printf new > opq/new && printf two > l2.txt",
}, " && ")

local function snapshot_dirs(name)
  local out = {}
  for _, e in ipairs(core.listdir(client.root .. "/snapshots/" .. (name or "overlayfs") .. "/snapshots") or {}) do
    out[#out + 1] = e
  end
  table.sort(out)
  return out
end

describe("unpack chain ids", function()
  it("follow the OCI definition", function()
    local a, b, c = "sha256:" .. ("a"):rep(64), "sha256:" .. ("b"):rep(64), "sha256:" .. ("c"):rep(64)
    assert.are.same({ a, "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
      "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588" },
      unpack_mod.chain_ids({ a, b, c }))
    local r, err = unpack_mod.chain_ids({ a, "sha256:xyz" })
    assert.is_nil(r)
    assert.are.equal("INVALID", err.sym)
    assert.has_error(function() unpack_mod.chain_ids("x") end)
  end)
end)

describe("unpack #root", function()
  after_each(teardown)

  it("unpacks each layer once, reuses it afterwards and across images", function()
    setup()
    local l1, l2 = layer("l1", L1, false), layer("l2", L2, true)
    local l3 = layer("l3", "printf three > l3.txt", true)
    local a = image("a", { l1, l2 })
    local want = sh(("printf '%%s %%s' %s %s | sha256sum | cut -d' ' -f1"):format(l1.diff_id, l2.diff_id))

    assert.is_false(unpack_mod.is_unpacked(client, a))
    local top, stats = assert(unpack_mod.unpack(client, a))
    assert.are.equal("sha256:" .. want, top)
    assert.are.same({ unpacked = 2, reused = 0 }, stats)
    local sn = assert(client:snapshotter())
    local info = assert(sn:stat(top))
    assert.are.equal("committed", info.kind)
    assert.are.equal(l1.diff_id, info.parent)
    assert.are.equal("committed", sn:stat(l1.diff_id).kind)
    assert.are.equal(2, #sn:list()) -- no temporary extract-* key left
    assert.are.equal(2, #snapshot_dirs())
    assert.is_true(unpack_mod.is_unpacked(client, a))

    top, stats = assert(unpack_mod.unpack(client, a))
    assert.are.same({ unpacked = 0, reused = 2 }, stats)

    local b = image("b", { l1, l3 })
    local top_b
    top_b, stats = assert(unpack_mod.unpack(client, b))
    assert.are.same({ unpacked = 1, reused = 1 }, stats)
    assert.are.equal(l1.diff_id, sn:stat(top_b).parent)
    assert.are.equal(3, #sn:list())
    assert.are.equal(3, #snapshot_dirs())
  end)

  it("leaves no snapshot and no directory when a diff ID does not match", function()
    setup()
    local l1, l2 = layer("l1", L1, false), layer("l2", L2, true)
    assert(unpack_mod.unpack(client, image("good", { l1 })))
    local before = snapshot_dirs()
    local bad = image("bad", { l1, l2 }, { l1.diff_id, "sha256:" .. ("d"):rep(64) })
    local top, err = unpack_mod.unpack(client, bad)
    assert.is_nil(top)
    assert.matches("unpack bad layer 2", err.msg)
    assert.matches(("d"):rep(64), err.msg)
    local sn = assert(client:snapshotter())
    assert.are.equal(1, #sn:list())
    assert.are.same(before, snapshot_dirs())
    -- a missing blob fails the same clean way
    local l3 = layer("l3", "printf three > l3.txt", false)
    sh("rm " .. q(client.root .. "/content/blobs/sha256/" .. l3.digest:sub(8)))
    top, err = unpack_mod.unpack(client, image("missing", { l1, l3 }))
    assert.is_nil(top)
    assert.are.equal("ENOENT", err.sym)
    assert.are.equal(1, #sn:list())
    assert.are.same(before, snapshot_dirs())
  end)

  it("applies layers at once and leaves nothing of those in flight when one fails", function()
    setup()
    local layers, diff_ids = {}, {}
    for i = 1, 4 do
      -- the third large, so that it is still being applied when the second fails
      layers[i] = layer("f" .. i, ("mkdir d%d && head -c %d /dev/zero > d%d/f"):format(i,
        i == 3 and 40000000 or 1000, i), true)
      diff_ids[i] = layers[i].diff_id
    end
    diff_ids[2] = "sha256:" .. ("e"):rep(64)
    local Sn = require("ctr.snapshots").Snapshotter
    local prepare, prepared = Sn.prepare, {}
    Sn.prepare = function(self, key, ...)
      prepared[#prepared + 1] = key
      return prepare(self, key, ...)
    end
    local top, err = unpack_mod.unpack(client, image("f", layers, diff_ids), { max_concurrent = 3 })
    Sn.prepare = prepare
    assert.is_nil(top)
    assert.matches("unpack f layer 2", err.msg)
    assert.are.equal(3, #prepared) -- the three lowest under way at once
    local sn = assert(client:snapshotter())
    local keys = {}
    for _, info in ipairs(sn:list()) do keys[#keys + 1] = info.kind .. " " .. info.name end
    local chain = assert(unpack_mod.chain_ids(diff_ids))
    -- the first committed or not (it may have been done when the second failed), nothing else
    if #keys == 0 then keys[1] = "committed " .. chain[1] end
    assert.are.same({ "committed " .. chain[1] }, keys)
    assert.are.equal(#sn:list(), #snapshot_dirs())
    -- with the right diff IDs: each layer committed on the one below
    for i, l in ipairs(layers) do diff_ids[i] = l.diff_id end
    chain = assert(unpack_mod.chain_ids(diff_ids))
    top = assert(unpack_mod.unpack(client, image("g", layers), { max_concurrent = 3 }))
    assert.are.equal(chain[4], top)
    for i = 2, 4 do assert.are.equal(chain[i - 1], sn:stat(chain[i]).parent) end
    assert.are.equal(4, #snapshot_dirs())
  end)

  it("commits a snapshot prepared without a parent on the parent given, and only such a one", function()
    setup()
    local sn = assert(client:snapshotter())
    assert(sn:prepare("base-a", nil))
    assert(sn:commit("base", "base-a"))
    assert(sn:prepare("up-a", nil))
    assert(core.write_file(assert(sn:fs_path("up-a")) .. "/f", "x"))
    local ok, err = sn:commit("up", "up-a", { parent = "nope" })
    assert.is_nil(ok)
    assert.are.equal("NOT_FOUND", err.sym)
    assert(sn:prepare("other-a", nil))
    ok, err = sn:commit("up", "up-a", { parent = "other-a" })
    assert.is_nil(ok)
    assert.are.equal("FAILED_PRECONDITION", err.sym)
    assert(sn:commit("up", "up-a", { parent = "base" }))
    assert.are.equal("base", sn:stat("up").parent)
    assert(sn:prepare("on-a", "base"))
    ok, err = sn:commit("on", "on-a", { parent = "up" })
    assert.is_nil(ok)
    assert.are.equal("FAILED_PRECONDITION", err.sym)
    -- and the one committed on its parent shows both through its mounts
    local mounts = assert(sn:prepare("top-a", "up"))
    assert.matches("lowerdir=", table.concat(mounts[1].options, ","))
    assert.matches(":", table.concat(mounts[1].options, ","):match("lowerdir=([^,]*)"))
  end)

  it("mounted through overlay shows the merged tree with whiteouts applied", function()
    setup()
    local top = assert(unpack_mod.unpack(client, image("a", { layer("l1", L1, false), layer("l2", L2, true) })))
    local sn = assert(client:snapshotter())
    local target = tmp .. "/rootfs"
    assert(core.mkdir(target))
    local mounts = assert(sn:prepare("ctr-1", top))
    assert.are.equal("overlay", mounts[1].type)
    assert(mount.all(mounts, target))
    local ok, err = pcall(function()
      assert.are.equal("one", core.read_file(target .. "/etc/hostname"))
      assert.are.equal("two", core.read_file(target .. "/l2.txt"))
      assert.are.equal("keep", core.read_file(target .. "/dir/keep"))
      assert.are.equal("new", core.read_file(target .. "/opq/new"))
      assert.is_false(exists(target .. "/rm-me"))
      assert.is_false(exists(target .. "/dir/gone"))
      assert.is_false(exists(target .. "/opq/old"))
      assert.is_false(exists(target .. "/.wh.rm-me"))
      assert.are.same({ "new" }, core.listdir(target .. "/opq"))
      assert.are.equal(tonumber("4755", 8), core.stat(target .. "/bin/tool").mode)
    end)
    assert(mount.unmount_all(target))
    assert(ok, err)
  end)

  it("into the native snapshotter gives the same tree without a mount", function()
    setup("native")
    local top, stats = assert(unpack_mod.unpack(client,
      image("a", { layer("l1", L1, false), layer("l2", L2, true) }), { snapshotter = "native" }))
    assert.are.same({ unpacked = 2, reused = 0 }, stats)
    local sn = assert(client:snapshotter("native"))
    local m = assert(sn:view("v", top))
    local root = m[1].source
    assert.are.equal("one", core.read_file(root .. "/etc/hostname"))
    assert.are.equal("two", core.read_file(root .. "/l2.txt"))
    assert.are.same({ "new" }, core.listdir(root .. "/opq"))
    assert.is_false(exists(root .. "/rm-me"))
    assert.is_false(exists(root .. "/dir/gone"))
    assert.are.equal(3, #snapshot_dirs("native")) -- two layers and the view
    assert.are.equal(0, #snapshot_dirs("overlayfs"))
  end)

  it("succeeds in two processes unpacking the same image at once", function()
    setup()
    local layers = {}
    for i = 1, 6 do
      layers[i] = layer("p" .. i, ("mkdir d%d && head -c 200000 /dev/urandom > d%d/f"):format(i, i), i % 2 == 0)
    end
    image("p", layers)
    local mf, cf = tmp .. "/manifest.json", tmp .. "/config.json"
    assert(core.write_file(mf, core.json_encode(images.p[1])))
    assert(core.write_file(cf, core.json_encode(images.p[2])))
    local script = tmp .. "/unpack.lua"
    assert(core.write_file(script, ([[
local core = require("ctr.core")
local m = core.json_decode(core.read_file(%q))
local c = core.json_decode(core.read_file(%q))
package.loaded["ctr.images"] = { manifest = function() return m, c end }
local client = assert(require("ctr.client").new({ root = %q, state = %q, namespace = "test" }))
local top, stats = require("ctr.store.unpack").unpack(client, { name = "p" })
if not top then io.stderr:write(tostring(stats), "\n") os.exit(1) end
io.write(top, " ", stats.unpacked + stats.reused, "\n")
]]):format(mf, cf, client.root, client.state)))
    local env = "LUA_PATH=" .. q(os.getenv("LUA_PATH") or "lua/?.lua;;") ..
      " LUA_CPATH=" .. q(os.getenv("LUA_CPATH") or "build/lib/?.so;;")
    local lua = os.getenv("CTRLUA_LUA") or "luajit"
    local out = sh(("%s %s %s > %s/o1 & %s %s %s > %s/o2 & wait; cat %s/o1 %s/o2"):format(
      env, lua, q(script), q(tmp), env, lua, q(script), q(tmp), q(tmp), q(tmp)))
    local chain = unpack_mod.chain_ids(images.p[2].rootfs.diff_ids)
    local line = chain[6] .. " 6"
    assert.are.equal(line .. "\n" .. line, out)
    local sn = assert(client:snapshotter())
    local names = {}
    for _, i in ipairs(sn:list()) do names[#names + 1] = i.name end
    table.sort(chain)
    assert.are.same(chain, names)
    assert.are.equal(6, #snapshot_dirs())
  end)
end)
