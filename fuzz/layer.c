/* The layer applier (csrc/store/layer_apply.c): ctr_layer_apply of the input as a layer blob (tar,
 * gzip or zstd; libarchive is loaded by csrc/base/lazylib.c on first use) into a fresh directory.
 *
 * The first byte of the input chooses the options, the rest is the blob:
 *   bit 0  overlay whiteouts (else native ones)
 *   bit 1  uid and gid offsets (a remapped snapshot)
 *   bit 2  apply over a lower tree (files, a directory, symlinks out of the root), so that
 *          whiteouts, opaque directories and replacements have something to act on
 *   bit 3  an expected diff_id that cannot match
 *
 * Everything happens in SANDBOX (a tmpfs, nodev and nosuid, capped at 256 MiB and 64k inodes,
 * mounted in a private mount namespace, so a layer can neither fill the disk nor leave a usable
 * node behind): SANDBOX/root is the directory the layer is applied to, SANDBOX/sentinel its
 * neighbour, which hostile layers aim at (`../sentinel/...`, symlinks to it, hardlinks into
 * it).  After each run these must hold, or the run aborts as a finding:
 *   - SANDBOX holds exactly `root` and `sentinel`, and every entry of sentinel is as it was
 *     (type, mode, owner, size, link count, mtime, ctime, content);
 *   - no char or block device node exists under root but the overlay whiteout (char 0:0):
 *     the layers are applied with the applier's user-namespace rule (device entries are
 *     skipped), which is what keeps a layer's device nodes off this host;
 *   - a failed apply has an error message; the tree it left can be removed.
 * Layers are bounded by -max_len (see the Makefile) and by the tmpfs: a zstd stream can expand
 * to gigabytes, which end as ENOSPC here, not on the disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "store/layer.h"
#include "base/files.h"

static char sandbox[64], root[96], sentinel[96], blob[64];
static int blobfd = -1;
static char *sentinel_before;
static int on_tmpfs;

static void die(const char *what)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, strerror(errno));
    exit(1);
}

#define finding(...)                                                                           \
    do {                                                                                       \
        fprintf(stderr, "fuzz: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                   \
        abort();                                                                               \
    } while (0)

/* A growing text buffer for the sentinel's description. */
struct text {
    char *s;
    size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 256;
        if ((t->s = realloc(t->s, t->cap)) == NULL)
            die("realloc");
    }
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every entry below dfd, never following a symlink: what it is and its content. */
static void describe(int dfd, const char *path, struct text *t)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL)
        die("opendir the sentinel");
    struct dirent *de;
    char names[64][256];
    size_t n = 0;
    while ((de = readdir(d)) != NULL && n < 64)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            snprintf(names[n++], sizeof names[0], "%s", de->d_name);
    qsort(names, n, sizeof names[0], cmp_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            die("stat in the sentinel");
        add(t, "%s/%s %o %u:%u %lld %lu %lld.%09ld %lld.%09ld", path, names[i],
            (unsigned)st.st_mode, (unsigned)st.st_uid, (unsigned)st.st_gid,
            (long long)st.st_size, (unsigned long)st.st_nlink, (long long)st.st_mtim.tv_sec,
            st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        if (S_ISREG(st.st_mode)) {
            char buf[256] = "";
            int f = openat(dirfd(d), names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            ssize_t r = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
            if (f >= 0)
                close(f);
            add(t, " [%.*s]", r > 0 ? (int)r : 0, buf);
        } else if (S_ISLNK(st.st_mode)) {
            char buf[256];
            ssize_t r = readlinkat(dirfd(d), names[i], buf, sizeof buf);
            add(t, " -> %.*s", r > 0 ? (int)r : 0, buf);
        }
        add(t, "\n");
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                die("open in the sentinel");
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, names[i]);
            describe(sub, p, t);
            close(sub);
        }
    }
    closedir(d);
}

static char *describe_sentinel(void)
{
    struct text t = {0};
    add(&t, "%s", "");
    /* the sandbox holds the two directories and nothing else */
    DIR *d = opendir(sandbox);
    if (d == NULL)
        die("opendir the sandbox");
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "root") &&
            strcmp(de->d_name, "sentinel"))
            add(&t, "extra entry in the sandbox: %s\n", de->d_name);
    closedir(d);
    struct stat st;
    if (lstat(sentinel, &st) < 0 || !S_ISDIR(st.st_mode))
        add(&t, "the sentinel is no longer a directory\n");
    else
        add(&t, "sentinel %o %u:%u %lld.%09ld\n", (unsigned)st.st_mode, (unsigned)st.st_uid,
            (unsigned)st.st_gid, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int fd = open(sentinel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        describe(fd, "", &t);
        close(fd);
    }
    return t.s;
}

