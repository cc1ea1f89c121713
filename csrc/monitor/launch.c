/* Starting the monitor (see monitor/monitor.h): fork, setsid, fork; the grandchild creates the init
 * and execve's build/ctrlua-monitor.  Only C runs after the first fork. */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/console_socket.h"
#include "base/fault.h"
#include "base/files.h"
#include "runtime/sealed.h"
#include "runtime/create.h"
#include "base/cleanup.h"

static __attribute__((noreturn)) void report_death(int rep, struct ctr_err *e,
                                                   const struct ctr_init_death *d)
{
    struct ctr_monitor_report r = {.ok = 0, .err = *e};
    if (d && d->died) {
        r.init_died = 1;
        r.init_status = d->status;
        r.init_oom = d->oom;
    }
    ctr_write_all(rep, &r, sizeof r);
    _exit(1);
}

static __attribute__((noreturn)) void report_fail(int rep, struct ctr_err *e)
{
    report_death(rep, e, NULL);
}

static void close_pipes(int (*p)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 2; j++)
            if (p[i][j] >= 0)
                close(p[i][j]);
}

/* Start the logging binary with containerd's shim protocol: its fd 3 reads the container's
 * stdout, fd 4 its stderr, and it closes fd 5 (or writes to it) once ready.  A logger that
 * cannot be executed is an error here, before the container exists (containerd's shim fails
 * the task create then): otherwise it would look like one that started and exited at once,
 * and the container's output would go nowhere. */
static pid_t start_logger(const struct ctr_monitor_spawn_opts *o, int *out_w, int *err_w,
                          struct ctr_err *err)
{
    /* out, err, ready, and exec: the child's errno when its execve fails; the write end is
     * close-on-exec, so a successful execve reads as EOF */
    enum { PO, PE, PR, PX };
    int p[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
    for (size_t i = 0; i < ARRAY_SIZE(p); i++)
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            int saved = errno;
            close_pipes(p, ARRAY_SIZE(p));
            return ctr_fail(err, saved, "logger pipes");
        }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close_pipes(p, ARRAY_SIZE(p));
        return ctr_fail(err, saved, "fork the logger `%s'", o->logger_argv[0]);
    }
    if (pid == 0) {
        /* above 5 first, so that no dup2 clobbers a source */
        int a = fcntl(p[PO][0], F_DUPFD, 10), b = fcntl(p[PE][0], F_DUPFD, 10),
            c = fcntl(p[PR][1], F_DUPFD, 10), x = fcntl(p[PX][1], F_DUPFD_CLOEXEC, 10);
        int nul = open("/dev/null", O_RDWR);
        int e = 0;
        if (a < 0 || b < 0 || c < 0 || x < 0 || nul < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0 ||
            dup2(c, 5) < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0) {
            e = errno ? errno : EBADF;
        } else {
            /* the rest closes at the exec (x with it, which is how we learn it worked) */
            close_range(6, ~0U, CLOSE_RANGE_CLOEXEC);
            setsid();
            execve(o->logger_argv[0], o->logger_argv, o->logger_envp);
            e = errno;
        }
        if (x >= 0)
            ctr_write_all(x, &e, sizeof e);
        _exit(127);
    }
    close(p[PO][0]);
    close(p[PE][0]);
    close(p[PR][1]);
    close(p[PX][1]);
    int child_errno = 0;
    ssize_t got = ctr_read_full(p[PX][0], &child_errno, sizeof child_errno);
    close(p[PX][0]);
    if (got == (ssize_t)sizeof child_errno) {
        close(p[PO][1]);
        close(p[PE][1]);
        close(p[PR][0]);
        RETRY(waitpid(pid, NULL, 0));
        return ctr_fail(err, child_errno, "start the logging binary `%s'", o->logger_argv[0]);
    }
    char byte;
    RETRY(read(p[PR][0], &byte, 1)); /* a byte, or EOF when it closes fd 5 (or dies) */
    close(p[PR][0]);
    *out_w = p[PO][1];
    *err_w = p[PE][1];
    return pid;
}

/* The task's socket, and with process.terminal the console socket the init sends its pty
 * master to (which we own: the master stays here for the task's life, so the container's
 * terminal never hangs up when an attacher goes).  Both exist before create returns to the
 * caller, so a `start` right after finds them; they are bound relative to the task directory
 * (sun_path is short).  On failure nothing of them is left. */
