/* Credentials out of what the transfer layer prints (see net/redact.h). */
#include "net/redact.h"

#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include "base/cleanup.h"
#include "net/http.h"

static int sensitive_key(const char *k, size_t n)
{
    static const char *words[] = { "token", "sig", "credential", "password", "secret", "key",
                                   "auth", "session" };
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        size_t w = strlen(words[i]);
        for (size_t j = 0; j + w <= n; j++)
            if (strncasecmp(k + j, words[i], w) == 0)
                return 1;
    }
    return 0;
}

void ctr_http_redact_url(const char *url, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t o = 0;
#define PUT(c)                                                                                 \
    do {                                                                                       \
        if (o + 1 < outlen)                                                                    \
            out[o++] = (c);                                                                    \
    } while (0)
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        for (; p < scheme + 3; p++)
            PUT(*p);
        /* user info: everything up to an '@' before the first '/', '?' or '#' */
        const char *end = p + strcspn(p, "/?#");
        const char *at = memchr(p, '@', (size_t)(end - p));
        if (at)
            p = at + 1;
    }
    for (; *p && *p != '?'; p++)
        PUT(*p);
    if (*p == '?') {
        PUT('?');
        p++;
        while (*p && *p != '#') {
            size_t n = strcspn(p, "&#");
            const char *eq = memchr(p, '=', n);
            if (eq && sensitive_key(p, (size_t)(eq - p))) {
                for (const char *q = p; q <= eq; q++)
                    PUT(*q);
                for (const char *r = "REDACTED"; *r; r++)
                    PUT(*r);
            } else {
                for (size_t i = 0; i < n; i++)
                    PUT(p[i]);
            }
            p += n;
            if (*p == '&') {
                PUT('&');
                p++;
            }
        }
    }
    out[o] = '\0';
#undef PUT
}

void ctr_http_redact_header(const char *line, size_t n, struct ctr_buf *out)
{
    static const char *secret[] = { "authorization", "proxy-authorization", "cookie",
                                    "set-cookie", "x-registry-auth" };
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    const char *colon = memchr(line, ':', n);
    if (colon) {
        size_t kn = (size_t)(colon - line);
        for (size_t i = 0; i < ARRAY_SIZE(secret); i++) {
            if (kn == strlen(secret[i]) && strncasecmp(line, secret[i], kn) == 0) {
                ctr_buf_add(out, line, kn + 1, SIZE_MAX);
                const char *v = colon + 1;
                while (v < line + n && *v == ' ')
                    v++;
                const char *sp = memchr(v, ' ', (size_t)(line + n - v));
                ctr_buf_add(out, " ", 1, SIZE_MAX);
                if (sp && i < 2)
                    ctr_buf_add(out, v, (size_t)(sp - v + 1), SIZE_MAX);
                ctr_buf_add(out, "[redacted]\n", 11, SIZE_MAX);
                return;
            }
        }
        if (kn == 8 && strncasecmp(line, "location", 8) == 0) {
            char url[4096], safe[4096];
            const char *v = colon + 1;
            while (v < line + n && *v == ' ')
                v++;
            snprintf(url, sizeof url, "%.*s", (int)(line + n - v), v);
            ctr_http_redact_url(url, safe, sizeof safe);
            ctr_buf_add(out, line, kn + 2, SIZE_MAX);
            ctr_buf_add(out, safe, strlen(safe), SIZE_MAX);
            ctr_buf_add(out, "\n", 1, SIZE_MAX);
            return;
        }
    } else {
        /* a request line: METHOD SP URL SP VERSION */
        const char *sp1 = memchr(line, ' ', n);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1)) : NULL;
        if (sp1 && sp2 && strncmp(line, "HTTP/", 5) != 0) {
            char url[4096], safe[4096];
            snprintf(url, sizeof url, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
            ctr_http_redact_url(url, safe, sizeof safe);
            ctr_buf_add(out, line, (size_t)(sp1 - line + 1), SIZE_MAX);
            ctr_buf_add(out, safe, strlen(safe), SIZE_MAX);
            ctr_buf_add(out, sp2, (size_t)(line + n - sp2), SIZE_MAX);
            ctr_buf_add(out, "\n", 1, SIZE_MAX);
            return;
        }
    }
    ctr_buf_add(out, line, n, SIZE_MAX);
    ctr_buf_add(out, "\n", 1, SIZE_MAX);
}
