-- The driver of fuzz/passwd.c: an image's /etc/passwd and /etc/group through ctr.oci.
--
-- The input is the passwd text, a NUL, the group text, a NUL, and an image USER string (each
-- part may be empty or missing).  The lookups run twice: with both files in the rootfs, and
-- with neither (the reader says ENOENT, as for an image without them).
--
-- A finding is any Lua error out of the code under test (see luahost.h), and any of these
-- contracts broken, each checked with error():
--   - a SpecOpt returns nothing or true, or nil and a ctr.errors value with a message;
--   - parse_passwd and parse_group return entries with a non-empty name and integral ids;
--   - whatever the files say, the uid, gid and additionalGids a lookup leaves in the spec are
--     integers in 0..2^31-1 (containerd CVE-2024-40635), and the spec can be written as JSON;
--   - parsing is linear in the text: a text of at most 64 bytes is parsed again with each byte
--     repeated 1024 times, which a quadratic parser makes slow enough for libFuzzer's -timeout
--     (the Makefile gives this harness 10 s) and a linear one parses in a few milliseconds.
local core = require("ctr.core")
local errors = require("ctr.errors")
local oci = require("ctr.oci")

local STRETCH_MAX, STRETCH = 64, 1024

local function contract(what, v, err)
  if v == nil and err ~= nil and not (errors.is_error(err) and type(err.msg) == "string") then
    error(("%s: returned nil and %s instead of an error value"):format(what, tostring(err)), 2)
  end
  return v, err
end

local function is_id(v)
  return type(v) == "number" and v == math.floor(v) and v >= 0 and v <= oci.MAX_ID
end

local function check_entries(what, list)
  for i, e in ipairs(list) do
    if type(e.name) ~= "string" or e.name == "" then error(("%s[%d]: no name"):format(what, i)) end
    for _, k in ipairs({ "uid", "gid" }) do
      local v = e[k]
      if v ~= nil and (type(v) ~= "number" or v < 0 or v ~= math.floor(v)) then
        error(("%s[%d].%s: not an id"):format(what, i, k))
      end
    end
    if (e.uid and e.uid > oci.MAX_ID or e.gid > oci.MAX_ID) ~= e.out_of_range then
      error(("%s[%d]: out_of_range is wrong"):format(what, i))
    end
  end
end

local function check_user(what, spec)
  local u = spec.process and spec.process.user
  if type(u) ~= "table" then error(what .. ": no process.user") end
  if not is_id(u.uid) or not is_id(u.gid) then
    error(("%s: uid %s gid %s left in the spec"):format(what, tostring(u.uid), tostring(u.gid)))
  end
  for i, g in ipairs(u.additionalGids or {}) do
    if not is_id(g) then error(("%s: additionalGids[%d] = %s"):format(what, i, tostring(g))) end
  end
  core.json_encode(spec)
end

local function parts(data)
  local out, pos = {}, 1
  for _ = 1, 2 do
    local z = data:find("\0", pos, true)
    if not z then break end
    out[#out + 1] = data:sub(pos, z - 1)
    pos = z + 1
  end
  out[#out + 1] = data:sub(pos)
  return out[1] or "", out[2] or "", out[3] or ""
end

local function stretch(s) return (s:gsub(".", function(c) return c:rep(STRETCH) end)) end

return function(data)
  local passwd, group, user = parts(data)
  check_entries("parse_passwd", oci.parse_passwd(passwd))
  check_entries("parse_group", oci.parse_group(group))
  -- (fuzz_coverage is the harness's; the regression spec runs this driver without it)
  local coverage = fuzz_coverage or function() end -- luacheck: ignore
  coverage(false)
  if #passwd <= STRETCH_MAX then oci.parse_passwd(stretch(passwd)) end
  if #group <= STRETCH_MAX then oci.parse_group(stretch(group)) end
  coverage(true)

  for _, present in ipairs({ true, false }) do
    local files = present and { ["/etc/passwd"] = passwd, ["/etc/group"] = group } or {}
    local ctx = { namespace = "fuzz", read_rootfs_file = function(path)
      local text = files[path]
      if text == nil then return nil, errors.new(path .. ": No such file or directory", 2) end
      return text
    end }
    local function run(what, opt)
      local spec = oci.default_spec("fuzz", "c")
      local ok, err = contract(what, opt(ctx, nil, { id = "c" }, spec))
      if ok ~= nil or err == nil then check_user(what, spec) end
    end
    run("with_user", oci.with_user(user))
    run("with_additional_gids", oci.with_additional_gids(user))
    run("with_username", oci.with_username(user))
    run("with_image_config", oci.with_image_config({ name = "fuzz", config = { config = { User = user } } }))
  end
end
