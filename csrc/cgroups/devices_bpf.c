/* The cgroup v2 device controller: linux.resources.devices translated into a
 * BPF_PROG_TYPE_CGROUP_DEVICE program, loaded with bpf(BPF_PROG_LOAD) and attached to the
 * container's cgroup with bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), as
 * crun's ebpf.c and runc's devicefilter do.  No libbpf: the instructions are assembled here.
 *
 * The kernel runs the program on every open/mknod of a device node by a process of the
 * cgroup (and of its descendants) with a struct bpf_cgroup_dev_ctx: access_type is
 * (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*, then major and minor.  It returns 1 to allow,
 * 0 to refuse (the open fails with EPERM).
 *
 * Semantics (crun's): the rules are checked from the last to the first and the first that
 * matches decides, so the last matching rule of the list wins; nothing matching is a refusal
 * (an empty list allows nothing).  A rule matches the device when its type ('a' is any),
 * major and minor (-1 is any) match, and the access when
 *   - allow: the requested access is a subset of the rule's ("r" allows a read, not a
 *     read-write open),
 *   - deny: the requested access shares a bit with the rule's (denying "w" refuses a
 *     read-write open).
 * So a deny after an allow punches a hole (deny c 1:5 after allow c *:*); cgroup v1 would
 * ignore such a deny, the program enforces it.  Two partial allows of one device ("r" and
 * "w") do not add up to an "rw" open, as two v1 exceptions with different keys do not.
 *
 * Program layout:
 *     r2 = ctx->access_type & 0xffff    device type
 *     r3 = ctx->access_type >> 16       requested access
 *     r4 = ctx->major; r5 = ctx->minor
 *     for each rule, last first: a block that jumps to the next block on any mismatch and
 *       otherwise ends with r0 = ALLOW; exit
 *     r0 = 0; exit
 * A rule that matches everything ("a *:* rwm") is the last block emitted: what is before it
 * in the list can never decide.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroups/internal.h"
#include "base/cleanup.h"


struct prog {
    struct bpf_insn *insns;
    size_t n, cap;
};

static int emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm,
                struct ctr_err *err)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct bpf_insn *ni = realloc(p->insns, cap * sizeof *ni);
        if (ni == NULL)
            return ctr_fail(err, ENOMEM, "linux.resources.devices: eBPF program");
        p->insns = ni;
        p->cap = cap;
    }
    struct bpf_insn *i = &p->insns[p->n++];
    memset(i, 0, sizeof *i);
    i->code = code;
    i->dst_reg = dst & 0xf;
    i->src_reg = src & 0xf;
    i->off = off;
    i->imm = imm;
    return 0;
}

#define LDX_W(dst, src, off) BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0
#define ALU_K(op, dst, imm) BPF_ALU64 | (op) | BPF_K, dst, 0, 0, imm
#define MOV_X(dst, src) BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0
#define JMP_K(op, dst, imm) BPF_JMP | (op) | BPF_K, dst, 0, -1, imm /* off: patched */
#define EXIT BPF_JMP | BPF_EXIT, 0, 0, 0, 0

#define E(p, ...)                                                                              \
    do {                                                                                       \
        if (emit(p, __VA_ARGS__, err) < 0)                                                     \
            return -1;                                                                         \
    } while (0)

static unsigned access_bits(const char *access)
{
    unsigned a = 0;
    for (const char *c = access; *c; c++)
        a |= *c == 'r' ? BPF_DEVCG_ACC_READ : *c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
    return a;
}

static int emit_rule(struct prog *p, const struct ctr_res_device_rule *r, struct ctr_err *err)
{
    const unsigned all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
    size_t start = p->n;
    if (r->type != 'a')
        E(p, JMP_K(BPF_JNE, BPF_REG_2, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
    unsigned acc = access_bits(r->access);
    if (acc != all) {
        E(p, MOV_X(BPF_REG_1, BPF_REG_3));
        if (r->allow) { /* requested & ~rule != 0: something not allowed here */
            E(p, ALU_K(BPF_AND, BPF_REG_1, (int32_t)(~acc & all)));
            E(p, JMP_K(BPF_JNE, BPF_REG_1, 0));
        } else { /* requested & rule == 0: nothing this rule denies */
            E(p, ALU_K(BPF_AND, BPF_REG_1, (int32_t)acc));
            E(p, JMP_K(BPF_JEQ, BPF_REG_1, 0));
        }
    }
    if (r->major >= 0)
        E(p, JMP_K(BPF_JNE, BPF_REG_4, (int32_t)r->major));
    if (r->minor >= 0)
        E(p, JMP_K(BPF_JNE, BPF_REG_5, (int32_t)r->minor));
    E(p, ALU_K(BPF_MOV, BPF_REG_0, r->allow ? 1 : 0));
    E(p, EXIT);
    /* every jump of the block goes to the instruction after it */
    for (size_t i = start; i < p->n; i++)
        if (BPF_CLASS(p->insns[i].code) == BPF_JMP && BPF_OP(p->insns[i].code) != BPF_EXIT)
            p->insns[i].off = (int16_t)(p->n - i - 1);
    return 0;
}

static int match_all(const struct ctr_res_device_rule *r)
{
    return r->type == 'a' && r->major < 0 && r->minor < 0 &&
           access_bits(r->access) ==
               (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
}

static int build(const struct ctr_res_device_rule *rules, size_t n, struct prog *p,
                 struct ctr_err *err)
{
    memset(p, 0, sizeof *p);
    E(p, LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type)));
    E(p, ALU_K(BPF_AND, BPF_REG_2, 0xffff));
    E(p, LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type)));
    E(p, ALU_K(BPF_RSH, BPF_REG_3, 16));
    E(p, LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major)));
    E(p, LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor)));
    for (size_t i = n; i-- > 0;) {
        if (emit_rule(p, &rules[i], err) < 0)
            return -1;
        /* a rule that matches everything ends the program: the kernel refuses unreachable
         * instructions after it */
        if (match_all(&rules[i]))
            return 0;
    }
    E(p, ALU_K(BPF_MOV, BPF_REG_0, 0));
    E(p, EXIT);
    return 0;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* the verifier's complaint: the last line of its log that is not its statistics
 * ("processed N insns ...", "verification time ...") */
