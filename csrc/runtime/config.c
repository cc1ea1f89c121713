#include "runtime/config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "runtime/apparmor.h"
#include "base/files.h"
#include "base/json.h"
#include "base/cleanup.h"

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

static const struct {
    const char *name;
    int flag;
} ns_names[] = {
    {"pid", CLONE_NEWPID},   {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
    {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP}, {"time", 0x80 /* CLONE_NEWTIME */},
};

/* The devices runc creates in every container whether or not linux.devices lists them
 * (libcontainer/specconv AllowedDevices with a path). */
static const struct ctr_device default_devices[] = {
    {"/dev/null", 'c', 1, 3, 0666, 0, 0},   {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
    {"/dev/full", 'c', 1, 7, 0666, 0, 0},   {"/dev/random", 'c', 1, 8, 0666, 0, 0},
    {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
};

static int unsupported(const char *what, struct ctr_err *err)
{
    ctr_fail(err, 0, "config.json: %s is not supported yet", what);
    err->code = EOPNOTSUPP;
    return -1;
}

static int load_process(struct ctr_config *c, const cJSON *p, struct ctr_err *err)
{
    if (ctr_json_bool(p, "process", "terminal", &c->terminal, err) < 0)
        return -1;
    const cJSON *cs;
    if (ctr_json_object(p, "process", "consoleSize", &cs, err) < 0)
        return -1;
    if (cs) {
        int64_t h, w;
        int ph, pw;
        if (ctr_json_int(cs, "process.consoleSize", "height", 0, 65535, &h, &ph, err) < 0 ||
            ctr_json_int(cs, "process.consoleSize", "width", 0, 65535, &w, &pw, err) < 0)
            return -1;
        c->console_rows = ph ? (unsigned)h : 0;
        c->console_cols = pw ? (unsigned)w : 0;
    }
    size_t nargs = 0;
    if (ctr_json_strv(p, "process", "args", &c->args, &nargs, err) < 0)
        return -1;
    if (nargs == 0 || c->args[0][0] == '\0')
        return ctr_fail(err, 0, "config.json: process.args: must name a program");
    if (ctr_json_strv(p, "process", "env", &c->env, NULL, err) < 0)
        return -1;
    if (c->env == NULL && (c->env = calloc(1, sizeof *c->env)) == NULL)
        return ctr_fail(err, ENOMEM, "config.json: process.env");
    if (ctr_json_string(p, "process", "cwd", &c->cwd, err) < 0)
        return -1;
    if (c->cwd == NULL || c->cwd[0] != '/')
        return ctr_fail(err, 0, "config.json: process.cwd: must be an absolute path");
    if (ctr_json_bool(p, "process", "noNewPrivileges", &c->no_new_privs, err) < 0)
        return -1;
    int64_t v;
    if (ctr_json_int(p, "process", "oomScoreAdj", -1000, 1000, &v, &c->has_oom_score_adj,
                     err) < 0)
        return -1;
    c->oom_score_adj = (int)v;
    const char *s;
    if (ctr_json_string(p, "process", "apparmorProfile", &s, err) < 0)
        return -1;
    if (s && *s) {
        if (ctr_apparmor_check(s, err) < 0)
            return -1;
        c->apparmor_profile = s;
    }
    if (ctr_json_string(p, "process", "selinuxLabel", &s, err) < 0)
        return -1;
    if (s && *s)
        return unsupported("process.selinuxLabel", err);

    const cJSON *user;
    if (ctr_json_object(p, "process", "user", &user, err) < 0)
        return -1;
    int present;
    if (ctr_json_int(user, "process.user", "uid", 0, INT32_MAX, &v, &present, err) < 0)
        return -1;
    c->uid = present ? (uid_t)v : 0;
    if (ctr_json_int(user, "process.user", "gid", 0, INT32_MAX, &v, &present, err) < 0)
        return -1;
    c->gid = present ? (gid_t)v : 0;
    c->umask = -1;
    if (ctr_json_int(user, "process.user", "umask", 0, 0777, &v, &present, err) < 0)
        return -1;
    if (present)
        c->umask = (int)v;
    const cJSON *gids;
    if (ctr_json_array(user, "process.user", "additionalGids", &gids, err) < 0)
        return -1;
    if (gids && cJSON_GetArraySize(gids) > 0) {
        c->ngroups = (size_t)cJSON_GetArraySize(gids);
        if ((c->groups = calloc(c->ngroups, sizeof *c->groups)) == NULL)
            return ctr_fail(err, ENOMEM, "config.json: process.user.additionalGids");
        size_t i = 0;
        for (const cJSON *g = gids->child; g; g = g->next, i++) {
            if (!cJSON_IsNumber(g) || g->valuedouble < 0 || g->valuedouble > INT32_MAX ||
                (double)(gid_t)g->valuedouble != g->valuedouble)
                return ctr_fail(err, EINVAL,
                                "config.json: process.user.additionalGids[%zu]: expected a gid",
                                i);
            c->groups[i] = (gid_t)g->valuedouble;
        }
    }

    const cJSON *caps;
    if (ctr_json_object(p, "process", "capabilities", &caps, err) < 0)
        return -1;
    static const char *const sets[] = {"bounding", "effective", "permitted", "inheritable",
                                       "ambient"};
    uint64_t *dst[] = {&c->caps.bounding, &c->caps.effective, &c->caps.permitted,
                       &c->caps.inheritable, &c->caps.ambient};
    for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
        cleanup_free const char **names = NULL;
        char where[64];
        snprintf(where, sizeof where, "process.capabilities.%s", sets[i]);
        if (ctr_json_strv(caps, "process.capabilities", sets[i], &names, NULL, err) < 0 ||
            ctr_caps_parse(names, where, dst[i], err) < 0)
            return -1;
    }

    const cJSON *rl;
    if (ctr_json_array(p, "process", "rlimits", &rl, err) < 0)
        return -1;
    if (rl && cJSON_GetArraySize(rl) > 0) {
        if ((c->rlimits = calloc((size_t)cJSON_GetArraySize(rl), sizeof *c->rlimits)) == NULL)
            return ctr_fail(err, ENOMEM, "config.json: process.rlimits");
        for (const cJSON *r = rl->child; r; r = r->next) {
            char where[64];
            snprintf(where, sizeof where, "process.rlimits[%zu]", c->nrlimits);
            struct ctr_rlimit *lim = &c->rlimits[c->nrlimits];
            const char *type;
            if (!cJSON_IsObject(r))
                return ctr_fail(err, 0, "config.json: %s: expected object", where);
            if (ctr_json_string(r, where, "type", &type, err) < 0 ||
                ctr_json_uint64(r, where, "soft", &lim->soft, NULL, err) < 0 ||
                ctr_json_uint64(r, where, "hard", &lim->hard, NULL, err) < 0)
                return -1;
            lim->resource = -1;
            for (size_t i = 0; type && i < ARRAY_SIZE(rlimit_names); i++)
                if (strcmp(rlimit_names[i].name, type) == 0) {
                    lim->resource = rlimit_names[i].resource;
                    lim->name = rlimit_names[i].name;
                }
            if (lim->resource < 0)
                return ctr_fail(err, 0, "config.json: %s.type: unknown rlimit `%s'", where,
                                type ? type : "(none)");
            if (lim->soft > lim->hard)
                return ctr_fail(err, 0, "config.json: %s: soft limit above the hard one",
                                where);
            c->nrlimits++;
        }
    }
    return 0;
}

static int clean_abs(const char *in, char *out, size_t len);

/* A relative bind source is the bundle's: joined to the resolved bundle directory and
 * cleaned, as runc joins it to its working directory (the bundle, after chdir).  The result
 * is a path the bundle's author could have written as an absolute source, and it is taken
 * as one (links in it followed as in any source); it replaces the value in the parsed tree,
 * which owns it. */
static int bundle_source(cJSON *m, const char *bundle, const char *source, const char **out,
                         const char *where, struct ctr_err *err)
{
    char base[PATH_MAX], joined[PATH_MAX], clean[PATH_MAX];
    if (realpath(bundle, base) == NULL)
        return ctr_fail(err, errno, "bundle `%s'", bundle);
    if (snprintf(joined, sizeof joined, "%s/%s", base, source) >= (int)sizeof joined ||
        clean_abs(joined, clean, sizeof clean) < 0)
        return ctr_fail(err, ENAMETOOLONG, "config.json: %s.source `%s'", where, source);
    cJSON *v = cJSON_CreateString(clean);
    if (v == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(m, "source", v)) {
        cJSON_Delete(v);
        return ctr_fail(err, ENOMEM, "config.json: %s.source", where);
    }
    *out = v->valuestring;
    return 0;
}

static int load_mounts(struct ctr_config *c, const char *bundle, const cJSON *mounts,
                       struct ctr_err *err)
{
    if (mounts == NULL || cJSON_GetArraySize(mounts) == 0)
        return 0;
    if ((c->mounts = calloc((size_t)cJSON_GetArraySize(mounts), sizeof *c->mounts)) == NULL)
        return ctr_fail(err, ENOMEM, "config.json: mounts");
    for (const cJSON *m = mounts->child; m; m = m->next) {
        char where[64];
        snprintf(where, sizeof where, "mounts[%zu]", c->nmounts);
        struct ctr_spec_mount *sm = &c->mounts[c->nmounts];
        if (!cJSON_IsObject(m))
            return ctr_fail(err, 0, "config.json: %s: expected object", where);
        cleanup_free const char **opts = NULL;
        size_t nopts = 0;
        if (ctr_json_string(m, where, "destination", &sm->destination, err) < 0 ||
            ctr_json_string(m, where, "type", &sm->type, err) < 0 ||
            ctr_json_string(m, where, "source", &sm->source, err) < 0 ||
            ctr_json_strv(m, where, "options", &opts, &nopts, err) < 0)
            return -1;
        if (sm->destination == NULL || sm->destination[0] != '/')
            return ctr_fail(err, 0, "config.json: %s.destination: must be an absolute path",
                            where);
        char owhere[80];
        snprintf(owhere, sizeof owhere, "config.json: %s.options", where);
        if (ctr_mount_parse_options(opts, nopts, owhere, &sm->opts, err) < 0)
            return -1;
        c->nmounts++;
        if (sm->type == NULL || *sm->type == '\0')
            sm->type = (sm->opts.flags & MS_BIND) ? "bind" : "none";
        if (strcmp(sm->type, "bind") == 0)
            sm->opts.flags |= MS_BIND;
        if ((sm->opts.flags & MS_BIND) && (sm->source == NULL || *sm->source == '\0'))
            return ctr_fail(err, 0, "config.json: %s.source: a bind mount needs a source",
                            where);
        if (sm->source == NULL)
            sm->source = sm->type;
        else if ((sm->opts.flags & MS_BIND) && sm->source[0] != '/' &&
                 bundle_source((cJSON *)m, bundle, sm->source, &sm->source, where, err) < 0)
            return -1;
    }
    return 0;
}

static int load_devices(struct ctr_config *c, const cJSON *devs, struct ctr_err *err)
{
    size_t n = ARRAY_SIZE(default_devices) + (devs ? (size_t)cJSON_GetArraySize(devs) : 0);
    if ((c->devices = calloc(n, sizeof *c->devices)) == NULL)
        return ctr_fail(err, ENOMEM, "config.json: linux.devices");
    size_t i = 0;
    for (const cJSON *d = devs ? devs->child : NULL; d; d = d->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "linux.devices[%zu]", i);
        struct ctr_device dev = {.mode = 0666};
        const char *type;
        int64_t v;
        int present;
        if (!cJSON_IsObject(d))
            return ctr_fail(err, 0, "config.json: %s: expected object", where);
        if (ctr_json_string(d, where, "path", &dev.path, err) < 0 ||
            ctr_json_string(d, where, "type", &type, err) < 0)
            return -1;
        if (dev.path == NULL || dev.path[0] != '/' || strstr(dev.path, ".."))
            return ctr_fail(err, 0, "config.json: %s.path: must be an absolute path without ..",
                            where);
        if (type == NULL || strlen(type) != 1 || !strchr("cbup", type[0]))
            return ctr_fail(err, 0, "config.json: %s.type: expected c, b, u or p", where);
        dev.type = type[0] == 'u' ? 'c' : type[0];
        if (ctr_json_int(d, where, "major", 0, 0xfff, &v, &present, err) < 0)
            return -1;
        dev.major = (unsigned)v;
        if (!present && dev.type != 'p')
            return ctr_fail(err, 0, "config.json: %s.major: required", where);
        if (ctr_json_int(d, where, "minor", 0, 0xfffff, &v, &present, err) < 0)
            return -1;
        dev.minor = present ? (unsigned)v : 0;
        if (ctr_json_int(d, where, "fileMode", 0, 07777, &v, &present, err) < 0)
            return -1;
        if (present)
            dev.mode = (unsigned)v;
        if (ctr_json_int(d, where, "uid", 0, INT32_MAX, &v, &present, err) < 0)
            return -1;
        dev.uid = present ? (uid_t)v : 0;
        if (ctr_json_int(d, where, "gid", 0, INT32_MAX, &v, &present, err) < 0)
            return -1;
        dev.gid = present ? (gid_t)v : 0;
        c->devices[c->ndevices++] = dev;
    }
    for (size_t k = 0; k < ARRAY_SIZE(default_devices); k++) {
        int listed = 0;
        for (size_t j = 0; j < c->ndevices && !listed; j++)
            listed = strcmp(c->devices[j].path, default_devices[k].path) == 0;
        if (!listed)
            c->devices[c->ndevices++] = default_devices[k];
    }
    return 0;
}

static int load_idmaps(const cJSON *lx, const char *key, struct ctr_idmap **out, size_t *n,
                       struct ctr_err *err)
{
    const cJSON *maps;
    if (ctr_json_array(lx, "linux", key, &maps, err) < 0)
        return -1;
    if (maps == NULL || cJSON_GetArraySize(maps) == 0)
        return 0;
    if (cJSON_GetArraySize(maps) > 340)
        return ctr_fail(err, E2BIG, "config.json: linux.%s: more than 340 entries", key);
    if ((*out = calloc((size_t)cJSON_GetArraySize(maps), sizeof **out)) == NULL)
        return ctr_fail(err, ENOMEM, "config.json: linux.%s", key);
    for (const cJSON *m = maps->child; m; m = m->next) {
        char where[64];
        snprintf(where, sizeof where, "linux.%s[%zu]", key, *n);
        int64_t cid, hid, size;
        int pc, ph, ps;
        if (!cJSON_IsObject(m))
            return ctr_fail(err, EINVAL, "config.json: %s: expected object", where);
        if (ctr_json_int(m, where, "containerID", 0, UINT32_MAX - 1, &cid, &pc, err) < 0 ||
            ctr_json_int(m, where, "hostID", 0, UINT32_MAX - 1, &hid, &ph, err) < 0 ||
            ctr_json_int(m, where, "size", 1, UINT32_MAX, &size, &ps, err) < 0)
            return -1;
        if (!pc || !ph || !ps)
            return ctr_fail(err, EINVAL, "config.json: %s: containerID, hostID and size are "
                            "required", where);
        (*out)[(*n)++] = (struct ctr_idmap){(uint32_t)cid, (uint32_t)hid, (uint32_t)size};
    }
    return 0;
}

/* A refusal that is ours, not a syscall's: the message stands alone, the errno is EINVAL. */
#define refuse(err, ...) (ctr_fail((err), 0, __VA_ARGS__), (err)->code = EINVAL, -1)

static int has_ns(const struct ctr_config *c, int flag)
{
    for (size_t i = 0; i < c->nns; i++)
        if (c->ns[i].flag == flag)
            return 1;
    return 0;
}

/* linux.sysctl, checked as runc's validateSysctl: only names that belong to a namespace the
 * container has of its own (ipc, net, uts) are allowed; the host's are never written. */
static int load_sysctls(struct ctr_config *c, const cJSON *sysctl, struct ctr_err *err)
{
    static const char *const ipc_names[] = {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    };
    if (sysctl == NULL || sysctl->child == NULL)
        return 0;
    if ((c->sysctls = calloc((size_t)cJSON_GetArraySize(sysctl), sizeof *c->sysctls)) == NULL)
        return ctr_fail(err, ENOMEM, "config.json: linux.sysctl");
    for (const cJSON *j = sysctl->child; j; j = j->next) {
        const char *k = j->string;
        if (!cJSON_IsString(j))
            return ctr_fail(err, EINVAL, "config.json: linux.sysctl.%s: expected string", k);
        if (*k == '\0' || strstr(k, "..") || k[0] == '.' || k[0] == '/' || strstr(k, "/."))
            return ctr_fail(err, EINVAL, "config.json: linux.sysctl: invalid name %s", k);
        int ipc = strncmp(k, "fs.mqueue.", 10) == 0;
        for (size_t i = 0; i < ARRAY_SIZE(ipc_names); i++)
            ipc |= strcmp(k, ipc_names[i]) == 0;
        if (ipc && !has_ns(c, CLONE_NEWIPC))
            return ctr_fail(err, EINVAL, "sysctl \"%s\" is not allowed in the hosts ipc "
                            "namespace", k);
        /* a network namespace joined by path may be the host's: ctr_config_check_joined
         * looks at it once it is open */
        if (!ipc && strncmp(k, "net.", 4) == 0 && !has_ns(c, CLONE_NEWNET))
            return refuse(err, "sysctl \"%s\" not allowed in host network namespace", k);
        if (!ipc && strncmp(k, "net.", 4) != 0) {
            if (strcmp(k, "kernel.hostname") == 0 && has_ns(c, CLONE_NEWUTS))
                return ctr_fail(err, EINVAL, "sysctl \"%s\" is not allowed as it conflicts "
                                "with the OCI \"hostname\" field", k);
            if (!(strcmp(k, "kernel.domainname") == 0 && has_ns(c, CLONE_NEWUTS)))
                return ctr_fail(err, EINVAL, "sysctl \"%s\" is not in a separate kernel "
                                "namespace", k);
        }
        c->sysctls[c->nsysctls++] = (struct ctr_sysctl){k, j->valuestring};
    }
    return 0;
}

static int load_linux(struct ctr_config *c, const cJSON *lx, struct ctr_err *err)
{
    const cJSON *j;
    c->join_user = -1;
    if (ctr_json_array(lx, "linux", "namespaces", &j, err) < 0)
        return -1;
    size_t i = 0;
    for (const cJSON *n = j ? j->child : NULL; n; n = n->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "linux.namespaces[%zu]", i);
        const char *type, *path;
        if (!cJSON_IsObject(n))
            return ctr_fail(err, 0, "config.json: %s: expected object", where);
        if (ctr_json_string(n, where, "type", &type, err) < 0 ||
            ctr_json_string(n, where, "path", &path, err) < 0)
            return -1;
        int flag = 0;
        for (size_t k = 0; type && k < ARRAY_SIZE(ns_names); k++)
            if (strcmp(ns_names[k].name, type) == 0) {
                flag = ns_names[k].flag;
                type = ns_names[k].name;
            }
        if (flag == 0)
            return ctr_fail(err, 0, "config.json: %s.type: unknown namespace `%s'", where,
                            type ? type : "(none)");
        for (size_t k = 0; k < c->nns; k++)
            if (c->ns[k].flag == flag)
                return ctr_fail(err, 0, "config.json: %s: namespace `%s' listed twice",
                                where, type);
        if (path && *path == '\0')
            path = NULL;
        if (flag == CLONE_NEWUSER && path)
            c->join_user = (int)c->nns;
        if (flag == 0x80)
            return unsupported("a time namespace", err);
        c->ns[c->nns++] = (struct ctr_namespace){.flag = flag, .name = type, .path = path};
        if (path == NULL)
            c->clone_flags |= flag;
    }
    c->mnt_ns = CTR_MNT_HOST;
    for (size_t k = 0; k < c->nns; k++)
        if (c->ns[k].flag == CLONE_NEWNS)
            c->mnt_ns = c->ns[k].path ? CTR_MNT_JOINED : CTR_MNT_NEW;

    if (load_idmaps(lx, "uidMappings", &c->uid_maps, &c->nuid_maps, err) < 0 ||
        load_idmaps(lx, "gidMappings", &c->gid_maps, &c->ngid_maps, err) < 0)
        return -1;
    if ((c->nuid_maps || c->ngid_maps) && !(c->clone_flags & CLONE_NEWUSER))
        return ctr_fail(err, EINVAL, "config.json: linux.uidMappings: id mappings need a new "
                        "user namespace (linux.namespaces type user without a path)");
    if ((c->clone_flags & CLONE_NEWUSER) && (!c->nuid_maps || !c->ngid_maps))
        return ctr_fail(err, EINVAL, "config.json: linux.uidMappings/gidMappings: a new user "
                        "namespace needs both");
    /* the whole filter is built here, in the parent, so that an error in the profile is
     * reported before anything is cloned (runtime/seccomp.h) */
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(lx, "seccomp");
    if (sc && !cJSON_IsNull(sc) && ctr_seccomp_prepare(sc, &c->seccomp, err) < 0)
        return -1;
    const cJSON *sysctl;
    if (ctr_json_object(lx, "linux", "sysctl", &sysctl, err) < 0)
        return -1;
    if (load_sysctls(c, sysctl, err) < 0)
        return -1;
    const char *s;
    if (ctr_json_string(lx, "linux", "personality", &s, err) < 0)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(lx, "personality"))
        return unsupported("linux.personality", err);
    /* resctrl (--rdt-class) is applied by runc; the built-in runtime refuses it rather than
     * run the container without the class it asked for */
    const cJSON *rdt = cJSON_GetObjectItemCaseSensitive(lx, "intelRdt");
    if (rdt && !cJSON_IsNull(rdt))
        return unsupported("linux.intelRdt (use --runtime with --runc-binary runc)", err);

    if (ctr_json_array(lx, "linux", "devices", &j, err) < 0 || load_devices(c, j, err) < 0)
        return -1;
    if (ctr_json_strv(lx, "linux", "maskedPaths", &c->masked, NULL, err) < 0 ||
        ctr_json_strv(lx, "linux", "readonlyPaths", &c->readonly, NULL, err) < 0)
        return -1;
    /* runc's validator: masks and read-only paths are only as good as the container's own
     * mount table; without a mount namespace of its own they would be more of the caller's
     * mounts, made in its namespace. */
    if (c->mnt_ns == CTR_MNT_HOST &&
        ((c->masked && c->masked[0]) || (c->readonly && c->readonly[0])))
        return refuse(err, "unable to restrict sys entries without a private MNT namespace");
    c->rootfs_propagation = MS_SLAVE | MS_REC;
    if (ctr_json_string(lx, "linux", "rootfsPropagation", &s, err) < 0)
        return -1;
    if (s && *s) {
        long p = ctr_mount_propagation(s);
        if (p < 0)
            return ctr_fail(err, EINVAL,
                            "config.json: linux.rootfsPropagation: unknown propagation `%s'", s);
        c->rootfs_propagation = (unsigned long)p;
    }
    /* the cgroup itself is made by runtime/create.c, in the parent, before clone */
    if (ctr_json_string(lx, "linux", "cgroupsPath", &c->cgroups_path, err) < 0)
        return -1;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(lx, "resources");
    if (res && !cJSON_IsNull(res)) {
        if (!cJSON_IsObject(res))
            return ctr_fail(err, EINVAL, "config.json: linux.resources: expected object");
        if (ctr_resources_parse(res, &c->resources, err) < 0)
            return -1;
    }
    if (c->clone_flags & CLONE_NEWCGROUP) {
        c->clone_flags &= ~CLONE_NEWCGROUP;
        c->unshare_cgroup = 1;
    }
    return 0;
}

