/* The Lua binding of base/spawn.c: run a program with no shell, and wait for it.
 *
 *   local r, msg, errno = core.spawn{
 *     argv = {"runc", "--root", root, "kill", id, "15"}, -- argv[1]: a path, or a name in PATH
 *     env = {PATH = "/usr/bin:/bin", CNI_COMMAND = "ADD"}, -- the whole environment; nil: ours
 *     cwd = "/",                        -- nil: ours
 *     stdin = "bytes" | fd | nil,       -- the bytes through a pipe, a descriptor, or /dev/null
 *     stdout = nil | "pipe" | "null" | fd, stderr = (the same), -- nil and "pipe": captured
 *     timeout_ms = 5000,                -- nil: no limit; past it SIGKILL, and ETIMEDOUT
 *     cap = 16 * 1024 * 1024,           -- most bytes captured of each stream (EFBIG past it)
 *     hide_mounts = {"/sys/fs/cgroup/unified"}, -- a private mount namespace without these
 *     foreground = true,                -- SIGINT and SIGQUIT ignored here meanwhile, as system(3)
 *   }
 *   -> {code = N (exit status, or 128+S), signal = S or nil, core_dumped = true or nil,
 *       stdout = "...", stderr = "..." (the captured ones)}
 *   or nil, message, errno: the program not found (ENOENT) or not executable (execve's errno),
 *   the timeout (ETIMEDOUT), too much output (EFBIG); the message names the program.
 *
 * As everywhere in ctr.core: results or `nil, message, errno`; a wrong argument raises.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/spawn.h"
#include "lua/lcore.h"

#define MAX_ARGS 65536

/* A NULL-terminated array of the strings of the sequence at idx (anchored by it), in a
 * userdata left on the stack. */
static const char **string_array(lua_State *L, int idx, const char *what, int min)
{
    size_t n = lua_objlen(L, idx);
    if (n < (size_t)min || n > MAX_ARGS)
        luaL_error(L, "spawn: %s: expected %d to %d strings", what, min, MAX_ARGS);
    const char **a = lua_newuserdata(L, (n + 1) * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "spawn: %s[%d]: expected string, got %s", what, (int)i + 1,
                       luaL_typename(L, -1));
        a[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    a[n] = NULL;
    return a;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "NAME=value" strings of the table at idx, sorted, NULL-terminated; the strings are kept in
 * a table and the array in a userdata, both left on the stack. */
static const char **env_array(lua_State *L, int idx)
{
    lua_newtable(L);
    int keep = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "spawn: env: expected NAME = value strings, got a %s key",
                       luaL_typename(L, -2));
        const char *k = lua_tostring(L, -2);
        if (k[0] == '\0' || strchr(k, '=') != NULL)
            luaL_error(L, "spawn: env: bad variable name \"%s\"", k);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "spawn: env.%s: expected string, got %s", k, luaL_typename(L, -1));
        lua_pushfstring(L, "%s=%s", k, lua_tostring(L, -1));
        lua_rawseti(L, keep, (int)++n);
        lua_pop(L, 1);
    }
    const char **a = lua_newuserdata(L, (n + 1) * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, keep, (int)i + 1);
        a[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    a[n] = NULL;
    qsort(a, n, sizeof *a, cmp_str);
    return a;
}

static int fd_value(lua_State *L, int idx, const char *what)
{
    lua_Number v = lua_tonumber(L, idx);
    if (v < 0 || v > 1048576 || !ctr_is_whole(v))
        luaL_error(L, "spawn: %s: expected a descriptor number", what);
    return (int)v;
}

