/* boxes.c — the Box API's box resources: the registry of box handles the server holds
 * (shared by requests and executions, counted references), create/list/get/remove,
 * start/stop, clone, export and import. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sbox *reg_head;

/* ---- per-key box allowance: which principal made which box (kept in serve.db) ---------- */

struct owner {
    struct owner *next;
    char box_id[13];
    char principal[32];
};
static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER;
static struct owner *owners;

/* 0 when principal may make one more box; else a 429 is queued. Boxes removed since (by
 * any means) no longer count. */
static int owner_check(struct req *r)
{
    boxlite_box_info *list = NULL;
    size_t n = 0, mine = 0;
    struct owner **pp;

    if (boxlite_box_list_v2(&list, &n, g_serve->rt, BOXLITE_BOX_INFO_VERSION) != 0)
        return 0;
    pthread_mutex_lock(&owner_mu);
    for (pp = &owners; *pp != NULL;) {
        struct owner *o = *pp;
        size_t i = 0;
        while (i < n && strcmp(list[i].id, o->box_id) != 0)
            i++;
        if (i == n) { /* gone */
            *pp = o->next;
            state_owner_del(o->box_id);
            free(o);
            continue;
        }
        mine += strcmp(o->principal, r->principal) == 0;
        pp = &o->next;
    }
    pthread_mutex_unlock(&owner_mu);
    boxlite_box_list_free(list, n);
    if (mine < g_serve->cfg->max_boxes_per_key)
        return 0;
    reply_error(r, 429, "ResourceExhaustedError", "resource_exhausted",
                "this key has %zu boxes (--max-boxes-per-key)", mine);
    return -1;
}

static void owner_add(struct req *r, const char *box_id)
{
    struct owner *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return;
    snprintf(o->box_id, sizeof(o->box_id), "%s", box_id);
    snprintf(o->principal, sizeof(o->principal), "%s", r->principal);
    pthread_mutex_lock(&owner_mu);
    o->next = owners;
    owners = o;
    pthread_mutex_unlock(&owner_mu);
    state_owner_put(o->box_id, o->principal);
}

static void owner_load_one(void *ctx, const char *box_id, const char *principal)
{
    struct owner *o = calloc(1, sizeof(*o));

    (void)ctx;
    if (o == NULL)
        return;
    snprintf(o->box_id, sizeof(o->box_id), "%s", box_id);
    snprintf(o->principal, sizeof(o->principal), "%s", principal);
    o->next = owners; /* start-up only: no request runs yet */
    owners = o;
}

void owners_load(void)
{
    state_owner_load(owner_load_one, NULL);
}

void sbox_lock(struct sbox *b)
{
    pthread_mutex_lock(&b->use);
}

void sbox_unlock(struct sbox *b)
{
    pthread_mutex_unlock(&b->use);
}

static void sbox_destroy(struct sbox *b)
{
    boxlite_box_free(b->box);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->use);
    free(b);
}

int sbox_open(struct sbox **out, const char *id_or_name)
{
    boxlite_box *box = NULL;
    struct sbox *b;
    int rc = boxlite_box_get(&box, g_serve->rt, id_or_name);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&reg_mu);
    for (b = reg_head; b != NULL; b = b->next)
        if (strcmp(b->id, boxlite_box_id(box)) == 0)
            break;
    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL) {
            pthread_mutex_unlock(&reg_mu);
            boxlite_box_free(box);
            return BOXLITE_ENOMEM;
        }
        snprintf(b->id, sizeof(b->id), "%s", boxlite_box_id(box));
        b->box = box;
        box = NULL;
        pthread_mutex_init(&b->mu, NULL);
        pthread_mutex_init(&b->use, NULL);
        b->first_start_ms = -1;
        b->refs = 1; /* the registry's */
        b->next = reg_head;
        reg_head = b;
    }
    b->refs++;
    pthread_mutex_unlock(&reg_mu);
    boxlite_box_free(box);
    *out = b;
    return 0;
}

struct sbox *sbox_get(struct req *r, const char *id_or_name)
{
    struct sbox *b = NULL;
    int rc;

