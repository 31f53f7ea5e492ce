/* fuzz_serve_decode.c — libFuzzer target for `boxlite serve`'s request decoders
 * (src/serve/decode.c): byte 0 picks the decoder, the rest is what a client sends — a request
 * body (through dec_body, jansson's parse included), an attach control frame, or query values.
 * Every success keeps the documented ranges (decode.h) and its strings end within bounds;
 * every failure is a 4xx (or 503 resource_exhausted) with a type, a code and a message. */
#include "decode.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The volume root the decoders are handed in case 1: a directory every host has. */
#define VOLUME_ROOT "/usr/share"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_serve_decode: %s\n", what);
    abort();
}

static void check(int ok, const char *what)
{
    if (!ok)
        fail(what);
}

static void check_err(const struct dec_err *e)
{
    check((e->status >= 400 && e->status < 500) ||
              (e->status == 503 && strcmp(e->code, "resource_exhausted") == 0),
          "a failure is not a 4xx");
    check(e->type != NULL && e->type[0] != '\0', "a failure without a type");
    check(e->code != NULL && e->code[0] != '\0', "a failure without a code");
    check(memchr(e->msg, '\0', sizeof(e->msg)) != NULL && e->msg[0] != '\0',
          "a failure's message is empty or unterminated");
}

/* s is NULL or a string (ASan checks its bytes up to the NUL). */
static void check_str(const char *s)
{
    if (s != NULL)
        (void)strlen(s);
}

static void check_strv(const char *const *v, int kv)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        const char *eq = strchr(v[i], '=');
        check(!kv || (eq != NULL && eq != v[i]), "an env entry is not NAME=VALUE");
    }
}

static void check_box(const boxlite_box_options *o, const char *root)
{
    static char rroot[PATH_MAX];

    check(o->cpus <= 32 && o->memory_mib <= (1u << 20) && o->disk_size_gb <= (1u << 16),
          "cpus, memory or disk over its range");
    check(o->memory_mib == 0 || o->memory_mib >= 128, "memory_mib under 128");
    check(o->auto_delete >= 0 && o->auto_delete <= DEC_AUTO_DELETE_MAX, "auto_delete out of range");
    check((o->detach == 0 || o->detach == 1) &&
              (o->network_disabled == 0 || o->network_disabled == 1),
          "a flag that is not 0 or 1");
    check_str(o->name);
    check_str(o->image);
    check_str(o->working_dir);
    check_str(o->user);
    check_strv(o->env, 1);
    check_strv(o->entrypoint, 0);
    check_strv(o->cmd, 0);
    check_strv(o->allow_net, 0);
    check(o->allow_net == NULL || o->allow_net[0] != NULL, "an empty allow_net that is not NULL");
    check(o->n_volumes == 0 || (root != NULL && realpath(root, rroot) != NULL),
          "a volume without a volume root");
    for (size_t i = 0; i < o->n_volumes; i++) {
        size_t rl = strlen(rroot);
        check(o->volumes[i].guest_path != NULL, "a volume without guest_path");
        check_str(o->volumes[i].guest_path);
        check(strncmp(o->volumes[i].host_path, rroot, rl) == 0 &&
                  (o->volumes[i].host_path[rl] == '/' || o->volumes[i].host_path[rl] == '\0'),
              "a volume outside the volume root");
    }
    check(o->n_secrets <= 64, "more than 64 secrets");
    for (size_t i = 0; i < o->n_secrets; i++) {
        check(o->secrets[i].name != NULL && o->secrets[i].value != NULL, "a secret without name");
        check_str(o->secrets[i].name);
        check_str(o->secrets[i].value);
        check_str(o->secrets[i].placeholder);
        check_strv(o->secrets[i].hosts, 0);
    }
}

/* When want, the decoded value v is the document's integer member key, unchanged. */
static void same(const char *buf, size_t n, const char *key, int want, long long v)
{
    json_t *o;

    if (!want)
        return;
    o = json_loadb(buf, n, 0, NULL);
    check(json_is_integer(json_object_get(o, key)) &&
              json_integer_value(json_object_get(o, key)) == v,
          "a decoded integer differs from the request's");
    json_decref(o);
}

static void box_create(json_t *body, const char *root)
{
    struct dec_box d;
    struct dec_err e;

    if (dec_box_create(&d, body, root, &e) != 0) {
        check_err(&e);
        check(d.env == NULL && d.secrets == NULL && d.volumes == NULL, "a failure kept memory");
        return;
    }
    check_box(&d.o, root);
    dec_box_free(&d);
}

static void exec_create(json_t *body)
{
    struct dec_exec d;
    struct dec_err e;

    if (dec_exec_create(&d, body, &e) != 0) {
        check_err(&e);
        check(d.argv == NULL && d.env == NULL, "a failure kept memory");
        return;
    }
    check(d.o.argv != NULL && d.o.argv[0] != NULL && d.o.argv[0][0] != '\0', "no command");
    check_strv(d.o.argv, 0);
    check_strv(d.o.env, 1);
    check_str(d.o.cwd);
    check(d.o.tty == 0 || d.o.tty == 1, "tty not 0 or 1");
    check(d.o.timeout_ms == 0 || (d.o.timeout_ms >= 99 && d.o.timeout_ms <= 86400000u),
          "timeout_ms out of range");
    dec_exec_free(&d);
}

