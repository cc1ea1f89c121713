/* SHA-256, the one digest of the store: blob names, diff_ids, ctr.core.sha256.
 *
 * Over libcrypto's EVP interface, loaded on first use (base/lazylib.h says why), so a
 * process that never hashes never maps libcrypto.  Every sha256 in the core goes through
 * here; digests are written "sha256:" + 64 lowercase hex digits.
 */
#ifndef CTR_DIGEST_H
#define CTR_DIGEST_H

#include <stddef.h>

#include "base/error.h"

/* "sha256:" + 64 hex + NUL, rounded */
#define CTR_DIGEST_LEN 72
#define CTR_SHA256_SIZE 32

/* A hash in progress; `md` is private to base/digest.c (NULL: none). */
struct ctr_sha256 {
    void *md;
};

/* ENOMEM when libcrypto cannot make a context. */
int ctr_sha256_init(struct ctr_sha256 *h, struct ctr_err *err);
/* EIO when libcrypto fails (it does not for a live context). */
int ctr_sha256_update(struct ctr_sha256 *h, const void *buf, size_t len, struct ctr_err *err);
/* The digest of what was fed, raw or as "sha256:<hex>"; the context may then only be freed. */
void ctr_sha256_final_raw(struct ctr_sha256 *h, unsigned char out[CTR_SHA256_SIZE]);
void ctr_sha256_final(struct ctr_sha256 *h, char out[CTR_DIGEST_LEN]);
/* Safe on a context never initialised (zeroed) or already freed. */
void ctr_sha256_free(struct ctr_sha256 *h);

/* "sha256:<hex>" of one buffer. */
int ctr_sha256_digest(const void *data, size_t len, char out[CTR_DIGEST_LEN], struct ctr_err *err);

/* "sha256:" + hex of a raw 32-byte digest */
void ctr_digest_format(char out[CTR_DIGEST_LEN], const unsigned char md[CTR_SHA256_SIZE]);

#endif
