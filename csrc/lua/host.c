/* ctrlua: the host.  A LuaJIT state with the project's lua/ on package.path, ctr.core
 * preloaded, and the host's global flags in package.loaded["ctr.host"]; then it runs the
 * script named by the first non-flag argument — a path, or a command name looked up in the
 * scripts folder — with `arg` set as luajit sets it.
 *
 * Invoked as `ctrlua-runc` (a symlink) it runs scripts/runc.lua and leaves every flag to it,
 * since runc's global flags (--root, --log, ...) are not ours. */
#include <archive.h>
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <luajit.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lua/embedded.h"
#include "lua/lcore.h"
#include "base/lazylib.h"

#ifndef CTRLUA_DATADIR
#define CTRLUA_DATADIR "/usr/local/share/ctrlua"
#endif

struct host {
    const char *root;
    const char *state;
    const char *namespace;
    int debug;
    char datadir[PATH_MAX]; /* holds lua/ and scripts/ */
    double started;         /* CLOCK_MONOTONIC at main's start, as core.monotime gives it */
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The tree (build/ctrlua beside lua/ and scripts/) wins over an installation
 * (PREFIX/bin/ctrlua and PREFIX/share/ctrlua), which wins over the compiled-in default.  Not
 * inlined: its buffers are then not part of main's frame, which lasts the whole run. */
static __attribute__((noinline)) void find_datadir(struct host *h)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char cand[PATH_MAX + 32];
            snprintf(cand, sizeof cand, "%s/../lua/ctr", exe);
            if (is_dir(cand)) {
                /* the kernel's name of the executable has no symlink in it, so its folder's
                 * parent is that name cut at its last slash (realpath would readlink each
                 * component of it to find the same) */
                char *up = strrchr(exe, '/');
                if (up == exe || up == NULL)
                    snprintf(h->datadir, sizeof h->datadir, "/");
                else
                    snprintf(h->datadir, sizeof h->datadir, "%.*s", (int)(up - exe), exe);
                return;
            }
            snprintf(cand, sizeof cand, "%s/../share/ctrlua", exe);
            if (is_dir(cand) && realpath(cand, h->datadir))
                return;
        }
    }
    snprintf(h->datadir, sizeof h->datadir, "%s", CTRLUA_DATADIR);
}

/* libarchive's and libseccomp's versions are the ones built against (their sonames are fixed
 * at build time): asking the libraries would load them, libarchive with libxml2 and the rest,
 * for one line of text. */
static void print_version(void)
{
    printf("ctrlua %s\n", CTRLUA_VERSION);
    printf("  %s, libseccomp %d.%d.%d, %s, cJSON %s\n", LUAJIT_VERSION, SCMP_VER_MAJOR,
           SCMP_VER_MINOR, SCMP_VER_MICRO, ARCHIVE_VERSION_STRING, cJSON_Version());
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ctrlua [GLOBAL FLAGS] SCRIPT [ARGS...]\n"
            "\n"
            "Runs SCRIPT (a path, or a command name such as `images` or `run.lua` from the\n"
            "scripts folder) with the ctr library on its path.  `ctrlua help` lists the commands.\n"
            "\n"
            "global flags:\n"
            "  --root DIR            the store (default /var/lib/ctrlua)\n"
            "  --state DIR           tasks' state (default /run/ctrlua)\n"
            "  -n, --namespace NS    namespace (default $CTRLUA_NAMESPACE or `default`)\n"
            "  --debug               tracebacks with lines (the Lua files run, not the\n"
            "                        built-in bytecode) and debug output\n"
            "  --help, --version\n");
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = luaL_typename(L, 1);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void set_host_table(lua_State *L, const struct host *h, const char *argv0)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 8);
    lua_pushstring(L, h->root); lua_setfield(L, -2, "root");
    lua_pushstring(L, h->state); lua_setfield(L, -2, "state");
    lua_pushstring(L, h->namespace); lua_setfield(L, -2, "namespace");
    lua_pushboolean(L, h->debug); lua_setfield(L, -2, "debug");
    lua_pushstring(L, h->datadir); lua_setfield(L, -2, "datadir");
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/scripts", h->datadir);
    lua_pushstring(L, p); lua_setfield(L, -2, "scripts");
    lua_pushstring(L, argv0); lua_setfield(L, -2, "argv0");
    lua_pushliteral(L, CTRLUA_VERSION); lua_setfield(L, -2, "version");
    lua_pushnumber(L, h->started); lua_setfield(L, -2, "started");
    lua_setfield(L, -2, "ctr.host");
    lua_pop(L, 2);
}

