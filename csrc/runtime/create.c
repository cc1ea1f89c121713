/* create: clone the container's init with its new namespaces, set it up in C, and return once
 * it blocks on the exec fifo.  start: release it.
 *
 * The parent and the child talk over a SOCK_SEQPACKET socketpair (CLOEXEC on both ends):
 *
 *   parent                                   child (the future init)
 *   clone(CLONE_NEW*)  ───────────────────►  PR_SET_DUMPABLE 0, fds moved, stdio,
 *   (v1: make the cgroup) add pid            its network namespace; blocks reading the socket
 *   (v2: cgroup made before clone, clone3 into it, no pid written; v1 with no new user
 *   namespace: no pid written, the init moves itself into its cgroups after "go"; both, on
 *   a hybrid host: the v2 directory before clone, the v1 ones and the limits after)
 *   uid_map, gid_map, rlimits, oom_score_adj
 *   send "go" (its pid) ──────────────────►  become root in its user namespace, setns,
 *                                            setsid, mounts, devices, sysctls
 *   {hooks}: prestart,  ◄──────────────────  (only when the spec has those hooks)
 *   createRuntime; send "resume" ─────────►  createContainer hooks, pivot_root, console,
 *                                            hostname, cwd, apparmor, uid/gid, caps,
 *                                            no_new_privs, executable lookup, fds CLOEXEC
 *   {seccomp agent}: take the listener ◄───  {seccomp: its fd number} (a filter that notifies)
 *   (pidfd_getfd), send it to the agent,
 *   "seccomp done" ──────────────────────►  close the listener, go on
 *   read one message   ◄───────────────────  {ready} or {error: errno, text}
 *   pid file, return pid                     open the exec fifo for writing: blocks
 *   ... start: read the fifo ─────────────►  write a byte, startContainer hooks, execve
 *
 * A user namespace joined by path is joined first, by a short-lived helper that then clones
 * the init with CLONE_PARENT (so it is still our child): the other new namespaces are then
 * created inside, and owned by, that user namespace.
 *
 * An error anywhere in the child is a struct ctr_err sent whole ("mount `proc' on `/proc':
 * Permission denied"); the parent then kills and reaps the child.  The child's mounts live
 * only in its own mount namespace, so they vanish with it and nothing is left on the host.
 * Only C runs in the child: the Lua state of the parent is never touched there.
 */
#include "runtime/create.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "runtime/apparmor.h"
#include "cgroups/cgroup.h"
#include "runtime/config.h"
#include "runtime/console_socket.h"
#include "base/fault.h"
#include "runtime/hooks.h"
#include "base/files.h"
#include "base/mounts.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "runtime/sealed.h"
#include "base/cleanup.h"

enum { MSG_READY = 1, MSG_ERROR = 2, MSG_HOOKS = 3, MSG_SECCOMP = 4 };

struct sync_msg {
    int type;
    int fd; /* MSG_SECCOMP: the listener's number in the init */
    struct ctr_err err;
};

struct child_args {
    const struct ctr_config *cfg;
    const struct ctr_create_opts *opts;
    int sync;         /* our end of the socketpair */
    int fifo;         /* O_PATH fd of the exec fifo, or -1 */
    int nsfd[8];      /* namespaces to join (the pid one is joined by the parent) */
    int console;      /* connected console socket, or -1 */
    int tramp;        /* sealed ctrlua-exec: what the init's last execve runs (runtime/sealed.h) */
    int agent;        /* the parent's connection to the seccomp agent, or -1: not the init's */
    struct ctr_file_id self; /* our executable, never to be the container's program */
    const char *bundle; /* absolute, for the hooks' state */
    pid_t parent;       /* the process that called create (our parent, CLONE_PARENT or not) */
    /* the cgroups to move ourselves into, after "go", in every v1 hierarchy; or NULL */
    const struct ctr_cgroup_layout *join_v1;
};

/* The state for a hook run by the init (pid: its pid as the host sees it).  tramp: the
 * trampoline for hooks whose path resolves in the container (startContainer), -1 for those that
 * resolve on the host's filesystem. */
static int child_hooks(const struct child_args *a, int kind, const char *status, pid_t pid,
                       int tramp, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    if (c->hooks.n[kind] == 0)
        return 0;
    char *state = ctr_hooks_state(c->oci_version, a->opts->id, status, pid, a->bundle,
                                  c->annotations);
    if (state == NULL)
        return ctr_fail(err, ENOMEM, "hooks: state");
    int r = ctr_hooks_run(&c->hooks, kind, state, 0, tramp, err);
    free(state);
    return r;
}

