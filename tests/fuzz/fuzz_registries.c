/* fuzz_registries.c — libFuzzer target for the reader of $BOXLITE_HOME/registries.json
 * (bl_registries_parse, src/lib/image/image.c). The input is the document, read twice into one
 * list (as a runtime's options and then the file would add to it). Every entry kept must have
 * a host, and no host may appear twice (the first setting for a host wins). */
#include "registries.h"
#include "registry.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_images *im = bl_images_new();
    const struct bl_registry_conf *c, *d;

    if (!im)
        abort();
    if (bl_registries_parse(im, (const char *)data, size, "registries.json") == 0)
        (void)bl_registries_parse(im, (const char *)data, size, "registries.json");
    for (size_t i = 0; (c = bl_images_conf_at(im, i)) != NULL; i++) {
        if (!c->host || !c->host[0]) {
            fprintf(stderr, "fuzz_registries: entry %zu has no host\n", i);
            abort();
        }
        for (size_t j = 0; j < i; j++) {
            d = bl_images_conf_at(im, j);
            if (strcmp(c->host, d->host) == 0) {
                fprintf(stderr, "fuzz_registries: host %s twice\n", c->host);
                abort();
            }
        }
    }
    bl_images_destroy(im);
    return 0;
}
