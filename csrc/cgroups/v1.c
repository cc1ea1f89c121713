/* cgroup v1 files: linux.resources written as runc's libcontainer/cgroups/fs writes them, and
 * statistics read back.  Also the pieces whose files are the same in v1 and v2 (cpuset, pids,
 * hugetlb, rdma). */
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

int ctr_cgroup_v1_memory(const char *dir, const cJSON *mem, struct ctr_err *err)
{
    int64_t limit = 0, swap = 0, reservation = 0, kernel = 0, ktcp = 0;
    uint64_t swappiness = 0;
    int oom_disable = 0, use_hierarchy = 0;
    TRY(cg_json_i64(mem, "limit", &limit, "memory.limit", err));
    TRY(cg_json_i64(mem, "swap", &swap, "memory.swap", err));
    TRY(cg_json_i64(mem, "reservation", &reservation, "memory.reservation", err));
    TRY(cg_json_i64(mem, "kernel", &kernel, "memory.kernel", err));
    TRY(cg_json_i64(mem, "kernelTCP", &ktcp, "memory.kernelTCP", err));
    int has_swappiness = cg_json_u64(mem, "swappiness", &swappiness, "memory.swappiness", err);
    TRY(has_swappiness);
    TRY(cg_json_bool(mem, "disableOOMKiller", &oom_disable, "memory.disableOOMKiller", err));
    int has_hier = cg_json_bool(mem, "useHierarchy", &use_hierarchy, "memory.useHierarchy", err);
    TRY(has_hier);

    /* v1's swap is the memory+swap limit (memory.memsw.limit_in_bytes).  Unlimited memory
     * with swap unset means unlimited swap too, where the kernel has swap accounting. */
    if (limit == -1 && swap == 0 && cg_exists(dir, "memory.memsw.limit_in_bytes"))
        swap = -1;
    int swap_first = 0;
    if (limit != 0 && swap != 0) {
        /* the kernel refuses memsw < limit at every moment: raise memsw first when the new
         * value is above the current limit, else lower the limit first (runc's order) */
        uint64_t cur;
        TRY(cg_read_u64(dir, "memory.limit_in_bytes", &cur, err));
        swap_first = swap == -1 || (cur != UINT64_MAX && cur < (uint64_t)swap);
    }
    if (swap_first)
        TRY(cg_writef(err, dir, "memory.memsw.limit_in_bytes", "%" PRId64, swap));
    if (limit != 0)
        TRY(cg_writef(err, dir, "memory.limit_in_bytes", "%" PRId64, limit));
    if (swap != 0 && !swap_first)
        TRY(cg_writef(err, dir, "memory.memsw.limit_in_bytes", "%" PRId64, swap));
    if (reservation != 0)
        TRY(cg_writef(err, dir, "memory.soft_limit_in_bytes", "%" PRId64, reservation));
    /* kernel memory limits are gone from recent kernels: write them only where the file is */
    if (kernel != 0 && cg_exists(dir, "memory.kmem.limit_in_bytes"))
        TRY(cg_writef(err, dir, "memory.kmem.limit_in_bytes", "%" PRId64, kernel));
    if (ktcp != 0 && cg_exists(dir, "memory.kmem.tcp.limit_in_bytes"))
        TRY(cg_writef(err, dir, "memory.kmem.tcp.limit_in_bytes", "%" PRId64, ktcp));
    if (has_swappiness) {
        if (swappiness > 100)
            return ctr_fail(err, EINVAL, "linux.resources.memory.swappiness: %" PRIu64
                            " is not in 0-100", swappiness);
        TRY(cg_writef(err, dir, "memory.swappiness", "%" PRIu64, swappiness));
    }
    if (oom_disable)
        TRY(cg_write(dir, "memory.oom_control", "1", err));
    if (has_hier)
        TRY(cg_write(dir, "memory.use_hierarchy", use_hierarchy ? "1" : "0", err));
    return 0;
}

/* ------------------------------------------------------------------ cpu */

