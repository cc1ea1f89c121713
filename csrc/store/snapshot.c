/* Filesystem work of the snapshotters: see store/snapshot.h.
 *
 * Both walks are fd-relative: a directory is opened with O_NOFOLLOW from its parent's fd and
 * every entry is examined with fstatat(AT_SYMLINK_NOFOLLOW), so a symlink in a tree is copied
 * or counted as a symlink and never leads the walk anywhere else.  Attributes are set through
 * the new entry's own fd, or *at(..., AT_SYMLINK_NOFOLLOW) for what cannot be opened (symlinks,
 * devices, fifos): never through a symlink (containerd CVE-2021-32760).  Each level of depth
 * holds three descriptors, so depth is bounded by RLIMIT_NOFILE. */
#include "store/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"

/* ------------------------------------------------------------------ inode set
 * Open addressing on (dev, ino); `path` is the copy's relative path of the first link (NULL for
 * usage, which only counts). */

struct inode_ent {
    dev_t dev;
    ino_t ino;
    char *path;
    int used;
};

struct inode_set {
    struct inode_ent *ents;
    size_t cap, len;
};

static void inode_set_free(struct inode_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->ents[i].path);
    free(s->ents);
    s->ents = NULL;
    s->cap = s->len = 0;
}

static size_t inode_hash(dev_t dev, ino_t ino, size_t cap)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static struct inode_ent *inode_find(struct inode_set *s, dev_t dev, ino_t ino)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = inode_hash(dev, ino, s->cap);; i = (i + 1) & (s->cap - 1)) {
        struct inode_ent *e = &s->ents[i];
        if (!e->used)
            return NULL;
        if (e->dev == dev && e->ino == ino)
            return e;
    }
}

/* Insert (dev, ino); returns 1 when inserted, 0 when it was there, -1 on ENOMEM. */
static int inode_add(struct inode_set *s, dev_t dev, ino_t ino, const char *path)
{
    if (inode_find(s, dev, ino))
        return 0;
    if ((s->len + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        struct inode_ent *n = calloc(ncap, sizeof *n);
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->ents[i].used)
                continue;
            size_t j = inode_hash(s->ents[i].dev, s->ents[i].ino, ncap);
            while (n[j].used)
                j = (j + 1) & (ncap - 1);
            n[j] = s->ents[i];
        }
        free(s->ents);
        s->ents = n;
        s->cap = ncap;
    }
    size_t j = inode_hash(dev, ino, s->cap);
    while (s->ents[j].used)
        j = (j + 1) & (s->cap - 1);
    char *p = NULL;
    if (path && (p = strdup(path)) == NULL)
        return -1;
    s->ents[j] = (struct inode_ent){.dev = dev, .ino = ino, .path = p, .used = 1};
    s->len++;
    return 1;
}

/* ------------------------------------------------------------------ copy */

struct copy_ctx {
    const char *src;      /* top of the source, for messages */
    const char *dst;      /* top of the destination, for messages */
    dev_t dev;            /* the source's filesystem: the copy does not leave it */
    int dst_root;         /* fd of dst, for hardlinks by relative path */
    struct inode_set links;
    char rel[PATH_MAX];   /* relative path of the current entry */
    struct ctr_err *err;
};

static void close_dir(DIR **d)
{
    if (*d)
        closedir(*d);
}

/* Copy the xattrs of the source to the destination: through fds when sfd >= 0, else through
 * /proc/self/fd/N/name paths with the l* calls (symlinks and devices, which are not opened). */
