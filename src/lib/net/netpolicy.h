/* netpolicy.h — a box's egress policy: parsing allow_net specs (names, *.wildcards, IPv4
 * CIDRs, optional :port), classifying IPv4 destinations, and reading DNS answers. */
#ifndef BL_NETPOLICY_H
#define BL_NETPOLICY_H

#include <stddef.h>
#include <stdint.h>

#define BL_NET_MAX_RULES 64
#define BL_NET_NAME_MAX  253

enum bl_net_rule_kind { BL_NET_CIDR, BL_NET_NAME, BL_NET_WILDCARD };

/* One allow_net entry. Addresses are in host byte order. */
struct bl_net_rule {
    enum bl_net_rule_kind kind;
    uint32_t net, mask;             /* BL_NET_CIDR */
    char name[BL_NET_NAME_MAX + 1]; /* lower case, no trailing dot; for a wildcard the
                                     * suffix after "*." */
    uint16_t port;                  /* 0: any port */
};

/* Parse one spec into *out: "example.com", "*.example.com", "203.0.113.0/24", "1.2.3.4",
 * each optionally followed by ":PORT". BOXLITE_EINVAL with a message naming the spec. */
int bl_net_rule_parse(struct bl_net_rule *out, const char *spec);

/* Validate a NULL-terminated list of specs (at most BL_NET_MAX_RULES). */
int bl_net_specs_check(const char *const *specs);

/* 1 when a DNS name (any case, optional trailing dot) is what a name or wildcard rule
 * names: a wildcard matches names strictly below its suffix. */
int bl_net_rule_matches_name(const struct bl_net_rule *r, const char *name);

/* Where an IPv4 destination (host byte order) stands by default. */
enum bl_net_class {
    BL_NET_PUBLIC,  /* the internet: allowed unless an allowlist is set */
    BL_NET_PRIVATE, /* RFC 1918, 100.64/10 (CGNAT), 169.254/16 (link-local, cloud metadata):
                     * only when an allow_net CIDR names it */
    BL_NET_NEVER,   /* 0/8, 127/8 (the host), multicast, reserved, broadcast */
};
enum bl_net_class bl_net_classify(uint32_t ip);

/* A frame the guest sent, as the filter sees it. */
enum bl_net_verdict {
    BL_NET_PASS,  /* ARP; TCP that opens no flow (slirp only matches it to flows it has) */
    BL_NET_DROP,  /* IPv6, VLAN, IPv4 fragments or options past the frame, other protocols */
    BL_NET_CHECK, /* opens a flow: TCP SYN without ACK, any UDP datagram, ICMP echo */
};
struct bl_net_flow {
    int proto;             /* 6 TCP, 17 UDP, 1 ICMP */
    uint32_t src, dst;     /* host byte order */
    uint16_t sport, dport; /* 0 for ICMP */
    size_t ip_off, l4_off; /* offsets of the IPv4 and TCP/UDP/ICMP headers in the frame */
    size_t payload;        /* bytes after the TCP header (a SYN's sequence space) */
};
/* Classify an Ethernet frame of len untrusted bytes; *flow is filled for BL_NET_CHECK. */
enum bl_net_verdict bl_net_guest_frame(const uint8_t *f, size_t len, struct bl_net_flow *flow);

/* Read a DNS response (untrusted bytes, len of them) and call fn for each IPv4 address
 * (host byte order) that answers the first question's name, directly or through a CNAME
 * chain; qname is that name in lower case without the trailing dot. 0, or -1 when the
 * message is not a well-formed response (fn may have been called for a prefix). */
int bl_dns_answers(const uint8_t *msg, size_t len,
                   void (*fn)(void *ctx, const char *qname, uint32_t ip, uint32_t ttl), void *ctx);

#endif
