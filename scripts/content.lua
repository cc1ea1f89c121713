-- content: list, read, ingest and remove blobs of the content store, as `ctr content`
local ctr = require("ctr")
local app = require("ctr.cmd.app")
local format = require("ctr.cmd.format")
local json = require("ctr.json")
local term = require("ctr.cmd.term")

local function store()
  local c, err = ctr.client()
  if not c then app.fail(err) end
  return c:content_store()
end

local function list(ctx)
  local blobs = store():list()
  if ctx.flags.quiet then
    for _, b in ipairs(blobs) do io.stdout:write(b.digest, "\n") end
    return true
  end
  local fmt = ctx.flags.format
  if fmt == "json" then
    local out = {}
    for i, b in ipairs(blobs) do
      out[i] = { digest = b.digest, size = b.size, created_at = b.created_at }
    end
    io.stdout:write(assert(json.encode_indent(json.array(out))), "\n")
    return true
  elseif fmt ~= "" and fmt ~= "table" then
    return nil, ("unknown format %q: use table or json"):format(fmt)
  end
  local now = term.now()
  local rows = { { "DIGEST", "SIZE", "AGE" } }
  for _, b in ipairs(blobs) do
    rows[#rows + 1] = { b.digest, format.bytes(b.size), format.human_duration(now - b.mtime) }
  end
  io.stdout:write(format.table(rows))
  return true
end

local function get(ctx)
  if #ctx.args ~= 1 then return nil, "please provide one digest" end
  local s = store()
  local info, err = s:info(ctx.args[1])
  if not info then return nil, err end
  local path
  path, err = s:path(ctx.args[1])
  if not path then return nil, err end
  local fh, msg = io.open(path, "rb")
  if not fh then return nil, msg end
  while true do
    local chunk = fh:read(1024 * 1024)
    if not chunk then break end
    io.stdout:write(chunk)
  end
  fh:close()
  return true
end

local function ingest(ctx)
  if #ctx.args ~= 1 then return nil, "must specify a transaction reference" end
  local f = ctx.flags
  local expected
  if f["expected-digest"] ~= "" or f["expected-size"] ~= 0 then
    expected = { digest = f["expected-digest"] ~= "" and f["expected-digest"] or nil,
      size = f["expected-size"] ~= 0 and f["expected-size"] or nil }
  end
  local d, err = store():ingest("-", expected)
  if not d then return nil, err end
  io.stdout:write(d, "\n")
  return true
end

local function delete(ctx)
  if #ctx.args == 0 then return nil, "please provide at least one digest to delete" end
  local s = store()
  local ok_all = true
  for _, d in ipairs(ctx.args) do
    local ok, err = s:delete(d)
    if ok then
      io.stdout:write(d, "\n")
    else
      io.stderr:write("ctrlua: ", tostring(err), "\n")
      ok_all = false
    end
  end
  return ok_all
end

app.run({
  name = "content", usage = "manage content",
  commands = {
    { name = "delete", aliases = { "del", "remove", "rm" }, usage = "permanently delete one or more blobs",
      args_usage = "[<digest>, ...]",
      description = "Delete one or more blobs permanently. Successfully deleted\n  blobs are printed to stdout.",
      action = delete },
    { name = "get", usage = "get the data for an object", args_usage = "[<digest>, ...]",
      description = "display the image object", action = get },
    { name = "ingest", usage = "accept content into the store", args_usage = "[flags] <key>",
      description = "ingest objects into the local content store (from standard input); prints the digest",
      flags = {
        { name = "expected-size", type = "int64", usage = "validate against provided size" },
        { name = "expected-digest", type = "string", usage = "verify content against expected digest" },
      },
      action = ingest },
    { name = "list", aliases = { "ls" }, usage = "list all blobs in the store", args_usage = "[flags]",
      description = "list blobs in the content store",
      flags = {
        { name = "quiet", aliases = { "q" }, type = "bool", usage = "print only the blob digest" },
        { name = "format", type = "string", usage = "output format: table or json" },
      },
      action = list },
  },
}, { ... })
