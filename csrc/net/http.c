/* HTTP transfers on a worker thread (see net/http.h for the contract).
 *
 * Ownership: every CURL and CURLM handle is touched by the worker only.  The caller's thread
 * makes a transfer (and opens its ingest), queues it, reads its atomic counters, and once the
 * worker has marked it done (under the session's mutex) takes it: from then on the worker
 * never looks at it again.  The mutex guards the lists and the states; the counters are
 * atomics read without it.
 */
#define CURL_DISABLE_TYPECHECK 1
#include "net/http.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/files.h"
#include "base/cleanup.h"
#include "net/redact.h"

#ifndef CTR_LIBCURL_SONAME
#define CTR_LIBCURL_SONAME "libcurl.so.4"
#endif

/* ===================================================================== libcurl, lazily */

#define CURL_SYMS(X) \
    X(curl_global_init) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_setopt) \
    X(curl_easy_getinfo) X(curl_easy_reset) X(curl_easy_strerror) X(curl_multi_init) \
    X(curl_multi_cleanup) X(curl_multi_add_handle) X(curl_multi_remove_handle) \
    X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_wakeup) X(curl_multi_info_read) \
    X(curl_slist_append) X(curl_slist_free_all)

#define CURL_FIELD(f) __typeof__(f) *f;
struct curl_api {
    CURL_SYMS(CURL_FIELD)
    const char *error;
};
#undef CURL_FIELD