static void child_send(int sync, int type, const struct ctr_err *err)
{
    struct sync_msg m = {.type = type};
    if (err)
        m.err = *err;
    while (send(sync, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

static __attribute__((noreturn)) void child_fail(int sync, struct ctr_err *err)
{
    child_send(sync, MSG_ERROR, err);
    _exit(1);
}

/* Until start, the init dies with its parent (opts->die_with_parent): a create whose caller is
 * killed must not leave an init blocked for ever on the exec fifo, which nobody would open,
 * with its namespaces, cgroup and a mount of the rootfs held.  Three things make that work:
 * - the kernel clears the setting whenever the credentials change (commit_creds: euid, egid,
 *   fsuid, fsgid), so it is made again after each change of identity;
 * - a parent that died before the prctl sends no signal: after each prctl the parent is looked
 *   for.  getppid() names it while it lives and changes once we are reparented; in a new pid
 *   namespace (or one joined) it is 0 either way, as the parent is outside: there the sync
 *   socket tells, as the parent holds its end until it has read our ready (EOF before "go";
 *   EPIPE on the ready, which is sent after the last prctl);
 * - at start the setting is dropped again, before start returns, so that the container's life
 *   is not tied to the runtime's, as with runc.
 * ctrlua-runc's create returns while the init waits (the caller, containerd's shim, starts
 * it), so that mode does not ask for it. */
static void die_with_parent(const struct child_args *a, int sync)
{
    struct ctr_err err;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        ctr_fail(&err, errno, "prctl PR_SET_PDEATHSIG");
        child_fail(sync, &err);
    }
    pid_t pp = getppid();
    if (pp != 0 && pp != a->parent)
        _exit(1);
}

/* Our own fds go above the preserved range before anything else takes a number; then the
 * container's stdio takes 0-2. */
static int child_move_fds(struct child_args *a, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    const struct ctr_create_opts *o = a->opts;
    int min = 3 + o->preserve_fds;
    int moved = ctr_fd_move_above(a->sync, min);
    if (moved < 0)
        return ctr_fail(err, errno, "move fds above %d", min);
    a->sync = moved;
    if (a->fifo >= 0 && (a->fifo = ctr_fd_move_above(a->fifo, min)) < 0)
        return ctr_fail(err, errno, "move fds above %d", min);
    if (a->console >= 0 && (a->console = ctr_fd_move_above(a->console, min)) < 0)
        return ctr_fail(err, errno, "move fds above %d", min);
    if ((a->tramp = ctr_fd_move_above(a->tramp, min)) < 0)
        return ctr_fail(err, errno, "move fds above %d", min);
    for (size_t i = 0; i < c->nns; i++)
        if (a->nsfd[i] >= 0 && (a->nsfd[i] = ctr_fd_move_above(a->nsfd[i], min)) < 0)
            return ctr_fail(err, errno, "move fds above %d", min);
    return ctr_process_stdio(o->stdio, min, err);
}

/* Wait for the parent's go (it puts us in our cgroup and writes our id maps first); it
 * carries our pid as the host sees it, for the hooks' state.  A parent gone: we go too. */
static pid_t child_await_go(const struct child_args *a)
{
    pid_t host_pid;
    if (RETRY(read(a->sync, &host_pid, sizeof host_pid)) != (ssize_t)sizeof host_pid)
        _exit(1);
    return host_pid;
}

/* Join the namespaces named by path.  The user namespace is not here: it was joined before
 * clone (by the helper that cloned us), as it grants the capabilities the other setns calls
 * are checked against and owns the namespaces clone made.  The mount namespace comes last:
 * after it, paths resolve in the joined namespace, and the other setns calls do not depend
 * on paths.  The pid namespace is not here either: setns(CLONE_NEWPID) only affects
 * children, so the parent joined it before clone and we were born in it. */
static int child_join_namespaces(struct child_args *a, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->nns; i++) {
            int is_mnt = c->ns[i].flag == CLONE_NEWNS;
            if (a->nsfd[i] < 0 || c->ns[i].flag == CLONE_NEWPID ||
                c->ns[i].flag == CLONE_NEWUSER || (pass == 0) == is_mnt)
                continue;
            if (setns(a->nsfd[i], c->ns[i].flag) < 0)
                return ctr_fail(err, errno, "join the %s namespace `%s'", c->ns[i].name,
                                c->ns[i].path);
            close(a->nsfd[i]);
        }
    return 0;
}

/* In a user namespace of our own (or joined): become its root, so that what we create from
 * now on is owned by a mapped id (an unmapped fsuid makes mkdir and mknod fail). */
static int child_become_root(const struct child_args *a, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    if (!(c->clone_flags & CLONE_NEWUSER) && c->join_user < 0)
        return 0;
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
        return ctr_fail(err, errno, "become root in the user namespace (is id 0 mapped?)");
    if (a->opts->die_with_parent)
        die_with_parent(a, a->sync);
    return 0;
}

/* prestart and createRuntime: the parent runs them, in the runtime's namespaces, now that
 * ours exist and before pivot_root; we wait for its "resume". */
static void child_await_runtime_hooks(const struct child_args *a)
{
    const struct ctr_config *c = a->cfg;
    if (c->hooks.n[CTR_HOOK_PRESTART] || c->hooks.n[CTR_HOOK_CREATE_RUNTIME]) {
        char resume;
        child_send(a->sync, MSG_HOOKS, NULL);
        if (RETRY(read(a->sync, &resume, 1)) != 1)
            _exit(1);
    }
}

/* The pty the console socket takes, then the names of the uts namespace. */
static int child_console_and_names(struct child_args *a, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    if (a->console >= 0) {
        if (ctr_console_setup(a->console, c->console_rows, c->console_cols, c->uid, err) < 0)
            return -1;
        close(a->console);
        a->console = -1;
    }
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        return ctr_fail(err, errno, "sethostname `%s'", c->hostname);
    if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
        return ctr_fail(err, errno, "setdomainname `%s'", c->domainname);
    return 0;
}

/* The program in exe (resolved in the container), refused when it is our own executable:
 * the second line of defence, the trampoline is the first (runtime/sealed.h). */
static int child_lookup_program(const struct child_args *a, char *exe, size_t len,
                                struct ctr_err *err)
{
    if (ctr_process_lookup(a->cfg, exe, len, err) < 0)
        return -1;
    if (ctr_file_is(exe, &a->self)) {
        ctr_fail_program(err, 0, "exec: `%s' is the runtime's own executable: refused (CVE-2019-5736)",
                 exe);
        err->code = EACCES;
        return -1;
    }
    return 0;
}

/* Block on the exec fifo until start.  Reopen the O_PATH fd for writing through
 * /proc/self/fd: it blocks until start opens the read side.  The O_PATH fd was opened before
 * pivot_root, when the fifo's path was still reachable; the reopen needs no path at all.
 * The tie to the parent (die_with_parent) is dropped before the byte that start waits for is
 * written: once start returns, the parent (a monitor, say) may die and the container lives on. */
static void child_await_start(struct child_args *a, int untie)
{
    if (a->fifo < 0) {
        if (untie)
            prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        return;
    }
    char p[32];
    int w = RETRY(open(ctr_fd_path(a->fifo, p, sizeof p), O_WRONLY | O_CLOEXEC));
    if (w >= 0 && untie)
        prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    if (w < 0 || RETRY(write(w, "0", 1)) != 1) {
        dprintf(2, "ctrlua init: exec fifo: %s\n", strerror(errno));
        _exit(127);
    }
    close(w);
    close(a->fifo);
}

/* Load the filter; a listener (the filter notifies) goes to the seccomp agent through the
 * parent: its number is written (write(2), which no profile may notify: runtime/seccomp.h),
 * the parent takes it with pidfd_getfd and hands it on, and says when the agent has it. */
static int child_seccomp(const struct child_args *a, struct ctr_err *err)
{
    int listener;
    if (ctr_seccomp_load(a->cfg->seccomp, &listener, err) < 0)
        return -1;
    if (listener < 0)
        return 0;
    struct sync_msg m = {.type = MSG_SECCOMP, .fd = listener};
    char done;
    /* a parent that is gone, or failed to reach the agent, reports (and kills us) itself */
    if (RETRY(write(a->sync, &m, sizeof m)) != (ssize_t)sizeof m ||
        RETRY(read(a->sync, &done, 1)) != 1)
        _exit(1);
    close(listener);
    return 0;
}

/* After start: the startContainer hooks, the seccomp filter of a no_new_privs process (last,
 * so that nothing of ours runs under it), and the sealed ctrlua-exec, which execs exe.  No
 * parent listens any more: failures go to the container's stderr. */
static __attribute__((noreturn)) void child_exec(struct child_args *a, pid_t host_pid,
                                                  const char *exe)
{
    const struct ctr_config *c = a->cfg;
    struct ctr_err err = {.code = 0};
    /* startContainer: in the container, after start, before the program */
    if (child_hooks(a, CTR_HOOK_START_CONTAINER, "running", host_pid, a->tramp, &err) < 0) {
        dprintf(2, "ctrlua init: %s\n", err.msg);
        _exit(127);
    }
    if (c->seccomp && c->no_new_privs && !ctr_seccomp_listener_path(c->seccomp) &&
        ctr_seccomp_load(c->seccomp, NULL, &err) < 0) {
        dprintf(2, "ctrlua init: %s\n", err.msg);
        _exit(127);
    }
    /* never execve a container path ourselves (runtime/sealed.h): ctrlua-exec does it, and reports
     * its failure itself */
    ctr_sealed_exec(a->tramp, -1, "ctrlua init", exe, (char *const *)c->args,
                    (char *const *)c->env);
    dprintf(2, "ctrlua init: exec the sealed ctrlua-exec: %s\n", strerror(errno));
    _exit(126);
}

/* The init, from clone to execve.  Every step's order is part of the security of the whole:
 * see the comment at each. */
static __attribute__((noreturn)) void child_main(struct child_args *a)
{
    const struct ctr_config *c = a->cfg;
    const struct ctr_create_opts *o = a->opts;
    struct ctr_err err = {.code = 0};
    if (a->agent >= 0)
        close(a->agent);

    /* Not dumpable before anything else: while we hold fds and run the host's binary inside
     * the container's namespaces, a container process must not be able to ptrace us or open
     * /proc/<pid>/exe to overwrite the runtime (runc CVE-2019-5736).  execve resets it. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        ctr_fail(&err, errno, "prctl PR_SET_DUMPABLE");
        child_fail(a->sync, &err);
    }
    if (o->die_with_parent)
        die_with_parent(a, a->sync);
    ctr_sys_signals_reset(1);
    if (child_move_fds(a, &err) < 0)
        child_fail(a->sync, &err);
    int sync = a->sync;
    /* A new network namespace is the longest part of a clone: made here, it is made while
     * the parent makes the cgroup.  Its memory is charged where clone would have charged it,
     * to the caller's cgroup, as the init is not in its own yet either way. */
    if ((c->clone_flags & CLONE_NEWNET) && unshare(CLONE_NEWNET) < 0) {
        ctr_fail(&err, errno, "clone the container init");
        child_fail(sync, &err);
    }

    pid_t host_pid = child_await_go(a);
    /* first, before anything is allocated or mounted: the cgroups the parent has made */
    if (a->join_v1 && ctr_cgroup_join_self_v1(a->join_v1, c->cgroups_path, &err) < 0)
        child_fail(sync, &err);
    /* Only now, inside the container's cgroup: the new cgroup namespace takes the cgroup we
     * are in as its root.  Had clone() made it, its root would be the caller's cgroup and
     * /proc/self/cgroup in the container would show the host's path. */
    if (c->unshare_cgroup && unshare(CLONE_NEWCGROUP) < 0) {
        ctr_fail(&err, errno, "unshare the cgroup namespace");
        child_fail(sync, &err);
    }
    if (child_join_namespaces(a, &err) < 0)
        child_fail(sync, &err);

    /* A session of its own: the container cannot reach our terminal's foreground process
     * group (TIOCSTI, bubblewrap CVE-2017-5226); the caller forwards signals instead. */
    if (setsid() < 0) {
        ctr_fail(&err, errno, "setsid");
        child_fail(sync, &err);
    }
    umask(0); /* device nodes and mount points get exactly the modes asked for */

    cleanup_close int rootfd = ctr_rootfs_bind(c, &err);
    if (rootfd < 0)
        child_fail(sync, &err);
    if (child_become_root(a, &err) < 0)
        child_fail(sync, &err);
    if (ctr_rootfs_prepare(c, rootfd, &err) < 0)
        child_fail(sync, &err);
    child_await_runtime_hooks(a);
    /* createContainer: in our namespaces, before pivot_root (the hook's path resolves on the
     * host's filesystem, as the runtime spec says it does). */
    if (child_hooks(a, CTR_HOOK_CREATE_CONTAINER, "created", host_pid, -1, &err) < 0)
        child_fail(sync, &err);
    if (ctr_rootfs_enter(c, rootfd, o->no_pivot, &err) < 0)
        child_fail(sync, &err);
    if (child_console_and_names(a, &err) < 0)
        child_fail(sync, &err);
    if (ctr_process_chdir(c, &err) < 0)
        child_fail(sync, &err);
    /* the exec label before the capabilities go (it is set for the next execve) */
    if (c->apparmor_profile && ctr_apparmor_apply(c->apparmor_profile, &err) < 0)
        child_fail(sync, &err);
    /* Every fd but stdio and the preserved ones is marked close-on-exec before a filter
     * can be loaded: a profile that denies close_range (runtime-tools' test profiles list
     * what they allow, and it is not there) must not make the init fail. */
    umask(c->umask >= 0 ? (mode_t)c->umask : 022);
    if (ctr_process_fds(o->preserve_fds, &err) < 0)
        child_fail(sync, &err);
    /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the identity step
     * below drops: load it now (runc does the same).  With no_new_privs it is loaded last,
     * right before execve. */
    if (c->seccomp && !c->no_new_privs && child_seccomp(a, &err) < 0)
        child_fail(sync, &err);
    if (ctr_process_identity(c, &err) < 0)
        child_fail(sync, &err);
    /* A filter loaded above (no no_new_privs) may deny prctl, or kill on it: then the setting
     * stays as the identity step left it (kept for a root container, cleared for another). */
    int filtered = c->seccomp && !c->no_new_privs;
    if (o->die_with_parent && !filtered)
        die_with_parent(a, sync);
    char exe[PATH_MAX];
    if (child_lookup_program(a, exe, sizeof exe, &err) < 0)
        child_fail(sync, &err);
    /* With no_new_privs the filter waits for the last step, after start; one whose listener
     * goes to an agent cannot, as the listener goes through us and ctrlua-runc's create
     * returns before start: it is loaded here, before the ready, where runc 1.1 loads it. */
    int notify_nnp = c->seccomp && c->no_new_privs && ctr_seccomp_listener_path(c->seccomp);
    if (notify_nnp && child_seccomp(a, &err) < 0)
        child_fail(sync, &err);

    /* a ready that cannot be sent means the parent is gone (see die_with_parent) */
    struct sync_msg ready = {.type = MSG_READY};
    if (RETRY(send(sync, &ready, sizeof ready, MSG_NOSIGNAL)) != (ssize_t)sizeof ready)
        _exit(1);
    /* a filter loaded by now may deny prctl: then the setting was never made (above) */
    child_await_start(a, o->die_with_parent && !filtered && !notify_nnp);
    child_exec(a, host_pid, exe);
}

/* Wait for the child's message.  0 on ready, 1 when it waits for the prestart and
 * createRuntime hooks, 2 with *fd when it has a seccomp listener for the agent, -1 with the
 * child's error otherwise. */
/* *died is set when the init went away without a word: it died on its own. */
static int read_child(int sock, pid_t pid, int *died, int *fd, struct ctr_err *err)
{
    struct sync_msg m;
    ssize_t n = RETRY(recv(sock, &m, sizeof m, 0));
    if (n == (ssize_t)sizeof m && m.type == MSG_READY)
        return 0;
    if (n == (ssize_t)sizeof m && m.type == MSG_HOOKS)
        return 1;
    if (n == (ssize_t)sizeof m && m.type == MSG_SECCOMP) {
        *fd = m.fd;
        return 2;
    }
    if (n == (ssize_t)sizeof m && m.type == MSG_ERROR) {
        *err = m.err;
        err->msg[sizeof err->msg - 1] = '\0';
        return -1;
    }
    if (n < 0)
        return ctr_fail(err, errno, "read from the container init %d", (int)pid);
    *died = 1;
    return ctr_fail(err, EPIPE, "the container init %d died during setup", (int)pid);
}

/* The namespaces clone makes: all new ones but the network namespace, which the init makes
 * itself (child_main) and the cgroup one (config.h). */
static unsigned long clone_flags(const struct ctr_config *c)
{
    return (unsigned long)c->clone_flags & ~(unsigned long)CLONE_NEWNET;
}

/* Join the pid namespace named by path for our future children only (setns(CLONE_NEWPID)
 * changes pid_for_children, not our own pid).  *restore gets our own, to go back after
 * clone. */
static int enter_pid_ns(const struct ctr_config *c, const int *nsfd, int *restore,
                        struct ctr_err *err)
{
    *restore = -1;
    for (size_t i = 0; i < c->nns; i++) {
        if (c->ns[i].flag != CLONE_NEWPID || nsfd[i] < 0)
            continue;
        *restore = RETRY(open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
        if (*restore < 0)
            return ctr_fail(err, errno, "open `/proc/self/ns/pid'");
        if (setns(nsfd[i], CLONE_NEWPID) < 0)
            return ctr_fail(err, errno, "join the pid namespace `%s'", c->ns[i].path);
    }
    return 0;
}

/* Clone the init inside the user namespace joined by path: a helper joins it and clones the
 * init with CLONE_PARENT (the init is our child, not the helper's), reports the pid and
 * exits.  Returns the init's pid, 0 in the init, -1 on error. */
static pid_t clone_in_user_ns(struct child_args *a, struct ctr_err *err)
{
    const struct ctr_config *c = a->cfg;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "pipe");
    pid_t helper = fork();
    if (helper < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return ctr_fail(err, e, "fork");
    }
    if (helper == 0) {
        close(p[0]);
        struct {
            pid_t pid;
            int err;
        } r = {-1, 0};
        int ufd = a->nsfd[c->join_user];
        if (setns(ufd, CLONE_NEWUSER) < 0) {
            r.err = errno;
        } else {
            close(ufd);
            a->nsfd[c->join_user] = -1;
            r.pid = (pid_t)syscall(SYS_clone, clone_flags(c) | CLONE_PARENT | SIGCHLD, NULL,
                                   NULL, NULL, NULL);
            if (r.pid == 0) {
                close(p[1]);
                return 0;
            }
            if (r.pid < 0)
                r.err = errno;
        }
        while (write(p[1], &r, sizeof r) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[1]);
    struct {
        pid_t pid;
        int err;
    } r = {-1, EPIPE};
    ssize_t n = RETRY(read(p[0], &r, sizeof r));
    close(p[0]);
    RETRY(waitpid(helper, NULL, 0));
    if (n != (ssize_t)sizeof r || r.pid < 0)
        return ctr_fail(err, n == (ssize_t)sizeof r ? r.err : EPIPE,
                        "join the user namespace `%s' and clone the init",
                        c->ns[c->join_user].path);
    return r.pid;
}

/* The error of an init that died on its own during setup (died: see read_child), with how
 * it died and, when its cgroup counted an OOM kill, that: the memory limit is too low for it
 * to run at all. */
static void explain_death(struct ctr_err *err, pid_t pid, int status,
                          const struct ctr_cgroup_layout *cgl, const char *cgroup,
                          struct ctr_init_death *out)
{
    char how[64];
    if (WIFSIGNALED(status)) {
        const char *name = sigabbrev_np(WTERMSIG(status));
        if (name)
            snprintf(how, sizeof how, "killed by SIG%s", name);
        else
            snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    }
    struct ctr_cgroup_stats s;
    struct ctr_err ignored;
    int oom = cgl && ctr_cgroup_stats(cgl, cgroup, &s, &ignored) == 0 &&
              (s.have & (1u << CTR_CGS_oom_kill)) && s.oom_kill > 0;
    if (oom && (s.have & (1u << CTR_CGS_memory_limit)) && s.memory_limit != UINT64_MAX)
        ctr_fail(err, 0, "the container init %d was OOM-killed during setup (%s): the memory "
                 "limit of cgroup `%s' (%llu bytes) is too low", (int)pid, how, cgroup,
                 (unsigned long long)s.memory_limit);
    else if (oom)
        ctr_fail(err, 0, "the container init %d was OOM-killed during setup (%s) in cgroup "
                 "`%s'", (int)pid, how, cgroup);
    else
        ctr_fail(err, 0, "the container init %d died during setup: %s", (int)pid, how);
    if (out) {
        out->died = 1;
        out->status = status;
        out->oom = oom;
    }
}

/* How the parent puts the init into its cgroup: not at all (none made, or the init was
 * cloned into it), its pid written in every hierarchy, or in the v2 one alone (the init moves
 * itself into the v1 ones). */
enum add_pid { ADD_NONE, ADD_ALL, ADD_V2 };

/* The parent's share of the init's setup while it waits for "go": cgroup, id maps, limits. */
static int setup_init(const struct ctr_config *c, pid_t pid, struct ctr_cgroup_layout *cgl,
                      enum add_pid add, const struct ctr_create_opts *opts, struct ctr_err *err)
{
    if (add == ADD_ALL && ctr_cgroup_add_pid(cgl, c->cgroups_path, pid, err) < 0)
        return -1;
    if (add == ADD_V2 && ctr_cgroup_add_pid_v2(cgl, c->cgroups_path, pid, err) < 0)
        return -1;
    if ((c->clone_flags & CLONE_NEWUSER) &&
        ctr_userns_write_maps(pid, c->uid_maps, c->nuid_maps, c->gid_maps, c->ngid_maps,
                              err) < 0)
        return -1;
    if (ctr_process_rlimits(pid, c, err) < 0 || ctr_process_oom_score_adj(pid, c, err) < 0)
        return -1;
    if (opts->after_clone && opts->after_clone(pid, opts->hook_data, err) < 0)
        return -1;
    return 0;
}

static int parent_hooks(const struct ctr_config *c, const struct ctr_create_opts *o,
                        const char *bundle, pid_t pid, struct ctr_err *err)
{
    /* prestart hooks see "created" (as runc passes it, and as runtime-tools' hooks_stdin
     * checks); createRuntime ones "creating", the status the runtime spec gives that step. */
    char *state = ctr_hooks_state(c->oci_version, o->id, "created", pid, bundle,
                                  c->annotations);
    if (state == NULL)
        return ctr_fail(err, ENOMEM, "hooks: state");
    int r = ctr_hooks_run(&c->hooks, CTR_HOOK_PRESTART, state, 0, -1, err);
    free(state);
    if (r < 0)
        return r;
    state = ctr_hooks_state(c->oci_version, o->id, "creating", pid, bundle, c->annotations);
    if (state == NULL)
        return ctr_fail(err, ENOMEM, "hooks: state");
    r = ctr_hooks_run(&c->hooks, CTR_HOOK_CREATE_RUNTIME, state, 0, -1, err);
    free(state);
    return r;
}

int ctr_run_hooks(const char *bundle, const char *kind, const char *state, struct ctr_err *err)
{
    int k = ctr_hook_kind(kind);
    if (k < 0)
        return ctr_fail(err, EINVAL, "hooks: unknown kind `%s'", kind);
    struct ctr_config cfg;
    if (ctr_config_load(bundle, &cfg, err) < 0)
        return -1;
    int r = ctr_hooks_run(&cfg.hooks, k, state, 1, -1, err);
    ctr_config_free(&cfg);
    return r;
}

/* What ctr_create holds while it works: released at the end, undone when it fails. */
struct create {
    struct ctr_config cfg;
    struct child_args a;
    char bundle_abs[PATH_MAX];
    int sv[2], restore_pid, made_fifo, made_cgroup, have_layout;
    int borrowed_layout; /* cgl is a copy of the caller's opts->cgroup_layout: not ours to free */
    int cgroup_fd;  /* pure v2: the cgroup's directory, for clone3's CLONE_INTO_CGROUP; or -1 */
    int in_cgroup;  /* the init was cloned into its cgroup: no cgroup.procs write */
    int made_v2_leaf; /* the v2 directory, made alone before clone (splits_cgroup) */
    int died;       /* the init went away on its own */
    int host_below; /* the topmost mount at the rootfs before, with no mount namespace */
    struct ctr_cgroup_layout cgl;
    pid_t pid;
};

/* The options that contradict the config or are out of range, before anything is made. */
static int check_opts(const struct ctr_config *cfg, const struct ctr_create_opts *opts,
                      struct ctr_err *err)
{
    if (opts->preserve_fds < 0 || opts->preserve_fds > 1 << 16)
        return ctr_fail(err, EINVAL, "preserve_fds: %d is out of range", opts->preserve_fds);
    if (cfg->terminal && (opts->console_socket == NULL || *opts->console_socket == '\0'))
        return ctr_fail(err, EINVAL, "config.json: process.terminal is true but no console "
                        "socket was given");
    if (!cfg->terminal && opts->console_socket && *opts->console_socket)
        return ctr_fail(err, EINVAL, "a console socket was given but process.terminal is false");
    return 0;
}

/* The exec fifo the init blocks on until start. */
static int make_exec_fifo(struct create *cr, const char *path, struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    /* 0600, and owned by the container's user: the init reopens it after dropping to
     * that user and its capabilities. */
    if (mkfifo(path, 0600) < 0)
        return ctr_fail(err, errno, "mkfifo `%s'", path);
    cr->made_fifo = 1;
    cr->a.fifo = RETRY(open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW));
    uid_t fu = cfg->uid;
    gid_t fg = cfg->gid;
    if (cfg->clone_flags & CLONE_NEWUSER) { /* the container's ids as the host sees them */
        fu = ctr_userns_host_id(cfg->uid_maps, cfg->nuid_maps, cfg->uid);
        fg = ctr_userns_host_id(cfg->gid_maps, cfg->ngid_maps, cfg->gid);
    }
    if (cr->a.fifo < 0 || fchownat(cr->a.fifo, "", fu, fg, AT_EMPTY_PATH) < 0)
        return ctr_fail(err, errno, "open exec fifo `%s'", path);
    return 0;
}

/* Every namespace path is opened before anything is joined, so that joining one cannot
 * change what the next path names. */
static int open_namespaces(const struct ctr_config *cfg, int *nsfd, struct ctr_err *err)
{
    for (size_t i = 0; i < cfg->nns; i++) {
        if (cfg->ns[i].path == NULL)
            continue;
        nsfd[i] = RETRY(open(cfg->ns[i].path, O_RDONLY | O_CLOEXEC));
        if (nsfd[i] < 0)
            return ctr_fail(err, errno, "open the %s namespace `%s'", cfg->ns[i].name,
                            cfg->ns[i].path);
    }
    return 0;
}

/* The cgroup hierarchies, when the spec asks for a cgroup: the caller's, or read here. */
static int detect_cgroups(struct create *cr, const struct ctr_create_opts *opts,
                          struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    if (!cfg->cgroups_path || !*cfg->cgroups_path)
        return 0;
    if (opts->cgroup_layout) {
        cr->cgl = *opts->cgroup_layout;
        cr->borrowed_layout = 1;
    } else if (ctr_cgroup_layout_detect(&cr->cgl, NULL, NULL, NULL, err) < 0) {
        return -1;
    }
    cr->have_layout = 1;
    return 0;
}

/* A move into a cgroup through cgroup.procs takes the kernel's threadgroup lock for writing,
 * whose first writer after a quiet spell waits for an RCU grace period (5 to 20 ms here);
 * crun and runc pay it on every run.  ctrlua's init avoids it where it can:
 * - in a v1 hierarchy the init moves itself (a thread moving itself needs no such lock) once
 *   the parent has made the cgroup: it can while it is root in the host's user namespace,
 *   not in a new one (the host's cgroup files are not its to write), where the parent writes
 *   its pid;
 * - in the v2 hierarchy (pure v2, or a hybrid host's cgroup2 mount when the init joins its
 *   v1 cgroups itself) the init is cloned into its cgroup (CLONE_INTO_CGROUP), which must
 *   then be made before clone.  Otherwise the cgroup is made while the init, just cloned,
 *   makes its network namespace (the longest step of a clone). */
static int joins_v1_itself(const struct create *cr)
{
    return cr->have_layout && cr->cgl.n_v1 > 0 && !(cr->cfg.clone_flags & CLONE_NEWUSER) &&
           cr->cfg.join_user < 0;
}

static int clones_into_cgroup(const struct create *cr)
{
    if (!cr->have_layout || !cr->cgl.has_v2 || cr->cfg.join_user >= 0)
        return 0;
    return cr->cgl.n_v1 == 0 || (joins_v1_itself(cr));
}

/* On a hybrid host, where the init is cloned into its v2 cgroup and moves itself into its v1
 * ones after its go, only the v2 directory must be there before clone: the v1 directories
 * and the limits are made after it, while the init makes its network namespace, and the
 * parent does not spend that time before the clone (ten mkdirs and the devices list). */
static int splits_cgroup(const struct create *cr)
{
    return clones_into_cgroup(cr) && cr->cgl.n_v1 > 0;
}

static int open_v2_cgroup(struct create *cr, struct ctr_err *err)
{
    cleanup_free char *dir = NULL;
    if (ctr_cgroup_dir(&cr->cgl, -1, cr->cfg.cgroups_path, &dir, err) < 0)
        return -1;
    cr->cgroup_fd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cr->cgroup_fd < 0)
        return ctr_fail(err, errno, "open the cgroup `%s'", dir);
    return 0;
}

