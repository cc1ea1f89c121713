/* OCI linux.seccomp -> libseccomp filter.  See runtime/seccomp.h for the split across the fork and the
 * rules taken from runc. */
#include "runtime/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/cleanup.h"

#define W "linux.seccomp"
#define PFC_MAX (8u << 20)

static void ctx_releasep(scmp_filter_ctx *p)
{
    if (*p)
        seccomp_release(*p);
}
#define cleanup_scmp __attribute__((cleanup(ctx_releasep)))

static void json_deletep(cJSON **p)
{
    if (*p)
        cJSON_Delete(*p);
}
#define cleanup_json __attribute__((cleanup(json_deletep)))

/* ------------------------------------------------------------------ names */

static const struct {
    const char *name;
    uint32_t token;
} arches[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

static const struct {
    const char *name;
    enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},         {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},         {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},         {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

/* The OCI flags and the libseccomp attribute that sets each. */
static const struct {
    const char *name;
    enum scmp_filter_attr attr;
} flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB},
};

/* An action name (+ errnoRet) as a libseccomp action.  `where` names the field. */
static int parse_action(const char *name, int have_ret, int64_t ret, uint32_t *out,
                        const char *where, struct ctr_err *err)
{
    uint32_t r = have_ret ? (uint32_t)ret : EPERM;
    if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
        *out = SCMP_ACT_ALLOW;
    else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
        *out = SCMP_ACT_ERRNO(r);
    else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
        *out = SCMP_ACT_TRACE(r);
    else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
        *out = SCMP_ACT_KILL_THREAD;
    else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
        *out = SCMP_ACT_KILL_PROCESS;
    else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
        *out = SCMP_ACT_TRAP;
    else if (strcmp(name, "SCMP_ACT_LOG") == 0)
        *out = SCMP_ACT_LOG;
    else if (strcmp(name, "SCMP_ACT_NOTIFY") == 0)
        return ctr_fail(err, 0,
                        "config.json: %s: action `SCMP_ACT_NOTIFY' (a seccomp agent) is not "
                        "supported",
                        where);
    else
        return ctr_fail(err, 0, "config.json: %s: unknown action `%s'", where, name);
    return 0;
}

static int parse_arch(const char *name, uint32_t *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
        if (strcmp(arches[i].name, name) == 0) {
            *out = arches[i].token;
            return 0;
        }
    return -1;
}

const char *ctr_seccomp_native_arch(void)
{
    uint32_t native = seccomp_arch_native();
    for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
        if (arches[i].token == native)
            return arches[i].name;
    return NULL;
}

int ctr_seccomp_syscall_known(const char *name)
{
    return seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR;
}

/* ------------------------------------------------------------------ prepare */

static int parse_arg(const cJSON *a, const char *where, struct scmp_arg_cmp *out,
                     struct ctr_err *err)
{
    if (!cJSON_IsObject(a))
        return ctr_fail(err, 0, "config.json: %s: expected object", where);
    int64_t index;
    int have;
    uint64_t value = 0, value2 = 0;
    const char *op;
    if (ctr_json_int(a, where, "index", 0, 5, &index, &have, err) < 0 ||
        ctr_json_uint64(a, where, "value", &value, NULL, err) < 0 ||
        ctr_json_uint64(a, where, "valueTwo", &value2, NULL, err) < 0 ||
        ctr_json_string(a, where, "op", &op, err) < 0)
        return -1;
    if (!have)
        return ctr_fail(err, 0, "config.json: %s.index: missing", where);
    if (op == NULL)
        return ctr_fail(err, 0, "config.json: %s.op: missing", where);
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
        if (strcmp(ops[i].name, op) == 0) {
            /* MASKED_EQ: value is the mask, valueTwo the datum (runc's getCondition). */
            *out = (struct scmp_arg_cmp){.arg = (unsigned)index, .op = ops[i].op,
                                         .datum_a = value,
                                         .datum_b = ops[i].op == SCMP_CMP_MASKED_EQ ? value2 : 0};
            return 0;
        }
    return ctr_fail(err, 0, "config.json: %s.op: unknown operator `%s'", where, op);
}

/* One entry of linux.seccomp.syscalls. */
static int add_syscall(scmp_filter_ctx ctx, uint32_t defact, const cJSON *sc, size_t idx,
                       struct ctr_err *err)
{
    char where[64];
    snprintf(where, sizeof where, W ".syscalls[%zu]", idx);
    if (!cJSON_IsObject(sc))
        return ctr_fail(err, 0, "config.json: %s: expected object", where);

