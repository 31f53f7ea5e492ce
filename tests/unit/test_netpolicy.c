/* test_netpolicy.c — unit tests of the egress policy's pure parts: allow_net specs, address
 * classes, the filter's reading of crafted guest frames, and DNS answers. */
#include "boxlite.h"
#include "netpolicy.h"
#include "tap.h"

#include <arpa/inet.h>
#include <string.h>

static void spec_ok(const char *spec, enum bl_net_rule_kind kind, const char *name, unsigned port)
{
    struct bl_net_rule r;
    char what[300];

    snprintf(what, sizeof(what), "spec %s", spec);
    CHECK(bl_net_rule_parse(&r, spec) == 0 && r.kind == kind && r.port == port &&
              (!name || strcmp(r.name, name) == 0),
          what);
}

static void spec_bad(const char *spec)
{
    struct bl_net_rule r;
    char what[300];

    snprintf(what, sizeof(what), "spec refused: \"%s\"", spec);
    CHECK(bl_net_rule_parse(&r, spec) == BOXLITE_EINVAL, what);
}

static uint32_t ip4(const char *s)
{
    struct in_addr a;
    inet_pton(AF_INET, s, &a);
    return ntohl(a.s_addr);
}

static void specs(void)
{
    struct bl_net_rule r;
    const char *many[66] = {NULL};

    for (int i = 0; i < 65; i++)
        many[i] = "example.com";
    spec_ok("Example.COM.", BL_NET_NAME, "example.com", 0);
    spec_ok("*.example.com:443", BL_NET_WILDCARD, "example.com", 443);
    spec_ok("203.0.113.0/24", BL_NET_CIDR, NULL, 0);
    spec_ok("198.51.100.7:8080", BL_NET_CIDR, NULL, 8080);
    spec_ok("0.0.0.0/0", BL_NET_CIDR, NULL, 0);
    spec_bad("");
    spec_bad("exa mple.com");
    spec_bad("1.2.3.4/33");
    spec_bad("1.2.3/8");
    spec_bad("host:0");
    spec_bad("host:65536");
    spec_bad("host:");
    spec_bad("[::1]:80");
    spec_bad("fc00::/7");
    spec_bad("*.");
    spec_bad("a..b");
    spec_bad("*.*.example.com");
    CHECK(bl_net_specs_check((const char *const *)many) == BOXLITE_EINVAL, "at most 64 specs");
    CHECK(bl_net_rule_parse(&r, "10.1.2.3/8") == 0 && r.net == ip4("10.0.0.0") &&
              r.mask == 0xff000000u,
          "a CIDR is masked");
    bl_net_rule_parse(&r, "*.example.com");
    CHECK(bl_net_rule_matches_name(&r, "a.b.EXAMPLE.com.") &&
              !bl_net_rule_matches_name(&r, "example.com") &&
              !bl_net_rule_matches_name(&r, "badexample.com"),
          "a wildcard matches names strictly below it");
    bl_net_rule_parse(&r, "example.com");
    CHECK(bl_net_rule_matches_name(&r, "EXAMPLE.com.") &&
              !bl_net_rule_matches_name(&r, "a.example.com"),
          "a name matches only itself");
}

static void classes(void)
{
    static const char *const never[] = {"0.0.0.0",   "127.0.0.1", "127.255.0.9",    "224.0.0.1",
                                        "239.1.1.1", "240.0.0.1", "255.255.255.255"};
    static const char *const priv[] = {"10.0.2.2",    "10.255.255.255",  "172.16.0.1", "172.31.9.9",
                                       "192.168.1.1", "169.254.169.254", "100.64.0.1"};
    static const char *const pub[] = {"8.8.8.8",      "172.32.0.1",  "192.169.0.1",
                                      "203.0.113.10", "100.128.0.1", "11.0.0.1"};
    for (size_t i = 0; i < sizeof(never) / sizeof(*never); i++)
        CHECK(bl_net_classify(ip4(never[i])) == BL_NET_NEVER, never[i]);
    for (size_t i = 0; i < sizeof(priv) / sizeof(*priv); i++)
        CHECK(bl_net_classify(ip4(priv[i])) == BL_NET_PRIVATE, priv[i]);
    for (size_t i = 0; i < sizeof(pub) / sizeof(*pub); i++)
        CHECK(bl_net_classify(ip4(pub[i])) == BL_NET_PUBLIC, pub[i]);
}

/* An Ethernet + IPv4 frame with a TCP/UDP/ICMP header of the given flags. */
static size_t frame(uint8_t *f, int proto, uint8_t tcp_flags, uint16_t frag, const char *dst,
                    uint16_t dport)
{
    size_t l4 = proto == 6 ? 20 : 8;
    uint32_t d = htonl(ip4(dst)), s = htonl(ip4("10.0.2.15"));

    memset(f, 0, 64);
    f[12] = 0x08;
    f[14] = 0x45;
    f[16] = 0;
    f[17] = (uint8_t)(20 + l4);
    f[20] = (uint8_t)(frag >> 8);
    f[21] = (uint8_t)frag;
    f[23] = (uint8_t)proto;
    memcpy(f + 26, &s, 4);
    memcpy(f + 30, &d, 4);
    f[34] = 0x9c;
    f[35] = 0x40;
    f[36] = (uint8_t)(dport >> 8);
    f[37] = (uint8_t)dport;
    if (proto == 6) {
        f[46] = 5 << 4;
        f[47] = tcp_flags;
    }
    if (proto == 1)
        f[34] = 8;
    return 34 + l4;
}