/* The cgroup is made, and its limits written, before the init is let go: a bad limit fails
 * create before the init has done anything, and the init is inside the limits before it
 * mounts, allocates or execs anything.
 *
 * A cgroup that already holds processes belongs to someone else (another store with the same
 * namespace and ID, say): a kill -a, pause or delete of either container would reach both.
 * Nor may the init start frozen.  So, as runc 1.2, refuse. */
static int make_cgroup(struct create *cr, struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    if (!cr->have_layout)
        return 0;
    if (ctr_cgroup_create_unused(&cr->cgl, cfg->cgroups_path, cfg->resources, err) < 0)
        return -1;
    cr->made_cgroup = 1;
    ctr_fault("create.cgroup-made");
    return clones_into_cgroup(cr) ? open_v2_cgroup(cr, err) : 0;
}

/* splits_cgroup: the v2 directory before clone */
static int make_cgroup_v2(struct create *cr, struct ctr_err *err)
{
    if (ctr_cgroup_create_unused_v2(&cr->cgl, cr->cfg.cgroups_path, &cr->made_v2_leaf,
                                    err) < 0)
        return -1;
    return open_v2_cgroup(cr, err);
}

/* splits_cgroup: the rest after it */
static int make_cgroup_rest(struct create *cr, struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    if (ctr_cgroup_create_unused_rest(&cr->cgl, cfg->cgroups_path, cfg->resources,
                                      cr->made_v2_leaf, err) < 0)
        return -1;
    cr->made_cgroup = 1;
    ctr_fault("create.cgroup-made");
    return 0;
}

