#include "runtime/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include "base/files.h"
#include "base/cleanup.h"

static int write_proc(pid_t pid, const char *file, const char *text, struct ctr_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    cleanup_close int fd = RETRY(open(path, O_WRONLY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    /* one write: the kernel takes a map whole, once */
    ssize_t n = RETRY(write(fd, text, strlen(text)));
    if (n < 0)
        return ctr_fail(err, errno, "write `%s' (%s)", path, text);
    if ((size_t)n != strlen(text))
        return ctr_fail(err, EIO, "write `%s': short write", path);
    return 0;
}

static int format_map(const struct ctr_idmap *m, size_t n, char *buf, size_t len,
                      struct ctr_err *err)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + off, len - off, "%u %u %u\n", m[i].container, m[i].host,
                         m[i].size);
        if (w < 0 || (size_t)w >= len - off)
            return ctr_fail(err, E2BIG, "id map: too many entries");
        off += (size_t)w;
    }
    return 0;
}

static int have_cap_setgid(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return 0;
    return (data[0].effective & (1u << CAP_SETGID)) != 0;
}

int ctr_userns_write_maps(pid_t pid, const struct ctr_idmap *uid, size_t nuid,
                          const struct ctr_idmap *gid, size_t ngid, struct ctr_err *err)
{
    char buf[4096];
    if (nuid && (format_map(uid, nuid, buf, sizeof buf, err) < 0 ||
                 write_proc(pid, "uid_map", buf, err) < 0))
        return -1;
    if (ngid) {
        if (!have_cap_setgid() && write_proc(pid, "setgroups", "deny", err) < 0)
            return -1;
        if (format_map(gid, ngid, buf, sizeof buf, err) < 0 ||
            write_proc(pid, "gid_map", buf, err) < 0)
            return -1;
    }
    return 0;
}

uint32_t ctr_userns_host_id(const struct ctr_idmap *m, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (id >= m[i].container && id - m[i].container < m[i].size)
            return m[i].host + (id - m[i].container);
    return (uint32_t)-1;
}

/* One tree's shift: the offsets, the tree's device, and the inodes with more than one name
 * already shifted.  A hardlinked file is met once per name; shifted once per name, a root-only
 * (0600) or setuid-root file would end up owned by a container user (0 + 2 offsets).  So each
 * such inode is remembered by (dev, ino) with the owner it was given, in a small open-addressing
 * set that lives as long as the walk. */
struct shifted_inode {
    dev_t dev;
    ino_t ino;
    uid_t uid;
    gid_t gid;
    int used;
};

struct shift_walk {
    uint32_t uo, go;
    dev_t dev;
    struct shifted_inode *set; /* cap slots, a power of two, at most half full */
    size_t cap, n;
};

static size_t inode_slot(const struct shift_walk *w, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15ull) ^ (uint64_t)dev;
    size_t i = (size_t)(h ^ (h >> 29)) & (w->cap - 1);
    while (w->set[i].used && (w->set[i].dev != dev || w->set[i].ino != ino))
        i = (i + 1) & (w->cap - 1);
    return i;
}

static int inode_grow(struct shift_walk *w, struct ctr_err *err)
{
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct shifted_inode *old = w->set;
    size_t oldcap = w->cap;
    if ((w->set = calloc(cap, sizeof *w->set)) == NULL) {
        w->set = old;
        return ctr_fail(err, ENOMEM, "shift: the set of hardlinked inodes");
    }
    w->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].used)
            w->set[inode_slot(w, old[i].dev, old[i].ino)] = old[i];
    free(old);
    return 0;
}

/* Was this inode shifted already, through another name?  Its (dev, ino) alone is not enough:
 * overlayfs reports the lower inode's number for every name, and a name not copied up yet
 * still has the old owner; it is shifted only when it shows the owner we gave. */
static int inode_shifted(const struct shift_walk *w, const struct stat *st)
{
    if (w->cap == 0)
        return 0;
    const struct shifted_inode *s = &w->set[inode_slot(w, st->st_dev, st->st_ino)];
    return s->used && s->uid == st->st_uid && s->gid == st->st_gid;
}

static int inode_remember(struct shift_walk *w, const struct stat *st, uid_t u, gid_t g,
                          struct ctr_err *err)
{
    if ((w->n + 1) * 2 > w->cap && inode_grow(w, err) < 0)
        return -1;
    struct shifted_inode *s = &w->set[inode_slot(w, st->st_dev, st->st_ino)];
    if (!s->used)
        w->n++;
    *s = (struct shifted_inode){st->st_dev, st->st_ino, u, g, 1};
    return 0;
}

