/* images.c — /images: pull, list (paged), get and HEAD over the runtime's image store. */
#include "serve.h"

#include <string.h>

static json_t *image_json(const boxlite_image_info *im)
{
    char cached[32];

    format_time(cached, im->cached_at);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "reference", im->name, "repository",
                     im->repository, "tag", im->tag, "id", im->digest, "cached_at", cached,
                     "size_bytes", (json_int_t)im->size);
}

enum MHD_Result h_image_pull(struct req *r)
{
    const char *ref = NULL;
    boxlite_image_info *info = NULL;
    enum MHD_Result ret;
    int rc;

    if (json_get_str(r, "reference", &ref) != 0)
        return MHD_YES;
    if (ref == NULL || ref[0] == '\0' || strlen(ref) > 1024)
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "reference is required");
    rc = boxlite_image_pull(&info, g_serve->rt, ref, NULL);
    if (rc != 0)
        return reply_error(r, 422, "ImageError", "image_pull_failed", "pull %s: %s", ref,
                           boxlite_error_last());
    ret = reply_json(r, 200, image_json(info));
    boxlite_image_info_free(info);
    return ret;
}

enum MHD_Result h_image_list(struct req *r)
{
    boxlite_image_info *list = NULL;
    size_t n = 0, start, end;
    char next[24];
    json_t *arr;
    int rc = boxlite_image_list_v2(&list, &n, g_serve->rt, BOXLITE_IMAGE_INFO_VERSION);

    if (rc != 0)
        return reply_boxlite(r, rc, "list images");
    if (page_bounds(r, n, &start, &end, next) != 0) {
        boxlite_image_list_free(list, n);
        return MHD_YES;
    }
    arr = json_array();
    for (size_t i = start; i < end; i++)
        json_array_append_new(arr, image_json(&list[i]));
    boxlite_image_list_free(list, n);
    return reply_json(r, 200,
                      json_pack("{s:o, s:o}", "images", arr, "next_page_token",
                                next[0] ? json_string(next) : json_null()));
}

/* The image whose digest, id or name is key; NULL when none. */
static json_t *find_image(const char *key, int *rc)
{
    boxlite_image_info *list = NULL;
    size_t n = 0;
    json_t *o = NULL;

    *rc = boxlite_image_list_v2(&list, &n, g_serve->rt, BOXLITE_IMAGE_INFO_VERSION);
    for (size_t i = 0; *rc == 0 && i < n && o == NULL; i++)
        if (strcmp(list[i].digest, key) == 0 || strcmp(list[i].id, key) == 0 ||
            strcmp(list[i].name, key) == 0)
            o = image_json(&list[i]);
    boxlite_image_list_free(list, n);
    return o;
}

enum MHD_Result h_image_get(struct req *r)
{
    int rc;
    json_t *o = find_image(r->params[0], &rc);

    if (rc != 0)
        return reply_boxlite(r, rc, "list images");
    if (o == NULL)
        return reply_error(r, 404, "NotFoundError", "not_found", "image not found: %s",
                           r->params[0]);
    return reply_json(r, 200, o);
}

enum MHD_Result h_image_head(struct req *r)
{
    int rc;
    json_t *o = find_image(r->params[0], &rc);
    int found = o != NULL;

    json_decref(o);
    return reply_empty(r, found ? 204 : 404);
}
