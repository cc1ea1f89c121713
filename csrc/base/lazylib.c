#define CTR_LAZYLIB_IMPL
#include "base/lazylib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef CTR_LIBARCHIVE_SONAME
#define CTR_LIBARCHIVE_SONAME "libarchive.so.13"
#endif
#ifndef CTR_LIBISAL_SONAME
#define CTR_LIBISAL_SONAME "libisal.so.2"
#endif
#ifndef CTR_LIBSECCOMP_SONAME
#define CTR_LIBSECCOMP_SONAME "libseccomp.so.2"
#endif
#ifndef CTR_LIBCRYPTO_SONAME
#define CTR_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

/* Process-wide and written once (pthread_once): the only state here. */
static struct ctr_archive_api archive_api;
static struct ctr_crypto_api crypto_api;
static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static struct ctr_seccomp_api seccomp_api;
static pthread_once_t seccomp_once = PTHREAD_ONCE_INIT;
static struct ctr_isal_api isal_api;
static int isal_loaded;
static pthread_once_t isal_once = PTHREAD_ONCE_INIT;

static __attribute__((noreturn)) void broken(const char *lib, const char *what)
{
    fprintf(stderr, "ctrlua: cannot load %s: %s\n", lib, what ? what : "unknown error");
    _exit(1);
}

static void *open_lib(const char *soname)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        broken(soname, dlerror());
    return h;
}

static void load_archive(void)
{
    void *h = open_lib(CTR_LIBARCHIVE_SONAME);
#define X(f)                                                                                   \
    if ((*(void **)&archive_api.f = dlsym(h, #f)) == NULL)                                       \
        broken(CTR_LIBARCHIVE_SONAME, dlerror());
    CTR_ARCHIVE_SYMS(X)
#undef X
}

static void load_crypto(void)
{
    void *h = open_lib(CTR_LIBCRYPTO_SONAME);
#define X(f)                                                                                   \
    if ((*(void **)&crypto_api.f = dlsym(h, #f)) == NULL)                                        \
        broken(CTR_LIBCRYPTO_SONAME, dlerror());
    CTR_CRYPTO_SYMS(X)
#undef X
}

static void load_seccomp(void)
{
    void *h = open_lib(CTR_LIBSECCOMP_SONAME);
#define X(f)                                                                                   \
    if ((*(void **)&seccomp_api.f = dlsym(h, #f)) == NULL)                                       \
        broken(CTR_LIBSECCOMP_SONAME, dlerror());
    CTR_SECCOMP_SYMS(X)
#undef X
}

/* Unlike the libraries above, a missing libisal is no broken installation: leave isal_loaded 0. */
static void load_isal(void)
{
    if (!CTR_HAVE_ISAL || CTR_LIBISAL_SONAME[0] == '\0')
        return;
    void *h = dlopen(CTR_LIBISAL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
#define X(f)                                                                                   \
    if ((*(void **)&isal_api.f = dlsym(h, #f)) == NULL) {                                        \
        dlclose(h);                                                                            \
        return;                                                                                \
    }
    CTR_ISAL_SYMS(X)
#undef X
    isal_loaded = 1;
}

const struct ctr_isal_api *ctr_isal_api(void)
{
    pthread_once(&isal_once, load_isal);
    return isal_loaded ? &isal_api : NULL;
}

const struct ctr_archive_api *ctr_archive_api(void)
{
    pthread_once(&archive_once, load_archive);
    return &archive_api;
}

const struct ctr_crypto_api *ctr_crypto_api(void)
{
    pthread_once(&crypto_once, load_crypto);
    return &crypto_api;
}

const struct ctr_seccomp_api *ctr_seccomp_api(void)
{
    pthread_once(&seccomp_once, load_seccomp);
    return &seccomp_api;
}
