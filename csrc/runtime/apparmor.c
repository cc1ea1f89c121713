#include "runtime/apparmor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"

#define ENABLED "/sys/module/apparmor/parameters/enabled"

int ctr_apparmor_check(const char *profile, struct ctr_err *err)
{
    char buf[8] = "";
    cleanup_close int fd = RETRY(open(ENABLED, O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        ctr_fail(err, 0, "apparmor profile `%s': AppArmor is not available on this host "
                 "(no `%s': the kernel has no AppArmor)", profile, ENABLED);
        err->code = EOPNOTSUPP;
        return -1;
    }
    ssize_t n = RETRY(read(fd, buf, sizeof buf - 1));
    if (n <= 0 || buf[0] != 'Y') {
        ctr_fail(err, 0, "apparmor profile `%s': AppArmor is disabled on this host (`%s' is "
                 "not Y)", profile, ENABLED);
        err->code = EOPNOTSUPP;
        return -1;
    }
    if (access("/sys/kernel/security/apparmor", F_OK) < 0) {
        ctr_fail(err, 0, "apparmor profile `%s': securityfs has no apparmor directory "
                 "(/sys/kernel/security/apparmor)", profile);
        err->code = EOPNOTSUPP;
        return -1;
    }
    return 0;
}

int ctr_apparmor_apply(const char *profile, struct ctr_err *err)
{
    static const char *const paths[] = {"/proc/thread-self/attr/apparmor/exec",
                                        "/proc/thread-self/attr/exec"};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        cleanup_close int fd = RETRY(open(paths[i], O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0)
            return ctr_fail(err, errno, "apparmor: open `%s'", paths[i]);
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
            return ctr_fail(err, EINVAL, "apparmor: `%s' is not on procfs", paths[i]);
        char buf[4200];
        int n = snprintf(buf, sizeof buf, "exec %s", profile);
        if (n < 0 || (size_t)n >= sizeof buf)
            return ctr_fail(err, ENAMETOOLONG, "apparmor profile `%s'", profile);
        if (RETRY(write(fd, buf, (size_t)n)) != n)
            return ctr_fail(err, errno, "apparmor: set the exec profile `%s'", profile);
        return 0;
    }
    return ctr_fail(err, ENOENT, "apparmor: no attr/exec in the container's /proc");
}
