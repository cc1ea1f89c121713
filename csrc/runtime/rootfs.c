#include "runtime/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/files.h"
#include "base/mounts.h"
#include "runtime/mount_options.h"
#include "base/cleanup.h"

/* A refusal that is ours, not a syscall's: the message stands alone, the errno is EINVAL. */
#define refuse(err, ...) (ctr_fail((err), 0, __VA_ARGS__), (err)->code = EINVAL, -1)

/* Lexically clean an absolute container path into out ("/a/./b/../c" -> "/a/c"); ".." stops
 * at the root, as it does under RESOLVE_IN_ROOT. */
static int clean_path(const char *in, char *out, size_t len, struct ctr_err *err)
{
    size_t n = 0;
    out[0] = '\0';
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t cl = (size_t)(e - p);
        if (cl == 0 || (cl == 1 && p[0] == '.')) {
            /* nothing */
        } else if (cl == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            out[n] = '\0';
        } else {
            if (n + 1 + cl + 1 > len)
                return ctr_fail(err, ENAMETOOLONG, "path `%s'", in);
            out[n++] = '/';
            memcpy(out + n, p, cl);
            n += cl;
            out[n] = '\0';
        }
        p = e;
    }
    if (n == 0)
        strcpy(out, "/");
    return 0;
}

/* Open directory `path` inside the root, creating the missing components one at a time
 * (mkdirat relative to a parent that was itself opened in the root: never a host path, runc
 * CVE-2024-45310).  Each component is re-resolved from rootfd, so a symlink met on the way is
 * followed inside the root, never out of it. */
static int open_dir_in_root(int rootfd, const char *path, struct ctr_err *err)
{
    char clean[PATH_MAX];
    if (clean_path(path, clean, sizeof clean, err) < 0)
        return -1;
    int fd = ctr_openat_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0 || errno != ENOENT) {
        if (fd < 0)
            ctr_fail(err, errno, "open `%s' in the container", clean);
        return fd;
    }
    cleanup_close int parent = ctr_openat_in_root(rootfd, "/", O_PATH | O_DIRECTORY, 0);
    if (parent < 0)
        return ctr_fail(err, errno, "open the container's root");
    char prefix[PATH_MAX] = "";
    char *save = NULL;
    for (char *comp = strtok_r(clean, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        strcat(prefix, "/");
        strcat(prefix, comp);
        int next = ctr_openat_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST)
                return ctr_fail(err, errno, "mkdir `%s' in the container", prefix);
            next = ctr_openat_in_root(rootfd, prefix, O_PATH | O_DIRECTORY, 0);
        }
        if (next < 0)
            return ctr_fail(err, errno, "open `%s' in the container", prefix);
        close(parent);
        parent = next;
    }
    return steal_fd(&parent);
}

/* Split a cleaned path into its parent directory (opened, created) and last component. */
static int open_parent(int rootfd, const char *path, char *base, size_t baselen,
                       struct ctr_err *err)
{
    char clean[PATH_MAX];
    if (clean_path(path, clean, sizeof clean, err) < 0)
        return -1;
    char *slash = strrchr(clean, '/');
    if (slash[1] == '\0')
        return ctr_fail(err, EINVAL, "`%s': the root itself", path);
    snprintf(base, baselen, "%s", slash + 1);
    if (slash == clean)
        slash[1] = '\0';
    else
        *slash = '\0';
    return open_dir_in_root(rootfd, clean, err);
}

/* Open (creating it when missing: a directory, or an empty file when `file`) the target of a
 * mount inside the root.  O_PATH: the fd only names the place.  With `nofollow` a symlink at
 * the last component is opened as itself, for the caller to refuse. */
