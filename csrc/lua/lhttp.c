/* The Lua binding of the transfer layer: HTTP sessions (net/http.c), layer applies on threads of
 * their own (store/layer_jobs.c), credential helpers and terminal secrets (net/credentials.c).
 *
 *   local s = core.http_session{dump = false, trace = false}
 *   local id = s:start{method = "GET", url = ..., headers = {"Accept: ..."},
 *                      ingest = {content = ROOT.."/content", ref = ..., digest = ..., size = n}}
 *   for _, id in ipairs(s:wait(100)) do local res = s:take(id) ... end
 *   local done, total, state = s:progress(id)
 *
 *   local job = core.layer_apply_start(dir, blob_or_ingest, {whiteouts=, diff_id=, follow=})
 *   job:progress(); job:done(); job:source_complete(size); job:wait() -> {diff_id=, size=}
 *
 * As everywhere in ctr.core: results or `nil, message, errno`; a wrong argument raises.
 * Nothing here calls into Lua from another thread: Lua polls.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "store/layer_jobs.h"
#include "net/credentials.h"
#include "net/http.h"
#include "lua/lcore.h"
#include "base/cleanup.h"

#define HTTP_MT "ctr.http_session"
#define JOB_MT "ctr.apply_job"

struct lsession {
    struct ctr_http *h;
};

static struct lsession *check_session(lua_State *L)
{
    struct lsession *s = luaL_checkudata(L, 1, HTTP_MT);
    if (s->h == NULL)
        luaL_error(L, "http session: already closed");
    return s;
}

static int l_http_session(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    struct ctr_http_opts o = {
        .dump = ctr_lua_optfield_bool(L, 1, "dump", 0),
        .trace = ctr_lua_optfield_bool(L, 1, "trace", 0),
    };
    struct lsession *s = lua_newuserdata(L, sizeof *s);
    s->h = NULL;
    luaL_getmetatable(L, HTTP_MT);
    lua_setmetatable(L, -2);
    struct ctr_err e;
    if (ctr_http_new(&o, &s->h, &e) < 0)
        return ctr_lua_fail(L, &e);
    return 1;
}

static lua_Number opt_count(lua_State *L, int idx, const char *field, lua_Number def)
{
    lua_Number n = ctr_lua_optfield_number(L, idx, field, def);
    if (n < -1 || !ctr_is_whole(n) || n > 9007199254740992.0)
        luaL_error(L, "option %s: expected a whole number", field);
    return n;
}

static int l_http_start(lua_State *L)
{
    struct lsession *s = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_http_req r = { 0 };
    r.method = ctr_lua_optfield_string(L, 2, "method", "GET");
    r.url = ctr_lua_optfield_string(L, 2, "url", NULL);
    if (r.url == NULL)
        return luaL_error(L, "http start: url: expected string");
    lua_getfield(L, 2, "headers");
    size_t nh = 0;
    const char **hdrs = NULL;
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        nh = lua_objlen(L, -1);
        hdrs = lua_newuserdata(L, (nh + 1) * sizeof *hdrs); /* freed with the stack */
        for (size_t i = 0; i < nh; i++) {
            lua_rawgeti(L, -2, (int)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "http start: headers[%d]: expected string", (int)i + 1);
            hdrs[i] = lua_tostring(L, -1);
            lua_pop(L, 1); /* kept alive by the headers table */
        }
    }
    r.headers = hdrs;
    r.nheaders = nh;
    lua_getfield(L, 2, "body");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "http start: body: expected string");
        r.body = lua_tolstring(L, -1, &r.body_len);
    }
    r.body_file = ctr_lua_optfield_string(L, 2, "body_file", NULL);
    r.body_offset = (int64_t)opt_count(L, 2, "body_offset", 0);
    r.body_length = (int64_t)opt_count(L, 2, "body_length", 0);
    r.max_body = (size_t)opt_count(L, 2, "max_body", 0);
    r.ca_file = ctr_lua_optfield_string(L, 2, "ca", NULL);
    r.cert_file = ctr_lua_optfield_string(L, 2, "cert", NULL);
    r.key_file = ctr_lua_optfield_string(L, 2, "key", NULL);
    r.insecure = ctr_lua_optfield_bool(L, 2, "insecure", 0);
    r.connect_timeout_ms = (long)opt_count(L, 2, "connect_timeout_ms", 0);
    r.stall_timeout_s = (long)opt_count(L, 2, "stall_timeout_s", 0);
    r.max_attempts = (int)opt_count(L, 2, "max_attempts", 0);
    r.backoff_ms = (long)opt_count(L, 2, "backoff_ms", 0);
    r.no_redirects = ctr_lua_optfield_bool(L, 2, "no_redirects", 0);
    lua_getfield(L, 2, "ingest");
    r.size = -1;
    if (!lua_isnil(L, -1)) {
        int t = lua_gettop(L);
        luaL_checktype(L, t, LUA_TTABLE);
        r.ingest_content = ctr_lua_optfield_string(L, t, "content", NULL);
        r.ingest_ref = ctr_lua_optfield_string(L, t, "ref", NULL);
        r.digest = ctr_lua_optfield_string(L, t, "digest", NULL);
        r.size = (int64_t)opt_count(L, t, "size", -1);
        if (r.ingest_content == NULL || r.ingest_ref == NULL)
            return luaL_error(L, "http start: ingest: content and ref are required");
    }
    int id;
    struct ctr_err e;
    if (ctr_http_start(s->h, &r, &id, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, id);
    return 1;
}

