/* cgroups: the layout (which hierarchies are mounted where), and the life of one container's
 * cgroup across all of them: create with limits, add a process, list, freeze, measure, delete.
 * The files of each resource are written by cgroups/v1.c and cgroups/v2.c; see cgroups/cgroup.h. */
#include "cgroups/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/internal.h"
#include "base/files.h"
#include "base/cleanup.h"

static const char *const v1_names[CTR_CG_COUNT] = {
    [CTR_CG_CPU] = "cpu",         [CTR_CG_CPUACCT] = "cpuacct", [CTR_CG_CPUSET] = "cpuset",
    [CTR_CG_MEMORY] = "memory",   [CTR_CG_DEVICES] = "devices", [CTR_CG_FREEZER] = "freezer",
    [CTR_CG_NET_CLS] = "net_cls", [CTR_CG_BLKIO] = "blkio",     [CTR_CG_PERF_EVENT] = "perf_event",
    [CTR_CG_NET_PRIO] = "net_prio", [CTR_CG_HUGETLB] = "hugetlb", [CTR_CG_PIDS] = "pids",
    [CTR_CG_RDMA] = "rdma",       [CTR_CG_MISC] = "misc",
};

/* v2 has no cpuacct (cpu.stat always has usage), devices (eBPF), freezer (cgroup.freeze,
 * core), net_cls/net_prio (gone); blkio is "io" */
static const char *const v2_names[CTR_CG_COUNT] = {
    [CTR_CG_CPU] = "cpu",       [CTR_CG_CPUSET] = "cpuset",   [CTR_CG_MEMORY] = "memory",
    [CTR_CG_BLKIO] = "io",      [CTR_CG_PERF_EVENT] = "perf_event", [CTR_CG_HUGETLB] = "hugetlb",
    [CTR_CG_PIDS] = "pids",     [CTR_CG_RDMA] = "rdma",       [CTR_CG_MISC] = "misc",
};

const char *ctr_cgroup_controller_name(enum ctr_cgroup_controller c)
{
    return (unsigned)c < CTR_CG_COUNT ? v1_names[c] : NULL;
}

const char *ctr_cgroup_controller_v2_name(enum ctr_cgroup_controller c)
{
    return (unsigned)c < CTR_CG_COUNT ? v2_names[c] : NULL;
}

static int controller_bit(const char *const names[], const char *tok, size_t len)
{
    for (int c = 0; c < CTR_CG_COUNT; c++)
        if (names[c] && strlen(names[c]) == len && memcmp(names[c], tok, len) == 0)
            return c;
    return -1;
}

/* ------------------------------------------------------------------ layout */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* a comma-separated list of v1 controllers and "name=X": mask and name */
static unsigned v1_mask(const char *list, char **name)
{
    unsigned mask = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int c = controller_bit(v1_names, p, len);
        if (c >= 0)
            mask |= 1u << c;
        else if (name && len > 5 && strncmp(p, "name=", 5) == 0 && *name == NULL)
            *name = strndup(p + 5, len - 5);
        p += len;
        if (*p == ',')
            p++;
    }
    return mask;
}

void ctr_cgroup_layout_free(struct ctr_cgroup_layout *l)
{
    for (size_t i = 0; i < l->n_v1; i++) {
        free(l->v1[i].mountpoint);
        free(l->v1[i].own);
        free(l->v1[i].name);
    }
    l->n_v1 = 0;
    free(l->v2.mountpoint);
    free(l->v2.own);
    free(l->v2.name);
    free(l->v2.offered);
    memset(&l->v2, 0, sizeof l->v2);
    l->has_v2 = 0;
}

/* The caller's cgroup in the hierarchy with (mask, name) — or v2 with v2 != 0 — relative to
 * the mount's root `mroot`. */
static char *own_cgroup(const char *proc_cgroup, int v2, unsigned mask, const char *name,
                        const char *mroot)
{
    const char *path = NULL;
    size_t plen = 0;
    for (const char *line = proc_cgroup; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            cleanup_free char *list = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
            int match;
            if (list == NULL)
                return NULL;
            if (v2) {
                match = list[0] == '\0' && strncmp(line, "0:", 2) == 0;
            } else {
                cleanup_free char *lname = NULL;
                unsigned lmask = v1_mask(list, &lname);
                match = lmask == mask && ((!lname && !name) ||
                                          (lname && name && strcmp(lname, name) == 0));
            }
            if (match) {
                path = c2 + 1;
                plen = len - (size_t)(c2 + 1 - line);
                break;
            }
        }
        line = end ? end + 1 : NULL;
    }
    if (path == NULL)
        return strdup("");
    /* seen from the mount: strip the mount's root when the cgroup is below it */
    size_t rlen = strcmp(mroot, "/") == 0 ? 0 : strlen(mroot);
    if (rlen && plen >= rlen && strncmp(path, mroot, rlen) == 0 &&
        (plen == rlen || path[rlen] == '/')) {
        path += rlen;
        plen -= rlen;
    }
    if (plen == 1 && path[0] == '/')
        plen = 0;
    return strndup(path, plen);
}