/* Written once under pthread_once, like base/lazylib.c's tables. */
static struct curl_api curl_api;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void load_curl(void)
{
    void *h = dlopen(CTR_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        curl_api.error = dlerror();
        return;
    }
#define X(f)                                                                                   \
    if ((*(void **)&curl_api.f = dlsym(h, #f)) == NULL) {                                      \
        curl_api.error = "missing symbol " #f;                                                 \
        return;                                                                                \
    }
    CURL_SYMS(X)
#undef X
    /* not thread-safe in libcurl before 7.84: done here, once, before any handle exists */
    if (curl_api.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        curl_api.error = "curl_global_init failed";
}

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_init (curl_api.curl_easy_init)
#define curl_easy_cleanup (curl_api.curl_easy_cleanup)
#define curl_easy_setopt (curl_api.curl_easy_setopt)
#define curl_easy_getinfo (curl_api.curl_easy_getinfo)
#define curl_easy_reset (curl_api.curl_easy_reset)
#define curl_easy_strerror (curl_api.curl_easy_strerror)
#define curl_multi_init (curl_api.curl_multi_init)
#define curl_multi_cleanup (curl_api.curl_multi_cleanup)
#define curl_multi_add_handle (curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (curl_api.curl_multi_remove_handle)
#define curl_multi_perform (curl_api.curl_multi_perform)
#define curl_multi_poll (curl_api.curl_multi_poll)
#define curl_multi_wakeup (curl_api.curl_multi_wakeup)
#define curl_multi_info_read (curl_api.curl_multi_info_read)
#define curl_slist_append (curl_api.curl_slist_append)
#define curl_slist_free_all (curl_api.curl_slist_free_all)

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ===================================================================== transfers */

struct xfer {
    int id;
    struct ctr_http *h;
    struct xfer *next;       /* the session's list */
    int state;               /* enum ctr_http_state, under h->mu */
    int reported;            /* returned by ctr_http_wait once */
    atomic_int cancel;
    atomic_uint_fast64_t done;
    atomic_int_fast64_t total;

    /* the request (owned copies) */
    char *method;
    char *url;               /* the current hop */
    char *origin;            /* scheme://host:port of the first hop */
    char **hdr;
    size_t nhdr;
    int auth_dropped;
    char *body;
    size_t body_len;
    int body_fd;
    int64_t body_off, body_flen, body_pos;
    size_t max_body;
    char *ca, *cert, *key;
    int insecure;
    long connect_ms, stall_s, backoff_ms;
    int max_attempts, follow;

    /* a download */
    int ingest;
    struct ctr_ingest ing;
    char digest[CTR_DIGEST_LEN];
    int64_t size;
    uint64_t resumed;        /* bytes the ingest had when this transfer began */
    uint64_t skip;           /* bytes of a 200 body already in the ingest */
    int complete_already;    /* the ingest held the whole blob: no request */

    /* the worker's state of the current attempt */
    CURL *easy;
    struct curl_slist *slist;
    char errbuf[CURL_ERROR_SIZE];
    long status;
    int headers_done;
    struct ctr_buf headers, resp;
    int attempts, redirects;
    double due;              /* RETRYING: when to go again */
    double retry_after;
    int failed;              /* err is set: take fails */
    int wfail;               /* our own callback stopped the transfer: err is set */
    struct ctr_err err;
};

struct ctr_http {
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    CURLM *multi;
    struct xfer *all;
    int stop;
    int next_id;
    int dump, trace;
};

static void xfer_free(struct xfer *x)
{
    if (x == NULL)
        return;
    free(x->method);
    free(x->url);
    free(x->origin);
    for (size_t i = 0; i < x->nhdr; i++)
        free(x->hdr[i]);
    free(x->hdr);
    free(x->body);
    if (x->body_fd >= 0)
        close(x->body_fd);
    free(x->ca);
    free(x->cert);
    free(x->key);
    /* a download not committed keeps its bytes for the next attempt to resume (a later sweep
     * removes what nobody resumes); only a commit that fails verification removes them */
    if (x->ingest)
        ctr_ingest_release(&x->ing);
    ctr_buf_free(&x->headers);
    ctr_buf_free(&x->resp);
    free(x);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* "scheme://host:port" of a URL, lowercased, with the scheme's default port made explicit. */
static char *origin_of(const char *url)
{
    const char *s = strstr(url, "://");
    if (s == NULL)
        return strdup("");
    size_t sl = (size_t)(s - url);
    const char *h = s + 3;
    const char *end = h + strcspn(h, "/?#");
    const char *at = memchr(h, '@', (size_t)(end - h));
    if (at)
        h = at + 1;
    char buf[1024];
    int has_port = 0;
    const char *close_br = h[0] == '[' ? memchr(h, ']', (size_t)(end - h)) : NULL;
    const char *colon = memchr(close_br ? close_br : h, ':', (size_t)(end - (close_br ? close_br : h)));
    if (colon)
        has_port = 1;
    const char *def = (sl == 5 && strncasecmp(url, "https", 5) == 0) ? ":443" : ":80";
    snprintf(buf, sizeof buf, "%.*s://%.*s%s", (int)sl, url, (int)(end - h), h, has_port ? "" : def);
    for (char *p = buf; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return strdup(buf);
}

static void xfer_errorf(struct xfer *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xfer_errorf(struct xfer *x, int code, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char safe[2048];
    ctr_http_redact_url(x->url, safe, sizeof safe);
    ctr_fail(&x->err, 0, "%s %s: %s", x->method, safe, what);
    x->err.code = code;
    x->failed = 1;
}

static void dump_write(struct ctr_http *h, int id, const char *mark, struct ctr_buf *lines)
{
    struct ctr_buf out = { 0 };
    const char *p = lines->p;
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        char pre[48];
        snprintf(pre, sizeof pre, "http[%d] %s ", id, mark);
        ctr_buf_add(&out, pre, strlen(pre), SIZE_MAX);
        ctr_buf_add(&out, p, n, SIZE_MAX);
        ctr_buf_add(&out, "\n", 1, SIZE_MAX);
        p += n;
        if (*p == '\n')
            p++;
    }
    (void)h;
    if (out.len)
        ctr_write_all(2, out.p, out.len);
    ctr_buf_free(&out);
}

static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)e;
    struct xfer *x = ud;
    struct ctr_http *h = x->h;
    struct ctr_buf lines = { 0 };
    const char *mark = NULL;
    if (type == CURLINFO_HEADER_OUT || type == CURLINFO_HEADER_IN) {
        mark = type == CURLINFO_HEADER_OUT ? ">" : "<";
        const char *p = data, *end = data + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
            size_t t = n;
            while (t > 0 && (p[t - 1] == '\n' || p[t - 1] == '\r'))
                t--;
            if (t > 0)
                ctr_http_redact_header(p, n, &lines);
            p += n;
        }
    } else if (type == CURLINFO_TEXT && h->trace) {
        mark = "*";
        /* curl's own text never carries header values, but may carry a URL */
        char line[2048], safe[2048];
        snprintf(line, sizeof line, "%.*s", (int)(size && data[size - 1] == '\n' ? size - 1 : size), data);
        if (strstr(line, "://")) {
            ctr_http_redact_url(line, safe, sizeof safe);
            ctr_buf_add(&lines, safe, strlen(safe), SIZE_MAX);
        } else {
            ctr_buf_add(&lines, line, strlen(line), SIZE_MAX);
        }
    }
    if (mark)
        dump_write(h, x->id, mark, &lines);
    ctr_buf_free(&lines);
    return 0;
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *val = v;
    *vlen = (size_t)(end - v);
    return 1;
}

/* End of a response's headers: decide what its body is. */
static int headers_end(struct xfer *x)
{
    x->headers_done = 1;
    if (x->status < 200 || x->status >= 300)
        return 0;
    const char *p = x->headers.p;
    int64_t clen = -1, range_start = -1, range_total = -1;
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        const char *v;
        size_t vl;
        char tmp[128];
        if (header_is(p, n, "content-length", &v, &vl)) {
            snprintf(tmp, sizeof tmp, "%.*s", (int)vl, v);
            clen = strtoll(tmp, NULL, 10);
        } else if (header_is(p, n, "content-range", &v, &vl)) {
            snprintf(tmp, sizeof tmp, "%.*s", (int)vl, v);
            long long a = -1, b = -1, t = -1;
            if (sscanf(tmp, "bytes %lld-%lld/%lld", &a, &b, &t) >= 2) {
                range_start = a;
                range_total = t;
            }
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    if (!x->ingest) {
        if (clen >= 0 && (uint64_t)clen > x->max_body) {
            xfer_errorf(x, EFBIG, "response of %lld bytes is over the limit of %zu", (long long)clen,
                        x->max_body);
            x->wfail = 1;
            return -1;
        }
        if (clen >= 0)
            atomic_store(&x->total, clen);
        return 0;
    }
    uint64_t have = x->ing.size;
    x->skip = 0;
    if (x->status == 206) {
        if (range_start < 0 || (uint64_t)range_start != have) {
            xfer_errorf(x, EPROTO, "asked for bytes from %llu, got a range from %lld",
                        (unsigned long long)have, (long long)range_start);
            x->wfail = 1;
            return -1;
        }
        if (range_total >= 0)
            atomic_store(&x->total, range_total);
    } else {
        x->skip = have; /* the range was ignored: what we have comes again first */
        if (clen >= 0)
            atomic_store(&x->total, clen);
    }
    if (x->size >= 0)
        atomic_store(&x->total, x->size);
    return 0;
}

static size_t on_header(char *data, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nm;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->headers.len = 0;
        if (x->headers.p)
            x->headers.p[0] = '\0';
        x->headers_done = 0;
        x->retry_after = 0;
    }
    if (ctr_buf_add(&x->headers, data, n, 64 * 1024) < 0)
        return 0;
    const char *v;
    size_t vl;
    if (header_is(data, n, "retry-after", &v, &vl)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*s", (int)vl, v);
        x->retry_after = strtod(tmp, NULL);
    }
    if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) {
        if (x->status >= 100 && x->status < 200)
            return n; /* 100 Continue: the real status follows */
        if (headers_end(x) < 0)
            return 0;
    }
    return n;
}

static size_t on_write(char *data, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nm;
    if (atomic_load(&x->cancel))
        return 0;
    int ok2xx = x->status >= 200 && x->status < 300;
    if (!x->ingest || !ok2xx) {
        /* an error body of a download is only for the message: cap it quietly */
        size_t cap = (x->ingest || !ok2xx) ? 64 * 1024 : x->max_body;
        int r = ctr_buf_add(&x->resp, data, n, cap);
        if (r < 0) {
            xfer_errorf(x, ENOMEM, "response body");
            x->wfail = 1;
            return 0;
        }
        if (r > 0 && ok2xx) {
            xfer_errorf(x, EFBIG, "response is over the limit of %zu bytes", x->max_body);
            x->wfail = 1;
            return 0;
        }
        if (ok2xx)
            atomic_store(&x->done, x->resp.len);
        return n;
    }
    const char *p = data;
    size_t len = n;
    if (x->skip > 0) {
        size_t k = x->skip < len ? (size_t)x->skip : len;
        x->skip -= k;
        p += k;
        len -= k;
    }
    if (len == 0)
        return n;
    if (x->size >= 0 && x->ing.size + len > (uint64_t)x->size) {
        xfer_errorf(x, EFBIG, "blob %s is longer than its %lld bytes", x->digest[0] ? x->digest : "",
                    (long long)x->size);
        x->wfail = 1;
        return 0;
    }
    struct ctr_err e;
    if (ctr_ingest_write(&x->ing, p, len, &e) < 0) {
        x->err = e;
        x->failed = 1;
        x->wfail = 1;
        return 0;
    }
    atomic_store(&x->done, x->ing.size);
    return n;
}

static size_t on_read(char *dst, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nm;
    if (atomic_load(&x->cancel))
        return CURL_READFUNC_ABORT;
    int64_t left = x->body_flen - x->body_pos;
    if (left <= 0)
        return 0;
    if ((int64_t)n > left)
        n = (size_t)left;
    ssize_t r = RETRY(pread(x->body_fd, dst, n, (off_t)(x->body_off + x->body_pos)));
    if (r < 0) {
        xfer_errorf(x, errno, "read the body: %s", strerror(errno));
        x->wfail = 1;
        return CURL_READFUNC_ABORT;
    }
    if (r == 0) {
        xfer_errorf(x, EIO, "the body file ended early");
        x->wfail = 1;
        return CURL_READFUNC_ABORT;
    }
    x->body_pos += r;
    return (size_t)r;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    struct xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || off > x->body_flen)
        return CURL_SEEKFUNC_CANTSEEK;
    x->body_pos = off;
    return CURL_SEEKFUNC_OK;
}

