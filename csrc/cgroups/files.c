/* cgroup file I/O shared by cgroups/, and the groups of linux.resources whose files are the
 * same in v1 and v2 but for their names. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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

int cg_stream_write(struct cg_stream *s, const char *dir, const char *file, const char *value,
                    struct ctr_err *err)
{
    if (s->fd >= 0 && (s->dir != dir || strcmp(s->file, file) != 0))
        cg_stream_close(s);
    if (s->fd < 0 &&
        (size_t)snprintf(s->path, sizeof s->path, "%s/%s", dir, file) >= sizeof s->path)
        return ctr_fail(err, ENAMETOOLONG, "write `%s/%s'", dir, file);
    size_t len = strlen(value);
    cleanup_free char *buf = malloc(len + 2);
    if (buf == NULL)
        return ctr_fail(err, ENOMEM, "write `%s'", s->path);
    memcpy(buf, value, len);
    buf[len] = '\n';
    /* O_APPEND, never O_CREAT: a cgroup file that does not exist means the kernel lacks the
     * feature, and appending keeps the sequence of writes visible in the specs' fake trees */
    if (s->fd < 0) {
        s->fd = RETRY(open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC));
        if (s->fd < 0)
            return ctr_fail(err, errno, "write `%s' = %s", s->path, value);
        s->dir = dir;
        s->file = file;
    }
    ssize_t n = RETRY(write(s->fd, buf, len + 1));
    if (n < 0)
        return ctr_fail(err, errno, "write `%s' = %s", s->path, value);
    if ((size_t)n != len + 1)
        return ctr_fail(err, EIO, "write `%s' = %s: short write", s->path, value);
    return 0;
}

