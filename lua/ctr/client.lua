--- The client: one store (root), one state directory, one namespace.
-- `ctr.client{root=, state=, namespace=}` as containerd.New(address, WithDefaultNamespace(ns));
-- there is no daemon: the client works on the store directly, under file locks.
-- @module ctr.client
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

local Client = {}
Client.__index = Client
M.Client = Client

local NAMESPACE_RE = "^[%w][%w_%.%-]*$"

local function host_defaults()
  local ok, host = pcall(require, "ctr.host")
  if ok and type(host) == "table" then return host end
  return {}
end

--- Make a client.
-- @tparam[opt] table opts `root` (default /var/lib/ctrlua), `state` (default /run/ctrlua),
-- `namespace` (default $CTRLUA_NAMESPACE or "default"), `snapshotter` (default "overlayfs"),
-- `policies` (extra policy files)
-- @return client, or nil, err
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("ctr.client: opts: expected table", 2) end
  local host = host_defaults()
  local c = setmetatable({
    root = opts.root or host.root or "/var/lib/ctrlua",
    state = opts.state or host.state or "/run/ctrlua",
    namespace = opts.namespace or host.namespace or core.getenv("CTRLUA_NAMESPACE") or "default",
    snapshotter_name = opts.snapshotter or "overlayfs",
    policies = opts.policies,
    debug = opts.debug or host.debug,
  }, Client)
  if c.namespace == "" then c.namespace = "default" end
  if not c.namespace:match(NAMESPACE_RE) or #c.namespace > 76 then
    return nil, errors.invalid("namespace %q: must match [A-Za-z0-9][A-Za-z0-9_.-]*", c.namespace)
  end
  -- The store and the state are private: 0700 (containerd CVE-2021-41103 taught this).
  -- A new store's root is a durable name (ctr.store.meta.mkdir_p), as the directories in it
  -- are when made: no durability point reaches above its records' directories.
  local made, merr = require("ctr.store.meta").mkdir_p(c.root, 448)
  if not made then return nil, merr end
  local ok, err = sys.mkdir_p(c.state, 448)
  if not ok then return nil, err end
  -- The state holds the bundles, and the runtime refuses a root.path with a symlink in it
  -- (as runc does): a state given through one (/var/run -> /run) is resolved here, once.
  local state, err = sys.realpath(c.state)
  if not state then return nil, err end
  c.state = state
  return c
end

--- A client of the same store and state in namespace `ns` (containerd's
-- namespaces.WithNamespace): client, or nil, err.
function Client:with_namespace(ns)
  return M.new({ root = self.root, state = self.state, namespace = ns,
    snapshotter = self.snapshotter_name, policies = self.policies, debug = self.debug })
end

--- The content store of this client's root.
function Client:content_store()
  if not self._content then self._content = require("ctr.content").new(self.root) end
  return self._content
end

--- A snapshotter by name ("overlayfs" or "native"); default the client's.
function Client:snapshotter(name)
  return require("ctr.snapshots").get(self, name or self.snapshotter_name)
end

--- Import an image archive (oci-archive or docker-archive); see ctr.images.import.
function Client:import(path, opts) return require("ctr.images").import(self, path, opts) end

--- Pull an image from a registry and unpack it; see ctr.remotes.pull.pull.
function Client:pull(ref, opts) return require("ctr.remotes.pull").pull(self, ref, opts) end

--- Push an image to a registry; see ctr.remotes.push.push.
function Client:push(ref, opts) return require("ctr.remotes.push").push(self, ref, opts) end

--- An image record by reference, or nil, err (sym NOT_FOUND).
function Client:get_image(ref) return require("ctr.images").get(self, ref) end

--- Image records of the namespace.
function Client:list_images() return require("ctr.images").list(self) end

--- The manifest and config of an image for a platform; see ctr.images.manifest.  The store's
-- modules (ctr.store.unpack), which ctr.images uses, ask through here.  The answer for an
-- image record (a table) is kept for as long as that table lives and names the same target:
-- its blobs are named by their digests, so they say the same each time (run asks, then the
-- unpack of its snapshot).
-- The tables returned are shared: read them, do not change them.
function Client:image_manifest(image, platform)
  if type(image) ~= "table" then return require("ctr.images").manifest(self, image, platform) end
  local memo = self._manifests
  if not memo then
    memo = setmetatable({}, { __mode = "k" })
    self._manifests = memo
  end
  local per = memo[image]
  -- a table whose target is changed asks again
  local k = (platform or "") .. "\0" .. tostring(type(image.target) == "table" and image.target.digest)
  local hit = per and per[k]
  if hit then return hit[1], hit[2], hit[3] end
  local m, cfg, desc = require("ctr.images").manifest(self, image, platform)
  if m then
    per = per or {}
    memo[image] = per
    per[k] = { m, cfg, desc }
  end
  return m, cfg, desc
end

--- Make a container record; see ctr.containers.new.
function Client:new_container(id, ...) return require("ctr.containers").new(self, id, ...) end

--- A container record by id.
function Client:load_container(id) return require("ctr.containers").load(self, id) end

--- Container records of the namespace.
function Client:list_containers() return require("ctr.containers").list(self) end

--- Directory of this namespace's tasks' state.
function Client:state_dir(id)
  local d = self.state .. "/" .. self.namespace
  if id then d = d .. "/" .. id end
  return d
end

return M
