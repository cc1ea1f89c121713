/* cgroup v2 files: linux.resources converted as runc's libcontainer/cgroups/fs2 converts them
 * (v1-style numbers in the spec, v2 files on disk), and statistics read back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups/internal.h"
#include "base/cleanup.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        if ((expr) < 0)                                                                        \
            return -1;                                                                         \
    } while (0)

/* 0 is "unset" (nothing written), -1 is "max" (runc's numToStr) */
static void num(char *buf, size_t size, int64_t v)
{
    if (v == 0)
        buf[0] = '\0';
    else if (v < 0)
        snprintf(buf, size, "max");
    else
        snprintf(buf, size, "%" PRId64, v);
}

int ctr_cgroup_v2_memory(const char *dir, const cJSON *mem, struct ctr_err *err)
{
    int64_t limit = 0, swap = 0, reservation = 0;
    TRY(cg_json_i64(mem, "limit", &limit, "memory.limit", err));
    TRY(cg_json_i64(mem, "swap", &swap, "memory.swap", err));
    TRY(cg_json_i64(mem, "reservation", &reservation, "memory.reservation", err));
    /* kernel, kernelTCP, swappiness and disableOOMKiller have no v2 files: ignored, as runc
     * ignores them */

    /* the spec's swap is memory+swap (v1's memsw); v2's memory.swap.max is swap alone */
    int64_t v2swap;
    if (limit == -1 && swap == 0) {
        v2swap = -1;
    } else if (swap == -1 || swap == 0) {
        v2swap = swap;
    } else {
        if (limit == 0 || limit == -1)
            return ctr_fail(err, EINVAL, "linux.resources.memory.swap: a swap limit needs a "
                            "memory limit");
        if (limit < 0)
            return ctr_fail(err, EINVAL, "linux.resources.memory.limit: invalid value %" PRId64,
                            limit);
        if (swap < limit)
            return ctr_fail(err, EINVAL, "linux.resources.memory.swap: memory+swap limit %" PRId64
                            " is below the memory limit %" PRId64, swap, limit);
        v2swap = swap - limit;
    }
    char sv[32];
    num(sv, sizeof sv, v2swap);
    if (sv[0] == '\0' && v2swap == 0 && swap > 0)
        snprintf(sv, sizeof sv, "0"); /* memory == memory+swap: no swap at all */
    if (sv[0]) {
        struct ctr_err e;
        if (cg_write(dir, "memory.swap.max", sv, &e) < 0) {
            /* without swap accounting there is no file: "max" and "0" then hold anyway */
            if (!(e.code == ENOENT && (strcmp(sv, "max") == 0 || strcmp(sv, "0") == 0))) {
                *err = e;
                return -1;
            }
        }
    }
    char v[32];
    num(v, sizeof v, limit);
    if (v[0])
        TRY(cg_write(dir, "memory.max", v, err));
    num(v, sizeof v, reservation);
    if (v[0])
        TRY(cg_write(dir, "memory.low", v, err));
    return 0;
}

