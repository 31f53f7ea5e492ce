/* test_secrets_http.c — the secrets proxy's request rewriter (src/shim/secrets_http.c) on
 * requests as data, each fed whole, a byte at a time and split at every offset: placeholders
 * replaced only for the destination's secrets (never for what Host: says), in the line, the
 * headers and Content-Length, chunked, large and `Expect: 100-continue` bodies (a placeholder
 * straddling reads and chunks), the new framing, and the bounds. The output is parsed back
 * with libhttp-parser. */
#include "secrets_http.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define A_PH "<BOXLITE_SECRET:A>"
#define A_V  "value-of-A-which-is-longer-than-its-placeholder"
#define B_PH "<BOXLITE_SECRET:B>"

struct buf {
    char *d;
    size_t len, cap;
};

static int grow(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return -1;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    return 0;
}

static int sink(void *ctx, const void *p, size_t n)
{
    return grow(ctx, p, n);
}

static char routed[300];
static int route(void *ctx, struct sx *x)
{
    snprintf(routed, sizeof(routed), "%s:%u", x->host, x->port);
    return 0;
}

static struct bl_secret *sec;
static size_t nsec;

/* Run req through a fresh rewriter for host:port (tls: as inside an intercepted CONNECT),
 * fed in pieces of step bytes (0: whole; split > 0: in two at that offset). 0 on success
 * with the output in *out, -1 when the rewriter failed. */
static int rewrite(struct buf *out, const char *host, int tls, const char *req, size_t len,
                   size_t step, size_t split)
{
    struct sx *x = calloc(1, sizeof(*x));
    int rc = 0;

    out->len = 0;
    *x = (struct sx){.sec = sec,
                     .nsec = nsec,
                     .send = sink,
                     .route = route,
                     .ctx = out,
                     .tls = tls,
                     .port = 443};
    snprintf(x->host, sizeof(x->host), "%s", host);
    x->substitute = tls && sx_wants(sec, nsec, host, 443);
    sx_init(x);
    for (size_t off = 0; rc == 0 && off < len;) {
        size_t n = split ? (off < split ? split : len - off) : step ? step : len;
        if (n > len - off)
            n = len - off;
        if (sx_feed(x, req + off, n) != n || sx_failed(x))
            rc = -1;
        off += n;
    }
    sx_clear(x);
    free(x);
    return rc;
}

/* The output parsed back: the request line's target, headers of note, the decoded body. */
struct parsed {
    struct buf url, hdrs, body;
    int chunked, complete;
    long long clen;
};

static int p_url(http_parser *p, const char *at, size_t n)
{
    return grow(&((struct parsed *)p->data)->url, at, n);
}
static int p_field(http_parser *p, const char *at, size_t n)
{
    struct parsed *r = p->data;
    return grow(&r->hdrs, "\n", 1) || grow(&r->hdrs, at, n) || grow(&r->hdrs, ":", 1);
}
static int p_value(http_parser *p, const char *at, size_t n)
{
    return grow(&((struct parsed *)p->data)->hdrs, at, n);
}
static int p_headers(http_parser *p)
{
    struct parsed *r = p->data;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->clen = (p->flags & F_CONTENTLENGTH) ? (long long)p->content_length : -1;
    return 0;
}
static int p_body(http_parser *p, const char *at, size_t n)
{
    return grow(&((struct parsed *)p->data)->body, at, n);
}
static int p_done(http_parser *p)
{
    ((struct parsed *)p->data)->complete++;
    return 0;
}

static int parse_back(struct parsed *r, const struct buf *out)
{
    static const http_parser_settings st = {.on_url = p_url,
                                            .on_header_field = p_field,
                                            .on_header_value = p_value,
                                            .on_headers_complete = p_headers,
                                            .on_body = p_body,
                                            .on_message_complete = p_done};
    http_parser p;

    free(r->url.d);
    free(r->hdrs.d);
    free(r->body.d);
    memset(r, 0, sizeof(*r));
    http_parser_init(&p, HTTP_REQUEST);
    p.data = r;
    if (http_parser_execute(&p, &st, out->d, out->len) != out->len ||
        HTTP_PARSER_ERRNO(&p) != HPE_OK)
        return -1;
    grow(&r->url, "", 1);
    grow(&r->hdrs, "", 1);
    return 0;
}

static int body_is(const struct parsed *r, const char *want, size_t len)
{
    return r->body.len == len && (len == 0 || memcmp(r->body.d, want, len) == 0);
}

