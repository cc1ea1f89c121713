/* ctr.core: the only Lua binding of the C core.
 *
 * Every function here takes strings, numbers and tables of those, calls one plain-C primitive,
 * and returns its result or `nil, message, errno` (ctr_lua_fail is the one place where a
 * struct ctr_err becomes Lua values).  Misuse (a wrong argument type) raises, naming the
 * parameter.  Nothing here calls back into Lua, and nothing Lua runs between fork and execve.
 *
 * The file is divided into sections, one per subsystem; each section ends with its luaL_Reg
 * array, and luaopen_ctr_core() registers them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/evp.h>

#include "base/error.h"
#include "base/files.h"
#include "lua/lcore.h"
#include "base/cleanup.h"
#include "base/lazylib.h"

/* ===================================================================== common helpers */

int ctr_lua_fail(lua_State *L, const struct ctr_err *e)
{
    lua_pushnil(L);
    lua_pushstring(L, e->msg);
    lua_pushinteger(L, e->code);
    return 3;
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

/* ===================================================================== json
 * cJSON <-> Lua.  Decoded arrays carry core.array_mt so that an empty array stays an array on
 * the way back; JSON null is core.null (a light userdata).  Integral numbers below 2^63 are
 * written as integers ("1000000000000000000", never "1e+18": Go's encoding/json, and so runc,
 * refuses exponents for int64 fields), and 2^63 as INT64_MAX.  Object keys are written sorted, so output is stable.
 * Lua numbers are doubles: integers are exact up to 2^53. */

#define JSON_MAX_DEPTH 200
static char array_mt_key;

static void push_array_mt(lua_State *L)
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
        push_array_mt(L);
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
        push_array_mt(L);
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
            if (k >= 1 && floor(k) == k) {
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
    if (floor(d) == d && fabs(d) < 1.8446744073709552e19) {
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

static int json_encode(lua_State *L)
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
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

static const luaL_Reg json_funcs[] = {
    {"json_decode", json_decode},
    {"json_encode", json_encode},
    {"json_array", json_array},
    {NULL, NULL},
};

/* ===================================================================== digest */

static int sha256_hex(const void *data, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
        return -1;
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[72];
    if (sha256_hex(s, len, hex) < 0)
        return ctr_lua_errno(L, EIO, "sha256: OpenSSL failed");
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg digest_funcs[] = {
    {"sha256", l_sha256},
    {NULL, NULL},
};

/* ===================================================================== files and processes
 * The small set of filesystem and process primitives the Lua library needs, so that Lua never
 * makes a raw syscall of its own. */

static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t cap = (size_t)luaL_optnumber(L, 2, 16 << 20);
    struct ctr_err e;
    char *buf;
    size_t len;
    if (ctr_read_file(path, cap, &buf, &len, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, len);
    free(buf);
    return 1;
}

static int l_write_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int mode = (int)ctr_lua_optfield_number(L, 3, "mode", 0644);
    int noreplace = ctr_lua_optfield_bool(L, 3, "noreplace", 0);
    int sync = ctr_lua_optfield_bool(L, 3, "sync", 1);
    struct ctr_err e;
    if (ctr_write_file_atomic(path, data, len, mode,
                              (noreplace ? CTR_WRITE_NOREPLACE : 0) | (sync ? 0 : CTR_WRITE_NOSYNC),
                              &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_mkdir_p(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int mode = (int)luaL_optnumber(L, 2, 0755);
    struct ctr_err e;
    if (ctr_mkdir_p(path, mode, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int mode = (int)luaL_optnumber(L, 2, 0755);
    if (mkdir(path, mode) < 0)
        return ctr_lua_errno(L, errno, "mkdir `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_remove_tree(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct ctr_err e;
    if (ctr_remove_tree(path, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_unlink(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (unlink(path) < 0)
        return ctr_lua_errno(L, errno, "unlink `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rmdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (rmdir(path) < 0)
        return ctr_lua_errno(L, errno, "rmdir `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* rename(from, to [, {noreplace=, sync=}]): noreplace fails with EEXIST when `to` exists
 * (renameat2 RENAME_NOREPLACE, directories too); sync (the default) fsyncs the parent after */
static int l_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    int noreplace = ctr_lua_optfield_bool(L, 3, "noreplace", 0);
    int sync = ctr_lua_optfield_bool(L, 3, "sync", 1);
    int r = noreplace ? (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to,
                                     1 /* RENAME_NOREPLACE */)
                      : rename(from, to);
    if (r < 0)
        return ctr_lua_errno(L, errno, "rename `%s' to `%s'", from, to);
    struct ctr_err e;
    if (sync && ctr_fsync_parent(to, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_symlink(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (symlink(target, path) < 0)
        return ctr_lua_errno(L, errno, "symlink `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_readlink(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return ctr_lua_errno(L, errno, "readlink `%s'", path);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* realpath(path) -> the absolute path with every symlink resolved, or nil, err, errno */
static int l_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    cleanup_free char *real = realpath(path, NULL);
    if (real == NULL)
        return ctr_lua_errno(L, errno, "realpath `%s'", path);
    lua_pushstring(L, real);
    return 1;
}

static const char *mode_type(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "link";
    if (S_ISCHR(m)) return "char";
    if (S_ISBLK(m)) return "block";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    return "unknown";
}

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int follow = lua_toboolean(L, 2);
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
        return ctr_lua_errno(L, errno, "stat `%s'", path);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, mode_type(st.st_mode)); lua_setfield(L, -2, "type");
    lua_pushnumber(L, st.st_mode & 07777); lua_setfield(L, -2, "mode");
    lua_pushnumber(L, (lua_Number)st.st_size); lua_setfield(L, -2, "size");
    lua_pushnumber(L, st.st_uid); lua_setfield(L, -2, "uid");
    lua_pushnumber(L, st.st_gid); lua_setfield(L, -2, "gid");
    lua_pushnumber(L, (lua_Number)st.st_ino); lua_setfield(L, -2, "ino");
    lua_pushnumber(L, (lua_Number)st.st_dev); lua_setfield(L, -2, "dev");
    lua_pushnumber(L, (lua_Number)st.st_nlink); lua_setfield(L, -2, "nlink");
    lua_pushnumber(L, (lua_Number)st.st_blocks * 512); lua_setfield(L, -2, "disk");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, (lua_Number)major(st.st_rdev)); lua_setfield(L, -2, "rdev_major");
    lua_pushnumber(L, (lua_Number)minor(st.st_rdev)); lua_setfield(L, -2, "rdev_minor");
    return 1;
}

static int l_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (d == NULL)
        return ctr_lua_errno(L, errno, "opendir `%s'", path);
    lua_newtable(L);
    int i = 1;
    struct dirent *de;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        lua_pushstring(L, de->d_name);
        lua_rawseti(L, -2, i++);
    }
    int e = errno;
    closedir(d);
    if (e)
        return ctr_lua_errno(L, e, "readdir `%s'", path);
    return 1;
}

/* lock(path, exclusive, nonblock) -> fd: an flock on path (created 0600), held until close(fd).
 * Store transactions and per-container operations serialise on these. */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int excl = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    int nonblock = lua_toboolean(L, 3);
    int fd = RETRY(open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd < 0)
        return ctr_lua_errno(L, errno, "open lock `%s'", path);
    if (RETRY(flock(fd, (excl ? LOCK_EX : LOCK_SH) | (nonblock ? LOCK_NB : 0))) < 0) {
        int e = errno;
        close(fd);
        return ctr_lua_errno(L, e, "lock `%s'", path);
    }
    lua_pushinteger(L, fd);
    return 1;
}

static int l_close(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    if (close(fd) < 0)
        return ctr_lua_errno(L, errno, "close fd %d", fd);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

static int l_monotime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

/* RFC 3339 with nanoseconds in UTC, as containerd prints times. */
static int l_rfc3339(lua_State *L)
{
    lua_Number t = luaL_optnumber(L, 1, -1);
    struct timespec ts;
    if (t < 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
    } else {
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (lua_Number)ts.tv_sec) * 1e9);
    }
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
    lua_pushstring(L, buf);
    return 1;
}

static int l_kill(lua_State *L)
{
    int pid = (int)luaL_checkinteger(L, 1);
    int sig = (int)luaL_optinteger(L, 2, SIGTERM);
    if (kill(pid, sig) < 0)
        return ctr_lua_errno(L, errno, "kill pid %d with signal %d", pid, sig);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_strerror(lua_State *L)
{
    lua_pushstring(L, strerror((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_getenv(lua_State *L)
{
    const char *v = getenv(luaL_checkstring(L, 1));
    if (v == NULL)
        return 0;
    lua_pushstring(L, v);
    return 1;
}

static const struct { const char *name; int num; } errno_names[] = {
    {"EPERM", EPERM}, {"ENOENT", ENOENT}, {"ESRCH", ESRCH}, {"EINTR", EINTR}, {"EIO", EIO},
    {"E2BIG", E2BIG}, {"ENOEXEC", ENOEXEC}, {"EBADF", EBADF}, {"ECHILD", ECHILD},
    {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EFAULT", EFAULT},
    {"EBUSY", EBUSY}, {"EEXIST", EEXIST}, {"EXDEV", EXDEV}, {"ENODEV", ENODEV},
    {"ENOTDIR", ENOTDIR}, {"EISDIR", EISDIR}, {"EINVAL", EINVAL}, {"ENFILE", ENFILE},
    {"EMFILE", EMFILE}, {"ENOTTY", ENOTTY}, {"EFBIG", EFBIG}, {"ENOSPC", ENOSPC},
    {"EROFS", EROFS}, {"EMLINK", EMLINK}, {"EPIPE", EPIPE}, {"ERANGE", ERANGE},
    {"ENAMETOOLONG", ENAMETOOLONG}, {"ENOSYS", ENOSYS}, {"ENOTEMPTY", ENOTEMPTY},
    {"ELOOP", ELOOP}, {"ENODATA", ENODATA}, {"EOPNOTSUPP", EOPNOTSUPP},
    {"ETIMEDOUT", ETIMEDOUT}, {"ECONNREFUSED", ECONNREFUSED}, {"EXDEV", EXDEV},
};

static int l_errno_name(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++)
        if (errno_names[i].num == n) {
            lua_pushstring(L, errno_names[i].name);
            return 1;
        }
    lua_pushfstring(L, "E%d", n);
    return 1;
}

/* read_file_in_root(root, path[, cap[, name]]): a file of an untrusted tree (an image's
 * /etc/passwd), opened with RESOLVE_IN_ROOT so that no symlink in it leads out of root;
 * `name` names root in messages (default: its path). */
static int l_read_file_in_root(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    size_t cap = (size_t)luaL_optnumber(L, 3, 1 << 20);
    const char *name = luaL_optstring(L, 4, NULL);
    struct ctr_err e;
    char *buf;
    size_t len;
    if (ctr_read_file_in_root(root, path, name, cap, &buf, &len, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, len);
    free(buf);
    return 1;
}

static int l_chmod(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int mode = (int)luaL_checknumber(L, 2);
    /* fchmodat never follows a final symlink here: it refuses (EOPNOTSUPP) rather than
     * changing the target (containerd CVE-2021-32760). */
    if (fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0 &&
        (errno != EOPNOTSUPP || chmod(path, mode) < 0))
        return ctr_lua_errno(L, errno, "chmod `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_lchown(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uid_t uid = (uid_t)luaL_checknumber(L, 2);
    gid_t gid = (gid_t)luaL_checknumber(L, 3);
    if (lchown(path, uid, gid) < 0)
        return ctr_lua_errno(L, errno, "lchown `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* uname() -> {sysname, release, machine, nodename} */
static int l_uname(lua_State *L)
{
    struct utsname u;
    if (uname(&u) < 0)
        return ctr_lua_errno(L, errno, "uname");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, u.sysname); lua_setfield(L, -2, "sysname");
    lua_pushstring(L, u.release); lua_setfield(L, -2, "release");
    lua_pushstring(L, u.machine); lua_setfield(L, -2, "machine");
    lua_pushstring(L, u.nodename); lua_setfield(L, -2, "nodename");
    return 1;
}

static int l_geteuid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

/* open(path, how[, mode]) -> fd (O_CLOEXEC); how is "r", "w" (create, truncate), "a" (create,
 * append) or "rw".  Used for a task's stdio (/dev/null, log files). */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *how = luaL_optstring(L, 2, "r");
    int mode = (int)luaL_optnumber(L, 3, 0644);
    int flags;
    if (strcmp(how, "r") == 0)
        flags = O_RDONLY;
    else if (strcmp(how, "w") == 0)
        flags = O_WRONLY | O_CREAT | O_TRUNC;
    else if (strcmp(how, "a") == 0)
        flags = O_WRONLY | O_CREAT | O_APPEND;
    else if (strcmp(how, "rw") == 0)
        flags = O_RDWR;
    else
        return luaL_argerror(L, 2, "expected \"r\", \"w\", \"a\" or \"rw\"");
    int fd = RETRY(open(path, flags | O_CLOEXEC | O_NOCTTY, mode));
    if (fd < 0)
        return ctr_lua_errno(L, errno, "open `%s'", path);
    lua_pushinteger(L, fd);
    return 1;
}

/* random_hex(n) -> 2n hex digits from getrandom(2): unique names (snapshot ids, temporary
 * keys) without loading libcrypto on the run path. */
static int l_random_hex(lua_State *L)
{
    int n = (int)luaL_optinteger(L, 1, 12);
    if (n < 1 || n > 64)
        return luaL_argerror(L, 1, "expected 1 to 64 bytes");
    unsigned char buf[64];
    ssize_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, (size_t)(n - got), 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ctr_lua_errno(L, errno, "getrandom");
        }
        got += r;
    }
    char hex[129];
    for (int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf[i]);
    lua_pushlstring(L, hex, (size_t)(2 * n));
    return 1;
}

static const luaL_Reg fs_funcs[] = {
    {"random_hex", l_random_hex},
    {"open", l_open},
    {"chmod", l_chmod},
    {"lchown", l_lchown},
    {"uname", l_uname},
    {"geteuid", l_geteuid},
    {"read_file_in_root", l_read_file_in_root},
    {"read_file", l_read_file},
    {"write_file", l_write_file},
    {"mkdir_p", l_mkdir_p},
    {"mkdir", l_mkdir},
    {"remove_tree", l_remove_tree},
    {"unlink", l_unlink},
    {"rmdir", l_rmdir},
    {"rename", l_rename},
    {"symlink", l_symlink},
    {"readlink", l_readlink},
    {"realpath", l_realpath},
    {"stat", l_stat},
    {"listdir", l_listdir},
    {"lock", l_lock},
    {"close", l_close},
    {"getpid", l_getpid},
    {"now", l_now},
    {"monotime", l_monotime},
    {"rfc3339", l_rfc3339},
    {"kill", l_kill},
    {"isatty", l_isatty},
    {"strerror", l_strerror},
    {"getenv", l_getenv},
    {"errno_name", l_errno_name},
    {NULL, NULL},
};

/* ===================================================================== SECTION content
 * owner: content store (csrc/store/content.c). Edit only between these markers.
 * `content` arguments are the content directory (ROOT/content).  Options tables:
 * {digest=, size=, ref=}: the expected digest and size (checked before commit) and the ingest
 * ref (default: derived from the digest, or unique to this process). */
#include "store/content.h"
#include "store/import.h"

struct content_opts {
    const char *digest;
    int64_t size;
    char ref[96];
    const char *ref_given;
};

static void content_get_opts(lua_State *L, int idx, struct content_opts *o)
{
    o->digest = ctr_lua_optfield_string(L, idx, "digest", NULL);
    o->size = (int64_t)ctr_lua_optfield_number(L, idx, "size", -1);
    o->ref_given = ctr_lua_optfield_string(L, idx, "ref", NULL);
    if (o->digest && strlen(o->digest) == 71 && strncmp(o->digest, "sha256:", 7) == 0) {
        snprintf(o->ref, sizeof o->ref, "sha256-%s", o->digest + 7);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(o->ref, sizeof o->ref, "tmp-%d-%lld%09ld", (int)getpid(),
                 (long long)ts.tv_sec, ts.tv_nsec);
    }
}

#define CONTENT_REF(o) ((o)->ref_given ? (o)->ref_given : (o)->ref)

/* content_check_digest(d) -> true | nil, msg, errno */
static int l_content_check_digest(lua_State *L)
{
    struct ctr_err e;
    if (ctr_digest_check(luaL_checkstring(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* content_ingest(content, src_path ("-": stdin), opts) -> digest, size */
static int l_content_ingest(lua_State *L)
{
    const char *content = luaL_checkstring(L, 1);
    const char *src = luaL_checkstring(L, 2);
    struct content_opts o;
    content_get_opts(L, 3, &o);
    struct ctr_err e;
    int fd = 0;
    if (strcmp(src, "-") != 0) {
        fd = RETRY(open(src, O_RDONLY | O_CLOEXEC));
        if (fd < 0)
            return ctr_lua_errno(L, errno, "open `%s'", src);
    }
    char digest[CTR_DIGEST_LEN];
    uint64_t size = 0;
    int r = ctr_content_ingest_fd(content, fd, CONTENT_REF(&o), o.digest, o.size, digest, &size,
                                  &e);
    if (fd > 0)
        close(fd);
    if (r < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, digest);
    lua_pushnumber(L, (lua_Number)size);
    return 2;
}

/* content_write(content, data, opts) -> digest, size */
static int l_content_write(lua_State *L)
{
    const char *content = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    struct content_opts o;
    content_get_opts(L, 3, &o);
    struct ctr_err e;
    char digest[CTR_DIGEST_LEN];
    if (ctr_content_write(content, data, len, CONTENT_REF(&o), o.digest, o.size, digest, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, digest);
    lua_pushnumber(L, (lua_Number)len);
    return 2;
}

/* content_verify(content, digest) -> size */
static int l_content_verify(lua_State *L)
{
    struct ctr_err e;
    uint64_t size = 0;
    if (ctr_content_verify(luaL_checkstring(L, 1), luaL_checkstring(L, 2), &size, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushnumber(L, (lua_Number)size);
    return 1;
}

/* content_sweep(content, max_age_seconds) -> number of stale ingest files removed */
static int l_content_sweep(lua_State *L)
{
    struct ctr_err e;
    int removed = 0;
    if (ctr_content_sweep(luaL_checkstring(L, 1), luaL_optnumber(L, 2, 3600), &removed, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, removed);
    return 1;
}

/* read_head(path, n) -> the first up to n (<= 64) bytes of a file */
static int l_read_head(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n = (size_t)luaL_optinteger(L, 2, 16);
    char buf[64];
    if (n > sizeof buf)
        n = sizeof buf;
    size_t got = 0;
    struct ctr_err e;
    if (ctr_read_head(path, buf, n, &got, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, got);
    return 1;
}

/* archive_open(path | "-") -> reader: r:next() -> name, type, size, link (nil at the end);
 * r:ingest(content, opts) -> digest, size; r:read(cap) -> bytes; r:close().  Closed by __gc. */
#define IMPORT_MT "ctr.import_reader"

static struct ctr_import **import_check(lua_State *L)
{
    struct ctr_import **p = luaL_checkudata(L, 1, IMPORT_MT);
    if (*p == NULL)
        luaL_error(L, "archive reader: already closed");
    return p;
}

static void import_register(lua_State *L);

static int l_archive_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    import_register(L);
    struct ctr_import **p = lua_newuserdata(L, sizeof *p);
    *p = NULL;
    luaL_getmetatable(L, IMPORT_MT);
    lua_setmetatable(L, -2);
    struct ctr_err e;
    if (ctr_import_open(path, p, &e) < 0)
        return ctr_lua_fail(L, &e);
    return 1;
}

static int l_import_next(lua_State *L)
{
    struct ctr_import **p = import_check(L);
    struct ctr_import_entry ent;
    struct ctr_err e;
    int r = ctr_import_next(*p, &ent, &e);
    if (r < 0)
        return ctr_lua_fail(L, &e);
    if (r == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, ent.name);
    lua_pushstring(L, ent.type);
    lua_pushnumber(L, (lua_Number)ent.size);
    if (ent.link)
        lua_pushstring(L, ent.link);
    else
        lua_pushnil(L);
    return 4;
}

static int l_import_ingest(lua_State *L)
{
    struct ctr_import **p = import_check(L);
    const char *content = luaL_checkstring(L, 2);
    struct content_opts o;
    content_get_opts(L, 3, &o);
    struct ctr_err e;
    char digest[CTR_DIGEST_LEN];
    uint64_t size = 0;
    if (ctr_import_ingest(*p, content, CONTENT_REF(&o), o.digest, o.size, digest, &size, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, digest);
    lua_pushnumber(L, (lua_Number)size);
    return 2;
}

static int l_import_read(lua_State *L)
{
    struct ctr_import **p = import_check(L);
    size_t cap = (size_t)luaL_optnumber(L, 2, 4 << 20);
    struct ctr_err e;
    char *buf;
    size_t len;
    if (ctr_import_read(*p, cap, &buf, &len, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, len);
    free(buf);
    return 1;
}

static int l_import_close(lua_State *L)
{
    struct ctr_import **p = luaL_checkudata(L, 1, IMPORT_MT);
    ctr_import_close(*p);
    *p = NULL;
    lua_pushboolean(L, 1);
    return 1;
}

/* The reader's metatable, made on first use (luaopen_ctr_core belongs to no section). */
static void import_register(lua_State *L)
{
    if (luaL_newmetatable(L, IMPORT_MT)) {
        static const luaL_Reg m[] = {
            {"next", l_import_next}, {"ingest", l_import_ingest}, {"read", l_import_read},
            {"close", l_import_close}, {NULL, NULL},
        };
        lua_newtable(L);
        for (const luaL_Reg *r = m; r->name; r++) {
            lua_pushcfunction(L, r->func);
            lua_setfield(L, -2, r->name);
        }
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_import_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

static const luaL_Reg content_funcs[] = {
    {"content_check_digest", l_content_check_digest},
    {"content_ingest", l_content_ingest},
    {"content_write", l_content_write},
    {"content_verify", l_content_verify},
    {"content_sweep", l_content_sweep},
    {"read_head", l_read_head},
    {"archive_open", l_archive_open},
    {NULL, NULL},
};
/* ===================================================================== END content */

/* ===================================================================== SECTION archive
 * owner: layers (csrc/store/layer_apply.c). Edit only between these markers. */

#include "store/layer.h"

/* core.layer_apply(dir, blob_path, {whiteouts=, diff_id=, uid_offset=, gid_offset=, userns=})
 * -> {diff_id=, size=, entries=} | nil, msg, errno */
static int l_layer_apply(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *blob = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    struct ctr_layer_apply_opts o = { 0 };
    const char *wh = ctr_lua_optfield_string(L, 3, "whiteouts", "native");
    if (strcmp(wh, "overlay") == 0)
        o.overlay_whiteouts = 1;
    else if (strcmp(wh, "native") != 0)
        return luaL_error(L, "option whiteouts: expected \"overlay\" or \"native\", got \"%s\"", wh);
    o.diff_id = ctr_lua_optfield_string(L, 3, "diff_id", NULL);
    lua_Number uo = ctr_lua_optfield_number(L, 3, "uid_offset", 0);
    lua_Number go = ctr_lua_optfield_number(L, 3, "gid_offset", 0);
    if (uo < 0 || uo > 4294967295.0 || uo != floor(uo))
        return luaL_error(L, "option uid_offset: expected an integer in 0..2^32-1");
    if (go < 0 || go > 4294967295.0 || go != floor(go))
        return luaL_error(L, "option gid_offset: expected an integer in 0..2^32-1");
    o.uid_offset = (int64_t)uo;
    o.gid_offset = (int64_t)go;
    o.userns = ctr_lua_optfield_bool(L, 3, "userns", 0);
    struct ctr_layer_apply_result res;
    struct ctr_err e;
    if (ctr_layer_apply(dir, blob, &o, &res, &e) < 0)
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

/* core.layer_write(src_dir, out_path, {compression=, mtime=, uid=, gid=})
 * -> {digest=, diff_id=, size=, uncompressed_size=, entries=} | nil, msg, errno */
static int l_layer_write(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    const char *out = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    struct ctr_layer_write_opts o = { .uid = -1, .gid = -1 };
    const char *c = ctr_lua_optfield_string(L, 3, "compression", "none");
    if (strcmp(c, "none") == 0)
        o.compression = CTR_COMPRESS_NONE;
    else if (strcmp(c, "gzip") == 0)
        o.compression = CTR_COMPRESS_GZIP;
    else if (strcmp(c, "zstd") == 0)
        o.compression = CTR_COMPRESS_ZSTD;
    else
        return luaL_error(L, "option compression: expected \"none\", \"gzip\" or \"zstd\", got \"%s\"", c);
    lua_Number mt = ctr_lua_optfield_number(L, 3, "mtime", -1);
    if (mt >= 0) {
        o.clamp_mtime = 1;
        o.mtime = (int64_t)mt;
    }
    lua_Number uid = ctr_lua_optfield_number(L, 3, "uid", -1);
    lua_Number gid = ctr_lua_optfield_number(L, 3, "gid", -1);
    if (uid > 2147483647.0 || gid > 2147483647.0)
        return luaL_error(L, "option uid/gid: expected at most 2^31-1");
    o.uid = (int64_t)uid;
    o.gid = (int64_t)gid;
    struct ctr_layer_write_result res;
    struct ctr_err e;
    if (ctr_layer_write(src, out, &o, &res, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, res.digest);
    lua_setfield(L, -2, "digest");
    lua_pushstring(L, res.diff_id);
    lua_setfield(L, -2, "diff_id");
    lua_pushnumber(L, (lua_Number)res.size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)res.uncompressed_size);
    lua_setfield(L, -2, "uncompressed_size");
    lua_pushnumber(L, (lua_Number)res.entries);
    lua_setfield(L, -2, "entries");
    return 1;
}

static const luaL_Reg archive_funcs[] = {
    {"layer_apply", l_layer_apply},
    {"layer_write", l_layer_write},
    {NULL, NULL},
};
/* ===================================================================== END archive */

/* ===================================================================== SECTION snapshot
 * owner: snapshots and mounts (csrc/store/snapshot.c, csrc/base/mounts.c). Edit only between these markers. */

#include "store/snapshot_mount.h"
#include "store/snapshot.h"

/* mount(type, source, target, options): options an array of strings, as containerd's
 * mount.Mount.Options. */
static int l_mount(lua_State *L)
{
    const char *type = luaL_checkstring(L, 1);
    const char *source = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        int n = (int)lua_objlen(L, 4);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, 4, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "options[%d]: expected string, got %s", i,
                                  luaL_typename(L, -1));
            if (i > 1)
                luaL_addchar(&b, ',');
            luaL_addvalue(&b);
        }
    }
    luaL_pushresult(&b);
    const char *options = lua_tostring(L, -1);
    struct ctr_err e;
    if (ctr_mountutil_mount(type, source, target, options, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* unmount(target[, {detach=bool}]) */
static int l_unmount(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    int detach = ctr_lua_optfield_bool(L, 2, "detach", 0);
    struct ctr_err e;
    if (ctr_mountutil_unmount(target, detach, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* mountinfo() -> array of {id, parent_id, major, minor, root, target, fstype, source,
 * vfs_options, fs_options}, one per line of /proc/self/mountinfo, in its order. */
static int l_mountinfo(lua_State *L)
{
    struct ctr_mountinfo *m;
    size_t n;
    struct ctr_err e;
    if (ctr_mountinfo_read(&m, &n, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 10);
        lua_pushinteger(L, m[i].id); lua_setfield(L, -2, "id");
        lua_pushinteger(L, m[i].parent_id); lua_setfield(L, -2, "parent_id");
        lua_pushinteger(L, m[i].major); lua_setfield(L, -2, "major");
        lua_pushinteger(L, m[i].minor); lua_setfield(L, -2, "minor");
        lua_pushstring(L, m[i].root); lua_setfield(L, -2, "root");
        lua_pushstring(L, m[i].target); lua_setfield(L, -2, "target");
        lua_pushstring(L, m[i].fstype); lua_setfield(L, -2, "fstype");
        lua_pushstring(L, m[i].source); lua_setfield(L, -2, "source");
        lua_pushstring(L, m[i].vfs_options); lua_setfield(L, -2, "vfs_options");
        lua_pushstring(L, m[i].fs_options); lua_setfield(L, -2, "fs_options");
        lua_rawseti(L, -2, (int)i + 1);
    }
    ctr_mountinfo_free(m, n);
    return 1;
}

/* mount_top(target) -> the id of the topmost mount at exactly target (0: none) */
static int l_mount_top(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    struct ctr_err e;
    int id;
    if (ctr_mount_top(target, &id, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, id);
    return 1;
}

/* mount_unstack(target, keep) -> true: what is stacked at target above mount keep, detached */
static int l_mount_unstack(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    lua_Integer keep = luaL_checkinteger(L, 2);
    struct ctr_err e;
    if (keep < 0 || keep > INT_MAX)
        return luaL_error(L, "mount_unstack: keep must be a mount id");
    if (ctr_mount_unstack(target, (int)keep, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_copy_tree(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    const char *dst = luaL_checkstring(L, 2);
    struct ctr_err e;
    if (ctr_copy_tree(src, dst, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* usage(path) -> {size=, inodes=} */
static int l_usage(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct ctr_usage u;
    struct ctr_err e;
    if (ctr_usage(path, &u, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (lua_Number)u.size); lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)u.inodes); lua_setfield(L, -2, "inodes");
    return 1;
}

static int l_syncfs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct ctr_err e;
    if (ctr_syncfs(path, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg snapshot_funcs[] = {
    {"mount", l_mount},
    {"unmount", l_unmount},
    {"mountinfo", l_mountinfo},
    {"mount_top", l_mount_top},
    {"mount_unstack", l_mount_unstack},
    {"copy_tree", l_copy_tree},
    {"usage", l_usage},
    {"syncfs", l_syncfs},
    {NULL, NULL},
};
/* ===================================================================== END snapshot */

/* ===================================================================== SECTION runtime
 * owner: the runtime (csrc/runtime/create.c and friends). Edit only between these markers. */

#include <sys/wait.h>

#include <sys/socket.h>
#include <sys/un.h>

#include "runtime/console_socket.h"
#include "runtime/create.h"
#include "runtime/userns.h"
#include "runtime/wait.h"

static int runtime_stdio_opt(lua_State *L, int idx, const char *field)
{
    lua_Number n = ctr_lua_optfield_number(L, idx, field, -1);
    if (n < -1 || n > INT_MAX || floor(n) != n)
        return luaL_error(L, "option %s: expected an fd number", field);
    return (int)n;
}

static int runtime_push_status(lua_State *L, int status);

/* nil, message, errno, and for an init that died on its own during create a fourth value:
 * {exit_code = 128+N or its status, signal = N, oom = bool} */
static int runtime_create_fail(lua_State *L, const struct ctr_err *e,
                               const struct ctr_init_death *d)
{
    int n = ctr_lua_fail(L, e);
    if (!d->died)
        return n;
    runtime_push_status(L, d->status);
    lua_pushboolean(L, d->oom);
    lua_setfield(L, -2, "oom");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "exit_code");
    lua_remove(L, -2);
    return n + 1;
}

/* create(bundle_dir, opts) -> pid: the init, set up and blocked on opts.exec_fifo; or nil,
 * message, errno[, death] (see runtime_create_fail). */
static int l_create(lua_State *L)
{
    const char *bundle = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_create_opts o = {
        .exec_fifo = ctr_lua_optfield_string(L, 2, "exec_fifo", NULL),
        .pid_file = ctr_lua_optfield_string(L, 2, "pid_file", NULL),
        .no_pivot = ctr_lua_optfield_bool(L, 2, "no_pivot", 0),
        .stdio = {runtime_stdio_opt(L, 2, "stdin"), runtime_stdio_opt(L, 2, "stdout"),
                  runtime_stdio_opt(L, 2, "stderr")},
        .console_socket = ctr_lua_optfield_string(L, 2, "console_socket", NULL),
        .id = ctr_lua_optfield_string(L, 2, "id", NULL),
        .die_with_parent = ctr_lua_optfield_bool(L, 2, "die_with_parent", 0),
    };
    lua_Number pf = ctr_lua_optfield_number(L, 2, "preserve_fds", 0);
    if (pf < 0 || pf > 65536 || floor(pf) != pf)
        return luaL_error(L, "option preserve_fds: expected a count of fds");
    o.preserve_fds = (int)pf;
    struct ctr_err e;
    struct ctr_init_death death = {0, 0, 0};
    o.death = &death;
    pid_t pid = ctr_create(bundle, &o, &e);
    if (pid < 0)
        return runtime_create_fail(L, &e, &death);
    lua_pushinteger(L, pid);
    return 1;
}

/* start(exec_fifo[, pid]) -> true: pid is the init's, to learn at once that it has exited */
static int l_start(lua_State *L)
{
    const char *fifo = luaL_checkstring(L, 1);
    lua_Integer pid = luaL_optinteger(L, 2, 0);
    if (pid < 0 || pid > INT_MAX)
        return luaL_error(L, "pid: expected a process id");
    struct ctr_err e;
    if (ctr_start(fifo, (pid_t)pid, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* push exit code, {status=, signal=, core_dumped=} */
static int runtime_push_status(lua_State *L, int status)
{
    lua_pushinteger(L, ctr_exit_code(status));
    lua_createtable(L, 0, 3);
    if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        lua_setfield(L, -2, "status");
    }
    if (WIFSIGNALED(status)) {
        lua_pushinteger(L, WTERMSIG(status));
        lua_setfield(L, -2, "signal");
    }
    lua_pushboolean(L, WIFSIGNALED(status) && WCOREDUMP(status));
    lua_setfield(L, -2, "core_dumped");
    return 2;
}

/* one entry of wait's `copy`: {src=fd, dst=fd, input=bool} */
static void runtime_copy_opt(lua_State *L, int idx, int i, struct ctr_copy *c)
{
    lua_rawgeti(L, idx, i);
    if (!lua_istable(L, -1))
        luaL_error(L, "option copy[%d]: expected table", i);
    int t = lua_gettop(L);
    lua_getfield(L, t, "src");
    lua_getfield(L, t, "dst");
    if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
        luaL_error(L, "option copy[%d]: src and dst: expected fd numbers", i);
    lua_Integer src = lua_tointeger(L, -2), dst = lua_tointeger(L, -1);
    if (src < 0 || src > INT_MAX || dst < 0 || dst > INT_MAX)
        luaL_error(L, "option copy[%d]: src and dst: expected fd numbers", i);
    lua_pop(L, 2);
    *c = (struct ctr_copy){.src = (int)src, .dst = (int)dst,
                           .input = ctr_lua_optfield_bool(L, t, "input", 0), .own = 1};
    lua_pop(L, 1);
}

/* wait(pid, {forward=, copy={{src=, dst=, input=}, ...}}) -> exit code, info: with copy,
 * the streams are copied until pid exits (an input: src the caller's, dst a pipe end of the
 * process's; an output: src a pipe end, dst the caller's), and those pipe ends are the wait's
 * from the call on: it closes them, whatever it returns */
static int l_wait(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_wait_opts o = {
        .signals = ctr_lua_optfield_bool(L, 2, "forward", 0) ? CTR_WAIT_SIGNALS_FORWARD
                                                             : CTR_WAIT_SIGNALS_DEFAULT,
        .child = 1,
        .raw_fd = -1,
    };
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "copy");
        if (!lua_isnil(L, -1)) {
            luaL_checktype(L, -1, LUA_TTABLE);
            size_t n = lua_objlen(L, -1);
            if (n > CTR_WAIT_MAX_COPY)
                return luaL_error(L, "option copy: at most %d streams", CTR_WAIT_MAX_COPY);
            for (size_t i = 0; i < n; i++)
                runtime_copy_opt(L, lua_gettop(L), (int)i + 1, &o.copy[i]);
            o.ncopy = n;
        }
        lua_pop(L, 1);
    }
    int status;
    struct ctr_err e;
    if (ctr_wait_io(pid, &o, &status, &e) < 0)
        return ctr_lua_fail(L, &e);
    return runtime_push_status(L, status);
}

/* waitpid(pid, {nohang=}) -> nil while running, or exit code, info */
static int l_waitpid(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int nohang = ctr_lua_optfield_bool(L, 2, "nohang", 0);
    int status;
    struct ctr_err e;
    if (nohang) {
        int r = ctr_wait_nohang(pid, &status, &e);
        if (r < 0)
            return ctr_lua_fail(L, &e);
        if (r == 0) {
            lua_pushnil(L);
            return 1;
        }
    } else if (ctr_wait(pid, 0, &status, &e) < 0) {
        return ctr_lua_fail(L, &e);
    }
    return runtime_push_status(L, status);
}

/* run_hooks(bundle, kind, state_json) -> true, or nil, msg, errno of the first failure
 * (every hook of the kind runs: poststart and poststop failures are the caller's to log) */
static int l_run_hooks(lua_State *L)
{
    const char *bundle = luaL_checkstring(L, 1), *kind = luaL_checkstring(L, 2);
    const char *state = luaL_checkstring(L, 3);
    struct ctr_err e;
    if (ctr_run_hooks(bundle, kind, state, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* unix_listen(path) -> fd: a listening unix socket (CLOEXEC) at path, e.g. a console socket */
static int l_unix_listen(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return ctr_lua_errno(L, ENAMETOOLONG, "unix socket `%s'", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctr_lua_errno(L, errno, "socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
        int e = errno;
        close(fd);
        return ctr_lua_errno(L, e, "listen on `%s'", path);
    }
    lua_pushinteger(L, fd);
    return 1;
}

/* recv_fd(sock) -> fd, name: one fd sent with SCM_RIGHTS (a console master); a listening
 * socket accepts one connection first */
static int l_recv_fd(lua_State *L)
{
    int sock = (int)luaL_checkinteger(L, 1);
    int acc;
    socklen_t al = sizeof acc;
    cleanup_close int conn = -1;
    if (getsockopt(sock, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc) {
        conn = RETRY(accept4(sock, NULL, NULL, SOCK_CLOEXEC));
        if (conn < 0)
            return ctr_lua_errno(L, errno, "accept on the console socket");
        sock = conn;
    }
    char name[256];
    struct ctr_err e;
    int fd = ctr_recv_fd(sock, name, sizeof name, &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fd);
    lua_pushstring(L, name);
    return 2;
}

/* shift_tree(dir, uid_offset, gid_offset) -> true: every owner under dir moved up by the
 * offsets (the remapped snapshot of a user namespace) */
static int l_shift_tree(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    lua_Number u = luaL_checknumber(L, 2), g = luaL_checknumber(L, 3);
    if (u < 0 || g < 0 || u > UINT32_MAX || g > UINT32_MAX || floor(u) != u || floor(g) != g)
        return luaL_error(L, "shift_tree: offsets must be 32-bit unsigned integers");
    struct ctr_err e;
    if (ctr_userns_shift_tree(dir, (uint32_t)u, (uint32_t)g, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg runtime_funcs[] = {
    {"create", l_create},
    {"run_hooks", l_run_hooks},
    {"unix_listen", l_unix_listen},
    {"recv_fd", l_recv_fd},
    {"shift_tree", l_shift_tree},
    {"start", l_start},
    {"wait", l_wait},
    {"waitpid", l_waitpid},
    {NULL, NULL},
};
/* ===================================================================== END runtime */

/* ===================================================================== SECTION cgroup
 * owner: cgroups (csrc/cgroup*.c). Edit only between these markers.
 * Every function takes an optional last `opts` table: mountinfo= (a mountinfo file),
 * proc_cgroup= (a /proc/self/cgroup file), root= (a prefix for every mount point): the specs'
 * fake trees.  The layout is read again on each call (a few microseconds). */

#include "cgroups/cgroup.h"
#include "runtime/config.h"

struct cg_opts {
    const char *mountinfo, *proc_cgroup, *root;
};

static struct cg_opts cg_read_opts(lua_State *L, int idx)
{
    if (!lua_isnoneornil(L, idx))
        luaL_checktype(L, idx, LUA_TTABLE);
    struct cg_opts o = {
        .mountinfo = ctr_lua_optfield_string(L, idx, "mountinfo", NULL),
        .proc_cgroup = ctr_lua_optfield_string(L, idx, "proc_cgroup", NULL),
        .root = ctr_lua_optfield_string(L, idx, "root", NULL),
    };
    return o;
}

static int cg_detect(const struct cg_opts *o, struct ctr_cgroup_layout *l, struct ctr_err *e)
{
    if (ctr_cgroup_layout_detect(l, o->mountinfo, o->proc_cgroup, o->root, e) < 0) {
        ctr_cgroup_layout_free(l);
        return -1;
    }
    return 0;
}

static void cg_push_controllers(lua_State *L, unsigned mask, int v2)
{
    lua_newtable(L);
    int n = 0;
    for (int c = 0; c < CTR_CG_COUNT; c++) {
        const char *name = v2 ? ctr_cgroup_controller_v2_name(c) : ctr_cgroup_controller_name(c);
        if ((mask & (1u << c)) && name) {
            lua_pushstring(L, name);
            lua_rawseti(L, -2, ++n);
        }
    }
}

/* cgroup_layout([opts]) -> {mode=, v1={{mountpoint=, own=, name=, controllers={}}...},
 *   unified={mountpoint=, own=, controllers={}} or nil, controllers={memory=MOUNTPOINT...}} */
static int l_cgroup_layout(lua_State *L)
{
    struct cg_opts o = cg_read_opts(L, 1);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    static const char *const modes[] = {"none", "v1", "v2", "hybrid"};
    lua_newtable(L);
    lua_pushstring(L, modes[l.mode]);
    lua_setfield(L, -2, "mode");
    lua_newtable(L);
    for (size_t i = 0; i < l.n_v1; i++) {
        lua_newtable(L);
        lua_pushstring(L, l.v1[i].mountpoint);
        lua_setfield(L, -2, "mountpoint");
        lua_pushstring(L, l.v1[i].own);
        lua_setfield(L, -2, "own");
        if (l.v1[i].name) {
            lua_pushstring(L, l.v1[i].name);
            lua_setfield(L, -2, "name");
        }
        cg_push_controllers(L, l.v1[i].controllers, 0);
        lua_setfield(L, -2, "controllers");
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "v1");
    if (l.has_v2) {
        lua_newtable(L);
        lua_pushstring(L, l.v2.mountpoint);
        lua_setfield(L, -2, "mountpoint");
        lua_pushstring(L, l.v2.own);
        lua_setfield(L, -2, "own");
        cg_push_controllers(L, l.v2.controllers, 1);
        lua_setfield(L, -2, "controllers");
        lua_setfield(L, -2, "unified");
    }
    /* where each usable controller lives */
    lua_newtable(L);
    for (int c = 0; c < CTR_CG_COUNT; c++) {
        if (l.v1_of[c] >= 0) {
            lua_pushstring(L, l.v1[l.v1_of[c]].mountpoint);
            lua_setfield(L, -2, ctr_cgroup_controller_name(c));
        } else if (l.has_v2 && (l.v2.controllers & (1u << c))) {
            lua_pushstring(L, l.v2.mountpoint);
            lua_setfield(L, -2, ctr_cgroup_controller_name(c));
        }
    }
    lua_setfield(L, -2, "controllers");
    ctr_cgroup_layout_free(&l);
    return 1;
}

/* cgroup_dirs(path[, opts]) -> {cpu=DIR, memory=DIR, ["name=systemd"]=DIR, unified=DIR} */
static int l_cgroup_dirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_newtable(L);
    for (int i = -1; i < (int)l.n_v1; i++) {
        if (i < 0 && !l.has_v2)
            continue;
        char *dir;
        if (ctr_cgroup_dir(&l, i, path, &dir, &e) < 0) {
            ctr_cgroup_layout_free(&l);
            return ctr_lua_fail(L, &e);
        }
        if (i < 0) {
            lua_pushstring(L, dir);
            lua_setfield(L, -2, "unified");
        } else {
            if (l.v1[i].name) {
                lua_pushfstring(L, "name=%s", l.v1[i].name);
                lua_pushstring(L, dir);
                lua_rawset(L, -3);
            }
            for (int c = 0; c < CTR_CG_COUNT; c++)
                if (l.v1[i].controllers & (1u << c)) {
                    lua_pushstring(L, dir);
                    lua_setfield(L, -2, ctr_cgroup_controller_name(c));
                }
        }
        free(dir);
    }
    ctr_cgroup_layout_free(&l);
    return 1;
}

/* cgroup_create(path, resources_json|nil[, opts]) -> true */
static int l_cgroup_create(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *json = luaL_optlstring(L, 2, NULL, &len);
    struct cg_opts o = cg_read_opts(L, 3);
    cJSON *res = NULL;
    if (json) {
        res = cJSON_ParseWithLength(json, len);
        if (res == NULL)
            return ctr_lua_errno(L, EINVAL, "cgroup `%s': linux.resources is not valid JSON",
                                 path);
    }
    struct ctr_resources *r = NULL;
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    int rc = res && !cJSON_IsNull(res) ? ctr_resources_parse(res, &r, &e) : 0;
    if (rc == 0 && (rc = cg_detect(&o, &l, &e)) == 0) {
        rc = ctr_cgroup_create(&l, path, r, &e);
        ctr_cgroup_layout_free(&l);
    }
    ctr_resources_free(r);
    cJSON_Delete(res);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_add_pid(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer pid = luaL_checkinteger(L, 2);
    if (pid <= 0 || pid > INT_MAX)
        return luaL_argerror(L, 2, "expected a pid");
    struct cg_opts o = cg_read_opts(L, 3);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_add_pid(&l, path, (pid_t)pid, &e);
    ctr_cgroup_layout_free(&l);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_delete(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_delete(&l, path, &e);
    ctr_cgroup_layout_free(&l);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_freeze(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    int frozen = lua_toboolean(L, 2);
    struct cg_opts o = cg_read_opts(L, 3);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_freeze(&l, path, frozen, &e);
    ctr_cgroup_layout_free(&l);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_pids(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    pid_t *pids;
    size_t n;
    int rc = ctr_cgroup_pids(&l, path, &pids, &n, &e);
    ctr_cgroup_layout_free(&l);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, pids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    free(pids);
    push_array_mt(L);
    lua_setmetatable(L, -2);
    return 1;
}

/* cgroup_stats(path[, opts]) -> {memory_usage=, ...}: only the fields the kernel has;
 * an unlimited limit is math.huge */
static int l_cgroup_stats(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    if (cg_detect(&o, &l, &e) < 0)
        return ctr_lua_fail(L, &e);
    struct ctr_cgroup_stats s;
    int rc = ctr_cgroup_stats(&l, path, &s, &e);
    ctr_cgroup_layout_free(&l);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_newtable(L);
#define CG_PUSH_STAT(name)                                                                     \
    if (s.have & (1u << CTR_CGS_##name)) {                                                     \
        lua_pushnumber(L, s.name == UINT64_MAX ? HUGE_VAL : (lua_Number)s.name);               \
        lua_setfield(L, -2, #name);                                                            \
    }
    CTR_CGROUP_STATS_FIELDS(CG_PUSH_STAT)
#undef CG_PUSH_STAT
    return 1;
}

/* cgroup_device_filter(dir, devices_json) -> true: attach an eBPF device filter made from
 * linux.resources.devices to cgroup2 directory `dir` (any, whatever the layout: the specs use
 * this machine's /sys/fs/cgroup/unified) */
static int l_cgroup_device_filter(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    size_t len;
    const char *json = luaL_checklstring(L, 2, &len);
    cJSON *rules = cJSON_ParseWithLength(json, len);
    if (rules == NULL)
        return ctr_lua_errno(L, EINVAL, "cgroup `%s': linux.resources.devices is not valid JSON",
                             dir);
    struct ctr_err e;
    struct ctr_res_devices d;
    int fd = -1, rc = ctr_resources_parse_devices(rules, &d, &e);
    if (rc == 0 && (fd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC))) < 0)
        rc = ctr_fail(&e, errno, "open `%s'", dir);
    else if (rc == 0)
        rc = ctr_cgroup_v2_devices_apply(fd, dir, &d, &e);
    if (fd >= 0)
        close(fd);
    ctr_res_devices_free(&d);
    cJSON_Delete(rules);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg cgroup_funcs[] = {
    {"cgroup_layout", l_cgroup_layout},
    {"cgroup_device_filter", l_cgroup_device_filter},
    {"cgroup_dirs", l_cgroup_dirs},
    {"cgroup_create", l_cgroup_create},
    {"cgroup_add_pid", l_cgroup_add_pid},
    {"cgroup_delete", l_cgroup_delete},
    {"cgroup_freeze", l_cgroup_freeze},
    {"cgroup_pids", l_cgroup_pids},
    {"cgroup_stats", l_cgroup_stats},
    {NULL, NULL},
};
/* ===================================================================== END cgroup */

/* ===================================================================== SECTION seccomp
 * owner: seccomp (csrc/runtime/seccomp.c). Edit only between these markers. */

#include <sys/wait.h>

#include "runtime/seccomp.h"

/* Parse a profile (an OCI linux.seccomp object as JSON text) and build its filter. */
static int prepare_from_string(lua_State *L, int idx, scmp_filter_ctx *ctx, struct ctr_err *e)
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
    scmp_filter_ctx ctx;
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
    scmp_filter_ctx ctx;
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
    {NULL, NULL},
};
/* ===================================================================== END seccomp */

/* ===================================================================== SECTION proc
 * owner: pipelines (csrc/base/fdwatch.c). Edit only between these markers. */

#include "base/fdwatch.h"

/* pipe([nonblock_read]) -> rfd, wfd (both close-on-exec) */
static int l_pipe(lua_State *L)
{
    int fds[2];
    struct ctr_err e;
    if (ctr_proc_pipe(fds, lua_toboolean(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

/* read(fd[, n]) -> string ("" at end of file), or nil, msg, errno (EAGAIN: nothing yet) */
static int l_read(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 65536);
    if (n <= 0 || n > 16 * 1024 * 1024)
        return luaL_argerror(L, 2, "expected a count in 1..16MiB");
    cleanup_free char *buf = malloc((size_t)n);
    if (!buf)
        return ctr_lua_errno(L, ENOMEM, "read fd %d: %lld bytes", fd, (long long)n);
    struct ctr_err e;
    ssize_t r = ctr_proc_read(fd, buf, (size_t)n, &e);
    if (r < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, (size_t)r);
    return 1;
}

/* write(fd, data) -> true */
static int l_write(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    struct ctr_err e;
    if (ctr_proc_write(fd, data, len, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* pidfd_open(pid) -> fd, readable once pid has exited */
static int l_pidfd_open(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    struct ctr_err e;
    int fd = ctr_proc_pidfd_open(pid, &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fd);
    return 1;
}

/* poll({fd, ...}, timeout_ms) -> {fd = true, ...} of the readable ones ({} on timeout);
 * timeout_ms nil or negative: no limit */
static int l_poll(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Number t = luaL_optnumber(L, 2, -1);
    int timeout = t < 0 ? -1 : (t > INT_MAX ? INT_MAX : (int)t);
    size_t n = lua_objlen(L, 1);
    if (n > 4096)
        return luaL_argerror(L, 1, "at most 4096 descriptors");
    cleanup_free int *fds = calloc(n ? n : 1, sizeof *fds);
    cleanup_free int *ready = calloc(n ? n : 1, sizeof *ready);
    if (!fds || !ready)
        return ctr_lua_errno(L, ENOMEM, "poll %zu descriptors", n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        if (!lua_isnumber(L, -1))
            return luaL_error(L, "fds[%d]: expected a descriptor number", (int)i + 1);
        fds[i] = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    struct ctr_err e;
    if (ctr_proc_poll(fds, ready, n, timeout, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_newtable(L);
    for (size_t i = 0; i < n; i++)
        if (ready[i]) {
            lua_pushboolean(L, 1);
            lua_rawseti(L, -2, fds[i]);
        }
    return 1;
}

static const luaL_Reg proc_funcs[] = {
    {"pipe", l_pipe},
    {"read", l_read},
    {"write", l_write},
    {"pidfd_open", l_pidfd_open},
    {"poll", l_poll},
    {NULL, NULL},
};
/* ===================================================================== END proc */

/* ===================================================================== SECTION monitor
 * owner: tasks (csrc/monitor/monitor.c, monitor/launch.c, runtime/terminal.c). Edit only between these markers. */

#include <sys/inotify.h>
#include <sys/stat.h>

#include "monitor/monitor.h"

/* a Lua array of strings at opts[field] -> NULL-terminated vector in a userdata (GC'd) */
static char **monitor_strv(lua_State *L, int idx, const char *field)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "option %s: expected an array of strings", field);
    size_t n = lua_objlen(L, -1);
    char **v = lua_newuserdata(L, (n + 1) * sizeof *v);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, (int)i);
        if (!lua_isstring(L, -1))
            luaL_error(L, "option %s[%d]: expected a string", field, (int)i);
        v[i - 1] = (char *)lua_tostring(L, -1);
        /* keep the string alive: it stays referenced by the option table */
        lua_pop(L, 1);
    }
    v[n] = NULL;
    lua_replace(L, -2); /* leave the userdata on the stack, drop the table */
    return v;
}

/* monitor_create(bundle, opts) -> init pid, monitor pid.  opts: exec_fifo, pid_file,
 * no_pivot, stdin, stdout, stderr, monitor_bin, oom_file, logger ({argv}), logger_env, id,
 * console (process.terminal: the monitor receives and keeps the pty master), keep_fifos
 * (stdout/stderr are --fifo-dir fifos: the monitor keeps unread output, see monitor/monitor.h). */
static int l_monitor_create(lua_State *L)
{
    const char *bundle = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_monitor_spawn_opts o = {
        .bundle = bundle,
        .exec_fifo = ctr_lua_optfield_string(L, 2, "exec_fifo", NULL),
        .pid_file = ctr_lua_optfield_string(L, 2, "pid_file", NULL),
        .no_pivot = ctr_lua_optfield_bool(L, 2, "no_pivot", 0),
        .stdio = {runtime_stdio_opt(L, 2, "stdin"), runtime_stdio_opt(L, 2, "stdout"),
                  runtime_stdio_opt(L, 2, "stderr")},
        .monitor_bin = ctr_lua_optfield_string(L, 2, "monitor_bin", NULL),
        .oom_file = ctr_lua_optfield_string(L, 2, "oom_file", NULL),
        .console = ctr_lua_optfield_bool(L, 2, "console", 0),
        .id = ctr_lua_optfield_string(L, 2, "id", NULL),
        .keep_fifos = ctr_lua_optfield_bool(L, 2, "keep_fifos", 0),
    };
    o.logger_argv = monitor_strv(L, 2, "logger");
    o.logger_envp = monitor_strv(L, 2, "logger_env");
    char *noenv[] = {NULL};
    if (o.logger_argv && !o.logger_envp)
        o.logger_envp = noenv;
    if (o.logger_argv && !o.logger_argv[0])
        return luaL_error(L, "option logger: expected a program");
    pid_t mon = 0;
    struct ctr_err e;
    struct ctr_init_death death = {0, 0, 0};
    o.death = &death;
    pid_t pid = ctr_monitor_spawn(&o, &mon, &e);
    if (pid < 0)
        return runtime_create_fail(L, &e, &death);
    lua_pushinteger(L, pid);
    lua_pushinteger(L, mon);
    return 2;
}

/* events_append(path, line[, limit]) -> true: see ctr_events_append (monitor/monitor.h) */
static int l_events_append(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *line = luaL_checklstring(L, 2, &len);
    lua_Number limit = luaL_optnumber(L, 3, 0);
    if (limit < 0 || limit > (lua_Number)SIZE_MAX / 2 || floor(limit) != limit)
        return luaL_argerror(L, 3, "expected a size in bytes");
    struct ctr_err e;
    if (ctr_events_append(path, line, len, (size_t)limit, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* events_read(path[, ino, offset]) -> text, ino, offset: what the log holds past the
 * position (ino, offset) a previous call returned (none: everything), and the new position
 * (see ctr_events_read) */
static int l_events_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Number ino = luaL_optnumber(L, 2, 0), off = luaL_optnumber(L, 3, 0);
    if (ino < 0 || off < 0 || floor(ino) != ino || floor(off) != off)
        return luaL_argerror(L, 2, "expected a position from a previous events_read");
    struct ctr_events_pos pos = {(uint64_t)ino, (uint64_t)off};
    char *buf;
    size_t len;
    struct ctr_err e;
    if (ctr_events_read(path, &pos, &buf, &len, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, len);
    free(buf);
    lua_pushnumber(L, (lua_Number)pos.ino);
    lua_pushnumber(L, (lua_Number)pos.offset);
    return 3;
}

/* monitor_request(dir, request) -> reply ("ok", "exit N", "error: ...") */
static int l_monitor_request(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *req = luaL_checkstring(L, 2);
    char buf[CTR_ERR_MSG + 64];
    struct ctr_err e;
    if (ctr_monitor_request(dir, req, buf, sizeof buf, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, buf);
    return 1;
}

/* monitor_console(dir) -> fd: the pty master the monitor keeps for a process.terminal task */
static int l_monitor_console(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    char buf[CTR_ERR_MSG + 64];
    int fd;
    struct ctr_err e;
    if (ctr_monitor_request_fd(dir, "console", buf, sizeof buf, &fd, &e) < 0)
        return ctr_lua_fail(L, &e);
    if (fd < 0) {
        const char *m = strncmp(buf, "error: ", 7) ? buf : buf + 7;
        return ctr_lua_errno(L, ENOTTY, "task `%s': %s", dir, m);
    }
    lua_pushinteger(L, fd);
    return 1;
}

/* pid_wait(pid) -> true once pid (not necessarily our child) has exited */
static int l_pid_wait(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    struct ctr_err e;
    if (ctr_pid_wait(pid, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* mkfifo(path[, mode]) -> true */
static int l_mkfifo(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0600);
    if (mkfifo(path, mode) < 0)
        return ctr_lua_errno(L, errno, "mkfifo `%s'", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* inotify_watch(dir) -> fd: an inotify instance (non-blocking, close-on-exec) watching the
 * directory `dir` for files created, written to, moved in or deleted (`ctrlua events -f`
 * follows events.log with it: poll the fd, then inotify_read) */
static int l_inotify_watch(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return ctr_lua_errno(L, errno, "inotify_init1");
    if (inotify_add_watch(fd, path, IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_DELETE |
                                        IN_ONLYDIR) < 0) {
        int saved = errno;
        close(fd);
        return ctr_lua_errno(L, saved, "inotify_add_watch `%s'", path);
    }
    lua_pushinteger(L, fd);
    return 1;
}

/* inotify_read(fd) -> {name, ...}: the names of the files the pending events are about (the
 * events are consumed; {} when none is pending) */
static int l_inotify_read(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    lua_newtable(L);
    int n = 0;
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len < 0 && errno == EINTR)
            continue;
        if (len < 0 && errno == EAGAIN)
            return 1;
        if (len < 0)
            return ctr_lua_errno(L, errno, "read inotify fd %d", fd);
        if (len == 0)
            return 1;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len > 0) {
                lua_pushstring(L, ev->name);
                lua_rawseti(L, -2, ++n);
            }
            p += sizeof *ev + ev->len;
        }
    }
}

static const luaL_Reg monitor_funcs[] = {
    {"inotify_watch", l_inotify_watch},
    {"inotify_read", l_inotify_read},
    {"monitor_create", l_monitor_create},
    {"events_append", l_events_append},
    {"events_read", l_events_read},
    {"monitor_request", l_monitor_request},
    {"monitor_console", l_monitor_console},
    {"pid_wait", l_pid_wait},
    {"mkfifo", l_mkfifo},
    {NULL, NULL},
};
/* ===================================================================== END monitor */

/* ===================================================================== SECTION exec
 * owner: exec (csrc/runtime/exec.c). Edit only between these markers. */

#include "runtime/exec.h"

/* exec(init_pid, process, opts) -> pid: a new process in the container of init_pid, our
 * child, once its program runs.  process: an OCI process (a table, or its JSON text); nil:
 * config.json's.  opts: bundle (required), pid_file, console_socket, stdin/stdout/stderr
 * (fds), preserve_fds. */
static int l_exec(lua_State *L)
{
    lua_Number ip = luaL_checknumber(L, 1);
    if (ip < 1 || ip > INT_MAX || floor(ip) != ip)
        return luaL_error(L, "exec: init_pid: expected a pid");
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    if (lua_istable(L, 2)) {
        lua_pushcfunction(L, json_encode);
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        lua_replace(L, 2);
    } else if (!lua_isnil(L, 2) && lua_type(L, 2) != LUA_TSTRING) {
        return luaL_error(L, "exec: process: expected a table or a JSON string");
    }
    const char *bundle = ctr_lua_optfield_string(L, 3, "bundle", NULL);
    if (bundle == NULL)
        return luaL_error(L, "exec: opts.bundle: expected string");
    struct ctr_exec_opts o = {
        .bundle = bundle,
        .process = lua_tostring(L, 2),
        .pid_file = ctr_lua_optfield_string(L, 3, "pid_file", NULL),
        .console_socket = ctr_lua_optfield_string(L, 3, "console_socket", NULL),
        .stdio = {runtime_stdio_opt(L, 3, "stdin"), runtime_stdio_opt(L, 3, "stdout"),
                  runtime_stdio_opt(L, 3, "stderr")},
    };
    lua_Number pf = ctr_lua_optfield_number(L, 3, "preserve_fds", 0);
    if (pf < 0 || pf > 65536 || floor(pf) != pf)
        return luaL_error(L, "exec: opts.preserve_fds: expected a count of fds");
    o.preserve_fds = (int)pf;
    struct ctr_err e;
    pid_t pid = ctr_exec((pid_t)ip, &o, &e);
    if (pid < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, pid);
    return 1;
}

static const luaL_Reg exec_funcs[] = {
    {"exec", l_exec},
    {NULL, NULL},
};
/* ===================================================================== END exec */

/* ===================================================================== SECTION tty
 * owner: TTYs (csrc/runtime/terminal.c). Edit only between these markers. */

#include "runtime/terminal.h"

static int tty_fd_arg(lua_State *L, int idx, const char *what)
{
    lua_Integer fd = luaL_checkinteger(L, idx);
    if (fd < 0 || fd > INT_MAX)
        return luaL_error(L, "%s: expected an fd number", what);
    return (int)fd;
}

/* tty_run(master, pid, {forward=, child=true, stdin=0, stdout=1}) -> exit code, {signal=}
 * (child), true (not our child: it exited), or nil, msg, EINTR, signal when a signal ended
 * the copy (without forward) */
static int l_tty_run(lua_State *L)
{
    int master = tty_fd_arg(L, 1, "master");
    pid_t pid = (pid_t)luaL_checkinteger(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    struct ctr_tty_run_opts o = {
        .in_fd = runtime_stdio_opt(L, 3, "stdin"),
        .out_fd = runtime_stdio_opt(L, 3, "stdout"),
        .forward = ctr_lua_optfield_bool(L, 3, "forward", 0),
        .child = ctr_lua_optfield_bool(L, 3, "child", 1),
    };
    if (o.in_fd < 0)
        o.in_fd = 0;
    if (o.out_fd < 0)
        o.out_fd = 1;
    int status = 0;
    struct ctr_err e;
    int r = ctr_tty_run(master, pid, &o, &status, &e);
    if (r < 0)
        return ctr_lua_fail(L, &e);
    if (r == 0) {
        ctr_lua_errno(L, EINTR, "interrupted by signal %d", status);
        lua_pushinteger(L, status);
        return 4;
    }
    if (!o.child) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushinteger(L, ctr_exit_code(status));
    lua_createtable(L, 0, 2);
    if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        lua_setfield(L, -2, "status");
    }
    if (WIFSIGNALED(status)) {
        lua_pushinteger(L, WTERMSIG(status));
        lua_setfield(L, -2, "signal");
    }
    return 2;
}

/* tty_get_size(fd) -> rows, cols */
static int l_tty_get_size(lua_State *L)
{
    unsigned rows, cols;
    struct ctr_err e;
    if (ctr_tty_get_size(tty_fd_arg(L, 1, "fd"), &rows, &cols, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, rows);
    lua_pushinteger(L, cols);
    return 2;
}

/* tty_set_size(fd, rows, cols) -> true */
static int l_tty_set_size(lua_State *L)
{
    int fd = tty_fd_arg(L, 1, "fd");
    lua_Integer rows = luaL_checkinteger(L, 2), cols = luaL_checkinteger(L, 3);
    if (rows < 0 || cols < 0 || rows > 65535 || cols > 65535)
        return luaL_error(L, "tty_set_size: rows and cols must be 0..65535");
    struct ctr_err e;
    if (ctr_tty_set_size(fd, (unsigned)rows, (unsigned)cols, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* block_signals() -> true: the signals a foreground wait forwards stay pending from now on
 * (wait / tty_run with forward read them); see runtime/terminal.h */
static int l_block_signals(lua_State *L)
{
    struct ctr_err e;
    if (ctr_tty_block_signals(NULL, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg tty_funcs[] = {
    {"tty_run", l_tty_run},
    {"tty_get_size", l_tty_get_size},
    {"tty_set_size", l_tty_set_size},
    {"block_signals", l_block_signals},
    {NULL, NULL},
};
/* ===================================================================== END tty */

/* ===================================================================== module */

static const luaL_Reg *all_funcs[] = {
    json_funcs, digest_funcs, fs_funcs, content_funcs, archive_funcs, snapshot_funcs,
    runtime_funcs, cgroup_funcs, seccomp_funcs, proc_funcs, monitor_funcs, exec_funcs, tty_funcs,
};

int luaopen_ctr_core(lua_State *L)
{
    lua_pushlightuserdata(L, &array_mt_key);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__name");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_newtable(L);
    for (size_t i = 0; i < ARRAY_SIZE(all_funcs); i++)
        for (const luaL_Reg *r = all_funcs[i]; r->name; r++) {
            lua_pushcfunction(L, r->func);
            lua_setfield(L, -2, r->name);
        }
    ctr_lua_register_http(L, -1);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, CTRLUA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
