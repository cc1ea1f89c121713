#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "util.h"

void ctr_tty_forwarded_set(sigset_t *set)
{
    /* As wait.c's forwarded_set (the two must agree: signals blocked here are read by its
     * signalfd): SIGCHLD tells us about the child; SIGWINCH belongs to the tty code; the fault
     * signals are synchronous (blocking them hides them); SIGKILL and SIGSTOP cannot be
     * caught. */
    sigfillset(set);
    static const int keep[] = {SIGCHLD, SIGWINCH, SIGKILL, SIGSTOP, SIGSEGV,
                               SIGBUS,  SIGILL,   SIGFPE,  SIGTRAP, SIGSYS};
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
        sigdelset(set, keep[i]);
}

int ctr_tty_block_signals(sigset_t *old, struct ctr_err *err)
{
    sigset_t set;
    ctr_tty_forwarded_set(&set);
    if (sigprocmask(SIG_BLOCK, &set, old) < 0)
        return ctr_fail(err, errno, "sigprocmask: block the forwarded signals");
    return 0;
}

int ctr_tty_get_size(int fd, unsigned *rows, unsigned *cols, struct ctr_err *err)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
        return ctr_fail(err, errno, "TIOCGWINSZ on fd %d", fd);
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

int ctr_tty_set_size(int fd, unsigned rows, unsigned cols, struct ctr_err *err)
{
    if (rows > 65535 || cols > 65535)
        return ctr_fail(err, EINVAL, "window size %ux%u: out of range", rows, cols);
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
        return ctr_fail(err, errno, "TIOCSWINSZ on fd %d", fd);
    return 0;
}

int ctr_tty_set_raw(int fd, struct termios *saved, struct ctr_err *err)
{
    if (tcgetattr(fd, saved) < 0)
        return ctr_fail(err, errno, "tcgetattr fd %d", fd);
    struct termios raw = *saved;
    /* as containerd's console.SetRaw: output processing off too (the container's own pty
     * already turns its \n into \r\n) */
    cfmakeraw(&raw);
    if (RETRY(tcsetattr(fd, TCSANOW, &raw)) < 0)
        return ctr_fail(err, errno, "tcsetattr fd %d: raw mode", fd);
    return 0;
}

int ctr_tty_restore(int fd, const struct termios *saved, struct ctr_err *err)
{
    if (RETRY(tcsetattr(fd, TCSANOW, saved)) < 0)
        return ctr_fail(err, errno, "tcsetattr fd %d: restore the terminal mode", fd);
    return 0;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The caller's window size onto the master (from in_fd, else out_fd, when a terminal). */
static void copy_size(const struct ctr_tty_run_opts *o, int master)
{
    struct winsize ws;
    if (ioctl(o->in_fd, TIOCGWINSZ, &ws) == 0 || ioctl(o->out_fd, TIOCGWINSZ, &ws) == 0)
        ioctl(master, TIOCSWINSZ, &ws);
}

/* What the container wrote before it exited: read until the pty reports the slave gone
 * (EIO) or, while some process still holds the slave, until it is quiet for 20 ms (at most
 * 2 s in all). */
static void drain(int master, int out_fd, int *out_ok)
{
    char buf[8192];
    double until = mono() + 2.0;
    while (mono() < until) {
        ssize_t n = read(master, buf, sizeof buf);
        if (n > 0) {
            if (*out_ok && ctr_write_all(out_fd, buf, (size_t)n) < 0)
                *out_ok = 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = master, .events = POLLIN};
            if (poll(&p, 1, 20) > 0)
                continue;
        }
        break;
    }
}

