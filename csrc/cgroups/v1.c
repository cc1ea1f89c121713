/* cgroup v1 files: linux.resources written as runc's libcontainer/cgroups/fs writes them, and
 * statistics read back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroups/internal.h"
#include "base/cleanup.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        if ((expr) < 0)                                                                        \
            return -1;                                                                         \
    } while (0)

/* ------------------------------------------------------------------ memory */

/* a limit field: written when set (0 is unset) and, with `optional`, when the kernel still
 * has the file */
static int limit(const char *dir, const char *file, int64_t v, int optional,
                 struct ctr_err *err)
{
    if (v == 0 || (optional && !cg_exists(dir, file)))
        return 0;
    return cg_writef(err, dir, file, "%" PRId64, v);
}

/* memory.limit_in_bytes; EBUSY is a limit below what the cgroup holds now, said as runc says
 * it (shims and users match it) */
static int memory_limit(const char *dir, int64_t v, struct ctr_err *err)
{
    struct ctr_err e;
    if (limit(dir, "memory.limit_in_bytes", v, 0, &e) == 0)
        return 0;
    if (e.code != EBUSY) {
        *err = e;
        return -1;
    }
    uint64_t usage = 0, peak = 0;
    struct ctr_err ignored;
    cg_read_u64(dir, "memory.usage_in_bytes", &usage, &ignored);
    cg_read_u64(dir, "memory.max_usage_in_bytes", &peak, &ignored);
    ctr_fail(err, 0, "unable to set memory limit to %" PRId64 " (current usage: %" PRIu64
             ", peak usage: %" PRIu64 ")", v, usage, peak);
    err->code = EBUSY; /* the cause stays EBUSY; the text is runc's, without strerror */
    return -1;
}

int ctr_cgroup_v1_memory(const char *dir, const struct ctr_res_memory *m, struct ctr_err *err)
{
    int64_t swap = m->swap;
    /* v1's swap is the memory+swap limit (memory.memsw.limit_in_bytes).  Unlimited memory
     * with swap unset means unlimited swap too, where the kernel has swap accounting. */
    if (m->limit == -1 && swap == 0 && cg_exists(dir, "memory.memsw.limit_in_bytes"))
        swap = -1;
    int swap_first = 0;
    if (m->limit != 0 && swap != 0) {
        /* the kernel refuses memsw < limit at every moment: raise memsw first when the new
         * value is above the current limit, else lower the limit first (runc's order) */
        uint64_t cur;
        TRY(cg_read_u64(dir, "memory.limit_in_bytes", &cur, err));
        swap_first = swap == -1 || (cur != UINT64_MAX && cur < (uint64_t)swap);
    }
    if (swap_first)
        TRY(limit(dir, "memory.memsw.limit_in_bytes", swap, 0, err));
    TRY(memory_limit(dir, m->limit, err));
    if (!swap_first)
        TRY(limit(dir, "memory.memsw.limit_in_bytes", swap, 0, err));
    TRY(limit(dir, "memory.soft_limit_in_bytes", m->reservation, 0, err));
    /* kernel memory limits are gone from recent kernels: write them only where the file is */
    TRY(limit(dir, "memory.kmem.limit_in_bytes", m->kernel, 1, err));
    TRY(limit(dir, "memory.kmem.tcp.limit_in_bytes", m->kernel_tcp, 1, err));
    if (m->has_swappiness) {
        if (m->swappiness > 100)
            return ctr_fail(err, EINVAL, "linux.resources.memory.swappiness: %" PRIu64
                            " is not in 0-100", m->swappiness);
        TRY(cg_writef(err, dir, "memory.swappiness", "%" PRIu64, m->swappiness));
    }
    if (m->disable_oom_killer)
        TRY(cg_write(dir, "memory.oom_control", "1", err));
    if (m->use_hierarchy >= 0)
        TRY(cg_write(dir, "memory.use_hierarchy", m->use_hierarchy ? "1" : "0", err));
    return 0;
}

/* ------------------------------------------------------------------ cpu */