static int bind_sockets(const struct ctr_monitor_spawn_opts *o, int *ls, int *cs,
                        struct ctr_err *e)
{
    *ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, CTR_MONITOR_SOCK);
    unlink(CTR_MONITOR_SOCK);
    mode_t old = umask(0077);
    if (*ls < 0 || bind(*ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(*ls, 16) < 0) {
        ctr_fail(e, errno, "monitor: bind `%s/" CTR_MONITOR_SOCK "'", o->bundle);
        umask(old);
        return -1;
    }
    *cs = -1;
    if (o->console) {
        struct sockaddr_un ca = {.sun_family = AF_UNIX};
        strcpy(ca.sun_path, CTR_MONITOR_CONSOLE_SOCK);
        unlink(CTR_MONITOR_CONSOLE_SOCK);
        *cs = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (*cs < 0 || bind(*cs, (struct sockaddr *)&ca, sizeof ca) < 0 || listen(*cs, 1) < 0) {
            ctr_fail(e, errno, "monitor: bind `%s/" CTR_MONITOR_CONSOLE_SOCK "'", o->bundle);
            unlink(CTR_MONITOR_SOCK);
            umask(old);
            return -1;
        }
    }
    umask(old);
    return 0;
}

/* Once create has returned, the init has sent its pty master (queued on the connection to
 * the console socket cs): take it. */
static int receive_master(const struct ctr_monitor_spawn_opts *o, int cs, struct ctr_err *e)
{
    int conn = RETRY(accept4(cs, NULL, NULL, SOCK_CLOEXEC));
    char name[64];
    int master = -1;
    if (conn < 0)
        ctr_fail(e, errno, "monitor: accept on `%s/" CTR_MONITOR_CONSOLE_SOCK "'", o->bundle);
    else
        master = ctr_recv_fd(conn, name, sizeof name, e);
    if (conn >= 0)
        close(conn);
    return master;
}

/* --fifo-dir: a write end of each output fifo, opened anew through the init's fd (its O_RDWR
 * end is a reader, so the open does not block); -1 where there is none. */
static void open_fifo_writers(const struct ctr_monitor_spawn_opts *o, int fifo[2])
{
    fifo[0] = fifo[1] = -1;
    for (int i = 0; o->keep_fifos && i < 2; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", o->stdio[i + 1]);
        struct stat st;
        if (o->stdio[i + 1] < 0 || fstat(o->stdio[i + 1], &st) < 0 || !S_ISFIFO(st.st_mode))
            continue;
        int w = RETRY(open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        fifo[i] = w >= 0 ? fcntl(w, F_DUPFD, 3) : -1;
        if (w >= 0)
            close(w);
    }
}

/* Our stdio to /dev/null; every inherited fd but the socket (*ls), the report pipe (*rep),
 * the pty master (*master) and the fifo writers goes at execve.  The three are moved to 3 or
 * above first (the fifo writers are there already). */
static void keep_only(const int fifo[2], int *ls, int *rep, int *master)
{
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
    }
    int lfd = fcntl(*ls, F_DUPFD, 3), rfd = fcntl(*rep, F_DUPFD, 3);
    int mfd = *master >= 0 ? fcntl(*master, F_DUPFD, 3) : -1;
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 0; i < 2; i++)
        if (fifo[i] >= 0)
            fcntl(fifo[i], F_SETFD, 0);
    if (lfd >= 0)
        fcntl(lfd, F_SETFD, 0);
    if (rfd >= 0)
        fcntl(rfd, F_SETFD, 0);
    if (mfd >= 0)
        fcntl(mfd, F_SETFD, 0);
    *ls = lfd;
    *rep = rfd;
    *master = mfd;
}

/* Become the monitor of init pid: build/ctrlua-monitor from a sealed copy when there is one,
 * else ctr_monitor_run in this process image. */
