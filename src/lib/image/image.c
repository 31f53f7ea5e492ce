/* image.c — images in the store: the built-in default image, opening a pulled or imported
 * image for a box, building an image's base ext4 from its layers, and the Images API. */
#include "image.h"
#include "box.h"
#include "db.h"
#include "error.h"
#include "ext4.h"
#include "layer.h"
#include "bounds.h"
#include "manifest.h"
#include "reference.h"
#include "registries.h"
#include "registry.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>

#define MIN_FS_SIZE  (2ull << 30)
#define REG_FILE_MAX (1u << 20)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct bl_images {
    struct bl_registry_conf *regs;
    size_t n;
};

/* ---- the built-in default image ---------------------------------------------------- */

/* The hex digest of this build's default.ext4 (default.ext4.sha256). *out malloc'd. */
static int default_sum(char **out, boxlite_runtime *rt)
{
    char *sumfile = NULL, *sum = NULL;
    size_t len = 0;
    int rc = bl_runtime_guest_file(&sumfile, rt, "default.ext4.sha256");

    if (rc == 0)
        rc = bl_read_file(&sum, &len, sumfile, 256);
    while (rc == 0 && len > 0 && isspace((unsigned char)sum[len - 1]))
        sum[--len] = '\0';
    if (rc == 0 && (len != 64 || strspn(sum, "0123456789abcdef") != 64))
        rc = bl_err(BOXLITE_EIO, "%s does not hold a sha256 digest", sumfile);
    if (rc == 0) {
        *out = sum;
        sum = NULL;
    }
    free(sum);
    free(sumfile);
    return rc;
}

/* Put this build's default image into the store at dst: a copy of default.ext4 (a build tree
 * or C install), else inflated from default.ext4.gz (the wheel: a zip keeps no holes, so the
 * 512 MiB sparse file ships compressed), with one line on a terminal while it takes. */
static int default_prepare(boxlite_runtime *rt, const char *dst, const char *sum)
{
    char *src = NULL;
    int rc = bl_runtime_guest_file(&src, rt, "default.ext4");

    if (rc == 0) {
        rc = bl_copy_file_sparse(src, dst, 0444, 0);
    } else if ((rc = bl_runtime_guest_file(&src, rt, "default.ext4.gz")) == 0) {
        int shown = bl_progress_begin("preparing the built-in image (first use)");
        rc = bl_store_inflate_base(src, dst, sum, (uint64_t)64 << 30);
        bl_progress_end(shown, rc);
    } else {
        rc = bl_err(BOXLITE_ENOTFOUND,
                    "guest file default.ext4 (or default.ext4.gz) is missing "
                    "from %s (build the guest, or set BOXLITE_GUEST_DIR)",
                    rt->guest_dir);
    }
    free(src);
    return rc;
}

/* The default image ships as default.ext4 with default.ext4.sha256 beside it; the store keeps
 * its own copy under that digest so that rebuilding the guest never changes the base of an
 * existing box. */
static int default_base(char **out, char **hex_out, boxlite_runtime *rt)
{
    char *sum = NULL, *dst = NULL;
    int rc;

    rc = default_sum(&sum, rt);
    if (rc != 0)
        goto out;
    dst = bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, sum);
    if (!dst) {
        rc = BOXLITE_ENOMEM;
        goto out;
    }
    if (access(dst, R_OK) != 0)
        rc = default_prepare(rt, dst, sum);
    if (rc == 0) {
        *out = dst;
        *hex_out = sum;
        dst = sum = NULL;
    }
out:
    free(sum);
    free(dst);
    return rc;
}

void bl_image_free(struct bl_image *img)
{
    if (!img)
        return;
    free(img->ref);
    free(img->base_path);
    bl_strv_free(img->env);
    bl_strv_free(img->entrypoint);
    bl_strv_free(img->cmd);
    free(img->workdir);
    free(img->user);
    free(img->id);
    free(img->rootfs);
    free(img);
}

/* The default image's config; its base is the current default.ext4 unless the box is
 * pinned to an earlier one (rootfs: its hex; "" for none). */
static int default_image(struct bl_image *img, boxlite_runtime *rt, const char *rootfs)
{
    static const char *const env[] = {DEFAULT_PATH, NULL};
    static const char *const cmd[] = {"sh", NULL};
    static const char *const none[] = {NULL};
    int rc = 0;

    if (!rootfs)
        rc = default_base(&img->base_path, &img->rootfs, rt);
    else if (*rootfs)
        img->base_path = bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, rootfs);
    if (rc != 0)
        return rc;
    if (!img->rootfs)
        img->rootfs = strdup(rootfs);
    if (!img->rootfs || (*img->rootfs && !img->base_path))
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    img->ref = strdup("default");
    img->env = bl_strv_dup(env);
    img->cmd = bl_strv_dup(cmd);
    img->entrypoint = bl_strv_dup(none);
    img->workdir = strdup("/");
    img->user = strdup("");
    img->id = strdup("");
    if (!img->ref || !img->env || !img->cmd || !img->entrypoint || !img->workdir || !img->user ||
        !img->id)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