void cg_stream_close(struct cg_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

int cg_write(const char *dir, const char *file, const char *value, struct ctr_err *err)
{
    struct cg_stream s = CG_STREAM_INIT;
    int rc = cg_stream_write(&s, dir, file, value, err);
    cg_stream_close(&s);
    return rc;
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

void cg_device_rule_string(const struct ctr_res_device_rule *r, char *buf, size_t size)
{
    char smaj[24] = "*", smin[24] = "*";
    if (r->major >= 0)
        snprintf(smaj, sizeof smaj, "%" PRId64, r->major);
    if (r->minor >= 0)
        snprintf(smin, sizeof smin, "%" PRId64, r->minor);
    snprintf(buf, size, "%c %s:%s %s", r->type, smaj, smin, r->access);
}

/* ------------------------------------------------------------------ the same in v1 and v2 */

const char *const ctr_res_throttle_keys[CTR_RES_THROTTLE_COUNT] = {
    [CTR_RES_READ_BPS] = "throttleReadBpsDevice",
    [CTR_RES_WRITE_BPS] = "throttleWriteBpsDevice",
    [CTR_RES_READ_IOPS] = "throttleReadIOPSDevice",
    [CTR_RES_WRITE_IOPS] = "throttleWriteIOPSDevice",
};

const struct cg_throttle cg_throttles[CTR_RES_THROTTLE_COUNT] = {
    [CTR_RES_READ_BPS] = {"blkio.throttle.read_bps_device", "rbps"},
    [CTR_RES_WRITE_BPS] = {"blkio.throttle.write_bps_device", "wbps"},
    [CTR_RES_READ_IOPS] = {"blkio.throttle.read_iops_device", "riops"},
    [CTR_RES_WRITE_IOPS] = {"blkio.throttle.write_iops_device", "wiops"},
};

/* cpus/mems */
int ctr_cgroup_cpuset(const char *dir, const struct ctr_res_cpu *cpu, struct ctr_err *err)
{
    if (cpu->cpus && *cpu->cpus && cg_write(dir, "cpuset.cpus", cpu->cpus, err) < 0)
        return -1;
    if (cpu->mems && *cpu->mems && cg_write(dir, "cpuset.mems", cpu->mems, err) < 0)
        return -1;
    return 0;
}

/* a limit of 0 or below is "max" (runc), what a new cgroup has already */
int ctr_cgroup_pids_limit(const char *dir, int fresh, int64_t limit, struct ctr_err *err)
{
    if (limit <= 0)
        return fresh ? 0 : cg_write(dir, "pids.max", "max", err);
    return cg_writef(err, dir, "pids.max", "%" PRId64, limit);
}

int ctr_cgroup_hugetlb(const char *dir, int v2, const struct ctr_resources *r,
                       struct ctr_err *err)
{
    for (size_t i = 0; i < r->nhugepages; i++) {
        const char *size = r->hugepages[i].page_size;
        uint64_t limit = r->hugepages[i].limit;
        char file[128], rsvd[128];
        snprintf(file, sizeof file, v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", size);
        snprintf(rsvd, sizeof rsvd,
                 v2 ? "hugetlb.%s.rsvd.max" : "hugetlb.%s.rsvd.limit_in_bytes", size);
        if (cg_writef(err, dir, file, "%" PRIu64, limit) < 0)
            return -1;
        /* reservations are accounted apart since Linux 5.7: limit them too (runc) */
        if (cg_exists(dir, rsvd) && cg_writef(err, dir, rsvd, "%" PRIu64, limit) < 0)
            return -1;
    }
    return 0;
}

/* rdma.max reads the same in v1 and v2 */
int ctr_cgroup_rdma(const char *dir, const struct ctr_resources *r, struct ctr_err *err)
{
    for (size_t i = 0; i < r->nrdma; i++) {
        const struct ctr_res_rdma *d = &r->rdma[i];
        if (!d->has_handles && !d->has_objects)
            continue;
        char value[256] = "";
        int n = snprintf(value, sizeof value, "%s", d->device);
        if (d->has_handles)
            n += snprintf(value + n, sizeof value - n, " hca_handle=%" PRIu64, d->hca_handles);
        if (d->has_objects)
            n += snprintf(value + n, sizeof value - n, " hca_object=%" PRIu64, d->hca_objects);
        if (cg_write(dir, "rdma.max", value, err) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ statistics */

void cg_stat_set(struct ctr_cgroup_stats *s, enum ctr_cgroup_stat_index i, uint64_t v)
{
    switch (i) {
#define CG_STAT_CASE(name)                                                                     \
    case CTR_CGS_##name:                                                                       \
        s->name = v;                                                                           \
        break;
        CTR_CGROUP_STATS_FIELDS(CG_STAT_CASE)
#undef CG_STAT_CASE
    default:
        return;
    }
    s->have |= 1u << i;
}

/* Where each statistic is, per controller, in v1 and in v2: "FILE" when the file is the
 * number, "FILE KEY" for a "key value" line of it; NULL where that version has none.  A field
 * with two rows is taken from the first that the kernel has (hierarchical totals first). */
#define CG_TICKS UINT64_MAX /* a scale of 1 s / USER_HZ */
static const struct {
    enum ctr_cgroup_controller ctl;
    enum ctr_cgroup_stat_index field;
    const char *src[2];   /* v1, v2 */
    uint64_t scale[2];    /* the value is multiplied by it (usec -> ns); 0 is 1 */
} stat_srcs[] = {
    {CTR_CG_MEMORY, CTR_CGS_memory_usage, {"memory.usage_in_bytes", "memory.current"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_limit, {"memory.limit_in_bytes", "memory.max"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_max_usage, {"memory.max_usage_in_bytes", "memory.peak"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_failcnt, {"memory.failcnt", "memory.events max"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_cache, {"memory.stat total_cache", "memory.stat file"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_cache, {"memory.stat cache"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_rss, {"memory.stat total_rss", "memory.stat anon"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_memory_rss, {"memory.stat rss"}, {0}},
    {CTR_CG_MEMORY, CTR_CGS_oom_kill, {"memory.oom_control oom_kill", "memory.events oom_kill"},
     {0}},
    {CTR_CG_MEMORY, CTR_CGS_oom, {NULL, "memory.events oom"}, {0}},
    /* v1's swap usage is computed (cgroups/v1.c) */
    {CTR_CG_MEMORY, CTR_CGS_memory_swap_usage, {NULL, "memory.swap.current"}, {0}},
    /* usage: v1's cpuacct; in v2 every cgroup's cpu.stat, with or without the cpu controller */
    {CTR_CG_CPUACCT, CTR_CGS_cpu_usage, {"cpuacct.usage", "cpu.stat usage_usec"}, {0, 1000}},
    {CTR_CG_CPUACCT, CTR_CGS_cpu_user, {"cpuacct.usage_user", "cpu.stat user_usec"}, {0, 1000}},
    {CTR_CG_CPUACCT, CTR_CGS_cpu_system, {"cpuacct.usage_sys", "cpu.stat system_usec"},
     {0, 1000}},
    /* older v1 kernels: ticks */
    {CTR_CG_CPUACCT, CTR_CGS_cpu_user, {"cpuacct.stat user"}, {CG_TICKS}},
    {CTR_CG_CPUACCT, CTR_CGS_cpu_system, {"cpuacct.stat system"}, {CG_TICKS}},
    {CTR_CG_CPU, CTR_CGS_cpu_periods, {"cpu.stat nr_periods", "cpu.stat nr_periods"}, {0}},
    {CTR_CG_CPU, CTR_CGS_cpu_throttled_periods,
     {"cpu.stat nr_throttled", "cpu.stat nr_throttled"}, {0}},
    {CTR_CG_CPU, CTR_CGS_cpu_throttled_time, {"cpu.stat throttled_time", "cpu.stat throttled_usec"},
     {0, 1000}},
    {CTR_CG_PIDS, CTR_CGS_pids_current, {"pids.current", "pids.current"}, {0}},
    {CTR_CG_PIDS, CTR_CGS_pids_limit, {"pids.max", "pids.max"}, {0}},
};

/* the value of src ("FILE" or "FILE KEY") in dir; *text caches the last keyed file read */
static int stat_value(const char *dir, const char *src, char **text, char *text_of,
                      size_t size, uint64_t *v)
{
    struct ctr_err ignored;
    const char *key = strchr(src, ' ');
    if (key == NULL)
        return cg_read_u64(dir, src, v, &ignored) == 0;
    char file[64];
    snprintf(file, sizeof file, "%.*s", (int)(key - src), src);
    if (strcmp(text_of, file) != 0) {
        free(*text);
        *text = NULL;
        snprintf(text_of, size, "%s", file);
        if (cg_read(dir, file, text, &ignored) < 0)
            *text = NULL;
    }
    return *text && cg_keyed(*text, key + 1, v);
}

void cg_stats_read(const char *dir, enum ctr_cgroup_controller c, int v2,
                   struct ctr_cgroup_stats *s)
{
    cleanup_free char *text = NULL;
    char text_of[64] = "";
    long hz = sysconf(_SC_CLK_TCK);
    for (size_t i = 0; dir && i < ARRAY_SIZE(stat_srcs); i++) {
        const char *src = stat_srcs[i].src[v2 != 0];
        uint64_t scale = stat_srcs[i].scale[v2 != 0], v;
        if (stat_srcs[i].ctl != c || src == NULL || (s->have & (1u << stat_srcs[i].field)) ||
            (scale == CG_TICKS && hz <= 0) ||
            !stat_value(dir, src, &text, text_of, sizeof text_of, &v))
            continue;
        if (scale == CG_TICKS)
            scale = 1000000000ull / (uint64_t)hz;
        cg_stat_set(s, stat_srcs[i].field, scale ? v * scale : v);
    }
}
