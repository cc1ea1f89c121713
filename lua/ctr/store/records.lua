--- The shapes of the store's records, and the one reader that checks them.
--
-- Every record ctrlua reads back (an image, a container, a snapshot key, a task's `status` and
-- `task.json`) goes through `read`, which decodes it and checks the type of every field the code
-- uses before anyone indexes it.  A record that is there but is not what it should be (a
-- truncated file, a number where an object was written, a digest that is not one) is a CORRUPT
-- error naming its file and the field:
--
--     ROOT/meta/NS/images/X.json: field "target": expected object, got number
--
-- never a Lua error from deep inside a command, and never "not found": a record that cannot be
-- read is not taken as absent (docs/crash-consistency.md).  Fields the shape does not name are
-- kept as they are; a JSON null in an optional field reads as absent.
-- @module ctr.store.records
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- The largest record read or written (containerd caps its JSON the same, CVE-2023-25153).
M.MAX = 4 * 1024 * 1024

local NULL = core.json_decode("null")

local function is_array(v) return getmetatable(v) == core.array_mt end

local function typename(v)
  if v == NULL then return "null" end
  if type(v) == "table" then return is_array(v) and "array" or "object" end
  return type(v)
end

local DIGEST_RE = "^sha256:" .. ("[0-9a-f]"):rep(64) .. "$"

-- Simple types: a check, and the words of the error.
local TYPES = {
  string = { function(v) return type(v) == "string" end, "string" },
  number = { function(v) return type(v) == "number" and v == v end, "number" },
  integer = { function(v) return type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 end,
    "integer" },
  count = { function(v) return type(v) == "number" and v == math.floor(v) and v >= 0 and v < 2 ^ 53 end,
    "non-negative integer" },
  boolean = { function(v) return type(v) == "boolean" end, "boolean" },
  object = { function(v) return type(v) == "table" and not is_array(v) end, "object" },
  table = { function(v) return type(v) == "table" end, "object or array" },
  digest = { function(v) return type(v) == "string" and v:match(DIGEST_RE) ~= nil end,
    "digest (sha256: and 64 lowercase hex digits)" },
  -- a name made by ctrlua that becomes a path component: never "..", never a slash
  hex = { function(v) return type(v) == "string" and #v > 0 and #v <= 128 and v:match("^[0-9a-f]+$") ~= nil end,
    "hex identifier" },
  -- an array of hex identifiers (a snapshot's parents' directories: path components all)
  hexes = { function(v)
    if type(v) ~= "table" then return false end
    local n = 0
    for k, x in pairs(v) do
      n = n + 1
      if type(k) ~= "number" or type(x) ~= "string" or #x == 0 or #x > 128 or not x:match("^[0-9a-f]+$") then
        return false
      end
    end
    return n == #v
  end, "array of hex identifiers" },
  strings = { function(v)
    if type(v) ~= "table" or (is_array(v) and next(v) ~= nil) then return false end
    for k, x in pairs(v) do
      if type(k) ~= "string" or type(x) ~= "string" then return false end
    end
    return true
  end, "object of strings" },
}

-- A field's type: "name" or "?name" (optional), or a table {fields = shape} / {one_of = {...}}
-- with `optional = true`.
local function check(v, t, where)
  local optional, name = false, t
  if type(t) == "string" then
    optional = t:sub(1, 1) == "?"
    name = optional and t:sub(2) or t
  else
    optional = t.optional == true
  end
  if v == nil then
    if optional then return true end
    return nil, ("field %q: missing"):format(where)
  end
  if v == NULL then
    if optional then return true, true end -- the caller drops it
    return nil, ("field %q: expected %s, got null"):format(where,
      type(name) == "string" and TYPES[name][2] or "object")
  end
  if type(name) == "string" then
    local ty = assert(TYPES[name], name)
    if not ty[1](v) then
      return nil, ("field %q: expected %s, got %s"):format(where, ty[2], typename(v))
    end
    return true
  end
  if t.one_of then
    for _, x in ipairs(t.one_of) do if v == x then return true end end
    return nil, ("field %q: expected one of %s, got %s"):format(where, table.concat(t.one_of, ", "),
      type(v) == "string" and ("%q"):format(v:sub(1, 40)) or typename(v))
  end
  if type(v) ~= "table" or is_array(v) then
    return nil, ("field %q: expected object, got %s"):format(where, typename(v))
  end
  return M.check_fields(v, t.fields, where .. ".")
end

