/* ctr.core's task monitor: detached tasks, their requests and consoles, events logs, and
 * the fifo and inotify primitives that follow them (see lua/lcore.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/error.h"
#include "base/syscalls.h"
#include "lua/lcore.h"
#include "monitor/monitor.h"
#include "runtime/create.h"

/* ===================================================================== tasks (monitor/) */

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
 * (stdout/stderr are --fifo-dir fifos: the monitor keeps unread output, see monitor/monitor.h),
 * fsync ({path, ...}: files and directories to fsync while the init is created), syncfs
 * ({path, ...}: file systems to sync after them). */
static int l_monitor_create(lua_State *L)
{
    const char *bundle = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_monitor_spawn_opts o = {
        .bundle = bundle,
        .exec_fifo = ctr_lua_optfield_string(L, 2, "exec_fifo", NULL),
        .pid_file = ctr_lua_optfield_string(L, 2, "pid_file", NULL),
        .no_pivot = ctr_lua_optfield_bool(L, 2, "no_pivot", 0),
        .stdio = {ctr_lua_optfield_fd(L, 2, "stdin"), ctr_lua_optfield_fd(L, 2, "stdout"),
                  ctr_lua_optfield_fd(L, 2, "stderr")},
        .monitor_bin = ctr_lua_optfield_string(L, 2, "monitor_bin", NULL),
        .oom_file = ctr_lua_optfield_string(L, 2, "oom_file", NULL),
        .console = ctr_lua_optfield_bool(L, 2, "console", 0),
        .id = ctr_lua_optfield_string(L, 2, "id", NULL),
        .keep_fifos = ctr_lua_optfield_bool(L, 2, "keep_fifos", 0),
    };
    o.logger_argv = monitor_strv(L, 2, "logger");
    o.fsync = (const char *const *)monitor_strv(L, 2, "fsync");
    o.syncfs = (const char *const *)monitor_strv(L, 2, "syncfs");
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
        return ctr_lua_create_fail(L, &e, &death);
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
    if (limit < 0 || limit > (lua_Number)SIZE_MAX / 2 || !ctr_is_whole(limit))
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
    if (ino < 0 || off < 0 || !ctr_is_whole(ino) || !ctr_is_whole(off))
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
    struct ctr_err e;
    if (ctr_sys_mkfifo(path, mode, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* inotify_watch(dir) -> fd: an inotify instance (non-blocking, close-on-exec) watching the
 * directory `dir` for files created, written to, moved in or deleted (`ctrlua events -f`
 * follows events.log with it: poll the fd, then inotify_read) */
static int l_inotify_watch(lua_State *L)
{
    struct ctr_err e;
    int fd = ctr_sys_inotify_watch(luaL_checkstring(L, 1), &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fd);
    return 1;
}

/* inotify_read(fd) -> {name, ...}: the names of the files the pending events are about (the
 * events are consumed; {} when none is pending) */
struct names {
    lua_State *L;
    int n;
};

static void push_name(void *ctx, const char *name)
{
    struct names *a = ctx;
    lua_pushstring(a->L, name);
    lua_rawseti(a->L, -2, ++a->n);
}

static int l_inotify_read(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    lua_newtable(L);
    struct names a = {L, 0};
    struct ctr_err e;
    if (ctr_sys_inotify_read(fd, push_name, &a, &e) < 0)
        return ctr_lua_fail(L, &e);
    return 1;
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

void ctr_lua_register_monitor(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, monitor_funcs);
}