static int on_xferinfo(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    struct xfer *x = ud;
    (void)dlt;
    (void)dln;
    if (x->body_fd >= 0 || x->body) {
        atomic_store(&x->done, (uint64_t)uln);
        if (ult > 0)
            atomic_store(&x->total, ult);
    }
    return atomic_load(&x->cancel) ? 1 : 0;
}

/* Options of one attempt (a retry or a redirect starts over from here). */
static int configure(struct xfer *x)
{
    CURL *e = x->easy;
    curl_easy_reset(e);
    x->status = 0;
    x->headers_done = 0;
    x->headers.len = 0;
    x->resp.len = 0;
    x->body_pos = 0;
    x->errbuf[0] = '\0';
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->connect_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, x->stall_s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ctrlua/" CTRLUA_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    if (x->h->dump || x->h->trace) {
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, x);
    }
    if (x->ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, x->ca);
    if (x->cert)
        curl_easy_setopt(e, CURLOPT_SSLCERT, x->cert);
    if (x->key)
        curl_easy_setopt(e, CURLOPT_SSLKEY, x->key);
    if (x->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    for (size_t i = 0; i < x->nhdr; i++) {
        if (x->auth_dropped && strncasecmp(x->hdr[i], "authorization:", 14) == 0)
            continue;
        struct curl_slist *n = curl_slist_append(x->slist, x->hdr[i]);
        if (n == NULL)
            return -1;
        x->slist = n;
    }
    /* a 100-continue round trip per upload costs a second against some servers */
    x->slist = curl_slist_append(x->slist, "Expect:");
    if (x->ingest && x->ing.size > 0) {
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)x->ing.size);
        x->slist = curl_slist_append(x->slist, range);
    }
    if (x->slist == NULL)
        return -1;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->slist);
    const char *m = x->method;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (x->body_fd >= 0) {
        if (strcmp(m, "PUT") == 0) {
            curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_flen);
        } else {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_flen);
            if (strcmp(m, "POST") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        }
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
    } else if (x->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
               strcmp(m, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    return 0;
}

static int curl_errno(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return ECONNRESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY: return EPROTO;
    case CURLE_ABORTED_BY_CALLBACK: return ECANCELED;
    case CURLE_URL_MALFORMAT: return EINVAL;
    default: return EIO;
    }
}

