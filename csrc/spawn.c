/* create: clone the container's init with its new namespaces, set it up in C, and return once
 * it blocks on the exec fifo.  start: release it.
 *
 * The parent and the child talk over a SOCK_SEQPACKET socketpair (CLOEXEC on both ends):
 *
 *   parent                                   child (the future init)
 *   clone(CLONE_NEW*)  ───────────────────►  PR_SET_DUMPABLE 0, fds moved, stdio
 *   (cgroup made before clone) add pid       blocks reading the socket
 *   send "go"          ───────────────────►  setns, setsid, rootfs, pivot_root, hostname,
 *                                            cwd, rlimits, uid/gid, caps, no_new_privs,
 *                                            executable lookup, fds marked CLOEXEC
 *   read one message   ◄───────────────────  {ready} or {error: errno, text}
 *   pid file, return pid                     open the exec fifo for writing: blocks
 *   ... start: read the fifo ─────────────►  write a byte, execve
 *
 * An error anywhere in the child is a struct ctr_err sent whole ("mount `proc' on `/proc':
 * Permission denied"); the parent then kills and reaps the child.  The child's mounts live
 * only in its own mount namespace, so they vanish with it and nothing is left on the host.
 * Only C runs in the child: the Lua state of the parent is never touched there.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "fsutil.h"
#include "process.h"
#include "rootfs.h"
#include "util.h"

enum { MSG_READY = 1, MSG_ERROR = 2 };

struct sync_msg {
    int type;
    struct ctr_err err;
};

struct child_args {
    const struct ctr_config *cfg;
    const struct ctr_create_opts *opts;
    int sync;         /* our end of the socketpair */
    int fifo;         /* O_PATH fd of the exec fifo, or -1 */
    int nsfd[8];      /* namespaces to join (the pid one is joined by the parent) */
};

