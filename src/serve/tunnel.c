/* tunnel.c — POST /boxes/{id}/network/tunnel?port=N (the spec's prepareTunnel): a listener on
 * 127.0.0.1 per (box, port), created on the first call and returned thereafter as the
 * TunnelDescriptor's URI. Each connection to it sends one HTTP/1.1 CONNECT for that URI's
 * authority with the API key (Proxy-Authorization or Authorization: Bearer); a good one gets
 * 200 and becomes one boxlite_box_tunnel connection to the in-box port. A short-lived thread
 * per connection reads the head and opens the tunnel (both block); then one relay thread
 * (epoll) copies every tunnel both ways, half-close kept. Only the CONNECT head is read here,
 * parsed by libhttp-parser: at most TUNNEL_HEAD bytes within --header-timeout. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_HEAD  8192
#define TUNNEL_MAX   64 /* listeners */
#define TUNNEL_RELAY (32 * 1024)

struct tunnel {
    struct tunnel *next;
    char box_id[13];
    unsigned port;  /* in the box */
    unsigned lport; /* ours, on 127.0.0.1 */
    int lfd;
    pthread_t th;
};

struct tconn {
    struct tunnel *t;
    int fd;
};

static pthread_mutex_t tun_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tunnel *tun_head;
static unsigned tun_count, conns_live; /* conns_live: __atomic */

/* ---- the CONNECT head ------------------------------------------------------------------- */

/* What Debian's libhttp-parser (the secrets proxy's parser too) hands us of a request head:
 * the request target and the two headers that may carry the key. */
struct head {
    http_parser p;
    char url[64];
    size_t url_len;
    int in_value;      /* between a header's value callbacks */
    char *value;       /* where that value is kept (NULL: not wanted) */
    size_t *value_len; /* its length so far */
    char name[32];     /* the header name being collected (truncated: compared only) */
    size_t name_len;
    char pauth[512], auth[512]; /* Proxy-Authorization, Authorization */
    size_t pauth_len, auth_len;
    int too_long, done;
};

/* Append [at, at+len) to dst (cap bytes, NUL kept) or mark the head too long. */
static void add(struct head *h, char *dst, size_t *n, size_t cap, const char *at, size_t len)
{
    if (*n + len >= cap) {
        h->too_long = 1;
        return;
    }
    memcpy(dst + *n, at, len);
    *n += len;
    dst[*n] = '\0';
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct head *h = p->data;

    add(h, h->url, &h->url_len, sizeof(h->url), at, len);
    return h->too_long;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct head *h = p->data;

    if (h->in_value) /* a new header begins */
        h->in_value = 0, h->name_len = 0;
    if (h->name_len + len < sizeof(h->name)) {
        memcpy(h->name + h->name_len, at, len);
        h->name_len += len;
    } else {
        h->name_len = sizeof(h->name) - 1; /* longer than any we want */
    }
    h->name[h->name_len] = '\0';
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct head *h = p->data;

    if (!h->in_value) {
        h->in_value = 1;
        h->value = NULL;
        if (strcasecmp(h->name, "Proxy-Authorization") == 0)
            h->value = h->pauth, h->value_len = &h->pauth_len, h->pauth_len = 0;
        else if (strcasecmp(h->name, "Authorization") == 0)
            h->value = h->auth, h->value_len = &h->auth_len, h->auth_len = 0;
    }
    if (h->value != NULL)
        add(h, h->value, h->value_len, sizeof(h->pauth), at, len);
    return h->too_long;
}

static int on_headers(http_parser *p)
{
    ((struct head *)p->data)->done = 1;
    return 0;
}

static const http_parser_settings head_settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
};

/* Read and parse the head: 0 with h->done, *head_len the bytes it took of buf and *total the
 * bytes read (those after the head are already the client's stream); -1 on EOF, timeout or a
 * head over cap bytes; -2 for one the parser refuses (not HTTP/1.x, a header too long). */
static int read_head(int fd, struct head *h, char *buf, size_t cap, size_t *head_len, size_t *total)
{
    size_t n = 0;

    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    while (!h->done && n < cap) {
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        size_t used;
        if (got <= 0)
            return -1;
        used = http_parser_execute(&h->p, &head_settings, buf + n, (size_t)got);
        if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK && !h->done)
            return -2;
        n += (size_t)got;
        *head_len = n - (size_t)got + used;
    }
    *total = n;
    return h->done ? 0 : -1;
}

/* 0 when the head is "CONNECT 127.0.0.1:<our port> HTTP/1.x" with a good key; else the
 * status. */
