/* process.terminal with runc's console-socket protocol: the init allocates a pty in the
 * container's own devpts (after pivot_root), makes the slave its controlling terminal and
 * its stdio and /dev/console, and sends the master over a unix socket with SCM_RIGHTS (the
 * message text is the master's name, "/dev/ptmx", as runc's). */
#ifndef CTR_CONSOLE_H
#define CTR_CONSOLE_H

#include <sys/types.h>

#include "base/error.h"

/* Connect to the console socket at path (in the caller, before clone): a CLOEXEC fd. */
int ctr_console_connect(const char *path, struct ctr_err *err);

/* In the init: the pty, the window size (0: leave it), /dev/console, stdio, controlling tty,
 * then send the master on sock (closed after). */
int ctr_console_setup(int sock, unsigned rows, unsigned cols, uid_t uid, struct ctr_err *err);

/* The pty slave's owner made uid (the process's user, in the container's user namespace). */
int ctr_console_own(int slave, uid_t uid, struct ctr_err *err);

/* Send fd over sock with `name` as the message. */
int ctr_send_fd(int sock, int fd, const char *name, struct ctr_err *err);

/* Receive one fd from sock: the fd (CLOEXEC), and the message in name (NUL-terminated). */
int ctr_recv_fd(int sock, char *name, size_t len, struct ctr_err *err);

#endif