int ctr_tty_run(int master, pid_t pid, const struct ctr_tty_run_opts *o, int *status,
                struct ctr_err *err)
{
    sigset_t set, old;
    if (o->forward) {
        ctr_tty_forwarded_set(&set);
    } else {
        sigemptyset(&set);
        static const int ends[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < ARRAY_SIZE(ends); i++)
            sigaddset(&set, ends[i]);
    }
    /* SIGPIPE: a closed stdout is an error of the write, not the end of ctrlua in raw mode */
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGWINCH);
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
        return ctr_fail(err, errno, "sigprocmask");

    int r = -1, have_raw = 0, mflags = -1;
    struct termios saved;
    cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (sfd < 0) {
        ctr_fail(err, errno, "signalfd");
        goto out;
    }
    if (pidfd < 0) {
        ctr_fail(err, errno, "pidfd_open %d", (int)pid);
        goto out;
    }
    /* non-blocking, so that a container that does not read its input cannot stop us from
     * copying its output (the caller's side stays blocking: it may be shared) */
    mflags = fcntl(master, F_GETFL);
    if (mflags < 0 || fcntl(master, F_SETFL, mflags | O_NONBLOCK) < 0) {
        ctr_fail(err, errno, "fcntl the pty master (fd %d)", master);
        mflags = -1;
        goto out;
    }
    if (isatty(o->in_fd)) {
        if (ctr_tty_set_raw(o->in_fd, &saved, err) < 0)
            goto out;
        have_raw = 1;
    }
    copy_size(o, master);

    char ibuf[8192], obuf[8192];
    size_t ilen = 0, ioff = 0;
    int in_open = 1, master_open = 1, out_ok = 1, eof_pending = 0;
    for (;;) {
        struct pollfd p[4] = {
            {.fd = pidfd, .events = POLLIN},
            {.fd = sfd, .events = POLLIN},
            {.fd = master_open ? master : -1,
             .events = (short)(POLLIN | (ilen > ioff || eof_pending ? POLLOUT : 0))},
            {.fd = in_open && ilen == ioff && !eof_pending ? o->in_fd : -1, .events = POLLIN},
        };
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            ctr_fail(err, errno, "poll");
            goto out;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int sig = (int)si.ssi_signo;
                if (sig == SIGWINCH) {
                    copy_size(o, master);
                } else if (sig == SIGPIPE && (!o->forward || (pid_t)si.ssi_pid == getpid())) {
                    /* our own write's: out_ok says it */
                } else if (o->forward) {
                    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 &&
                        errno != ESRCH) {
                        ctr_fail(err, errno, "forward signal %d to %d", sig, (int)pid);
                        goto out;
                    }
                } else {
                    *status = sig;
                    r = 0;
                    goto out;
                }
            }
        }
        if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(o->in_fd, ibuf, sizeof ibuf);
            if (n > 0) {
                ilen = (size_t)n;
                ioff = 0;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                /* EOF of a non-terminal stdin: the container sees end of input as from ^D
                 * (what script(1) does) */
                in_open = 0;
                eof_pending = n == 0 && !have_raw;
            }
        }
        if (master_open && (p[2].revents & POLLIN)) {
            ssize_t n = read(master, obuf, sizeof obuf);
            if (n > 0 && out_ok && ctr_write_all(o->out_fd, obuf, (size_t)n) < 0)
                out_ok = 0;
            if (n < 0 && errno == EIO)
                master_open = 0; /* no process holds the slave any more */
        } else if (master_open && (p[2].revents & (POLLHUP | POLLERR))) {
            master_open = 0;
        }
        if (master_open && (p[2].revents & POLLOUT)) {
            if (ilen > ioff) {
                ssize_t n = write(master, ibuf + ioff, ilen - ioff);
                if (n > 0)
                    ioff += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    ilen = ioff = 0; /* the container side is gone: drop the input */
            } else if (eof_pending) {
                if (write(master, "\x04", 1) == 1 || (errno != EAGAIN && errno != EINTR))
                    eof_pending = 0;
            }
            if (ioff == ilen)
                ilen = ioff = 0;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            if (master_open)
                drain(master, o->out_fd, &out_ok);
            break;
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
        ctr_tty_restore(o->in_fd, &saved, &ignored);
    if (mflags >= 0)
        fcntl(master, F_SETFL, mflags);
    /* Signals that came as the container exited were meant for it: drop them rather than
     * let them act on us once the mask is restored (as wait.c does). */
    if (sfd >= 0) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}
