/* layer.h — image layers (tar, gzip or zstd) onto the image filesystem: a first pass that
 * verifies the digest and every header before anything is written, then whiteouts and
 * entries applied in order through ext4.c. Nothing is extracted onto the host. */
#ifndef BL_LAYER_H
#define BL_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "ext4.h"

#define BL_LAYER_PATH_MAX    4096
#define BL_LAYER_ENTRIES_MAX (4u << 20)

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

/* Pass 1: read the whole layer at path, checking its sha256 against digest (when not
 * NULL), every path ("..", absolute, over-long: refused) and the archive's integrity. */
int bl_layer_scan(struct bl_layer_scan *out, const char *path, const char *digest);
void bl_layer_scan_clear(struct bl_layer_scan *s);

/* Pass 2: apply the scan's whiteouts, then every entry of the layer at path. */
int bl_layer_apply(struct bl_fs *fs, const char *path, const struct bl_layer_scan *scan);

/* A layer entry's path made relative and clean: "./a//b/" → "a/b", "." → "". EINVAL for
 * "..", an absolute path or one over BL_LAYER_PATH_MAX. out has BL_LAYER_PATH_MAX + 1. */
int bl_layer_clean_path(char *out, const char *in);

#endif
