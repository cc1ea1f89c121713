#include "luahost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua/lcore.h"

#ifndef CTR_FUZZ_SRCDIR
#error "CTR_FUZZ_SRCDIR: the source tree (lua/ and fuzz/ are read from it)"
#endif

/* libFuzzer reads every byte of this section as one more edge counter. */
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_lines[1 << 16];
static uintptr_t prev_line;

static lua_State *L;
static int driver_ref = LUA_NOREF;

static void line_hook(lua_State *Ls, lua_Debug *ar)
{
    if (!lua_getinfo(Ls, "S", ar))
        return;
    /* a chunk's source string is interned once and lives as long as the chunk: its address
     * names the file */
    uintptr_t here = ((uintptr_t)ar->source * 0x9e3779b1u) ^ ((uintptr_t)ar->currentline * 0x85ebca6bu);
    lua_lines[(here ^ prev_line) & (sizeof lua_lines - 1)]++;
    prev_line = here >> 1;
}

/* fuzz_coverage(on): a driver's own work that is not the code under test (a check run on
 * an amplified input, say) runs without the line hook, at the interpreter's speed. */
static int fuzz_coverage(lua_State *Ls)
{
    if (lua_toboolean(Ls, 1))
        lua_sethook(Ls, line_hook, LUA_MASKLINE, 0);
    else
        lua_sethook(Ls, NULL, 0, 0);
    return 0;
}

static int traceback(lua_State *Ls)
{
    const char *msg = lua_tostring(Ls, 1);
    if (msg == NULL) { /* an error value that is not a string: an errors.new table, say */
        lua_getglobal(Ls, "tostring");
        lua_pushvalue(Ls, 1);
        lua_call(Ls, 1, 1);
        msg = lua_tostring(Ls, -1);
    }
    luaL_traceback(Ls, Ls, msg ? msg : "(error object)", 1);
    return 1;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, lua_tostring(L, -1));
    exit(1);
}

void ctr_fuzz_lua_init(const char *driver)
{
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz: luaL_newstate failed\n");
        exit(1);
    }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_ctr_core);
    lua_setfield(L, -2, "ctr.core");
    lua_pop(L, 1);
    const char *src = getenv("CTRLUA_FUZZ_SRCDIR") ? getenv("CTRLUA_FUZZ_SRCDIR") : CTR_FUZZ_SRCDIR;
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/fuzz/?.lua", src, src, src);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath"); /* the one ctr.core is the linked one */
    lua_pop(L, 1);
    /* the interpreter only: the line hook sees every line, and runs are repeatable */
    if (luaL_dostring(L, "local ok, jit = pcall(require, 'jit') if ok then jit.off() end") != 0)
        die("jit.off");
    char path[4096];
    snprintf(path, sizeof path, "%s/fuzz/%s.lua", src, driver);
    if (luaL_loadfile(L, path) != 0 || lua_pcall(L, 0, 1, 0) != 0)
        die(path);
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz: %s does not return a function\n", path);
        exit(1);
    }
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_register(L, "fuzz_coverage", fuzz_coverage);
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

void ctr_fuzz_lua_run(const uint8_t *data, size_t size)
{
    lua_settop(L, 0);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    lua_pushlstring(L, (const char *)data, size);
    prev_line = 0;
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
    if (lua_pcall(L, 1, 0, 1) != 0) {
        fprintf(stderr, "fuzz: a Lua error escaped the code under test:\n%s\n",
                lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
}
