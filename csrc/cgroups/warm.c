/* The kernel's grace period at a v1 attach, begun early.
 *
 * Moving a process into a cgroup (a write to cgroup.procs) takes the global threadgroup lock
 * for writing, and the first such write after a quiet spell waits for an RCU grace period
 * (5 to 20 ms on this kind of machine) before it can.  Writes that come while one is
 * under way, or shortly after, wait only for what is left of it.  A run knows at its start
 * that it will move its init into a new cgroup, several milliseconds later, after the image,
 * the snapshot, the records and the spec; so it starts, on a thread of its own, a write that
 * moves this process into the cgroup it is already in (which changes nothing), and the grace
 * period runs while the run goes on.  Pure cgroup v2 needs none of this: the init is cloned
 * into its cgroup, under the lock's read side.
 *
 * The thread makes only system calls (open, write, close, munmap): the runtime clones the
 * init with a bare clone(2), and a child born while another thread held a lock of the C
 * library's could not take that lock again. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cgroups/cgroup.h"

struct warm {
    char procs[4096];
};

static void *warm_main(void *arg)
{
    struct warm *w = arg;
    int fd = open(w->procs, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* "0" is the writer's own process; a failure costs only the head start */
        (void)!write(fd, "0", 1);
        close(fd);
    }
    munmap(w, sizeof *w);
    return NULL;
}

int ctr_cgroup_warm_attach(const struct ctr_cgroup_layout *l, struct ctr_err *err)
{
    if ((l->mode != CTR_CGROUP_V1 && l->mode != CTR_CGROUP_HYBRID) || l->n_v1 == 0 || l->fake)
        return 0;
    struct warm *w = mmap(NULL, sizeof *w, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
    if (w == MAP_FAILED)
        return ctr_fail(err, errno, "map the cgroup attach's path");
    const struct ctr_cgroup_hier *h = &l->v1[0];
    if (snprintf(w->procs, sizeof w->procs, "%s%s%s/cgroup.procs", h->mountpoint,
                 *h->own ? "/" : "", h->own) >= (int)sizeof w->procs) {
        munmap(w, sizeof *w);
        return ctr_fail(err, ENAMETOOLONG, "the cgroup `%s/%s'", h->mountpoint, h->own);
    }
    pthread_attr_t attr;
    pthread_t t;
    int r = pthread_attr_init(&attr);
    if (r == 0)
        r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (r == 0)
        r = pthread_create(&t, &attr, warm_main, w);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        munmap(w, sizeof *w);
        return ctr_fail(err, r, "start the thread that writes `%s'", w->procs);
    }
    return 0;
}
