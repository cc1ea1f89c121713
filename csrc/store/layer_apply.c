/* Apply one image layer into a directory, safely (see store/layer.h for the rules).
 *
 * Two threads, as `tar -xzf` runs with a gzip process beside it: a feeder thread decompresses
 * the blob, hashes the uncompressed stream (the diff_id) and hands it over in blocks; the
 * calling thread reads the tar from those blocks and creates the entries.  Decompression and
 * the write path then run on two cores.  The blocks are a ring of buffers that the feeder
 * inflates into and libarchive reads in place (struct handoff): a pipe between the two would
 * copy every byte twice more, in the kernel, with a syscall each way per block.  A gzip blob is inflated by ISA-L's igzip when libisal
 * can be loaded (lazylib.h; two to three times zlib's speed, which made the feeder the slower
 * of the two), anything else (zstd, plain tar, gzip without libisal) by libarchive's filters.
 * The feeder hashes the stream to its very end (trailing zero blocks included) even after the
 * tar reader has seen the end-of-archive marker, so the digest is the digest of the whole
 * stream.
 *
 * Metadata costs a syscall only where the entry differs from what creating it gave it: a
 * file or directory is created with its final mode when umask takes nothing from it and it
 * has no set-ID bit, and chown is left out when the owner is the process's own (and the
 * parent not set-group-ID); see entry_creation.  One syncfs at the end makes it durable.
 */
#include "store/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"
#include "base/lazylib.h"

