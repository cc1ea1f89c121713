#include "base/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"

const char *ctr_fd_path(int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
    return buf;
}

unsigned long ctr_mount_current_flags(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) < 0)
        return 0;
    static const struct {
        unsigned long st, ms;
    } map[] = {
        {ST_RDONLY, MS_RDONLY},       {ST_NOSUID, MS_NOSUID},     {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC},       {ST_NOATIME, MS_NOATIME},   {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},
    };
    unsigned long ms = 0;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (sv.f_flag & map[i].st)
            ms |= map[i].ms;
    return ms;
}

/* A failed call of the new mount API.  ENOSYS gets a message of its own: the runtime has no
 * fallback that would look a path up again, so it says which call this kernel lacks. */
static int api_fail(struct ctr_err *err, const char *call, const char *what)
{
    static const struct {
        const char *call, *since;
    } since[] = {
        {"open_tree", "5.2"}, {"move_mount", "5.2"}, {"fsopen", "5.2"},      {"fsconfig", "5.2"},
        {"fsmount", "5.2"},   {"statx", "4.11"},     {"statx STATX_MNT_ID", "5.8"},
        {"mount_setattr", "5.12"},
    };
    if (errno != ENOSYS)
        return ctr_fail(err, errno, "%s: %s", what, call);
    const char *need = "5.12";
    for (size_t i = 0; i < ARRAY_SIZE(since); i++)
        if (strcmp(since[i].call, call) == 0)
            need = since[i].since;
    struct utsname u;
    if (uname(&u) < 0)
        snprintf(u.release, sizeof u.release, "unknown");
    return ctr_fail(err, ENOSYS,
                    "%s: this kernel (Linux %s) lacks %s, which ctrlua needs (Linux %s or later)",
                    what, u.release, call, need);
}

int ctr_mount_clone(int dfd, const char *path, int recursive, const char *what,
                    struct ctr_err *err)
{
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) |
                     (*path == '\0' ? AT_EMPTY_PATH : 0);
    int fd = (int)RETRY(open_tree(dfd, path, flags));
    if (fd < 0)
        return api_fail(err, "open_tree", what);
    return fd;
}

