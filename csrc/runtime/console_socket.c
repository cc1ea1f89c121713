#include "runtime/console_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/mounts.h"
#include "base/cleanup.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int ctr_console_connect(const char *path, struct ctr_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return ctr_fail(err, ENAMETOOLONG, "console socket `%s'", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "console socket `%s': socket", path);
    if (RETRY(connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0) {
        int e = errno;
        close(fd);
        return ctr_fail(err, e, "connect to the console socket `%s'", path);
    }
    return fd;
}

int ctr_send_fd(int sock, int fd, const char *name, struct ctr_err *err)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (RETRY(sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0)
        return ctr_fail(err, errno, "send the pty master over the console socket");
    return 0;
}

int ctr_recv_fd(int sock, char *name, size_t len, struct ctr_err *err)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = name, .iov_len = len > 1 ? len - 1 : 0};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    ssize_t n = RETRY(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC));
    if (n < 0)
        return ctr_fail(err, errno, "receive an fd");
    if (len)
        name[n] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    return ctr_fail(err, n == 0 ? EPIPE : EBADMSG, "receive an fd: no descriptor in the message");
}

int ctr_console_own(int slave, uid_t uid, struct ctr_err *err)
{
    /* the group and the mode are devpts's (gid=, mode= of its mount: tty and 0620 in the
     * default specs); the owner is the process's user, as runc makes it, so that the
     * process may change its own terminal's modes (mesg, chmod) */
    if (fchown(slave, uid, (gid_t)-1) < 0)
        return ctr_fail(err, errno, "chown the pty slave to uid %u", (unsigned)uid);
    return 0;
}

int ctr_console_setup(int sock, unsigned rows, unsigned cols, uid_t uid, struct ctr_err *err)
{
    /* the container's own devpts: /dev/ptmx is its pts/ptmx (see runtime/rootfs.c) */
    cleanup_close int master = RETRY(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (master < 0)
        return ctr_fail(err, errno, "open `/dev/ptmx' in the container");
    int unlock = 0, ptn;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
        return ctr_fail(err, errno, "unlock the pty");
    if (ioctl(master, TIOCGPTN, &ptn) < 0)
        return ctr_fail(err, errno, "pty number");
    /* the slave by the master's fd (no path to swap), in the same devpts */
    cleanup_close int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        return ctr_fail(err, errno, "open the pty slave /dev/pts/%d", ptn);
    if (ctr_console_own(slave, uid, err) < 0)
        return -1;
    if (rows && cols) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
            return ctr_fail(err, errno, "set the console size");
    }
    /* /dev/console: the slave bound onto a file created in the container's /dev */
    cleanup_close int dev = RETRY(open("/dev", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dev < 0)
        return ctr_fail(err, errno, "open `/dev' in the container");
    int f = openat(dev, "console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f < 0)
        return ctr_fail(err, errno, "create `/dev/console' in the container");
    close(f);
    cleanup_close int target = openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    char src[32], dst[32];
    if (target < 0 || mount(ctr_fd_path(slave, src, sizeof src),
                            ctr_fd_path(target, dst, sizeof dst), NULL, MS_BIND, NULL) < 0)
        return ctr_fail(err, errno, "bind the pty /dev/pts/%d onto `/dev/console'", ptn);
    if (ctr_send_fd(sock, master, "/dev/ptmx", err) < 0)
        return -1;
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            return ctr_fail(err, errno, "dup the pty slave to fd %d", i);
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        return ctr_fail(err, errno, "make the pty the controlling terminal");
    return 0;
}
