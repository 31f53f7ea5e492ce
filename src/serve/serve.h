/* serve.h — the internals of `boxlite serve` shared by its files: the server's settings and
 * state, one HTTP request as the handlers see it, the reply helpers and each resource group's
 * entry points. Only include/boxlite.h is used from the library. */
#ifndef BOXLITE_SERVE_H
#define BOXLITE_SERVE_H

#include "boxlite.h"
#include "decode.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- settings (cmd_serve.c fills them, serve_run uses them) ---------------------------- */

struct serve_config {
    const char *listen;         /* "127.0.0.1:8100", "[::1]:8100" */
    const char *tls_cert;       /* PEM files; both or neither */
    const char *tls_key;        /* */
    const char *api_key_file;   /* NULL: no keys (loopback only) */
    const char *prefix;         /* NULL or "": the local shape /v1/boxes/… */
    const char *volume_root;    /* NULL: volumes refused; else host paths must lie inside */
    uint64_t max_json_bytes;    /* JSON request bodies */
    uint64_t max_file_bytes;    /* tar uploads and box imports */
    uint64_t max_spool_bytes;   /* transfer spools (uploads, downloads, imports) in use at once */
    unsigned max_connections;   /* concurrent HTTP connections (one thread each) */
    unsigned header_timeout;    /* seconds to receive a request's headers (slowloris) */
    unsigned idle_timeout;      /* seconds of silence before a connection is dropped */
    unsigned max_executions;    /* executions kept (running or finished) */
    unsigned max_execs_per_key; /* running executions one principal may have */
    unsigned max_boxes_per_key; /* boxes one principal may have made (and not removed) */
    unsigned orphan_timeout;    /* seconds unattached before SIGHUP (0: never) */
};

/* Run the server until SIGTERM/SIGINT. Returns a process exit status. */
int serve_run(const struct serve_config *cfg);

/* ---- state ---------------------------------------------------------------------------- */

struct serve_keys; /* auth.c */

/* Monotonic counters for /metrics (updated with __atomic builtins). */
struct serve_counters {
    uint64_t boxes_created, boxes_failed, boxes_stopped, execs, exec_errors;
};

struct serve {
    const struct serve_config *cfg;
    boxlite_runtime *rt;
    struct serve_keys *keys;
    struct serve_counters counters;
    char tmp_dir[4096]; /* imports and exports pass through here */
    volatile int stopping;
    int loopback; /* the listen address is a loopback one */
};
extern struct serve *g_serve;

/* A box the server holds a handle to (boxes.c). Shared by requests and executions. */
struct sbox {
    struct sbox *next;
    char id[13];
    boxlite_box *box;
    pthread_mutex_t mu;  /* serialises start/stop/remove/snapshot on this box */
    pthread_mutex_t use; /* the library's rule: one thread at a time on a box handle; held
                          * around every call on box (sbox_lock), after mu when both */
    int refs;            /* guarded by the registry's lock */
    int removed;
    uint64_t execs, exec_errors, bytes_in, bytes_out; /* __atomic */
    boxlite_box_timing created; /* the create's stages (version 0: not created by this server);
                                 * under use, like the handle */
    int64_t first_start_ms;     /* its first boot's start_ms, -1 unknown; under use */
};

/* ---- one request ---------------------------------------------------------------------- */

#define SERVE_MAX_PARAMS 3

struct req;
typedef enum MHD_Result (*serve_handler)(struct req *r);

/* A streamed request body: begin once headers and route are known, data per chunk, end when
 * the body is complete (which replies). Any may fail by replying and returning nonzero. */
struct body_stream {
    int (*begin)(struct req *r);
    int (*data)(struct req *r, const char *buf, size_t n);
    enum MHD_Result (*end)(struct req *r);
};

struct route {
    const char *method;
    const char *pattern; /* "boxes/{}/start": a star segment is one parameter */
    serve_handler handler;
    int body;                         /* ROUTE_BODY_* */
    const struct body_stream *stream; /* ROUTE_BODY_STREAM */
    int idempotent;                   /* honours Idempotency-Key */
};
enum { ROUTE_BODY_NONE = 0, ROUTE_BODY_JSON = 1, ROUTE_BODY_STREAM = 2 };

