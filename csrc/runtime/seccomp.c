/* OCI linux.seccomp -> libseccomp filter.  See runtime/seccomp.h for the split across the fork and the
 * rules taken from runc. */
#include "runtime/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/cleanup.h"
#include "base/lazylib.h"

#define W "linux.seccomp"
#define PFC_MAX (8u << 20)
#define MAX_ARCHES 24

#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
/* the x32 ABI runs on AUDIT_ARCH_X86_64 with this bit in the syscall number */
#define X32_SYSCALL_BIT 0x40000000u

struct ctr_seccomp {
    scmp_filter_ctx ctx;
    struct sock_filter *stub; /* the ENOSYS stub (built at prepare), or NULL */
    size_t stub_len;
    struct sock_filter *prog; /* the stub, then libseccomp's program (ctr_seccomp_compile) */
    size_t len;
    unsigned flags;           /* SECCOMP_FILTER_FLAG_* for seccomp(2) */
    char *listener_path;      /* set when a rule notifies */
    char *listener_metadata;  /* may be NULL */
};

/* What prepare learns about the profile on the way: its architectures and, for each, the
 * highest syscall number it names (for the ENOSYS stub); whether a rule notifies. */
struct profile {
    uint32_t arch[MAX_ARCHES];
    int64_t last[MAX_ARCHES]; /* -1: names no syscall of that architecture */
    size_t narch;
    int notify;
    size_t notify_idx; /* the first rule that notifies, for the error */
};

static void sc_releasep(struct ctr_seccomp **p)
{
    ctr_seccomp_release(*p);
}
#define cleanup_seccomp __attribute__((cleanup(sc_releasep)))

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
    unsigned kflag;
} flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC, SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG, SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB, SECCOMP_FILTER_FLAG_SPEC_ALLOW},
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
        *out = SCMP_ACT_NOTIFY;
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
                       struct profile *pr, struct ctr_err *err)
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
    if (act == SCMP_ACT_NOTIFY) {
        for (size_t n = 0; n < nnames; n++)
            if (strcmp(names[n], "write") == 0)
                return ctr_fail(err, 0, "config.json: %s: SCMP_ACT_NOTIFY cannot be used "
                                "for the write syscall (the runtime needs it to hand the "
                                "listener to the agent)", where);
        if (!pr->notify)
            pr->notify_idx = idx;
        pr->notify = 1;
    }

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
        /* The newest syscall the profile knows of, per architecture, whatever the rule's
         * action (runc's findLastSyscalls); a negative number is a pseudo one (the call does
         * not exist there). */
        for (size_t k = 0; k < pr->narch; k++) {
            int anr = seccomp_syscall_resolve_name_arch(pr->arch[k], names[n]);
            if (anr != __NR_SCMP_ERROR && anr >= 0 && anr > pr->last[k])
                pr->last[k] = anr;
        }
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

/* All of fd up to cap bytes (the rest read and dropped), NUL-terminated. */
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

/* ------------------------------------------------------------------ the ENOSYS stub */

/* A small assembler for the stub: every conditional jump goes to one of the two instructions
 * right after it, and every far target is reached by a `ja` (32-bit offset), so no offset
 * can overflow the 8 bits of jt/jf whatever the size of libseccomp's program. */
enum { L_FILTER = -1, L_ENOSYS = -2 };

struct stub {
    struct sock_filter insn[512];
    int target[512]; /* for a `ja`: a label (L_*) or an index in insn; else 0 */
    size_t n;
};

