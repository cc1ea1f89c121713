--- Site spec policies: Lua files that see, change or refuse every container's final spec.
--
-- Policies come from `/etc/ctrlua/policy.d/*.lua` (opts.dir overrides the directory), from
-- `run.lua --policy FILE` (opts.files) and from the client option `policies`; they are loaded
-- in name order (the base name, then the path).  Each file returns either a function or a
-- table of named rules (run in name order):
--
--     -- /etc/ctrlua/policy.d/10-memory.lua
--     return function(spec, container, flags)
--       local r = ctr.oci.ensure_resources(spec)
--       if not (r.memory and r.memory.limit) then r.memory = { limit = 512 * 1024 * 1024 } end
--       if container.labels["team"] == nil then return false, "every container needs a team label" end
--     end
--
-- A rule is called with the spec (a plain OCI table, changed in place), the container record
-- (`id`, `image`, `labels` (changeable), `snapshotter`, ...) and a copy of the flags.  It
-- refuses by returning `false, "reason"` or by calling `refuse("reason")`; the refusal
-- becomes an error `policy FILE refused: REASON` (err.sym "POLICY_REFUSED", err.policy = FILE,
-- err.reason = REASON) and nothing is created.
--
-- The sandbox: each file runs in a fresh environment holding only `string`, `table`, `math`
-- (copies), `pairs`, `ipairs`, `next`, `type`, `tostring`, `tonumber`, `select`, `error`,
-- `assert`, `pcall`, `unpack`, `print` (to stderr), `os.time`/`os.date`/`os.clock`,
-- `refuse`, and a read-only `ctr` facade (`ctr.oci` spec helpers, `ctr.array`, `ctr.apply`,
-- `ctr.has_cap`, `ctr.version`; tables in it are copies).  There is no `io`, `require`, `load*`, `dofile`, `debug`,
-- `package`, `rawset`, `setmetatable`, `getfenv`/`setfenv`, the rest of `os` (`execute`, `getenv`: a policy
-- depends on the spec, the container and the flags only, so `policy.lua check` shows what `run`
-- does) and no `ctr.core`.  Touching any of those raises "X is not allowed in a policy" and
-- fails closed even when the policy catches the error with pcall.  A policy that raises, leaves
-- a spec that is not JSON, or runs past its instruction budget fails closed too: a refusal
-- naming the file and the error.  Precompiled (bytecode) policy files are refused.
-- @module ctr.policy
local core = require("ctr.core")
local errors = require("ctr.errors")
local sys = require("ctr.sys")

local M = {}

--- The site's policy directory.
M.DEFAULT_DIR = "/etc/ctrlua/policy.d"

--- Largest policy file read (bytes).
M.MAX_FILE = 1024 * 1024

--- Default budget of Lua VM instructions per rule call (0 disables the budget).
M.INSTRUCTION_LIMIT = 50000000

local function check_type(v, want, what)
  if type(v) ~= want then error(("%s: expected %s, got %s"):format(what, want, type(v)), 3) end
end

--- The refusal error of FILE with REASON: `policy FILE refused: REASON`.
-- @tparam string file the policy file
-- @tparam string reason why
-- @return an error value (sym "POLICY_REFUSED", `policy`, `reason` fields)
function M.refusal(file, reason)
  local e = errors.new(("policy %s refused: %s"):format(file, reason), 0, "POLICY_REFUSED")
  e.policy, e.reason = file, reason
  return e
end

-- ---------------------------------------------------------------- finding the files

local function basename(p) return (p:match("([^/]+)$")) or p end

