/* decode.c — the Box API's request decoders (decode.h): JSON bodies, query values and the
 * attach control messages of `boxlite serve` into option structs, or the spec's error. Pure:
 * no libmicrohttpd, no request, no server state. */
#include "decode.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct dec_err *err, unsigned status, const char *type, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Fill err; always -1. */
static int fail(struct dec_err *err, unsigned status, const char *type, const char *code,
                const char *fmt, ...)
{
    va_list ap;

    err->status = status;
    err->type = type;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(err, ...) fail(err, 400, "InvalidArgumentError", "invalid_argument", __VA_ARGS__)
#define NOMEM(err)    fail(err, 503, "ResourceExhaustedError", "resource_exhausted", "memory")

int dec_body(json_t **out, const char *buf, size_t len, struct dec_err *err)
{
    json_error_t jerr;
    json_t *j;

    *out = NULL;
    if (len == 0)
        return 0;
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return BAD(err, "request body is not JSON: %s (at byte %d)", jerr.text, jerr.position);
    if (!json_is_object(j)) {
        json_decref(j);
        return BAD(err, "request body must be a JSON object");
    }
    *out = j;
    return 0;
}

/* ---- members ------------------------------------------------------------------------------ */

int dec_str(json_t *obj, const char *key, const char **out, struct dec_err *err)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return BAD(err, "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int dec_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi, json_int_t *out,
            struct dec_err *err)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return BAD(err, "%s must be an integer from %lld to %lld", key, (long long)lo,
                   (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

int dec_bool(json_t *obj, const char *key, int *out, struct dec_err *err)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return BAD(err, "%s must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

/* ---- query values ------------------------------------------------------------------------- */

int dec_query_bool(const char *name, const char *v, int dflt, int *out, struct dec_err *err)
{
    if (v == NULL)
        *out = dflt;
    else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return BAD(err, "query parameter %s must be true or false", name);
    return 0;
}

int dec_page(const char *ps, const char *pt, size_t total, size_t *start, size_t *end,
             char next[24], struct dec_err *err)
{
    unsigned long size = 100, off = 0;
    char *e = NULL;

    next[0] = '\0';
    if (ps != NULL) {
        errno = 0;
        size = strtoul(ps, &e, 10);
        if (errno != 0 || *e != '\0' || ps[0] == '\0' || ps[0] == '-' || size < 1 || size > 1000)
            return BAD(err, "pageSize must be an integer from 1 to 1000");
    }
    if (pt != NULL && pt[0] != '\0') {
        errno = 0;
        off = pt[0] == 'o' ? strtoul(pt + 1, &e, 10) : 0;
        if (pt[0] != 'o' || pt[1] == '\0' || pt[1] == '-' || errno != 0 || *e != '\0')
            return BAD(err, "pageToken is not one this server issued");
    }
    *start = off < total ? off : total;
    *end = total - *start > size ? *start + size : total;
    if (*end < total)
        snprintf(next, 24, "o%zu", *end);
    return 0;
}

int dec_port(const char *v, unsigned *out, struct dec_err *err)
{
    char *end = NULL;
    long port;

    if (v == NULL)
        return BAD(err, "port must be an integer from 1 to 65535");
    errno = 0;
    port = strtol(v, &end, 10);
    if (end == v || *end != '\0' || port < 1 || port > 65535)
        return BAD(err, "port must be an integer from 1 to 65535");
    *out = (unsigned)port;
    return 0;
}

/* ---- vectors ------------------------------------------------------------------------------ */

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* A NULL-terminated vector (ours) from a JSON array of strings, or of "K=V" from an object of
 * strings (object set). Absent or null: *out NULL. On failure *out holds what was made. */
static int strv_from_value(json_t *v, const char *key, int object, char ***out, struct dec_err *err)
{
    json_t *item;
    const char *k;
    size_t i = 0, n;
    char **vec;

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (object ? !json_is_object(v) : !json_is_array(v))
        return BAD(err, "%s must be %s", key,
                   object ? "an object of strings" : "an array of strings");
    n = object ? json_object_size(v) : json_array_size(v);
    vec = calloc(n + 1, sizeof(*vec));
    if (vec == NULL)
        return NOMEM(err);
    *out = vec;
    if (object) {
        json_object_foreach(v, k, item)
        {
            if (!json_is_string(item) || k[0] == '\0' || strchr(k, '=') != NULL)
                return BAD(err, "%s: each name must be non-empty without '=', each value a string",
                           key);
            if (asprintf(&vec[i], "%s=%s", k, json_string_value(item)) < 0) {
                vec[i] = NULL;
                return NOMEM(err);
            }
            i++;
        }
        return 0;
    }
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return BAD(err, "%s must be an array of strings", key);
        vec[i] = strdup(json_string_value(item));
        if (vec[i] == NULL)
            return NOMEM(err);
    }
    return 0;
}

/* ---- CreateBoxRequest --------------------------------------------------------------------- */

/* CreateBoxRequest admits no other fields (additionalProperties: false). */
static int refuse_unknown(json_t *body, struct dec_err *err)
{
    static const char *const known[] = {"advanced",    "security",   "name",        "image",
                                        "rootfs_path", "cpus",       "memory_mib",  "disk_size_gb",
                                        "working_dir", "env",        "entrypoint",  "cmd",
                                        "user",        "volumes",    "network",     "secrets",
                                        "detach",      "auto_pause", "auto_delete", "auto_resume"};
    const char *k;
    json_t *v;

    json_object_foreach(body, k, v)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], k) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return BAD(err, "unknown field in the box request: %.64s", k);
    }
    return 0;
}