    if (id_or_name == NULL || strlen(id_or_name) > 128) {
        reply_error(r, 404, "NotFoundError", "not_found", "box not found");
        return NULL;
    }
    rc = sbox_open(&b, id_or_name);
    if (rc != 0) {
        if (rc == BOXLITE_ENOTFOUND || rc == BOXLITE_EINVAL)
            reply_error(r, 404, "NotFoundError", "not_found", "box not found: %s", id_or_name);
        else
            reply_boxlite(r, rc, "box");
        return NULL;
    }
    return b;
}

void sbox_put(struct sbox *b)
{
    int last;

    if (b == NULL)
        return;
    pthread_mutex_lock(&reg_mu);
    last = --b->refs == 0;
    pthread_mutex_unlock(&reg_mu);
    if (last)
        sbox_destroy(b);
}

/* Drop the registry's reference (after a removal). */
static void sbox_forget(struct sbox *b)
{
    struct sbox **pp;

    pthread_mutex_lock(&reg_mu);
    for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            b->refs--;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

void boxes_shutdown(void)
{
    pthread_mutex_lock(&reg_mu);
    while (reg_head != NULL) {
        struct sbox *b = reg_head;
        reg_head = b->next;
        if (--b->refs == 0)
            sbox_destroy(b); /* a box the server started non-detached stops here */
    }
    pthread_mutex_unlock(&reg_mu);
}

int sbox_ensure_running(struct sbox *b)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    int rc;

    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_box_get_info(&info, b->box);
    if (rc == 0 && strcmp(info.state, "running") != 0) {
        boxlite_box_timing t = BOXLITE_BOX_TIMING_INIT;
        rc = info.detach ? boxlite_box_start_detached(b->box) : boxlite_box_start(b->box);
        if (rc != 0)
            __atomic_add_fetch(&g_serve->counters.boxes_failed, 1, __ATOMIC_RELAXED);
        else if (info.state_code == BOXLITE_BOX_STATE_CONFIGURED &&
                 boxlite_box_get_timing(&t, b->box) == 0)
            b->first_start_ms = t.start_ms; /* for BootTiming's total_create_ms */
    }
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static json_t *info_json(const boxlite_box_info *in)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "box_id", in->id, "status",
                          in->state, "created_at", in->created_at, "updated_at", in->updated_at,
                          "image", in->image, "cpus", (int)(in->cpus ? in->cpus : 1), "memory_mib",
                          (int)(in->memory_mib ? in->memory_mib : 512));
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", in->name[0] ? json_string(in->name) : json_null());
    json_object_set_new(o, "pid", in->pid > 0 ? json_integer(in->pid) : json_null());
    json_object_set_new(o, "auto_pause", json_integer(0));
    json_object_set_new(o, "auto_delete", json_integer(in->auto_delete > 0 ? in->auto_delete : 0));
    json_object_set_new(o, "auto_resume", json_false());
    return o;
}

json_t *box_json(struct sbox *b)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;

    int rc;

    sbox_lock(b);
    rc = boxlite_box_get_info(&info, b->box);
    sbox_unlock(b);
    return rc == 0 ? info_json(&info) : NULL;
}

static enum MHD_Result reply_box(struct req *r, struct sbox *b, unsigned status, int location)
{
    json_t *o = box_json(b);
    char loc[512];

    if (o == NULL)
        return reply_boxlite(r, BOXLITE_ERROR, "box info");
    snprintf(loc, sizeof(loc), "%s/boxes/%s", serve_base(), b->id);
    return reply_json_location(r, status, o, location ? loc : NULL);
}

/* ---- create ------------------------------------------------------------------------------- */

/* The body is decoded by dec_box_create (decode.c); what is left here is the server's own:
 * the per-key allowance, the library call and the reply. */
enum MHD_Result h_box_create(struct req *r)
{
    struct dec_box d;
    struct dec_err e;
    boxlite_box *box = NULL;
    struct sbox *b = NULL;
    enum MHD_Result ret = MHD_YES;
    int rc;