    cleanup_free const char **names = NULL;
    size_t nnames;
    const char *action;
    int64_t ret = 0;
    int have_ret;
    const cJSON *args;
    if (ctr_json_strv(sc, where, "names", &names, &nnames, err) < 0 ||
        ctr_json_string(sc, where, "action", &action, err) < 0 ||
        ctr_json_int(sc, where, "errnoRet", 0, 65535, &ret, &have_ret, err) < 0 ||
        ctr_json_array(sc, where, "args", &args, err) < 0)
        return -1;
    if (action == NULL)
        return ctr_fail(err, 0, "config.json: %s.action: missing", where);
    char awhere[80];
    snprintf(awhere, sizeof awhere, "%s.action", where);
    uint32_t act;
    if (parse_action(action, have_ret, ret, &act, awhere, err) < 0)
        return -1;

    size_t nargs = args ? (size_t)cJSON_GetArraySize(args) : 0;
    cleanup_free struct scmp_arg_cmp *conds = NULL;
    int same_index = 0;
    if (nargs > 0) {
        if ((conds = calloc(nargs, sizeof *conds)) == NULL)
            return ctr_fail(err, ENOMEM, "config.json: %s.args", where);
        unsigned seen = 0;
        size_t i = 0;
        for (const cJSON *a = args->child; a; a = a->next, i++) {
            char argw[96];
            snprintf(argw, sizeof argw, "%s.args[%zu]", where, i);
            if (parse_arg(a, argw, &conds[i], err) < 0)
                return -1;
            if (seen & (1u << conds[i].arg))
                same_index = 1;
            seen |= 1u << conds[i].arg;
        }
    }

    for (size_t n = 0; n < nnames; n++) {
        /* Unknown to this libseccomp: skipped, as runc does (a profile written for a newer
         * kernel still loads).  A name known on another architecture resolves to a negative
         * pseudo number, which libseccomp maps onto the architectures that have it. */
        int nr = seccomp_syscall_resolve_name(names[n]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        /* libseccomp refuses a rule whose action is the filter's default; runc skips it. */
        if (act == defact)
            continue;
        int rc = 0;
        if (nargs == 0)
            rc = seccomp_rule_add_array(ctx, act, nr, 0, NULL);
        else if (same_index)
            /* Two conditions on one argument cannot be ANDed by libseccomp: runc adds one
             * rule per condition instead, so they are ORed. */
            for (size_t i = 0; i < nargs && rc == 0; i++)
                rc = seccomp_rule_add_array(ctx, act, nr, 1, &conds[i]);
        else
            rc = seccomp_rule_add_array(ctx, act, nr, (unsigned)nargs, conds);
        if (rc < 0)
            return ctr_fail(err, -rc, "config.json: %s: add the rule for syscall `%s'", where,
                            names[n]);
    }
    return 0;
}

int ctr_seccomp_prepare(const cJSON *s, scmp_filter_ctx *out, struct ctr_err *err)
{
    if (s == NULL || !cJSON_IsObject(s))
        return ctr_fail(err, 0, "config.json: " W ": expected object");

    const char *defname;
    int64_t defret = 0;
    int have_defret;
    if (ctr_json_string(s, W, "defaultAction", &defname, err) < 0 ||
        ctr_json_int(s, W, "defaultErrnoRet", 0, 65535, &defret, &have_defret, err) < 0)
        return -1;
    if (defname == NULL)
        return ctr_fail(err, 0, "config.json: " W ".defaultAction: missing");
    uint32_t defact;
    if (parse_action(defname, have_defret, defret, &defact, W ".defaultAction", err) < 0)
        return -1;

    cleanup_scmp scmp_filter_ctx ctx = seccomp_init(defact);
    if (ctx == NULL)
        return ctr_fail(err, ENOMEM, "seccomp_init");
    int rc;
    /* no_new_privs is the runtime's business (process.noNewPrivileges), not the filter's. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
        return ctr_fail(err, -rc, "seccomp: clear SCMP_FLTATR_CTL_NNP");
    /* Report the kernel's own errno from seccomp_load, not libseccomp's -ECANCELED. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0)
        return ctr_fail(err, -rc, "seccomp: set SCMP_FLTATR_API_SYSRAWRC");

    const cJSON *list;
    if (ctr_json_array(s, W, "architectures", &list, err) < 0)
        return -1;
    size_t i = 0;
    for (const cJSON *a = list ? list->child : NULL; a; a = a->next, i++) {
        uint32_t token;
        if (!cJSON_IsString(a))
            return ctr_fail(err, 0, "config.json: " W ".architectures[%zu]: expected string",
                            i);
        if (parse_arch(a->valuestring, &token) < 0)
            return ctr_fail(err, 0,
                            "config.json: " W ".architectures[%zu]: unknown architecture `%s'", i,
                            a->valuestring);
        /* The native one is already there (EEXIST), like libseccomp-golang's AddArch. */
        if ((rc = seccomp_arch_add(ctx, token)) < 0 && rc != -EEXIST)
            return ctr_fail(err, -rc, "config.json: " W ".architectures[%zu]: add `%s'", i,
                            a->valuestring);
    }