/* Everything the init needs that is made or opened before it exists, in this order. */
static int prepare_init(struct create *cr, const struct ctr_create_opts *opts,
                        struct ctr_err *err)
{
    struct ctr_config *cfg = &cr->cfg;
    if (check_opts(cfg, opts, err) < 0)
        return -1;
    /* the filter's program is generated here: the init only loads it */
    if (cfg->seccomp && ctr_seccomp_compile(cfg->seccomp, err) < 0)
        return -1;
    /* the agent is reached before anything is made: one that is not there fails the create
     * with nothing to undo */
    if (ctr_seccomp_listener_path(cfg->seccomp) &&
        (cr->a.agent = ctr_seccomp_connect(cfg->seccomp, err)) < 0)
        return -1;
    if (cfg->terminal && (cr->a.console = ctr_console_connect(opts->console_socket, err)) < 0)
        return -1;
    if ((cr->a.tramp = ctr_sealed_trampoline(err)) < 0 || ctr_own_executable(&cr->a.self, err) < 0)
        return -1;
    if (opts->exec_fifo && make_exec_fifo(cr, opts->exec_fifo, err) < 0)
        return -1;
    if (open_namespaces(cfg, cr->a.nsfd, err) < 0)
        return -1;
    if (ctr_config_check_joined(cfg, cr->a.nsfd, err) < 0)
        return -1;
    /* Without a mount namespace of its own, the init's mounts are made in ours, on a bind
     * of the rootfs stacked on what is there now: a failed setup takes them down again. */
    if (cfg->mnt_ns == CTR_MNT_HOST && ctr_mount_top(cfg->rootfs, &cr->host_below, err) < 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cr->sv) < 0)
        return ctr_fail(err, errno, "socketpair");
    if (detect_cgroups(cr, opts, err) < 0)
        return -1;
    cr->a.join_v1 = joins_v1_itself(cr) ? &cr->cgl : NULL;
    if (!clones_into_cgroup(cr))
        return 0;
    return splits_cgroup(cr) ? make_cgroup_v2(cr, err) : make_cgroup(cr, err);
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* clone3 as fork (no new stack), with the namespace flags, into the cgroup open at cgfd.
 * The kernel's struct clone_args, version 2 (the first with the cgroup field). */