/* what a new cgroup's cpu.shares holds */
#define CPU_SHARES_DEFAULT 1024

int ctr_cgroup_v1_cpu(const char *dir, int fresh, const struct ctr_res_cpu *c,
                      struct ctr_err *err)
{
    /* ctr asks for 1024 shares unless told otherwise: a new cgroup has them already */
    if (c->shares != 0 && !(fresh && c->shares == CPU_SHARES_DEFAULT)) {
        TRY(cg_writef(err, dir, "cpu.shares", "%" PRIu64, c->shares));
        /* the kernel clamps to 2..262144 without an error: read back and say so */
        uint64_t got;
        TRY(cg_read_u64(dir, "cpu.shares", &got, err));
        if (got != c->shares)
            return ctr_fail(err, EINVAL, "linux.resources.cpu.shares: the %s allowed is %" PRIu64,
                            c->shares > got ? "maximum" : "minimum", got);
    }
    int period_later = 0;
    if (c->period != 0) {
        struct ctr_err e;
        if (cg_writef(&e, dir, "cpu.cfs_period_us", "%" PRIu64, c->period) < 0) {
            /* a period below the current one can break the parent's quota until the new
             * quota is in: retry after the quota (runc) */
            if (e.code != EINVAL || c->quota == 0) {
                *err = e;
                return -1;
            }
            period_later = 1;
        }
    }
    TRY(limit(dir, "cpu.cfs_quota_us", c->quota, 0, err));
    if (period_later)
        TRY(cg_writef(err, dir, "cpu.cfs_period_us", "%" PRIu64, c->period));
    if (c->has_burst)
        TRY(cg_writef(err, dir, "cpu.cfs_burst_us", "%" PRIu64, c->burst));
    if (c->rt_period != 0)
        TRY(cg_writef(err, dir, "cpu.rt_period_us", "%" PRIu64, c->rt_period));
    TRY(limit(dir, "cpu.rt_runtime_us", c->rt_runtime, 0, err));
    if (c->has_idle)
        TRY(cg_writef(err, dir, "cpu.idle", "%" PRId64, c->idle));
    return 0;
}

/* ------------------------------------------------------------------ blkio */

static int device_numbers(const struct ctr_res_blkio_device *d, const char *key,
                          struct ctr_err *err)
{
    if (!d->has_major || !d->has_minor || d->major < 0 || d->minor < 0)
        return ctr_fail(err, EINVAL, "linux.resources.blockIO.%s: major and minor are required",
                        key);
    return 0;
}

static int throttle(const char *dir, const struct ctr_res_blkio_list *l, const char *key,
                    const char *file, struct ctr_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct ctr_res_blkio_device *d = &l->v[i];
        TRY(device_numbers(d, key, err));
        if (!d->has_rate)
            return ctr_fail(err, EINVAL, "linux.resources.blockIO.%s: rate is required", key);
        TRY(cg_writef(err, dir, file, "%" PRId64 ":%" PRId64 " %" PRIu64, d->major, d->minor,
                      d->rate));
    }
    return 0;
}

int ctr_cgroup_v1_blkio(const char *dir, const struct ctr_res_blkio *b, struct ctr_err *err)
{
    /* CFQ's blkio.weight left with the legacy block layer; BFQ has blkio.bfq.weight */
    int bfq = !cg_exists(dir, "blkio.weight") && cg_exists(dir, "blkio.bfq.weight");
    const char *wfile = bfq ? "blkio.bfq.weight" : "blkio.weight";
    const char *wdfile = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
    if (b->weight != 0)
        TRY(cg_writef(err, dir, wfile, "%" PRIu64, b->weight));
    if (b->leaf_weight != 0)
        TRY(cg_writef(err, dir, "blkio.leaf_weight", "%" PRIu64, b->leaf_weight));
    for (size_t i = 0; i < b->weight_device.n; i++) {
        const struct ctr_res_blkio_device *d = &b->weight_device.v[i];
        TRY(device_numbers(d, "weightDevice", err));
        if (d->weight != 0)
            TRY(cg_writef(err, dir, wdfile, "%" PRId64 ":%" PRId64 " %" PRIu64, d->major,
                          d->minor, d->weight));
        if (d->leaf_weight != 0)
            TRY(cg_writef(err, dir, "blkio.leaf_weight_device",
                          "%" PRId64 ":%" PRId64 " %" PRIu64, d->major, d->minor,
                          d->leaf_weight));
    }
    for (int i = 0; i < CTR_RES_THROTTLE_COUNT; i++)
        TRY(throttle(dir, &b->throttle[i], ctr_res_throttle_keys[i], cg_throttles[i].v1_file,
                     err));
    return 0;
}