--- Check the fields of table rec against shape (field → type); drops optional nulls.
-- @return true, or nil, message (relative: 'field "target.digest": ...')
function M.check_fields(rec, shape, prefix)
  local drop
  for k, t in pairs(shape) do
    local ok, msg = check(rec[k], t, (prefix or "") .. k)
    if not ok then return nil, msg end
    if msg == true then
      drop = drop or {}
      drop[#drop + 1] = k
    end
  end
  for _, k in ipairs(drop or {}) do rec[k] = nil end
  return true
end

--- Check a decoded record against a shape.  opts: `name_field` and `name`: that field must
-- hold the record's own name (the name its file is under).
-- @return rec, or nil, message
function M.check(rec, shape, opts)
  if type(rec) ~= "table" or is_array(rec) then
    return nil, ("expected a JSON object, got %s"):format(typename(rec))
  end
  local ok, msg = M.check_fields(rec, shape)
  if not ok then return nil, msg end
  if opts and opts.name_field and rec[opts.name_field] ~= opts.name then
    return nil, ("field %q: %q is not the record's own name %q"):format(opts.name_field,
      tostring(rec[opts.name_field]):sub(1, 80), tostring(opts.name):sub(1, 80))
  end
  return rec
end

--- Decode and check the bytes of a record read from path.
-- @return rec, or nil, err (sym CORRUPT; err.path, err.data the bytes)
function M.decode(path, data, shape, opts)
  local okd, rec, jerr = pcall(core.json_decode, data)
  local msg
  if not okd then
    msg = "malformed JSON: " .. tostring(rec)
  elseif rec == nil then
    msg = #data == 0 and "empty file" or ("malformed JSON: " .. tostring(jerr))
  else
    rec, msg = M.check(rec, shape, opts)
  end
  if not rec then
    local err = errors.corrupt("%s: %s", path, msg)
    err.path, err.data = path, data
    return nil, err
  end
  return rec
end

--- Read a record: the checked table, or nil, err.  err.sym is NOT_FOUND when there is no such
-- file, CORRUPT when it is there but unreadable as one (too large, malformed, a field of the
-- wrong type; err.path names it, err.data holds its bytes when they could be read); else the
-- errno's name.
-- @tparam string path
-- @tparam table shape one of M.image, M.container, ...
-- @tparam[opt] table opts `cap` (default M.MAX), `name_field`/`name` (see check)
function M.read(path, shape, opts)
  local data, err = sys.read_file(path, opts and opts.cap or M.MAX)
  if not data then
    if err.sym == "ENOENT" then return nil, errors.not_found("%s: not found", path) end
    if err.sym == "EFBIG" then -- over the cap: not what such a record can be
      err = errors.corrupt("%s", err.msg)
      err.path = path
      return nil, err
    end
    return nil, err
  end
  return M.decode(path, data, shape, opts)
end

-- ------------------------------------------------------------------ the shapes

local labels = "?strings"
local time = "?string"

--- ROOT/meta/NS/images/NAME.json
M.image = {
  name = "string",
  target = { fields = { mediaType = "?string", digest = "digest", size = "count" } },
  labels = labels, created_at = time, updated_at = time,
}

--- ROOT/meta/NS/containers/ID.json
M.container = {
  id = "string", labels = labels, image = "?string",
  runtime = { optional = true, fields = { name = "string", options = "?object" } },
  spec = "?object", snapshotter = "?string", snapshot_key = "?string",
  created_at = time, updated_at = time, extensions = "?object",
}

--- A process: `{pid=, start_time=}` (ctr.store.owner).
local process = { optional = true, fields = { pid = "count", start_time = "?count" } }

--- ROOT/meta/NS/snapshots.DRIVER/KEY.json
M.snapshot = {
  name = "string", id = "hex", kind = { one_of = { "active", "view", "committed" } },
  parent = "?string", labels = labels, created_at = time, updated_at = time,
  size = "?count", inodes = "?count",
  -- the directories of its parents, nearest first (containerd's storage.Snapshot.ParentIDs):
  -- a committed parent never changes, so its mounts need not read each parent's record; a
  -- record without it (an older ctrlua's) has them read
  parent_ids = "?hexes",
  -- the process that made it, while nothing else names it (ctr.snapshots: partial snapshots)
  creator = process,
}

--- STATE/NS/ID/status: written by the ctrlua that runs the task, or by its monitor.
M.task_status = {
  status = { one_of = { "created", "running", "paused", "stopped" } },
  pid = "?count", start_time = "?count", monitor_pid = "?count", detached = "?boolean",
  exit_code = "?integer", signal = "?count", oom = "?boolean",
  created_at = time, started_at = time, exited_at = time,
  cgroup = "?string", runtime = "?string", runtime_root = "?string",
}

--- STATE/NS/ID/task.json: what a later ctrlua needs to know of a task, written by the one that
-- made it before anything else of the task exists: its owner (that ctrlua), its cgroup, its IO.
M.task = {
  owner = process, cgroup = "?string", io = "?string", fifos = "?strings", detached = "?boolean",
  stop_signal = "?string", terminal = "?boolean",
  hooks = { optional = true, fields = { poststart = "?boolean", poststop = "?boolean" } },
  cni = "?table",
}

return M
