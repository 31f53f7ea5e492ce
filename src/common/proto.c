/* proto.c — the agent protocol codec: little-endian frame headers, the frame splitter, the
 * growable write buffer, the bounds-checked reader and the payload encoders/decoders. */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- frames ---- */

void bl_frame_hdr_encode(uint8_t *out, uint8_t type, uint32_t stream, uint32_t len)
{
    put_le32(out, len);
    out[4] = BL_PROTO_VERSION;
    out[5] = type;
    out[6] = 0; /* flags, le16 */
    out[7] = 0;
    put_le32(out + 8, stream);
}

long bl_frame_split(const uint8_t *buf, size_t have, struct bl_frame *out)
{
    uint32_t len;

    if (buf == NULL || have < BL_FRAME_HDR)
        return 0;
    len = get_le32(buf);
    if (len > BL_FRAME_MAX)
        return -BL_PE_TOOBIG;
    if (have - BL_FRAME_HDR < len)
        return 0;
    out->len = len;
    out->version = buf[4];
    out->type = buf[5];
    out->flags = get_le16(buf + 6);
    out->stream = get_le32(buf + 8);
    out->payload = buf + BL_FRAME_HDR;
    return (long)(BL_FRAME_HDR + len);
}

static int type_known(unsigned type)
{
    return (type >= BL_F_HELLO && type <= BL_F_MONITOR_REPLY) ||
           (type >= BL_F_EXEC && type <= BL_F_TYPE_MAX);
}

int bl_frame_check(const struct bl_frame *f)
{
    if (f->version != BL_PROTO_VERSION)
        return -BL_PE_VERSION;
    if (!type_known(f->type))
        return -BL_PE_TYPE;
    return 0;
}

/* ---- write buffer ---- */

/* Make room for n more bytes; 0 on success, -1 (and w->failed set) otherwise. */
static int wbuf_reserve(struct bl_wbuf *w, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (w->failed)
        return -1;
    if (n > BL_FRAME_MAX || w->len > BL_FRAME_MAX - n) {
        w->failed = BL_PE_TOOBIG;
        return -1;
    }
    if (w->len + n <= w->cap)
        return 0;
    cap = w->cap ? w->cap : 64;
    while (cap < w->len + n)
        cap *= 2;
    p = realloc(w->data, cap);
    if (p == NULL) {
        w->failed = BL_PE_NOMEM;
        return -1;
    }
    w->data = p;
    w->cap = cap;
    return 0;
}

void bl_wbuf_put_u32(struct bl_wbuf *w, uint32_t v)
{
    if (wbuf_reserve(w, 4) < 0)
        return;
    put_le32(w->data + w->len, v);
    w->len += 4;
}

void bl_wbuf_put_bytes(struct bl_wbuf *w, const void *p, size_t n)
{
    if (n > BL_FRAME_MAX) {
        if (!w->failed)
            w->failed = BL_PE_TOOBIG;
        return;
    }
    if (wbuf_reserve(w, 4 + n) < 0)
        return;
    put_le32(w->data + w->len, (uint32_t)n);
    if (n > 0)
        memcpy(w->data + w->len + 4, p, n);
    w->len += 4 + n;
}

void bl_wbuf_put_str(struct bl_wbuf *w, const char *s)
{
    if (s == NULL)
        s = "";
    bl_wbuf_put_bytes(w, s, strlen(s));
}

void bl_wbuf_reset(struct bl_wbuf *w)
{
    w->len = 0;
    w->failed = 0;
}

void bl_wbuf_free(struct bl_wbuf *w)
{
    if (w == NULL)
        return;
    free(w->data);
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->failed = 0;
}

/* ---- read buffer ---- */

static size_t rbuf_left(const struct bl_rbuf *r)
{
    return r->off < r->len ? r->len - r->off : 0;
}

int bl_rbuf_u32(struct bl_rbuf *r, uint32_t *out)
{
    if (rbuf_left(r) < 4)
        return -BL_PE_TRUNCATED;
    *out = get_le32(r->p + r->off);
    r->off += 4;
    return 0;
}

int bl_rbuf_str(struct bl_rbuf *r, char **out)
{
    uint32_t n = 0;
    char *s = NULL;
    int rc;

    rc = bl_rbuf_u32(r, &n);
    if (rc < 0)
        goto out;
    rc = -BL_PE_INVALID;
    if (n > BL_MAX_STRING)
        goto out;
    rc = -BL_PE_TRUNCATED;
    if (rbuf_left(r) < n)
        goto out;
    rc = -BL_PE_INVALID;
    if (n > 0 && memchr(r->p + r->off, 0, n) != NULL)
        goto out;
    rc = -BL_PE_NOMEM;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        goto out;
    if (n > 0)
        memcpy(s, r->p + r->off, n);
    s[n] = '\0';
    r->off += n;
    *out = s;
    rc = 0;
out:
    return rc;
}

