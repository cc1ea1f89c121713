/* Cleanup attributes and small helpers shared by every file of the core (after crun's and
 * bubblewrap's): a variable declared `cleanup_free` or `cleanup_close` is released when it goes
 * out of scope, and steal_pointer()/steal_fd() hand ownership out. */
#ifndef CTR_UTIL_H
#define CTR_UTIL_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static inline void ctr_freep(void *p) { free(*(void **)p); }
static inline void ctr_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

#define cleanup_free __attribute__((cleanup(ctr_freep)))
#define cleanup_close __attribute__((cleanup(ctr_closep)))

static inline void *ctr_steal_pointer(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define steal_pointer(pp) ctr_steal_pointer(pp)

static inline int steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

/* Retry an interruptible syscall on EINTR (glibc's TEMP_FAILURE_RETRY, kept local so the core
 * does not depend on _GNU_SOURCE for it). */
#define RETRY(expr)                                                                            \
    ({                                                                                         \
        long _r;                                                                               \
        do                                                                                     \
            _r = (long)(expr);                                                                 \
        while (_r == -1 && errno == EINTR);                                                    \
        _r;                                                                                    \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
