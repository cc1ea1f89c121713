/* The kernel's grace period at a v1 attach, begun early.
 *
 * Moving a process into a cgroup (a write to cgroup.procs) takes the global threadgroup lock
 * for writing, and the first such write after a quiet spell waits for an RCU grace period
 * (5 to 20 ms on this kind of machine) before it can.  Writes that come while one is
 * under way, or shortly after, wait only for what is left of it.  A run knows at its start
 * that it will move its init into a new cgroup, several milliseconds later, after the image,
 * the snapshot, the records and the spec; so it starts a short-lived child that moves itself
 * into the cgroup it is already in (which changes nothing), and the grace period runs while
 * the run goes on.  Only an init whose pid is written needs this: one in a new user namespace.
 * Elsewhere the init is cloned into its v2 cgroup (under the lock's read side) and moves
 * itself into its v1 ones (a thread moving itself takes no such lock): runtime/create.c.
 *
 * A child process, not a thread: the runtime clones the init with a bare clone(2), and an
 * init cloned while the caller had a second thread would wait forever in the C library's
 * setuid family for that thread's answer (it broadcasts to every thread it knows of). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups/cgroup.h"

pid_t ctr_cgroup_warm_attach(const struct ctr_cgroup_layout *l, struct ctr_err *err)
{
    if ((l->mode != CTR_CGROUP_V1 && l->mode != CTR_CGROUP_HYBRID) || l->n_v1 == 0 || l->fake)
        return 0;
    const struct ctr_cgroup_hier *h = &l->v1[0];
    char procs[4096];
    if (snprintf(procs, sizeof procs, "%s%s%s/cgroup.procs", h->mountpoint, *h->own ? "/" : "",
                 h->own) >= (int)sizeof procs)
        return ctr_fail(err, ENAMETOOLONG, "the cgroup `%s/%s'", h->mountpoint, h->own);
    /* clone as fork, without the C library's fork handlers: the child makes system calls only */
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0)
        return ctr_fail(err, errno, "start the process that writes `%s'", procs);
    if (pid == 0) {
        /* none of the caller's files: its pipes must not wait for this child */
        syscall(SYS_close_range, 0U, ~0U, 0U);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        /* "0" is the writer itself; a failure costs only the head start */
        if (fd >= 0 && write(fd, "0", 1) == 1)
            _exit(0);
        _exit(1);
    }
    return pid;
}

int ctr_cgroup_warm_done(pid_t pid, struct ctr_err *err)
{
    if (pid <= 0)
        return 0;
    while (waitpid(pid, NULL, 0) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == ECHILD) /* reaped already, by a wait for any child */
            return 0;
        return ctr_fail(err, errno, "wait for the cgroup attach's process %d", (int)pid);
    }
    return 0;
}
