/* untar.h — extracting an untrusted tar stream (a box's copy-out) beneath one host path with
 * libarchive: names resolved beneath the destination only, no link followed, capped sizes. */
#ifndef BL_UNTAR_H
#define BL_UNTAR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BL_UNTAR_HEADER_MAX (2u << 20) /* bytes one entry's headers (pax, long names) may take */
#define BL_UNTAR_PATH_MAX   4096       /* longest entry name */

struct bl_untar_opts {
    int overwrite;        /* replace existing non-directories */
    int include_parent;   /* see boxlite_copy_options */
    uint64_t max_bytes;   /* sizes of all entries together (holes included) */
    uint64_t max_entries; /* entries (pax headers included) */
    const char *name;     /* what the top entry is called inside an existing directory dest:
                           * the requested source's last component, never the archive's
                           * (NULL keeps the archive's: for the fuzzer, not for a box) */
};

/* Where the input comes from: fill *buf with up to the next bytes and return how many, 0 at
 * the end, < 0 on an error (with bl_err set). */
typedef ssize_t (*bl_untar_read_fn)(void *ctx, const void **buf);

/* Extract the stream to dest following `docker cp`'s rules: dest an existing directory →
 * the archive's top entry lands inside it as o->name (or, for a directory without
 * include_parent, its contents do); otherwise the top entry is created as dest. Every later
 * entry must lie under the top entry. Only regular files, directories and symlinks are made
 * (devices, fifos, sockets are skipped; hard links refused); modes lose setuid, setgid and
 * sticky and are masked by the caller's umask; ownership stays the caller's; holes stay holes.
 * Returns 0 or a BOXLITE_E* code with a message naming the entry. */
int bl_untar(const char *dest, const struct bl_untar_opts *o, bl_untar_read_fn fn, void *ctx);

#endif
