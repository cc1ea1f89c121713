/* exec: a new process in a running container.
 *
 *   caller (ctrlua)                      joiner (fork)                  process (clone)
 *   config.json + process, pidfd,
 *   open /proc/PID/ns/.. (all first)
 *   fork ─────────────────────────────►  not dumpable, signals reset,
 *   joiner into the init's cgroups,      fds moved, stdio; waits
 *   rlimits, oom_score_adj; "go" ──────►  setns user ... mnt (last)
 *                                        clone(CLONE_PARENT) ──────►  born in the pid namespace
 *   {pid} ◄──────────────────────────────  sends its pid, exits        setsid, pty, cwd, AppArmor,
 *   reap the joiner                                                   seccomp, user, caps,
 *   {seccomp}: listener to the agent ◄───────────────────────────────  (a filter that notifies)
 *   "seccomp done" ─────────────────────────────────────────────────►
 *   EOF (exec done) or {error} ◄────────────────────────────────────  lookup, execveat
 *
 * setns(CLONE_NEWPID) only moves the children of the caller, hence the second process; it is
 * cloned with CLONE_PARENT so that it is the caller's child and the caller waits for it.  The
 * sync socket is CLOEXEC: its end of file tells the caller that execve succeeded, and any
 * failure before it comes back as a struct ctr_err naming the step.
 *
 * Nothing of the host runs in the container (runc CVE-2019-5736: a container opened
 * /proc/PID/exe of the runtime that had joined it, then overwrote the runtime's binary).  The
 * joiner clears PR_SET_DUMPABLE before it opens or joins anything, so a container process
 * cannot ptrace it nor open its /proc/PID/exe, and the process's last step is ctrlua-exec from
 * a sealed memfd (runtime/sealed.h), which executes the container's program: whatever the kernel
 * resolves that path to (a link to /proc/self/exe, a `#!` chain ending there), it is never
 * the host's binary.
 */
#include "runtime/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "runtime/apparmor.h"
#include "cgroups/cgroup.h"
#include "runtime/config.h"
#include "runtime/console_socket.h"
#include "runtime/hooks.h"
#include "base/files.h"
#include "runtime/process.h"
#include "runtime/sealed.h"
#include "base/cleanup.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

enum { MSG_PID = 1, MSG_ERROR = 2, MSG_SECCOMP = 3 };

struct exec_msg {
    int type;
    pid_t pid; /* MSG_SECCOMP: the listener's fd number in the process */
    struct ctr_err err;
};

/* The order of the joins: the user namespace first (it grants the capabilities the other
 * setns calls are checked against), the mount namespace last (paths resolve in it after). */