static void set_paths(lua_State *L, const struct host *h)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    const char *old = lua_tostring(L, -1);
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s", h->datadir, h->datadir, old);
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_ctr_core);
    lua_setfield(L, -2, "ctr.core");
    lua_pop(L, 2);
}

/* The built-in bytecode is read from the executable file with pread(), never through the
 * executable's mapping: a read fault maps the whole 64 KiB folio of the page cache around the
 * page it touches, and the 560 KB of bytecode share one read-only segment, so that loading
 * the thirty modules of a `run` made nearly all of it resident (about 550 KB of its peak
 * RSS).  Read so, a blob stays in the page cache and is never mapped in the process.  The
 * file is /proc/self/exe, opened close-on-exec: a child of ctrlua sees through it no more than
 * its /proc/PID/exe names.  Where it cannot be opened or read, the mapped copy is loaded (the
 * same bytes). */
struct bc_file {
    int fd; /* -1: load from memory */
    int nseg;
    struct {
        uintptr_t start, end;
        off_t offset;
    } seg[8]; /* the executable's PT_LOAD segments: address range -> file offset */
};

static int bc_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct bc_file *f = data;
    for (int i = 0; i < info->dlpi_phnum && f->nseg < 8; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        f->seg[f->nseg].start = info->dlpi_addr + ph->p_vaddr;
        f->seg[f->nseg].end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
        f->seg[f->nseg].offset = (off_t)ph->p_offset;
        f->nseg++;
    }
    return 1; /* the first object is the executable */
}

static void bc_open(struct bc_file *f)
{
    f->nseg = 0;
    f->fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (f->fd >= 0)
        dl_iterate_phdr(bc_segments, f);
}

/* The blob is handed to the loader in pieces read into a buffer on the stack: read whole into
 * one malloc'd buffer, the largest module (ctr.oci, 30 KB) and the spec's small allocations
 * around it set the C heap's size, which never shrinks.  LuaJIT's loader copies a prototype
 * that straddles two pieces into a buffer of the Lua heap, which it frees at once. */
struct bc_reader {
    int fd;
    off_t at;
    size_t left;
    char buf[16384];
};

static const char *bc_read(lua_State *L, void *data, size_t *size)
{
    (void)L;
    struct bc_reader *r = data;
    size_t want = r->left < sizeof r->buf ? r->left : sizeof r->buf;
    ssize_t n = want ? pread(r->fd, r->buf, want, r->at) : 0;
    if (n <= 0) {
        *size = 0;
        return NULL;
    }
    r->at += n;
    r->left -= (size_t)n;
    *size = (size_t)n;
    return r->buf;
}

static int bc_load(lua_State *L, const struct bc_file *f, const struct ctr_embedded *e,
                   const char *chunkname)
{
    uintptr_t a = (uintptr_t)e->bc;
    for (int i = 0; f->fd >= 0 && i < f->nseg; i++) {
        if (a < f->seg[i].start || a + e->bc_len > f->seg[i].end)
            continue;
        struct bc_reader r = {
            .fd = f->fd, .at = f->seg[i].offset + (off_t)(a - f->seg[i].start), .left = e->bc_len};
        /* a short read is a bad chunk to the loader: the mapped copy is loaded instead */
        int rc = lua_load(L, bc_read, &r, chunkname);
        if (rc == 0 && r.left == 0)
            return 0;
        lua_pop(L, 1);
        break;
    }
    return luaL_loadbuffer(L, e->bc, e->bc_len, chunkname);
}

