/* snapshots.c — /boxes/{id}/snapshots: create, list, get, remove and restore a box's disk
 * snapshots through the library's snapshot calls. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

static json_t *snap_json(const boxlite_snapshot_info *s)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id", s->id, "box_id", s->box_id,
                     "name", s->name, "created_at", (json_int_t)parse_time(s->created_at),
                     "guest_disk_bytes", (json_int_t)s->size, "container_disk_bytes", (json_int_t)0,
                     "size_bytes", (json_int_t)s->size);
}

enum MHD_Result h_snap_create(struct req *r)
{
    const char *name = NULL;
    boxlite_snapshot_info info = BOXLITE_SNAPSHOT_INFO_INIT;
    struct dec_err e;
    struct sbox *b;
    int rc;

    if (dec_snap_create(r->json, &name, &e) != 0)
        return reply_dec(r, &e);
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        return MHD_YES;
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = boxlite_snapshot_create(&info, b->box, name, 0);
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    sbox_put(b);
    return rc == 0 ? reply_json(r, 201, snap_json(&info)) : reply_boxlite(r, rc, "snapshot");
}

enum MHD_Result h_snap_list(struct req *r)
{
    boxlite_snapshot_info *list = NULL;
    size_t n = 0;
    struct sbox *b = sbox_get(r, r->params[0]);
    json_t *arr;
    int rc;

    if (b == NULL)
        return MHD_YES;
    sbox_lock(b);
    rc = boxlite_snapshot_list_v2(&list, &n, b->box, BOXLITE_SNAPSHOT_INFO_VERSION);
    sbox_unlock(b);
    sbox_put(b);
    if (rc != 0)
        return reply_boxlite(r, rc, "list snapshots");
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, snap_json(&list[i]));
    boxlite_snapshot_list_free(list, n);
    return reply_json(r, 200, json_pack("{s:o}", "snapshots", arr));
}

enum MHD_Result h_snap_get(struct req *r)
{
    boxlite_snapshot_info *list = NULL;
    size_t n = 0;
    struct sbox *b = sbox_get(r, r->params[0]);
    json_t *o = NULL;
    int rc;

    if (b == NULL)
        return MHD_YES;
    sbox_lock(b);
    rc = boxlite_snapshot_list_v2(&list, &n, b->box, BOXLITE_SNAPSHOT_INFO_VERSION);
    sbox_unlock(b);
    sbox_put(b);
    if (rc != 0)
        return reply_boxlite(r, rc, "list snapshots");
    for (size_t i = 0; i < n && o == NULL; i++)
        if (strcmp(list[i].name, r->params[1]) == 0 || strcmp(list[i].id, r->params[1]) == 0)
            o = snap_json(&list[i]);
    boxlite_snapshot_list_free(list, n);
    if (o == NULL)
        return reply_error(r, 404, "NotFoundError", "not_found", "snapshot not found: %s",
                           r->params[1]);
    return reply_json(r, 200, o);
}

static enum MHD_Result snap_act(struct req *r, int restore)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    int rc;

    if (b == NULL)
        return MHD_YES;
    pthread_mutex_lock(&b->mu);
    sbox_lock(b);
    rc = restore ? boxlite_snapshot_restore(b->box, r->params[1], 0)
                 : boxlite_snapshot_remove(b->box, r->params[1]);
    sbox_unlock(b);
    pthread_mutex_unlock(&b->mu);
    sbox_put(b);
    return rc == 0 ? reply_empty(r, 204)
                   : reply_boxlite(r, rc, restore ? "restore snapshot" : "remove snapshot");
}

enum MHD_Result h_snap_delete(struct req *r)
{
    return snap_act(r, 0);
}

enum MHD_Result h_snap_restore(struct req *r)
{
    return snap_act(r, 1);
}
