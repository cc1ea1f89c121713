/* Run a program without a shell (see base/spawn.h).
 *
 * fork + execve rather than posix_spawn: the child may have to enter a mount namespace of its
 * own and unmount there (hide_mounts), which posix_spawn cannot do, and an execve failure has
 * to come back as such (glibc's posix_spawn reports it, but not a failed chdir with its path).
 * The parent prepares everything the child touches (the descriptors, the paths to try, the
 * environment), so the child allocates nothing and makes only async-signal-safe calls: the
 * caller may have threads (HTTP transfers, layer applies) holding locks inside libc. */
#include "base/spawn.h"
#include "base/syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CHUNK 65536

/* What the child could not do, written whole to the report pipe before it exits. */
enum step { STEP_STDIO, STEP_UNSHARE, STEP_PRIVATE, STEP_UNMOUNT, STEP_CHDIR, STEP_EXEC,
            STEP_NOT_FOUND };
struct report {
    int step;
    int code;
    int index; /* the stream, the hidden mount or the candidate path the step was about */
};

/* Everything the child needs, made by the parent. */
struct plan {
    const struct ctr_spawn_opts *o;
    char **candidates; /* the paths execve tries in turn, NULL-terminated */
    char *const *envp;
    int direct;        /* argv[0] is a path: its execve's error is the answer */
    int src[3];        /* descriptors >= 3 that become 0, 1 and 2 */
    int max_fd;        /* for kernels without close_range(2) */
};

static void child_fail(int rep, int step, int code, int index) __attribute__((noreturn));
static void child_fail(int rep, int step, int code, int index)
{
    struct report r = {step, code, index};
    while (write(rep, &r, sizeof r) < 0 && errno == EINTR)
        ;
    _exit(127);
}