struct req {
    struct MHD_Connection *conn;
    const char *method;
    char *path; /* after /v1 and the prefix */
    char *params[SERVE_MAX_PARAMS];
    const struct route *route;
    char request_id[32];
    char principal[32];            /* "local" or "key-<hash prefix>" */
    int replied;                   /* a response is queued */
    unsigned status;               /* for the access log */
    uint64_t body_bytes;           /* received so far */
    int in_body;                   /* inside a body chunk: replies are deferred to the end */
    struct MHD_Response *deferred; /* the reply queued once the body has been read */
    unsigned deferred_status;
    char *json_buf; /* ROUTE_BODY_JSON */
    size_t json_len;
    json_t *json;       /* parsed body (NULL when empty) */
    void *stream_state; /* owned by the route's body_stream; freed by its end or cleanup */
    void (*cleanup)(struct req *r); /* called once when the request is done */
    double started;                 /* monotonic seconds */
    int capture;                    /* keep the reply for Idempotency-Key (idempotency.c) */
    int captured;
    char *cap_body;
    size_t cap_len;
    char cap_location[512];
};

/* ---- replies (http.c) ------------------------------------------------------------------- */

/* Each queues the response on r's connection, sets r->replied and returns MHD_YES/NO. */
enum MHD_Result reply_json(struct req *r, unsigned status, json_t *body); /* steals body */
enum MHD_Result reply_json_location(struct req *r, unsigned status, json_t *body,
                                    const char *location);
enum MHD_Result reply_empty(struct req *r, unsigned status);
enum MHD_Result reply_error(struct req *r, unsigned status, const char *type, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A libboxlite failure (rc < 0, boxlite_error_last()) mapped onto the spec's error model. */
enum MHD_Result reply_boxlite(struct req *r, int rc, const char *what);
/* A decoder's failure (decode.h) as the spec's error. */
enum MHD_Result reply_dec(struct req *r, const struct dec_err *e);
enum MHD_Result reply_response(struct req *r, unsigned status, struct MHD_Response *resp);

/* Query and header values (borrowed from the connection; NULL when absent). */
const char *req_query(struct req *r, const char *name);
const char *req_header(struct req *r, const char *name);
/* A boolean query value: 1/0, or -1 (and a 400 queued) when it is neither. */
int req_query_bool(struct req *r, const char *name, int dflt);

/* The URL prefix of box-scoped paths for Location headers ("/v1" or "/v1/<prefix>"). */
const char *serve_base(void);

/* JSON body fields: 0 when absent or of the right type (value written), -1 when of another
 * type (a 400 is queued). */
int json_get_str(struct req *r, const char *key, const char **out);
int json_get_int(struct req *r, const char *key, json_int_t lo, json_int_t hi, json_int_t *out);
int json_get_bool(struct req *r, const char *key, int *out);

/* RFC 3339 for a unix time. */
void format_time(char out[32], int64_t t);
/* Unix seconds for "YYYY-MM-DDTHH:MM:SSZ" (0 when unparsable). */
int64_t parse_time(const char *s);
double now_monotonic(void);

/* ---- the daemon's callbacks (http.c, serve.c) --------------------------------------------- */

void http_set_base(const char *prefix);
enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls);
void http_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);
/* The request's headers are in: the header deadline no longer applies to its connection. */
void watch_headers_done(struct MHD_Connection *conn);

/* ---- Idempotency-Key (idempotency.c) ------------------------------------------------------ */

/* Run r's handler, or replay the first response to its Idempotency-Key. */
enum MHD_Result idem_run(struct req *r);

/* Load the kept results (serve.db) into memory; at server start, before any request. */
void idem_load(void);

/* ---- durable state: $BOXLITE_HOME/serve.db (state.c) ------------------------------------- */

/* One kept Idempotency-Key result as state_idem_load hands it over (borrowed for the call). */
struct state_idem {
    const char *key; /* principal + " " + the client's key */
    const unsigned char *fp;
    int64_t at;
    unsigned status;
    const void *body;
    size_t len;
    const char *location;
};

/* Open (creating) the file; -1 with a message on stderr. Writes before it, or after a failed
 * open, are dropped: the server then forgets on restart, as before. */
int state_open(const char *home);
void state_close(void);
/* Each write is one transaction; -1 (logged) when it fails. Thread-safe. */
int state_idem_put(const char *key, const unsigned char fp[32], int64_t at, unsigned status,
                   const char *body, size_t len, const char *location);
int state_idem_del(const char *key);
int state_owner_put(const char *box_id, const char *principal);
int state_owner_del(const char *box_id);
/* Call cb for each kept row (oldest first for keys). cb must not call back into state.c. */
int state_idem_load(void (*cb)(void *ctx, const struct state_idem *e), void *ctx);
int state_owner_load(void (*cb)(void *ctx, const char *box_id, const char *principal), void *ctx);

/* ---- router (router.c) -------------------------------------------------------------------- */

/* Find the route for method and path (after /v1 and the prefix), filling r->params.
 * *method_mismatch is set when the path exists under another method. */
