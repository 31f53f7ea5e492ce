/* fuzz_reference.c — libFuzzer target for the small text parsers that see network or user
 * input: image references and WWW-Authenticate challenge headers. */
#include "reference.h"
#include "registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct bl_ref r = {0};
    struct bl_www_auth a;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (bl_ref_parse(&r, s) == 0) {
        char *back = bl_ref_string(&r);
        struct bl_ref again = {0};
        /* the canonical form parses to the same reference */
        if (!back || bl_ref_parse(&again, back) != 0 || strcmp(again.registry, r.registry) != 0 ||
            strcmp(again.repository, r.repository) != 0)
            abort();
        bl_ref_clear(&again);
        free(back);
        bl_ref_clear(&r);
    }
    if (bl_www_auth_parse(&a, s) == 0)
        bl_www_auth_clear(&a);
    free(s);
    return 0;
}
