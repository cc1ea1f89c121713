/* cgroup file I/O and the typed reading of linux.resources shared by cgroup*.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroups/internal.h"
#include "base/files.h"
#include "base/cleanup.h"

enum cg_where cg_where(const struct cg_target *t, enum ctr_cgroup_controller c)
{
    if (t->v1[c])
        return CG_V1;
    if (t->v2 && (t->l->v2.controllers & (1u << c)))
        return CG_V2;
    return CG_NONE;
}

int cg_unavailable(struct ctr_err *err, const char *what, enum ctr_cgroup_controller c)
{
    return ctr_fail(err, ENOTSUP, "%s: the %s controller is not available (neither a cgroup v1 "
                    "hierarchy nor in cgroup v2's cgroup.controllers)", what,
                    ctr_cgroup_controller_name(c));
}

int cg_write(const char *dir, const char *file, const char *value, struct ctr_err *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return ctr_fail(err, ENAMETOOLONG, "write `%s/%s'", dir, file);
    size_t len = strlen(value);
    cleanup_free char *buf = malloc(len + 2);
    if (buf == NULL)
        return ctr_fail(err, ENOMEM, "write `%s'", path);
    memcpy(buf, value, len);
    buf[len] = '\n';
    /* O_APPEND, never O_CREAT: a cgroup file that does not exist means the kernel lacks the
     * feature, and appending keeps the sequence of writes visible in the specs' fake trees */
    cleanup_close int fd = RETRY(open(path, O_WRONLY | O_APPEND | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "write `%s' = %s", path, value);
    ssize_t n = RETRY(write(fd, buf, len + 1));
    if (n < 0)
        return ctr_fail(err, errno, "write `%s' = %s", path, value);
    if ((size_t)n != len + 1)
        return ctr_fail(err, EIO, "write `%s' = %s: short write", path, value);
    return 0;
}

int cg_writef(struct ctr_err *err, const char *dir, const char *file, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof value)
        return ctr_fail(err, E2BIG, "write `%s/%s': value too long", dir, file);
    return cg_write(dir, file, value, err);
}

int cg_exists(const char *dir, const char *file)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return 0;
    return access(path, F_OK) == 0;
}

int cg_read(const char *dir, const char *file, char **out, struct ctr_err *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return ctr_fail(err, ENAMETOOLONG, "read `%s/%s'", dir, file);
    char *buf;
    size_t len;
    if (ctr_read_file(path, 64u << 20, &buf, &len, err) < 0)
        return -1;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    *out = buf;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (strcmp(s, "max") == 0) {
        *out = UINT64_MAX;
        return 0;
    }
    if (*s == '-') /* "-1" in some v1 files means unlimited */
        return strcmp(s, "-1") == 0 ? (*out = UINT64_MAX, 0) : -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || (*end && *end != '\n' && *end != ' '))
        return -1;
    /* v1 prints "unlimited" as LONG_MAX rounded down to a page */
    *out = v >= (uint64_t)INT64_MAX - 4095 ? UINT64_MAX : v;
    return 0;
}

int cg_read_u64(const char *dir, const char *file, uint64_t *out, struct ctr_err *err)
{
    cleanup_free char *s = NULL;
    if (cg_read(dir, file, &s, err) < 0)
        return -1;
    if (parse_u64(s, out) < 0)
        return ctr_fail(err, EINVAL, "read `%s/%s': not a number: %.40s", dir, file, s);
    return 0;
}

int cg_keyed(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return parse_u64(p + klen + 1, out) == 0;
    }
    return 0;
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int cg_json_i64(const cJSON *obj, const char *key, int64_t *out, const char *where,
                struct ctr_err *err)
{
    const cJSON *v = field(obj, key);
    if (v == NULL)
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || floor(d) != d || d < -9223372036854775808.0)
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected an integer", where);
    /* doubles round 2^63-1 up to 2^63: that is "unlimited" */
    *out = d >= 9223372036854775807.0 ? INT64_MAX : (int64_t)d;
    return 1;
}

int cg_json_u64(const cJSON *obj, const char *key, uint64_t *out, const char *where,
                struct ctr_err *err)
{
    const cJSON *v = field(obj, key);
    if (v == NULL)
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || floor(d) != d || d < 0)
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected an unsigned integer", where);
    *out = d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    return 1;
}

