/* Host-side mounts of snapshots (containerd's mount.Mount.Mount): mount a {type, source,
 * options[]} onto a trusted host path.  The unmount (mount.Unmount) and the mount primitives
 * live in base/mounts.h; the container runtime's mounts inside a rootfs in runtime/rootfs.c. */
#ifndef CTR_SNAPSHOT_MOUNT_H
#define CTR_SNAPSHOT_MOUNT_H

#include "base/error.h"

/* Mount `type` from `source` on `target`.  `options` is a comma-separated option string (the
 * options array of a containerd mount, joined): VFS flags and filesystem data are split with
 * mount(8)'s option map (base/mount_optmap.h), userspace-only options (x-*, _netdev, noauto, ...) dropped.
 * A read-only bind is remounted read-only (the kernel ignores MS_RDONLY on the first bind);
 * propagation options (shared, rslave, private, ...) are applied with separate calls after the
 * mount.  On a failure after the first mount, the mount is undone. */
int ctr_snapshot_mount(const char *type, const char *source, const char *target,
                        const char *options, struct ctr_err *err);

#endif