/* The getters' messages name config.json; resources are checked with the same getters but
 * reported as the cgroup writers always reported them ("linux.resources.memory.limit: expected
 * an integer", EINVAL): the binding's cgroup_create parses resources that are no file. */
static int res_fail(struct ctr_err *err)
{
    static const char prefix[] = "config.json: ";
    char msg[CTR_ERR_MSG];
    const char *m = err->msg;
    if (strncmp(m, prefix, sizeof prefix - 1) == 0)
        m += sizeof prefix - 1;
    snprintf(msg, sizeof msg, "%s", m);
    return ctr_fail(err, EINVAL, "%s", msg);
}

#define RES(expr)                                                                              \
    do {                                                                                       \
        if ((expr) < 0)                                                                        \
            return res_fail(err);                                                              \
    } while (0)

static int res_i64(const cJSON *o, const char *where, const char *key, int64_t *out, int *has,
                   struct ctr_err *err)
{
    RES(ctr_json_int(o, where, key, INT64_MIN, INT64_MAX, out, has, err));
    return 0;
}

static int res_u64(const cJSON *o, const char *where, const char *key, uint64_t *out, int *has,
                   struct ctr_err *err)
{
    RES(ctr_json_uint64(o, where, key, out, has, err));
    return 0;
}

/* any member that is not null */
static int res_nonempty(const cJSON *o)
{
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next)
        if (!cJSON_IsNull(c))
            return 1;
    return 0;
}

