-- images: manage images (import, list, delete, tag, check, unpack) as `ctr images`
local ctr = require("ctr")
local app = require("ctr.app")
local cli = require("ctr.cli")
local format = require("ctr.format")
local json = require("ctr.json")
local term = require("ctr.term")

local images = ctr.images

local SNAPSHOTTER = { name = "snapshotter", type = "string", env = "CONTAINERD_SNAPSHOTTER",
  usage = "snapshotter name. Empty value stands for the default value.", supported = true }

local function client(snapshotter)
  local c, err = ctr.client({ snapshotter = snapshotter ~= "" and snapshotter or nil })
  if not c then app.fail(err) end
  return c
end

local function unsupported(ctx)
  local name = cli.unsupported({ flags = ctx.command.flags }, ctx)
  if name then app.fail(("--%s is not supported yet"):format(name)) end
end

-- "unpacking NAME (DIGEST)...done", as ctr images import prints it.
local function unpack_one(c, rec, platform, snapshotter)
  io.stdout:write(("unpacking %s (%s)..."):format(rec.name, rec.target.digest))
  io.stdout:flush()
  local ok, err = images.unpack(c, rec, { platform = platform, snapshotter = snapshotter })
  if ok then
    io.stdout:write("done\n")
    return true
  end
  io.stdout:write("\n")
  return nil, err
end

local function import(ctx)
  unsupported(ctx)
  local f = ctx.flags
  if #ctx.args ~= 1 then return nil, "please provide one archive to import (FILE, or - for standard input)" end
  local c = client(f.snapshotter)
  local platform = f.platform ~= "" and f.platform or nil
  local recs, notes = images.import(c, ctx.args[1], {
    base_name = f["base-name"] ~= "" and f["base-name"] or nil, platform = platform,
    all_platforms = f["all-platforms"], no_unpack = true, progress = term.progress(),
  })
  if not recs then return nil, notes end
  for _, n in ipairs(notes) do io.stderr:write("ctrlua: ", n, "\n") end
  if f["no-unpack"] then return true end
  for _, rec in ipairs(recs) do
    io.stdout:write(("unpacking %s (%s)..."):format(rec.name, rec.target.digest))
    io.stdout:flush()
    local ok, err = images.unpack(c, rec, { platform = platform })
    if ok then
      io.stdout:write("done\n")
    elseif err.sym == "NOT_AVAILABLE" or err.sym == "NOT_FOUND" then
      io.stdout:write("skipped: ", err.msg, "\n")
    else
      io.stdout:write("\n")
      return nil, err
    end
  end
  return true
end