/* ------------------------------------------------------------------ devices */

int ctr_cgroup_v1_devices(const char *dir, const struct ctr_res_devices *devices,
                          struct ctr_err *err)
{
    /* start from nothing, then apply the rules in their order: the list usually opens with
     * "deny all" and allows the default devices after it, and then that rule is the start */
    const struct ctr_res_device_rule *r0 = devices->n > 0 ? &devices->rules[0] : NULL;
    int opens_with_deny_all = r0 && !r0->allow && r0->type == 'a' && r0->major < 0 &&
                              r0->minor < 0 && strcmp(r0->access, "rwm") == 0;
    struct cg_stream s = CG_STREAM_INIT;
    int rc = opens_with_deny_all ? 0 : cg_stream_write(&s, dir, "devices.deny", "a", err);
    for (size_t i = 0; rc == 0 && i < devices->n; i++) {
        char rule[96];
        cg_device_rule_string(&devices->rules[i], rule, sizeof rule);
        rc = cg_stream_write(&s, dir, devices->rules[i].allow ? "devices.allow" : "devices.deny",
                             rule, err);
    }
    cg_stream_close(&s);
    return rc;
}

/* ------------------------------------------------------------------ network (v1 only) */

int ctr_cgroup_v1_network(const struct cg_target *t, const struct ctr_resources *r,
                          struct ctr_err *err)
{
    const char *cls = t->v1[CTR_CG_NET_CLS], *prio = t->v1[CTR_CG_NET_PRIO];
    if (r->network.has_class_id) {
        if (!cls)
            return cg_unavailable(err, "linux.resources.network.classID", CTR_CG_NET_CLS);
        TRY(cg_writef(err, cls, "net_cls.classid", "%" PRIu64, r->network.class_id));
    }
    if (r->network.npriorities > 0 && !prio)
        return cg_unavailable(err, "linux.resources.network.priorities", CTR_CG_NET_PRIO);
    for (size_t i = 0; i < r->network.npriorities; i++)
        TRY(cg_writef(err, prio, "net_prio.ifpriomap", "%s %" PRIu64,
                      r->network.priorities[i].name, r->network.priorities[i].priority));
    return 0;
}

/* ------------------------------------------------------------------ statistics */

static int opt_u64(const char *dir, const char *file, uint64_t *v)
{
    struct ctr_err ignored;
    return cg_read_u64(dir, file, v, &ignored) == 0;
}

int ctr_cgroup_v1_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err)
{
    (void)err;
    uint64_t v, v2;
    const char *mem = t->v1[CTR_CG_MEMORY];
    cg_stats_read(mem, CTR_CG_MEMORY, 0, s);
    /* memsw counts memory and swap */
    if (mem && opt_u64(mem, "memory.memsw.usage_in_bytes", &v) &&
        opt_u64(mem, "memory.usage_in_bytes", &v2))
        cg_stat_set(s, CTR_CGS_memory_swap_usage, v > v2 ? v - v2 : 0);
    static const enum ctr_cgroup_controller read[] = {CTR_CG_CPUACCT, CTR_CG_CPU, CTR_CG_PIDS};
    for (size_t i = 0; i < ARRAY_SIZE(read); i++)
        cg_stats_read(t->v1[read[i]], read[i], 0, s);
    return 0;
}
