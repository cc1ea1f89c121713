/* Credential helpers and terminal secrets (see net/credentials.h). */
#include "net/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"

extern char **environ;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

int ctr_run_capture(const char *const *argv, const char *input, size_t input_len, size_t cap,
                    int timeout_ms, char **out, size_t *out_len, int *status,
                    struct ctr_err *err)
{
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "run `%s': pipe", argv[0]);
    if (pipe2(outp, O_CLOEXEC) < 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return ctr_fail(err, e, "run `%s': pipe", argv[0]);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigfillset(&dfl);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setsigdefault(&sa, &dfl);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, &sa, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    close(in[0]);
    close(outp[1]);
    if (e != 0) {
        close(in[1]);
        close(outp[0]);
        return ctr_fail(err, e, "run `%s'", argv[0]);
    }
    /* the whole input first (a helper reads it all before it answers; small) */
    /* a helper that exits without reading must not kill us with SIGPIPE: blocked for the
     * write, and a pending one taken back */
    sigset_t pipe_set, pipe_saved;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &pipe_saved);
    int wr = input_len > 0 ? ctr_write_all(in[1], input, input_len) : 0;
    int werr = errno;
    if (wr < 0 && werr == EPIPE) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &pipe_saved, NULL);
    if (wr < 0 && werr != EPIPE) {
        e = werr;
        close(in[1]);
        close(outp[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ctr_fail(err, e, "run `%s': write its input", argv[0]);
    }
    close(in[1]);
    cleanup_free char *buf = malloc(cap + 1);
    size_t len = 0;
    int rc = 0;
    double deadline = now_ms() + timeout_ms;
    if (buf == NULL)
        rc = ctr_fail(err, ENOMEM, "run `%s'", argv[0]);
    while (rc == 0) {
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            rc = ctr_fail(err, ETIMEDOUT, "run `%s': no answer within %d ms", argv[0], timeout_ms);
            break;
        }
        struct pollfd p = { outp[0], POLLIN, 0 };
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ctr_fail(err, errno, "run `%s': poll", argv[0]);
            break;
        }
        if (n == 0)
            continue;
        if (len == cap) {
            rc = ctr_fail(err, EFBIG, "run `%s': more than %zu bytes of output", argv[0], cap);
            break;
        }
        ssize_t r = RETRY(read(outp[0], buf + len, cap - len));
        if (r < 0) {
            rc = ctr_fail(err, errno, "run `%s': read its output", argv[0]);
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(outp[0]);
    if (rc < 0)
        kill(pid, SIGKILL);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (rc < 0)
        return rc;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    buf[len] = '\0';
    *out = steal_pointer(&buf);
    *out_len = len;
    return 0;
}

int ctr_read_secret(const char *prompt, char *out, size_t outlen, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno == ENXIO ? ENOTTY : errno, "open the terminal");
    struct termios old, quiet;
    if (tcgetattr(fd, &old) < 0)
        return ctr_fail(err, errno, "read the terminal's mode");
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    quiet.c_lflag |= ICANON;
    /* SIGINT, SIGTERM and SIGTSTP wait until the echo is back on */
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGTSTP);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &saved);
    ctr_write_all(fd, prompt, strlen(prompt));
    int rc = 0;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
        rc = ctr_fail(err, errno, "turn the terminal's echo off");
    } else {
        size_t n = 0;
        for (;;) {
            char c;
            ssize_t r = RETRY(read(fd, &c, 1));
            if (r < 0) {
                rc = ctr_fail(err, errno, "read the terminal");
                break;
            }
            if (r == 0 || c == '\n')
                break;
            if (n + 1 < outlen)
                out[n++] = c;
        }
        out[n] = '\0';
        tcsetattr(fd, TCSAFLUSH, &old);
        ctr_write_all(fd, "\n", 1);
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    return rc;
}
