/* ctr.core's cgroups: the layout, a cgroup's directories, creation, pids, freezing, stats
 * and device filters (see lua/lcore.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/syscalls.h"
#include "cgroups/cgroup.h"
#include "lua/lcore.h"
#include "runtime/config.h"

/* ===================================================================== cgroups (cgroups/)
 * Every function takes an optional last `opts` table: mountinfo= (a mountinfo file),
 * proc_cgroup= (a /proc/self/cgroup file), root= (a prefix for every mount point): the specs'
 * fake trees; or hierarchy= (what cgroup_hierarchy returned): the layout read once, which a
 * command that makes, watches and removes a cgroup passes to each call.  Without it the
 * layout is read again on each call (the mount table, /proc/self/cgroup, the v2 root's
 * controllers: some 40 microseconds here). */

#define CG_HIERARCHY_MT "ctr.cgroup_hierarchy"

struct cg_opts {
    const char *mountinfo, *proc_cgroup, *root;
    const struct ctr_cgroup_layout *hierarchy;
};

const struct ctr_cgroup_layout *ctr_lua_optfield_hierarchy(lua_State *L, int idx, const char *field)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    lua_getfield(L, idx, field);
    const struct ctr_cgroup_layout *h = NULL;
    if (!lua_isnil(L, -1)) {
        h = luaL_testudata(L, -1, CG_HIERARCHY_MT);
        if (h == NULL)
            luaL_error(L, "option %s: expected what cgroup_hierarchy returned", field);
    }
    lua_pop(L, 1);
    return h;
}

static struct cg_opts cg_read_opts(lua_State *L, int idx)
{
    if (!lua_isnoneornil(L, idx))
        luaL_checktype(L, idx, LUA_TTABLE);
    struct cg_opts o = {
        .mountinfo = ctr_lua_optfield_string(L, idx, "mountinfo", NULL),
        .proc_cgroup = ctr_lua_optfield_string(L, idx, "proc_cgroup", NULL),
        .root = ctr_lua_optfield_string(L, idx, "root", NULL),
        .hierarchy = ctr_lua_optfield_hierarchy(L, idx, "hierarchy"),
    };
    return o;
}

/* The layout to use: the caller's hierarchy, or one read into *own (then cg_release frees
 * it); NULL with *e on failure. */
static const struct ctr_cgroup_layout *cg_detect(const struct cg_opts *o,
                                                 struct ctr_cgroup_layout *own,
                                                 struct ctr_err *e)
{
    if (o->hierarchy)
        return o->hierarchy;
    if (ctr_cgroup_layout_detect(own, o->mountinfo, o->proc_cgroup, o->root, e) < 0) {
        ctr_cgroup_layout_free(own);
        return NULL;
    }
    return own;
}

static void cg_release(const struct cg_opts *o, struct ctr_cgroup_layout *own)
{
    if (!o->hierarchy)
        ctr_cgroup_layout_free(own);
}

static int cg_hierarchy_gc(lua_State *L)
{
    ctr_cgroup_layout_free(luaL_checkudata(L, 1, CG_HIERARCHY_MT));
    return 0;
}

