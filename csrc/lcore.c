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
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/evp.h>

#include "error.h"
#include "fsutil.h"
#include "lcore.h"
#include "util.h"

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

static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *end = NULL;
    /* Lua strings carry a NUL after len bytes: let cJSON see it, so trailing garbage (or an
     * embedded NUL) is a syntax error */
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
    struct ctr_err e;
    if (ctr_write_file_atomic(path, data, len, mode, noreplace, &e) < 0)
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

static int l_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (rename(from, to) < 0)
        return ctr_lua_errno(L, errno, "rename `%s' to `%s'", from, to);
    struct ctr_err e;
    if (ctr_fsync_parent(to, &e) < 0)
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

/* read_file_in_root(root, path[, cap]): a file of an untrusted tree (an image's /etc/passwd),
 * opened with RESOLVE_IN_ROOT so that no symlink in it leads out of root. */
static int l_read_file_in_root(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    size_t cap = (size_t)luaL_optnumber(L, 3, 1 << 20);
    cleanup_close int rootfd = RETRY(open(root, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return ctr_lua_errno(L, errno, "open `%s'", root);
    int fd = ctr_openat_in_root(rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    if (fd < 0)
        return ctr_lua_errno(L, errno, "openat2 `%s' in `%s'", path, root);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return ctr_lua_errno(L, e, "fstat `%s' in `%s'", path, root);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ctr_lua_errno(L, EINVAL, "read `%s' in `%s': not a regular file", path, root);
    }
    struct ctr_err e;
    char *buf;
    size_t len;
    int r = ctr_read_file(proc, cap, &buf, &len, &e);
    close(fd);
    if (r < 0)
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

static const luaL_Reg fs_funcs[] = {
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
 * owner: content store (csrc/content.c). Edit only between these markers. */

static const luaL_Reg content_funcs[] = {
    {NULL, NULL},
};
/* ===================================================================== END content */

/* ===================================================================== SECTION archive
 * owner: layers (csrc/archive.c). Edit only between these markers. */

static const luaL_Reg archive_funcs[] = {
    {NULL, NULL},
};
/* ===================================================================== END archive */

/* ===================================================================== SECTION snapshot
 * owner: snapshots and mounts (csrc/snapshot.c, csrc/mount.c). Edit only between these markers. */

static const luaL_Reg snapshot_funcs[] = {
    {NULL, NULL},
};
/* ===================================================================== END snapshot */

/* ===================================================================== SECTION runtime
 * owner: the runtime (csrc/spawn.c and friends). Edit only between these markers. */

static const luaL_Reg runtime_funcs[] = {
    {NULL, NULL},
};
/* ===================================================================== END runtime */

/* ===================================================================== module */

static const luaL_Reg *all_funcs[] = {
    json_funcs, digest_funcs, fs_funcs, content_funcs, archive_funcs, snapshot_funcs,
    runtime_funcs,
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
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, CTRLUA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