#define IO_BUF (1 << 20)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* ===================================================================== string map */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t strmap_slot(const struct ctr_strmap *m, const char *key)
{
    size_t i = (size_t)hash_str(key) & (m->cap - 1);
    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

int ctr_strmap_put(struct ctr_strmap *m, const char *key, const char *val)
{
    if (m->cap == 0 || (m->len + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 256;
        struct ctr_strmap n = { calloc(ncap, sizeof(char *)), calloc(ncap, sizeof(char *)), ncap, 0 };
        if (n.keys == NULL || n.vals == NULL) {
            free(n.keys);
            free(n.vals);
            errno = ENOMEM;
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = strmap_slot(&n, m->keys[i]);
                n.keys[j] = m->keys[i];
                n.vals[j] = m->vals[i];
                n.len++;
            }
        free(m->keys);
        free(m->vals);
        *m = n;
    }
    size_t i = strmap_slot(m, key);
    char *v = val ? strdup(val) : NULL;
    if (val && v == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (m->keys[i] == NULL) {
        if ((m->keys[i] = strdup(key)) == NULL) {
            free(v);
            errno = ENOMEM;
            return -1;
        }
        m->len++;
    } else {
        free(m->vals[i]);
    }
    m->vals[i] = v;
    return 0;
}

int ctr_strmap_get(const struct ctr_strmap *m, const char *key, const char **val)
{
    if (m->cap == 0)
        return 0;
    size_t i = strmap_slot(m, key);
    if (m->keys[i] == NULL)
        return 0;
    if (val)
        *val = m->vals[i];
    return 1;
}

void ctr_strmap_free(struct ctr_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ===================================================================== the handoff */

#define HANDOFF_BUFS 4

/* Blocks of the uncompressed stream, from the feeder to the tar reader: filled are
 * [head, tail) (mod HANDOFF_BUFS); the reader holds bufs[head] from one read callback to the
 * next, so that libarchive may read it in place. */
struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *bufs[HANDOFF_BUFS];
    size_t len[HANDOFF_BUFS];
    unsigned head, tail;
    int held;                 /* the reader holds bufs[head] */
    int eof;                  /* the feeder has handed over all there is */
    int closed;               /* the reader is gone: the feeder keeps its blocks */
};

static int handoff_init(struct handoff *h)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < HANDOFF_BUFS; i++)
        if ((h->bufs[i] = malloc(IO_BUF)) == NULL)
            goto fail;
    if (pthread_mutex_init(&h->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        goto fail;
    }
    return 0;
fail:
    for (int i = 0; i < HANDOFF_BUFS; i++)
        free(h->bufs[i]);
    return -1;
}

static void handoff_destroy(struct handoff *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    for (int i = 0; i < HANDOFF_BUFS; i++)
        free(h->bufs[i]);
}

/* The feeder's next block to fill, waiting for one the reader is done with; NULL once the
 * reader is gone. */
static char *handoff_block(struct handoff *h)
{
    pthread_mutex_lock(&h->mu);
    while (!h->closed && h->tail - h->head == HANDOFF_BUFS)
        pthread_cond_wait(&h->cv, &h->mu);
    char *b = h->closed ? NULL : h->bufs[h->tail % HANDOFF_BUFS];
    pthread_mutex_unlock(&h->mu);
    return b;
}

/* The block handoff_block gave, filled with n bytes. */
static void handoff_put(struct handoff *h, size_t n)
{
    pthread_mutex_lock(&h->mu);
    if (!h->closed) {
        h->len[h->tail % HANDOFF_BUFS] = n;
        h->tail++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
}

static void handoff_set(struct handoff *h, int *flag)
{
    pthread_mutex_lock(&h->mu);
    *flag = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* libarchive's read callback on the reader's side: gives back the block read last, then
 * the next one (0 at the end). */
static la_ssize_t handoff_read(struct archive *a, void *ud, const void **out)
{
    (void)a;
    struct handoff *h = ud;
    pthread_mutex_lock(&h->mu);
    if (h->held) {
        h->head++;
        h->held = 0;
        pthread_cond_broadcast(&h->cv);
    }
    while (h->head == h->tail && !h->eof)
        pthread_cond_wait(&h->cv, &h->mu);
    la_ssize_t n = 0;
    if (h->head != h->tail) {
        *out = h->bufs[h->head % HANDOFF_BUFS];
        n = (la_ssize_t)h->len[h->head % HANDOFF_BUFS];
        h->held = 1;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* ===================================================================== the feeder thread */

struct feeder {
    int blobfd;
    struct ctr_layer_source *src;  /* or NULL */
    char *inbuf;
    size_t pending;           /* bytes at inbuf already read (the peek), not yet consumed */
    struct handoff *h;        /* to the tar reader; eof set by the feeder when done */
    char *scratch;            /* inflated into once the reader is gone */
    const char *blob_path;
    atomic_int stop;          /* set by the reader when it gave up */
    struct ctr_sha256 md;
    uint64_t size;
    int failed;
    struct ctr_err err;
    unsigned char digest[CTR_SHA256_SIZE];
};

/* Up to cap compressed bytes into buf: n, 0 at the end of the layer, -1 with f->err.  Counts
 * what a source gives and, while the source is a file still being written, waits for more
 * instead of taking the end of what is there for the end of the layer. */
static ssize_t input_read(struct feeder *f, char *buf, size_t cap)
{
    struct ctr_layer_source *src = f->src;
    for (;;) {
        ssize_t n = RETRY(read(src ? src->fd : f->blobfd, buf, cap));
        if (n < 0)
            return ctr_fail(&f->err, errno, "read `%s'", f->blob_path);
        if (src == NULL)
            return n;
        if (n > 0) {
            atomic_fetch_add(&src->consumed, (unsigned long long)n);
            return n;
        }
        if (!src->follow)
            return 0;
        if (atomic_load(&src->abandoned) || atomic_load(&f->stop))
            return ctr_fail(&f->err, ECANCELED, "the download of `%s' did not complete",
                            f->blob_path);
        long long fin = atomic_load(&src->final_size);
        if (fin >= 0 && (long long)atomic_load(&src->consumed) >= fin)
            return 0;
        if (fin >= 0)
            return ctr_fail(&f->err, EIO, "`%s' ended at %llu of its %lld bytes", f->blob_path,
                            (unsigned long long)atomic_load(&src->consumed), fin);
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* libarchive's read callback: the peeked bytes first, then the input. */
static la_ssize_t archive_input(struct archive *a, void *ud, const void **out)
{
    struct feeder *f = ud;
    *out = f->inbuf;
    if (f->pending > 0) {
        ssize_t n = (ssize_t)f->pending;
        f->pending = 0;
        return n;
    }
    ssize_t n = input_read(f, f->inbuf, IO_BUF);
    if (n < 0)
        archive_set_error(a, f->err.code, "%s", f->err.msg);
    return n;
}

/* The block to inflate into next: the reader's next one, or the scratch buffer once the
 * reader is gone (the rest is still hashed, to the end). */
static char *out_block(struct feeder *f)
{
    char *b = handoff_block(f->h);
    return b ? b : f->scratch;
}

/* Uncompressed bytes in the block out_block gave: hashed, counted, and handed to the tar
 * reader. */
static int emit(struct feeder *f, const char *buf, size_t n)
{
    if (ctr_sha256_update(&f->md, buf, n, &f->err) < 0)
        return -1;
    f->size += (uint64_t)n;
    if (buf != f->scratch)
        handoff_put(f->h, n);
    return 0;
}

static int is_gzip(const char *p, size_t n)
{
    return n >= 2 && (unsigned char)p[0] == 0x1f && (unsigned char)p[1] == 0x8b;
}

#if CTR_HAVE_ISAL
/* gzip through ISA-L's igzip, member after member (a concatenation of gzip members is one
 * gzip stream, as gzip and libarchive read it).  Bytes after the last member that do not
 * start another are ignored, as libarchive ignores them.  The header, the CRC-32 and the
 * length of every member are checked by isal_inflate (crc_flag ISAL_GZIP). */
static int inflate_isal(struct feeder *f, const struct ctr_isal_api *isal)
{
    cleanup_free struct inflate_state *st = malloc(sizeof *st);
    if (st == NULL)
        return ctr_fail(&f->err, ENOMEM, "decompress layer `%s'", f->blob_path);
    isal->isal_inflate_init(st);
    st->crc_flag = ISAL_GZIP;
    st->next_in = (uint8_t *)f->inbuf;
    st->avail_in = (uint32_t)f->pending;
    f->pending = 0;
    int eof = 0;
    for (;;) {
        if (st->avail_in == 0 && !eof) {
            ssize_t n = input_read(f, f->inbuf, IO_BUF);
            if (n < 0)
                return -1;
            eof = n == 0;
            st->next_in = (uint8_t *)f->inbuf;
            st->avail_in = (uint32_t)n;
        }
        char *out = out_block(f);
        st->next_out = (uint8_t *)out;
        st->avail_out = IO_BUF;
        int r = isal->isal_inflate(st);
        if (r < 0)
            return ctr_fail(&f->err, 0, "decompress layer `%s': %s", f->blob_path,
                            r == ISAL_INCORRECT_CHECKSUM ? "gzip checksum mismatch"
                                                         : "invalid gzip data");
        size_t produced = IO_BUF - st->avail_out;
        if (produced > 0 && emit(f, out, produced) < 0)
            return -1;
        if (atomic_load(&f->stop))
            return 1;
        if (st->block_state == ISAL_BLOCK_FINISH) {
            /* another member?  Its magic may straddle two reads. */
            if (st->avail_in < 2 && !eof) {
                size_t keep = st->avail_in;
                memmove(f->inbuf, st->next_in, keep);
                ssize_t n = input_read(f, f->inbuf + keep, IO_BUF - keep);
                if (n < 0)
                    return -1;
                eof = n == 0;
                st->next_in = (uint8_t *)f->inbuf;
                st->avail_in = (uint32_t)(keep + (size_t)n);
                if (!eof && st->avail_in < 2)
                    continue; /* still one byte: read again (block_state stays FINISH) */
            }
            if (!is_gzip((const char *)st->next_in, st->avail_in))
                return 0;
            uint8_t *next = st->next_in;
            uint32_t avail = st->avail_in;
            isal->isal_inflate_reset(st);
            st->crc_flag = ISAL_GZIP;
            st->next_in = next;
            st->avail_in = avail;
            continue;
        }
        if (produced == 0 && st->avail_in == 0 && eof)
            return ctr_fail(&f->err, 0, "decompress layer `%s': truncated gzip data",
                            f->blob_path);
    }
}
#endif

/* Everything else (zstd, an uncompressed tar, gzip without libisal) through libarchive. */
static int inflate_archive(struct feeder *f)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        return ctr_fail(&f->err, ENOMEM, "decompress layer `%s'", f->blob_path);
    int r = 0;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_raw(a);
    archive_read_support_format_empty(a);
    if (archive_read_open(a, f, NULL, archive_input, NULL) != ARCHIVE_OK) {
        r = ctr_fail(&f->err, archive_errno(a) > 0 ? archive_errno(a) : 0, "open layer `%s': %s",
                     f->blob_path, archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int h = archive_read_next_header(a, &e);
    if (h == ARCHIVE_EOF)
        goto out;
    if (h < ARCHIVE_WARN) {
        r = ctr_fail(&f->err, 0, "read layer `%s': %s", f->blob_path, archive_error_string(a));
        goto out;
    }
    for (;;) {
        char *buf = out_block(f);
        la_ssize_t n = archive_read_data(a, buf, IO_BUF);
        if (n < 0) {
            r = ctr_fail(&f->err, 0, "decompress layer `%s': %s", f->blob_path,
                         archive_error_string(a));
            goto out;
        }
        if (n == 0)
            break;
        if (emit(f, buf, (size_t)n) < 0) {
            r = -1;
            goto out;
        }
        if (atomic_load(&f->stop)) {
            r = 1;
            goto out;
        }
    }
out:
    archive_read_free(a);
    return r;
}

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    int r = 0;
    /* Peek at the magic (a source being downloaded may give less than two bytes at first). */
    while (f->pending < 2) {
        ssize_t n = input_read(f, f->inbuf + f->pending, IO_BUF - f->pending);
        if (n < 0) {
            r = -1;
            goto out;
        }
        if (n == 0)
            break;
        f->pending += (size_t)n;
    }
    const struct ctr_isal_api *isal = is_gzip(f->inbuf, f->pending) ? ctr_isal_api() : NULL;
#if CTR_HAVE_ISAL
    if (isal)
        r = inflate_isal(f, isal);
    else
#endif
        r = inflate_archive(f);
    (void)isal;
    if (r == 0)
        ctr_sha256_final_raw(&f->md, f->digest);
out:
    f->failed = r < 0;
    handoff_set(f->h, &f->h->eof);
    return NULL;
}

/* ===================================================================== the applier */

struct dirtime {
    char *path;
    struct timespec ts[2];
};

struct applier {
    int rootfd;
    dev_t rootdev;
    const char *dir;
    const struct ctr_layer_apply_opts *o;
    char *cache_path;         /* last parent directory opened, and its fd */
    int cache_fd;
    int cache_sgid;           /* its set-group-ID bit: 1, 0, or -1 not looked at yet */
    int root_sgid;
    uid_t euid;               /* what a new inode is given: owner, group (unless its */
    gid_t egid;               /* parent is set-group-ID), and mode & ~umask */
    mode_t umask;
    int cache_stale;          /* something was removed: reopen before the next use */
    struct ctr_strmap created;  /* names this layer created or merged into */
    struct dirtime *dirs;
    size_t ndirs, capdirs;
    char **opaques;           /* native mode: directories made opaque, cleaned at the end */
    size_t nopaques, capopaques;
};

static void cache_drop(struct applier *ap)
{
    if (ap->cache_fd >= 0)
        close(ap->cache_fd);
    ap->cache_fd = -1;
    ap->cache_sgid = -1;
    free(ap->cache_path);
    ap->cache_path = NULL;
    ap->cache_stale = 0;
}

/* Normalize an entry name: "./a//b/" -> "a/b"; "" is the root.  Refuse absolute names and
 * `..` components. */
static int clean_name(const char *what, const char *raw, char *out, size_t cap, struct ctr_err *err)
{
    if (raw == NULL || raw[0] == '\0')
        return ctr_fail(err, EINVAL, "layer entry without a name");
    if (raw[0] == '/')
        return ctr_fail(err, EPERM, "layer entry `%s': %s is an absolute path", raw, what);
    size_t n = 0;
    const char *p = raw;
    while (*p) {
        const char *s = strchr(p, '/');
        size_t len = s ? (size_t)(s - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return ctr_fail(err, EPERM, "layer entry `%s': %s has a `..' component", raw, what);
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n + len + 2 > cap)
                return ctr_fail(err, ENAMETOOLONG, "layer entry `%s'", raw);
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    out[n] = '\0';
    return 0;
}

/* Remember that this layer has `path`, and so all its parents (an upper layer of overlayfs
 * would hold them too): whiteouts and opaque directories spare them. */
static int note_created(struct applier *ap, const char *path, struct ctr_err *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        if (ctr_strmap_get(&ap->created, buf, NULL))
            return 0; /* its parents are there already */
        if (ctr_strmap_put(&ap->created, buf, NULL) < 0)
            return ctr_fail(err, errno, "layer entry `%s'", path);
        char *slash = strrchr(buf, '/');
        if (slash == NULL)
            return 0;
        *slash = '\0';
    }
}

/* Remove `name` under pfd, whatever it is, never following it and never crossing a mount. */
static int remove_at(struct applier *ap, int pfd, const char *name, const char *shown,
                     struct ctr_err *err)
{
    struct stat st;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return ctr_fail(err, errno, "stat `%s' in `%s'", shown, ap->dir);
    }
    ap->cache_stale = 1; /* pfd may be the cached fd: close it only at the next lookup */
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
            return ctr_fail(err, errno, "unlink `%s' in `%s'", shown, ap->dir);
        return 0;
    }
    if (st.st_dev != ap->rootdev)
        return ctr_fail(err, EBUSY, "remove `%s' in `%s': a mount is there", shown, ap->dir);
    int fd = RETRY(openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s' in `%s'", shown, ap->dir);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return ctr_fail(err, errno, "fdopendir `%s'", shown);
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        r = remove_at(ap, dirfd(d), de->d_name, shown, err);
    }
    closedir(d);
    if (r < 0)
        return r;
    if (unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "rmdir `%s' in `%s'", shown, ap->dir);
    return 0;
}

static int open_dir_in_root(struct applier *ap, const char *path)
{
    if (path[0] == '\0')
        return RETRY(fcntl(ap->rootfd, F_DUPFD_CLOEXEC, 0));
    return ctr_openat_in_root(ap->rootfd, path, O_RDONLY | O_DIRECTORY, 0);
}

/* Create the missing directories of `path` (each resolved inside the root), 0755, owned by
 * the offsets, as containerd does for parents a layer does not list. */
static int mkdir_parents(struct applier *ap, const char *path, struct ctr_err *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int fd = open_dir_in_root(ap, buf);
        if (fd >= 0) {
            close(fd);
        } else if (errno == ENOENT) {
            char *slash = strrchr(buf, '/');
            const char *base = slash ? slash + 1 : buf;
            if (slash)
                *slash = '\0';
            cleanup_close int pfd = open_dir_in_root(ap, slash ? buf : "");
            if (slash)
                *slash = '/';
            if (pfd < 0)
                return ctr_fail(err, errno, "open parent of `%s' in `%s'", buf, ap->dir);
            if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
                return ctr_fail(err, errno, "mkdir `%s' in `%s'", buf, ap->dir);
            if ((ap->o->uid_offset || ap->o->gid_offset) &&
                fchownat(pfd, base, (uid_t)ap->o->uid_offset, (gid_t)ap->o->gid_offset,
                         AT_SYMLINK_NOFOLLOW) < 0)
                return ctr_fail(err, errno, "chown `%s' in `%s'", buf, ap->dir);
            if (note_created(ap, buf, err) < 0)
                return -1;
        } else {
            return ctr_fail(err, errno, "open `%s' in `%s'", buf, ap->dir);
        }
        *p = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/* The parent directory of an entry, resolved inside the root; the fd is borrowed (cached). */
static int parent_fd(struct applier *ap, const char *parent, int create, const char *entry,
                     struct ctr_err *err)
{
    if (parent[0] == '\0')
        return ap->rootfd;
    if (ap->cache_path && !ap->cache_stale && strcmp(ap->cache_path, parent) == 0)
        return ap->cache_fd;
    cache_drop(ap);
    int fd = open_dir_in_root(ap, parent);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdir_parents(ap, parent, err) < 0)
            return ctr_fail_prefix(err, "layer entry `%s'", entry);
        fd = open_dir_in_root(ap, parent);
    }
    if (fd < 0) {
        if (errno == ENOENT && !create)
            return -2;
        return ctr_fail(err, errno, "layer entry `%s': open parent `%s' in `%s'", entry, parent,
                        ap->dir);
    }
    ap->cache_path = strdup(parent);
    if (ap->cache_path == NULL) {
        close(fd);
        return ctr_fail(err, ENOMEM, "layer entry `%s'", entry);
    }
    ap->cache_fd = fd;
    ap->cache_sgid = -1;
    return fd;
}

static void split(char *path, const char **parent, const char **base)
{
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = '\0';
        *parent = path;
        *base = slash + 1;
    } else {
        *parent = "";
        *base = path;
    }
}

/* The process's umask, from /proc/self/status (umask(2) cannot read it without changing it,
 * under other threads); 0777 when unknown, so that every mode is then set explicitly. */
static mode_t read_umask(void)
{
    char buf[2048];
    cleanup_close int fd = RETRY(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return 0777;
    ssize_t n = ctr_read_full(fd, buf, sizeof buf - 1);
    if (n <= 0)
        return 0777;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nUmask:");
    if (p == NULL)
        return 0777;
    char *end;
    unsigned long m = strtoul(p + strlen("\nUmask:"), &end, 8);
    return end == p + strlen("\nUmask:") || m > 0777 ? 0777 : (mode_t)m;
}

/* Whether the parent just returned by parent_fd is set-group-ID (new inodes in it then take
 * its group, and new directories the bit): -1 with err when it cannot be told. */
static int parent_sgid(struct applier *ap, const char *parent, struct ctr_err *err)
{
    if (parent[0] == '\0')
        return ap->root_sgid;
    if (ap->cache_sgid < 0) {
        struct stat st;
        if (fstat(ap->cache_fd, &st) < 0)
            return ctr_fail(err, errno, "stat `%s' in `%s'", parent, ap->dir);
        ap->cache_sgid = (st.st_mode & S_ISGID) != 0;
    }
    return ap->cache_sgid;
}

static int check_xattrs(struct archive_entry *e, const char *name, struct ctr_err *err)
{
    const char *k;
    const void *v;
    size_t sz;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &k, &v, &sz) == ARCHIVE_OK) {
        if (strncmp(k, "user.", 5) == 0 || strcmp(k, "security.capability") == 0 ||
            strcmp(k, "system.posix_acl_access") == 0 || strcmp(k, "system.posix_acl_default") == 0)
            continue;
        if (strncmp(k, "trusted.", 8) == 0)
            return ctr_fail(err, EPERM, "layer entry `%s': trusted xattr `%s' refused", name, k);
        if (strncmp(k, "security.", 9) == 0)
            return ctr_fail(err, EPERM, "layer entry `%s': security xattr `%s' refused", name, k);
        return ctr_fail(err, EPERM, "layer entry `%s': xattr `%s' refused", name, k);
    }
    return 0;
}

static int set_xattrs(int fd, struct archive_entry *e, const char *name, struct ctr_err *err)
{
    const char *k;
    const void *v;
    size_t sz;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &k, &v, &sz) == ARCHIVE_OK)
        if (fsetxattr(fd, k, v, sz, 0) < 0)
            return ctr_fail(err, errno, "layer entry `%s': setxattr `%s'", name, k);
    return 0;
}

static int write_data(struct archive *a, int fd, struct archive_entry *e, const char *name,
                      struct ctr_err *err)
{
    const void *buf;
    size_t size;
    la_int64_t off;
    int r;
    int64_t end = 0;
    while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
        const char *p = buf;
        while (size > 0) {
            ssize_t n = RETRY(pwrite(fd, p, size, off));
            if (n < 0)
                return ctr_fail(err, errno, "layer entry `%s': write", name);
            p += n;
            size -= (size_t)n;
            off += n;
        }
        end = off;
    }
    if (r != ARCHIVE_EOF)
        return ctr_fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "layer entry `%s': %s",
                        name, archive_error_string(a));
    if (archive_entry_size_is_set(e) && end < archive_entry_size(e) &&
        ftruncate(fd, archive_entry_size(e)) < 0) /* a sparse file ending in a hole */
        return ctr_fail(err, errno, "layer entry `%s': truncate", name);
    return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    if (archive_entry_mtime_is_set(e)) {
        ts[1].tv_sec = archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    } else {
        ts[1].tv_sec = 0;
        ts[1].tv_nsec = UTIME_OMIT;
    }
    if (archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
}

static int apply_whiteout(struct applier *ap, const char *shown, const char *parent,
                          const char *base, struct ctr_err *err)
{
    int overlay = ap->o->overlay_whiteouts;
    if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
        if (overlay) {
            int pfd = parent_fd(ap, parent, 1, shown, err);
            if (pfd < 0)
                return -1;
            if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                return ctr_fail(err, errno, "layer entry `%s': set trusted.overlay.opaque", shown);
            return 0;
        }
        if (ap->nopaques == ap->capopaques) {
            size_t ncap = ap->capopaques ? ap->capopaques * 2 : 16;
            char **n = realloc(ap->opaques, ncap * sizeof *n);
            if (n == NULL)
                return ctr_fail(err, ENOMEM, "layer entry `%s'", shown);
            ap->opaques = n;
            ap->capopaques = ncap;
        }
        if ((ap->opaques[ap->nopaques] = strdup(parent)) == NULL)
            return ctr_fail(err, ENOMEM, "layer entry `%s'", shown);
        ap->nopaques++;
        return 0;
    }
    if (strncmp(base, WHITEOUT_META, strlen(WHITEOUT_META)) == 0)
        return 0; /* other AUFS metadata (.wh..wh.plnk ...): nothing to do */
    const char *name = base + strlen(WHITEOUT_PREFIX);
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return ctr_fail(err, EPERM, "layer entry `%s': whiteout of `%s' refused", shown, name);
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s%s%s", parent, parent[0] ? "/" : "", name);
    if (overlay) {
        int pfd = parent_fd(ap, parent, 1, shown, err);
        if (pfd < 0)
            return -1;
        if (remove_at(ap, pfd, name, target, err) < 0)
            return -1;
        if ((pfd = parent_fd(ap, parent, 1, shown, err)) < 0)
            return -1;
        if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
            return ctr_fail(err, errno, "layer entry `%s': mknod whiteout", shown);
        return 0;
    }
    /* Native: a whiteout hides what lower layers have, never what this layer made. */
    if (ctr_strmap_get(&ap->created, target, NULL))
        return 0;
    int pfd = parent_fd(ap, parent, 0, shown, err);
    if (pfd == -2)
        return 0;
    if (pfd < 0)
        return -1;
    return remove_at(ap, pfd, name, target, err);
}

