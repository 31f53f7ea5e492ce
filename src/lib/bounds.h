/* bounds.h — the resource limits that hold against hostile images, archives, registries and
 * guests: one table of names, defaults and environment overrides (docs/security.md). */
#ifndef BL_BOUNDS_H
#define BL_BOUNDS_H

#include <stdint.h>

enum bl_limit {
    BL_LIMIT_IMAGE_BYTES,   /* decompressed bytes of all of an image's layers */
    BL_LIMIT_IMAGE_FILE,    /* the size of one file in a layer */
    BL_LIMIT_IMAGE_ENTRIES, /* entries (headers) of all of an image's layers */
    BL_LIMIT_IMAGE_DISK,    /* the virtual size of an image's base disk */
    BL_LIMIT_CONSOLE,       /* console.log of a box (one older file is kept beside it) */
    BL_LIMIT_PULL_SECS,     /* one whole pull, every request of it together */
    BL_LIMIT_BLOB_SECS,     /* one registry request (a manifest, a blob, a token) */
    BL_LIMIT_STALL_SECS,    /* a registry transfer that moves no byte for this long */
    BL_LIMIT_IMPORT_CPUS,   /* cpus an untrusted archive may ask for (0: the host's) */
    BL_LIMIT_IMPORT_MEMORY, /* memory (MiB) an untrusted archive may ask for (0: the host's) */
    BL_LIMIT_IMPORT_DISK,   /* disk size (GB) an untrusted archive may ask for */
    BL_LIMIT_MAIN_LOG,      /* main.log of a box: its main process's output (one older kept) */
    BL_LIMIT_SHARED_RAM,    /* with a QEMU without x-cow (ours has it: shared, read-only,
                             * always): 1 maps a template's or snapshot's RAM file itself
                             * (clean pages shared; that QEMU opens it read-write, so a
                             * compromised one could write what other boxes read); 0: each its
                             * own copy */
    BL_LIMIT_COUNT
};

/* The limit's value: its environment variable when set to a number (suffixes k, m, g, t
 * are powers of 1024), else its default. Thread-safe. */
uint64_t bl_limit(enum bl_limit which);

/* The environment variable that sets it ("BOXLITE_MAX_IMAGE_BYTES"). Static storage. */
const char *bl_limit_env(enum bl_limit which);

/* A byte count for messages: "16 GiB", "512 MiB", "1000 bytes" (into buf of n bytes). */
const char *bl_limit_bytes(char *buf, unsigned n, uint64_t v);

#endif
