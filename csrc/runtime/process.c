#include "runtime/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/caps.h"
#include "base/files.h"
#include "base/cleanup.h"

int ctr_process_rlimits(pid_t pid, const struct ctr_config *c, struct ctr_err *err)
{
    for (size_t i = 0; i < c->nrlimits; i++) {
        const struct ctr_rlimit *r = &c->rlimits[i];
        struct rlimit lim = {
            .rlim_cur = r->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->soft,
            .rlim_max = r->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)r->hard,
        };
        if (prlimit(pid, (enum __rlimit_resource)r->resource, &lim, NULL) < 0)
            return ctr_fail(err, errno, "setrlimit %s", r->name);
    }
    return 0;
}

int ctr_process_oom_score_adj(pid_t pid, const struct ctr_config *c, struct ctr_err *err)
{
    if (!c->has_oom_score_adj)
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
    cleanup_close int fd = RETRY(open(path, O_WRONLY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", c->oom_score_adj);
    if (ctr_write_all(fd, buf, (size_t)n) < 0)
        return ctr_fail(err, errno, "write `%s'", path);
    return 0;
}

int ctr_process_chdir(const struct ctr_config *c, struct ctr_err *err)
{
    if (chdir(c->cwd) < 0)
        return ctr_fail(err, errno, "chdir to the cwd `%s'", c->cwd);
    /* getcwd() fails (ENOENT, or the kernel's "(unreachable)" prefix, which glibc turns into
     * ENOENT) when the cwd is not below the process's root. */
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof buf) == NULL || buf[0] != '/')
        return ctr_fail(err, errno ? errno : EPERM, "cwd `%s' is outside the container's root",
                        c->cwd);
    return 0;
}

/* A user namespace joined by path whose owner wrote "deny" to setgroups: no supplementary
 * groups can be set there, and runc then leaves them alone too. */
static int setgroups_denied(void)
{
    char buf[16] = "";
    cleanup_close int fd = RETRY(open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC));
    return fd >= 0 && RETRY(read(fd, buf, sizeof buf - 1)) > 0 && strncmp(buf, "deny", 4) == 0;
}

int ctr_process_identity(const struct ctr_config *c, struct ctr_err *err)
{
    /* 1. The bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP, which the container's
     *    sets may not include and which setuid below may take away. */
    if (ctr_caps_drop_bounding(&c->caps, err) < 0)
        return -1;
    /* 2. Groups, gid, uid.  setgroups comes first (after setgid/setuid we might no longer be
     *    allowed to); PR_SET_KEEPCAPS keeps the permitted set across the uid change, which
     *    otherwise clears all capabilities when leaving uid 0. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return ctr_fail(err, errno, "prctl PR_SET_KEEPCAPS");
    if (setgroups(c->ngroups, c->groups) < 0 && !(errno == EPERM && setgroups_denied()))
        return ctr_fail(err, errno, "setgroups");
    if (setresgid(c->gid, c->gid, c->gid) < 0)
        return ctr_fail(err, errno, "setgid %u", (unsigned)c->gid);
    if (setresuid(c->uid, c->uid, c->uid) < 0)
        return ctr_fail(err, errno, "setuid %u", (unsigned)c->uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return ctr_fail(err, errno, "prctl PR_SET_KEEPCAPS");
    /* 3. Effective, permitted, inheritable (empty unless the spec says: runc CVE-2022-29162),
     *    then ambient. */
    if (ctr_caps_set(&c->caps, err) < 0)
        return -1;
    /* 4. no_new_privs: execve can no longer grant privileges (setuid bits, file caps).
     *    With it, the init loads the seccomp filter as late as it can, after this, so that it
     *    filters the container and not our own setup (runtime/seccomp.h). */
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return ctr_fail(err, errno, "prctl PR_SET_NO_NEW_PRIVS");
    return 0;
}

static int executable(const char *path, int *saw_noexec)
{
    struct stat st;
    if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
        return 0;
    if (access(path, X_OK) == 0)
        return 1;
    *saw_noexec = 1;
    return 0;
}

int ctr_process_lookup(const struct ctr_config *c, char *out, size_t len, struct ctr_err *err)
{
    const char *name = c->args[0];
    int noexec = 0;
    if (strchr(name, '/')) {
        if (executable(name, &noexec)) {
            snprintf(out, len, "%s", name);
            return 0;
        }
        if (noexec)
            return ctr_fail_program(err, EACCES, "exec: `%s'", name);
        return ctr_fail_program(err, ENOENT, "exec: `%s'", name);
    }
    const char *path = NULL;
    for (size_t i = 0; c->env[i]; i++)
        if (strncmp(c->env[i], "PATH=", 5) == 0)
            path = c->env[i] + 5;
    if (path == NULL) /* Go's os/exec, and so runc, with no PATH: the libc default */
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    for (;;) {
        const char *e = strchr(p, ':');
        size_t dl = e ? (size_t)(e - p) : strlen(p);
        char cand[PATH_MAX];
        int n = dl == 0 ? snprintf(cand, sizeof cand, "./%s", name)
                        : snprintf(cand, sizeof cand, "%.*s/%s", (int)dl, p, name);
        if (n > 0 && (size_t)n < sizeof cand && executable(cand, &noexec)) {
            snprintf(out, len, "%s", cand);
            return 0;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    /* the words of Go's exec.ErrNotFound, which runc (and so ctr) prints */
    ctr_fail_program(err, 0, noexec ? "exec: `%s': found in $PATH but not executable"
                                    : "exec: `%s': executable file not found in $PATH", name);
    err->code = noexec ? EACCES : ENOENT;
    return -1;
}

int ctr_fd_move_above(int fd, int min)
{
    if (fd < 0 || fd >= min)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
    if (n < 0)
        return -1;
    close(fd);
    return n;
}

int ctr_process_fds(int preserve, struct ctr_err *err)
{
    for (int fd = 3; fd < 3 + preserve; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            return ctr_fail(err, errno, "preserve fd %d", fd);
    }
    if (close_range((unsigned)(3 + preserve), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return ctr_fail(err, errno, "close_range");
    return 0;
}

int ctr_process_stdio(const int stdio[3], int min, struct ctr_err *err)
{
    int tmp[3];
    for (int i = 0; i < 3; i++) {
        tmp[i] = -1;
        if (stdio[i] >= 0 && (tmp[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, min)) < 0)
            return ctr_fail(err, errno, "stdio: fd %d", stdio[i]);
    }
    for (int i = 0; i < 3; i++)
        if (tmp[i] >= 0) {
            if (dup2(tmp[i], i) < 0)
                return ctr_fail(err, errno, "stdio: dup2 fd %d to %d", stdio[i], i);
            close(tmp[i]);
        }
    return 0;
}