/* ---- registries ---------------------------------------------------------------------- */

static int conf_add(struct bl_images *im, const char *host, int http, int skip_verify, int search,
                    const char *user, const char *pass, const char *token, const char *ca)
{
    struct bl_registry_conf *c, *v;

    if (!host || !*host)
        return bl_err(BOXLITE_EINVAL, "a registry without a host");
    for (size_t i = 0; i < im->n; i++)
        if (strcmp(im->regs[i].host, host) == 0)
            return 0; /* the first setting for a host wins */
    v = realloc(im->regs, (im->n + 1) * sizeof(*v));
    if (!v)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    im->regs = v;
    c = &im->regs[im->n];
    memset(c, 0, sizeof(*c));
    c->host = strdup(host);
    c->http = http;
    c->skip_verify = skip_verify;
    c->search = search;
    c->username = user ? strdup(user) : NULL;
    c->password = pass ? strdup(pass) : NULL;
    c->token = token ? strdup(token) : NULL;
    c->ca_file = ca ? strdup(ca) : NULL;
    im->n++;
    if (!c->host || (user && !c->username) || (pass && !c->password) || (token && !c->token) ||
        (ca && !c->ca_file))
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

struct bl_images *bl_images_new(void)
{
    return calloc(1, sizeof(struct bl_images));
}

void bl_images_destroy(struct bl_images *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++)
        bl_registry_conf_clear(&im->regs[i]);
    free(im->regs);
    free(im);
}

const struct bl_registry_conf *bl_images_conf_at(const struct bl_images *im, size_t i)
{
    return im && i < im->n ? &im->regs[i] : NULL;
}

int bl_registries_parse(struct bl_images *im, const char *text, size_t len, const char *path)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr), *list, *e;
    size_t i;
    int rc = 0;

    list = json_object_get(root, "registries");
    if (!json_is_array(list)) {
        rc = bl_err(BOXLITE_EINVAL, "%s: expected {\"registries\": [...]} (%s)", path,
                    root ? "no such array" : jerr.text);
        goto out;
    }
    json_array_foreach(list, i, e)
    {
        const char *transport = json_string_value(json_object_get(e, "transport"));
        if (transport && strcmp(transport, "http") != 0 && strcmp(transport, "https") != 0) {
            rc = bl_err(BOXLITE_EINVAL, "%s: transport \"%s\": expected http or https", path,
                        transport);
            break;
        }
        rc = conf_add(im, json_string_value(json_object_get(e, "host")),
                      transport && strcmp(transport, "http") == 0,
                      json_is_true(json_object_get(e, "skip_verify")),
                      json_is_true(json_object_get(e, "search")),
                      json_string_value(json_object_get(e, "username")),
                      json_string_value(json_object_get(e, "password")),
                      json_string_value(json_object_get(e, "token")),
                      json_string_value(json_object_get(e, "ca_file")));
        if (rc != 0) {
            bl_err_wrap(rc, "%s", path);
            break;
        }
    }
out:
    json_decref(root);
    return rc;
}

/* $BOXLITE_HOME/registries.json, when there is one. */
static int load_config_file(struct bl_images *im, const char *home)
{
    char *path = bl_strdupf("%s/registries.json", home);
    char *text = NULL;
    size_t len = 0;
    int rc = 0;

    if (!path)
        return BOXLITE_ENOMEM;
    if (access(path, F_OK) == 0)
        rc = bl_read_file(&text, &len, path, REG_FILE_MAX);
    if (rc == 0 && text)
        rc = bl_registries_parse(im, text, len, path);
    free(text);
    free(path);
    return rc;
}

int bl_images_init(boxlite_runtime *rt, const boxlite_runtime_options *opts)
{
    struct bl_images *im = bl_images_new();
    int rc = 0;

    if (!im)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    rt->images = im;
    if (opts && opts->version >= 2) {
        for (size_t i = 0; i < opts->n_registries && rc == 0 && opts->registries; i++) {
            const boxlite_registry *r = &opts->registries[i];
            if (r->transport != BOXLITE_TRANSPORT_HTTPS && r->transport != BOXLITE_TRANSPORT_HTTP)
                return bl_err(BOXLITE_EINVAL, "registry %s: unknown transport %d",
                              r->host ? r->host : "", r->transport);
            rc = conf_add(im, r->host, r->transport == BOXLITE_TRANSPORT_HTTP, r->skip_verify,
                          r->search, r->username, r->password, r->token, r->ca_file);
        }
    }
    if (rc == 0)
        rc = load_config_file(im, rt->home);
    if (rc == 0)
        rc = bl_store_init(rt->home);
    return rc;
}

