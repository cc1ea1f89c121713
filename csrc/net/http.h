/* HTTP transfers for the registry client: many at once, on a worker thread of their own.
 *
 * A session (struct ctr_http) owns one thread running a curl multi handle; the caller queues
 * requests (ctr_http_start), polls how far each has come (ctr_http_progress) and waits for
 * finished ones (ctr_http_wait), then takes each result (ctr_http_take).  No callback of the
 * caller ever runs on the worker: the caller only reads counters and finished results, so a
 * Lua state above never sees another thread.
 *
 * What the layer does on its own, because every request of a registry client needs it and none
 * of it is protocol policy:
 * - A download into the content store: the body streams into an ingest (store/content.h), hashed as
 *   it arrives; the caller's take verifies digest and size and commits it.  A partial ingest
 *   left by an earlier, interrupted transfer is resumed with `Range: bytes=N-` (a server that
 *   ignores the range answers 200: the bytes already there are skipped, not rewritten).
 * - Retries with exponential backoff (honouring Retry-After) on 429, 5xx and connections
 *   reset or stalled; a download retried goes on from the bytes it has.  A refused connection
 *   is not retried: the caller falls back to its next mirror at once.
 * - Redirects, at most 10, resolved against the current URL; Authorization is dropped as soon
 *   as a hop leaves the origin (scheme, host, port) of the request, and never put back.
 * - Bounded time: a connect timeout and a stall timeout (no byte for N seconds).
 * - Dumps (request and response headers) and traces (connections, TLS, timings) on stderr,
 *   with Authorization, cookies and token-like query values redacted.
 *
 * Errors name the method and the URL without credentials (no user info, no token-like query
 * values) and carry an errno (ECONNREFUSED, ETIMEDOUT, ECONNRESET, EPROTO for TLS, EFBIG for a
 * body over its cap or a blob over its size, EBADMSG for a digest that does not match,
 * ELOOP for too many redirects, ECANCELED).
 *
 * libcurl is not linked: it is loaded by soname the first time a session is made, so commands
 * that never touch the network never map it (see base/lazylib.h for why).
 */
#ifndef CTR_HTTP_H
#define CTR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "store/content.h"
#include "base/error.h"

struct ctr_http;

struct ctr_http_opts {
    int dump;  /* headers of every request and response on stderr, secrets redacted */
    int trace; /* and connection events and timings */
};

int ctr_http_new(const struct ctr_http_opts *o, struct ctr_http **out, struct ctr_err *err);
/* Cancels what still runs, stops the worker, frees every transfer not taken. */
void ctr_http_free(struct ctr_http *h);

struct ctr_http_req {
    const char *method;            /* GET HEAD POST PUT PATCH DELETE */
    const char *url;
    const char *const *headers;    /* "Name: value" lines */
    size_t nheaders;
    const char *body;              /* an in-memory request body (copied), or NULL */
    size_t body_len;
    const char *body_file;         /* or a range of a file: body_offset, body_length */
    int64_t body_offset;
    int64_t body_length;
    size_t max_body;               /* cap of an in-memory response body (0: 4 MiB) */
    /* a download into the content store (ingest_content != NULL) */
    const char *ingest_content;    /* ROOT/content */
    const char *ingest_ref;        /* the ingest's name: the same ref resumes */
    const char *digest;            /* expected, checked by take */
    int64_t size;                  /* expected, or -1 */
    /* TLS */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int insecure;                  /* skip verification of the server's certificate */
    /* limits */
    long connect_timeout_ms;       /* 0: 30 s */
    long stall_timeout_s;          /* 0: 60 s */
    int max_attempts;              /* 0: 4 */
    long backoff_ms;               /* first retry's delay; 0: 250 ms */
    int no_redirects;              /* return a 3xx as it is */
};

enum ctr_http_state { CTR_HTTP_QUEUED, CTR_HTTP_RUNNING, CTR_HTTP_RETRYING, CTR_HTTP_DONE };

/* Queue a request; *id names it until taken.  A download's ingest is opened (and a partial
 * one rehashed) here, in the caller's thread. */
int ctr_http_start(struct ctr_http *h, const struct ctr_http_req *r, int *id, struct ctr_err *err);

/* Wait up to timeout_ms for finished transfers not yet reported: up to max of their ids into
 * ids; returns how many (0 on timeout). */
int ctr_http_wait(struct ctr_http *h, int timeout_ms, int *ids, int max);

/* Bytes so far (a download: bytes in the ingest, resumed ones included; an upload: bytes
 * sent) and the total when known (-1 otherwise), and the state.  -1 for an unknown id. */
int ctr_http_progress(struct ctr_http *h, int id, uint64_t *done, int64_t *total, int *state);

struct ctr_http_result {
    long status;            /* the last response's status (0 when none came) */
    char *headers;          /* the last response's header block, as received */
    size_t headers_len;
    char *body;             /* an in-memory body (error bodies of downloads too, capped) */
    size_t body_len;
    char *url;              /* the URL of the last hop */
    int attempts;
    int redirects;
    uint64_t resumed;       /* bytes of a download that were there before */
    char digest[CTR_DIGEST_LEN]; /* a committed download's digest ("" otherwise) */
    uint64_t size;
};

/* Take a finished transfer: 0 and *res filled (free with ctr_http_result_free), or -1 when
 * it failed (transport error, or a download that does not verify: nothing is committed).  A
 * download answered 2xx is committed here, in the caller's thread (fsync and rename).  The
 * id is gone afterwards either way.  -1 with EAGAIN while it still runs. */
int ctr_http_take(struct ctr_http *h, int id, struct ctr_http_result *res, struct ctr_err *err);
void ctr_http_result_free(struct ctr_http_result *res);

/* Stop a transfer (its ingest is kept for a later resume); take then fails with ECANCELED. */
int ctr_http_cancel(struct ctr_http *h, int id);

/* The ingest path of a running download (for a reader that follows it), or NULL. */
const char *ctr_http_ingest_path(struct ctr_http *h, int id);

/* url without user info and with token-like query values replaced (for messages). */
void ctr_http_redact_url(const char *url, char *out, size_t outlen);

#endif