    if (ctr_json_array(s, W, "flags", &list, err) < 0)
        return -1;
    i = 0;
    for (const cJSON *f = list ? list->child : NULL; f; f = f->next, i++) {
        if (!cJSON_IsString(f))
            return ctr_fail(err, 0, "config.json: " W ".flags[%zu]: expected string", i);
        size_t k = 0;
        while (k < ARRAY_SIZE(flags) && strcmp(flags[k].name, f->valuestring) != 0)
            k++;
        if (k == ARRAY_SIZE(flags))
            return ctr_fail(err, 0, "config.json: " W ".flags[%zu]: unknown flag `%s'", i,
                            f->valuestring);
        /* libseccomp checks that the kernel supports the flag (EOPNOTSUPP otherwise). */
        if ((rc = seccomp_attr_set(ctx, flags[k].attr, 1)) < 0)
            return ctr_fail(err, -rc, "config.json: " W ".flags[%zu]: `%s'", i, f->valuestring);
    }

    if (ctr_json_array(s, W, "syscalls", &list, err) < 0)
        return -1;
    i = 0;
    for (const cJSON *sc = list ? list->child : NULL; sc; sc = sc->next, i++)
        if (add_syscall(ctx, defact, sc, i, err) < 0)
            return -1;

    *out = steal_pointer(&ctx);
    return 0;
}

/* ------------------------------------------------------------------ load, release */

int ctr_seccomp_load(scmp_filter_ctx ctx, struct ctr_err *err)
{
    int rc = seccomp_load(ctx);
    if (rc < 0)
        return ctr_fail(err, -rc, "seccomp: load the filter");
    return 0;
}

void ctr_seccomp_release(scmp_filter_ctx ctx)
{
    if (ctx)
        seccomp_release(ctx);
}

int ctr_seccomp_check(const char *json, struct ctr_err *err)
{
    cleanup_json cJSON *j = cJSON_Parse(json);
    if (j == NULL)
        return ctr_fail(err, 0, "seccomp profile: invalid JSON");
    scmp_filter_ctx ctx;
    if (ctr_seccomp_prepare(j, &ctx, err) < 0)
        return -1;
    ctr_seccomp_release(ctx);
    return 0;
}

/* ------------------------------------------------------------------ debugging and tests */

static int read_capped(int fd, size_t cap, char **out, size_t *len)
{
    size_t size = 4096, n = 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return -1;
    for (;;) {
        if (n == size) {
            size_t want = size * 2 > cap ? cap : size * 2;
            if (want == size) { /* at the cap: drain the rest unread */
                char sink[4096];
                ssize_t r = RETRY(read(fd, sink, sizeof sink));
                if (r > 0)
                    continue;
                if (r < 0) {
                    free(buf);
                    return -1;
                }
                break;
            }
            char *nb = realloc(buf, want + 1);
            if (nb == NULL) {
                free(buf);
                return -1;
            }
            buf = nb;
            size = want;
        }
        ssize_t r = RETRY(read(fd, buf + n, size - n));
        if (r < 0) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

int ctr_seccomp_export_pfc(scmp_filter_ctx ctx, char **out, struct ctr_err *err)
{
    cleanup_close int fd = memfd_create("ctrlua-seccomp-pfc", MFD_CLOEXEC);
    if (fd < 0)
        return ctr_fail(err, errno, "memfd_create");
    int rc = seccomp_export_pfc(ctx, fd);
    if (rc < 0)
        return ctr_fail(err, -rc, "seccomp_export_pfc");
    if (lseek(fd, 0, SEEK_SET) < 0)
        return ctr_fail(err, errno, "lseek the pfc memfd");
    if (read_capped(fd, PFC_MAX, out, NULL) < 0)
        return ctr_fail(err, errno, "read the pfc memfd");
    return 0;
}

int ctr_seccomp_run(scmp_filter_ctx ctx, char *const argv[], size_t cap, int *status, char **out,
                    struct ctr_err *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return ctr_fail(err, errno, "pipe2");
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return ctr_fail(err, e, "fork");
    }
    if (pid == 0) {
        /* Only plain C from here: stdio on the pipe, stdin on /dev/null, then the filter as
         * the last step before execv. */
        struct ctr_err e = {.code = 0};
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(125);
        signal(SIGPIPE, SIG_DFL);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(125);
        if (ctr_seccomp_load(ctx, &e) < 0) {
            dprintf(2, "%s\n", e.msg);
            _exit(125);
        }
        execv(argv[0], argv);
        dprintf(2, "exec `%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    int rc = read_capped(p[0], cap, out, NULL);
    int e = errno;
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return ctr_fail(err, errno, "waitpid %d", (int)pid);
    if (rc < 0)
        return ctr_fail(err, e, "read the output of `%s'", argv[0]);
    *status = st;
    return 0;
}
