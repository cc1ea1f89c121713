/* The container process's own attributes, applied by the child after the rootfs is entered and
 * just before execve: rlimits, oom_score_adj, user and groups, capabilities, no_new_privs,
 * the executable's lookup in the container's PATH, and the descriptors it may keep. */
#ifndef CTR_PROCESS_H
#define CTR_PROCESS_H

#include "runtime/config.h"
#include "base/error.h"

/* Both are applied by the parent to the init (prlimit, /proc/PID/oom_score_adj) before it
 * does any setup: in a user namespace the init could no longer raise a hard limit or lower
 * its oom_score_adj itself. */
int ctr_process_rlimits(pid_t pid, const struct ctr_config *c, struct ctr_err *err);
int ctr_process_oom_score_adj(pid_t pid, const struct ctr_config *c, struct ctr_err *err);

/* chdir to process.cwd (creating nothing) and check that the kernel's idea of the cwd is
 * inside the root (runc CVE-2024-21626: a cwd through a leaked fd outside the root). */
int ctr_process_chdir(const struct ctr_config *c, struct ctr_err *err);

/* Bounding set, groups, gid, uid, then the other capability sets and no_new_privs, in the
 * order the kernel needs (see runtime/process.c). */
int ctr_process_identity(const struct ctr_config *c, struct ctr_err *err);

/* Find args[0] in the PATH of process.env as the container user: the absolute path into
 * out.  ENOENT: not found; EACCES: found but not executable. */
int ctr_process_lookup(const struct ctr_config *c, char *out, size_t len, struct ctr_err *err);

/* Move an fd to a number >= min (CLOEXEC), closing the old one; -1 on error (errno set). */
int ctr_fd_move_above(int fd, int min);

/* Mark every fd from 3 + preserve up close-on-exec, and the preserved ones 3..3+preserve-1
 * inheritable: after execve the process holds exactly those and stdio (runc CVE-2024-21626
 * was a leaked fd to the host's cgroupfs).  Used by the init and by exec. */
int ctr_process_fds(int preserve, struct ctr_err *err);

/* Put stdio[0..2] (-1: keep ours) in place as fds 0, 1, 2.  The fds are first duplicated
 * above `min`, so that permutations (stdin=1, stdout=0) cannot clobber one another. */
int ctr_process_stdio(const int stdio[3], int min, struct ctr_err *err);

#endif