/* One entry of a layer, its names and metadata checked. */
struct entry {
    struct archive_entry *e;
    const char *raw;            /* the name as the archive has it: what errors name */
    const char *path;           /* cleaned, relative to the root */
    const char *parent, *base;  /* path split */
    uid_t uid;
    gid_t gid;
    mode_t type, mode;
    struct timespec ts[2];
    int chown;                  /* creation does not give the entry its owner */
    int chmod;                  /* creation does not give the entry its mode */
    mode_t create_mode;         /* what the inode is created with */
};

/* What creating the entry's inode in its parent gives it, and so which of chown and chmod
 * are needed after: the owner when it is the process's (and the group, unless the parent is
 * set-group-ID); the mode when umask takes nothing from it and it has no set-ID or sticky
 * bit (chown clears set-ID bits, and a new directory inherits a set-group-ID parent's).
 * Otherwise the inode is made 0600 / 0700 and given its mode after its owner, as before. */
static int entry_creation(struct applier *ap, struct entry *en, struct ctr_err *err)
{
    int sgid = parent_sgid(ap, en->parent, err);
    if (sgid < 0)
        return -1;
    en->chown = en->uid != ap->euid || en->gid != ap->egid || sgid;
    en->chmod = (en->mode & 07000) || (en->mode & ap->umask) ||
                (en->type == AE_IFDIR && sgid);
    if (en->chmod)
        en->create_mode = en->type == AE_IFDIR ? 0700 : 0600;
    else
        en->create_mode = en->mode;
    return 0;
}

