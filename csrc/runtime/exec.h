/* exec: a new process in a running container (runc exec, ctr task exec).
 *
 * The process joins the namespaces of the container's init (every one that differs from
 * ours, opened through /proc/PID/ns before any is joined: user first, mount last), its root
 * (/proc/PID/root, also when it has no mount namespace of its own), its cgroup
 * in every hierarchy (read from /proc/PID/cgroup), and gets the process attributes of an OCI
 * process object (cwd, user, groups, capabilities, rlimits, no_new_privs, AppArmor) with the
 * seccomp filter of the bundle's config.json.  It is the caller's child, so the caller can
 * wait for it; the program is the container's own, looked up in the container's PATH.
 *
 * CVE-2019-5736 (a container overwriting the runtime through /proc/PID/exe): the forked
 * runtime is made non-dumpable before it opens or joins anything, and it never runs the
 * runtime's own binary inside: an ELF program is executed through the fd it was checked on
 * (execveat, so it cannot be swapped for a link to /proc/self/exe), a #! script through its
 * interpreter's fd, and a program or interpreter that is the runtime's executable is refused.
 */
#ifndef CTR_EXEC_H
#define CTR_EXEC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

struct ctr_exec_opts {
    const char *bundle;         /* the container's bundle: config.json (seccomp, ...); required */
    const char *id;             /* the container's id, for a seccomp agent's state; may be NULL */
    const char *process;        /* an OCI process object (JSON text); NULL: config.json's */
    const char *pid_file;       /* written atomically once the program runs; may be NULL */
    const char *console_socket; /* process.terminal: the pty master goes there (SCM_RIGHTS) */
    int stdio[3];               /* fds the process gets as 0, 1, 2; -1: inherit ours */
    int preserve_fds;           /* fds 3 .. 3+n-1 stay open in the process */
    /* runc's exec --cgroup: "CONTROLLER:SUB" puts the process in SUB below the init's cgroup
     * in the v1 hierarchy of that controller (or "name=NAME"); ":SUB" in every hierarchy.
     * SUB is relative and already clean (no "..", no leading '/'); it must exist. */
    const char *const *sub_cgroups;
    size_t n_sub_cgroups;
};

/* Start the process in the container of `init` (its pid as we see it).  Returns the pid of
 * the new process (our child) once its program has been executed; a failure of any step
 * before that (joining, cwd, user, the program's lookup: "exec: `x': executable file not
 * found in $PATH", ENOENT) is the error, and nothing is left running. */
pid_t ctr_exec(pid_t init, const struct ctr_exec_opts *o, struct ctr_err *err);

#endif
