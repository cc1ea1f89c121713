/* The monitor's supervision loop (see monitor/monitor.h), and the client side of its socket.  This file
 * and base/files.c, base/procstat.c and base/error.c are all that build/ctrlua-monitor links: libc only,
 * static buffers. */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/procstat.h"
#include "base/cleanup.h"

#define MAX_CLIENTS 32

enum { ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
static const char *const st_names[] = {"created", "running", "paused", "stopped"};

struct mon {
    const struct ctr_monitor_args *a;
    int state;
    long long start_time;
    int exit_code, signal, oom;
    char created_at[48], started_at[48], exited_at[48];
    int clients[MAX_CLIENTS];
    int waiting[MAX_CLIENTS];
    int fifo_fds[2]; /* the --fifo-dir write ends still held */
};

static void now_rfc3339(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%09ldZ", ts.tv_nsec);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* With the pid it names one process across pid reuse; -1 when it cannot be read. */
static long long proc_start_time(pid_t pid)
{
    long long t;
    struct ctr_err ignored;
    return ctr_procstat_field(pid, CTR_PROCSTAT_STARTTIME, &t, &ignored) < 0 ? -1 : t;
}

/* `oom_kill N` in memory.events (v2) or memory.oom_control (v1). */
static int read_oom(const char *path)
{
    char buf[2048];
    if (!path)
        return 0;
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return 0;
    ssize_t n = ctr_read_full(fd, buf, sizeof buf - 1);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strstr(buf, "oom_kill ");
    return p && strtol(p + 9, NULL, 10) > 0;
}

static int write_status(struct mon *m, struct ctr_err *err)
{
    char buf[1024], path[PATH_MAX];
    int n = snprintf(buf, sizeof buf,
                     "{\"status\":\"%s\",\"pid\":%d,\"start_time\":%lld,\"monitor_pid\":%d,"
                     "\"detached\":true,\"created_at\":\"%s\"",
                     st_names[m->state], (int)m->a->pid, m->start_time, (int)getpid(),
                     m->created_at);
    if (m->started_at[0])
        n += snprintf(buf + n, sizeof buf - n, ",\"started_at\":\"%s\"", m->started_at);
    if (m->state == ST_STOPPED) {
        n += snprintf(buf + n, sizeof buf - n, ",\"exit_code\":%d,\"exited_at\":\"%s\",\"oom\":%s",
                      m->exit_code, m->exited_at, m->oom ? "true" : "false");
        if (m->signal)
            n += snprintf(buf + n, sizeof buf - n, ",\"signal\":%d", m->signal);
    }
    n += snprintf(buf + n, sizeof buf - n, "}");
    snprintf(path, sizeof path, "%s/status", m->a->dir);
    /* STATE is not fsynced (docs/crash-consistency.md): the status describes processes, which
     * do not outlive the machine; the rename keeps it whole for readers.  Syncing it cost two
     * fsyncs per change, and the exit's pair came before the answer `tasks delete` waits for. */
    return ctr_write_file_atomic(path, buf, (size_t)n, 0600, CTR_WRITE_NOSYNC, err);
}

/* ---------------------------------------------------------------- the events log */

/* The log open for appending and locked (shared), its generation current: a rotation between
 * our open and our lock is seen (the path names another file) and we open again. */
static int events_open(const char *path, struct stat *st, struct ctr_err *err)
{
    for (int tries = 0;; tries++) {
        int fd = RETRY(open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (fd < 0)
            return ctr_fail(err, errno, "open `%s'", path);
        struct stat now;
        if (RETRY(flock(fd, LOCK_SH)) < 0 || fstat(fd, st) < 0) {
            int e = errno;
            close(fd);
            return ctr_fail(err, e, "lock `%s'", path);
        }
        if (stat(path, &now) == 0 && now.st_ino == st->st_ino && now.st_dev == st->st_dev)
            return fd;
        close(fd);
        if (tries == 100)
            return ctr_fail(err, EAGAIN, "append to `%s': it keeps being rotated", path);
    }
}

int ctr_events_append(const char *path, const char *line, size_t len, size_t limit,
                      struct ctr_err *err)
{
    char old[PATH_MAX];
    if ((size_t)snprintf(old, sizeof old, "%s.1", path) >= sizeof old)
        return ctr_fail(err, ENAMETOOLONG, "events log `%s'", path);
    if (limit == 0)
        limit = CTR_EVENTS_MAX;
    for (;;) {
        struct stat st;
        int fd = events_open(path, &st, err);
        if (fd < 0)
            return -1;
        if (st.st_size == 0 || (size_t)st.st_size + len <= limit) {
            int rc = ctr_write_all(fd, line, len);
            int e = errno;
            close(fd);
            return rc < 0 ? ctr_fail(err, e, "append to `%s'", path) : 0;
        }
        /* full: rotate, under the exclusive lock (which waits for the appends under way),
         * unless another appender did so first */
        if (RETRY(flock(fd, LOCK_EX)) < 0) {
            int e = errno;
            close(fd);
            return ctr_fail(err, e, "lock `%s'", path);
        }
        struct stat now;
        if (stat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
            rename(path, old) < 0) {
            int e = errno;
            close(fd);
            return ctr_fail(err, e, "rotate `%s' to `%s'", path, old);
        }
        close(fd);
    }
}

/* Append fd's contents from offset on to *buf. */
static int slurp_fd(int fd, const char *path, off_t offset, char **buf, size_t *len,
                    size_t *cap, struct ctr_err *err)
{
    for (;;) {
        if (*cap - *len < 65536) {
            size_t ncap = *cap * 2 + 65536;
            char *nb = realloc(*buf, ncap + 1);
            if (nb == NULL)
                return ctr_fail(err, ENOMEM, "read `%s'", path);
            *buf = nb;
            *cap = ncap;
        }
        ssize_t n = RETRY(pread(fd, *buf + *len, *cap - *len, offset));
        if (n < 0)
            return ctr_fail(err, errno, "read `%s'", path);
        if (n == 0)
            return 0;
        *len += (size_t)n;
        offset += n;
    }
}

int ctr_events_read(const char *path, struct ctr_events_pos *pos, char **out, size_t *len,
                    struct ctr_err *err)
{
    char old[PATH_MAX];
    if ((size_t)snprintf(old, sizeof old, "%s.1", path) >= sizeof old)
        return ctr_fail(err, ENAMETOOLONG, "events log `%s'", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    /* the current file's lock holds rotations off while both are read; the files are ours
     * (0600, in the namespace's state directory): neither is followed through a symlink */
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "open `%s'", path);
    struct stat cur = {0}, prev = {0};
    if (fd >= 0 && (RETRY(flock(fd, LOCK_SH)) < 0 || fstat(fd, &cur) < 0))
        return ctr_fail(err, errno, "lock `%s'", path);
    cleanup_close int ofd = RETRY(open(old, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (ofd < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "open `%s'", old);
    if (ofd >= 0 && fstat(ofd, &prev) < 0)
        return ctr_fail(err, errno, "stat `%s'", old);
    /* where the caller is: in the current file (read on from there), in the one rotated to
     * .1 since (its rest, then all of the current one), or nowhere known (both whole) */
    off_t from_old = 0, from_cur = 0;
    int read_old = ofd >= 0;
    if (pos && pos->ino && fd >= 0 && (uint64_t)cur.st_ino == pos->ino) {
        read_old = 0;
        from_cur = (off_t)pos->offset;
    } else if (pos && pos->ino && ofd >= 0 && (uint64_t)prev.st_ino == pos->ino) {
        from_old = (off_t)pos->offset;
    }
    size_t n_old = 0;
    if ((read_old && slurp_fd(ofd, old, from_old, &buf, &n, &cap, err) < 0) ||
        (n_old = n, fd >= 0 && slurp_fd(fd, path, from_cur, &buf, &n, &cap, err) < 0)) {
        free(buf);
        return -1;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return ctr_fail(err, ENOMEM, "read `%s'", path);
    buf[n] = '\0';
    if (pos) {
        /* the end of what was read (appends after it come next time): in the current file,
         * or, between a rotation and the next append, in the rotated one */
        if (fd >= 0)
            *pos = (struct ctr_events_pos){(uint64_t)cur.st_ino, (uint64_t)from_cur + (n - n_old)};
        else if (read_old)
            *pos = (struct ctr_events_pos){(uint64_t)prev.st_ino, (uint64_t)from_old + n_old};
        else
            *pos = (struct ctr_events_pos){0, 0};
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Append {"time","namespace","topic","id",...FIELDS} to STATE/NS/events.log, as the Lua side's
 * ctr.tasks.event does (ctr_events_append); fields is the rest of the object, each field
 * preceded by its comma. */
static void append_event(const struct mon *m, const char *topic, const char *time,
                         const char *fields)
{
    char path[PATH_MAX], ns[256] = "", id[256] = "", line[1024];
    const char *dir = m->a->dir;
    const char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    snprintf(id, sizeof id, "%s", slash + 1);
    const char *p = slash - 1;
    while (p > dir && *p != '/')
        p--;
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - p - 1), p + 1);
    snprintf(path, sizeof path, "%.*s/events.log", (int)(slash - dir), dir);
    int n = snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"namespace\":\"%s\",\"topic\":\"%s\",\"id\":\"%s\"%s}\n",
                     time, ns, topic, id, fields);
    struct ctr_err ignored; /* nothing to report it to */
    if (n > 0 && (size_t)n < sizeof line)
        ctr_events_append(path, line, (size_t)n, 0, &ignored);
}

static void append_exit_event(const struct mon *m)
{
    char fields[128];
    snprintf(fields, sizeof fields, ",\"pid\":%d,\"exit_status\":%d,\"exited_at\":\"%s\"",
             (int)m->a->pid, m->exit_code, m->exited_at);
    append_event(m, "/tasks/exit", m->exited_at, fields);
}

/* Logged here, between the start and the reaping of the init, never by the client after the
 * start's reply: an init that exits at once would have its exit logged before its start. */
static void append_start_event(const struct mon *m)
{
    char fields[32];
    snprintf(fields, sizeof fields, ",\"pid\":%d", (int)m->a->pid);
    append_event(m, "/tasks/start", m->started_at, fields);
}

static void reply(int fd, const char *msg)
{
    RETRY(send(fd, msg, strlen(msg), MSG_NOSIGNAL));
}

/* "ok" with fd attached (SCM_RIGHTS): the pty master for an attacher */
static void reply_fd(int sock, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = "ok", .iov_len = 2};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    RETRY(sendmsg(sock, &msg, MSG_NOSIGNAL));
}

static void reply_exit(struct mon *m, int fd)
{
    char buf[64];
    snprintf(buf, sizeof buf, "exit %d", m->exit_code);
    reply(fd, buf);
}

static void drop_client(struct mon *m, int i)
{
    close(m->clients[i]);
    m->clients[i] = -1;
    m->waiting[i] = 0;
}

static void reap(struct mon *m);

/* Release the init: read its byte from the exec fifo (it then execs), as ctr_start does. */
static int start_init(struct mon *m, struct ctr_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/exec.fifo", m->a->dir);
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
    if (fd < 0)
        return ctr_fail(err, errno, "open exec fifo `%s'", path);
    /* the init's end, to wait on beside the fifo (-1 without pidfds: then 10 ms naps) */
    cleanup_close int pfd = (int)syscall(SYS_pidfd_open, m->a->pid, 0);
    double give_up = now_mono() + 2.0;
    for (;;) {
        char b;
        ssize_t n = read(fd, &b, 1);
        if (n == 1)
            break;
        if (n == 0) {
            /* no writer: the init is about to open the fifo (it reports ready just before),
             * or it is gone (OOM-killed once in its cgroup, say): then say how it ended */
            reap(m);
            if (m->state == ST_STOPPED)
                return ctr_fail(err, 0, "the container init %d exited before start: exit "
                                "code %d%s", (int)m->a->pid, m->exit_code,
                                m->oom ? " (OOM-killed)" : "");
            double left = give_up - now_mono();
            if (left <= 0)
                return ctr_fail(err, ENXIO, "exec fifo `%s': no container init is waiting",
                                path);
            /* a fifo no writer has opened yet polls as nothing (no hang-up): this wakes when
             * the init writes its byte or exits, not at the next tick of a sleep */
            struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
            int ms = pfd >= 0 ? (int)(left * 1000) + 1 : 10;
            if (poll(p, pfd >= 0 ? 2 : 1, ms) < 0 && errno != EINTR)
                return ctr_fail(err, errno, "poll exec fifo `%s'", path);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return ctr_fail(err, errno, "read exec fifo `%s'", path);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) == 0)
            return ctr_fail(err, ETIMEDOUT, "exec fifo `%s': the init does not write", path);
    }
    if (unlink(path) < 0)
        return ctr_fail(err, errno, "remove exec fifo `%s'", path);
    return 0;
}

enum ctr_monitor_req ctr_monitor_parse_request(const char *buf, size_t n)
{
    static const struct {
        const char *name;
        enum ctr_monitor_req req;
    } names[] = {
        {"start", CTR_MONITOR_START},   {"wait", CTR_MONITOR_WAIT},
        {"pause", CTR_MONITOR_PAUSE},   {"resume", CTR_MONITOR_RESUME},
        {"console", CTR_MONITOR_CONSOLE}, {"delete", CTR_MONITOR_DELETE},
    };
    size_t len = strnlen(buf, n);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, buf, len) == 0)
            return names[i].req;
    return CTR_MONITOR_UNKNOWN;
}

/* One request from client i.  Returns 1 when the monitor should exit (deleted). */
static int handle(struct mon *m, int i)
{
    char req[CTR_MONITOR_REQ_MAX];
    int fd = m->clients[i];
    ssize_t n = RETRY(recv(fd, req, sizeof req, 0));
    if (n <= 0) {
        drop_client(m, i);
        return 0;
    }
    enum ctr_monitor_req r = ctr_monitor_parse_request(req, (size_t)n);
    struct ctr_err e = {.code = 0};
    char out[CTR_ERR_MSG + 16];
    if (r == CTR_MONITOR_START) {
        if (m->state != ST_CREATED) {
            snprintf(out, sizeof out, "error: task is %s, not created", st_names[m->state]);
            reply(fd, out);
        } else if (start_init(m, &e) < 0) {
            snprintf(out, sizeof out, "error: %s", e.msg);
            reply(fd, out);
        } else {
            now_rfc3339(m->started_at, sizeof m->started_at);
            if (m->state == ST_CREATED)
                m->state = ST_RUNNING;
            append_start_event(m);
            if (write_status(m, &e) < 0) {
                snprintf(out, sizeof out, "error: %s", e.msg);
                reply(fd, out);
            } else {
                reply(fd, "ok");
            }
        }
    } else if (r == CTR_MONITOR_WAIT) {
        if (m->state == ST_STOPPED)
            reply_exit(m, fd);
        else
            m->waiting[i] = 1;
        return 0; /* the waiter keeps its connection */
    } else if (r == CTR_MONITOR_PAUSE || r == CTR_MONITOR_RESUME) {
        if (m->state == ST_STOPPED) {
            reply(fd, "error: task is stopped");
        } else {
            m->state = r == CTR_MONITOR_PAUSE ? ST_PAUSED : ST_RUNNING;
            if (write_status(m, &e) < 0) {
                snprintf(out, sizeof out, "error: %s", e.msg);
                reply(fd, out);
            } else {
                reply(fd, "ok");
            }
        }
    } else if (r == CTR_MONITOR_CONSOLE) {
        if (m->a->console_fd < 0)
            reply(fd, "error: the task has no terminal (process.terminal is false)");
        else
            reply_fd(fd, m->a->console_fd);
    } else if (r == CTR_MONITOR_DELETE) {
        if (m->state != ST_STOPPED) {
            snprintf(out, sizeof out, "error: task is %s", st_names[m->state]);
            reply(fd, out);
        } else {
            reply(fd, "ok");
            drop_client(m, i);
            return 1;
        }
    } else {
        reply(fd, "error: unknown request");
    }
    drop_client(m, i);
    return 0;
}

/* The init has exited: let go of each --fifo-dir output fifo that a reader has open (it
 * drains the pipe and sees EOF) or that is empty; keep one with unread data and no reader, so
 * that a late reader gets it (see monitor/monitor.h). */
static void release_fifos(struct mon *m)
{
    for (int i = 0; i < 2; i++) {
        int fd = m->fifo_fds[i];
        if (fd < 0)
            continue;
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        /* a non-blocking write-only open fails with ENXIO when nobody has the fifo open for
         * reading: ours is a write end, so a reader is someone else */
        int probe = RETRY(open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        int unread = 0;
        if (probe >= 0)
            close(probe);
        else if (ioctl(fd, FIONREAD, &unread) < 0)
            unread = 0;
        if (probe >= 0 || unread == 0) {
            close(fd);
            m->fifo_fds[i] = -1;
        }
    }
}

/* The init is gone: its root is unmounted now, not by `tasks delete`, which would wait for it
 * (the unmount of an overlay not mounted volatile syncs the upper filesystem: milliseconds,
 * more while others write).  Busy (a process outside the init's pid namespace still in it),
 * stacked, or not a mount at all (a --rootfs task): what is left is delete's, which unmounts
 * everything under the task directory. */
static void unmount_rootfs(const struct mon *m)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/rootfs", m->a->dir) >= sizeof path)
        return;
    /* and the directory it leaves, empty now: a directory's block costs its removal a discard
     * on a `discard` mount, paid here while nobody waits rather than in delete.  A stacked
     * mount still there (EBUSY), or anything in it (ENOTEMPTY), keeps it for delete. */
    if (umount2(path, UMOUNT_NOFOLLOW) == 0)
        rmdir(path);
}

static void reap(struct mon *m)
{
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p <= 0)
            return;
        if (p != m->a->pid || m->state == ST_STOPPED)
            continue; /* the logger, or an orphan of the container: reaped, nothing more */
        m->state = ST_STOPPED;
        if (WIFSIGNALED(status)) {
            m->signal = WTERMSIG(status);
            m->exit_code = 128 + m->signal;
        } else {
            m->exit_code = WEXITSTATUS(status);
        }
        m->oom = read_oom(m->a->oom_file);
        now_rfc3339(m->exited_at, sizeof m->exited_at);
        struct ctr_err e;
        write_status(m, &e); /* nothing to report it to; ctrlua then sees the pid gone */
        append_exit_event(m);
        release_fifos(m);
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (m->clients[i] >= 0 && m->waiting[i]) {
                reply_exit(m, m->clients[i]);
                drop_client(m, i);
            }
        unmount_rootfs(m);
    }
}

