/* create and start: an OCI bundle becomes a process that has done all its setup and waits on
 * the exec fifo (create), then execs the container's program when the fifo is read (start).
 * This is runc's create/start split, with the same guarantees: create returns only once the
 * init is fully set up, and any failure of the setup comes back as the error of create, naming
 * the step and the path, with the init killed and reaped. */
#ifndef CTR_SPAWN_H
#define CTR_SPAWN_H

#include <sys/types.h>

#include "base/error.h"

/* An init that died on its own before it was ready: killed by the OOM killer while it set
 * up, say (a memory limit below what any process needs).  create fails then, and says so in
 * its message and here, so that a caller can report the exit as runc's callers see it
 * (128 + the signal). */
struct ctr_init_death {
    int died;   /* 1 when the fields below are set */
    int status; /* its wait status */
    int oom;    /* its cgroup counted an OOM kill */
};

struct ctr_cgroup_layout;

struct ctr_create_opts {
    const char *exec_fifo;   /* created 0600 (must not exist); NULL: exec right after setup */
    const char *pid_file;    /* written atomically before create returns; may be NULL */
    int no_pivot;            /* MS_MOVE + chroot instead of pivot_root */
    int stdio[3];            /* fds the init gets as 0, 1, 2; -1: inherit ours */
    int preserve_fds;        /* fds 3 .. 3+n-1 stay open in the container */
    const char *console_socket; /* process.terminal: the pty master goes there (SCM_RIGHTS) */
    const char *id;          /* the container id, for the hooks' state */
    int die_with_parent;     /* until start, the init is killed when the caller dies */
    /* Called in the parent after clone and before the child does any setup
     * (it is blocked reading the sync socket), so the init joins its cgroup (and later gets
     * its id maps) before it mounts, allocates or execs anything.  Failure aborts create. */
    int (*after_clone)(pid_t pid, void *data, struct ctr_err *err);
    void *hook_data;
    struct ctr_init_death *death; /* out, may be NULL: see struct ctr_init_death */
    /* The cgroup hierarchies as the caller read them (it passes the same to the cgroup
     * calls of the task's life); NULL: read here. */
    const struct ctr_cgroup_layout *cgroup_layout;
};

pid_t ctr_create(const char *bundle, const struct ctr_create_opts *opts, struct ctr_err *err);

/* Run the hooks of one kind ("poststart", "poststop", ...) of bundle/config.json with `state`
 * (the runtime-spec state JSON) on their stdin: every hook runs; the error is the first
 * failure.  For the caller's own lifecycle points (poststart after start, poststop after
 * delete). */
int ctr_run_hooks(const char *bundle, const char *kind, const char *state, struct ctr_err *err);

/* Read the init's byte from the exec fifo (it then execs) and remove the fifo.  ENXIO when no
 * init is waiting on it, ENOENT when there is no such fifo; with the init's pid (0: not
 * known), ESRCH at once when it has exited (it is left unreaped). */
int ctr_start(const char *exec_fifo, pid_t pid, struct ctr_err *err);

#endif