int ctr_cgroup_layout_detect(struct ctr_cgroup_layout *l, const char *mountinfo_path,
                             const char *proc_cgroup_path, const char *root_prefix,
                             struct ctr_err *err)
{
    memset(l, 0, sizeof *l);
    for (int c = 0; c < CTR_CG_COUNT; c++)
        l->v1_of[c] = -1;
    if (mountinfo_path == NULL)
        mountinfo_path = "/proc/self/mountinfo";
    if (proc_cgroup_path == NULL)
        proc_cgroup_path = "/proc/self/cgroup";
    if (root_prefix == NULL)
        root_prefix = "";
    l->fake = root_prefix[0] != '\0';
    cleanup_free char *info = NULL, *pcg = NULL;
    size_t len;
    if (ctr_read_file(mountinfo_path, 16u << 20, &info, &len, err) < 0)
        return -1;
    if (ctr_read_file(proc_cgroup_path, 1u << 20, &pcg, &len, err) < 0)
        return -1;

    char *save = NULL;
    for (char *line = strtok_r(info, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[64];
        size_t nf = 0;
        char *fs = NULL;
        for (char *tok = strtok_r(line, " ", &fs); tok && nf < ARRAY_SIZE(f);
             tok = strtok_r(NULL, " ", &fs))
            f[nf++] = tok;
        size_t dash = 6;
        while (dash < nf && strcmp(f[dash], "-") != 0)
            dash++;
        if (nf < 10 || dash + 3 >= nf)
            continue;
        const char *fstype = f[dash + 1], *superopts = f[dash + 3];
        int is_v2 = strcmp(fstype, "cgroup2") == 0;
        if (!is_v2 && strcmp(fstype, "cgroup") != 0)
            continue;
        char *mroot = f[3], *mpoint = f[4];
        unescape(mroot);
        unescape(mpoint);
        struct ctr_cgroup_hier h = {0};
        if (is_v2) {
            if (l->has_v2)
                continue;
        } else {
            h.controllers = v1_mask(superopts, &h.name);
            if (h.controllers == 0 && h.name == NULL)
                continue;
            int dup = 0;
            for (size_t i = 0; i < l->n_v1; i++)
                dup |= l->v1[i].controllers == h.controllers &&
                       ((!h.name && !l->v1[i].name) ||
                        (h.name && l->v1[i].name && strcmp(h.name, l->v1[i].name) == 0));
            if (dup || l->n_v1 == CTR_CGROUP_MAX_HIER) {
                free(h.name);
                continue;
            }
        }
        if (asprintf(&h.mountpoint, "%s%s", root_prefix, mpoint) < 0)
            h.mountpoint = NULL;
        h.own = own_cgroup(pcg, is_v2, h.controllers, h.name, mroot);
        if (h.mountpoint == NULL || h.own == NULL) {
            free(h.mountpoint);
            free(h.own);
            free(h.name);
            return ctr_fail(err, ENOMEM, "cgroup layout");
        }
        if (is_v2) {
            l->v2 = h;
            l->has_v2 = 1;
        } else {
            for (int c = 0; c < CTR_CG_COUNT; c++)
                if (h.controllers & (1u << c))
                    l->v1_of[c] = (int)l->n_v1;
            l->v1[l->n_v1++] = h;
        }
    }
    if (l->has_v2) {
        /* the controllers the v2 root offers; a hybrid system's is often empty */
        struct ctr_err ignored;
        if (cg_read(l->v2.mountpoint, "cgroup.controllers", &l->v2.offered, &ignored) == 0) {
            for (const char *t = l->v2.offered; *t;) {
                size_t len = strcspn(t, " \n");
                int c = controller_bit(v2_names, t, len);
                if (c >= 0)
                    l->v2.controllers |= 1u << c;
                t += len;
                t += strspn(t, " \n");
            }
        }
    }
    int v1_controllers = 0;
    for (size_t i = 0; i < l->n_v1; i++)
        v1_controllers |= l->v1[i].controllers != 0;
    if (v1_controllers)
        l->mode = l->has_v2 ? CTR_CGROUP_HYBRID : CTR_CGROUP_V1;
    else
        l->mode = l->has_v2 ? CTR_CGROUP_V2 : l->n_v1 ? CTR_CGROUP_V1 : CTR_CGROUP_NONE;
    return 0;
}

int ctr_cgroup_has(const struct ctr_cgroup_layout *l, enum ctr_cgroup_controller c)
{
    return l->v1_of[c] >= 0 || (l->has_v2 && (l->v2.controllers & (1u << c)));
}

/* ------------------------------------------------------------------ paths */

/* "/a//b/./c/" -> "/a/b/c"; ".." refused; the root itself ("/", "") refused. */
static int clean_path(const char *path, char *out, size_t size, struct ctr_err *err)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            break;
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return ctr_fail(err, EINVAL, "cgroup path `%s': `..' is not allowed", path);
        if (!(len == 1 && p[0] == '.')) {
            if (n + len + 2 > size)
                return ctr_fail(err, ENAMETOOLONG, "cgroup path `%s'", path);
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
            out[n] = '\0';
        }
        p += len;
    }
    if (n == 0)
        return ctr_fail(err, EINVAL, "cgroup path `%s' names no cgroup below the root", path);
    return 0;
}

static const struct ctr_cgroup_hier *hier(const struct ctr_cgroup_layout *l, int i)
{
    return i < 0 ? &l->v2 : &l->v1[i];
}

/* the directory below which `path` lives in hierarchy i: the mount point, or the caller's own
 * cgroup for a relative path */
static int base_dir(const struct ctr_cgroup_layout *l, int i, const char *path, char *out,
                    size_t size, struct ctr_err *err)
{
    const struct ctr_cgroup_hier *h = hier(l, i);
    const char *own = path[0] == '/' ? "" : h->own;
    if ((size_t)snprintf(out, size, "%s%s", h->mountpoint, own) >= size)
        return ctr_fail(err, ENAMETOOLONG, "cgroup `%s'", path);
    return 0;
}