int ctr_cgroup_v1_cpu(const char *dir, const cJSON *cpu, struct ctr_err *err)
{
    struct cg_cpu c;
    TRY(cg_cpu_parse(cpu, &c, err));
    uint64_t shares = c.shares, period = c.period, burst = c.burst, rt_period = c.rt_period;
    int64_t quota = c.quota, rt_runtime = c.rt_runtime, idle = c.idle;
    int has_burst = c.has_burst, has_idle = c.has_idle;

    if (shares != 0) {
        TRY(cg_writef(err, dir, "cpu.shares", "%" PRIu64, shares));
        /* the kernel clamps to 2..262144 without an error: read back and say so */
        uint64_t got;
        TRY(cg_read_u64(dir, "cpu.shares", &got, err));
        if (got != shares)
            return ctr_fail(err, EINVAL, "linux.resources.cpu.shares: the %s allowed is %" PRIu64,
                            shares > got ? "maximum" : "minimum", got);
    }
    int period_later = 0;
    if (period != 0) {
        struct ctr_err e;
        if (cg_writef(&e, dir, "cpu.cfs_period_us", "%" PRIu64, period) < 0) {
            /* a period below the current one can break the parent's quota until the new
             * quota is in: retry after the quota (runc) */
            if (e.code != EINVAL || quota == 0) {
                *err = e;
                return -1;
            }
            period_later = 1;
        }
    }
    if (quota != 0)
        TRY(cg_writef(err, dir, "cpu.cfs_quota_us", "%" PRId64, quota));
    if (period_later)
        TRY(cg_writef(err, dir, "cpu.cfs_period_us", "%" PRIu64, period));
    if (has_burst)
        TRY(cg_writef(err, dir, "cpu.cfs_burst_us", "%" PRIu64, burst));
    if (rt_period != 0)
        TRY(cg_writef(err, dir, "cpu.rt_period_us", "%" PRIu64, rt_period));
    if (rt_runtime != 0)
        TRY(cg_writef(err, dir, "cpu.rt_runtime_us", "%" PRId64, rt_runtime));
    if (has_idle)
        TRY(cg_writef(err, dir, "cpu.idle", "%" PRId64, idle));
    return 0;
}

/* cpus/mems: the same files in v1 and v2. */
int ctr_cgroup_cpuset(const char *dir, const cJSON *cpu, struct ctr_err *err)
{
    const char *cpus = NULL, *mems = NULL;
    TRY(cg_json_str(cpu, "cpus", &cpus, "cpu.cpus", err));
    TRY(cg_json_str(cpu, "mems", &mems, "cpu.mems", err));
    if (cpus && *cpus)
        TRY(cg_write(dir, "cpuset.cpus", cpus, err));
    if (mems && *mems)
        TRY(cg_write(dir, "cpuset.mems", mems, err));
    return 0;
}

/* ------------------------------------------------------------------ pids */

int ctr_cgroup_pids_limit(const char *dir, const cJSON *pids, struct ctr_err *err)
{
    int64_t limit;
    int r = cg_json_i64(pids, "limit", &limit, "pids.limit", err);
    TRY(r);
    if (r == 0)
        return 0;
    if (limit <= 0)
        return cg_write(dir, "pids.max", "max", err);
    return cg_writef(err, dir, "pids.max", "%" PRId64, limit);
}

/* ------------------------------------------------------------------ blkio */

static int device_numbers(const cJSON *d, const char *where, int64_t *major, int64_t *minor,
                          struct ctr_err *err)
{
    if (!cJSON_IsObject(d))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected an object", where);
    int a = cg_json_i64(d, "major", major, where, err);
    TRY(a);
    int b = cg_json_i64(d, "minor", minor, where, err);
    TRY(b);
    if (!a || !b || *major < 0 || *minor < 0)
        return ctr_fail(err, EINVAL, "linux.resources.%s: major and minor are required", where);
    return 0;
}

static int throttle(const char *dir, const cJSON *bio, const char *key, const char *file,
                    struct ctr_err *err)
{
    const cJSON *list;
    int r = cg_json_array(bio, key, &list, key, err);
    TRY(r);
    if (r == 0)
        return 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, list) {
        int64_t major, minor;
        uint64_t rate;
        TRY(device_numbers(d, key, &major, &minor, err));
        if (cg_json_u64(d, "rate", &rate, key, err) <= 0)
            return ctr_fail(err, EINVAL, "linux.resources.blockIO.%s: rate is required", key);
        TRY(cg_writef(err, dir, file, "%" PRId64 ":%" PRId64 " %" PRIu64, major, minor, rate));
    }
    return 0;
}

