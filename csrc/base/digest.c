/* SHA-256 over libcrypto (see base/digest.h). */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/digest.h"
#include "base/lazylib.h"

int ctr_sha256_init(struct ctr_sha256 *h, struct ctr_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        h->md = NULL;
        return ctr_fail(err, ENOMEM, "sha256: OpenSSL failed");
    }
    h->md = md;
    return 0;
}

int ctr_sha256_update(struct ctr_sha256 *h, const void *buf, size_t len, struct ctr_err *err)
{
    if (EVP_DigestUpdate(h->md, buf, len) != 1)
        return ctr_fail(err, EIO, "sha256: OpenSSL failed");
    return 0;
}

void ctr_sha256_final_raw(struct ctr_sha256 *h, unsigned char out[CTR_SHA256_SIZE])
{
    EVP_DigestFinal_ex(h->md, out, NULL);
}

void ctr_sha256_final(struct ctr_sha256 *h, char out[CTR_DIGEST_LEN])
{
    unsigned char md[CTR_SHA256_SIZE];
    ctr_sha256_final_raw(h, md);
    ctr_digest_format(out, md);
}

void ctr_sha256_free(struct ctr_sha256 *h)
{
    if (h->md)
        EVP_MD_CTX_free(h->md);
    h->md = NULL;
}

int ctr_sha256_digest(const void *data, size_t len, char out[CTR_DIGEST_LEN], struct ctr_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != CTR_SHA256_SIZE)
        return ctr_fail(err, EIO, "sha256: OpenSSL failed");
    ctr_digest_format(out, md);
    return 0;
}

void ctr_digest_format(char out[CTR_DIGEST_LEN], const unsigned char md[CTR_SHA256_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < CTR_SHA256_SIZE; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[7 + 2 * CTR_SHA256_SIZE] = '\0';
}
