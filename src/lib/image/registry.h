/* registry.h — the Distribution API v2 client (libcurl): registry settings, the
 * WWW-Authenticate challenge parser, manifests and blobs of one repository. */
#ifndef BL_REGISTRY_H
#define BL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define BL_WWW_AUTH_MAX 8192 /* a longer challenge header is refused */

/* One configured registry (boxlite_registry, or an entry of registries.json). */
struct bl_registry_conf {
    char *host; /* "127.0.0.1:5000", "docker.io" */
    int http;   /* plain http (only when configured so) */
    int skip_verify;
    int search; /* short names are tried here */
    char *username, *password, *token, *ca_file;
};
void bl_registry_conf_clear(struct bl_registry_conf *c);

/* A parsed WWW-Authenticate challenge. scheme is "bearer" or "basic" (lower case). */
struct bl_www_auth {
    char scheme[16];
    char *realm, *service, *scope;
};
int bl_www_auth_parse(struct bl_www_auth *out, const char *header);
void bl_www_auth_clear(struct bl_www_auth *a);

/* Transfer failures that a retry may cure (connection dropped, timeout) return this. */
#define BL_REGISTRY_RETRYABLE BOXLITE_EAGAIN

struct bl_registry;

/* A client for host/repository. conf may be NULL (https, system CAs, anonymous). */
int bl_registry_open(struct bl_registry **out, const char *host, const char *repository,
                     const struct bl_registry_conf *conf);
void bl_registry_free(struct bl_registry *r);

/* GET the manifest for a tag or digest: body (≤ BL_MANIFEST_MAX, NUL-terminated) and its
 * Content-Type. ENOTFOUND for 404. */
int bl_registry_manifest(char **body_out, size_t *len_out, char **ctype_out, struct bl_registry *r,
                         const char *reference);

typedef int (*bl_sink_fn)(void *ctx, const void *buf, size_t n);

/* GET a blob, handing its bytes to sink as they arrive (redirects to blob storage are
 * followed). ENOTFOUND for 404, BL_REGISTRY_RETRYABLE when the transfer broke. */
int bl_registry_blob(struct bl_registry *r, const char *digest, bl_sink_fn sink, void *ctx);

#endif
