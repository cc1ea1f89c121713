/* The caller's side of a container's terminal (`run -t`, `tasks attach`): raw mode on the
 * caller's terminal, window sizes, and the copy between that terminal and the pty master the
 * init sent over the console socket (runtime/console_socket.c), which is runtime/wait.c's loop.  The master stays
 * with ctrlua (a foreground run) or with the monitor (a detached task, which hands it to an
 * attacher).
 *
 * Signals: a foreground ctrlua holds the signals it forwards (runtime/wait.h's forwarded set) blocked
 * from before start (ctr_tty_block_signals) to the end of the wait, so that a SIGTERM that
 * arrives between start and the wait stays pending instead of killing ctrlua while the
 * container runs with its rootfs mounted; the wait reads it from a signalfd and sends it on. */
#ifndef CTR_TTY_H
#define CTR_TTY_H

#include <signal.h>
#include <sys/types.h>
#include <termios.h>

#include "base/error.h"

/* Block the forwarded set in the calling thread (added to the current mask; *old, when not
 * NULL, receives the previous one). */
int ctr_tty_block_signals(sigset_t *old, struct ctr_err *err);

/* The window size of terminal fd, and setting it (on a pty master: the size the container's
 * programs see, with SIGWINCH sent to its foreground process group by the kernel). */
int ctr_tty_get_size(int fd, unsigned *rows, unsigned *cols, struct ctr_err *err);
int ctr_tty_set_size(int fd, unsigned rows, unsigned cols, struct ctr_err *err);

/* Save fd's terminal mode in *saved and put it in raw mode (cfmakeraw: no echo, no line
 * editing, no signal keys: ^C reaches the container's pty as a byte). */
int ctr_tty_set_raw(int fd, struct termios *saved, struct ctr_err *err);
int ctr_tty_restore(int fd, const struct termios *saved, struct ctr_err *err);

struct ctr_tty_run_opts {
    int in_fd, out_fd; /* the caller's side: usually 0 and 1 */
    int forward;       /* send the forwarded signals to pid; else SIGINT, SIGTERM, SIGHUP and
                        * SIGQUIT end the copy (the container keeps running) */
    int child;         /* pid is our child: reap it into *status */
};

/* Copy in_fd -> master and master -> out_fd until pid exits (then drain what the container
 * wrote).  While it runs: in_fd, when a terminal, is in raw mode and its window size is the
 * master's, again on every SIGWINCH; the signals are handled as opts says.  Every path out
 * restores in_fd's mode, the master's flags and the signal mask.
 * Returns 1 when pid exited (*status its wait status when opts->child, else 0), 0 when a
 * signal ended the copy (*status = the signal number), -1 on error. */
int ctr_tty_run(int master, pid_t pid, const struct ctr_tty_run_opts *opts, int *status,
                struct ctr_err *err);

#endif
