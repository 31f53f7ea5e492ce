/* net.c — the box's network on the host side: a user-mode TCP/IP stack (libslirp) on the
 * shim's end of QEMU's `-netdev stream` socket, behind an egress filter that the guest
 * cannot reach (see docs/security.md, Network). One thread owns slirp; nothing else touches it. */
#include "shim.h"

#include "db.h"
#include "netpolicy.h"
#include "secrets.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VNET        0x0a000200u /* 10.0.2.0/24: slirp's virtual network */
#define VHOST       0x0a000202u /* the gateway */
#define VDNS        0x0a000203u /* slirp's DNS forwarder (the host's resolver) */
#define VGUEST      0x0a00020fu /* the guest (src/agent/net.c) */
#define FRAME_MAX   65550       /* an Ethernet frame QEMU may send */
#define OUTQ_CAP    (4u << 20)  /* frames to the guest beyond this are dropped (TCP resends) */
#define LEARNED_MAX 1024
#define PEERS_MAX   256
#define HOST_ADDRS  64
#define LOG_DENIALS 50
#define TTL_MIN_S   60
#define TTL_MAX_S   3600

struct net_timer {
    SlirpTimerCb cb;
    void *opaque;
    int64_t expire_ms; /* -1: not armed */
    struct net_timer *next;
};

/* An address an allowlisted name resolved to. */
struct learned {
    uint32_t ip;
    uint16_t rule;
    int64_t expires_ms;
};

/* A peer that sent a datagram to a published UDP port: the guest may answer it. */
struct udp_peer {
    uint32_t ip;
    uint16_t guest_port, port;
    int64_t expires_ms;
};

struct shim_net {
    Slirp *slirp;
    int fd, stop_fd;
    pthread_t thread;
    int started;
    struct bl_net_rule rules[BL_NET_MAX_RULES];
    size_t nrules;
    uint16_t udp_ports[64];
    size_t n_udp_ports;
    struct learned learned[LEARNED_MAX];
    struct udp_peer peers[PEERS_MAX];
    uint32_t host_addrs[HOST_ADDRS];
    size_t nhost;
    int64_t host_addrs_at;
    struct net_timer *timers;
    struct pollfd *pfd;
    int npfd, cap_pfd;
    uint8_t in[2 * FRAME_MAX];
    size_t in_len;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    unsigned denials;
    struct shim_secrets *secrets; /* secrets.c: the proxy, NULL when the box has none */
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

/* ---- the host's own addresses (refreshed every 2 s: interfaces come and go) ---- */

static void host_addrs_refresh(struct shim_net *n)
{
    struct ifaddrs *ifa = NULL;
    int64_t now = bl_now_ms();

    if (now - n->host_addrs_at < 2000 && n->host_addrs_at)
        return;
    n->host_addrs_at = now;
    if (getifaddrs(&ifa) != 0)
        return; /* keep the last list */
    n->nhost = 0;
    for (struct ifaddrs *i = ifa; i && n->nhost < HOST_ADDRS; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
            n->host_addrs[n->nhost++] =
                ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr);
    freeifaddrs(ifa);
}

static int is_host_addr(struct shim_net *n, uint32_t ip)
{
    host_addrs_refresh(n);
    for (size_t i = 0; i < n->nhost; i++)
        if (n->host_addrs[i] == ip)
            return 1;
    return 0;
}

/* ---- the policy ---- */

static int port_ok(const struct bl_net_rule *r, uint16_t port)
{
    return r->port == 0 || r->port == port;
}

static int cidr_allows(const struct shim_net *n, uint32_t ip, uint16_t port)
{
    for (size_t i = 0; i < n->nrules; i++)
        if (n->rules[i].kind == BL_NET_CIDR && (ip & n->rules[i].mask) == n->rules[i].net &&
            port_ok(&n->rules[i], port))
            return 1;
    return 0;
}

static int learned_allows(const struct shim_net *n, uint32_t ip, uint16_t port)
{
    int64_t now = bl_now_ms();

    for (size_t i = 0; i < LEARNED_MAX; i++)
        if (n->learned[i].ip == ip && n->learned[i].expires_ms > now &&
            port_ok(&n->rules[n->learned[i].rule], port))
            return 1;
    return 0;
}

static int udp_peer_known(const struct shim_net *n, uint16_t sport, uint32_t ip, uint16_t port)
{
    int64_t now = bl_now_ms();

    for (size_t i = 0; i < PEERS_MAX; i++)
        if (n->peers[i].guest_port == sport && n->peers[i].ip == ip && n->peers[i].port == port &&
            n->peers[i].expires_ms > now)
            return 1;
    return 0;
}

/* May the guest open a flow (TCP SYN, a UDP datagram, an ICMP echo: proto 6, 17, 1) to
 * dst:dport from sport? */
static int allowed(struct shim_net *n, int proto, uint16_t sport, uint32_t dst, uint16_t dport)
{
    if (proto == 17 && n->n_udp_ports && udp_peer_known(n, sport, dst, dport))
        return 1;
    if ((dst & 0xffffff00u) == VNET)
        return (dst == VDNS && dport == 53 && proto != 1) ||
               (n->secrets && dst == BL_SECRETS_PROXY_VIP && dport == BL_SECRETS_PROXY_PORT &&
                proto == 6);
    if (bl_net_classify(dst) == BL_NET_NEVER || is_host_addr(n, dst))
        return 0;
    if (bl_net_classify(dst) == BL_NET_PRIVATE)
        return cidr_allows(n, dst, dport);
    if (n->nrules == 0)
        return 1;
    return cidr_allows(n, dst, dport) || learned_allows(n, dst, dport);
}

/* ip is one of the host's own addresses now (a fresh look: any thread may ask). */
static int on_host_now(uint32_t ip)
{
    struct ifaddrs *ifa = NULL;
    int found = 0;

    if (getifaddrs(&ifa) != 0)
        return 1; /* cannot tell: deny */
    for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next)
        found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr) == ip;
    freeifaddrs(ifa);
    return found;
}