static void in_stream(lua_State *L, int opts, struct ctr_spawn_stream *st)
{
    lua_getfield(L, opts, "stdin");
    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        st->kind = CTR_SPAWN_NULL;
        break;
    case LUA_TSTRING:
        st->kind = CTR_SPAWN_PIPE;
        st->data = lua_tolstring(L, -1, &st->len); /* anchored by the options table */
        break;
    case LUA_TNUMBER:
        st->kind = CTR_SPAWN_FD;
        st->fd = fd_value(L, -1, "stdin");
        break;
    default:
        luaL_error(L, "spawn: stdin: expected bytes, a descriptor or nil, got %s",
                   luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

static void out_stream(lua_State *L, int opts, const char *name, struct ctr_spawn_stream *st)
{
    lua_getfield(L, opts, name);
    int t = lua_type(L, -1);
    if (t == LUA_TNIL) {
        st->kind = CTR_SPAWN_PIPE;
    } else if (t == LUA_TNUMBER) {
        st->kind = CTR_SPAWN_FD;
        st->fd = fd_value(L, -1, name);
    } else if (t == LUA_TSTRING && strcmp(lua_tostring(L, -1), "pipe") == 0) {
        st->kind = CTR_SPAWN_PIPE;
    } else if (t == LUA_TSTRING && strcmp(lua_tostring(L, -1), "null") == 0) {
        st->kind = CTR_SPAWN_NULL;
    } else {
        luaL_error(L, "spawn: %s: expected \"pipe\", \"null\" or a descriptor", name);
    }
    lua_pop(L, 1);
}

static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct ctr_spawn_opts o;
    memset(&o, 0, sizeof o);
    lua_getfield(L, 1, "argv");
    if (!lua_istable(L, -1))
        return luaL_error(L, "spawn: argv: expected a table of strings, got %s",
                          luaL_typename(L, -1));
    o.argv = string_array(L, lua_gettop(L), "argv", 1);
    lua_getfield(L, 1, "env");
    if (lua_istable(L, -1))
        o.envp = env_array(L, lua_gettop(L));
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "spawn: env: expected a table or nil, got %s", luaL_typename(L, -1));
    o.cwd = ctr_lua_optfield_string(L, 1, "cwd", NULL);
    in_stream(L, 1, &o.io[0]);
    out_stream(L, 1, "stdout", &o.io[1]);
    out_stream(L, 1, "stderr", &o.io[2]);
    lua_Number t = ctr_lua_optfield_number(L, 1, "timeout_ms", -1);
    if (t != -1 && (t < 0 || t > 2147483647.0 || !ctr_is_whole(t)))
        return luaL_error(L, "spawn: timeout_ms: expected a whole number of milliseconds");
    o.timeout_ms = (int)t;
    lua_Number cap = ctr_lua_optfield_number(L, 1, "cap", 16 * 1024 * 1024);
    if (cap < 0 || cap > 1024.0 * 1024 * 1024 || !ctr_is_whole(cap))
        return luaL_error(L, "spawn: cap: expected a count of bytes up to 1 GiB");
    o.cap = (size_t)cap;
    lua_getfield(L, 1, "hide_mounts");
    if (lua_istable(L, -1))
        o.hide_mounts = string_array(L, lua_gettop(L), "hide_mounts", 0);
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "spawn: hide_mounts: expected a table of paths, got %s",
                          luaL_typename(L, -1));
    o.foreground = ctr_lua_optfield_bool(L, 1, "foreground", 0);

    struct ctr_spawn_result r;
    struct ctr_err e;
    if (ctr_spawn_run(&o, &r, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, r.code);
    lua_setfield(L, -2, "code");
    if (r.signal) {
        lua_pushinteger(L, r.signal);
        lua_setfield(L, -2, "signal");
    }
    if (r.core_dumped) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "core_dumped");
    }
    static const char *const names[2] = {"stdout", "stderr"};
    for (int k = 0; k < 2; k++)
        if (r.out[k]) {
            lua_pushlstring(L, r.out[k], r.out_len[k]);
            lua_setfield(L, -2, names[k]);
        }
    ctr_spawn_result_free(&r);
    return 1;
}

void ctr_lua_register_spawn(lua_State *L, int table)
{
    table = table < 0 ? lua_gettop(L) + table + 1 : table;
    lua_pushcfunction(L, l_spawn);
    lua_setfield(L, table, "spawn");
}