static int open_target(int rootfd, const char *dest, int file, int nofollow, struct ctr_err *err)
{
    int how = O_PATH | (nofollow ? O_NOFOLLOW : 0);
    int fd = ctr_openat_in_root(rootfd, dest, how, 0);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return ctr_fail(err, errno, "open `%s' in the container", dest);
    char base[NAME_MAX + 1];
    cleanup_close int parent = open_parent(rootfd, dest, base, sizeof base, err);
    if (parent < 0)
        return -1;
    if (file) {
        int f = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
            return ctr_fail(err, errno, "create `%s' in the container", dest);
        if (f >= 0)
            close(f);
    } else if (mkdirat(parent, base, 0755) < 0 && errno != EEXIST) {
        return ctr_fail(err, errno, "mkdir `%s' in the container", dest);
    }
    fd = ctr_openat_in_root(rootfd, dest, how, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s' in the container", dest);
    return fd;
}

static int check_fs(int fd, long magic, const char *type, const char *dest, struct ctr_err *err)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0)
        return ctr_fail(err, errno, "statfs `%s' in the container", dest);
    if (sf.f_type != magic)
        return refuse(err, "mount `%s' on `%s': the mount is not %s", type, dest, type);
    return 0;
}

/* What the runtime mounted for the container, by mount id: the rootfs, then each spec mount.
 * A bind brings a directory of the host in; a device node made, unlinked or chowned there
 * would be made on the host, so devices and /dev links go only on the others. */
struct made_mount {
    unsigned long long id;
    const char *dest;
    int bind;
};

struct made_mounts {
    struct made_mount *m;
    size_t n;
};

/* A bind of the host's `source', detached: its flags are set before it is attached, while
 * nothing in the container can reach it.  As with a bind remount, plain ro/nosuid/... change
 * the top mount alone; "rro" makes the whole tree read-only. */
static int make_bind(const struct ctr_spec_mount *m, const char *what, int *file,
                     struct ctr_err *err)
{
    const struct ctr_mount_opts *o = &m->opts;
    if (m->source[0] != '/')
        return refuse(err, "mount `%s' on `%s': a bind source must be absolute", m->source,
                      m->destination);
    cleanup_close int tree = ctr_mount_clone(AT_FDCWD, m->source, (o->flags & MS_REC) != 0,
                                             what, err);
    if (tree < 0)
        return -1;
    struct stat st;
    if (fstat(tree, &st) < 0)
        return ctr_fail(err, errno, "%s: stat the source", what);
    *file = !S_ISDIR(st.st_mode);
    unsigned long extra = o->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (extra && ctr_mount_set_flags(tree, extra, what, err) < 0)
        return -1;
    if (o->recursive_ro && ctr_mount_recursive_ro(tree, what, err) < 0)
        return -1;
    return steal_fd(&tree);
}

/* A new filesystem (proc, sysfs, tmpfs, devpts, mqueue, ...), detached; proc and sysfs are
 * checked to be what they say on the mount itself. */
static int make_fs(const struct ctr_spec_mount *m, const char *what, struct ctr_err *err)
{
    const struct ctr_mount_opts *o = &m->opts;
    cleanup_close int fd = ctr_mount_new(m->type, m->source, o->flags, o->data, what, err);
    if (fd < 0)
        return -1;
    if (strcmp(m->type, "proc") == 0 &&
        check_fs(fd, PROC_SUPER_MAGIC, m->type, m->destination, err) < 0)
        return -1;
    if (strcmp(m->type, "sysfs") == 0 &&
        check_fs(fd, SYSFS_MAGIC, m->type, m->destination, err) < 0)
        return -1;
    if (o->recursive_ro && ctr_mount_recursive_ro(fd, what, err) < 0)
        return -1;
    return steal_fd(&fd);
}

/* A "remount" entry changes the mount that is already at the destination: one mount(2) on
 * the target as it was opened, which is that mount. */
static int remount_one(int rootfd, const struct ctr_spec_mount *m, const char *what,
                       struct ctr_err *err)
{
    cleanup_close int target = ctr_openat_in_root(rootfd, m->destination, O_PATH, 0);
    if (target < 0)
        return ctr_fail(err, errno, "%s: open the destination", what);
    char p[32];
    if (mount(m->source, ctr_fd_path(target, p, sizeof p), m->type, m->opts.flags,
              m->opts.data) < 0)
        return ctr_fail(err, errno, "%s", what);
    if (m->opts.propagation &&
        ctr_mount_set_propagation(target, m->opts.propagation, what, err) < 0)
        return -1;
    return 0;
}

