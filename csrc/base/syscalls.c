/* One checked system call each (see base/syscalls.h). */
#include "base/syscalls.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/files.h"

int ctr_sys_mkdir(const char *path, mode_t mode, struct ctr_err *err)
{
    if (mkdir(path, mode) < 0)
        return ctr_fail(err, errno, "mkdir `%s'", path);
    return 0;
}

int ctr_sys_unlink(const char *path, struct ctr_err *err)
{
    if (unlink(path) < 0)
        return ctr_fail(err, errno, "unlink `%s'", path);
    return 0;
}

int ctr_sys_rmdir(const char *path, struct ctr_err *err)
{
    if (rmdir(path) < 0)
        return ctr_fail(err, errno, "rmdir `%s'", path);
    return 0;
}

int ctr_sys_rename(const char *from, const char *to, int noreplace, int sync, struct ctr_err *err)
{
    int r = noreplace ? (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to,
                                     1 /* RENAME_NOREPLACE */)
                      : rename(from, to);
    if (r < 0)
        return ctr_fail(err, errno, "rename `%s' to `%s'", from, to);
    if (sync && ctr_fsync_parent(to, err) < 0)
        return -1;
    return 0;
}

int ctr_sys_symlink(const char *target, const char *path, struct ctr_err *err)
{
    if (symlink(target, path) < 0)
        return ctr_fail(err, errno, "symlink `%s'", path);
    return 0;
}

ssize_t ctr_sys_readlink(const char *path, char *buf, size_t cap, struct ctr_err *err)
{
    ssize_t n = readlink(path, buf, cap);
    if (n < 0)
        return ctr_fail(err, errno, "readlink `%s'", path);
    return n;
}

char *ctr_sys_realpath(const char *path, struct ctr_err *err)
{
    char *real = realpath(path, NULL);
    if (real == NULL)
        ctr_fail(err, errno, "realpath `%s'", path);
    return real;
}

int ctr_sys_stat(const char *path, int follow, struct stat *st, struct ctr_err *err)
{
    if ((follow ? stat(path, st) : lstat(path, st)) < 0)
        return ctr_fail(err, errno, "stat `%s'", path);
    return 0;
}

const char *ctr_file_type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "link";
    if (S_ISCHR(m)) return "char";
    if (S_ISBLK(m)) return "block";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    return "unknown";
}

void ctr_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int ctr_sys_listdir(const char *path, char ***names, size_t *count, struct ctr_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ctr_fail(err, errno, "opendir `%s'", path);
    struct ctr_dir d;
    ctr_dir_open(&d, fd);
    char **v = NULL;
    size_t n = 0, cap = 0;
    const char *name;
    unsigned char type;
    int r = 0;
    while ((name = ctr_dir_next(&d, &type)) != NULL) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (nv == NULL) {
                r = ctr_fail(err, ENOMEM, "readdir `%s'", path);
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((v[n] = strdup(name)) == NULL) {
            r = ctr_fail(err, ENOMEM, "readdir `%s'", path);
            break;
        }
        n++;
    }
    if (r == 0 && errno != 0)
        r = ctr_fail(err, errno, "readdir `%s'", path);
    ctr_dir_close(&d);
    if (r < 0) {
        ctr_strv_free(v, n);
        return -1;
    }
    *names = v;
    *count = n;
    return 0;
}

int ctr_sys_count_entries(const char *path, const char *suffix, size_t *n, size_t *tmp,
                          struct ctr_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ctr_fail(err, errno, "opendir `%s'", path);
    struct ctr_dir d;
    ctr_dir_open(&d, fd);
    size_t sl = suffix ? strlen(suffix) : 0;
    const char *name;
    unsigned char type;
    *n = *tmp = 0;
    while ((name = ctr_dir_next(&d, &type)) != NULL) {
        size_t len = strlen(name);
        if (strncmp(name, ".tmp-", 5) == 0)
            (*tmp)++;
        else if (len >= sl && (sl == 0 || memcmp(name + len - sl, suffix, sl) == 0))
            (*n)++;
    }
    int r = errno != 0 ? ctr_fail(err, errno, "readdir `%s'", path) : 0;
    ctr_dir_close(&d);
    return r;
}

int ctr_sys_lock(const char *path, int exclusive, int nonblock, struct ctr_err *err)
{
    int fd = RETRY(open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd < 0)
        return ctr_fail(err, errno, "open lock `%s'", path);
    if (RETRY(flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (nonblock ? LOCK_NB : 0))) < 0) {
        int e = errno;
        close(fd);
        return ctr_fail(err, e, "lock `%s'", path);
    }
    return fd;
}

