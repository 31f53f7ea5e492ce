/* manifest.h — the OCI / Docker schema2 JSON documents of an image: index (manifest list),
 * manifest and config, parsed with size and count caps (they come from the network). */
#ifndef BL_MANIFEST_H
#define BL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define BL_MANIFEST_MAX   (4u << 20) /* manifests and indexes */
#define BL_CONFIG_MAX     (8u << 20) /* image configs */
#define BL_LAYERS_MAX     256
#define BL_CONFIG_STR_MAX 4096 /* entries of Env, Entrypoint, Cmd */

#define BL_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define BL_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define BL_MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define BL_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define BL_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BL_MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

enum bl_compression { BL_COMP_NONE, BL_COMP_GZIP, BL_COMP_ZSTD };

struct bl_descriptor {
    char *media_type;
    char *digest; /* "sha256:<hex>" */
    uint64_t size;
    enum bl_compression comp; /* layers only */
};

enum bl_manifest_kind { BL_MANIFEST_INDEX = 1, BL_MANIFEST_IMAGE = 2 };

struct bl_manifest {
    enum bl_manifest_kind kind;
    /* BL_MANIFEST_INDEX: the entry for the wanted platform */
    struct bl_descriptor platform_manifest;
    /* BL_MANIFEST_IMAGE */
    struct bl_descriptor config;
    struct bl_descriptor *layers;
    size_t n_layers;
};

/* Parse a manifest or index. content_type is the HTTP Content-Type (may be NULL); the
 * document's own mediaType wins. For an index, the entry for os/arch is chosen
 * (ENOTFOUND when there is none). */
int bl_manifest_parse(struct bl_manifest *out, const char *body, size_t len,
                      const char *content_type, const char *os, const char *arch);
void bl_manifest_clear(struct bl_manifest *m);

/* The media types this build accepts in an Accept header, comma-separated. */
const char *bl_manifest_accept(void);

struct bl_image_config {
    char **env, **entrypoint, **cmd; /* NULL-terminated, never NULL */
    char *workdir, *user;            /* never NULL, may be "" */
    char *os, *arch;
    char **diff_ids; /* NULL-terminated */
    size_t n_diff_ids;
};

int bl_image_config_parse(struct bl_image_config *out, const char *body, size_t len);
void bl_image_config_clear(struct bl_image_config *c);

/* The machine's platform in OCI terms ("linux", "amd64"). */
const char *bl_platform_arch(void);

#endif