/* The entry's owner, shifted by the user namespace's offset, refused when out of range. */
static int entry_owner(const struct applier *ap, struct entry *en, struct ctr_err *err)
{
    const char *raw = en->raw;
    la_int64_t uid = archive_entry_uid(en->e), gid = archive_entry_gid(en->e);
    if (uid < 0 || uid > INT32_MAX || gid < 0 || gid > INT32_MAX)
        return ctr_fail(err, EOVERFLOW,
                        "layer entry `%s': uid %lld / gid %lld out of range (CVE-2024-40635)", raw,
                        (long long)uid, (long long)gid);
    uid += ap->o->uid_offset;
    gid += ap->o->gid_offset;
    if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
        return ctr_fail(err, EOVERFLOW, "layer entry `%s': uid %lld / gid %lld out of range", raw,
                        (long long)uid, (long long)gid);
    en->uid = (uid_t)uid;
    en->gid = (gid_t)gid;
    return 0;
}

/* Make room for the entry at its name in the directory *pfd.  The common case first, one
 * syscall: create the name exclusively (O_EXCL and mkdir never follow a symlink at the
 * name); *newfd is then the regular file made.  Only when something is there, look at it: a
 * directory that stays one is kept (*keep_dir 1), anything else removed.  *keep_dir is 2 for a
 * directory made here. */
