/* libm, loaded on first use.
 *
 * Of libm the host needs only what LuaJIT calls for math.sin, math.log, x ^ y and the like;
 * the core's C calls none of it, and most commands (a `run`, a `tasks kill`) never do any such
 * arithmetic.  Mapped at exec, libm.so.6 costs every process its relocations and the pages
 * they touch — about 0.4 MB of a `run --rm`'s peak resident set, more than the gap to crun's.
 * So the host defines the functions LuaJIT imports from libm itself, and each forwards to
 * libm's own, resolved by dlopen() the first time any of them is called (under pthread_once).
 * Results, errno and the floating-point environment are libm's, unchanged.
 *
 * The list is what LuaJIT's archive takes from libm and libc does not define (the Makefile
 * links libm only --as-needed, so a function missing here maps libm at exec again rather than
 * failing the link; spec/host_libm_spec.lua notices that).  A libm that cannot be loaded is a
 * broken installation: the process says so and exits.  Only the host links this file: a
 * luajit loading ctr.core has libm already. */
#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define CTR_LIBM_UNARY(X) \
    X(acos) X(asin) X(atan) X(cos) X(cosh) X(exp) X(log) X(log10) X(log2) X(sin) X(sinh) \
    X(sqrt) X(tan) X(tanh)
#define CTR_LIBM_BINARY(X) X(atan2) X(fmod) X(pow)

#define FIELD(f) double (*f)();
/* Process-wide and written once (pthread_once): the only state here. */
static struct {
    CTR_LIBM_UNARY(FIELD)
    CTR_LIBM_BINARY(FIELD)
} libm;
#undef FIELD
static pthread_once_t libm_once = PTHREAD_ONCE_INIT;

static __attribute__((noreturn)) void broken(const char *what)
{
    fprintf(stderr, "ctrlua: cannot load %s: %s\n", LIBM_SO, what ? what : "unknown error");
    _exit(1);
}

static void load_libm(void)
{
    void *h = dlopen(LIBM_SO, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        broken(dlerror());
#define X(f)                                                                                   \
    if ((*(void **)&libm.f = dlsym(h, #f)) == NULL)                                              \
        broken(dlerror());
    CTR_LIBM_UNARY(X)
    CTR_LIBM_BINARY(X)
#undef X
}

#define UNARY(f)                                                                               \
    double f(double x);                                                                        \
    double f(double x)                                                                         \
    {                                                                                          \
        pthread_once(&libm_once, load_libm);                                                   \
        return ((double (*)(double))libm.f)(x);                                                \
    }
#define BINARY(f)                                                                              \
    double f(double x, double y);                                                              \
    double f(double x, double y)                                                               \
    {                                                                                          \
        pthread_once(&libm_once, load_libm);                                                   \
        return ((double (*)(double, double))libm.f)(x, y);                                     \
    }
CTR_LIBM_UNARY(UNARY)
CTR_LIBM_BINARY(BINARY)