static void child_send(int sync, int type, const struct ctr_err *err)
{
    struct sync_msg m = {.type = type};
    if (err)
        m.err = *err;
    while (send(sync, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

static __attribute__((noreturn)) void child_fail(int sync, struct ctr_err *err)
{
    child_send(sync, MSG_ERROR, err);
    _exit(1);
}

/* Put the init's stdio in place.  The caller's fds are first duplicated above everything we
 * use, so that stdin=1,stdout=0 style permutations cannot clobber one another. */
static int child_stdio(const struct ctr_create_opts *o, int min, struct ctr_err *err)
{
    int tmp[3];
    for (int i = 0; i < 3; i++) {
        tmp[i] = -1;
        if (o->stdio[i] >= 0 && (tmp[i] = fcntl(o->stdio[i], F_DUPFD_CLOEXEC, min)) < 0)
            return ctr_fail(err, errno, "stdio: fd %d", o->stdio[i]);
    }
    for (int i = 0; i < 3; i++)
        if (tmp[i] >= 0) {
            if (dup2(tmp[i], i) < 0)
                return ctr_fail(err, errno, "stdio: dup2 fd %d to %d", o->stdio[i], i);
            close(tmp[i]);
        }
    return 0;
}

/* Mark every fd from 3 up CLOEXEC except the preserved ones, which lose CLOEXEC: after
 * execve the container holds exactly 0, 1, 2 and 3..3+n-1 (runc CVE-2024-21626 was a leaked
 * fd to the host's cgroupfs). */
static int child_fds(int preserve, struct ctr_err *err)
{
    for (int fd = 3; fd < 3 + preserve; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            return ctr_fail(err, errno, "preserve fd %d", fd);
    }
    if (close_range((unsigned)(3 + preserve), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return ctr_fail(err, errno, "close_range");
    return 0;
}

static __attribute__((noreturn)) void child_main(struct child_args *a)
{
    const struct ctr_config *c = a->cfg;
    const struct ctr_create_opts *o = a->opts;
    struct ctr_err err = {0, ""};
    int sync = a->sync;

    /* Not dumpable before anything else: while we hold fds and run the host's binary inside
     * the container's namespaces, a container process must not be able to ptrace us or open
     * /proc/<pid>/exe to overwrite the runtime (runc CVE-2019-5736).  execve resets it. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        ctr_fail(&err, errno, "prctl PR_SET_DUMPABLE");
        child_fail(sync, &err);
    }
    /* The init starts with no signal blocked and every disposition at its default: a mask
     * or an SIG_IGN of the caller (LuaJIT, a shell that ignores SIGPIPE) would otherwise
     * survive execve into the container. */
    /* (the raw syscall: glibc's sigaction refuses the two real-time signals it keeps for
     * itself, and those must be reset too) */
    struct {
        unsigned long handler, flags, restorer, mask;
    } dfl = {0, 0, 0, 0};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Our own fds go above the preserved range before anything else takes a number. */
    int min = 3 + o->preserve_fds;
    int moved = ctr_fd_move_above(sync, min);
    if (moved < 0) {
        ctr_fail(&err, errno, "move fds above %d", min);
        child_fail(sync, &err);
    }
    sync = a->sync = moved;
    if (a->fifo >= 0 && (a->fifo = ctr_fd_move_above(a->fifo, min)) < 0) {
        ctr_fail(&err, errno, "move fds above %d", min);
        child_fail(sync, &err);
    }
    for (size_t i = 0; i < c->nns; i++)
        if (a->nsfd[i] >= 0 && (a->nsfd[i] = ctr_fd_move_above(a->nsfd[i], min)) < 0) {
            ctr_fail(&err, errno, "move fds above %d", min);
            child_fail(sync, &err);
        }
    if (child_stdio(o, min, &err) < 0)
        child_fail(sync, &err);

    /* Wait for the parent's go (it puts us in our cgroup first). */
    char go;
    if (RETRY(read(sync, &go, 1)) != 1)
        _exit(1);
    /* Only now, inside the container's cgroup: the new cgroup namespace takes the cgroup we
     * are in as its root.  Had clone() made it, its root would be the caller's cgroup and
     * /proc/self/cgroup in the container would show the host's path. */
    if (c->unshare_cgroup && unshare(CLONE_NEWCGROUP) < 0) {
        ctr_fail(&err, errno, "unshare the cgroup namespace");
        child_fail(sync, &err);
    }

    /* Join the namespaces named by path.  The user namespace would come first (it grants
     * the capabilities the other setns calls are checked against; joining one is refused
     * at config time for now).  The mount namespace comes last: after it, paths resolve in
     * the joined namespace, and the other setns calls do not depend on paths.  The pid
     * namespace is not here: setns(CLONE_NEWPID) only affects children, so the parent
     * joined it before clone and we were born in it. */
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->nns; i++) {
            int is_mnt = c->ns[i].flag == CLONE_NEWNS;
            if (a->nsfd[i] < 0 || c->ns[i].flag == CLONE_NEWPID || (pass == 0) == is_mnt)
                continue;
            if (setns(a->nsfd[i], c->ns[i].flag) < 0) {
                ctr_fail(&err, errno, "join the %s namespace `%s'", c->ns[i].name,
                         c->ns[i].path);
                child_fail(sync, &err);
            }
            close(a->nsfd[i]);
        }

    /* A session of its own: the container cannot reach our terminal's foreground process
     * group (TIOCSTI, bubblewrap CVE-2017-5226); the caller forwards signals instead. */
    if (setsid() < 0) {
        ctr_fail(&err, errno, "setsid");
        child_fail(sync, &err);
    }
    umask(0); /* device nodes and mount points get exactly the modes asked for */

    if (ctr_process_oom_score_adj(c, &err) < 0)
        child_fail(sync, &err);
    cleanup_close int rootfd = ctr_rootfs_prepare(c, &err);
    if (rootfd < 0 || ctr_rootfs_enter(c, rootfd, o->no_pivot, &err) < 0)
        child_fail(sync, &err);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) {
        ctr_fail(&err, errno, "sethostname `%s'", c->hostname);
        child_fail(sync, &err);
    }
    if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0) {
        ctr_fail(&err, errno, "setdomainname `%s'", c->domainname);
        child_fail(sync, &err);
    }
    if (ctr_process_chdir(c, &err) < 0 || ctr_process_rlimits(c, &err) < 0)
        child_fail(sync, &err);
    if (c->seccomp && !c->no_new_privs && ctr_seccomp_load(c->seccomp, &err) < 0)
        child_fail(sync, &err);
    if (ctr_process_identity(c, &err) < 0)
        child_fail(sync, &err);
    /* HOOK(seccomp, apparmor): load the filter / set the exec label here, after
     * no_new_privs and before the lookup below. */
    char exe[PATH_MAX];
    if (ctr_process_lookup(c, exe, sizeof exe, &err) < 0)
        child_fail(sync, &err);
    umask(c->umask >= 0 ? (mode_t)c->umask : 022);
    if (child_fds(o->preserve_fds, &err) < 0)
        child_fail(sync, &err);

    child_send(sync, MSG_READY, NULL);

    if (a->fifo >= 0) {
        /* Reopen the O_PATH fd for writing through /proc/self/fd: it blocks until start
         * opens the read side.  The O_PATH fd was opened before pivot_root, when the fifo's
         * path was still reachable; the reopen needs no path at all. */
        char p[32];
        int w = RETRY(open(ctr_fd_path(a->fifo, p, sizeof p), O_WRONLY | O_CLOEXEC));
        if (w < 0 || RETRY(write(w, "0", 1)) != 1) {
            dprintf(2, "ctrlua init: exec fifo: %s\n", strerror(errno));
            _exit(127);
        }
        close(w);
        close(a->fifo);
    }
    if (c->seccomp && c->no_new_privs && ctr_seccomp_load(c->seccomp, &err) < 0) {
        dprintf(2, "ctrlua init: %s\n", err.msg);
        _exit(127);
    }
    execve(exe, (char *const *)c->args, (char *const *)c->env);
    int e = errno;
    dprintf(2, "ctrlua init: exec `%s': %s\n", exe, strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* Wait for the child's one message.  0 on ready, -1 with the child's error otherwise. */
static int read_child(int sock, pid_t pid, struct ctr_err *err)
{
    struct sync_msg m;
    ssize_t n = RETRY(recv(sock, &m, sizeof m, 0));
    if (n == (ssize_t)sizeof m && m.type == MSG_READY)
        return 0;
    if (n == (ssize_t)sizeof m && m.type == MSG_ERROR) {
        *err = m.err;
        err->msg[sizeof err->msg - 1] = '\0';
        return -1;
    }
    if (n < 0)
        return ctr_fail(err, errno, "read from the container init %d", (int)pid);
    return ctr_fail(err, EPIPE, "the container init %d died during setup", (int)pid);
}

/* Join the pid namespace named by path for our future children only (setns(CLONE_NEWPID)
 * changes pid_for_children, not our own pid).  *restore gets our own, to go back after
 * clone. */
static int enter_pid_ns(const struct ctr_config *c, const int *nsfd, int *restore,
                        struct ctr_err *err)
{
    *restore = -1;
    for (size_t i = 0; i < c->nns; i++) {
        if (c->ns[i].flag != CLONE_NEWPID || nsfd[i] < 0)
            continue;
        *restore = RETRY(open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
        if (*restore < 0)
            return ctr_fail(err, errno, "open `/proc/self/ns/pid'");
        if (setns(nsfd[i], CLONE_NEWPID) < 0)
            return ctr_fail(err, errno, "join the pid namespace `%s'", c->ns[i].path);
    }
    return 0;
}

pid_t ctr_create(const char *bundle, const struct ctr_create_opts *opts, struct ctr_err *err)
{
    struct ctr_config cfg;
    if (ctr_config_load(bundle, &cfg, err) < 0)
        return -1;
    struct child_args a = {.cfg = &cfg, .opts = opts, .sync = -1, .fifo = -1};
    int sv[2] = {-1, -1}, restore_pid = -1, made_fifo = 0, made_cgroup = 0, have_layout = 0;
    struct ctr_cgroup_layout cgl;
    pid_t pid = -1;
    for (size_t i = 0; i < ARRAY_SIZE(a.nsfd); i++)
        a.nsfd[i] = -1;
    if (opts->preserve_fds < 0 || opts->preserve_fds > 1 << 16) {
        ctr_fail(err, EINVAL, "preserve_fds: %d is out of range", opts->preserve_fds);
        goto fail;
    }

    if (opts->exec_fifo) {
        /* 0600, and owned by the container's user: the init reopens it after dropping to
         * that user and its capabilities. */
        if (mkfifo(opts->exec_fifo, 0600) < 0) {
            ctr_fail(err, errno, "mkfifo `%s'", opts->exec_fifo);
            goto fail;
        }
        made_fifo = 1;
        a.fifo = RETRY(open(opts->exec_fifo, O_PATH | O_CLOEXEC | O_NOFOLLOW));
        if (a.fifo < 0 || fchownat(a.fifo, "", cfg.uid, cfg.gid, AT_EMPTY_PATH) < 0) {
            ctr_fail(err, errno, "open exec fifo `%s'", opts->exec_fifo);
            goto fail;
        }
    }
    /* Every namespace path is opened before anything is joined, so that joining one cannot
     * change what the next path names. */
    for (size_t i = 0; i < cfg.nns; i++) {
        if (cfg.ns[i].path == NULL)
            continue;
        a.nsfd[i] = RETRY(open(cfg.ns[i].path, O_RDONLY | O_CLOEXEC));
        if (a.nsfd[i] < 0) {
            ctr_fail(err, errno, "open the %s namespace `%s'", cfg.ns[i].name, cfg.ns[i].path);
            goto fail;
        }
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ctr_fail(err, errno, "socketpair");
        goto fail;
    }
    /* The cgroup is made, and its limits written, before clone: a bad limit fails create
     * with no child to kill, and the child is inside the limits before it does anything. */
    if (cfg.cgroups_path && *cfg.cgroups_path) {
        if (ctr_cgroup_layout_detect(&cgl, NULL, NULL, NULL, err) < 0)
            goto fail;
        have_layout = 1;
        if (ctr_cgroup_create(&cgl, cfg.cgroups_path, cfg.resources, err) < 0)
            goto fail;
        made_cgroup = 1;
    }
    if (enter_pid_ns(&cfg, a.nsfd, &restore_pid, err) < 0)
        goto fail;
    /* clone(2) without a new stack behaves as fork(2), with the namespace flags applied to
     * the child: it starts in its new pid namespace as pid 1.  (unshare(CLONE_NEWPID) would
     * only move its future children, and would need a second fork.) */
    pid = (pid_t)syscall(SYS_clone, (unsigned long)cfg.clone_flags | SIGCHLD, NULL, NULL, NULL,
                         NULL);
    if (pid == 0) {
        close(sv[0]);
        a.sync = sv[1];
        child_main(&a);
    }
    int clone_errno = errno;
    if (restore_pid >= 0 && setns(restore_pid, CLONE_NEWPID) < 0 && pid > 0) {
        ctr_fail(err, errno, "return to our own pid namespace");
        goto fail;
    }
    if (pid < 0) {
        ctr_fail(err, clone_errno, "clone the container init");
        goto fail;
    }
    close(sv[1]);
    sv[1] = -1;
    if (made_cgroup && ctr_cgroup_add_pid(&cgl, cfg.cgroups_path, pid, err) < 0)
        goto fail;
    if (opts->after_clone && opts->after_clone(pid, opts->hook_data, err) < 0)
        goto fail;
    if (RETRY(send(sv[0], "g", 1, MSG_NOSIGNAL)) != 1) {
        if (read_child(sv[0], pid, err) == 0)
            ctr_fail(err, errno, "signal the container init %d", (int)pid);
        goto fail;
    }
    if (read_child(sv[0], pid, err) < 0)
        goto fail;
    if (opts->pid_file) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d", (int)pid);
        if (ctr_write_file_atomic(opts->pid_file, buf, (size_t)n, 0644, 0, err) < 0)
            goto fail;
    }
    goto done;

fail:
    if (pid > 0) {
        kill(pid, SIGKILL);
        RETRY(waitpid(pid, NULL, 0));
    }
    if (made_fifo)
        unlink(opts->exec_fifo);
    if (made_cgroup) {
        struct ctr_err ignored;
        ctr_cgroup_delete(&cgl, cfg.cgroups_path, &ignored);
    }
    pid = -1;
done:
    if (have_layout)
        ctr_cgroup_layout_free(&cgl);
    for (size_t i = 0; i < ARRAY_SIZE(a.nsfd); i++)
        if (a.nsfd[i] >= 0)
            close(a.nsfd[i]);
    if (a.fifo >= 0)
        close(a.fifo);
    if (restore_pid >= 0)
        close(restore_pid);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    ctr_config_free(&cfg);
    return pid;
}

int ctr_start(const char *exec_fifo, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(exec_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
    if (fd < 0)
        return ctr_fail(err, errno, "open exec fifo `%s'", exec_fifo);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
        return ctr_fail(err, EINVAL, "exec fifo `%s': not a fifo", exec_fifo);
    /* The init's open(O_WRONLY) counts as a writer from the moment it starts blocking, so a
     * read that finds no writer at all (0, EOF) means nobody is waiting; EAGAIN means the
     * init is there and about to write its byte. */
    for (;;) {
        char b;
        ssize_t n = read(fd, &b, 1);
        if (n == 1)
            break;
        if (n == 0)
            return ctr_fail(err, ENXIO, "exec fifo `%s': no container init is waiting",
                            exec_fifo);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return ctr_fail(err, errno, "read exec fifo `%s'", exec_fifo);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return ctr_fail(err, errno, "poll exec fifo `%s'", exec_fifo);
    }
    if (unlink(exec_fifo) < 0)
        return ctr_fail(err, errno, "remove exec fifo `%s'", exec_fifo);
    return 0;
}
