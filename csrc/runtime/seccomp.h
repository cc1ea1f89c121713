/* OCI linux.seccomp -> a libseccomp filter, the way runc builds it
 * (libcontainer/seccomp/seccomp_linux.go).
 *
 * The work is split across the fork:
 *   parent, before clone:  ctr_seccomp_prepare() parses and checks linux.seccomp and builds the
 *                          whole libseccomp context (every allocation happens here, and every
 *                          error in the profile is reported before anything is cloned);
 *   child, last step:      ctr_seccomp_load() compiles and installs it (seccomp(2));
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
 *     SCMP_ACT_NOTIFY is refused (no seccomp agent support).
 * Argument values are JSON numbers, read as doubles: exact up to 2^53.
 */
#ifndef CTR_SECCOMP_H
#define CTR_SECCOMP_H

#include <sys/types.h>

#include <cJSON.h>
#include <seccomp.h>

#include "base/error.h"

/* Build the filter for an OCI linux.seccomp object.  *out is set only on success; it belongs
 * to the caller (ctr_seccomp_release).  A NULL or JSON-null `seccomp` is an error: the caller
 * decides whether a spec without one runs unconfined. */
int ctr_seccomp_prepare(const cJSON *seccomp, scmp_filter_ctx *out, struct ctr_err *err);

/* Install the filter in the calling process (and, with SECCOMP_FILTER_FLAG_TSYNC, its other
 * threads).  Without no_new_privs this needs CAP_SYS_ADMIN. */
int ctr_seccomp_load(scmp_filter_ctx ctx, struct ctr_err *err);

void ctr_seccomp_release(scmp_filter_ctx ctx);

/* Parse a JSON text, prepare, release: the profile would be accepted. */
int ctr_seccomp_check(const char *json, struct ctr_err *err);

/* Is `name` a syscall this libseccomp knows (on any architecture)? */
int ctr_seccomp_syscall_known(const char *name);

/* The OCI name of the native architecture ("SCMP_ARCH_X86_64"), or NULL. */
const char *ctr_seccomp_native_arch(void);

/* The filter as libseccomp's pseudo-filter-code text (for tests and debugging): a malloc'd
 * NUL-terminated string in *out. */
int ctr_seccomp_export_pfc(scmp_filter_ctx ctx, char **out, struct ctr_err *err);

/* Test harness: fork; in the child set no_new_privs, load the filter and execv(argv[0]) with
 * stdout and stderr on a pipe; in the parent collect at most `cap` bytes of that output and the
 * wait status.  Used by the specs to prove the filter the kernel runs, without a container. */
int ctr_seccomp_run(scmp_filter_ctx ctx, char *const argv[], size_t cap, int *status, char **out,
                    struct ctr_err *err);

#endif