--- The policy files that apply, in load order.
-- @param client a client (its `policies` list is used) or nil
-- @tparam[opt] table opts `dir` (default DEFAULT_DIR; a missing directory is no policy),
-- `files` (a list of paths)
-- @return a list of paths, or nil, err (an unreadable directory, a missing named file)
function M.files(client, opts)
  opts = opts or {}
  check_type(opts, "table", "opts")
  local out, seen = {}, {}
  local function add(p, what)
    check_type(p, "string", what)
    if not seen[p] then
      seen[p] = true
      out[#out + 1] = p
    end
  end
  local dir = opts.dir or M.DEFAULT_DIR
  local names, err = sys.listdir(dir)
  if names then
    for _, n in ipairs(names) do
      if n:match("%.lua$") and n:sub(1, 1) ~= "." then
        local p = dir .. "/" .. n
        local st = core.stat(p, true)
        if st and st.type == "file" then add(p, "policy file") end
      end
    end
  elseif err.sym ~= "ENOENT" then
    return nil, err
  end
  for i, p in ipairs(opts.files or {}) do add(p, ("files[%d]"):format(i)) end
  for i, p in ipairs(client and client.policies or {}) do add(p, ("client.policies[%d]"):format(i)) end
  table.sort(out, function(a, b)
    local ba, bb = basename(a), basename(b)
    if ba ~= bb then return ba < bb end
    return a < b
  end)
  return out
end

-- ---------------------------------------------------------------- the sandbox

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error(("%s.%s: %s is read-only"):format(name, tostring(k), name), 2) end,
    __metatable = false,
  })
end

-- the spec helpers a policy may use: they only change the spec table they are given
local OCI_HELPERS = { "ensure_process", "ensure_root", "ensure_linux", "ensure_resources",
  "ensure_capabilities", "replace_or_append_env", "with_env", "with_memory_limit",
  "with_pids_limit", "with_cpus", "with_cpu_shares", "with_cpu_cfs", "with_rootfs_readonly",
  "with_mounts", "without_mounts", "with_annotations", "with_added_capabilities",
  "with_dropped_capabilities", "with_capabilities", "with_masked_paths", "with_readonly_paths",
  "with_no_new_privileges", "with_hostname", "with_rlimit", "with_linux_namespace",
  "with_dev_shm_size", "KNOWN_CAPS", "DEFAULT_PATH_ENV", "default_spec" }

local facade
local function ctr_facade()
  if facade then return facade end
  local oci = require("ctr.oci")
  local o = {}
  for _, n in ipairs(OCI_HELPERS) do
    -- tables are copied: a policy must not change the library's own data
    o[n] = type(oci[n]) == "table" and copy(oci[n]) or oci[n]
  end
  facade = readonly({
    version = core.version,
    oci = readonly(o, "ctr.oci"),
    --- mark a table as a JSON array (an empty one stays `[]`)
    array = function(t) return core.json_array(t or {}) end,
    --- apply spec opts (ctr.oci.with_*) to spec in order: true, or nil, err
    apply = function(spec, container, ...)
      return oci.apply_opts(nil, nil, container, spec, ...)
    end,
    --- is capability `cap` in any of the spec's capability sets?
    has_cap = function(spec, cap)
      local caps = spec.process and spec.process.capabilities or {}
      for _, set in pairs(caps) do
        if type(set) == "table" then
          for _, c in ipairs(set) do if c == cap then return true end end
        end
      end
      return false
    end,
  }, "ctr")
  return facade
end

local DENIED_GLOBALS = { "io", "require", "load", "loadstring", "loadfile", "dofile", "debug",
  "package", "rawset", "rawget", "rawequal", "setmetatable", "getmetatable", "getfenv",
  "setfenv", "collectgarbage", "module", "newproxy", "jit", "bit", "xpcall", "coroutine" }
local DENIED_OS = { "execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale" }

