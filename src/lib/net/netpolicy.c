/* netpolicy.c — a box's egress policy: parsing allow_net specs (names, *.wildcards, IPv4
 * CIDRs, optional :port), classifying IPv4 destinations, and reading DNS answers. */
#include "netpolicy.h"
#include "error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_JUMPS 16
#define DNS_MAX_CHAIN 8

static int name_char_ok(int c)
{
    return isalnum(c) || c == '-' || c == '_';
}

/* A host name: labels of [A-Za-z0-9_-], 1-63 bytes each, dot-separated. */
static int hostname_ok(const char *s)
{
    size_t label = 0;

    if (!*s || strlen(s) > BL_NET_NAME_MAX)
        return 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (name_char_ok((unsigned char)*s) && ++label <= 63) {
            continue;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static void lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = '\0';
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end = NULL;
    long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int parse_cidr(struct bl_net_rule *r, const char *host)
{
    char addr[32];
    const char *slash = strchr(host, '/');
    size_t n = slash ? (size_t)(slash - host) : strlen(host);
    struct in_addr in;
    char *end = NULL;
    long bits = 32;

    if (n >= sizeof(addr))
        return -1;
    memcpy(addr, host, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, &in) != 1)
        return -1;
    if (slash) {
        bits = isdigit((unsigned char)slash[1]) ? strtol(slash + 1, &end, 10) : -1;
        if (bits < 0 || bits > 32 || *end)
            return -1;
    }
    r->kind = BL_NET_CIDR;
    r->mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    r->net = ntohl(in.s_addr) & r->mask;
    return 0;
}

int bl_net_rule_parse(struct bl_net_rule *out, const char *spec)
{
    struct bl_net_rule r = {0};
    char host[BL_NET_NAME_MAX + 8];
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    size_t n;

    if (!spec || !*spec)
        return bl_err(BOXLITE_EINVAL, "allow_net: an empty entry");
    if (strchr(spec, '[') || (colon && strchr(spec, ':') != colon))
        return bl_err(BOXLITE_EINVAL,
                      "allow_net \"%.80s\": IPv6 is not supported (boxes have "
                      "IPv4 egress only)",
                      spec);
    n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof(host) || (colon && parse_port(colon + 1, &r.port) != 0))
        return bl_err(BOXLITE_EINVAL,
                      "allow_net \"%.80s\": expected HOST[:PORT] with PORT "
                      "1-65535",
                      spec);
    lower_copy(host, spec, n);
    if (n > 1 && host[n - 1] == '.')
        host[--n] = '\0';
    if (strchr(host, '/') || strspn(host, "0123456789.") == n) {
        if (parse_cidr(&r, host) != 0)
            return bl_err(BOXLITE_EINVAL, "allow_net \"%.80s\": not an IPv4 address or CIDR", spec);
    } else if (strncmp(host, "*.", 2) == 0 && hostname_ok(host + 2)) {
        r.kind = BL_NET_WILDCARD;
        memcpy(r.name, host + 2, strlen(host + 2) + 1); /* <= 253: hostname_ok */
    } else if (hostname_ok(host)) {
        r.kind = BL_NET_NAME;
        memcpy(r.name, host, strlen(host) + 1);
    } else {
        return bl_err(BOXLITE_EINVAL,
                      "allow_net \"%.80s\": expected a host name, *.domain, "
                      "an IPv4 address or CIDR, each with an optional :PORT",
                      spec);
    }
    *out = r;
    return 0;
}

int bl_net_specs_check(const char *const *specs)
{
    struct bl_net_rule r;
    int rc = 0;

    for (size_t n = 0; rc == 0 && specs && specs[n]; n++) {
        if (n >= BL_NET_MAX_RULES)
            rc = bl_err(BOXLITE_EINVAL, "allow_net: at most %d entries", BL_NET_MAX_RULES);
        else
            rc = bl_net_rule_parse(&r, specs[n]);
    }
    return rc;
}

int bl_net_rule_matches_name(const struct bl_net_rule *r, const char *name)
{
    size_t n = strlen(name), k = strlen(r->name);

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (r->kind == BL_NET_NAME)
        return n == k && strncasecmp(name, r->name, k) == 0;
    if (r->kind == BL_NET_WILDCARD)
        return n > k + 1 && name[n - k - 1] == '.' && strncasecmp(name + n - k, r->name, k) == 0;
    return 0;
}

static int in_net(uint32_t ip, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (ip & mask) == net;
}

enum bl_net_class bl_net_classify(uint32_t ip)
{
    if (in_net(ip, 0x00000000u, 8) || in_net(ip, 0x7f000000u, 8) || in_net(ip, 0xe0000000u, 4) ||
        in_net(ip, 0xf0000000u, 4))
        return BL_NET_NEVER;
    if (in_net(ip, 0x0a000000u, 8) || in_net(ip, 0xac100000u, 12) || in_net(ip, 0xc0a80000u, 16) ||
        in_net(ip, 0xa9fe0000u, 16) || in_net(ip, 0x64400000u, 10))
        return BL_NET_PRIVATE;
    return BL_NET_PUBLIC;
}

/* ---- frames from the guest: untrusted bytes, every read bounded ---- */

static uint16_t get16(const uint8_t *p);

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