static void emit(struct stub *st, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k, int target)
{
    if (st->n < ARRAY_SIZE(st->insn)) {
        st->insn[st->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
        st->target[st->n] = target;
    }
    st->n++;
}
#define JA(st, t) emit(st, BPF_JMP | BPF_JA, 0, 0, 0, t)
/* if (nr <op> k) goto t; else fall through */
#define JIF(st, op, k, t)                                                                      \
    do {                                                                                       \
        emit(st, BPF_JMP | (op) | BPF_K, 0, 1, k, 0);                                          \
        JA(st, t);                                                                             \
    } while (0)

/* The architecture the kernel reports (seccomp_data.arch) for a libseccomp token: the token
 * itself (libseccomp's tokens are the AUDIT_ARCH_* values), except x32's made-up one. */
static uint32_t audit_arch(uint32_t token)
{
    return token == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : token;
}

/* runc's generateEnosysStub, per architecture of the profile:
 *     ld [arch]; jeq ARCH -> section; ...; ja filter
 *     section: ld [nr]; (x86_64: split on the x32 bit); jgt LAST -> enosys; ja filter
 *     enosys: ret ERRNO(ENOSYS)
 * and then libseccomp's program. */
static int build_stub(const struct profile *pr, struct stub *st, struct ctr_err *err)
{
    uint32_t natives[MAX_ARCHES];
    size_t nn = 0;
    for (size_t k = 0; k < pr->narch; k++) {
        uint32_t a = audit_arch(pr->arch[k]);
        size_t j = 0;
        while (j < nn && natives[j] != a)
            j++;
        if (j == nn && pr->last[k] >= 0)
            natives[nn++] = a;
    }
    st->n = 0;
    if (nn == 0)
        return 0;
    emit(st, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch), 0);
    size_t jumps = st->n;
    for (size_t j = 0; j < nn; j++) /* targets patched below, once the sections are placed */
        JIF(st, BPF_JEQ, natives[j], 0);
    JA(st, L_FILTER);
    for (size_t j = 0; j < nn; j++) {
        st->target[jumps + 2 * j + 1] = (int)st->n;
        int64_t last = -1, last32 = -1;
        for (size_t k = 0; k < pr->narch; k++) {
            if (audit_arch(pr->arch[k]) != natives[j])
                continue;
            if (pr->arch[k] == SCMP_ARCH_X32)
                last32 = pr->last[k] > last32 ? pr->last[k] : last32;
            else
                last = pr->last[k] > last ? pr->last[k] : last;
        }
        emit(st, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr), 0);
        if (natives[j] == SCMP_ARCH_S390 || natives[j] == SCMP_ARCH_S390X)
            /* syscall 0 multiplexes the large numbers there: one the kernel does not know
             * stays 0 (runc's s390xMultiplexSyscall) */
            JIF(st, BPF_JEQ, 0, L_ENOSYS);
        if (natives[j] == SCMP_ARCH_X86_64) {
            /* an x32 call carries X32_SYSCALL_BIT: its own last number, or none */
            size_t split = st->n;
            JIF(st, BPF_JSET, X32_SYSCALL_BIT, 0);
            if (last >= 0)
                JIF(st, BPF_JGT, (uint32_t)last, L_ENOSYS);
            JA(st, L_FILTER);
            st->target[split + 1] = (int)st->n;
            if (last32 >= 0)
                JIF(st, BPF_JGT, (uint32_t)last32, L_ENOSYS);
            JA(st, L_FILTER);
        } else {
            JIF(st, BPF_JGT, (uint32_t)last, L_ENOSYS);
            JA(st, L_FILTER);
        }
    }
    size_t enosys = st->n;
    emit(st, BPF_RET | BPF_K, 0, 0, SCMP_ACT_ERRNO(ENOSYS), 0);
    if (st->n > ARRAY_SIZE(st->insn))
        return ctr_fail(err, E2BIG, "seccomp: the ENOSYS stub needs %zu instructions", st->n);
    for (size_t i = 0; i < st->n; i++) {
        if (st->insn[i].code != (BPF_JMP | BPF_JA))
            continue;
        size_t to = st->target[i] == L_FILTER   ? st->n
                    : st->target[i] == L_ENOSYS ? enosys
                                                : (size_t)st->target[i];
        st->insn[i].k = (uint32_t)(to - i - 1);
    }
    return 0;
}

