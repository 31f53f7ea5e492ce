/* http.c — libmicrohttpd glue for `boxlite serve`: one request's life (route, auth, body
 * limits, streamed bodies, the handler), the reply helpers in the spec's error model, and the
 * access log. */
#include "serve.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char g_base[256] = "/v1";

const char *serve_base(void)
{
    return g_base;
}

void http_set_base(const char *prefix)
{
    if (prefix != NULL && prefix[0] != '\0')
        snprintf(g_base, sizeof(g_base), "/v1/%s", prefix);
}

double now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void format_time(char out[32], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return 0;
    return (int64_t)timegm(&tm);
}

/* ---- replies ------------------------------------------------------------------------------ */

enum MHD_Result reply_response(struct req *r, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (r->in_body) { /* MHD takes a response only before or after the body: keep it */
        if (r->deferred == NULL) {
            r->deferred = resp;
            r->deferred_status = status;
            r->replied = 1;
            r->status = status;
        } else {
            MHD_destroy_response(resp);
        }
        return MHD_YES;
    }
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->replied = 1;
    r->status = status;
    return ret;
}

enum MHD_Result reply_json_location(struct req *r, unsigned status, json_t *body,
                                    const char *location)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct MHD_Response *resp = NULL;

    json_decref(body);
    if (text == NULL)
        return reply_error(r, 500, "InternalError", "internal", "out of memory");
    if (r->capture && (r->cap_body = strdup(text)) != NULL) {
        r->cap_len = strlen(text);
        snprintf(r->cap_location, sizeof(r->cap_location), "%s", location ? location : "");
        r->captured = 1;
    }
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (location != NULL)
        MHD_add_response_header(resp, "Location", location);
    return reply_response(r, status, resp);
}

enum MHD_Result reply_json(struct req *r, unsigned status, json_t *body)
{
    return reply_json_location(r, status, body, NULL);
}

enum MHD_Result reply_empty(struct req *r, unsigned status)
{
    r->captured = r->capture;
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return reply_response(r, status, resp);
}

enum MHD_Result reply_error(struct req *r, unsigned status, const char *type, const char *code,
                            const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    json_t *err;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(r->method, "HEAD") == 0)
        return reply_empty(r, status);
    err = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type", type, "code", code,
                    "request_id", r->request_id);
    if (err == NULL)
        return reply_empty(r, status);
    return reply_json(r, status, err);
}

enum MHD_Result reply_boxlite(struct req *r, int rc, const char *what)
{
    const char *m = boxlite_error_last();

    switch (rc) {
    case BOXLITE_ENOTFOUND:
        return reply_error(r, 404, "NotFoundError", "not_found", "%s: %s", what, m);
    case BOXLITE_EEXISTS:
        return reply_error(r, 409, "AlreadyExistsError", "already_exists", "%s: %s", what, m);
    case BOXLITE_ESTATE:
        return reply_error(r, 409, "InvalidStateError", "invalid_state", "%s: %s", what, m);
    case BOXLITE_EINVAL:
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument", "%s: %s", what, m);
    case BOXLITE_ETIMEOUT:
        return reply_error(r, 504, "TimeoutError", "timeout", "%s: %s", what, m);
    case BOXLITE_ENOMEM:
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "%s: %s", what,
                           m);
    case BOXLITE_EIO:
        return reply_error(r, 500, "StorageError", "storage_error", "%s: %s", what, m);
    case BOXLITE_EPROTO:
        return reply_error(r, 502, "EngineError", "engine_unavailable", "%s: %s", what, m);
    default:
        return reply_error(r, 500, "InternalError", "internal", "%s: %s", what, m);
    }
}

/* ---- request values ------------------------------------------------------------------------ */

const char *req_query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int req_query_bool(struct req *r, const char *name, int dflt)
{
    struct dec_err e;
    int v;

    if (dec_query_bool(name, req_query(r, name), dflt, &v, &e) != 0)
        return reply_dec(r, &e), -1;
    return v;
}

enum MHD_Result reply_dec(struct req *r, const struct dec_err *e)
{
    return reply_error(r, e->status, e->type, e->code, "%s", e->msg);
}

int json_get_str(struct req *r, const char *key, const char **out)
{
    struct dec_err e;

    return dec_str(r->json, key, out, &e) != 0 ? (reply_dec(r, &e), -1) : 0;
}

int json_get_int(struct req *r, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    struct dec_err e;

    return dec_int(r->json, key, lo, hi, out, &e) != 0 ? (reply_dec(r, &e), -1) : 0;
}

int json_get_bool(struct req *r, const char *key, int *out)
{
    struct dec_err e;

    return dec_bool(r->json, key, out, &e) != 0 ? (reply_dec(r, &e), -1) : 0;
}

int page_bounds(struct req *r, size_t total, size_t *start, size_t *end, char next[24])
{
    struct dec_err e;

    if (dec_page(req_query(r, "pageSize"), req_query(r, "pageToken"), total, start, end, next,
                 &e) != 0)
        return reply_dec(r, &e), -1;
    return 0;
}

/* ---- one request's life ------------------------------------------------------------------- */

/* One JSON line per request on stderr. Method and path are the client's: jansson escapes
 * them (a quote or newline in a path cannot forge a log line); invalid UTF-8 becomes null. */
static void access_log(struct req *r)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:i, s:f, s:I}", "ts", (json_int_t)time(NULL),
                  "request_id", r->request_id, "principal", r->principal, "method", r->method,
                  "path", r->path, "status", (int)r->status, "ms",
                  (now_monotonic() - r->started) * 1000, "body_bytes", (json_int_t)r->body_bytes);
    char *line;

    if (o == NULL) /* a name that is not UTF-8 */
        o = json_pack("{s:I, s:s, s:s, s:n, s:n, s:i}", "ts", (json_int_t)time(NULL), "request_id",
                      r->request_id, "principal", r->principal, "method", "path", "status",
                      (int)r->status);
    line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line != NULL)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
}

