/* The one error contract of the C core.
 *
 * A function that can fail takes `struct ctr_err *err` as its last parameter and returns a
 * negative value (or NULL) after filling it with ctr_fail(); on success it leaves `err`
 * untouched.  The message names the operation and the object it acted on, the way crun's do:
 *
 *     openat2 `etc/passwd`: No such file or directory
 *
 * `code` is the errno of the failure (0 when the failure is not a syscall's, e.g. a digest
 * mismatch; callers then see EINVAL-like semantics chosen by the reporter).  Exactly one place
 * turns a ctr_err into Lua values: ctr_lua_fail() in lua/binding.c, which returns
 * `nil, message, errno` as io.open does.  Errors that happen in a forked child cross the fork
 * as a struct ctr_err written whole to a pipe (see runtime/create.c), so the parent reports the step and
 * the path, never "child exited 1".
 */
#ifndef CTR_ERROR_H
#define CTR_ERROR_H

#include <stddef.h>

#define CTR_ERR_MSG 1024

struct ctr_err {
    int code;                 /* errno, or 0 when not a syscall failure */
    int program;              /* 1: the container's program could not be found or executed
                               * (a caller answers 127 or 126), whatever the errno */
    char msg[CTR_ERR_MSG];    /* complete message, strerror included */
};

/* Fill *err with printf-style text followed by ": strerror(code)" when code != 0.
 * Always returns -1 so that `return ctr_fail(err, errno, "open `%s'", path);` reads well. */
int ctr_fail(struct ctr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ctr_fail for a failure of the container's program itself (err->program = 1). */
int ctr_fail_program(struct ctr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing error with context: "unpack layer 3: <old message>". Returns -1. */
int ctr_fail_prefix(struct ctr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The symbolic name of an errno ("ENOENT"), or NULL for one the core does not name.  Every
 * errno the core reports is named: those it sets itself and those its syscalls, libcurl's
 * mapping (net/http.c) and libseccomp return.  Lua's errors carry it as .sym. */
const char *ctr_errno_name(int code);

#endif
