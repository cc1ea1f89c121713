/* The content store (see store/content.h for the layout and the crash-consistency argument). */
#include "store/content.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/files.h"
#include "base/cleanup.h"

#define IO_BUF (256 * 1024)

int ctr_digest_check(const char *digest, struct ctr_err *err)
{
    if (digest == NULL)
        return ctr_fail(err, EINVAL, "invalid digest: none given");
    size_t n = strlen(digest);
    int ok = n == 7 + 64 && strncmp(digest, "sha256:", 7) == 0;
    for (size_t i = 7; ok && i < n; i++) {
        char c = digest[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (!ok)
        return ctr_fail(err, EINVAL, "invalid digest `%.80s': want sha256: and 64 lowercase hex "
                                     "digits", digest);
    return 0;
}

int ctr_content_blob_path(const char *content, const char *digest, char *out, size_t outlen,
                          struct ctr_err *err)
{
    if (ctr_digest_check(digest, err) < 0)
        return -1;
    if (snprintf(out, outlen, "%s/blobs/sha256/%s", content, digest + 7) >= (int)outlen)
        return ctr_fail(err, ENAMETOOLONG, "blob path under `%s'", content);
    return 0;
}

static int check_ref(const char *ref, struct ctr_err *err)
{
    size_t n = strlen(ref);
    int ok = n > 0 && n <= 200 && ref[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = ref[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (!ok)
        return ctr_fail(err, EINVAL, "invalid ingest ref `%.80s'", ref);
    return 0;
}

static int ensure_dirs(const char *content, struct ctr_err *err)
{
    char p[PATH_MAX];
    /* blobs are readable by path for whoever may traverse ROOT (which is 0700 itself);
     * partial writes are private */
    snprintf(p, sizeof p, "%s/blobs/sha256", content);
    if (ctr_mkdir_p(p, 0711, err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/ingest", content);
    return ctr_mkdir_p(p, 0700, err);
}

/* Hash what a previous writer left in the ingest (its bytes are what the hash covers); a
 * file longer than max (>= 0) cannot be a prefix of the blob and is emptied. */
static int ingest_rehash(struct ctr_ingest *ing, int64_t max, struct ctr_err *err)
{
    struct stat st;
    if (fstat(ing->fd, &st) < 0)
        return ctr_fail(err, errno, "fstat `%s'", ing->path);
    if (max >= 0 && st.st_size > max) {
        if (ftruncate(ing->fd, 0) < 0)
            return ctr_fail(err, errno, "truncate `%s'", ing->path);
        return 0;
    }
    cleanup_free char *buf = malloc(IO_BUF);
    if (buf == NULL)
        return ctr_fail(err, ENOMEM, "resume `%s'", ing->path);
    uint64_t off = 0;
    for (;;) {
        ssize_t n = RETRY(pread(ing->fd, buf, IO_BUF, (off_t)off));
        if (n < 0)
            return ctr_fail(err, errno, "read `%s'", ing->path);
        if (n == 0)
            break;
        if (ctr_sha256_update(&ing->md, buf, (size_t)n, err) < 0)
            return ctr_fail_prefix(err, "resume `%s'", ing->path);
        off += (uint64_t)n;
    }
    ing->size = off;
    if (lseek(ing->fd, (off_t)off, SEEK_SET) < 0)
        return ctr_fail(err, errno, "seek `%s'", ing->path);
    return 0;
}

static int ingest_open(struct ctr_ingest *ing, const char *content, const char *ref, int resume,
                       int64_t max, struct ctr_err *err)
{
    memset(ing, 0, sizeof *ing);
    ing->fd = -1;
    if (check_ref(ref, err) < 0)
        return -1;
    if (snprintf(ing->content, sizeof ing->content, "%s", content) >= (int)sizeof ing->content ||
        snprintf(ing->path, sizeof ing->path, "%s/ingest/%s", content, ref) >= (int)sizeof ing->path)
        return ctr_fail(err, ENAMETOOLONG, "ingest `%s' under `%s'", ref, content);
    if (ensure_dirs(content, err) < 0)
        return -1;
    /* The lock lives on the inode.  A writer that held it may have renamed that inode into
     * blobs/ (commit) or unlinked it (abort) before releasing it; so after taking the lock,
     * check that the path still names our inode, or we would truncate a committed blob. */
    for (int tries = 0;; tries++) {
        cleanup_close int fd = RETRY(open(ing->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                                          0600));
        if (fd < 0)
            return ctr_fail(err, errno, "open `%s'", ing->path);
        if (RETRY(flock(fd, LOCK_EX)) < 0)
            return ctr_fail(err, errno, "lock `%s'", ing->path);
        struct stat a, b;
        if (fstat(fd, &a) < 0)
            return ctr_fail(err, errno, "fstat `%s'", ing->path);
        int gone = 0;
        if (lstat(ing->path, &b) < 0) {
            if (errno != ENOENT)
                return ctr_fail(err, errno, "stat `%s'", ing->path);
            gone = 1;
        }
        if (gone || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            if (tries > 100)
                return ctr_fail(err, EAGAIN, "lock `%s': keeps changing", ing->path);
            continue;
        }
        if (!S_ISREG(a.st_mode))
            return ctr_fail(err, EINVAL, "ingest `%s': not a regular file", ing->path);
        if (!resume && ftruncate(fd, 0) < 0)
            return ctr_fail(err, errno, "truncate `%s'", ing->path);
        ing->fd = steal_fd(&fd);
        break;
    }
    if (ctr_sha256_init(&ing->md, err) < 0) {
        ctr_fail_prefix(err, "ingest `%s'", ing->path);
        ctr_ingest_abort(ing);
        return -1;
    }
    if (resume && ingest_rehash(ing, max, err) < 0) {
        ctr_ingest_abort(ing);
        return -1;
    }
    return 0;
}

int ctr_ingest_open(struct ctr_ingest *ing, const char *content, const char *ref,
                    struct ctr_err *err)
{
    return ingest_open(ing, content, ref, 0, -1, err);
}

int ctr_ingest_resume(struct ctr_ingest *ing, const char *content, const char *ref, int64_t max,
                      struct ctr_err *err)
{
    return ingest_open(ing, content, ref, 1, max, err);
}

int ctr_ingest_write(struct ctr_ingest *ing, const void *buf, size_t len, struct ctr_err *err)
{
    if (ing->fd < 0)
        return ctr_fail(err, EBADF, "write to a closed ingest");
    if (ctr_write_all(ing->fd, buf, len) < 0)
        return ctr_fail(err, errno, "write `%s'", ing->path);
    if (ctr_sha256_update(&ing->md, buf, len, err) < 0)
        return ctr_fail_prefix(err, "write `%s'", ing->path);
    ing->size += len;
    return 0;
}

void ctr_ingest_abort(struct ctr_ingest *ing)
{
    if (ing->fd >= 0) {
        /* unlink while the lock is still held (see ctr_ingest_open) */
        unlink(ing->path);
        close(ing->fd);
        ing->fd = -1;
    }
    ctr_sha256_free(&ing->md);
}

void ctr_ingest_release(struct ctr_ingest *ing)
{
    if (ing->fd >= 0) {
        close(ing->fd);
        ing->fd = -1;
    }
    ctr_sha256_free(&ing->md);
}

int ctr_ingest_commit(struct ctr_ingest *ing, const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], uint64_t *size_out, struct ctr_err *err)
{
    if (ing->fd < 0 || ing->md.md == NULL)
        return ctr_fail(err, EBADF, "commit of a closed ingest");
    char got[CTR_DIGEST_LEN];
    ctr_sha256_final(&ing->md, got);
    int r = -1;
    if (expected_size >= 0 && (uint64_t)expected_size != ing->size) {
        ctr_fail(err, 0, "size mismatch for %s: expected %lld bytes, got %llu",
                 expected ? expected : got, (long long)expected_size,
                 (unsigned long long)ing->size);
        goto out;
    }
    if (expected && strcmp(expected, got) != 0) {
        ctr_fail(err, 0, "digest mismatch: expected %s, got %s", expected, got);
        goto out;
    }
    if (fchmod(ing->fd, 0644) < 0) {
        ctr_fail(err, errno, "chmod `%s'", ing->path);
        goto out;
    }
    if (fsync(ing->fd) < 0) {
        ctr_fail(err, errno, "fsync `%s'", ing->path);
        goto out;
    }
    ctr_fault("content.ingest-written");
    char blob[PATH_MAX];
    if (ctr_content_blob_path(ing->content, got, blob, sizeof blob, err) < 0)
        goto out;
    if (syscall(SYS_renameat2, AT_FDCWD, ing->path, AT_FDCWD, blob, 1 /* RENAME_NOREPLACE */) < 0) {
        if (errno != EEXIST) {
            ctr_fail(err, errno, "rename `%s' to `%s'", ing->path, blob);
            goto out;
        }
        /* already there: the existing blob is kept, ours is dropped below */
    } else {
        close(ing->fd);
        ing->fd = -1;
        if (ctr_fsync_parent(blob, err) < 0)
            goto out;
    }
    memcpy(digest_out, got, CTR_DIGEST_LEN);
    if (size_out)
        *size_out = ing->size;
    r = 0;
out:
    ctr_ingest_abort(ing);
    return r;
}

int ctr_content_ingest_fd(const char *content, int fd, const char *ref, const char *expected,
                          int64_t expected_size, char digest_out[CTR_DIGEST_LEN],
                          uint64_t *size_out, struct ctr_err *err)
{
    if (expected && ctr_digest_check(expected, err) < 0)
        return -1;
    struct ctr_ingest ing;
    if (ctr_ingest_open(&ing, content, ref, err) < 0)
        return -1;
    cleanup_free char *buf = malloc(IO_BUF);
    if (buf == NULL) {
        ctr_ingest_abort(&ing);
        return ctr_fail(err, ENOMEM, "ingest `%s'", ref);
    }
    for (;;) {
        ssize_t n = RETRY(read(fd, buf, IO_BUF));
        if (n < 0) {
            int e = errno;
            ctr_ingest_abort(&ing);
            return ctr_fail(err, e, "read source of `%s'", ref);
        }
        if (n == 0)
            break;
        if (ctr_ingest_write(&ing, buf, (size_t)n, err) < 0) {
            ctr_ingest_abort(&ing);
            return -1;
        }
    }
    return ctr_ingest_commit(&ing, expected, expected_size, digest_out, size_out, err);
}

int ctr_content_write(const char *content, const void *data, size_t len, const char *ref,
                      const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], struct ctr_err *err)
{
    if (expected && ctr_digest_check(expected, err) < 0)
        return -1;
    struct ctr_ingest ing;
    if (ctr_ingest_open(&ing, content, ref, err) < 0)
        return -1;
    if (ctr_ingest_write(&ing, data, len, err) < 0) {
        ctr_ingest_abort(&ing);
        return -1;
    }
    return ctr_ingest_commit(&ing, expected, expected_size, digest_out, NULL, err);
}

int ctr_content_verify(const char *content, const char *digest, uint64_t *size_out,
                       struct ctr_err *err)
{
    char path[PATH_MAX];
    if (ctr_content_blob_path(content, digest, path, sizeof path, err) < 0)
        return -1;
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    struct ctr_sha256 md;
    if (ctr_sha256_init(&md, err) < 0)
        return ctr_fail_prefix(err, "verify `%s'", path);
    cleanup_free char *buf = malloc(IO_BUF);
    uint64_t size = 0;
    int r = 0;
    if (buf == NULL)
        r = ctr_fail(err, ENOMEM, "verify `%s'", path);
    while (r == 0) {
        ssize_t n = RETRY(read(fd, buf, IO_BUF));
        if (n < 0)
            r = ctr_fail(err, errno, "read `%s'", path);
        else if (n == 0)
            break;
        else if (ctr_sha256_update(&md, buf, (size_t)n, err) < 0)
            r = ctr_fail_prefix(err, "verify `%s'", path);
        else
            size += (uint64_t)n;
    }
    if (r == 0) {
        char got[CTR_DIGEST_LEN];
        ctr_sha256_final(&md, got);
        if (strcmp(got, digest) != 0)
            r = ctr_fail(err, 0, "digest mismatch: expected %s, got %s", digest, got);
        else if (size_out)
            *size_out = size;
    }
    ctr_sha256_free(&md);
    return r;
}

int ctr_content_sweep(const char *content, double max_age, int *removed, struct ctr_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/ingest", content) >= (int)sizeof dir)
        return ctr_fail(err, ENAMETOOLONG, "ingest under `%s'", content);
    *removed = 0;
    cleanup_close int dfd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0;
        return ctr_fail(err, errno, "open `%s'", dir);
    }
    int dup_fd = dup(dfd);
    if (dup_fd < 0)
        return ctr_fail(err, errno, "dup `%s'", dir);
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
        close(dup_fd);
        return ctr_fail(err, errno, "opendir `%s'", dir);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        cleanup_close int fd = RETRY(openat(dfd, de->d_name,
                                            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (fd < 0)
            continue;
        struct stat a, b;
        if (fstat(fd, &a) < 0 || !S_ISREG(a.st_mode))
            continue;
        if ((double)(now.tv_sec - a.st_mtim.tv_sec) < max_age)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
            continue; /* a live writer */
        if (fstatat(dfd, de->d_name, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_ino != b.st_ino ||
            a.st_dev != b.st_dev)
            continue;
        if (unlinkat(dfd, de->d_name, 0) == 0)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

int ctr_read_head(const char *path, void *out, size_t n, size_t *got, struct ctr_err *err)
{
    cleanup_close int fd = RETRY(open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    ssize_t r = ctr_read_full(fd, out, n);
    if (r < 0)
        return ctr_fail(err, errno, "read `%s'", path);
    *got = (size_t)r;
    return 0;
}