int ctr_cgroup_v1_blkio(const char *dir, const cJSON *bio, struct ctr_err *err)
{
    uint64_t weight = 0, leaf = 0;
    TRY(cg_json_u64(bio, "weight", &weight, "blockIO.weight", err));
    TRY(cg_json_u64(bio, "leafWeight", &leaf, "blockIO.leafWeight", err));
    /* CFQ's blkio.weight left with the legacy block layer; BFQ has blkio.bfq.weight */
    int bfq = !cg_exists(dir, "blkio.weight") && cg_exists(dir, "blkio.bfq.weight");
    const char *wfile = bfq ? "blkio.bfq.weight" : "blkio.weight";
    const char *wdfile = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
    if (weight != 0)
        TRY(cg_writef(err, dir, wfile, "%" PRIu64, weight));
    if (leaf != 0)
        TRY(cg_writef(err, dir, "blkio.leaf_weight", "%" PRIu64, leaf));
    const cJSON *list;
    int r = cg_json_array(bio, "weightDevice", &list, "blockIO.weightDevice", err);
    TRY(r);
    if (r) {
        const cJSON *d;
        cJSON_ArrayForEach(d, list) {
            int64_t major, minor;
            uint64_t w = 0, lw = 0;
            TRY(device_numbers(d, "blockIO.weightDevice", &major, &minor, err));
            TRY(cg_json_u64(d, "weight", &w, "blockIO.weightDevice.weight", err));
            TRY(cg_json_u64(d, "leafWeight", &lw, "blockIO.weightDevice.leafWeight", err));
            if (w != 0)
                TRY(cg_writef(err, dir, wdfile, "%" PRId64 ":%" PRId64 " %" PRIu64, major,
                              minor, w));
            if (lw != 0)
                TRY(cg_writef(err, dir, "blkio.leaf_weight_device",
                              "%" PRId64 ":%" PRId64 " %" PRIu64, major, minor, lw));
        }
    }
    TRY(throttle(dir, bio, "throttleReadBpsDevice", "blkio.throttle.read_bps_device", err));
    TRY(throttle(dir, bio, "throttleWriteBpsDevice", "blkio.throttle.write_bps_device", err));
    TRY(throttle(dir, bio, "throttleReadIOPSDevice", "blkio.throttle.read_iops_device", err));
    TRY(throttle(dir, bio, "throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", err));
    return 0;
}

/* ------------------------------------------------------------------ hugetlb, rdma */

