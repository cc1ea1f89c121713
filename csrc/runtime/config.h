/* An OCI bundle's config.json, read once in the parent into plain C structs, so that every
 * error in it (a wrong type, an unknown capability, an unsupported feature) is reported by
 * create() before anything is cloned, and the child only acts on checked values.  Strings
 * point into the cJSON tree, which lives as long as the config (the child gets a copy of it
 * with the rest of the address space). */
#ifndef CTR_CONFIG_H
#define CTR_CONFIG_H

#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "cgroups/cgroup.h"
#include "runtime/caps.h"
#include "runtime/hooks.h"
#include "runtime/userns.h"
#include "runtime/seccomp.h"
#include "base/error.h"
#include "runtime/mount_options.h"

#define CTR_CONFIG_MAX (4u << 20) /* config.json is capped: it is read whole */

struct ctr_spec_mount {
    const char *destination, *type, *source;
    struct ctr_mount_opts opts;
};

struct ctr_device {
    const char *path;
    char type;          /* 'c', 'b', 'u' (= c), 'p' */
    unsigned major, minor;
    unsigned mode;      /* permission bits */
    uid_t uid;
    gid_t gid;
};

struct ctr_namespace {
    int flag;           /* CLONE_NEWPID, ... */
    const char *name;   /* "pid" */
    const char *path;   /* join this one; NULL: a new namespace */
};

struct ctr_rlimit {
    int resource;
    const char *name;
    uint64_t soft, hard;
};

struct ctr_sysctl {
    const char *key, *value;
};

struct ctr_config {
    cJSON *json;
    const char *oci_version;
    const cJSON *annotations;       /* may be NULL */
    struct ctr_hooks hooks;
    char *rootfs;                   /* absolute and canonical (a symlink in root.path is refused) */
    int root_readonly;
    const char *hostname, *domainname;

    const char **args, **env;       /* NULL-terminated */
    int terminal;                   /* process.terminal: needs a console socket */
    unsigned console_rows, console_cols;
    const char *apparmor_profile;   /* NULL: none (checked against the host at load) */
    const char *cwd;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
    int umask;                      /* -1: 022 */
    int no_new_privs;
    int has_oom_score_adj, oom_score_adj;
    struct ctr_rlimit *rlimits;
    size_t nrlimits;
    struct ctr_caps caps;

    struct ctr_spec_mount *mounts;
    size_t nmounts;
    struct ctr_device *devices;     /* linux.devices plus runc's default devices */
    size_t ndevices;
    const char **masked, **readonly; /* NULL-terminated, may be NULL */
    unsigned long rootfs_propagation; /* MS_* (default MS_SLAVE|MS_REC) */

    struct ctr_namespace ns[8];
    size_t nns;
    int clone_flags;                /* the new namespaces */
    /* The container's mount namespace: a new one (the usual), one joined by path, or none
     * listed — the caller's, where runc mounts the rootfs as asked and chroots into it. */
    enum { CTR_MNT_NEW, CTR_MNT_JOINED, CTR_MNT_HOST } mnt_ns;
    int join_user;                  /* index in ns of a user namespace joined by path, or -1 */
    struct ctr_idmap *uid_maps, *gid_maps;
    size_t nuid_maps, ngid_maps;
    struct ctr_sysctl *sysctls;
    size_t nsysctls;
    struct ctr_seccomp *seccomp;    /* NULL: unconfined */

    const char *cgroups_path;       /* linux.cgroupsPath; NULL or "": no cgroup */
    struct ctr_resources *resources; /* linux.resources, parsed; NULL when absent */
    /* A new cgroup namespace is unshared by the init after the parent has put it in its
     * cgroup, so that the namespace's root is the container's cgroup, not ours. */
    int unshare_cgroup;
};

/* Read bundle/config.json and check it.  On error nothing is left allocated. */
int ctr_config_load(const char *bundle, struct ctr_config *cfg, struct ctr_err *err);
/* The same for the text of a config.json already read (len bytes, not NUL-terminated): the
 * one parser behind ctr_config_load, callable on a buffer (the fuzz harness feeds it).  A
 * relative root.path is taken against `bundle`, which is also the name errors give. */
int ctr_config_parse(const char *bundle, const char *text, size_t len, struct ctr_config *cfg,
                     struct ctr_err *err);
void ctr_config_free(struct ctr_config *cfg);

/* The checks that need the namespaces joined by path open (nsfd[i] for ns[i], -1 when not
 * joined), made in the parent before clone: no mount namespace that is the runtime's or the
 * host's, and no net.* sysctl in a network namespace that is the runtime's (as runc). */
int ctr_config_check_joined(const struct ctr_config *c, const int *nsfd, struct ctr_err *err);

/* Replace the process of a loaded config by another OCI process object (JSON text), as an
 * exec into the container runs it: the old process fields are dropped, the new ones checked
 * as config.json's are.  The parsed text replaces "process" in cfg->json, which owns it. */
int ctr_config_set_process(struct ctr_config *cfg, const char *json, size_t len,
                           struct ctr_err *err);

/* linux.resources (a JSON object) read into *out (calloc'd; free with ctr_resources_free), every
 * field type-checked, errors naming it: "linux.resources.memory.limit: expected an integer"
 * (EINVAL).  The one reader of resources: config.json's, and those the binding's cgroup_create
 * is given.  Strings point into `res`, which must outlive *out. */
int ctr_resources_parse(const cJSON *res, struct ctr_resources **out, struct ctr_err *err);
void ctr_resources_free(struct ctr_resources *r);
/* linux.resources.devices alone (the binding's cgroup_device_filter); free with
 * ctr_res_devices_free */
int ctr_resources_parse_devices(const cJSON *devices, struct ctr_res_devices *out,
                                struct ctr_err *err);
void ctr_res_devices_free(struct ctr_res_devices *d);

#endif
