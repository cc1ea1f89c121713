/* Sealed executables: what the runtime's processes run where a container can reach them.
 *
 * A container must never be able to execve, open for writing or map the host's ctrlua (runc
 * CVE-2019-5736).  The processes that enter a container are clones of ctrlua; the last thing
 * each of them runs is ctrlua-exec (csrc/runtime/sealed/trampoline.c), executed from a memfd that
 * holds a copy of it and is sealed against every change (F_SEAL_WRITE, _GROW, _SHRINK,
 * _SEAL), and ctrlua-exec execve's the container's program.  The monitor is executed from a
 * sealed copy of its binary in the same way. */
#ifndef CTR_SEALED_H
#define CTR_SEALED_H

#include <sys/types.h>

#include "base/error.h"

/* A sealed, close-on-exec memfd holding ctrlua-exec (2 KB: made for every container). */
int ctr_sealed_trampoline(struct ctr_err *err);

/* A sealed, close-on-exec memfd holding a copy of the file at path. */
int ctr_sealed_copy(const char *path, struct ctr_err *err);

/* Replace this process by `exe` (argv, envp) through the trampoline `tramp`.  report_fd, if
 * not -1, gets the errno (an int) when the program's execve fails, and is close-on-exec for the
 * program; who names this process in the message ctrlua-exec prints then ("" for none).
 * Returns only when the trampoline itself could not be executed, with errno set. */
void ctr_sealed_exec(int tramp, int report_fd, const char *who, const char *exe,
                     char *const argv[], char *const envp[]);

/* A file's identity, to recognise our own executable wherever a path leads to it. */
struct ctr_file_id {
    dev_t dev;
    ino_t ino;
};

/* The identity of our own executable (/proc/self/exe), taken while it can still be read. */
int ctr_own_executable(struct ctr_file_id *id, struct ctr_err *err);

/* Is the file at path (symlinks followed, as execve follows them) the file id?  A second
 * line of defence behind the trampoline; 0 when path cannot be looked at. */
int ctr_file_is(const char *path, const struct ctr_file_id *id);

#endif
