/* Shared by cgroups/cgroup.c, cgroups/v1.c, cgroups/v2.c and cgroups/files.c only. */
#ifndef CTR_CGROUP_INTERNAL_H
#define CTR_CGROUP_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include "cgroups/cgroup.h"

/* Where each controller's files are for one cgroup: the directory in its v1 hierarchy, or
 * the v2 directory when v2 holds it, or nothing. */
struct cg_target {
    const struct ctr_cgroup_layout *l;
    const char *v1[CTR_CG_COUNT]; /* v1 directory of the controller, or NULL */
    const char *v2;               /* the v2 directory, or NULL */
    int fresh; /* made by this create in every hierarchy: its files hold the kernel's defaults,
                  and a value equal to the default is not written */
};

enum cg_where { CG_NONE, CG_V1, CG_V2 };
enum cg_where cg_where(const struct cg_target *t, enum ctr_cgroup_controller c);

/* "VALUE\n" written in one write(2) to dir/file (opened O_WRONLY|O_APPEND, never created: a
 * cgroup file that is not there is an error). */
int cg_write(const char *dir, const char *file, const char *value, struct ctr_err *err);
/* cg_write's writes, one after another, through one open of the file while they go to the
 * same file of the same dir (the same pointer): a devices list is one write(2) per rule.
 * Closed by cg_stream_close, and when the next write goes elsewhere. */
struct cg_stream {
    int fd;
    const char *dir, *file;
    char path[PATH_MAX];
};
#define CG_STREAM_INIT {.fd = -1, .dir = NULL, .file = NULL}
int cg_stream_write(struct cg_stream *s, const char *dir, const char *file, const char *value,
                    struct ctr_err *err);
void cg_stream_close(struct cg_stream *s);
int cg_writef(struct ctr_err *err, const char *dir, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cg_exists(const char *dir, const char *file);
/* The contents of dir/file, trailing whitespace removed, malloc'd. */
int cg_read(const char *dir, const char *file, char **out, struct ctr_err *err);
/* A number; "max" is UINT64_MAX, as is any v1 "unlimited" value (>= 2^63 - 4096). */
int cg_read_u64(const char *dir, const char *file, uint64_t *out, struct ctr_err *err);
/* The value of `key` in "key value" lines (memory.stat, cpu.stat, memory.events). */
int cg_keyed(const char *text, const char *key, uint64_t *out);

int cg_unavailable(struct ctr_err *err, const char *what, enum ctr_cgroup_controller c);

/* Apply each group of linux.resources; cgroups/v1.c and cgroups/v2.c. */
int ctr_cgroup_v1_memory(const char *dir, const struct ctr_res_memory *mem, struct ctr_err *err);
int ctr_cgroup_v2_memory(const char *dir, const struct ctr_res_memory *mem, struct ctr_err *err);
int ctr_cgroup_v1_cpu(const char *dir, int fresh, const struct ctr_res_cpu *cpu,
                      struct ctr_err *err);
int ctr_cgroup_v2_cpu(const char *dir, const struct ctr_res_cpu *cpu, struct ctr_err *err);
int ctr_cgroup_v1_blkio(const char *dir, const struct ctr_res_blkio *bio, struct ctr_err *err);
int ctr_cgroup_v2_io(const char *dir, const struct ctr_res_blkio *bio, struct ctr_err *err);
int ctr_cgroup_v1_network(const struct cg_target *t, const struct ctr_resources *r,
                          struct ctr_err *err);
/* the groups whose files are the same in v1 and v2 but for their names; cgroups/files.c */
int ctr_cgroup_cpuset(const char *dir, const struct ctr_res_cpu *cpu, struct ctr_err *err);
int ctr_cgroup_pids_limit(const char *dir, int fresh, int64_t limit, struct ctr_err *err);
int ctr_cgroup_hugetlb(const char *dir, int v2, const struct ctr_resources *r,
                       struct ctr_err *err);
int ctr_cgroup_rdma(const char *dir, const struct ctr_resources *r, struct ctr_err *err);
int ctr_cgroup_v2_unified(const char *dir, const struct ctr_resources *r, struct ctr_err *err);

/* blockIO's throttle lists: v1's file and v2's io.max key of each */
extern const struct cg_throttle {
    const char *v1_file, *v2_key;
} cg_throttles[CTR_RES_THROTTLE_COUNT];

/* "c 1:3 rwm", as devices.allow takes it */
void cg_device_rule_string(const struct ctr_res_device_rule *r, char *buf, size_t size);
int ctr_cgroup_v1_devices(const char *dir, const struct ctr_res_devices *devices,
                          struct ctr_err *err);
/* The cgroup v2 device filter (cgroups/devices_bpf.c): an eBPF program made from the rules,
 * attached to directory `dir`.  With `fake` (a spec's fake tree, no cgroupfs below it) nothing
 * is loaded: the rules are written, in the order the program checks them, to dir/devices.bpf. */
int ctr_cgroup_v2_devices(const char *dir, int fake, const struct ctr_res_devices *devices,
                          struct ctr_err *err);

/* Statistics: the fields of controller c (v1 or, with v2, v2 files) read from dir (NULL:
 * none) into those of *s not set yet; cgroups/files.c has the table of where each is. */
void cg_stats_read(const char *dir, enum ctr_cgroup_controller c, int v2,
                   struct ctr_cgroup_stats *s);
void cg_stat_set(struct ctr_cgroup_stats *s, enum ctr_cgroup_stat_index i, uint64_t v);

int ctr_cgroup_v1_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err);
int ctr_cgroup_v2_stats(const struct cg_target *t, struct ctr_cgroup_stats *s,
                        struct ctr_err *err);

#endif