static const char *log_tail(char *log)
{
    for (;;) {
        size_t len = strlen(log);
        while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == ' '))
            log[--len] = '\0';
        char *nl = strrchr(log, '\n');
        char *last = nl ? nl + 1 : log;
        if (nl == NULL || (strncmp(last, "processed ", 10) != 0 &&
                           strncmp(last, "verification time", 17) != 0))
            return last;
        *nl = '\0';
    }
}

static int load(const struct prog *p, const char *name, struct ctr_err *err)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)p->insns;
    attr.insn_cnt = (uint32_t)p->n;
    attr.license = (uint64_t)(uintptr_t) "Apache";
    snprintf(attr.prog_name, sizeof attr.prog_name, "ctrlua_devices");
    int fd = RETRY(sys_bpf(BPF_PROG_LOAD, &attr));
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e != EINVAL && e != EACCES)
        return ctr_fail(err, e, "bpf(BPF_PROG_LOAD) device filter for `%s' (%zu instructions)",
                        name, p->n);
    /* again with the verifier's log, to say why */
    size_t size = 1u << 16;
    cleanup_free char *log = calloc(1, size);
    if (log == NULL)
        return ctr_fail(err, e, "bpf(BPF_PROG_LOAD) device filter for `%s'", name);
    attr.log_level = 1;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = (uint32_t)size;
    fd = RETRY(sys_bpf(BPF_PROG_LOAD, &attr));
    if (fd >= 0)
        return fd;
    e = errno;
    log[size - 1] = '\0';
    return ctr_fail(err, e, "bpf(BPF_PROG_LOAD) device filter for `%s' (%zu instructions), "
                    "verifier: %s", name, p->n, log[0] ? log_tail(log) : "(no log)");
}

int ctr_cgroup_v2_devices_apply(int dirfd, const char *name,
                                const struct ctr_res_devices *devices, struct ctr_err *err)
{
    struct statfs sfs;
    if (fstatfs(dirfd, &sfs) < 0)
        return ctr_fail(err, errno, "statfs `%s'", name);
    if (sfs.f_type != CGROUP2_SUPER_MAGIC)
        return ctr_fail(err, ENOTSUP, "linux.resources.devices: `%s' is not a cgroup v2 "
                        "directory (an eBPF device filter attaches to cgroup2 only)", name);
    struct prog p;
    int rc = build(devices->rules, devices->n, &p, err);
    if (rc == 0) {
        cleanup_close int fd = load(&p, name, err);
        if (fd < 0) {
            rc = -1;
        } else {
            union bpf_attr attr;
            memset(&attr, 0, sizeof attr);
            attr.target_fd = (uint32_t)dirfd;
            attr.attach_bpf_fd = (uint32_t)fd;
            attr.attach_type = BPF_CGROUP_DEVICE;
            attr.attach_flags = BPF_F_ALLOW_MULTI;
            /* the attachment holds the program; our fd is closed on return */
            if (RETRY(sys_bpf(BPF_PROG_ATTACH, &attr)) < 0)
                rc = ctr_fail(err, errno, "bpf(BPF_PROG_ATTACH) device filter to `%s'", name);
        }
    }
    free(p.insns);
    return rc;
}

/* the fake tree's record of the program's blocks: "allow c 1:3 rwm" per rule, last first, up
 * to one that matches everything, else then "deny" (the default) */
static int record_fake(const char *dir, const struct ctr_res_device_rule *rules, size_t n,
                       struct ctr_err *err)
{
    char line[128];
    for (size_t i = n; i-- > 0;) {
        char rule[96];
        cg_device_rule_string(&rules[i], rule, sizeof rule);
        snprintf(line, sizeof line, "%s %s", rules[i].allow ? "allow" : "deny", rule);
        if (cg_write(dir, "devices.bpf", line, err) < 0)
            return -1;
        if (match_all(&rules[i]))
            return 0;
    }
    return cg_write(dir, "devices.bpf", "deny", err);
}

int ctr_cgroup_v2_devices(const char *dir, int fake, const struct ctr_res_devices *devices,
                          struct ctr_err *err)
{
    if (fake) {
        struct prog p;
        int rc = build(devices->rules, devices->n, &p, err); /* assembled all the same */
        free(p.insns);
        return rc < 0 ? -1 : record_fake(dir, devices->rules, devices->n, err);
    }
    cleanup_close int fd = RETRY(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", dir);
    return ctr_cgroup_v2_devices_apply(fd, dir, devices, err);
}
