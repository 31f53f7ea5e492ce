/* manifest.c — parsing OCI and Docker schema2 indexes, manifests and image configs with
 * jansson: every field type-checked, sizes and counts capped, unknown media types refused. */
#include "manifest.h"
#include "error.h"
#include "util.h"
#include "reference.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *type;
    enum bl_compression comp;
} layer_types[] = {
    {"application/vnd.oci.image.layer.v1.tar", BL_COMP_NONE},
    {"application/vnd.oci.image.layer.v1.tar+gzip", BL_COMP_GZIP},
    {"application/vnd.oci.image.layer.v1.tar+zstd", BL_COMP_ZSTD},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", BL_COMP_NONE},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", BL_COMP_GZIP},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", BL_COMP_ZSTD},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", BL_COMP_GZIP},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", BL_COMP_GZIP},
    {"application/vnd.docker.image.rootfs.diff.tar", BL_COMP_NONE},
};

const char *bl_manifest_accept(void)
{
    return BL_MT_OCI_INDEX ", " BL_MT_DOCKER_LIST ", " BL_MT_OCI_MANIFEST
                           ", " BL_MT_DOCKER_MANIFEST;
}

const char *bl_platform_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#else
    return "unknown";
#endif
}

static void descriptor_clear(struct bl_descriptor *d)
{
    free(d->media_type);
    free(d->digest);
    memset(d, 0, sizeof(*d));
}

void bl_manifest_clear(struct bl_manifest *m)
{
    if (!m)
        return;
    descriptor_clear(&m->platform_manifest);
    descriptor_clear(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        descriptor_clear(&m->layers[i]);
    free(m->layers);
    memset(m, 0, sizeof(*m));
}

static int descriptor_parse(struct bl_descriptor *out, json_t *o, const char *what)
{
    const char *mt = json_string_value(json_object_get(o, "mediaType"));
    const char *digest = json_string_value(json_object_get(o, "digest"));
    json_t *size = json_object_get(o, "size");

    if (!json_is_object(o) || !mt || !json_is_integer(size) || json_integer_value(size) < 0)
        return bl_err(BOXLITE_EPROTO, "%s: a descriptor lacks mediaType, digest or size", what);
    if (!bl_digest_valid(digest))
        return bl_err(BOXLITE_EPROTO, "%s: unsupported digest \"%.80s\" (only sha256)", what,
                      digest ? digest : "(none)");
    out->media_type = strdup(mt);
    out->digest = strdup(digest);
    out->size = (uint64_t)json_integer_value(size);
    if (!out->media_type || !out->digest) {
        descriptor_clear(out);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_index(struct bl_manifest *m, json_t *root, const char *os, const char *arch)
{
    json_t *list = json_object_get(root, "manifests");
    size_t i;
    json_t *e;

    if (!json_is_array(list))
        return bl_err(BOXLITE_EPROTO, "image index has no manifests array");
    json_array_foreach(list, i, e)
    {
        json_t *p = json_object_get(e, "platform");
        const char *pos = json_string_value(json_object_get(p, "os"));
        const char *parch = json_string_value(json_object_get(p, "architecture"));
        const char *mt = json_string_value(json_object_get(e, "mediaType"));
        if (!pos || !parch || strcmp(pos, os) != 0 || strcmp(parch, arch) != 0)
            continue;
        if (mt && strcmp(mt, BL_MT_OCI_MANIFEST) != 0 && strcmp(mt, BL_MT_DOCKER_MANIFEST) != 0)
            continue;
        m->kind = BL_MANIFEST_INDEX;
        return descriptor_parse(&m->platform_manifest, e, "image index");
    }
    return bl_err(BOXLITE_ENOTFOUND, "the image has no manifest for %s/%s", os, arch);
}

static int layer_comp(enum bl_compression *out, const char *mt)
{
    for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++) {
        if (strcmp(mt, layer_types[i].type) == 0) {
            *out = layer_types[i].comp;
            return 0;
        }
    }
    return bl_err(BOXLITE_EPROTO, "unsupported layer media type \"%.120s\"", mt);
}

static int parse_image(struct bl_manifest *m, json_t *root)
{
    json_t *layers = json_object_get(root, "layers");
    json_t *e;
    size_t i;
    int rc;

    m->kind = BL_MANIFEST_IMAGE;
    rc = descriptor_parse(&m->config, json_object_get(root, "config"), "manifest config");
    if (rc != 0)
        return rc;
    if (strcmp(m->config.media_type, BL_MT_OCI_CONFIG) != 0 &&
        strcmp(m->config.media_type, BL_MT_DOCKER_CONFIG) != 0)
        return bl_err(BOXLITE_EPROTO,
                      "unsupported config media type \"%.120s\" (not a "
                      "container image?)",
                      m->config.media_type);
    if (m->config.size > BL_CONFIG_MAX)
        return bl_err(BOXLITE_EPROTO, "image config of %llu bytes is over the %u byte cap",
                      (unsigned long long)m->config.size, BL_CONFIG_MAX);
    if (!json_is_array(layers))
        return bl_err(BOXLITE_EPROTO, "manifest has no layers array");
    if (json_array_size(layers) > BL_LAYERS_MAX)
        return bl_err(BOXLITE_EPROTO, "manifest has %zu layers (cap %d)", json_array_size(layers),
                      BL_LAYERS_MAX);
    m->layers = calloc(json_array_size(layers) + 1, sizeof(*m->layers));
    if (!m->layers)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    json_array_foreach(layers, i, e)
    {
        rc = descriptor_parse(&m->layers[i], e, "manifest layer");
        if (rc != 0)
            return rc;
        m->n_layers = i + 1;
        rc = layer_comp(&m->layers[i].comp, m->layers[i].media_type);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int bl_manifest_parse(struct bl_manifest *out, const char *body, size_t len,
                      const char *content_type, const char *os, const char *arch)
{
    struct bl_manifest m = {0};
    json_error_t jerr;
    json_t *root = NULL;
    const char *mt;
    int rc;

    if (len > BL_MANIFEST_MAX)
        return bl_err(BOXLITE_EPROTO, "manifest of %zu bytes is over the %u byte cap", len,
                      BL_MANIFEST_MAX);
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        rc = bl_err(BOXLITE_EPROTO, "manifest is not a JSON object: %s", jerr.text);
        goto out;
    }
    mt = json_string_value(json_object_get(root, "mediaType"));
    if (!mt && content_type && *content_type)
        mt = content_type;
    if (!mt && json_object_get(root, "manifests"))
        mt = BL_MT_OCI_INDEX;
    else if (!mt && json_object_get(root, "layers"))
        mt = BL_MT_OCI_MANIFEST;
    if (json_integer_value(json_object_get(root, "schemaVersion")) != 2) {
        rc = bl_err(BOXLITE_EPROTO, "unsupported manifest schemaVersion (only 2)");
    } else if (mt && (strcmp(mt, BL_MT_OCI_INDEX) == 0 || strcmp(mt, BL_MT_DOCKER_LIST) == 0)) {
        rc = parse_index(&m, root, os, arch);
    } else if (mt &&
               (strcmp(mt, BL_MT_OCI_MANIFEST) == 0 || strcmp(mt, BL_MT_DOCKER_MANIFEST) == 0)) {
        rc = parse_image(&m, root);
    } else {
        rc = bl_err(BOXLITE_EPROTO, "unsupported manifest media type \"%.120s\"",
                    mt ? mt : "(none)");
    }
out:
    json_decref(root);
    if (rc != 0)
        bl_manifest_clear(&m);
    else
        *out = m;
    return rc;
}

/* A JSON array of strings (or null/absent → empty) as a NULL-terminated vector. */
static int strv_from_json(char ***out, json_t *a, const char *what)
{
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    char **v;

    if (a && !json_is_null(a) && !json_is_array(a))
        return bl_err(BOXLITE_EPROTO, "image config: %s is not an array", what);
    if (n > 65536)
        return bl_err(BOXLITE_EPROTO, "image config: %s has %zu entries", what, n);
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || strlen(s) > BL_CONFIG_STR_MAX) {
            bl_strv_free(v);
            return bl_err(BOXLITE_EPROTO,
                          "image config: %s[%zu] is not a string of at most %d "
                          "bytes",
                          what, i, BL_CONFIG_STR_MAX);
        }
        v[i] = strdup(s);
        if (!v[i]) {
            bl_strv_free(v);
            return bl_err(BOXLITE_ENOMEM, "out of memory");
        }
    }
    *out = v;
    return 0;
}

static char *str_or_empty(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s && strlen(s) <= BL_CONFIG_STR_MAX ? s : "");
}

