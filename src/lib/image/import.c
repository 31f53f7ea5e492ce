/* import.c — images from local files: an OCI image layout directory or tarball, a `docker
 * save` tarball, or a plain root filesystem (directory or tarball) made into one layer. */
#include "error.h"
#include "image.h"
#include "importplan.h"
#include "layer.h"
#include "manifest.h"
#include "reference.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_MAX     (4u << 20)
#define COPY_BUF     (256 * 1024)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Copy a file into the store; expected may be NULL. */
static int store_file(char digest_out[72], const char *home, const char *path, const char *expected)
{
    struct bl_blob_writer *w = NULL;
    char *buf = malloc(COPY_BUF);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        rc = bl_err_errno(bl_code_from_errno(errno), errno, "open %s", path);
    else if (!buf)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else if (expected && bl_store_has_blob(home, expected)) {
        memcpy(digest_out, expected, 72);
        goto out;
    }
    if (rc == 0)
        rc = bl_blob_begin(&w, home, 0);
    while (rc == 0) {
        ssize_t n = read(fd, buf, COPY_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "read %s", path);
        if (n <= 0)
            break;
        rc = bl_blob_write(w, buf, (size_t)n);
    }
    if (rc == 0)
        rc = bl_blob_commit(w, expected, digest_out);
    if (rc != 0)
        bl_err_wrap(rc, "%s", path);
out:
    bl_blob_free(w);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static int store_json(char digest_out[72], uint64_t *size_out, const char *home, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    struct bl_blob_writer *w = NULL;
    int rc = text ? bl_blob_begin(&w, home, 0) : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0)
        rc = bl_blob_write(w, text, strlen(text));
    if (rc == 0)
        rc = bl_blob_commit(w, NULL, digest_out);
    if (rc == 0 && size_out)
        *size_out = strlen(text);
    bl_blob_free(w);
    free(text);
    return rc;
}

/* The layer media type from the blob's first bytes. */
static const char *sniff_layer_type(const char *home, const char *digest)
{
    char *p = bl_store_blob_path(home, digest);
    unsigned char m[4] = {0};
    int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, m, sizeof(m)) : -1;

    if (fd >= 0)
        close(fd);
    free(p);
    if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
        return "application/vnd.oci.image.layer.v1.tar+gzip";
    if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
        return "application/vnd.oci.image.layer.v1.tar+zstd";
    return "application/vnd.oci.image.layer.v1.tar";
}

static uint64_t blob_size(const char *home, const char *digest)
{
    char *p = bl_store_blob_path(home, digest);
    struct stat st;
    uint64_t n = p && stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;

    free(p);
    return n;
}

/* Store a manifest for config + layers (all in the store) and plan the image by it. */
static int make_manifest(struct bl_import_plan *p, const char *home, const char *name,
                         const char *config_digest, const char *const *layers, size_t n)
{
    json_t *man =
        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                  BL_MT_OCI_MANIFEST, "config", "mediaType", BL_MT_OCI_CONFIG, "digest",
                  config_digest, "size", (json_int_t)blob_size(home, config_digest), "layers");
    json_t *arr = json_object_get(man, "layers");
    char *text = NULL;
    size_t len = 0;
    int rc = man ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!bl_store_has_blob(home, layers[i]))
            rc = bl_err(BOXLITE_ENOTFOUND, "layer %s is missing", layers[i]);
        else
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:I}", "mediaType",
                                            sniff_layer_type(home, layers[i]), "digest", layers[i],
                                            "size", (json_int_t)blob_size(home, layers[i])));
    }
    if (rc == 0)
        rc = store_json(p->manifest_digest, NULL, home, man);
    if (rc == 0)
        rc = bl_store_read_blob(&text, &len, home, p->manifest_digest, BL_MANIFEST_MAX);
    if (rc == 0)
        rc = bl_manifest_parse(&p->m, text, len, NULL, "linux", bl_platform_arch());
    if (rc == 0) {
        p->name = strdup(name);
        rc = p->name ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    free(text);
    json_decref(man);
    return rc;
}

/* A config for a bare root filesystem. */
static int plain_config(char digest_out[72], const char *home, const char *layer)
{
    json_t *cfg = json_pack("{s:s, s:s, s:{s:[s], s:[s]}, s:{s:s, s:[s]}}", "architecture",
                            bl_platform_arch(), "os", "linux", "config", "Env", DEFAULT_PATH, "Cmd",
                            "/bin/sh", "rootfs", "type", "layers", "diff_ids", layer);
    int rc =
        cfg ? store_json(digest_out, NULL, home, cfg) : bl_err(BOXLITE_ENOMEM, "out of memory");

    json_decref(cfg);
    return rc;
}