static int copy_xattrs(struct copy_ctx *c, int sfd, const char *spath, int dfd, const char *dpath)
{
    ssize_t n = sfd >= 0 ? flistxattr(sfd, NULL, 0) : llistxattr(spath, NULL, 0);
    if (n < 0) {
        if (errno == ENOTSUP)
            return 0;
        return ctr_fail(c->err, errno, "list xattrs of `%s/%s'", c->src, c->rel);
    }
    if (n == 0)
        return 0;
    cleanup_free char *names = malloc((size_t)n);
    if (names == NULL)
        return ctr_fail(c->err, ENOMEM, "list xattrs of `%s/%s'", c->src, c->rel);
    n = sfd >= 0 ? flistxattr(sfd, names, (size_t)n) : llistxattr(spath, names, (size_t)n);
    if (n < 0)
        return ctr_fail(c->err, errno, "list xattrs of `%s/%s'", c->src, c->rel);
    for (char *name = names; name < names + n; name += strlen(name) + 1) {
        ssize_t vn = sfd >= 0 ? fgetxattr(sfd, name, NULL, 0) : lgetxattr(spath, name, NULL, 0);
        if (vn < 0)
            return ctr_fail(c->err, errno, "get xattr %s of `%s/%s'", name, c->src, c->rel);
        cleanup_free char *val = malloc((size_t)vn + 1);
        if (val == NULL)
            return ctr_fail(c->err, ENOMEM, "get xattr %s of `%s/%s'", name, c->src, c->rel);
        vn = sfd >= 0 ? fgetxattr(sfd, name, val, (size_t)vn) : lgetxattr(spath, name, val, (size_t)vn);
        if (vn < 0)
            return ctr_fail(c->err, errno, "get xattr %s of `%s/%s'", name, c->src, c->rel);
        int r = dfd >= 0 ? fsetxattr(dfd, name, val, (size_t)vn, 0)
                         : lsetxattr(dpath, name, val, (size_t)vn, 0);
        if (r < 0)
            return ctr_fail(c->err, errno, "set xattr %s of `%s/%s'", name, c->dst, c->rel);
    }
    return 0;
}

/* Owner, xattrs, mode, times of an opened entry: chown first (it clears setuid/setgid and
 * file capabilities), then xattrs, then the mode. */
static int copy_attrs_fd(struct copy_ctx *c, int sfd, int dfd, const struct stat *st)
{
    if (fchown(dfd, st->st_uid, st->st_gid) < 0)
        return ctr_fail(c->err, errno, "chown `%s/%s'", c->dst, c->rel);
    if (copy_xattrs(c, sfd, NULL, dfd, NULL) < 0)
        return -1;
    if (fchmod(dfd, st->st_mode & 07777) < 0)
        return ctr_fail(c->err, errno, "chmod `%s/%s'", c->dst, c->rel);
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (futimens(dfd, ts) < 0)
        return ctr_fail(c->err, errno, "set times of `%s/%s'", c->dst, c->rel);
    return 0;
}

/* The same for an entry that is not opened (symlink, device, fifo, socket). */
static int copy_attrs_at(struct copy_ctx *c, int sdir, int ddir, const char *name,
                         const struct stat *st)
{
    if (fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(c->err, errno, "chown `%s/%s'", c->dst, c->rel);
    char sp[PATH_MAX], dp[PATH_MAX];
    snprintf(sp, sizeof sp, "/proc/self/fd/%d/%s", sdir, name);
    snprintf(dp, sizeof dp, "/proc/self/fd/%d/%s", ddir, name);
    if (copy_xattrs(c, -1, sp, -1, dp) < 0)
        return -1;
    if (!S_ISLNK(st->st_mode) && fchmodat(ddir, name, st->st_mode & 07777, 0) < 0)
        return ctr_fail(c->err, errno, "chmod `%s/%s'", c->dst, c->rel);
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(c->err, errno, "set times of `%s/%s'", c->dst, c->rel);
    return 0;
}

static int copy_data(struct copy_ctx *c, int sfd, int dfd, off_t size)
{
    off_t left = size;
    int use_cfr = 1;
    while (left > 0) {
        if (use_cfr) {
            ssize_t n = copy_file_range(sfd, NULL, dfd, NULL, (size_t)left, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP)) {
                use_cfr = 0;
                continue;
            }
            if (n < 0)
                return ctr_fail(c->err, errno, "copy `%s/%s'", c->src, c->rel);
            if (n == 0)
                break; /* the file shrank while we copied it */
            left -= n;
            continue;
        }
        char buf[65536];
        ssize_t n = RETRY(read(sfd, buf, sizeof buf));
        if (n < 0)
            return ctr_fail(c->err, errno, "read `%s/%s'", c->src, c->rel);
        if (n == 0)
            break;
        if (ctr_write_all(dfd, buf, (size_t)n) < 0)
            return ctr_fail(c->err, errno, "write `%s/%s'", c->dst, c->rel);
        left -= n;
    }
    return 0;
}

