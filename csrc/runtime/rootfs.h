/* The container's filesystem, built in the child's new mount namespace before it execs:
 * propagation, the rootfs bind, every spec mount, devices, masked and read-only paths, then
 * pivot_root.  Every path under the rootfs is resolved inside it by fd (openat2
 * RESOLVE_IN_ROOT), every mount is made detached with its flags and attached onto a target
 * opened that way (move_mount by fd), and nothing looks the destination up a second time, so
 * nothing in the image or in a volume shared with another container (a symlinked /proc, a
 * mount point swapped for a symlink) can make a mount, or its read-only flag, land anywhere
 * else.  Device nodes and /dev links are made only on mounts the runtime made, never in a
 * directory bound in from the host.  These functions run only in the child. */
#ifndef CTR_ROOTFS_H
#define CTR_ROOTFS_H

#include "runtime/config.h"
#include "base/error.h"

/* Propagation of /, and the rootfs bound onto itself: an O_PATH fd of the container's root
 * mount.  Done before the init becomes root of its user namespace, while its fsuid is still
 * the host's (the bundle's directories need not be searchable by the mapped root). */
int ctr_rootfs_bind(const struct ctr_config *c, struct ctr_err *err);

/* Everything else before pivot_root: spec mounts, devices, sysctls, read-only and masked
 * paths. */
int ctr_rootfs_prepare(const struct ctr_config *c, int rootfd, struct ctr_err *err);

/* pivot_root into rootfd (or, with no_pivot, MS_MOVE + chroot), then root.readonly. */
int ctr_rootfs_enter(const struct ctr_config *c, int rootfd, int no_pivot, struct ctr_err *err);

#endif