void bl_images_free(boxlite_runtime *rt)
{
    if (!rt)
        return;
    bl_images_destroy(rt->images);
    rt->images = NULL;
}

const struct bl_registry_conf *bl_images_registry(boxlite_runtime *rt, const char *host)
{
    struct bl_images *im = rt->images;

    for (size_t i = 0; im && i < im->n; i++)
        if (strcmp(im->regs[i].host, host) == 0)
            return &im->regs[i];
    return NULL;
}

size_t bl_images_search(const struct bl_registry_conf ***out, boxlite_runtime *rt)
{
    struct bl_images *im = rt->images;
    const struct bl_registry_conf **v = calloc(im && im->n ? im->n : 1, sizeof(*v));
    size_t n = 0;

    for (size_t i = 0; v && im && i < im->n; i++)
        if (im->regs[i].search)
            v[n++] = &im->regs[i];
    *out = v;
    return n;
}

/* ---- building the base filesystem ------------------------------------------------------ */

void bl_image_report(const struct bl_pull_progress_ctx *p, int phase, const char *name,
                     const char *digest, unsigned layer, unsigned layers, uint64_t bytes,
                     uint64_t total)
{
    boxlite_pull_progress pr = {
        BOXLITE_PULL_PROGRESS_VERSION, phase, name, digest, layer, layers, bytes, total};

    if (p && p->fn)
        p->fn(p->ctx, &pr);
}

