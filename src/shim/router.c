/* router.c — the shim's connections and stream routing: one agent channel shared by many
 * clients, each client's stream ids mapped to ids of the shim's own on the agent side. */
#include "shim.h"

#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGENT_BACKLOG (8u << 20) /* stop reading clients while this much waits for the agent */
#define PING_RING     256        /* PINGs forwarded to the agent and not yet answered */
#define INTERNAL      (-2)       /* route.client of the shim's own streams */
#define MAIN          (-3)       /* route.client of the box's main process (mainproc.c) */
#define RESTORED_PING "boxlite-restored"

/* ---- one framed connection ---- */

void shim_conn_init(struct shim_conn *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
}

void shim_conn_close(struct shim_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    bl_frame_reader_free(&c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int shim_conn_queue(struct shim_conn *c, uint8_t type, uint32_t stream, const void *payload,
                    size_t len)
{
    size_t need = BL_FRAME_HDR + len;

    if (c->out_off > 0 && c->out_len + need > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len - c->out_off + need > SHIM_OUTQ_CAP)
        return -1;
    if (c->out_len + need > c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap : 65536;
        uint8_t *n;
        while (ncap < c->out_len + need)
            ncap *= 2;
        n = realloc(c->out, ncap);
        if (!n)
            return -1;
        c->out = n;
        c->out_cap = ncap;
    }
    bl_frame_hdr_encode(c->out + c->out_len, type, stream, (uint32_t)len);
    if (len > 0)
        memcpy(c->out + c->out_len + BL_FRAME_HDR, payload, len);
    c->out_len += need;
    return 0;
}

int shim_conn_flush(struct shim_conn *c)
{
    int rc = bl_frame_write_some(c->fd, c->out, c->out_len, &c->out_off);

    if (rc == 1)
        c->out_off = c->out_len = 0;
    return rc < 0 ? -1 : 0;
}

int shim_conn_read(struct shim_conn *c, void (*fn)(void *ctx, const struct bl_frame *f), void *ctx)
{
    enum bl_fio got = bl_frame_fill(&c->in, c->fd, 0);
    struct bl_frame f;
    int n;

    if (got == BL_FIO_EOF || got == BL_FIO_ERROR)
        return -1;
    while ((n = bl_frame_next(&c->in, &f)) > 0) {
        fn(ctx, &f);
        if (c->fd < 0) /* fn closed us */
            return -1;
    }
    return n < 0 ? -1 : 0;
}

/* ---- routing ---- */

struct route {
    struct route *next;
    uint32_t g; /* stream id on the agent side */
    int client; /* index, or -1 once the client has gone (the process is being killed) */
    uint32_t s; /* the client's stream id */
    int detach; /* BL_EXEC_DETACH: survives its client */
};

struct client_slot {
    struct shim_conn conn;
    int used;
};

struct shim_router {
    struct shim_conn agent;
    struct client_slot clients[SHIM_MAX_CLIENTS];
    struct route *routes;
    uint32_t next_g;
    int hello;
    uint8_t hello_payload[256];
    size_t hello_len;
    int shutdown_req;
    int restored;    /* waiting for the PONG that stands for a restored guest's HELLO */
    int mon_pending; /* a BL_F_MONITOR request waits */
    int mon_client;
    uint32_t mon_op;
    char mon_name[128];
    uint32_t internal_g; /* the shim's own built-in stream, 0 when none */
    int internal_done;
    int internal_status;
    char internal_err[256];
    void (*main_fn)(void *ctx, const struct bl_frame *f); /* the main process's frames */
    void *main_ctx;
    int pings[PING_RING]; /* client of each PING the agent has not answered, oldest first */
    unsigned ping_head, ping_len;
    int64_t last_use; /* bl_now_ms of the last client stream frame either way (PINGs aside) */
};

struct from_client {
    struct shim_router *r;
    int idx;
};

static struct route *route_by_g(struct shim_router *r, uint32_t g)
{
    struct route *rt = r->routes;

    while (rt && rt->g != g)
        rt = rt->next;
    return rt;
}

static struct route *route_by_client(struct shim_router *r, int idx, uint32_t s)
{
    struct route *rt = r->routes;

    while (rt && !(rt->client == idx && rt->s == s))
        rt = rt->next;
    return rt;
}

static void route_delete(struct shim_router *r, struct route *victim)
{
    struct route **pp = &r->routes;

    while (*pp && *pp != victim)
        pp = &(*pp)->next;
    if (*pp)
        *pp = victim->next;
    free(victim);
}

static void to_agent(struct shim_router *r, uint8_t type, uint32_t g, const void *p, size_t n)
{
    /* Overflow cannot happen while clients are throttled at AGENT_BACKLOG; drop if it does. */
    (void)shim_conn_queue(&r->agent, type, g, p, n);
}

static void drop_client(struct shim_router *r, int idx)
{
    struct route *rt = r->routes;
    uint8_t kill_payload[4] = {SIGKILL, 0, 0, 0};

    for (; rt; rt = rt->next) {
        if (rt->client != idx)
            continue;
        rt->client = -1;
        if (rt->detach) /* it lives on: end its input, its output is discarded */
            to_agent(r, BL_F_STDIN, rt->g, NULL, 0);
        else
            to_agent(r, BL_F_SIGNAL, rt->g, kill_payload, sizeof(kill_payload));
    }
    shim_conn_close(&r->clients[idx].conn);
    r->clients[idx].used = 0;
}

static void to_client(struct shim_router *r, int idx, uint8_t type, uint32_t s, const void *p,
                      size_t n)
{
    if (idx < 0 || !r->clients[idx].used)
        return;
    if (s != 0)
        r->last_use = bl_now_ms();
    if (shim_conn_queue(&r->clients[idx].conn, type, s, p, n) != 0)
        drop_client(r, idx);
}

static void client_error(struct shim_router *r, int idx, uint32_t s, int code, const char *msg)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, (uint32_t)code);
    bl_wbuf_put_str(&w, msg);
    if (!w.failed)
        to_client(r, idx, BL_F_ERROR, s, w.data, w.len);
    bl_wbuf_free(&w);
}