/* Fields the spec has that this server cannot honour: refused, never silently dropped. */
static int refuse_unsupported(json_t *body, struct dec_err *err)
{
    static const char *const fields[] = {"rootfs_path", "advanced"};
    json_t *sec = json_object_get(body, "security");

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (json_object_get(body, fields[i]) != NULL)
            return fail(err, 400, "UnsupportedError", "unsupported",
                        "%s is not supported by this server (see GET /v1/config)", fields[i]);
    if (sec != NULL && (!json_is_string(sec) || strcmp(json_string_value(sec), "standard") != 0))
        return fail(err, 400, "UnsupportedError", "unsupported",
                    "security presets other than standard are not supported");
    return 0;
}

/* 1 when real (a resolved path) is root or lies beneath it (root resolved too). */
static int path_inside(const char *real, const char *root)
{
    size_t rl = strlen(root);

    if (strcmp(root, "/") == 0)
        return real[0] == '/';
    return strncmp(real, root, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
}

/* Volumes: refused unless the operator set a volume root; then each host path must resolve
 * inside it. The resolved paths are d->vpaths. */
static int parse_volumes(struct dec_box *d, json_t *body, const char *root, struct dec_err *err)
{
    json_t *v = json_object_get(body, "volumes"), *item;
    char rroot[PATH_MAX];
    size_t i, n = json_array_size(v);

    if (v == NULL || json_is_null(v) || (json_is_array(v) && n == 0))
        return 0;
    if (!json_is_array(v))
        return BAD(err, "volumes must be an array");
    if (root == NULL || realpath(root, rroot) == NULL)
        return fail(err, 400, "UnsupportedError", "unsupported",
                    "volumes are not allowed on this server (no --volume-root)");
    d->volumes = calloc(n, sizeof(*d->volumes));
    d->vpaths = calloc(n + 1, sizeof(*d->vpaths));
    if (d->volumes == NULL || d->vpaths == NULL)
        return NOMEM(err);
    json_array_foreach(v, i, item)
    {
        const char *hp = json_string_value(json_object_get(item, "host_path"));
        const char *gp = json_string_value(json_object_get(item, "guest_path"));
        char real[PATH_MAX];
        if (hp == NULL || gp == NULL || realpath(hp, real) == NULL || !path_inside(real, rroot))
            return BAD(err,
                       "volume %zu: host_path must be an existing directory inside the "
                       "server's volume root",
                       i);
        d->vpaths[i] = strdup(real);
        if (d->vpaths[i] == NULL)
            return NOMEM(err);
        d->volumes[i].host_path = d->vpaths[i];
        d->volumes[i].guest_path = gp;
        d->volumes[i].read_only = json_is_true(json_object_get(item, "read_only"));
    }
    d->o.volumes = d->volumes;
    d->o.n_volumes = n;
    return 0;
}

/* The spec's SecretSpec list → boxlite_secret (names, values and hosts are checked by the
 * library: a bad one is its 400). Strings are borrowed from body; d->hosts holds each
 * secret's host list. */
static int parse_secrets(struct dec_box *d, json_t *body, struct dec_err *err)
{
    json_t *v = json_object_get(body, "secrets"), *item;
    size_t i, n = json_array_size(v);

    if (v == NULL || json_is_null(v) || (json_is_array(v) && n == 0))
        return 0;
    if (!json_is_array(v) || n > 64)
        return BAD(err, "secrets must be an array of at most 64 SecretSpec objects");
    d->secrets = calloc(n, sizeof(*d->secrets));
    d->hosts = calloc(n, sizeof(*d->hosts));
    if (d->secrets == NULL || d->hosts == NULL)
        return NOMEM(err);
    d->o.secrets = d->secrets;
    d->o.n_secrets = n;
    json_array_foreach(v, i, item)
    {
        boxlite_secret *s = &d->secrets[i];
        json_t *ph = json_object_get(item, "placeholder");
        s->name = json_string_value(json_object_get(item, "name"));
        s->value = json_string_value(json_object_get(item, "value"));
        s->placeholder = json_string_value(ph);
        if (!json_is_object(item) || s->name == NULL || s->value == NULL ||
            (ph != NULL && !json_is_null(ph) && s->placeholder == NULL))
            return BAD(err,
                       "secrets[%zu]: name and value are strings (placeholder too, when given)", i);
        if (strv_from_value(json_object_get(item, "hosts"), "secrets[].hosts", 0, &d->hosts[i],
                            err) != 0)
            return -1;
        s->hosts = (const char *const *)d->hosts[i];
    }
    return 0;
}

static int parse_network(struct dec_box *d, json_t *body, struct dec_err *err)
{
    json_t *net = json_object_get(body, "network");
    const char *mode;

    if (net == NULL)
        return 0;
    if (strv_from_value(json_object_get(net, "allow_net"), "network.allow_net", 0, &d->allow,
                        err) != 0)
        return -1;
    mode = json_string_value(json_object_get(net, "mode"));
    if (mode == NULL || (strcmp(mode, "enabled") != 0 && strcmp(mode, "disabled") != 0))
        return BAD(err, "network.mode must be enabled or disabled");
    d->o.network_disabled = strcmp(mode, "disabled") == 0;
    d->o.allow_net = d->allow != NULL && d->allow[0] != NULL ? (const char *const *)d->allow : NULL;
    return 0;
}

int dec_box_create(struct dec_box *out, json_t *body, const char *volume_root, struct dec_err *err)
{
    boxlite_box_options init = BOXLITE_BOX_OPTIONS_INIT;
    json_int_t cpus = 0, mem = 0, disk = 0, auto_delete = 0; /* the spec's default: kept */
    struct dec_box *d = out;

    memset(d, 0, sizeof(*d));
    d->o = init;
    if (body == NULL)
        return BAD(err, "a JSON body is required");
    if (refuse_unknown(body, err) != 0 || refuse_unsupported(body, err) != 0 ||
        dec_str(body, "name", &d->o.name, err) != 0 ||
        dec_str(body, "image", &d->o.image, err) != 0 ||
        dec_int(body, "cpus", 1, 32, &cpus, err) != 0 ||
        dec_int(body, "memory_mib", 128, 1 << 20, &mem, err) != 0 ||
        dec_int(body, "disk_size_gb", 1, 1 << 16, &disk, err) != 0 ||
        dec_int(body, "auto_delete", 0, DEC_AUTO_DELETE_MAX, &auto_delete, err) != 0 ||
        dec_str(body, "working_dir", &d->o.working_dir, err) != 0 ||
        dec_str(body, "user", &d->o.user, err) != 0 ||
        dec_bool(body, "detach", &d->o.detach, err) != 0 ||
        strv_from_value(json_object_get(body, "env"), "env", 1, &d->env, err) != 0 ||
        strv_from_value(json_object_get(body, "entrypoint"), "entrypoint", 0, &d->entrypoint,
                        err) != 0 ||
        strv_from_value(json_object_get(body, "cmd"), "cmd", 0, &d->cmd, err) != 0 ||
        parse_volumes(d, body, volume_root, err) != 0 || parse_secrets(d, body, err) != 0 ||
        parse_network(d, body, err) != 0) {
        dec_box_free(d);
        return -1;
    }
    d->o.cpus = (unsigned)cpus;
    d->o.memory_mib = (unsigned)mem;
    d->o.disk_size_gb = (unsigned)disk;
    d->o.auto_delete = (long)auto_delete; /* N > 0: deleted N s after a stop (docs/serve.md) */
    d->o.env = (const char *const *)d->env;
    d->o.entrypoint = (const char *const *)d->entrypoint;
    d->o.cmd = (const char *const *)d->cmd;
    return 0;
}

void dec_box_free(struct dec_box *d)
{
    boxlite_box_options init = BOXLITE_BOX_OPTIONS_INIT;

    if (d == NULL)
        return;
    strv_free(d->env);
    strv_free(d->entrypoint);
    strv_free(d->cmd);
    strv_free(d->allow);
    strv_free(d->vpaths);
    for (size_t i = 0; d->hosts != NULL && i < d->o.n_secrets; i++)
        strv_free(d->hosts[i]);
    free(d->hosts);
    free(d->secrets);
    free(d->volumes);
    memset(d, 0, sizeof(*d));
    d->o = init;
}

/* ---- other box and snapshot bodies -------------------------------------------------------- */

int dec_box_stop(json_t *body, double *secs, struct dec_err *err)
{
    json_t *t = body != NULL ? json_object_get(body, "timeout_seconds") : NULL;

    *secs = 30;
    if (t == NULL)
        return 0;
    if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 3600)
        return BAD(err, "timeout_seconds must be a number from 0 to 3600");
    *secs = json_number_value(t);
    return 0;
}

