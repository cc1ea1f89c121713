-- A tiny ustar/pax writer for specs: hostile archives (names with `..`, absolute names, huge
-- uids, trusted xattrs) cannot come from GNU tar, so the specs build them byte by byte.
--
-- tar.build(entries) -> string; tar.write(path, entries[, compression]) writes it ("gzip" and
-- "zstd" through the command-line tools).  An entry:
--   { name = "a/b", type = "file"|"dir"|"symlink"|"hardlink"|"char"|"block"|"fifo",
--     data = "...", mode = 420, uid = 0, gid = 0, mtime = 0, link = "target",
--     major = 1, minor = 3, xattrs = { ["user.k"] = "v" }, pax = { key = "value" } }
local M = {}

local TYPES = { file = "0", hardlink = "1", symlink = "2", char = "3", block = "4", dir = "5",
  fifo = "6" }

local function field(s, n)
  assert(#s <= n, "tar field too long: " .. s)
  return s .. string.rep("\0", n - #s)
end

local function octal(v, n)
  local s = string.format("%0" .. (n - 1) .. "o", v)
  if #s > n - 1 then s = string.rep("0", n - 1) end -- does not fit: the pax record holds it
  return s .. "\0"
end

local function block_pad(s)
  local r = #s % 512
  if r == 0 then return s end
  return s .. string.rep("\0", 512 - r)
end

local function header(name, typeflag, size, e)
  local h = field(name, 100) .. octal(e.mode or 420, 8) .. octal(e.uid or 0, 8)
    .. octal(e.gid or 0, 8) .. octal(size, 12) .. octal(e.mtime or 0, 12) .. "        "
    .. typeflag .. field(#(e.link or "") <= 100 and (e.link or "") or "", 100)
    .. "ustar\0" .. "00" .. field("", 32) .. field("", 32) .. octal(e.major or 0, 8)
    .. octal(e.minor or 0, 8) .. field("", 155)
  h = field(h, 512)
  local sum = 0
  for i = 1, #h do sum = sum + h:byte(i) end
  return h:sub(1, 148) .. string.format("%06o\0 ", sum) .. h:sub(157)
end

local function pax_record(k, v)
  local body = " " .. k .. "=" .. v .. "\n"
  local n = #body + 1
  while #tostring(n) + #body ~= n do n = #tostring(n) + #body end
  return n .. body
end

local function entry_bytes(e)
  local typeflag = assert(TYPES[e.type or "file"], "unknown type " .. tostring(e.type))
  local data = e.data or ""
  local recs = {}
  local keys = {}
  for k, v in pairs(e.pax or {}) do keys[#keys + 1] = { k, v } end
  for k, v in pairs(e.xattrs or {}) do keys[#keys + 1] = { "SCHILY.xattr." .. k, v } end
  if #e.name > 100 then keys[#keys + 1] = { "path", e.name } end
  if e.link and #e.link > 100 then keys[#keys + 1] = { "linkpath", e.link } end
  if (e.uid or 0) >= 8 ^ 7 then keys[#keys + 1] = { "uid", string.format("%.0f", e.uid) } end
  if (e.gid or 0) >= 8 ^ 7 then keys[#keys + 1] = { "gid", string.format("%.0f", e.gid) } end
  table.sort(keys, function(a, b) return a[1] < b[1] end)
  for _, kv in ipairs(keys) do recs[#recs + 1] = pax_record(kv[1], kv[2]) end
  local out = {}
  local name = #e.name <= 100 and e.name or e.name:sub(1, 100)
  if #recs > 0 then
    local pax = table.concat(recs)
    out[#out + 1] = header("PaxHeaders/" .. name:sub(1, 80), "x", #pax, { mode = 420 })
    out[#out + 1] = block_pad(pax)
  end
  local size = typeflag == "0" and #data or 0
  out[#out + 1] = header(name, typeflag, size, e)
  if size > 0 then out[#out + 1] = block_pad(data) end
  return table.concat(out)
end

function M.build(entries)
  local out = {}
  for i, e in ipairs(entries) do out[i] = entry_bytes(e) end
  out[#out + 1] = string.rep("\0", 1024)
  return table.concat(out)
end

function M.write(path, entries, compression)
  local bytes = M.build(entries)
  local f = assert(io.open(path .. ".raw", "wb"))
  f:write(bytes)
  f:close()
  local cmd
  if compression == "gzip" then
    cmd = string.format("gzip -n -c '%s.raw' > '%s'", path, path)
  elseif compression == "zstd" then
    cmd = string.format("zstd -q -c '%s.raw' > '%s'", path, path)
  else
    cmd = string.format("mv '%s.raw' '%s'", path, path)
  end
  assert(os.execute(cmd) == 0, cmd)
  os.remove(path .. ".raw")
  return path, bytes
end

return M