/* libseccomp's program, exported as the kernel takes it (struct sock_filter, host order). */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **prog, size_t *len,
                      struct ctr_err *err)
{
    cleanup_close int fd = memfd_create("ctrlua-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return ctr_fail(err, errno, "memfd_create");
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        return ctr_fail(err, -rc, "seccomp_export_bpf");
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return ctr_fail(err, errno, "lseek the bpf memfd");
    if (size == 0 || size % (off_t)sizeof **prog != 0)
        return ctr_fail(err, EINVAL, "seccomp: libseccomp's program has %lld bytes",
                        (long long)size);
    cleanup_free char *buf = NULL;
    size_t n;
    if (read_capped(fd, (size_t)size, &buf, &n) < 0)
        return ctr_fail(err, errno, "read the bpf memfd");
    if (n != (size_t)size)
        return ctr_fail(err, EIO, "seccomp: short read of libseccomp's program");
    *prog = (struct sock_filter *)(void *)steal_pointer(&buf);
    *len = n / sizeof **prog;
    return 0;
}

/* ------------------------------------------------------------------ prepare */

/* listenerPath and listenerMetadata.  runc ignores both when no rule notifies, as the runtime
 * spec says to (a generic profile may carry them for the agent that some container has). */
static int parse_listener(const cJSON *s, const struct profile *pr, struct ctr_seccomp *sc,
                          struct ctr_err *err)
{
    const char *path, *meta;
    if (ctr_json_string(s, W, "listenerPath", &path, err) < 0 ||
        ctr_json_string(s, W, "listenerMetadata", &meta, err) < 0)
        return -1;
    if (!pr->notify)
        return 0;
    if (path == NULL || *path == '\0')
        return ctr_fail(err, 0, "config.json: " W ".syscalls[%zu]: SCMP_ACT_NOTIFY needs "
                        W ".listenerPath (the seccomp agent's socket)", pr->notify_idx);
    if (strlen(path) >= sizeof((struct sockaddr_un *)0)->sun_path)
        return ctr_fail(err, 0, "config.json: " W ".listenerPath: `%s' is too long "
                        "for a unix socket", path);
    if ((sc->listener_path = strdup(path)) == NULL ||
        (meta && (sc->listener_metadata = strdup(meta)) == NULL))
        return ctr_fail(err, ENOMEM, "config.json: " W ".listenerPath");
    return 0;
}

/* The stub, when the default is not permissive.  TRACE counts as permissive (a tracer handles
 * new syscalls itself); a default that answers ENOSYS already needs none. */
static int make_stub(struct ctr_seccomp *sc, uint32_t defact, const struct profile *pr,
                     struct ctr_err *err)
{
    int permissive = defact == SCMP_ACT_ALLOW || defact == SCMP_ACT_LOG ||
                     (defact & 0xffff0000u) == SCMP_ACT_TRACE(0);
    if (permissive || defact == SCMP_ACT_ERRNO(ENOSYS))
        return 0;
    struct stub st = {.n = 0};
    if (build_stub(pr, &st, err) < 0)
        return -1;
    if (st.n == 0)
        return 0;
    if ((sc->stub = calloc(st.n, sizeof *sc->stub)) == NULL)
        return ctr_fail(err, ENOMEM, "seccomp: the ENOSYS stub");
    memcpy(sc->stub, st.insn, st.n * sizeof *sc->stub);
    sc->stub_len = st.n;
    return 0;
}

/* libseccomp's program is generated here, not at prepare: it costs milliseconds for a large
 * profile, and a profile that is only checked (ctr.seccomp.check, a config read for its
 * hooks) never needs it. */
int ctr_seccomp_compile(struct ctr_seccomp *sc, struct ctr_err *err)
{
    if (sc->prog)
        return 0;
    cleanup_free struct sock_filter *bpf = NULL;
    size_t n = 0;
    if (export_bpf(sc->ctx, &bpf, &n, err) < 0)
        return -1;
    if (sc->stub_len + n > BPF_MAXINSNS)
        return ctr_fail(err, E2BIG, "config.json: " W ": the filter needs %zu instructions, "
                        "more than the kernel's %d", sc->stub_len + n, BPF_MAXINSNS);
    if ((sc->prog = calloc(sc->stub_len + n, sizeof *sc->prog)) == NULL)
        return ctr_fail(err, ENOMEM, "seccomp: the program");
    if (sc->stub_len)
        memcpy(sc->prog, sc->stub, sc->stub_len * sizeof *sc->prog);
    memcpy(sc->prog + sc->stub_len, bpf, n * sizeof *sc->prog);
    sc->len = sc->stub_len + n;
    return 0;
}

int ctr_seccomp_prepare(const cJSON *s, struct ctr_seccomp **out, struct ctr_err *err)
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
    /* the runtime's own syscalls between the load and the agent's having the listener
     * (the write of its number, at least) would wait for an agent that cannot answer yet */
    if (defact == SCMP_ACT_NOTIFY)
        return ctr_fail(err, 0, "config.json: " W ".defaultAction: SCMP_ACT_NOTIFY cannot "
                        "be used as the default action");