    if (dec_box_create(&d, r->json, g_serve->cfg->volume_root, &e) != 0)
        return reply_dec(r, &e);
    if (owner_check(r) != 0)
        goto out;
    rc = boxlite_box_create(&box, g_serve->rt, &d.o);
    if (rc != 0) {
        ret = rc == BOXLITE_ENOTFOUND ? reply_error(r, 422, "ImageError", "image_pull_failed",
                                                    "create box: %s", boxlite_error_last())
                                      : reply_boxlite(r, rc, "create box");
        goto out;
    }
    __atomic_add_fetch(&g_serve->counters.boxes_created, 1, __ATOMIC_RELAXED);
    owner_add(r, boxlite_box_id(box));
    rc = sbox_open(&b, boxlite_box_id(box));
    if (rc == 0) {
        sbox_lock(b);
        b->created.version = BOXLITE_BOX_TIMING_VERSION;
        if (boxlite_box_get_timing(&b->created, box) != 0)
            b->created.version = 0;
        sbox_unlock(b);
    }
    ret = rc != 0 ? reply_boxlite(r, rc, "box") : reply_box(r, b, 201, 1);
out:
    boxlite_box_free(box);
    sbox_put(b);
    dec_box_free(&d);
    return r->replied ? MHD_YES : ret;
}

/* ---- read --------------------------------------------------------------------------------- */

enum MHD_Result h_box_list(struct req *r)
{
    boxlite_box_info *list = NULL;
    size_t n = 0, start, end;
    const char *status = req_query(r, "status");
    json_t *arr = NULL, *o;
    char next[24];
    int rc = boxlite_box_list_v2(&list, &n, g_serve->rt, BOXLITE_BOX_INFO_VERSION);

    if (rc != 0)
        return reply_boxlite(r, rc, "list boxes");
    arr = json_array();
    for (size_t i = 0; i < n; i++) /* filter first so pages count matching boxes */
        if (status == NULL || strcmp(list[i].state, status) == 0)
            json_array_append_new(arr, info_json(&list[i]));
    boxlite_box_list_free(list, n);
    if (page_bounds(r, json_array_size(arr), &start, &end, next) != 0) {
        json_decref(arr);
        return MHD_YES;
    }
    o = json_pack("{s:[]}", "boxes");
    for (size_t i = start; i < end; i++)
        json_array_append(json_object_get(o, "boxes"), json_array_get(arr, i));
    json_decref(arr);
    json_object_set_new(o, "next_page_token", next[0] ? json_string(next) : json_null());
    return reply_json(r, 200, o);
}

enum MHD_Result h_box_get(struct req *r)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    enum MHD_Result ret;

    if (b == NULL)
        return MHD_YES;
    ret = reply_box(r, b, 200, 0);
    sbox_put(b);
    return ret;
}

enum MHD_Result h_box_head(struct req *r)
{
    struct sbox *b = NULL;
    int rc = strlen(r->params[0]) <= 128 ? sbox_open(&b, r->params[0]) : BOXLITE_ENOTFOUND;

    sbox_put(b);
    return reply_empty(r, rc == 0 ? 204 : 404);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

enum MHD_Result h_box_delete(struct req *r)
{
    int force = req_query_bool(r, "force", 0);
    struct sbox *b;
    int rc;

    if (force < 0)
        return MHD_YES;
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        return MHD_YES;
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_box_remove(b->box, force);
    sbox_unlock(b);
    if (rc == 0)
        b->removed = 1;
    pthread_mutex_unlock(&b->mu);
    if (rc == 0)
        sbox_forget(b);
    sbox_put(b);
    return rc == 0 ? reply_empty(r, 204) : reply_boxlite(r, rc, "remove box");
}

enum MHD_Result h_box_start(struct req *r)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    enum MHD_Result ret;
    int rc;

    if (b == NULL)
        return MHD_YES;
    rc = sbox_ensure_running(b);
    ret = rc == 0 ? reply_box(r, b, 200, 0) : reply_boxlite(r, rc, "start box");
    sbox_put(b);
    return ret;
}

enum MHD_Result h_box_stop(struct req *r)
{
    struct dec_err e;
    double secs;
    struct sbox *b;
    enum MHD_Result ret;
    int rc;

    if (dec_box_stop(r->json, &secs, &e) != 0)
        return reply_dec(r, &e);
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        return MHD_YES;
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_box_stop(b->box, (int)(secs * 1000));
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    if (rc == 0)
        __atomic_add_fetch(&g_serve->counters.boxes_stopped, 1, __ATOMIC_RELAXED);
    ret = rc == 0 ? reply_box(r, b, 200, 0) : reply_boxlite(r, rc, "stop box");
    sbox_put(b);
    return ret;
}

