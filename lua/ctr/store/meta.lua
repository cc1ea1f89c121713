--- Metadata records: small JSON documents under ROOT/meta/NAMESPACE/KIND/NAME.json.
-- Each is written to a temporary file, fsynced (unless put's sync is "none") and renamed into
-- place (the core's write_file), so a process killed at any instant leaves a record either old
-- or new.  Creation is
-- exclusive (rename with RENAME_NOREPLACE): two processes creating the same name race safely,
-- one wins and the other gets an EXISTS error.  Names are escaped so that any image reference
-- or key is one file name.
-- @module ctr.store.meta
-- Every record read is checked against its kind's shape (ctr.store.records): one that is there but
-- unreadable is a CORRUPT error naming its file, never taken for absent.
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local records = require("ctr.store.records")

local M = {}


--- Escape a record name into a file name: bytes outside [A-Za-z0-9_.-] become %XX; a leading
-- dot is escaped too, so no name is "." or ".." or hidden.
function M.escape(name)
  local s = name:gsub("[^%w_%.%-]", function(c) return ("%%%02X"):format(c:byte()) end)
  return (s:gsub("^%.", "%%2E"))
end

function M.unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The directory of records of one kind in one namespace (created 0700 on demand).
function M.dir(root, namespace, kind)
  return root .. "/meta/" .. M.escape(namespace) .. "/" .. kind
end

--- mkdir -p whose new directories are durable names: each one it makes, and the directory
-- above the topmost, is fsynced.  A durability point (M.sync) fsyncs the directory a record
-- is in, never those above it, so a directory made on a namespace's first record must not
-- wait for one.  True, or nil, err.
function M.mkdir_p(dir, mode)
  local st = core.stat(dir)
  if st and st.type == "directory" then return true end
  local made, up = {}, dir
  while not st do
    made[#made + 1] = up
    local parent = up:match("^(.+)/[^/]+$") or (up:sub(1, 1) == "/" and "/" or ".")
    if parent == up then break end
    up, st = parent, core.stat(parent)
  end
  local ok, err = sys.mkdir_p(dir, mode)
  if not ok then return nil, err end
  made[#made + 1] = up
  for _, d in ipairs(made) do
    ok, err = sys.fsync(d)
    if not ok then return nil, err end
  end
  return true
end

local function ensure_dir(dir)
  return M.mkdir_p(dir, 448) -- 0700
end

-- The shape of each kind's records, and the field that holds the record's own name.
local function shape_of(kind)
  if kind == "images" then return records.image, "name" end
  if kind == "containers" then return records.container, "id" end
  if kind:match("^snapshots%.") then return records.snapshot, "name" end
  return nil
end

local function path_of(root, namespace, kind, name)
  return M.dir(root, namespace, kind) .. "/" .. M.escape(name) .. ".json"
end
M.path = path_of

--- Read a record: the decoded table, or nil, err (sym NOT_FOUND when absent; CORRUPT, naming
-- the file and the field, when it is there but is not a record of its kind).
function M.get(root, namespace, kind, name)
  local path = path_of(root, namespace, kind, name)
  local shape, name_field = shape_of(kind)
  local rec, err = records.read(path, shape or {}, { name_field = name_field, name = name })
  if not rec then
    if err.sym == "NOT_FOUND" then return nil, errors.not_found("%s %q: not found", kind:gsub("s$", ""), name) end
    err.name = name
    return nil, err
  end
  return rec
end

--- Every record of one kind, sorted by name, and the errors of those that could not be read
-- (each names its file; err.name is the record's name).  A record removed meanwhile is skipped.
-- @tparam[opt] string skip a name not to read (the caller holds its record)
-- @return recs, bad (both arrays)
function M.all(root, namespace, kind, skip)
  local recs, bad = {}, {}
  for _, name in ipairs(M.list(root, namespace, kind)) do
    local rec, err
    if name ~= skip then rec, err = M.get(root, namespace, kind, name) end
    if rec then
      recs[#recs + 1] = rec
    elseif err and err.sym ~= "NOT_FOUND" then
      bad[#bad + 1] = err
    end
  end
  return recs, bad
end

--- Write a record. opts.create: fail with EXISTS when it is already there.  opts.sync: by
-- default the file and its name are durable when put returns; "data": the file only (its name
-- at the caller's durability point, M.sync); "none": neither, for a record that lives only as
-- long as the process that writes it (run --rm), which a power cut may leave empty or cut
-- short: a record the ordinary commands remove (`containers rm -f`, `snapshots rm`).
function M.put(root, namespace, kind, name, rec, opts)
  local dir = M.dir(root, namespace, kind)
  local ok, err = ensure_dir(dir)
  if not ok then return nil, err end
  local path = dir .. "/" .. M.escape(name) .. ".json"
  -- a value JSON cannot hold (NaN, infinity) is the caller's bad input: an error to return,
  -- so that the caller's cleanup runs
  local encoded, text = pcall(core.json_encode, rec, true)
  if not encoded then return nil, errors.invalid("%s %q: %s", kind:gsub("s$", ""), name, tostring(text)) end
  local data = text .. "\n"
  -- what could not be read back is never written: a record over the reader's cap would be a
  -- record no command can see, remove or replace by name
  if #data > records.MAX then
    return nil, errors.new(("%s %q: its record of %d bytes is over the limit of %d"):format(
      kind:gsub("s$", ""), name, #data, records.MAX), 27, "EFBIG")
  end
  local sync = opts and opts.sync
  local w, err = sys.write_file(path, data,
    { mode = 384, noreplace = opts and opts.create or false, sync = sync ~= "none", dirsync = sync == nil })
  if not w then
    if err.sym == "EEXIST" then return nil, errors.exists("%s %q: already exists", kind:gsub("s$", ""), name) end
    return nil, err
  end
  return true
end

--- The durability point of an operation: the records and snapshot directories it wrote
-- unsynced (`sync = "none"` or `"data"`, or renamed in unsynced) reach the disk, files and
-- names, by an fsync of each of points.fsync (the files, the directories that hold their
-- names), then a syncfs of the file system of each of points.syncfs (a tree too large to
-- list).  Only what the operation names waits: a syncfs would also wait for everything any
-- other process has written to the file system and not yet synced (a container filling its
-- upper directory, a pull), hundreds of milliseconds here for 200 MB.  True, or nil, err.
function M.sync(points)
  for _, p in ipairs(points.fsync or {}) do
    local ok, err = sys.fsync(p)
    if not ok then return nil, err end
  end
  for _, p in ipairs(points.syncfs or {}) do
    local ok, err = sys.syncfs(p)
    if not ok then return nil, err end
  end
  return true
end

--- Remove a record; a missing one is NOT_FOUND.
function M.delete(root, namespace, kind, name)
  local path = path_of(root, namespace, kind, name)
  local ok, err = sys.unlink(path)
  if not ok then
    if err.sym == "ENOENT" then return nil, errors.not_found("%s %q: not found", kind:gsub("s$", ""), name) end
    return nil, err
  end
  return true
end

--- Names of the records of one kind, sorted.
function M.list(root, namespace, kind)
  local names = core.listdir(M.dir(root, namespace, kind))
  local out = {}
  for _, f in ipairs(names or {}) do
    local n = f:match("^(.*)%.json$")
    if n and not f:match("^%.tmp%-") then out[#out + 1] = M.unescape(n) end
  end
  table.sort(out)
  return out
end

--- How many records of one kind there are (their names counted: none is read).
function M.count(root, namespace, kind)
  return core.count_entries(M.dir(root, namespace, kind), ".json") or 0
end

--- Namespaces that have records.
function M.namespaces(root)
  local out = {}
  for _, f in ipairs(core.listdir(root .. "/meta") or {}) do out[#out + 1] = M.unescape(f) end
  table.sort(out)
  return out
end

-- Locks this process holds, by path, with their depth: flock() on a second open file of the
-- same path would wait for ourselves, so a nested with_lock (container delete removing its
-- snapshot, say) reuses the lock it already has.
local held = {}

--- Run fn() holding the namespace's exclusive lock (ROOT/meta/NS/lock).  Returns fn's results.
-- Reentrant within a process.
function M.with_lock(root, namespace, fn)
  local dir = root .. "/meta/" .. M.escape(namespace)
  local path = dir .. "/lock"
  if held[path] then
    held[path] = held[path] + 1
    return errors.finally(function() held[path] = held[path] - 1 end, fn)
  end
  local ok, err = ensure_dir(dir)
  if not ok then return nil, err end
  local fd, err = sys.lock(path, true)
  if not fd then return nil, err end
  held[path] = 1
  return errors.finally(function()
    held[path] = nil
    core.close(fd)
  end, fn)
end

return M