/* The per-mount flags of a new mount (as mount(2) sets them: relatime unless told). */
static unsigned mount_attr_of(unsigned long ms)
{
    static const struct {
        unsigned long ms;
        unsigned attr;
    } map[] = {
        {MS_RDONLY, MOUNT_ATTR_RDONLY},         {MS_NOSUID, MOUNT_ATTR_NOSUID},
        {MS_NODEV, MOUNT_ATTR_NODEV},           {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
        {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME}, {MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW},
    };
    unsigned attr = 0;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (ms & map[i].ms)
            attr |= map[i].attr;
    if (ms & MS_STRICTATIME)
        attr |= MOUNT_ATTR_STRICTATIME;
    else if (ms & MS_NOATIME)
        attr |= MOUNT_ATTR_NOATIME;
    return attr;
}

/* The first message the filesystem left in the fs_context's log, as " (text)", or "". */
static const char *fs_log(int fsfd, char *buf, size_t len)
{
    char msg[256];
    ssize_t n = read(fsfd, msg, sizeof msg - 1);
    buf[0] = '\0';
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    if (n > 2) {
        msg[n] = '\0';
        snprintf(buf, len, " (%s)", msg + 2); /* "e tmpfs: Bad value for 'size'" */
    }
    return buf;
}

static int fs_set(int fsfd, unsigned cmd, const char *key, const char *value, const char *what,
                  struct ctr_err *err)
{
    if (fsconfig(fsfd, cmd, key, value, 0) == 0)
        return 0;
    int e = errno;
    char log[300];
    fs_log(fsfd, log, sizeof log);
    if (e == ENOSYS) {
        errno = e;
        return api_fail(err, "fsconfig", what);
    }
    return ctr_fail(err, e, "%s: fsconfig `%s%s%s'%s", what, key, value ? "=" : "",
                    value ? value : "", log);
}

/* fsconfig takes string values of at most 255 bytes: a longer overlay lowerdir (an image of
 * many layers) goes one directory at a time as "lowerdir+" (Linux 6.8), top-most first. */
#define FSCONFIG_STRING_MAX 255
static int fs_set_lowerdirs(int fsfd, char *list, const char *what, struct ctr_err *err)
{
    for (char *save = NULL, *dir = strtok_r(list, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save))
        if (fs_set(fsfd, FSCONFIG_SET_STRING, "lowerdir+", dir, what, err) < 0)
            return -1;
    return 0;
}

/* Each option of a data string ("size=64m,mode=755,newinstance") as one fsconfig call.  A
 * comma inside double quotes (an SELinux context) does not split. */
static int fs_set_data(int fsfd, const char *data, const char *what, struct ctr_err *err)
{
    cleanup_free char *copy = strdup(data);
    if (copy == NULL)
        return ctr_fail(err, ENOMEM, "%s", what);
    char *p = copy;
    while (*p) {
        char *opt = p;
        int quoted = 0;
        for (; *p && (quoted || *p != ','); p++)
            if (*p == '"')
                quoted = !quoted;
        if (*p)
            *p++ = '\0';
        if (*opt == '\0')
            continue;
        char *eq = strchr(opt, '=');
        if (eq)
            *eq = '\0';
        if (eq && strcmp(opt, "lowerdir") == 0 && strlen(eq + 1) > FSCONFIG_STRING_MAX) {
            if (fs_set_lowerdirs(fsfd, eq + 1, what, err) < 0)
                return -1;
            continue;
        }
        if (fs_set(fsfd, eq ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opt, eq ? eq + 1 : NULL,
                   what, err) < 0)
            return -1;
    }
    return 0;
}

/* The superblock flags of MS_* as the names fsconfig knows them by. */
static int fs_set_sb_flags(int fsfd, unsigned long ms, const char *what, struct ctr_err *err)
{
    static const struct {
        unsigned long ms;
        const char *name;
    } map[] = {
        {MS_RDONLY, "ro"},         {MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"},
        {MS_LAZYTIME, "lazytime"}, {MS_MANDLOCK, "mand"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if ((ms & map[i].ms) && fs_set(fsfd, FSCONFIG_SET_FLAG, map[i].name, NULL, what, err) < 0)
            return -1;
    return 0;
}

int ctr_mount_new(const char *type, const char *source, unsigned long flags, const char *data,
                  const char *what, struct ctr_err *err)
{
    cleanup_close int fsfd = fsopen(type, FSOPEN_CLOEXEC);
    if (fsfd < 0 && errno == ENOSYS)
        return api_fail(err, "fsopen", what);
    if (fsfd < 0) /* an unknown type reads as mount(8) reports it: "No such device" */
        return ctr_fail(err, errno, "%s", what);
    if (source && *source && fs_set(fsfd, FSCONFIG_SET_STRING, "source", source, what, err) < 0)
        return -1;
    if (fs_set_data(fsfd, data ? data : "", what, err) < 0 ||
        fs_set_sb_flags(fsfd, flags, what, err) < 0)
        return -1;
    if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno;
        char log[300];
        fs_log(fsfd, log, sizeof log);
        return ctr_fail(err, e, "%s%s", what, log);
    }
    int fd = fsmount(fsfd, FSMOUNT_CLOEXEC, mount_attr_of(flags));
    if (fd < 0)
        return api_fail(err, "fsmount", what);
    return fd;
}

static int set_attr(int fd, unsigned at, struct mount_attr *a)
{
    return (int)RETRY(mount_setattr(fd, "", AT_EMPTY_PATH | at, a, sizeof *a));
}

/* The mount_setattr() that does what MS_REMOUNT|MS_BIND|flags does: ro/nosuid/nodev/noexec/
 * nosymfollow become exactly what flags say, and the atime flags too when one is given (a
 * remount keeps the mount's atime otherwise). */
static struct mount_attr remount_attr(unsigned long flags)
{
    const unsigned atime = MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
    struct mount_attr a = {
        .attr_set = mount_attr_of(flags) & ~atime,
        .attr_clr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                    MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW,
    };
    if (flags & (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)) {
        a.attr_clr |= atime;
        a.attr_set |= mount_attr_of(flags) & atime;
    }
    return a;
}

int ctr_mount_set_flags(int fd, unsigned long flags, const char *what, struct ctr_err *err)
{
    struct mount_attr a = remount_attr(flags);
    if (set_attr(fd, 0, &a) == 0)
        return 0;
    /* EPERM: the kernel locks nosuid/nodev/noexec/atime flags of a mount that came from a
     * more privileged mount namespace, and a change that would clear them is refused; repeat
     * what the mount has (runc does the same for its remounts) and try once more. */
    unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
                         MS_RELATIME;
    if (errno == EPERM) {
        a = remount_attr(flags | (ctr_mount_current_flags(fd) & keep));
        if (set_attr(fd, 0, &a) == 0)
            return 0;
    }
    return api_fail(err, "mount_setattr", what);
}

int ctr_mount_recursive_ro(int fd, const char *what, struct ctr_err *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (set_attr(fd, AT_RECURSIVE, &attr) < 0)
        return api_fail(err, "mount_setattr", what);
    return 0;
}

int ctr_mount_attach(int tree, int target, const char *what, struct ctr_err *err)
{
    if (RETRY(move_mount(tree, "", target, "",
                         MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) < 0)
        return api_fail(err, "move_mount", what);
    return 0;
}

int ctr_mount_set_propagation(int fd, unsigned long propagation, const char *what,
                              struct ctr_err *err)
{
    struct mount_attr a = {.propagation = propagation & ~(unsigned long)MS_REC};
    if (set_attr(fd, (propagation & MS_REC) ? AT_RECURSIVE : 0, &a) < 0)
        return api_fail(err, "mount_setattr", what);
    return 0;
}

int ctr_mount_id(int fd, unsigned long long *id, const char *what, struct ctr_err *err)
{
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif
    /* the unique id where the kernel has it (6.8), which is never reused; else the old one:
     * asked the same way every time, one kernel always answers with the same kind */
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_MNT_ID_UNIQUE,
              &sx) < 0)
        return api_fail(err, "statx", what);
    if (!(sx.stx_mask & (STATX_MNT_ID | STATX_MNT_ID_UNIQUE))) {
        errno = ENOSYS;
        return api_fail(err, "statx STATX_MNT_ID", what);
    }
    *id = sx.stx_mnt_id;
    return 0;
}

int ctr_unmount(const char *target, int detach, struct ctr_err *err)
{
    int flags = UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0);
    for (int attempt = 0;; attempt++) {
        if (RETRY(umount2(target, flags)) == 0)
            return 0;
        if (errno != EBUSY || attempt >= 20)
            return ctr_fail(err, errno, "unmount `%s'", target);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void ctr_mountinfo_free(struct ctr_mountinfo *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].root);
        free(m[i].target);
        free(m[i].fstype);
        free(m[i].source);
        free(m[i].vfs_options);
        free(m[i].fs_options);
    }
    free(m);
}