static int l_http_wait(lua_State *L)
{
    struct lsession *s = check_session(L);
    lua_Number t = luaL_optnumber(L, 2, 0);
    if (t < 0 || t > INT_MAX)
        return luaL_error(L, "http wait: timeout: expected milliseconds");
    int ids[256];
    int n = ctr_http_wait(s->h, (int)t, ids, (int)ARRAY_SIZE(ids));
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_http_progress(lua_State *L)
{
    struct lsession *s = check_session(L);
    int id = (int)luaL_checkinteger(L, 2);
    uint64_t done;
    int64_t total;
    int state;
    if (ctr_http_progress(s->h, id, &done, &total, &state) < 0)
        return ctr_lua_errno(L, ENOENT, "http transfer %d: no such transfer", id);
    static const char *names[] = { "queued", "running", "retrying", "done" };
    lua_pushnumber(L, (lua_Number)done);
    if (total >= 0)
        lua_pushnumber(L, (lua_Number)total);
    else
        lua_pushnil(L);
    lua_pushstring(L, names[state]);
    return 3;
}

static int l_http_take(lua_State *L)
{
    struct lsession *s = check_session(L);
    int id = (int)luaL_checkinteger(L, 2);
    struct ctr_http_result res;
    struct ctr_err e;
    if (ctr_http_take(s->h, id, &res, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, res.status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, res.headers ? res.headers : "", res.headers_len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, res.body ? res.body : "", res.body_len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, res.url ? res.url : "");
    lua_setfield(L, -2, "url");
    lua_pushinteger(L, res.attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushinteger(L, res.redirects);
    lua_setfield(L, -2, "redirects");
    lua_pushnumber(L, (lua_Number)res.resumed);
    lua_setfield(L, -2, "resumed");
    if (res.digest[0]) {
        lua_pushstring(L, res.digest);
        lua_setfield(L, -2, "digest");
        lua_pushnumber(L, (lua_Number)res.size);
        lua_setfield(L, -2, "size");
    }
    ctr_http_result_free(&res);
    return 1;
}

static int l_http_cancel(lua_State *L)
{
    struct lsession *s = check_session(L);
    lua_pushboolean(L, ctr_http_cancel(s->h, (int)luaL_checkinteger(L, 2)) == 0);
    return 1;
}

static int l_http_ingest_path(lua_State *L)
{
    struct lsession *s = check_session(L);
    const char *p = ctr_http_ingest_path(s->h, (int)luaL_checkinteger(L, 2));
    if (p == NULL)
        return ctr_lua_errno(L, ENOENT, "http transfer: not a download in progress");
    lua_pushstring(L, p);
    return 1;
}

static int l_http_close(lua_State *L)
{
    struct lsession *s = luaL_checkudata(L, 1, HTTP_MT);
    ctr_http_free(s->h);
    s->h = NULL;
    return 0;
}

static int l_redact_url(lua_State *L)
{
    char out[4096];
    ctr_http_redact_url(luaL_checkstring(L, 1), out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

/* ===================================================================== apply jobs */

struct ljob {
    struct ctr_apply_job *j;
};

static struct ljob *check_job(lua_State *L)
{
    struct ljob *j = luaL_checkudata(L, 1, JOB_MT);
    if (j->j == NULL)
        luaL_error(L, "apply job: already finished");
    return j;
}

/* layer_apply_start(dir, path, {whiteouts=, diff_id=, follow=, userns=}) -> job */
static int l_layer_apply_start(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    struct ctr_layer_apply_opts o = { 0 };
    const char *wh = ctr_lua_optfield_string(L, 3, "whiteouts", "native");
    if (strcmp(wh, "overlay") == 0)
        o.overlay_whiteouts = 1;
    else if (strcmp(wh, "native") != 0)
        return luaL_error(L, "option whiteouts: expected \"overlay\" or \"native\"");
    o.diff_id = ctr_lua_optfield_string(L, 3, "diff_id", NULL);
    o.userns = ctr_lua_optfield_bool(L, 3, "userns", 0);
    int follow = ctr_lua_optfield_bool(L, 3, "follow", 0);
    struct ljob *j = lua_newuserdata(L, sizeof *j);
    j->j = NULL;
    luaL_getmetatable(L, JOB_MT);
    lua_setmetatable(L, -2);
    struct ctr_err e;
    if (ctr_apply_job_start(dir, path, follow, &o, &j->j, &e) < 0)
        return ctr_lua_fail(L, &e);
    return 1;
}

static int l_job_progress(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)ctr_apply_job_progress(check_job(L)->j));
    return 1;
}

static int l_job_done(lua_State *L)
{
    lua_pushboolean(L, ctr_apply_job_done(check_job(L)->j));
    return 1;
}

static int l_job_source_complete(lua_State *L)
{
    struct ljob *j = check_job(L);
    lua_Number n = luaL_checknumber(L, 2);
    if (n < 0 || !ctr_is_whole(n))
        return luaL_error(L, "source_complete: size: expected a byte count");
    ctr_apply_job_source_complete(j->j, (int64_t)n);
    return 0;
}

static int l_job_source_failed(lua_State *L)
{
    ctr_apply_job_source_failed(check_job(L)->j);
    return 0;
}

static int l_job_wait(lua_State *L)
{
    struct ljob *j = check_job(L);
    struct ctr_layer_apply_result res;
    struct ctr_err e;
    int r = ctr_apply_job_wait(j->j, &res, &e);
    ctr_apply_job_free(j->j);
    j->j = NULL;
    if (r < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, res.diff_id);
    lua_setfield(L, -2, "diff_id");
    lua_pushnumber(L, (lua_Number)res.size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)res.entries);
    lua_setfield(L, -2, "entries");
    return 1;
}

static int l_job_gc(lua_State *L)
{
    struct ljob *j = luaL_checkudata(L, 1, JOB_MT);
    ctr_apply_job_free(j->j);
    j->j = NULL;
    return 0;
}

/* ===================================================================== helpers, secrets */

/* run_capture(argv, input, {cap=, timeout_ms=}) -> stdout, status */
static int l_run_capture(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t in_len = 0;
    const char *input = luaL_optlstring(L, 2, "", &in_len);
    size_t cap = (size_t)opt_count(L, 3, "cap", 1024 * 1024);
    int timeout = (int)opt_count(L, 3, "timeout_ms", 30000);
    size_t n = lua_objlen(L, 1);
    if (n == 0 || n > 64)
        return luaL_error(L, "run_capture: argv: expected 1 to 64 strings");
    const char *argv[65];
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "run_capture: argv[%d]: expected string", (int)i + 1);
        argv[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    char *out = NULL;
    size_t out_len = 0;
    int status = 0;
    struct ctr_err e;
    if (ctr_run_capture(argv, input, in_len, cap, timeout, &out, &out_len, &status, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, out, out_len);
    free(out);
    lua_pushinteger(L, status);
    return 2;
}

static int l_read_secret(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "Password: ");
    char buf[4096];
    struct ctr_err e;
    if (ctr_read_secret(prompt, buf, sizeof buf, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, buf);
    memset(buf, 0, sizeof buf);
    return 1;
}

static void set_methods(lua_State *L, const char *mt, const luaL_Reg *m, lua_CFunction gc)
{
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    for (; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

void ctr_lua_register_http(lua_State *L, int table)
{
    static const luaL_Reg sm[] = {
        {"start", l_http_start}, {"wait", l_http_wait}, {"progress", l_http_progress},
        {"take", l_http_take}, {"cancel", l_http_cancel}, {"ingest_path", l_http_ingest_path},
        {"close", l_http_close}, {NULL, NULL},
    };
    static const luaL_Reg jm[] = {
        {"progress", l_job_progress}, {"done", l_job_done},
        {"source_complete", l_job_source_complete}, {"source_failed", l_job_source_failed},
        {"wait", l_job_wait}, {NULL, NULL},
    };
    set_methods(L, HTTP_MT, sm, l_http_close);
    set_methods(L, JOB_MT, jm, l_job_gc);
    static const luaL_Reg funcs[] = {
        {"http_session", l_http_session}, {"http_redact_url", l_redact_url},
        {"layer_apply_start", l_layer_apply_start}, {"run_capture", l_run_capture},
        {"read_secret", l_read_secret}, {NULL, NULL},
    };
    table = table < 0 ? lua_gettop(L) + table + 1 : table;
    for (const luaL_Reg *r = funcs; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, table, r->name);
    }
}