static const struct ctr_embedded *embedded_find(const char *name, int script)
{
    for (size_t i = 0; i < ctr_embedded_count; i++)
        if (ctr_embedded[i].script == script && strcmp(ctr_embedded[i].name, name) == 0)
            return &ctr_embedded[i];
    return NULL;
}

/* The bytecode stands for the file only while the file is the one it was compiled from: the
 * same size and mtime (install -p keeps both).  An edit, a copy without -p, a checkout
 * changes the mtime, and the file wins; a file that is gone leaves the built-in module. */
static int embedded_same(const struct ctr_embedded *e, const struct stat *st)
{
    return st->st_size == e->size && st->st_mtim.tv_sec == e->mtime_sec &&
           st->st_mtim.tv_nsec == e->mtime_nsec;
}

static int embedded_current(const struct ctr_embedded *e, const char *file)
{
    struct stat st;
    if (file == NULL || stat(file, &st) != 0)
        return file == NULL || errno == ENOENT;
    return embedded_same(e, &st);
}

/* The file package.searchpath(name, path) would name, found with stat() alone (searchpath
 * opens each candidate): 1 with its path in out and its stat in st, or 0. */
static int search_path(const char *path, const char *name, char *out, size_t outlen,
                       struct stat *st)
{
    char mod[PATH_MAX];
    size_t n = strlen(name);
    if (path == NULL || n >= sizeof mod)
        return 0;
    for (size_t i = 0; i <= n; i++)
        mod[i] = name[i] == '.' ? '/' : name[i];
    for (const char *t = path; *t;) {
        const char *end = strchr(t, ';');
        size_t tl = end ? (size_t)(end - t) : strlen(t);
        size_t o = 0;
        int fits = 1;
        for (size_t i = 0; i < tl && fits; i++) {
            const char *piece = t[i] == '?' ? mod : NULL;
            size_t pl = piece ? n : 1;
            if (o + pl >= outlen) {
                fits = 0;
                break;
            }
            memcpy(out + o, piece ? piece : &t[i], pl);
            o += pl;
        }
        out[o] = '\0';
        if (fits && tl > 0 && stat(out, st) == 0 && S_ISREG(st->st_mode))
            return 1;
        t += tl;
        if (*t == ';')
            t++;
    }
    return 0;
}

/* A searcher ahead of Lua's own: a module built in, whose source file on package.path (the
 * one Lua's searcher would load) is unchanged, loads from its bytecode; otherwise it finds
 * nothing and Lua's searcher reads the file.  The bytecode carries no debug information (no
 * lines, no names of locals: a tenth of the heap of a `run --rm`), so under --debug
 * the searcher comes after Lua's: the files run, and a traceback names their lines; a module
 * whose file is gone still loads from the binary. */
static int embedded_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const struct ctr_embedded *e = embedded_find(name, 0);
    if (e == NULL) {
        lua_pushfstring(L, "\n\tno module '%s' built into ctrlua", name);
        return 1;
    }
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    char file[PATH_MAX];
    struct stat st;
    if (search_path(lua_tostring(L, -1), name, file, sizeof file, &st) && !embedded_same(e, &st)) {
        lua_pushfstring(L, "\n\tmodule '%s' built into ctrlua differs from %s", name, file);
        return 1;
    }
    if (bc_load(L, lua_touserdata(L, lua_upvalueindex(1)), e, name) != 0)
        return lua_error(L);
    return 1;
}

static void add_searcher(lua_State *L, struct bc_file *bc, int debug)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaders");
    int n = (int)lua_objlen(L, -1);
    int at = debug ? n + 1 : 2;
    for (int i = n; i >= at; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushlightuserdata(L, bc);
    lua_pushcclosure(L, embedded_searcher, 1);
    lua_rawseti(L, -2, at);
    lua_pop(L, 2);
}