    cleanup_seccomp struct ctr_seccomp *sc = calloc(1, sizeof *sc);
    if (sc == NULL)
        return ctr_fail(err, ENOMEM, "seccomp");
    if ((sc->ctx = seccomp_init(defact)) == NULL)
        return ctr_fail(err, ENOMEM, "seccomp_init");
    scmp_filter_ctx ctx = sc->ctx;
    int rc;
    /* no_new_privs is the runtime's business (process.noNewPrivileges), not the filter's. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
        return ctr_fail(err, -rc, "seccomp: clear SCMP_FLTATR_CTL_NNP");
    /* Report the kernel's own errno from seccomp_load, not libseccomp's -ECANCELED. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0)
        return ctr_fail(err, -rc, "seccomp: set SCMP_FLTATR_API_SYSRAWRC");

    struct profile pr = {.narch = 0};
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
        size_t k = 0;
        while (k < pr.narch && pr.arch[k] != token)
            k++;
        if (k == pr.narch && pr.narch < MAX_ARCHES)
            pr.arch[pr.narch++] = token;
    }
    if (pr.narch == 0) /* the filter libseccomp builds then: the native architecture's */
        pr.arch[pr.narch++] = seccomp_arch_native();
    for (size_t k = 0; k < pr.narch; k++)
        pr.last[k] = -1;

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
        sc->flags |= flags[k].kflag;
    }

    if (ctr_json_array(s, W, "syscalls", &list, err) < 0)
        return -1;
    i = 0;
    for (const cJSON *call = list ? list->child : NULL; call; call = call->next, i++)
        if (add_syscall(ctx, defact, call, i, &pr, err) < 0)
            return -1;
    if (parse_listener(s, &pr, sc, err) < 0)
        return -1;
    if (pr.notify) {
        sc->flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        /* the kernel takes TSYNC with a listener only when told to fail on ESRCH */
        if (sc->flags & SECCOMP_FILTER_FLAG_TSYNC)
            sc->flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    if (make_stub(sc, defact, &pr, err) < 0)
        return -1;

    *out = steal_pointer(&sc);
    return 0;
}

/* ------------------------------------------------------------------ load, release */

int ctr_seccomp_load(struct ctr_seccomp *sc, int *listener, struct ctr_err *err)
{
    if (ctr_seccomp_compile(sc, err) < 0)
        return -1;
    struct sock_fprog fp = {.len = (unsigned short)sc->len, .filter = sc->prog};
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, sc->flags, &fp);
    if (rc < 0)
        return ctr_fail(err, errno, "seccomp: load the filter");
    if (listener)
        *listener = (sc->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? (int)rc : -1;
    else if (sc->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
        close((int)rc);
    return 0;
}

void ctr_seccomp_release(struct ctr_seccomp *sc)
{
    if (sc == NULL)
        return;
    if (sc->ctx)
        seccomp_release(sc->ctx);
    free(sc->stub);
    free(sc->prog);
    free(sc->listener_path);
    free(sc->listener_metadata);
    free(sc);
}

const char *ctr_seccomp_listener_path(const struct ctr_seccomp *sc)
{
    return sc ? sc->listener_path : NULL;
}

size_t ctr_seccomp_stub_len(const struct ctr_seccomp *sc)
{
    return sc->stub_len;
}

/* ------------------------------------------------------------------ the agent */

int ctr_seccomp_connect(const struct ctr_seccomp *sc, struct ctr_err *err)
{
    const char *path = sc->listener_path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path); /* its length was checked at prepare */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "seccomp agent `%s': socket", path);
    if (RETRY(connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0) {
        int e = errno;
        close(fd);
        return ctr_fail(err, e, "connect to the seccomp agent at " W ".listenerPath `%s'", path);
    }
    return fd;
}