/* Every way of feeding req gives the same output as feeding it whole. */
static int same_every_split(const char *host, int tls, const char *req, size_t len)
{
    struct buf whole = {0}, part = {0};
    int ok = rewrite(&whole, host, tls, req, len, 0, 0) == 0;

    ok = ok && rewrite(&part, host, tls, req, len, 1, 0) == 0 && part.len == whole.len &&
         memcmp(part.d, whole.d, whole.len) == 0;
    for (size_t s = 1; ok && s < len; s++)
        ok = rewrite(&part, host, tls, req, len, 0, s) == 0 && part.len == whole.len &&
             memcmp(part.d, whole.d, whole.len) == 0;
    free(whole.d);
    free(part.d);
    return ok;
}

static void head_and_small_body(void)
{
    static const char req[] = "POST /q?k=" A_PH " HTTP/1.1\r\nHost: other.test\r\n"
                              "Authorization: Bearer " A_PH " " B_PH "\r\n"
                              "Content-Length: 28\r\n\r\n{\"a\": \"" A_PH "\"}!";
    struct buf out = {0};
    struct parsed r = {0};
    const char *want = "{\"a\": \"" A_V "\"}!";

    CHECK(rewrite(&out, "api.test", 1, req, sizeof(req) - 1, 0, 0) == 0 &&
              parse_back(&r, &out) == 0,
          "a request with a Content-Length body is rewritten");
    CHECK(strcmp(r.url.d, "/q?k=" A_V) == 0, "the request line gets the value");
    CHECK(strstr(r.hdrs.d, "Authorization:Bearer " A_V " " B_PH),
          "a header gets the destination's secret, not the one Host: names");
    CHECK(body_is(&r, want, strlen(want)) && r.clen == (long long)strlen(want) && !r.chunked,
          "the held body gets the value and its new Content-Length");
    CHECK(same_every_split("api.test", 1, req, sizeof(req) - 1), "the same split at every byte");
    CHECK(rewrite(&out, "other2.test", 1, req, sizeof(req) - 1, 0, 0) == 0 &&
              out.len == sizeof(req) - 1 && memcmp(out.d, req, out.len) == 0,
          "a destination no secret may go to gets the request as it was");
    free(out.d);
    free(r.url.d), free(r.hdrs.d), free(r.body.d);
}

static void chunked_body(void)
{
    /* the placeholder straddles two chunks; a prefix of one ends the body */
    static const char req[] =
        "POST / HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        "8\r\nx=<BOXLI\r\n"
        "c\r\nTE_SECRET:A>\r\n"
        "3\r\n&y=\r\n"
        "10\r\n<BOXLITE_SECRET:\r\n0\r\n\r\n";
    const char *want = "x=" A_V "&y=<BOXLITE_SECRET:";
    struct buf out = {0};
    struct parsed r = {0};

    CHECK(rewrite(&out, "api.test", 1, req, sizeof(req) - 1, 0, 0) == 0 &&
              parse_back(&r, &out) == 0 && r.chunked && r.complete == 1,
          "a chunked body goes on chunked");
    CHECK(body_is(&r, want, strlen(want)), "a placeholder split across chunks is replaced");
    CHECK(same_every_split("api.test", 1, req, sizeof(req) - 1),
          "chunked: the same split at every byte");
    CHECK(rewrite(&out, "evil.test", 1, req, sizeof(req) - 1, 0, 0) == 0 &&
              parse_back(&r, &out) == 0 &&
              body_is(&r, "x=" A_PH "&y=<BOXLITE_SECRET:", strlen("x=" A_PH "&y=<BOXLITE_SECRET:")),
          "chunked to another host: the placeholder stays");
    free(out.d);
    free(r.url.d), free(r.hdrs.d), free(r.body.d);
}

static void expect_continue(void)
{
    static const char req[] = "PUT /u HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\n"
                              "Content-Length: 22\r\n\r\nk=" A_PH "!!";
    const char *want = "k=" A_V "!!";
    struct buf out = {0};
    struct parsed r = {0};
    struct sx *x = calloc(1, sizeof(*x));
    size_t head = strstr(req, "\r\n\r\n") + 4 - req;

    CHECK(rewrite(&out, "api.test", 1, req, sizeof(req) - 1, 0, 0) == 0 &&
              parse_back(&r, &out) == 0,
          "Expect: 100-continue is rewritten");
    CHECK(body_is(&r, want, strlen(want)) && r.chunked && r.clen < 0 &&
              strstr(r.hdrs.d, "\nExpect:100-continue"),
          "its body is substituted and goes on chunked, Expect kept");
    /* the head must go on before the body comes: the client waits for the 100 */
    *x = (struct sx){.sec = sec,
                     .nsec = nsec,
                     .send = sink,
                     .route = route,
                     .ctx = &out,
                     .tls = 1,
                     .port = 443,
                     .substitute = 1};
    snprintf(x->host, sizeof(x->host), "api.test");
    out.len = 0;
    sx_init(x);
    CHECK(sx_feed(x, req, head) == head && !sx_failed(x) && out.len > 0 &&
              memmem(out.d, out.len, "\r\n\r\n", 4),
          "the head goes on at once, before its body");
    sx_clear(x);
    free(x);
    free(out.d);
    free(r.url.d), free(r.hdrs.d), free(r.body.d);
}