/* A regular file, through an fd of its own (opened without following a symlink, checked to be
 * the inode we stat'ed).  chown clears what it takes for a privilege: the setuid and setgid
 * bits and the security.capability xattr (the kernel's ATTR_KILL_SUID and ATTR_KILL_PRIV, even
 * for root).  Both are put back as they were: the shift moves owners, not privileges. */
static int shift_file(int dfd, const char *name, const char *path, const struct stat *st,
                      uid_t u, gid_t g, struct ctr_err *err)
{
    cleanup_close int fd =
        RETRY(openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    struct stat now;
    if (fstat(fd, &now) < 0)
        return ctr_fail(err, errno, "stat `%s'", path);
    if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || !S_ISREG(now.st_mode))
        return ctr_fail(err, EAGAIN, "shift `%s': changed while being shifted", path);
    char cap[64];
    ssize_t caplen = fgetxattr(fd, "security.capability", cap, sizeof cap);
    if (caplen < 0 && errno != ENODATA && errno != ENOTSUP)
        return ctr_fail(err, errno, "read the file capabilities of `%s'", path);
    if (fchown(fd, u, g) < 0)
        return ctr_fail(err, errno, "chown `%s'", path);
    if ((st->st_mode & (S_ISUID | S_ISGID)) && fchmod(fd, st->st_mode & 07777) < 0)
        return ctr_fail(err, errno, "chmod `%s'", path);
    if (caplen > 0 && fsetxattr(fd, "security.capability", cap, (size_t)caplen, 0) < 0)
        return ctr_fail(err, errno, "restore the file capabilities of `%s'", path);
    return 0;
}

/* name "" with AT_EMPTY_PATH: the directory dfd itself */
static int shift_one(int dfd, const char *name, const char *path, const struct stat *st,
                     struct shift_walk *w, struct ctr_err *err)
{
    int linked = !S_ISDIR(st->st_mode) && st->st_nlink > 1;
    if (linked && inode_shifted(w, st))
        return 0;
    uint64_t u = (uint64_t)st->st_uid + w->uo, g = (uint64_t)st->st_gid + w->go;
    if (u >= UINT32_MAX || g >= UINT32_MAX)
        return ctr_fail(err, EOVERFLOW, "shift the owner of `%s' (%u:%u)", path,
                        (unsigned)st->st_uid, (unsigned)st->st_gid);
    if (S_ISREG(st->st_mode)) {
        if (shift_file(dfd, name, path, st, (uid_t)u, (gid_t)g, err) < 0)
            return -1;
    } else if (fchownat(dfd, name, (uid_t)u, (gid_t)g,
                        AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0) {
        return ctr_fail(err, errno, "lchown `%s'", path);
    }
    return linked ? inode_remember(w, st, (uid_t)u, (gid_t)g, err) : 0;
}

/* Shift one directory's entries, then recurse into its subdirectories on the same device.
 * Everything is fd-relative with AT_SYMLINK_NOFOLLOW: a symlink is chowned itself, never its
 * target. */
static int shift_dir(int dfd, const char *path, struct shift_walk *w, int depth,
                     struct ctr_err *err)
{
    if (depth > 256)
        return ctr_fail(err, ELOOP, "shift `%s': too deep", path);
    int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return ctr_fail(err, errno, "shift `%s'", path);
    DIR *d = fdopendir(dup);
    if (d == NULL) {
        close(dup);
        return ctr_fail(err, errno, "opendir `%s'", path);
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = ctr_fail(err, errno, "stat `%s'", sub);
            break;
        }
        /* a directory of another mount is not ours to change (only directories: overlayfs
         * reports the lower filesystem's device for files) */
        if (S_ISDIR(st.st_mode) && st.st_dev != w->dev)
            continue;
        r = shift_one(dfd, e->d_name, sub, &st, w, err);
        if (r == 0 && S_ISDIR(st.st_mode)) {
            int cfd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                r = ctr_fail(err, errno, "open `%s'", sub);
                break;
            }
            r = shift_dir(cfd, sub, w, depth + 1, err);
            close(cfd);
        }
    }
    if (r == 0 && errno != 0 && e == NULL)
        r = ctr_fail(err, errno, "readdir `%s'", path);
    closedir(d);
    return r;
}

int ctr_userns_shift_tree(const char *dir, uint32_t uid_off, uint32_t gid_off,
                          struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", dir);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ctr_fail(err, errno, "stat `%s'", dir);
    struct shift_walk w = {.uo = uid_off, .go = gid_off, .dev = st.st_dev};
    int r = shift_one(fd, "", dir, &st, &w, err);
    if (r == 0)
        r = shift_dir(fd, dir, &w, 0, err);
    free(w.set);
    return r;
}