int ctr_cgroup_dir(const struct ctr_cgroup_layout *l, int i, const char *path, char **out,
                   struct ctr_err *err)
{
    if (i < 0 ? !l->has_v2 : (size_t)i >= l->n_v1)
        return ctr_fail(err, ENOENT, "cgroup `%s': no such hierarchy", path);
    char clean[PATH_MAX], base[PATH_MAX];
    if (clean_path(path, clean, sizeof clean, err) < 0 ||
        base_dir(l, i, path, base, sizeof base, err) < 0)
        return -1;
    if (asprintf(out, "%s%s", base, clean) < 0)
        return ctr_fail(err, ENOMEM, "cgroup `%s'", path);
    return 0;
}

/* The directories of one cgroup in every hierarchy. */
struct cg_dirs {
    char *v1[CTR_CGROUP_MAX_HIER];
    char *v2;
    size_t n_v1;
    struct cg_target t;
};

static void dirs_free(struct cg_dirs *d)
{
    for (size_t i = 0; i < d->n_v1; i++)
        free(d->v1[i]);
    free(d->v2);
}

static int dirs_get(const struct ctr_cgroup_layout *l, const char *path, struct cg_dirs *d,
                    struct ctr_err *err)
{
    memset(d, 0, sizeof *d);
    d->t.l = l;
    for (size_t i = 0; i < l->n_v1; i++) {
        if (ctr_cgroup_dir(l, (int)i, path, &d->v1[i], err) < 0)
            return -1;
        d->n_v1 = i + 1;
    }
    if (l->has_v2 && ctr_cgroup_dir(l, -1, path, &d->v2, err) < 0)
        return -1;
    for (int c = 0; c < CTR_CG_COUNT; c++)
        d->t.v1[c] = l->v1_of[c] >= 0 ? d->v1[l->v1_of[c]] : NULL;
    d->t.v2 = d->v2;
    if (l->mode == CTR_CGROUP_NONE)
        return ctr_fail(err, ENOENT, "cgroup `%s': no cgroup hierarchy is mounted", path);
    return 0;
}

/* fn(dir, arg) on the cgroup's directory in every hierarchy, v1 then v2.  The first failure
 * is reported; with keep_going the other hierarchies are still done. */
