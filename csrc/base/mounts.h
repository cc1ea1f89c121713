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

/* "/proc/self/fd/N" into buf (at least 32 bytes): how a mount(2) call names a file that was
 * opened, and checked, inside the container's root (the calls below take the fd itself). */
const char *ctr_fd_path(int fd, char *buf, size_t len);

/* The MS_NOSUID/NODEV/NOEXEC/RDONLY/NOATIME... flags a mount currently has.  A bind remount
 * must repeat the flags that the kernel has locked (in a user namespace it refuses to clear
 * them), so remounts OR these in. */
unsigned long ctr_mount_current_flags(int fd);

/* The new mount API (open_tree, fsopen/fsconfig/fsmount, mount_setattr, move_mount): every
 * mount is made detached, given its flags while nothing can reach it, and attached by fd
 * onto a target that was opened once, inside the root.  No step after the first looks the
 * destination up again, so a co-tenant that swaps a path for a symlink meanwhile cannot
 * steer a later step (the read-only remount, the propagation) onto another mount.  A kernel
 * without one of these calls gets a one-line error naming it, never a fallback by path.
 * `what` names the mount in errors ("mount `src' on `/dst'"). */

/* A detached copy of the mount tree at dfd/path (open_tree OPEN_TREE_CLONE; the submounts
 * too with `recursive`; path "" clones the mount dfd itself is on). */
int ctr_mount_clone(int dfd, const char *path, int recursive, const char *what,
                    struct ctr_err *err);

/* A new detached mount of filesystem `type`: fsopen, each option of `data` as one fsconfig
 * call ("k=v" a string, "k" a flag), the superblock flags of `flags` (ro, sync, dirsync,
 * lazytime, mand) as flags, fsmount with its per-mount flags as MOUNT_ATTR_*. */
int ctr_mount_new(const char *type, const char *source, unsigned long flags, const char *data,
                  const char *what, struct ctr_err *err);

/* Set the per-mount flags of the mount at fd as MS_REMOUNT|MS_BIND would (`flags' replace
 * ro/nosuid/nodev/noexec/nosymfollow, and the atime flags when one is given), on that mount
 * only, keeping the flags the kernel has locked. */
int ctr_mount_set_flags(int fd, unsigned long flags, const char *what, struct ctr_err *err);

/* mount_setattr(fd, AT_RECURSIVE, MOUNT_ATTR_RDONLY): read-only all the way down. */
int ctr_mount_recursive_ro(int fd, const char *what, struct ctr_err *err);

/* Attach the detached mount `tree` on top of whatever is at `target` (move_mount, both by
 * fd).  Afterwards `tree` names the attached mount. */
int ctr_mount_attach(int tree, int target, const char *what, struct ctr_err *err);

/* The propagation of the (attached) mount at fd: MS_SHARED/SLAVE/PRIVATE/UNBINDABLE, with
 * MS_REC its submounts too. */
int ctr_mount_set_propagation(int fd, unsigned long propagation, const char *what,
                              struct ctr_err *err);

/* The id of the mount fd is on (statx STATX_MNT_ID, the unique one where the kernel has
 * it): how the runtime tells the mounts it made from the ones it bound in from the host. */
int ctr_mount_id(int fd, unsigned long long *id, const char *what, struct ctr_err *err);

#endif
