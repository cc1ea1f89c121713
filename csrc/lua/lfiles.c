/* ctr.core's file and process primitives: files, directories, locks, clocks, signals,
 * environment, errno names, pipes and polling (see lua/lcore.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fdwatch.h"
#include "base/files.h"
#include "base/procstat.h"
#include "base/syscalls.h"
#include "lua/lcore.h"

/* ===================================================================== files and processes
 * The small set of filesystem and process primitives the Lua library needs (base/files.c,
 * base/syscalls.c), so that Lua never makes a raw syscall of its own. */

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
    /* dirsync = false: the file's data is synced, its name is the caller's to sync */
    int dirsync = ctr_lua_optfield_bool(L, 3, "dirsync", 1);
    struct ctr_err e;
    if (ctr_write_file_atomic(path, data, len, mode,
                              (noreplace ? CTR_WRITE_NOREPLACE : 0) | (sync ? 0 : CTR_WRITE_NOSYNC) |
                                  (dirsync ? 0 : CTR_WRITE_NODIRSYNC),
                              &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* fsync(path) -> true: see ctr_fsync_path */
static int l_fsync(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct ctr_err e;
    if (ctr_fsync_path(path, &e) < 0)
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
    struct ctr_err e;
    if (ctr_sys_mkdir(path, (mode_t)mode, &e) < 0)
        return ctr_lua_fail(L, &e);
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
    struct ctr_err e;
    if (ctr_sys_unlink(luaL_checkstring(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rmdir(lua_State *L)
{
    struct ctr_err e;
    if (ctr_sys_rmdir(luaL_checkstring(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
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
    struct ctr_err e;
    if (ctr_sys_rename(from, to, noreplace, sync, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_symlink(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    struct ctr_err e;
    if (ctr_sys_symlink(target, path, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_readlink(lua_State *L)
{
    char buf[PATH_MAX];
    struct ctr_err e;
    ssize_t n = ctr_sys_readlink(luaL_checkstring(L, 1), buf, sizeof buf - 1, &e);
    if (n < 0)
        return ctr_lua_fail(L, &e);
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* realpath(path) -> the absolute path with every symlink resolved, or nil, err, errno */
static int l_realpath(lua_State *L)
{
    struct ctr_err e;
    cleanup_free char *real = ctr_sys_realpath(luaL_checkstring(L, 1), &e);
    if (real == NULL)
        return ctr_lua_fail(L, &e);
    lua_pushstring(L, real);
    return 1;
}

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int follow = lua_toboolean(L, 2);
    struct stat st;
    struct ctr_err e;
    if (ctr_sys_stat(path, follow, &st, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 10);
    lua_pushstring(L, ctr_file_type_name(st.st_mode)); lua_setfield(L, -2, "type");
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
    char **names;
    size_t n;
    struct ctr_err e;
    if (ctr_sys_listdir(luaL_checkstring(L, 1), &names, &n, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    ctr_strv_free(names, n);
    return 1;
}

/* count_entries(path[, suffix]) -> n, tmp: the names that end in suffix (all) but the store's
 * temporary ones, and those (".tmp-…"), without a string made for any */
static int l_count_entries(lua_State *L)
{
    size_t n, tmp;
    struct ctr_err e;
    if (ctr_sys_count_entries(luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL), &n, &tmp, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushinteger(L, (lua_Integer)tmp);
    return 2;
}

/* lock(path, exclusive, nonblock) -> fd: an flock on path (created 0600), held until close(fd).
 * Store transactions and per-container operations serialise on these. */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int excl = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    struct ctr_err e;
    int fd = ctr_sys_lock(path, excl, lua_toboolean(L, 3), &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
    lua_pushinteger(L, fd);
    return 1;
}

static int l_close(lua_State *L)
{
    struct ctr_err e;
    if (ctr_sys_close((int)luaL_checkinteger(L, 1), &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* proc_stat(pid) -> {state=, ppid=, start_time=, exit_code=, signal=}: the process's
 * /proc/PID/stat (exit_code and signal for a zombie, from its wait status); nil, msg, errno
 * (ENOENT) when it is gone */
static int l_proc_stat(lua_State *L)
{
    struct ctr_procstat st;
    struct ctr_err e;
    if (ctr_procstat_read((pid_t)luaL_checkinteger(L, 1), &st, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_createtable(L, 0, 5);
    lua_pushlstring(L, &st.state, 1);
    lua_setfield(L, -2, "state");
    lua_pushinteger(L, st.ppid);
    lua_setfield(L, -2, "ppid");
    lua_pushnumber(L, (lua_Number)st.start_time);
    lua_setfield(L, -2, "start_time");
    if (st.state == 'Z' && st.exit_status >= 0) {
        /* as a run reports it: the code of an exit, 128+N for signal N */
        int sig = st.exit_status & 0x7f;
        lua_pushinteger(L, sig ? 128 + sig : (st.exit_status >> 8) & 0xff);
        lua_setfield(L, -2, "exit_code");
        if (sig) {
            lua_pushinteger(L, sig);
            lua_setfield(L, -2, "signal");
        }
    }
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
    char buf[64];
    ctr_format_rfc3339(&ts, buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int l_kill(lua_State *L)
{
    int pid = (int)luaL_checkinteger(L, 1);
    int sig = (int)luaL_optinteger(L, 2, SIGTERM);
    struct ctr_err e;
    if (ctr_sys_kill(pid, sig, &e) < 0)
        return ctr_lua_fail(L, &e);
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

/* errno_name(n) -> "ENOENT" (base/error.c names every errno the core reports), else "E<n>" */
static int l_errno_name(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    const char *name = ctr_errno_name(n);
    if (name)
        lua_pushstring(L, name);
    else
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
    struct ctr_err e;
    if (ctr_sys_chmod(path, (mode_t)mode, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_lchown(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uid_t uid = (uid_t)luaL_checknumber(L, 2);
    gid_t gid = (gid_t)luaL_checknumber(L, 3);
    struct ctr_err e;
    if (ctr_sys_lchown(path, uid, gid, &e) < 0)
        return ctr_lua_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* uname() -> {sysname, release, machine, nodename} */
static int l_uname(lua_State *L)
{
    struct utsname u;
    struct ctr_err e;
    if (ctr_sys_uname(&u, &e) < 0)
        return ctr_lua_fail(L, &e);
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
    struct ctr_err e;
    int fd = ctr_sys_open(path, flags, (mode_t)mode, &e);
    if (fd < 0)
        return ctr_lua_fail(L, &e);
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
    struct ctr_err e;
    if (ctr_sys_random(buf, (size_t)n, &e) < 0)
        return ctr_lua_fail(L, &e);
    char hex[129];
    for (int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf[i]);
    lua_pushlstring(L, hex, (size_t)(2 * n));
    return 1;
}

static const luaL_Reg files_funcs[] = {
    {"random_hex", l_random_hex},
    {"open", l_open},
    {"chmod", l_chmod},
    {"lchown", l_lchown},
    {"uname", l_uname},
    {"geteuid", l_geteuid},
    {"read_file_in_root", l_read_file_in_root},
    {"read_file", l_read_file},
    {"write_file", l_write_file},
    {"fsync", l_fsync},
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
    {"count_entries", l_count_entries},
    {"lock", l_lock},
    {"close", l_close},
    {"getpid", l_getpid},
    {"proc_stat", l_proc_stat},
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

/* ===================================================================== pipes and polling (base/fdwatch.c) */

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

static const luaL_Reg pipe_funcs[] = {
    {"pipe", l_pipe},
    {"read", l_read},
    {"write", l_write},
    {"pidfd_open", l_pidfd_open},
    {"poll", l_poll},
    {NULL, NULL},
};

void ctr_lua_register_files(lua_State *L, int table)
{
    ctr_lua_setfuncs(L, table, files_funcs);
    ctr_lua_setfuncs(L, table, pipe_funcs);
}
