/* router.c — the Box API's route table (method + path pattern → handler, body kind) and the
 * matcher that fills a request's path parameters. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

static const struct route routes[] = {
    {"GET", "config", h_config, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "me", h_me, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes", h_box_create, ROUTE_BODY_JSON, NULL, 1},
    {"GET", "boxes", h_box_list, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes/import", NULL, ROUTE_BODY_STREAM, &box_import_stream, 0},
    {"GET", "boxes/*", h_box_get, ROUTE_BODY_NONE, NULL, 0},
    {"HEAD", "boxes/*", h_box_head, ROUTE_BODY_NONE, NULL, 0},
    {"DELETE", "boxes/*", h_box_delete, ROUTE_BODY_NONE, NULL, 1},
    {"POST", "boxes/*/start", h_box_start, ROUTE_BODY_NONE, NULL, 1},
    {"POST", "boxes/*/stop", h_box_stop, ROUTE_BODY_JSON, NULL, 1},
    {"POST", "boxes/*/snapshots", h_snap_create, ROUTE_BODY_JSON, NULL, 0},
    {"GET", "boxes/*/snapshots", h_snap_list, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "boxes/*/snapshots/*", h_snap_get, ROUTE_BODY_NONE, NULL, 0},
    {"DELETE", "boxes/*/snapshots/*", h_snap_delete, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes/*/snapshots/*/restore", h_snap_restore, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes/*/clone", h_box_clone, ROUTE_BODY_JSON, NULL, 0},
    {"POST", "boxes/*/export", h_box_export, ROUTE_BODY_JSON, NULL, 0},
    {"POST", "boxes/*/exec", h_exec_create, ROUTE_BODY_JSON, NULL, 1},
    {"GET", "boxes/*/executions/*", h_exec_get, ROUTE_BODY_NONE, NULL, 0},
    {"DELETE", "boxes/*/executions/*", h_exec_delete, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "boxes/*/executions/*/attach", h_exec_attach, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes/*/executions/*/signal", h_exec_signal, ROUTE_BODY_JSON, NULL, 1},
    {"POST", "boxes/*/executions/*/resize", h_exec_resize, ROUTE_BODY_JSON, NULL, 0},
    {"PUT", "boxes/*/files", NULL, ROUTE_BODY_STREAM, &files_upload_stream, 0},
    {"GET", "boxes/*/files", h_files_download, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "boxes/*/network/tunnel", h_box_tunnel, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "metrics", h_metrics, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "boxes/*/metrics", h_box_metrics, ROUTE_BODY_NONE, NULL, 0},
    {"POST", "images/pull", h_image_pull, ROUTE_BODY_JSON, NULL, 1},
    {"GET", "images", h_image_list, ROUTE_BODY_NONE, NULL, 0},
    {"GET", "images/*", h_image_get, ROUTE_BODY_NONE, NULL, 0},
    {"HEAD", "images/*", h_image_head, ROUTE_BODY_NONE, NULL, 0},
};

/* Match path ("/boxes/abc/start") against pattern ("boxes/x/start" with '*' segments),
 * writing up to SERVE_MAX_PARAMS borrowed segment spans. */
static int match(const char *pattern, const char *path, const char *seg[], size_t len[])
{
    int n = 0;

    if (*path != '/')
        return 0;
    path++;
    while (*pattern != '\0') {
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t pl = pe != NULL ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sl = se != NULL ? (size_t)(se - path) : strlen(path);

        if (sl == 0)
            return 0;
        if (pl == 1 && pattern[0] == '*') {
            if (n == SERVE_MAX_PARAMS)
                return 0;
            seg[n] = path;
            len[n++] = sl;
        } else if (pl != sl || strncmp(pattern, path, pl) != 0) {
            return 0;
        }
        pattern += pl;
        path += sl;
        if ((*pattern == '/') != (*path == '/'))
            return 0;
        if (*pattern == '/') {
            pattern++;
            path++;
        }
    }
    return *path == '\0';
}

const struct route *router_match(struct req *r, const char *method, const char *path,
                                 int *method_mismatch)
{
    const char *seg[SERVE_MAX_PARAMS];
    size_t len[SERVE_MAX_PARAMS];

    *method_mismatch = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!match(routes[i].pattern, path, seg, len))
            continue;
        /* "boxes/import" is not a box called "import" */
        if (strcmp(routes[i].pattern, "boxes/*") == 0 && strcmp(path, "/boxes/import") == 0) {
            *method_mismatch = 1;
            continue;
        }
        if (strcmp(routes[i].method, method) != 0) {
            *method_mismatch = 1;
            continue;
        }
        for (int k = 0; k < SERVE_MAX_PARAMS && routes[i].pattern != NULL; k++) {
            int nparams = 0;
            for (const char *p = routes[i].pattern; *p != '\0'; p++)
                nparams += *p == '*';
            if (k >= nparams)
                break;
            r->params[k] = strndup(seg[k], len[k]);
            if (r->params[k] == NULL)
                return NULL;
        }
        return &routes[i];
    }
    return NULL;
}