/* One spec mount.  The mount is made detached with all its flags (make_bind, make_fs), the
 * target opened once inside the root, the mount attached onto that fd and its propagation
 * set through the mount's own fd: no step looks the destination up again, so a co-tenant
 * swapping a directory of a shared volume for a symlink cannot have the read-only flag or
 * the propagation land on another mount (the container's root, say) while the bind stays
 * writable.  Regression test: spec/security_spec.lua, "a read-only bind stays read-only
 * while a co-tenant swaps its destination (bind remount race)". */
static int mount_one(int rootfd, const struct ctr_spec_mount *m, struct made_mount *made,
                     struct ctr_err *err)
{
    const char *type = m->type;
    made->id = 0;
    /* cgroup mounts need the cgroup task's view of the hierarchy; none is in the default
     * spec, and a cgroupfs mounted from here would show the host's tree. */
    if (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0)
        return 0;
    char what[2 * PATH_MAX + 32];
    snprintf(what, sizeof what, "mount `%s' on `%s'", m->source, m->destination);
    int bind = (m->opts.flags & MS_BIND) != 0;
    if (!bind && (m->opts.flags & MS_REMOUNT))
        return remount_one(rootfd, m, what, err);

    int file = 0;
    cleanup_close int tree = bind ? make_bind(m, what, &file, err) : make_fs(m, what, err);
    if (tree < 0)
        return -1;
    /* The image controls everything under the rootfs.  A /proc that is a symlink (to /etc,
     * say) would have procfs mounted elsewhere and the container's later writes to
     * /proc/self/attr land on a file it controls (runc CVE-2019-16884); the target is
     * opened without following it, and refused. */
    int is_procfs = strcmp(type, "proc") == 0 || strcmp(type, "sysfs") == 0;
    cleanup_close int target = open_target(rootfd, m->destination, file, is_procfs, err);
    if (target < 0)
        return ctr_fail_prefix(err, "%s", what);
    struct stat st;
    if (is_procfs && fstat(target, &st) < 0)
        return ctr_fail(err, errno, "%s: stat the destination", what);
    if (is_procfs && !S_ISDIR(st.st_mode))
        return refuse(err, "mount `%s' on `%s': the destination is %s", type, m->destination,
                      S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
    if (ctr_mount_attach(tree, target, what, err) < 0)
        return -1;
    if (m->opts.propagation &&
        ctr_mount_set_propagation(tree, m->opts.propagation, what, err) < 0)
        return -1;
    made->dest = m->destination;
    made->bind = bind;
    return ctr_mount_id(tree, &made->id, what, err);
}

/* Is the directory dirfd on the container's rootfs or on a mount the runtime made for it
 * (not a bind of a host directory)?  Refused otherwise, naming `what' and the bind: with
 * `--mount type=bind,src=DIR,dst=/dev/net' a device /dev/net/tun would otherwise be made in
 * the host's DIR.  Regression test: spec/security_spec.lua, "a --device inside a bind under
 * /dev is refused, naming the device and the bind". */
static int check_made_here(const struct made_mounts *mm, int dirfd, const char *what,
                           struct ctr_err *err)
{
    unsigned long long id;
    if (ctr_mount_id(dirfd, &id, what, err) < 0)
        return -1;
    for (size_t i = mm->n; i-- > 0;)
        if (mm->m[i].id == id) {
            if (!mm->m[i].bind)
                return 0;
            return refuse(err, "%s: the directory is on the bind mount `%s' (a host "
                               "directory); nothing is created there", what, mm->m[i].dest);
        }
    return refuse(err, "%s: the directory is on a mount the runtime did not make for the "
                       "container; nothing is created there", what);
}

/* The same check on the nearest directory of `path' that exists, before any of the missing
 * ones is created in it. */
static int check_nearest_dir(const struct made_mounts *mm, int rootfd, const char *path,
                             const char *what, struct ctr_err *err)
{
    char dir[PATH_MAX];
    if (clean_path(path, dir, sizeof dir, err) < 0)
        return -1;
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        cleanup_close int fd = ctr_openat_in_root(rootfd, dir, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0)
            return check_made_here(mm, fd, what, err);
        if (errno != ENOENT || strcmp(dir, "/") == 0)
            return ctr_fail(err, errno, "%s: open `%s' in the container", what, dir);
    }
}