int dec_snap_create(json_t *body, const char **name, struct dec_err *err)
{
    *name = NULL;
    if (dec_str(body, "name", name, err) != 0)
        return -1;
    if (*name == NULL || (*name)[0] == '\0' || strlen(*name) > 128) {
        *name = NULL;
        return BAD(err, "name is required (1 to 128 characters)");
    }
    return 0;
}

/* ---- executions --------------------------------------------------------------------------- */

static int build_argv(struct dec_exec *d, json_t *body, struct dec_err *err)
{
    const char *cmd = NULL;
    json_t *args = json_object_get(body, "args"), *a;
    size_t i, n = json_array_size(args);

    if (dec_str(body, "command", &cmd, err) != 0)
        return -1;
    if (cmd == NULL || cmd[0] == '\0')
        return BAD(err, "command is required");
    if (args != NULL && !json_is_null(args) && !json_is_array(args))
        return BAD(err, "args must be an array of strings");
    d->argv = calloc(n + 2, sizeof(*d->argv));
    if (d->argv == NULL)
        return NOMEM(err);
    d->argv[0] = (char *)cmd;
    json_array_foreach(args, i, a)
    {
        if (!json_is_string(a))
            return BAD(err, "args must be an array of strings");
        d->argv[i + 1] = (char *)json_string_value(a);
    }
    return 0;
}