int shim_net_dest_allowed(const struct shim_net *n, const char *name, uint32_t ip, uint16_t port)
{
    if ((ip & 0xffffff00u) == VNET || bl_net_classify(ip) == BL_NET_NEVER || on_host_now(ip))
        return 0;
    if (bl_net_classify(ip) == BL_NET_PRIVATE)
        return cidr_allows(n, ip, port);
    if (n->nrules == 0 || cidr_allows(n, ip, port))
        return 1;
    for (size_t i = 0; i < n->nrules; i++)
        if (n->rules[i].kind != BL_NET_CIDR && port_ok(&n->rules[i], port) &&
            bl_net_rule_matches_name(&n->rules[i], name))
            return 1;
    return 0;
}

const char *shim_net_secrets_ca(const struct shim_net *n)
{
    return n ? shim_secrets_ca_pem(n->secrets) : NULL;
}

static void learn(void *ctx, const char *qname, uint32_t ip, uint32_t ttl)
{
    struct shim_net *n = ctx;
    int64_t now = bl_now_ms();
    int64_t keep = (int64_t)(ttl < TTL_MIN_S ? TTL_MIN_S : ttl > TTL_MAX_S ? TTL_MAX_S : ttl);

    for (size_t r = 0; r < n->nrules; r++) {
        size_t slot = 0;
        if (!bl_net_rule_matches_name(&n->rules[r], qname))
            continue;
        for (size_t i = 0; i < LEARNED_MAX; i++) {
            if (n->learned[i].ip == ip && n->learned[i].rule == r) {
                slot = i;
                break;
            }
            if (n->learned[i].expires_ms < n->learned[slot].expires_ms)
                slot = i;
        }
        n->learned[slot] = (struct learned){ip, (uint16_t)r, now + keep * 1000};
    }
}

