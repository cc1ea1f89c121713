/* Host-side mounts of snapshots: see store/snapshot_mount.h. */
#include "store/snapshot_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "base/mounts.h"
#include "base/cleanup.h"
#include "base/mount_optmap.h"

#define PROPAGATION_FLAGS (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)

/* Split a comma-separated option string into mount(2) flags, propagation flags and filesystem
 * data.  Each VFS option is looked at alone so that the MS_REC of "rprivate" does not turn a
 * "bind" into an "rbind" (one flags word cannot tell them apart). */
static int parse_options(const char *options, unsigned long *flags, unsigned long *prop,
                         char **data, struct ctr_err *err)
{
    *flags = 0;
    *prop = 0;
    *data = NULL;
    if (options == NULL || *options == '\0')
        return 0;
    cleanup_free char *fs = calloc(1, strlen(options) + 1);
    if (fs == NULL)
        return ctr_fail(err, ENOMEM, "parse mount options `%s'", options);
    const char *p = options, *o;
    size_t len;
    while (ctr_mount_opt_next(&p, &o, &len)) {
        struct ctr_mount_opt k = ctr_mount_opt_lookup(o, len);
        if (k.kind == CTR_MOUNT_OPT_VFS && (k.flags & PROPAGATION_FLAGS))
            *prop |= k.flags;
        else if (k.kind == CTR_MOUNT_OPT_VFS)
            *flags = ctr_mount_opt_apply(k, *flags);
        else if (k.kind == CTR_MOUNT_OPT_FS) {
            if (*fs)
                strcat(fs, ",");
            strncat(fs, o, len);
        }
        /* userspace-only options (x-*, _netdev, ...) mean nothing to the kernel */
    }
    if (*fs) {
        *data = fs;
        fs = NULL;
    }
    return 0;
}

/* mount(2) copies one page of options, with its terminating NUL. */
#define PAGE_DATA 4096

/* The longest common directory of the absolute paths in v[0..n) ("/a/b/c/fs", "/a/b/d/fs":
 * "/a/b"), in out. */
static void common_dir(char *const *v, size_t n, char *out, size_t len)
{
    snprintf(out, len, "%s", v[0]);
    for (size_t i = 1; i < n; i++) {
        size_t k = 0;
        while (out[k] && out[k] == v[i][k])
            k++;
        out[k] = '\0';
    }
    char *slash = strrchr(out, '/');
    if (slash == out)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
}

/* An overlay whose lowerdir, upperdir and workdir are given relative to their common
 * directory, mounted from there: the way containerd fits many layers into mount(2)'s page
 * on kernels without "lowerdir+".  The working directory is ours again before we return. */