static __attribute__((noreturn)) void run_monitor(const struct ctr_monitor_spawn_opts *o,
                                                  pid_t pid, pid_t logger, int lfd, int rfd,
                                                  int mfd, const int fifo[2],
                                                  struct ctr_err *e)
{
    char spid[16], slfd[16], srfd[16], slog[16], smfd[16], sfifo[32];
    snprintf(spid, sizeof spid, "%d", (int)pid);
    snprintf(slfd, sizeof slfd, "%d", lfd);
    snprintf(srfd, sizeof srfd, "%d", rfd);
    snprintf(slog, sizeof slog, "%d", (int)logger);
    snprintf(smfd, sizeof smfd, "%d", mfd);
    snprintf(sfifo, sizeof sfifo, "%d,%d", fifo[0], fifo[1]);
    char *argv[] = {"ctrlua-monitor", (char *)o->bundle, spid, slfd, srfd,
                    (char *)(o->oom_file ? o->oom_file : "-"), slog, smfd, sfifo, NULL};
    char *envp[] = {NULL};
    /* from a sealed copy (runtime/sealed.h): the monitor is the init's parent, and a container that
     * shares a pid namespace with it must find no way to the host's file through its exe */
    if (o->monitor_bin && lfd >= 0 && rfd >= 0) {
        int bin = ctr_sealed_copy(o->monitor_bin, e);
        if (bin < 0) {
            kill(pid, SIGKILL);
            report_fail(rfd, e);
        }
        syscall(SYS_execveat, bin, "", argv, envp, AT_EMPTY_PATH);
        close(bin);
    }
    /* No monitor binary: supervise from this process image (larger, but the same code). */
    struct ctr_monitor_args a = {.dir = o->bundle, .pid = pid, .listen_fd = lfd,
                                 .report_fd = rfd, .oom_file = o->oom_file, .logger = logger,
                                 .console_fd = mfd, .fifo_fds = {fifo[0], fifo[1]}};
    if (ctr_monitor_run(&a, e) < 0) {
        kill(pid, SIGKILL);
        report_fail(rfd, e);
    }
    _exit(0);
}

static __attribute__((noreturn)) void monitor_child(const struct ctr_monitor_spawn_opts *o,
                                                    int rep)
{
    struct ctr_err e = {.code = 0};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        ctr_fail(&e, errno, "monitor: PR_SET_CHILD_SUBREAPER");
        report_fail(rep, &e);
    }
    if (chdir(o->bundle) < 0) {
        ctr_fail(&e, errno, "monitor: chdir `%s'", o->bundle);
        report_fail(rep, &e);
    }

    struct ctr_create_opts c = {
        .exec_fifo = o->exec_fifo,
        .pid_file = o->pid_file,
        .no_pivot = o->no_pivot,
        .stdio = {o->stdio[0], o->stdio[1], o->stdio[2]},
        .id = o->id,
        /* we are the init's parent: if we die before start, so does it (runtime/create.c) */
        .die_with_parent = 1,
    };
    struct ctr_init_death death = {0, 0, 0};
    c.death = &death;
    pid_t logger = 0;
    int out_w = -1, err_w = -1;
    if (o->logger_argv) {
        logger = start_logger(o, &out_w, &err_w, &e);
        if (logger < 0)
            report_fail(rep, &e);
        c.stdio[1] = out_w;
        c.stdio[2] = err_w;
    }
    int ls, cs, master = -1;
    if (bind_sockets(o, &ls, &cs, &e) < 0) {
        if (logger > 0)
            kill(logger, SIGKILL);
        report_fail(rep, &e);
    }
    if (cs >= 0)
        c.console_socket = CTR_MONITOR_CONSOLE_SOCK; /* relative: we are in the bundle */

    pid_t pid = ctr_create(o->bundle, &c, &e);
    if (pid >= 0 && cs >= 0 && (master = receive_master(o, cs, &e)) < 0) {
        kill(pid, SIGKILL);
        RETRY(waitpid(pid, NULL, 0));
        pid = -1;
    }
    if (cs >= 0) {
        close(cs);
        unlink(CTR_MONITOR_CONSOLE_SOCK);
    }
    if (pid < 0) {
        unlink(CTR_MONITOR_SOCK);
        if (logger > 0)
            kill(logger, SIGKILL);
        report_death(rep, &e, &death);
    }
    if (out_w >= 0) {
        close(out_w);
        close(err_w);
    }
    int fifo[2];
    open_fifo_writers(o, fifo);
    keep_only(fifo, &ls, &rep, &master);
    run_monitor(o, pid, logger, ls, rep, master, fifo, &e);
}

/* In the intermediate process, while the monitor creates the init: fsync each of fsyncs,
 * then syncfs the file system of each of filesystems, and write the first failure to fd
 * (nothing is written when all succeed). */
