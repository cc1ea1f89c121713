/* Sealed executables: see runtime/sealed.h. */
#include "runtime/sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define TRAMPOLINE_MAGIC "\001ctrlua-exec"

/* csrc/runtime/sealed/blob.S: the bytes of ctrlua-exec, built by the Makefile */
extern const unsigned char ctr_trampoline_start[], ctr_trampoline_end[];

/* A memfd that may be executed and sealed.  MFD_EXEC says so on kernels that know
 * vm.memfd_noexec (6.3+); older ones refuse the flag and allow it anyway. */
static int exec_memfd(const char *name, struct ctr_err *err)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return ctr_fail(err, errno, "memfd_create `%s'", name);
    return fd;
}

/* No write, resize or further change of seals, nor of the mode bits where the kernel can seal
 * them: what was copied is what runs, whoever opens it later. */
static int seal(int fd, const char *name, struct ctr_err *err)
{
    int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    if (fcntl(fd, F_ADD_SEALS, seals | F_SEAL_EXEC) < 0 &&
        (errno != EINVAL || fcntl(fd, F_ADD_SEALS, seals) < 0))
        return ctr_fail(err, errno, "seal the memfd `%s'", name);
    return 0;
}

int ctr_sealed_trampoline(struct ctr_err *err)
{
    cleanup_close int fd = exec_memfd("ctrlua-exec", err);
    if (fd < 0)
        return -1;
    size_t n = (size_t)(ctr_trampoline_end - ctr_trampoline_start);
    if (ctr_write_all(fd, ctr_trampoline_start, n) < 0)
        return ctr_fail(err, errno, "write the memfd `ctrlua-exec'");
    if (seal(fd, "ctrlua-exec", err) < 0)
        return -1;
    return steal_fd(&fd);
}

int ctr_sealed_copy(const char *path, struct ctr_err *err)
{
    cleanup_close int src = RETRY(open(path, O_RDONLY | O_CLOEXEC));
    if (src < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    struct stat st;
    if (fstat(src, &st) < 0)
        return ctr_fail(err, errno, "stat `%s'", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    cleanup_close int fd = exec_memfd(base, err);
    if (fd < 0)
        return -1;
    for (off_t done = 0; done < st.st_size;) {
        ssize_t k = sendfile(fd, src, NULL, (size_t)(st.st_size - done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return ctr_fail(err, k < 0 ? errno : EIO, "copy `%s' into a memfd", path);
        done += k;
    }
    if (seal(fd, base, err) < 0)
        return -1;
    return steal_fd(&fd);
}

void ctr_sealed_exec(int tramp, int report_fd, const char *who, const char *exe,
                     char *const argv[], char *const envp[])
{
    size_t n = 0;
    while (argv[n])
        n++;
    char rep[16];
    snprintf(rep, sizeof rep, "%d", report_fd);
    const char *targv[n + 5];
    targv[0] = TRAMPOLINE_MAGIC;
    targv[1] = rep;
    targv[2] = who;
    targv[3] = exe;
    for (size_t i = 0; i <= n; i++)
        targv[4 + i] = argv[i];
    /* the report fd must survive this execve: ctrlua-exec marks it close-on-exec again */
    int fl = report_fd >= 0 ? fcntl(report_fd, F_GETFD) : -1;
    if (fl >= 0)
        fcntl(report_fd, F_SETFD, fl & ~FD_CLOEXEC);
    syscall(SYS_execveat, tramp, "", (char *const *)targv, envp, AT_EMPTY_PATH);
    int e = errno;
    /* a seccomp profile may allow execve and not execveat: the same file through /proc */
    char p[32];
    snprintf(p, sizeof p, "/proc/self/fd/%d", tramp);
    execve(p, (char *const *)targv, envp);
    if (fl >= 0)
        fcntl(report_fd, F_SETFD, fl);
    errno = e;
}

int ctr_own_executable(struct ctr_file_id *id, struct ctr_err *err)
{
    struct stat st;
    if (stat("/proc/self/exe", &st) < 0)
        return ctr_fail(err, errno, "stat `/proc/self/exe'");
    *id = (struct ctr_file_id){st.st_dev, st.st_ino};
    return 0;
}

int ctr_file_is(const char *path, const struct ctr_file_id *id)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino;
}