static int each_dir(const struct cg_dirs *d, int keep_going,
                    int (*fn)(const char *dir, const void *arg, struct ctr_err *err),
                    const void *arg, struct ctr_err *err)
{
    int rc = 0;
    struct ctr_err e;
    for (size_t i = 0; i <= d->n_v1 && (rc == 0 || keep_going); i++) {
        const char *dir = i < d->n_v1 ? d->v1[i] : d->v2;
        if (dir && fn(dir, arg, &e) < 0 && rc == 0) {
            *err = e;
            rc = -1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ create */

struct created {
    char *dirs[256];
    size_t n;
};

static void undo(struct created *c)
{
    while (c->n > 0) {
        char *d = c->dirs[--c->n];
        rmdir(d);
        free(d);
    }
}

static int record(struct created *c, const char *dir, struct ctr_err *err)
{
    if (c->n == ARRAY_SIZE(c->dirs))
        return ctr_fail(err, E2BIG, "cgroup: too many directories to create");
    if ((c->dirs[c->n] = strdup(dir)) == NULL)
        return ctr_fail(err, ENOMEM, "cgroup");
    c->n++;
    return 0;
}

/* v2: a child has the files of a controller only when its parent lists it in
 * cgroup.subtree_control.  Enable everything the parent offers (runc does the same); a
 * refusal (a parent with processes: the "no internal processes" rule) is left for the write
 * of the first missing file to report.  *offered is what dir offers (its cgroup.controllers);
 * it becomes what dir's child is offered: what dir now enables.  Nothing is read when dir
 * offers nothing (a hybrid host's cgroup2 mount). */
static void enable_controllers(const char *dir, char **offered)
{
    struct ctr_err ignored;
    cleanup_free char *enabled = NULL;
    if (*offered == NULL || **offered == '\0')
        return;
    char *next = malloc(strlen(*offered) + 1);
    if (next == NULL || cg_read(dir, "cgroup.subtree_control", &enabled, &ignored) < 0) {
        free(next);
        free(*offered);
        *offered = NULL;
        return;
    }
    size_t n = 0;
    for (const char *t = *offered; *t;) {
        size_t len = strcspn(t, " \n");
        int on = 0;
        for (const char *p = enabled; *p && !on;) {
            size_t l2 = strcspn(p, " \n");
            on = l2 == len && strncmp(p, t, len) == 0;
            p += l2;
            p += strspn(p, " \n");
        }
        if (on || cg_writef(&ignored, dir, "cgroup.subtree_control", "+%.*s", (int)len, t) == 0) {
            if (n > 0)
                next[n++] = ' ';
            memcpy(next + n, t, len);
            n += len;
        }
        t += len;
        t += strspn(t, " \n");
    }
    next[n] = '\0';
    free(*offered);
    *offered = next;
}

/* What the v2 base directory offers: the layout read it when the base is the mount's root. */
static char *v2_offered(const struct ctr_cgroup_layout *l, const char *base)
{
    if (strcmp(base, l->v2.mountpoint) == 0)
        return l->v2.offered ? strdup(l->v2.offered) : NULL;
    char *text = NULL;
    struct ctr_err ignored;
    return cg_read(base, "cgroup.controllers", &text, &ignored) < 0 ? NULL : text;
}

/* v1 cpuset: a new cpuset starts with empty cpus and mems and refuses tasks until they are
 * set: copy the parent's (runc's ensureParent) */
static int cpuset_inherit(const char *parent, const char *dir, struct ctr_err *err)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        cleanup_free char *cur = NULL, *from = NULL;
        if (cg_read(dir, files[i], &cur, err) < 0)
            return -1;
        if (cur[0] != '\0')
            continue;
        if (cg_read(parent, files[i], &from, err) < 0)
            return -1;
        if (from[0] != '\0' && cg_write(dir, files[i], from, err) < 0)
            return -1;
    }
    return 0;
}

/* Has the cpuset at dir cpus (a new one inherits cpus and mems together, or neither)? */
static int cpuset_has_cpus(const char *dir, int *has, struct ctr_err *err)
{
    cleanup_free char *cur = NULL;
    if (cg_read(dir, "cpuset.cpus", &cur, err) < 0)
        return -1;
    *has = cur[0] != '\0';
    return 0;
}

/* Each level of `clean` below `base` filled from its parent, top down (what runc does at
 * every create; here only when the kernel's inheritance left the new cgroup empty), and each
 * level above the container's given clone_children, so that this is done once: the levels of
 * a cgroups path are the store's (/NAMESPACE), even those an older ctrlua made without it. */
static int cpuset_fill(const char *base, const char *clean, struct ctr_err *err)
{
    char dir[PATH_MAX], parent[PATH_MAX];
    size_t n = strlen(base);
    memcpy(dir, base, n + 1);
    for (const char *p = clean; *p;) {
        size_t len = strcspn(p + 1, "/") + 1;
        memcpy(parent, dir, n + 1);
        memcpy(dir + n, p, len);
        n += len;
        dir[n] = '\0';
        p += len;
        if (cpuset_inherit(parent, dir, err) < 0 ||
            (*p && cg_write(dir, "cgroup.clone_children", "1", err) < 0))
            return -1;
    }
    return 0;
}

/* mkdir each level of `clean` below `base` in hierarchy i (-1: v2), recording what this call
 * made.
 *
 * In the cpuset hierarchy the kernel copies cpus and mems into a new cgroup from a parent
 * whose cgroup.clone_children is 1: each level this call makes is filled and then given
 * clone_children, so that the next level (and every later container below it) starts with
 * its parent's values and nothing is read or written for it.  Only a container cgroup that
 * still comes out empty (a parent made by someone else, or an old store's) is filled level by
 * level from the top. */
static int make_levels(const struct ctr_cgroup_layout *l, int i, const char *base,
                       const char *clean, struct created *c, int *made_leaf,
                       struct ctr_err *err)
{
    char dir[PATH_MAX], parent[PATH_MAX];
    int cpuset = i >= 0 && i == l->v1_of[CTR_CG_CPUSET];
    cleanup_free char *offered = i < 0 ? v2_offered(l, base) : NULL;
    int made = 0, parent_clones = 0, rc = 0;
    size_t n = strlen(base);
    if (n >= sizeof dir)
        return ctr_fail(err, ENAMETOOLONG, "cgroup `%s'", base);
    memcpy(dir, base, n + 1);
    /* v1: the levels above the container's are the store's, there from an earlier run: the
     * leaf is tried first, and only when it cannot be made are the levels walked */
    if (i >= 0 && n + strlen(clean) < sizeof dir) {
        memcpy(dir + n, clean, strlen(clean) + 1);
        if (mkdir(dir, 0755) == 0) {
            if (record(c, dir, err) < 0)
                return -1;
            *made_leaf = 1;
            int has = 1;
            if (cpuset && (rc = cpuset_has_cpus(dir, &has, err)) == 0 && !has)
                rc = cpuset_fill(base, clean, err);
            return rc;
        }
        dir[n] = '\0';
    }
    for (const char *p = clean; *p;) {
        size_t len = strcspn(p + 1, "/") + 1; /* "/name" */
        if (n + len >= sizeof dir)
            return ctr_fail(err, ENAMETOOLONG, "cgroup `%s%s'", base, clean);
        memcpy(parent, dir, n + 1);
        if (i < 0)
            enable_controllers(parent, &offered);
        memcpy(dir + n, p, len);
        n += len;
        dir[n] = '\0';
        p += len;
        made = mkdir(dir, 0755) == 0;
        if (made) {
            if (record(c, dir, err) < 0)
                return -1;
        } else {
            struct stat st;
            if (errno != EEXIST || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return ctr_fail(err, errno == EEXIST ? ENOTDIR : errno, "mkdir `%s'", dir);
        }
        if (!cpuset)
            continue;
        if (!made) {
            parent_clones = 0;
            continue;
        }
        int leaf = *p == '\0';
        if (!parent_clones && !leaf && cpuset_inherit(parent, dir, err) < 0)
            return -1;
        if (leaf)
            break;
        if (cg_write(dir, "cgroup.clone_children", "1", err) < 0)
            return -1;
        parent_clones = 1;
    }
    *made_leaf = made;
    if (cpuset && !(made && parent_clones)) {
        int has = 0;
        if ((rc = cpuset_has_cpus(dir, &has, err)) == 0 && !has)
            rc = cpuset_fill(base, clean, err);
    }
    return rc;
}

/* The directory of controller c for `what`: its v1 hierarchy's, else the v2 one; *v2 says
 * which.  ENOTSUP when neither holds it. */
static const char *where_dir(const struct cg_target *t, enum ctr_cgroup_controller c,
                             const char *what, int *v2, struct ctr_err *err)
{
    enum cg_where w = cg_where(t, c);
    if (w == CG_NONE) {
        cg_unavailable(err, what, c);
        return NULL;
    }
    if (v2)
        *v2 = w == CG_V2;
    return w == CG_V1 ? t->v1[c] : t->v2;
}

static int apply_devices(const struct cg_target *t, const struct ctr_res_devices *devices,
                         struct ctr_err *err)
{
    if (cg_where(t, CTR_CG_DEVICES) == CG_V1)
        return ctr_cgroup_v1_devices(t->v1[CTR_CG_DEVICES], devices, err);
    /* v2 (pure, or hybrid without a v1 devices hierarchy): an eBPF program; a list that
     * allows everything needs none */
    if (devices->allow_all)
        return 0;
    if (t->v2 == NULL)
        return ctr_fail(err, ENOTSUP, "linux.resources.devices: no devices controller (no v1 "
                        "devices hierarchy, and no cgroup2 mount for an eBPF device filter)");
    return ctr_cgroup_v2_devices(t->v2, t->l->fake, devices, err);
}

static int apply(const struct cg_target *t, const struct ctr_resources *r, struct ctr_err *err)
{
    const char *dir;
    int v2;
    if (r->has_devices && apply_devices(t, &r->devices, err) < 0)
        return -1;
    if (r->memory.set) {
        if (!(dir = where_dir(t, CTR_CG_MEMORY, "linux.resources.memory", &v2, err)) ||
            (v2 ? ctr_cgroup_v2_memory : ctr_cgroup_v1_memory)(dir, &r->memory, err) < 0)
            return -1;
    }
    if (r->cpu.want_cpu) {
        if (!(dir = where_dir(t, CTR_CG_CPU, "linux.resources.cpu", &v2, err)) ||
            (v2 ? ctr_cgroup_v2_cpu(dir, &r->cpu, err)
                : ctr_cgroup_v1_cpu(dir, t->fresh, &r->cpu, err)) < 0)
            return -1;
    }
    if (r->cpu.want_cpuset) {
        if (!(dir = where_dir(t, CTR_CG_CPUSET, "linux.resources.cpu.cpus/mems", NULL, err)) ||
            ctr_cgroup_cpuset(dir, &r->cpu, err) < 0)
            return -1;
    }
    if (r->pids.set) {
        if (!(dir = where_dir(t, CTR_CG_PIDS, "linux.resources.pids", NULL, err)) ||
            (r->pids.has_limit && ctr_cgroup_pids_limit(dir, t->fresh, r->pids.limit, err) < 0))
            return -1;
    }
    if (r->blkio.set) {
        if (!(dir = where_dir(t, CTR_CG_BLKIO, "linux.resources.blockIO", &v2, err)) ||
            (v2 ? ctr_cgroup_v2_io : ctr_cgroup_v1_blkio)(dir, &r->blkio, err) < 0)
            return -1;
    }
    if (r->nhugepages > 0) {
        if (!(dir = where_dir(t, CTR_CG_HUGETLB, "linux.resources.hugepageLimits", &v2, err)) ||
            ctr_cgroup_hugetlb(dir, v2, r, err) < 0)
            return -1;
    }
    if (ctr_cgroup_v1_network(t, r, err) < 0)
        return -1;
    if (r->rdma_set) {
        if (!(dir = where_dir(t, CTR_CG_RDMA, "linux.resources.rdma", NULL, err)) ||
            ctr_cgroup_rdma(dir, r, err) < 0)
            return -1;
    }
    /* last, so that it overrides what the fields above wrote (runc) */
    if (r->nunified > 0) {
        if (t->v2 == NULL)
            return ctr_fail(err, ENOTSUP, "linux.resources.unified: cgroup v2 is not mounted");
        if (ctr_cgroup_v2_unified(t->v2, r, err) < 0)
            return -1;
    }
    return 0;
}

/* What one call of create does: a caller that clones its init into the v2 cgroup makes that
 * directory first and the rest once the init is cloned (ctr_cgroup_create_unused_v2). */
enum { PART_V1 = 1, PART_V2 = 2, PART_LIMITS = 4, PART_ALL = 7 };

static int refuse_used(const struct cg_dirs *d, int parts, const int *made_v1, int made_v2,
                       struct ctr_err *err);

/* create, and with `unused` ctr_cgroup_check_unused's refusal of what was there already: a
 * directory this call made is empty and thawed, so only those that existed are looked at.
 * *made_v2 says whether the v2 leaf is new: set by the part that makes it, read by one that
 * does not. */
static int create(const struct ctr_cgroup_layout *l, const char *path,
                  const struct ctr_resources *resources, int unused, int parts, int *made_v2,
                  struct ctr_err *err)
{
    struct cg_dirs d;
    struct created c = {.n = 0};
    char clean[PATH_MAX], base[PATH_MAX];
    int rc = -1, made = 0, made_v1[CTR_CGROUP_MAX_HIER] = {0};
    if (dirs_get(l, path, &d, err) < 0 || clean_path(path, clean, sizeof clean, err) < 0)
        goto out;
    d.t.fresh = 1;
    for (size_t i = 0; (parts & PART_V1) && i < l->n_v1; i++) {
        if (base_dir(l, (int)i, path, base, sizeof base, err) < 0 ||
            make_levels(l, (int)i, base, clean, &c, &made, err) < 0)
            goto fail;
        made_v1[i] = made;
        d.t.fresh &= made;
    }
    if (l->has_v2 && (parts & PART_V2)) {
        if (base_dir(l, -1, path, base, sizeof base, err) < 0 ||
            make_levels(l, -1, base, clean, &c, &made, err) < 0)
            goto fail;
        *made_v2 = made;
    }
    if (l->has_v2)
        d.t.fresh &= *made_v2;
    if (unused && !d.t.fresh && refuse_used(&d, parts, made_v1, *made_v2, err) < 0)
        goto fail;
    if ((parts & PART_LIMITS) && resources && apply(&d.t, resources, err) < 0)
        goto fail;
    rc = 0;
    for (size_t i = 0; i < c.n; i++)
        free(c.dirs[i]);
    goto out;
fail:
    undo(&c);
out:
    dirs_free(&d);
    return rc;
}

int ctr_cgroup_create(const struct ctr_cgroup_layout *l, const char *path,
                      const struct ctr_resources *resources, struct ctr_err *err)
{
    int made_v2 = 0;
    return create(l, path, resources, 0, PART_ALL, &made_v2, err);
}

int ctr_cgroup_create_unused(const struct ctr_cgroup_layout *l, const char *path,
                             const struct ctr_resources *resources, struct ctr_err *err)
{
    int made_v2 = 0;
    return create(l, path, resources, 1, PART_ALL, &made_v2, err);
}

int ctr_cgroup_create_unused_v2(const struct ctr_cgroup_layout *l, const char *path,
                                int *made, struct ctr_err *err)
{
    *made = 0;
    return create(l, path, NULL, 1, PART_V2, made, err);
}

int ctr_cgroup_create_unused_rest(const struct ctr_cgroup_layout *l, const char *path,
                                  const struct ctr_resources *resources, int made_v2,
                                  struct ctr_err *err)
{
    return create(l, path, resources, 1, PART_V1 | PART_LIMITS, &made_v2, err);
}

/* ------------------------------------------------------------------ in use */

/* Processes in the cgroup at dir and in every cgroup below it, as runc counts them
 * (GetAllPids): a container with a cgroup namespace may have moved some into children.  A
 * cgroup that goes away meanwhile counts none. */
static int count_procs(const char *dir, int depth, size_t *n, struct ctr_err *err)
{
    if (depth > 32)
        return ctr_fail(err, ELOOP, "read `%s/cgroup.procs': cgroups nested too deep", dir);
    cleanup_free char *text = NULL;
    struct ctr_err e;
    if (cg_read(dir, "cgroup.procs", &text, &e) < 0) {
        if (e.code == ENOENT || e.code == ENODEV)
            return 0;
        *err = e;
        return -1;
    }
    for (const char *p = text + strspn(text, " \n"); *p; p += strspn(p, " \n")) {
        (*n)++;
        p += strcspn(p, " \n");
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENODEV ? 0 : ctr_fail(err, errno, "opendir `%s'", dir);
    struct ctr_dir dp;
    ctr_dir_open(&dp, fd);
    const char *name;
    unsigned char type;
    int rc = 0;
    while (rc == 0 && (name = ctr_dir_next(&dp, &type)) != NULL) {
        if (type != DT_DIR)
            continue;
        char child[PATH_MAX];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", dir, name) >= sizeof child)
            rc = ctr_fail(err, ENAMETOOLONG, "read `%s/%s/cgroup.procs'", dir, name);
        else
            rc = count_procs(child, depth + 1, n, err);
    }
    if (rc == 0 && errno != 0 && errno != ENOENT && errno != ENODEV)
        rc = ctr_fail(err, errno, "readdir `%s'", dir);
    ctr_dir_close(&dp);
    return rc;
}

static int refuse_if_busy(const char *dir, const void *unused, struct ctr_err *err)
{
    (void)unused;
    size_t n = 0;
    if (count_procs(dir, 0, &n, err) < 0)
        return -1;
    if (n > 0)
        return ctr_fail(err, EBUSY, "container's cgroup is not empty: %zu process(es) found in "
                        "`%s'", n, dir);
    return 0;
}

/* A value of dir/file, or NULL when the cgroup or the file is not there. */
static int read_if_there(const char *dir, const char *file, char **out, struct ctr_err *err)
{
    struct ctr_err e;
    *out = NULL;
    if (cg_read(dir, file, out, &e) == 0)
        return 0;
    if (e.code == ENOENT || e.code == ENODEV)
        return 0;
    *err = e;
    return -1;
}

/* The refusal of ctr_cgroup_check_unused, on the directories of d in `parts` (PART_V1,
 * PART_V2) that were there before (made_v1[i], made_v2: made by this create, so empty and
 * thawed; NULL: none was made). */
static int refuse_used(const struct cg_dirs *d, int parts, const int *made_v1, int made_v2,
                       struct ctr_err *err)
{
    /* every hierarchy, not one as runc does: a second store's container, or a stray process,
     * may be in some only */
    for (size_t i = 0; (parts & PART_V1) && i < d->n_v1; i++)
        if (!(made_v1 && made_v1[i]) && refuse_if_busy(d->v1[i], NULL, err) < 0)
            return -1;
    if (!(parts & PART_V2))
        made_v2 = 1; /* looked at by the part that made it, and the init may be in it now */
    if (d->v2 && !made_v2 && refuse_if_busy(d->v2, NULL, err) < 0)
        return -1;
    /* frozen: a container would start and never run; on a hybrid host the cgroup2 mount
     * freezes too, with no controller of its own */
    int freezer = d->t.l->v1_of[CTR_CG_FREEZER];
    if ((parts & PART_V1) && d->t.v1[CTR_CG_FREEZER] &&
        !(made_v1 && freezer >= 0 && made_v1[freezer])) {
        cleanup_free char *state = NULL;
        if (read_if_there(d->t.v1[CTR_CG_FREEZER], "freezer.state", &state, err) < 0)
            return -1;
        if (state && strcmp(state, "THAWED") != 0)
            return ctr_fail(err, EBUSY, "container's cgroup unexpectedly frozen: "
                            "`%s/freezer.state' is %s", d->t.v1[CTR_CG_FREEZER], state);
    }
    if (d->v2 && !made_v2) {
        cleanup_free char *freeze = NULL, *events = NULL;
        uint64_t frozen = 0;
        if (read_if_there(d->v2, "cgroup.freeze", &freeze, err) < 0 ||
            read_if_there(d->v2, "cgroup.events", &events, err) < 0)
            return -1;
        if ((freeze && strcmp(freeze, "0") != 0) ||
            (events && cg_keyed(events, "frozen", &frozen) && frozen != 0))
            return ctr_fail(err, EBUSY, "container's cgroup unexpectedly frozen: `%s' "
                            "(cgroup.freeze %s)", d->v2, freeze ? freeze : "0, frozen by its parent");
    }
    return 0;
}

int ctr_cgroup_check_unused(const struct ctr_cgroup_layout *l, const char *path,
                            struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = dirs_get(l, path, &d, err) < 0 ? -1 : refuse_used(&d, PART_ALL, NULL, 0, err);
    dirs_free(&d);
    return rc;
}

/* ------------------------------------------------------------------ add, list */

static int write_pid(const char *dir, const void *pid, struct ctr_err *err)
{
    return cg_writef(err, dir, "cgroup.procs", "%d", (int)*(const pid_t *)pid);
}

int ctr_cgroup_add_pid(const struct ctr_cgroup_layout *l, const char *path, pid_t pid,
                       struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = dirs_get(l, path, &d, err) < 0 ? -1 : each_dir(&d, 0, write_pid, &pid, err);
    dirs_free(&d);
    return rc;
}

int ctr_cgroup_add_pid_v2(const struct ctr_cgroup_layout *l, const char *path, pid_t pid,
                          struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = dirs_get(l, path, &d, err) < 0 ? -1 : d.v2 ? write_pid(d.v2, &pid, err) : 0;
    dirs_free(&d);
    return rc;
}

int ctr_cgroup_join_self_v1(const struct ctr_cgroup_layout *l, const char *path,
                            struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = dirs_get(l, path, &d, err);
    for (size_t i = 0; rc == 0 && i < d.n_v1; i++)
        rc = cg_writef(err, d.v1[i], "tasks", "0");
    dirs_free(&d);
    return rc;
}

/* the directory whose cgroup.procs lists the container's processes */
static const char *procs_dir(const struct ctr_cgroup_layout *l, const struct cg_dirs *d)
{
    if (l->mode == CTR_CGROUP_V2 || d->n_v1 == 0)
        return d->v2;
    if (l->v1_of[CTR_CG_PIDS] >= 0)
        return d->v1[l->v1_of[CTR_CG_PIDS]];
    if (l->v1_of[CTR_CG_MEMORY] >= 0)
        return d->v1[l->v1_of[CTR_CG_MEMORY]];
    return d->v1[0];
}

int ctr_cgroup_pids(const struct ctr_cgroup_layout *l, const char *path, pid_t **out,
                    size_t *n, struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = -1;
    cleanup_free char *text = NULL;
    *out = NULL;
    *n = 0;
    if (dirs_get(l, path, &d, err) < 0 || cg_read(procs_dir(l, &d), "cgroup.procs", &text, err) < 0)
        goto out;
    size_t cap = 0;
    for (char *p = text; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > INT_MAX) {
            ctr_fail(err, EINVAL, "read `%s/cgroup.procs': not a pid list", procs_dir(l, &d));
            goto fail;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            pid_t *np = realloc(*out, cap * sizeof **out);
            if (np == NULL) {
                ctr_fail(err, ENOMEM, "cgroup.procs");
                goto fail;
            }
            *out = np;
        }
        (*out)[(*n)++] = (pid_t)v;
        p = end + strspn(end, " \n");
    }
    rc = 0;
    goto out;
fail:
    free(*out);
    *out = NULL;
    *n = 0;
out:
    dirs_free(&d);
    return rc;
}

/* ------------------------------------------------------------------ delete */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rmdir_retry(const char *dir, struct ctr_err *err)
{
    for (int i = 0;; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        /* a process that just exited leaves its cgroup a moment after its parent saw it die */
        if (errno != EBUSY || i == 20)
            return ctr_fail(err, errno, "rmdir `%s'", dir);
        sleep_ms(i < 5 ? 10 : 50);
    }
}

/* children first: a container with a cgroup namespace may have made its own.  They are
 * looked for only when the rmdir says there is something inside (EBUSY): a container's
 * cgroup has none, and one rmdir per hierarchy is then the whole removal. */
static int remove_cgroup(const char *dir, int depth, struct ctr_err *err)
{
    if (depth > 32)
        return ctr_fail(err, ELOOP, "rmdir `%s': cgroups nested too deep", dir);
    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    if (errno != EBUSY)
        return ctr_fail(err, errno, "rmdir `%s'", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : ctr_fail(err, errno, "opendir `%s'", dir);
    struct ctr_dir dp;
    ctr_dir_open(&dp, fd);
    const char *name;
    unsigned char type;
    int rc = 0;
    while (rc == 0 && (name = ctr_dir_next(&dp, &type)) != NULL) {
        if (type != DT_DIR)
            continue;
        char child[PATH_MAX];
        if ((size_t)snprintf(child, sizeof child, "%s/%s", dir, name) >= sizeof child)
            rc = ctr_fail(err, ENAMETOOLONG, "rmdir `%s/%s'", dir, name);
        else
            rc = remove_cgroup(child, depth + 1, err);
    }
    ctr_dir_close(&dp);
    return rc < 0 ? rc : rmdir_retry(dir, err);
}

static int remove_tree(const char *dir, const void *unused, struct ctr_err *err)
{
    (void)unused;
    return remove_cgroup(dir, 0, err);
}

int ctr_cgroup_delete(const struct ctr_cgroup_layout *l, const char *path, struct ctr_err *err)
{
    struct cg_dirs d;
    /* go on through the hierarchies after a failure, report the first */
    int rc = dirs_get(l, path, &d, err) < 0 ? -1 : each_dir(&d, 1, remove_tree, NULL, err);
    dirs_free(&d);
    return rc;
}

int ctr_cgroup_remove_v2(const struct ctr_cgroup_layout *l, const char *path,
                         struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = dirs_get(l, path, &d, err) < 0 ? -1 : d.v2 ? remove_tree(d.v2, NULL, err) : 0;
    dirs_free(&d);
    return rc;
}

/* ------------------------------------------------------------------ freeze */

#define FREEZE_TIMEOUT 5.0

static int freeze_v1(const char *dir, int frozen, struct ctr_err *err)
{
    const char *want = frozen ? "FROZEN" : "THAWED";
    double deadline = now_s() + FREEZE_TIMEOUT;
    for (int i = 0;; i++) {
        /* write again now and then: a task that forks while freezing can leave the cgroup in
         * FREEZING until asked once more (runc does the same) */
        if (i % 20 == 0 && cg_write(dir, "freezer.state", want, err) < 0)
            return -1;
        cleanup_free char *state = NULL;
        if (cg_read(dir, "freezer.state", &state, err) < 0)
            return -1;
        if (strcmp(state, want) == 0)
            return 0;
        if (now_s() > deadline)
            return ctr_fail(err, ETIMEDOUT, "%s `%s': freezer.state is still %s",
                            frozen ? "freeze" : "thaw", dir, state);
        sleep_ms(i < 10 ? 1 : 10);
    }
}

static int freeze_v2(const char *dir, int frozen, struct ctr_err *err)
{
    if (cg_write(dir, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
        return -1;
    double deadline = now_s() + FREEZE_TIMEOUT;
    for (int i = 0;; i++) {
        cleanup_free char *ev = NULL;
        uint64_t v;
        if (cg_read(dir, "cgroup.events", &ev, err) < 0)
            return -1;
        if (cg_keyed(ev, "frozen", &v) && v == (uint64_t)(frozen != 0))
            return 0;
        if (now_s() > deadline)
            return ctr_fail(err, ETIMEDOUT, "%s `%s': cgroup.events does not say frozen %d",
                            frozen ? "freeze" : "thaw", dir, frozen != 0);
        sleep_ms(i < 10 ? 1 : 10);
    }
}

int ctr_cgroup_freeze(const struct ctr_cgroup_layout *l, const char *path, int frozen,
                      struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = -1;
    if (dirs_get(l, path, &d, err) < 0)
        goto out;
    if (d.t.v1[CTR_CG_FREEZER])
        rc = freeze_v1(d.t.v1[CTR_CG_FREEZER], frozen, err);
    else if (d.v2)
        rc = freeze_v2(d.v2, frozen, err);
    else
        ctr_fail(err, ENOTSUP, "freeze `%s': no freezer (v1 freezer hierarchy or cgroup v2)",
                 path);
out:
    dirs_free(&d);
    return rc;
}

/* ------------------------------------------------------------------ update */

/* The directories of the existing cgroup `path`, which is never made here: a cgroup that is
 * gone is the container's end, not a new start (ENOENT).  dirs_free(d) in every case. */
static int dirs_existing(const struct ctr_cgroup_layout *l, const char *path, struct cg_dirs *d,
                         struct ctr_err *err)
{
    if (dirs_get(l, path, d, err) < 0)
        return -1;
    const char *main_dir = procs_dir(l, d);
    struct stat st;
    if (stat(main_dir, &st) < 0)
        return ctr_fail(err, errno, "cgroup `%s': stat `%s'", path, main_dir);
    return 0;
}


int ctr_cgroup_update(const struct ctr_cgroup_layout *l, const char *path,
                      const struct ctr_resources *resources, struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = -1;
    if (dirs_existing(l, path, &d, err) < 0)
        goto out;
    /* fresh stays 0: every value asked for is written, the kernel's default included */
    rc = apply(&d.t, resources, err);
out:
    dirs_free(&d);
    return rc;
}

/* ------------------------------------------------------------------ stats */

int ctr_cgroup_stats(const struct ctr_cgroup_layout *l, const char *path,
                     struct ctr_cgroup_stats *s, struct ctr_err *err)
{
    struct cg_dirs d;
    int rc = -1;
    memset(s, 0, sizeof *s);
    if (dirs_existing(l, path, &d, err) < 0)
        goto out;
    if (ctr_cgroup_v1_stats(&d.t, s, err) < 0 || ctr_cgroup_v2_stats(&d.t, s, err) < 0)
        goto out;
    rc = 0;
out:
    dirs_free(&d);
    return rc;
}