void bl_image_config_clear(struct bl_image_config *c)
{
    if (!c)
        return;
    bl_strv_free(c->env);
    bl_strv_free(c->entrypoint);
    bl_strv_free(c->cmd);
    bl_strv_free(c->diff_ids);
    free(c->workdir);
    free(c->user);
    free(c->os);
    free(c->arch);
    memset(c, 0, sizeof(*c));
}

int bl_image_config_parse(struct bl_image_config *out, const char *body, size_t len)
{
    struct bl_image_config c = {0};
    json_error_t jerr;
    json_t *root = NULL, *cfg, *rootfs;
    int rc;

    if (len > BL_CONFIG_MAX)
        return bl_err(BOXLITE_EPROTO, "image config of %zu bytes is over the cap", len);
    root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        rc = bl_err(BOXLITE_EPROTO, "image config is not a JSON object: %s", jerr.text);
        goto out;
    }
    cfg = json_object_get(root, "config");
    rootfs = json_object_get(root, "rootfs");
    rc = strv_from_json(&c.env, json_object_get(cfg, "Env"), "Env");
    if (rc == 0)
        rc = strv_from_json(&c.entrypoint, json_object_get(cfg, "Entrypoint"), "Entrypoint");
    if (rc == 0)
        rc = strv_from_json(&c.cmd, json_object_get(cfg, "Cmd"), "Cmd");
    if (rc == 0)
        rc = strv_from_json(&c.diff_ids, json_object_get(rootfs, "diff_ids"), "diff_ids");
    if (rc != 0)
        goto out;
    while (c.diff_ids[c.n_diff_ids])
        c.n_diff_ids++;
    c.workdir = str_or_empty(cfg, "WorkingDir");
    c.user = str_or_empty(cfg, "User");
    c.os = str_or_empty(root, "os");
    c.arch = str_or_empty(root, "architecture");
    if (!c.workdir || !c.user || !c.os || !c.arch)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
out:
    json_decref(root);
    if (rc != 0)
        bl_image_config_clear(&c);
    else
        *out = c;
    return rc;
}
