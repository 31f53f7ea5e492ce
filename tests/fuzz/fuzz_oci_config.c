/* fuzz_oci_config.c — libFuzzer target for boxlite-runtime's one parser of OCI runtime-spec
 * documents: the input is parsed as a bundle's config.json, as exec's process.json and as
 * update's resources document, and
 * what a successful parse returns is checked against the parser's promises. */
#include "spec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A "." or ".." component anywhere in p (what the parser promises to refuse). */
static int climbs(const char *p)
{
    while (*p) {
        size_t n;
        while (*p == '/')
            p++;
        n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 1;
        p += n;
    }
    return 0;
}

static void check_process(const struct bl_oci_process *p)
{
    if (!p->args || !p->args[0] || !p->env || !p->cwd || p->cwd[0] != '/')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_oci_spec s;
    struct bl_oci_process p;
    struct bl_oci_resources r;
    char err[256];

    if (bl_oci_spec_parse(&s, (const char *)data, size, err, sizeof err) == 0) {
        if (!s.root_path || climbs(s.root_path) || !s.hostname ||
            (s.has_process && (check_process(&s.process), 0)) || (s.netns == 2 && !s.netns_path))
            abort();
        for (size_t i = 0; i < s.n_mounts; i++)
            if (s.mounts[i].destination[0] != '/' || climbs(s.mounts[i].destination))
                abort();
        bl_oci_spec_free(&s);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    if (bl_oci_process_parse(&p, (const char *)data, size, err, sizeof err) == 0) {
        check_process(&p);
        bl_oci_process_free(&p);
    }
    if (bl_oci_resources_parse(&r, (const char *)data, size, err, sizeof err) == 0) {
        if (r.memory_limit > (1ULL << 50) || r.pids_limit > (1ULL << 32))
            abort(); /* absurd values are refused, not passed on */
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
