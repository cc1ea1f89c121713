/* mount(8) option names: see base/mount_optmap.h. */
#include "base/mount_optmap.h"

#include <string.h>
#include <sys/mount.h>

#include "base/cleanup.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

/* MNT_LINUX_MAP of util-linux 2.38, in its order. */
static const struct {
    const char *name;
    unsigned long flags;
    int invert;
} vfs_opts[] = {
    {"ro", MS_RDONLY, 0},           {"rw", MS_RDONLY, 1},
    {"exec", MS_NOEXEC, 1},         {"noexec", MS_NOEXEC, 0},
    {"suid", MS_NOSUID, 1},         {"nosuid", MS_NOSUID, 0},
    {"dev", MS_NODEV, 1},           {"nodev", MS_NODEV, 0},
    {"sync", MS_SYNCHRONOUS, 0},    {"async", MS_SYNCHRONOUS, 1},
    {"dirsync", MS_DIRSYNC, 0},     {"remount", MS_REMOUNT, 0},
    {"bind", MS_BIND, 0},           {"rbind", MS_BIND | MS_REC, 0},
    {"silent", MS_SILENT, 0},       {"loud", MS_SILENT, 1},
    {"mand", MS_MANDLOCK, 0},       {"nomand", MS_MANDLOCK, 1},
    {"atime", MS_NOATIME, 1},       {"noatime", MS_NOATIME, 0},
    {"iversion", MS_I_VERSION, 0},  {"noiversion", MS_I_VERSION, 1},
    {"diratime", MS_NODIRATIME, 1}, {"nodiratime", MS_NODIRATIME, 0},
    {"relatime", MS_RELATIME, 0},   {"norelatime", MS_RELATIME, 1},
    {"strictatime", MS_STRICTATIME, 0}, {"nostrictatime", MS_STRICTATIME, 1},
    {"lazytime", MS_LAZYTIME, 0},   {"nolazytime", MS_LAZYTIME, 1},
    {"unbindable", MS_UNBINDABLE, 0}, {"runbindable", MS_UNBINDABLE | MS_REC, 0},
    {"private", MS_PRIVATE, 0},     {"rprivate", MS_PRIVATE | MS_REC, 0},
    {"slave", MS_SLAVE, 0},         {"rslave", MS_SLAVE | MS_REC, 0},
    {"shared", MS_SHARED, 0},       {"rshared", MS_SHARED | MS_REC, 0},
    {"symfollow", MS_NOSYMFOLLOW, 1}, {"nosymfollow", MS_NOSYMFOLLOW, 0},
};

/* MNT_USERSPACE_MAP of util-linux 2.38.  As libmount matches them, an option with a value
 * ("auto=1") is the entry's only where the entry takes one ("comment=", "loop[=]"); otherwise
 * it is the filesystem's.  "defaults" is dropped in either form. */
static const struct {
    const char *name;
    int value;
} user_opts[] = {
    {"defaults", 1},         {"auto", 0},          {"noauto", 0},
    {"user", 1},             {"nouser", 0},        {"users", 0},
    {"nousers", 0},          {"owner", 0},         {"noowner", 0},
    {"group", 0},            {"nogroup", 0},       {"_netdev", 0},
    {"comment", 1},          {"loop", 1},          {"offset", 1},
    {"sizelimit", 1},        {"encryption", 1},    {"nofail", 0},
    {"uhelper", 1},          {"helper", 1},        {"verity.hashdevice", 1},
    {"verity.roothash", 1},  {"verity.hashoffset", 1}, {"verity.roothashfile", 1},
    {"verity.fecdevice", 1}, {"verity.fecoffset", 1},  {"verity.fecroots", 1},
    {"verity.roothashsig", 1}, {"verity.oncorruption", 1},
};

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

struct ctr_mount_opt ctr_mount_opt_lookup(const char *opt, size_t len)
{
    struct ctr_mount_opt r = {CTR_MOUNT_OPT_FS, 0, 0};
    const char *eq = memchr(opt, '=', len);
    size_t nlen = eq ? (size_t)(eq - opt) : len;
    /* no VFS option takes a value: "ro=1" is the filesystem's */
    for (size_t i = 0; eq == NULL && i < ARRAY_SIZE(vfs_opts); i++)
        if (name_is(opt, nlen, vfs_opts[i].name)) {
            r.kind = CTR_MOUNT_OPT_VFS;
            r.flags = vfs_opts[i].flags;
            r.invert = vfs_opts[i].invert;
            return r;
        }
    if (len >= 2 && (opt[0] == 'x' || opt[0] == 'X') && opt[1] == '-') {
        r.kind = CTR_MOUNT_OPT_USER;
        return r;
    }
    for (size_t i = 0; i < ARRAY_SIZE(user_opts); i++)
        if (name_is(opt, nlen, user_opts[i].name) && (eq == NULL || user_opts[i].value)) {
            r.kind = CTR_MOUNT_OPT_USER;
            return r;
        }
    return r;
}

int ctr_mount_opt_next(const char **p, const char **opt, size_t *len)
{
    const char *s = *p;
    while (*s == ',')
        s++;
    if (*s == '\0') {
        *p = s;
        return 0;
    }
    const char *e = s;
    int quoted = 0;
    for (; *e && (quoted || *e != ','); e++)
        if (*e == '"')
            quoted = !quoted;
    *opt = s;
    *len = (size_t)(e - s);
    *p = e;
    return 1;
}