local function list(ctx)
  if #ctx.args > 0 then return nil, "filters are not supported yet" end
  local c = client()
  local recs, bad = images.list(c)
  app.warn(bad)
  if ctx.flags.quiet then
    for _, r in ipairs(recs) do io.stdout:write(r.name, "\n") end
    return true
  end
  local fmt = ctx.flags.format
  if fmt == "json" then
    local out = assert(json.encode_indent(json.array(recs)))
    io.stdout:write(out, "\n")
    return true
  elseif fmt ~= "" and fmt ~= "table" then
    return nil, ("unknown format %q: use table or json"):format(fmt)
  end
  local rows = { { "REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS" } }
  for _, r in ipairs(recs) do
    local size = images.size(c, r)
    local plats = images.platforms(c, r) or {}
    local labels = {}
    for k, v in pairs(r.labels or {}) do labels[#labels + 1] = k .. "=" .. tostring(v) end
    table.sort(labels)
    rows[#rows + 1] = { r.name, r.target.mediaType or "-", r.target.digest,
      size and format.bytes(size) or "-", #plats > 0 and table.concat(plats, ",") or "-",
      #labels > 0 and table.concat(labels, ",") or "-" }
  end
  io.stdout:write(format.table(rows))
  return true
end

local function delete(ctx)
  if #ctx.args == 0 then return nil, "please provide at least one image reference to remove" end
  local c = client()
  local ok_all = true
  for _, ref in ipairs(ctx.args) do
    local ok, err = images.delete(c, ref)
    if ok then
      io.stdout:write(ref, "\n")
    else
      io.stderr:write("ctrlua: ", tostring(err), "\n")
      ok_all = false
    end
  end
  return ok_all
end

local function tag(ctx)
  if #ctx.args < 1 then return nil, "please provide an image reference to tag from" end
  if #ctx.args < 2 then return nil, "please provide an image reference to tag to" end
  local c = client()
  for i = 2, #ctx.args do
    local rec, err = images.tag(c, ctx.args[1], ctx.args[i], { force = ctx.flags.force })
    if not rec then return nil, err end
    io.stdout:write(rec.name, "\n")
  end
  return true
end

local function check(ctx)
  local f = ctx.flags
  local c = client(f.snapshotter)
  local refs = ctx.args
  if #refs == 0 then
    local recs, bad = images.list(c)
    app.warn(bad)
    for _, r in ipairs(recs) do refs[#refs + 1] = r.name end
  end
  local platform = f.platform ~= "" and f.platform or nil
  local rows = { { "REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED" } }
  local ok_all = true
  for _, ref in ipairs(refs) do
    local res, err = images.check(c, ref, platform)
    if not res then
      io.stderr:write("ctrlua: ", tostring(err), "\n")
      ok_all = false
    else
      local unpacked = images.is_unpacked(c, ref, { platform = platform })
      if f.quiet then
        -- ctr: only the ready images, fully there and unpacked
        if res.complete and unpacked ~= false then io.stdout:write(res.name, "\n") end
      else
        local status = ("%s (%d/%d)"):format(res.complete and "complete" or "incomplete",
          res.present, res.required)
        rows[#rows + 1] = { res.name, res.target.mediaType or "-", res.target.digest, status,
          format.bytes(res.size) .. "/" .. format.bytes(res.total),
          unpacked == nil and "-" or tostring(unpacked) }
      end
    end
  end
  if not f.quiet then io.stdout:write(format.table(rows)) end
  return ok_all
end

local function unpack_cmd(ctx)
  if #ctx.args ~= 1 then return nil, "please provide one image reference to unpack" end
  local f = ctx.flags
  local snapshotter = f.snapshotter ~= "" and f.snapshotter or nil
  local c = client(f.snapshotter)
  local rec, err = images.get(c, ctx.args[1])
  if not rec then return nil, err end
  return unpack_one(c, rec, f.platform ~= "" and f.platform or nil, snapshotter)
end

app.run({
  name = "images", usage = "manage images",
  commands = {
    { name = "check", usage = "check existing images to ensure all content is available locally",
      args_usage = "[flags] [<ref>, ...]",
      description = "check existing images to ensure all content is available locally",
      flags = {
        { name = "quiet", aliases = { "q" }, type = "bool",
          usage = "print only the ready image refs (fully downloaded and unpacked)" },
        SNAPSHOTTER,
        { name = "platform", type = "string", usage = "check content for a specific platform (default: this machine's)" },
      },
      action = check },
    { name = "import", usage = "import images", args_usage = "[flags] <in>",
      description = [[Import images from a tar stream.
Implemented formats:
- oci.v1
- docker.v1.1
- docker.v1.2


For OCI v1, you may need to specify --base-name because an OCI archive may
contain only partial image references (tags without the base image name).
If no base image name is provided, a name will be generated as "import-%{yyyy-MM-dd}".

e.g.
  $ ctrlua images import --base-name foo/bar foobar.tar

If foobar.tar contains an OCI ref named "latest" and anonymous ref "sha256:deadbeef", the command will create
"foo/bar:latest" and "foo/bar@sha256:deadbeef" images in the store.
]],
      flags = {
        { name = "base-name", type = "string", supported = true,
          usage = "base image name for added images, when provided only images with this name prefix are imported" },
        { name = "digests", type = "bool", usage = "whether to create digest images (default: false)" },
        { name = "skip-digest-for-named", type = "bool",
          usage = "skip applying --digests option to images named in the importing tar (use it in conjunction with --digests)" },
        { name = "index-name", type = "string", usage = "image name to keep index as, by default index is discarded" },
        { name = "all-platforms", type = "bool", supported = true,
          usage = "imports content for all platforms, false by default" },
        { name = "platform", type = "string", supported = true, usage = "imports content for specific platform" },
        { name = "no-unpack", type = "bool", supported = true, usage = "skip unpacking the images, false by default" },
        { name = "compress-blobs", type = "bool",
          usage = "compress uncompressed blobs when creating manifest (Docker format only)" },
        SNAPSHOTTER,
      },
      action = import },
    { name = "list", aliases = { "ls" }, usage = "list images known to containerd",
      args_usage = "[flags] [<filter>, ...]", description = "list images registered with containerd",
      flags = {
        { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the image refs" },
        { name = "format", type = "string", usage = "output format: table or json" },
      },
      action = list },
    { name = "delete", aliases = { "del", "remove", "rm" }, usage = "remove one or more images by reference",
      args_usage = "[flags] <ref> [<ref>, ...]", description = "remove one or more images by reference",
      flags = { { name = "sync", type = "bool", usage = "Synchronously remove image and all associated resources" } },
      action = delete },
    { name = "tag", usage = "tag an image",
      args_usage = "[flags] <source_ref> <target_ref> [<target_ref>, ...]",
      description = "Tag an image for use in containerd.",
      flags = { { name = "force", type = "bool", usage = "force target_ref to be created, regardless if it already exists" } },
      action = tag },
    { name = "unpack", usage = "unpack an image into snapshots (not in ctr)",
      args_usage = "[flags] <ref>",
      description = "unpack an image's layers into snapshots of a snapshotter, for a platform",
      flags = {
        SNAPSHOTTER,
        { name = "platform", type = "string", usage = "unpack for a specific platform (default: this machine's)" },
      },
      action = unpack_cmd },
  },
}, { ... })