-- A fresh environment for one policy file; `state` records refusals and violations.
local function sandbox(state)
  local function deny(name)
    return function()
      local msg = name .. " is not allowed in a policy"
      state.violation = state.violation or msg
      error(msg, 2)
    end
  end
  local function denied_table(name)
    return setmetatable({}, {
      __index = function(_, k) deny(name .. "." .. tostring(k))() end,
      __newindex = function(_, k) deny(name .. "." .. tostring(k))() end,
      __call = function() deny(name)() end,
      __metatable = false,
    })
  end
  local os_t = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime }
  for _, n in ipairs(DENIED_OS) do os_t[n] = deny("os." .. n) end
  local env = {
    string = copy(string), table = copy(table), math = copy(math), os = os_t,
    pairs = pairs, ipairs = ipairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, select = select, error = error, assert = assert, pcall = pcall,
    unpack = unpack,
    print = function(...)
      local t = {}
      for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
      io.stderr:write("policy ", state.file, ": ", table.concat(t, "\t"), "\n")
    end,
    refuse = function(reason)
      reason = tostring(reason or "refused")
      state.refused = state.refused or reason
      error({ policy_refusal = reason }, 2)
    end,
    ctr = ctr_facade(),
  }
  env.string.dump = nil
  env._G = env
  local denied = {}
  for _, n in ipairs(DENIED_GLOBALS) do denied[n] = true end
  return setmetatable(env, {
    __index = function(_, k)
      if denied[k] then
        if k == "io" or k == "debug" or k == "package" or k == "jit" or k == "coroutine" or k == "bit" then
          return denied_table(k)
        end
        return deny(k)
      end
      return nil
    end,
    __metatable = false,
  })
end

-- Run fn(...) under the instruction budget; returns pcall's results.
local function call_limited(fn, limit, ...)
  if not limit or limit <= 0 then return pcall(fn, ...) end
  local step = 100000
  local count = 0
  local ok_jit, jitlib = pcall(require, "jit")
  -- compiled traces do not run count hooks: interpret the policy's code
  if ok_jit and jitlib then jitlib.off(fn, true) end
  debug.sethook(function()
    count = count + step
    if count > limit then error("ran past its instruction budget", 2) end
  end, "", step)
  local r = { pcall(fn, ...) }
  debug.sethook()
  return unpack(r, 1, table.maxn(r))
end

local function error_text(e)
  if type(e) == "table" and e.policy_refusal then return nil end
  return tostring(e)
end

