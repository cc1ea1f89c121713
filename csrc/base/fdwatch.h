/* Process and descriptor primitives for Lua code that watches several children at once (the
 * pipeline runner): pipes, non-blocking reads, pidfds and poll.  Nothing here blocks without a
 * timeout the caller chose, and nothing sleeps in a loop: waiting is poll(2) on descriptors,
 * a child's exit included (a pidfd becomes readable when its process exits). */
#ifndef CTR_PROC_H
#define CTR_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* A pipe, both ends O_CLOEXEC; the read end O_NONBLOCK when `nonblock_read`. */
int ctr_proc_pipe(int fds[2], int nonblock_read, struct ctr_err *err);

/* read(2) once, up to n bytes: the count (0 at end of file), or -1; EAGAIN is reported as
 * an error with code EAGAIN so that the caller can tell "nothing yet" from a failure. */
ssize_t ctr_proc_read(int fd, void *buf, size_t n, struct ctr_err *err);

/* Write all of buf to fd (retrying short writes and EINTR). */
int ctr_proc_write(int fd, const void *buf, size_t n, struct ctr_err *err);

/* pidfd_open(2) with O_CLOEXEC semantics (pidfds are always close-on-exec). */
int ctr_proc_pidfd_open(pid_t pid, struct ctr_err *err);

/* poll(2) for input on nfds descriptors: ready[i] = 1 when fds[i] is readable, hung up or in
 * error.  timeout_ms < 0 waits without limit.  Returns the number ready (0 on timeout).  EINTR
 * is retried with the time that remains. */
int ctr_proc_poll(const int *fds, int *ready, size_t nfds, int timeout_ms, struct ctr_err *err);

#endif