static unsigned check_head(struct tunnel *t, const struct head *h)
{
    char want[32], principal[32];

    snprintf(want, sizeof(want), "127.0.0.1:%u", t->lport);
    if (h->p.method != HTTP_CONNECT)
        return 405;
    if (h->p.http_major != 1 || strcmp(h->url, want) != 0)
        return 400;
    if (!auth_check_value(h->pauth_len ? h->pauth : h->auth_len ? h->auth : NULL, principal))
        return 407;
    return 0;
}

/* ---- one connection ------------------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the relay: one thread, every tunnel ---------------------------------------------------
 * Direction d copies fd[d] to fd[!d] through buf[d]: it reads only while buf[d] is empty (the
 * slower side holds the faster back) and, once fd[d] has ended and buf[d] is out, passes the
 * end on with shutdown(fd[!d], SHUT_WR). A tunnel is over when both directions are. */

struct rside {
    struct relay *r;
    int i; /* which fd */
};

struct relay {
    struct relay *next; /* the loop's list */
    int fd[2];          /* client, box */
    struct rside side[2];
    unsigned events[2]; /* epoll interest now */
    int reg[2];         /* fd[i] is in the epoll set */
    int hup[2];         /* epoll said fd[i] hung up: out of the set while nothing is wanted */
    int eof[2], done[2], dead;
    size_t len[2], off[2];
    char buf[2][TUNNEL_RELAY];
};

static pthread_mutex_t relay_mu = PTHREAD_MUTEX_INITIALIZER;
static struct relay *relay_new_head; /* handed over, not yet taken (relay_mu) */
static struct relay *relay_head;     /* the loop's */
static int relay_ep = -1, relay_wake = -1, relay_started;
static pthread_t relay_th;

static void relay_free(struct relay *r)
{
    for (int i = 0; i < 2; i++) {
        if (r->reg[i])
            epoll_ctl(relay_ep, EPOLL_CTL_DEL, r->fd[i], NULL);
        close(r->fd[i]);
    }
    free(r);
    __atomic_sub_fetch(&conns_live, 1, __ATOMIC_RELAXED);
}

