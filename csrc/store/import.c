/* Streaming reader of image archives (see store/import.h). */
#include "store/import.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/lazylib.h"

#define IO_BUF (256 * 1024)

struct ctr_import {
    struct archive *a;
    int fd;           /* -1 for none; 0 (stdin) is not ours to close */
    int own_fd;
    int consumed;     /* the current entry's data was read */
    int have_entry;
    char source[PATH_MAX];
    char name[PATH_MAX];
    char link[PATH_MAX];
};

static int archive_fail(struct ctr_import *r, struct ctr_err *err, const char *what)
{
    int code = archive_errno(r->a);
    const char *msg = archive_error_string(r->a);
    return ctr_fail(err, 0, "%s `%s': %s%s%s", what, r->source, msg ? msg : "libarchive error",
                    code > 0 ? ": " : "", code > 0 ? strerror(code) : "");
}

int ctr_import_open(const char *path, struct ctr_import **out, struct ctr_err *err)
{
    cleanup_free struct ctr_import *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ctr_fail(err, ENOMEM, "open archive `%s'", path);
    snprintf(r->source, sizeof r->source, "%s", strcmp(path, "-") == 0 ? "<stdin>" : path);
    if (strcmp(path, "-") == 0) {
        r->fd = 0;
    } else {
        r->fd = RETRY(open(path, O_RDONLY | O_CLOEXEC));
        if (r->fd < 0)
            return ctr_fail(err, errno, "open `%s'", path);
        r->own_fd = 1;
    }
    r->a = archive_read_new();
    if (r->a == NULL) {
        if (r->own_fd)
            close(r->fd);
        return ctr_fail(err, ENOMEM, "open archive `%s'", path);
    }
    archive_read_support_filter_all(r->a);
    archive_read_support_format_tar(r->a);
    archive_read_support_format_gnutar(r->a);
    if (archive_read_open_fd(r->a, r->fd, IO_BUF) != ARCHIVE_OK) {
        int rr = archive_fail(r, err, "open archive");
        archive_read_free(r->a);
        if (r->own_fd)
            close(r->fd);
        return rr;
    }
    *out = steal_pointer(&r);
    return 0;
}

/* Normalise an untrusted entry name into out: components "" and "." dropped; absolute names
 * and `..` refused. */
