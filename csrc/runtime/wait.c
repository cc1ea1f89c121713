#include "runtime/wait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "runtime/terminal.h"
#include "base/cleanup.h"

int ctr_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

int ctr_wait_nohang(pid_t pid, int *status, struct ctr_err *err)
{
    pid_t r = (pid_t)RETRY(waitpid(pid, status, WNOHANG));
    if (r < 0)
        return ctr_fail(err, errno, "waitpid %d", (int)pid);
    return r == pid;
}

static int wait_plain(pid_t pid, int *status, struct ctr_err *err)
{
    if (RETRY(waitpid(pid, status, 0)) < 0)
        return ctr_fail(err, errno, "waitpid %d", (int)pid);
    return 0;
}

void ctr_wait_forwarded_set(sigset_t *set)
{
    sigfillset(set);
    /* SIGCHLD tells us about the child itself; SIGWINCH belongs to the tty code; the fault
     * signals are synchronous (blocking them would not stop them, only hide them); SIGKILL
     * and SIGSTOP cannot be caught at all. */
    static const int keep[] = {SIGCHLD, SIGWINCH, SIGKILL, SIGSTOP, SIGSEGV,
                               SIGBUS,  SIGILL,   SIGFPE,  SIGTRAP, SIGSYS};
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        sigdelset(set, keep[i]);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct stream {
    struct ctr_copy c;
    int reading;     /* src is still read */
    int writing;     /* dst is still written */
    int eof_pending; /* a ^D is still to be written */
    int saved_flags; /* the process's side's flags before the wait; -1: untouched */
    size_t len, off; /* buf[off..len) is read and not yet written */
    char buf[16384];
};

static int *process_side(struct stream *s)
{
    return s->c.input ? &s->c.dst : &s->c.src;
}

/* No more is read from this stream; a pipe end of ours is closed, so that the process reads
 * end of file on its input, and nothing of ours keeps a pipe alive. */
static void stream_end(struct stream *s)
{
    s->reading = 0;
    s->len = s->off = 0;
    int *fd = process_side(s);
    if (s->c.own && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Write what the stream holds (and a pending ^D) as far as dst takes it now. */
static void stream_flush(struct stream *s)
{
    while (s->off < s->len || s->eof_pending) {
        int data = s->off < s->len;
        ssize_t n = data ? write(s->c.dst, s->buf + s->off, s->len - s->off)
                         : write(s->c.dst, "\x04", 1);
        if (n > 0) {
            if (data)
                s->off += (size_t)n;
            else
                s->eof_pending = 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return; /* the process's side is full: poll says when it takes more */
        if (s->c.input) {
            /* the process's side is gone: the caller's input stays the caller's */
            s->eof_pending = 0;
            stream_end(s);
        } else {
            /* the caller's side is gone (closed, hung up): the output is still read, and
             * dropped, so that the process never stops on a full pipe */
            s->writing = 0;
        }
        break;
    }
    s->len = s->off = 0;
}

static void stream_read(struct stream *s)
{
    ssize_t n = read(s->c.src, s->buf, sizeof s->buf);
    if (n > 0) {
        if (s->writing) {
            s->len = (size_t)n;
            s->off = 0;
            stream_flush(s);
        }
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    /* end of file, or an error that ends the stream as well (EIO: a pty master whose slave
     * is closed, a terminal hung up, a background job's read of its terminal) */
    stream_end(s);
    if (s->c.input && s->c.ctrl_d) {
        s->eof_pending = 1;
        stream_flush(s);
    }
}

int ctr_wait_io(pid_t pid, const struct ctr_wait_opts *o, int *status, struct ctr_err *err)
{
    size_t n = o->ncopy;
    if (n > CTR_WAIT_MAX_COPY)
        return ctr_fail(err, EINVAL, "wait for %d: %zu streams to copy (at most %d)", (int)pid,
                        n, CTR_WAIT_MAX_COPY);
    if (o->signals == CTR_WAIT_SIGNALS_DEFAULT && n == 0 && o->raw_fd < 0 && !o->on_winch &&
        o->child)
        return wait_plain(pid, status, err) < 0 ? -1 : 1;

    struct stream st[CTR_WAIT_MAX_COPY];
    for (size_t i = 0; i < n; i++) {
        st[i].c = o->copy[i];
        st[i].reading = st[i].writing = 1;
        st[i].eof_pending = 0;
        st[i].saved_flags = -1;
        st[i].len = st[i].off = 0;
    }
    sigset_t set, old;
    if (o->signals == CTR_WAIT_SIGNALS_FORWARD) {
        ctr_wait_forwarded_set(&set);
    } else {
        sigemptyset(&set);
        static const int ends[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; o->signals == CTR_WAIT_SIGNALS_END && i < ARRAY_SIZE(ends); i++)
            sigaddset(&set, ends[i]);
    }
    /* a write to a pipe or terminal that is gone is an error of that write, not the end of
     * ctrlua (with the caller's terminal in raw mode, or the container's rootfs mounted) */
    if (n > 0)
        sigaddset(&set, SIGPIPE);
    if (o->on_winch)
        sigaddset(&set, SIGWINCH);

    int r = -1, have_raw = 0, masked = 0;
    struct termios saved;
    cleanup_close int sfd = -1, pidfd = -1;
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0) {
        ctr_fail(err, errno, "sigprocmask: block the signals of the wait for %d", (int)pid);
        goto out;
    }
    masked = 1;
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        ctr_fail(err, errno, "signalfd");
        goto out;
    }
    /* a pidfd becomes readable when pid exits: one poll() waits for it, the signals and the
     * streams */
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        ctr_fail(err, errno, "pidfd_open %d", (int)pid);
        goto out;
    }
    /* non-blocking, so that a process that does not read its input cannot stop us from
     * copying its output; the caller's sides stay as they are (they may be shared) */
    for (size_t i = 0; i < n; i++) {
        int fd = *process_side(&st[i]);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            ctr_fail(err, errno, "fcntl O_NONBLOCK on the process's side of stream %zu (fd %d)",
                     i, fd);
            goto out;
        }
        st[i].saved_flags = fl;
    }
    if (o->raw_fd >= 0) {
        if (ctr_tty_set_raw(o->raw_fd, &saved, err) < 0)
            goto out;
        have_raw = 1;
    }
    if (o->on_winch)
        o->on_winch(o->winch_arg);

    int exited = 0;
    double deadline = 0;
    for (;;) {
        struct pollfd p[2 + 2 * CTR_WAIT_MAX_COPY];
        p[0] = (struct pollfd){.fd = exited ? -1 : pidfd, .events = POLLIN};
        p[1] = (struct pollfd){.fd = exited ? -1 : sfd, .events = POLLIN};
        int busy = 0;
        for (size_t i = 0; i < n; i++) {
            struct stream *s = &st[i];
            int want_read = s->reading && s->len == s->off && !s->eof_pending;
            int want_write = s->off < s->len || s->eof_pending;
            p[2 + 2 * i] = (struct pollfd){.fd = want_read ? s->c.src : -1, .events = POLLIN};
            p[3 + 2 * i] = (struct pollfd){.fd = want_write ? s->c.dst : -1, .events = POLLOUT};
            busy |= want_read || want_write;
        }
        int timeout = -1;
        if (exited) {
            double left = deadline - mono();
            if (!busy || left <= 0)
                break;
            timeout = left < 0.02 ? (int)(left * 1000) + 1 : 20;
        }
        int k = poll(p, (nfds_t)(2 + 2 * n), timeout);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            ctr_fail(err, errno, "poll");
            goto out;
        }
        if (k == 0 && exited)
            break; /* quiet: what still holds an output is not the process */
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int sig = (int)si.ssi_signo;
                if (sig == SIGWINCH && o->on_winch) {
                    o->on_winch(o->winch_arg);
                } else if (sig == SIGPIPE && (o->signals != CTR_WAIT_SIGNALS_FORWARD ||
                                              (pid_t)si.ssi_pid == getpid())) {
                    /* our own write's: that write has failed and says so */
                } else if (o->signals == CTR_WAIT_SIGNALS_FORWARD) {
                    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 &&
                        errno != ESRCH) {
                        ctr_fail(err, errno, "forward signal %d to %d", sig, (int)pid);
                        goto out;
                    }
                } else if (o->signals == CTR_WAIT_SIGNALS_END) {
                    *status = sig;
                    r = 0;
                    goto out;
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (p[2 + 2 * i].revents)
                stream_read(&st[i]);
            if (p[3 + 2 * i].revents)
                stream_flush(&st[i]);
        }
        if (!exited && (p[0].revents & (POLLIN | POLLHUP))) {
            /* the process is gone: its input ends here, its output is drained */
            exited = 1;
            deadline = mono() + 2.0;
            for (size_t i = 0; i < n; i++)
                if (st[i].c.input) {
                    st[i].eof_pending = 0;
                    stream_end(&st[i]);
                }
        }
    }
    if (o->child) {
        if (RETRY(waitpid(pid, status, 0)) < 0) {
            ctr_fail(err, errno, "waitpid %d", (int)pid);
            goto out;
        }
    } else {
        *status = 0;
    }
    r = 1;

out:;
    struct ctr_err ignored;
    if (have_raw)
        ctr_tty_restore(o->raw_fd, &saved, &ignored);
    /* in reverse: an fd that is the process's side of two streams (a pty master) gets the
     * flags it had before the first */
    for (size_t i = n; i-- > 0;) {
        int fd = *process_side(&st[i]);
        if (st[i].c.own)
            stream_end(&st[i]);
        else if (st[i].saved_flags >= 0)
            fcntl(fd, F_SETFL, st[i].saved_flags);
    }
    /* Signals that came as the process exited were meant for it: drop them rather than let
     * them act on us once the mask is restored. */
    if (sfd >= 0) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
    }
    if (masked)
        sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}

int ctr_wait(pid_t pid, int forward, int *status, struct ctr_err *err)
{
    struct ctr_wait_opts o = {
        .signals = forward ? CTR_WAIT_SIGNALS_FORWARD : CTR_WAIT_SIGNALS_DEFAULT,
        .child = 1,
        .raw_fd = -1,
    };
    return ctr_wait_io(pid, &o, status, err) < 0 ? -1 : 0;
}
