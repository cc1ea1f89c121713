/* A streaming reader of image archives (oci-archive, docker-archive): plain or compressed tar,
 * detected by libarchive.  It yields one entry at a time; the caller (Lua) decides what each
 * entry is and either streams it into the content store, reads it (capped), or skips it.
 *
 * Entry names are untrusted: they are normalised ("./" prefixes, repeated and trailing
 * slashes) and refused when absolute or containing a `..` component.  No host path is ever
 * built from them. */
#ifndef CTR_IMPORT_H
#define CTR_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store/content.h"
#include "base/error.h"

struct ctr_import;

/* path "-" reads standard input. */
int ctr_import_open(const char *path, struct ctr_import **out, struct ctr_err *err);

struct ctr_import_entry {
    const char *name; /* normalised; "" for the archive's root directory */
    const char *type; /* file, directory, symlink, hardlink, other */
    int64_t size;
    const char *link; /* symlink target (raw) or hardlink target (normalised); NULL if none */
};

/* 1 and *e filled (valid until the next call), 0 at the end, -1 on error. */
int ctr_import_next(struct ctr_import *r, struct ctr_import_entry *e, struct ctr_err *err);

/* Stream the current entry into the content store at `content` (see store/content.h).  With an
 * expected digest whose blob already exists, the entry is skipped and the blob kept. */
int ctr_import_ingest(struct ctr_import *r, const char *content, const char *ref,
                      const char *expected, int64_t expected_size,
                      char digest_out[CTR_DIGEST_LEN], uint64_t *size_out, struct ctr_err *err);

/* The current entry's bytes, at most cap (a larger entry is EFBIG). */
int ctr_import_read(struct ctr_import *r, size_t cap, char **out, size_t *len,
                    struct ctr_err *err);

void ctr_import_close(struct ctr_import *r);

#endif