/* A command allocates its modules as it loads them, keeps them to the end and exits soon
 * after: at the default pause (a cycle each time the heap doubles) the collector marked the
 * same live modules cycle after cycle while they loaded, about a tenth of a `run --rm` and 9%
 * of the CPU samples of `tasks ls` and `images ls`.  So no cycle begins before the heap holds
 * GC_FIRST_KB: a `run --rm` ends below it (about 600 KB) with no cycle at all, 3% sooner
 * than at a pause of 400 (150 interleaved pairs, twice), its heap at the end 44 KB larger
 * (a full collection of it takes 0.6 to 1.4 ms here).  Past it, a cycle each time the heap
 * grows fourfold: a command's garbage is small beside its modules, and one that runs long (a
 * foreground run copying a terminal, a pull) settles where it did before.  A script named by
 * its path keeps luajit's defaults, as it keeps lua_close. */
#define GC_FIRST_KB 1024
static void set_gc(lua_State *L)
{
    int kb = lua_gc(L, LUA_GCCOUNT, 0);
    /* the threshold of a restart with -1 is the heap times the pause */
    lua_gc(L, LUA_GCSETPAUSE, GC_FIRST_KB * 100 / (kb > 0 ? kb : 1));
    lua_gc(L, LUA_GCRESTART, -1);
    lua_gc(L, LUA_GCSETPAUSE, 400);
}

/* A command runs for milliseconds.  At LuaJIT's defaults (a loop is compiled once it has run
 * 56 times, a side trace after 10 exits) a `run --rm` compiled some two dozen traces, each a
 * pair of mprotect calls and more time than it saved; with these no trace is made in a short
 * command and `run --rm` took about a tenth less, while a loop that runs thousands of times
 * (a listing of many records, a large document) is still compiled. */
static void set_jit(lua_State *L)
{
    lua_getglobal(L, "jit");
    lua_getfield(L, -1, "opt");
    lua_getfield(L, -1, "start");
    lua_pushliteral(L, "hotloop=2000");
    lua_pushliteral(L, "hotexit=200");
    if (lua_pcall(L, 2, 0, 0) != 0)
        lua_pop(L, 1); /* (no such option in this LuaJIT: its defaults stay) */
    lua_pop(L, 2);
}

/* A script is a path when it names an existing file or contains a slash; otherwise a command
 * name, with or without .lua, in the scripts folder. */
static int resolve_script(const struct host *h, const char *name, char *out, size_t outlen,
                          const char **in_scripts)
{
    struct stat st;
    *in_scripts = NULL;
    if (strchr(name, '/') || (stat(name, &st) == 0 && S_ISREG(st.st_mode))) {
        snprintf(out, outlen, "%s", name);
        return 0;
    }
    size_t n = strlen(name);
    int has_ext = n > 4 && strcmp(name + n - 4, ".lua") == 0;
    if (snprintf(out, outlen, "%s/scripts/%s%s", h->datadir, name, has_ext ? "" : ".lua") >= (int)outlen)
        return -1;
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
        *in_scripts = strrchr(out, '/') + 1;
        return 0;
    }
    return -1;
}

/* embedded: the script's file name when it was found in the scripts folder (a script named by
 * a path is always read from that path). */
