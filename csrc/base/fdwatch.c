#include "base/fdwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"

int ctr_proc_pipe(int fds[2], int nonblock_read, struct ctr_err *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "pipe2");
    if (nonblock_read) {
        int fl = fcntl(fds[0], F_GETFL);
        if (fl < 0 || fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) < 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            return ctr_fail(err, saved, "fcntl O_NONBLOCK on pipe %d", fds[0]);
        }
    }
    return 0;
}

ssize_t ctr_proc_read(int fd, void *buf, size_t n, struct ctr_err *err)
{
    ssize_t r = RETRY(read(fd, buf, n));
    if (r < 0)
        return ctr_fail(err, errno, "read fd %d", fd);
    return r;
}

int ctr_proc_write(int fd, const void *buf, size_t n, struct ctr_err *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = RETRY(write(fd, p, n));
        if (w < 0)
            return ctr_fail(err, errno, "write fd %d", fd);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ctr_proc_pidfd_open(pid_t pid, struct ctr_err *err)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "pidfd_open %d", (int)pid);
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctr_proc_poll(const int *fds, int *ready, size_t nfds, int timeout_ms, struct ctr_err *err)
{
    cleanup_free struct pollfd *p = calloc(nfds ? nfds : 1, sizeof *p);
    if (!p)
        return ctr_fail(err, ENOMEM, "poll: %zu descriptors", nfds);
    for (size_t i = 0; i < nfds; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        ready[i] = 0;
    }
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        int r = poll(p, (nfds_t)nfds, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ctr_fail(err, errno, "poll %zu descriptors", nfds);
        for (size_t i = 0; i < nfds; i++)
            ready[i] = (p[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0;
        return r;
    }
}
