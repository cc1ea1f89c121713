-- images: manage images (import, list, delete, tag, check, unpack) as `ctr images`
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local cli = require("ctr.cmd.cli")
local format = require("ctr.cmd.format")

-- A module only some subcommands use, loaded when one of them first reaches into it: `ls`,
-- the command run most, loads none of these.
local function lazy(name)
  return setmetatable({}, { __index = function(t, k)
    local m = require(name)
    setmetatable(t, { __index = m })
    return m[k]
  end })
end
local json = lazy("ctr.json")
local term = lazy("ctr.cmd.term")
local remotes = lazy("ctr.remotes")

local images = ctr.images

local SNAPSHOTTER = { name = "snapshotter", type = "string", env = "CONTAINERD_SNAPSHOTTER",
  usage = "snapshotter name. Empty value stands for the default value.", supported = true }

-- ctr's registry flags (cmd/ctr/commands.RegistryFlags), for pull, push and login.
local REGISTRY_FLAGS = {
  { name = "skip-verify", aliases = { "k" }, type = "bool", usage = "skip SSL certificate validation", supported = true },
  { name = "plain-http", type = "bool", usage = "allow connections using plain HTTP", supported = true },
  { name = "user", aliases = { "u" }, type = "string", usage = "user[:password] Registry user and password", supported = true },
  { name = "refresh", type = "string", usage = "refresh token for authorization server", supported = true },
  { name = "hosts-dir", type = "string", usage = "Custom hosts configuration directory", supported = true },
  { name = "tlscacert", type = "string", usage = "path to TLS root CA", supported = true },
  { name = "tlscert", type = "string", usage = "path to TLS client certificate", supported = true },
  { name = "tlskey", type = "string", usage = "path to TLS client key", supported = true },
  { name = "http-dump", type = "bool", usage = "dump all HTTP request/responses when interacting with container registry", supported = true },
  { name = "http-trace", type = "bool", usage = "enable HTTP tracing for registry interactions", supported = true },
}