static void remember_udp_peer(struct shim_net *n, uint32_t ip, uint16_t port, uint16_t gport)
{
    size_t slot = 0;

    for (size_t i = 0; i < n->n_udp_ports; i++) {
        if (n->udp_ports[i] != gport)
            continue;
        for (size_t k = 0; k < PEERS_MAX; k++) {
            if (n->peers[k].ip == ip && n->peers[k].port == port &&
                n->peers[k].guest_port == gport) {
                slot = k;
                break;
            }
            if (n->peers[k].expires_ms < n->peers[slot].expires_ms)
                slot = k;
        }
        n->peers[slot] = (struct udp_peer){ip, gport, port, bl_now_ms() + 120000};
        return;
    }
}

/* ---- frames ---- */

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        s += rd16(p + i);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void queue_frame(struct shim_net *n, const uint8_t *frame, size_t len);

/* Refuse a TCP SYN at once (a RST from the destination) instead of letting it time out. */
static void send_rst(struct shim_net *n, const uint8_t *f, const struct bl_net_flow *fl)
{
    const uint8_t *tcp = f + fl->l4_off;
    uint8_t r[54] = {0};
    uint8_t *rip = r + 14, *rt = r + 34;
    uint32_t s;

    memcpy(r, f + 6, 6);
    memcpy(r + 6, f, 6);
    wr16(r + 12, 0x0800);
    rip[0] = 0x45;
    wr16(rip + 2, 40);
    rip[8] = 64;
    rip[9] = 6;
    wr32(rip + 12, fl->dst);
    wr32(rip + 16, fl->src);
    wr16(rip + 10, fold(sum16(rip, 20, 0)));
    wr16(rt, fl->dport);
    wr16(rt + 2, fl->sport);
    wr32(rt + 8, rd32(tcp + 4) + 1 + (uint32_t)fl->payload);
    rt[12] = 5 << 4;
    rt[13] = 0x14; /* RST|ACK */
    s = sum16(rip + 12, 8, 0) + 6 + 20;
    wr16(rt + 16, fold(sum16(rt, 20, s)));
    queue_frame(n, r, sizeof(r));
}

static void deny_log(struct shim_net *n, int proto, uint32_t dst, uint16_t port)
{
    if (n->denials++ >= LOG_DENIALS)
        return;
    fprintf(stderr, "boxlite-shim: net: denied %s to %u.%u.%u.%u:%u%s\n",
            proto == 6    ? "tcp"
            : proto == 17 ? "udp"
                          : "icmp",
            dst >> 24, (dst >> 16) & 255, (dst >> 8) & 255, dst & 255, port,
            n->denials == LOG_DENIALS ? " (no more logged)" : "");
}

/* A frame from the guest: 1 to hand it to slirp, 0 to drop it (docs/security.md, Network). */
static int guest_frame_ok(struct shim_net *n, const uint8_t *f, size_t len)
{
    struct bl_net_flow fl;
    enum bl_net_verdict v = bl_net_guest_frame(f, len, &fl);

    if (v != BL_NET_CHECK)
        return v == BL_NET_PASS;
    if (allowed(n, fl.proto, fl.sport, fl.dst, fl.dport))
        return 1;
    deny_log(n, fl.proto, fl.dst, fl.dport);
    if (fl.proto == 6)
        send_rst(n, f, &fl);
    return 0;
}

/* A frame slirp sends to the guest: learn from DNS answers and from published-UDP peers. */
static void note_host_frame(struct shim_net *n, const uint8_t *f, size_t len)
{
    const uint8_t *ip = f + 14, *udp;
    size_t ihl, tot;

    if (len < 34 || rd16(f + 12) != 0x0800 || ip[9] != 17)
        return;
    ihl = (size_t)(ip[0] & 15) * 4;
    tot = rd16(ip + 2);
    if (ihl < 20 || tot < ihl + 8 || tot > len - 14 || (rd16(ip + 6) & 0x3fff) != 0)
        return;
    udp = ip + ihl;
    if (rd32(ip + 12) == VDNS && rd16(udp) == 53 && n->nrules)
        (void)bl_dns_answers(udp + 8, tot - ihl - 8, learn, n);
    else if (n->n_udp_ports)
        remember_udp_peer(n, rd32(ip + 12), rd16(udp), rd16(udp + 2));
}

