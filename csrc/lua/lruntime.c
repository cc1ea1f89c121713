/* ctr.core's runtime: create, start, exec, wait, hooks, console sockets, user namespace
 * shifts and TTYs (see lua/lcore.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/syscalls.h"
#include "lua/lcore.h"
#include "runtime/console_socket.h"
#include "runtime/create.h"
#include "runtime/exec.h"
#include "runtime/terminal.h"
#include "runtime/userns.h"
#include "runtime/wait.h"

/* ===================================================================== create, start, wait (runtime/) */

/* shared with lua/lmonitor.c: monitor_create fails the way create does */
int ctr_lua_create_fail(lua_State *L, const struct ctr_err *e, const struct ctr_init_death *d)
{
    int n = ctr_lua_fail(L, e);
    if (!d->died)
        return n;
    ctr_lua_push_status(L, d->status);
    lua_pushboolean(L, d->oom);
    lua_setfield(L, -2, "oom");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "exit_code");
    lua_remove(L, -2);
    if (n == 5) { /* the death goes in its slot, before the program flag */
        lua_replace(L, -3);
        return 5;
    }
    return n + 1;
}

/* create(bundle_dir, opts) -> pid: the init, set up and blocked on opts.exec_fifo; or nil,
 * message, errno[, death] (see ctr_lua_create_fail). */
static int l_create(lua_State *L)
{
    const char *bundle = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    struct ctr_create_opts o = {
        .exec_fifo = ctr_lua_optfield_string(L, 2, "exec_fifo", NULL),
        .pid_file = ctr_lua_optfield_string(L, 2, "pid_file", NULL),
        .no_pivot = ctr_lua_optfield_bool(L, 2, "no_pivot", 0),
        .stdio = {ctr_lua_optfield_fd(L, 2, "stdin"), ctr_lua_optfield_fd(L, 2, "stdout"),
                  ctr_lua_optfield_fd(L, 2, "stderr")},
        .console_socket = ctr_lua_optfield_string(L, 2, "console_socket", NULL),
        .id = ctr_lua_optfield_string(L, 2, "id", NULL),
        .die_with_parent = ctr_lua_optfield_bool(L, 2, "die_with_parent", 0),
        .cgroup_layout = ctr_lua_optfield_hierarchy(L, 2, "cgroup_hierarchy"),
    };
    lua_Number pf = ctr_lua_optfield_number(L, 2, "preserve_fds", 0);
    if (pf < 0 || pf > 65536 || !ctr_is_whole(pf))
        return luaL_error(L, "option preserve_fds: expected a count of fds");
    o.preserve_fds = (int)pf;
    struct ctr_err e;
    struct ctr_init_death death = {0, 0, 0};
    o.death = &death;
    pid_t pid = ctr_create(bundle, &o, &e);
    if (pid < 0)
        return ctr_lua_create_fail(L, &e, &death);
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

int ctr_lua_push_status(lua_State *L, int status)
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
    return ctr_lua_push_status(L, status);
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
    return ctr_lua_push_status(L, status);
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
    struct ctr_err e;
    int fd = ctr_sys_unix_listen(luaL_checkstring(L, 1), &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fd);
    return 1;
}

/* recv_fd(sock) -> fd, name: one fd sent with SCM_RIGHTS (a console master); a listening
 * socket accepts one connection first */
static int l_recv_fd(lua_State *L)
{
    int sock = (int)luaL_checkinteger(L, 1);
    struct ctr_err e;
    cleanup_close int conn = -1;
    if (ctr_sys_accept_if_listening(sock, "the console socket", &conn, &e) < 0)
        return ctr_lua_fail(L, &e);
    if (conn >= 0)
        sock = conn;
    char name[256];
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
    if (u < 0 || g < 0 || u > UINT32_MAX || g > UINT32_MAX || !ctr_is_whole(u) || !ctr_is_whole(g))
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

/* ===================================================================== exec (runtime/exec.c) */

/* exec(init_pid, process, opts) -> pid: a new process in the container of init_pid, our
 * child, once its program runs.  process: an OCI process (a table, or its JSON text); nil:
 * config.json's.  opts: bundle (required), id (the container's, for a seccomp agent), pid_file,
 * console_socket, stdin/stdout/stderr (fds), preserve_fds, sub_cgroups ({"CONTROLLER:SUB",
 * ":SUB"}: runc's exec --cgroup). */
static int l_exec(lua_State *L)
{
    lua_Number ip = luaL_checknumber(L, 1);
    if (ip < 1 || ip > INT_MAX || !ctr_is_whole(ip))
        return luaL_error(L, "exec: init_pid: expected a pid");
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    if (lua_istable(L, 2)) {
        lua_pushcfunction(L, ctr_lua_json_encode);
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
        .id = ctr_lua_optfield_string(L, 3, "id", NULL),
        .process = lua_tostring(L, 2),
        .pid_file = ctr_lua_optfield_string(L, 3, "pid_file", NULL),
        .console_socket = ctr_lua_optfield_string(L, 3, "console_socket", NULL),
        .stdio = {ctr_lua_optfield_fd(L, 3, "stdin"), ctr_lua_optfield_fd(L, 3, "stdout"),
                  ctr_lua_optfield_fd(L, 3, "stderr")},
    };
    lua_Number pf = ctr_lua_optfield_number(L, 3, "preserve_fds", 0);
    if (pf < 0 || pf > 65536 || !ctr_is_whole(pf))
        return luaL_error(L, "exec: opts.preserve_fds: expected a count of fds");
    o.preserve_fds = (int)pf;
    /* opts.sub_cgroups: {"CONTROLLER:SUB", ...}; the strings stay in opts while we run */
    const char *subs[32];
    lua_getfield(L, 3, "sub_cgroups");
    if (lua_istable(L, -1)) {
        size_t n = lua_objlen(L, -1);
        if (n > sizeof subs / sizeof subs[0])
            return luaL_error(L, "exec: opts.sub_cgroups: at most 32 entries");
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "exec: opts.sub_cgroups[%d]: expected string", (int)i + 1);
            subs[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        o.sub_cgroups = subs;
        o.n_sub_cgroups = n;
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "exec: opts.sub_cgroups: expected a table of strings");
    }
    lua_pop(L, 1);
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

/* ===================================================================== TTYs (runtime/terminal.c) */

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
        .in_fd = ctr_lua_optfield_fd(L, 3, "stdin"),
        .out_fd = ctr_lua_optfield_fd(L, 3, "stdout"),
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

void ctr_lua_register_runtime(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, runtime_funcs);
    ctr_lua_setfuncs(L, table, exec_funcs);
    ctr_lua_setfuncs(L, table, tty_funcs);
}
