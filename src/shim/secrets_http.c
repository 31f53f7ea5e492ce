/* secrets_http.c — the secrets proxy's request rewriter (secrets_http.h; docs/security.md,
 * Secrets): requests parsed by libhttp-parser, each forwarded with the placeholders of the
 * secrets that may go to its destination replaced, in the request target, the headers and
 * the body. A Content-Length body of at most SX_BODY_MAX is held and sent with its new
 * length; a chunked one, a larger one or one sent after `Expect: 100-continue` is
 * substituted as it streams (a placeholder split across reads is carried over, at most
 * BL_SECRET_PH_MAX - 1 bytes) and sent chunked. Memory per stream is fixed, plus one held
 * body. */
#include "secrets_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int sx_wants(const struct bl_secret *sec, size_t nsec, const char *host, uint16_t port)
{
    for (size_t i = 0; i < nsec; i++)
        if (bl_secret_applies(&sec[i], host, port))
            return 1;
    return 0;
}

/* The secret whose placeholder starts at in[0..len) whole (*plen its length), or NULL. */
static const struct bl_secret *match(const struct sx *x, const char *in, size_t len, size_t *plen)
{
    for (size_t k = 0; x->substitute && k < x->nsec; k++) {
        const struct bl_secret *sc = &x->sec[k];
        size_t n = strlen(sc->placeholder);
        if (n <= len && memcmp(in, sc->placeholder, n) == 0 &&
            bl_secret_applies(sc, x->host, x->port)) {
            *plen = n;
            return sc;
        }
    }
    return NULL;
}

/* 1 when in[0..len) is the start (not the whole) of a placeholder that may be replaced. */
static int starts_one(const struct sx *x, const char *in, size_t len)
{
    for (size_t k = 0; x->substitute && k < x->nsec; k++) {
        const struct bl_secret *sc = &x->sec[k];
        if (strlen(sc->placeholder) > len && memcmp(in, sc->placeholder, len) == 0 &&
            bl_secret_applies(sc, x->host, x->port))
            return 1;
    }
    return 0;
}

/* Append in[0..len) to out (at *olen, at most cap bytes in all; out NULL: only count) with
 * each placeholder replaced. -1 when it does not fit. */
static int subst(const struct sx *x, char *out, size_t *olen, size_t cap, const char *in,
                 size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t plen = 0;
        const struct bl_secret *sc = match(x, in + i, len - i, &plen);
        const char *src = sc ? sc->value : in + i;
        size_t n = sc ? strlen(sc->value) : 1;
        if (*olen + n > cap)
            return -1;
        if (out)
            memcpy(out + *olen, src, n);
        *olen += n;
        i += sc ? plen : 1;
    }
    return 0;
}

static int put(char *out, size_t *olen, const char *s)
{
    size_t n = strlen(s);

    if (*olen + n > SX_OUT_MAX)
        return -1;
    memcpy(out + *olen, s, n);
    *olen += n;
    return 0;
}

static int put_subst(const struct sx *x, char *out, size_t *olen, const char *in, size_t len)
{
    return subst(x, out, olen, SX_OUT_MAX, in, len);
}

/* ---- a streamed body: substituted piece by piece, sent in chunks ---- */

static int send_chunk(struct sx *x, const char *buf, size_t len)
{
    char size[24];

    if (len == 0)
        return 0;
    snprintf(size, sizeof(size), "%zx\r\n", len);
    if (x->send(x->ctx, size, strlen(size)) != 0 || x->send(x->ctx, buf, len) != 0 ||
        x->send(x->ctx, "\r\n", 2) != 0)
        return -1;
    return 0;
}

static int ob_flush(struct sx *x)
{
    int rc = send_chunk(x, x->ob, x->ob_len);

    memset(x->ob, 0, x->ob_len); /* it may hold real values */
    x->ob_len = 0;
    return rc;
}