int ctr_sys_close(int fd, struct ctr_err *err)
{
    if (close(fd) < 0)
        return ctr_fail(err, errno, "close fd %d", fd);
    return 0;
}

int ctr_sys_open(const char *path, int flags, mode_t mode, struct ctr_err *err)
{
    int fd = RETRY(open(path, flags | O_CLOEXEC | O_NOCTTY, mode));
    if (fd < 0)
        return ctr_fail(err, errno, "open `%s'", path);
    return fd;
}

int ctr_sys_kill(pid_t pid, int sig, struct ctr_err *err)
{
    if (kill(pid, sig) < 0)
        return ctr_fail(err, errno, "kill pid %d with signal %d", (int)pid, sig);
    return 0;
}

int ctr_sys_chmod(const char *path, mode_t mode, struct ctr_err *err)
{
    if (fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0 &&
        (errno != EOPNOTSUPP || chmod(path, mode) < 0))
        return ctr_fail(err, errno, "chmod `%s'", path);
    return 0;
}

int ctr_sys_lchown(const char *path, uid_t uid, gid_t gid, struct ctr_err *err)
{
    if (lchown(path, uid, gid) < 0)
        return ctr_fail(err, errno, "lchown `%s'", path);
    return 0;
}

int ctr_sys_uname(struct utsname *u, struct ctr_err *err)
{
    if (uname(u) < 0)
        return ctr_fail(err, errno, "uname");
    return 0;
}

int ctr_sys_mkfifo(const char *path, mode_t mode, struct ctr_err *err)
{
    if (mkfifo(path, mode) < 0)
        return ctr_fail(err, errno, "mkfifo `%s'", path);
    return 0;
}

int ctr_sys_random(void *buf, size_t n, struct ctr_err *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ctr_fail(err, errno, "getrandom");
        }
        got += (size_t)r;
    }
    return 0;
}

/* The civil date of a day count since 1970-01-01 in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil inverted): gmtime_r would do it, but glibc's first call
 * of it reads the time zone (TZ, /etc/localtime) that UTC never needs. */
static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

void ctr_format_rfc3339(const struct timespec *ts, char *out, size_t outlen)
{
    long long t = (long long)ts->tv_sec;
    long long days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    long long y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09ldZ", y, m, d, secs / 3600,
             secs / 60 % 60, secs % 60, ts->tv_nsec);
}

int ctr_sys_unix_listen(const char *path, struct ctr_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return ctr_fail(err, ENAMETOOLONG, "unix socket `%s'", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctr_fail(err, errno, "socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
        int e = errno;
        close(fd);
        return ctr_fail(err, e, "listen on `%s'", path);
    }
    return fd;
}

int ctr_sys_accept_if_listening(int sock, const char *what, int *conn, struct ctr_err *err)
{
    *conn = -1;
    int acc;
    socklen_t al = sizeof acc;
    if (getsockopt(sock, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc) {
        *conn = RETRY(accept4(sock, NULL, NULL, SOCK_CLOEXEC));
        if (*conn < 0)
            return ctr_fail(err, errno, "accept on %s", what);
    }
    return 0;
}

int ctr_sys_inotify_watch(const char *dir, struct ctr_err *err)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return ctr_fail(err, errno, "inotify_init1");
    if (inotify_add_watch(fd, dir, IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_DELETE |
                                       IN_ONLYDIR) < 0) {
        int saved = errno;
        close(fd);
        return ctr_fail(err, saved, "inotify_add_watch `%s'", dir);
    }
    return fd;
}

int ctr_sys_inotify_read(int fd, void (*each)(void *ctx, const char *name), void *ctx,
                         struct ctr_err *err)
{
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len < 0 && errno == EINTR)
            continue;
        if (len < 0 && errno == EAGAIN)
            return 0;
        if (len < 0)
            return ctr_fail(err, errno, "read inotify fd %d", fd);
        if (len == 0)
            return 0;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len > 0)
                each(ctx, ev->name);
            p += sizeof *ev + ev->len;
        }
    }
}

void ctr_sys_signals_reset(int unblock)
{
    /* the raw syscall: libc's sigaction refuses the real-time signals it keeps for itself (32,
     * 33), and those can be ignored too; an all-zero kernel sigaction is SIG_DFL with no flags
     * on every architecture, whatever the order of its fields */
    static const unsigned long dfl[8];
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, dfl, NULL, sizeof dfl[0]);
    if (unblock) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
}
