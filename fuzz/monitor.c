/* The monitor's socket protocol (csrc/monitor/monitor.c), both ends:
 *   - the monitor's reading of a request datagram (ctr_monitor_parse_request), given the input
 *     as the monitor's recv() leaves it (at most CTR_MONITOR_REQ_MAX bytes) and as it is;
 *   - the client's reading of a reply (ctr_monitor_recv_reply, behind ctr_monitor_request and
 *     ctr_monitor_request_fd): the input is sent as the reply datagram over a socketpair, with
 *     file descriptors attached as the first byte says:
 *       bits 0-1  how many fds (SCM_RIGHTS) ride along, 0 to 3
 *       bit 2     two SCM_RIGHTS messages instead of one
 *       bit 3     the caller takes an fd (ctr_monitor_request_fd) or not (ctr_monitor_request)
 *       bit 4     a reply buffer of 8 bytes instead of the Lua binding's size
 * Findings, besides ASan and UBSan: a reply that is not NUL-terminated within the buffer, a
 * failure without a message, an fd handed out that is not open or not close-on-exec, and any
 * fd left open in the process once the caller has closed the one it was given (a monitor, or
 * whatever answers on its socket, must not be able to make its clients leak descriptors). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "monitor/monitor.h"

#define finding(...)                                                                           \
    do {                                                                                       \
        fprintf(stderr, "fuzz: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                   \
        abort();                                                                               \
    } while (0)

static int devnull = -1;

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        perror("fuzz: opendir /proc/self/fd");
        exit(1);
    }
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        perror("fuzz: open /dev/null");
        exit(1);
    }
    return 0;
}

static void request(const uint8_t *data, size_t size)
{
    /* as handle() reads it: one recv() of at most CTR_MONITOR_REQ_MAX bytes */
    char req[CTR_MONITOR_REQ_MAX];
    size_t n = size < sizeof req ? size : sizeof req;
    memcpy(req, data, n);
    enum ctr_monitor_req a = ctr_monitor_parse_request(req, n);
    enum ctr_monitor_req b = ctr_monitor_parse_request((const char *)data, size);
    if ((int)a < (int)CTR_MONITOR_UNKNOWN || (int)a > (int)CTR_MONITOR_DELETE)
        finding("ctr_monitor_parse_request: %d is no request", (int)a);
    if (size <= sizeof req && a != b)
        finding("ctr_monitor_parse_request: %d and %d for the same bytes", (int)a, (int)b);
}

static void send_fds(int s, const uint8_t *data, size_t size, int nfds, int two)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
    union {
        char buf[2 * CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        int fds[3] = {devnull, devnull, devnull};
        msg.msg_control = u.buf;
        msg.msg_controllen = (two ? 2 : 1) * CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        for (int k = 0; k < (two ? 2 : 1); k++) {
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
            c = CMSG_NXTHDR(&msg, c);
        }
    }
    if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0) {
        perror("fuzz: sendmsg");
        exit(1);
    }
}

static void reply(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    unsigned flags = data[0];
    data++;
    size--;
    if (size > 4096) /* a datagram in one page: sendmsg takes it whole */
        size = 4096;
    int before = open_fds();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("fuzz: socketpair");
        exit(1);
    }
    send_fds(sv[1], data, size, (int)(flags & 3), (flags & 4) != 0);
    close(sv[1]);

    char buf[CTR_ERR_MSG + 64];
    size_t cap = (flags & 16) ? 8 : sizeof buf;
    memset(buf, 'x', sizeof buf);
    int fd = -2;
    struct ctr_err err = {0};
    int r = ctr_monitor_recv_reply(sv[0], "fuzz", buf, cap, (flags & 8) ? &fd : NULL, &err);
    close(sv[0]);
    if (r == 0 && memchr(buf, '\0', cap) == NULL)
        finding("a reply not NUL-terminated within its %zu bytes", cap);
    if (r < 0 && err.msg[0] == '\0')
        finding("a failed receive without a message");
    if (flags & 8) {
        if (fd == -2)
            finding("the fd of the reply was not set");
        if (fd >= 0) {
            int fl = fcntl(fd, F_GETFD);
            if (fl < 0)
                finding("the reply's fd %d is not open", fd);
            if (!(fl & FD_CLOEXEC))
                finding("the reply's fd %d is not close-on-exec", fd);
            close(fd);
        }
    }
    int after = open_fds();
    if (after != before)
        finding("%d fds before the reply, %d after it (flags %#x, %zu bytes)", before, after,
                flags, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request(data, size);
    reply(data, size);
    return 0;
}