static pid_t clone_into_cgroup(unsigned long flags, int cgfd)
{
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
            set_tid, set_tid_size, cgroup;
    } args = {.flags = (uint64_t)flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
              .cgroup = (uint64_t)cgfd};
    return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

/* Clone the init (cr->pid; the child goes on in child_main) and come back to our own pid
 * namespace. */
static int clone_init(struct create *cr, struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    if (enter_pid_ns(cfg, cr->a.nsfd, &cr->restore_pid, err) < 0)
        return -1;
    cr->a.parent = getpid();
    /* clone(2) without a new stack behaves as fork(2), with the namespace flags applied to
     * the child: it starts in its new pid namespace as pid 1.  (unshare(CLONE_NEWPID) would
     * only move its future children, and would need a second fork.) */
    pid_t pid = -1;
    errno = 0;
    if (cfg->join_user >= 0)
        pid = clone_in_user_ns(&cr->a, err);
    else if (cr->cgroup_fd >= 0)
        pid = clone_into_cgroup(clone_flags(cfg), cr->cgroup_fd);
    if (pid > 0)
        cr->in_cgroup = cr->cgroup_fd >= 0 && cfg->join_user < 0;
    /* clone3 or its flag refused (an older kernel, or a cgroup it will not take): the
     * plain clone, and the pid written to cgroup.procs */
    if (cfg->join_user < 0 && pid < 0 && (cr->cgroup_fd < 0 || errno == EINVAL ||
                                          errno == ENOSYS || errno == E2BIG))
        pid = (pid_t)syscall(SYS_clone, clone_flags(cfg) | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid == 0) {
        close(cr->sv[0]);
        cr->a.sync = cr->sv[1];
        child_main(&cr->a);
    }
    cr->pid = pid;
    int clone_errno = errno;
    if (cr->restore_pid >= 0 && setns(cr->restore_pid, CLONE_NEWPID) < 0 && pid > 0)
        return ctr_fail(err, errno, "return to our own pid namespace");
    if (pid < 0) {
        if (cfg->join_user < 0)
            ctr_fail(err, clone_errno, "clone the container init");
        return -1;
    }
    close(cr->sv[1]);
    cr->sv[1] = -1;
    ctr_fault("create.cloned");
    return 0;
}