/* cgroup_hierarchy([opts]) -> the layout, read once, for the hierarchy= option of the others */
static int l_cgroup_hierarchy(lua_State *L)
{
    struct cg_opts o = cg_read_opts(L, 1);
    struct ctr_cgroup_layout *l = lua_newuserdata(L, sizeof *l);
    memset(l, 0, sizeof *l);
    struct ctr_err e;
    if (ctr_cgroup_layout_detect(l, o.mountinfo, o.proc_cgroup, o.root, &e) < 0) {
        ctr_cgroup_layout_free(l);
        return ctr_lua_fail(L, &e);
    }
    if (luaL_newmetatable(L, CG_HIERARCHY_MT)) {
        lua_pushcfunction(L, cg_hierarchy_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "cgroup hierarchy");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    return 1;
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
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    static const char *const modes[] = {"none", "v1", "v2", "hybrid"};
    lua_newtable(L);
    lua_pushstring(L, modes[l->mode]);
    lua_setfield(L, -2, "mode");
    lua_newtable(L);
    for (size_t i = 0; i < l->n_v1; i++) {
        lua_newtable(L);
        lua_pushstring(L, l->v1[i].mountpoint);
        lua_setfield(L, -2, "mountpoint");
        lua_pushstring(L, l->v1[i].own);
        lua_setfield(L, -2, "own");
        if (l->v1[i].name) {
            lua_pushstring(L, l->v1[i].name);
            lua_setfield(L, -2, "name");
        }
        cg_push_controllers(L, l->v1[i].controllers, 0);
        lua_setfield(L, -2, "controllers");
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "v1");
    if (l->has_v2) {
        lua_newtable(L);
        lua_pushstring(L, l->v2.mountpoint);
        lua_setfield(L, -2, "mountpoint");
        lua_pushstring(L, l->v2.own);
        lua_setfield(L, -2, "own");
        cg_push_controllers(L, l->v2.controllers, 1);
        lua_setfield(L, -2, "controllers");
        lua_setfield(L, -2, "unified");
    }
    /* where each usable controller lives */
    lua_newtable(L);
    for (int c = 0; c < CTR_CG_COUNT; c++) {
        if (l->v1_of[c] >= 0) {
            lua_pushstring(L, l->v1[l->v1_of[c]].mountpoint);
            lua_setfield(L, -2, ctr_cgroup_controller_name(c));
        } else if (l->has_v2 && (l->v2.controllers & (1u << c))) {
            lua_pushstring(L, l->v2.mountpoint);
            lua_setfield(L, -2, ctr_cgroup_controller_name(c));
        }
    }
    lua_setfield(L, -2, "controllers");
    cg_release(&o, &own);
    return 1;
}

/* cgroup_warm_attach() -> pid (0 when there is nothing to do): the grace period of the next
 * move into a v1 cgroup begun by a child (cgroups/warm.c), so that it runs while the caller
 * goes on; cgroup_warm_done(pid) reaps the child */
static int l_cgroup_warm_attach(lua_State *L)
{
    struct ctr_cgroup_layout l;
    struct ctr_err e;
    pid_t pid = -1;
    if (ctr_cgroup_layout_detect(&l, NULL, NULL, NULL, &e) == 0)
        pid = ctr_cgroup_warm_attach(&l, &e);
    ctr_cgroup_layout_free(&l);
    if (pid < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, pid);
    return 1;
}

static int l_cgroup_warm_done(lua_State *L)
{
    struct ctr_err e;
    if (ctr_cgroup_warm_done((pid_t)luaL_checkinteger(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* cgroup_dirs(path[, opts]) -> {cpu=DIR, memory=DIR, ["name=systemd"]=DIR, unified=DIR} */
static int l_cgroup_dirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    lua_newtable(L);
    for (int i = -1; i < (int)l->n_v1; i++) {
        if (i < 0 && !l->has_v2)
            continue;
        char *dir;
        if (ctr_cgroup_dir(l, i, path, &dir, &e) < 0) {
            cg_release(&o, &own);
            return ctr_lua_fail(L, &e);
        }
        if (i < 0) {
            lua_pushstring(L, dir);
            lua_setfield(L, -2, "unified");
        } else {
            if (l->v1[i].name) {
                lua_pushfstring(L, "name=%s", l->v1[i].name);
                lua_pushstring(L, dir);
                lua_rawset(L, -3);
            }
            for (int c = 0; c < CTR_CG_COUNT; c++)
                if (l->v1[i].controllers & (1u << c)) {
                    lua_pushstring(L, dir);
                    lua_setfield(L, -2, ctr_cgroup_controller_name(c));
                }
        }
        free(dir);
    }
    cg_release(&o, &own);
    return 1;
}

typedef int (*cg_apply_fn)(const struct ctr_cgroup_layout *, const char *,
                           const struct ctr_resources *, struct ctr_err *);

/* path, resources_json[, opts] -> true, with the resources parsed and the layout found for
 * apply; resources may be nil (no limits) only where `optional`. */
static int cg_apply_resources(lua_State *L, cg_apply_fn apply, int optional)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *json =
        optional ? luaL_optlstring(L, 2, NULL, &len) : luaL_checklstring(L, 2, &len);
    struct cg_opts o = cg_read_opts(L, 3);
    cJSON *res = NULL;
    if (json) {
        res = cJSON_ParseWithLength(json, len);
        if (res == NULL)
            return ctr_lua_errno(L, EINVAL, "cgroup `%s': linux.resources is not valid JSON",
                                 path);
    }
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    struct ctr_resources *r = NULL;
    int rc = res && !(optional && cJSON_IsNull(res)) ? ctr_resources_parse(res, &r, &e) : 0;
    const struct ctr_cgroup_layout *l = rc == 0 ? cg_detect(&o, &own, &e) : NULL;
    if (rc == 0 && l == NULL)
        rc = -1;
    if (l != NULL) {
        rc = apply(l, path, r, &e);
        cg_release(&o, &own);
    }
    ctr_resources_free(r);
    cJSON_Delete(res);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* cgroup_create(path, resources_json|nil[, opts]) -> true */
static int l_cgroup_create(lua_State *L)
{
    return cg_apply_resources(L, ctr_cgroup_create, 1);
}

/* cgroup_update(path, resources_json[, opts]) -> true: runc's update of an existing cgroup */
static int l_cgroup_update(lua_State *L)
{
    return cg_apply_resources(L, ctr_cgroup_update, 0);
}

static int l_cgroup_add_pid(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer pid = luaL_checkinteger(L, 2);
    if (pid <= 0 || pid > INT_MAX)
        return luaL_argerror(L, 2, "expected a pid");
    struct cg_opts o = cg_read_opts(L, 3);
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_add_pid(l, path, (pid_t)pid, &e);
    cg_release(&o, &own);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_delete(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_delete(l, path, &e);
    cg_release(&o, &own);
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
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    int rc = ctr_cgroup_freeze(l, path, frozen, &e);
    cg_release(&o, &own);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cgroup_pids(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    pid_t *pids;
    size_t n;
    int rc = ctr_cgroup_pids(l, path, &pids, &n, &e);
    cg_release(&o, &own);
    if (rc < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, pids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    free(pids);
    ctr_lua_push_array_mt(L);
    lua_setmetatable(L, -2);
    return 1;
}

/* cgroup_stats(path[, opts]) -> {memory_usage=, ...}: only the fields the kernel has;
 * an unlimited limit is math.huge */
static int l_cgroup_stats(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct cg_opts o = cg_read_opts(L, 2);
    struct ctr_cgroup_layout own;
    struct ctr_err e;
    const struct ctr_cgroup_layout *l = cg_detect(&o, &own, &e);
    if (l == NULL)
        return ctr_lua_fail(L, &e);
    struct ctr_cgroup_stats s;
    int rc = ctr_cgroup_stats(l, path, &s, &e);
    cg_release(&o, &own);
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
    if (rc == 0 && (fd = ctr_sys_open(dir, O_RDONLY | O_DIRECTORY, 0, &e)) < 0)
        rc = -1;
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
    {"cgroup_hierarchy", l_cgroup_hierarchy},
    {"cgroup_warm_attach", l_cgroup_warm_attach},
    {"cgroup_warm_done", l_cgroup_warm_done},
    {"cgroup_device_filter", l_cgroup_device_filter},
    {"cgroup_dirs", l_cgroup_dirs},
    {"cgroup_create", l_cgroup_create},
    {"cgroup_update", l_cgroup_update},
    {"cgroup_add_pid", l_cgroup_add_pid},
    {"cgroup_delete", l_cgroup_delete},
    {"cgroup_freeze", l_cgroup_freeze},
    {"cgroup_pids", l_cgroup_pids},
    {"cgroup_stats", l_cgroup_stats},
    {NULL, NULL},
};

void ctr_lua_register_cgroups(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, cgroup_funcs);
}
