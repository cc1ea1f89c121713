/* ctrlua-exec: the last program of the runtime that a container process runs.
 *
 * The runtime's processes that enter a container (the init, `exec`, the startContainer hooks)
 * are clones of the host's ctrlua, so their /proc/self/exe is the host's binary.  Were one of
 * them to execve a path that the kernel resolves to /proc/self/exe (a symlink in the image, or
 * a `#!` chain ending there), the host's binary would run inside the container with the
 * image's own dynamic loader, which could keep it open and rewrite it once no ctrlua runs
 * (runc CVE-2019-5736).  So they never execve a container path themselves: they execveat this
 * program from a sealed memfd (see ../sealed.c), and this program execve's the container's.
 * From then on /proc/self/exe names the sealed memfd: a container that reaches it finds a
 * read-only copy of this program, which only runs when called the runtime's way.
 *
 * No libc: a few raw system calls, so that the copy the runtime makes for every container is a
 * few kilobytes.  Called as
 *     argv = { MAGIC, REPORT_FD, WHO, PATH, ARG0, ARG1, ... }
 * it makes REPORT_FD close-on-exec (the caller's end of file then means "executed"), execve's
 * PATH with ARG0... and the environment, and on failure writes the errno (an int) to REPORT_FD
 * and a line `WHO: exec `PATH': MESSAGE' to stderr (none when WHO is empty), then exits 127
 * (ENOENT) or 126.  Called any other way (as the container's /proc/self/exe), it refuses. */
#include <asm/unistd.h>
#include <linux/errno.h>

#define MAGIC "\001ctrlua-exec"

#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n"
        "\tandq $-16, %rsp\n\tcall tramp_main\n\thlt\n");

static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n\tmov x29, #0\n\tmov x30, #0\n\tmov x0, sp\n"
        "\tbl tramp_main\n");

static long sys3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#else
#error "ctrlua-exec: no system call entry for this architecture"
#endif

static unsigned long len(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    return n;
}

static void put(const char *s) { sys3(__NR_write, 2, (long)s, (long)len(s)); }

static __attribute__((noreturn)) void quit(int code)
{
    for (;;)
        sys3(__NR_exit_group, code, 0, 0);
}

/* glibc's words for what execve can return */
static const char *message(int e)
{
    switch (e) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case EPERM: return "Operation not permitted";
    case ENOEXEC: return "Exec format error";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case E2BIG: return "Argument list too long";
    case ENOMEM: return "Cannot allocate memory";
    case ETXTBSY: return "Text file busy";
    case EIO: return "Input/output error";
    case EINVAL: return "Invalid argument";
    case EFAULT: return "Bad address";
    case EMFILE: return "Too many open files";
    case ENFILE: return "Too many open files in system";
    case ELIBBAD: return "Accessing a corrupted shared library";
    default: return "Unknown error";
    }
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static int number(const char *s)
{
    int neg = *s == '-', n = 0;
    for (s += neg; *s >= '0' && *s <= '9'; s++)
        n = n * 10 + (*s - '0');
    return neg ? -n : n;
}

__attribute__((noreturn, used)) void tramp_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 5 || !same(argv[0], MAGIC)) {
        put("ctrlua-exec: not started by the runtime: refused (CVE-2019-5736)\n");
        quit(126);
    }
    int report = number(argv[1]);
    if (report >= 0)
        sys3(__NR_fcntl, report, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
    long r = sys3(__NR_execve, (long)argv[3], (long)(argv + 4), (long)envp);
    int e = (int)-r;
    if (report >= 0)
        sys3(__NR_write, report, (long)&e, sizeof e);
    if (argv[2][0]) {
        put(argv[2]);
        put(": exec `");
        put(argv[3]);
        put("': ");
        put(message(e));
        put("\n");
    }
    quit(e == ENOENT ? 127 : 126);
}
