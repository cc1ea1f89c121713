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

int ctr_cgroup_v2_memory(const char *dir, const struct ctr_res_memory *m, struct ctr_err *err)
{
    int64_t limit = m->limit, swap = m->swap, reservation = m->reservation;
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

int ctr_cgroup_v2_cpu(const char *dir, const struct ctr_res_cpu *c, struct ctr_err *err)
{
    uint64_t shares = c->shares, period = c->period;
    int64_t quota = c->quota;
    if (c->rt_period != 0 || c->rt_runtime != 0)
        return ctr_fail(err, ENOTSUP, "linux.resources.cpu.realtimePeriod/realtimeRuntime: "
                        "real-time scheduling limits are not supported on cgroup v2");
    if (c->has_idle)
        TRY(cg_writef(err, dir, "cpu.idle", "%" PRId64, c->idle));
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
    if (c->has_burst)
        TRY(cg_writef(err, dir, "cpu.max.burst", "%" PRIu64, c->burst));
    return 0;
}

static int io_max(const char *dir, const struct ctr_res_blkio_list *l, const char *key,
                  const char *name, struct ctr_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct ctr_res_blkio_device *d = &l->v[i];
        if (!d->has_major || !d->has_minor || d->major < 0 || d->minor < 0 || !d->has_rate)
            return ctr_fail(err, EINVAL, "linux.resources.blockIO.%s: major, minor and rate "
                            "are required", key);
        TRY(cg_writef(err, dir, "io.max", "%" PRId64 ":%" PRId64 " %s=%" PRIu64, d->major,
                      d->minor, name, d->rate));
    }
    return 0;
}

int ctr_cgroup_v2_io(const char *dir, const struct ctr_res_blkio *b, struct ctr_err *err)
{
    uint64_t weight = b->weight;
    int bfq = cg_exists(dir, "io.bfq.weight");
    if (weight != 0) {
        if (bfq) /* BFQ keeps v1's range 10..1000 */
            TRY(cg_writef(err, dir, "io.bfq.weight", "%" PRIu64, weight));
        else /* 10..1000 -> 1..10000, runc's ConvertBlkIOToIOWeightValue */
            TRY(cg_writef(err, dir, "io.weight", "%" PRIu64,
                          weight < 10 ? 1 : 1 + (weight - 10) * 9999 / 990));
    }
    if (b->weight_device.n > 0 && !bfq)
        return ctr_fail(err, ENOTSUP, "linux.resources.blockIO.weightDevice: needs the BFQ "
                        "scheduler (io.bfq.weight) on cgroup v2");
    for (size_t i = 0; i < b->weight_device.n; i++) {
        const struct ctr_res_blkio_device *d = &b->weight_device.v[i];
        if (!d->has_major || !d->has_minor)
            return ctr_fail(err, EINVAL, "linux.resources.blockIO.weightDevice: major and "
                            "minor are required");
        if (d->weight != 0)
            TRY(cg_writef(err, dir, "io.bfq.weight", "%" PRId64 ":%" PRId64 " %" PRIu64,
                          d->major, d->minor, d->weight));
    }
    for (int i = 0; i < CTR_RES_THROTTLE_COUNT; i++)
        TRY(io_max(dir, &b->throttle[i], ctr_res_throttle_keys[i], cg_throttles[i].v2_key,
                   err));
    return 0;
}

int ctr_cgroup_v2_unified(const char *dir, const struct ctr_resources *r, struct ctr_err *err)
{
    for (size_t i = 0; i < r->nunified; i++)
        TRY(cg_write(dir, r->unified[i].key, r->unified[i].value, err));
    return 0;
}

int ctr_cgroup_v2_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err)
{
    (void)err;
    static const enum ctr_cgroup_controller read[] = {CTR_CG_MEMORY, CTR_CG_CPU, CTR_CG_PIDS};
    for (size_t i = 0; i < ARRAY_SIZE(read); i++)
        if (cg_where(t, read[i]) == CG_V2)
            cg_stats_read(t->v2, read[i], 1, s);
    /* usage: cpu.stat has it in every v2 cgroup; a v1 cpuacct hierarchy is read instead */
    if (t->v1[CTR_CG_CPUACCT] == NULL)
        cg_stats_read(t->v2, CTR_CG_CPUACCT, 1, s);
    return 0;
}