static void sync_all(const char *const *fsyncs, const char *const *filesystems, int fd)
{
    struct ctr_err e = {.code = 0};
    for (; fsyncs && *fsyncs; fsyncs++)
        if (ctr_fsync_path(*fsyncs, &e) < 0) {
            ctr_write_all(fd, &e, sizeof e);
            return;
        }
    for (; filesystems && *filesystems; filesystems++) {
        int d = open(*filesystems, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d < 0 || syncfs(d) < 0) {
            ctr_fail(&e, errno, "syncfs `%s'", *filesystems);
            if (d >= 0)
                close(d);
            ctr_write_all(fd, &e, sizeof e);
            return;
        }
        close(d);
    }
}

/* The result of sync_all, read once the intermediate process is gone (status st): 0, or -1
 * with its error, also when that process died before it finished. */
static int sync_result(int fd, int st, struct ctr_err *err)
{
    ssize_t n = ctr_read_full(fd, err, sizeof *err);
    int saved = errno;
    close(fd);
    if (n == (ssize_t)sizeof *err)
        return -1;
    if (n < 0)
        return ctr_fail(err, saved, "read the syncfs's result");
    if (n != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return ctr_fail(err, EPIPE, "the monitor's launch exited before its syncfs");
    return 0;
}

pid_t ctr_monitor_spawn(const struct ctr_monitor_spawn_opts *o, pid_t *monitor,
                        struct ctr_err *err)
{
    int rep[2], syn[2] = {-1, -1};
    if (pipe2(rep, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "pipe");
    int want_sync = o->fsync || o->syncfs;
    if (want_sync && pipe2(syn, O_CLOEXEC) < 0) {
        close(rep[0]);
        close(rep[1]);
        return ctr_fail(err, errno, "pipe");
    }
    pid_t mid = fork();
    if (mid < 0) {
        int saved = errno;
        close_pipes((int[][2]){{rep[0], rep[1]}, {syn[0], syn[1]}}, 2);
        return ctr_fail(err, saved, "fork the monitor");
    }
    if (mid == 0) {
        close(rep[0]);
        if (syn[0] >= 0)
            close(syn[0]);
        struct ctr_err e = {.code = 0};
        if (setsid() < 0) {
            ctr_fail(&e, errno, "monitor: setsid");
            report_fail(rep[1], &e);
        }
        pid_t p = fork();
        if (p < 0) {
            ctr_fail(&e, errno, "fork the monitor");
            report_fail(rep[1], &e);
        }
        if (p == 0) {
            if (syn[1] >= 0)
                close(syn[1]);
            monitor_child(o, rep[1]);
        }
        /* the caller's durability point, here so that it overlaps the create: this process
         * has nothing else to do, and the caller waits for it anyway */
        if (want_sync)
            sync_all(o->fsync, o->syncfs, syn[1]);
        _exit(0);
    }
    close(rep[1]);
    if (syn[1] >= 0)
        close(syn[1]);
    ctr_fault("monitor.forked");
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    struct ctr_err sync_err = {.code = 0};
    int synced = syn[0] >= 0 ? sync_result(syn[0], st, &sync_err) : 0;
    struct ctr_monitor_report r;
    ssize_t n = ctr_read_full(rep[0], &r, sizeof r);
    int saved = errno;
    close(rep[0]);
    if (n < 0)
        return ctr_fail(err, saved, "read the monitor's report");
    if (n != (ssize_t)sizeof r)
        return ctr_fail(err, EPIPE, "the monitor of `%s' exited before reporting", o->bundle);
    if (!r.ok) {
        *err = r.err;
        if (o->death && r.init_died)
            *o->death = (struct ctr_init_death){1, r.init_status, r.init_oom};
        return -1;
    }
    if (synced < 0) {
        /* what was to be durable is not: no task.  The init has not been started; the
         * monitor reaps it, answers the wait, and exits on the delete */
        char reply[64];
        struct ctr_err ignored;
        kill(r.pid, SIGKILL);
        ctr_monitor_request(o->bundle, "wait", reply, sizeof reply, &ignored);
        ctr_monitor_request(o->bundle, "delete", reply, sizeof reply, &ignored);
        *err = sync_err;
        return -1;
    }
    if (monitor)
        *monitor = r.monitor;
    return r.pid;
}