/* The init's seccomp listener (its fd number `fd`) to the agent, with the container process
 * state (status "creating", as runc sends it), then "seccomp done" to the init. */
static int forward_listener(struct create *cr, const struct ctr_create_opts *opts, int fd,
                            struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    if (cr->a.agent < 0)
        return ctr_fail(err, EPROTO, "the container init %d sent a seccomp listener that no "
                        "agent waits for", (int)cr->pid);
    cleanup_close int listener = ctr_seccomp_listener_take(cr->pid, fd, err);
    if (listener < 0)
        return -1;
    cleanup_free char *state = ctr_hooks_state(cfg->oci_version, opts->id, "creating", cr->pid,
                                               cr->bundle_abs, cfg->annotations);
    if (state == NULL)
        return ctr_fail(err, ENOMEM, "seccomp agent: the container state");
    if (ctr_seccomp_send_state(cfg->seccomp, steal_fd(&cr->a.agent), listener, cr->pid, state,
                               err) < 0)
        return -1;
    if (RETRY(send(cr->sv[0], "s", 1, MSG_NOSIGNAL)) != 1)
        return ctr_fail(err, errno, "resume the container init %d after the seccomp agent",
                        (int)cr->pid);
    return 0;
}

/* The parent's side of the init's setup: its cgroup and id maps, "go", the prestart and
 * createRuntime hooks when it asks for them, until its ready. */
