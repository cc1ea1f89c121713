/* Control groups, v1, v2 and hybrid: find the hierarchies, create a container's cgroup with
 * the limits of the OCI spec's linux.resources, move processes in, measure, freeze, delete.
 *
 * The layout is read from mountinfo, never assumed from fixed paths: on a v1 machine every
 * controller (or group of co-mounted controllers, "cpu,cpuacct") has its own hierarchy, on a
 * pure v2 machine one cgroup2 mount holds every controller, and on a hybrid machine (systemd's
 * "hybrid" mode) v1 hierarchies hold the controllers while a cgroup2 mount (usually
 * /sys/fs/cgroup/unified) holds none of them, or only those v1 does not mount (hugetlb).
 * A controller is used where it lives: its v1 hierarchy when one is mounted, otherwise the v2
 * mount when that lists it in cgroup.controllers.  A cgroup is created in every hierarchy,
 * v1 (name=systemd included) and v2, as runc does.
 *
 * A cgroup path is the OCI linux.cgroupsPath: absolute ("/default/ID") is below each
 * hierarchy's mount point; relative ("ctrlua/ID") is below the caller's own cgroup in that
 * hierarchy (read from /proc/self/cgroup), as runc does.  ".." components are refused.  An
 * empty path means "no cgroup": callers skip the calls.
 *
 * Values are written the way `echo VALUE > FILE` writes them (one write of "VALUE\n"), and each
 * failure names the file and the value:
 *     write `/sys/fs/cgroup/memory/default/x/memory.limit_in_bytes' = 1234: Device or resource busy
 *
 * Specs point everything at a fake tree: a mountinfo file, a /proc/self/cgroup file and a root
 * prefix put in front of every mount point.  Nothing here uses global state or Lua; every
 * function may run in the runtime's parent between clone and the child's execve.
 */
#ifndef CTR_CGROUP_H
#define CTR_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

enum ctr_cgroup_mode {
    CTR_CGROUP_NONE = 0, /* nothing mounted */
    CTR_CGROUP_V1,
    CTR_CGROUP_V2,
    CTR_CGROUP_HYBRID,
};

/* Controllers (bits of a mask).  CTR_CG_BLKIO is v1 "blkio" and v2 "io". */
enum ctr_cgroup_controller {
    CTR_CG_CPU,
    CTR_CG_CPUACCT,
    CTR_CG_CPUSET,
    CTR_CG_MEMORY,
    CTR_CG_DEVICES,
    CTR_CG_FREEZER,
    CTR_CG_NET_CLS,
    CTR_CG_BLKIO,
    CTR_CG_PERF_EVENT,
    CTR_CG_NET_PRIO,
    CTR_CG_HUGETLB,
    CTR_CG_PIDS,
    CTR_CG_RDMA,
    CTR_CG_MISC,
    CTR_CG_COUNT
};

/* The v1 name of a controller ("blkio"), and its v2 name ("io"; NULL when v2 has none). */
const char *ctr_cgroup_controller_name(enum ctr_cgroup_controller c);
const char *ctr_cgroup_controller_v2_name(enum ctr_cgroup_controller c);

#define CTR_CGROUP_MAX_HIER 24

/* One mounted hierarchy. */
struct ctr_cgroup_hier {
    char *mountpoint; /* root prefix included */
    char *own;        /* the caller's cgroup, relative to the mount point ("" at its root) */
    unsigned controllers; /* v1: the mounted controllers; v2: those in the root's
                             cgroup.controllers */
    char *name;       /* v1 "name=" hierarchies (name=systemd): "systemd"; else NULL */
    char *offered;    /* v2: the root's cgroup.controllers as read (NULL when unreadable), so
                         that a create below the root need not read it again */
};

struct ctr_cgroup_layout {
    enum ctr_cgroup_mode mode;
    size_t n_v1;
    struct ctr_cgroup_hier v1[CTR_CGROUP_MAX_HIER];
    int has_v2;
    struct ctr_cgroup_hier v2;
    int v1_of[CTR_CG_COUNT]; /* index in v1[] of each controller's hierarchy, or -1 */
    int fake; /* read with a root prefix (a spec's fake tree): no eBPF is loaded there */
};