/* every element of array a (NULL: none) an object */
static int res_objects(const cJSON *a, const char *where, struct ctr_err *err)
{
    for (const cJSON *c = a ? a->child : NULL; c; c = c->next)
        if (!cJSON_IsObject(c))
            return ctr_fail(err, EINVAL, "linux.resources.%s: expected an object", where);
    return 0;
}

/* ptr = calloc(count, sizeof *ptr), left NULL when count is 0 */
#define RES_ALLOC(ptr, count, what)                                                            \
    ((count) == 0 || ((ptr) = calloc((count), sizeof *(ptr))) != NULL                          \
         ? 0                                                                                   \
         : ctr_fail(err, ENOMEM, "linux.resources.%s", (what)))

/* "c 1:3 rwm" rules, validated: type a, b or c; major/minor -1 (or absent) for "*"; access a
 * non-empty subset of rwm */
static int res_device_rule(const cJSON *d, size_t i, struct ctr_res_device_rule *r,
                           struct ctr_err *err)
{
    char where[64];
    snprintf(where, sizeof where, "linux.resources.devices[%zu]", i);
    if (!cJSON_IsObject(d))
        return ctr_fail(err, EINVAL, "%s: expected an object", where);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "allow");
    if (!cJSON_IsBool(a))
        return ctr_fail(err, EINVAL, "%s.allow: expected a boolean", where);
    const char *type, *access;
    RES(ctr_json_string(d, where, "type", &type, err));
    RES(ctr_json_string(d, where, "access", &access, err));
    type = type ? type : "a";
    access = access ? access : "rwm";
    if (strlen(type) != 1 || !strchr("abc", type[0]))
        return ctr_fail(err, EINVAL, "%s.type: `%s' is not a, b or c", where, type);
    if (access[0] == '\0' || strspn(access, "rwm") != strlen(access) || strlen(access) > 3)
        return ctr_fail(err, EINVAL, "%s.access: `%s' is not made of r, w, m", where, access);
    int64_t major = -1, minor = -1;
    if (res_i64(d, where, "major", &major, NULL, err) < 0 ||
        res_i64(d, where, "minor", &minor, NULL, err) < 0)
        return -1;
    /* the kernel's numbers are 32 bits (12 + 20 in dev_t) */
    if (major > INT32_MAX || minor > INT32_MAX)
        return ctr_fail(err, EINVAL, "%s: major/minor out of range", where);
    r->allow = cJSON_IsTrue(a);
    r->type = type[0];
    r->major = major < 0 ? -1 : major;
    r->minor = minor < 0 ? -1 : minor;
    snprintf(r->access, sizeof r->access, "%s", access);
    return 0;
}

