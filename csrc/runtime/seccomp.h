/* OCI linux.seccomp -> a libseccomp filter, the way runc builds it
 * (libcontainer/seccomp/seccomp_linux.go).
 *
 * The work is split across the fork:
 *   parent, before clone:  ctr_seccomp_prepare() parses and checks linux.seccomp and builds the
 *                          whole libseccomp context (every error in the profile is reported
 *                          before anything is cloned), ctr_seccomp_compile() its program
 *                          (every allocation happens here);
 *   child, last step:      ctr_seccomp_load() installs it (seccomp(2));
 *   parent, after:         ctr_seccomp_release().
 *
 * When to load (what the runtime must do, after runc's standard_init_linux.go):
 *   - with process.noNewPrivileges: as the very last step before execve (after the exec fifo),
 *     so the profile filters the container and none of our own setup;
 *   - without it: loading a filter needs CAP_SYS_ADMIN (the kernel's rule for filters without
 *     no_new_privs), so it must happen BEFORE the capabilities are dropped, i.e. before
 *     ctr_process_identity().  The setup calls after it (setresuid, capset, prctl, ...) then run
 *     filtered, as in runc.
 * The filter never sets no_new_privs itself (SCMP_FLTATR_CTL_NNP is off): the runtime does,
 * when the spec says so.
 *
 * Rules that follow runc:
 *   - a syscall name this libseccomp does not know is skipped (an older kernel/library);
 *   - a rule whose action equals the default action is skipped (libseccomp refuses it);
 *   - SCMP_ACT_ERRNO and SCMP_ACT_TRACE return errnoRet, EPERM when absent; defaultErrnoRet
 *     does the same for the default action;
 *   - args of one rule are ANDed, except when two of them name the same index: then each arg
 *     becomes a rule of its own (ORed), runc's "old behaviour";
 *   - an unknown action, operator, architecture or flag is an error naming it;
 *   - SCMP_ACT_NOTIFY needs listenerPath (a unix socket of a seccomp agent), and is refused as
 *     the default action and on write(2): the init writes the listener's number to its parent
 *     once the filter is on, so a notified write could never reach the agent; listenerPath
 *     and listenerMetadata are ignored when no rule notifies (as the runtime spec says);
 *   - syscalls newer than the profile get ENOSYS (runc's patchbpf): when the default action
 *     is not a permissive one (ALLOW, LOG, TRACE) nor ERRNO with ENOSYS already,
 *     a stub in front of libseccomp's program answers every syscall number above the highest
 *     one the profile names, per architecture, with ENOSYS, so that a program falls back to
 *     the older call (glibc: clone3 to clone) instead of failing on EPERM or dying.  The
 *     profile's architectures are those listed, or the native one when none is (that is the
 *     filter libseccomp builds; runc adds no stub then).
 * The filter is loaded with seccomp(2) directly (libseccomp's program, exported by
 * ctr_seccomp_compile, with the stub in front), SECCOMP_FILTER_FLAG_NEW_LISTENER when a rule
 * notifies.
 * Argument values are JSON numbers, read as doubles: exact up to 2^53.
 *
 * The seccomp agent (SCMP_ACT_NOTIFY), as runc 1.1 does it: the process that loads the filter
 * gets the listener fd, writes its number to the runtime over the sync socket and waits; the
 * runtime takes the fd with pidfd_getfd(2) (ctr_seccomp_listener_take), sends the container
 * process state with it over a connection to listenerPath (ctr_seccomp_send_state), and lets
 * the process go on.  The connection is made before anything is cloned
 * (ctr_seccomp_connect), so an agent that is not there fails the create with nothing made.
 */
#ifndef CTR_SECCOMP_H
#define CTR_SECCOMP_H

#include <sys/types.h>

#include <cJSON.h>
#include <seccomp.h>

#include "base/error.h"

/* A prepared filter: libseccomp's context, the program to load, the listener's address. */
struct ctr_seccomp;

/* Build the filter for an OCI linux.seccomp object.  *out is set only on success; it belongs
 * to the caller (ctr_seccomp_release).  A NULL or JSON-null `seccomp` is an error: the caller
 * decides whether a spec without one runs unconfined. */
int ctr_seccomp_prepare(const cJSON *seccomp, struct ctr_seccomp **out, struct ctr_err *err);

/* Generate the program to load (libseccomp's, after the stub); done once.  The runtime calls
 * it in the parent, before clone, so that the child only loads. */
int ctr_seccomp_compile(struct ctr_seccomp *sc, struct ctr_err *err);

/* Install the filter in the calling process (and, with SECCOMP_FILTER_FLAG_TSYNC, its other
 * threads), compiling it first if that was not done.  Without no_new_privs this needs
 * CAP_SYS_ADMIN.  *listener (may be NULL) gets the listener fd of a filter that notifies
 * (closed when listener is NULL), -1 otherwise. */
int ctr_seccomp_load(struct ctr_seccomp *sc, int *listener, struct ctr_err *err);

void ctr_seccomp_release(struct ctr_seccomp *sc);

/* listenerPath when a rule notifies (there is an agent to send the listener to), else NULL. */
const char *ctr_seccomp_listener_path(const struct ctr_seccomp *sc);

/* Connect to the agent at listenerPath: the socket, or -1 naming the path. */
int ctr_seccomp_connect(const struct ctr_seccomp *sc, struct ctr_err *err);

/* The listener fd `fd` of process pid, duplicated into ours (pidfd_getfd; CLOEXEC). */
int ctr_seccomp_listener_take(pid_t pid, int fd, struct ctr_err *err);

/* Send the container process state {ociVersion, fds: ["seccompFd"], pid, metadata, state}
 * (state: the OCI state as JSON text) with the listener over the connection `conn`, then
 * close it (one state per connection, as the runtime spec says). */
int ctr_seccomp_send_state(const struct ctr_seccomp *sc, int conn, int listener, pid_t pid,
                           const char *state, struct ctr_err *err);

/* Parse a JSON text, prepare, release: the profile would be accepted. */
int ctr_seccomp_check(const char *json, struct ctr_err *err);

/* Is `name` a syscall this libseccomp knows (on any architecture)? */
int ctr_seccomp_syscall_known(const char *name);

/* The OCI name of the native architecture ("SCMP_ARCH_X86_64"), or NULL. */
const char *ctr_seccomp_native_arch(void);

/* The filter as libseccomp's pseudo-filter-code text (for tests and debugging): a malloc'd
 * NUL-terminated string in *out. */
int ctr_seccomp_export_pfc(const struct ctr_seccomp *sc, char **out, struct ctr_err *err);

/* The number of BPF instructions of the ENOSYS stub in front of libseccomp's program (0: none). */
size_t ctr_seccomp_stub_len(const struct ctr_seccomp *sc);

/* Test harness: fork; in the child set no_new_privs, load the filter and execv(argv[0]) with
 * stdout and stderr on a pipe; in the parent collect at most `cap` bytes of that output and the
 * wait status.  Used by the specs to prove the filter the kernel runs, without a container. */
int ctr_seccomp_run(struct ctr_seccomp *sc, char *const argv[], size_t cap, int *status, char **out,
                    struct ctr_err *err);

#endif