/* Read the layout.  NULL arguments mean /proc/self/mountinfo, /proc/self/cgroup and no
 * prefix.  A v1 hierarchy mounted twice is taken at its first mount.  Free with
 * ctr_cgroup_layout_free (also after a failure). */
int ctr_cgroup_layout_detect(struct ctr_cgroup_layout *l, const char *mountinfo_path,
                             const char *proc_cgroup_path, const char *root_prefix,
                             struct ctr_err *err);
void ctr_cgroup_layout_free(struct ctr_cgroup_layout *l);

/* Begin the kernel's grace period that the next move of a process into a v1 cgroup waits
 * for (cgroups/warm.c says why): a child moves itself into the cgroup it is in.  Returns at
 * once with the child's pid (0: nothing to do, on pure v2 or a fake tree), or -1; reap it with
 * ctr_cgroup_warm_done once the caller's own move is made. */
pid_t ctr_cgroup_warm_attach(const struct ctr_cgroup_layout *l, struct ctr_err *err);
int ctr_cgroup_warm_done(pid_t pid, struct ctr_err *err);

/* Is controller c usable: a v1 hierarchy, or the v2 mount lists it. */
int ctr_cgroup_has(const struct ctr_cgroup_layout *l, enum ctr_cgroup_controller c);

/* The directory of cgroup `path` in v1 hierarchy i (i < n_v1) or, with i == -1, in v2:
 * malloc'd into *out. */
int ctr_cgroup_dir(const struct ctr_cgroup_layout *l, int i, const char *path, char **out,
                   struct ctr_err *err);

/* linux.resources of an OCI spec, read into types once by runtime/config.c
 * (ctr_resources_parse), type-checked there; what each cgroup version makes of a value (and
 * refuses) is decided here, when it is written.  The type lives with the drivers that read it,
 * so that cgroups/ needs nothing above base/.  Strings point into the parsed JSON.
 *
 * A group's `set` says it had a member that was not null (a group that is present but empty
 * asks nothing of its controller); has_* say whether an optional field was there, for the
 * files where absent and zero differ. */
struct ctr_res_device_rule {
    int allow;
    char type;            /* 'a', 'b' or 'c' */
    int64_t major, minor; /* -1: any */
    char access[4];       /* a non-empty subset of "rwm" */
};

struct ctr_res_devices {
    struct ctr_res_device_rule *rules;
    size_t n;
    int allow_all; /* the list allows every device: nothing to enforce */
};

struct ctr_res_memory {
    int set;
    int64_t limit, swap, reservation, kernel, kernel_tcp; /* 0: unset, -1: unlimited */
    uint64_t swappiness;
    int has_swappiness, disable_oom_killer;
    int use_hierarchy; /* -1: absent */
};

struct ctr_res_cpu {
    int want_cpu;    /* one of the cpu controller's fields is there */
    int want_cpuset; /* cpus or mems is there and not "" */
    uint64_t shares, period, burst, rt_period;
    int64_t quota, rt_runtime, idle;
    int has_burst, has_idle;
    const char *cpus, *mems; /* NULL when absent */
};

/* one element of a blockIO device list */
struct ctr_res_blkio_device {
    int64_t major, minor;
    int has_major, has_minor;
    uint64_t weight, leaf_weight, rate;
    int has_rate;
};

struct ctr_res_blkio_list {
    struct ctr_res_blkio_device *v;
    size_t n;
};

enum ctr_res_throttle { CTR_RES_READ_BPS, CTR_RES_WRITE_BPS, CTR_RES_READ_IOPS,
                        CTR_RES_WRITE_IOPS, CTR_RES_THROTTLE_COUNT };
/* their keys in blockIO: "throttleReadBpsDevice", ... */
extern const char *const ctr_res_throttle_keys[CTR_RES_THROTTLE_COUNT];

struct ctr_res_blkio {
    int set;
    uint64_t weight, leaf_weight;
    int has_weight_device; /* weightDevice is there (possibly empty) */
    struct ctr_res_blkio_list weight_device;
    struct ctr_res_blkio_list throttle[CTR_RES_THROTTLE_COUNT];
};

