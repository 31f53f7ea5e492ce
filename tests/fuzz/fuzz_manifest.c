/* fuzz_manifest.c — libFuzzer target for the registry documents: the input is parsed as a
 * manifest or index (with and without a Content-Type) and as an image config. */
#include "manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_manifest m = {0};
    struct bl_image_config c = {0};
    const char *body = (const char *)data;

    if (bl_manifest_parse(&m, body, size, NULL, "linux", "amd64") == 0) {
        if (m.kind == BL_MANIFEST_IMAGE && (!m.config.digest || (m.n_layers && !m.layers)))
            abort();
        bl_manifest_clear(&m);
    }
    if (bl_manifest_parse(&m, body, size, BL_MT_DOCKER_LIST, "linux", "amd64") == 0)
        bl_manifest_clear(&m);
    if (bl_image_config_parse(&c, body, size) == 0) {
        if (!c.env || !c.cmd || !c.entrypoint || !c.workdir || !c.user)
            abort();
        bl_image_config_clear(&c);
    }
    return 0;
}
