/* File helpers every subsystem needs: complete reads and writes, capped reads of untrusted
 * documents, crash-safe record writes, fd-relative tree walks, and path resolution inside a
 * root (openat2 RESOLVE_IN_ROOT). */
#ifndef CTR_FSUTIL_H
#define CTR_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

int ctr_write_all(int fd, const void *buf, size_t len);
/* read(2) until len bytes or EOF; returns bytes read, -1 on error (errno set). */
ssize_t ctr_read_full(int fd, void *buf, size_t len);

/* Read a whole file of at most `cap` bytes into a NUL-terminated malloc'd buffer.
 * A larger file is an error (EFBIG) naming the path: untrusted JSON is never read unbounded
 * (containerd CVE-2023-25153). */
int ctr_read_file(const char *path, size_t cap, char **out, size_t *len, struct ctr_err *err);

/* The same for a regular file of an untrusted tree (an image's /etc/passwd): `path` resolved
 * inside `root` (openat2 RESOLVE_IN_ROOT), opened without blocking (a fifo there is refused,
 * never waited on).  Messages name the path as the tree has it, in `name` (NULL: the root
 * directory, quoted): "read `/etc/passwd' in the image: 5242927 bytes is over ...". */
int ctr_read_file_in_root(const char *root, const char *path, const char *name, size_t cap,
                          char **out, size_t *len, struct ctr_err *err);

/* Write `data` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
 * directory.  flags: CTR_WRITE_NOREPLACE makes the rename fail with EEXIST when path exists
 * (renameat2 RENAME_NOREPLACE), which is how records are created exclusively;
 * CTR_WRITE_NOSYNC leaves out both fsyncs, for state that does not outlive the machine (a
 * task's files: the rename alone keeps them whole for any reader, as runc's state.json);
 * CTR_WRITE_NODIRSYNC leaves out the directory's only: the file is whole on disk before its
 * name can be, and the caller makes the name durable later, with others (one syncfs). */
enum { CTR_WRITE_NOREPLACE = 1, CTR_WRITE_NOSYNC = 2, CTR_WRITE_NODIRSYNC = 4 };
int ctr_write_file_atomic(const char *path, const void *data, size_t len, int mode, int flags,
                          struct ctr_err *err);

/* Write a pid file (the decimal pid, no newline, as runc writes it) atomically. */
int ctr_write_pid_file(const char *path, pid_t pid, struct ctr_err *err);

int ctr_fsync_dir(const char *dir, struct ctr_err *err);
/* fsync a file or a directory (its data and its own metadata; not its name, which is its
 * directory's), never following a symlink: open's error or fsync's, naming path. */
int ctr_fsync_path(const char *path, struct ctr_err *err);
/* fsync the directory that contains path. */
int ctr_fsync_parent(const char *path, struct ctr_err *err);

/* mkdir -p with `mode` for the directories it creates. */
int ctr_mkdir_p(const char *path, int mode, struct ctr_err *err);

/* Remove a tree, fd-relative, never following symlinks and never crossing into another
 * filesystem (a mount left below is an error: EBUSY naming it). A missing path is success. */
int ctr_remove_tree(const char *path, struct ctr_err *err);

/* A directory's entries read with getdents64(2) into a buffer of the reader's own, 2 KB,
 * where the caller keeps it: readdir's DIR is a 32 KB allocation, and a walk holds one per
 * level, which stayed in the C heap of every `run --rm`.  ctr_dir_open takes `fd`, a directory
 * opened for reading (ctr_dir_close closes it); ctr_dir_next returns the next name but "." and
 * "..", with its d_type in *type, or NULL at the end (errno 0) or on an error (errno set). */
struct ctr_dir {
    int fd;
    size_t pos, len;
    char buf[2048] __attribute__((aligned(8)));
};
void ctr_dir_open(struct ctr_dir *d, int fd);
const char *ctr_dir_next(struct ctr_dir *d, unsigned char *type);
void ctr_dir_close(struct ctr_dir *d);

/* openat2(dirfd, path, {flags, mode, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS}) retried on EINTR
 * and EAGAIN; returns the fd or -1 with errno set. */
int ctr_openat_in_root(int rootfd, const char *path, int flags, int mode);

#endif