static uint64_t disk_usage(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* The base disk's size for what the scans found: room for the data twice and a GiB,
 * at least MIN_FS_SIZE, refused over BOXLITE_MAX_IMAGE_DISK. */
static int base_size(uint64_t *out, const struct bl_layer_scan *scans, size_t n)
{
    uint64_t need = 0, size, max = bl_limit(BL_LIMIT_IMAGE_DISK);
    char a[32], b[32];

    for (size_t i = 0; i < n; i++)
        need += scans[i].bytes + scans[i].entries * 4096;
    size = need * 2 + (1ull << 30);
    size = size < MIN_FS_SIZE ? MIN_FS_SIZE : (size + (1 << 20) - 1) & ~((uint64_t)(1 << 20) - 1);
    if (size > max)
        return bl_err(BOXLITE_EINVAL, "the image needs a %s base disk, over the %s limit (%s)",
                      bl_limit_bytes(a, sizeof(a), size), bl_limit_bytes(b, sizeof(b), max),
                      bl_limit_env(BL_LIMIT_IMAGE_DISK));
    *out = size;
    return 0;
}

static int build_fs(const char *tmp, boxlite_runtime *rt, const char *name,
                    const struct bl_manifest *m, const struct bl_pull_progress_ctx *progress)
{
    struct bl_layer_scan *scans = calloc(m->n_layers + 1, sizeof(*scans));
    char **paths = calloc(m->n_layers + 1, sizeof(*paths));
    struct bl_layer_budget budget;
    struct bl_fs *fs = NULL;
    uint64_t size = 0;
    int rc = scans && paths ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    /* Pass 1 over every layer before anything is written: digests, paths, the limits. */
    bl_layer_budget_init(&budget);
    for (size_t i = 0; i < m->n_layers && rc == 0; i++) {
        paths[i] = bl_store_blob_path(rt->home, m->layers[i].digest);
        rc = paths[i] ? bl_layer_scan(&scans[i], paths[i], m->layers[i].digest, &budget)
                      : BOXLITE_ENOMEM;
        if (rc != 0)
            bl_err_wrap(rc, "layer %zu (%s)", i + 1, m->layers[i].digest);
    }
    if (rc == 0)
        rc = base_size(&size, scans, m->n_layers);
    if (rc == 0)
        rc = bl_fs_mkfs(tmp, size);
    if (rc == 0)
        rc = bl_fs_open(&fs, tmp);
    for (size_t i = 0; i < m->n_layers && rc == 0; i++) {
        bl_image_report(progress, BOXLITE_PULL_UNPACK, name, m->layers[i].digest, (unsigned)i + 1,
                        (unsigned)m->n_layers, 0, m->layers[i].size);
        rc = bl_layer_apply(fs, paths[i], &scans[i]);
        if (rc != 0)
            bl_err_wrap(rc, "apply layer %zu (%s)", i + 1, m->layers[i].digest);
    }
    if (rc == 0) {
        rc = bl_fs_close(fs);
        fs = NULL;
    }
    bl_fs_abort(fs);
    for (size_t i = 0; i < m->n_layers && scans && paths; i++) {
        bl_layer_scan_clear(&scans[i]);
        free(paths[i]);
    }
    free(scans);
    free(paths);
    return rc;
}

int bl_image_build(struct bl_image_record *out, boxlite_runtime *rt, const char *name,
                   const char *manifest_digest, const struct bl_manifest *m,
                   const struct bl_pull_progress_ctx *progress)
{
    struct bl_image_record rec = {0};
    const char *hex = m->config.digest + 7;
    char *final = bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, hex);
    char *tmp = bl_store_tmp_path(rt->home, ".ext4");
    char *lockname = bl_strdupf("rootfs-%s", hex);
    int lock = -1;
    int rc = final && tmp && lockname ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0)
        rc = bl_store_lock(&lock, rt->home, lockname, BL_LOCK_TIMEOUT_MS);
    if (rc == 0 && access(final, R_OK) != 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", tmp);
        else
            close(fd); /* ours: mke2fs -F writes into this file, never through a link */
        if (rc == 0)
            rc = build_fs(tmp, rt, name, m, progress);
        if (rc == 0 && chmod(tmp, 0444) != 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "chmod %s", tmp);
        if (rc == 0 && rename(tmp, final) != 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", tmp);
        if (rc != 0)
            unlink(tmp);
    }
    if (rc == 0) {
        rec.name = strdup(name);
        rec.manifest = strdup(manifest_digest);
        rec.config = strdup(m->config.digest);
        rec.rootfs = strdup(hex);
        rec.size = disk_usage(final);
        rec.created = (int64_t)time(NULL);
        if (!rec.name || !rec.manifest || !rec.config || !rec.rootfs)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = bl_db_image_put(rt->db, &rec, 1);
    bl_store_unlock(lock);
    if (rc == 0 && out)
        *out = rec;
    else
        bl_image_record_clear(&rec);
    free(final);
    free(tmp);
    free(lockname);
    return rc;
}

/* ---- finding images in the store ------------------------------------------------------ */

static int is_id(const char *s)
{
    const char *hex = strncmp(s, "sha256:", 7) == 0 ? s + 7 : s;
    size_t n = strlen(hex);

    return n >= 12 && n <= 64 && strspn(hex, "0123456789abcdef") == n;
}

static int rootfs_present(const char *home, const struct bl_image_record *r)
{
    char *p = bl_strdupf("%s/images/rootfs/%s.ext4", home, r->rootfs);
    int ok = p && access(p, R_OK) == 0;

    free(p);
    return ok;
}

static int find_by_id(struct bl_image_record *out, boxlite_runtime *rt, const char *id)
{
    const char *hex = strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    struct bl_image_record *v = NULL;
    size_t n = 0, found = (size_t)-1;
    int rc = bl_db_image_list(rt->db, &v, &n);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strncmp(v[i].config + 7, hex, strlen(hex)) != 0)
            continue;
        if (found != (size_t)-1 && strcmp(v[found].config, v[i].config) != 0)
            rc = bl_err(BOXLITE_EINVAL, "image id prefix %s is ambiguous", id);
        found = i;
    }
    if (rc == 0 && found == (size_t)-1)
        rc = bl_err(BOXLITE_ENOTFOUND, "no image with id %s", id);
    if (rc == 0) {
        *out = v[found];
        memset(&v[found], 0, sizeof(v[found]));
    }
    bl_image_records_free(v, n);
    return rc;
}

