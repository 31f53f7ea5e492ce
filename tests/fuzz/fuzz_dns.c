/* fuzz_dns.c — libFuzzer target for the network policy's parsers of untrusted bytes: DNS
 * responses (bl_dns_answers, which the shim reads to learn allowlisted names' addresses),
 * the guest's Ethernet frames (bl_net_guest_frame) and allow_net specs. The first byte
 * picks the parser: odd DNS, 2 mod 4 frames, else specs. */
#include "netpolicy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(void *ctx, const char *qname, uint32_t ip, uint32_t ttl)
{
    size_t n = strlen(qname);

    (void)ctx;
    (void)ip;
    (void)ttl;
    /* a name the policy compares: bounded, lower case, no empty label */
    if (n > BL_NET_NAME_MAX || strstr(qname, "..") ||
        (n && (qname[0] == '.' || qname[n - 1] == '.')))
        abort();
    for (size_t i = 0; i < n; i++)
        if (qname[i] >= 'A' && qname[i] <= 'Z')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_net_rule r;
    char *s;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        (void)bl_dns_answers(data + 1, size - 1, check_answer, NULL);
        return 0;
    }
    if (data[0] & 2) {
        struct bl_net_flow fl;
        /* a flow to check lies inside the frame */
        if (bl_net_guest_frame(data + 1, size - 1, &fl) == BL_NET_CHECK &&
            (fl.l4_off + 8 > size - 1 || fl.l4_off + fl.payload > size - 1))
            abort();
        return 0;
    }
    s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (bl_net_rule_parse(&r, s) == 0) {
        /* a name rule matches its own name; a wildcard matches one label below it */
        char below[BL_NET_NAME_MAX + 8];
        if (r.kind == BL_NET_NAME && !bl_net_rule_matches_name(&r, r.name))
            abort();
        if (r.kind == BL_NET_WILDCARD && strlen(r.name) + 2 <= BL_NET_NAME_MAX) {
            strcpy(below, "x.");
            strcat(below, r.name);
            if (!bl_net_rule_matches_name(&r, below) || bl_net_rule_matches_name(&r, r.name))
                abort();
        }
        if (r.kind == BL_NET_CIDR && (r.net & ~r.mask) != 0)
            abort();
    }
    free(s);
    return 0;
}
