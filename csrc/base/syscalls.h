/* One checked system call each: the filesystem, process, socket and inotify calls that
 * ctr.core hands to Lua one for one (so that Lua never makes a raw syscall of its own), with
 * their failure as a struct ctr_err naming the path or the object.  Nothing here keeps state. */
#ifndef CTR_SYSCALLS_H
#define CTR_SYSCALLS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>

#include "base/error.h"

int ctr_sys_mkdir(const char *path, mode_t mode, struct ctr_err *err);
int ctr_sys_unlink(const char *path, struct ctr_err *err);
int ctr_sys_rmdir(const char *path, struct ctr_err *err);
/* noreplace: EEXIST when `to` exists (renameat2 RENAME_NOREPLACE, directories too); sync:
 * fsync the parent of `to` after */
int ctr_sys_rename(const char *from, const char *to, int noreplace, int sync, struct ctr_err *err);
int ctr_sys_symlink(const char *target, const char *path, struct ctr_err *err);
/* The link's text (not NUL-terminated) into buf; returns its length. */
ssize_t ctr_sys_readlink(const char *path, char *buf, size_t cap, struct ctr_err *err);
/* malloc'd; every symlink resolved */
char *ctr_sys_realpath(const char *path, struct ctr_err *err);
/* follow: stat(2), else lstat(2) */
int ctr_sys_stat(const char *path, int follow, struct stat *st, struct ctr_err *err);
/* "file", "directory", "link", "char", "block", "fifo", "socket" or "unknown" */
const char *ctr_file_type_name(mode_t mode);
/* The names in a directory but "." and "..", in readdir order: *names a malloc'd array of
 * malloc'd strings (ctr_strv_free). */
int ctr_sys_listdir(const char *path, char ***names, size_t *n, struct ctr_err *err);
void ctr_strv_free(char **v, size_t n);
/* The names in a directory counted, none kept: *tmp those that begin ".tmp-" (the store's
 * temporary names), *n the others that end in suffix (every other when suffix is NULL). */
int ctr_sys_count_entries(const char *path, const char *suffix, size_t *n, size_t *tmp,
                          struct ctr_err *err);
/* An flock on path (created 0600, never through a final symlink), held until the returned fd
 * is closed. */
int ctr_sys_lock(const char *path, int exclusive, int nonblock, struct ctr_err *err);
int ctr_sys_close(int fd, struct ctr_err *err);
/* open(2) with O_CLOEXEC | O_NOCTTY added; returns the fd */
int ctr_sys_open(const char *path, int flags, mode_t mode, struct ctr_err *err);
int ctr_sys_kill(pid_t pid, int sig, struct ctr_err *err);
/* Never through a final symlink: where the kernel cannot change a link's mode without
 * following it (EOPNOTSUPP), a symlink is refused rather than its target changed (containerd
 * CVE-2021-32760). */
int ctr_sys_chmod(const char *path, mode_t mode, struct ctr_err *err);
int ctr_sys_lchown(const char *path, uid_t uid, gid_t gid, struct ctr_err *err);
int ctr_sys_uname(struct utsname *u, struct ctr_err *err);
int ctr_sys_mkfifo(const char *path, mode_t mode, struct ctr_err *err);
/* n bytes from getrandom(2) */
int ctr_sys_random(void *buf, size_t n, struct ctr_err *err);
/* RFC 3339 with nanoseconds in UTC, as containerd prints times: 2006-01-02T15:04:05.000000000Z */
void ctr_format_rfc3339(const struct timespec *ts, char *out, size_t outlen);

/* A listening unix stream socket (CLOEXEC) at path; returns the fd. */
int ctr_sys_unix_listen(const char *path, struct ctr_err *err);
/* When sock is a listening socket, one accepted connection (CLOEXEC) into *conn; else *conn
 * stays -1.  `what` names the socket in messages. */
int ctr_sys_accept_if_listening(int sock, const char *what, int *conn, struct ctr_err *err);

/* An inotify instance (non-blocking, close-on-exec) watching directory `dir` for files
 * created, written to, moved in or deleted; returns the fd. */
int ctr_sys_inotify_watch(const char *dir, struct ctr_err *err);
/* The pending events of an inotify fd, consumed: each(ctx, name) for every event about a
 * named file.  Returns 0 once none is pending. */
int ctr_sys_inotify_read(int fd, void (*each)(void *ctx, const char *name), void *ctx,
                         struct ctr_err *err);

/* Every signal's disposition back to its default, in a child before it execs, and with
 * `unblock` its mask emptied: what the caller ignores or blocks (LuaJIT, a shell that ignores
 * SIGPIPE, a runtime with SIGINT ignored) would otherwise survive execve into the program.
 * Async-signal-safe: callable between fork and execve. */
void ctr_sys_signals_reset(int unblock);

#endif