int ctr_seccomp_listener_take(pid_t pid, int fd, struct ctr_err *err)
{
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return ctr_fail(err, errno, "seccomp: pidfd_open %d", (int)pid);
    int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (got < 0)
        return ctr_fail(err, errno, "seccomp: take the listener fd %d of process %d", fd,
                        (int)pid);
    return got;
}

/* {ociVersion, fds, pid, metadata, state}, in the order runc marshals them. */
static char *process_state(const struct ctr_seccomp *sc, pid_t pid, const char *state)
{
    cleanup_json cJSON *st = cJSON_Parse(state);
    cleanup_json cJSON *o = cJSON_CreateObject();
    if (st == NULL || o == NULL)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, "ociVersion");
    if (!cJSON_AddStringToObject(o, "ociVersion", cJSON_IsString(v) ? v->valuestring : ""))
        return NULL;
    cJSON *fds = cJSON_AddArrayToObject(o, "fds");
    cJSON *name = cJSON_CreateString("seccompFd");
    if (fds == NULL || name == NULL || !cJSON_AddItemToArray(fds, name) ||
        !cJSON_AddNumberToObject(o, "pid", (double)pid) ||
        (sc->listener_metadata && *sc->listener_metadata &&
         !cJSON_AddStringToObject(o, "metadata", sc->listener_metadata)) ||
        !cJSON_AddItemToObject(o, "state", st))
        return NULL;
    st = NULL; /* o owns it */
    return cJSON_PrintUnformatted(o);
}

int ctr_seccomp_send_state(const struct ctr_seccomp *sc, int conn, int listener, pid_t pid,
                           const char *state, struct ctr_err *err)
{
    cleanup_close int c = conn;
    const char *path = sc->listener_path;
    cleanup_free char *msg = process_state(sc, pid, state);
    if (msg == NULL)
        return ctr_fail(err, ENOMEM, "seccomp agent `%s': the container process state", path);
    size_t len = strlen(msg), off = 0;
    /* the fd with the first bytes, the rest (a stream may take it in parts) after */
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = msg, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &listener, sizeof listener);
    ssize_t n = RETRY(sendmsg(c, &mh, MSG_NOSIGNAL));
    if (n < 0)
        return ctr_fail(err, errno, "send the seccomp listener to the agent at `%s'", path);
    for (off = (size_t)n; off < len; off += (size_t)n)
        if ((n = RETRY(send(c, msg + off, len - off, MSG_NOSIGNAL))) < 0)
            return ctr_fail(err, errno, "send the container process state to the agent at "
                            "`%s'", path);
    return 0;
}

int ctr_seccomp_check(const char *json, struct ctr_err *err)
{
    cleanup_json cJSON *j = cJSON_Parse(json);
    if (j == NULL)
        return ctr_fail(err, 0, "seccomp profile: invalid JSON");
    struct ctr_seccomp *sc;
    if (ctr_seccomp_prepare(j, &sc, err) < 0)
        return -1;
    ctr_seccomp_release(sc);
    return 0;
}

/* ------------------------------------------------------------------ debugging and tests */

int ctr_seccomp_export_pfc(const struct ctr_seccomp *sc, char **out, struct ctr_err *err)
{
    scmp_filter_ctx ctx = sc->ctx;
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

int ctr_seccomp_run(struct ctr_seccomp *sc, char *const argv[], size_t cap, int *status, char **out,
                    struct ctr_err *err)
{
    if (ctr_seccomp_compile(sc, err) < 0)
        return -1;
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
        if (ctr_seccomp_load(sc, NULL, &e) < 0) {
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