static int ob_put(struct sx *x, const char *src, size_t n)
{
    if (x->ob_len + n > SX_CHUNK && ob_flush(x) != 0)
        return -1;
    if (n > sizeof(x->ob)) /* a value longer than create allows (a damaged file): as is */
        return send_chunk(x, src, n);
    memcpy(x->ob + x->ob_len, src, n);
    x->ob_len += n;
    return 0;
}

/* Substitute work[0..len) (the carry-over, then new bytes) into ob; unless last, keep a tail
 * that may begin a placeholder as the next carry-over. */
static int stream_work(struct sx *x, const char *work, size_t len, int last)
{
    size_t i = 0;

    x->carry_len = 0;
    while (i < len) {
        size_t plen = 0;
        const struct bl_secret *sc = match(x, work + i, len - i, &plen);
        if (sc) {
            if (ob_put(x, sc->value, strlen(sc->value)) != 0)
                return -1;
            i += plen;
            continue;
        }
        if (!last && len - i < sizeof(x->carry) && starts_one(x, work + i, len - i)) {
            memcpy(x->carry, work + i, len - i);
            x->carry_len = len - i;
            return 0;
        }
        if (ob_put(x, work + i, 1) != 0)
            return -1;
        i++;
    }
    return 0;
}

/* New body bytes at[0..len): with the carry-over, in steps of at most SX_CHUNK. */
static int stream_body(struct sx *x, const char *at, size_t len, int last)
{
    char work[sizeof(x->carry) + SX_CHUNK];
    int rc = 0;

    do {
        size_t n = len < SX_CHUNK ? len : SX_CHUNK, c = x->carry_len;
        memcpy(work, x->carry, c);
        memcpy(work + c, at, n);
        at += n;
        len -= n;
        rc = stream_work(x, work, c + n, last && len == 0);
    } while (rc == 0 && len > 0);
    memset(work, 0, sizeof(work));
    return rc;
}

/* ---- the parser's callbacks: a request head collected, then forwarded rewritten ---- */

static int on_begin(http_parser *p)
{
    struct sx *x = p->data;

    x->url_len = x->hb_len = x->nh = 0;
    x->in_value = x->chunked = x->stream = 0;
    x->carry_len = x->ob_len = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct sx *x = p->data;

    if (x->url_len + len >= sizeof(x->url))
        return 1;
    memcpy(x->url + x->url_len, at, len);
    x->url_len += len;
    x->url[x->url_len] = '\0';
    return 0;
}