static int clear_name(struct applier *ap, const struct entry *en, int hardlink, int *pfd,
                      int *newfd, int *keep_dir, struct ctr_err *err)
{
    const char *raw = en->raw;
    int created = 0;
    if (!hardlink && en->type == AE_IFREG) {
        *newfd = RETRY(openat(*pfd, en->base,
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                              en->create_mode));
        if (*newfd < 0 && errno != EEXIST)
            return ctr_fail(err, errno, "layer entry `%s': create", raw);
        created = *newfd >= 0;
    } else if (!hardlink && en->type == AE_IFDIR) {
        created = mkdirat(*pfd, en->base, en->create_mode) == 0;
        if (!created && errno != EEXIST)
            return ctr_fail(err, errno, "layer entry `%s': mkdir", raw);
    }
    struct stat st;
    int exists = !created && fstatat(*pfd, en->base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!created && !exists && errno != ENOENT)
        return ctr_fail(err, errno, "layer entry `%s': stat", raw);
    *keep_dir = created ? (en->type == AE_IFDIR ? 2 : 0)
                        : exists && S_ISDIR(st.st_mode) && en->type == AE_IFDIR && !hardlink;
    if (exists && !*keep_dir) {
        if (remove_at(ap, *pfd, en->base, en->path, err) < 0)
            return -1;
        *pfd = parent_fd(ap, en->parent, 1, raw, err); /* the cache may have been dropped */
        if (*pfd < 0)
            return -1;
    }
    return 0;
}

