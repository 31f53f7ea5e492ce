/* bounds.c — the limits table (name, default, environment variable) and its reader; every
 * bound that stands between hostile input and the host's disk, memory or time is here. */
#include "bounds.h"

#include <stdio.h>
#include <stdlib.h>

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static const struct {
    const char *env;
    uint64_t def;
} table[BL_LIMIT_COUNT] = {
    [BL_LIMIT_IMAGE_BYTES] = {"BOXLITE_MAX_IMAGE_BYTES", 32 * GiB},
    [BL_LIMIT_IMAGE_FILE] = {"BOXLITE_MAX_IMAGE_FILE", 16 * GiB},
    [BL_LIMIT_IMAGE_ENTRIES] = {"BOXLITE_MAX_IMAGE_ENTRIES", 500000},
    [BL_LIMIT_IMAGE_DISK] = {"BOXLITE_MAX_IMAGE_DISK", 128 * GiB},
    [BL_LIMIT_CONSOLE] = {"BOXLITE_MAX_CONSOLE", 1 * MiB},
    [BL_LIMIT_PULL_SECS] = {"BOXLITE_PULL_TIMEOUT", 3600},
    [BL_LIMIT_BLOB_SECS] = {"BOXLITE_REQUEST_TIMEOUT", 1800},
    [BL_LIMIT_STALL_SECS] = {"BOXLITE_STALL_TIMEOUT", 60},
    [BL_LIMIT_IMPORT_CPUS] = {"BOXLITE_MAX_IMPORT_CPUS", 0},
    [BL_LIMIT_IMPORT_MEMORY] = {"BOXLITE_MAX_IMPORT_MEMORY", 0},
    [BL_LIMIT_IMPORT_DISK] = {"BOXLITE_MAX_IMPORT_DISK", 256},
    [BL_LIMIT_MAIN_LOG] = {"BOXLITE_MAX_MAIN_LOG", 4 * MiB},
    [BL_LIMIT_SHARED_RAM] = {"BOXLITE_SHARED_RAM", 0},
};

uint64_t bl_limit(enum bl_limit which)
{
    const char *s = which < BL_LIMIT_COUNT ? getenv(table[which].env) : NULL;
    char *end = NULL;
    unsigned long long v;
    unsigned shift = 0;

    if (which >= BL_LIMIT_COUNT)
        return 0;
    if (!s || *s < '0' || *s > '9')
        return table[which].def;
    v = strtoull(s, &end, 10);
    switch (*end | 0x20) {
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    default:
        if (*end)
            return table[which].def;
    }
    if (shift && (end[1] || v > (~0ull >> shift)))
        return table[which].def;
    return (uint64_t)v << shift;
}

const char *bl_limit_env(enum bl_limit which)
{
    return which < BL_LIMIT_COUNT ? table[which].env : "";
}

const char *bl_limit_bytes(char *buf, unsigned n, uint64_t v)
{
    if (v >= GiB && v % GiB == 0)
        snprintf(buf, n, "%llu GiB", (unsigned long long)(v / GiB));
    else if (v >= MiB && v % MiB == 0)
        snprintf(buf, n, "%llu MiB", (unsigned long long)(v / MiB));
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)v);
    return buf;
}