struct ctr_res_hugepage {
    const char *page_size; /* a plain name ("2MB") */
    uint64_t limit;
};

struct ctr_res_rdma {
    const char *device;
    uint64_t hca_handles, hca_objects;
    int has_handles, has_objects;
};

struct ctr_res_net_prio {
    const char *name;
    uint64_t priority;
};

struct ctr_res_kv {
    const char *key, *value;
};

struct ctr_resources {
    int has_devices; /* linux.resources.devices is there (an empty list denies everything) */
    struct ctr_res_devices devices;
    struct ctr_res_memory memory;
    struct ctr_res_cpu cpu;
    struct { int set; int64_t limit; int has_limit; } pids;
    struct ctr_res_blkio blkio;
    struct ctr_res_hugepage *hugepages;
    size_t nhugepages;
    struct {
        uint64_t class_id;
        int has_class_id;
        struct ctr_res_net_prio *priorities;
        size_t npriorities;
    } network;
    struct ctr_res_rdma *rdma;
    size_t nrdma;
    int rdma_set;
    struct ctr_res_kv *unified;
    size_t nunified;
};

/* Create cgroup `path` in every hierarchy and apply `resources` (NULL for none).  Directories
 * that exist already are used.  On failure every directory this call created is removed
 * again. */
int ctr_cgroup_create(const struct ctr_cgroup_layout *l, const char *path,
                      const struct ctr_resources *resources, struct ctr_err *err);

/* ctr_cgroup_create with ctr_cgroup_check_unused's refusal (EBUSY, the same messages) of a
 * cgroup that is there already with processes in it, or frozen: the check costs nothing
 * where the directories are new.  On a refusal, what this call made is removed again and
 * what was there is left as it was. */
int ctr_cgroup_create_unused(const struct ctr_cgroup_layout *l, const char *path,
                             const struct ctr_resources *resources, struct ctr_err *err);

/* ctr_cgroup_create_unused in two steps, for a caller that clones its init into its v2
 * cgroup (clone3's CLONE_INTO_CGROUP) and makes the rest while the init starts: _v2 makes
 * the v2 directory (*made: this call made the leaf) and refuses one that is used or frozen;
 * _rest makes the v1 directories, refuses those, and writes every limit, v1 and v2 (made_v2:
 * what _v2 said).  A failed _rest removes what it made; the v2 leaf is the caller's to
 * remove (ctr_cgroup_remove_v2) once the init is gone from it. */
int ctr_cgroup_create_unused_v2(const struct ctr_cgroup_layout *l, const char *path,
                                int *made, struct ctr_err *err);
int ctr_cgroup_create_unused_rest(const struct ctr_cgroup_layout *l, const char *path,
                                  const struct ctr_resources *resources, int made_v2,
                                  struct ctr_err *err);

/* rmdir the cgroup's v2 directory (and what is below it), as ctr_cgroup_delete does. */
int ctr_cgroup_remove_v2(const struct ctr_cgroup_layout *l, const char *path,
                         struct ctr_err *err);

/* Apply `resources` to the existing cgroup `path` (runc's update): the values that are set
 * are written, in create's order and with its rules (0 is "unchanged"); nothing is created,
 * and a cgroup that is not there is ENOENT. */
int ctr_cgroup_update(const struct ctr_cgroup_layout *l, const char *path,
                      const struct ctr_resources *resources, struct ctr_err *err);

/* Refuse a cgroup that a container cannot be made in (runc 1.2's rule): one with processes
 * in it or below it in any hierarchy ("container's cgroup is not empty"), or a frozen one
 * (v1 freezer.state, v2 cgroup.freeze or cgroup.events).  A cgroup that does not exist
 * passes.  EBUSY, naming the directory. */
int ctr_cgroup_check_unused(const struct ctr_cgroup_layout *l, const char *path,
                            struct ctr_err *err);

/* The cgroup v2 device controller: attach an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE,
 * BPF_F_ALLOW_MULTI) made from `devices` (linux.resources.devices: the last matching rule
 * wins, nothing matching is refused; see cgroups/devices_bpf.c) to the cgroup2 directory open at
 * `dirfd` (`name` names it in errors).  ctr_cgroup_create does this itself when the devices
 * controller has no v1 hierarchy and the list does not allow everything. */