/* Move direction d on as far as it goes now. */
static void relay_dir(struct relay *r, int d)
{
    for (int k = 0; k < 16 && !r->done[d]; k++) {
        ssize_t n;
        if (r->len[d] == 0 && r->eof[d])
            break; /* this direction ended: the end is passed on below */
        if (r->len[d] == 0) {
            n = recv(r->fd[d], r->buf[d], TUNNEL_RELAY, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                break;
            r->eof[d] = n <= 0;
            r->len[d] = n > 0 ? (size_t)n : 0;
            r->off[d] = 0;
            continue;
        }
        n = send(r->fd[!d], r->buf[d] + r->off[d], r->len[d], MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        if (n <= 0) { /* the other side is gone: what is left here cannot go anywhere */
            r->len[d] = 0;
            r->eof[d] = 1;
            continue;
        }
        r->off[d] += (size_t)n;
        r->len[d] -= (size_t)n;
    }
    if (!r->done[d] && r->len[d] == 0 && r->eof[d]) { /* the bound may end the loop first */
        shutdown(r->fd[!d], SHUT_WR);
        r->done[d] = 1;
    }
}

/* Both directions, then the interest they leave. 1 when the tunnel is over. */
static int relay_step(struct relay *r)
{
    for (int d = 0; d < 2; d++)
        relay_dir(r, d);
    if ((r->done[0] && r->done[1]) || g_serve->stopping)
        return 1;
    for (int i = 0; i < 2; i++) {
        /* fd[i] is read for direction i and written for direction !i; a hung-up fd that we
         * want nothing of leaves the set (its HUP would wake us forever) until we do */
        unsigned want = (!r->done[i] && r->len[i] == 0 && !r->eof[i] ? EPOLLIN : 0) |
                        (r->len[!i] > 0 ? EPOLLOUT : 0);
        struct epoll_event ev = {.events = want, .data.ptr = &r->side[i]};
        int op = !r->reg[i]               ? EPOLL_CTL_ADD
                 : want == 0 && r->hup[i] ? EPOLL_CTL_DEL
                                          : EPOLL_CTL_MOD;
        if (r->reg[i] && op == EPOLL_CTL_MOD && want == r->events[i])
            continue;
        if (!r->reg[i] && want == 0 && r->hup[i])
            continue;
        if (epoll_ctl(relay_ep, op, r->fd[i], &ev) != 0)
            return 1;
        r->reg[i] = op != EPOLL_CTL_DEL;
        r->events[i] = want;
    }
    return 0;
}

static void relay_drop(struct relay *r)
{
    for (struct relay **pp = &relay_head; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    relay_free(r);
}

/* The tunnels handed over since the last look: into the epoll set. */
static void relay_take_new(void)
{
    struct relay *fresh;

    pthread_mutex_lock(&relay_mu);
    fresh = relay_new_head;
    relay_new_head = NULL;
    pthread_mutex_unlock(&relay_mu);
    while (fresh != NULL) {
        struct relay *r = fresh;
        fresh = r->next;
        r->next = relay_head;
        relay_head = r;
        if (relay_step(r))
            relay_drop(r);
    }
}

static void *relay_main(void *arg)
{
    struct epoll_event ev[64];

    (void)arg;
    for (;;) {
        int n = epoll_wait(relay_ep, ev, 64, 1000);
        for (int i = 0; i < n; i++) {
            struct rside *sd = ev[i].data.ptr;
            if (sd == NULL) {
                uint64_t v;
                (void)!read(relay_wake, &v, sizeof(v));
                continue;
            }
            if (ev[i].events & (EPOLLHUP | EPOLLERR))
                sd->r->hup[sd->i] = 1;
            /* dropped after the batch: its other fd may be further on in it */
            sd->r->dead = sd->r->dead || relay_step(sd->r);
        }
        for (struct relay *r = relay_head, *next; r != NULL; r = next) {
            next = r->next;
            if (r->dead || g_serve->stopping)
                relay_drop(r);
        }
        relay_take_new();
        if (g_serve->stopping && relay_head == NULL)
            break;
    }
    return NULL;
}

/* Hand a connected pair (client, box; with pre bytes of the client's stream already read)
 * to the relay thread, which owns both fds from here, also on failure. */
static int relay_add(int cfd, int tfd, const char *pre, size_t pre_len)
{
    struct relay *r = calloc(1, sizeof(*r));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    uint64_t one = 1;
    int rc = 0;

    if (r == NULL || pre_len > TUNNEL_RELAY) {
        free(r);
        close(cfd);
        close(tfd);
        return -1;
    }
    r->fd[0] = cfd;
    r->fd[1] = tfd;
    for (int i = 0; i < 2; i++)
        r->side[i] = (struct rside){r, i};
    memcpy(r->buf[0], pre, pre_len);
    r->len[0] = pre_len;
    pthread_mutex_lock(&relay_mu);
    if (!relay_started) {
        relay_ep = relay_ep >= 0 ? relay_ep : epoll_create1(EPOLL_CLOEXEC);
        relay_wake = relay_wake >= 0 ? relay_wake : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        rc = relay_ep < 0 || relay_wake < 0 ||
                     epoll_ctl(relay_ep, EPOLL_CTL_ADD, relay_wake, &ev) != 0 ||
                     pthread_create(&relay_th, NULL, relay_main, NULL) != 0
                 ? -1
                 : 0;
        relay_started = rc == 0;
    }
    if (rc == 0) {
        __atomic_add_fetch(&conns_live, 1, __ATOMIC_RELAXED);
        r->next = relay_new_head;
        relay_new_head = r;
    }
    pthread_mutex_unlock(&relay_mu);
    if (rc != 0) {
        close(cfd);
        close(tfd);
        free(r);
        return -1;
    }
    (void)!write(relay_wake, &one, sizeof(one));
    return 0;
}

static void *conn_thread(void *arg)
{
    struct tconn *c = arg;
    struct timeval tv = {(time_t)g_serve->cfg->header_timeout, 0};
    char *buf = malloc(TUNNEL_HEAD);
    struct head *h = calloc(1, sizeof(*h));
    size_t head_len = 0, total = 0;
    struct sbox *b = NULL;
    unsigned status = 400;
    int tfd = -1, rc;
    char line[128];

    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    rc = buf != NULL && h != NULL ? read_head(c->fd, h, buf, TUNNEL_HEAD, &head_len, &total) : -1;
    if (rc == -1)
        goto out;
    status = rc == -2 ? 400 : check_head(c->t, h);
    if (status != 0)
        goto reply;
    rc = sbox_open(&b, c->t->box_id);
    if (rc == 0) {
        sbox_lock(b);
        rc = boxlite_box_tunnel(&tfd, b->box, c->t->port);
        sbox_unlock(b);
    }
    status = rc == 0 ? 200 : rc == BOXLITE_ENOTFOUND ? 404 : 502;
reply:
    snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n%s\r\n", status,
             status == 200   ? "Connection Established"
             : status == 407 ? "Proxy Authentication Required"
             : status == 405 ? "Method Not Allowed"
             : status == 404 ? "Not Found"
             : status == 502 ? "Bad Gateway"
                             : "Bad Request",
             status == 407 ? "Proxy-Authenticate: Bearer\r\n" : "");
    if (write_all(c->fd, line, strlen(line)) != 0 || status != 200)
        goto out;
    /* the relay thread owns both fds from here; what came after the head goes first */
    relay_add(c->fd, tfd, buf + head_len, total - head_len);
    c->fd = tfd = -1;
out:
    sbox_put(b);
    if (tfd >= 0)
        close(tfd);
    if (c->fd >= 0)
        close(c->fd);
    free(h);
    free(buf);
    free(c);
    __atomic_sub_fetch(&conns_live, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void *accept_thread(void *arg)
{
    struct tunnel *t = arg;
    struct pollfd p = {t->lfd, POLLIN, 0};

    while (!g_serve->stopping) {
        struct tconn *c;
        pthread_t th;
        pthread_attr_t at;
        int fd;
        if (poll(&p, 1, 500) <= 0)
            continue;
        fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        c = calloc(1, sizeof(*c));
        if (c == NULL ||
            __atomic_add_fetch(&conns_live, 1, __ATOMIC_RELAXED) > g_serve->cfg->max_connections) {
            if (c != NULL)
                __atomic_sub_fetch(&conns_live, 1, __ATOMIC_RELAXED);
            free(c);
            close(fd);
            continue;
        }
        c->t = t;
        c->fd = fd;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, conn_thread, c) != 0) {
            __atomic_sub_fetch(&conns_live, 1, __ATOMIC_RELAXED);
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

/* ---- the listeners -------------------------------------------------------------------------- */

static int listen_loopback(unsigned *port_out)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port_out = ntohs(a.sin_port);
    return fd;
}

/* The (box, port) tunnel, made on the first call. Under tun_mu. NULL: errno-ish failure. */
static struct tunnel *tunnel_get_locked(const char *box_id, unsigned port)
{
    struct tunnel *t;

    for (t = tun_head; t != NULL; t = t->next)
        if (t->port == port && strcmp(t->box_id, box_id) == 0)
            return t;
    if (tun_count >= TUNNEL_MAX || (t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    snprintf(t->box_id, sizeof(t->box_id), "%s", box_id);
    t->port = port;
    t->lfd = listen_loopback(&t->lport);
    if (t->lfd < 0 || pthread_create(&t->th, NULL, accept_thread, t) != 0) {
        if (t->lfd >= 0)
            close(t->lfd);
        free(t);
        return NULL;
    }
    t->next = tun_head;
    tun_head = t;
    tun_count++;
    return t;
}

enum MHD_Result h_box_tunnel(struct req *r)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    struct dec_err e;
    struct sbox *b;
    struct tunnel *t;
    unsigned port;
    char uri[64];
    int rc;

    if (dec_port(req_query(r, "port"), &port, &e) != 0)
        return reply_dec(r, &e);
    if (!g_serve->loopback || g_serve->cfg->tls_cert != NULL)
        return reply_error(r, 400, "UnsupportedError", "unsupported",
                           "tunnels are served on 127.0.0.1 only: the server must listen on "
                           "loopback without TLS");
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        return MHD_YES;
    sbox_lock(b);
    rc = boxlite_box_get_info(&info, b->box);
    sbox_unlock(b);
    if (rc != 0 || strcmp(info.state, "running") != 0) {
        sbox_put(b);
        return rc != 0 ? reply_boxlite(r, rc, "box info")
                       : reply_error(r, 409, "InvalidStateError", "invalid_state",
                                     "box %s is not running", b->id);
    }
    pthread_mutex_lock(&tun_mu);
    t = tunnel_get_locked(b->id, port);
    if (t != NULL)
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%u", t->lport);
    pthread_mutex_unlock(&tun_mu);
    sbox_put(b);
    if (t == NULL)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted",
                           "no tunnel listener (at most %d)", TUNNEL_MAX);
    return reply_json(r, 200, json_pack("{s:s}", "uri", uri));
}

void tunnels_shutdown(void)
{
    struct tunnel *t;

    pthread_mutex_lock(&tun_mu);
    while ((t = tun_head) != NULL) {
        tun_head = t->next;
        pthread_join(t->th, NULL); /* g_serve->stopping is set: it ends within 500 ms */
        close(t->lfd);
        free(t);
    }
    tun_count = 0;
    pthread_mutex_unlock(&tun_mu);
    for (int i = 0; i < 30 && __atomic_load_n(&conns_live, __ATOMIC_RELAXED) > 0; i++)
        usleep(100 * 1000); /* the relay sees stopping within a second */
    pthread_mutex_lock(&relay_mu);
    if (relay_started) {
        (void)!write(relay_wake, &(uint64_t){1}, sizeof(uint64_t));
        pthread_mutex_unlock(&relay_mu);
        pthread_join(relay_th, NULL);
        pthread_mutex_lock(&relay_mu);
        relay_started = 0;
    }
    pthread_mutex_unlock(&relay_mu);
}
