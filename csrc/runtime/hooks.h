/* OCI hooks (runtime-spec config.md#posix-platform-hooks): parsed from config.json's "hooks",
 * and run with the container's state JSON on stdin, their own args and env, and a timeout
 * after which they are killed.  Where each kind runs is runtime/create.c's business:
 *
 *   prestart, createRuntime   the runtime's namespaces, by the parent, during create, after
 *                             the container's namespaces exist, before pivot_root (the init
 *                             waits on the sync socket meanwhile)
 *   createContainer           the container's namespaces, by the init, before pivot_root
 *   startContainer            the container, by the init, after start, before the program
 *   poststart, poststop       by the caller (ctr_hooks_run_kind: core.run_hooks), failures
 *                             logged and not fatal
 */
#ifndef CTR_HOOKS_H
#define CTR_HOOKS_H

#include <stddef.h>
#include <sys/types.h>

#include <cJSON.h>

#include "base/error.h"

enum {
    CTR_HOOK_PRESTART,
    CTR_HOOK_CREATE_RUNTIME,
    CTR_HOOK_CREATE_CONTAINER,
    CTR_HOOK_START_CONTAINER,
    CTR_HOOK_POSTSTART,
    CTR_HOOK_POSTSTOP,
    CTR_HOOK_KINDS
};

struct ctr_hook {
    const char *path;
    const char **args, **env; /* NULL-terminated (malloc'd vectors into the tree), may be NULL */
    int timeout;              /* seconds; 0: none */
};

struct ctr_hooks {
    struct ctr_hook *list[CTR_HOOK_KINDS];
    size_t n[CTR_HOOK_KINDS];
};

/* The spec's name of a kind ("createRuntime"), or -1 / NULL. */
const char *ctr_hook_kind_name(int kind);
int ctr_hook_kind(const char *name);

/* Parse config.json's "hooks" object (may be NULL).  Strings point into the tree. */
int ctr_hooks_parse(const cJSON *hooks, struct ctr_hooks *out, struct ctr_err *err);
void ctr_hooks_free(struct ctr_hooks *h);

/* The runtime-spec state: {ociVersion, id, status, pid, bundle, annotations}, malloc'd JSON.
 * annotations may be NULL; pid <= 0 leaves it out. */
char *ctr_hooks_state(const char *oci_version, const char *id, const char *status, pid_t pid,
                      const char *bundle, const cJSON *annotations);

/* Run the hooks of one kind in order; the first failure (exit status, signal, timeout, exec
 * error) stops them and is the error.  With keep_going, every hook runs and the error is the
 * first failure's.  tramp: -1 for hooks whose paths are the host's; the sealed trampoline
 * (runtime/sealed.h) for hooks run inside a container, whose paths the image controls. */
int ctr_hooks_run(const struct ctr_hooks *h, int kind, const char *state, int keep_going,
                  int tramp, struct ctr_err *err);

#endif