/* Give the agent back the credit of output nobody will read (the client has gone). */
static void return_credit(struct shim_router *r, const struct bl_frame *f)
{
    uint8_t p[8];
    uint32_t fd = f->type == BL_F_STDERR ? 2 : 1;

    if (f->len == 0)
        return;
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(fd >> (8 * i));
        p[4 + i] = (uint8_t)(f->len >> (8 * i));
    }
    to_agent(r, BL_F_WINDOW, f->stream, p, sizeof(p));
}

static void announce_restored(struct shim_router *r)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, BL_PROTO_VERSION);
    bl_wbuf_put_str(&w, "boxlite-agent (restored)");
    if (!w.failed && w.len <= sizeof(r->hello_payload)) {
        memcpy(r->hello_payload, w.data, w.len);
        r->hello_len = w.len;
        r->hello = 1;
        r->restored = 0;
        for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
            to_client(r, i, BL_F_HELLO, 0, r->hello_payload, r->hello_len);
    }
    bl_wbuf_free(&w);
}

/* A frame on the shim's own built-in stream: keep stderr for the message, end on EXIT. */
static void internal_frame(struct shim_router *r, const struct bl_frame *f)
{
    struct bl_exit e;
    size_t have = strlen(r->internal_err);

    if (f->type == BL_F_STDOUT || f->type == BL_F_STDERR) {
        if (f->type == BL_F_STDERR && f->len > 0 && have + 1 < sizeof(r->internal_err)) {
            size_t k = f->len < sizeof(r->internal_err) - 1 - have
                           ? f->len
                           : sizeof(r->internal_err) - 1 - have;
            memcpy(r->internal_err + have, f->payload, k);
            r->internal_err[have + k] = '\0';
        }
        return_credit(r, f);
    } else if (f->type == BL_F_EXIT) {
        r->internal_done = 1;
        r->internal_status = -1;
        if (bl_exit_decode(&e, f->payload, f->len) == 0) {
            r->internal_status = bl_exit_status(&e);
            if (e.message[0] && !r->internal_err[0])
                snprintf(r->internal_err, sizeof(r->internal_err), "%s", e.message);
            free(e.message);
        }
    } else if (f->type == BL_F_ERROR) {
        r->internal_done = 1;
        r->internal_status = -1;
        snprintf(r->internal_err, sizeof(r->internal_err), "the agent refused the request");
    }
}

/* A HELLO the shim may keep and replay: it decodes and names our protocol version. The guest
 * can send anything on the channel; a junk HELLO must not replace the agent's real one. */