/* A hard link to target (cleaned) at the entry's name in pfd. */
static int write_hardlink(struct applier *ap, const struct entry *en, const char *target,
                          int pfd, struct ctr_err *err)
{
    const char *raw = en->raw, *hardlink = archive_entry_hardlink(en->e);
    char tparentbuf[PATH_MAX];
    memcpy(tparentbuf, target, strlen(target) + 1);
    const char *tparent, *tbase;
    split(tparentbuf, &tparent, &tbase);
    cleanup_close int tpfd = open_dir_in_root(ap, tparent);
    if (tpfd < 0)
        return ctr_fail(err, errno, "layer entry `%s': open hardlink target `%s'", raw, hardlink);
    if (linkat(tpfd, tbase, pfd, en->base, 0) < 0)
        return ctr_fail(err, errno, "layer entry `%s': link to `%s'", raw, hardlink);
    return 0;
}

/* A regular file: its data, then owner and mode where creation did not give them, xattrs and
 * times (newfd: made by clear_name). */
static int write_regular(struct archive *a, const struct entry *en, int pfd, int *newfd,
                         struct ctr_err *err)
{
    const char *raw = en->raw;
    cleanup_close int fd = *newfd >= 0 ? steal_fd(newfd)
                                       : RETRY(openat(pfd, en->base, O_WRONLY | O_CREAT | O_EXCL |
                                                          O_NOFOLLOW | O_CLOEXEC, en->create_mode));
    if (fd < 0)
        return ctr_fail(err, errno, "layer entry `%s': create", raw);
    if (write_data(a, fd, en->e, raw, err) < 0)
        return -1;
    if (en->chown && fchown(fd, en->uid, en->gid) < 0)
        return ctr_fail(err, errno, "layer entry `%s': chown", raw);
    if (en->chmod && fchmod(fd, en->mode) < 0) /* after chown, which clears setuid */
        return ctr_fail(err, errno, "layer entry `%s': chmod", raw);
    if (set_xattrs(fd, en->e, raw, err) < 0)
        return -1;
    if (futimens(fd, en->ts) < 0)
        return ctr_fail(err, errno, "layer entry `%s': utimens", raw);
    return 0;
}

/* A directory: owner, mode and xattrs now (for one made here, only what mkdir did not give
 * it: then it is opened only when something is left to set); its times once the layer is
 * done (what is written into it meanwhile would change them), so they are noted in ap->dirs. */
static int write_dir(struct applier *ap, const struct entry *en, int pfd, int keep_dir,
                     struct ctr_err *err)
{
    const char *raw = en->raw;
    if (!keep_dir && mkdirat(pfd, en->base, en->create_mode) < 0)
        return ctr_fail(err, errno, "layer entry `%s': mkdir", raw);
    int fresh = keep_dir != 1;
    int do_chown = !fresh || en->chown, do_chmod = !fresh || en->chmod;
    if (do_chown || do_chmod || archive_entry_xattr_reset(en->e) > 0) {
        cleanup_close int fd = RETRY(openat(pfd, en->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                               O_CLOEXEC));
        if (fd < 0)
            return ctr_fail(err, errno, "layer entry `%s': open", raw);
        if (do_chown && fchown(fd, en->uid, en->gid) < 0)
            return ctr_fail(err, errno, "layer entry `%s': chown", raw);
        if (do_chmod && fchmod(fd, en->mode) < 0)
            return ctr_fail(err, errno, "layer entry `%s': chmod", raw);
        if (set_xattrs(fd, en->e, raw, err) < 0)
            return -1;
    }
    if (ap->ndirs == ap->capdirs) {
        size_t ncap = ap->capdirs ? ap->capdirs * 2 : 256;
        struct dirtime *n = realloc(ap->dirs, ncap * sizeof *n);
        if (n == NULL)
            return ctr_fail(err, ENOMEM, "layer entry `%s'", raw);
        ap->dirs = n;
        ap->capdirs = ncap;
    }
    if ((ap->dirs[ap->ndirs].path = strdup(en->path)) == NULL)
        return ctr_fail(err, ENOMEM, "layer entry `%s'", raw);
    memcpy(ap->dirs[ap->ndirs].ts, en->ts, sizeof en->ts);
    ap->ndirs++;
    return 0;
}

