/* What every binding file shares (see lua/lcore.h): turning errors into Lua values, reading
 * options tables, and JSON to and from Lua values. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>

#include "lua/lcore.h"

/* LuaJIT (Lua 5.1) has no lua_absindex */
static int lua_absindex_(lua_State *L, int idx)
{
    return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
}

void ctr_lua_setfuncs(lua_State *L, int table, const luaL_Reg *regs)
{
    table = lua_absindex_(L, table);
    for (const luaL_Reg *r = regs; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, table, r->name);
    }
}

int ctr_lua_fail(lua_State *L, const struct ctr_err *e)
{
    lua_pushnil(L);
    lua_pushstring(L, e->msg);
    lua_pushinteger(L, e->code);
    if (!e->program)
        return 3;
    /* the container's program failed: a fifth value, after the slot of create's death */
    lua_pushnil(L);
    lua_pushboolean(L, 1);
    return 5;
}

int ctr_lua_errno(lua_State *L, int code, const char *fmt, ...)
{
    struct ctr_err e;
    char buf[CTR_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctr_fail(&e, code, "%s", buf);
    return ctr_lua_fail(L, &e);
}

const char *ctr_lua_optfield_string(lua_State *L, int idx, const char *field, const char *def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, field);
    const char *s = def;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "option %s: expected string, got %s", field, luaL_typename(L, -1));
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the string stays alive: it is referenced by the options table */
    return s;
}

lua_Number ctr_lua_optfield_number(lua_State *L, int idx, const char *field, lua_Number def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, field);
    lua_Number n = def;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "option %s: expected number, got %s", field, luaL_typename(L, -1));
        n = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return n;
}

int ctr_lua_optfield_bool(lua_State *L, int idx, const char *field, int def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, field);
    int b = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

int ctr_lua_optfield_fd(lua_State *L, int idx, const char *field)
{
    lua_Number n = ctr_lua_optfield_number(L, idx, field, -1);
    if (n < -1 || n > INT_MAX || !ctr_is_whole(n))
        return luaL_error(L, "option %s: expected an fd number", field);
    return (int)n;
}

/* ===================================================================== JSON
 * cJSON <-> Lua.  Decoded arrays carry core.array_mt so that an empty array stays an array on
 * the way back; JSON null is core.null (a light userdata).  Integral numbers below 2^63 are
 * written as integers ("1000000000000000000", never "1e+18": Go's encoding/json, and so runc,
 * refuses exponents for int64 fields), and 2^63 as INT64_MAX.  Object keys are written sorted, so output is stable.
 * Lua numbers are doubles: integers are exact up to 2^53. */

#define JSON_MAX_DEPTH 200
static char array_mt_key;

void ctr_lua_push_array_mt(lua_State *L)
{
    lua_pushlightuserdata(L, &array_mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

static void json_to_lua(lua_State *L, const cJSON *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        luaL_error(L, "json: nesting deeper than %d", JSON_MAX_DEPTH);
    luaL_checkstack(L, 4, "json");
    if (cJSON_IsNull(j)) {
        lua_pushlightuserdata(L, NULL);
    } else if (cJSON_IsFalse(j)) {
        lua_pushboolean(L, 0);
    } else if (cJSON_IsTrue(j)) {
        lua_pushboolean(L, 1);
    } else if (cJSON_IsNumber(j)) {
        lua_pushnumber(L, j->valuedouble);
    } else if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsArray(j)) {
        lua_createtable(L, cJSON_GetArraySize(j), 0);
        int i = 1;
        for (const cJSON *c = j->child; c; c = c->next) {
            json_to_lua(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        ctr_lua_push_array_mt(L);
        lua_setmetatable(L, -2);
    } else if (cJSON_IsObject(j)) {
        lua_createtable(L, 0, cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            lua_pushstring(L, c->string);
            json_to_lua(L, c, depth + 1);
            lua_rawset(L, -3);
        }
    } else {
        luaL_error(L, "json: invalid value");
    }
}

static int json_depth(const cJSON *j, int depth)
{
    int max = depth;
    for (const cJSON *c = j->child; c && max <= JSON_MAX_DEPTH; c = c->next) {
        int d = json_depth(c, depth + 1);
        if (d > max)
            max = d;
    }
    return max;
}

/* Where a string of the text escapes a NUL (\u0000), or -1.  Only the string escapes count:
 * an escaped backslash before "u0000" is text. */
static long nul_escape(const char *s, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\' && i + 1 < len) {
            if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0)
                return (long)i;
            i++;
        }
    }
    return -1;
}

static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *end = NULL;
    /* A document is its whole text.  cJSON reads a NUL byte between tokens as white space and
     * ends a string at one (raw, or decoded from \u0000), and Lua strings are pushed up to
     * their first NUL: either way the document would say less than its text (a digest
     * "sha256:<hex>\u0000..." would read as valid).  So a NUL in the text is a syntax error. */
    const char *nul = memchr(s, '\0', len);
    long esc = nul ? (long)(nul - s) : nul_escape(s, len);
    if (esc >= 0)
        return ctr_lua_errno(L, EINVAL, "json: syntax error at byte %ld (a NUL character)", esc);
    /* Lua strings carry a NUL after len bytes: let cJSON see it, so trailing garbage is a
     * syntax error */
    cJSON *j = cJSON_ParseWithLengthOpts(s, len + 1, &end, 1);
    if (j == NULL) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= s && at <= s + len) ? (long)(at - s) : -1;
        return ctr_lua_errno(L, EINVAL, "json: syntax error at byte %ld", off);
    }
    /* json_to_lua raises past JSON_MAX_DEPTH; measure first so that j is never leaked */
    if (json_depth(j, 0) > JSON_MAX_DEPTH) {
        cJSON_Delete(j);
        return ctr_lua_errno(L, EINVAL, "json: nesting deeper than %d", JSON_MAX_DEPTH);
    }
    json_to_lua(L, j, 0);
    cJSON_Delete(j);
    return 1;
}