static int hello_valid(const struct bl_frame *f, size_t cap)
{
    uint32_t version = 0;
    char *text = NULL;
    int ok = f->len <= cap && bl_u32_str_decode(f->payload, f->len, &version, &text) == 0 &&
             version == BL_PROTO_VERSION;

    free(text);
    return ok;
}

static void on_agent_frame(void *ctx, const struct bl_frame *f)
{
    struct shim_router *r = ctx;
    struct route *rt;

    if (bl_frame_check(f) != 0)
        return;
    if (f->stream == 0) {
        if (f->type == BL_F_HELLO && hello_valid(f, sizeof(r->hello_payload))) {
            memcpy(r->hello_payload, f->payload, f->len);
            r->hello_len = f->len;
            r->hello = 1;
            for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
                to_client(r, i, BL_F_HELLO, 0, r->hello_payload, r->hello_len);
        } else if (f->type == BL_F_PONG && r->restored && f->len == strlen(RESTORED_PING) &&
                   memcmp(f->payload, RESTORED_PING, f->len) == 0) {
            announce_restored(r);
        } else if (f->type == BL_F_PONG && r->ping_len > 0) {
            int idx = r->pings[r->ping_head];
            r->ping_head = (r->ping_head + 1) % PING_RING;
            r->ping_len--;
            to_client(r, idx, BL_F_PONG, 0, f->payload, f->len);
        }
        return;
    }
    rt = route_by_g(r, f->stream);
    if (!rt) {
        if (f->type == BL_F_STDOUT || f->type == BL_F_STDERR)
            return_credit(r, f);
        return;
    }
    if (rt->client == INTERNAL) {
        internal_frame(r, f);
    } else if (rt->client == MAIN) {
        if (r->main_fn)
            r->main_fn(r->main_ctx, f);
        if (f->type == BL_F_STDOUT || f->type == BL_F_STDERR)
            return_credit(r, f); /* written to its log at once: nothing waits on a reader */
        if (f->type == BL_F_ERROR)
            route_delete(r, rt);
    } else if (rt->client < 0 && (f->type == BL_F_STDOUT || f->type == BL_F_STDERR))
        return_credit(r, f);
    else
        to_client(r, rt->client, f->type, rt->s, f->payload, f->len);
    if (f->type == BL_F_EXIT || (f->type == BL_F_ERROR && rt->client < 0))
        route_delete(r, rt);
}

static void monitor_request(struct shim_router *r, int idx, const struct bl_frame *f)
{
    uint32_t op = 0;
    char *name = NULL;

    if (bl_u32_str_decode(f->payload, f->len, &op, &name) != 0 || strlen(name) >= 128) {
        shim_router_monitor_reply(r, idx, 1, "bad monitor request");
    } else if (r->mon_pending || !r->hello) {
        shim_router_monitor_reply(r, idx, 1, "the box is busy or not ready");
    } else {
        r->mon_pending = 1;
        r->mon_client = idx;
        r->mon_op = op;
        snprintf(r->mon_name, sizeof(r->mon_name), "%s", name);
    }
    free(name);
}

static void on_client_frame(void *ctx, const struct bl_frame *f)
{
    struct from_client *fc = ctx;
    struct shim_router *r = fc->r;
    struct route *rt;
    int pe = bl_frame_check(f);

    if (pe != 0) {
        client_error(r, fc->idx, f->stream, -pe, bl_proto_strerror(pe));
        return;
    }
    if (f->stream == 0) {
        if (f->type == BL_F_PING && r->hello && r->ping_len < PING_RING) {
            /* Through to the agent, so a PING measures the whole path (and its liveness). */
            r->pings[(r->ping_head + r->ping_len) % PING_RING] = fc->idx;
            r->ping_len++;
            to_agent(r, BL_F_PING, 0, f->payload, f->len);
        } else if (f->type == BL_F_PING) {
            to_client(r, fc->idx, BL_F_PONG, 0, f->payload, f->len);
        } else if (f->type == BL_F_SHUTDOWN) {
            r->shutdown_req = 1;
        } else if (f->type == BL_F_MONITOR) {
            r->last_use = bl_now_ms();
            monitor_request(r, fc->idx, f);
        }
        return;
    }
    r->last_use = bl_now_ms();
    rt = route_by_client(r, fc->idx, f->stream);
    if (f->type == BL_F_EXEC) {
        if (rt) {
            client_error(r, fc->idx, f->stream, BL_PE_STREAM, "stream id reused");
            return;
        }
        rt = calloc(1, sizeof(*rt));
        if (!rt) {
            client_error(r, fc->idx, f->stream, BL_PE_NOMEM, "out of memory");
            return;
        }
        rt->g = r->next_g++;
        rt->client = fc->idx;
        rt->s = f->stream;
        rt->detach = f->len >= 4 && (f->payload[0] & BL_EXEC_DETACH) != 0;
        rt->next = r->routes;
        r->routes = rt;
    } else if (!rt) {
        if (f->type != BL_F_WINDOW && f->type != BL_F_SIGNAL)
            client_error(r, fc->idx, f->stream, BL_PE_STREAM, "unknown stream");
        return;
    }
    to_agent(r, f->type, rt->g, f->payload, f->len);
}

