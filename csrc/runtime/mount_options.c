/* Mount options of an OCI spec mount: see runtime/mount_options.h. */
#include "runtime/mount_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "base/cleanup.h"
#include "base/mount_optmap.h"

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
    cleanup_free char *data = calloc(1, cap);
    if (data == NULL)
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
        struct ctr_mount_opt k = ctr_mount_opt_lookup(o, strlen(o));
        if (k.kind == CTR_MOUNT_OPT_VFS) {
            out->flags = ctr_mount_opt_apply(k, out->flags);
        } else if (k.kind == CTR_MOUNT_OPT_FS) {
            if (*data)
                strcat(data, ",");
            strcat(data, o);
        }
        /* userspace-only options (noauto, _netdev, ...) mean nothing to the kernel */
    }
    out->data = data;
    data = NULL;
    return 0;
}
