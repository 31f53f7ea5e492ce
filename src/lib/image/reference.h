/* reference.h — image references parsed like Docker's ("alpine", "ghcr.io/o/i:t",
 * "host:5000/x@sha256:…"): registry, repository, tag, digest, and the canonical form. */
#ifndef BL_REFERENCE_H
#define BL_REFERENCE_H

#define BL_REF_DEFAULT_REGISTRY "docker.io"
#define BL_REF_MAX              512

struct bl_ref {
    char *registry;   /* "docker.io", "127.0.0.1:5000" */
    char *repository; /* "library/alpine" */
    char *tag;        /* "latest" unless a digest alone was given; NULL then */
    char *digest;     /* "sha256:<64 hex>" or NULL */
    int short_name;   /* no registry was written: registries with search apply */
};

/* Parse s. Defaults: registry docker.io, "library/" for a single name on docker.io, tag
 * "latest" when neither tag nor digest is given. out is written only on success and owns
 * its strings (bl_ref_clear). */
int bl_ref_parse(struct bl_ref *out, const char *s);

/* The same reference on another registry: single names there get "library/" only when
 * with_library is set (Docker Hub mirrors use it). */
int bl_ref_with_registry(struct bl_ref *out, const struct bl_ref *ref, const char *registry,
                         int with_library);

/* "registry/repository:tag", "registry/repository@digest" or both; malloc'd. */
char *bl_ref_string(const struct bl_ref *ref);

/* Free ref's strings and zero it; accepts an already cleared ref. */
void bl_ref_clear(struct bl_ref *ref);

/* 1 when s is "sha256:" and 64 lower-case hex digits. */
int bl_digest_valid(const char *s);

#endif