static void child(const struct plan *p, int rep) __attribute__((noreturn));
static void child(const struct plan *p, int rep)
{
    /* (the mask stays full until the last step before execve) */
    ctr_sys_signals_reset(0);
    /* the sources are all >= 3 (the parent moved them there), so no dup2 clobbers another's
     * source; dup2 clears close-on-exec on the copy */
    for (int i = 0; i < 3; i++)
        if (dup2(p->src[i], i) < 0)
            child_fail(rep, STEP_STDIO, errno, i);
    /* nothing but stdio reaches the program: not the store's lock fds, not another
     * program's pipes that the caller's other threads made without O_CLOEXEC */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        for (int fd = 3; fd < p->max_fd; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    const struct ctr_spawn_opts *o = p->o;
    if (o->hide_mounts && o->hide_mounts[0]) {
        if (unshare(CLONE_NEWNS) < 0)
            child_fail(rep, STEP_UNSHARE, errno, 0);
        /* private first: a lazy unmount in a namespace that shares propagation with the
         * host's would unmount it on the host too */
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            child_fail(rep, STEP_PRIVATE, errno, 0);
        for (int i = 0; o->hide_mounts[i]; i++)
            if (umount2(o->hide_mounts[i], MNT_DETACH) < 0)
                child_fail(rep, STEP_UNMOUNT, errno, i);
    }
    if (o->cwd && chdir(o->cwd) < 0)
        child_fail(rep, STEP_CHDIR, errno, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* execvpe's rules, without its fallback to /bin/sh on ENOEXEC: go on to the next PATH
     * entry when this one has no such program, remember that one was there but not
     * executable */
    int denied = -1;
    for (int i = 0; p->candidates[i]; i++) {
        execve(p->candidates[i], (char *const *)o->argv, p->envp);
        int e = errno;
        if (p->direct)
            child_fail(rep, STEP_EXEC, e, 0);
        if (e == EACCES) {
            if (denied < 0)
                denied = i;
        } else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) {
            child_fail(rep, STEP_EXEC, e, i);
        }
    }
    if (denied >= 0)
        child_fail(rep, STEP_EXEC, EACCES, denied);
    child_fail(rep, STEP_NOT_FOUND, ENOENT, 0);
}

/* ---------------------------------------------------------------- the parent */

struct buf {
    char *p;
    size_t len, size;
};

struct run {
    const struct ctr_spawn_opts *o;
    const char *prog;
    int src[3], end[3]; /* the child's ends and ours (-1: none) */
    int rep[2];
    int pidfd;
    pid_t pid;
    struct buf out[2];
    char **candidates;
    sigset_t saved_mask;
    int mask_changed, epipe;
    struct sigaction old_int, old_quit;
    int ignoring;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void run_release(struct run *s)
{
    for (int i = 0; i < 3; i++) {
        close_fd(&s->src[i]);
        close_fd(&s->end[i]);
    }
    close_fd(&s->rep[0]);
    close_fd(&s->rep[1]);
    close_fd(&s->pidfd);
    for (int i = 0; i < 2; i++)
        free(s->out[i].p);
    if (s->candidates)
        for (char **c = s->candidates; *c; c++)
            free(*c);
    free(s->candidates);
    if (s->ignoring) {
        sigaction(SIGINT, &s->old_int, NULL);
        sigaction(SIGQUIT, &s->old_quit, NULL);
    }
    if (s->mask_changed) {
        /* a write to a stdin the program had closed raised SIGPIPE at this thread, held
         * blocked: take it back, unless the caller itself had SIGPIPE blocked (then a pending
         * one may be its own) */
        if (s->epipe && !sigismember(&s->saved_mask, SIGPIPE)) {
            sigset_t pipe_set;
            sigemptyset(&pipe_set);
            sigaddset(&pipe_set, SIGPIPE);
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
                ;
        }
        pthread_sigmask(SIG_SETMASK, &s->saved_mask, NULL);
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const stream_names[3] = {"stdin", "stdout", "stderr"};

/* fd, or a close-on-exec copy of it >= 3 (the original closed): the child's sources must not
 * be 0, 1 or 2, which its dup2s overwrite. */
static int above_stdio(int fd)
{
    if (fd >= 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return n;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_stream(struct run *s, int i, struct ctr_err *err)
{
    const struct ctr_spawn_stream *st = &s->o->io[i];
    switch (st->kind) {
    case CTR_SPAWN_NULL:
        s->src[i] = above_stdio(RETRY(open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY)));
        if (s->src[i] < 0)
            return ctr_fail(err, errno, "spawn `%s': %s: open `/dev/null'", s->prog,
                            stream_names[i]);
        return 0;
    case CTR_SPAWN_FD:
        if (st->fd < 0)
            return ctr_fail(err, EBADF, "spawn `%s': %s: descriptor %d", s->prog,
                            stream_names[i], st->fd);
        s->src[i] = fcntl(st->fd, F_DUPFD_CLOEXEC, 3);
        if (s->src[i] < 0)
            return ctr_fail(err, errno, "spawn `%s': %s: descriptor %d", s->prog,
                            stream_names[i], st->fd);
        return 0;
    case CTR_SPAWN_PIPE: {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return ctr_fail(err, errno, "spawn `%s': %s: pipe2", s->prog, stream_names[i]);
        int theirs = i == 0 ? p[0] : p[1], ours = i == 0 ? p[1] : p[0];
        s->end[i] = ours;
        s->src[i] = above_stdio(theirs);
        if (s->src[i] < 0 || set_nonblock(s->end[i]) < 0)
            return ctr_fail(err, errno, "spawn `%s': %s: pipe", s->prog, stream_names[i]);
        return 0;
    }
    }
    return ctr_fail(err, EINVAL, "spawn `%s': %s: unknown kind %d", s->prog, stream_names[i],
                    (int)st->kind);
}

/* The paths execve tries: argv[0] itself when it holds a '/', else NAME in each entry of
 * the PATH the program gets (as `env -i PATH=... NAME` finds NAME). */
static int make_candidates(struct run *s, char *const *envp, const char **path_out,
                           struct ctr_err *err)
{
    const char *path = NULL;
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    if (path == NULL)
        path = DEFAULT_PATH;
    *path_out = path;
    size_t n = 2;
    if (strchr(s->prog, '/') == NULL)
        for (const char *c = path; *c; c++)
            n += *c == ':';
    s->candidates = calloc(n, sizeof *s->candidates);
    if (s->candidates == NULL)
        return ctr_fail(err, ENOMEM, "spawn `%s'", s->prog);
    if (strchr(s->prog, '/') != NULL) {
        s->candidates[0] = strdup(s->prog);
        if (s->candidates[0] == NULL)
            return ctr_fail(err, ENOMEM, "spawn `%s'", s->prog);
        return 0;
    }
    size_t k = 0, plen = strlen(s->prog);
    const char *start = path;
    for (;;) {
        const char *colon = strchr(start, ':');
        size_t dlen = colon ? (size_t)(colon - start) : strlen(start);
        const char *dir = dlen ? start : ".";
        if (dlen == 0)
            dlen = 1;
        char *c = malloc(dlen + 1 + plen + 1);
        if (c == NULL)
            return ctr_fail(err, ENOMEM, "spawn `%s'", s->prog);
        memcpy(c, dir, dlen);
        c[dlen] = '/';
        memcpy(c + dlen + 1, s->prog, plen + 1);
        s->candidates[k++] = c;
        if (colon == NULL)
            break;
        start = colon + 1;
    }
    return 0;
}

static int report_error(struct run *s, const struct report *r, const char *path,
                        struct ctr_err *err)
{
    const struct ctr_spawn_opts *o = s->o;
    switch (r->step) {
    case STEP_STDIO:
        return ctr_fail(err, r->code, "spawn `%s': dup2 onto %s", s->prog,
                        stream_names[r->index % 3]);
    case STEP_UNSHARE:
        return ctr_fail(err, r->code, "spawn `%s': unshare a mount namespace", s->prog);
    case STEP_PRIVATE:
        return ctr_fail(err, r->code, "spawn `%s': make `/' private", s->prog);
    case STEP_UNMOUNT:
        return ctr_fail(err, r->code, "spawn `%s': unmount `%s'", s->prog,
                        o->hide_mounts[r->index]);
    case STEP_CHDIR:
        return ctr_fail(err, r->code, "spawn `%s': chdir `%s'", s->prog, o->cwd);
    case STEP_EXEC:
        return ctr_fail(err, r->code, "spawn `%s': execve `%s'", s->prog,
                        s->candidates[r->index]);
    case STEP_NOT_FOUND:
        return ctr_fail(err, ENOENT, "spawn `%s': no such program in PATH `%s'", s->prog, path);
    }
    return ctr_fail(err, r->code, "spawn `%s': step %d", s->prog, r->step);
}

static void kill_and_reap(struct run *s)
{
    if (syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0) < 0)
        kill(s->pid, SIGKILL);
    siginfo_t si;
    RETRY(waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED));
}

/* Write what the pipe takes of the rest of stdin; close it when all is written or the
 * program stopped reading. */
static int feed(struct run *s, size_t *off, struct ctr_err *err)
{
    const struct ctr_spawn_stream *in = &s->o->io[0];
    size_t n = in->len - *off < CHUNK ? in->len - *off : CHUNK;
    ssize_t w = RETRY(write(s->end[0], in->data + *off, n));
    if (w < 0 && errno == EAGAIN)
        return 0;
    if (w < 0 && errno == EPIPE) {
        s->epipe = 1;
        close_fd(&s->end[0]);
        return 0;
    }
    if (w < 0)
        return ctr_fail(err, errno, "spawn `%s': write its stdin", s->prog);
    *off += (size_t)w;
    if (*off == in->len)
        close_fd(&s->end[0]);
    return 0;
}

/* Read what there is on stdout (k = 1) or stderr (k = 2), until EAGAIN or end of file. */
static int drain(struct run *s, int k, struct ctr_err *err)
{
    struct buf *b = &s->out[k - 1];
    size_t cap = s->o->cap;
    while (s->end[k] >= 0) {
        if (b->len == b->size) {
            size_t size = b->size ? b->size * 2 : CHUNK;
            if (size > cap + 1)
                size = cap + 1;
            if (size <= b->len) {
                ctr_fail(err, 0, "spawn `%s': more than %zu bytes on %s", s->prog, cap,
                         stream_names[k]);
                err->code = EFBIG;
                return -1;
            }
            char *p = realloc(b->p, size + 1);
            if (p == NULL)
                return ctr_fail(err, ENOMEM, "spawn `%s': %zu bytes of %s", s->prog, size,
                                stream_names[k]);
            b->p = p;
            b->size = size;
        }
        ssize_t r = RETRY(read(s->end[k], b->p + b->len, b->size - b->len));
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r < 0)
            return ctr_fail(err, errno, "spawn `%s': read its %s", s->prog, stream_names[k]);
        if (r == 0)
            close_fd(&s->end[k]);
        b->len += (size_t)r;
    }
    return 0;
}

/* Feed stdin, collect stdout and stderr, until the program exits (its pidfd is readable) or
 * the deadline passes. */
static int supervise(struct run *s, struct ctr_err *err)
{
    const struct ctr_spawn_opts *o = s->o;
    long long deadline = o->timeout_ms >= 0 ? now_ms() + o->timeout_ms : -1;
    size_t off = 0;
    if (s->end[0] >= 0 && o->io[0].len == 0)
        close_fd(&s->end[0]);
    for (;;) {
        struct pollfd pf[4];
        int slot[4], n = 0;
        for (int i = 0; i < 3; i++)
            if (s->end[i] >= 0) {
                pf[n] = (struct pollfd){s->end[i], i == 0 ? POLLOUT : POLLIN, 0};
                slot[n++] = i;
            }
        pf[n] = (struct pollfd){s->pidfd, POLLIN, 0};
        slot[n++] = 3;
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                ctr_fail(err, 0, "spawn `%s': still running after %d ms: killed", s->prog,
                         o->timeout_ms);
                err->code = ETIMEDOUT;
                return -1;
            }
            wait = left > 1000000000 ? 1000000000 : (int)left;
        }
        int r = poll(pf, (nfds_t)n, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ctr_fail(err, errno, "spawn `%s': poll", s->prog);
        int exited = 0;
        for (int j = 0; j < n; j++) {
            if (pf[j].revents == 0)
                continue;
            if (slot[j] == 0 && feed(s, &off, err) < 0)
                return -1;
            if ((slot[j] == 1 || slot[j] == 2) && drain(s, slot[j], err) < 0)
                return -1;
            if (slot[j] == 3)
                exited = 1;
        }
        if (exited) {
            /* all it wrote is in the pipes now; whoever else holds them is not waited for */
            for (int k = 1; k <= 2; k++)
                if (drain(s, k, err) < 0)
                    return -1;
            return 0;
        }
    }
}

int ctr_spawn_run(const struct ctr_spawn_opts *o, struct ctr_spawn_result *r, struct ctr_err *err)
{
    memset(r, 0, sizeof *r);
    if (o->argv == NULL || o->argv[0] == NULL)
        return ctr_fail(err, EINVAL, "spawn: no program (argv is empty)");
    struct run s = {.o = o, .prog = o->argv[0], .src = {-1, -1, -1}, .end = {-1, -1, -1},
                    .rep = {-1, -1}, .pidfd = -1, .pid = -1};
    if (s.prog[0] == '\0')
        return ctr_fail(err, ENOENT, "spawn `': an empty program name");
    int rc = -1;
    char *const *envp = o->envp ? (char *const *)o->envp : environ;
    const char *path = NULL;
    if (make_candidates(&s, envp, &path, err) < 0)
        goto out;
    for (int i = 0; i < 3; i++)
        if (open_stream(&s, i, err) < 0)
            goto out;
    if (pipe2(s.rep, O_CLOEXEC) < 0) {
        ctr_fail(err, errno, "spawn `%s': pipe2", s.prog);
        goto out;
    }
    long max_fd = sysconf(_SC_OPEN_MAX);
    struct plan p = {.o = o, .candidates = s.candidates, .envp = envp,
                     .direct = strchr(s.prog, '/') != NULL,
                     .src = {s.src[0], s.src[1], s.src[2]},
                     .max_fd = max_fd > 0 && max_fd < 65536 ? (int)max_fd : 65536};
    /* every signal blocked across fork, so that no handler of the caller's runs in the child
     * before it has reset them */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &s.saved_mask);
    s.mask_changed = 1;
    if (o->foreground) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        if (sigaction(SIGINT, &ign, &s.old_int) < 0) {
            ctr_fail(err, errno, "spawn `%s': ignore SIGINT", s.prog);
            goto out;
        }
        if (sigaction(SIGQUIT, &ign, &s.old_quit) < 0) {
            ctr_fail(err, errno, "spawn `%s': ignore SIGQUIT", s.prog);
            sigaction(SIGINT, &s.old_int, NULL);
            goto out;
        }
        s.ignoring = 1;
    }
    s.pid = fork();
    if (s.pid == 0)
        child(&p, s.rep[1]);
    int fork_errno = errno;
    /* SIGPIPE stays blocked while stdin is written: a program that exits without reading it
     * must not end the caller */
    sigset_t mask = s.saved_mask;
    sigaddset(&mask, SIGPIPE);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    if (s.pid < 0) {
        ctr_fail(err, fork_errno, "spawn `%s': fork", s.prog);
        goto out;
    }
    for (int i = 0; i < 3; i++)
        close_fd(&s.src[i]);
    close_fd(&s.rep[1]);
    struct report rp;
    ssize_t n = RETRY(read(s.rep[0], &rp, sizeof rp));
    if (n != 0) {
        int e = errno;
        RETRY(waitpid(s.pid, NULL, 0));
        if (n == (ssize_t)sizeof rp)
            report_error(&s, &rp, path, err);
        else
            ctr_fail(err, n < 0 ? e : EIO, "spawn `%s': read the child's report", s.prog);
        goto out;
    }
    s.pidfd = (int)syscall(SYS_pidfd_open, s.pid, 0);
    if (s.pidfd < 0) {
        ctr_fail(err, errno, "spawn `%s': pidfd_open %d", s.prog, (int)s.pid);
        kill(s.pid, SIGKILL);
        RETRY(waitpid(s.pid, NULL, 0));
        goto out;
    }
    if (supervise(&s, err) < 0) {
        kill_and_reap(&s);
        goto out;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (RETRY(waitid(P_PIDFD, (id_t)s.pidfd, &si, WEXITED)) < 0) {
        ctr_fail(err, errno, "spawn `%s': waitid pid %d", s.prog, (int)s.pid);
        goto out;
    }
    if (si.si_code == CLD_EXITED) {
        r->code = si.si_status;
    } else {
        r->signal = si.si_status;
        r->code = 128 + si.si_status;
        r->core_dumped = si.si_code == CLD_DUMPED;
    }
    for (int k = 0; k < 2; k++) {
        if (o->io[k + 1].kind != CTR_SPAWN_PIPE)
            continue;
        struct buf *b = &s.out[k];
        if (b->p == NULL && (b->p = malloc(1)) == NULL) {
            ctr_fail(err, ENOMEM, "spawn `%s'", s.prog);
            ctr_spawn_result_free(r);
            goto out;
        }
        b->p[b->len] = '\0';
        r->out[k] = steal_pointer(&b->p);
        r->out_len[k] = b->len;
    }
    rc = 0;
out:
    run_release(&s);
    return rc;
}

void ctr_spawn_result_free(struct ctr_spawn_result *r)
{
    for (int k = 0; k < 2; k++) {
        free(r->out[k]);
        r->out[k] = NULL;
    }
}