/* The whole of a /proc file, NUL-terminated, in a malloc'd buffer (its size is not known
 * before it is read: stat says 0). */
static char *read_proc_file(const char *path, struct ctr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ctr_fail(err, errno, "read `%s'", path);
        return NULL;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
            cap *= 2;
        }
        if (buf == NULL) {
            close(fd);
            ctr_fail(err, ENOMEM, "read `%s'", path);
            return NULL;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            ctr_fail(err, e, "read `%s'", path);
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* The next space-separated field of a mountinfo line, unescaped in place (the kernel writes
 * space, tab, newline and backslash as \NNN octal); NULL at the end of the line. */
static char *next_field(char **p)
{
    char *s = *p;
    if (s == NULL || *s == '\0')
        return NULL;
    char *e = strchr(s, ' ');
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = NULL;
    }
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return s;
}

/* One line: "ID PARENT MAJ:MIN ROOT TARGET VFSOPTS [OPTIONAL...] - FSTYPE SOURCE FSOPTS"
 * (proc(5)).  0, or -1 for a line of another shape. */
static int parse_mountinfo_line(char *line, struct ctr_mountinfo *e)
{
    char *p = line;
    char *f[6];
    for (int i = 0; i < 6; i++)
        if ((f[i] = next_field(&p)) == NULL)
            return -1;
    char *sep;
    while ((sep = next_field(&p)) != NULL && strcmp(sep, "-") != 0)
        ;
    char *fstype = next_field(&p), *source = next_field(&p), *fsopts = next_field(&p);
    if (sep == NULL || fstype == NULL ||
        sscanf(f[0], "%d", &e->id) != 1 || sscanf(f[1], "%d", &e->parent_id) != 1 ||
        sscanf(f[2], "%u:%u", &e->major, &e->minor) != 2)
        return -1;
    e->root = strdup(f[3]);
    e->target = strdup(f[4]);
    e->vfs_options = strdup(f[5]);
    e->fstype = strdup(fstype);
    e->source = strdup(source ? source : "");
    e->fs_options = strdup(fsopts ? fsopts : "");
    return 0;
}

