/* What a dump or a trace of the transfer layer (net/http.c) may print of a request: URLs
 * and header lines with their credentials taken out; and the growable buffer the layer
 * collects headers, bodies and dump lines in. */
#ifndef CTR_NET_REDACT_H
#define CTR_NET_REDACT_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct ctr_buf {
    char *p;
    size_t len, cap;
};

/* Append; 1 when the cap stopped it (the buffer keeps what fitted), -1 on ENOMEM. */
static inline int ctr_buf_add(struct ctr_buf *b, const char *s, size_t n, size_t cap)
{
    int over = 0;
    if (b->len + n > cap) {
        n = cap > b->len ? cap - b->len : 0;
        over = 1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return over;
}

static inline void ctr_buf_free(struct ctr_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* One header line (or a request line) made safe to print, appended to out with a newline:
 * secrets of Authorization-like headers replaced (the scheme kept, so "Bearer" vs "Basic"
 * still shows), URLs in Location and request lines redacted (ctr_http_redact_url). */
void ctr_http_redact_header(const char *line, size_t n, struct ctr_buf *out);

#endif
