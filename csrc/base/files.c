#include "base/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"

int ctr_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t ctr_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The rest of read_file: fd is open on what `what` names in messages (quoted already). */
static int read_fd_capped(int fd, const char *what, size_t cap, char **out, size_t *len,
                          struct ctr_err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ctr_fail(err, errno, "fstat %s", what);
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > cap)
        return ctr_fail(err, EFBIG, "read %s: %lld bytes is over the limit of %zu",
                        what, (long long)st.st_size, cap);
    /* files under /proc and /sys say size 0: start from a page and grow */
    size_t size = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size : 4096;
    if (size > cap)
        size = cap;
    cleanup_free char *buf = malloc(size + 2);
    if (buf == NULL)
        return ctr_fail(err, ENOMEM, "read %s", what);
    size_t used = 0;
    for (;;) {
        if (used == size + 1) {
            if (size >= cap)
                return ctr_fail(err, EFBIG, "read %s: over the limit of %zu bytes", what, cap);
            size_t nsize = size * 2 > cap ? cap : size * 2;
            char *nbuf = realloc(buf, nsize + 2);
            if (nbuf == NULL)
                return ctr_fail(err, ENOMEM, "read %s", what);
            buf = nbuf;
            size = nsize;
        }
        ssize_t n = ctr_read_full(fd, buf + used, size + 1 - used);
        if (n < 0)
            return ctr_fail(err, errno, "read %s", what);
        used += (size_t)n;
        if (used < size + 1)
            break;
    }
    if (used > cap)
        return ctr_fail(err, EFBIG, "read %s: over the limit of %zu bytes", what, cap);
    buf[used] = '\0';
    *out = steal_pointer(&buf);
    if (len)
        *len = used;
    return 0;
}

int ctr_read_file(const char *path, size_t cap, char **out, size_t *len, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    char what[PATH_MAX + 8];
    snprintf(what, sizeof what, "`%s'", path);
    return read_fd_capped(fd, what, cap, out, len, err);
}

int ctr_read_file_in_root(const char *root, const char *path, const char *name, size_t cap,
                          char **out, size_t *len, struct ctr_err *err)
{
    char where[PATH_MAX + 8], what[2 * PATH_MAX + 16];
    if (name)
        snprintf(where, sizeof where, "%s", name);
    else
        snprintf(where, sizeof where, "`%s'", root);
    /* the path as the container sees it, where the file is: never the fd we read it by */
    snprintf(what, sizeof what, "`%s' in %s", path, where);
    cleanup_close int rootfd = RETRY(open(root, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return ctr_fail(err, errno, "open %s", where);
    cleanup_close int fd = ctr_openat_in_root(rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "openat2 %s", what);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ctr_fail(err, errno, "fstat %s", what);
    if (!S_ISREG(st.st_mode))
        return ctr_fail(err, EINVAL, "read %s: not a regular file", what);
    return read_fd_capped(fd, what, cap, out, len, err);
}

int ctr_fsync_dir(const char *dir, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", dir);
    if (fsync(fd) < 0)
        return ctr_fail(err, errno, "fsync `%s'", dir);
    return 0;
}

int ctr_fsync_path(const char *path, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "fsync `%s': open", path);
    if (fsync(fd) < 0)
        return ctr_fail(err, errno, "fsync `%s'", path);
    return 0;
}

int ctr_fsync_parent(const char *path, struct ctr_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return ctr_fail(err, ENAMETOOLONG, "`%s'", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return ctr_fsync_dir(dir, err);
}

int ctr_write_file_atomic(const char *path, const void *data, size_t len, int mode, int flags,
                          struct ctr_err *err)
{
    int noreplace = flags & CTR_WRITE_NOREPLACE, sync = !(flags & CTR_WRITE_NOSYNC);
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.tmp-%s.%d", dirlen, path, slash ? slash + 1 : path,
                 (int)getpid()) >= (int)sizeof tmp)
        return ctr_fail(err, ENAMETOOLONG, "`%s'", path);
    cleanup_close int fd = RETRY(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                                      mode));
    if (fd < 0)
        return ctr_fail(err, errno, "create `%s'", tmp);
    if (fchmod(fd, mode) < 0 || ctr_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
        int e = errno;
        unlink(tmp);
        return ctr_fail(err, e, "write `%s'", tmp);
    }
    int r = noreplace ? (int)syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, path, 1 /* RENAME_NOREPLACE */)
                      : rename(tmp, path);
    if (r < 0) {
        int e = errno;
        unlink(tmp);
        return ctr_fail(err, e, "rename `%s' to `%s'", tmp, path);
    }
    return sync && !(flags & CTR_WRITE_NODIRSYNC) ? ctr_fsync_parent(path, err) : 0;
}