--- Load one policy file in a fresh sandbox.
-- @tparam string path the file
-- @tparam[opt] table opts `instruction_limit`
-- @return `{file=, rules={{name=, fn=}, ...}, state=}`, or nil, err (a refusal naming the file:
-- a policy that cannot be loaded fails closed)
function M.load(path, opts)
  check_type(path, "string", "path")
  opts = opts or {}
  local text, err = sys.read_file(path, M.MAX_FILE)
  if not text then return nil, M.refusal(path, "cannot read it: " .. tostring(err)), err.errno end
  if text:byte(1) == 27 then return nil, M.refusal(path, "precompiled policies are not allowed") end
  local chunk, perr = loadstring(text, "@" .. path)
  if not chunk then return nil, M.refusal(path, "error: " .. tostring(perr)) end
  local state = { file = path }
  setfenv(chunk, sandbox(state))
  local ok, ret = call_limited(chunk, opts.instruction_limit or M.INSTRUCTION_LIMIT)
  if state.violation then return nil, M.refusal(path, state.violation) end
  if state.refused then return nil, M.refusal(path, state.refused) end
  if not ok then return nil, M.refusal(path, "error: " .. tostring(error_text(ret))) end
  local rules = {}
  if type(ret) == "function" then
    rules[1] = { name = basename(path):gsub("%.lua$", ""), fn = ret }
  elseif type(ret) == "table" then
    local names = {}
    for k, v in pairs(ret) do
      if type(k) ~= "string" or type(v) ~= "function" then
        return nil, M.refusal(path, ("error: rule %s: expected a function named by a string"):format(tostring(k)))
      end
      names[#names + 1] = k
    end
    table.sort(names)
    for _, n in ipairs(names) do rules[#rules + 1] = { name = n, fn = ret[n] } end
  else
    return nil, M.refusal(path, "error: must return a function or a table of rules, returned " .. type(ret))
  end
  return { file = path, rules = rules, state = state }
end

local function deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local c = {}
  seen[v] = c
  for k, x in pairs(v) do c[deep_copy(k, seen)] = deep_copy(x, seen) end
  return setmetatable(c, getmetatable(v))
end

--- Run one loaded policy's rules on spec.
-- @return true, or nil, err (a refusal)
function M.run(pol, spec, container, flags, opts)
  opts = opts or {}
  for _, rule in ipairs(pol.rules) do
    local ok, r1, r2 = call_limited(rule.fn, opts.instruction_limit or M.INSTRUCTION_LIMIT,
      spec, container, deep_copy(flags or {}))
    local st = pol.state
    if st.violation then return nil, M.refusal(pol.file, st.violation) end
    if st.refused then return nil, M.refusal(pol.file, st.refused) end
    if not ok then return nil, M.refusal(pol.file, ("error in rule %s: %s"):format(rule.name, tostring(error_text(r1)))) end
    if r1 == false then return nil, M.refusal(pol.file, tostring(r2 or ("rule " .. rule.name))) end
    if type(spec) ~= "table" then return nil, M.refusal(pol.file, "error: the spec is no longer a table") end
    local jok, jerr = pcall(core.json_encode, spec)
    if not jok then
      return nil, M.refusal(pol.file, ("error in rule %s: the spec is not JSON: %s"):format(rule.name, tostring(jerr)))
    end
  end
  return true
end

--- Apply the site's policies to a final spec, before anything is created.
-- @param client a client (for its `policies` option) or nil
-- @tparam table spec the OCI spec, changed in place
-- @tparam table container the container record (id, image, labels, ...)
-- @tparam[opt] table flags the command's flags (policies see a copy)
-- @tparam[opt] table opts `files` (extra policy files), `dir` (instead of
-- /etc/ctrlua/policy.d), `instruction_limit`
-- @return the spec (the same table, possibly changed), or nil, err with err.msg
-- `policy FILE refused: REASON`
function M.apply(client, spec, container, flags, opts)
  check_type(spec, "table", "spec")
  container = container or {}
  check_type(container, "table", "container")
  opts = opts or {}
  local files, err = M.files(client, opts)
  if not files then return nil, err end
  for _, path in ipairs(files) do
    local pol
    pol, err = M.load(path, opts)
    if not pol then return nil, err end
    local ok
    ok, err = M.run(pol, spec, container, flags, opts)
    if not ok then return nil, err end
  end
  return spec
end

--- A NewContainerOpt (ctr.containers) that applies the policies to the container's spec; put
-- it last, after the spec is generated: `client:new_container(id, ..., policy.with_policies(flags,
-- {files = flags.policy}))`.  A refusal makes new_container fail (and remove the snapshot it
-- prepared) before the record is written.
function M.with_policies(flags, opts)
  return function(_, client, c)
    if type(c.spec) ~= "table" then return nil, errors.invalid("policies: the container has no spec yet") end
    c.labels = c.labels or {}
    local spec, err = M.apply(client, c.spec, c, flags, opts)
    if not spec then return nil, err end
    c.spec = spec
  end
end

-- ---------------------------------------------------------------- showing specs and diffs

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(ch)
    local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
    return map[ch] or ("\\u%04x"):format(ch:byte())
  end) .. '"'
end

local function is_array(t)
  if getmetatable(t) == core.array_mt then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

local function encode(v, indent, out)
  local tv = type(v)
  if v == nil or v == core.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = tostring(v)
  elseif tv == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then out[#out + 1] = ("%d"):format(v)
    else out[#out + 1] = ("%.17g"):format(v) end
  elseif tv == "string" then out[#out + 1] = json_string(v)
  elseif tv == "table" then
    local inner = indent .. "  "
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]" return end
      out[#out + 1] = "[\n"
      for i = 1, #v do
        out[#out + 1] = inner
        encode(v[i], inner, out)
        out[#out + 1] = i < #v and ",\n" or "\n"
      end
      out[#out + 1] = indent .. "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      if #keys == 0 then out[#out + 1] = "{}" return end
      table.sort(keys)
      out[#out + 1] = "{\n"
      for i, k in ipairs(keys) do
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        out[#out + 1] = inner .. json_string(k) .. ": "
        encode(x, inner, out)
        out[#out + 1] = i < #keys and ",\n" or "\n"
      end
      out[#out + 1] = indent .. "}"
    end
  else
    out[#out + 1] = json_string("<" .. tv .. ">")
  end
end

--- Pretty JSON with sorted keys (two-space indent), for reading and diffing specs.
function M.pretty_json(v)
  local out = {}
  encode(v, "", out)
  return table.concat(out) .. "\n"
end

local function lines_of(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

-- The edit script of two arrays of lines, in time and memory about linear in their length:
-- the common head and tail are matched first; what is between them goes to a longest common
-- subsequence when it is small (LCS_CELLS cells of its table), else it is cut at the lines
-- that occur once in each (patience diff: their longest increasing run, n log n) and each
-- piece is diffed again; a piece with no such line, or past MAX_DEPTH cuts, is compared line
-- by line.  A spec with 100,000 env entries is 100,000 lines: a full LCS table would be 10^10
-- cells.
local LCS_CELLS, MAX_DEPTH = 250000, 32

local function edit_script(A, B)
  local ops = {}
  local function emit(op, i, j, text) ops[#ops + 1] = { op, i, j, text } end

  local function lcs(a1, a2, b1, b2)
    local n, m = a2 - a1 + 1, b2 - b1 + 1
    local L = {}
    for i = n + 1, 1, -1 do
      local row, below = {}, L[i + 1]
      for j = m + 1, 1, -1 do
        if i > n or j > m then row[j] = 0
        elseif A[a1 + i - 1] == B[b1 + j - 1] then row[j] = below[j + 1] + 1
        else
          local x, y = below[j], row[j + 1]
          row[j] = x > y and x or y
        end
      end
      L[i] = row
    end
    local i, j = 1, 1
    while i <= n or j <= m do
      if i <= n and j <= m and A[a1 + i - 1] == B[b1 + j - 1] then
        emit(" ", a1 + i - 1, b1 + j - 1, A[a1 + i - 1])
        i, j = i + 1, j + 1
      elseif i <= n and (j > m or L[i + 1][j] >= L[i][j + 1]) then
        emit("-", a1 + i - 1, b1 + j - 1, A[a1 + i - 1])
        i = i + 1
      else
        emit("+", a1 + i - 1, b1 + j - 1, B[b1 + j - 1])
        j = j + 1
      end
    end
  end

  local function line_by_line(a1, a2, b1, b2)
    local i, j = a1, b1
    while i <= a2 or j <= b2 do
      if i <= a2 and j <= b2 and A[i] == B[j] then
        emit(" ", i, j, A[i])
        i, j = i + 1, j + 1
      else
        -- a run of lines that differ at the same offsets: its old lines, then its new ones
        local i0, j0 = i, j
        repeat
          if i <= a2 then i = i + 1 end
          if j <= b2 then j = j + 1 end
        until (i > a2 and j > b2) or (i <= a2 and j <= b2 and A[i] == B[j])
        for x = i0, i - 1 do emit("-", x, j0, A[x]) end
        for y = j0, j - 1 do emit("+", i, y, B[y]) end
      end
    end
  end

  -- the lines that occur exactly once in A[a1..a2] and once in B[b1..b2], paired, in their
  -- longest run increasing on both sides
  local function anchors(a1, a2, b1, b2)
    local ca, cb, pos = {}, {}, {}
    for i = a1, a2 do ca[A[i]] = (ca[A[i]] or 0) + 1; pos[A[i]] = i end
    for j = b1, b2 do cb[B[j]] = (cb[B[j]] or 0) + 1 end
    local pairs_ = {}
    for j = b1, b2 do
      local l = B[j]
      if ca[l] == 1 and cb[l] == 1 then pairs_[#pairs_ + 1] = { pos[l], j } end
    end
    -- pairs_ is in B order: the longest increasing subsequence of its A positions
    local tails, prev = {}, {}
    for k, pr in ipairs(pairs_) do
      local lo, hi = 1, #tails
      while lo <= hi do
        local mid = math.floor((lo + hi) / 2)
        if pairs_[tails[mid]][1] < pr[1] then lo = mid + 1 else hi = mid - 1 end
      end
      tails[lo] = k
      prev[k] = lo > 1 and tails[lo - 1] or nil
    end
    local back, k = {}, tails[#tails]
    while k do
      back[#back + 1] = pairs_[k]
      k = prev[k]
    end
    local run = {}
    for x = #back, 1, -1 do run[#run + 1] = back[x] end
    return run
  end

  local function range(a1, a2, b1, b2, depth)
    while a1 <= a2 and b1 <= b2 and A[a1] == B[b1] do
      emit(" ", a1, b1, A[a1])
      a1, b1 = a1 + 1, b1 + 1
    end
    local tail = 0
    while a2 - tail >= a1 and b2 - tail >= b1 and A[a2 - tail] == B[b2 - tail] do tail = tail + 1 end
    local e2, f2 = a2 - tail, b2 - tail
    if a1 > e2 or b1 > f2 then
      for i = a1, e2 do emit("-", i, b1, A[i]) end
      for j = b1, f2 do emit("+", e2 + 1, j, B[j]) end
    elseif (e2 - a1 + 2) * (f2 - b1 + 2) <= LCS_CELLS then
      lcs(a1, e2, b1, f2)
    else
      local run = depth < MAX_DEPTH and anchors(a1, e2, b1, f2) or {}
      if #run == 0 then
        line_by_line(a1, e2, b1, f2)
      else
        local i, j = a1, b1
        for _, pr in ipairs(run) do
          range(i, pr[1] - 1, j, pr[2] - 1, depth + 1)
          emit(" ", pr[1], pr[2], A[pr[1]])
          i, j = pr[1] + 1, pr[2] + 1
        end
        range(i, e2, j, f2, depth + 1)
      end
    end
    for t = tail - 1, 0, -1 do emit(" ", a2 - t, b2 - t, A[a2 - t]) end
  end

  range(1, #A, 1, #B, 0)
  return ops
end

--- A unified diff (3 lines of context) of two texts; "" when they are equal.
-- @tparam string a old text
-- @tparam string b new text
-- @tparam[opt] string a_name label of the old text ("before")
-- @tparam[opt] string b_name label of the new text ("after")
function M.diff(a, b, a_name, b_name)
  local ops = edit_script(lines_of(a), lines_of(b))
  local out = {}
  local k = 1
  local CONTEXT = 3
  while k <= #ops do
    if ops[k][1] == " " then
      k = k + 1
    else
      -- a hunk: from CONTEXT lines before this change to CONTEXT lines after the last change
      -- that is within 2*CONTEXT of the previous one
      local first = math.max(1, k - CONTEXT)
      local last = k
      local q = k
      while q <= #ops do
        if ops[q][1] ~= " " then last = q end
        if q - last > 2 * CONTEXT then break end
        q = q + 1
      end
      local stop = math.min(#ops, last + CONTEXT)
      local a0, b0, ac, bc = ops[first][2], ops[first][3], 0, 0
      local body = {}
      for x = first, stop do
        local o = ops[x]
        if o[1] ~= "+" then ac = ac + 1 end
        if o[1] ~= "-" then bc = bc + 1 end
        body[#body + 1] = o[1] .. o[4]
      end
      if #out == 0 then
        out[#out + 1] = "--- " .. (a_name or "before")
        out[#out + 1] = "+++ " .. (b_name or "after")
      end
      out[#out + 1] = ("@@ -%d,%d +%d,%d @@"):format(ac > 0 and a0 or a0 - 1, ac, bc > 0 and b0 or b0 - 1, bc)
      for _, l in ipairs(body) do out[#out + 1] = l end
      k = stop + 1
    end
  end
  if #out == 0 then return "" end
  return table.concat(out, "\n") .. "\n"
end

return M
