#include "wait.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

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

static void forwarded_set(sigset_t *set)
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

int ctr_wait(pid_t pid, int forward, int *status, struct ctr_err *err)
{
    if (!forward)
        return wait_plain(pid, status, err);
    sigset_t set, old;
    forwarded_set(&set);
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
        return ctr_fail(err, errno, "sigprocmask");
    int r = -1;
    cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    /* a pidfd becomes readable when pid exits: one poll() waits for both events */
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (sfd < 0) {
        ctr_fail(err, errno, "signalfd");
        goto out;
    }
    if (pidfd < 0) {
        ctr_fail(err, errno, "pidfd_open %d", (int)pid);
        goto out;
    }
    for (;;) {
        struct pollfd pfd[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            ctr_fail(err, errno, "poll");
            goto out;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                if (kill(pid, (int)si.ssi_signo) < 0 && errno != ESRCH) {
                    ctr_fail(err, errno, "forward signal %u to %d", si.ssi_signo, (int)pid);
                    goto out;
                }
        }
        if (pfd[0].revents & (POLLIN | POLLHUP)) {
            r = wait_plain(pid, status, err);
            break;
        }
    }
    /* Signals that came as the container exited were meant for it: drop them here rather
     * than let them act on us once the mask is restored. */
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
out:
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}