/* The parent directory of `path` when it exists (and the last component in base), else -1:
 * the caller then checks and makes it as open_parent does. */
static int open_existing_parent(int rootfd, const char *path, char *base, size_t baselen)
{
    char clean[PATH_MAX];
    if (clean_path(path, clean, sizeof clean, NULL) < 0)
        return -1;
    char *slash = strrchr(clean, '/');
    if (slash[1] == '\0')
        return -1;
    snprintf(base, baselen, "%s", slash + 1);
    if (slash == clean)
        slash[1] = '\0';
    else
        *slash = '\0';
    return ctr_openat_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0);
}

/* Where mknod is refused (EPERM: a user namespace, or a nodev policy) the host's node is
 * bound onto an empty file made in its place, as runc does. */
static int bind_host_device(int parent, const char *base, const struct ctr_device *d,
                            struct ctr_err *err)
{
    char what[PATH_MAX + 48];
    snprintf(what, sizeof what, "bind the host's `%s' into the container", d->path);
    int f = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
    if (f < 0)
        return ctr_fail(err, errno, "create `%s' in the container", d->path);
    close(f);
    cleanup_close int t = openat(parent, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (t < 0)
        return ctr_fail(err, errno, "%s: open `%s'", what, d->path);
    cleanup_close int node = ctr_mount_clone(AT_FDCWD, d->path, 0, what, err);
    if (node < 0)
        return -1;
    return ctr_mount_attach(node, t, what, err);
}

/* Create one device node, fd-relative, in a directory of the container's own (see
 * check_made_here).  Whatever the image has at that path (a regular file, a symlink to a host
 * file) is removed first: it is never written through. */
static int make_device(const struct made_mounts *mm, int rootfd, const struct ctr_device *d,
                       struct ctr_err *err)
{
    char what[PATH_MAX + 16], base[NAME_MAX + 1];
    snprintf(what, sizeof what, "device `%s'", d->path);
    /* a parent that is there (/dev, as a rule) is its own nearest directory: opened and
     * checked once */
    cleanup_close int parent = open_existing_parent(rootfd, d->path, base, sizeof base);
    if (parent < 0) {
        if (check_nearest_dir(mm, rootfd, d->path, what, err) < 0)
            return -1;
        parent = open_parent(rootfd, d->path, base, sizeof base, err);
        if (parent < 0)
            return ctr_fail_prefix(err, "%s", what);
    }
    if (check_made_here(mm, parent, what, err) < 0)
        return -1;
    if (unlinkat(parent, base, 0) < 0 && errno != ENOENT)
        return ctr_fail(err, errno, "%s: remove what the image has there", what);
    mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
    if (mknodat(parent, base, type | (d->mode & 07777), makedev(d->major, d->minor)) < 0) {
        if (errno != EPERM)
            return ctr_fail(err, errno, "mknod `%s'", d->path);
        return bind_host_device(parent, base, d, err);
    }
    if (fchownat(parent, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return ctr_fail(err, errno, "chown `%s'", d->path);
    return 0;
}

/* runc's rule: when the last mount on /dev is a bind, /dev is the caller's directory (the
 * host's /dev itself, say), and no device, link or ptmx is made in it: make_devices would
 * otherwise unlink and re-create the host's nodes, and chown them under a user namespace.
 * Regression tests: spec/security_spec.lua, "a container whose /dev is a bind of a host
 * directory creates, removes and chowns nothing in it" (and "... in a user namespace"). */
static int dev_is_bound(const struct ctr_config *c)
{
    int bound = 0;
    for (size_t i = 0; i < c->nmounts; i++) {
        char clean[PATH_MAX];
        if (clean_path(c->mounts[i].destination, clean, sizeof clean, NULL) == 0 &&
            strcmp(clean, "/dev") == 0)
            bound = (c->mounts[i].opts.flags & MS_BIND) != 0;
    }
    return bound;
}

static int make_dev_links(const struct ctr_config *c, int dev, struct ctr_err *err)
{
    static const char *const links[][2] = {
        {"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
        {"/proc/kcore", "core"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        /* /dev/core only where the kernel has a /proc/kcore (runc does the same); the host's
         * /proc is still ours to look at before pivot_root */
        if ((strcmp(links[i][1], "core") != 0 || access("/proc/kcore", F_OK) == 0) &&
            symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
            return ctr_fail(err, errno, "symlink `/dev/%s' in the container", links[i][1]);
    /* With a private devpts instance (newinstance), /dev/ptmx must be its pts/ptmx, not a
     * node for the host's multiplexer. */
    for (size_t i = 0; i < c->nmounts; i++)
        if (strcmp(c->mounts[i].type, "devpts") == 0 &&
            strcmp(c->mounts[i].destination, "/dev/pts") == 0) {
            if (unlinkat(dev, "ptmx", 0) < 0 && errno != ENOENT)
                return ctr_fail(err, errno, "remove `/dev/ptmx' in the container");
            if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
                return ctr_fail(err, errno, "symlink `/dev/ptmx' in the container");
        }
    return 0;
}

static int make_devices(const struct ctr_config *c, const struct made_mounts *mm, int rootfd,
                        struct ctr_err *err)
{
    if (dev_is_bound(c))
        return 0;
    for (size_t i = 0; i < c->ndevices; i++)
        if (make_device(mm, rootfd, &c->devices[i], err) < 0)
            return -1;
    cleanup_close int dev = ctr_openat_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
    if (dev < 0) {
        if (check_nearest_dir(mm, rootfd, "/dev/fd", "the links of `/dev'", err) < 0)
            return -1;
        dev = open_dir_in_root(rootfd, "/dev", err);
    }
    if (dev < 0 || check_made_here(mm, dev, "the links of `/dev'", err) < 0)
        return -1;
    return make_dev_links(c, dev, err);
}

/* /dev/null of the container, checked to be the null device before anything is bound from
 * it: an image (or a mount) that puts something else there would otherwise have masked
 * paths bound from a file it controls (runc CVE-2025-31133). */
static int open_dev_null(int rootfd, struct ctr_err *err)
{
    int fd = ctr_openat_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "open `/dev/null' in the container");
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
        close(fd);
        return refuse(err, "`/dev/null' in the container is not the null device (char 1:3)");
    }
    return fd;
}

/* A read-only bind of path onto itself: cloned from the fd, made read-only detached, and
 * attached onto that same fd, so the flag cannot land on a mount found by a later lookup. */
static int readonly_path(int rootfd, const char *path, struct ctr_err *err)
{
    cleanup_close int fd = ctr_openat_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return ctr_fail(err, errno, "readonly path `%s'", path);
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "readonly path `%s'", path);
    cleanup_close int tree = ctr_mount_clone(fd, "", 1, what, err);
    if (tree < 0)
        return -1;
    unsigned long keep = ctr_mount_current_flags(tree) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (ctr_mount_set_flags(tree, MS_RDONLY | keep, what, err) < 0)
        return -1;
    return ctr_mount_attach(tree, fd, what, err);
}

static int masked_path(int rootfd, int devnull, const char *path, struct ctr_err *err)
{
    cleanup_close int fd = ctr_openat_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return ctr_fail(err, errno, "masked path `%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return ctr_fail(err, errno, "masked path `%s'", path);
    char what[PATH_MAX + 64];
    int dir = S_ISDIR(st.st_mode);
    snprintf(what, sizeof what, "masked path `%s': %s", path,
             dir ? "mount an empty tmpfs" : "bind /dev/null");
    /* an empty read-only tmpfs hides a directory, the checked /dev/null a file */
    cleanup_close int tree =
        dir ? ctr_mount_new("tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                            "size=0", what, err)
            : ctr_mount_clone(devnull, "", 0, what, err);
    if (tree < 0)
        return -1;
    return ctr_mount_attach(tree, fd, what, err);
}

/* linux.sysctl, written through the container's own /proc (its namespaces: the names were
 * checked at load to be namespaced ones), before /proc/sys is made read-only. */
static int write_sysctls(const struct ctr_config *c, int rootfd, struct ctr_err *err)
{
    for (size_t i = 0; i < c->nsysctls; i++) {
        char path[PATH_MAX] = "/proc/sys/";
        size_t n = strlen(path);
        for (const char *k = c->sysctls[i].key; *k && n + 1 < sizeof path; k++)
            path[n++] = *k == '.' ? '/' : *k;
        path[n] = '\0';
        cleanup_close int fd = ctr_openat_in_root(rootfd, path, O_WRONLY | O_NOFOLLOW, 0);
        if (fd < 0)
            return ctr_fail(err, errno, "sysctl %s: open `%s' in the container",
                            c->sysctls[i].key, path);
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
            return refuse(err, "sysctl %s: `%s' in the container is not on procfs",
                          c->sysctls[i].key, path);
        const char *v = c->sysctls[i].value;
        if (RETRY(write(fd, v, strlen(v))) < 0)
            return ctr_fail(err, errno, "sysctl %s: write `%s'", c->sysctls[i].key, v);
    }
    return 0;
}

/* The mount point of the mount that holds path (the longest mount point that prefixes it),
 * from /proc/self/mountinfo. */
static int parent_mount(const char *path, char *out, size_t len, struct ctr_err *err)
{
    cleanup_free char *text = NULL;
    size_t tl;
    if (ctr_read_file("/proc/self/mountinfo", 16u << 20, &text, &tl, err) < 0)
        return -1;
    size_t best = 0;
    snprintf(out, len, "/");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
            continue;
        size_t l = strlen(mp);
        /* mountinfo escapes spaces as \040; such a mount point never prefixes a clean path */
        if (l > best && strncmp(path, mp, l) == 0 && (path[l] == '/' || path[l] == '\0')) {
            best = l;
            snprintf(out, len, "%s", mp);
        }
    }
    return 0;
}

int ctr_rootfs_bind(const struct ctr_config *c, struct ctr_err *err)
{
    /* Nothing done in this mount namespace may propagate back to the host's: / becomes a
     * slave (the default; rslave still lets host mounts appear inside) or whatever
     * linux.rootfsPropagation says, recursively.  unbindable waits until after pivot_root
     * (the rootfs could not be bound onto itself), and is rslave until then. */
    unsigned long prop = c->rootfs_propagation;
    if (prop & MS_UNBINDABLE)
        prop = MS_SLAVE | MS_REC;
    /* With no mount namespace of its own (none listed in the spec), the container's mounts
     * are made in the caller's namespace, as runc makes them; the propagation of the
     * caller's / is not ours to change. */
    if (c->mnt_ns != CTR_MNT_HOST && mount(NULL, "/", NULL, prop, NULL) < 0)
        return ctr_fail(err, errno, "make / %s in the container's mount namespace",
                        (prop & MS_SHARED) ? "shared" : "a slave or private");
    /* With / shared, the mount holding the rootfs is made private (as runc does): the bind
     * below would otherwise join its peer group, and pivot_root refuses a shared parent. */
    if (prop & MS_SHARED) {
        char pm[PATH_MAX];
        if (parent_mount(c->rootfs, pm, sizeof pm, err) < 0)
            return -1;
        if (mount(NULL, pm, NULL, MS_PRIVATE, NULL) < 0)
            return ctr_fail(err, errno, "make the rootfs's parent mount `%s' private", pm);
    }
    /* The rootfs becomes a mount of its own (pivot_root needs a mount point, and the
     * recursive bind carries along what the caller mounted inside it). */
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return ctr_fail(err, errno, "bind the rootfs `%s' onto itself", c->rootfs);
    int rootfd = RETRY(open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd < 0)
        return ctr_fail(err, errno, "open the rootfs `%s'", c->rootfs);
    return rootfd;
}

int ctr_rootfs_prepare(const struct ctr_config *c, int rootfd, struct ctr_err *err)
{
    cleanup_free struct made_mount *made = calloc(c->nmounts + 1, sizeof *made);
    if (made == NULL)
        return ctr_fail(err, ENOMEM, "the container's mounts");
    struct made_mounts mm = {.m = made, .n = 1};
    made[0].dest = "/";
    if (ctr_mount_id(rootfd, &made[0].id, "the container's root", err) < 0)
        return -1;
    for (size_t i = 0; i < c->nmounts; i++) {
        if (mount_one(rootfd, &c->mounts[i], &made[mm.n], err) < 0)
            return -1;
        if (made[mm.n].id != 0)
            mm.n++;
    }
    if (make_devices(c, &mm, rootfd, err) < 0 || write_sysctls(c, rootfd, err) < 0)
        return -1;
    for (size_t i = 0; c->readonly && c->readonly[i]; i++)
        if (readonly_path(rootfd, c->readonly[i], err) < 0)
            return -1;
    if (c->masked && c->masked[0]) {
        cleanup_close int devnull = open_dev_null(rootfd, err);
        if (devnull < 0)
            return -1;
        for (size_t i = 0; c->masked[i]; i++)
            if (masked_path(rootfd, devnull, c->masked[i], err) < 0)
                return -1;
    }
    return 0;
}

int ctr_rootfs_enter(const struct ctr_config *c, int rootfd, int no_pivot, struct ctr_err *err)
{
    if (fchdir(rootfd) < 0)
        return ctr_fail(err, errno, "chdir to the rootfs `%s'", c->rootfs);
    if (c->mnt_ns == CTR_MNT_HOST) {
        /* No mount namespace of our own: pivot_root would change the root of every process
         * of the caller's namespace, so chroot, as runc does in that case. */
        if (chroot(".") < 0)
            return ctr_fail(err, errno, "chroot to `%s'", c->rootfs);
    } else if (no_pivot) {
        /* MS_MOVE + chroot: for a root that cannot be pivoted (an initramfs).  Weaker: the
         * old root stays reachable to a process that can escape a chroot. */
        if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
            return ctr_fail(err, errno, "move the rootfs `%s' to /", c->rootfs);
        if (chroot(".") < 0)
            return ctr_fail(err, errno, "chroot to `%s'", c->rootfs);
    } else {
        /* pivot_root(".", "."): the kernel puts the old root on top of the new one, at the
         * same place, and cwd stays on the new root.  The old root is then the top mount of
         * "." and umount2(".", MNT_DETACH) takes it away.  This needs no directory inside
         * the rootfs to park the old root in (the image may be read-only, and a put_old left
         * behind would be a way back out); it is the trick LXC and runc use.  The old root is
         * made a recursive slave first, so the lazy unmount does not propagate to the host's
         * mounts. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            return ctr_fail(err, errno, "pivot_root to `%s'", c->rootfs);
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
            return ctr_fail(err, errno, "make the old root a slave");
        if (umount2(".", MNT_DETACH) < 0)
            return ctr_fail(err, errno, "unmount the old root");
    }
    if (chdir("/") < 0)
        return ctr_fail(err, errno, "chdir to / in the container");
    /* linux.rootfsPropagation, on the new / itself (what the container's mountinfo shows):
     * shared, slave, private or unbindable, as runc applies it after pivot_root. */
    if (c->mnt_ns != CTR_MNT_HOST && c->rootfs_propagation != (MS_SLAVE | MS_REC) &&
        mount(NULL, "/", NULL, c->rootfs_propagation, NULL) < 0)
        return ctr_fail(err, errno, "set the propagation of the container's /");
    if (c->root_readonly) {
        struct statfs sf;
        unsigned long keep = 0;
        cleanup_close int fd = RETRY(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (fd >= 0)
            keep = ctr_mount_current_flags(fd) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
        (void)sf;
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
            return ctr_fail(err, errno, "remount the root read-only");
    }
    return 0;
}
