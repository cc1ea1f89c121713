/* ctr.core's store: sha256, the content store and image archives, layers, snapshots and
 * mounts (see lua/lcore.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/digest.h"
#include "base/mount_optmap.h"
#include "base/mounts.h"
#include "base/error.h"
#include "base/syscalls.h"
#include "lua/lcore.h"
#include "store/content.h"
#include "store/import.h"
#include "store/layer.h"
#include "store/snapshot.h"
#include "store/snapshot_mount.h"

/* ===================================================================== digest (base/digest.c) */

static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[CTR_DIGEST_LEN];
    struct ctr_err e;
    if (ctr_sha256_digest(s, len, hex, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg digest_funcs[] = {
    {"sha256", l_sha256},
    {NULL, NULL},
};

/* ===================================================================== content (store/content.c, store/import.c)
 * `content` arguments are the content directory (ROOT/content).  Options tables:
 * {digest=, size=, ref=}: the expected digest and size (checked before commit) and the ingest
 * ref (default: derived from the digest, or unique to this process). */
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
    if (strcmp(src, "-") != 0 && (fd = ctr_sys_open(src, O_RDONLY, 0, &e)) < 0)
        return ctr_lua_fail(L, &e);
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

/* The reader's metatable, made on first use. */
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

/* ===================================================================== layers (store/layer_apply.c, store/layer_write.c) */

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
    if (uo < 0 || uo > 4294967295.0 || !ctr_is_whole(uo))
        return luaL_error(L, "option uid_offset: expected an integer in 0..2^32-1");
    if (go < 0 || go > 4294967295.0 || !ctr_is_whole(go))
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

/* ===================================================================== snapshots and mounts (store/snapshot.c, base/mounts.c) */

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
    if (ctr_snapshot_mount(type, source, target, options, &e) < 0)
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
    if (ctr_unmount(target, detach, &e) < 0)
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

/* mount_option(opt) -> kind ("vfs", "user" or "fs"), flags (the MS_* bits), invert: what
 * mount(8) makes of one option, as the mounts of specs and snapshots read it. */
static int l_mount_option(lua_State *L)
{
    size_t len;
    const char *opt = luaL_checklstring(L, 1, &len);
    struct ctr_mount_opt o = ctr_mount_opt_lookup(opt, len);
    static const char *const kinds[] = {"fs", "vfs", "user"};
    lua_pushstring(L, kinds[o.kind]);
    lua_pushnumber(L, (lua_Number)o.flags);
    lua_pushboolean(L, o.invert);
    return 3;
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

/* mount_points_under(dir) -> array of the targets in /proc/self/mountinfo that are dir or lie
 * below it, in its order: what must come off before dir is removed, read without a table made
 * for every mount of the host */
static int l_mount_points_under(lua_State *L)
{
    size_t dl;
    const char *dir = luaL_checklstring(L, 1, &dl);
    struct ctr_mountinfo *m;
    size_t n;
    struct ctr_err e;
    if (ctr_mountinfo_read(&m, &n, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_newtable(L);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = m[i].target;
        if (strncmp(t, dir, dl) == 0 && (t[dl] == '\0' || t[dl] == '/')) {
            lua_pushstring(L, t);
            lua_rawseti(L, -2, ++k);
        }
    }
    ctr_mountinfo_free(m, n);
    return 1;
}

static const luaL_Reg snapshot_funcs[] = {
    {"mount", l_mount},
    {"unmount", l_unmount},
    {"mountinfo", l_mountinfo},
    {"mount_points_under", l_mount_points_under},
    {"mount_option", l_mount_option},
    {"mount_top", l_mount_top},
    {"mount_unstack", l_mount_unstack},
    {"copy_tree", l_copy_tree},
    {"usage", l_usage},
    {"syncfs", l_syncfs},
    {NULL, NULL},
};

void ctr_lua_register_store(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, digest_funcs);
    ctr_lua_setfuncs(L, table, content_funcs);
    ctr_lua_setfuncs(L, table, archive_funcs);
    ctr_lua_setfuncs(L, table, snapshot_funcs);
}