/* No usable device node under dfd: char 0:0 is the overlay whiteout, anything else is one. */
static void no_devices(int dfd, const char *path, int depth)
{
    if (depth > 256)
        finding("a tree deeper than 256 levels under `%s'", path);
    DIR *d = fdopendir(dfd);
    if (d == NULL)
        die("fdopendir");
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            die("fstatat");
        if ((S_ISCHR(st.st_mode) && st.st_rdev != makedev(0, 0)) || S_ISBLK(st.st_mode))
            finding("the layer left a device node %u:%u at `%s/%s'", major(st.st_rdev),
                    minor(st.st_rdev), path, de->d_name);
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                die("openat");
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            no_devices(sub, p, depth + 1);
        }
    }
    closedir(d);
}

static void cleanup(void)
{
    if (on_tmpfs)
        umount2(sandbox, MNT_DETACH);
    else {
        struct ctr_err e;
        ctr_remove_tree(sandbox, &e);
    }
    rmdir(sandbox);
}

static void put(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
        die(path);
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(sandbox, sizeof sandbox, "/tmp/ctrlua-fuzz-layer.XXXXXX");
    if (mkdtemp(sandbox) == NULL)
        die("mkdtemp");
    atexit(cleanup);
    /* libFuzzer has started no thread yet: the mount namespace can still be unshared */
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
        mount("tmpfs", sandbox, "tmpfs", MS_NODEV | MS_NOSUID,
              "size=256m,nr_inodes=65536,mode=0700") == 0)
        on_tmpfs = 1;
    else
        fprintf(stderr, "fuzz: no private tmpfs (%s): applying on %s itself\n", strerror(errno),
                sandbox);
    snprintf(root, sizeof root, "%s/root", sandbox);
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", sandbox);
    char p[160];
    if (mkdir(sentinel, 0755) < 0)
        die("mkdir the sentinel");
    snprintf(p, sizeof p, "%s/secret", sentinel);
    put(p, "keep");
    snprintf(p, sizeof p, "%s/sub", sentinel);
    if (mkdir(p, 0700) < 0)
        die("mkdir sentinel/sub");
    snprintf(p, sizeof p, "%s/sub/deep", sentinel);
    put(p, "deep");
    snprintf(p, sizeof p, "%s/link", sentinel);
    if (symlink("secret", p) < 0)
        die("symlink in the sentinel");
    sentinel_before = describe_sentinel();
    if ((blobfd = memfd_create("ctrlua-fuzz-layer", MFD_CLOEXEC)) < 0)
        die("memfd_create");
    snprintf(blob, sizeof blob, "/proc/self/fd/%d", blobfd);
    return 0;
}

/* What a lower layer left: something for whiteouts, opaque markers and replacements to hit. */
static void lower_tree(void)
{
    static const char *const dirs[] = {"a", "o", "o/sub", "gone"};
    char p[160];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        if (mkdir(p, 0755) < 0)
            die("mkdir in the lower tree");
    }
    static const char *const files[] = {"a/x", "a/y", "o/old", "o/sub/lower", "gone/deep", "keep"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        put(p, files[i]);
    }
    static const char *const links[][2] = {{"up", "../sentinel"}, {"abs", "/"},
                                           {"o/back", "../../sentinel/secret"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, links[i][0]);
        if (symlink(links[i][1], p) < 0)
            die("symlink in the lower tree");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    struct ctr_err err = {0};
    if (ctr_remove_tree(root, &err) < 0)
        finding("remove the last tree: %s", err.msg);
    if (mkdir(root, 0755) < 0)
        die("mkdir root");
    if (flags & 4)
        lower_tree();
    if (ftruncate(blobfd, 0) < 0 ||
        (size > 1 && pwrite(blobfd, data + 1, size - 1, 0) != (ssize_t)(size - 1)))
        die("write the blob");

    struct ctr_layer_apply_opts o = {
        .overlay_whiteouts = flags & 1,
        .uid_offset = (flags & 2) ? 100000 : 0,
        .gid_offset = (flags & 2) ? 100000 : 0,
        .userns = 1,
        .diff_id = (flags & 8) ? "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                               : NULL,
    };
    struct ctr_layer_apply_result res;
    err = (struct ctr_err){0};
    if (ctr_layer_apply(root, blob, &o, &res, &err) < 0 && err.msg[0] == '\0')
        finding("a failed apply without a message");

    char *after = describe_sentinel();
    if (strcmp(after, sentinel_before) != 0)
        finding("the layer changed what is beside its root:\nbefore:\n%s\nafter:\n%s",
                sentinel_before, after);
    free(after);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        finding("the root is gone or no longer a directory: %s", strerror(errno));
    no_devices(fd, "root", 0);
    err = (struct ctr_err){0};
    if (ctr_remove_tree(root, &err) < 0)
        finding("remove the tree a layer left: %s", err.msg);
    return 0;
}