/* cpu.shares (2..262144) -> cpu.weight (1..10000), runc's ConvertCPUSharesToCgroupV2Value */
static uint64_t shares_to_weight(uint64_t shares)
{
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

int ctr_cgroup_v2_cpu(const char *dir, const cJSON *cpu, struct ctr_err *err)
{
    struct cg_cpu c;
    TRY(cg_cpu_parse(cpu, &c, err));
    uint64_t shares = c.shares, period = c.period, burst = c.burst, rt_period = c.rt_period;
    int64_t quota = c.quota, rt_runtime = c.rt_runtime, idle = c.idle;
    int has_burst = c.has_burst, has_idle = c.has_idle;
    if (rt_period != 0 || rt_runtime != 0)
        return ctr_fail(err, ENOTSUP, "linux.resources.cpu.realtimePeriod/realtimeRuntime: "
                        "real-time scheduling limits are not supported on cgroup v2");
    if (has_idle)
        TRY(cg_writef(err, dir, "cpu.idle", "%" PRId64, idle));
    if (shares != 0)
        TRY(cg_writef(err, dir, "cpu.weight", "%" PRIu64, shares_to_weight(shares)));
    if (quota != 0 || period != 0) {
        /* "QUOTA PERIOD"; a quota of -1 is "max"; without a period the kernel keeps its own */
        char v[64];
        int n = quota > 0 ? snprintf(v, sizeof v, "%" PRId64, quota) : snprintf(v, sizeof v, "max");
        if (period != 0)
            snprintf(v + n, sizeof v - n, " %" PRIu64, period);
        TRY(cg_write(dir, "cpu.max", v, err));
    }
    if (has_burst)
        TRY(cg_writef(err, dir, "cpu.max.burst", "%" PRIu64, burst));
    return 0;
}

static int io_max(const char *dir, const cJSON *bio, const char *key, const char *name,
                  struct ctr_err *err)
{
    const cJSON *list;
    int r = cg_json_array(bio, key, &list, key, err);
    TRY(r);
    if (r == 0)
        return 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, list) {
        int64_t major = -1, minor = -1;
        uint64_t rate = 0;
        if (cg_json_i64(d, "major", &major, key, err) <= 0 ||
            cg_json_i64(d, "minor", &minor, key, err) <= 0 || major < 0 || minor < 0 ||
            cg_json_u64(d, "rate", &rate, key, err) <= 0)
            return ctr_fail(err, EINVAL, "linux.resources.blockIO.%s: major, minor and rate "
                            "are required", key);
        TRY(cg_writef(err, dir, "io.max", "%" PRId64 ":%" PRId64 " %s=%" PRIu64, major, minor,
                      name, rate));
    }
    return 0;
}

int ctr_cgroup_v2_io(const char *dir, const cJSON *bio, struct ctr_err *err)
{
    uint64_t weight = 0;
    TRY(cg_json_u64(bio, "weight", &weight, "blockIO.weight", err));
    int bfq = cg_exists(dir, "io.bfq.weight");
    if (weight != 0) {
        if (bfq) /* BFQ keeps v1's range 10..1000 */
            TRY(cg_writef(err, dir, "io.bfq.weight", "%" PRIu64, weight));
        else /* 10..1000 -> 1..10000, runc's ConvertBlkIOToIOWeightValue */
            TRY(cg_writef(err, dir, "io.weight", "%" PRIu64,
                          weight < 10 ? 1 : 1 + (weight - 10) * 9999 / 990));
    }
    const cJSON *list;
    int r = cg_json_array(bio, "weightDevice", &list, "blockIO.weightDevice", err);
    TRY(r);
    if (r && cJSON_GetArraySize(list) > 0) {
        if (!bfq)
            return ctr_fail(err, ENOTSUP, "linux.resources.blockIO.weightDevice: needs the BFQ "
                            "scheduler (io.bfq.weight) on cgroup v2");
        const cJSON *d;
        cJSON_ArrayForEach(d, list) {
            int64_t major = -1, minor = -1;
            uint64_t w = 0;
            if (cg_json_i64(d, "major", &major, "blockIO.weightDevice", err) <= 0 ||
                cg_json_i64(d, "minor", &minor, "blockIO.weightDevice", err) <= 0)
                return ctr_fail(err, EINVAL, "linux.resources.blockIO.weightDevice: major and "
                                "minor are required");
            TRY(cg_json_u64(d, "weight", &w, "blockIO.weightDevice.weight", err));
            if (w != 0)
                TRY(cg_writef(err, dir, "io.bfq.weight", "%" PRId64 ":%" PRId64 " %" PRIu64,
                              major, minor, w));
        }
    }
    TRY(io_max(dir, bio, "throttleReadBpsDevice", "rbps", err));
    TRY(io_max(dir, bio, "throttleWriteBpsDevice", "wbps", err));
    TRY(io_max(dir, bio, "throttleReadIOPSDevice", "riops", err));
    TRY(io_max(dir, bio, "throttleWriteIOPSDevice", "wiops", err));
    return 0;
}