local function with_registry_flags(flags)
  local out = {}
  for _, f in ipairs(REGISTRY_FLAGS) do out[#out + 1] = f end
  for _, f in ipairs(flags) do out[#out + 1] = f end
  return out
end

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
    -- on a terminal, each layer's progress below the line (bytes applied of its size)
    local display = term.isatty("stdout") and require("ctr.remotes.progress").new() or nil
    if display then io.stdout:write("\n") end
    local ok, err = images.unpack(c, rec, { platform = platform, progress = display and function(_, layer, n)
      display:set("unpack-" .. layer.digest, n >= layer.size and "unpacked" or "unpacking", n, layer.size)
      display:draw(n >= layer.size)
    end })
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

local function pull_cmd(ctx)
  unsupported(ctx)
  local f = ctx.flags
  local ref = ctx.args[1]
  if ref == nil or ref == "" then return nil, "please provide an image reference to pull" end
  if f.format ~= "" and f.format ~= "json" then return nil, ("unknown format %q: use json"):format(f.format) end
  local ropts, rerr = remotes.registry_opts(f)
  if not ropts then return nil, rerr end
  local c = client(f.snapshotter)
  local tty = term.isatty("stdout") and f.format == ""
  ropts.strict = true
  ropts.platforms = f.platform
  ropts.all_platforms = f["all-platforms"]
  ropts.all_metadata = f["all-metadata"]
  ropts.labels = cli.label_args(f.label)
  ropts.snapshotter = f.snapshotter ~= "" and f.snapshotter or nil
  ropts.max_concurrent_downloads = f["max-concurrent-downloads"]
  ropts.display = tty and require("ctr.remotes.progress").new() or nil
  local t0 = term.monotime()
  local rec, st = c:pull(ref, ropts)
  if not rec then return nil, st end
  if tty then
    for _, p in ipairs(st.platforms) do
      io.stdout:write(("unpacking %s %s...\n"):format(p, rec.target.digest))
    end
    io.stdout:write(("done: %.6fms\t\n"):format((term.monotime() - t0) * 1000))
  end
  if f.format == "json" then
    local out = json.ordered({ name = rec.name, digest = rec.target.digest, mediaType = rec.target.mediaType,
      size = rec.target.size, platforms = json.array(st.platforms), chainIDs = st.chain_ids,
      fetched = st.fetched, layers = st.layers, unpacked = st.unpacked, reused = st.reused,
      elapsed = math.floor(st.elapsed * 1000) / 1000 },
      { "name", "digest", "mediaType", "size", "platforms", "chainIDs", "fetched", "layers", "unpacked", "reused", "elapsed" })
    io.stdout:write(assert(json.encode_indent(out)), "\n")
  elseif not tty then
    io.stdout:write(("%s %s: %s fetched, %d layers (%d unpacked, %d already there) in %.1fs\n"):format(
      rec.name, rec.target.digest, format.bytes(st.fetched), st.layers, st.unpacked, st.reused, st.elapsed))
  end
  if f["print-chainid"] then
    for _, p in ipairs(st.platforms) do
      if st.chain_ids[p] then io.stdout:write("image chain ID: ", st.chain_ids[p], "\n") end
    end
  end
  return true
end

local function push_cmd(ctx)
  unsupported(ctx)
  local f = ctx.flags
  local ref, local_ref = ctx.args[1], ctx.args[2]
  if ref == nil or ref == "" then return nil, "please provide a remote image reference to push" end
  local ropts, rerr = remotes.registry_opts(f)
  if not ropts then return nil, rerr end
  local c = client()
  local tty = term.isatty("stdout")
  ropts.strict = true
  ropts.local_ref = local_ref
  ropts.manifest = f.manifest ~= "" and f.manifest or nil
  ropts.manifest_type = f["manifest-type"]
  ropts.platforms = f.platform
  ropts.max_concurrent_uploaded_layers = f["max-concurrent-uploaded-layers"]
  ropts.allow_non_distributable = f["allow-non-distributable-blobs"]
  ropts.display = tty and require("ctr.remotes.progress").new() or nil
  local st, err = c:push(ref, ropts)
  if not st then return nil, err end
  if not tty then
    io.stdout:write(("%s %s: %d blobs pushed, %d mounted, %d already there\n"):format(ref, st.digest,
      st.pushed, st.mounted, st.exists))
  end
  return true
end

local function login_cmd(ctx)
  local f = ctx.flags
  local host = ctx.args[1]
  if host == nil or host == "" then return nil, "please provide a registry host to log in to" end
  host = host:gsub("^https?://", ""):gsub("/.*$", "")
  if host == "index.docker.io" or host == "registry-1.docker.io" then host = "docker.io" end
  local user, pass = f.user, nil
  if user:find(":", 1, true) then return nil, "--user: give the password on standard input (--password-stdin) or at the prompt, never on the command line" end
  if f["password-stdin"] then
    if user == "" then return nil, "--password-stdin needs --user" end
    pass = (io.stdin:read("*a") or ""):gsub("\r?\n$", "")
  else
    if user == "" then
      io.stderr:write("Username: ")
      user = io.stdin:read("*l") or ""
    end
    local p, perr = remotes.read_secret("Password: ")
    if not p then return nil, perr end
    pass = p
  end
  if user == "" or pass == "" then return nil, "a user name and a password are required" end
  f.user = ""
  local ropts, rerr = remotes.registry_opts(f)
  if not ropts then return nil, rerr end
  local ok, err = remotes.login(host, user, pass, ropts)
  if not ok then return nil, err end
  io.stdout:write("Login Succeeded\n")
  return true
end

local function logout_cmd(ctx)
  local host = ctx.args[1]
  if host == nil or host == "" then return nil, "please provide a registry host to log out of" end
  host = host:gsub("^https?://", ""):gsub("/.*$", "")
  local ok, err = require("ctr.remotes.auth").erase(host)
  if ok == nil then return nil, err end
  if ok then
    io.stdout:write(("Removing login credentials for %s\n"):format(host))
  else
    io.stdout:write(("Not logged in to %s\n"):format(host))
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
    local size, plats = images.size_and_platforms(c, r)
    plats = plats or {}
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

local function prune_cmd(ctx)
  if #ctx.args > 0 then return nil, "prune takes no arguments" end
  local f = ctx.flags
  local c = client()
  local report, err = images.prune(c, { all = f.all, dry_run = f["dry-run"] })
  if not report then return nil, err end
  local verb = f["dry-run"] and "would delete" or "deleted"
  for _, img in ipairs(report.images) do
    io.stdout:write(verb, ": ", img.name, " (", img.digest, ")\n")
  end
  local col = report.collected
  local function n(k, one, many) return ("%d %s"):format(k, k == 1 and one or many) end
  io.stdout:write(("Total %s space: %s (%d bytes: %s, %s)\n"):format(
    f["dry-run"] and "reclaimable" or "reclaimed", format.bytes(report.reclaimed), report.reclaimed,
    n(#col.content, "blob", "blobs"), n(#col.snapshots, "snapshot", "snapshots")))
  for _, w in ipairs(report.warnings) do io.stderr:write("ctrlua: warning: ", tostring(w), ": kept\n") end
  for _, e in ipairs(report.errors) do io.stderr:write("ctrlua: ", tostring(e), "\n") end
  return #report.errors == 0
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
    { name = "pull", usage = "pull an image from a remote", args_usage = "[flags] <ref>",
      description = [[Fetch and prepare an image for use in containerd.

After pulling an image, it should be ready to use the same reference in a run
command. As part of this process, we do the following:

1. Fetch all resources into containerd.
2. Prepare the snapshot filesystem with the pulled resources.
3. Register metadata for the image.

ctrlua unpacks each layer while the next ones download (a layer whose parent is
ready is applied as it arrives), shows the unpacking in the progress display on a
terminal, and prints one line per image otherwise (--format json: an object).
The reference must name a host and a tag or digest, as for ctr
(docker.io/library/alpine:latest).  Credentials: --user, else REGISTRY_AUTH_FILE,
containers' auth.json, docker's config.json (and its credential helpers).
Hosts: --hosts-dir (hosts.toml, as containerd's), else /etc/ctrlua/certs.d, then
/etc/containerd/certs.d.
]],
      flags = with_registry_flags({
        SNAPSHOTTER,
        { name = "label", type = "strings", usage = "labels to attach to the image", supported = true },
        { name = "platform", type = "strings", usage = "Pull content from a specific platform", supported = true },
        { name = "all-platforms", type = "bool", usage = "pull content and metadata from all platforms", supported = true },
        { name = "all-metadata", type = "bool", usage = "Pull metadata for all platforms", supported = true },
        { name = "print-chainid", type = "bool", usage = "Print the resulting image's chain ID", supported = true },
        { name = "max-concurrent-downloads", type = "int", value = 3, usage = "Set the max concurrent downloads for each pull", supported = true },
        { name = "format", type = "string", usage = "output format: json (ctrlua)", supported = true },
      }),
      action = pull_cmd },
    { name = "push", usage = "push an image to a remote", args_usage = "[flags] <remote> [<local>]",
      description = [[Pushes an image reference from containerd.

  All resources associated with the manifest reference will be pushed.
  The ref is used to resolve to a locally existing image manifest.
  The image manifest must exist before push. Creating a new image
  manifest can be done through calculating the diff for layers,
  creating the associated configuration, and creating the manifest
  which references those resources.

  ctrlua skips the blobs the registry has (HEAD), mounts those pulled from
  another repository of the same registry, uploads small blobs in one PUT and
  large ones in chunks, and puts the manifests last.
]],
      flags = with_registry_flags({
        { name = "manifest", type = "string", usage = "digest of manifest", supported = true },
        { name = "manifest-type", type = "string", value = "application/vnd.oci.image.manifest.v1+json", usage = "media type of manifest digest", supported = true },
        { name = "platform", type = "strings", usage = "push content from a specific platform", supported = true },
        { name = "max-concurrent-uploaded-layers", type = "int", value = 3, usage = "Set the max concurrent uploaded layers for each push", supported = true },
        { name = "allow-non-distributable-blobs", type = "bool", usage = "Allow pushing blobs that are marked as non-distributable", supported = true },
      }),
      action = push_cmd },
    { name = "login", usage = "log in to a registry (not in ctr)", args_usage = "[flags] <host>",
      description = [[Check a user name and password against a registry and store them for
pull and push: in REGISTRY_AUTH_FILE when set, else in docker's config.json
($DOCKER_CONFIG/config.json or ~/.docker/config.json; mode 0600), or in its credential
store (credsStore, credHelpers).  The password comes from standard input
(--password-stdin) or a prompt on the terminal that does not echo; never from the
command line.]],
      flags = with_registry_flags({
        { name = "password-stdin", type = "bool", usage = "read the password from standard input", supported = true },
      }),
      action = login_cmd },
    { name = "logout", usage = "remove a registry's stored credentials (not in ctr)", args_usage = "<host>",
      description = "Remove the credentials `login` stored for a registry host.",
      action = logout_cmd },
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
    { name = "prune", usage = "remove unused images (not in ctr)", args_usage = "[flags]",
      description = [[Remove the images of the namespace that no container uses, as docker's and
nerdctl's `image prune`: without --all only the dangling ones, with --all every one no
container uses.  Dangling is docker's rule, not tagged and not used by a container: in
ctrlua's store an image record whose name is a digest (`repo@sha256:...`, `sha256:...`) or
a repository with no tag (`localhost:5000/app`), as a pull by digest or an import of an
untagged manifest leaves.  A container uses the image its record names.

Then the blobs and committed snapshots that no image, container or live lease refers to
are removed, in every namespace (as `ctrlua gc` collects them; see
docs/crash-consistency.md).  Prints one line per image removed, then the space reclaimed.
A record that cannot be read is reported and kept, with what it might name; while a
container record cannot be read, no image is removed.]],
      flags = {
        { name = "all", aliases = { "a" }, type = "bool", usage = "remove every image no container uses, not only dangling ones" },
        { name = "dry-run", aliases = { "n" }, type = "bool", usage = "list what would be removed; remove nothing" },
      },
      action = prune_cmd },
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