int bl_image_candidates(struct bl_ref **out, size_t *n_out, boxlite_runtime *rt,
                        const struct bl_ref *ref)
{
    const struct bl_registry_conf **search = NULL;
    size_t ns = bl_images_search(&search, rt);
    struct bl_ref *v = calloc(2 * ns + 1, sizeof(*v));
    size_t n = 0;
    int rc = v && search ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0 && (!ref->short_name || ns == 0)) {
        rc = bl_ref_with_registry(&v[n], ref, ref->registry, 1);
        n += rc == 0;
    }
    for (size_t i = 0; rc == 0 && ref->short_name && i < ns; i++) {
        int single =
            strncmp(ref->repository, "library/", 8) == 0 && !strchr(ref->repository + 8, '/');
        rc = bl_ref_with_registry(&v[n], ref, search[i]->host, 1);
        n += rc == 0;
        if (rc == 0 && single && strcmp(search[i]->host, "docker.io") != 0) {
            rc = bl_ref_with_registry(&v[n], ref, search[i]->host, 0);
            n += rc == 0;
        }
    }
    free(search);
    if (rc != 0) {
        for (size_t i = 0; v && i < n; i++)
            bl_ref_clear(&v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* The record for ref if it is in the store (ENOTFOUND otherwise). */
static int find_cached(struct bl_image_record *out, boxlite_runtime *rt, const char *s)
{
    struct bl_ref ref = {0}, *cands = NULL;
    size_t n = 0;
    int rc;

    if (is_id(s)) {
        rc = find_by_id(out, rt, s);
        if (rc != BOXLITE_ENOTFOUND || strncmp(s, "sha256:", 7) == 0)
            return rc;
    }
    rc = bl_ref_parse(&ref, s);
    if (rc == 0)
        rc = bl_image_candidates(&cands, &n, rt, &ref);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *name = bl_ref_string(&cands[i]);
        struct bl_image_record r;
        int g = name ? bl_db_image_get(rt->db, name, &r) : BOXLITE_ENOMEM;
        free(name);
        if (g == 0 && rootfs_present(rt->home, &r)) {
            *out = r;
            break;
        }
        if (g == 0)
            bl_image_record_clear(&r);
        if (i + 1 == n)
            rc = BOXLITE_ENOTFOUND;
    }
    if (rc == BOXLITE_ENOTFOUND && ref.short_name) { /* imported as docker.io/library/x */
        char *name = bl_ref_string(&ref);
        rc = name ? bl_db_image_get(rt->db, name, out) : BOXLITE_ENOMEM;
        free(name);
    }
    if (rc == BOXLITE_ENOTFOUND)
        rc = bl_err(BOXLITE_ENOTFOUND, "image %s is not in the store", s);
    for (size_t i = 0; i < n; i++)
        bl_ref_clear(&cands[i]);
    free(cands);
    bl_ref_clear(&ref);
    return rc;
}

int bl_image_check_untrusted(boxlite_runtime *rt, const char *s)
{
    struct bl_image_record rec = {0};
    struct bl_ref ref = {0};
    int rc;

    if (!*s || strcmp(s, "default") == 0)
        return 0;
    if (find_cached(&rec, rt, s) == 0) {
        bl_image_record_clear(&rec);
        return 0;
    }
    bl_err_clear();
    rc = bl_ref_parse(&ref, s);
    if (rc == 0 && !ref.short_name && strcmp(ref.registry, "docker.io") != 0 &&
        !bl_images_registry(rt, ref.registry))
        rc = bl_err(BOXLITE_EINVAL,
                    "image %.300s is on %.200s, a registry you have not configured, and is not "
                    "in the store: refused (pull it first, or import with --trusted)",
                    s, ref.registry);
    bl_ref_clear(&ref);
    return rc;
}

static int has_path(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], "PATH=", 5) == 0)
            return 1;
    return 0;
}

/* The image named name: config blob config (digest), base images/rootfs/<rootfs>.ext4
 * ("" → none: a box whose disk stands alone). */
static int load_image(struct bl_image *img, boxlite_runtime *rt, const char *name,
                      const char *config, const char *rootfs)
{
    struct bl_image_config cfg = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = bl_store_read_blob(&text, &len, rt->home, config, BL_CONFIG_MAX);

    if (rc == 0)
        rc = bl_image_config_parse(&cfg, text, len);
    free(text);
    if (rc != 0)
        return rc;
    img->ref = strdup(name);
    img->id = strdup(config);
    img->rootfs = strdup(rootfs);
    img->base_path = *rootfs ? bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, rootfs) : NULL;
    img->entrypoint = cfg.entrypoint;
    img->cmd = cfg.cmd;
    img->workdir = strdup(*cfg.workdir ? cfg.workdir : "/");
    img->user = cfg.user;
    cfg.entrypoint = cfg.cmd = NULL;
    cfg.user = NULL;
    if (has_path(cfg.env)) {
        img->env = cfg.env;
        cfg.env = NULL;
    } else {
        size_t n = 0;
        while (cfg.env[n])
            n++;
        img->env = calloc(n + 2, sizeof(char *));
        if (img->env) {
            img->env[0] = strdup(DEFAULT_PATH);
            memcpy(img->env + 1, cfg.env, n * sizeof(char *));
            free(cfg.env);
            cfg.env = NULL;
        }
    }
    bl_image_config_clear(&cfg);
    if (!img->ref || !img->id || !img->rootfs || (*rootfs && !img->base_path) || !img->workdir ||
        !img->env || !img->env[0])
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

int bl_image_open(struct bl_image **out, boxlite_runtime *rt, const char *ref)
{
    struct bl_image *img = calloc(1, sizeof(*img));
    struct bl_image_record rec = {0};
    int rc;

    if (!img)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    if (!ref || !*ref || strcmp(ref, "default") == 0) {
        rc = default_image(img, rt, NULL);
    } else {
        rc = find_cached(&rec, rt, ref);
        if (rc == BOXLITE_ENOTFOUND && !is_id(ref))
            rc = bl_image_pull_record(&rec, rt, ref, NULL);
        if (rc == 0)
            rc = load_image(img, rt, rec.name, rec.config, rec.rootfs);
    }
    bl_image_record_clear(&rec);
    if (rc != 0) {
        bl_err_wrap(rc, "prepare image %s", ref && *ref ? ref : "(default)");
        bl_image_free(img);
    } else {
        *out = img;
    }
    return rc;
}

