#include "runtime/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"

/* Every capability Linux 6.x defines, by number.  Kept as literal names (not the macros of
 * <linux/capability.h>) so that a build against older headers still knows the newer names. */
static const char *const cap_names[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

int ctr_cap_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
        if (strcmp(cap_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *ctr_cap_name(int cap)
{
    return cap >= 0 && (size_t)cap < ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

int ctr_caps_parse(const char *const *names, const char *where, uint64_t *set,
                   struct ctr_err *err)
{
    for (size_t i = 0; names && names[i]; i++) {
        int c = ctr_cap_from_name(names[i]);
        if (c < 0)
            return ctr_fail(err, 0, "config.json: %s[%zu]: unknown capability %s", where,
                            i, names[i]);
        *set |= UINT64_C(1) << c;
    }
    return 0;
}

/* The highest capability the running kernel knows: asking PR_CAPBSET_READ for one past it
 * fails with EINVAL.  Capabilities the kernel does not know cannot be held, so they are
 * silently absent from every set (as in runc, which masks the spec with the kernel's list). */
static int last_cap(void)
{
    int c = (int)ARRAY_SIZE(cap_names) - 1;
    while (c > 0 && prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0)
        c--;
    return c;
}

int ctr_caps_drop_bounding(const struct ctr_caps *caps, struct ctr_err *err)
{
    int last = last_cap();
    for (int c = 0; c <= last; c++) {
        if (caps->bounding & (UINT64_C(1) << c))
            continue;
        if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0 && errno != EINVAL)
            return ctr_fail(err, errno, "drop %s from the bounding set", cap_names[c]);
    }
    return 0;
}

int ctr_caps_set(const struct ctr_caps *caps, struct ctr_err *err)
{
    uint64_t known = last_cap() >= 63 ? UINT64_MAX : (UINT64_C(1) << (last_cap() + 1)) - 1;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    uint64_t e = caps->effective & known, p = caps->permitted & known;
    uint64_t i = caps->inheritable & known;
    for (int k = 0; k < 2; k++) {
        data[k].effective = (uint32_t)(e >> (32 * k));
        data[k].permitted = (uint32_t)(p >> (32 * k));
        data[k].inheritable = (uint32_t)(i >> (32 * k));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return ctr_fail(err, errno, "capset");
    /* Ambient capabilities survive execve of an unprivileged binary; clear whatever the
     * caller had before raising only what the spec names. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return ctr_fail(err, errno, "clear the ambient capabilities");
    /* The kernel raises an ambient capability only if it is permitted and inheritable; the
     * others are left out, as runc 1.1 and crun leave them (runc's default spec names an
     * ambient set and no inheritable one, and runs). */
    uint64_t amb = caps->ambient & known & p & i;
    for (int c = 0; c < 64; c++) {
        if (!(amb & (UINT64_C(1) << c)))
            continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
            return ctr_fail(err, errno, "raise ambient %s (it must be permitted and inheritable)",
                            cap_names[c]);
    }
    return 0;
}