/* Bodies: parsed as the server parses them, then handed to decoder k. */
static void body(unsigned k, const char *buf, size_t n)
{
    struct dec_err e;
    json_t *j = NULL;
    double secs;
    const char *name = NULL;
    unsigned cols = 0, rows = 0;
    int sig = 0, rc;

    if (dec_body(&j, buf, n, &e) != 0) {
        check_err(&e);
        check(j == NULL, "a failed parse left a document");
        return;
    }
    check(j == NULL ? n == 0 : json_is_object(j), "a body that is not an object");
    switch (k) {
    case 0:
        box_create(j, NULL);
        break;
    case 1:
        box_create(j, VOLUME_ROOT);
        break;
    case 2:
        exec_create(j);
        break;
    case 3:
        rc = dec_exec_signal(j, &sig, &e);
        if (rc != 0)
            check_err(&e);
        else
            check(signal_allowed(sig), "a signal not allowed");
        same(buf, n, "signal", rc == 0, sig);
        break;
    case 4:
        rc = dec_exec_resize(j, &cols, &rows, &e);
        if (rc != 0)
            check_err(&e);
        else
            check(cols >= 1 && cols <= 65535 && rows >= 1 && rows <= 65535, "resize range");
        same(buf, n, "cols", rc == 0, cols);
        same(buf, n, "rows", rc == 0, rows);
        break;
    case 5:
        if (dec_snap_create(j, &name, &e) != 0)
            check_err(&e);
        else
            check(name != NULL && name[0] != '\0' && strlen(name) <= 128, "snapshot name");
        break;
    case 6:
        if (dec_box_stop(j, &secs, &e) != 0)
            check_err(&e);
        else
            check(secs >= 0 && secs <= 3600, "stop timeout range");
        break;
    default: /* clone: an optional name */
        if (dec_str(j, "name", &name, &e) != 0)
            check_err(&e);
        else
            check_str(name);
        break;
    }
    json_decref(j);
}

static void control(const char *buf, size_t n)
{
    struct dec_control c;
    struct dec_err e;

    if (dec_control(&c, buf, n, &e) != 0) {
        check_err(&e);
        return;
    }
    check(c.type == DEC_CONTROL_RESIZE || c.type == DEC_CONTROL_SIGNAL ||
              c.type == DEC_CONTROL_STDIN_EOF,
          "control type");
    check(c.type != DEC_CONTROL_RESIZE ||
              (c.cols >= 1 && c.cols <= 65535 && c.rows >= 1 && c.rows <= 65535),
          "control resize range");
    check(c.type != DEC_CONTROL_SIGNAL || signal_allowed(c.sig), "control signal not allowed");
    same(buf, n, "cols", c.type == DEC_CONTROL_RESIZE, c.cols);
    same(buf, n, "rows", c.type == DEC_CONTROL_RESIZE, c.rows);
    same(buf, n, "sig", c.type == DEC_CONTROL_SIGNAL, c.sig);
}

/* Query values: s holds "pageSize\npageToken" (a part left out is absent), or one value. */
static void query(unsigned k, unsigned total, char *s, size_t n)
{
    struct dec_err e;
    char *nl = memchr(s, '\n', n), next[24];
    const char *ps = n > 0 ? s : NULL, *pt = NULL;
    size_t start, end;
    unsigned port;
    int v;

    if (k == 9) {
        if (nl != NULL) {
            *nl = '\0';
            pt = nl + 1;
            ps = nl == s ? NULL : s;
        }
        if (dec_page(ps, pt, total, &start, &end, next, &e) != 0) {
            check_err(&e);
            return;
        }
        check(start <= end && end <= total && end - start <= 1000, "page bounds");
        check(memchr(next, '\0', sizeof(next)) != NULL, "next token unterminated");
        check(end < total ? next[0] == 'o' && strtoul(next + 1, NULL, 10) == end : next[0] == '\0',
              "next token");
    } else if (k == 10) {
        if (dec_query_bool("force", ps, 0, &v, &e) != 0)
            check_err(&e);
        else
            check(v == 0 || v == 1, "a boolean that is not 0 or 1");
    } else if (dec_port(ps, &port, &e) != 0) {
        check_err(&e);
    } else {
        check(port >= 1 && port <= 65535, "port range");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned k, total;
    char *s;

    if (size < 2)
        return 0;
    k = data[0] % 12;
    total = data[1];
    /* a copy the size of the input: ASan sees any read past it; query values as C strings */
    s = malloc(size - 1);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    if (k <= 7) {
        body(k, s, size - 1);
    } else if (k == 8) {
        control(s, size - 1);
    } else {
        /* MHD hands a C string: cut at the first NUL (the last byte is one) */
        memmove(s, s + 1, size - 2);
        s[size - 2] = '\0';
        query(k, total, s, strlen(s));
    }
    free(s);
    return 0;
}