int ctr_cgroup_hugetlb(const char *dir, int v2, const cJSON *limits, struct ctr_err *err)
{
    if (!cJSON_IsArray(limits))
        return ctr_fail(err, EINVAL, "linux.resources.hugepageLimits: expected an array");
    const cJSON *h;
    cJSON_ArrayForEach(h, limits) {
        const char *size = NULL;
        uint64_t limit;
        if (cg_json_str(h, "pageSize", &size, "hugepageLimits.pageSize", err) <= 0 ||
            !cg_safe_name(size) || strchr(size, '.'))
            return ctr_fail(err, EINVAL, "linux.resources.hugepageLimits: pageSize `%s' is not "
                            "a page size (\"2MB\")", size ? size : "");
        if (cg_json_u64(h, "limit", &limit, "hugepageLimits.limit", err) <= 0)
            return ctr_fail(err, EINVAL, "linux.resources.hugepageLimits: limit is required");
        char file[128], rsvd[128];
        snprintf(file, sizeof file, v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", size);
        snprintf(rsvd, sizeof rsvd,
                 v2 ? "hugetlb.%s.rsvd.max" : "hugetlb.%s.rsvd.limit_in_bytes", size);
        TRY(cg_writef(err, dir, file, "%" PRIu64, limit));
        /* reservations are accounted apart since Linux 5.7: limit them too (runc) */
        if (cg_exists(dir, rsvd))
            TRY(cg_writef(err, dir, rsvd, "%" PRIu64, limit));
    }
    return 0;
}

int ctr_cgroup_rdma(const char *dir, int v2, const cJSON *rdma, struct ctr_err *err)
{
    (void)v2; /* rdma.max reads the same in v1 and v2 */
    if (!cJSON_IsObject(rdma))
        return ctr_fail(err, EINVAL, "linux.resources.rdma: expected an object");
    const cJSON *dev;
    cJSON_ArrayForEach(dev, rdma) {
        if (!cg_safe_name(dev->string) || strpbrk(dev->string, " \t="))
            return ctr_fail(err, EINVAL, "linux.resources.rdma: bad device name `%s'",
                            dev->string);
        uint64_t handles = 0, objects = 0;
        int a = cg_json_u64(dev, "hcaHandles", &handles, "rdma.hcaHandles", err);
        TRY(a);
        int b = cg_json_u64(dev, "hcaObjects", &objects, "rdma.hcaObjects", err);
        TRY(b);
        char value[256] = "";
        int n = snprintf(value, sizeof value, "%s", dev->string);
        if (a)
            n += snprintf(value + n, sizeof value - n, " hca_handle=%" PRIu64, handles);
        if (b)
            n += snprintf(value + n, sizeof value - n, " hca_object=%" PRIu64, objects);
        if (a || b)
            TRY(cg_write(dir, "rdma.max", value, err));
    }
    return 0;
}

/* ------------------------------------------------------------------ devices */

/* One OCI device rule as the devices cgroup writes it: "c 1:3 rwm", "a *:* rwm". */
static int device_rule(const cJSON *d, size_t i, int *allow, char *buf, size_t size,
                       struct ctr_err *err)
{
    struct cg_device_rule r;
    TRY(cg_device_rule(d, i, &r, err));
    *allow = r.allow;
    cg_device_rule_string(&r, buf, size);
    return 0;
}

int ctr_cgroup_devices_allow_all(const cJSON *devices, struct ctr_err *err)
{
    if (!cJSON_IsArray(devices))
        return ctr_fail(err, EINVAL, "linux.resources.devices: expected an array");
    int open = 0; /* 1 after an allow-all rule, until a deny */
    size_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devices) {
        int allow;
        char rule[96];
        TRY(device_rule(d, i++, &allow, rule, sizeof rule, err));
        int all = strcmp(rule, "a *:* rwm") == 0;
        if (allow && all)
            open = 1;
        else if (!allow)
            open = 0;
    }
    return open;
}

int ctr_cgroup_v1_devices(const char *dir, const cJSON *devices, struct ctr_err *err)
{
    if (!cJSON_IsArray(devices))
        return ctr_fail(err, EINVAL, "linux.resources.devices: expected an array");
    /* validate every rule before the first write */
    TRY(ctr_cgroup_devices_allow_all(devices, err));
    /* start from nothing, then apply the rules in their order: the list usually opens with
     * "deny all" and allows the default devices after it */
    TRY(cg_write(dir, "devices.deny", "a", err));
    size_t i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devices) {
        int allow;
        char rule[96];
        TRY(device_rule(d, i++, &allow, rule, sizeof rule, err));
        TRY(cg_write(dir, allow ? "devices.allow" : "devices.deny", rule, err));
    }
    return 0;
}

/* ------------------------------------------------------------------ network (v1 only) */

