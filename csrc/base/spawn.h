/* Run a program and wait for it, with no shell anywhere: an argv array, an environment, a
 * working directory, stdin from bytes, a descriptor or /dev/null, stdout and stderr captured
 * through pipes or passed to descriptors; the exit is waited for through a pidfd, with a
 * timeout after which the program is killed.  This is how the library runs helper programs
 * (CNI plugins, runc-compatible runtimes, ps): a shell command line would need quoting that
 * one odd byte in a path or an id breaks, and would report a missing program as exit 127.
 *
 * Between fork and execve the child only makes syscalls; what it cannot do (a dup2, the
 * chdir, the execve) crosses back over a close-on-exec pipe as the step and its errno, so the
 * caller reports "spawn `runc': chdir `/x': No such file or directory", never "exit 127". */
#ifndef CTR_SPAWN_H
#define CTR_SPAWN_H

#include <stddef.h>

#include "base/error.h"

enum ctr_spawn_kind {
    CTR_SPAWN_NULL = 0, /* /dev/null */
    CTR_SPAWN_PIPE,     /* stdin: `data` is written to it; stdout, stderr: captured */
    CTR_SPAWN_FD,       /* the caller's descriptor `fd` */
};

struct ctr_spawn_stream {
    enum ctr_spawn_kind kind;
    int fd;
    const char *data;
    size_t len;
};

struct ctr_spawn_opts {
    /* argv[0] is the program: a path when it holds a '/' (relative to cwd), otherwise a name
     * looked up in the PATH of envp (of the caller's environment when envp is NULL) */
    const char *const *argv;
    const char *const *envp;          /* NULL: the caller's environment */
    const char *cwd;                  /* NULL: the caller's */
    struct ctr_spawn_stream io[3];    /* stdin, stdout, stderr */
    size_t cap;                       /* most bytes captured of stdout and of stderr each */
    int timeout_ms;                   /* < 0: no limit */
    /* NULL-terminated, or NULL: the child runs in a mount namespace of its own (propagation
     * private) from which these mounts are lazily unmounted (what `unshare -m
     * --propagation private` + `umount -l` would do, without a shell to chain them) */
    const char *const *hide_mounts;
    /* as system(3): the caller ignores SIGINT and SIGQUIT while the child runs, so that a ^C
     * at the terminal is the child's to handle and the caller lives to see its exit status */
    int foreground;
};

struct ctr_spawn_result {
    int code;        /* the exit status, or 128+N when signal N ended the program */
    int signal;      /* N, or 0 when it exited */
    int core_dumped;
    char *out[2];    /* captured stdout and stderr (NUL-terminated), or NULL */
    size_t out_len[2];
};

/* Run opts->argv and wait for it.  0 with *r filled (free it with ctr_spawn_result_free), or
 * -1: the program could not be started (ENOENT: not found; the execve's errno otherwise), a
 * captured stream went over `cap` (EFBIG) or the timeout passed (ETIMEDOUT); in the last two
 * cases the program has been killed with SIGKILL and reaped.  Output that children the
 * program left behind write after it exited is not waited for. */
int ctr_spawn_run(const struct ctr_spawn_opts *o, struct ctr_spawn_result *r, struct ctr_err *err);

void ctr_spawn_result_free(struct ctr_spawn_result *r);

#endif
