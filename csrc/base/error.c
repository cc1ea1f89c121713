#include "base/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail_v(struct ctr_err *err, int code, int program, const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (n < 0)
        n = 0;
    if (code != 0 && (size_t)n < sizeof err->msg) {
        char buf[256];
#ifdef __GLIBC__
        const char *s = strerror_r(code, buf, sizeof buf);
#else /* the XSI strerror_r of musl, with which the monitor may be built */
        const char *s = strerror_r(code, buf, sizeof buf) == 0 ? buf : "Unknown error";
#endif
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", s);
    }
    err->code = code;
    err->program = program;
    return -1;
}

int ctr_fail(struct ctr_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(err, code, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int ctr_fail_program(struct ctr_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(err, code, 1, fmt, ap);
    va_end(ap);
    return -1;
}

int ctr_fail_prefix(struct ctr_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char prefix[CTR_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[CTR_ERR_MSG];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}

/* ENOTSUP and EWOULDBLOCK are EOPNOTSUPP and EAGAIN on Linux: one name each. */
#define CTR_ERRNOS(X)                                                                          \
    X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(ENOEXEC) X(EBADF)            \
    X(ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) X(EBUSY) X(EEXIST) X(EXDEV) X(ENODEV)    \
    X(ENOTDIR) X(EISDIR) X(EINVAL) X(ENFILE) X(EMFILE) X(ENOTTY) X(ETXTBSY) X(EFBIG)           \
    X(ENOSPC) X(ESPIPE) X(EROFS) X(EMLINK) X(EPIPE) X(EDOM) X(ERANGE) X(EDEADLK)               \
    X(ENAMETOOLONG) X(ENOLCK) X(ENOSYS) X(ENOTEMPTY) X(ELOOP) X(ENOMSG) X(ENODATA) X(ETIME)    \
    X(ENOLINK) X(EPROTO) X(EBADMSG) X(EOVERFLOW) X(ELIBACC) X(ELIBBAD) X(EILSEQ) X(EUSERS)     \
    X(ENOTSOCK) X(EDESTADDRREQ) X(EMSGSIZE) X(EPROTOTYPE) X(ENOPROTOOPT) X(EPROTONOSUPPORT)    \
    X(EOPNOTSUPP) X(EAFNOSUPPORT) X(EADDRINUSE) X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH)    \
    X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN) X(ENOTCONN) X(ETIMEDOUT)               \
    X(ECONNREFUSED) X(EHOSTDOWN) X(EHOSTUNREACH) X(EALREADY) X(EINPROGRESS) X(ESTALE)          \
    X(EDQUOT) X(ECANCELED) X(EOWNERDEAD) X(ENOTRECOVERABLE)

const char *ctr_errno_name(int code)
{
    switch (code) {
#define CTR_ERRNO_CASE(e) case e: return #e;
        CTR_ERRNOS(CTR_ERRNO_CASE)
#undef CTR_ERRNO_CASE
    default: return NULL;
    }
}