static int retryable(struct xfer *x, CURLcode c)
{
    if (x->wfail || atomic_load(&x->cancel))
        return 0;
    if (c == CURLE_OK)
        return x->status == 429 || x->status == 500 || x->status == 502 || x->status == 503 ||
               x->status == 504;
    int e = curl_errno(c);
    return e == ECONNRESET || e == ETIMEDOUT;
}

static void trace_timings(struct xfer *x)
{
    curl_off_t dns = 0, conn = 0, tls = 0, ttfb = 0, total = 0, down = 0, up = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(x->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    char safe[2048], line[2600];
    ctr_http_redact_url(x->url, safe, sizeof safe);
    int n = snprintf(line, sizeof line,
                     "http[%d] * %s %s -> %ld: dns %.1f ms, connect %.1f ms, tls %.1f ms, "
                     "first byte %.1f ms, total %.1f ms, %lld bytes in, %lld out, attempt %d\n",
                     x->id, x->method, safe, x->status, dns / 1e3, conn / 1e3, tls / 1e3,
                     ttfb / 1e3, total / 1e3, (long long)down, (long long)up, x->attempts);
    if (n > 0)
        ctr_write_all(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void finish(struct ctr_http *h, struct xfer *x)
{
    pthread_mutex_lock(&h->mu);
    x->state = CTR_HTTP_DONE;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Start an attempt: configure and hand to the multi handle. */
static void launch(struct ctr_http *h, struct xfer *x)
{
    x->attempts++;
    if (x->easy == NULL)
        x->easy = curl_easy_init();
    if (x->easy == NULL || configure(x) < 0) {
        xfer_errorf(x, ENOMEM, "cannot set up the request");
        finish(h, x);
        return;
    }
    pthread_mutex_lock(&h->mu);
    x->state = CTR_HTTP_RUNNING;
    pthread_mutex_unlock(&h->mu);
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
        xfer_errorf(x, EIO, "curl_multi_add_handle failed");
        finish(h, x);
    }
}

static void completed(struct ctr_http *h, struct xfer *x, CURLcode c)
{
    curl_multi_remove_handle(h->multi, x->easy);
    if (h->trace)
        trace_timings(x);
    if (atomic_load(&x->cancel)) {
        if (!x->failed)
            xfer_errorf(x, ECANCELED, "cancelled");
        finish(h, x);
        return;
    }
    if (c == CURLE_OK && x->follow && x->status >= 300 && x->status < 400 && x->status != 304) {
        char *loc = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &loc);
        if (loc && *loc) {
            if (++x->redirects > 10) {
                xfer_errorf(x, ELOOP, "more than 10 redirects");
                finish(h, x);
                return;
            }
            char *next = strdup(loc);
            char *o = next ? origin_of(next) : NULL;
            if (next == NULL || o == NULL) {
                free(next);
                free(o);
                xfer_errorf(x, ENOMEM, "redirect");
                finish(h, x);
                return;
            }
            /* once another origin has been reached, credentials never come back */
            if (strcmp(o, x->origin) != 0)
                x->auth_dropped = 1;
            free(o);
            free(x->url);
            x->url = next;
            if (x->status == 303 && strcmp(x->method, "HEAD") != 0) {
                free(x->method);
                x->method = strdup("GET");
                free(x->body);
                x->body = NULL;
                x->body_len = 0;
                if (x->body_fd >= 0)
                    close(x->body_fd);
                x->body_fd = -1;
            }
            x->attempts--; /* a hop is not a retry */
            launch(h, x);
            return;
        }
    }
    if (retryable(x, c) && x->attempts < x->max_attempts) {
        double delay = (double)x->backoff_ms / 1000.0 * (double)(1 << (x->attempts - 1));
        if (x->retry_after > 0)
            delay = x->retry_after;
        if (delay > 10)
            delay = 10;
        x->due = mono() + delay;
        x->failed = 0;
        pthread_mutex_lock(&h->mu);
        x->state = CTR_HTTP_RETRYING;
        pthread_mutex_unlock(&h->mu);
        return;
    }
    if (c != CURLE_OK && !x->failed)
        xfer_errorf(x, curl_errno(c), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(c));
    finish(h, x);
}

static void *worker(void *arg)
{
    struct ctr_http *h = arg;
    for (;;) {
        /* start what is queued and what is due for a retry; drop what was cancelled */
        double now = mono(), next_due = 0;
        pthread_mutex_lock(&h->mu);
        if (h->stop) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        struct xfer *todo[64];
        size_t nt = 0;
        for (struct xfer *x = h->all; x; x = x->next) {
            if (x->state == CTR_HTTP_QUEUED || x->state == CTR_HTTP_RETRYING) {
                if (atomic_load(&x->cancel)) {
                    xfer_errorf(x, ECANCELED, "cancelled");
                    x->state = CTR_HTTP_DONE;
                    pthread_cond_broadcast(&h->cv);
                    continue;
                }
                if (x->state == CTR_HTTP_QUEUED || x->due <= now) {
                    if (nt < ARRAY_SIZE(todo)) {
                        todo[nt++] = x;
                        x->state = CTR_HTTP_RUNNING; /* claimed */
                    }
                } else if (next_due == 0 || x->due < next_due) {
                    next_due = x->due;
                }
            }
        }
        pthread_mutex_unlock(&h->mu);
        for (size_t i = 0; i < nt; i++) {
            struct xfer *x = todo[i];
            if (x->complete_already) {
                x->status = 200;
                finish(h, x);
            } else {
                launch(h, x);
            }
        }
        int running = 0;
        curl_multi_perform(h->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (x)
                completed(h, x, m->data.result);
        }
        int timeout = 500;
        if (next_due > 0) {
            int ms = (int)((next_due - mono()) * 1000) + 1;
            if (ms < timeout)
                timeout = ms < 1 ? 1 : ms;
        }
        /* cancellations are seen by the callbacks of running transfers; a stall is bounded by
         * the timeout above */
        curl_multi_poll(h->multi, NULL, 0, timeout, NULL);
    }
    return NULL;
}

int ctr_http_new(const struct ctr_http_opts *o, struct ctr_http **out, struct ctr_err *err)
{
    pthread_once(&curl_once, load_curl);
    if (curl_api.error)
        return ctr_fail(err, ELIBACC, "cannot load %s: %s", CTR_LIBCURL_SONAME, curl_api.error);
    struct ctr_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ctr_fail(err, ENOMEM, "http session");
    h->dump = o ? o->dump : 0;
    h->trace = o ? o->trace : 0;
    h->next_id = 1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        ctr_http_free(h);
        return ctr_fail(err, ENOMEM, "curl_multi_init failed");
    }
    int e = pthread_create(&h->thread, NULL, worker, h);
    if (e != 0) {
        ctr_http_free(h);
        return ctr_fail(err, e, "http session: pthread_create");
    }
    h->started = 1;
    *out = h;
    return 0;
}

void ctr_http_free(struct ctr_http *h)
{
    if (h == NULL)
        return;
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stop = 1;
        for (struct xfer *x = h->all; x; x = x->next)
            atomic_store(&x->cancel, 1);
        pthread_mutex_unlock(&h->mu);
        curl_multi_wakeup(h->multi);
        pthread_join(h->thread, NULL);
    }
    struct xfer *x = h->all;
    while (x) {
        struct xfer *n = x->next;
        if (x->easy) {
            curl_multi_remove_handle(h->multi, x->easy);
            curl_easy_cleanup(x->easy);
        }
        curl_slist_free_all(x->slist);
        xfer_free(x);
        x = n;
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int ctr_http_start(struct ctr_http *h, const struct ctr_http_req *r, int *id, struct ctr_err *err)
{
    if (r->method == NULL || r->url == NULL)
        return ctr_fail(err, EINVAL, "http request: method and url are required");
    if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0) {
        char safe[2048];
        ctr_http_redact_url(r->url, safe, sizeof safe);
        return ctr_fail(err, EINVAL, "%s %s: only http and https URLs are fetched", r->method, safe);
    }
    struct xfer *x = calloc(1, sizeof *x);
    if (x == NULL)
        return ctr_fail(err, ENOMEM, "http request");
    x->h = h;
    x->body_fd = -1;
    x->size = -1;
    atomic_init(&x->total, -1);
    atomic_init(&x->done, 0);
    atomic_init(&x->cancel, 0);
    x->method = strdup(r->method);
    x->url = strdup(r->url);
    x->origin = origin_of(r->url);
    x->max_body = r->max_body ? r->max_body : 4 * 1024 * 1024;
    x->connect_ms = r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 30000;
    x->stall_s = r->stall_timeout_s > 0 ? r->stall_timeout_s : 60;
    x->max_attempts = r->max_attempts > 0 ? r->max_attempts : 4;
    x->backoff_ms = r->backoff_ms > 0 ? r->backoff_ms : 250;
    x->follow = !r->no_redirects;
    x->insecure = r->insecure;
    x->ca = dup_or_null(r->ca_file);
    x->cert = dup_or_null(r->cert_file);
    x->key = dup_or_null(r->key_file);
    if (x->method == NULL || x->url == NULL || x->origin == NULL)
        goto nomem;
    if (r->nheaders) {
        x->hdr = calloc(r->nheaders, sizeof *x->hdr);
        if (x->hdr == NULL)
            goto nomem;
        for (size_t i = 0; i < r->nheaders; i++) {
            if (strpbrk(r->headers[i], "\r\n")) {
                xfer_free(x);
                return ctr_fail(err, EINVAL, "http request: a header with a line break");
            }
            if ((x->hdr[i] = strdup(r->headers[i])) == NULL)
                goto nomem;
            x->nhdr++;
        }
    }
    if (r->body) {
        x->body = malloc(r->body_len + 1);
        if (x->body == NULL)
            goto nomem;
        memcpy(x->body, r->body, r->body_len);
        x->body_len = r->body_len;
    } else if (r->body_file) {
        x->body_fd = RETRY(open(r->body_file, O_RDONLY | O_CLOEXEC));
        if (x->body_fd < 0) {
            int e = errno;
            xfer_free(x);
            return ctr_fail(err, e, "open `%s'", r->body_file);
        }
        x->body_off = r->body_offset;
        x->body_flen = r->body_length;
        atomic_store(&x->total, r->body_length);
    }
    if (r->ingest_content) {
        if (r->digest && ctr_digest_check(r->digest, err) < 0) {
            xfer_free(x);
            return -1;
        }
        snprintf(x->digest, sizeof x->digest, "%s", r->digest ? r->digest : "");
        x->size = r->size;
        if (ctr_ingest_resume(&x->ing, r->ingest_content, r->ingest_ref ? r->ingest_ref : "http",
                              r->size, err) < 0) {
            xfer_free(x);
            return -1;
        }
        x->ingest = 1;
        x->resumed = x->ing.size;
        atomic_store(&x->done, x->ing.size);
        if (r->size >= 0)
            atomic_store(&x->total, r->size);
        if (r->size >= 0 && x->ing.size == (uint64_t)r->size && r->size > 0)
            x->complete_already = 1;
    }
    pthread_mutex_lock(&h->mu);
    x->id = h->next_id++;
    x->state = CTR_HTTP_QUEUED;
    x->next = h->all;
    h->all = x;
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    *id = x->id;
    return 0;
nomem:
    xfer_free(x);
    return ctr_fail(err, ENOMEM, "http request");
}

static struct xfer *find(struct ctr_http *h, int id)
{
    for (struct xfer *x = h->all; x; x = x->next)
        if (x->id == id)
            return x;
    return NULL;
}

int ctr_http_wait(struct ctr_http *h, int timeout_ms, int *ids, int max)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        for (struct xfer *x = h->all; x && n < max; x = x->next)
            if (x->state == CTR_HTTP_DONE && !x->reported) {
                x->reported = 1;
                ids[n++] = x->id;
            }
        if (n > 0 || timeout_ms <= 0)
            break;
        if (pthread_cond_timedwait(&h->cv, &h->mu, &dl) == ETIMEDOUT)
            timeout_ms = 0; /* one last look */
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

int ctr_http_progress(struct ctr_http *h, int id, uint64_t *done, int64_t *total, int *state)
{
    pthread_mutex_lock(&h->mu);
    struct xfer *x = find(h, id);
    if (x) {
        *done = atomic_load(&x->done);
        *total = atomic_load(&x->total);
        *state = x->state;
    }
    pthread_mutex_unlock(&h->mu);
    return x ? 0 : -1;
}

const char *ctr_http_ingest_path(struct ctr_http *h, int id)
{
    pthread_mutex_lock(&h->mu);
    struct xfer *x = find(h, id);
    const char *p = x && x->ingest ? x->ing.path : NULL;
    pthread_mutex_unlock(&h->mu);
    return p;
}

int ctr_http_cancel(struct ctr_http *h, int id)
{
    pthread_mutex_lock(&h->mu);
    struct xfer *x = find(h, id);
    if (x)
        atomic_store(&x->cancel, 1);
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    return x ? 0 : -1;
}

void ctr_http_result_free(struct ctr_http_result *res)
{
    free(res->headers);
    free(res->body);
    free(res->url);
    memset(res, 0, sizeof *res);
}

int ctr_http_take(struct ctr_http *h, int id, struct ctr_http_result *res, struct ctr_err *err)
{
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&h->mu);
    struct xfer **pp = &h->all, *x = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            x = *pp;
            break;
        }
    if (x == NULL) {
        pthread_mutex_unlock(&h->mu);
        return ctr_fail(err, ENOENT, "http transfer %d: no such transfer", id);
    }
    if (x->state != CTR_HTTP_DONE) {
        pthread_mutex_unlock(&h->mu);
        return ctr_fail(err, EAGAIN, "http transfer %d: still running", id);
    }
    *pp = x->next;
    pthread_mutex_unlock(&h->mu);
    /* the worker is done with it: its handle can go */
    if (x->easy)
        curl_easy_cleanup(x->easy);
    x->easy = NULL;
    curl_slist_free_all(x->slist);
    x->slist = NULL;
    int r = 0;
    if (x->failed) {
        *err = x->err;
        r = -1;
    } else if (x->ingest && x->status >= 200 && x->status < 300) {
        char got[CTR_DIGEST_LEN];
        uint64_t size = 0;
        if (ctr_ingest_commit(&x->ing, x->digest[0] ? x->digest : NULL, x->size, got, &size,
                              err) < 0) {
            if (err->code == 0)
                err->code = EBADMSG;
            char safe[2048];
            ctr_http_redact_url(x->url, safe, sizeof safe);
            ctr_fail_prefix(err, "%s %s", x->method, safe);
            r = -1;
        } else {
            memcpy(res->digest, got, CTR_DIGEST_LEN);
            res->size = size;
        }
        x->ingest = 0; /* committed or removed by the commit */
    }
    if (r == 0) {
        res->status = x->status;
        res->headers = steal_pointer(&x->headers.p);
        res->headers_len = x->headers.len;
        res->body = steal_pointer(&x->resp.p);
        res->body_len = x->resp.len;
        res->url = steal_pointer(&x->url);
        res->attempts = x->attempts;
        res->redirects = x->redirects;
        res->resumed = x->resumed;
    }
    xfer_free(x);
    return r;
}