struct shim_router *shim_router_new(int agent_fd)
{
    struct shim_router *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    shim_conn_init(&r->agent, agent_fd);
    r->next_g = 1;
    r->last_use = bl_now_ms();
    for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
        r->clients[i].conn.fd = -1;
    return r;
}

void shim_router_free(struct shim_router *r)
{
    if (!r)
        return;
    for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
        if (r->clients[i].used)
            shim_conn_close(&r->clients[i].conn);
    while (r->routes)
        route_delete(r, r->routes);
    shim_conn_close(&r->agent);
    free(r);
}

void shim_router_add_client(struct shim_router *r, int fd)
{
    for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
        if (r->clients[i].used)
            continue;
        shim_conn_init(&r->clients[i].conn, fd);
        r->clients[i].used = 1;
        if (r->hello)
            to_client(r, i, BL_F_HELLO, 0, r->hello_payload, r->hello_len);
        return;
    }
    close(fd); /* full: the client sees EOF */
}

int shim_router_poll_fill(struct shim_router *r, struct pollfd *pfd, int max)
{
    int n = 0;
    int throttle = r->agent.out_len - r->agent.out_off > AGENT_BACKLOG;

    pfd[n].fd = r->agent.fd;
    pfd[n].events = POLLIN | (r->agent.out_len > r->agent.out_off ? POLLOUT : 0);
    n++;
    for (int i = 0; i < SHIM_MAX_CLIENTS && n < max; i++) {
        struct shim_conn *c = &r->clients[i].conn;
        pfd[n].fd = r->clients[i].used ? c->fd : -1;
        pfd[n].events = (throttle ? 0 : POLLIN) | (c->out_len > c->out_off ? POLLOUT : 0);
        n++;
    }
    return n;
}

int shim_router_poll_done(struct shim_router *r, const struct pollfd *pfd, int n)
{
    int rc = 0;

    if (pfd[0].revents & POLLOUT)
        rc = shim_conn_flush(&r->agent);
    if (rc == 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
        rc = shim_conn_read(&r->agent, on_agent_frame, r);
    for (int k = 1; k < n && rc == 0; k++) {
        int i = k - 1;
        struct from_client fc = {r, i};
        if (!r->clients[i].used || pfd[k].revents == 0)
            continue;
        if ((pfd[k].revents & POLLOUT) && shim_conn_flush(&r->clients[i].conn) != 0) {
            drop_client(r, i);
            continue;
        }
        if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
            shim_conn_read(&r->clients[i].conn, on_client_frame, &fc) != 0)
            drop_client(r, i);
    }
    if (rc == 0 && r->agent.out_len > r->agent.out_off)
        rc = shim_conn_flush(&r->agent);
    return rc;
}

int shim_router_ready(const struct shim_router *r)
{
    return r->hello;
}

int64_t shim_router_quiet_since(const struct shim_router *r)
{
    for (const struct route *rt = r->routes; rt; rt = rt->next)
        if (rt->client >= 0)
            return -1;
    return r->last_use;
}

int shim_router_take_shutdown(struct shim_router *r)
{
    int v = r->shutdown_req;

    r->shutdown_req = 0;
    return v;
}

void shim_router_shutdown_agent(struct shim_router *r)
{
    to_agent(r, BL_F_SHUTDOWN, 0, NULL, 0);
}

void shim_router_flush_agent(struct shim_router *r, int max_ms)
{
    struct pollfd p = {.fd = r->agent.fd, .events = POLLOUT};

    while (r->agent.out_len > r->agent.out_off && max_ms > 0) {
        if (poll(&p, 1, 10) > 0 && shim_conn_flush(&r->agent) != 0)
            break;
        max_ms -= 10;
    }
}