#define CTR_RES_MAX_DEVICE_RULES 65536 /* the eBPF filter's 8 instructions each stay far
                                          below the verifier's limit */

int ctr_resources_parse_devices(const cJSON *devices, struct ctr_res_devices *out,
                                struct ctr_err *err)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsArray(devices))
        return ctr_fail(err, EINVAL, "linux.resources.devices: expected an array");
    int count = cJSON_GetArraySize(devices);
    if (count > CTR_RES_MAX_DEVICE_RULES)
        return ctr_fail(err, E2BIG, "linux.resources.devices: %d rules (at most %d)", count,
                        CTR_RES_MAX_DEVICE_RULES);
    if (RES_ALLOC(out->rules, (size_t)count, "devices") < 0)
        return -1;
    int open = 0; /* 1 after an allow-all rule, until a deny */
    const cJSON *d;
    cJSON_ArrayForEach(d, devices) {
        struct ctr_res_device_rule *r = &out->rules[out->n];
        if (res_device_rule(d, out->n, r, err) < 0) {
            ctr_res_devices_free(out);
            return -1;
        }
        out->n++;
        int all = r->type == 'a' && r->major < 0 && r->minor < 0 && strcmp(r->access, "rwm") == 0;
        if (r->allow && all)
            open = 1;
        else if (!r->allow)
            open = 0;
    }
    out->allow_all = open;
    return 0;
}

