/* Shared by cgroups/cgroup.c, cgroups/v1.c, cgroups/v2.c and cgroups/files.c only. */
#ifndef CTR_CGROUP_INTERNAL_H
#define CTR_CGROUP_INTERNAL_H

#include <stdint.h>

#include "cgroups/cgroup.h"

/* Where each controller's files are for one cgroup: the directory in its v1 hierarchy, or
 * the v2 directory when v2 holds it, or nothing. */
struct cg_target {
    const struct ctr_cgroup_layout *l;
    const char *v1[CTR_CG_COUNT]; /* v1 directory of the controller, or NULL */
    const char *v2;               /* the v2 directory, or NULL */
};

enum cg_where { CG_NONE, CG_V1, CG_V2 };
enum cg_where cg_where(const struct cg_target *t, enum ctr_cgroup_controller c);

/* "VALUE\n" written in one write(2) to dir/file (opened O_WRONLY|O_APPEND, never created: a
 * cgroup file that is not there is an error). */
int cg_write(const char *dir, const char *file, const char *value, struct ctr_err *err);
int cg_writef(struct ctr_err *err, const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cg_exists(const char *dir, const char *file);
/* The contents of dir/file, trailing whitespace removed, malloc'd. */
int cg_read(const char *dir, const char *file, char **out, struct ctr_err *err);
/* A number; "max" is UINT64_MAX, as is any v1 "unlimited" value (>= 2^63 - 4096). */
int cg_read_u64(const char *dir, const char *file, uint64_t *out, struct ctr_err *err);
/* The value of `key` in "key value" lines (memory.stat, cpu.stat, memory.events). */
int cg_keyed(const char *text, const char *key, uint64_t *out);

/* linux.resources numbers.  `where` names the field in errors ("memory.limit").
 * Return 1 with *out set when present, 0 when absent (or JSON null), -1 on a wrong type. */
int cg_json_i64(const cJSON *obj, const char *key, int64_t *out, const char *where,
                struct ctr_err *err);
int cg_json_u64(const cJSON *obj, const char *key, uint64_t *out, const char *where,
                struct ctr_err *err);
int cg_json_bool(const cJSON *obj, const char *key, int *out, const char *where,
                 struct ctr_err *err);
int cg_json_str(const cJSON *obj, const char *key, const char **out, const char *where,
                struct ctr_err *err);
/* An array field: 1 with *out, 0 absent, -1 not an array. */
int cg_json_array(const cJSON *obj, const char *key, const cJSON **out, const char *where,
                  struct ctr_err *err);

/* Is a page size / file key a plain name (no '/', not "." or "..", not empty)? */
/* linux.resources.cpu, read once for both hierarchies' writers; has_* say whether the
 * optional fields were there. */
struct cg_cpu {
    uint64_t shares, period, burst, rt_period;
    int64_t quota, rt_runtime, idle;
    int has_burst, has_idle;
};
int cg_cpu_parse(const cJSON *cpu, struct cg_cpu *out, struct ctr_err *err);

int cg_safe_name(const char *s);

int cg_unavailable(struct ctr_err *err, const char *what, enum ctr_cgroup_controller c);

/* Apply each group of linux.resources; cgroups/v1.c and cgroups/v2.c. */
int ctr_cgroup_v1_memory(const char *dir, const cJSON *mem, struct ctr_err *err);
int ctr_cgroup_v2_memory(const char *dir, const cJSON *mem, struct ctr_err *err);
int ctr_cgroup_v1_cpu(const char *dir, const cJSON *cpu, struct ctr_err *err);
int ctr_cgroup_v2_cpu(const char *dir, const cJSON *cpu, struct ctr_err *err);
int ctr_cgroup_cpuset(const char *dir, const cJSON *cpu, struct ctr_err *err);
int ctr_cgroup_pids_limit(const char *dir, const cJSON *pids, struct ctr_err *err);
int ctr_cgroup_v1_blkio(const char *dir, const cJSON *bio, struct ctr_err *err);
int ctr_cgroup_v2_io(const char *dir, const cJSON *bio, struct ctr_err *err);
int ctr_cgroup_hugetlb(const char *dir, int v2, const cJSON *limits, struct ctr_err *err);
/* One rule of linux.resources.devices (element i, for messages), validated: type 'a', 'b' or
 * 'c', major/minor -1 for "*", access a non-empty subset of "rwm". */
struct cg_device_rule {
    int allow;
    char type;
    int64_t major, minor;
    char access[4];
};
int cg_device_rule(const cJSON *d, size_t i, struct cg_device_rule *r, struct ctr_err *err);
/* "c 1:3 rwm", as devices.allow takes it */
void cg_device_rule_string(const struct cg_device_rule *r, char *buf, size_t size);

int ctr_cgroup_v1_devices(const char *dir, const cJSON *devices, struct ctr_err *err);
/* The cgroup v2 device filter (cgroups/devices_bpf.c): an eBPF program made from the rules, attached
 * to directory `dir`.  With `fake` (a spec's fake tree, no cgroupfs below it) nothing is
 * loaded: the rules are written, in the order the program checks them, to dir/devices.bpf. */
int ctr_cgroup_v2_devices(const char *dir, int fake, const cJSON *devices, struct ctr_err *err);
/* 1 when the list allows every device (nothing to enforce), else 0; -1 on a malformed list. */
int ctr_cgroup_devices_allow_all(const cJSON *devices, struct ctr_err *err);
int ctr_cgroup_v1_network(const struct cg_target *t, const cJSON *net, struct ctr_err *err);
int ctr_cgroup_v2_unified(const char *dir, const cJSON *unified, struct ctr_err *err);
int ctr_cgroup_rdma(const char *dir, int v2, const cJSON *rdma, struct ctr_err *err);

int ctr_cgroup_v1_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err);
int ctr_cgroup_v2_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err);

#define CG_SET(s, field, value)                                                                \
    do {                                                                                       \
        (s)->field = (value);                                                                  \
        (s)->have |= 1u << CTR_CGS_##field;                                                    \
    } while (0)

#endif
