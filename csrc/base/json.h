/* Typed reads of an OCI config.json held as a cJSON tree.
 *
 * Every getter names the field it was asked for in its error, the way a reader of the spec would
 * write it:
 *
 *     config.json: process.args[2]: expected string
 *
 * `where` is the path of the containing object ("process", "linux.devices[0]"); `key` the field.
 * An absent field (or JSON null) is not an error: the getter leaves *out at its "absent" value
 * (NULL, or *present = 0) and returns 0.  A field of the wrong type, or a number out of range,
 * is an error (EINVAL).  Strings returned point into the cJSON tree and live as long as it. */
#ifndef CTR_JSON_H
#define CTR_JSON_H

#include <stdint.h>

#include <cJSON.h>

#include "base/error.h"

int ctr_json_object(const cJSON *obj, const char *where, const char *key, const cJSON **out,
                    struct ctr_err *err);
int ctr_json_array(const cJSON *obj, const char *where, const char *key, const cJSON **out,
                   struct ctr_err *err);
int ctr_json_string(const cJSON *obj, const char *where, const char *key, const char **out,
                    struct ctr_err *err);
int ctr_json_bool(const cJSON *obj, const char *where, const char *key, int *out,
                  struct ctr_err *err);
/* An integer in [min, max]; *present says whether the field was there. */
int ctr_json_int(const cJSON *obj, const char *where, const char *key, int64_t min, int64_t max,
                 int64_t *out, int *present, struct ctr_err *err);
/* An unsigned 64-bit integer (rlimits: 2^64-1 is "unlimited"; doubles round it, so any value
 * at or above 2^64 - 2048 reads as UINT64_MAX). */
int ctr_json_uint64(const cJSON *obj, const char *where, const char *key, uint64_t *out,
                    int *present, struct ctr_err *err);

/* An array of strings as a malloc'd NULL-terminated vector of pointers into the tree (the
 * vector is the caller's to free; *out stays NULL when the field is absent). */
int ctr_json_strv(const cJSON *obj, const char *where, const char *key, const char ***out,
                  size_t *n, struct ctr_err *err);

#endif
