/* secrets_http.h — the secrets proxy's request rewriter (docs/security.md, Secrets): guest
 * bytes in, the requests as they go upstream out, placeholders replaced by the values of the
 * secrets that may go to the request's destination. No sockets here: the proxy
 * (secrets.c), the unit tests and the fuzz target drive it through two callbacks. */
#ifndef SHIM_SECRETS_HTTP_H
#define SHIM_SECRETS_HTTP_H

#include "secrets.h"

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#define SX_HEAD_MAX (32u << 10) /* a request's line and headers, as read */
#define SX_OUT_MAX  (64u << 10) /* the same after substitution */
#define SX_BODY_MAX (1u << 20)  /* a larger body is substituted as it streams, re-chunked */
#define SX_HDRS_MAX 128
#define SX_CHUNK    (16u << 10) /* a streamed body goes on in chunks of at most this */

struct sx_hdr {
    size_t f_off, f_len, v_off, v_len;
};

/* One guest connection's request stream. The owner sets the fields above `p` and calls
 * sx_init; everything below is the rewriter's. */
struct sx {
    const struct bl_secret *sec;
    size_t nsec;
    /* bytes for the upstream server: 0, or -1 to end the connection */
    int (*send)(void *ctx, const void *buf, size_t len);
    /* a plain proxy request (absolute URL) names host:port: open that upstream (it is the
     * first) or check it is the one open; 0, or -1 with why set */
    int (*route)(void *ctx, struct sx *x);
    void *ctx;
    int tls;        /* inside intercepted TLS: targets are paths, host:port is the CONNECT's */
    char host[256]; /* the destination (CONNECT target or absolute URL's), never Host: */
    uint16_t port;
    int substitute; /* some secret may go to host:port */

    http_parser p;
    char url[SX_HEAD_MAX];
    size_t url_len;
    char hb[SX_HEAD_MAX];
    size_t hb_len;
    struct sx_hdr h[SX_HDRS_MAX];
    size_t nh;
    int in_value;
    int routed;  /* route() accepted a plain request: one upstream per connection */
    int tunnel;  /* CONNECT: after its head the bytes are not requests */
    int failed;  /* a callback gave up: the connection ends */
    int chunked; /* the body goes on chunked (it came chunked, or is streamed) */
    int stream;  /* the body is substituted as it streams (carry-over below) */
    char *body;  /* a Content-Length body held for substitution (SX_BODY_MAX at most) */
    size_t body_len, body_want;
    char carry[BL_SECRET_PH_MAX]; /* a streamed body's tail that may begin a placeholder */
    size_t carry_len;
    char ob[SX_CHUNK + BL_SECRET_VALUE_MAX]; /* a streamed body's next chunk */
    size_t ob_len;
    char why[160];
};

/* Ready x (its owner's fields set) for a new stream of requests. */
void sx_init(struct sx *x);

/* Feed n guest bytes: what the parser took. A stop short of n with sx_failed() 0 is a
 * CONNECT's or an Upgrade's end of the requests (x->p.upgrade): the rest is not HTTP. */
size_t sx_feed(struct sx *x, const char *buf, size_t n);

/* 1 when the stream cannot go on (a bad request, a bound, a send that failed). */
int sx_failed(const struct sx *x);

/* Free what x holds (a held body), wiping what held values. x may be fed again only after
 * sx_init. */
void sx_clear(struct sx *x);

/* 1 when some secret may go to host:port. */
int sx_wants(const struct bl_secret *sec, size_t nsec, const char *host, uint16_t port);

#endif
