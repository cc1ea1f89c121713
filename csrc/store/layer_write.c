/* Write a directory tree as a reproducible tar layer (see store/layer.h).
 *
 * libarchive writes the tar (PAX: ustar headers, PAX extended headers only where ustar cannot
 * hold a value) into a callback that hashes the uncompressed stream (the diff_id) and hands it
 * to a second libarchive writer, format "raw" with the gzip or zstd filter, whose callback
 * hashes and writes the file (the digest).  Without compression the first writer writes the
 * file directly and digest == diff_id.
 */
#include "store/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"
#include "base/lazylib.h"

#define IO_BUF (1 << 20)

struct wnode {
    char *path;
    struct stat st;
};

struct wlist {
    struct wnode *v;
    size_t n, cap;
};

static int walk(int dfd, const char *rel, struct wlist *l, struct ctr_err *err)
{
    int fd = RETRY(fcntl(dfd, F_DUPFD_CLOEXEC, 0));
    if (fd < 0)
        return ctr_fail(err, errno, "dup `%s'", rel);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return ctr_fail(err, errno, "fdopendir `%s'", rel);
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            (int)sizeof path) {
            r = ctr_fail(err, ENAMETOOLONG, "`%s/%s'", rel, de->d_name);
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            r = ctr_fail(err, errno, "stat `%s'", path);
            break;
        }
        if (S_ISSOCK(st.st_mode))
            continue;
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 1024;
            struct wnode *nv = realloc(l->v, ncap * sizeof *nv);
            if (nv == NULL) {
                r = ctr_fail(err, ENOMEM, "walk `%s'", path);
                break;
            }
            l->v = nv;
            l->cap = ncap;
        }
        if ((l->v[l->n].path = strdup(path)) == NULL) {
            r = ctr_fail(err, ENOMEM, "walk `%s'", path);
            break;
        }
        l->v[l->n++].st = st;
        if (S_ISDIR(st.st_mode)) {
            cleanup_close int cfd = RETRY(openat(dirfd(d), de->d_name,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (cfd < 0)
                r = ctr_fail(err, errno, "open `%s'", path);
            else
                r = walk(cfd, path, l, err);
        }
    }
    if (r == 0 && errno != 0)
        r = ctr_fail(err, errno, "readdir `%s'", rel);
    closedir(d);
    return r;
}

static int cmp_node(const void *a, const void *b)
{
    return strcmp(((const struct wnode *)a)->path, ((const struct wnode *)b)->path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct wout {
    int fd;
    struct ctr_sha256 file_md; /* digest of the bytes written to the file */
    struct ctr_sha256 tar_md;  /* diff_id: the uncompressed tar */
    uint64_t file_size, tar_size;
    struct archive *outer;    /* compressor, or NULL */
    int werrno;
};

/* A hash that fails fails the write it was fed from, as the write's own error. */
static int hash(struct archive *a, struct wout *w, struct ctr_sha256 *h, const void *buf, size_t len)
{
    struct ctr_err e;
    if (ctr_sha256_update(h, buf, len, &e) == 0)
        return 0;
    w->werrno = e.code;
    archive_set_error(a, e.code, "%s", e.msg);
    return -1;
}

static la_ssize_t file_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct wout *w = ctx;
    if (ctr_write_all(w->fd, buf, len) < 0) {
        w->werrno = errno;
        archive_set_error(a, errno, "write");
        return -1;
    }
    if (hash(a, w, &w->file_md, buf, len) < 0)
        return -1;
    w->file_size += len;
    return (la_ssize_t)len;
}

static la_ssize_t tar_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct wout *w = ctx;
    if (hash(a, w, &w->tar_md, buf, len) < 0)
        return -1;
    w->tar_size += len;
    if (w->outer == NULL) {
        if (ctr_write_all(w->fd, buf, len) < 0) {
            w->werrno = errno;
            archive_set_error(a, errno, "write");
            return -1;
        }
        if (hash(a, w, &w->file_md, buf, len) < 0)
            return -1;
        w->file_size += len;
        return (la_ssize_t)len;
    }
    if (archive_write_data(w->outer, buf, len) < 0) {
        archive_set_error(a, archive_errno(w->outer), "%s", archive_error_string(w->outer));
        return -1;
    }
    return (la_ssize_t)len;
}

static int xattr_allowed(const char *k)
{
    return strncmp(k, "user.", 5) == 0 || strcmp(k, "security.capability") == 0 ||
           strcmp(k, "system.posix_acl_access") == 0 || strcmp(k, "system.posix_acl_default") == 0;
}