static int mkdir_walk(char *buf, int mode, struct ctr_err *err)
{
    if (mkdir(buf, mode) == 0)
        return 0;
    if (errno == ENOENT) {
        char *slash = strrchr(buf, '/');
        while (slash != NULL && slash > buf && slash[-1] == '/')
            slash--;
        if (slash != NULL && slash > buf) {
            *slash = '\0';
            int r = mkdir_walk(buf, mode, err);
            *slash = '/';
            if (r < 0)
                return r;
            if (mkdir(buf, mode) == 0)
                return 0;
        }
    }
    if (errno != EEXIST)
        return ctr_fail(err, errno, "mkdir `%s'", buf);
    return 0;
}

/* The directories asked for nearly always exist already: one stat answers then, and the
 * components are made (from the deepest missing one down) only when the path is missing. */
int ctr_mkdir_p(const char *path, int mode, struct ctr_err *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ctr_fail(err, ENAMETOOLONG, "mkdir `%s'", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    struct stat st;
    if (stat(path, &st) < 0) {
        if (mkdir_walk(buf, mode, err) < 0)
            return -1;
        if (stat(path, &st) < 0)
            return ctr_fail(err, errno, "stat `%s'", path);
    }
    if (!S_ISDIR(st.st_mode))
        return ctr_fail(err, ENOTDIR, "mkdir `%s'", path);
    return 0;
}

void ctr_dir_open(struct ctr_dir *d, int fd)
{
    d->fd = fd;
    d->pos = d->len = 0;
}

/* The kernel's record (glibc's struct dirent64 and musl's struct dirent have its layout, but
 * not one name): the syscall is called directly, with the one layout, under either. */
struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

const char *ctr_dir_next(struct ctr_dir *d, unsigned char *type)
{
    for (;;) {
        if (d->pos >= d->len) {
            ssize_t n = syscall(SYS_getdents64, d->fd, d->buf, sizeof d->buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = 0;
                return NULL;
            }
            d->pos = 0;
            d->len = (size_t)n;
        }
        const struct linux_dirent64 *de = (const struct linux_dirent64 *)(d->buf + d->pos);
        d->pos += de->d_reclen;
        const char *name = de->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
            continue;
        *type = de->d_type;
        return name;
    }
}

void ctr_dir_close(struct ctr_dir *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

static int remove_at(int parent, const char *name, unsigned char type, dev_t dev, const char *top,
                     struct ctr_err *err);

/* Directory `name' under `parent', already known to be one on the tree's filesystem. */
static int remove_dir(int parent, const char *name, dev_t dev, const char *top, struct ctr_err *err)
{
    int fd = RETRY(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s' under `%s'", name, top);
    /* on the heap: a tree is as deep as its descriptors allow, and a frame per level is all
     * this recursion may put on the stack */
    struct ctr_dir *d = malloc(sizeof *d);
    if (d == NULL) {
        close(fd);
        return ctr_fail(err, ENOMEM, "remove `%s' under `%s'", name, top);
    }
    ctr_dir_open(d, fd);
    const char *entry;
    unsigned char type;
    int r = 0;
    while (r == 0 && (entry = ctr_dir_next(d, &type)) != NULL)
        r = remove_at(d->fd, entry, type, dev, top, err);
    if (r == 0 && errno != 0)
        r = ctr_fail(err, errno, "read the directory `%s' under `%s'", name, top);
    ctr_dir_close(d);
    free(d);
    if (r < 0)
        return r;
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "rmdir `%s' under `%s'", name, top);
    return 0;
}

/* An entry the listing says is no directory is unlinked at once: a stat is needed only for
 * a directory (whose device tells a mount point) or an entry of unknown type, or one that
 * became a directory since it was listed (EISDIR). */
static int remove_at(int parent, const char *name, unsigned char type, dev_t dev, const char *top,
                     struct ctr_err *err)
{
    if (type != DT_DIR && type != DT_UNKNOWN) {
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
            return 0;
        if (errno != EISDIR)
            return ctr_fail(err, errno, "unlink `%s' under `%s'", name, top);
    }
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return ctr_fail(err, errno, "stat `%s' under `%s'", name, top);
    }
    if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != dev)
            return ctr_fail(err, EBUSY, "remove `%s' under `%s': a mount is still there", name, top);
        return remove_dir(parent, name, dev, top, err);
    }
    if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "unlink `%s' under `%s'", name, top);
    return 0;
}

int ctr_remove_tree(const char *path, struct ctr_err *err)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return ctr_fail(err, errno, "stat `%s'", path);
    }
    if (S_ISDIR(st.st_mode))
        return remove_dir(AT_FDCWD, path, st.st_dev, path, err);
    if (unlinkat(AT_FDCWD, path, 0) < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "unlink `%s' under `%s'", path, path);
    return 0;
}

int ctr_openat_in_root(int rootfd, const char *path, int flags, int mode)
{
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? (unsigned long long)mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd;
    do
        fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    return (int)fd;
}

int ctr_write_pid_file(const char *path, pid_t pid, struct ctr_err *err)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", (int)pid);
    return ctr_write_file_atomic(path, buf, (size_t)n, 0644, 0, err);
}