void shim_router_restored(struct shim_router *r)
{
    r->restored = 1;
    r->next_g = 0x40000000u + (uint32_t)(bl_now_ms() & 0x3fffffff);
    to_agent(r, BL_F_PING, 0, RESTORED_PING, strlen(RESTORED_PING));
}

int shim_router_take_monitor(struct shim_router *r, int *client, uint32_t *op, char *name,
                             size_t cap)
{
    if (!r->mon_pending)
        return 0;
    r->mon_pending = 0;
    *client = r->mon_client;
    *op = r->mon_op;
    snprintf(name, cap, "%s", r->mon_name);
    return 1;
}

void shim_router_monitor_reply(struct shim_router *r, int client, uint32_t status, const char *msg)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, status);
    bl_wbuf_put_str(&w, msg);
    if (!w.failed)
        to_client(r, client, BL_F_MONITOR_REPLY, 0, w.data, w.len);
    bl_wbuf_free(&w);
}

int shim_router_builtin(struct shim_router *r, const char *const *argv, int timeout_ms, char *err,
                        size_t cap)
{
    struct bl_exec_req req = {0};
    struct bl_wbuf w = {0};
    struct route *rt = calloc(1, sizeof(*rt));
    int64_t deadline = bl_now_ms() + timeout_ms;
    int rc = -1;

    req.flags = BL_EXEC_BUILTIN;
    req.argv = (char **)argv;
    while (argv[req.argc])
        req.argc++;
    if (!rt || bl_exec_req_encode(&w, &req) != 0 || w.failed) {
        snprintf(err, cap, "out of memory");
        free(rt);
        bl_wbuf_free(&w);
        return -1;
    }
    rt->g = r->next_g++;
    rt->client = INTERNAL;
    rt->next = r->routes;
    r->routes = rt;
    r->internal_g = rt->g;
    r->internal_done = 0;
    r->internal_err[0] = '\0';
    to_agent(r, BL_F_EXEC, rt->g, w.data, w.len);
    bl_wbuf_free(&w);
    while (!r->internal_done && bl_now_ms() < deadline) {
        struct pollfd p = {.fd = r->agent.fd, .events = POLLIN};
        if (r->agent.out_len > r->agent.out_off)
            p.events |= POLLOUT;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((p.revents & POLLOUT) && shim_conn_flush(&r->agent) != 0)
            break;
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) &&
            shim_conn_read(&r->agent, on_agent_frame, r) != 0)
            break;
    }
    if (r->internal_done && r->internal_status == 0)
        rc = 0;
    else
        snprintf(err, cap, "%s: %s", argv[0],
                 r->internal_done ? (r->internal_err[0] ? r->internal_err : "failed")
                                  : "the agent did not answer in time");
    err[strcspn(err, "\n")] = '\0';
    rt = route_by_g(r, r->internal_g);
    if (rt && rt->client == INTERNAL) /* no EXIT came: forget it; the agent ends it alone */
        rt->client = -1;
    else if (rt)
        route_delete(r, rt);
    r->internal_g = 0;
    return rc;
}

/* The main process's route on agent stream g (not yet in use here). */
static struct route *main_route(struct shim_router *r, uint32_t g,
                                void (*fn)(void *ctx, const struct bl_frame *f), void *ctx)
{
    struct route *rt = g != 0 && !route_by_g(r, g) ? calloc(1, sizeof(*rt)) : NULL;

    if (!rt)
        return NULL;
    rt->g = g;
    rt->client = MAIN;
    rt->next = r->routes;
    r->routes = rt;
    r->main_fn = fn;
    r->main_ctx = ctx;
    return rt;
}

int shim_router_start_main(struct shim_router *r, const void *req, size_t len,
                           void (*fn)(void *ctx, const struct bl_frame *f), void *ctx)
{
    struct route *rt = main_route(r, r->next_g++, fn, ctx);

    if (!rt)
        return -1;
    to_agent(r, BL_F_EXEC, rt->g, req, len);
    return 0;
}

int shim_router_adopt_main(struct shim_router *r, uint32_t g,
                           void (*fn)(void *ctx, const struct bl_frame *f), void *ctx)
{
    return main_route(r, g, fn, ctx) ? 0 : -1;
}

uint32_t shim_router_main_stream(struct shim_router *r)
{
    struct route *rt = r->routes;

    while (rt && rt->client != MAIN)
        rt = rt->next;
    return rt ? rt->g : 0;
}
