/* layer.h — image layers (tar, gzip or zstd) onto the image filesystem: a first pass that
 * verifies the digest and every header before anything is written, then whiteouts and
 * entries applied in order through ext4.c. Nothing is extracted onto the host. */
#ifndef BL_LAYER_H
#define BL_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "ext4.h"

#define BL_LAYER_PATH_MAX 4096

struct bl_whiteout {
    char *path; /* the directory for an opaque whiteout, else the path removed */
    int opaque;
};

struct bl_layer_scan {
    struct bl_whiteout *whiteouts;
    size_t n_whiteouts;
    uint64_t bytes;   /* sum of regular file sizes */
    uint64_t entries; /* headers read */
};

/* What a scan may still admit, shared by an image's layers (bounds.h): decompressed bytes
 * (file data and headers), bytes of one file, entries. A scan takes what its layer uses. */
struct bl_layer_budget {
    uint64_t bytes, file, entries;
};

/* A budget of the image limits (BOXLITE_MAX_IMAGE_BYTES, _FILE, _ENTRIES). */
void bl_layer_budget_init(struct bl_layer_budget *b);

/* Take one entry of size bytes (path for the message) from b, or refuse it naming the
 * limit it would cross (EINVAL). */
int bl_layer_budget_take(struct bl_layer_budget *b, int64_t size, const char *path);

/* Pass 1: read the whole layer at path, checking its sha256 against digest (when not
 * NULL), every path ("..", absolute, over-long: refused), the archive's integrity and the
 * budget (NULL: the image limits for this layer alone). A layer over a limit is refused at
 * the header that crosses it, before its data is decompressed, with the limit named. */
int bl_layer_scan(struct bl_layer_scan *out, const char *path, const char *digest,
                  struct bl_layer_budget *budget);
void bl_layer_scan_clear(struct bl_layer_scan *s);

/* Pass 2: apply the scan's whiteouts, then every entry of the layer at path. */
int bl_layer_apply(struct bl_fs *fs, const char *path, const struct bl_layer_scan *scan);

/* A layer entry's path made relative and clean: "./a//b/" → "a/b", "." → "". EINVAL for
 * "..", an absolute path or one over BL_LAYER_PATH_MAX. out has BL_LAYER_PATH_MAX + 1. */
int bl_layer_clean_path(char *out, const char *in);

#endif
