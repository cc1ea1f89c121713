/* Capabilities by name, and the five sets of a process.
 *
 * Names are the kernel's (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE); a name the table does not
 * know is refused ("unknown capability CAP_FOO") rather than ignored, so that a spec never
 * silently runs with fewer (or, by a typo in a drop list, more) privileges than it says. */
#ifndef CTR_CAPS_H
#define CTR_CAPS_H

#include <stdint.h>

#include "base/error.h"

struct ctr_caps {
    uint64_t bounding, effective, permitted, inheritable, ambient;
};

/* The number of a capability name ("CAP_SYS_ADMIN"), or -1. */
int ctr_cap_from_name(const char *name);
const char *ctr_cap_name(int cap);

/* OR the names in a NULL-terminated vector into *set; `where` names the list in errors. */
int ctr_caps_parse(const char *const *names, const char *where, uint64_t *set,
                   struct ctr_err *err);

/* Apply the sets to the calling process, in the order the kernel needs:
 *  1. drop from the bounding set every capability not in `bounding` (PR_CAPBSET_DROP needs
 *     CAP_SETPCAP in the effective set, so this comes while we still hold everything);
 *  2. capset() effective, permitted, inheritable;
 *  3. clear the ambient set, then raise each ambient capability that is both permitted and
 *     inheritable (the kernel refuses the others; they are left out, as runc leaves them).
 * ctr_caps_drop_bounding() is step 1 alone, for callers that change uid between 1 and 2. */
int ctr_caps_drop_bounding(const struct ctr_caps *caps, struct ctr_err *err);
int ctr_caps_set(const struct ctr_caps *caps, struct ctr_err *err);

#endif
