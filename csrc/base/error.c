#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ctr_fail(struct ctr_err *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (code != 0 && (size_t)n < sizeof err->msg) {
        char buf[256];
        const char *s = strerror_r(code, buf, sizeof buf);
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", s);
    }
    err->code = code;
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