static const struct {
    const char *name;
    int flag;
} ns_order[] = {
    {"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},   {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID},
    {"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
};
#define EXEC_NNS ARRAY_SIZE(ns_order)

struct exec_ctx {
    const struct ctr_config *cfg;
    const struct ctr_exec_opts *o;
    pid_t init;
    int sync;               /* the child's end of the socketpair */
    int nsfd[EXEC_NNS];     /* -1: that namespace is ours already */
    int console;            /* connected console socket, or -1 */
    int rootfd;             /* the init's root directory (/proc/PID/root) */
    int tramp;              /* sealed ctrlua-exec (runtime/sealed.h) */
    int agent;              /* the caller's connection to the seccomp agent, or -1 */
    struct ctr_file_id self; /* our executable, which never runs in the container */
};

/* ------------------------------------------------------------------ in the children */

static void child_send(int sync, int type, pid_t pid, const struct ctr_err *err)
{
    struct exec_msg m = {.type = type, .pid = pid};
    if (err)
        m.err = *err;
    while (send(sync, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

static __attribute__((noreturn)) void child_fail(int sync, const struct ctr_err *err)
{
    child_send(sync, MSG_ERROR, 0, err);
    _exit(1);
}

/* A pty in the container's devpts for process.terminal: the slave becomes stdio and the
 * controlling terminal, the master goes to the console socket.  Unlike the init's, this
 * one does not touch /dev/console (the container's mounts are not ours to change). */
static int child_console(int sock, unsigned rows, unsigned cols, uid_t uid,
                         struct ctr_err *err)
{
    cleanup_close int master = RETRY(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (master < 0)
        return ctr_fail(err, errno, "open `/dev/ptmx' in the container");
    struct stat st;
    if (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode))
        return ctr_fail(err, ENOTTY, "`/dev/ptmx' in the container is not a pty multiplexer");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        return ctr_fail(err, errno, "unlock the pty");
    cleanup_close int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        return ctr_fail(err, errno, "open the pty slave");
    if (ctr_console_own(slave, uid, err) < 0)
        return -1;
    if (rows && cols) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
            return ctr_fail(err, errno, "set the console size");
    }
    if (ctr_send_fd(sock, master, "/dev/ptmx", err) < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            return ctr_fail(err, errno, "dup the pty slave to fd %d", i);
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        return ctr_fail(err, errno, "make the pty the controlling terminal");
    return 0;
}

/* Replace this process by the program `exe` (found in the container's PATH); returns only
 * on failure, with *err set.  Never by our own execve of a container path: ctrlua-exec runs
 * from its sealed copy and executes the program (runtime/sealed.h), and reports a failure of that
 * execve as an errno on the sync socket (whose end of file otherwise means "executed").  A
 * program that is our own executable (a link to /proc/self/exe, a hard link) is refused here
 * too, as a second line. */
static void run_program(const struct exec_ctx *x, const char *exe, struct ctr_err *err)
{
    if (ctr_file_is(exe, &x->self)) {
        ctr_fail_program(err, 0, "exec: `%s' is the runtime's own executable: refused (CVE-2019-5736)",
                 exe);
        err->code = EACCES;
        return;
    }
    ctr_sealed_exec(x->tramp, x->sync, "ctrlua exec", exe, (char *const *)x->cfg->args,
                    (char *const *)x->cfg->env);
    ctr_fail(err, errno, "exec: the sealed ctrlua-exec");
}

/* Load the filter; its listener, when it notifies, goes to the agent through the caller as
 * the init's does (runtime/create.c: child_seccomp), written with write(2) alone. */
static int child_seccomp(const struct exec_ctx *x, struct ctr_err *err)
{
    int listener;
    if (ctr_seccomp_load(x->cfg->seccomp, &listener, err) < 0)
        return -1;
    if (listener < 0)
        return 0;
    struct exec_msg m = {.type = MSG_SECCOMP, .pid = listener};
    char done;
    if (RETRY(write(x->sync, &m, sizeof m)) != (ssize_t)sizeof m ||
        RETRY(read(x->sync, &done, 1)) != 1)
        _exit(1);
    close(listener);
    return 0;
}

/* The process: born in every namespace of the container. */
static __attribute__((noreturn)) void child_process(struct exec_ctx *x)
{
    const struct ctr_config *c = x->cfg;
    struct ctr_err err = {.code = 0};
    int sync = x->sync;
    for (size_t i = 0; i < EXEC_NNS; i++)
        if (x->nsfd[i] >= 0)
            close(x->nsfd[i]);
    /* The init's own root, whether its mount namespace was joined (setns put us at the
     * namespace's root, where pivot_root left the container's) or is ours (a container that
     * has none: its root is a chroot, which setns cannot give). */
    if (fchdir(x->rootfd) < 0 || chroot(".") < 0) {
        ctr_fail(&err, errno, "enter the root of the container init %d", (int)x->init);
        child_fail(sync, &err);
    }
    close(x->rootfd);
    /* a session of its own: no reach into the caller's terminal (TIOCSTI) */
    if (setsid() < 0) {
        ctr_fail(&err, errno, "setsid");
        child_fail(sync, &err);
    }
    if (x->console >= 0) {
        if (child_console(x->console, c->console_rows, c->console_cols, c->uid, &err) < 0)
            child_fail(sync, &err);
        close(x->console);
    }
    if (ctr_process_chdir(c, &err) < 0)
        child_fail(sync, &err);
    if (c->apparmor_profile && ctr_apparmor_apply(c->apparmor_profile, &err) < 0)
        child_fail(sync, &err);
    /* without no_new_privs a filter needs CAP_SYS_ADMIN: load it before the caps go */
    if (c->seccomp && !c->no_new_privs && child_seccomp(x, &err) < 0)
        child_fail(sync, &err);
    if (ctr_process_identity(c, &err) < 0)
        child_fail(sync, &err);
    char exe[PATH_MAX];
    if (ctr_process_lookup(c, exe, sizeof exe, &err) < 0)
        child_fail(sync, &err);
    umask(c->umask >= 0 ? (mode_t)c->umask : 022);
    if (ctr_process_fds(x->o->preserve_fds, &err) < 0)
        child_fail(sync, &err);
    /* with no_new_privs: as late as possible, so that it filters the program only */
    if (c->seccomp && c->no_new_privs && child_seccomp(x, &err) < 0)
        child_fail(sync, &err);
    run_program(x, exe, &err);
    /* the filter may forbid the send: stderr then, and the code says which failure */
    int code = err.code == ENOENT ? 127 : 126;
    child_send(sync, MSG_ERROR, 0, &err);
    dprintf(2, "ctrlua exec: %s\n", err.msg);
    _exit(code);
}

/* The joiner: forked from the caller, it joins the namespaces and clones the process. */
static __attribute__((noreturn)) void child_join(struct exec_ctx *x)
{
    struct ctr_err err = {.code = 0};
    int sync = x->sync;
    if (x->agent >= 0)
        close(x->agent);
    /* before anything is opened or joined (CVE-2019-5736) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        ctr_fail(&err, errno, "prctl PR_SET_DUMPABLE");
        child_fail(sync, &err);
    }
    ctr_sys_signals_reset(1);
    int min = 3 + x->o->preserve_fds;
    if ((sync = x->sync = ctr_fd_move_above(sync, min)) < 0) {
        ctr_fail(&err, errno, "move fds above %d", min);
        _exit(1);
    }
    if (x->console >= 0 && (x->console = ctr_fd_move_above(x->console, min)) < 0) {
        ctr_fail(&err, errno, "move fds above %d", min);
        child_fail(sync, &err);
    }
    if ((x->rootfd = ctr_fd_move_above(x->rootfd, min)) < 0 ||
        (x->tramp = ctr_fd_move_above(x->tramp, min)) < 0) {
        ctr_fail(&err, errno, "move fds above %d", min);
        child_fail(sync, &err);
    }
    for (size_t i = 0; i < EXEC_NNS; i++)
        if (x->nsfd[i] >= 0 && (x->nsfd[i] = ctr_fd_move_above(x->nsfd[i], min)) < 0) {
            ctr_fail(&err, errno, "move fds above %d", min);
            child_fail(sync, &err);
        }
    if (ctr_process_stdio(x->o->stdio, min, &err) < 0)
        child_fail(sync, &err);
    /* the caller puts us in the container's cgroups (our child inherits them) first */
    char go;
    if (RETRY(read(sync, &go, 1)) != 1)
        _exit(1);
    for (size_t i = 0; i < EXEC_NNS; i++) {
        if (x->nsfd[i] < 0)
            continue;
        if (setns(x->nsfd[i], ns_order[i].flag) < 0) {
            ctr_fail(&err, errno, "join the %s namespace of the container init %d",
                     ns_order[i].name, (int)x->init);
            child_fail(sync, &err);
        }
    }
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), NULL, NULL,
                               NULL, NULL);
    if (pid == 0)
        child_process(x);
    if (pid < 0) {
        ctr_fail(&err, errno, "fork in the container's pid namespace");
        child_fail(sync, &err);
    }
    child_send(sync, MSG_PID, pid, NULL);
    _exit(0);
}

/* ------------------------------------------------------------------ in the caller */

/* The process's listener (fd number `fd` in process pid) to the agent, with the container
 * process state: the container's (running, its init's pid), pid the new process's, as runc
 * sends it; then "seccomp done". */
static int forward_listener(struct exec_ctx *x, int sock, pid_t pid, int fd, struct ctr_err *err)
{
    const struct ctr_config *cfg = x->cfg;
    if (x->agent < 0)
        return ctr_fail(err, EPROTO, "exec: the process %d sent a seccomp listener that no "
                        "agent waits for", (int)pid);
    char bundle[PATH_MAX];
    if (realpath(x->o->bundle, bundle) == NULL)
        return ctr_fail(err, errno, "bundle `%s'", x->o->bundle);
    cleanup_close int listener = ctr_seccomp_listener_take(pid, fd, err);
    if (listener < 0)
        return -1;
    cleanup_free char *state = ctr_hooks_state(cfg->oci_version, x->o->id, "running", x->init,
                                               bundle, cfg->annotations);
    if (state == NULL)
        return ctr_fail(err, ENOMEM, "seccomp agent: the container state");
    if (ctr_seccomp_send_state(cfg->seccomp, steal_fd(&x->agent), listener, pid, state, err) < 0)
        return -1;
    if (RETRY(send(sock, "s", 1, MSG_NOSIGNAL)) != 1)
        return ctr_fail(err, errno, "exec: resume the process %d after the seccomp agent",
                        (int)pid);
    return 0;
}

/* Open the init's namespaces that are not ours.  The pidfd, taken before, proves afterwards
 * that they belong to the init and not to a process that reused its pid. */
static int open_namespaces(struct exec_ctx *x, int pidfd, struct ctr_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)x->init);
    cleanup_close int dir = RETRY(open(path, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    for (size_t i = 0; i < EXEC_NNS; i++) {
        char rel[32], self[48];
        snprintf(rel, sizeof rel, "ns/%s", ns_order[i].name);
        snprintf(self, sizeof self, "/proc/self/ns/%s", ns_order[i].name);
        int fd = RETRY(openat(dir, rel, O_RDONLY | O_CLOEXEC));
        if (fd < 0 && errno == ENOENT && ns_order[i].flag == CLONE_NEWTIME)
            continue; /* a kernel without time namespaces */
        if (fd < 0)
            return ctr_fail(err, errno, "open `%s/%s'", path, rel);
        struct stat a, b;
        if (fstat(fd, &a) < 0) {
            int e = errno;
            close(fd);
            return ctr_fail(err, e, "stat `%s/%s'", path, rel);
        }
        if (stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            close(fd);
            continue;
        }
        x->nsfd[i] = fd;
    }
    x->rootfd = RETRY(openat(dir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (x->rootfd < 0)
        return ctr_fail(err, errno, "open `%s/root'", path);
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        return ctr_fail(err, errno, "the container init %d", (int)x->init);
    return 0;
}

/* The sub-cgroup (runc's exec --cgroup) that applies to hierarchy h, or NULL: an entry for
 * every hierarchy (":SUB"), or one naming a controller of this v1 hierarchy. */
static const char *sub_cgroup_for(const struct ctr_exec_opts *o, const struct ctr_cgroup_hier *h,
                                  int v1)
{
    for (size_t j = 0; j < o->n_sub_cgroups; j++) {
        const char *e = o->sub_cgroups[j], *colon = strchr(e, ':');
        if (colon == NULL)
            continue;
        size_t n = (size_t)(colon - e);
        if (n == 0)
            return colon + 1;
        if (!v1)
            continue;
        if (h->name && n == 5 + strlen(h->name) && strncmp(e, "name=", 5) == 0 &&
            strncmp(e + 5, h->name, n - 5) == 0)
            return colon + 1;
        for (int c = 0; c < CTR_CG_COUNT; c++) {
            const char *cn = ctr_cgroup_controller_name(c);
            if ((h->controllers & (1u << c)) && strlen(cn) == n && strncmp(e, cn, n) == 0)
                return colon + 1;
        }
    }
    return NULL;
}

/* Put pid in the init's cgroup in every hierarchy (its own /proc/PID/cgroup, seen from our
 * cgroup namespace), or in the sub-cgroup asked for there. */
static int join_cgroups(pid_t init, pid_t pid, const struct ctr_exec_opts *o,
                        struct ctr_err *err)
{
    char pc[64];
    snprintf(pc, sizeof pc, "/proc/%d/cgroup", (int)init);
    struct ctr_cgroup_layout l;
    if (ctr_cgroup_layout_detect(&l, NULL, pc, NULL, err) < 0) {
        ctr_cgroup_layout_free(&l);
        return -1;
    }
    int r = 0;
    for (size_t i = 0; r == 0 && i < l.n_v1 + (l.has_v2 ? 1 : 0); i++) {
        const struct ctr_cgroup_hier *h = i < l.n_v1 ? &l.v1[i] : &l.v2;
        const char *sub = sub_cgroup_for(o, h, i < l.n_v1);
        char path[PATH_MAX], buf[32];
        if (snprintf(path, sizeof path, "%s%s%s%s/cgroup.procs", h->mountpoint, h->own,
                     sub ? "/" : "", sub ? sub : "") >= (int)sizeof path) {
            r = ctr_fail(err, ENAMETOOLONG, "cgroup of the container init %d", (int)init);
            break;
        }
        int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
        cleanup_close int fd = RETRY(open(path, O_WRONLY | O_CLOEXEC));
        if (fd < 0 || ctr_write_all(fd, buf, (size_t)n) < 0)
            r = ctr_fail(err, errno, "write `%s' = %d", path, (int)pid);
    }
    ctr_cgroup_layout_free(&l);
    return r;
}

/* One message from a child: 1 with *pid for MSG_PID, 2 with the listener's fd number in *pid
 * for MSG_SECCOMP, 0 at end of file, -1 with the child's error (or ours).  A bare int is
 * ctrlua-exec's errno: the execve of `prog` failed. */
static int read_msg(int sock, const char *prog, pid_t *pid, struct ctr_err *err)
{
    struct exec_msg m;
    ssize_t n = RETRY(recv(sock, &m, sizeof m, 0));
    if (n == 0)
        return 0;
    if (n < 0)
        return ctr_fail(err, errno, "exec: read from the process");
    if (n == (ssize_t)sizeof(int)) {
        int e;
        memcpy(&e, &m, sizeof e);
        return ctr_fail_program(err, e, "exec: `%s'", prog);
    }
    if (n == (ssize_t)sizeof m && (m.type == MSG_PID || m.type == MSG_SECCOMP)) {
        *pid = m.pid;
        return m.type == MSG_PID ? 1 : 2;
    }
    if (n == (ssize_t)sizeof m && m.type == MSG_ERROR) {
        *err = m.err;
        err->msg[sizeof err->msg - 1] = '\0';
        return -1;
    }
    return ctr_fail(err, EPROTO, "exec: a message of %zd bytes from the process", n);
}

pid_t ctr_exec(pid_t init, const struct ctr_exec_opts *o, struct ctr_err *err)
{
    if (init <= 0)
        return ctr_fail(err, EINVAL, "exec: no container init (pid %d)", (int)init);
    if (o->bundle == NULL)
        return ctr_fail(err, EINVAL, "exec: no bundle");
    if (o->preserve_fds < 0 || o->preserve_fds > 1 << 16)
        return ctr_fail(err, EINVAL, "preserve_fds: %d is out of range", o->preserve_fds);
    struct ctr_config cfg;
    if (ctr_config_load(o->bundle, &cfg, err) < 0)
        return -1;
    struct exec_ctx x = {.cfg = &cfg, .o = o, .init = init, .sync = -1, .console = -1,
                         .rootfd = -1, .tramp = -1, .agent = -1};
    for (size_t i = 0; i < EXEC_NNS; i++)
        x.nsfd[i] = -1;
    int sv[2] = {-1, -1}, pidfd = -1;
    pid_t joiner = -1, pid = -1;
    if (o->process && ctr_config_set_process(&cfg, o->process, strlen(o->process), err) < 0)
        goto fail;
    int has_socket = o->console_socket && *o->console_socket;
    if (cfg.terminal && !has_socket) {
        ctr_fail(err, EINVAL, "process.terminal is true but no console socket was given");
        goto fail;
    }
    if (!cfg.terminal && has_socket) {
        ctr_fail(err, EINVAL, "a console socket was given but process.terminal is false");
        goto fail;
    }
    if (ctr_own_executable(&x.self, err) < 0 || (x.tramp = ctr_sealed_trampoline(err)) < 0)
        goto fail;
    if ((pidfd = (int)syscall(SYS_pidfd_open, init, 0)) < 0) {
        ctr_fail(err, errno, "the container init %d", (int)init);
        goto fail;
    }
    if (open_namespaces(&x, pidfd, err) < 0)
        goto fail;
    if (cfg.terminal && (x.console = ctr_console_connect(o->console_socket, err)) < 0)
        goto fail;
    if (cfg.seccomp && ctr_seccomp_compile(cfg.seccomp, err) < 0)
        goto fail;
    if (ctr_seccomp_listener_path(cfg.seccomp) &&
        (x.agent = ctr_seccomp_connect(cfg.seccomp, err)) < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ctr_fail(err, errno, "socketpair");
        goto fail;
    }
    joiner = fork();
    if (joiner == 0) {
        close(sv[0]);
        x.sync = sv[1];
        child_join(&x);
    }
    if (joiner < 0) {
        ctr_fail(err, errno, "fork");
        goto fail;
    }
    close(sv[1]);
    sv[1] = -1;
    if (join_cgroups(init, joiner, o, err) < 0 || ctr_process_rlimits(joiner, &cfg, err) < 0 ||
        ctr_process_oom_score_adj(joiner, &cfg, err) < 0)
        goto fail;
    if (RETRY(send(sv[0], "g", 1, MSG_NOSIGNAL)) != 1) {
        ctr_fail(err, errno, "exec: start the joining process %d", (int)joiner);
        goto fail;
    }
    /* the joiner's pid message, the process's listener (which may come first: the two
     * write on the one socket), then end of file once the program runs (CLOEXEC) */
    int r, listener = -1;
    pid_t v = 0;
    while ((r = read_msg(sv[0], cfg.args[0], &v, err)) > 0) {
        if (r == 1 && pid > 0) {
            ctr_fail(err, EPROTO, "exec: unexpected message from the process");
            goto fail;
        }
        if (r == 1) {
            pid = v;
            RETRY(waitpid(joiner, NULL, 0));
            joiner = -1;
        } else {
            listener = (int)v;
        }
        if (pid > 0 && listener >= 0) {
            if (forward_listener(&x, sv[0], pid, listener, err) < 0)
                goto fail;
            listener = -1;
        }
    }
    if (r < 0)
        goto fail;
    if (pid <= 0) {
        RETRY(waitpid(joiner, NULL, 0));
        joiner = -1;
        ctr_fail(err, EPIPE, "exec: the joining process died");
        goto fail;
    }
    if (o->pid_file && ctr_write_pid_file(o->pid_file, pid, err) < 0)
        goto fail;
    goto done;

fail:
    if (joiner > 0) {
        kill(joiner, SIGKILL);
        RETRY(waitpid(joiner, NULL, 0));
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        RETRY(waitpid(pid, NULL, 0));
    }
    pid = -1;
done:
    for (size_t i = 0; i < EXEC_NNS; i++)
        if (x.nsfd[i] >= 0)
            close(x.nsfd[i]);
    if (x.console >= 0)
        close(x.console);
    if (x.rootfd >= 0)
        close(x.rootfd);
    if (x.tramp >= 0)
        close(x.tramp);
    if (x.agent >= 0)
        close(x.agent);
    if (pidfd >= 0)
        close(pidfd);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    ctr_config_free(&cfg);
    return pid;
}