void http_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (r == NULL)
        return;
    if (r->cleanup != NULL)
        r->cleanup(r);
    if (r->deferred != NULL)
        MHD_destroy_response(r->deferred);
    access_log(r);
    json_decref(r->json);
    free(r->json_buf);
    free(r->cap_body);
    for (int i = 0; i < SERVE_MAX_PARAMS; i++)
        free(r->params[i]);
    free(r->path);
    free(r);
    *con_cls = NULL;
}

/* The path below /v1 for box-scoped routes with the prefix removed; NULL when it does not
 * carry the configured prefix. /config and /me never carry it. */
static const char *strip_prefix(const char *url)
{
    const char *p = g_serve->cfg->prefix;
    size_t n;

    if (strncmp(url, "/v1/", 4) != 0)
        return NULL;
    url += 3;
    if (strcmp(url, "/config") == 0 || strcmp(url, "/me") == 0)
        return url;
    if (p == NULL || p[0] == '\0')
        return url;
    n = strlen(p);
    if (url[0] != '/' || strncmp(url + 1, p, n) != 0 || url[1 + n] != '/')
        return NULL;
    return url + 1 + n;
}

static int begin_request(struct req *r, const char *url, const char *method)
{
    const char *path = strip_prefix(url);
    int mismatch = 0;
    const char *cl;

    r->path = strdup(path != NULL ? path : url);
    if (r->path == NULL)
        return reply_error(r, 500, "InternalError", "internal", "out of memory"), -1;
    if (path == NULL) {
        reply_error(r, 404, "NotFoundError", "not_found", "no such endpoint: %s", url);
        return -1;
    }
    r->route = router_match(r, method, path, &mismatch);
    if (r->route == NULL && mismatch) {
        reply_error(r, 405, "InvalidArgumentError", "invalid_argument",
                    "method %s not allowed on %s", method, url);
        return -1;
    }
    if (r->route == NULL) {
        reply_error(r, 404, "NotFoundError", "not_found", "no such endpoint: %s", url);
        return -1;
    }
    if (r->route->handler != h_config && !auth_check(r, r->principal)) {
        reply_error(r, 401, "AuthError", "unauthenticated", "invalid or missing API key");
        return -1;
    }
    cl = req_header(r, "Content-Length");
    if (r->route->body != ROUTE_BODY_STREAM && cl != NULL &&
        strtoull(cl, NULL, 10) > g_serve->cfg->max_json_bytes) {
        reply_error(r, 413, "InvalidArgumentError", "invalid_argument",
                    "request body over %llu bytes",
                    (unsigned long long)g_serve->cfg->max_json_bytes);
        return -1;
    }
    if (r->route->body == ROUTE_BODY_STREAM) {
        if (cl != NULL && strtoull(cl, NULL, 10) > g_serve->cfg->max_file_bytes) {
            reply_error(r, 413, "InvalidArgumentError", "invalid_argument",
                        "request body over %llu bytes",
                        (unsigned long long)g_serve->cfg->max_file_bytes);
            return -1;
        }
        if (r->route->stream->begin(r) != 0)
            return -1;
    }
    return 0;
}

/* Take one chunk of the body. Nonzero when the request has already been answered. */
static int take_body(struct req *r, const char *data, size_t n)
{
    uint64_t limit = r->route->body == ROUTE_BODY_STREAM ? g_serve->cfg->max_file_bytes
                                                         : g_serve->cfg->max_json_bytes;
    char *grown;

    r->body_bytes += n;
    if (r->body_bytes > limit)
        return -2; /* the connection is dropped: no reading an endless body to answer it */
    if (r->route->body == ROUTE_BODY_STREAM)
        return r->route->stream->data(r, data, n);
    if (r->route->body == ROUTE_BODY_NONE)
        return 0; /* ignored (but counted against the limit) */
    grown = realloc(r->json_buf, r->json_len + n + 1);
    if (grown == NULL) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "out of memory");
        return -1;
    }
    memcpy(grown + r->json_len, data, n);
    r->json_buf = grown;
    r->json_len += n;
    return 0;
}

static enum MHD_Result finish_request(struct req *r)
{
    struct dec_err e;

    if (r->route->body == ROUTE_BODY_STREAM)
        return r->route->stream->end(r);
    if (r->route->body == ROUTE_BODY_JSON && dec_body(&r->json, r->json_buf, r->json_len, &e) != 0)
        return reply_dec(r, &e);
    return r->route->idempotent ? idem_run(r) : r->route->handler(r);
}

enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)version;
    if (r == NULL) {
        static unsigned long seq;
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        r->conn = conn;
        r->method = method;
        r->started = now_monotonic();
        snprintf(r->principal, sizeof(r->principal), "-");
        snprintf(r->request_id, sizeof(r->request_id), "req_%lx_%lu", (unsigned long)time(NULL),
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        watch_headers_done(conn);
        begin_request(r, url, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        int rc = 0;
        if (r->replied) {
            r->body_bytes += n;
            rc = r->body_bytes > g_serve->cfg->max_file_bytes ? -2 : 0;
        } else {
            r->in_body = 1;
            rc = take_body(r, upload_data, n);
            r->in_body = 0;
        }
        if (rc == -2) {
            r->status = 413;
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (r->deferred != NULL) {
        struct MHD_Response *resp = r->deferred;
        enum MHD_Result ret;
        r->deferred = NULL;
        ret = MHD_queue_response(conn, r->deferred_status, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r->replied)
        return MHD_YES;
    return finish_request(r);
}
