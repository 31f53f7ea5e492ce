/* pull.c — pulling an image: short names through the search registries, manifest and index
 * resolution for this platform, verified blob downloads with retries, then the build. */
#include "error.h"
#include "image.h"
#include "manifest.h"
#include "reference.h"
#include "registry.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOB_ATTEMPTS 3
#define LAYER_MAX     (64ull << 30)
#define REPORT_EVERY  (256u << 10)

struct pull {
    boxlite_runtime *rt;
    const struct bl_pull_progress_ctx *progress;
    const char *name; /* canonical, for progress */
    struct bl_blob_writer *w;
    const char *digest;
    unsigned layer, layers;
    uint64_t total, reported;
};

static int blob_sink(void *ctx, const void *buf, size_t n)
{
    struct pull *p = ctx;
    int rc = bl_blob_write(p->w, buf, n);
    uint64_t done = bl_blob_written(p->w);

    if (rc == 0 && p->layer && done - p->reported >= REPORT_EVERY) {
        p->reported = done;
        bl_image_report(p->progress, BOXLITE_PULL_DOWNLOAD, p->name, p->digest, p->layer, p->layers,
                        done, p->total);
    }
    return rc;
}

/* Fetch one blob into the store unless it is there; one process downloads it at a time. */
static int fetch_blob(struct pull *p, struct bl_registry *reg, const struct bl_descriptor *d,
                      uint64_t max, unsigned layer)
{
    char *lockname = bl_strdupf("blob-%s", d->digest + 7);
    int lock = -1, rc;

    if (!lockname)
        return BOXLITE_ENOMEM;
    if (d->size > max) {
        free(lockname);
        return bl_err(BOXLITE_EPROTO, "blob %s of %llu bytes is over the %llu byte cap", d->digest,
                      (unsigned long long)d->size, (unsigned long long)max);
    }
    rc = bl_store_lock(&lock, p->rt->home, lockname, BL_LOCK_TIMEOUT_MS);
    free(lockname);
    if (rc != 0)
        return rc;
    p->digest = d->digest;
    p->layer = layer;
    p->total = d->size;
    p->reported = 0;
    if (bl_store_has_blob(p->rt->home, d->digest)) {
        if (layer)
            bl_image_report(p->progress, BOXLITE_PULL_CACHED, p->name, d->digest, layer, p->layers,
                            d->size, d->size);
        bl_store_unlock(lock);
        return 0;
    }
    for (int attempt = 1; attempt <= BLOB_ATTEMPTS; attempt++) {
        rc = bl_blob_begin(&p->w, p->rt->home, d->size ? d->size : max);
        if (rc == 0)
            rc = bl_registry_blob(reg, d->digest, blob_sink, p);
        if (rc == 0 && d->size && bl_blob_written(p->w) != d->size)
            rc =
                bl_err(BOXLITE_EPROTO, "blob %s: got %llu bytes, the manifest says %llu", d->digest,
                       (unsigned long long)bl_blob_written(p->w), (unsigned long long)d->size);
        if (rc == 0)
            rc = bl_blob_commit(p->w, d->digest, NULL);
        bl_blob_free(p->w);
        p->w = NULL;
        if (rc != BL_REGISTRY_RETRYABLE || attempt == BLOB_ATTEMPTS)
            break;
        bl_log(p->rt, BL_LOG_WARN, "blob %s: %s; retrying", d->digest, boxlite_error_last());
        usleep(500000u * (unsigned)attempt);
    }
    if (rc == BL_REGISTRY_RETRYABLE)
        rc = bl_err_wrap(BOXLITE_EIO, "gave up after %d attempts", BLOB_ATTEMPTS);
    if (rc == 0 && layer)
        bl_image_report(p->progress, BOXLITE_PULL_DOWNLOAD, p->name, d->digest, layer, p->layers,
                        d->size, d->size);
    bl_store_unlock(lock);
    return rc;
}

/* Store a manifest we hold in memory (its digest already checked by the caller). */
static int store_bytes(const char *home, const char *body, size_t len, const char *digest)
{
    struct bl_blob_writer *w = NULL;
    int rc;

    if (bl_store_has_blob(home, digest))
        return 0;
    rc = bl_blob_begin(&w, home, 0);
    if (rc == 0)
        rc = bl_blob_write(w, body, len);
    if (rc == 0)
        rc = bl_blob_commit(w, digest, NULL);
    bl_blob_free(w);
    return rc;
}