void ctr_res_devices_free(struct ctr_res_devices *d)
{
    free(d->rules);
    memset(d, 0, sizeof *d);
}

static int res_memory(const cJSON *m, struct ctr_res_memory *o, struct ctr_err *err)
{
    static const char w[] = "linux.resources.memory";
    int oom = 0, hier = -1;
    o->set = res_nonempty(m);
    if (res_i64(m, w, "limit", &o->limit, NULL, err) < 0 ||
        res_i64(m, w, "swap", &o->swap, NULL, err) < 0 ||
        res_i64(m, w, "reservation", &o->reservation, NULL, err) < 0 ||
        res_i64(m, w, "kernel", &o->kernel, NULL, err) < 0 ||
        res_i64(m, w, "kernelTCP", &o->kernel_tcp, NULL, err) < 0 ||
        res_u64(m, w, "swappiness", &o->swappiness, &o->has_swappiness, err) < 0)
        return -1;
    RES(ctr_json_bool(m, w, "disableOOMKiller", &oom, err));
    RES(ctr_json_bool(m, w, "useHierarchy", &hier, err));
    o->disable_oom_killer = oom;
    o->use_hierarchy = hier;
    return 0;
}

static int res_cpu(const cJSON *c, struct ctr_res_cpu *o, struct ctr_err *err)
{
    static const char w[] = "linux.resources.cpu";
    static const char *const cpu_keys[] = {"shares", "quota", "period", "burst",
                                           "realtimePeriod", "realtimeRuntime", "idle"};
    for (size_t i = 0; i < ARRAY_SIZE(cpu_keys); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, cpu_keys[i]);
        o->want_cpu |= v && !cJSON_IsNull(v);
    }
    if (res_u64(c, w, "shares", &o->shares, NULL, err) < 0 ||
        res_u64(c, w, "period", &o->period, NULL, err) < 0 ||
        res_i64(c, w, "quota", &o->quota, NULL, err) < 0 ||
        res_u64(c, w, "burst", &o->burst, &o->has_burst, err) < 0 ||
        res_u64(c, w, "realtimePeriod", &o->rt_period, NULL, err) < 0 ||
        res_i64(c, w, "realtimeRuntime", &o->rt_runtime, NULL, err) < 0 ||
        res_i64(c, w, "idle", &o->idle, &o->has_idle, err) < 0)
        return -1;
    RES(ctr_json_string(c, w, "cpus", &o->cpus, err));
    RES(ctr_json_string(c, w, "mems", &o->mems, err));
    o->want_cpuset = (o->cpus && *o->cpus) || (o->mems && *o->mems);
    return 0;
}

