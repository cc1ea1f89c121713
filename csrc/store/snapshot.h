/* Filesystem work of the snapshotters: the native snapshotter's faithful tree copy, disk usage
 * of a snapshot, and syncfs before a commit. */
#ifndef CTR_SNAPSHOT_H
#define CTR_SNAPSHOT_H

#include <stdint.h>

#include "base/error.h"

/* Copy the tree at `src` into the directory `dst` (created 0700 when missing; an existing one
 * must be empty of the names copied).  A faithful copy: owners, modes (setuid/setgid/sticky
 * applied after chown), xattrs (trusted.overlay.* included), access and modification times
 * (directories' after their contents), hardlinks (linked again within dst), symlinks as they
 * are, char/block devices, fifos and sockets.  Everything is fd-relative and no symlink is
 * ever followed; a mount below `src` is an error (EXDEV) naming it.  `dst` itself takes the
 * owner, mode, xattrs and times of `src`. */
int ctr_copy_tree(const char *src, const char *dst, struct ctr_err *err);

struct ctr_usage {
    int64_t size;   /* bytes of disk used: st_blocks * 512, each inode counted once */
    int64_t inodes; /* distinct inodes, the top directory included */
};

/* Disk usage of the tree at `path`, as containerd's fs.DiskUsage: hardlinked inodes counted
 * once, other filesystems below (mounts) not entered. */
int ctr_usage(const char *path, struct ctr_usage *out, struct ctr_err *err);

/* syncfs(2) of the filesystem that holds path. */
int ctr_syncfs(const char *path, struct ctr_err *err);

#endif
