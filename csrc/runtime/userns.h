/* User namespaces: the id maps the parent writes for the init (runtime-spec
 * linux.uidMappings/gidMappings), and the one-time ownership shift of a snapshot for a
 * mapping (containerd's WithRemappedSnapshot). */
#ifndef CTR_USERNS_H
#define CTR_USERNS_H

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

struct ctr_idmap {
    uint32_t container, host, size;
};

/* Write /proc/PID/uid_map and gid_map.  "deny" goes to /proc/PID/setgroups first only when we
 * lack CAP_SETGID in our own namespace (an unprivileged caller), as the kernel requires. */
int ctr_userns_write_maps(pid_t pid, const struct ctr_idmap *uid, size_t nuid,
                          const struct ctr_idmap *gid, size_t ngid, struct ctr_err *err);

/* The host id of container id `id` under maps; (uint32_t)-1 when it is not mapped. */
uint32_t ctr_userns_host_id(const struct ctr_idmap *m, size_t n, uint32_t id);

/* Add uid_off/gid_off to the owner of every inode under dir (lchown, never following a
 * symlink, never crossing into another mount), once per inode however many names it has,
 * keeping the setuid/setgid bits and file capabilities chown clears.  An id that would pass
 * 2^32-2 is an error. */
int ctr_userns_shift_tree(const char *dir, uint32_t uid_off, uint32_t gid_off,
                          struct ctr_err *err);

#endif