int ctr_cgroup_v1_network(const struct cg_target *t, const cJSON *net, struct ctr_err *err)
{
    uint64_t classid;
    int r = cg_json_u64(net, "classID", &classid, "network.classID", err);
    TRY(r);
    if (r) {
        if (!t->v1[CTR_CG_NET_CLS])
            return cg_unavailable(err, "linux.resources.network.classID", CTR_CG_NET_CLS);
        TRY(cg_writef(err, t->v1[CTR_CG_NET_CLS], "net_cls.classid", "%" PRIu64, classid));
    }
    const cJSON *prios;
    r = cg_json_array(net, "priorities", &prios, "network.priorities", err);
    TRY(r);
    if (r && cJSON_GetArraySize(prios) > 0) {
        if (!t->v1[CTR_CG_NET_PRIO])
            return cg_unavailable(err, "linux.resources.network.priorities", CTR_CG_NET_PRIO);
        const cJSON *p;
        cJSON_ArrayForEach(p, prios) {
            const char *name = NULL;
            uint64_t prio = 0;
            if (cg_json_str(p, "name", &name, "network.priorities.name", err) <= 0 ||
                !cg_safe_name(name) || strpbrk(name, " \t"))
                return ctr_fail(err, EINVAL, "linux.resources.network.priorities: bad name");
            TRY(cg_json_u64(p, "priority", &prio, "network.priorities.priority", err));
            TRY(cg_writef(err, t->v1[CTR_CG_NET_PRIO], "net_prio.ifpriomap", "%s %" PRIu64,
                          name, prio));
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ statistics */

static int opt_u64(const char *dir, const char *file, uint64_t *v)
{
    struct ctr_err ignored;
    return dir && cg_read_u64(dir, file, v, &ignored) == 0;
}

int ctr_cgroup_v1_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err)
{
    (void)err;
    uint64_t v, v2;
    const char *mem = t->v1[CTR_CG_MEMORY];
    if (mem) {
        if (opt_u64(mem, "memory.usage_in_bytes", &v))
            CG_SET(s, memory_usage, v);
        if (opt_u64(mem, "memory.limit_in_bytes", &v))
            CG_SET(s, memory_limit, v);
        if (opt_u64(mem, "memory.max_usage_in_bytes", &v))
            CG_SET(s, memory_max_usage, v);
        if (opt_u64(mem, "memory.failcnt", &v))
            CG_SET(s, memory_failcnt, v);
        if (opt_u64(mem, "memory.memsw.usage_in_bytes", &v) &&
            opt_u64(mem, "memory.usage_in_bytes", &v2))
            CG_SET(s, memory_swap_usage, v > v2 ? v - v2 : 0);
        struct ctr_err ignored;
        cleanup_free char *stat = NULL;
        if (cg_read(mem, "memory.stat", &stat, &ignored) == 0) {
            if (cg_keyed(stat, "total_cache", &v) || cg_keyed(stat, "cache", &v))
                CG_SET(s, memory_cache, v);
            if (cg_keyed(stat, "total_rss", &v) || cg_keyed(stat, "rss", &v))
                CG_SET(s, memory_rss, v);
        }
        cleanup_free char *oom = NULL;
        if (cg_read(mem, "memory.oom_control", &oom, &ignored) == 0 &&
            cg_keyed(oom, "oom_kill", &v))
            CG_SET(s, oom_kill, v);
    }
    const char *acct = t->v1[CTR_CG_CPUACCT];
    if (acct) {
        if (opt_u64(acct, "cpuacct.usage", &v))
            CG_SET(s, cpu_usage, v);
        if (opt_u64(acct, "cpuacct.usage_user", &v) && opt_u64(acct, "cpuacct.usage_sys", &v2)) {
            CG_SET(s, cpu_user, v);
            CG_SET(s, cpu_system, v2);
        } else {
            /* older kernels: cpuacct.stat in USER_HZ ticks */
            struct ctr_err ignored;
            cleanup_free char *st = NULL;
            long hz = sysconf(_SC_CLK_TCK);
            if (hz > 0 && cg_read(acct, "cpuacct.stat", &st, &ignored) == 0) {
                if (cg_keyed(st, "user", &v))
                    CG_SET(s, cpu_user, v * (1000000000ull / (uint64_t)hz));
                if (cg_keyed(st, "system", &v))
                    CG_SET(s, cpu_system, v * (1000000000ull / (uint64_t)hz));
            }
        }
    }
    const char *cpu = t->v1[CTR_CG_CPU];
    if (cpu) {
        struct ctr_err ignored;
        cleanup_free char *st = NULL;
        if (cg_read(cpu, "cpu.stat", &st, &ignored) == 0) {
            if (cg_keyed(st, "nr_periods", &v))
                CG_SET(s, cpu_periods, v);
            if (cg_keyed(st, "nr_throttled", &v))
                CG_SET(s, cpu_throttled_periods, v);
            if (cg_keyed(st, "throttled_time", &v))
                CG_SET(s, cpu_throttled_time, v);
        }
    }
    const char *pids = t->v1[CTR_CG_PIDS];
    if (pids) {
        if (opt_u64(pids, "pids.current", &v))
            CG_SET(s, pids_current, v);
        if (opt_u64(pids, "pids.max", &v))
            CG_SET(s, pids_limit, v);
    }
    return 0;
}