static int build_env(struct dec_exec *d, json_t *body, struct dec_err *err)
{
    json_t *env = json_object_get(body, "env"), *val;
    const char *k;
    size_t i = 0;

    if (env == NULL || json_is_null(env))
        return 0;
    if (!json_is_object(env))
        return BAD(err, "env must be an object of strings");
    d->env = calloc(json_object_size(env) + 1, sizeof(*d->env));
    if (d->env == NULL)
        return NOMEM(err);
    json_object_foreach(env, k, val)
    {
        if (!json_is_string(val) || k[0] == '\0' || strchr(k, '=') != NULL)
            return BAD(err, "env: names must be non-empty without '=', values strings");
        if (asprintf(&d->env[i], "%s=%s", k, json_string_value(val)) < 0) {
            d->env[i] = NULL;
            return NOMEM(err);
        }
        i++;
    }
    return 0;
}

int dec_exec_create(struct dec_exec *out, json_t *body, struct dec_err *err)
{
    boxlite_exec_options init = BOXLITE_EXEC_OPTIONS_INIT;
    struct dec_exec *d = out;
    json_t *t = body != NULL ? json_object_get(body, "timeout_seconds") : NULL;

    memset(d, 0, sizeof(*d));
    d->o = init;
    if (body == NULL)
        return BAD(err, "a JSON body is required");
    if (build_argv(d, body, err) != 0 || build_env(d, body, err) != 0 ||
        dec_str(body, "working_dir", &d->o.cwd, err) != 0 ||
        dec_bool(body, "tty", &d->o.tty, err) != 0)
        goto fail;
    if (t != NULL &&
        (!json_is_number(t) || json_number_value(t) < 0.1 || json_number_value(t) > 86400)) {
        BAD(err, "timeout_seconds must be a number from 0.1 to 86400");
        goto fail;
    }
    if (t != NULL)
        d->o.timeout_ms = (unsigned)(json_number_value(t) * 1000);
    d->o.argv = (const char *const *)d->argv;
    d->o.env = (const char *const *)d->env;
    return 0;
fail:
    dec_exec_free(d);
    return -1;
}

