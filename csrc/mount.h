/* Mount options of an OCI spec mount, and the small mount helpers the runtime builds on.
 *
 * Options are split the way mount(8) splits them, through libmount's own option map
 * (MNT_LINUX_MAP): what it knows becomes MS_* flags, what it lists as userspace-only
 * (MNT_USERSPACE_MAP: "noauto", "user", "_netdev", ...) is dropped, and the rest is the
 * filesystem's data string ("size=64m,mode=755").  Propagation names (shared, rslave, ...)
 * and "rro" are taken out first: the kernel refuses to combine propagation changes with any
 * other mount, so they are applied by separate calls after the mount itself. */
#ifndef CTR_MOUNT_H
#define CTR_MOUNT_H

#include <stddef.h>

#include "error.h"

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

/* "/proc/self/fd/N" into buf (at least 32 bytes): how every mount below targets a directory
 * that was opened, and checked, inside the container's root. */
const char *ctr_fd_path(int fd, char *buf, size_t len);

/* The MS_NOSUID/NODEV/NOEXEC/RDONLY/NOATIME... flags a mount currently has.  A bind remount
 * must repeat the flags that the kernel has locked (in a user namespace it refuses to clear
 * them), so remounts OR these in. */
unsigned long ctr_mount_current_flags(int fd);

/* Remount the mount at fd with flags (MS_REMOUNT|MS_BIND are added), keeping its locked
 * flags; `what` names it in errors. */
int ctr_mount_remount_bind(int fd, unsigned long flags, const char *what, struct ctr_err *err);

/* mount_setattr(fd, AT_RECURSIVE, MOUNT_ATTR_RDONLY): read-only all the way down. */
int ctr_mount_recursive_ro(int fd, const char *what, struct ctr_err *err);

#endif