static int res_blkio_list(const cJSON *b, const char *key, struct ctr_res_blkio_list *l,
                          int *present, struct ctr_err *err)
{
    char where[96];
    const cJSON *a;
    RES(ctr_json_array(b, "linux.resources.blockIO", key, &a, err));
    if (present)
        *present = a != NULL;
    snprintf(where, sizeof where, "blockIO.%s", key);
    size_t count = a ? (size_t)cJSON_GetArraySize(a) : 0;
    if (res_objects(a, where, err) < 0 || RES_ALLOC(l->v, count, where) < 0)
        return -1;
    l->n = count;
    size_t i = 0;
    for (const cJSON *d = a ? a->child : NULL; d; d = d->next, i++) {
        struct ctr_res_blkio_device *v = &l->v[i];
        snprintf(where, sizeof where, "linux.resources.blockIO.%s[%zu]", key, i);
        if (res_i64(d, where, "major", &v->major, &v->has_major, err) < 0 ||
            res_i64(d, where, "minor", &v->minor, &v->has_minor, err) < 0 ||
            res_u64(d, where, "weight", &v->weight, NULL, err) < 0 ||
            res_u64(d, where, "leafWeight", &v->leaf_weight, NULL, err) < 0 ||
            res_u64(d, where, "rate", &v->rate, &v->has_rate, err) < 0)
            return -1;
    }
    return 0;
}

static int res_blkio(const cJSON *b, struct ctr_res_blkio *o, struct ctr_err *err)
{
    o->set = res_nonempty(b);
    if (res_u64(b, "linux.resources.blockIO", "weight", &o->weight, NULL, err) < 0 ||
        res_u64(b, "linux.resources.blockIO", "leafWeight", &o->leaf_weight, NULL, err) < 0 ||
        res_blkio_list(b, "weightDevice", &o->weight_device, &o->has_weight_device, err) < 0)
        return -1;
    for (int i = 0; i < CTR_RES_THROTTLE_COUNT; i++)
        if (res_blkio_list(b, ctr_res_throttle_keys[i], &o->throttle[i], NULL, err) < 0)
            return -1;
    return 0;
}

/* a page size, a file key: a plain name (no '/', not "." or "..", not empty) */
static int res_safe_name(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0 && strchr(s, '\n') == NULL;
}

static int res_hugepages(const cJSON *a, struct ctr_resources *r, struct ctr_err *err)
{
    r->nhugepages = (size_t)cJSON_GetArraySize(a);
    if (RES_ALLOC(r->hugepages, r->nhugepages, "hugepageLimits") < 0)
        return -1;
    size_t i = 0;
    for (const cJSON *h = a->child; h; h = h->next, i++) {
        const char *size = NULL;
        int has = 0;
        struct ctr_err e;
        if (ctr_json_string(h, "linux.resources.hugepageLimits", "pageSize", &size, &e) < 0 ||
            size == NULL || !res_safe_name(size) || strchr(size, '.'))
            return ctr_fail(err, EINVAL, "linux.resources.hugepageLimits: pageSize `%s' is not "
                            "a page size (\"2MB\")", size ? size : "");
        if (res_u64(h, "linux.resources.hugepageLimits", "limit", &r->hugepages[i].limit, &has,
                    err) < 0)
            return -1;
        if (!has)
            return ctr_fail(err, EINVAL, "linux.resources.hugepageLimits: limit is required");
        r->hugepages[i].page_size = size;
    }
    return 0;
}

static int res_network(const cJSON *n, struct ctr_resources *r, struct ctr_err *err)
{
    static const char w[] = "linux.resources.network";
    const cJSON *a;
    if (res_u64(n, w, "classID", &r->network.class_id, &r->network.has_class_id, err) < 0)
        return -1;
    RES(ctr_json_array(n, w, "priorities", &a, err));
    r->network.npriorities = a ? (size_t)cJSON_GetArraySize(a) : 0;
    if (RES_ALLOC(r->network.priorities, r->network.npriorities, "network.priorities") < 0)
        return -1;
    size_t i = 0;
    for (const cJSON *p = a ? a->child : NULL; p; p = p->next, i++) {
        struct ctr_res_net_prio *v = &r->network.priorities[i];
        struct ctr_err e;
        if (ctr_json_string(p, "linux.resources.network.priorities", "name", &v->name, &e) < 0 ||
            v->name == NULL || !res_safe_name(v->name) || strpbrk(v->name, " \t"))
            return ctr_fail(err, EINVAL, "linux.resources.network.priorities: bad name");
        if (res_u64(p, "linux.resources.network.priorities", "priority", &v->priority, NULL,
                    err) < 0)
            return -1;
    }
    return 0;
}

static int res_rdma(const cJSON *o, struct ctr_resources *r, struct ctr_err *err)
{
    size_t count = (size_t)cJSON_GetArraySize(o);
    r->rdma_set = res_nonempty(o);
    if (RES_ALLOC(r->rdma, count, "rdma") < 0)
        return -1;
    for (const cJSON *dev = o->child; dev; dev = dev->next) {
        if (!res_safe_name(dev->string) || strpbrk(dev->string, " \t="))
            return ctr_fail(err, EINVAL, "linux.resources.rdma: bad device name `%s'",
                            dev->string);
        struct ctr_res_rdma *v = &r->rdma[r->nrdma++];
        v->device = dev->string;
        if (!cJSON_IsObject(dev))
            continue; /* null: no limit */
        char where[96];
        snprintf(where, sizeof where, "linux.resources.rdma.%.60s", dev->string);
        if (res_u64(dev, where, "hcaHandles", &v->hca_handles, &v->has_handles, err) < 0 ||
            res_u64(dev, where, "hcaObjects", &v->hca_objects, &v->has_objects, err) < 0)
            return -1;
    }
    return 0;
}

static int res_unified(const cJSON *o, struct ctr_resources *r, struct ctr_err *err)
{
    size_t count = (size_t)cJSON_GetArraySize(o);
    const cJSON *kv;
    if (!res_nonempty(o)) /* nothing but nulls: nothing asked */
        return 0;
    cJSON_ArrayForEach(kv, o) {
        if (!res_safe_name(kv->string) || strstr(kv->string, ".."))
            return ctr_fail(err, EINVAL, "linux.resources.unified: key `%s' is not a file name "
                            "of the cgroup", kv->string);
        if (!cJSON_IsString(kv))
            return ctr_fail(err, EINVAL, "linux.resources.unified.%s: expected a string",
                            kv->string);
    }
    if (RES_ALLOC(r->unified, count, "unified") < 0)
        return -1;
    cJSON_ArrayForEach(kv, o) {
        r->unified[r->nunified].key = kv->string;
        r->unified[r->nunified++].value = kv->valuestring;
    }
    return 0;
}

/* a group of linux.resources: an object, or an array with array != 0; NULL when absent */
static int res_group(const cJSON *res, const char *key, int array, const cJSON **out,
                     struct ctr_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
        return ctr_fail(err, EINVAL, "linux.resources.%s: expected %s", key,
                        array ? "an array" : "an object");
    *out = v;
    return 0;
}