/* GET the manifest for reference; when it is an index, the one for this platform. */
static int fetch_manifest(struct bl_manifest *out, char digest_out[72], struct bl_registry *reg,
                          const char *home, const char *reference)
{
    char *body = NULL, *ctype = NULL;
    size_t len = 0;
    char got[72], next[72];
    int rc = 0;

    for (int hop = 0; hop < 2; hop++) {
        struct bl_manifest m = {0};
        rc = bl_registry_manifest(&body, &len, &ctype, reg, reference);
        if (rc != 0)
            break;
        bl_sha256_buf(got, body, len);
        if (strncmp(reference, "sha256:", 7) == 0 && strcmp(got, reference) != 0) {
            rc = bl_err(BOXLITE_EIO, "manifest %s: digest mismatch (content hashes to %s)",
                        reference, got);
            break;
        }
        rc = bl_manifest_parse(&m, body, len, ctype, "linux", bl_platform_arch());
        free(ctype);
        ctype = NULL;
        if (rc == 0 && m.kind == BL_MANIFEST_IMAGE) {
            rc = store_bytes(home, body, len, got);
            if (rc == 0) {
                *out = m;
                memcpy(digest_out, got, 72);
            } else {
                bl_manifest_clear(&m);
            }
            break;
        }
        if (rc == 0 && hop == 1)
            rc = bl_err(BOXLITE_EPROTO, "an image index points to another index");
        if (rc != 0) {
            bl_manifest_clear(&m);
            break;
        }
        free(body);
        body = NULL;
        memcpy(next, m.platform_manifest.digest, 72);
        reference = next; /* the next hop fetches it by digest and checks it */
        bl_manifest_clear(&m);
    }
    free(body);
    free(ctype);
    return rc;
}

static int pull_one(struct bl_image_record *out, boxlite_runtime *rt, const struct bl_ref *ref,
                    const char *name, const struct bl_pull_progress_ctx *progress)
{
    struct pull p = {.rt = rt, .progress = progress, .name = name};
    struct bl_registry *reg = NULL;
    struct bl_manifest m = {0};
    char mdigest[72];
    int gc = -1, refused = 0;
    int rc;

    bl_image_report(progress, BOXLITE_PULL_RESOLVE, name, NULL, 0, 0, 0, 0);
    rc = bl_registry_open(&reg, ref->registry, ref->repository,
                          bl_images_registry(rt, ref->registry));
    if (rc == 0)
        rc = bl_store_lock_shared(&gc, rt->home, "gc", BL_LOCK_TIMEOUT_MS);
    if (rc == 0)
        rc = fetch_manifest(&m, mdigest, reg, rt->home, ref->digest ? ref->digest : ref->tag);
    p.layers = (unsigned)m.n_layers;
    if (rc == 0)
        rc = fetch_blob(&p, reg, &m.config, BL_CONFIG_MAX, 0);
    for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
        rc = fetch_blob(&p, reg, &m.layers[i], LAYER_MAX, (unsigned)i + 1);
    if (rc == 0) {
        rc = bl_image_build(out, rt, name, mdigest, &m, progress);
        refused = rc != 0;
    }
    if (rc == 0)
        bl_image_report(progress, BOXLITE_PULL_DONE, name, NULL, p.layers, p.layers, 0, 0);
    bl_store_unlock(gc);
    if (refused) /* nothing of a refused image stays in the store */
        rc = bl_image_gc_failed(rt, rc);
    bl_manifest_clear(&m);
    bl_registry_free(reg);
    return rc;
}

int bl_image_pull_record(struct bl_image_record *out, boxlite_runtime *rt, const char *s,
                         const struct bl_pull_progress_ctx *progress)
{
    struct bl_ref ref = {0}, *cands = NULL;
    char tried[1024] = "";
    size_t n = 0, used = 0;
    int rc = bl_ref_parse(&ref, s);

    if (rc == 0)
        rc = bl_image_candidates(&cands, &n, rt, &ref);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *name = bl_ref_string(&cands[i]);
        if (!name) {
            rc = BOXLITE_ENOMEM;
            break;
        }
        rc = pull_one(out, rt, &cands[i], name, progress);
        if (rc == BOXLITE_ENOTFOUND && i + 1 < n) {
            int w = snprintf(tried + used, sizeof(tried) - used, "%s%s: %s", used ? "; " : "", name,
                             boxlite_error_last());
            if (w > 0 && (size_t)w < sizeof(tried) - used)
                used += (size_t)w;
            rc = 0;
            free(name);
            continue;
        }
        if (rc != 0 && used)
            bl_err_wrap(rc, "%s; then %s", tried, name);
        else if (rc != 0)
            bl_err_wrap(rc, "%s", name);
        free(name);
        break;
    }
    for (size_t i = 0; i < n; i++)
        bl_ref_clear(&cands[i]);
    free(cands);
    bl_ref_clear(&ref);
    return rc;
}