static int copy_dir(struct copy_ctx *c, int sfd, int dfd);

static int copy_entry(struct copy_ctx *c, int sdir, int ddir, const char *name)
{
    struct stat st;
    if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(c->err, errno, "stat `%s/%s'", c->src, c->rel);

    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        struct inode_ent *first = inode_find(&c->links, st.st_dev, st.st_ino);
        if (first) {
            if (linkat(c->dst_root, first->path, ddir, name, 0) < 0)
                return ctr_fail(c->err, errno, "link `%s/%s' to `%s'", c->dst, c->rel, first->path);
            return 0;
        }
    }

    switch (st.st_mode & S_IFMT) {
    case S_IFDIR: {
        if (st.st_dev != c->dev)
            return ctr_fail(c->err, EXDEV, "copy `%s/%s': a mount is there", c->src, c->rel);
        if (mkdirat(ddir, name, 0700) < 0)
            return ctr_fail(c->err, errno, "mkdir `%s/%s'", c->dst, c->rel);
        cleanup_close int s = RETRY(openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (s < 0)
            return ctr_fail(c->err, errno, "open `%s/%s'", c->src, c->rel);
        cleanup_close int d = RETRY(openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (d < 0)
            return ctr_fail(c->err, errno, "open `%s/%s'", c->dst, c->rel);
        if (copy_dir(c, s, d) < 0)
            return -1;
        return copy_attrs_fd(c, s, d, &st); /* times after the contents */
    }
    case S_IFREG: {
        cleanup_close int s = RETRY(openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
        if (s < 0)
            return ctr_fail(c->err, errno, "open `%s/%s'", c->src, c->rel);
        cleanup_close int d = RETRY(openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (d < 0)
            return ctr_fail(c->err, errno, "create `%s/%s'", c->dst, c->rel);
        if (copy_data(c, s, d, st.st_size) < 0 || copy_attrs_fd(c, s, d, &st) < 0)
            return -1;
        break;
    }
    case S_IFLNK: {
        char target[PATH_MAX];
        ssize_t n = readlinkat(sdir, name, target, sizeof target - 1);
        if (n < 0)
            return ctr_fail(c->err, errno, "readlink `%s/%s'", c->src, c->rel);
        target[n] = '\0';
        if (symlinkat(target, ddir, name) < 0)
            return ctr_fail(c->err, errno, "symlink `%s/%s'", c->dst, c->rel);
        if (copy_attrs_at(c, sdir, ddir, name, &st) < 0)
            return -1;
        break;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
        if (mknodat(ddir, name, st.st_mode & (S_IFMT | 0600), st.st_rdev) < 0)
            return ctr_fail(c->err, errno, "mknod `%s/%s'", c->dst, c->rel);
        if (copy_attrs_at(c, sdir, ddir, name, &st) < 0)
            return -1;
        break;
    default:
        return ctr_fail(c->err, EINVAL, "copy `%s/%s': unknown file type", c->src, c->rel);
    }
    if (st.st_nlink > 1 && inode_add(&c->links, st.st_dev, st.st_ino, c->rel) < 0)
        return ctr_fail(c->err, ENOMEM, "copy `%s'", c->src);
    return 0;
}

static int copy_dir(struct copy_ctx *c, int sfd, int dfd)
{
    int it = RETRY(openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (it < 0)
        return ctr_fail(c->err, errno, "open `%s/%s'", c->src, c->rel);
    __attribute__((cleanup(close_dir))) DIR *d = fdopendir(it);
    if (d == NULL) {
        close(it);
        return ctr_fail(c->err, errno, "opendir `%s/%s'", c->src, c->rel);
    }
    size_t base = strlen(c->rel);
    struct dirent *de;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int w = snprintf(c->rel + base, sizeof c->rel - base, "%s%s", base ? "/" : "", de->d_name);
        if (w < 0 || (size_t)w >= sizeof c->rel - base)
            return ctr_fail(c->err, ENAMETOOLONG, "copy `%s/%s'", c->src, de->d_name);
        if (copy_entry(c, sfd, dfd, de->d_name) < 0)
            return -1;
        c->rel[base] = '\0';
    }
    if (errno != 0)
        return ctr_fail(c->err, errno, "readdir `%s/%s'", c->src, c->rel);
    return 0;
}

int ctr_copy_tree(const char *src, const char *dst, struct ctr_err *err)
{
    cleanup_close int s = RETRY(open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (s < 0)
        return ctr_fail(err, errno, "open `%s'", src);
    struct stat st;
    if (fstat(s, &st) < 0)
        return ctr_fail(err, errno, "stat `%s'", src);
    if (mkdir(dst, 0700) < 0 && errno != EEXIST)
        return ctr_fail(err, errno, "mkdir `%s'", dst);
    cleanup_close int d = RETRY(open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d < 0)
        return ctr_fail(err, errno, "open `%s'", dst);
    struct copy_ctx c = {.src = src, .dst = dst, .dev = st.st_dev, .dst_root = d, .err = err};
    int r = copy_dir(&c, s, d);
    if (r == 0) {
        c.rel[0] = '\0';
        r = copy_attrs_fd(&c, s, d, &st);
    }
    inode_set_free(&c.links);
    return r;
}

/* ------------------------------------------------------------------ usage */

static int usage_dir(int fd, dev_t dev, const char *top, struct inode_set *seen,
                     struct ctr_usage *u, struct ctr_err *err)
{
    int it = RETRY(openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (it < 0)
        return ctr_fail(err, errno, "open a directory under `%s'", top);
    __attribute__((cleanup(close_dir))) DIR *d = fdopendir(it);
    if (d == NULL) {
        close(it);
        return ctr_fail(err, errno, "opendir under `%s'", top);
    }
    struct dirent *de;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* removed while we walked */
            return ctr_fail(err, errno, "stat `%s' under `%s'", de->d_name, top);
        }
        if (st.st_dev != dev)
            continue; /* a mount: not ours to count */
        int added = inode_add(seen, st.st_dev, st.st_ino, NULL);
        if (added < 0)
            return ctr_fail(err, ENOMEM, "usage of `%s'", top);
        if (added) {
            u->size += (int64_t)st.st_blocks * 512;
            u->inodes++;
        }
        if (S_ISDIR(st.st_mode)) {
            cleanup_close int sub = RETRY(openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (sub < 0)
                return ctr_fail(err, errno, "open `%s' under `%s'", de->d_name, top);
            if (usage_dir(sub, dev, top, seen, u, err) < 0)
                return -1;
        }
    }
    if (errno != 0)
        return ctr_fail(err, errno, "readdir under `%s'", top);
    return 0;
}

int ctr_usage(const char *path, struct ctr_usage *out, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ctr_fail(err, errno, "stat `%s'", path);
    struct inode_set seen = {0};
    struct ctr_usage u = {.size = (int64_t)st.st_blocks * 512, .inodes = 1};
    if (inode_add(&seen, st.st_dev, st.st_ino, NULL) < 0)
        return ctr_fail(err, ENOMEM, "usage of `%s'", path);
    int r = usage_dir(fd, st.st_dev, path, &seen, &u, err);
    inode_set_free(&seen);
    if (r == 0)
        *out = u;
    return r;
}

int ctr_syncfs(const char *path, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    if (syncfs(fd) < 0)
        return ctr_fail(err, errno, "syncfs `%s'", path);
    return 0;
}