enum MHD_Result h_box_clone(struct req *r)
{
    const char *name = NULL;
    boxlite_box *clone = NULL;
    struct sbox *b, *c = NULL;
    enum MHD_Result ret;
    int rc;

    if (json_get_str(r, "name", &name) != 0)
        return MHD_YES;
    if (owner_check(r) != 0)
        return MHD_YES;
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        return MHD_YES;
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_box_clone_v2(&clone, b->box, NULL, name);
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    if (rc == 0) {
        owner_add(r, boxlite_box_id(clone));
        rc = sbox_open(&c, boxlite_box_id(clone));
    }
    if (rc == 0)
        __atomic_add_fetch(&g_serve->counters.boxes_created, 1, __ATOMIC_RELAXED);
    ret = rc == 0 ? reply_box(r, c, 201, 1) : reply_boxlite(r, rc, "clone box");
    boxlite_box_free(clone);
    sbox_put(c);
    sbox_put(b);
    return ret;
}

/* ---- export: the archive is written to the server's tmp dir, unlinked, and streamed -------- */

enum MHD_Result h_box_export(struct req *r)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    char path[4200];
    struct stat st;
    struct MHD_Response *resp;
    int fd = -1, rc;

    if (b == NULL)
        return MHD_YES;
    snprintf(path, sizeof(path), "%s/export-%s-%s.boxlite", g_serve->tmp_dir, b->id, r->request_id);
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_box_export(b->box, NULL, path);
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    sbox_put(b);
    if (rc != 0) {
        unlink(path);
        return reply_boxlite(r, rc, "export box");
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return reply_error(r, 500, "StorageError", "storage_error", "export: %s", strerror(errno));
    }
    resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* takes fd */
    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    return reply_response(r, 200, resp);
}

/* ---- import: the body goes to a file in the tmp dir, then boxlite_box_import --------------- */

struct import_state {
    int fd;
    uint64_t reserved; /* of the server's transfer spool (files.c) */
    char path[4200];
};

static void import_cleanup(struct req *r)
{
    struct import_state *s = r->stream_state;

    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    unlink(s->path);
    spool_release(s->reserved);
    free(s);
    r->stream_state = NULL;
}

static int import_begin(struct req *r)
{
    struct import_state *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory"), -1;
    snprintf(s->path, sizeof(s->path), "%s/import-XXXXXX", g_serve->tmp_dir);
    s->fd = mkstemp(s->path);
    r->stream_state = s;
    r->cleanup = import_cleanup;
    if (s->fd < 0)
        return reply_error(r, 500, "StorageError", "storage_error", "import: %s", strerror(errno)),
               -1;
    return 0;
}

static int import_data(struct req *r, const char *buf, size_t n)
{
    struct import_state *s = r->stream_state;

    if (spool_reserve(n) != 0)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted",
                           "the server's transfer spool (%llu bytes) is full; try again later",
                           (unsigned long long)g_serve->cfg->max_spool_bytes),
               -1;
    s->reserved += n;
    while (n > 0) {
        ssize_t w = write(s->fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return reply_error(r, 500, "StorageError", "storage_error", "import: %s",
                               strerror(errno)),
                   -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static enum MHD_Result import_end(struct req *r)
{
    struct import_state *s = r->stream_state;
    const char *name = req_query(r, "name");
    boxlite_box *box = NULL;
    struct sbox *b = NULL;
    enum MHD_Result ret;
    int rc;

    if (r->body_bytes == 0)
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "the body must be a .boxlite archive");
    if (owner_check(r) != 0)
        return MHD_YES;
    rc = boxlite_box_import(&box, g_serve->rt, s->path, name, 1);
    if (rc == 0) {
        owner_add(r, boxlite_box_id(box));
        rc = sbox_open(&b, boxlite_box_id(box));
    }
    if (rc == 0)
        __atomic_add_fetch(&g_serve->counters.boxes_created, 1, __ATOMIC_RELAXED);
    ret = rc == 0 ? reply_box(r, b, 201, 1)
                  : (rc == BOXLITE_EEXISTS
                         ? reply_boxlite(r, rc, "import box")
                         : reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                                       "import box: %s", boxlite_error_last()));
    boxlite_box_free(box);
    sbox_put(b);
    return ret;
}

const struct body_stream box_import_stream = {import_begin, import_data, import_end};