void dec_exec_free(struct dec_exec *d)
{
    boxlite_exec_options init = BOXLITE_EXEC_OPTIONS_INIT;

    if (d == NULL)
        return;
    free(d->argv); /* borrowed strings */
    strv_free(d->env);
    memset(d, 0, sizeof(*d));
    d->o = init;
}

int signal_allowed(int sig)
{
    return sig == SIGHUP || sig == SIGINT || sig == SIGQUIT || sig == SIGABRT || sig == SIGUSR1 ||
           sig == SIGUSR2 || sig == SIGTERM || sig == SIGWINCH;
}

int dec_exec_signal(json_t *body, int *sig, struct dec_err *err)
{
    json_t *v = body != NULL ? json_object_get(body, "signal") : NULL;
    json_int_t s = 0;

    if (v == NULL || json_is_null(v))
        return BAD(err, "signal is required");
    if (dec_int(body, "signal", 1, 64, &s, err) != 0)
        return -1;
    if (!signal_allowed((int)s))
        return BAD(err,
                   "signal %d is not allowed (HUP INT QUIT ABRT USR1 USR2 TERM WINCH; use DELETE "
                   "to kill)",
                   (int)s);
    *sig = (int)s;
    return 0;
}

int dec_exec_resize(json_t *body, unsigned *cols, unsigned *rows, struct dec_err *err)
{
    json_t *c = body != NULL ? json_object_get(body, "cols") : NULL;
    json_t *r = body != NULL ? json_object_get(body, "rows") : NULL;
    json_int_t nc = 0, nr = 0;

    if (c == NULL || r == NULL || json_is_null(c) || json_is_null(r))
        return BAD(err, "cols and rows are required");
    if (dec_int(body, "cols", 1, 65535, &nc, err) != 0 ||
        dec_int(body, "rows", 1, 65535, &nr, err) != 0)
        return -1;
    *cols = (unsigned)nc;
    *rows = (unsigned)nr;
    return 0;
}

/* ---- attach control messages -------------------------------------------------------------- */

/* 1 when v is an integer from lo to hi. */
static int int_in(json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

int dec_control(struct dec_control *out, const char *text, size_t len, struct dec_err *err)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    json_t *cols = json_object_get(o, "cols"), *rows = json_object_get(o, "rows");
    json_t *sig = json_object_get(o, "sig");
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (type == NULL) {
        rc = BAD(err, "control messages are JSON objects with a type");
    } else if (strcmp(type, "resize") == 0) {
        if (!int_in(cols, 1, 65535) || !int_in(rows, 1, 65535))
            rc = BAD(err, "resize wants integer cols and rows from 1 to 65535");
        out->type = DEC_CONTROL_RESIZE;
        out->cols = rc == 0 ? (unsigned)json_integer_value(cols) : 0;
        out->rows = rc == 0 ? (unsigned)json_integer_value(rows) : 0;
    } else if (strcmp(type, "signal") == 0) {
        if (!int_in(sig, 1, 64) || !signal_allowed((int)json_integer_value(sig)))
            rc = BAD(err, "signal not allowed (HUP INT QUIT ABRT USR1 USR2 TERM WINCH)");
        out->type = DEC_CONTROL_SIGNAL;
        out->sig = rc == 0 ? (int)json_integer_value(sig) : 0;
    } else if (strcmp(type, "stdin_eof") == 0) {
        out->type = DEC_CONTROL_STDIN_EOF;
    } else {
        rc = BAD(err, "unknown control message type");
    }
    json_decref(o);
    return rc;
}