static void frames(void)
{
    uint8_t f[64];
    struct bl_net_flow fl;
    size_t n;

    n = frame(f, 6, 0x02, 0, "10.0.2.2", 8080);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_CHECK && fl.dst == ip4("10.0.2.2") &&
              fl.dport == 8080 && fl.sport == 0x9c40 && fl.proto == 6,
          "a SYN is checked");
    n = frame(f, 6, 0x03, 0, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_CHECK, "SYN+FIN is checked");
    n = frame(f, 6, 0x12, 0, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_PASS, "SYN+ACK opens nothing");
    n = frame(f, 6, 0x10, 0, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_PASS, "an ACK opens nothing");
    n = frame(f, 17, 0, 0, "127.0.0.1", 53);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_CHECK && fl.proto == 17 && fl.dport == 53,
          "every datagram is checked");
    n = frame(f, 1, 0, 0, "169.254.169.254", 0);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_CHECK && fl.proto == 1, "an echo is checked");
    n = frame(f, 6, 0x02, 0x2000, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "a first fragment (MF) is dropped");
    n = frame(f, 6, 0x02, 0x0001, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "a later fragment is dropped");
    n = frame(f, 6, 0x02, 0x4000, "203.0.113.1", 80);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_CHECK, "DF is no fragment");
    n = frame(f, 6, 0x02, 0, "10.0.2.2", 80);
    CHECK(bl_net_guest_frame(f, n - 1, &fl) == BL_NET_DROP, "a total length past the frame");
    f[14] = 0x4f; /* 60-byte header: past the frame */
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "an IPv4 header past the frame");
    n = frame(f, 6, 0x02, 0, "10.0.2.2", 80);
    f[46] = 15 << 4; /* TCP data offset past the packet */
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "a TCP header past the packet");
    n = frame(f, 47, 0, 0, "10.0.2.2", 0);
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "GRE is dropped");
    f[12] = 0x86;
    f[13] = 0xdd;
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_DROP, "IPv6 is dropped");
    f[12] = 0x08;
    f[13] = 0x06;
    CHECK(bl_net_guest_frame(f, n, &fl) == BL_NET_PASS, "ARP passes");
    CHECK(bl_net_guest_frame(f, 13, &fl) == BL_NET_DROP, "a runt is dropped");
}

struct got {
    int n;
    uint32_t ip[4];
    char name[64];
};

static void on_answer(void *ctx, const char *qname, uint32_t ip, uint32_t ttl)
{
    struct got *g = ctx;
    (void)ttl;
    snprintf(g->name, sizeof(g->name), "%s", qname);
    if (g->n < 4)
        g->ip[g->n] = ip;
    g->n++;
}

static void dns(void)
{
    /* www.Test CNAME e.cdn; e.cdn A 203.0.113.5; other A 203.0.113.66 (not in the chain) */
    static const uint8_t msg[] = {
        0x12, 0x34, 0x81, 0x80, 0,   1,   0,   3,   0,   0,  0, 0,       /* header */
        3,    'w',  'w',  'w',  4,   'T', 'e', 's', 't', 0,  0, 1, 0, 1, /* question (12) */
        0xc0, 12,   0,    5,    0,   1,   0,   0,   0,   60, 0, 8,       /* CNAME at 26 */
        1,    'e',  3,    'c',  'd', 'n', 0,   0,                        /* e.cdn (+pad) */
        1,    'e',  3,    'c',  'd', 'n', 0,   0,   1,   0,  1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 5,
        5,    'o',  't',  'h',  'e', 'r', 0,   0,   1,   0,  1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 66};
    uint8_t loop[] = {0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    struct got g = {0};

    CHECK(bl_dns_answers(msg, sizeof(msg), on_answer, &g) == 0 && g.n == 1 &&
              g.ip[0] == ip4("203.0.113.5") && strcmp(g.name, "www.test") == 0,
          "an A record through a CNAME chain counts; one outside it does not");
    memset(&g, 0, sizeof(g));
    CHECK(bl_dns_answers(msg, 40, on_answer, &g) == -1 && g.n == 0, "a truncated answer");
    CHECK(bl_dns_answers(loop, sizeof(loop), on_answer, &g) == -1 && g.n == 0,
          "a compression pointer to itself");
    loop[2] = 0x01;
    CHECK(bl_dns_answers(loop, sizeof(loop), on_answer, &g) == -1, "a query is no answer");
}

int main(void)
{
    (void)tap_skip;
    specs();
    classes();
    frames();
    dns();
    return tap_done();
}