static void large_body(void)
{
    size_t n = 3u << 20, hl, wl = 0;
    char *req = malloc(n + 200), *want = malloc(n * 3);
    struct buf out = {0};
    struct parsed r = {0};
    int ok = req && want;

    hl = ok ? (size_t)sprintf(req, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n)
            : 0;
    /* placeholders everywhere, some across the 16 KiB steps */
    for (size_t i = 0; ok && i < n;) {
        size_t left = n - i, at = i % 16384;
        if (left >= strlen(A_PH) && (at == 16384 - 7 || i % 1000 == 3)) {
            memcpy(req + hl + i, A_PH, strlen(A_PH));
            memcpy(want + wl, A_V, strlen(A_V));
            i += strlen(A_PH);
            wl += strlen(A_V);
        } else {
            req[hl + i] = want[wl++] = (char)('a' + i % 26);
            i++;
        }
    }
    CHECK(ok && rewrite(&out, "api.test", 1, req, hl + n, 4096, 0) == 0 &&
              parse_back(&r, &out) == 0 && r.chunked && body_is(&r, want, wl),
          "a 3 MiB body is substituted as it streams and goes on chunked");
    CHECK(ok && rewrite(&out, "api.test", 1, req, hl + n, 0, 0) == 0 && parse_back(&r, &out) == 0 &&
              body_is(&r, want, wl),
          "the same fed whole");
    memcpy(req + 12, "1.0", 3); /* HTTP/1.0 cannot be chunked: it goes on as it came */
    CHECK(ok && rewrite(&out, "api.test", 1, req, hl + n, 0, 0) == 0 && out.len == hl + n,
          "an HTTP/1.0 body over 1 MiB goes on unchanged");
    free(req);
    free(want);
    free(out.d);
    free(r.url.d), free(r.hdrs.d), free(r.body.d);
}

static void plain_proxy(void)
{
    static const char ok_req[] =
        "GET http://api.test/p?" A_PH " HTTP/1.1\r\nHost: evil.test\r\n\r\n";
    static const char lie[] = "GET http://evil.test/p?" A_PH " HTTP/1.1\r\nHost: api.test\r\n"
                              "X-K: " A_PH "\r\n\r\n";
    struct buf out = {0};

    CHECK(rewrite(&out, "", 0, ok_req, sizeof(ok_req) - 1, 0, 0) == 0 &&
              strcmp(routed, "api.test:80") == 0 &&
              memmem(out.d, out.len, "GET /p?" A_V " ", 8 + strlen(A_V)),
          "a proxy request to the secret's host gets the value, in origin form");
    CHECK(rewrite(&out, "", 0, lie, sizeof(lie) - 1, 0, 0) == 0 &&
              strcmp(routed, "evil.test:80") == 0 && !memmem(out.d, out.len, A_V, strlen(A_V)) &&
              memmem(out.d, out.len, "X-K: " A_PH, 5 + strlen(A_PH)),
          "a proxy request whose Host: lies about its URL gets no value");
    free(out.d);
}

static void bounds(void)
{
    size_t n = SX_HEAD_MAX + 100;
    char *req = malloc(n + 100);
    struct buf out = {0};
    int len;

    len = req ? sprintf(req, "GET / HTTP/1.1\r\nX: ") : 0;
    if (req) {
        memset(req + len, 'a', n);
        memcpy(req + len + n, "\r\n\r\n", 4);
    }
    CHECK(req && rewrite(&out, "api.test", 1, req, (size_t)len + n + 4, 0, 0) != 0 && out.len == 0,
          "a head over 32 KiB is refused, nothing sent");
    free(req);
    free(out.d);
}

int main(void)
{
    static const char text[] =
        "A\t" A_V "\t" A_PH "\tapi.test\nB\tvalue-of-B\t" B_PH "\tother.test\n";

    if (bl_secrets_parse(&sec, &nsec, text) != 0)
        return 1;
    head_and_small_body();
    chunked_body();
    expect_continue();
    large_body();
    plain_proxy();
    bounds();
    bl_secrets_free(sec, nsec);
    return tap_done();
}
