/* The mount primitives the runtime and the store build on: the new mount API (every mount
 * made detached and attached by fd), the unmount, and the mount table (/proc/self/mountinfo).
 * What the options of an OCI spec mount mean is runtime/mount_options.h's; the store's
 * host-side snapshot mounts are store/snapshot_mount.h's. */
#ifndef CTR_MOUNT_H
#define CTR_MOUNT_H

#include <stddef.h>

#include "base/error.h"

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

/* umount2(target, UMOUNT_NOFOLLOW [| MNT_DETACH]); EBUSY is retried for about a second
 * (as containerd's unmount does) before it is reported. */
int ctr_unmount(const char *target, int detach, struct ctr_err *err);

/* One line of /proc/self/mountinfo, its strings unescaped (the kernel writes \NNN octal). */
struct ctr_mountinfo {
    int id, parent_id;
    unsigned major, minor;
    char *root, *target, *fstype, *source, *vfs_options, *fs_options;
};

/* Read /proc/self/mountinfo into a malloc'd array; free it with ctr_mountinfo_free. */
int ctr_mountinfo_read(struct ctr_mountinfo **out, size_t *n, struct ctr_err *err);
void ctr_mountinfo_free(struct ctr_mountinfo *m, size_t n);

/* Mounts a container without a mount namespace of its own leaves in ours: its setup stacks a
 * bind of the rootfs on `target` and mounts everything else on that bind.  ctr_mount_top
 * gives the id of the topmost mount at exactly target (0: none), taken before the setup;
 * ctr_mount_unstack lazily unmounts what is stacked above that mount `keep` (each detach
 * takes the mounts on it along), and leaves target alone when keep is no longer under its top
 * (someone else's mounts are not ours to take down).  target is canonical, as mountinfo
 * writes it. */
int ctr_mount_top(const char *target, int *id, struct ctr_err *err);
int ctr_mount_unstack(const char *target, int keep, struct ctr_err *err);

#endif