int cg_json_bool(const cJSON *obj, const char *key, int *out, const char *where,
                 struct ctr_err *err)
{
    const cJSON *v = field(obj, key);
    if (v == NULL)
        return 0;
    if (!cJSON_IsBool(v))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected a boolean", where);
    *out = cJSON_IsTrue(v);
    return 1;
}

int cg_json_str(const cJSON *obj, const char *key, const char **out, const char *where,
                struct ctr_err *err)
{
    const cJSON *v = field(obj, key);
    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected a string", where);
    *out = v->valuestring;
    return 1;
}

int cg_json_array(const cJSON *obj, const char *key, const cJSON **out, const char *where,
                  struct ctr_err *err)
{
    const cJSON *v = field(obj, key);
    if (v == NULL)
        return 0;
    if (!cJSON_IsArray(v))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected an array", where);
    *out = v;
    return 1;
}

int cg_safe_name(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0 && strchr(s, '\n') == NULL;
}

/* ------------------------------------------------------------------ device rules */

int cg_device_rule(const cJSON *d, size_t i, struct cg_device_rule *r, struct ctr_err *err)
{
    char where[64];
    snprintf(where, sizeof where, "devices[%zu]", i);
    if (!cJSON_IsObject(d))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected an object", where);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "allow");
    if (!cJSON_IsBool(a))
        return ctr_fail(err, EINVAL, "linux.resources.%s.allow: expected a boolean", where);
    const char *type = "a", *access = "rwm";
    if (cg_json_str(d, "type", &type, where, err) < 0 ||
        cg_json_str(d, "access", &access, where, err) < 0)
        return -1;
    if (strlen(type) != 1 || !strchr("abc", type[0]))
        return ctr_fail(err, EINVAL, "linux.resources.%s.type: `%s' is not a, b or c", where,
                        type);
    if (access[0] == '\0' || strspn(access, "rwm") != strlen(access) || strlen(access) > 3)
        return ctr_fail(err, EINVAL, "linux.resources.%s.access: `%s' is not made of r, w, m",
                        where, access);
    int64_t major = -1, minor = -1;
    if (cg_json_i64(d, "major", &major, where, err) < 0 ||
        cg_json_i64(d, "minor", &minor, where, err) < 0)
        return -1;
    /* the kernel's numbers are 32 bits (12 + 20 in dev_t) */
    if (major > INT32_MAX || minor > INT32_MAX)
        return ctr_fail(err, EINVAL, "linux.resources.%s: major/minor out of range", where);
    r->allow = cJSON_IsTrue(a);
    r->type = type[0];
    r->major = major < 0 ? -1 : major;
    r->minor = minor < 0 ? -1 : minor;
    snprintf(r->access, sizeof r->access, "%s", access);
    return 0;
}

void cg_device_rule_string(const struct cg_device_rule *r, char *buf, size_t size)
{
    char smaj[24] = "*", smin[24] = "*";
    if (r->major >= 0)
        snprintf(smaj, sizeof smaj, "%" PRId64, r->major);
    if (r->minor >= 0)
        snprintf(smin, sizeof smin, "%" PRId64, r->minor);
    snprintf(buf, size, "%c %s:%s %s", r->type, smaj, smin, r->access);
}

int cg_cpu_parse(const cJSON *cpu, struct cg_cpu *c, struct ctr_err *err)
{
    *c = (struct cg_cpu){0};
    if (cg_json_u64(cpu, "shares", &c->shares, "cpu.shares", err) < 0 ||
        cg_json_u64(cpu, "period", &c->period, "cpu.period", err) < 0 ||
        cg_json_i64(cpu, "quota", &c->quota, "cpu.quota", err) < 0 ||
        (c->has_burst = cg_json_u64(cpu, "burst", &c->burst, "cpu.burst", err)) < 0 ||
        cg_json_u64(cpu, "realtimePeriod", &c->rt_period, "cpu.realtimePeriod", err) < 0 ||
        cg_json_i64(cpu, "realtimeRuntime", &c->rt_runtime, "cpu.realtimeRuntime", err) < 0 ||
        (c->has_idle = cg_json_i64(cpu, "idle", &c->idle, "cpu.idle", err)) < 0)
        return -1;
    return 0;
}