/* Add the xattrs of fd to the entry, names sorted (a stable archive). */
static int add_xattrs(int fd, struct archive_entry *e, const char *path, struct ctr_err *err)
{
    char names[65536];
    ssize_t n = flistxattr(fd, names, sizeof names);
    if (n < 0) {
        if (errno == ENOTSUP)
            return 0;
        return ctr_fail(err, errno, "listxattr `%s'", path);
    }
    char *list[1024];
    size_t cnt = 0;
    for (char *k = names; k < names + n && cnt < ARRAY_SIZE(list); k += strlen(k) + 1)
        if (xattr_allowed(k))
            list[cnt++] = k;
    qsort(list, cnt, sizeof list[0], cmp_str);
    for (size_t i = 0; i < cnt; i++) {
        char val[65536];
        ssize_t vn = fgetxattr(fd, list[i], val, sizeof val);
        if (vn < 0)
            return ctr_fail(err, errno, "getxattr `%s' of `%s'", list[i], path);
        archive_entry_xattr_add_entry(e, list[i], val, (size_t)vn);
    }
    return 0;
}

static int write_node(struct archive *a, int rootfd, const struct wnode *node,
                      const struct ctr_layer_write_opts *o, struct ctr_strmap *links,
                      struct archive_entry *e, char *buf, struct ctr_err *err)
{
    const struct stat *st = &node->st;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, node->path);
    archive_entry_set_mode(e, st->st_mode);
    archive_entry_set_uid(e, o->uid >= 0 ? o->uid : (la_int64_t)st->st_uid);
    archive_entry_set_gid(e, o->gid >= 0 ? o->gid : (la_int64_t)st->st_gid);
    time_t mt = st->st_mtim.tv_sec;
    if (o->clamp_mtime && mt > o->mtime)
        mt = (time_t)o->mtime;
    archive_entry_set_mtime(e, mt, 0);

    if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
        char key[64];
        snprintf(key, sizeof key, "%llu:%llu", (unsigned long long)st->st_dev,
                 (unsigned long long)st->st_ino);
        const char *first;
        if (ctr_strmap_get(links, key, &first)) {
            archive_entry_set_hardlink(e, first);
            archive_entry_set_size(e, 0);
            if (archive_write_header(a, e) < ARCHIVE_WARN)
                return ctr_fail(err, archive_errno(a), "write `%s': %s", node->path,
                                archive_error_string(a));
            return 0;
        }
        if (ctr_strmap_put(links, key, node->path) < 0)
            return ctr_fail(err, errno, "`%s'", node->path);
    }

    cleanup_close int fd = -1;
    if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
        fd = ctr_openat_in_root(rootfd, node->path,
                                O_RDONLY | O_NOFOLLOW | (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0), 0);
        if (fd < 0)
            return ctr_fail(err, errno, "open `%s'", node->path);
        if (add_xattrs(fd, e, node->path, err) < 0)
            return -1;
    }
    if (S_ISREG(st->st_mode)) {
        archive_entry_set_size(e, st->st_size);
    } else if (S_ISLNK(st->st_mode)) {
        char target[PATH_MAX + 1];
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", node->path);
        char *slash = strrchr(parent, '/');
        const char *base = slash ? slash + 1 : parent;
        if (slash)
            *slash = '\0';
        cleanup_close int pfd = slash ? ctr_openat_in_root(rootfd, parent, O_PATH | O_DIRECTORY, 0)
                                      : RETRY(fcntl(rootfd, F_DUPFD_CLOEXEC, 0));
        if (pfd < 0)
            return ctr_fail(err, errno, "open parent of `%s'", node->path);
        ssize_t n = readlinkat(pfd, base, target, PATH_MAX);
        if (n < 0)
            return ctr_fail(err, errno, "readlink `%s'", node->path);
        target[n] = '\0';
        archive_entry_set_symlink(e, target);
        archive_entry_set_size(e, 0);
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        archive_entry_set_rdevmajor(e, major(st->st_rdev));
        archive_entry_set_rdevminor(e, minor(st->st_rdev));
        archive_entry_set_size(e, 0);
    } else {
        archive_entry_set_size(e, 0);
    }
    if (archive_write_header(a, e) < ARCHIVE_WARN)
        return ctr_fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "write `%s': %s",
                        node->path, archive_error_string(a));
    if (S_ISREG(st->st_mode)) {
        off_t left = st->st_size;
        while (left > 0) {
            ssize_t n = RETRY(read(fd, buf, left < IO_BUF ? (size_t)left : IO_BUF));
            if (n < 0)
                return ctr_fail(err, errno, "read `%s'", node->path);
            if (n == 0)
                return ctr_fail(err, EIO, "read `%s': the file shrank while being written",
                                node->path);
            if (archive_write_data(a, buf, (size_t)n) < 0)
                return ctr_fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "write `%s': %s",
                                node->path, archive_error_string(a));
            left -= n;
        }
    }
    return 0;
}

