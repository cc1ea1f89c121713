/* The LuaJIT host of the Lua harnesses (manifest, passwd, hosts, auth): ctr.core linked in,
 * lua/ctr/ on package.path, and the driver fuzz/NAME.lua, a chunk that returns function(data).
 *
 * What counts as a finding: the code under test parses untrusted bytes, and its contract is
 * `nil, err` for any input; so every Lua error that escapes the driver's call (a raw
 * "attempt to index a nil value" as much as an error() of the driver's own checks) aborts the
 * run as a crash, with its traceback.  Crashes below Lua (ASan, UBSan) are findings as in any
 * harness.
 *
 * Coverage of Lua code: the interpreter itself is not instrumented, so each line the
 * interpreter runs (a line hook; the JIT is off) is counted in libFuzzer's extra counters,
 * keyed by the source and the line and the line before it.  A driver may turn that off for
 * work of its own with the global fuzz_coverage(false) (true turns it on again; each run
 * starts with it on). */
#ifndef CTR_FUZZ_LUAHOST_H
#define CTR_FUZZ_LUAHOST_H

#include <stddef.h>
#include <stdint.h>

/* Load fuzz/<driver>.lua once (at LLVMFuzzerInitialize); exits on failure. */
void ctr_fuzz_lua_init(const char *driver);
/* Call the driver's function with the input; aborts on any Lua error. */
void ctr_fuzz_lua_run(const uint8_t *data, size_t size);

#endif