static int append(struct sx *x, const char *at, size_t len)
{
    if (x->hb_len + len > sizeof(x->hb))
        return 1;
    memcpy(x->hb + x->hb_len, at, len);
    x->hb_len += len;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct sx *x = p->data;

    if (x->in_value || x->nh == 0) {
        if (x->nh >= SX_HDRS_MAX)
            return 1;
        x->h[x->nh++] = (struct sx_hdr){x->hb_len, 0, x->hb_len, 0};
        x->in_value = 0;
    }
    x->h[x->nh - 1].f_len += len;
    x->h[x->nh - 1].v_off = x->hb_len + len;
    return append(x, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct sx *x = p->data;

    if (x->nh == 0)
        return 1;
    x->in_value = 1;
    x->h[x->nh - 1].v_len += len;
    return append(x, at, len);
}

static int field_is(const struct sx *x, const struct sx_hdr *h, const char *name)
{
    return h->f_len == strlen(name) && strncasecmp(x->hb + h->f_off, name, h->f_len) == 0;
}

static int has_field(const struct sx *x, const char *name)
{
    for (size_t i = 0; i < x->nh; i++)
        if (field_is(x, &x->h[i], name))
            return 1;
    return 0;
}

/* CONNECT host:port, or an absolute http:// URL: x->host and x->port. */
static int target_of(struct sx *x, int is_connect)
{
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (http_parser_parse_url(x->url, x->url_len, is_connect, &u) != 0 ||
        !(u.field_set & (1 << UF_HOST)) || u.field_data[UF_HOST].len >= sizeof(x->host))
        return -1;
    if (!is_connect && (!(u.field_set & (1 << UF_SCHEMA)) || u.field_data[UF_SCHEMA].len != 4 ||
                        strncasecmp(x->url + u.field_data[UF_SCHEMA].off, "http", 4) != 0))
        return -1;
    memcpy(x->host, x->url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    x->host[u.field_data[UF_HOST].len] = '\0';
    x->port = u.field_set & (1 << UF_PORT) ? u.port : 80;
    return 0;
}

/* The request line: placeholders replaced, an absolute URL made a path. */
static int put_line(struct sx *x, char *o, size_t *olen)
{
    size_t path_off = 0;
    struct http_parser_url u;
    char line[64];
    int rc = 0, root = 0;

    if (!x->tls) { /* a proxy request: GET http://host/path → GET /path */
        http_parser_url_init(&u);
        rc = http_parser_parse_url(x->url, x->url_len, 0, &u) == 0 ? 0 : -1;
        root = !(u.field_set & (1 << UF_PATH)) && !(u.field_set & (1 << UF_QUERY));
        path_off = u.field_set & (1 << UF_PATH)    ? u.field_data[UF_PATH].off
                   : u.field_set & (1 << UF_QUERY) ? (size_t)u.field_data[UF_QUERY].off - 1
                                                   : x->url_len;
    }
    if (rc == 0)
        rc = put(o, olen, http_method_str((enum http_method)x->p.method));
    if (rc == 0)
        rc = put(o, olen, root ? " /" : " ");
    if (rc == 0 && !root && !x->tls && x->url[path_off] == '?')
        rc = put(o, olen, "/");
    if (rc == 0)
        rc = put_subst(x, o, olen, x->url + path_off, x->url_len - path_off);
    snprintf(line, sizeof(line), " HTTP/%u.%u\r\n", x->p.http_major, x->p.http_minor);
    return rc == 0 ? put(o, olen, line) : rc;
}

/* The request's head as it goes on. clen >= 0: that Content-Length; clen == -2: the body is
 * streamed chunked in place of its Content-Length. */
static int send_head(struct sx *x, long long clen)
{
    char *o = malloc(SX_OUT_MAX), line[64];
    size_t olen = 0;
    int rc = o ? put_line(x, o, &olen) : -1;

    for (size_t i = 0; rc == 0 && i < x->nh; i++) {
        const struct sx_hdr *h = &x->h[i];
        if (field_is(x, h, "proxy-connection") || field_is(x, h, "proxy-authorization"))
            continue;
        if (clen != -1 && field_is(x, h, "content-length")) {
            if (clen == -2)
                snprintf(line, sizeof(line), "Transfer-Encoding: chunked\r\n");
            else
                snprintf(line, sizeof(line), "Content-Length: %lld\r\n", clen);
            rc = put(o, &olen, line);
            continue;
        }
        rc = put_subst(x, o, &olen, x->hb + h->f_off, h->f_len);
        if (rc == 0)
            rc = put(o, &olen, ": ");
        if (rc == 0)
            rc = put_subst(x, o, &olen, x->hb + h->v_off, h->v_len);
        if (rc == 0)
            rc = put(o, &olen, "\r\n");
    }
    if (rc == 0)
        rc = put(o, &olen, "\r\n");
    if (rc == 0)
        rc = x->send(x->ctx, o, olen);
    if (o)
        memset(o, 0, olen); /* it held the real values */
    free(o);
    return rc;
}

/* The held body, substituted, after its head with the new length. */
static int send_held(struct sx *x)
{
    size_t need = 0, len = 0;
    char *out = NULL;
    int rc = subst(x, NULL, &need, SIZE_MAX, x->body, x->body_len);

    out = rc == 0 ? malloc(need ? need : 1) : NULL;
    rc = out ? subst(x, out, &len, need, x->body, x->body_len) : -1;
    if (rc == 0)
        rc = send_head(x, (long long)len);
    if (rc == 0 && len)
        rc = x->send(x->ctx, out, len);
    if (out)
        memset(out, 0, len);
    free(out);
    memset(x->body, 0, x->body_len);
    free(x->body);
    x->body = NULL;
    x->body_len = x->body_want = 0;
    return rc;
}

static int fail(struct sx *x)
{
    x->failed = 1;
    return -1;
}

/* How the body goes on once the head is complete: held, streamed (substituted), or as it
 * comes; the head is sent now unless held. */
static int plan_body(struct sx *x)
{
    const http_parser *p = &x->p;
    int has_len = (p->flags & F_CONTENTLENGTH) && p->content_length > 0;
    int http11 = p->http_major == 1 && p->http_minor >= 1;

    x->chunked = (p->flags & F_CHUNKED) != 0;
    if (x->substitute && has_len && !x->chunked && p->content_length <= SX_BODY_MAX &&
        !has_field(x, "expect")) { /* the head goes with the body, once it is all here */
        x->body_want = (size_t)p->content_length;
        x->body_len = 0;
        x->body = malloc(x->body_want);
        return x->body ? 0 : fail(x);
    }
    if (x->substitute && (x->chunked || (has_len && http11))) {
        x->stream = 1;
        if (!x->chunked) { /* its length changes: it goes on chunked */
            x->chunked = 1;
            return send_head(x, -2) == 0 ? 0 : fail(x);
        }
    }
    return send_head(x, -1) == 0 ? 0 : fail(x);
}

static int on_headers(http_parser *p)
{
    struct sx *x = p->data;
    char host[sizeof(x->host)];
    uint16_t port = x->port;

    if (p->method == HTTP_CONNECT) {
        if (x->routed || x->tls || target_of(x, 1) != 0)
            return fail(x);
        x->tunnel = 1;
        return 0;
    }
    if (!x->tls) { /* plain HTTP through the proxy: one upstream per connection */
        snprintf(host, sizeof(host), "%s", x->host);
        if (target_of(x, 0) != 0 || (x->routed && (strcmp(host, x->host) != 0 || port != x->port)))
            return fail(x);
        x->substitute = sx_wants(x->sec, x->nsec, x->host, x->port);
        if (!x->routed && x->route(x->ctx, x) != 0)
            return fail(x);
        x->routed = 1;
    }
    return plan_body(x);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sx *x = p->data;

    if (x->tunnel && !x->tls)
        return 0;
    if (x->body) {
        if (len > x->body_want - x->body_len)
            return fail(x);
        memcpy(x->body + x->body_len, at, len);
        x->body_len += len;
        return 0;
    }
    if (x->stream)
        return stream_body(x, at, len, 0) == 0 ? 0 : fail(x);
    if (x->chunked)
        return send_chunk(x, at, len) == 0 ? 0 : fail(x);
    return x->send(x->ctx, at, len) == 0 ? 0 : fail(x);
}

static int on_complete(http_parser *p)
{
    struct sx *x = p->data;

    if (x->body && send_held(x) != 0)
        return fail(x);
    if (x->stream && (stream_body(x, "", 0, 1) != 0 || ob_flush(x) != 0))
        return fail(x);
    if (x->chunked && x->send(x->ctx, "0\r\n\r\n", 5) != 0)
        return fail(x);
    x->stream = x->chunked = 0;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void sx_init(struct sx *x)
{
    http_parser_init(&x->p, HTTP_REQUEST);
    x->p.data = x;
    x->tunnel = x->failed = x->chunked = x->stream = 0;
    x->carry_len = x->ob_len = 0;
}

size_t sx_feed(struct sx *x, const char *buf, size_t n)
{
    return http_parser_execute(&x->p, &settings, buf, n);
}

int sx_failed(const struct sx *x)
{
    return x->failed || HTTP_PARSER_ERRNO(&x->p) != HPE_OK;
}

void sx_clear(struct sx *x)
{
    if (x->body)
        memset(x->body, 0, x->body_len);
    free(x->body);
    x->body = NULL;
    x->body_len = x->body_want = 0;
    memset(x->carry, 0, sizeof(x->carry));
    memset(x->ob, 0, sizeof(x->ob));
    x->carry_len = x->ob_len = 0;
}