const struct route *router_match(struct req *r, const char *method, const char *path,
                                 int *method_mismatch);

/* ---- auth (auth.c) ------------------------------------------------------------------------ */

int keys_load(struct serve_keys **out, const char *path);
void keys_free(struct serve_keys *k);
/* Swap in a fresh copy of the key file (SIGHUP). Keeps the old keys when it cannot be read. */
int keys_reload(const char *path);
/* 1 when the request's bearer token is one of the keys (or there are no keys); the
 * principal's name goes to out. */
int auth_check(struct req *r, char out[32]);
/* The same for an Authorization header's value (h may be NULL). */
int auth_check_value(const char *h, char out[32]);

/* ---- boxes (boxes.c) ---------------------------------------------------------------------- */

/* Look up a box by id or name and take a reference. On failure a reply is queued and
 * NULL returned. */
struct sbox *sbox_get(struct req *r, const char *id_or_name);
/* Same without a request: rc is the boxlite code. */
int sbox_open(struct sbox **out, const char *id_or_name);
void sbox_put(struct sbox *b);
/* Hold b->use around a call on b->box; a long call holds back the box's other requests. */
void sbox_lock(struct sbox *b);
void sbox_unlock(struct sbox *b);
/* Start the box (detached when it was created so) unless it is running. */
int sbox_ensure_running(struct sbox *b);
void boxes_shutdown(void);
/* Load who made which box (serve.db); at server start. */
void owners_load(void);
json_t *box_json(struct sbox *b); /* NULL on failure (boxlite_error_last) */

enum MHD_Result h_box_create(struct req *r);
enum MHD_Result h_box_list(struct req *r);
enum MHD_Result h_box_get(struct req *r);
enum MHD_Result h_box_head(struct req *r);
enum MHD_Result h_box_delete(struct req *r);
enum MHD_Result h_box_start(struct req *r);
enum MHD_Result h_box_stop(struct req *r);
enum MHD_Result h_box_clone(struct req *r);
enum MHD_Result h_box_export(struct req *r);
extern const struct body_stream box_import_stream;

/* ---- per-box metrics (metrics.c) ---------------------------------------------------------- */

enum MHD_Result h_box_metrics(struct req *r);

/* ---- tunnels (tunnel.c) ------------------------------------------------------------------ */

enum MHD_Result h_box_tunnel(struct req *r);
/* After the daemon has stopped (g_serve->stopping set): close every tunnel listener. */
void tunnels_shutdown(void);

/* ---- executions (exec.c, attach.c) -------------------------------------------------------- */

enum MHD_Result h_exec_create(struct req *r);
enum MHD_Result h_exec_get(struct req *r);
enum MHD_Result h_exec_delete(struct req *r);
enum MHD_Result h_exec_signal(struct req *r);
enum MHD_Result h_exec_resize(struct req *r);
enum MHD_Result h_exec_attach(struct req *r);
void execs_shutdown(void);
/* The number of executions still running (metrics). */
unsigned execs_running(void);

/* ---- files (files.c) ---------------------------------------------------------------------- */

extern const struct body_stream files_upload_stream;
/* The transfer spool in g_serve->tmp_dir: an anonymous file (O_TMPFILE, else unlinked at once,
 * mode 0600) the caller owns and closes, or -1 with errno. spool_reserve takes n bytes of the
 * server-wide bound (--max-spool): 0, or -1 when they would pass it; spool_release gives them
 * back. Thread-safe. */
int spool_open(void);
int spool_reserve(uint64_t n);
void spool_release(uint64_t n);
enum MHD_Result h_files_download(struct req *r);

/* ---- snapshots (snapshots.c) -------------------------------------------------------------- */

enum MHD_Result h_snap_create(struct req *r);
enum MHD_Result h_snap_list(struct req *r);
enum MHD_Result h_snap_get(struct req *r);
enum MHD_Result h_snap_delete(struct req *r);
enum MHD_Result h_snap_restore(struct req *r);

/* ---- images (images.c) -------------------------------------------------------------------- */

enum MHD_Result h_image_pull(struct req *r);
enum MHD_Result h_image_list(struct req *r);
enum MHD_Result h_image_get(struct req *r);
enum MHD_Result h_image_head(struct req *r);

/* ---- config, identity, metrics (system.c) ------------------------------------------------- */

enum MHD_Result h_config(struct req *r);
enum MHD_Result h_me(struct req *r);
enum MHD_Result h_metrics(struct req *r);

/* Page a list: pageSize / pageToken → [*start, *end). -1 (400 queued) when invalid. */
int page_bounds(struct req *r, size_t total, size_t *start, size_t *end, char next[24]);

#endif
