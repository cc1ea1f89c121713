/* The content store: content-addressed blobs under a content directory (ROOT/content).
 *
 *     CONTENT/blobs/sha256/<hex>   a blob; its bytes always hash to <hex>
 *     CONTENT/ingest/<ref>         a partial write, locked (flock) by the writer
 *
 * A write streams into the ingest file while hashing (sha256, base/digest.h), fsyncs it, checks
 * the size and digest against the expected ones, and only then renames it into blobs/ (with
 * RENAME_NOREPLACE: an existing blob is never rewritten) and fsyncs the directory.  A process
 * killed at any instant leaves at worst a stale ingest file, never a blob whose content does not
 * match its name.  Stale ingest files are truncated by the next writer of the same ref, and
 * removed by ctr_content_sweep() once older than a given age.
 *
 * Digests are validated (`sha256:` + 64 lowercase hex) before a path is built from them.
 */
#ifndef CTR_CONTENT_H
#define CTR_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/digest.h"
#include "base/error.h"

/* 0 when digest is `sha256:` followed by 64 lowercase hex digits; else -1 (EINVAL) naming it. */
int ctr_digest_check(const char *digest, struct ctr_err *err);

/* CONTENT/blobs/sha256/<hex> for a valid digest. */
int ctr_content_blob_path(const char *content, const char *digest, char *out, size_t outlen,
                          struct ctr_err *err);

/* An ingest in progress.  Fields are private to store/content.c. */
struct ctr_ingest {
    int fd;
    struct ctr_sha256 md;
    uint64_t size;
    char content[4096];
    char path[4096];
};

/* Open (or take over) CONTENT/ingest/<ref>: waits for the ref's lock, truncates what a dead
 * writer left.  ref: [A-Za-z0-9_.-], not starting with '.', at most 200 bytes. */
int ctr_ingest_open(struct ctr_ingest *ing, const char *content, const char *ref,
                    struct ctr_err *err);
/* The same, keeping what a previous (dead) writer of ref wrote: its bytes are hashed again and
 * ing->size says how many there are, so a download goes on from there (HTTP Range).  A file
 * longer than max (>= 0) is emptied. */
int ctr_ingest_resume(struct ctr_ingest *ing, const char *content, const char *ref, int64_t max,
                      struct ctr_err *err);
int ctr_ingest_write(struct ctr_ingest *ing, const void *buf, size_t len, struct ctr_err *err);
/* Finish: fsync, verify against `expected` (may be NULL) and `expected_size` (< 0: any),
 * commit.  Fills digest_out and *size_out.  On any failure the ingest file is removed.
 * Always releases the ingest (no abort needed after commit). */
int ctr_ingest_commit(struct ctr_ingest *ing, const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], uint64_t *size_out, struct ctr_err *err);
/* Drop an ingest: remove the file, release the lock.  Safe to call twice. */
void ctr_ingest_abort(struct ctr_ingest *ing);

/* Leave an ingest for a later resume: close it and release the lock, keeping the file. */
void ctr_ingest_release(struct ctr_ingest *ing);

/* Stream fd until EOF into the store (an ingest named ref). */
int ctr_content_ingest_fd(const char *content, int fd, const char *ref, const char *expected,
                          int64_t expected_size, char digest_out[CTR_DIGEST_LEN],
                          uint64_t *size_out, struct ctr_err *err);

/* Store a buffer. */
int ctr_content_write(const char *content, const void *data, size_t len, const char *ref,
                      const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], struct ctr_err *err);

/* Hash a stored blob and compare it with its name. */
int ctr_content_verify(const char *content, const char *digest, uint64_t *size_out,
                       struct ctr_err *err);

/* Remove ingest files older than max_age seconds that no writer holds.  *removed counts them. */
int ctr_content_sweep(const char *content, double max_age, int *removed, struct ctr_err *err);

/* The first up to n bytes of a file (n <= 64) into out; *got the count. */
int ctr_read_head(const char *path, void *out, size_t n, size_t *got, struct ctr_err *err);

#endif