static int run_init_setup(struct create *cr, const struct ctr_create_opts *opts,
                          struct ctr_err *err)
{
    const struct ctr_config *cfg = &cr->cfg;
    pid_t pid = cr->pid;
    int sock = cr->sv[0];
    /* The init joins its cgroup before it mounts, allocates or execs anything (see
     * after_clone in runtime/create.h): its pid is written before "go", or it moves itself
     * into its v1 cgroups first thing after it (joins_v1_itself); cloned into its cgroup, it
     * is in its v2 one already. */
    int fd = -1;
    enum add_pid add = !cr->made_cgroup ? ADD_NONE
                       : cr->a.join_v1 ? (cr->in_cgroup ? ADD_NONE : ADD_V2)
                       : cr->in_cgroup ? ADD_NONE
                                       : ADD_ALL;
    if (setup_init(cfg, pid, &cr->cgl, add, opts, err) < 0) {
        /* an init that failed before the go (its network namespace, say) is gone: its own
         * error says why, not the ESRCH of a write about it */
        struct pollfd p = {.fd = sock, .events = POLLIN};
        struct ctr_err child;
        if (RETRY(poll(&p, 1, 0)) == 1 && read_child(sock, pid, &cr->died, &fd, &child) < 0)
            *err = child;
        return -1;
    }
    if (RETRY(send(sock, &pid, sizeof pid, MSG_NOSIGNAL)) != (ssize_t)sizeof pid) {
        if (read_child(sock, pid, &cr->died, &fd, err) == 0)
            ctr_fail(err, errno, "signal the container init %d", (int)pid);
        return -1;
    }
    int got, hooks = 0;
    while ((got = read_child(sock, pid, &cr->died, &fd, err)) > 0) {
        if (got == 2) {
            if (forward_listener(cr, opts, fd, err) < 0)
                return -1;
            continue;
        }
        if (hooks++)
            return ctr_fail(err, EPROTO, "the container init %d asked for hooks twice",
                            (int)pid);
        if (parent_hooks(cfg, opts, cr->bundle_abs, pid, err) < 0)
            return -1;
        if (RETRY(send(sock, "r", 1, MSG_NOSIGNAL)) != 1) {
            if (read_child(sock, pid, &cr->died, &fd, err) == 0)
                ctr_fail(err, errno, "resume the container init %d", (int)pid);
            return -1;
        }
    }
    return got;
}

