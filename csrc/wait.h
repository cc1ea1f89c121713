/* Waiting for a container's init, optionally forwarding the signals we receive to it. */
#ifndef CTR_WAIT_H
#define CTR_WAIT_H

#include <sys/types.h>

#include "error.h"

/* Wait for pid to exit and store its wait status.  With `forward`, every catchable signal
 * except SIGCHLD and SIGWINCH (and the synchronous fault signals) is blocked, read from a
 * signalfd and sent on to pid until it exits; the signal mask is restored afterwards.  So a
 * second Ctrl-C reaches the container, not us: we exit only after it does. */
int ctr_wait(pid_t pid, int forward, int *status, struct ctr_err *err);

/* waitpid(WNOHANG): 1 and *status when pid has exited, 0 while it runs. */
int ctr_wait_nohang(pid_t pid, int *status, struct ctr_err *err);

/* The exit code as a shell gives it: the status, or 128+N for signal N. */
int ctr_exit_code(int status);

#endif
