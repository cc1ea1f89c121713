/* Host-side mounts of snapshots (containerd's mount.Mount.Mount / mount.Unmount): mount a
 * {type, source, options[]} onto a trusted host path, and unmount it.  The container runtime's
 * mounts inside a rootfs live in base/mounts.c; these are the store's own. */
#ifndef CTR_MOUNTUTIL_H
#define CTR_MOUNTUTIL_H

#include <stddef.h>

#include "base/error.h"

/* Mount `type` from `source` on `target`.  `options` is a comma-separated option string (the
 * options array of a containerd mount, joined): VFS flags and filesystem data are split with
 * libmount's builtin Linux optmap, userspace-only options (x-*, _netdev, noauto, ...) dropped.
 * A read-only bind is remounted read-only (the kernel ignores MS_RDONLY on the first bind);
 * propagation options (shared, rslave, private, ...) are applied with separate calls after the
 * mount.  On a failure after the first mount, the mount is undone. */
int ctr_mountutil_mount(const char *type, const char *source, const char *target,
                        const char *options, struct ctr_err *err);

/* umount2(target, UMOUNT_NOFOLLOW [| MNT_DETACH]); EBUSY is retried for about a second
 * (as containerd's unmount does) before it is reported. */
int ctr_mountutil_unmount(const char *target, int detach, struct ctr_err *err);

/* One line of /proc/self/mountinfo (strings unescaped by libmount). */
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