int bl_image_open_pinned(struct bl_image **out, boxlite_runtime *rt, const char *ref,
                         const char *id, const char *rootfs)
{
    struct bl_image *img = calloc(1, sizeof(*img));
    int rc;

    if (!img)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    if (!*id)
        rc = default_image(img, rt, rootfs);
    else
        rc = load_image(img, rt, ref, id, rootfs);
    if (rc == 0 && img->base_path && access(img->base_path, R_OK) != 0)
        rc = bl_err_errno(BOXLITE_ENOTFOUND, errno, "the image's base %s", img->base_path);
    if (rc != 0) {
        bl_err_wrap(rc, "image %s (%s)", ref, *id ? id : "the built-in default");
        bl_image_free(img);
    } else {
        *out = img;
    }
    return rc;
}

int bl_image_find_config(char **out, boxlite_runtime *rt, const char *ref)
{
    struct bl_image_record rec = {0};
    int rc = find_cached(&rec, rt, ref);

    if (rc == 0) {
        *out = rec.config;
        rec.config = NULL;
    }
    bl_image_record_clear(&rec);
    return rc;
}

/* ---- the public Images API ---------------------------------------------------------------- */

static int info_fill(boxlite_image_info *info, const struct bl_image_record *r)
{
    const char *at = strchr(r->name, '@');
    const char *slash = strrchr(r->name, '/');
    const char *colon = strrchr(slash ? slash : r->name, ':');
    size_t repolen = at      ? (size_t)(at - r->name)
                     : colon ? (size_t)(colon - r->name)
                             : strlen(r->name);

    memset(info, 0, sizeof(*info));
    info->version = BOXLITE_IMAGE_INFO_VERSION;
    info->name = strdup(r->name);
    info->repository = strndup(r->name, repolen);
    info->tag = colon && (!at || colon < at)
                    ? strndup(colon + 1, at ? (size_t)(at - colon - 1) : strlen(colon + 1))
                    : strdup("");
    info->id = strdup(r->config);
    info->digest = strdup(r->manifest);
    info->size = r->size;
    info->cached_at = r->created;
    if (!info->name || !info->repository || !info->tag || !info->id || !info->digest)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

static void info_clear(boxlite_image_info *info)
{
    free(info->name);
    free(info->repository);
    free(info->tag);
    free(info->id);
    free(info->digest);
}

BOXLITE_API void boxlite_image_info_free(boxlite_image_info *info)
{
    if (!info)
        return;
    info_clear(info);
    free(info);
}

BOXLITE_API void boxlite_image_list_free(boxlite_image_info *list, size_t count)
{
    for (size_t i = 0; list && i < count; i++)
        info_clear(&list[i]);
    free(list);
}

static int info_out(boxlite_image_info **out, const struct bl_image_record *r)
{
    boxlite_image_info *info;
    int rc;

    if (!out)
        return 0;
    info = calloc(1, sizeof(*info));
    if (!info)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    rc = info_fill(info, r);
    if (rc != 0) {
        boxlite_image_info_free(info);
        return rc;
    }
    *out = info;
    return 0;
}

BOXLITE_API int boxlite_image_pull(boxlite_image_info **out, boxlite_runtime *rt, const char *ref,
                                   const boxlite_pull_options *opts)
{
    struct bl_pull_progress_ctx p = {0};
    struct bl_image_record rec = {0};
    int rc;

    bl_err_clear();
    if (!rt || !ref || !*ref)
        return bl_err(BOXLITE_EINVAL, "image pull: rt and ref are required");
    if (opts && opts->version != BOXLITE_PULL_OPTIONS_VERSION)
        return bl_err(BOXLITE_EINVAL, "pull options of unknown version %u", opts->version);
    if (opts) {
        p.fn = opts->progress;
        p.ctx = opts->progress_ctx;
    }
    rc = bl_image_pull_record(&rec, rt, ref, &p); /* errors name the image */
    if (rc == 0)
        rc = info_out(out, &rec);
    bl_image_record_clear(&rec);
    return rc;
}

BOXLITE_API int boxlite_image_import(boxlite_image_info **out, boxlite_runtime *rt,
                                     const char *path, const char *name)
{
    struct bl_image_record rec = {0};
    int rc;

    bl_err_clear();
    if (!rt || !path || !*path)
        return bl_err(BOXLITE_EINVAL, "image import: rt and path are required");
    rc = bl_image_import_record(&rec, rt, path, name);
    if (rc == 0)
        rc = info_out(out, &rec);
    bl_image_record_clear(&rec);
    if (rc != 0)
        bl_err_wrap(rc, "import %s", path);
    return rc;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const boxlite_image_info *)a)->name, ((const boxlite_image_info *)b)->name);
}