static int mount_overlay_relative(const char *target, unsigned long flags, const char *data,
                                  struct ctr_err *err)
{
    cleanup_free char *copy = strdup(data);
    size_t cap = strlen(data) / 2 + 2;
    cleanup_free char **paths = calloc(cap, sizeof *paths);
    cleanup_free char *out = calloc(1, strlen(data) + 1);
    if (copy == NULL || paths == NULL || out == NULL)
        return ctr_fail(err, ENOMEM, "mount overlay on `%s'", target);
    size_t n = 0;
    for (char *save = NULL, *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        int is_dirs = !strncmp(o, "lowerdir=", 9) || !strncmp(o, "upperdir=", 9) ||
                      !strncmp(o, "workdir=", 8);
        char *v = strchr(o, '=');
        if (!is_dirs)
            continue;
        for (char *s2 = NULL, *d = strtok_r(v + 1, ":", &s2); d && n < cap;
             d = strtok_r(NULL, ":", &s2))
            if (d[0] == '/')
                paths[n++] = d;
    }
    if (n == 0)
        return ctr_fail(err, E2BIG, "mount overlay on `%s': options longer than a page", target);
    char base[PATH_MAX];
    common_dir(paths, n, base, sizeof base);
    size_t bl = strcmp(base, "/") == 0 ? 0 : strlen(base);
    /* the same options, each directory under base written relative to it */
    const char *p = data;
    char *w = out;
    while (*p) {
        if ((p == data || p[-1] == '=' || p[-1] == ':') && *p == '/' &&
            strncmp(p, base, bl) == 0 && p[bl] == '/') {
            p += bl + 1;
            continue;
        }
        *w++ = *p++;
    }
    *w = '\0';
    if (strlen(out) >= PAGE_DATA)
        return ctr_fail(err, E2BIG, "mount overlay on `%s': %zu layers do not fit in a page of "
                        "options even relative to `%s'", target, n, base);
    cleanup_close int cwd = RETRY(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (cwd < 0)
        return ctr_fail(err, errno, "open the working directory");
    if (chdir(base) < 0)
        return ctr_fail(err, errno, "chdir `%s'", base);
    int r = (int)RETRY(mount("overlay", target, "overlay", flags, out));
    int e = errno;
    if (fchdir(cwd) < 0 && r == 0) {
        umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
        return ctr_fail(err, errno, "return to the working directory");
    }
    if (r < 0)
        return ctr_fail(err, e, "mount overlay on `%s' (%zu directories relative to `%s')",
                        target, n, base);
    return 0;
}

/* mount(2) copies one page of options: an overlay of many layers (Docker allows about 125)
 * does not fit.  The new mount API takes its lower directories one by one ("lowerdir+",
 * Linux 6.8); where the kernel refuses that, the directories go relative to their common
 * parent. */
static int mount_overlay_long(const char *target, unsigned long flags, const char *data,
                              struct ctr_err *err)
{
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "mount overlay on `%s'", target);
    int tree = ctr_mount_new("overlay", "overlay", flags, data, what, err);
    if (tree < 0)
        return err->code == EINVAL || err->code == ENOSYS
                   ? mount_overlay_relative(target, flags, data, err)
                   : -1;
    cleanup_close int t = RETRY(open(target, O_PATH | O_DIRECTORY | O_CLOEXEC));
    int r = t < 0 ? ctr_fail(err, errno, "open `%s'", target) : ctr_mount_attach(tree, t, what, err);
    close(tree);
    return r;
}

int ctr_snapshot_mount(const char *type, const char *source, const char *target,
                        const char *options, struct ctr_err *err)
{
    unsigned long flags, prop;
    char *data_raw;
    if (parse_options(options, &flags, &prop, &data_raw, err) < 0)
        return -1;
    cleanup_free char *data = data_raw;
    if (type && (strcmp(type, "bind") == 0 || strcmp(type, "rbind") == 0)) {
        flags |= MS_BIND;
        if (strcmp(type, "rbind") == 0)
            flags |= MS_REC;
    }
    int long_overlay = type && strcmp(type, "overlay") == 0 && data && strlen(data) >= PAGE_DATA;
    if (long_overlay) {
        if (mount_overlay_long(target, flags, data, err) < 0)
            return -1;
    } else if (RETRY(mount(source, target, type, flags, data)) < 0) {
        return ctr_fail(err, errno, "mount %s `%s' on `%s' (options %s)", type ? type : "",
                        source ? source : "", target, options ? options : "");
    }

    /* The kernel ignores MS_RDONLY (and the other per-mount flags) when it creates a bind
     * mount; a remount of the bind applies them. */
    if ((flags & (MS_BIND | MS_RDONLY)) == (MS_BIND | MS_RDONLY)) {
        unsigned long rflags = (flags & ~(MS_REC | PROPAGATION_FLAGS)) | MS_REMOUNT;
        if (RETRY(mount("", target, NULL, rflags, NULL)) < 0) {
            int e = errno;
            umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
            return ctr_fail(err, e, "remount read-only `%s'", target);
        }
    }
    /* Propagation cannot be combined with other flags in one call: one call per kind. */
    static const unsigned long kinds[] = {MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (!(prop & kinds[i]))
            continue;
        if (RETRY(mount("", target, NULL, kinds[i] | (prop & MS_REC), NULL)) < 0) {
            int e = errno;
            umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);
            return ctr_fail(err, e, "set propagation of `%s'", target);
        }
    }
    return 0;
}
