/* image.h — images as boxes use them: the read-only base ext4 in the store plus the image
 * config (env, entrypoint, cmd, working dir, user) that execs in its boxes inherit; and the
 * runtime's image state (registry settings) behind the public Images API. */
#ifndef BL_IMAGE_H
#define BL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "boxlite.h"

struct bl_image {
    char *ref;         /* as resolved, e.g. "default" or "docker.io/library/alpine:3.20" */
    char *base_path;   /* $HOME/images/rootfs/<digest>.ext4, read-only */
    char **env;        /* "KEY=VALUE", NULL-terminated (never NULL) */
    char **entrypoint; /* NULL-terminated, may be empty */
    char **cmd;        /* NULL-terminated, may be empty */
    char *workdir;     /* "" → "/" */
    char *user;        /* "" → root */
    char *id;          /* config digest "sha256:…", or "" for the default image */
    char *rootfs;      /* <hex> of base_path, or "" (base_path NULL) for a standalone disk */
};

/* Make the image named ref ready in the store (NULL or "" → the built-in default), pulling
 * it when it is not cached, and return its base and config. *out: bl_image_free. */
int bl_image_open(struct bl_image **out, boxlite_runtime *rt, const char *ref);
void bl_image_free(struct bl_image *img);

/* The image a box is pinned to: config digest id ("" → the built-in default's config) and
 * base images/rootfs/<rootfs>.ext4 ("" → none), named ref. Never resolves ref nor pulls. */
int bl_image_open_pinned(struct bl_image **out, boxlite_runtime *rt, const char *ref,
                         const char *id, const char *rootfs);

struct bl_repair;
/* Report (and with rp->fix remove) image bases no image and no box uses (doctor). */
void bl_images_doctor(boxlite_runtime *rt, struct bl_repair *rp);

/* The config digest of the image named ref if it is in the store (ENOTFOUND otherwise; no
 * pull). *out malloc'd. */
int bl_image_find_config(char **out, boxlite_runtime *rt, const char *ref);

/* Runtime open/free: keep the registries of the options (version 2); accepts NULL opts. */
int bl_images_init(boxlite_runtime *rt, const boxlite_runtime_options *opts);
void bl_images_free(boxlite_runtime *rt);

/* What pull.c and import.c share with image.c. */
struct bl_manifest;
struct bl_image_record;
struct bl_pull_progress_ctx {
    boxlite_pull_progress_fn fn;
    void *ctx;
};
/* Turn the layers of manifest (blobs already in the store) into images/rootfs/<id>.ext4 and
 * record the image under name. *out (may be NULL) gets the record. */
/* After an image was refused (a bomb, a bad layer): drop the blobs no record refers to
 * (skipped while another process pulls or imports), keeping this thread's error message.
 * Call without the shared "gc" lock held. Returns rc. */
int bl_image_gc_failed(boxlite_runtime *rt, int rc);

/* An image reference from an untrusted source (a .boxlite archive): 0 when it names the
 * built-in image, an image in the store, or one whose registry the user configured (or
 * docker.io, the default); EINVAL otherwise, so that opening it never pulls from a host
 * the archive chose. */
int bl_image_check_untrusted(boxlite_runtime *rt, const char *ref);

int bl_image_build(struct bl_image_record *out, boxlite_runtime *rt, const char *name,
                   const char *manifest_digest, const struct bl_manifest *m,
                   const struct bl_pull_progress_ctx *progress);

/* The same progress record every phase reports; fn may be NULL. */
void bl_image_report(const struct bl_pull_progress_ctx *p, int phase, const char *name,
                     const char *digest, unsigned layer, unsigned layers, uint64_t bytes,
                     uint64_t total);

/* Pull ref (resolving short names through the search registries); *out gets the record. */
int bl_image_pull_record(struct bl_image_record *out, boxlite_runtime *rt, const char *ref,
                         const struct bl_pull_progress_ctx *progress);

/* The settings for a registry host (NULL when none are configured), and the registries
 * with search set, in order (*out malloc'd, entries borrowed). */
struct bl_registry_conf;
struct bl_ref;
const struct bl_registry_conf *bl_images_registry(boxlite_runtime *rt, const char *host);
size_t bl_images_search(const struct bl_registry_conf ***out, boxlite_runtime *rt);

/* The names a reference stands for, in the order they are tried (short names: each search
 * registry, with "library/" and then without). *out: bl_ref_clear each, then free. */
int bl_image_candidates(struct bl_ref **out, size_t *n_out, boxlite_runtime *rt,
                        const struct bl_ref *ref);

/* Import an OCI layout, a docker-save tarball or a plain rootfs directory/tarball. */
int bl_image_import_record(struct bl_image_record *out, boxlite_runtime *rt, const char *path,
                           const char *name);

#endif
