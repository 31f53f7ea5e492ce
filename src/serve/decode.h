/* decode.h — the Box API's request decoders, the one home of every parse of what a client sends
 * `boxlite serve` (JSON bodies, query values, the attach control messages): pure functions with
 * no libmicrohttpd, request or server state; the operator's settings they depend on come as
 * arguments. The handlers turn a failure into the reply; tests/fuzz/fuzz_serve_decode.c fuzzes
 * them all. Only include/boxlite.h's option structs are used from the library. */
#ifndef BOXLITE_SERVE_DECODE_H
#define BOXLITE_SERVE_DECODE_H

#include "boxlite.h"

#include <jansson.h>
#include <stddef.h>

/* Why a decode failed, in the spec's error model: an HTTP status (400 for the client's
 * mistakes; 503 resource_exhausted when memory ran out), the error's type and code (static
 * strings) and a message (NUL-terminated). */
struct dec_err {
    unsigned status;
    const char *type;
    const char *code;
    char msg[1024];
};

/* A request body as the server takes it: NULL in *out for an empty one, else a JSON object
 * (duplicate keys refused). *out belongs to the caller (json_decref). -1 with err filled. */
int dec_body(json_t **out, const char *buf, size_t len, struct dec_err *err);

/* A member of obj (obj may be NULL): 0 when absent, null or of the right type (*out written
 * only when present), -1 (err filled) otherwise. Strings are borrowed from obj. */
int dec_str(json_t *obj, const char *key, const char **out, struct dec_err *err);
int dec_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi, json_int_t *out,
            struct dec_err *err);
int dec_bool(json_t *obj, const char *key, int *out, struct dec_err *err);

/* ---- query values (v: the value as given, NULL when absent) ------------------------------ */

/* "true"/"1" → 1, "false"/"0" → 0, absent → dflt; -1 otherwise. */
int dec_query_bool(const char *name, const char *v, int dflt, int *out, struct dec_err *err);
/* pageSize (1..1000, default 100) and pageToken ("o<offset>", as this server issues them)
 * over total items → [*start, *end) with *start <= *end <= total, and next ("" when the page
 * is the last). */
int dec_page(const char *page_size, const char *page_token, size_t total, size_t *start,
             size_t *end, char next[24], struct dec_err *err);
/* A tunnel's in-box port: 1..65535. */
int dec_port(const char *v, unsigned *out, struct dec_err *err);

/* ---- bodies --------------------------------------------------------------------------------- */

/* CreateBoxRequest → boxlite_box_options. Strings in o are borrowed from body; the vectors
 * and arrays are the decoded struct's own (dec_box_free). Volumes are refused unless
 * volume_root (--volume-root) is set; then each host_path must resolve inside it. */
struct dec_box {
    boxlite_box_options o;
    char **env, **entrypoint, **cmd, **allow, **vpaths;
    char ***hosts; /* each secret's host list */
    boxlite_volume *volumes;
    boxlite_secret *secrets;
};
#define DEC_AUTO_DELETE_MAX (10LL * 365 * 24 * 3600) /* seconds: ten years */
int dec_box_create(struct dec_box *out, json_t *body, const char *volume_root, struct dec_err *err);
void dec_box_free(struct dec_box *d); /* accepts a zeroed or half-filled struct */

/* The stop request's timeout_seconds (0..3600, default 30). body may be NULL. */
int dec_box_stop(json_t *body, double *secs, struct dec_err *err);
/* CreateSnapshotRequest's name: required, 1..128 bytes (borrowed from body). */
int dec_snap_create(json_t *body, const char **name, struct dec_err *err);

/* The execution request → boxlite_exec_options: argv ("command" then "args"; the strings
 * borrowed from body, the vector ours), env ("K=V", ours), working_dir, tty, timeout_seconds
 * (0.1..86400). dec_exec_free releases what is ours. */
struct dec_exec {
    boxlite_exec_options o;
    char **argv;
    char **env;
};
int dec_exec_create(struct dec_exec *out, json_t *body, struct dec_err *err);
void dec_exec_free(struct dec_exec *d);
/* The signals the spec lets a client send (SIGKILL goes through DELETE). */
int signal_allowed(int sig);
/* SignalRequest: an allowed signal. */
int dec_exec_signal(json_t *body, int *sig, struct dec_err *err);
/* ResizeRequest: cols and rows, each 1..65535. */
int dec_exec_resize(json_t *body, unsigned *cols, unsigned *rows, struct dec_err *err);

/* One WebSocket attach control message (a text frame): resize (cols, rows 1..65535), signal
 * (an allowed one) or stdin_eof. The failure's message is what the client is told. */
enum dec_control_type { DEC_CONTROL_RESIZE = 1, DEC_CONTROL_SIGNAL, DEC_CONTROL_STDIN_EOF };
struct dec_control {
    enum dec_control_type type;
    unsigned cols, rows;
    int sig;
};
int dec_control(struct dec_control *out, const char *text, size_t len, struct dec_err *err);

#endif