static int write_symlink(struct applier *ap, const struct entry *en, struct ctr_err *err)
{
    const char *raw = en->raw;
    const char *to = archive_entry_symlink(en->e);
    if (to == NULL)
        return ctr_fail(err, EINVAL, "layer entry `%s': symlink without a target", raw);
    /* A cached parent at or below the name may have been reached through what was there
     * before (clear_name removed it, which marks the cache stale already; this is the
     * second line). */
    size_t plen = strlen(en->path);
    if (ap->cache_path && strncmp(ap->cache_path, en->path, plen) == 0 &&
        (ap->cache_path[plen] == '\0' || ap->cache_path[plen] == '/'))
        ap->cache_stale = 1;
    int pfd = parent_fd(ap, en->parent, 1, raw, err);
    if (pfd < 0)
        return -1;
    if (symlinkat(to, pfd, en->base) < 0)
        return ctr_fail(err, errno, "layer entry `%s': symlink", raw);
    if (en->chown && fchownat(pfd, en->base, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(err, errno, "layer entry `%s': chown", raw);
    if (utimensat(pfd, en->base, en->ts, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(err, errno, "layer entry `%s': utimens", raw);
    return 0;
}

/* A fifo or a device node. */
static int write_node(const struct entry *en, int pfd, struct ctr_err *err)
{
    const char *raw = en->raw;
    dev_t dev = en->type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(en->e),
                                                   archive_entry_rdevminor(en->e));
    if (mknodat(pfd, en->base, en->type | 0600, dev) < 0)
        return ctr_fail(err, errno, "layer entry `%s': mknod", raw);
    /* Just created by us: no symlink can be there, so the *at calls act on the node. */
    if (fchownat(pfd, en->base, en->uid, en->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(err, errno, "layer entry `%s': chown", raw);
    if (fchmodat(pfd, en->base, en->mode, 0) < 0)
        return ctr_fail(err, errno, "layer entry `%s': chmod", raw);
    if (utimensat(pfd, en->base, en->ts, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(err, errno, "layer entry `%s': utimens", raw);
    return 0;
}

static int apply_entry(struct applier *ap, struct archive *a, struct archive_entry *e,
                       struct ctr_err *err)
{
    const char *raw = archive_entry_pathname(e);
    char path[PATH_MAX];
    if (clean_name("the name", raw, path, sizeof path, err) < 0)
        return -1;
    if (path[0] == '\0')
        return 0; /* the root itself: its mode and owner belong to the snapshot */
    char parentbuf[PATH_MAX];
    memcpy(parentbuf, path, strlen(path) + 1);
    struct entry en = {.e = e, .raw = raw, .path = path};
    split(parentbuf, &en.parent, &en.base);

    if (strncmp(en.base, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
        return apply_whiteout(ap, raw, en.parent, en.base, err);

    if (entry_owner(ap, &en, err) < 0)
        return -1;
    if (check_xattrs(e, raw, err) < 0)
        return -1;

    const char *hardlink = archive_entry_hardlink(e);
    en.type = archive_entry_filetype(e);
    en.mode = archive_entry_perm(e) & 07777;
    if (!hardlink && ap->o->userns && (en.type == AE_IFCHR || en.type == AE_IFBLK))
        return 0; /* a user namespace cannot use device nodes; skip, as containerd does */
    char target[PATH_MAX];
    if (hardlink) {
        if (clean_name("the hardlink target", hardlink, target, sizeof target, err) < 0)
            return ctr_fail_prefix(err, "layer entry `%s'", raw);
        if (target[0] == '\0')
            return ctr_fail(err, EPERM, "layer entry `%s': hardlink to the root", raw);
    }

    int pfd = parent_fd(ap, en.parent, 1, raw, err);
    if (pfd < 0)
        return -1;
    if (entry_creation(ap, &en, err) < 0)
        return -1;
    cleanup_close int newfd = -1;
    int keep_dir = 0;
    if (clear_name(ap, &en, hardlink != NULL, &pfd, &newfd, &keep_dir, err) < 0)
        return -1;

    entry_times(e, en.ts);
    int r;
    if (hardlink)
        r = write_hardlink(ap, &en, target, pfd, err);
    else if (en.type == AE_IFREG)
        r = write_regular(a, &en, pfd, &newfd, err);
    else if (en.type == AE_IFDIR)
        r = write_dir(ap, &en, pfd, keep_dir, err);
    else if (en.type == AE_IFLNK)
        r = write_symlink(ap, &en, err);
    else if (en.type == AE_IFIFO || en.type == AE_IFCHR || en.type == AE_IFBLK)
        r = write_node(&en, pfd, err);
    else
        return ctr_fail(err, EINVAL, "layer entry `%s': unsupported file type 0%o", raw,
                        (unsigned)en.type);
    return r < 0 ? -1 : note_created(ap, path, err);
}

/* Native opaque directory: remove every entry this layer did not create, recursing into the
 * directories it merged into (their lower contents are hidden too). */
static int opaque_clean(struct applier *ap, int fd, const char *path, struct ctr_err *err)
{
    int dfd = RETRY(fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (dfd < 0)
        return ctr_fail(err, errno, "opaque `%s': dup", path);
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return ctr_fail(err, errno, "opaque `%s': fdopendir", path);
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "/" : "", de->d_name);
        if (!ctr_strmap_get(&ap->created, child, NULL)) {
            r = remove_at(ap, dirfd(d), de->d_name, child, err);
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            cleanup_close int cfd = RETRY(openat(dirfd(d), de->d_name,
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (cfd < 0)
                r = ctr_fail(err, errno, "opaque: open `%s'", child);
            else
                r = opaque_clean(ap, cfd, child, err);
        }
    }
    closedir(d);
    return r;
}

static int apply_stream(struct applier *ap, struct handoff *h, struct ctr_layer_apply_result *res,
                        struct ctr_err *err)
{
    struct archive *a = archive_read_new();
    if (a == NULL)
        return ctr_fail(err, ENOMEM, "archive_read_new");
    archive_read_support_format_tar(a);
    archive_read_support_format_empty(a);
    int r = 0;
    if (archive_read_open(a, h, NULL, handoff_read, NULL) != ARCHIVE_OK) {
        r = ctr_fail(err, 0, "read layer: %s", archive_error_string(a));
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int s = archive_read_next_header(a, &e);
        if (s == ARCHIVE_EOF)
            break;
        if (s < ARCHIVE_WARN) {
            r = ctr_fail(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "read layer: %s",
                         archive_error_string(a));
            goto out;
        }
        res->entries++;
        if ((r = apply_entry(ap, a, e, err)) < 0)
            goto out;
    }
out:
    archive_read_free(a);
    return r;
}

static int finish(struct applier *ap, struct ctr_err *err)
{
    for (size_t i = 0; i < ap->nopaques; i++) {
        cleanup_close int fd = open_dir_in_root(ap, ap->opaques[i]);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return ctr_fail(err, errno, "opaque directory `%s' in `%s'", ap->opaques[i], ap->dir);
        }
        if (opaque_clean(ap, fd, ap->opaques[i], err) < 0)
            return -1;
    }
    /* Directory times last: creating their contents changed them. */
    for (size_t i = ap->ndirs; i-- > 0;) {
        cleanup_close int fd = ctr_openat_in_root(ap->rootfd, ap->dirs[i].path,
                                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
                continue; /* replaced by a later entry */
            return ctr_fail(err, errno, "open `%s' in `%s'", ap->dirs[i].path, ap->dir);
        }
        if (futimens(fd, ap->dirs[i].ts) < 0)
            return ctr_fail(err, errno, "utimens `%s' in `%s'", ap->dirs[i].path, ap->dir);
    }
    return 0;
}

int ctr_layer_apply(const char *dir, const char *blob_path, const struct ctr_layer_apply_opts *opts,
                    struct ctr_layer_apply_result *res, struct ctr_err *err)
{
    memset(res, 0, sizeof *res);
    cleanup_close int rootfd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return ctr_fail(err, errno, "open `%s'", dir);
    struct stat rst;
    if (fstat(rootfd, &rst) < 0)
        return ctr_fail(err, errno, "stat `%s'", dir);
    cleanup_close int blobfd = opts->source ? -1 : RETRY(open(blob_path, O_RDONLY | O_CLOEXEC));
    if (blobfd < 0 && !opts->source)
        return ctr_fail(err, errno, "open `%s'", blob_path);
    cleanup_free char *inbuf = malloc(IO_BUF);
    cleanup_free char *scratch = malloc(IO_BUF);
    if (inbuf == NULL || scratch == NULL)
        return ctr_fail(err, ENOMEM, "apply layer `%s'", blob_path);
    struct handoff h;
    if (handoff_init(&h) < 0)
        return ctr_fail(err, ENOMEM, "apply layer `%s'", blob_path);

    struct feeder f = { .blobfd = blobfd, .h = &h, .scratch = scratch, .blob_path = blob_path,
                        .src = opts->source, .inbuf = inbuf };
    atomic_init(&f.stop, 0);
    if (ctr_sha256_init(&f.md, err) < 0) {
        handoff_destroy(&h);
        return -1;
    }
    pthread_t tid;
    int e = pthread_create(&tid, NULL, feeder_main, &f);
    if (e != 0) {
        ctr_sha256_free(&f.md);
        handoff_destroy(&h);
        return ctr_fail(err, e, "pthread_create");
    }

    struct applier ap = { .rootfd = rootfd, .rootdev = rst.st_dev, .dir = dir, .o = opts,
                          .cache_fd = -1, .cache_sgid = -1,
                          .root_sgid = (rst.st_mode & S_ISGID) != 0, .euid = geteuid(),
                          .egid = getegid(), .umask = read_umask() };
    int r = apply_stream(&ap, &h, res, err);
    if (r < 0)
        atomic_store(&f.stop, 1);
    handoff_set(&h, &h.closed); /* the feeder hashes the rest into its scratch buffer */
    pthread_join(tid, NULL);
    ctr_sha256_free(&f.md);
    handoff_destroy(&h);
    if (f.failed) { /* a decompression error explains a truncated tar best */
        *err = f.err;
        r = -1;
    }
    if (r == 0)
        r = finish(&ap, err);
    cache_drop(&ap);
    for (size_t i = 0; i < ap.ndirs; i++)
        free(ap.dirs[i].path);
    free(ap.dirs);
    for (size_t i = 0; i < ap.nopaques; i++)
        free(ap.opaques[i]);
    free(ap.opaques);
    ctr_strmap_free(&ap.created);
    if (r < 0)
        return ctr_fail_prefix(err, "apply layer `%s'", blob_path);

    ctr_digest_format(res->diff_id, f.digest);
    res->size = f.size;
    if (opts->diff_id && strcmp(opts->diff_id, res->diff_id) != 0)
        return ctr_fail(err, EINVAL, "apply layer `%s': diff_id mismatch: expected %s, got %s",
                        blob_path, opts->diff_id, res->diff_id);
    if (syncfs(rootfd) < 0)
        return ctr_fail(err, errno, "syncfs `%s'", dir);
    return 0;
}