/* ---- names ------------------------------------------------------------------------------ */

static int canonical(char **out, const char *name)
{
    struct bl_ref r = {0};
    int rc = bl_ref_parse(&r, name);

    if (rc == 0) {
        *out = bl_ref_string(&r);
        rc = *out ? 0 : BOXLITE_ENOMEM;
    }
    bl_ref_clear(&r);
    return rc;
}

/* "localhost/<file name, lower-cased, extension dropped>:<tag or latest>" */
static char *default_name(const char *path, const char *tag)
{
    const char *base = strrchr(path, '/');
    char buf[128];
    size_t n = 0;

    base = base && base[1] ? base + 1 : path;
    for (; *base && n < sizeof(buf) - 1; base++) {
        if (strcmp(base, ".tar") == 0 || strncmp(base, ".tar.", 5) == 0 ||
            strcmp(base, ".tgz") == 0)
            break;
        buf[n++] = isalnum((unsigned char)*base) ? (char)tolower((unsigned char)*base) : '-';
    }
    while (n > 0 && !isalnum((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    return bl_strdupf("localhost/%s:%s", n && isalnum((unsigned char)buf[0]) ? buf : "imported",
                      tag ? tag : "latest");
}

/* ---- OCI index (directory or archive) ------------------------------------------------- */

typedef int (*get_blob_fn)(void *ctx, const char *digest);

static int from_oci_index(struct bl_import_plan *p, const char *home, const char *index_text,
                          size_t index_len, get_blob_fn get, void *ctx, const char *path,
                          const char *name)
{
    json_t *idx = json_loadb(index_text, index_len, 0, NULL);
    json_t *first = json_array_get(json_object_get(idx, "manifests"), 0);
    const char *digest = json_string_value(json_object_get(first, "digest"));
    const char *refname = json_string_value(json_object_get(json_object_get(first, "annotations"),
                                                            "org.opencontainers.image.ref.name"));
    struct bl_manifest m = {0};
    char *text = NULL, *final = NULL;
    char mdigest[72];
    size_t len = 0;
    int rc = 0;

    if (!bl_digest_valid(digest)) {
        rc = bl_err(BOXLITE_EPROTO, "index.json lists no usable manifest");
        goto out;
    }
    memcpy(mdigest, digest, 72);
    for (int hop = 0; hop < 2 && rc == 0; hop++) {
        rc = get(ctx, mdigest);
        if (rc == 0)
            rc = bl_store_read_blob(&text, &len, home, mdigest, BL_MANIFEST_MAX);
        if (rc == 0)
            rc = bl_manifest_parse(&m, text, len, NULL, "linux", bl_platform_arch());
        free(text);
        text = NULL;
        if (rc != 0 || m.kind == BL_MANIFEST_IMAGE)
            break;
        if (hop == 1)
            rc = bl_err(BOXLITE_EPROTO, "nested image indexes are not supported");
        memcpy(mdigest, m.platform_manifest.digest, 72);
        bl_manifest_clear(&m);
    }
    if (rc == 0)
        rc = get(ctx, m.config.digest);
    for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
        rc = get(ctx, m.layers[i].digest);
    if (rc != 0)
        goto out;
    if (name)
        rc = canonical(&final, name);
    else if (refname && (strchr(refname, '/') || strchr(refname, '@')))
        rc = canonical(&final, refname);
    else
        final = default_name(path, refname && *refname ? refname : NULL);
    if (rc == 0 && !final)
        rc = BOXLITE_ENOMEM;
    if (rc == 0) { /* the plan takes the manifest and the name */
        p->m = m;
        memset(&m, 0, sizeof(m));
        memcpy(p->manifest_digest, mdigest, 72);
        p->name = final;
        final = NULL;
    }
out:
    bl_manifest_clear(&m);
    json_decref(idx);
    free(final);
    return rc;
}

struct oci_dir {
    const char *home;
    const char *dir;
};

static int oci_dir_get(void *ctx, const char *digest)
{
    struct oci_dir *d = ctx;
    char *p = bl_strdupf("%s/blobs/sha256/%s", d->dir, digest + 7);
    char got[72];
    int rc = p ? store_file(got, d->home, p, digest) : BOXLITE_ENOMEM;

    free(p);
    return rc;
}

static int import_oci_dir(struct bl_import_plan *plan, const char *home, const char *dir,
                          const char *name)
{
    struct oci_dir d = {home, dir};
    char *p = bl_strdupf("%s/index.json", dir);
    char *text = NULL;
    size_t len = 0;
    int rc = p ? bl_read_file(&text, &len, p, META_MAX) : BOXLITE_ENOMEM;

    if (rc == 0)
        rc = from_oci_index(plan, home, text, len, oci_dir_get, &d, dir, name);
    free(text);
    free(p);
    return rc;
}

/* ---- archives ------------------------------------------------------------------------- */

static struct archive *open_archive(const char *path)
{
    struct archive *a = archive_read_new();

    if (!a)
        return NULL;
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    if (archive_read_open_filename(a, path, COPY_BUF) != ARCHIVE_OK) {
        bl_err(BOXLITE_EINVAL, "%s is not a tar archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

static const char *member_name(struct archive_entry *e)
{
    const char *n = archive_entry_pathname(e);

    while (n && n[0] == '.' && n[1] == '/')
        n += 2;
    return n ? n : "";
}

/* 1 for an image archive (docker save or OCI), 0 for a root filesystem tarball. */
static int archive_kind(int *out, const char *path)
{
    struct archive *a = open_archive(path);
    struct archive_entry *e;
    struct bl_layer_budget b;
    int kind = 0, r, seen = 0, rc = 0;

    if (!a)
        return BOXLITE_EINVAL;
    bl_layer_budget_init(&b);
    while (seen < 100000 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *n = member_name(e);
        seen++;
        rc = bl_layer_budget_take(&b, archive_entry_size(e), n);
        if (rc != 0)
            break;
        if (strcmp(n, "manifest.json") == 0 || strcmp(n, "oci-layout") == 0 ||
            strcmp(n, "index.json") == 0) {
            kind = 1;
            break;
        }
    }
    archive_read_free(a);
    *out = kind;
    return rc;
}

struct members {
    json_t *digests; /* member path → digest */
    char *manifest_json, *index_json;
    size_t manifest_len, index_len;
};

/* A metadata member (manifest.json, index.json) into memory; a second copy of one is
 * refused: which of two documents an image means is not ours to guess. */
static int read_small(char **out, size_t *len_out, struct archive *a, const char *name)
{
    char *buf = NULL;
    size_t n = 0;

    if (*out)
        return bl_err(BOXLITE_EPROTO, "the archive holds %s twice", name);
    buf = malloc(META_MAX + 1);
    if (!buf)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    for (;;) {
        la_ssize_t r = archive_read_data(a, buf + n, META_MAX - n);
        if (r < 0) {
            free(buf);
            return bl_err(BOXLITE_EPROTO, "corrupt archive: %s", archive_error_string(a));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n >= META_MAX) {
            free(buf);
            return bl_err(BOXLITE_EPROTO, "metadata file over %u bytes", META_MAX);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len_out = n;
    return 0;
}

/* Every regular member into the store (by content), plus the metadata files in memory. */
static int copy_members(struct members *mb, const char *home, const char *path)
{
    struct archive *a = open_archive(path);
    struct archive_entry *e;
    struct bl_layer_budget b;
    char *buf = malloc(COPY_BUF);
    int rc = a && buf ? 0 : BOXLITE_EINVAL;

    bl_layer_budget_init(&b);
    mb->digests = json_object();
    while (rc == 0 && mb->digests) {
        struct bl_blob_writer *w = NULL;
        char d[72];
        const char *n;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = bl_err(BOXLITE_EPROTO, "corrupt archive: %s", archive_error_string(a));
            break;
        }
        n = member_name(e);
        rc = bl_layer_budget_take(&b, archive_entry_size(e), n);
        if (rc != 0 || archive_entry_filetype(e) != AE_IFREG)
            continue;
        if (strcmp(n, "manifest.json") == 0) {
            rc = read_small(&mb->manifest_json, &mb->manifest_len, a, n);
            continue;
        }
        if (strcmp(n, "index.json") == 0) {
            rc = read_small(&mb->index_json, &mb->index_len, a, n);
            continue;
        }
        rc = bl_blob_begin(&w, home, (uint64_t)archive_entry_size(e));
        while (rc == 0) {
            la_ssize_t got = archive_read_data(a, buf, COPY_BUF);
            if (got < 0)
                rc =
                    bl_err(BOXLITE_EPROTO, "corrupt archive at %s: %s", n, archive_error_string(a));
            if (got <= 0)
                break;
            rc = bl_blob_write(w, buf, (size_t)got);
        }
        if (rc == 0)
            rc = bl_blob_commit(w,
                                strncmp(n, "blobs/sha256/", 13) == 0 && strlen(n) == 77
                                    ? (snprintf(d, sizeof(d), "sha256:%s", n + 13), d)
                                    : NULL,
                                d);
        if (rc == 0)
            json_object_set_new(mb->digests, n, json_string(d));
        bl_blob_free(w);
    }
    if (a)
        archive_read_free(a);
    free(buf);
    return rc;
}

struct archive_ctx {
    const char *home;
};

static int archive_get(void *ctx, const char *digest)
{
    struct archive_ctx *c = ctx;

    if (!bl_store_has_blob(c->home, digest))
        return bl_err(BOXLITE_ENOTFOUND, "the archive lacks blob %s", digest);
    return 0;
}

static int import_docker_save(struct bl_import_plan *p, const char *home, struct members *mb,
                              const char *path, const char *name)
{
    json_t *root = json_loadb(mb->manifest_json, mb->manifest_len, 0, NULL);
    json_t *img = json_array_get(root, 0);
    const char *cfg = json_string_value(json_object_get(img, "Config"));
    const char *tag = json_string_value(json_array_get(json_object_get(img, "RepoTags"), 0));
    json_t *layers = json_object_get(img, "Layers");
    const char *cfg_digest = cfg ? json_string_value(json_object_get(mb->digests, cfg)) : NULL;
    size_t n = json_array_size(layers);
    const char **ld = calloc(n + 1, sizeof(*ld));
    char *final = NULL;
    int rc = ld ? 0 : BOXLITE_ENOMEM;

    if (rc == 0 && (!cfg_digest || !json_is_array(layers) || n > BL_LAYERS_MAX))
        rc = bl_err(BOXLITE_EPROTO, "manifest.json: no usable Config and Layers");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *lp = json_string_value(json_array_get(layers, i));
        ld[i] = lp ? json_string_value(json_object_get(mb->digests, lp)) : NULL;
        if (!ld[i])
            rc = bl_err(BOXLITE_EPROTO, "manifest.json: layer %zu is not in the archive", i);
    }
    if (rc == 0)
        rc = name ? canonical(&final, name) : tag ? canonical(&final, tag) : 0;
    if (rc == 0 && !final)
        final = default_name(path, NULL);
    if (rc == 0)
        rc = final ? make_manifest(p, home, final, cfg_digest, ld, n) : BOXLITE_ENOMEM;
    free(final);
    free(ld);
    json_decref(root);
    return rc;
}

static int import_image_archive(struct bl_import_plan *p, const char *home, const char *path,
                                const char *name)
{
    struct members mb = {0};
    struct archive_ctx ac = {home};
    int rc = copy_members(&mb, home, path);

    if (rc == 0 && mb.index_json)
        rc = from_oci_index(p, home, mb.index_json, mb.index_len, archive_get, &ac, path, name);
    else if (rc == 0 && mb.manifest_json)
        rc = import_docker_save(p, home, &mb, path, name);
    else if (rc == 0)
        rc = bl_err(BOXLITE_EPROTO, "%s has neither index.json nor manifest.json", path);
    json_decref(mb.digests);
    free(mb.manifest_json);
    free(mb.index_json);
    return rc;
}

/* ---- plain root filesystems ------------------------------------------------------------ */

static la_ssize_t writer_cb(struct archive *a, void *ctx, const void *buf, size_t n)
{
    if (bl_blob_write(ctx, buf, n) != 0) {
        archive_set_error(a, EIO, "%s", boxlite_error_last());
        return -1;
    }
    return (la_ssize_t)n;
}

/* Tar the directory (as it is on disk, owners included) into a layer blob. */
static int tar_dir(char digest_out[72], const char *home, const char *dir)
{
    struct bl_blob_writer *w = NULL;
    struct archive *disk = archive_read_disk_new();
    struct archive *tar = archive_write_new();
    struct archive_entry *e;
    char *buf = malloc(COPY_BUF);
    size_t dirlen = strlen(dir);
    int rc = disk && tar && buf ? bl_blob_begin(&w, home, 0) : BOXLITE_ENOMEM;

    if (rc == 0) {
        archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
        archive_read_disk_set_standard_lookup(disk);
        archive_write_set_format_pax_restricted(tar);
        if (archive_read_disk_open(disk, dir) != ARCHIVE_OK ||
            archive_write_open(tar, w, NULL, writer_cb, NULL) != ARCHIVE_OK)
            rc = bl_err(BOXLITE_EIO, "read %s: %s", dir, archive_error_string(disk));
    }
    while (rc == 0) {
        int r;
        e = archive_entry_new();
        r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF) {
            archive_entry_free(e);
            break;
        }
        if (r < ARCHIVE_WARN) {
            rc = bl_err(BOXLITE_EIO, "read %s: %s", dir, archive_error_string(disk));
            archive_entry_free(e);
            break;
        }
        archive_read_disk_descend(disk);
        {
            const char *p = archive_entry_pathname(e);
            const char *rel = strlen(p) > dirlen ? p + dirlen : "";
            char *np = bl_strdupf(".%s%s", *rel == '/' ? "" : "/", rel);
            if (np)
                archive_entry_copy_pathname(e, np);
            free(np);
        }
        if (archive_write_header(tar, e) < ARCHIVE_WARN)
            rc = bl_err(BOXLITE_EIO, "tar %s: %s", archive_entry_pathname(e),
                        archive_error_string(tar));
        if (rc == 0 && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
            int fd = open(archive_entry_sourcepath(e), O_RDONLY | O_CLOEXEC);
            ssize_t n;
            if (fd < 0)
                rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", archive_entry_sourcepath(e));
            while (fd >= 0 && rc == 0 && (n = read(fd, buf, COPY_BUF)) > 0)
                if (archive_write_data(tar, buf, (size_t)n) < 0)
                    rc = bl_err(BOXLITE_EIO, "tar: %s", archive_error_string(tar));
            if (fd >= 0)
                close(fd);
        }
        archive_entry_free(e);
    }
    if (rc == 0 && archive_write_close(tar) != ARCHIVE_OK)
        rc = bl_err(BOXLITE_EIO, "tar: %s", archive_error_string(tar));
    if (rc == 0)
        rc = bl_blob_commit(w, NULL, digest_out);
    archive_write_free(tar);
    archive_read_free(disk);
    bl_blob_free(w);
    free(buf);
    return rc;
}

static int import_rootfs(struct bl_import_plan *p, const char *home, const char *path,
                         const char *name, int is_dir)
{
    char layer[72], cfg[72];
    const char *layers[1] = {layer};
    char *final = NULL;
    int rc = is_dir ? tar_dir(layer, home, path) : store_file(layer, home, path, NULL);

    if (rc == 0)
        rc = plain_config(cfg, home, layer);
    if (rc == 0)
        rc = name ? canonical(&final, name) : 0;
    if (rc == 0 && !final)
        final = default_name(path, NULL);
    if (rc == 0)
        rc = final ? make_manifest(p, home, final, cfg, layers, 1) : BOXLITE_ENOMEM;
    free(final);
    return rc;
}

void bl_import_plan_clear(struct bl_import_plan *p)
{
    if (!p)
        return;
    free(p->name);
    bl_manifest_clear(&p->m);
    memset(p, 0, sizeof(*p));
}

int bl_image_import_plan(struct bl_import_plan *out, const char *home, const char *path,
                         const char *name)
{
    struct bl_import_plan p = {0};
    struct stat st;
    char *layout = NULL;
    int kind = 0, rc = 0;

    if (stat(path, &st) != 0)
        return bl_err_errno(bl_code_from_errno(errno), errno, "%s", path);
    if (S_ISDIR(st.st_mode)) {
        layout = bl_strdupf("%s/oci-layout", path);
        if (layout && access(layout, F_OK) == 0)
            rc = import_oci_dir(&p, home, path, name);
        else
            rc = import_rootfs(&p, home, path, name, 1);
    } else {
        rc = archive_kind(&kind, path);
        if (rc == 0 && kind)
            rc = import_image_archive(&p, home, path, name);
        else if (rc == 0)
            rc = import_rootfs(&p, home, path, name, 0);
    }
    free(layout);
    if (rc == 0)
        *out = p;
    else
        bl_import_plan_clear(&p);
    return rc;
}

int bl_image_import_record(struct bl_image_record *out, boxlite_runtime *rt, const char *path,
                           const char *name)
{
    struct bl_import_plan p = {0};
    struct stat st;
    int gc = -1, rc;

    if (stat(path, &st) != 0)
        return bl_err_errno(bl_code_from_errno(errno), errno, "%s", path);
    rc = bl_store_lock_shared(&gc, rt->home, "gc", BL_LOCK_TIMEOUT_MS);
    if (rc != 0)
        return rc;
    rc = bl_image_import_plan(&p, rt->home, path, name);
    if (rc == 0)
        rc = bl_image_build(out, rt, p.name, p.manifest_digest, &p.m, NULL);
    bl_store_unlock(gc);
    if (rc != 0) /* nothing of a refused import stays in the store */
        rc = bl_image_gc_failed(rt, rc);
    bl_import_plan_clear(&p);
    return rc;
}