static int res_parse(const cJSON *res, struct ctr_resources *r, struct ctr_err *err)
{
    if (!cJSON_IsObject(res))
        return ctr_fail(err, EINVAL, "linux.resources: expected an object");
    const cJSON *devices, *mem, *cpu, *pids, *bio, *huge, *net, *rdma, *unified;
    if (res_group(res, "devices", 1, &devices, err) < 0 ||
        res_group(res, "memory", 0, &mem, err) < 0 || res_group(res, "cpu", 0, &cpu, err) < 0 ||
        res_group(res, "pids", 0, &pids, err) < 0 ||
        res_group(res, "blockIO", 0, &bio, err) < 0 ||
        res_group(res, "hugepageLimits", 1, &huge, err) < 0 ||
        res_group(res, "network", 0, &net, err) < 0 ||
        res_group(res, "rdma", 0, &rdma, err) < 0 ||
        res_group(res, "unified", 0, &unified, err) < 0)
        return -1;
    if (devices) {
        r->has_devices = 1;
        if (ctr_resources_parse_devices(devices, &r->devices, err) < 0)
            return -1;
    }
    if (mem && res_memory(mem, &r->memory, err) < 0)
        return -1;
    if (cpu && res_cpu(cpu, &r->cpu, err) < 0)
        return -1;
    if (pids) {
        r->pids.set = res_nonempty(pids);
        if (res_i64(pids, "linux.resources.pids", "limit", &r->pids.limit, &r->pids.has_limit,
                    err) < 0)
            return -1;
    }
    if (bio && res_blkio(bio, &r->blkio, err) < 0)
        return -1;
    if (huge && res_hugepages(huge, r, err) < 0)
        return -1;
    if (net && res_network(net, r, err) < 0)
        return -1;
    if (rdma && res_rdma(rdma, r, err) < 0)
        return -1;
    if (unified && res_unified(unified, r, err) < 0)
        return -1;
    return 0;
}