static int run_script(lua_State *L, const struct bc_file *bc, const char *path,
                      const char *embedded, int argc, char **argv, int scriptidx, int debug)
{
    /* arg as luajit sets it: arg[0] the script, arg[1..] its arguments, arg[-k] what came
     * before it on the command line. */
    lua_createtable(L, argc - scriptidx - 1, scriptidx + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, i == scriptidx ? path : argv[i]);
        lua_rawseti(L, -2, i - scriptidx);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback);
    int base = lua_gettop(L);
    const struct ctr_embedded *e = embedded ? embedded_find(embedded, 1) : NULL;
    int r = e && !debug && embedded_current(e, path) ? bc_load(L, bc, e, path) : luaL_loadfile(L, path);
    if (r != 0) {
        fprintf(stderr, "ctrlua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    int nargs = argc - scriptidx - 1;
    luaL_checkstack(L, nargs + 4, "too many arguments");
    for (int i = scriptidx + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (lua_pcall(L, nargs, 0, debug ? base : 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "ctrlua: %s\n", msg ? msg : "(error object is not a string)");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
#if defined(__SANITIZE_ADDRESS__)
    /* `make asan` preloads the sanitizer runtime into stock luajit for the specs; this binary
     * has it linked in, and the host programs it starts (ps, shells, hooks, runc) must not
     * inherit it: some, like procps' ps, hang under it. */
    unsetenv("LD_PRELOAD");
#endif
    /* The host's own state and the script's path are static, not in main's frame: every
     * frame of the run lies below main's, and each KB kept out of it is one less of the
     * stack a run makes resident (the create's frames go deepest). */
    static struct host h = {
        .root = "/var/lib/ctrlua",
        .state = "/run/ctrlua",
        .debug = 0,
    };
    h.namespace = getenv("CTRLUA_NAMESPACE");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    h.started = (double)now.tv_sec + now.tv_nsec / 1e9;
    if (h.namespace == NULL || h.namespace[0] == '\0')
        h.namespace = "default";
    find_datadir(&h);

    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    int as_runc = strcmp(base, "ctrlua-runc") == 0;

    int i = 1;
    while (!as_runc && i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t namelen = eq ? (size_t)(eq - a) : strlen(a);
#define IS(s) (namelen == strlen(s) && strncmp(a, s, namelen) == 0)
        if (IS("--help") || IS("-h")) {
            usage(stdout);
            return 0;
        } else if (IS("--version") || IS("-v")) {
            print_version();
            return 0;
        } else if (IS("--debug")) {
            h.debug = 1;
            i++;
            continue;
        } else if (IS("--root") || IS("--state") || IS("--namespace") || IS("-n")) {
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "ctrlua: flag needs an argument: %s\n", a);
                return 1;
            }
            if (IS("--root"))
                h.root = val;
            else if (IS("--state"))
                h.state = val;
            else
                h.namespace = val;
            i++;
            continue;
        } else if (IS("--")) {
            i++;
            break;
        }
#undef IS
        fprintf(stderr, "ctrlua: flag provided but not defined: %s\n", a);
        usage(stderr);
        return 1;
    }

    const char *script = as_runc ? "runc" : (i < argc ? argv[i] : "help");
    int scriptidx = as_runc ? 0 : i;
    static char path[PATH_MAX];
    const char *in_scripts;
    if (resolve_script(&h, script, path, sizeof path, &in_scripts) < 0) {
        fprintf(stderr, "ctrlua: no such command or script: %s (try `ctrlua help`)\n", script);
        return 1;
    }

    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "ctrlua: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    if (in_scripts != NULL)
        set_gc(L);
    set_jit(L);
    struct bc_file bc;
    bc_open(&bc);
    set_paths(L, &h);
    add_searcher(L, &bc, h.debug);
    set_host_table(L, &h, argv[0]);
    int rc;
    if (scriptidx >= argc) {
        /* `ctrlua` alone: run help with no arguments */
        char *fake[] = {argv[0], (char *)"help", NULL};
        rc = run_script(L, &bc, path, in_scripts, 2, fake, 1, h.debug);
    } else {
        rc = run_script(L, &bc, path, in_scripts, argc, argv, scriptidx, h.debug);
    }
    fflush(stdout);
#if !defined(__SANITIZE_ADDRESS__)
    /* A command of the scripts folder ends as one that calls os.exit does (most of them, run
     * among them): exit() flushes the C streams and the kernel takes back the rest; freeing
     * every object of the state one by one first took 0.2 ms of `images ls`.  None of the
     * commands leaves behind an object whose finalizer does more than free (no io.popen
     * handle, whose close would wait for its child).  A script named by its path may, and
     * closes the state as luajit does; so do the sanitizer builds, for their leak checks. */
    if (in_scripts != NULL)
        exit(rc);
#endif
    lua_close(L);
    if (bc.fd >= 0)
        close(bc.fd);
    return rc;
}