static void flush_out(struct shim_net *n)
{
    while (n->out_off < n->out_len) {
        ssize_t w = write(n->fd, n->out + n->out_off, n->out_len - n->out_off);
        if (w <= 0)
            break;
        n->out_off += (size_t)w;
    }
    if (n->out_off == n->out_len)
        n->out_off = n->out_len = 0;
}

/* Queued, written in one go at the end of the loop's turn (flush_out). */
static void queue_frame(struct shim_net *n, const uint8_t *frame, size_t len)
{
    if (n->out_len - n->out_off + len + 4 > OUTQ_CAP)
        return;
    if (n->out_off && n->out_len + len + 4 > n->out_cap) {
        memmove(n->out, n->out + n->out_off, n->out_len - n->out_off);
        n->out_len -= n->out_off;
        n->out_off = 0;
    }
    if (n->out_len + len + 4 > n->out_cap) {
        size_t cap = n->out_cap ? 2 * n->out_cap : 256 * 1024;
        uint8_t *grown;
        while (cap < n->out_len + len + 4)
            cap *= 2;
        grown = realloc(n->out, cap);
        if (!grown)
            return;
        n->out = grown;
        n->out_cap = cap;
    }
    wr32(n->out + n->out_len, (uint32_t)len);
    memcpy(n->out + n->out_len + 4, frame, len);
    n->out_len += len + 4;
}

/* Frames QEMU sent: 4-byte big-endian length, then the frame. -1 when the stream is over
 * or makes no sense. */
static int read_some(struct shim_net *n)
{
    ssize_t r = read(n->fd, n->in + n->in_len, sizeof(n->in) - n->in_len);
    size_t off = 0;

    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        return -1;
    if (r < 0)
        return 1;
    n->in_len += (size_t)r;
    while (n->in_len - off >= 4) {
        uint32_t flen = rd32(n->in + off);
        if (flen > FRAME_MAX)
            return -1;
        if (n->in_len - off - 4 < flen)
            break;
        if (guest_frame_ok(n, n->in + off + 4, flen))
            slirp_input(n->slirp, n->in + off + 4, (int)flen);
        off += 4 + flen;
    }
    memmove(n->in, n->in + off, n->in_len - off);
    n->in_len -= off;
    return 0;
}

/* Up to 64 reads a turn, so that slirp's sockets get their turn too. */
static int read_frames(struct shim_net *n)
{
    for (int i = 0; i < 64; i++) {
        int rc = read_some(n);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    return 0;
}

/* ---- slirp's callbacks ---- */

static ssize_t cb_send(const void *buf, size_t len, void *opaque)
{
    note_host_frame(opaque, buf, len);
    queue_frame(opaque, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    fprintf(stderr, "boxlite-shim: net: %s\n", msg);
}

static int64_t cb_clock_ns(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct shim_net *n = opaque;
    struct net_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->cb = cb;
    t->opaque = cb_opaque;
    t->expire_ms = -1;
    t->next = n->timers;
    n->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct shim_net *n = opaque;

    for (struct net_timer **p = &n->timers; *p; p = &(*p)->next)
        if (*p == timer) {
            *p = ((struct net_timer *)timer)->next;
            free(timer);
            return;
        }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct net_timer *)timer)->expire_ms = expire_ms;
}

static void cb_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque)
{
    (void)opaque;
}

static const SlirpCb callbacks = {
    .send_packet = cb_send,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_fd,
    .unregister_poll_fd = cb_fd,
    .notify = cb_notify,
};

