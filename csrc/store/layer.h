/* Image layers: apply a layer (tar, gzip or zstd) into a directory, safely; write a directory
 * tree as a reproducible PAX layer.
 *
 * Safety of ctr_layer_apply (SECURITY.md "archive path traversal", "device nodes and trusted
 * xattrs"): no entry may create, change or follow anything outside `dir`.  Every parent
 * directory is opened inside the root (openat2 RESOLVE_IN_ROOT), so a symlink planted by an
 * earlier entry resolves inside the root; the final component is never followed (an existing
 * file or symlink is unlinked and the entry created with O_EXCL / mknodat / symlinkat), and
 * owner, mode, xattrs and times are set through the entry's own fd or *at(AT_SYMLINK_NOFOLLOW)
 * (containerd CVE-2021-32760).  Names with `..`, absolute names, hardlinks out of the root,
 * whiteouts naming `.` or `..`, uid/gid above 2^31-1 (containerd CVE-2024-40635), `trusted.*`
 * xattrs and `security.*` other than security.capability are refused with an error naming the
 * entry. */
#ifndef CTR_ARCHIVE_H
#define CTR_ARCHIVE_H

#include <stdint.h>

#include "base/digest.h"
#include "base/error.h"

/* Where a layer's compressed bytes come from when not from blob_path: an fd, possibly of a
 * file still being written (follow: a download in progress), and how far the reader has come.
 * final_size is -1 while the writer goes on, then the file's final size; abandoned says the
 * writer gave up (the apply then fails).  Both are set from another thread. */
struct ctr_layer_source {
    int fd;
    int follow;
    _Atomic long long final_size;
    _Atomic int abandoned;
    _Atomic unsigned long long consumed;
};

struct ctr_layer_apply_opts {
    struct ctr_layer_source *source; /* NULL: read blob_path */
    int overlay_whiteouts;    /* 1: overlayfs whiteouts (char 0:0, trusted.overlay.opaque);
                                 0: native (remove the named files) */
    const char *diff_id;      /* expected "sha256:<hex>" of the uncompressed stream, or NULL */
    int64_t uid_offset;       /* added to every owner */
    int64_t gid_offset;
    int userns;               /* skip char/block device nodes */
};

struct ctr_layer_apply_result {
    char diff_id[CTR_DIGEST_LEN];
    uint64_t size;            /* uncompressed bytes */
    uint64_t entries;         /* tar entries read */
};

int ctr_layer_apply(const char *dir, const char *blob_path, const struct ctr_layer_apply_opts *opts,
                    struct ctr_layer_apply_result *res, struct ctr_err *err);

enum ctr_compression { CTR_COMPRESS_NONE, CTR_COMPRESS_GZIP, CTR_COMPRESS_ZSTD };

struct ctr_layer_write_opts {
    enum ctr_compression compression;
    int clamp_mtime;          /* when set, every mtime is at most `mtime` */
    int64_t mtime;
    int64_t uid;              /* >= 0: every entry is owned by this uid (tar --owner) */
    int64_t gid;              /* >= 0: likewise for the group */
};

struct ctr_layer_write_result {
    char digest[CTR_DIGEST_LEN];   /* sha256 of the file written */
    char diff_id[CTR_DIGEST_LEN];  /* sha256 of the uncompressed tar */
    uint64_t size;                 /* bytes written */
    uint64_t uncompressed_size;
    uint64_t entries;
};

/* Write the tree under src_dir (not src_dir itself) to out_path: PAX, entries sorted by path,
 * numeric owners, hardlinks by dev/ino, sockets skipped.  Written to a temporary file beside
 * out_path and renamed into place at the end. */
int ctr_layer_write(const char *src_dir, const char *out_path, const struct ctr_layer_write_opts *opts,
                    struct ctr_layer_write_result *res, struct ctr_err *err);

/* A set of strings with an optional value each (names created by a layer, dev:ino of files
 * already written).  Shared by the reader and the writer. */
struct ctr_strmap {
    char **keys;
    char **vals;
    size_t cap, len;
};
int ctr_strmap_put(struct ctr_strmap *m, const char *key, const char *val);
/* returns 1 and *val (may be NULL) when present, 0 when absent */
int ctr_strmap_get(const struct ctr_strmap *m, const char *key, const char **val);
void ctr_strmap_free(struct ctr_strmap *m);


#endif