enum bl_net_verdict bl_net_guest_frame(const uint8_t *f, size_t len, struct bl_net_flow *flow)
{
    const uint8_t *ip = f + 14, *l4;
    size_t ihl, tot;
    struct bl_net_flow fl = {0};

    if (len < 14)
        return BL_NET_DROP;
    if (get16(f + 12) == 0x0806)
        return BL_NET_PASS;
    if (get16(f + 12) != 0x0800 || len < 34 || (ip[0] >> 4) != 4)
        return BL_NET_DROP;
    ihl = (size_t)(ip[0] & 15) * 4;
    tot = get16(ip + 2);
    if (ihl < 20 || tot < ihl || tot > len - 14 || (get16(ip + 6) & 0x3fff) != 0)
        return BL_NET_DROP; /* a fragment: its reassembled header is one we never saw */
    fl.proto = ip[9];
    fl.src = get32(ip + 12);
    fl.dst = get32(ip + 16);
    fl.ip_off = 14;
    fl.l4_off = 14 + ihl;
    l4 = ip + ihl;
    if (fl.proto == 6 && tot >= ihl + 20) {
        size_t doff = (size_t)(l4[12] >> 4) * 4;
        if (!(l4[13] & 0x02) || (l4[13] & 0x10))
            return BL_NET_PASS;
        if (doff < 20 || tot < ihl + doff)
            return BL_NET_DROP;
        fl.payload = tot - ihl - doff;
    } else if (fl.proto == 17 && tot >= ihl + 8) {
        /* every datagram: slirp keeps one socket per guest port and sends anywhere */
    } else if (fl.proto == 1 && tot >= ihl + 8 && l4[0] == 8) {
        *flow = fl;
        return BL_NET_CHECK;
    } else {
        return BL_NET_DROP;
    }
    fl.sport = get16(l4);
    fl.dport = get16(l4 + 2);
    *flow = fl;
    return BL_NET_CHECK;
}

/* ---- DNS responses (RFC 1035 §4): untrusted bytes, every read bounded ---- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* The name at *off into out (lower case, dot-separated, no trailing dot); *off moves past it
 * (not past the targets of compression pointers). -1 when malformed. */
static int dns_name(const uint8_t *msg, size_t len, size_t *off, char *out)
{
    size_t pos = *off, n = 0, end = 0;
    int jumps = 0;

    for (;;) {
        uint8_t l;
        if (pos >= len)
            return -1;
        l = msg[pos];
        if ((l & 0xc0) == 0xc0) {
            size_t to;
            if (pos + 1 >= len || ++jumps > DNS_MAX_JUMPS)
                return -1;
            to = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
            if (!end)
                end = pos + 2;
            if (to >= pos)
                return -1; /* pointers go backwards only: no loops */
            pos = to;
            continue;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0)
            break;
        if (pos + 1 + l > len || n + l + 1 > BL_NET_NAME_MAX)
            return -1;
        if (n)
            out[n++] = '.';
        for (size_t i = 0; i < l; i++) {
            int c = msg[pos + 1 + i];
            if (!name_char_ok(c) && c != '*')
                return -1;
            out[n++] = (char)tolower(c);
        }
        pos += 1 + (size_t)l;
    }
    out[n] = '\0';
    *off = end ? end : pos + 1;
    return 0;
}

static int in_chain(char chain[][BL_NET_NAME_MAX + 1], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(chain[i], name) == 0)
            return 1;
    return 0;
}

int bl_dns_answers(const uint8_t *msg, size_t len,
                   void (*fn)(void *ctx, const char *qname, uint32_t ip, uint32_t ttl), void *ctx)
{
    char chain[DNS_MAX_CHAIN][BL_NET_NAME_MAX + 1];
    char owner[BL_NET_NAME_MAX + 1];
    size_t off = 12;
    int nchain = 1;
    unsigned an;

    if (len < 12 || !(msg[2] & 0x80) || (msg[3] & 0x0f) != 0 || get16(msg + 4) != 1)
        return -1;
    an = get16(msg + 6);
    if (dns_name(msg, len, &off, chain[0]) != 0 || off + 4 > len)
        return -1;
    off += 4;
    for (unsigned i = 0; i < an; i++) {
        uint16_t type, cls, rdlen;
        uint32_t ttl;
        if (dns_name(msg, len, &off, owner) != 0 || off + 10 > len)
            return -1;
        type = get16(msg + off);
        cls = get16(msg + off + 2);
        ttl = (uint32_t)get16(msg + off + 4) << 16 | get16(msg + off + 6);
        rdlen = get16(msg + off + 8);
        off += 10;
        if (off + rdlen > len)
            return -1;
        if (cls == 1 && in_chain(chain, nchain, owner)) {
            size_t at = off;
            if (type == 1 && rdlen == 4)
                fn(ctx, chain[0],
                   (uint32_t)msg[off] << 24 | (uint32_t)msg[off + 1] << 16 |
                       (uint32_t)msg[off + 2] << 8 | msg[off + 3],
                   ttl);
            else if (type == 5 && nchain < DNS_MAX_CHAIN &&
                     dns_name(msg, off + rdlen, &at, chain[nchain]) == 0)
                nchain++;
        }
        off += rdlen;
    }
    return 0;
}
