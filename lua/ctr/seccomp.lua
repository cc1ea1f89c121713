--- Seccomp profiles for specs (containerd's contrib/seccomp).
--
-- `default_profile(spec)` builds Docker's default profile (data in ctr.spec.seccomp_default) for a
-- spec: the capabilities in spec.process.capabilities.bounding unlock their extra syscalls, so
-- the SpecOpt `with_default_profile()` must come after the options that set capabilities.
-- `with_profile(path)` loads a profile file, in the OCI linux.seccomp format or in Docker's
-- (archMap, includes/excludes, name), converting Docker's as moby's setupSeccomp does.
--
-- The runtime turns linux.seccomp into a filter (csrc/runtime/seccomp.c); `check(profile)` builds that
-- filter without loading it, so a bad profile is refused before anything runs.
-- @module ctr.seccomp
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")
local data = require("ctr.spec.seccomp_default")

local M = {}

--- Largest profile file read by with_profile.
M.MAX_PROFILE = 1024 * 1024

local function arr(t) return core.json_array(t or {}) end

local function copy(t)
  local r = {}
  for i, v in ipairs(t) do r[i] = v end
  return r
end

local function ensure_linux(spec)
  spec.linux = spec.linux or {}
  return spec.linux
end

local function bounding_caps(spec)
  local caps = spec and spec.process and spec.process.capabilities
  local b = caps and caps.bounding
  if b == nil or b == core.null then return {} end
  if type(b) ~= "table" then
    error("spec.process.capabilities.bounding: expected table, got " .. type(b), 3)
  end
  return b
end

--- The host's architecture as Go names it ("amd64", "arm64", ...), from libseccomp's native
-- architecture; nil when unknown.
function M.host_goarch()
  return data.goarch[core.seccomp_native_arch() or ""]
end

--- The running kernel's version as two numbers (kernel, major), or nil.
function M.kernel_version()
  local u = core.uname()
  local k, m = tostring(u and u.release or ""):match("^(%d+)%.(%d+)")
  if not k then return nil end
  return tonumber(k), tonumber(m)
end

local function kernel_at_least(kernel, major, k, m)
  if not k then return false end
  return k > kernel or (k == kernel and m >= major)
end

local function allow(names) return { names = arr(copy(names)), action = "SCMP_ACT_ALLOW" } end

--- Docker's default profile for `spec`, as an OCI linux.seccomp table (containerd's
-- DefaultProfile).
-- @tparam table spec the spec (its bounding capabilities decide the extras)
-- @tparam[opt] table host `{goarch=, kernel=, major=}` to build for another host (tests);
--   defaults to this one
-- @treturn table the linux.seccomp value
function M.default_profile(spec, host)
  if type(spec) ~= "table" then error("spec: expected table, got " .. type(spec), 2) end
  host = host or {}
  local goarch = host.goarch or M.host_goarch()
  local k, m = host.kernel, host.major
  if k == nil then k, m = M.kernel_version() end

  local syscalls = { allow(data.allow) }
  for _, persona in ipairs(data.personality) do
    syscalls[#syscalls + 1] = { names = arr({ "personality" }), action = "SCMP_ACT_ALLOW",
      args = arr({ { index = 0, value = persona, op = "SCMP_CMP_EQ" } }) }
  end
  local s = {
    defaultAction = data.default_action,
    architectures = arr(copy(data.arches[goarch] or {})),
    syscalls = syscalls,
  }
  for _, rule in ipairs(data.by_kernel) do
    if kernel_at_least(rule.kernel, rule.major, k, m) then syscalls[#syscalls + 1] = allow(rule.names) end
  end
  if data.by_arch[goarch] then syscalls[#syscalls + 1] = allow(data.by_arch[goarch]) end

  local admin = false
  for _, cap in ipairs(bounding_caps(spec)) do
    if cap == "CAP_SYS_ADMIN" then admin = true end
    if data.by_cap[cap] then syscalls[#syscalls + 1] = allow(data.by_cap[cap]) end
  end
  if not admin then
    syscalls[#syscalls + 1] = { names = arr({ "clone" }), action = "SCMP_ACT_ALLOW",
      args = arr({ { index = data.clone_flags_index[goarch] or 0, value = data.CLONE_NS_FLAGS,
        op = "SCMP_CMP_MASKED_EQ" } }) }
    syscalls[#syscalls + 1] = { names = arr({ "clone3" }), action = "SCMP_ACT_ERRNO",
      errnoRet = data.ENOSYS }
  end
  s.syscalls = arr(syscalls)
  return s
end

--- Does the C core accept this profile?  Builds the filter (without loading it).
-- @tparam table profile an OCI linux.seccomp table
-- @return true, or nil and an error
function M.check(profile)
  if type(profile) ~= "table" then error("profile: expected table, got " .. type(profile), 2) end
  local ok, err = sys.seccomp_check(core.json_encode(profile))
  if not ok then return nil, err end
  return true
end

-- ------------------------------------------------------------------ Docker's format

-- Docker's arch names in includes/excludes ("amd64", "x86", "arm64", ...) by GOARCH.
local DOCKER_ARCH = { ["386"] = "x86" }

local function in_list(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

local function nonempty(t) return type(t) == "table" and next(t) ~= nil end

local function min_kernel(v, what)
  if v == nil or v == core.null then return nil end
  local k, m = tostring(v):match("^(%d+)%.(%d+)")
  if not k then return nil, errors.invalid("%s.minKernel: invalid kernel version %q", what, tostring(v)) end
  return { tonumber(k), tonumber(m) }
end

-- What an includes or excludes filter says about this host and spec: hits.arch (the host
-- arch is listed), hits.all_caps / hits.any_cap (of the listed caps), hits.kernel (minKernel).
local function filter_hits(f, host, caps, what)
  local hits = {}
  if nonempty(f.arches) then hits.arch = in_list(f.arches, host.docker_arch) end
  if nonempty(f.caps) then
    local all, any = true, false
    for _, c in ipairs(f.caps) do
      if in_list(caps, c) then any = true else all = false end
    end
    hits.all_caps, hits.any_cap = all, any
  end
  local mk, err = min_kernel(f.minKernel, what)
  if err then return nil, err end
  if mk then hits.kernel = kernel_at_least(mk[1], mk[2], host.kernel, host.major) end
  return hits
end

--- Convert a decoded profile document (OCI or Docker format) into an OCI linux.seccomp table
-- for `spec` on this host (moby's setupSeccomp): archMap picks the host's architecture and its
-- sub-architectures; rules with includes/excludes are kept or dropped by host architecture,
-- bounding capabilities and kernel version; `name` becomes `names`; comments are dropped.
-- @tparam table doc the decoded JSON document
-- @tparam table spec the spec (capabilities)
-- @tparam[opt] table host `{native="SCMP_ARCH_...", goarch=, kernel=, major=}` (tests);
--   defaults to this host
-- @return the linux.seccomp table, or nil and an error
function M.convert_profile(doc, spec, host)
  if type(doc) ~= "table" then return nil, errors.invalid("seccomp profile: expected a JSON object") end
  host = host or {}
  local native = host.native or core.seccomp_native_arch()
  local goarch = host.goarch or data.goarch[native or ""]
  local k, m = host.kernel, host.major
  if k == nil then k, m = M.kernel_version() end
  local h = { docker_arch = DOCKER_ARCH[goarch] or goarch, kernel = k, major = m }

  if nonempty(doc.architectures) and nonempty(doc.archMap) then
    return nil, errors.invalid("seccomp profile: both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'")
  end
  local out = {
    defaultAction = doc.defaultAction,
    defaultErrnoRet = doc.defaultErrnoRet,
    flags = doc.flags,
    listenerPath = doc.listenerPath,
    listenerMetadata = doc.listenerMetadata,
  }
  local archs = {}
  for _, a in ipairs(type(doc.architectures) == "table" and doc.architectures or {}) do archs[#archs + 1] = a end
  for i, am in ipairs(type(doc.archMap) == "table" and doc.archMap or {}) do
    if type(am) ~= "table" then return nil, errors.invalid("seccomp profile: archMap[%d]: expected object", i - 1) end
    if am.architecture == native then
      archs[#archs + 1] = am.architecture
      for _, sub in ipairs(type(am.subArchitectures) == "table" and am.subArchitectures or {}) do
        archs[#archs + 1] = sub
      end
    end
  end
  if #archs > 0 then out.architectures = arr(archs) end

  local caps = bounding_caps(spec)
  local syscalls = {}
  local list = doc.syscalls
  if list ~= nil and list ~= core.null and type(list) ~= "table" then
    return nil, errors.invalid("seccomp profile: syscalls: expected array")
  end
  for i, call in ipairs(list or {}) do
    local what = ("seccomp profile: syscalls[%d]"):format(i - 1)
    if type(call) ~= "table" then return nil, errors.invalid("%s: expected object", what) end
    local names = call.names
    if call.name ~= nil and call.name ~= core.null and call.name ~= "" then
      if nonempty(names) then return nil, errors.invalid("%s: use either 'name' or 'names'", what) end
      names = { call.name }
    end
    local keep = true
    if type(call.excludes) == "table" then
      local hits, err = filter_hits(call.excludes, h, caps, what .. ".excludes")
      if not hits then return nil, err end
      if hits.arch == true or hits.any_cap == true or hits.kernel == true then keep = false end
    end
    if keep and type(call.includes) == "table" then
      local hits, err = filter_hits(call.includes, h, caps, what .. ".includes")
      if not hits then return nil, err end
      if hits.arch == false or hits.all_caps == false or hits.kernel == false then keep = false end
    end
    if keep then
      local rule = { names = arr(copy(type(names) == "table" and names or {})), action = call.action,
        errnoRet = call.errnoRet }
      if nonempty(call.args) then
        local args = {}
        for j, a in ipairs(call.args) do
          args[j] = { index = a.index, value = a.value, valueTwo = a.valueTwo, op = a.op }
        end
        rule.args = arr(args)
      end
      syscalls[#syscalls + 1] = rule
    end
  end
  out.syscalls = arr(syscalls)
  return out
end

-- ------------------------------------------------------------------ SpecOpts

--- SpecOpt: set Docker's default profile (containerd's WithDefaultProfile).  Put it after the
-- options that change capabilities.
function M.with_default_profile()
  return function(_, _, _, spec)
    ensure_linux(spec).seccomp = M.default_profile(spec)
  end
end

--- SpecOpt: set the profile in the file at `path` (containerd's WithProfile), in the OCI or in
-- Docker's format.  The file is size-capped (M.MAX_PROFILE), converted for this host and spec
-- (see convert_profile) and checked by the C core; failures return nil, err.
-- @tparam string path the profile file
function M.with_profile(path)
  if type(path) ~= "string" then error("path: expected string, got " .. type(path), 2) end
  return function(_, _, _, spec)
    local text, err = sys.read_file(path, M.MAX_PROFILE)
    if not text then
      return nil, errors.wrap(err, "cannot load seccomp profile %q", path)
    end
    local doc, derr = core.json_decode(text)
    if doc == nil then
      return nil, errors.invalid("decoding seccomp profile failed %q: %s", path, tostring(derr))
    end
    local prof, err = M.convert_profile(doc, spec)
    if not prof then return nil, errors.wrap(err, "seccomp profile %q", path) end
    local ok, cerr = M.check(prof)
    if not ok then return nil, errors.wrap(cerr, "seccomp profile %q", path) end
    ensure_linux(spec).seccomp = prof
  end
end

return M
