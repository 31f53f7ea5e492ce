/* fuzz_secrets.c — libFuzzer target for the secrets proxy's request rewriter
 * (src/shim/secrets_http.c): guest bytes as the proxy parses and rewrites them. Byte 0 picks
 * the mode (bit 0: inside an intercepted CONNECT to api.test or to evil.test; bit 1: plain
 * proxy requests instead) and byte 1 the size of the pieces the rest is fed in. Checked
 * beyond crashes and leaks: fed whole or in pieces, the output means the same (parsed back:
 * the same requests, headers and body bytes; only chunk sizes may differ); a secret's value
 * is never in the output more often than in the input unless the destination is its host. */
#include "secrets_http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (1u << 20)
#define VALUE_A "VALUE-OF-A-1234567890-longer-than-the-placeholder"

struct out {
    char *d;
    size_t len;
    int api; /* a plain request was routed to api.test */
};

static int sink(void *ctx, const void *p, size_t n)
{
    struct out *o = ctx;

    if (n > OUT_CAP - o->len)
        return -1;
    memcpy(o->d + o->len, p, n);
    o->len += n;
    return 0;
}

static int route(void *ctx, struct sx *x)
{
    struct out *o = ctx;

    size_t n = strlen(x->host);

    /* names compare case-blind, a trailing dot allowed (as DNS does) */
    o->api = strncasecmp(x->host, "api.test", 8) == 0 && (n == 8 || (n == 9 && x->host[8] == '.'));
    return strcmp(x->host, "fail.test") == 0 ? -1 : 0;
}

/* The output parsed back, chunk framing left out: what it means to the server. */
struct canon {
    char *d;
    size_t len;
};

static int c_put(http_parser *p, const char *tag, const char *at, size_t n)
{
    struct canon *c = p->data;
    size_t t = strlen(tag);

    if (t + n > OUT_CAP * 2 - c->len)
        return 1;
    memcpy(c->d + c->len, tag, t);
    memcpy(c->d + c->len + t, at, n);
    c->len += t + n;
    return 0;
}
static int c_url(http_parser *p, const char *at, size_t n)
{
    return c_put(p, "", at, n);
}
static int c_field(http_parser *p, const char *at, size_t n)
{
    return c_put(p, "", at, n);
}
static int c_value(http_parser *p, const char *at, size_t n)
{
    return c_put(p, "", at, n);
}
static int c_body(http_parser *p, const char *at, size_t n)
{
    return c_put(p, "", at, n);
}
static int c_headers(http_parser *p)
{
    return c_put(p, http_method_str((enum http_method)p->method), "|", 1);
}
static int c_done(http_parser *p)
{
    return c_put(p, "|end|", "", 0);
}

static void canon(struct canon *c, const struct out *o)
{
    static const http_parser_settings st = {.on_url = c_url,
                                            .on_header_field = c_field,
                                            .on_header_value = c_value,
                                            .on_headers_complete = c_headers,
                                            .on_body = c_body,
                                            .on_message_complete = c_done};
    http_parser p;
    size_t took;

    c->len = 0;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = c;
    took = http_parser_execute(&p, &st, o->d, o->len);
    if (took < o->len) /* an Upgrade's or a bad request's rest: as it is */
        c_put(&p, "|rest|", o->d + took, o->len - took);
}

static struct bl_secret *sec;
static size_t nsec;

static size_t count(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);

    for (const char *p = hay; len >= nl && (p = memmem(p, len - (size_t)(p - hay), needle, nl));
         p++)
        n++;
    return n;
}

/* Feed in pieces of step bytes (0: whole): *used what the parser took, 1 when it failed. */
static int run(struct out *o, uint8_t mode, const char *in, size_t len, size_t step, size_t *used)
{
    struct sx *x = calloc(1, sizeof(*x));
    int failed = 0;

    if (!x)
        abort();
    *x = (struct sx){.sec = sec,
                     .nsec = nsec,
                     .send = sink,
                     .route = route,
                     .ctx = o,
                     .tls = !(mode & 2),
                     .port = 443};
    snprintf(x->host, sizeof(x->host), "%s", mode & 1 ? "evil.test" : "api.test");
    x->substitute = x->tls && sx_wants(sec, nsec, x->host, x->port);
    sx_init(x);
    *used = 0;
    while (!failed && *used < len) {
        size_t n = step && step < len - *used ? step : len - *used;
        size_t took = sx_feed(x, in + *used, n);
        *used += took;
        failed = sx_failed(x);
        if (took < n) /* CONNECT, an Upgrade: the rest is no request */
            break;
    }
    sx_clear(x);
    free(x);
    return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "A\t" VALUE_A "\t<BOXLITE_SECRET:A>\tapi.test\n"
                               "B\tVALUE-OF-B-0987654321\tPH_B\tother.test:443\n";
    struct out whole = {0}, parts = {0};
    size_t used_w = 0, used_p = 0;
    int fw, fp;

    if (!sec && bl_secrets_parse(&sec, &nsec, text) != 0)
        abort();
    if (size < 2)
        return 0;
    whole.d = malloc(OUT_CAP);
    parts.d = malloc(OUT_CAP);
    if (!whole.d || !parts.d)
        abort();
    fw = run(&whole, data[0], (const char *)data + 2, size - 2, 0, &used_w);
    fp = run(&parts, data[0], (const char *)data + 2, size - 2, (size_t)data[1] % 64 + 1, &used_p);
    if (!fw && !fp) {
        struct canon cw = {malloc(OUT_CAP * 2), 0}, cp = {malloc(OUT_CAP * 2), 0};
        if (!cw.d || !cp.d)
            abort();
        canon(&cw, &whole);
        canon(&cp, &parts);
        if (used_w != used_p || cw.len != cp.len || memcmp(cw.d, cp.d, cw.len) != 0)
            abort(); /* the rewrite depends on how the bytes were cut */
        free(cw.d);
        free(cp.d);
    }
    /* the values only for their hosts (B's host is never a destination here) */
    if (count(whole.d, whole.len, "VALUE-OF-B-0987654321") >
        count((const char *)data + 2, size - 2, "VALUE-OF-B-0987654321"))
        abort();
    if (((data[0] & 3) == 1 || ((data[0] & 2) && !whole.api)) &&
        count(whole.d, whole.len, VALUE_A) > count((const char *)data + 2, size - 2, VALUE_A))
        abort();
    free(whole.d);
    free(parts.d);
    return 0;
}
