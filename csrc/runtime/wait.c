#include "runtime/wait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
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
    char *buf;       /* STREAM_BUF bytes of the waiter's bufs */
};

/* Apart from the waiter: a waiter is zeroed as it is made, and CTR_WAIT_MAX_COPY buffers in it
 * would be that much stack written (and resident) for every wait, most of which copy nothing. */
#define STREAM_BUF 16384

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
    ssize_t n = read(s->c.src, s->buf, STREAM_BUF);
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

/* One wait: its streams and what it changed, to be put back. */
struct waiter {
    pid_t pid;
    const struct ctr_wait_opts *o;
    size_t n;                    /* streams in st */
    struct stream st[CTR_WAIT_MAX_COPY];
    int sfd, pidfd;              /* the signalfd and pid's pidfd, or -1 */
    int masked;                  /* old is the mask to restore */
    sigset_t old;
    int have_raw;                /* saved is raw_fd's mode to restore */
    struct termios saved;
};

/* The signals the wait takes from its signalfd. */
static void wait_signal_set(const struct ctr_wait_opts *o, sigset_t *set)
{
    if (o->signals == CTR_WAIT_SIGNALS_FORWARD) {
        ctr_wait_forwarded_set(set);
    } else {
        sigemptyset(set);
        static const int ends[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; o->signals == CTR_WAIT_SIGNALS_END && i < ARRAY_SIZE(ends); i++)
            sigaddset(set, ends[i]);
    }
    /* a write to a pipe or terminal that is gone is an error of that write, not the end of
     * ctrlua (with the caller's terminal in raw mode, or the container's rootfs mounted) */
    if (o->ncopy > 0)
        sigaddset(set, SIGPIPE);
    if (o->on_winch)
        sigaddset(set, SIGWINCH);
}

/* Everything the wait sets up before its loop, each step recorded in w for wait_end. */
static int wait_begin(struct waiter *w, struct ctr_err *err)
{
    const struct ctr_wait_opts *o = w->o;
    sigset_t set;
    wait_signal_set(o, &set);
    if (sigprocmask(SIG_BLOCK, &set, &w->old) < 0)
        return ctr_fail(err, errno, "sigprocmask: block the signals of the wait for %d",
                        (int)w->pid);
    w->masked = 1;
    w->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (w->sfd < 0)
        return ctr_fail(err, errno, "signalfd");
    /* a pidfd becomes readable when pid exits: one poll() waits for it, the signals and the
     * streams */
    w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
    if (w->pidfd < 0)
        return ctr_fail(err, errno, "pidfd_open %d", (int)w->pid);
    /* non-blocking, so that a process that does not read its input cannot stop us from
     * copying its output; the caller's sides stay as they are (they may be shared) */
    for (size_t i = 0; i < w->n; i++) {
        int fd = *process_side(&w->st[i]);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return ctr_fail(err, errno, "fcntl O_NONBLOCK on the process's side of stream %zu "
                            "(fd %d)", i, fd);
        w->st[i].saved_flags = fl;
    }
    if (o->raw_fd >= 0) {
        if (ctr_tty_set_raw(o->raw_fd, &w->saved, err) < 0)
            return -1;
        w->have_raw = 1;
    }
    if (o->on_winch)
        o->on_winch(o->winch_arg);
    return 0;
}

/* The signals the signalfd holds, each handled as o->signals says.  1 when one ended the
 * wait (*status = its number), 0 when the wait goes on, -1 on error. */
static int wait_signals(struct waiter *w, int *status, struct ctr_err *err)
{
    const struct ctr_wait_opts *o = w->o;
    struct signalfd_siginfo si;
    while (read(w->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGWINCH && o->on_winch) {
            o->on_winch(o->winch_arg);
        } else if (sig == SIGPIPE && (o->signals != CTR_WAIT_SIGNALS_FORWARD ||
                                      (pid_t)si.ssi_pid == getpid())) {
            /* our own write's: that write has failed and says so */
        } else if (o->signals == CTR_WAIT_SIGNALS_FORWARD) {
            if (syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
                return ctr_fail(err, errno, "forward signal %d to %d", sig, (int)w->pid);
        } else if (o->signals == CTR_WAIT_SIGNALS_END) {
            *status = sig;
            return 1;
        }
    }
    return 0;
}

/* The poll set: pid's exit and the signals until it has exited, then each stream's side
 * that it waits on.  Returns whether a stream still has something to do. */
static int wait_poll_set(struct waiter *w, int exited, struct pollfd *p)
{
    p[0] = (struct pollfd){.fd = exited ? -1 : w->pidfd, .events = POLLIN};
    p[1] = (struct pollfd){.fd = exited ? -1 : w->sfd, .events = POLLIN};
    int busy = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct stream *s = &w->st[i];
        int want_read = s->reading && s->len == s->off && !s->eof_pending;
        int want_write = s->off < s->len || s->eof_pending;
        p[2 + 2 * i] = (struct pollfd){.fd = want_read ? s->c.src : -1, .events = POLLIN};
        p[3 + 2 * i] = (struct pollfd){.fd = want_write ? s->c.dst : -1, .events = POLLOUT};
        busy |= want_read || want_write;
    }
    return busy;
}

