#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

static const struct {
    const char *name;
    unsigned long flags;
} propagations[] = {
    {"shared", MS_SHARED},          {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},            {"rslave", MS_SLAVE | MS_REC},
    {"private", MS_PRIVATE},        {"rprivate", MS_PRIVATE | MS_REC},
    {"unbindable", MS_UNBINDABLE},  {"runbindable", MS_UNBINDABLE | MS_REC},
};

long ctr_mount_propagation(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(propagations); i++)
        if (strcmp(propagations[i].name, name) == 0)
            return (long)propagations[i].flags;
    return -1;
}

const char *ctr_fd_path(int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
    return buf;
}

void ctr_mount_opts_free(struct ctr_mount_opts *o)
{
    free(o->data);
    o->data = NULL;
}

int ctr_mount_parse_options(const char *const *opts, size_t n, const char *where,
                            struct ctr_mount_opts *out, struct ctr_err *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(opts[i]) + 1;
    cleanup_free char *optstr = calloc(1, cap);
    if (optstr == NULL)
        return ctr_fail(err, ENOMEM, "%s", where);
    for (size_t i = 0; i < n; i++) {
        const char *o = opts[i];
        long prop = ctr_mount_propagation(o);
        if (prop >= 0) {
            out->propagation = (unsigned long)prop;
            continue;
        }
        if (strcmp(o, "rro") == 0) {
            out->recursive_ro = 1;
            continue;
        }
        /* runc's own extensions that need no kernel flag here */
        if (strcmp(o, "rrw") == 0 || strcmp(o, "tmpcopyup") == 0 || *o == '\0')
            continue;
        if (strcmp(o, "idmap") == 0 || strcmp(o, "ridmap") == 0)
            return ctr_fail(err, 0, "%s[%zu]: `%s' is not supported yet", where, i, o);
        if (strchr(o, ',') != NULL)
            return ctr_fail(err, 0, "%s[%zu]: `%s': one option per entry", where, i, o);
        if (*optstr)
            strcat(optstr, ",");
        strcat(optstr, o);
    }
    char *user = NULL, *vfs = NULL, *fs = NULL;
    if (mnt_split_optstr(optstr, &user, &vfs, &fs, 0, 0) != 0)
        return ctr_fail(err, 0, "%s: cannot parse `%s'", where, optstr);
    free(user); /* userspace-only options (noauto, _netdev, ...) mean nothing to the kernel */
    unsigned long flags = 0;
    int r = vfs ? mnt_optstr_get_flags(vfs, &flags, mnt_get_builtin_optmap(MNT_LINUX_MAP)) : 0;
    free(vfs);
    if (r != 0) {
        free(fs);
        return ctr_fail(err, 0, "%s: cannot parse `%s'", where, optstr);
    }
    out->flags = flags;
    out->data = fs ? fs : strdup("");
    if (out->data == NULL)
        return ctr_fail(err, ENOMEM, "%s", where);
    return 0;
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

int ctr_mount_remount_bind(int fd, unsigned long flags, const char *what, struct ctr_err *err)
{
    char p[32];
    ctr_fd_path(fd, p, sizeof p);
    unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    flags &= ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0)
        return 0;
    /* EPERM: the kernel locks nosuid/nodev/noexec/atime flags of a mount that came from a
     * more privileged mount namespace, and a remount that would clear them is refused; repeat
     * what the mount has (runc does the same) and try once more. */
    if (errno == EPERM &&
        mount(NULL, p, NULL,
              MS_REMOUNT | MS_BIND | flags | (ctr_mount_current_flags(fd) & (keep | MS_NOATIME |
                                                                          MS_NODIRATIME |
                                                                          MS_RELATIME)),
              NULL) == 0)
        return 0;
    return ctr_fail(err, errno, "remount `%s'", what);
}

int ctr_mount_recursive_ro(int fd, const char *what, struct ctr_err *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        return ctr_fail(err, errno, "make `%s' recursively read-only (mount_setattr)", what);
    return 0;
}