BOXLITE_API int boxlite_image_list(boxlite_image_info **out, size_t *count_out, boxlite_runtime *rt)
{
    struct bl_image_record *v = NULL;
    boxlite_image_info *list = NULL;
    size_t n = 0, k = 0;
    int rc;

    bl_err_clear();
    if (!out || !count_out || !rt)
        return bl_err(BOXLITE_EINVAL, "image list: out, count_out and rt are required");
    rc = bl_db_image_list(rt->db, &v, &n);
    if (rc == 0) {
        list = calloc(n + 1, sizeof(*list));
        if (!list)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!rootfs_present(rt->home, &v[i]))
            continue;
        rc = info_fill(&list[k], &v[i]);
        k++;
    }
    bl_image_records_free(v, n);
    if (rc != 0) {
        boxlite_image_list_free(list, k);
        return rc;
    }
    qsort(list, k, sizeof(*list), cmp_info);
    *out = list;
    *count_out = k;
    return 0;
}

/* The boxes whose disks rest on images/rootfs/<rootfs>.ext4 (through any layer of theirs,
 * their snapshots' or their forks'): a query over the boxes pinned to it. ids: ", "-list. */
static int rootfs_users(boxlite_runtime *rt, const char *rootfs, char *ids, size_t cap)
{
    char **v = NULL;
    int n = 0, rc;

    bl_box_pin_all(rt); /* rows not pinned yet (an older store, an imported box) */
    rc = bl_db_box_on_rootfs(rt->db, rootfs, &v);
    ids[0] = '\0';
    for (size_t i = 0; rc == 0 && v[i]; i++, n++) {
        size_t k = strlen(ids);
        snprintf(ids + k, cap - k, "%s%s", n ? ", " : "", v[i]);
    }
    bl_strv_free(v);
    v = NULL;
    /* a box whose base could not be read from its chain may rest on this one: count it */
    if (rc == 0)
        rc = bl_db_box_unpinned(rt->db, &v);
    for (size_t i = 0; rc == 0 && v[i]; i++) {
        struct bl_box_row r = {0};
        if (bl_db_box_get(rt->db, v[i], &r) == 0 && !r.image_rootfs) {
            size_t k = strlen(ids);
            snprintf(ids + k, cap - k, "%s%s (its disk could not be read)", n++ ? ", " : "", v[i]);
        }
        bl_box_row_clear(&r);
    }
    bl_strv_free(v);
    bl_err_clear();
    return rc != 0 ? rc : n;
}

/* 1 when hex is in v (a NULL-terminated vector). */
static int strv_has(char **v, const char *hex)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], hex) == 0)
            return 1;
    return 0;
}

/* An image base no record names, no box is pinned to, and that is not the current default
 * (a box of an image removed with force, since removed): a leftover. Its build lock keeps
 * one being made out of reach (built, not yet recorded). */
void bl_images_doctor(boxlite_runtime *rt, struct bl_repair *rp)
{
    struct bl_image_record *v = NULL;
    char *dir = bl_strdupf("%s/images/rootfs", rt->home), *defhex = NULL;
    char **pins = NULL, **named = NULL;
    struct dirent *de;
    DIR *d = NULL;
    size_t n = 0;

    bl_box_pin_all(rt);
    if (!dir || bl_db_image_list(rt->db, &v, &n) != 0 || bl_db_box_pins(rt->db, 1, &pins))
        goto out;
    named = calloc(n + 1, sizeof(*named));
    for (size_t i = 0; named && i < n; i++)
        named[i] = v[i].rootfs;
    if (default_sum(&defhex, rt) != 0)
        bl_err_clear();
    d = named ? opendir(dir) : NULL;
    for (de = d ? readdir(d) : NULL; de; de = readdir(d)) {
        size_t len = strlen(de->d_name);
        char hex[256], *p = NULL, lockname[300];
        int lock = -1;
        if (len <= 5 || len - 5 >= sizeof(hex) || strcmp(de->d_name + len - 5, ".ext4") != 0)
            continue;
        snprintf(hex, sizeof(hex), "%.*s", (int)(len - 5), de->d_name);
        snprintf(lockname, sizeof(lockname), "rootfs-%s", hex);
        if (strv_has(named, hex) || strv_has(pins, hex) || (defhex && strcmp(defhex, hex) == 0))
            continue;
        if (bl_store_lock(&lock, rt->home, lockname, 0) != 0) {
            bl_err_clear(); /* being built */
            continue;
        }
        p = bl_strdupf("%s/%s", dir, de->d_name);
        if (p && bl_repair_note(rp, 1, "", "image base %s: no image and no box uses it", hex))
            unlink(p);
        free(p);
        bl_store_unlock(lock);
    }
out:
    if (d)
        closedir(d);
    bl_image_records_free(v, n);
    free(named);
    bl_strv_free(pins);
    free(defhex);
    free(dir);
    bl_err_clear();
}