int bl_rbuf_done(const struct bl_rbuf *r)
{
    return rbuf_left(r) ? -BL_PE_INVALID : 0;
}

static struct bl_rbuf rbuf_make(const uint8_t *p, size_t len)
{
    struct bl_rbuf r = {p, p ? len : 0, 0};
    return r;
}

/* ---- EXEC ---- */

static int str_ok(const char *s)
{
    return s == NULL || strlen(s) <= BL_MAX_STRING;
}

/* 0 when every string of v[0..n) can be sent (the peer would accept it). */
static int strv_ok(char *const *v, uint32_t n)
{
    uint32_t i;

    if (n > 0 && v == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        if (!str_ok(v[i]))
            return 0;
    }
    return 1;
}

/* At most BL_MAX_RLIMITS, each a known resource, once, soft <= hard. */
static int rlimits_ok(const struct bl_exec_req *req)
{
    uint32_t seen = 0;

    if (req->nrlimits > BL_MAX_RLIMITS)
        return 0;
    for (uint32_t i = 0; i < req->nrlimits; i++) {
        const struct bl_exec_rlimit *l = &req->rlimits[i];
        if (l->resource >= BL_MAX_RLIMITS || (seen & (1u << l->resource)) || l->soft > l->hard)
            return 0;
        seen |= 1u << l->resource;
    }
    return 1;
}

static int exec_req_valid(const struct bl_exec_req *req)
{
    return req->argc >= 1 && req->argc <= BL_MAX_ARGS && req->envc <= BL_MAX_ENV &&
           strv_ok(req->argv, req->argc) && strv_ok(req->env, req->envc) && str_ok(req->cwd) &&
           str_ok(req->user) && rlimits_ok(req);
}

static void put_u64(struct bl_wbuf *w, uint64_t v)
{
    bl_wbuf_put_u32(w, (uint32_t)v);
    bl_wbuf_put_u32(w, (uint32_t)(v >> 32));
}

static void put_strv(struct bl_wbuf *w, char *const *v, uint32_t n)
{
    uint32_t i;

    bl_wbuf_put_u32(w, n);
    for (i = 0; i < n; i++)
        bl_wbuf_put_str(w, v[i]);
}

int bl_exec_req_encode(struct bl_wbuf *w, const struct bl_exec_req *req)
{
    if (!exec_req_valid(req))
        return -BL_PE_INVALID;
    bl_wbuf_put_u32(w, req->flags);
    put_strv(w, req->argv, req->argc);
    put_strv(w, req->env, req->envc);
    bl_wbuf_put_str(w, req->cwd);
    bl_wbuf_put_str(w, req->user);
    bl_wbuf_put_u32(w, req->timeout_ms);
    bl_wbuf_put_u32(w, req->rows);
    bl_wbuf_put_u32(w, req->cols);
    if (req->nrlimits > 0)
        bl_wbuf_put_u32(w, req->nrlimits);
    for (uint32_t i = 0; i < req->nrlimits; i++) {
        bl_wbuf_put_u32(w, req->rlimits[i].resource);
        put_u64(w, req->rlimits[i].soft);
        put_u64(w, req->rlimits[i].hard);
    }
    return w->failed ? -w->failed : 0;
}

