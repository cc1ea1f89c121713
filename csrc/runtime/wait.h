/* Waiting for a container's process in the foreground: forwarding the signals we receive to
 * it, and copying its IO between the caller's fds and the process's side (a pty master for
 * `run -t` and `tasks attach`, see runtime/terminal.c; pipes in place of the caller's terminal for a
 * process without one, see ctr.cio's stdio) until it exits.  One loop serves every kind:
 * a pidfd says when the process exits, a signalfd brings the signals, poll() waits for both
 * and for the streams. */
#ifndef CTR_WAIT_H
#define CTR_WAIT_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* The signals a foreground wait forwards: every catchable signal except SIGCHLD (it tells us
 * about the child itself), SIGWINCH (the tty code's) and the synchronous fault signals
 * (blocking them would not stop them, only hide them).  A foreground ctrlua holds them
 * blocked from before start (ctr_tty_block_signals), so that one that comes before the wait
 * stays pending for it. */
void ctr_wait_forwarded_set(sigset_t *set);

/* What the wait does with the signals it receives. */
enum ctr_wait_signals {
    CTR_WAIT_SIGNALS_DEFAULT, /* none is caught (their default actions apply) */
    CTR_WAIT_SIGNALS_FORWARD, /* the forwarded set is sent on to the process */
    CTR_WAIT_SIGNALS_END,     /* SIGINT, SIGTERM, SIGHUP and SIGQUIT end the wait (the
                               * process keeps running: `tasks attach`) */
};

/* One stream copied while the process runs: read src, write dst. */
struct ctr_copy {
    int src, dst;
    int input;  /* the caller's input to the process (src is the caller's, dst the process's);
                 * else the process's output (src the process's, dst the caller's), which is
                 * drained once the process has exited */
    int own;    /* the process's side is a pipe end that belongs to the wait: closed when the
                 * stream ends (for an input: the process then reads end of file) and in any
                 * case before the wait returns */
    int ctrl_d; /* input: at the end of src, write ^D to dst (the end of input of a pty in
                 * canonical mode) */
};

#define CTR_WAIT_MAX_COPY 4

struct ctr_wait_opts {
    enum ctr_wait_signals signals;
    int child;                   /* pid is our child: reap it into *status */
    struct ctr_copy copy[CTR_WAIT_MAX_COPY];
    size_t ncopy;
    int raw_fd;                  /* a terminal put in raw mode for the wait, or -1 */
    void (*on_winch)(void *arg); /* called as the wait starts and on every SIGWINCH (then
                                  * caught): a pty's size follows the caller's */
    void *winch_arg;
};

/* Wait for pid to exit, handling signals as o->signals says and copying o->copy meanwhile.
 * The process's side of each stream is non-blocking during the wait (the caller's sides are
 * left as they are: they may be shared); once pid has exited, what the process wrote is
 * drained: until each output ends, or is quiet for 20 ms (a process outside the container
 * still holds it), 2 s at most.  Every path out restores the signal mask, the fd flags and
 * raw_fd's mode, and closes the pipe ends the wait owns.  Signals that came as the process
 * exited were meant for it and are dropped.
 * Returns 1 when pid exited (*status its wait status when o->child, else 0), 0 when a signal
 * ended the wait (CTR_WAIT_SIGNALS_END: *status = the signal number), -1 on error. */
int ctr_wait_io(pid_t pid, const struct ctr_wait_opts *o, int *status, struct ctr_err *err);

/* ctr_wait_io with nothing to copy: wait for our child pid and store its wait status; with
 * `forward`, sending it the forwarded signals meanwhile (a second Ctrl-C reaches the
 * container, not us: we exit only after it does). */
int ctr_wait(pid_t pid, int forward, int *status, struct ctr_err *err);

/* waitpid(WNOHANG): 1 and *status when pid has exited, 0 while it runs. */
int ctr_wait_nohang(pid_t pid, int *status, struct ctr_err *err);

/* The exit code as a shell gives it: the status, or 128+N for signal N. */
int ctr_exit_code(int status);

#endif
