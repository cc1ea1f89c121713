/* ctr.core's seccomp: checking, exporting and trying out a profile (see lua/lcore.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>

#include "base/error.h"
#include "lua/lcore.h"
#include "runtime/seccomp.h"

/* ===================================================================== seccomp (runtime/seccomp.c) */

/* Parse a profile (an OCI linux.seccomp object as JSON text) and build its filter. */
static int prepare_from_string(lua_State *L, int idx, struct ctr_seccomp **ctx,
                               struct ctr_err *e)
{
    const char *json = luaL_checkstring(L, idx);
    cJSON *j = cJSON_Parse(json);
    if (j == NULL)
        return ctr_fail(e, 0, "seccomp profile: invalid JSON");
    int rc = ctr_seccomp_prepare(j, ctx, e);
    cJSON_Delete(j);
    return rc;
}

/* seccomp_check(json) -> true | nil, msg, errno */
static int l_seccomp_check(lua_State *L)
{
    struct ctr_err e;
    if (ctr_seccomp_check(luaL_checkstring(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* seccomp_syscall_known(name) -> boolean */
static int l_seccomp_syscall_known(lua_State *L)
{
    lua_pushboolean(L, ctr_seccomp_syscall_known(luaL_checkstring(L, 1)));
    return 1;
}

/* seccomp_native_arch() -> "SCMP_ARCH_X86_64" | nil */
static int l_seccomp_native_arch(lua_State *L)
{
    const char *a = ctr_seccomp_native_arch();
    if (a == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, a);
    return 1;
}

/* seccomp_export_pfc(json) -> text | nil, msg, errno (libseccomp's pseudo filter code) */
static int l_seccomp_export_pfc(lua_State *L)
{
    struct ctr_err e;
    struct ctr_seccomp *ctx;
    if (prepare_from_string(L, 1, &ctx, &e) < 0)
        return ctr_lua_fail(L, &e);
    char *text = NULL;
    int rc = ctr_seccomp_export_pfc(ctx, &text, &e);
    ctr_seccomp_release(ctx);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, text);
    free(text);
    return 1;
}

/* seccomp_stub_len(json) -> n | nil, msg, errno: the instructions of the ENOSYS stub in front
 * of libseccomp's program (0: the profile gets none; runtime/seccomp.h) */
static int l_seccomp_stub_len(lua_State *L)
{
    struct ctr_err e;
    struct ctr_seccomp *ctx;
    if (prepare_from_string(L, 1, &ctx, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, (lua_Integer)ctr_seccomp_stub_len(ctx));
    ctr_seccomp_release(ctx);
    return 1;
}

/* seccomp_run(json, argv[, cap]) -> code, output | nil, msg, errno
 * Runs argv (argv[1] an absolute path) under the filter with no_new_privs; code is the exit
 * status, or 128 + the signal that killed it; output is stdout and stderr, at most cap bytes
 * (default 64 KiB).  A test harness: it proves the filter the kernel runs. */
static int l_seccomp_run(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Number cap = luaL_optnumber(L, 3, 65536);
    if (cap < 1 || cap > (16 << 20))
        return luaL_argerror(L, 3, "cap: expected 1..16 MiB");
    size_t n = lua_objlen(L, 2);
    if (n == 0)
        return luaL_argerror(L, 2, "argv: expected a non-empty array");
    const char **argv = lua_newuserdata(L, (n + 1) * sizeof *argv);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "argv[%d]: expected string, got %s", (int)i + 1,
                              luaL_typename(L, -1));
        argv[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* still referenced by the argv table */
    }
    argv[n] = NULL;
    struct ctr_err e;
    struct ctr_seccomp *ctx;
    if (prepare_from_string(L, 1, &ctx, &e) < 0)
        return ctr_lua_fail(L, &e);
    int status = 0;
    char *out = NULL;
    int rc = ctr_seccomp_run(ctx, (char *const *)argv, (size_t)cap, &status, &out, &e);
    ctr_seccomp_release(ctx);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    lua_pushstring(L, out);
    free(out);
    return 2;
}

static const luaL_Reg seccomp_funcs[] = {
    {"seccomp_check", l_seccomp_check},
    {"seccomp_syscall_known", l_seccomp_syscall_known},
    {"seccomp_native_arch", l_seccomp_native_arch},
    {"seccomp_export_pfc", l_seccomp_export_pfc},
    {"seccomp_run", l_seccomp_run},
    {"seccomp_stub_len", l_seccomp_stub_len},
    {NULL, NULL},
};

void ctr_lua_register_seccomp(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, seccomp_funcs);
}
