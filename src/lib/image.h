/* image.h — images as boxes use them: the read-only base ext4 in the store plus the image
 * config (env, entrypoint, cmd, working dir, user) that execs in its boxes inherit. */
#ifndef BL_IMAGE_H
#define BL_IMAGE_H

#include <stddef.h>

#include "boxlite.h"

struct bl_image {
    char *ref;         /* as resolved, e.g. "default" or "docker.io/library/alpine:3.20" */
    char *base_path;   /* $HOME/images/rootfs/<digest>.ext4, read-only */
    char **env;        /* "KEY=VALUE", NULL-terminated (never NULL) */
    char **entrypoint; /* NULL-terminated, may be empty */
    char **cmd;        /* NULL-terminated, may be empty */
    char *workdir;     /* "" → "/" */
    char *user;        /* "" → root */
};

/* Make the image named ref ready in the store (NULL or "" → the built-in default) and
 * return its base and config. *out belongs to the caller: bl_image_free. */
int bl_image_open(struct bl_image **out, boxlite_runtime *rt, const char *ref);
void bl_image_free(struct bl_image *img);

#endif