int ctr_monitor_run(const struct ctr_monitor_args *a, struct ctr_err *err)
{
    static struct mon m;
    m.a = a;
    m.state = ST_CREATED;
    for (int i = 0; i < MAX_CLIENTS; i++)
        m.clients[i] = -1;
    m.fifo_fds[0] = a->fifo_fds[0];
    m.fifo_fds[1] = a->fifo_fds[1];
    now_rfc3339(m.created_at, sizeof m.created_at);
    m.start_time = proc_start_time(a->pid);
    /* Not dumpable: a container sharing our pid namespace cannot open our /proc/PID/exe or
     * ptrace the parent of its init (the second line; the first is the sealed copy we run
     * from). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return ctr_fail(err, errno, "prctl PR_SET_DUMPABLE");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return ctr_fail(err, errno, "sigprocmask");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        return ctr_fail(err, errno, "signalfd");

    if (write_status(&m, err) < 0)
        return -1;
    if (a->report_fd >= 0) {
        struct ctr_monitor_report r = {.ok = 1, .pid = a->pid, .monitor = getpid()};
        ctr_write_all(a->report_fd, &r, sizeof r);
        close(a->report_fd);
    }
    reap(&m); /* the init may have died before SIGCHLD was blocked */

    for (;;) {
        struct pollfd p[2 + MAX_CLIENTS];
        int idx[2 + MAX_CLIENTS];
        int n = 0;
        p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (m.clients[i] >= 0) {
                idx[n] = i;
                p[n++] = (struct pollfd){.fd = m.clients[i], .events = POLLIN};
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return ctr_fail(err, errno, "poll");
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                ;
            reap(&m);
        }
        for (int k = 2; k < n; k++)
            if (p[k].revents && m.clients[idx[k]] >= 0 && handle(&m, idx[k]))
                return 0;
        if (p[1].revents) {
            int c = RETRY(accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC));
            if (c >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
                    if (m.clients[i] < 0)
                        slot = i;
                if (slot < 0) {
                    reply(c, "error: too many clients");
                    close(c);
                } else {
                    m.clients[slot] = c;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- the client side */

int ctr_monitor_request(const char *dir, const char *req, char *reply_buf, size_t cap,
                        struct ctr_err *err)
{
    return ctr_monitor_request_fd(dir, req, reply_buf, cap, NULL, err);
}

int ctr_monitor_request_fd(const char *dir, const char *req, char *reply_buf, size_t cap,
                           int *fdp, struct ctr_err *err)
{
    if (fdp)
        *fdp = -1;
    /* sun_path holds 108 bytes: reach a long state directory through /proc/self/fd/N. */
    cleanup_close int dfd = RETRY(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dfd < 0)
        return ctr_fail(err, errno, "open task directory `%s'", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/" CTR_MONITOR_SOCK, dfd);
    cleanup_close int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return ctr_fail(err, errno, "socket");
    if (RETRY(connect(s, (struct sockaddr *)&sa, sizeof sa)) < 0)
        return ctr_fail(err, errno, "connect to the monitor `%s/" CTR_MONITOR_SOCK "'", dir);
    if (RETRY(send(s, req, strlen(req), MSG_NOSIGNAL)) < 0)
        return ctr_fail(err, errno, "send to the monitor of `%s'", dir);
    return ctr_monitor_recv_reply(s, dir, reply_buf, cap, fdp, err);
}

int ctr_monitor_recv_reply(int s, const char *dir, char *reply_buf, size_t cap, int *fdp,
                           struct ctr_err *err)
{
    if (fdp)
        *fdp = -1;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = reply_buf, .iov_len = cap - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    ssize_t n = RETRY(recvmsg(s, &msg, MSG_CMSG_CLOEXEC));
    int e = errno;
    /* Every fd that arrived is now ours, whatever the datagram was (an empty one, several fds,
     * two messages): the caller is handed the fd of a reply that carries exactly one, and
     * every other is closed here, so no answer on the socket can leave one open. */
    int got = -1, nfds = 0;
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + k * sizeof fd, sizeof fd);
            if (nfds++ == 0)
                got = fd;
            else
                close(fd);
        }
    }
    if (got >= 0 && (fdp == NULL || nfds != 1 || n <= 0)) {
        close(got);
        got = -1;
    }
    if (n < 0)
        return ctr_fail(err, e, "receive from the monitor of `%s'", dir);
    if (n == 0)
        return ctr_fail(err, EPIPE, "the monitor of `%s' went away", dir);
    reply_buf[n] = 0;
    if (fdp)
        *fdp = got;
    return 0;
}

int ctr_pid_wait(pid_t pid, struct ctr_err *err)
{
    cleanup_close int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "pidfd_open %d", (int)pid);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return ctr_fail(err, errno, "poll pidfd of %d", (int)pid);
    return 0;
}
