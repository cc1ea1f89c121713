/* Mount options of an OCI spec mount.
 *
 * Options are split the way mount(8) splits them (base/mount_optmap.h): VFS options become
 * MS_* flags, userspace-only ones ("noauto", "user", "_netdev", ...) are dropped, and the
 * rest is the filesystem's data string ("size=64m,mode=755").  Propagation names (shared, rslave, ...)
 * and "rro" are taken out first: the kernel refuses to combine propagation changes with any
 * other mount, so they are applied by separate calls after the mount itself. */
#ifndef CTR_MOUNT_OPTIONS_H
#define CTR_MOUNT_OPTIONS_H

#include <stddef.h>

#include "base/error.h"

struct ctr_mount_opts {
    unsigned long flags;       /* MS_* without propagation; MS_BIND|MS_REC for rbind */
    unsigned long propagation; /* 0 or one of MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (|MS_REC) */
    char *data;                /* filesystem options, malloc'd, never NULL */
    int recursive_ro;          /* "rro": mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY) */
};

/* Parse `n` option strings; `where` names the list in errors ("mounts[3].options"). */
int ctr_mount_parse_options(const char *const *opts, size_t n, const char *where,
                            struct ctr_mount_opts *out, struct ctr_err *err);
void ctr_mount_opts_free(struct ctr_mount_opts *o);

/* A propagation name ("rslave") as MS_* flags; -1 when unknown. */
long ctr_mount_propagation(const char *name);

#endif