int ctr_cgroup_v2_unified(const char *dir, const cJSON *unified, struct ctr_err *err)
{
    if (!cJSON_IsObject(unified))
        return ctr_fail(err, EINVAL, "linux.resources.unified: expected an object");
    const cJSON *kv;
    /* check every key first: nothing is written for a refused map */
    cJSON_ArrayForEach(kv, unified) {
        if (!cg_safe_name(kv->string) || strstr(kv->string, ".."))
            return ctr_fail(err, EINVAL, "linux.resources.unified: key `%s' is not a file name "
                            "of the cgroup", kv->string);
        if (!cJSON_IsString(kv))
            return ctr_fail(err, EINVAL, "linux.resources.unified.%s: expected a string",
                            kv->string);
    }
    cJSON_ArrayForEach(kv, unified)
        TRY(cg_write(dir, kv->string, kv->valuestring, err));
    return 0;
}

static int opt_u64(const char *dir, const char *file, uint64_t *v)
{
    struct ctr_err ignored;
    return cg_read_u64(dir, file, v, &ignored) == 0;
}

int ctr_cgroup_v2_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err)
{
    (void)err;
    const char *dir = t->v2;
    if (dir == NULL)
        return 0;
    uint64_t v;
    struct ctr_err ignored;
    if (cg_where(t, CTR_CG_MEMORY) == CG_V2) {
        if (opt_u64(dir, "memory.current", &v))
            CG_SET(s, memory_usage, v);
        if (opt_u64(dir, "memory.max", &v))
            CG_SET(s, memory_limit, v);
        if (opt_u64(dir, "memory.peak", &v))
            CG_SET(s, memory_max_usage, v);
        if (opt_u64(dir, "memory.swap.current", &v))
            CG_SET(s, memory_swap_usage, v);
        cleanup_free char *stat = NULL;
        if (cg_read(dir, "memory.stat", &stat, &ignored) == 0) {
            if (cg_keyed(stat, "file", &v))
                CG_SET(s, memory_cache, v);
            if (cg_keyed(stat, "anon", &v))
                CG_SET(s, memory_rss, v);
        }
        cleanup_free char *ev = NULL;
        if (cg_read(dir, "memory.events", &ev, &ignored) == 0) {
            if (cg_keyed(ev, "oom", &v))
                CG_SET(s, oom, v);
            if (cg_keyed(ev, "oom_kill", &v))
                CG_SET(s, oom_kill, v);
            if (cg_keyed(ev, "max", &v))
                CG_SET(s, memory_failcnt, v);
        }
    }
    /* cpu.stat's usage lines exist in every v2 cgroup, with or without the cpu controller */
    int usage = t->v1[CTR_CG_CPUACCT] == NULL;
    int throttling = cg_where(t, CTR_CG_CPU) == CG_V2;
    cleanup_free char *cs = NULL;
    if ((usage || throttling) && cg_read(dir, "cpu.stat", &cs, &ignored) == 0) {
        if (usage && cg_keyed(cs, "usage_usec", &v))
            CG_SET(s, cpu_usage, v * 1000);
        if (usage && cg_keyed(cs, "user_usec", &v))
            CG_SET(s, cpu_user, v * 1000);
        if (usage && cg_keyed(cs, "system_usec", &v))
            CG_SET(s, cpu_system, v * 1000);
        if (throttling && cg_keyed(cs, "nr_periods", &v))
            CG_SET(s, cpu_periods, v);
        if (throttling && cg_keyed(cs, "nr_throttled", &v))
            CG_SET(s, cpu_throttled_periods, v);
        if (throttling && cg_keyed(cs, "throttled_usec", &v))
            CG_SET(s, cpu_throttled_time, v * 1000);
    }
    if (cg_where(t, CTR_CG_PIDS) == CG_V2) {
        if (opt_u64(dir, "pids.current", &v))
            CG_SET(s, pids_current, v);
        if (opt_u64(dir, "pids.max", &v))
            CG_SET(s, pids_limit, v);
    }
    return 0;
}
