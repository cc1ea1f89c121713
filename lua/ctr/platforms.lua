--- Platforms, as containerd's platforms package: "os/arch[/variant]" specifiers, the machine's
-- default, normalisation (x86_64 = amd64, aarch64 = arm64 with v8 as the default variant, arm
-- = arm/v7...) and matching.
-- @module ctr.platforms
local core = require("ctr.core")

local M = {}

local function normalize_arch(arch, variant)
  arch, variant = arch:lower(), (variant or ""):lower()
  if arch == "i386" then
    arch, variant = "386", ""
  elseif arch == "x86_64" or arch == "x86-64" or arch == "amd64" then
    arch = "amd64"
    if variant == "v1" then variant = "" end
  elseif arch == "aarch64" or arch == "arm64" then
    arch = "arm64"
    if variant == "8" or variant == "v8" or variant == "v8.0" then
      variant = ""
    elseif variant == "9" or variant == "9.0" or variant == "v9.0" then
      variant = "v9"
    end
  elseif arch == "armhf" then
    arch, variant = "arm", "v7"
  elseif arch == "armel" then
    arch, variant = "arm", "v6"
  elseif arch == "arm" then
    if variant == "" or variant == "7" then
      variant = "v7"
    elseif variant == "5" or variant == "6" or variant == "8" then
      variant = "v" .. variant
    end
  end
  return arch, variant
end

--- Normalise a platform table: {os=, architecture=, variant=} with containerd's rules
-- (variant nil when empty).
function M.normalize(p)
  if type(p) ~= "table" then error("platforms.normalize: p: expected table", 2) end
  local os_ = (p.os or "linux"):lower()
  if os_ == "macos" then os_ = "darwin" end
  local arch, variant = normalize_arch(p.architecture or "", p.variant)
  return { os = os_, architecture = arch, variant = variant ~= "" and variant or nil }
end

--- This machine's platform: {os="linux", architecture=<GOARCH>, variant=<arm only>}.
function M.default()
  local u = core.uname()
  local m = u and u.machine or "x86_64"
  local variant
  if m:match("^armv(%d)") then
    variant = "v" .. m:match("^armv(%d)")
    m = "arm"
  elseif m == "ppc64le" or m == "s390x" or m == "riscv64" then
    -- GOARCH spells these the same
  end
  return M.normalize({ os = "linux", architecture = m, variant = variant })
end

--- Parse "linux/arm64/v8", "linux/amd64", "amd64" (os defaults to linux) or "linux".
-- @return platform table, or nil, err
function M.parse(s)
  if type(s) ~= "string" then error("platforms.parse: s: expected string", 2) end
  local parts = {}
  for part in (s .. "/"):gmatch("([^/]*)/") do parts[#parts + 1] = part end
  for _, part in ipairs(parts) do
    if not part:match("^[%w_%.%-]+$") then
      return nil, require("ctr.errors").invalid("invalid platform %q", s)
    end
  end
  if #parts == 1 then
    local v = parts[1]:lower()
    if v == "linux" or v == "windows" or v == "darwin" or v == "freebsd" then
      local d = M.default()
      return M.normalize({ os = v, architecture = d.architecture, variant = d.variant })
    end
    return M.normalize({ os = "linux", architecture = parts[1] })
  elseif #parts == 2 then
    return M.normalize({ os = parts[1], architecture = parts[2] })
  elseif #parts == 3 then
    return M.normalize({ os = parts[1], architecture = parts[2], variant = parts[3] })
  end
  return nil, require("ctr.errors").invalid("invalid platform %q", s)
end

--- "os/arch[/variant]".
function M.format(p)
  if type(p) ~= "table" then error("platforms.format: p: expected table", 2) end
  local s = (p.os or "unknown") .. "/" .. (p.architecture or "unknown")
  if p.variant and p.variant ~= "" then s = s .. "/" .. p.variant end
  return s
end

local function variant_num(v) return tonumber((v or ""):match("^v(%d+)")) end

--- Does an image of platform `have` run on `want`?  Both are normalised; os and architecture
-- must be equal; arm runs older arm variants (v7 runs v6 and v5), amd64 older microarchitecture
-- levels.
function M.match(want, have)
  if type(want) == "string" then want = assert(M.parse(want)) end
  if type(have) ~= "table" then return false end
  want, have = M.normalize(want), M.normalize(have)
  if want.os ~= have.os or want.architecture ~= have.architecture then return false end
  if (want.variant or "") == (have.variant or "") then return true end
  if want.architecture == "arm" or want.architecture == "amd64" or want.architecture == "arm64" then
    local w = variant_num(want.variant) or (want.architecture == "arm64" and 8 or 1)
    local h = variant_num(have.variant) or (want.architecture == "arm64" and 8 or 1)
    return h <= w
  end
  return false
end

return M