/* Copy the streams and handle the signals until pid exits, then drain its outputs.  1 when
 * pid exited, 0 when a signal ended the wait (*status = its number), -1 on error. */
static int wait_loop(struct waiter *w, int *status, struct ctr_err *err)
{
    int exited = 0;
    double deadline = 0;
    for (;;) {
        struct pollfd p[2 + 2 * CTR_WAIT_MAX_COPY];
        int busy = wait_poll_set(w, exited, p);
        int timeout = -1;
        if (exited) {
            double left = deadline - mono();
            if (!busy || left <= 0)
                return 1;
            timeout = left < 0.02 ? (int)(left * 1000) + 1 : 20;
        }
        int k = poll(p, (nfds_t)(2 + 2 * w->n), timeout);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return ctr_fail(err, errno, "poll");
        }
        if (k == 0 && exited)
            return 1; /* quiet: what still holds an output is not the process */
        if (p[1].revents & POLLIN) {
            int ended = wait_signals(w, status, err);
            if (ended != 0)
                return ended < 0 ? -1 : 0;
        }
        for (size_t i = 0; i < w->n; i++) {
            if (p[2 + 2 * i].revents)
                stream_read(&w->st[i]);
            if (p[3 + 2 * i].revents)
                stream_flush(&w->st[i]);
        }
        if (!exited && (p[0].revents & (POLLIN | POLLHUP))) {
            /* the process is gone: its input ends here, its output is drained */
            exited = 1;
            deadline = mono() + 2.0;
            for (size_t i = 0; i < w->n; i++)
                if (w->st[i].c.input) {
                    w->st[i].eof_pending = 0;
                    stream_end(&w->st[i]);
                }
        }
    }
}

/* Put back what wait_begin changed, whatever it got to. */
static void wait_end(struct waiter *w)
{
    struct ctr_err ignored;
    if (w->have_raw)
        ctr_tty_restore(w->o->raw_fd, &w->saved, &ignored);
    /* in reverse: an fd that is the process's side of two streams (a pty master) gets the
     * flags it had before the first */
    for (size_t i = w->n; i-- > 0;) {
        int fd = *process_side(&w->st[i]);
        if (w->st[i].c.own)
            stream_end(&w->st[i]);
        else if (w->st[i].saved_flags >= 0)
            fcntl(fd, F_SETFL, w->st[i].saved_flags);
    }
    /* Signals that came as the process exited were meant for it: drop them rather than let
     * them act on us once the mask is restored. */
    if (w->sfd >= 0) {
        struct signalfd_siginfo si;
        while (read(w->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
    }
    if (w->masked)
        sigprocmask(SIG_SETMASK, &w->old, NULL);
    if (w->sfd >= 0)
        close(w->sfd);
    if (w->pidfd >= 0)
        close(w->pidfd);
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

    struct waiter w = {.pid = pid, .o = o, .n = n, .sfd = -1, .pidfd = -1};
    char *bufs = NULL;
    if (n > 0 && (bufs = malloc(n * STREAM_BUF)) == NULL)
        return ctr_fail(err, ENOMEM, "wait for %d: %zu stream buffers", (int)pid, n);
    for (size_t i = 0; i < n; i++) {
        w.st[i].c = o->copy[i];
        w.st[i].buf = bufs + i * STREAM_BUF;
        w.st[i].reading = w.st[i].writing = 1;
        w.st[i].eof_pending = 0;
        w.st[i].saved_flags = -1;
        w.st[i].len = w.st[i].off = 0;
    }
    int r = wait_begin(&w, err) < 0 ? -1 : wait_loop(&w, status, err);
    if (r == 1 && o->child && RETRY(waitpid(pid, status, 0)) < 0)
        r = ctr_fail(err, errno, "waitpid %d", (int)pid);
    else if (r == 1 && !o->child)
        *status = 0;
    wait_end(&w);
    free(bufs);
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