static struct archive *new_compressor(enum ctr_compression c, struct wout *w, struct ctr_err *err)
{
    struct archive *o = archive_write_new();
    if (o == NULL) {
        ctr_fail(err, ENOMEM, "archive_write_new");
        return NULL;
    }
    int r = c == CTR_COMPRESS_GZIP ? archive_write_add_filter_gzip(o) : archive_write_add_filter_zstd(o);
    if (r == ARCHIVE_OK && c == CTR_COMPRESS_GZIP)
        r = archive_write_set_filter_option(o, "gzip", "timestamp", NULL); /* no mtime: reproducible */
    if (r == ARCHIVE_OK)
        r = archive_write_set_format_raw(o);
    if (r == ARCHIVE_OK)
        r = archive_write_set_bytes_per_block(o, IO_BUF);
    if (r == ARCHIVE_OK)
        r = archive_write_set_bytes_in_last_block(o, 1);
    if (r == ARCHIVE_OK)
        r = archive_write_open2(o, w, NULL, file_write_cb, NULL, NULL);
    struct archive_entry *e = archive_entry_new();
    if (r == ARCHIVE_OK && e) {
        archive_entry_set_pathname(e, "layer.tar");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        r = archive_write_header(o, e);
    }
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        ctr_fail(err, archive_errno(o) > 0 ? archive_errno(o) : 0, "compressor: %s",
                 archive_error_string(o));
        archive_write_free(o);
        return NULL;
    }
    return o;
}

static int write_all_nodes(int rootfd, struct wlist *l, const struct ctr_layer_write_opts *o,
                           struct wout *w, struct ctr_layer_write_result *res, struct ctr_err *err)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    cleanup_free char *buf = malloc(IO_BUF);
    struct ctr_strmap links = { 0 };
    int r = 0;
    if (a == NULL || e == NULL || buf == NULL) {
        r = ctr_fail(err, ENOMEM, "layer writer");
        goto out;
    }
    /* xattrs as SCHILY.xattr.* only (what Go's archive/tar and GNU tar read), not twice */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 65536) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, w, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
        r = ctr_fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "layer writer: %s",
                     archive_error_string(a));
        goto out;
    }
    for (size_t i = 0; i < l->n && r == 0; i++) {
        r = write_node(a, rootfd, &l->v[i], o, &links, e, buf, err);
        res->entries += r == 0;
    }
    if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
        r = ctr_fail(err, w->werrno ? w->werrno : archive_errno(a) > 0 ? archive_errno(a) : 0,
                     "close tar: %s", archive_error_string(a));
    if (r == 0 && w->outer && archive_write_close(w->outer) != ARCHIVE_OK)
        r = ctr_fail(err, w->werrno, "close compressor: %s", archive_error_string(w->outer));
out:
    ctr_strmap_free(&links);
    if (e)
        archive_entry_free(e);
    if (a)
        archive_write_free(a);
    return r;
}

int ctr_layer_write(const char *src_dir, const char *out_path, const struct ctr_layer_write_opts *o,
                    struct ctr_layer_write_result *res, struct ctr_err *err)
{
    memset(res, 0, sizeof *res);
    cleanup_close int rootfd = RETRY(open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return ctr_fail(err, errno, "open `%s'", src_dir);
    struct wlist l = { 0 };
    int r = walk(rootfd, "", &l, err);
    if (r == 0)
        qsort(l.v, l.n, sizeof l.v[0], cmp_node);

    char tmp[PATH_MAX];
    int fd = -1;
    if (r == 0 && snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out_path) >= (int)sizeof tmp)
        r = ctr_fail(err, ENAMETOOLONG, "`%s'", out_path);
    if (r == 0 && (fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        r = ctr_fail(err, errno, "create `%s'", tmp);
    struct wout w = { .fd = fd };
    if (r == 0 && (ctr_sha256_init(&w.file_md, err) < 0 || ctr_sha256_init(&w.tar_md, err) < 0))
        r = -1;
    if (r == 0 && o->compression != CTR_COMPRESS_NONE &&
        (w.outer = new_compressor(o->compression, &w, err)) == NULL)
        r = -1;
    if (r == 0)
        r = write_all_nodes(rootfd, &l, o, &w, res, err);
    if (w.outer)
        archive_write_free(w.outer);
    if (r == 0 && fchmod(fd, 0644) < 0)
        r = ctr_fail(err, errno, "chmod `%s'", tmp);
    if (r == 0 && fsync(fd) < 0)
        r = ctr_fail(err, errno, "fsync `%s'", tmp);
    if (r == 0 && rename(tmp, out_path) < 0)
        r = ctr_fail(err, errno, "rename `%s' to `%s'", tmp, out_path);
    if (fd >= 0) {
        close(fd);
        if (r < 0)
            unlink(tmp);
    }
    if (r == 0) {
        ctr_sha256_final(&w.file_md, res->digest);
        ctr_sha256_final(&w.tar_md, res->diff_id);
        res->size = w.file_size;
        res->uncompressed_size = w.tar_size;
    }
    ctr_sha256_free(&w.file_md);
    ctr_sha256_free(&w.tar_md);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].path);
    free(l.v);
    if (r < 0)
        return ctr_fail_prefix(err, "write layer `%s'", out_path);
    return 0;
}
