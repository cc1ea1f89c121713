#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include "fsutil.h"
#include "util.h"

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

/* name "" with AT_EMPTY_PATH: the directory dfd itself */
static int shift_one(int dfd, const char *name, const char *path, const struct stat *st,
                     uint32_t uo, uint32_t go, struct ctr_err *err)
{
    uint64_t u = (uint64_t)st->st_uid + uo, g = (uint64_t)st->st_gid + go;
    if (u >= UINT32_MAX || g >= UINT32_MAX)
        return ctr_fail(err, EOVERFLOW, "shift the owner of `%s' (%u:%u)", path,
                        (unsigned)st->st_uid, (unsigned)st->st_gid);
    int fl = AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH);
    if (fchownat(dfd, name, (uid_t)u, (gid_t)g, fl) < 0)
        return ctr_fail(err, errno, "lchown `%s'", path);
    /* chown clears setuid/setgid on regular files: put them back */
    if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) &&
        fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
        return ctr_fail(err, errno, "chmod `%s'", path);
    return 0;
}

/* Shift one directory's entries, then recurse into its subdirectories on the same device.
 * Everything is fd-relative with AT_SYMLINK_NOFOLLOW: a symlink is chowned itself, never its
 * target. */
static int shift_dir(int dfd, const char *path, dev_t dev, uint32_t uo, uint32_t go,
                     int depth, struct ctr_err *err)
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
        if (S_ISDIR(st.st_mode) && st.st_dev != dev)
            continue;
        r = shift_one(dfd, e->d_name, sub, &st, uo, go, err);
        if (r == 0 && S_ISDIR(st.st_mode)) {
            int cfd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                r = ctr_fail(err, errno, "open `%s'", sub);
                break;
            }
            r = shift_dir(cfd, sub, dev, uo, go, depth + 1, err);
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
    if (shift_one(fd, "", dir, &st, uid_off, gid_off, err) < 0)
        return -1;
    return shift_dir(fd, dir, st.st_dev, uid_off, gid_off, 0, err);
}