int ctr_mountinfo_read(struct ctr_mountinfo **out, size_t *n, struct ctr_err *err)
{
    const char *path = "/proc/self/mountinfo";
    cleanup_free char *buf = read_proc_file(path, err);
    if (buf == NULL)
        return -1;
    size_t cap = 1;
    for (const char *c = buf; *c; c++)
        cap += *c == '\n';
    struct ctr_mountinfo *m = calloc(cap, sizeof *m);
    if (m == NULL)
        return ctr_fail(err, ENOMEM, "read `%s'", path);
    size_t i = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && i < cap;
         line = strtok_r(NULL, "\n", &save)) {
        struct ctr_mountinfo *e = &m[i];
        if (parse_mountinfo_line(line, e) < 0) {
            ctr_mountinfo_free(m, i + 1);
            return ctr_fail(err, EIO, "read `%s': line %zu is not a mount", path, i + 1);
        }
        i++;
        if (!e->root || !e->target || !e->fstype || !e->source || !e->vfs_options ||
            !e->fs_options) {
            ctr_mountinfo_free(m, i);
            return ctr_fail(err, ENOMEM, "read `%s'", path);
        }
    }
    *out = m;
    *n = i;
    return 0;
}

/* The topmost of the mounts at exactly `target`: the one no other mount there sits on. */
static int top_at(const struct ctr_mountinfo *m, size_t n, const char *target)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].target, target) != 0)
            continue;
        int covered = 0;
        for (size_t j = 0; j < n && !covered; j++)
            covered = j != i && m[j].parent_id == m[i].id && strcmp(m[j].target, target) == 0;
        if (!covered)
            return m[i].id;
    }
    return 0;
}

/* Is mount `id` in the stack at target under (or at) mount `top`? */
static int in_stack(const struct ctr_mountinfo *m, size_t n, const char *target, int top,
                    int id)
{
    for (size_t depth = 0; top != 0 && depth < n; depth++) {
        if (top == id)
            return 1;
        int next = 0;
        for (size_t i = 0; i < n && next == 0; i++)
            if (m[i].id == top)
                for (size_t j = 0; j < n; j++)
                    if (m[j].id == m[i].parent_id && strcmp(m[j].target, target) == 0)
                        next = m[j].id;
        top = next;
    }
    return 0;
}

int ctr_mount_top(const char *target, int *id, struct ctr_err *err)
{
    struct ctr_mountinfo *m;
    size_t n;
    if (ctr_mountinfo_read(&m, &n, err) < 0)
        return -1;
    *id = top_at(m, n, target);
    ctr_mountinfo_free(m, n);
    return 0;
}

int ctr_mount_unstack(const char *target, int keep, struct ctr_err *err)
{
    for (int round = 0; round < 1000; round++) {
        struct ctr_mountinfo *m;
        size_t n;
        if (ctr_mountinfo_read(&m, &n, err) < 0)
            return -1;
        int top = top_at(m, n, target);
        int ours = top != 0 && top != keep && (keep == 0 || in_stack(m, n, target, top, keep));
        ctr_mountinfo_free(m, n);
        if (!ours)
            return 0;
        if (ctr_unmount(target, 1, err) < 0)
            return -1;
    }
    return ctr_fail(err, EBUSY, "unmount `%s': still mounted", target);
}