struct enc {
    lua_State *L;
    char err[256];
};

static cJSON *lua_to_json(struct enc *e, int idx, int depth);

static int is_array_table(lua_State *L, int idx, size_t *n)
{
    /* an array: array_mt, or a non-empty table whose keys are exactly 1..n */
    if (lua_getmetatable(L, idx)) {
        ctr_lua_push_array_mt(L);
        int same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (same) {
            *n = lua_objlen(L, idx);
            return 1;
        }
    }
    size_t count = 0;
    size_t max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -1);
            if (k >= 1 && ctr_is_whole(k)) {
                if ((size_t)k > max)
                    max = (size_t)k;
                count++;
                continue;
            }
        }
        lua_pop(L, 1);
        return 0;
    }
    if (count == 0 || count != max)
        return 0;
    *n = count;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *number_to_json(struct enc *e, lua_Number d)
{
    if (isnan(d) || isinf(d)) {
        snprintf(e->err, sizeof e->err, "json: cannot encode %s", isnan(d) ? "NaN" : "infinity");
        return NULL;
    }
    if (ctr_is_whole(d) && fabs(d) < 1.8446744073709552e19) {
        char buf[32];
        /* 2^63 only arises as INT64_MAX (the spec's "unlimited") rounded to a double: write
         * INT64_MAX back, which Go's int64 fields accept. */
        if (d == 9.2233720368547758e18)
            snprintf(buf, sizeof buf, "9223372036854775807");
        else
            snprintf(buf, sizeof buf, "%.0f", d);
        return cJSON_CreateRaw(buf);
    }
    return cJSON_CreateNumber(d);
}

static cJSON *lua_to_json(struct enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    if (depth > JSON_MAX_DEPTH) {
        snprintf(e->err, sizeof e->err, "json: nesting deeper than %d (a cycle?)", JSON_MAX_DEPTH);
        return NULL;
    }
    luaL_checkstack(L, 6, "json");
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return number_to_json(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len) {
            snprintf(e->err, sizeof e->err, "json: string with a NUL byte");
            return NULL;
        }
        return cJSON_CreateString(s);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return cJSON_CreateNull();
        break;
    case LUA_TTABLE: {
        size_t n = 0;
        if (is_array_table(L, idx, &n)) {
            cJSON *a = cJSON_CreateArray();
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, (int)i);
                cJSON *c = lua_to_json(e, -1, depth + 1);
                lua_pop(L, 1);
                if (c == NULL) {
                    cJSON_Delete(a);
                    return NULL;
                }
                cJSON_AddItemToArray(a, c);
            }
            return a;
        }
        size_t cap = 16, count = 0;
        const char **keys = malloc(cap * sizeof *keys);
        lua_pushnil(L);
        while (keys && lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(e->err, sizeof e->err, "json: object key of type %s (mixed table?)",
                         luaL_typename(L, -1));
                lua_pop(L, 1);
                free(keys);
                return NULL;
            }
            if (count == cap) {
                cap *= 2;
                const char **nk = realloc(keys, cap * sizeof *keys);
                if (nk == NULL) {
                    free(keys);
                    keys = NULL;
                    lua_pop(L, 1);
                    break;
                }
                keys = nk;
            }
            keys[count++] = lua_tostring(L, -1); /* kept alive by the table */
        }
        if (keys == NULL) {
            snprintf(e->err, sizeof e->err, "json: out of memory");
            return NULL;
        }
        qsort(keys, count, sizeof *keys, cmp_str);
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < count; i++) {
            lua_getfield(L, idx, keys[i]);
            cJSON *c = lua_to_json(e, -1, depth + 1);
            lua_pop(L, 1);
            if (c == NULL) {
                free(keys);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_AddItemToObject(o, keys[i], c);
        }
        free(keys);
        return o;
    }
    default:
        break;
    }
    snprintf(e->err, sizeof e->err, "json: cannot encode a %s", luaL_typename(L, idx));
    return NULL;
}

int ctr_lua_json_encode(lua_State *L)
{
    int pretty = lua_toboolean(L, 2);
    struct enc e = {.L = L, .err = ""};
    lua_settop(L, 2);
    cJSON *j = lua_to_json(&e, 1, 0);
    if (j == NULL)
        return luaL_error(L, "%s", e.err);
    char *s = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL)
        return luaL_error(L, "json: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int json_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    ctr_lua_push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

void ctr_lua_register_json(lua_State *L, int table)
{
    static const luaL_Reg funcs[] = {
        {"json_decode", json_decode},
        {"json_encode", ctr_lua_json_encode},
        {"json_array", json_array},
        {NULL, NULL},
    };
    table = lua_absindex_(L, table);
    lua_pushlightuserdata(L, &array_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__name");
    lua_rawset(L, LUA_REGISTRYINDEX);
    ctr_lua_setfuncs(L, table, funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, table, "null");
    ctr_lua_push_array_mt(L);
    lua_setfield(L, table, "array_mt");
}