/* A failed create: the init killed (its death explained when it died on its own), what it
 * stacked on a shared rootfs taken down, the fifo and the cgroup removed. */
static void undo_create(struct create *cr, const struct ctr_create_opts *opts,
                        struct ctr_err *err)
{
    if (cr->pid > 0) {
        /* One that is a zombie already died on its own; a kill cannot change the status of
         * one that is exiting (its end of the socket closed: died). */
        int status = 0;
        int gone = RETRY(waitpid(cr->pid, &status, WNOHANG)) == cr->pid;
        if (!gone) {
            kill(cr->pid, SIGKILL);
            RETRY(waitpid(cr->pid, &status, 0));
        }
        if (cr->died || (gone && WIFSIGNALED(status)))
            explain_death(err, cr->pid, status, cr->made_cgroup ? &cr->cgl : NULL,
                          cr->cfg.cgroups_path, opts->death);
        struct ctr_err ignored;
        if (cr->host_below >= 0)
            ctr_mount_unstack(cr->cfg.rootfs, cr->host_below, &ignored);
    }
    if (cr->made_fifo)
        unlink(opts->exec_fifo);
    struct ctr_err ignored;
    if (cr->made_cgroup)
        ctr_cgroup_delete(&cr->cgl, cr->cfg.cgroups_path, &ignored);
    else if (cr->made_v2_leaf)
        ctr_cgroup_remove_v2(&cr->cgl, cr->cfg.cgroups_path, &ignored);
    cr->pid = -1;
}

/* What create holds and the init has its own copy of. */
static void release_create(struct create *cr)
{
    if (cr->have_layout && !cr->borrowed_layout)
        ctr_cgroup_layout_free(&cr->cgl);
    if (cr->cgroup_fd >= 0)
        close(cr->cgroup_fd);
    for (size_t i = 0; i < ARRAY_SIZE(cr->a.nsfd); i++)
        if (cr->a.nsfd[i] >= 0)
            close(cr->a.nsfd[i]);
    if (cr->a.fifo >= 0)
        close(cr->a.fifo);
    if (cr->a.console >= 0)
        close(cr->a.console);
    if (cr->a.tramp >= 0)
        close(cr->a.tramp);
    if (cr->a.agent >= 0)
        close(cr->a.agent);
    if (cr->restore_pid >= 0)
        close(cr->restore_pid);
    if (cr->sv[0] >= 0)
        close(cr->sv[0]);
    if (cr->sv[1] >= 0)
        close(cr->sv[1]);
    ctr_config_free(&cr->cfg);
}

pid_t ctr_create(const char *bundle, const struct ctr_create_opts *opts, struct ctr_err *err)
{
    struct create cr = {.sv = {-1, -1}, .restore_pid = -1, .host_below = -1, .pid = -1,
                        .cgroup_fd = -1};
    if (ctr_config_load(bundle, &cr.cfg, err) < 0)
        return -1;
    cr.a = (struct child_args){.cfg = &cr.cfg, .opts = opts, .sync = -1, .fifo = -1,
                               .console = -1, .tramp = -1, .agent = -1};
    if (realpath(bundle, cr.bundle_abs) == NULL) {
        ctr_fail(err, errno, "bundle `%s'", bundle);
        ctr_config_free(&cr.cfg);
        return -1;
    }
    cr.a.bundle = cr.bundle_abs;
    for (size_t i = 0; i < ARRAY_SIZE(cr.a.nsfd); i++)
        cr.a.nsfd[i] = -1;
    if (prepare_init(&cr, opts, err) < 0 || clone_init(&cr, err) < 0 ||
        (!clones_into_cgroup(&cr) && make_cgroup(&cr, err) < 0) ||
        (splits_cgroup(&cr) && make_cgroup_rest(&cr, err) < 0) ||
        run_init_setup(&cr, opts, err) < 0 ||
        (opts->pid_file && ctr_write_pid_file(opts->pid_file, cr.pid, err) < 0))
        undo_create(&cr, opts, err);
    else
        ctr_fault("create.ready");
    release_create(&cr);
    return cr.pid;
}

/* Has process pid exited?  Our child is looked at without reaping it. */
static int exited(pid_t pid)
{
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
        return si.si_pid == pid;
    return errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH;
}

int ctr_start(const char *exec_fifo, pid_t pid, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(exec_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
    if (fd < 0)
        return ctr_fail(err, errno, "open exec fifo `%s'", exec_fifo);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
        return ctr_fail(err, EINVAL, "exec fifo `%s': not a fifo", exec_fifo);
    /* The init's open(O_WRONLY) counts as a writer from the moment it starts blocking, so a
     * read that finds no writer at all (0, EOF) means nobody is waiting; EAGAIN means the
     * init is there and about to write its byte. */
    for (int empty = 0;;) {
        char b;
        ssize_t n = read(fd, &b, 1);
        if (n == 1)
            break;
        /* no writer yet: the init reports ready just before it opens the fifo (and its ready
         * wakes us, which often runs us before it gets there); give it up to two seconds.  A
         * poll, not a sleep: a fifo that has had no writer since we opened it is not readable
         * (no POLLHUP) until the init has opened it and written, so the wait ends then, not
         * at the end of a 10 ms sleep, which half the runs of a busy machine waited out. */
        if (n == 0 && pid > 0 && exited(pid))
            return ctr_fail(err, ESRCH, "exec fifo `%s': the container init %d has exited",
                            exec_fifo, (int)pid);
        if (n == 0 && ++empty > 200)
            return ctr_fail(err, ENXIO, "exec fifo `%s': no container init is waiting",
                            exec_fifo);
        if (n == 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 10) < 0 && errno != EINTR)
                return ctr_fail(err, errno, "poll exec fifo `%s'", exec_fifo);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return ctr_fail(err, errno, "read exec fifo `%s'", exec_fifo);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return ctr_fail(err, errno, "poll exec fifo `%s'", exec_fifo);
    }
    if (unlink(exec_fifo) < 0)
        return ctr_fail(err, errno, "remove exec fifo `%s'", exec_fifo);
    return 0;
}
