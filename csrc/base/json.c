#include "base/json.h"
#include "base/number.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *sep(const char *where)
{
    return where && *where ? "." : "";
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (j == NULL || cJSON_IsNull(j)) ? NULL : j;
}

static int type_error(const char *where, const char *key, const char *want, struct ctr_err *err)
{
    return ctr_fail(err, 0, "config.json: %s%s%s: expected %s", where ? where : "", sep(where),
                    key, want);
}

int ctr_json_object(const cJSON *obj, const char *where, const char *key, const cJSON **out,
                    struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    *out = NULL;
    if (j == NULL)
        return 0;
    if (!cJSON_IsObject(j))
        return type_error(where, key, "an object", err);
    *out = j;
    return 0;
}

int ctr_json_array(const cJSON *obj, const char *where, const char *key, const cJSON **out,
                   struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    *out = NULL;
    if (j == NULL)
        return 0;
    if (!cJSON_IsArray(j))
        return type_error(where, key, "an array", err);
    *out = j;
    return 0;
}

int ctr_json_string(const cJSON *obj, const char *where, const char *key, const char **out,
                    struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    *out = NULL;
    if (j == NULL)
        return 0;
    if (!cJSON_IsString(j) || j->valuestring == NULL)
        return type_error(where, key, "a string", err);
    *out = j->valuestring;
    return 0;
}

int ctr_json_bool(const cJSON *obj, const char *where, const char *key, int *out,
                  struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    if (j == NULL)
        return 0;
    if (!cJSON_IsBool(j))
        return type_error(where, key, "a boolean", err);
    *out = cJSON_IsTrue(j);
    return 0;
}

int ctr_json_int(const cJSON *obj, const char *where, const char *key, int64_t min, int64_t max,
                 int64_t *out, int *present, struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    if (present)
        *present = 0;
    if (j == NULL)
        return 0;
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!cJSON_IsNumber(j) || !ctr_is_whole(d))
        return type_error(where, key, "an integer", err);
    if (d < (double)min || d > (double)max)
        return ctr_fail(err, 0, "config.json: %s%s%s: %.0f is out of range [%lld, %lld]",
                        where ? where : "", sep(where), key, d, (long long)min, (long long)max);
    /* doubles round 2^63-1 up to 2^63: at the top of the range that is the maximum
     * ("unlimited" for a cgroup limit) */
    *out = max == INT64_MAX && d >= 9223372036854775807.0 ? INT64_MAX : (int64_t)d;
    if (present)
        *present = 1;
    return 0;
}

int ctr_json_uint64(const cJSON *obj, const char *where, const char *key, uint64_t *out,
                    int *present, struct ctr_err *err)
{
    const cJSON *j = field(obj, key);
    if (present)
        *present = 0;
    if (j == NULL)
        return 0;
    double d = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!cJSON_IsNumber(j) || !ctr_is_whole(d) || d < 0)
        return type_error(where, key, "an unsigned integer", err);
    *out = d >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)d;
    if (present)
        *present = 1;
    return 0;
}

int ctr_json_strv(const cJSON *obj, const char *where, const char *key, const char ***out,
                  size_t *n, struct ctr_err *err)
{
    const cJSON *a;
    *out = NULL;
    if (n)
        *n = 0;
    if (ctr_json_array(obj, where, key, &a, err) < 0)
        return -1;
    if (a == NULL)
        return 0;
    size_t count = (size_t)cJSON_GetArraySize(a);
    const char **v = calloc(count + 1, sizeof *v);
    if (v == NULL)
        return ctr_fail(err, ENOMEM, "config.json: %s%s%s", where ? where : "", sep(where), key);
    size_t i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c) || c->valuestring == NULL) {
            free(v);
            return ctr_fail(err, 0, "config.json: %s%s%s[%zu]: expected string",
                            where ? where : "", sep(where), key, i);
        }
        v[i] = c->valuestring;
    }
    *out = v;
    if (n)
        *n = count;
    return 0;
}