static int normalise(const char *name, char *out, size_t outlen, struct ctr_err *err)
{
    if (name == NULL || name[0] == '/')
        return ctr_fail(err, EINVAL, "archive entry `%.200s': absolute name refused",
                        name ? name : "(null)");
    size_t o = 0;
    const char *p = name;
    while (*p) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return ctr_fail(err, EINVAL, "archive entry `%.200s': `..' refused", name);
        if (!(n == 0 || (n == 1 && p[0] == '.'))) {
            if (o + n + 2 > outlen)
                return ctr_fail(err, ENAMETOOLONG, "archive entry `%.200s'", name);
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[o] = '\0';
    return 0;
}

int ctr_import_next(struct ctr_import *r, struct ctr_import_entry *e, struct ctr_err *err)
{
    struct archive_entry *ae;
    r->have_entry = 0;
    int rc = archive_read_next_header(r->a, &ae);
    if (rc == ARCHIVE_EOF)
        return 0;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
        return archive_fail(r, err, "read archive");
    if (normalise(archive_entry_pathname(ae), r->name, sizeof r->name, err) < 0)
        return ctr_fail_prefix(err, "archive `%s'", r->source);
    e->name = r->name;
    e->size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
    e->link = NULL;
    const char *hl = archive_entry_hardlink(ae);
    if (hl) {
        if (normalise(hl, r->link, sizeof r->link, err) < 0)
            return ctr_fail_prefix(err, "archive `%s': hardlink `%s'", r->source, r->name);
        e->type = "hardlink";
        e->link = r->link;
    } else {
        switch (archive_entry_filetype(ae)) {
        case AE_IFREG: e->type = "file"; break;
        case AE_IFDIR: e->type = "directory"; break;
        case AE_IFLNK:
            e->type = "symlink";
            snprintf(r->link, sizeof r->link, "%s",
                     archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "");
            e->link = r->link;
            break;
        default: e->type = "other"; break;
        }
    }
    r->consumed = 0;
    r->have_entry = 1;
    return 1;
}

static int check_entry(struct ctr_import *r, struct ctr_err *err)
{
    if (!r->have_entry)
        return ctr_fail(err, EINVAL, "archive `%s': no current entry", r->source);
    if (r->consumed)
        return ctr_fail(err, EINVAL, "archive `%s': entry `%s' already read", r->source, r->name);
    r->consumed = 1;
    return 0;
}

int ctr_import_ingest(struct ctr_import *r, const char *content, const char *ref,
                      const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], uint64_t *size_out, struct ctr_err *err)
{
    if (check_entry(r, err) < 0)
        return -1;
    if (expected) {
        if (ctr_digest_check(expected, err) < 0)
            return -1;
        char blob[PATH_MAX];
        if (ctr_content_blob_path(content, expected, blob, sizeof blob, err) < 0)
            return -1;
        struct stat st;
        if (stat(blob, &st) == 0 && S_ISREG(st.st_mode) &&
            (expected_size < 0 || (int64_t)st.st_size == expected_size)) {
            /* content-addressed and verified when it was committed: not rewritten */
            if (archive_read_data_skip(r->a) != ARCHIVE_OK)
                return archive_fail(r, err, "read archive");
            memcpy(digest_out, expected, CTR_DIGEST_LEN);
            *size_out = (uint64_t)st.st_size;
            return 0;
        }
    }
    struct ctr_ingest ing;
    if (ctr_ingest_open(&ing, content, ref, err) < 0)
        return -1;
    cleanup_free char *buf = malloc(IO_BUF);
    if (buf == NULL) {
        ctr_ingest_abort(&ing);
        return ctr_fail(err, ENOMEM, "ingest `%s'", r->name);
    }
    for (;;) {
        la_ssize_t n = archive_read_data(r->a, buf, IO_BUF);
        if (n < 0) {
            ctr_ingest_abort(&ing);
            archive_fail(r, err, "read archive");
            return ctr_fail_prefix(err, "entry `%s'", r->name);
        }
        if (n == 0)
            break;
        if (ctr_ingest_write(&ing, buf, (size_t)n, err) < 0) {
            ctr_ingest_abort(&ing);
            return -1;
        }
    }
    if (ctr_ingest_commit(&ing, expected, expected_size, digest_out, size_out, err) < 0)
        return ctr_fail_prefix(err, "archive entry `%s'", r->name);
    return 0;
}

int ctr_import_read(struct ctr_import *r, size_t cap, char **out, size_t *len,
                    struct ctr_err *err)
{
    if (check_entry(r, err) < 0)
        return -1;
    size_t size = 4096, used = 0;
    cleanup_free char *buf = malloc(size + 1);
    if (buf == NULL)
        return ctr_fail(err, ENOMEM, "read entry `%s'", r->name);
    for (;;) {
        if (used == size) {
            if (size > cap)
                return ctr_fail(err, EFBIG, "archive entry `%s': over the limit of %zu bytes",
                                r->name, cap);
            size_t nsize = size * 2;
            if (nsize > cap + 1)
                nsize = cap + 1;
            char *nbuf = realloc(buf, nsize + 1);
            if (nbuf == NULL)
                return ctr_fail(err, ENOMEM, "read entry `%s'", r->name);
            buf = nbuf;
            size = nsize;
        }
        la_ssize_t n = archive_read_data(r->a, buf + used, size - used);
        if (n < 0) {
            archive_fail(r, err, "read archive");
            return ctr_fail_prefix(err, "entry `%s'", r->name);
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > cap)
            return ctr_fail(err, EFBIG, "archive entry `%s': over the limit of %zu bytes",
                            r->name, cap);
    }
    buf[used] = '\0';
    *len = used;
    *out = steal_pointer(&buf);
    return 0;
}

void ctr_import_close(struct ctr_import *r)
{
    if (r == NULL)
        return;
    if (r->a)
        archive_read_free(r->a);
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    free(r);
}
