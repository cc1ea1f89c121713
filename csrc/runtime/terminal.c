#include "runtime/terminal.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/wait.h"

int ctr_tty_block_signals(sigset_t *old, struct ctr_err *err)
{
    sigset_t set;
    ctr_wait_forwarded_set(&set);
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

/* The caller's window size onto the master (from in_fd, else out_fd, when a terminal). */
struct winch {
    const struct ctr_tty_run_opts *o;
    int master;
};

static void copy_size(void *arg)
{
    const struct winch *w = arg;
    struct winsize ws;
    if (ioctl(w->o->in_fd, TIOCGWINSZ, &ws) == 0 || ioctl(w->o->out_fd, TIOCGWINSZ, &ws) == 0)
        ioctl(w->master, TIOCSWINSZ, &ws);
}

int ctr_tty_run(int master, pid_t pid, const struct ctr_tty_run_opts *o, int *status,
                struct ctr_err *err)
{
    /* a caller's terminal is put in raw mode: its ^D, ^C and ^Z reach the container's pty as
     * bytes; any other input's end is the pty's end of input, a ^D (what script(1) does) */
    int raw = isatty(o->in_fd);
    struct winch w = {.o = o, .master = master};
    struct ctr_wait_opts wo = {
        .signals = o->forward ? CTR_WAIT_SIGNALS_FORWARD : CTR_WAIT_SIGNALS_END,
        .child = o->child,
        .copy = {{.src = o->in_fd, .dst = master, .input = 1, .ctrl_d = !raw},
                 {.src = master, .dst = o->out_fd}},
        .ncopy = 2,
        .raw_fd = raw ? o->in_fd : -1,
        .on_winch = copy_size,
        .winch_arg = &w,
    };
    return ctr_wait_io(pid, &wo, status, err);
}