static int cb_add_poll(int fd, int events, void *opaque)
{
    struct shim_net *n = opaque;
    short ev = 0;

    if (n->npfd == n->cap_pfd) {
        int cap = n->cap_pfd ? 2 * n->cap_pfd : 64;
        struct pollfd *p = realloc(n->pfd, (size_t)cap * sizeof(*p));
        if (!p)
            return -1;
        n->pfd = p;
        n->cap_pfd = cap;
    }
    ev |= (events & SLIRP_POLL_IN) ? POLLIN : 0;
    ev |= (events & SLIRP_POLL_OUT) ? POLLOUT : 0;
    ev |= (events & SLIRP_POLL_PRI) ? POLLPRI : 0;
    n->pfd[n->npfd] = (struct pollfd){.fd = fd, .events = ev};
    return n->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
    struct shim_net *n = opaque;
    short r = idx >= 0 && idx < n->npfd ? n->pfd[idx].revents : 0;

    return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
           ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
           ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* ---- the thread ---- */

static uint32_t run_timers(struct shim_net *n, uint32_t timeout)
{
    int64_t now = bl_now_ms();

    for (struct net_timer *t = n->timers; t;) {
        struct net_timer *next = t->next; /* the callback may re-arm, not free, its timer */
        if (t->expire_ms >= 0 && t->expire_ms <= now) {
            t->expire_ms = -1;
            t->cb(t->opaque);
        } else if (t->expire_ms >= 0 && (uint64_t)(t->expire_ms - now) < timeout) {
            timeout = (uint32_t)(t->expire_ms - now);
        }
        t = next;
    }
    return timeout;
}

static void *net_main(void *arg)
{
    struct shim_net *n = arg;

    for (;;) {
        uint32_t timeout = run_timers(n, 1000);
        int rc;
        n->npfd = 0;
        cb_add_poll(n->fd, SLIRP_POLL_IN, n);
        cb_add_poll(n->stop_fd, SLIRP_POLL_IN, n);
        if (n->npfd < 2)
            break;
        if (n->out_len > n->out_off)
            n->pfd[0].events |= POLLOUT;
        slirp_pollfds_fill(n->slirp, &timeout, cb_add_poll, n);
        rc = poll(n->pfd, (nfds_t)n->npfd, (int)(timeout > 1000 ? 1000 : timeout));
        if (rc < 0 && errno != EINTR)
            break;
        if (n->pfd[1].revents)
            break;
        slirp_pollfds_poll(n->slirp, rc < 0, cb_get_revents, n);
        if ((n->pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_frames(n) != 0)
            break; /* QEMU is gone or spoke nonsense: the box has no network any more */
        flush_out(n);
    }
    return NULL;
}

/* ---- set-up ---- */

static int add_forwards(struct shim_net *n, char *const *ports, char *err, size_t cap)
{
    struct in_addr guest = {htonl(VGUEST)};

    for (size_t i = 0; ports && ports[i] && ports[i + 1] && ports[i + 2] && ports[i + 3]; i += 4) {
        int udp = strcmp(ports[i], "udp") == 0;
        struct in_addr host;
        if (inet_pton(AF_INET, ports[i + 1], &host) != 1 ||
            slirp_add_hostfwd(n->slirp, udp, host, atoi(ports[i + 2]), guest, atoi(ports[i + 3])) !=
                0) {
            snprintf(err, cap, "cannot publish %s:%s->%s/%s: the host port is not available",
                     ports[i + 1], ports[i + 2], ports[i + 3], ports[i]);
            return -1;
        }
        if (udp && n->n_udp_ports < 64)
            n->udp_ports[n->n_udp_ports++] = (uint16_t)atoi(ports[i + 3]);
    }
    return 0;
}

static int net_setup(struct shim_net *n, const struct bl_box_row *row, char *err, size_t cap)
{
    SlirpConfig cfg = {.version = 4};

    for (size_t i = 0; row->allow_net && row->allow_net[i]; i++) {
        if (n->nrules >= BL_NET_MAX_RULES ||
            bl_net_rule_parse(&n->rules[n->nrules++], row->allow_net[i]) != 0) {
            snprintf(err, cap, "bad allow_net entry \"%.100s\"", row->allow_net[i]);
            return -1;
        }
    }
    for (size_t i = 0; row->ports && row->ports[i] && row->ports[i + 3]; i += 4)
        if (strcmp(row->ports[i], "udp") == 0)
            n->n_udp_ports = 1; /* counted properly by add_forwards */
    cfg.in_enabled = true;
    cfg.vnetwork.s_addr = htonl(VNET);
    cfg.vnetmask.s_addr = htonl(0xffffff00u);
    cfg.vhost.s_addr = htonl(VHOST);
    cfg.vdhcp_start.s_addr = htonl(VGUEST);
    cfg.vnameserver.s_addr = htonl(VDNS);
    /* slirp's own guard against 10.0.2.2 -> the host's 127.0.0.1; replies to a published UDP
     * port go to 10.0.2.2 too, so with one the filter alone stands there. */
    cfg.disable_host_loopback = n->n_udp_ports == 0;
    cfg.disable_dhcp = true;
    n->n_udp_ports = 0;
    n->slirp = slirp_new(&cfg, &callbacks, n);
    if (!n->slirp) {
        snprintf(err, cap, "the user-mode network stack did not start");
        return -1;
    }
    if (add_forwards(n, row->ports, err, cap) != 0 ||
        shim_secrets_open(&n->secrets, n, row->id, err, cap) != 0)
        return -1;
    if (n->secrets) {
        struct in_addr vip = {htonl(BL_SECRETS_PROXY_VIP)};
        if (slirp_add_unix(n->slirp, shim_secrets_sock(), &vip, BL_SECRETS_PROXY_PORT) != 0) {
            snprintf(err, cap, "the secrets proxy could not be reached from the box");
            return -1;
        }
    }
    return 0;
}

int shim_net_start(struct shim_net **out, int *qemu_fd, struct bl_db *db, const char *id, char *err,
                   size_t cap)
{
    struct bl_box_row row = {0};
    struct shim_net *n = NULL;
    int sv[2] = {-1, -1};
    int rc = -1;

    *out = NULL;
    *qemu_fd = -1;
    if (bl_db_box_get(db, id, &row) != 0) {
        snprintf(err, cap, "the shim cannot read box %s", id);
        goto out;
    }
    if (row.network_disabled) {
        rc = 0;
        goto out;
    }
    n = calloc(1, sizeof(*n));
    if (!n || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, cap, "the network could not be set up: %s", strerror(errno));
        goto out;
    }
    n->fd = sv[0];
    for (int i = 0; i < 2; i++) {
        int sz = 4 << 20; /* a burst of frames either way without a stall */
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fcntl(n->fd, F_SETFL, O_NONBLOCK);
    if (n->stop_fd < 0 || net_setup(n, &row, err, cap) != 0)
        goto out;
    *qemu_fd = sv[1];
    sv[1] = -1;
    *out = n;
    n = NULL;
    rc = 0;
out:
    if (n) {
        n->fd = sv[0];
        shim_net_free(n);
    } else if (rc != 0 && sv[0] >= 0) {
        close(sv[0]);
    }
    if (sv[1] >= 0)
        close(sv[1]);
    bl_box_row_clear(&row);
    return rc;
}

int shim_net_run(struct shim_net *n, char *err, size_t cap)
{
    if (!n || n->started)
        return 0;
    if (shim_secrets_run(n->secrets) != 0 || pthread_create(&n->thread, NULL, net_main, n) != 0) {
        snprintf(err, cap, "the network thread did not start");
        return -1;
    }
    n->started = 1;
    return 0;
}

void shim_net_free(struct shim_net *n)
{
    uint64_t one = 1;

    if (!n)
        return;
    if (n->started) {
        if (write(n->stop_fd, &one, sizeof(one)) != sizeof(one))
            fprintf(stderr, "boxlite-shim: net: cannot stop the network thread\n");
        pthread_join(n->thread, NULL);
    }
    shim_secrets_free(n->secrets);
    if (n->slirp)
        slirp_cleanup(n->slirp);
    while (n->timers)
        cb_timer_free(n->timers, n);
    if (n->fd > 0)
        close(n->fd);
    if (n->stop_fd > 0)
        close(n->stop_fd);
    free(n->pfd);
    free(n->out);
    free(n);
}