/* Remove blobs no record refers to. Skipped while another process pulls or imports. */
static void collect_garbage(boxlite_runtime *rt);

BOXLITE_API int boxlite_image_remove(boxlite_runtime *rt, const char *ref, int force)
{
    struct bl_image_record rec = {0}, *v = NULL;
    char *base = NULL, users[512];
    size_t n = 0;
    int rc, shared = 0, used = 0;

    bl_err_clear();
    if (!rt || !ref || !*ref)
        return bl_err(BOXLITE_EINVAL, "image remove: rt and ref are required");
    rc = find_cached(&rec, rt, ref);
    if (rc == 0)
        rc = bl_db_image_list(rt->db, &v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        shared |= strcmp(v[i].name, rec.name) != 0 && strcmp(v[i].rootfs, rec.rootfs) == 0;
    if (rc == 0 && !shared) {
        base = bl_strdupf("%s/images/rootfs/%s.ext4", rt->home, rec.rootfs);
        used = base ? rootfs_users(rt, rec.rootfs, users, sizeof(users)) : BOXLITE_ENOMEM;
        if (used < 0)
            rc = used;
        else if (!force && used > 0)
            rc = bl_err(BOXLITE_ESTATE,
                        "image %s is used by a box (%s): remove the boxes first, or force "
                        "(which keeps its base for them)",
                        rec.name, users);
    }
    if (rc == 0)
        rc = bl_db_image_remove(rt->db, rec.name);
    if (rc == 0 && base && used == 0)
        unlink(base);
    if (rc == 0)
        collect_garbage(rt);
    bl_image_records_free(v, n);
    free(base);
    bl_image_record_clear(&rec);
    if (rc != 0)
        bl_err_wrap(rc, "remove image %s", ref);
    return rc;
}

static int keep_manifest_blobs(json_t *keep, const char *home, const char *digest)
{
    struct bl_manifest m = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = bl_store_read_blob(&text, &len, home, digest, BL_MANIFEST_MAX);

    if (rc == 0)
        rc = bl_manifest_parse(&m, text, len, NULL, "linux", bl_platform_arch());
    json_object_set_new(keep, digest + 7, json_true());
    if (rc == 0 && m.kind == BL_MANIFEST_IMAGE) {
        json_object_set_new(keep, m.config.digest + 7, json_true());
        for (size_t i = 0; i < m.n_layers; i++)
            json_object_set_new(keep, m.layers[i].digest + 7, json_true());
    }
    bl_manifest_clear(&m);
    free(text);
    return rc;
}

int bl_image_gc_failed(boxlite_runtime *rt, int rc)
{
    char *msg = strdup(boxlite_error_last());

    collect_garbage(rt);
    if (msg)
        bl_err(rc, "%s", msg);
    free(msg);
    return rc;
}

static void collect_garbage(boxlite_runtime *rt)
{
    struct bl_image_record *v = NULL;
    json_t *keep = json_object();
    char *dir = bl_strdupf("%s/images/blobs/sha256", rt->home);
    DIR *d = NULL;
    struct dirent *de;
    char **pins = NULL;
    size_t n = 0;
    int lock = -1, ok = 1;

    if (!keep || !dir || bl_store_lock(&lock, rt->home, "gc", 0) != 0)
        goto out;
    if (bl_db_image_list(rt->db, &v, &n) != 0)
        goto out;
    for (size_t i = 0; i < n && ok; i++)
        ok = keep_manifest_blobs(keep, rt->home, v[i].manifest) == 0;
    /* a box keeps the config of its image when the image's name is removed (rmi -f) */
    ok = ok && bl_db_box_pins(rt->db, 0, &pins) == 0;
    for (size_t i = 0; ok && pins[i]; i++)
        if (strncmp(pins[i], "sha256:", 7) == 0)
            json_object_set_new(keep, pins[i] + 7, json_true());
    d = ok ? opendir(dir) : NULL;
    for (de = d ? readdir(d) : NULL; de; de = readdir(d)) {
        char *p;
        if (strlen(de->d_name) != 64 || json_object_get(keep, de->d_name))
            continue;
        p = bl_strdupf("%s/%s", dir, de->d_name);
        if (p)
            unlink(p);
        free(p);
    }
out:
    if (d)
        closedir(d);
    bl_store_unlock(lock);
    bl_image_records_free(v, n);
    bl_strv_free(pins);
    json_decref(keep);
    free(dir);
    bl_err_clear();
}