int ctr_cgroup_v2_devices_apply(int dirfd, const char *name,
                                const struct ctr_res_devices *devices, struct ctr_err *err);

/* Write pid to cgroup.procs in every hierarchy (v1, then v2), or (v2_only) in the v2 one
 * alone, if there is one. */
int ctr_cgroup_add_pid(const struct ctr_cgroup_layout *l, const char *path, pid_t pid,
                       struct ctr_err *err);
int ctr_cgroup_add_pid_v2(const struct ctr_cgroup_layout *l, const char *path, pid_t pid,
                          struct ctr_err *err);

/* Move the calling thread into the cgroup in every v1 hierarchy: "0" written to each one's
 * `tasks'.  A write to cgroup.procs takes the kernel's threadgroup lock for writing, and the
 * first writer after a quiet spell waits for an RCU grace period (5 to 20 ms); the calling
 * thread moving itself needs no such lock.  For a process of one thread (the container's
 * init before it execs) that is the same move.  v2 has no such path (a thread cannot leave
 * its process's domain): there the init is cloned into its cgroup. */
int ctr_cgroup_join_self_v1(const struct ctr_cgroup_layout *l, const char *path,
                            struct ctr_err *err);

/* rmdir the cgroup in every hierarchy; EBUSY is retried for about a second (a process that
 * just died leaves its cgroup a moment later); a cgroup that does not exist is success. */
int ctr_cgroup_delete(const struct ctr_cgroup_layout *l, const char *path, struct ctr_err *err);

/* Freeze (frozen != 0) or thaw, and wait until the kernel says it is done: v1 freezer.state
 * reads FROZEN/THAWED, v2 cgroup.events says "frozen 1"/"frozen 0".  ETIMEDOUT after ~5 s. */
int ctr_cgroup_freeze(const struct ctr_cgroup_layout *l, const char *path, int frozen,
                      struct ctr_err *err);

/* The processes of the cgroup (its cgroup.procs: v1 pids, memory or first hierarchy; v2 on a
 * pure v2 machine).  *out is malloc'd (NULL when empty). */
int ctr_cgroup_pids(const struct ctr_cgroup_layout *l, const char *path, pid_t **out,
                    size_t *n, struct ctr_err *err);

/* Statistics.  A field is valid when its bit (1u << CTR_CGS_<name>) is set in `have`.
 * Times are nanoseconds, sizes bytes; an unlimited limit is UINT64_MAX. */
#define CTR_CGROUP_STATS_FIELDS(X)                                                             \
    X(memory_usage)                                                                            \
    X(memory_limit)                                                                            \
    X(memory_max_usage)                                                                        \
    X(memory_cache)                                                                            \
    X(memory_rss)                                                                              \
    X(memory_swap_usage)                                                                       \
    X(memory_failcnt)                                                                          \
    X(oom)                                                                                     \
    X(oom_kill)                                                                                \
    X(cpu_usage)                                                                               \
    X(cpu_user)                                                                                \
    X(cpu_system)                                                                              \
    X(cpu_periods)                                                                             \
    X(cpu_throttled_periods)                                                                   \
    X(cpu_throttled_time)                                                                      \
    X(pids_current)                                                                            \
    X(pids_limit)

enum ctr_cgroup_stat_index {
#define CTR_CGS_ENUM(name) CTR_CGS_##name,
    CTR_CGROUP_STATS_FIELDS(CTR_CGS_ENUM)
#undef CTR_CGS_ENUM
    CTR_CGS_COUNT
};

struct ctr_cgroup_stats {
    uint32_t have;
#define CTR_CGS_MEMBER(name) uint64_t name;
    CTR_CGROUP_STATS_FIELDS(CTR_CGS_MEMBER)
#undef CTR_CGS_MEMBER
};

int ctr_cgroup_stats(const struct ctr_cgroup_layout *l, const char *path,
                     struct ctr_cgroup_stats *s, struct ctr_err *err);

#endif
