/* mount(8) option strings split as mount(8) splits them.
 *
 * An option string ("ro,nosuid,size=64m,x-gvfs-show") holds three kinds of options: those
 * mount(2) takes as MS_* flags (VFS options), those only mount(8) and fstab mean anything by
 * (userspace options: noauto, _netdev, x-*), and the rest, which the filesystem reads from its
 * data string.  Which is which is libmount's table (MNT_LINUX_MAP, MNT_USERSPACE_MAP), copied
 * here so that a mount does not load libmount and the three libraries it brings; the mount
 * options spec checks the copy against the installed libmount. */
#ifndef CTR_MOUNT_OPTMAP_H
#define CTR_MOUNT_OPTMAP_H

#include <stddef.h>

enum ctr_mount_optkind {
    CTR_MOUNT_OPT_FS,      /* the filesystem's: goes to the data string */
    CTR_MOUNT_OPT_VFS,     /* an MS_* flag, set or (invert) cleared */
    CTR_MOUNT_OPT_USER,    /* mount(8)'s own: means nothing to the kernel */
};

struct ctr_mount_opt {
    enum ctr_mount_optkind kind;
    unsigned long flags; /* VFS: the MS_* bits it sets or clears */
    int invert;          /* VFS: clears flags ("rw", "suid", "exec") */
};

/* What the option opt[0..len) ("name" or "name=value") is. */
struct ctr_mount_opt ctr_mount_opt_lookup(const char *opt, size_t len);

/* The next option of a comma-separated string from *p (commas inside double quotes do not
 * split), as *opt, *len; *p moves past it.  0 at the end of the string. */
int ctr_mount_opt_next(const char **p, const char **opt, size_t *len);

/* Apply a VFS option to a flags word as mount(8) does: set, or clear for an inverted one. */
static inline unsigned long ctr_mount_opt_apply(struct ctr_mount_opt o, unsigned long flags)
{
    return o.invert ? flags & ~o.flags : flags | o.flags;
}

#endif