int ctr_resources_parse(const cJSON *res, struct ctr_resources **out, struct ctr_err *err)
{
    *out = NULL;
    struct ctr_resources *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ctr_fail(err, ENOMEM, "linux.resources");
    if (res_parse(res, r, err) < 0) {
        ctr_resources_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void ctr_resources_free(struct ctr_resources *r)
{
    if (r == NULL)
        return;
    ctr_res_devices_free(&r->devices);
    free(r->blkio.weight_device.v);
    for (int i = 0; i < CTR_RES_THROTTLE_COUNT; i++)
        free(r->blkio.throttle[i].v);
    free(r->hugepages);
    free(r->network.priorities);
    free(r->rdma);
    free(r->unified);
    free(r);
}

/* Go's filepath.Clean of an absolute path: no "." or empty components, ".." taken back
 * lexically (and stopping at "/"). */
static int clean_abs(const char *in, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        size_t cl = strcspn(p, "/");
        if (cl == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[--n] != '/')
                ;
        } else if (cl > 0 && !(cl == 1 && p[0] == '.')) {
            if (n + 1 + cl + 1 > len)
                return -1;
            out[n++] = '/';
            memcpy(out + n, p, cl);
            n += cl;
        }
        p += cl;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

/* root.path, against the bundle when relative, checked as runc's validator checks it: the
 * cleaned path must be its own canonical form.  A symlink anywhere in it is refused: it is
 * the bundle's author who names the root, not whoever can change a link on the way.  The
 * bundle directory itself is taken resolved, as runc takes its working directory after
 * chdir into it. */
static int load_rootfs(struct ctr_config *cfg, const char *bundle, const char *rootpath,
                       struct ctr_err *err)
{
    char base[PATH_MAX], rp[PATH_MAX], clean[PATH_MAX];
    if (rootpath[0] != '/' && realpath(bundle, base) == NULL)
        return ctr_fail(err, errno, "bundle `%s'", bundle);
    if (snprintf(rp, sizeof rp, "%s%s%s", rootpath[0] == '/' ? "" : base,
                 rootpath[0] == '/' ? "" : "/", rootpath) >= (int)sizeof rp ||
        clean_abs(rp, clean, sizeof clean) < 0)
        return ctr_fail(err, ENAMETOOLONG, "root.path `%s'", rootpath);
    if ((cfg->rootfs = realpath(rp, NULL)) == NULL)
        return ctr_fail(err, errno, "invalid rootfs `%s'", rp);
    if (strcmp(cfg->rootfs, clean) != 0)
        return refuse(err, "invalid rootfs: not an absolute path, or a symlink (root.path "
                      "`%s' is `%s')", rootpath, cfg->rootfs);
    return 0;
}

int ctr_config_load(const char *bundle, struct ctr_config *cfg, struct ctr_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
        return ctr_fail(err, ENAMETOOLONG, "bundle `%s'", bundle);
    cleanup_free char *text = NULL;
    size_t len;
    if (ctr_read_file(path, CTR_CONFIG_MAX, &text, &len, err) < 0)
        return -1;
    return ctr_config_parse(bundle, text, len, cfg, err);
}

int ctr_config_parse(const char *bundle, const char *text, size_t len, struct ctr_config *cfg,
                     struct ctr_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
        return ctr_fail(err, ENAMETOOLONG, "bundle `%s'", bundle);
    if (len > CTR_CONFIG_MAX)
        return ctr_fail(err, EFBIG, "`%s': %zu bytes is over the limit of %u", path, len,
                        CTR_CONFIG_MAX);
    cfg->json = cJSON_ParseWithLength(text, len);
    if (cfg->json == NULL || !cJSON_IsObject(cfg->json)) {
        ctr_config_free(cfg);
        return ctr_fail(err, 0, "`%s': not a JSON object", path);
    }
    const cJSON *root, *process, *mounts, *lx;
    const char *rootpath;
    int r = -1;
    if (ctr_json_object(cfg->json, "", "root", &root, err) < 0 ||
        ctr_json_string(root, "root", "path", &rootpath, err) < 0 ||
        ctr_json_bool(root, "root", "readonly", &cfg->root_readonly, err) < 0 ||
        ctr_json_string(cfg->json, "", "hostname", &cfg->hostname, err) < 0 ||
        ctr_json_string(cfg->json, "", "domainname", &cfg->domainname, err) < 0 ||
        ctr_json_object(cfg->json, "", "process", &process, err) < 0 ||
        ctr_json_array(cfg->json, "", "mounts", &mounts, err) < 0 ||
        ctr_json_object(cfg->json, "", "linux", &lx, err) < 0)
        goto out;
    if (rootpath == NULL || *rootpath == '\0') {
        ctr_fail(err, 0, "config.json: root.path: required");
        goto out;
    }
    if (process == NULL) {
        ctr_fail(err, 0, "config.json: process: required");
        goto out;
    }
    if (lx == NULL) {
        ctr_fail(err, 0, "config.json: linux: required");
        goto out;
    }
    if (load_rootfs(cfg, bundle, rootpath, err) < 0)
        goto out;
    const cJSON *ann;
    if (ctr_json_string(cfg->json, "", "ociVersion", &cfg->oci_version, err) < 0 ||
        ctr_json_object(cfg->json, "", "annotations", &ann, err) < 0 ||
        ctr_hooks_parse(cJSON_GetObjectItemCaseSensitive(cfg->json, "hooks"), &cfg->hooks,
                        err) < 0)
        goto out;
    cfg->annotations = ann;
    if (load_process(cfg, process, err) < 0 || load_mounts(cfg, bundle, mounts, err) < 0 ||
        load_linux(cfg, lx, err) < 0)
        goto out;
    if ((cfg->hostname || cfg->domainname) && !(cfg->clone_flags & CLONE_NEWUTS)) {
        int joined = 0;
        for (size_t i = 0; i < cfg->nns; i++)
            joined |= cfg->ns[i].flag == CLONE_NEWUTS;
        if (!joined && ((cfg->hostname && *cfg->hostname) ||
                        (cfg->domainname && *cfg->domainname))) {
            ctr_fail(err, 0, "config.json: hostname: needs a uts namespace");
            goto out;
        }
    }
    r = 0;
out:
    if (r < 0) {
        if (err && err->code == 0)
            err->code = EINVAL;
        ctr_config_free(cfg);
    }
    return r;
}

/* Is the namespace open as fd the one /proc/PID/ns/NAME names?  *same stays 0 when `path`
 * cannot be looked at and `required` is 0 (pid 1 outside our pid namespace, or out of
 * reach of ptrace's access check). */
static int same_ns(int fd, const char *path, int required, int *same, struct ctr_err *err)
{
    struct stat a, b;
    *same = 0;
    if (fstat(fd, &a) < 0)
        return ctr_fail(err, errno, "stat the namespace to join instead of `%s'", path);
    if (stat(path, &b) < 0)
        return required ? ctr_fail(err, errno, "stat `%s'", path) : 0;
    *same = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    return 0;
}

/* The container's pivot_root and its rslave / happen in the mount namespace it joins: in ours
 * or the host's, they would be done to the host's own root. */
static int check_mnt_join(const struct ctr_namespace *ns, int fd, struct ctr_err *err)
{
    int self, host;
    if (same_ns(fd, "/proc/self/ns/mnt", 1, &self, err) < 0 ||
        same_ns(fd, "/proc/1/ns/mnt", 0, &host, err) < 0)
        return -1;
    if (self || host)
        return refuse(err, "join the mount namespace `%s': it is the %s, whose / the "
                      "container would change and pivot into; a container needs a mount "
                      "namespace of its own", ns->path,
                      self ? "runtime's own" : "host's (pid 1's)");
    return 0;
}

/* runc's isHostNetNS: a net.* sysctl is written in the network namespace joined, and one
 * that is ours (the caller's: "host" means current, not initial) is the host's to keep. */
static int check_net_join(const struct ctr_config *c, const struct ctr_namespace *ns, int fd,
                          struct ctr_err *err)
{
    const char *net = NULL;
    for (size_t i = 0; i < c->nsysctls && net == NULL; i++)
        if (strncmp(c->sysctls[i].key, "net.", 4) == 0)
            net = c->sysctls[i].key;
    int self;
    if (net == NULL)
        return 0;
    if (same_ns(fd, "/proc/self/ns/net", 1, &self, err) < 0)
        return ctr_fail_prefix(err, "invalid netns path `%s'", ns->path);
    if (self)
        return refuse(err, "sysctl \"%s\" not allowed in host network namespace", net);
    return 0;
}

int ctr_config_check_joined(const struct ctr_config *c, const int *nsfd, struct ctr_err *err)
{
    for (size_t i = 0; i < c->nns; i++) {
        if (nsfd[i] < 0)
            continue;
        if (c->ns[i].flag == CLONE_NEWNS && check_mnt_join(&c->ns[i], nsfd[i], err) < 0)
            return -1;
        if (c->ns[i].flag == CLONE_NEWNET && check_net_join(c, &c->ns[i], nsfd[i], err) < 0)
            return -1;
    }
    return 0;
}

int ctr_config_set_process(struct ctr_config *cfg, const char *json, size_t len,
                           struct ctr_err *err)
{
    cJSON *p = cJSON_ParseWithLength(json, len);
    if (p == NULL || !cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return ctr_fail(err, EINVAL, "process: not a JSON object");
    }
    if (!cJSON_ReplaceItemInObjectCaseSensitive(cfg->json, "process", p)) {
        cJSON_Delete(p);
        return ctr_fail(err, EINVAL, "process: cannot replace the config's");
    }
    free(cfg->args);
    free(cfg->env);
    free(cfg->groups);
    free(cfg->rlimits);
    cfg->args = cfg->env = NULL;
    cfg->groups = NULL;
    cfg->ngroups = 0;
    cfg->rlimits = NULL;
    cfg->nrlimits = 0;
    cfg->terminal = 0;
    cfg->console_rows = cfg->console_cols = 0;
    cfg->apparmor_profile = cfg->cwd = NULL;
    cfg->no_new_privs = cfg->has_oom_score_adj = 0;
    memset(&cfg->caps, 0, sizeof cfg->caps);
    if (load_process(cfg, p, err) < 0) {
        if (err->code == 0)
            err->code = EINVAL;
        return -1;
    }
    return 0;
}

void ctr_config_free(struct ctr_config *cfg)
{
    ctr_seccomp_release(cfg->seccomp);
    cfg->seccomp = NULL;
    for (size_t i = 0; i < cfg->nmounts; i++)
        ctr_mount_opts_free(&cfg->mounts[i].opts);
    /* a mount whose options were parsed before a later field failed */
    free(cfg->mounts);
    free(cfg->args);
    free(cfg->env);
    free(cfg->groups);
    free(cfg->rlimits);
    free(cfg->devices);
    free(cfg->uid_maps);
    free(cfg->gid_maps);
    free(cfg->sysctls);
    ctr_resources_free(cfg->resources);
    ctr_hooks_free(&cfg->hooks);
    free(cfg->masked);
    free(cfg->readonly);
    free(cfg->rootfs);
    cJSON_Delete(cfg->json);
    memset(cfg, 0, sizeof *cfg);
}