static void strv_free(char **v)
{
    size_t i;

    for (i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* Read a u32 count (min..max) and that many strings into a NULL-terminated malloc'd array.
 * The count is checked against the bytes left (each string takes >= 4) before allocating. */
static int get_strv(struct bl_rbuf *r, uint32_t min, uint32_t max, char ***out, uint32_t *outn)
{
    char **v = NULL;
    uint32_t n = 0, i;
    int rc;

    rc = bl_rbuf_u32(r, &n);
    if (rc < 0)
        goto out;
    rc = -BL_PE_INVALID;
    if (n < min || n > max)
        goto out;
    rc = -BL_PE_TRUNCATED;
    if (rbuf_left(r) / 4 < n)
        goto out;
    rc = -BL_PE_NOMEM;
    v = calloc((size_t)n + 1, sizeof(*v));
    if (v == NULL)
        goto out;
    rc = 0;
    for (i = 0; i < n && rc == 0; i++)
        rc = bl_rbuf_str(r, &v[i]);
    if (rc < 0)
        goto out;
    *out = v;
    *outn = n;
    v = NULL;
out:
    strv_free(v);
    return rc;
}

static int get_u64(struct bl_rbuf *r, uint64_t *out)
{
    uint32_t lo = 0, hi = 0;
    int rc = bl_rbuf_u32(r, &lo);

    if (rc == 0)
        rc = bl_rbuf_u32(r, &hi);
    *out = (uint64_t)hi << 32 | lo;
    return rc;
}

/* The optional tail: rlimits (absent in older peers' requests). */
static int get_rlimits(struct bl_exec_req *req, struct bl_rbuf *r)
{
    int rc;

    if (rbuf_left(r) == 0)
        return 0;
    if (rbuf_left(r) < 4)
        return -BL_PE_INVALID; /* stray trailing bytes, not a tail */
    rc = bl_rbuf_u32(r, &req->nrlimits);
    if (rc == 0 && (req->nrlimits == 0 || req->nrlimits > BL_MAX_RLIMITS))
        rc = -BL_PE_INVALID;
    for (uint32_t i = 0; rc == 0 && i < req->nrlimits; i++) {
        rc = bl_rbuf_u32(r, &req->rlimits[i].resource);
        if (rc == 0)
            rc = get_u64(r, &req->rlimits[i].soft);
        if (rc == 0)
            rc = get_u64(r, &req->rlimits[i].hard);
    }
    if (rc == 0 && !rlimits_ok(req))
        rc = -BL_PE_INVALID;
    if (rc != 0)
        req->nrlimits = 0;
    return rc;
}

static int exec_req_read(struct bl_exec_req *req, struct bl_rbuf *r)
{
    int rc;

    rc = bl_rbuf_u32(r, &req->flags);
    if (rc == 0 && (req->flags & ~BL_EXEC_FLAGS) != 0)
        rc = -BL_PE_INVALID;
    if (rc == 0)
        rc = get_strv(r, 1, BL_MAX_ARGS, &req->argv, &req->argc);
    if (rc == 0)
        rc = get_strv(r, 0, BL_MAX_ENV, &req->env, &req->envc);
    if (rc == 0)
        rc = bl_rbuf_str(r, &req->cwd);
    if (rc == 0)
        rc = bl_rbuf_str(r, &req->user);
    if (rc == 0)
        rc = bl_rbuf_u32(r, &req->timeout_ms);
    if (rc == 0)
        rc = bl_rbuf_u32(r, &req->rows);
    if (rc == 0)
        rc = bl_rbuf_u32(r, &req->cols);
    if (rc == 0)
        rc = get_rlimits(req, r);
    if (rc == 0)
        rc = bl_rbuf_done(r);
    return rc;
}

int bl_exec_req_decode(struct bl_exec_req *out, const uint8_t *p, size_t len)
{
    struct bl_rbuf r = rbuf_make(p, len);
    struct bl_exec_req req;
    int rc;

    memset(&req, 0, sizeof(req));
    rc = exec_req_read(&req, &r);
    if (rc < 0)
        bl_exec_req_clear(&req);
    *out = req; /* zeroed on failure, so clearing it again is harmless */
    return rc;
}

void bl_exec_req_clear(struct bl_exec_req *req)
{
    if (req == NULL)
        return;
    strv_free(req->argv);
    strv_free(req->env);
    free(req->cwd);
    free(req->user);
    memset(req, 0, sizeof(*req));
}

/* ---- EXIT ---- */

int bl_exit_encode(struct bl_wbuf *w, const struct bl_exit *e)
{
    if (e->kind > BL_EXIT_TIMEOUT || !str_ok(e->message))
        return -BL_PE_INVALID;
    bl_wbuf_put_u32(w, e->kind);
    bl_wbuf_put_u32(w, (uint32_t)e->code);
    bl_wbuf_put_str(w, e->message);
    return w->failed ? -w->failed : 0;
}

/* Two's complement u32 → int32 without implementation-defined conversions. */
static int32_t s32_from_u32(uint32_t v)
{
    if (v <= INT32_MAX)
        return (int32_t)v;
    return -(int32_t)(~v) - 1;
}

int bl_exit_decode(struct bl_exit *out, const uint8_t *p, size_t len)
{
    struct bl_rbuf r = rbuf_make(p, len);
    struct bl_exit e = {0, 0, NULL};
    uint32_t code = 0;
    int rc;

    rc = bl_rbuf_u32(&r, &e.kind);
    if (rc == 0)
        rc = bl_rbuf_u32(&r, &code);
    e.code = s32_from_u32(code);
    if (rc == 0 && e.kind > BL_EXIT_TIMEOUT)
        rc = -BL_PE_INVALID;
    if (rc == 0)
        rc = bl_rbuf_str(&r, &e.message);
    if (rc == 0)
        rc = bl_rbuf_done(&r);
    if (rc < 0) {
        free(e.message);
        memset(&e, 0, sizeof(e));
    }
    *out = e; /* zeroed on failure */
    return rc;
}

static int clamp(int32_t v, int max)
{
    if (v < 0)
        return 0;
    return v > max ? max : (int)v;
}

int bl_exit_status(const struct bl_exit *e)
{
    switch (e->kind) {
    case BL_EXIT_CODE:
        return clamp(e->code, 255);
    case BL_EXIT_SIGNAL:
    case BL_EXIT_TIMEOUT:
        return 128 + clamp(e->code, 127);
    case BL_EXIT_NOSTART:
        return (e->code == ENOENT || e->code == ENOTDIR) ? 127 : 126;
    default:
        return 255;
    }
}

/* ---- small fixed payloads ---- */

int bl_u32_str_decode(const uint8_t *p, size_t len, uint32_t *v, char **str)
{
    struct bl_rbuf r = rbuf_make(p, len);
    uint32_t a = 0;
    char *s = NULL;
    int rc;

    rc = bl_rbuf_u32(&r, &a);
    if (rc == 0)
        rc = bl_rbuf_str(&r, &s);
    if (rc == 0)
        rc = bl_rbuf_done(&r);
    if (rc < 0)
        goto out;
    *v = a;
    *str = s;
    s = NULL;
out:
    free(s);
    return rc;
}

int bl_u32_decode(const uint8_t *p, size_t len, uint32_t *v)
{
    struct bl_rbuf r = rbuf_make(p, len);
    uint32_t a = 0;
    int rc;

    rc = bl_rbuf_u32(&r, &a);
    if (rc == 0)
        rc = bl_rbuf_done(&r);
    if (rc == 0)
        *v = a;
    return rc;
}

int bl_u32x2_decode(const uint8_t *p, size_t len, uint32_t *a, uint32_t *b)
{
    struct bl_rbuf r = rbuf_make(p, len);
    uint32_t x = 0, y = 0;
    int rc;

    rc = bl_rbuf_u32(&r, &x);
    if (rc == 0)
        rc = bl_rbuf_u32(&r, &y);
    if (rc == 0)
        rc = bl_rbuf_done(&r);
    if (rc == 0) {
        *a = x;
        *b = y;
    }
    return rc;
}

/* ---- names ---- */

const char *bl_proto_strerror(int code)
{
    static const char *const msg[] = {
        [BL_PE_OK] = "success",
        [BL_PE_TRUNCATED] = "payload truncated",
        [BL_PE_VERSION] = "unsupported protocol version",
        [BL_PE_TYPE] = "unknown frame type",
        [BL_PE_TOOBIG] = "frame too big",
        [BL_PE_INVALID] = "invalid payload",
        [BL_PE_STREAM] = "frame not valid for this stream",
        [BL_PE_NOMEM] = "out of memory",
        [BL_PE_INTERNAL] = "internal error",
    };

    if (code < -BL_PE_INTERNAL || code > BL_PE_INTERNAL)
        return "unknown protocol error";
    return msg[code < 0 ? -code : code];
}

const char *bl_frame_type_name(unsigned type)
{
    static const char *const name[] = {
        [BL_F_HELLO] = "HELLO",       [BL_F_ERROR] = "ERROR",
        [BL_F_PING] = "PING",         [BL_F_PONG] = "PONG",
        [BL_F_SHUTDOWN] = "SHUTDOWN", [BL_F_EXEC] = "EXEC",
        [BL_F_MONITOR] = "MONITOR",   [BL_F_MONITOR_REPLY] = "MONITOR_REPLY",
        [BL_F_STARTED] = "STARTED",   [BL_F_STDIN] = "STDIN",
        [BL_F_STDOUT] = "STDOUT",     [BL_F_STDERR] = "STDERR",
        [BL_F_EXIT] = "EXIT",         [BL_F_SIGNAL] = "SIGNAL",
        [BL_F_WINDOW] = "WINDOW",     [BL_F_RESIZE] = "RESIZE",
    };

    if (type >= sizeof(name) / sizeof(name[0]) || name[type] == NULL)
        return "UNKNOWN";
    return name[type];
}
