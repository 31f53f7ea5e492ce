/* exec.c — processes in a box: the exec request, the per-stream output buffers bounded by
 * the protocol's credit window, stdin with the guest's credit, signals and the exit result.
 *
 * A process with a timeout also has a deadline here, on the host: when the guest has not
 * reported its end HOST_GRACE_MS after the guest's own SIGTERM → SIGKILL sequence should have
 * ended it, the exec ends as timed out and the process is sent SIGKILL. A box that cannot
 * answer (a starved or hung guest) cannot hold the caller past its timeout. */
#include "api.h"
#include "box.h"
#include "conn.h"
#include "db.h"
#include "error.h"
#include "image.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUEST_KILL_GRACE_MS 2000  /* the agent's SIGTERM → SIGKILL (src/agent/exec.c) */
#define HOST_GRACE_MS       3000  /* then this long for its EXIT to arrive */
#define SILENCE_MS          20000 /* a built-in's box silent this long is sent a PING */
#define ANSWER_MS           20000 /* and has this long to say anything */

struct outbuf {
    uint8_t *data;
    size_t off, len; /* unread bytes are data[off..len) */
    size_t cap;
    int eof;
    uint32_t unacked; /* read by the caller, not yet returned to the agent as credit */
};

struct boxlite_exec {
    struct boxlite_exec *next; /* in conn->execs */
    struct bl_conn *conn;
    char box_id[13];
    uint32_t stream;
    int tty;
    int detach;
    struct outbuf out[2]; /* stdout, stderr */
    int last_served;
    uint32_t stdin_credit;
    int stdin_closed;
    int stdin_want; /* a write with a timeout left bytes untaken: the fd tells of credit */
    int started;
    uint32_t pid;
    int exited;
    struct bl_exit result;
    int failed; /* the stream ended without EXIT: fail_msg says why */
    char fail_msg[256];
    int64_t host_deadline; /* CLOCK_MONOTONIC ms; 0 without a timeout */
    int64_t started_ms;    /* when the request was sent */
    int watchdog;          /* a built-in (copy): fail when the box stops answering */
    int expired;           /* ended by host_deadline; SIGKILL to send */
    int efd;               /* boxlite_exec_fd's eventfd, -1 until asked for */
    int efd_set;           /* it is readable now */
    int wake_fd;           /* bl_exec_set_wake's eventfd (the tunnel relay), -1 without */
};

/* Make the pollable fd say whether there is something to do without waiting: unread
 * output, the process's end (exit or failure), or stdin credit for a write that could not
 * finish (stdin_want). The streams' own end comes just before the exit and is not signalled
 * apart. Under conn->mu, after every change of any of them. */
static void ready_update_locked(struct boxlite_exec *ex)
{
    int ready = ex->out[0].len > ex->out[0].off || ex->out[1].len > ex->out[1].off || ex->exited ||
                ex->failed || (ex->stdin_want && ex->stdin_credit > 0 && !ex->stdin_closed);
    uint64_t v = 1;

    if (ex->efd < 0 || ready == ex->efd_set)
        return;
    if (ready)
        (void)!write(ex->efd, &v, sizeof(v));
    else
        (void)!read(ex->efd, &v, sizeof(v)); /* the counter back to 0: not readable */
    ex->efd_set = ready;
}

struct boxlite_exec *bl_exec_next(struct boxlite_exec *ex)
{
    return ex->next;
}

uint32_t bl_exec_stream(const struct boxlite_exec *ex)
{
    return ex->stream;
}

static void fail_locked(struct boxlite_exec *ex, const char *msg)
{
    if (ex->exited || ex->failed)
        return;
    ex->failed = 1;
    snprintf(ex->fail_msg, sizeof(ex->fail_msg), "%s", msg);
    ex->out[0].eof = ex->out[1].eof = 1;
    ready_update_locked(ex);
}

void bl_exec_on_close(struct boxlite_exec *ex)
{
    fail_locked(ex, ex->conn->close_reason);
}

static void append_output(struct boxlite_exec *ex, struct outbuf *b, const struct bl_frame *f)
{
    size_t pending = b->len - b->off;

    if (f->len == 0) {
        b->eof = 1;
        return;
    }
    if (b->eof || pending + f->len > BL_WINDOW_INIT) {
        fail_locked(ex, "the agent sent output beyond its credit window");
        return;
    }
    if (b->off > 0 && b->len + f->len > b->cap) {
        memmove(b->data, b->data + b->off, pending);
        b->off = 0;
        b->len = pending;
    }
    if (b->len + f->len > b->cap) {
        uint8_t *nd = realloc(b->data, BL_WINDOW_INIT);
        if (!nd) {
            fail_locked(ex, "out of memory buffering output");
            return;
        }
        b->data = nd;
        b->cap = BL_WINDOW_INIT;
    }
    memcpy(b->data + b->len, f->payload, f->len);
    b->len += f->len;
}

/* Tell bl_exec_set_wake's fd (stdin credit came back, or a stream ended). */
static void wake(struct boxlite_exec *ex)
{
    uint64_t one = 1;

    if (ex->wake_fd >= 0)
        (void)!write(ex->wake_fd, &one, sizeof(one));
}

void bl_exec_on_frame(struct boxlite_exec *ex, const struct bl_frame *f)
{
    uint32_t a = 0, b = 0;
    char *msg = NULL;

    switch (f->type) {
    case BL_F_STARTED:
        if (bl_u32_decode(f->payload, f->len, &a) == 0) {
            ex->started = 1;
            ex->pid = a;
        }
        break;
    case BL_F_STDOUT:
    case BL_F_STDERR:
        append_output(ex, &ex->out[f->type == BL_F_STDERR], f);
        if (f->len == 0)
            wake(ex); /* a stream's end does not make the fd readable */
        break;
    case BL_F_WINDOW:
        if (bl_u32x2_decode(f->payload, f->len, &a, &b) == 0 && a == 0 && b <= BL_WINDOW_INIT &&
            ex->stdin_credit + b <= BL_WINDOW_INIT) {
            ex->stdin_credit += b;
            wake(ex);
        }
        break;
    case BL_F_EXIT:
        if (!ex->exited && !ex->failed && bl_exit_decode(&ex->result, f->payload, f->len) == 0) {
            ex->exited = 1;
            ex->out[0].eof = ex->out[1].eof = 1;
        } else if (!ex->exited) {
            fail_locked(ex, "the agent sent an invalid exit frame");
        }
        break;
    case BL_F_ERROR:
        if (bl_u32_str_decode(f->payload, f->len, &a, &msg) == 0) {
            char text[256];
            snprintf(text, sizeof(text), "the agent refused the request: %s", msg);
            fail_locked(ex, text);
        }
        break;
    default:
        break;
    }
    ready_update_locked(ex);
    free(msg);
}

/* The process's environment: the image's, the box's, then the exec's (a later KEY wins).
 * The strings are borrowed; only the vector is allocated. */
static char **merge_env(char *const *a, char *const *b, const char *const *c, uint32_t *count)
{
    size_t na = bl_strv_len((const char *const *)a), nb = bl_strv_len((const char *const *)b);
    size_t nc = bl_strv_len(c), n = 0;
    char **out = calloc(na + nb + nc + 1, sizeof(*out));

    for (size_t i = 0; out && i < na + nb + nc; i++) {
        const char *kv = i < na ? a[i] : i < na + nb ? b[i - na] : c[i - na - nb];
        size_t klen = strcspn(kv, "=");
        size_t j = 0;
        while (j < n && !(strncmp(out[j], kv, klen) == 0 && out[j][klen] == '='))
            j++;
        out[j] = (char *)kv;
        n += j == n;
    }
    *count = (uint32_t)n;
    return out;
}

/* Version 3's rlimits and read-only root into the request (checked again by the encoder). */
static int exec_limits(struct bl_exec_req *req, const boxlite_exec_options *o)
{
    uint32_t seen = 0;

    if (o->n_rlimits > BL_MAX_RLIMITS || (o->n_rlimits && !o->rlimits))
        return bl_err(BOXLITE_EINVAL, "at most %d rlimits", BL_MAX_RLIMITS);
    for (size_t i = 0; i < o->n_rlimits; i++) {
        const boxlite_rlimit *l = &o->rlimits[i];
        if (l->resource < 0 || l->resource >= BL_MAX_RLIMITS || (seen & (1u << l->resource)))
            return bl_err(BOXLITE_EINVAL, "rlimit %d: not a resource 0..15 given once",
                          l->resource);
        if (l->soft > l->hard)
            return bl_err(BOXLITE_EINVAL, "rlimit %d: soft %llu above hard %llu", l->resource,
                          (unsigned long long)l->soft, (unsigned long long)l->hard);
        seen |= 1u << l->resource;
        req->rlimits[i] = (struct bl_exec_rlimit){(uint32_t)l->resource, l->soft, l->hard};
    }
    req->nrlimits = (uint32_t)o->n_rlimits;
    req->flags |= o->read_only_root ? BL_EXEC_RO_ROOT : 0;
    return 0;
}

int bl_exec_encode(struct bl_wbuf *w, const boxlite_exec_options *o, uint32_t flags,
                   const struct bl_image *img, const struct bl_box_row *row)
{
    struct bl_exec_req req = {0};
    size_t argc = 0, envc = 0;
    int rc;

    while (o->argv[argc])
        argc++;
    while (o->env && o->env[envc])
        envc++;
    if (argc > BL_MAX_ARGS || envc > BL_MAX_ENV)
        return bl_err(BOXLITE_EINVAL, "too many arguments or environment variables");
    req.flags = flags | (o->tty ? BL_EXEC_TTY : 0);
    req.argv = (char **)o->argv;
    req.argc = (uint32_t)argc;
    req.env = merge_env(img->env, row->env, o->env, &req.envc);
    req.cwd = (char *)(o->cwd ? o->cwd : row->workdir ? row->workdir : img->workdir);
    req.user = (char *)(o->user ? o->user : row->user ? row->user : img->user);
    req.timeout_ms = o->timeout_ms;
    req.rows = 24;
    req.cols = 80;
    rc = o->version >= 3 ? exec_limits(&req, o) : 0;
    if (rc == 0 && !req.env)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else if (rc == 0 && (req.envc > BL_MAX_ENV || bl_exec_req_encode(w, &req) != 0 || w->failed))
        rc = bl_err(BOXLITE_EINVAL, "the command line and environment are too large");
    free(req.env);
    return rc;
}

static int check_options(const boxlite_exec_options *o)
{
    if (!o || o->version < 1 || o->version > BOXLITE_EXEC_OPTIONS_VERSION)
        return bl_err(BOXLITE_EINVAL, "exec options missing or of an unknown version");
    if (!o->argv || !o->argv[0] || !o->argv[0][0])
        return bl_err(BOXLITE_EINVAL, "exec needs a command");
    for (size_t i = 0; o->env && o->env[i]; i++)
        if (!strchr(o->env[i], '=') || o->env[i][0] == '=')
            return bl_err(BOXLITE_EINVAL, "environment entry \"%s\" is not KEY=VALUE", o->env[i]);
    return 0;
}

static void unlink_locked(struct boxlite_exec *ex)
{
    struct boxlite_exec **pp = &ex->conn->execs;

    while (*pp && *pp != ex)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ex->next;
}

int bl_exec_start_flags(boxlite_exec **out, boxlite_box *box, const boxlite_exec_options *opts,
                        uint32_t flags)
{
    struct bl_wbuf w = {0};
    struct boxlite_exec *ex = NULL;
    struct bl_image *img = NULL;
    struct bl_conn *c = NULL;
    int rc;

    rc = check_options(opts);
    if (rc == 0)
        rc = bl_box_conn(box, &c);
    if (rc == 0)
        rc = bl_box_image(box, &img);
    if (rc == 0 && opts->version >= 2 && opts->detach)
        flags |= BL_EXEC_DETACH;
    if (rc == 0)
        rc = bl_exec_encode(&w, opts, flags, img, &box->row);
    if (rc != 0)
        goto out;
    ex = calloc(1, sizeof(*ex));
    if (!ex) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    ex->conn = c;
    ex->efd = -1;
    ex->wake_fd = -1;
    bl_conn_ref(c);
    snprintf(ex->box_id, sizeof(ex->box_id), "%s", boxlite_box_id(box));
    ex->tty = opts->tty;
    ex->detach = (flags & BL_EXEC_DETACH) != 0;
    ex->stdin_credit = BL_WINDOW_INIT;
    ex->started_ms = bl_now_ms();
    ex->watchdog = (flags & BL_EXEC_BUILTIN) != 0;
    if (opts->timeout_ms > 0)
        ex->host_deadline =
            bl_now_ms() + (int64_t)opts->timeout_ms + GUEST_KILL_GRACE_MS + HOST_GRACE_MS;
    pthread_mutex_lock(&c->mu);
    ex->stream = c->next_stream;
    c->next_stream += 2;
    ex->next = c->execs;
    c->execs = ex;
    if (c->closed)
        fail_locked(ex, c->close_reason);
    pthread_mutex_unlock(&c->mu);
    rc = bl_conn_send(c, BL_F_EXEC, ex->stream, w.data, w.len);
    if (rc != 0) {
        pthread_mutex_lock(&c->mu);
        unlink_locked(ex);
        pthread_mutex_unlock(&c->mu);
        bl_conn_unref(c);
        free(ex);
        ex = NULL;
        goto out;
    }
    *out = ex;
out:
    bl_wbuf_free(&w);
    if (rc != 0)
        bl_err_wrap(rc, "exec \"%s\" in box %s",
                    opts && opts->argv && opts->argv[0] ? opts->argv[0] : "",
                    box ? boxlite_box_id(box) : "?");
    return rc;
}

BOXLITE_API int boxlite_exec_start(boxlite_exec **out, boxlite_box *box,
                                   const boxlite_exec_options *opts)
{
    return bl_exec_start_flags(out, box, opts, 0);
}

BOXLITE_API int boxlite_exec_pid(const boxlite_exec *ex)
{
    int pid = 0;

    if (ex) {
        pthread_mutex_lock(&ex->conn->mu);
        pid = ex->started ? (int)ex->pid : 0;
        pthread_mutex_unlock(&ex->conn->mu);
    }
    return pid;
}

/* Pick a stream in mask with unread data, alternating between the two for fairness. */
static int pick_stream_locked(struct boxlite_exec *ex, int mask)
{
    for (int k = 1; k <= 2; k++) {
        int i = (ex->last_served + k) % 2;
        if ((mask & (1 << i)) && ex->out[i].len > ex->out[i].off)
            return i;
    }
    return -1;
}

static int all_ended_locked(struct boxlite_exec *ex, int mask)
{
    for (int i = 0; i < 2; i++)
        if ((mask & (1 << i)) && !ex->out[i].eof)
            return 0;
    return 1;
}

/* The host's deadline passed without EXIT: the process ends here as timed out. */
static void expire_locked(struct boxlite_exec *ex)
{
    char *msg = bl_strdupf("the box did not report the end of the process %d s after its "
                           "timeout; it was sent SIGKILL",
                           (GUEST_KILL_GRACE_MS + HOST_GRACE_MS) / 1000);

    free(ex->result.message);
    ex->result = (struct bl_exit){.kind = BL_EXIT_TIMEOUT, .code = SIGKILL, .message = msg};
    ex->exited = 1;
    ex->expired = 1;
    ex->out[0].eof = ex->out[1].eof = 1;
    ready_update_locked(ex);
}

/* The watchdog of a built-in (a copy has no timeout of its own and nobody to press ^C):
 * after SILENCE_MS without a frame from the box, PING it; ANSWER_MS more of silence fail the
 * exec. Returns the time of its next step (-1 once it has failed the exec); may drop and
 * retake c->mu to send the PING. */
static int64_t watchdog_locked(struct boxlite_exec *ex, int64_t now)
{
    struct bl_conn *c = ex->conn;
    int64_t heard = c->last_rx_ms > ex->started_ms ? c->last_rx_ms : ex->started_ms;

    if (now >= heard + SILENCE_MS + ANSWER_MS) {
        char msg[160];
        snprintf(msg, sizeof(msg), "the box has not answered for %d s (not even a PING)",
                 (SILENCE_MS + ANSWER_MS) / 1000);
        fail_locked(ex, msg);
        return -1;
    }
    if (now >= heard + SILENCE_MS && c->last_ping_ms < heard) {
        c->last_ping_ms = now;
        pthread_mutex_unlock(&c->mu);
        (void)bl_conn_send(c, BL_F_PING, 0, "watchdog", 8);
        pthread_mutex_lock(&c->mu);
    }
    return now < heard + SILENCE_MS ? heard + SILENCE_MS : heard + SILENCE_MS + ANSWER_MS;
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The non-blocking core, under c->mu: run the host-side deadlines due by now (the expiry of
 * a timed process, see expire_locked; a built-in's watchdog, see watchdog_locked) and return
 * the CLOCK_MONOTONIC ms at which the next one falls due, -1 when none will. Every read, wait
 * and write runs it; boxlite_exec_timeout reports it to a poller; the blocking calls sleep no
 * longer than it. May drop and retake c->mu (the watchdog's PING). */
static int64_t step_locked(struct boxlite_exec *ex)
{
    int64_t now = bl_now_ms(), due = -1;

    if (ex->watchdog && !ex->exited && !ex->failed)
        due = watchdog_locked(ex, now);
    if (ex->host_deadline > 0 && !ex->exited && !ex->failed) {
        if (now >= ex->host_deadline)
            expire_locked(ex);
        else
            due = earlier(due, ex->host_deadline);
    }
    return ex->exited || ex->failed ? -1 : due;
}

/* How a blocking call waits between two non-blocking steps: until the channel changes after
 * gen (a frame arrived, or it closed) or until `until` (< 0: no limit). Under c->mu. Not a
 * poll on boxlite_exec_fd: that fd is readable while any output is unread, so a waiter for
 * the exit alone (or for one stream) with output left unread would spin on it, and several
 * threads may wait on one handle. The decisions are the step's alone. */
static void sleep_locked(struct boxlite_exec *ex, uint64_t gen, int64_t until)
{
    struct timespec ts;

    if (ex->conn->gen != gen)
        return;
    if (until < 0) {
        pthread_cond_wait(&ex->conn->cond, &ex->conn->mu);
        return;
    }
    if (bl_now_ms() >= until)
        return;
    bl_deadline_ts(&ts, until);
    pthread_cond_timedwait(&ex->conn->cond, &ex->conn->mu, &ts);
}

static int send_u32s(boxlite_exec *ex, uint8_t type, uint32_t a, uint32_t b, int two)
{
    struct bl_wbuf w = {0};
    int rc;

    bl_wbuf_put_u32(&w, a);
    if (two)
        bl_wbuf_put_u32(&w, b);
    rc = w.failed ? bl_err(BOXLITE_ENOMEM, "out of memory")
                  : bl_conn_send(ex->conn, type, ex->stream, w.data, w.len);
    bl_wbuf_free(&w);
    return rc;
}

/* After an expiry, the SIGKILL (once; outside c->mu). */
static void kill_expired(boxlite_exec *ex)
{
    int send;

    pthread_mutex_lock(&ex->conn->mu);
    send = ex->expired == 1;
    if (send)
        ex->expired = 2;
    pthread_mutex_unlock(&ex->conn->mu);
    if (send)
        (void)send_u32s(ex, BL_F_SIGNAL, SIGKILL, 0, 0);
}

/* boxlite_exec_read with timeout 0, under c->mu: take what is buffered now into buf
 * (*i_out: the stream, -1 with *n_out 0 when every stream in mask has ended; *credit_out: the
 * credit to return to the agent), else BOXLITE_EAGAIN with *due_out set (step_locked). */
static int read_step_locked(struct boxlite_exec *ex, int mask, void *buf, size_t cap, int *i_out,
                            size_t *n_out, uint32_t *credit_out, int64_t *due_out)
{
    int64_t due = step_locked(ex);
    int i = pick_stream_locked(ex, mask);
    struct outbuf *b;
    size_t n;

    *due_out = due;
    *i_out = i;
    *n_out = 0;
    *credit_out = 0;
    if (i < 0)
        return all_ended_locked(ex, mask) ? 0 : BOXLITE_EAGAIN;
    b = &ex->out[i];
    n = b->len - b->off < cap ? b->len - b->off : cap;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    b->unacked += (uint32_t)n;
    ex->last_served = i;
    if (b->unacked >= BL_WINDOW_INIT / 4 && !b->eof) {
        *credit_out = b->unacked;
        b->unacked = 0;
    }
    *n_out = n;
    return 0;
}

BOXLITE_API int boxlite_exec_read(boxlite_exec *ex, int streams, int *which_out, void *buf,
                                  size_t cap, size_t *n_out, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : bl_now_ms() + timeout_ms, due = -1;
    uint32_t credit = 0;
    int mask = streams & (BOXLITE_STDOUT | BOXLITE_STDERR);
    int i = -1, rc;
    size_t n = 0;

    if (!ex || !buf || cap == 0 || mask == 0 || !which_out || !n_out)
        return bl_err(BOXLITE_EINVAL, "exec read: bad arguments");
    pthread_mutex_lock(&ex->conn->mu);
    for (;;) {
        uint64_t gen = ex->conn->gen;
        rc = read_step_locked(ex, mask, buf, cap, &i, &n, &credit, &due);
        if (rc != BOXLITE_EAGAIN || (deadline >= 0 && bl_now_ms() >= deadline))
            break;
        sleep_locked(ex, gen, earlier(deadline, due));
    }
    ready_update_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    kill_expired(ex);
    if (rc == BOXLITE_EAGAIN)
        return bl_err(BOXLITE_EAGAIN, "no output yet");
    if (credit > 0)
        send_u32s(ex, BL_F_WINDOW, (uint32_t)i + 1, credit, 1);
    *which_out = i >= 0 ? (i == 0 ? BOXLITE_STDOUT : BOXLITE_STDERR) : 0;
    *n_out = n;
    return 0;
}

BOXLITE_API int boxlite_exec_timeout(int *ms_out, boxlite_exec *ex)
{
    int64_t due, left;

    if (!ex || !ms_out)
        return bl_err(BOXLITE_EINVAL, "exec timeout: bad arguments");
    pthread_mutex_lock(&ex->conn->mu);
    due = step_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    kill_expired(ex);
    left = due < 0 ? -1 : due - bl_now_ms();
    *ms_out = due < 0 ? -1 : left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    return 0;
}

static int running_check_locked(boxlite_exec *ex)
{
    if (ex->failed)
        return bl_err(BOXLITE_ESTATE, "process failed: %s", ex->fail_msg);
    if (ex->exited)
        return bl_err(BOXLITE_ESTATE, "the process has exited");
    return 0;
}

BOXLITE_API int boxlite_exec_fd(int *out, boxlite_exec *ex)
{
    int rc = 0;

    if (!ex || !out)
        return bl_err(BOXLITE_EINVAL, "exec fd: bad arguments");
    pthread_mutex_lock(&ex->conn->mu);
    if (ex->efd < 0) {
        ex->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ex->efd < 0)
            rc = bl_err(BOXLITE_ERROR, "eventfd: %s", strerror(errno));
        ex->efd_set = 0;
        ready_update_locked(ex);
    }
    if (rc == 0)
        *out = ex->efd;
    pthread_mutex_unlock(&ex->conn->mu);
    return rc;
}

/* The write's step, under c->mu: the bytes the guest's window takes now (at most one
 * frame), 0 when it is full; an error when stdin cannot take any more at all. */
static int write_step_locked(struct boxlite_exec *ex, size_t left, size_t *k_out)
{
    size_t k = left < ex->stdin_credit ? left : ex->stdin_credit;
    int rc = running_check_locked(ex);

    if (rc == 0 && ex->stdin_closed)
        rc = bl_err(BOXLITE_ESTATE, "stdin is closed");
    *k_out = rc == 0 ? (k < BL_DATA_CHUNK ? k : BL_DATA_CHUNK) : 0;
    ex->stdin_credit -= (uint32_t)*k_out;
    return rc;
}

BOXLITE_API int boxlite_exec_write_v2(boxlite_exec *ex, const void *buf, size_t len, size_t *n_out,
                                      int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : bl_now_ms() + timeout_ms;
    const uint8_t *p = buf;
    size_t done = 0, k = 0;
    int rc = 0;

    if (!ex || (!buf && len > 0) || !n_out)
        return bl_err(BOXLITE_EINVAL, "exec write: bad arguments");
    pthread_mutex_lock(&ex->conn->mu);
    ex->stdin_want = 0;
    while (done < len) {
        uint64_t gen = ex->conn->gen;
        int64_t due = step_locked(ex); /* the host deadline and the watchdog hold here too */
        rc = write_step_locked(ex, len - done, &k);
        if (rc != 0)
            break;
        if (k > 0) {
            pthread_mutex_unlock(&ex->conn->mu);
            rc = bl_conn_send(ex->conn, BL_F_STDIN, ex->stream, p + done, k);
            pthread_mutex_lock(&ex->conn->mu);
            if (rc != 0)
                break;
            done += k;
        } else if (deadline >= 0 && bl_now_ms() >= deadline) {
            ex->stdin_want = 1; /* the fd turns readable when credit comes back */
            break;
        } else {
            sleep_locked(ex, gen, earlier(deadline, due));
        }
    }
    ready_update_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    kill_expired(ex);
    *n_out = done;
    if (rc == 0 && done == 0 && len > 0)
        rc = bl_err(BOXLITE_EAGAIN, "the process's stdin window is full");
    return rc;
}

BOXLITE_API int boxlite_exec_write(boxlite_exec *ex, const void *buf, size_t len)
{
    size_t n;

    return boxlite_exec_write_v2(ex, buf, len, &n, -1);
}

void bl_exec_set_wake(boxlite_exec *ex, int fd)
{
    pthread_mutex_lock(&ex->conn->mu);
    ex->wake_fd = fd;
    pthread_mutex_unlock(&ex->conn->mu);
}

int bl_exec_write_some(boxlite_exec *ex, const void *buf, size_t len, size_t *n_out)
{
    size_t k = 0;
    int rc;

    pthread_mutex_lock(&ex->conn->mu);
    (void)step_locked(ex);
    rc = write_step_locked(ex, len, &k);
    pthread_mutex_unlock(&ex->conn->mu);
    if (rc == 0 && k > 0)
        rc = bl_conn_send(ex->conn, BL_F_STDIN, ex->stream, buf, k);
    *n_out = rc == 0 ? k : 0;
    return rc;
}

BOXLITE_API int boxlite_exec_close_stdin(boxlite_exec *ex)
{
    int rc;

    if (!ex)
        return bl_err(BOXLITE_EINVAL, "exec: NULL handle");
    pthread_mutex_lock(&ex->conn->mu);
    rc = ex->stdin_closed || ex->exited || ex->failed;
    ex->stdin_closed = 1;
    ex->stdin_want = 0;
    ready_update_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    return rc ? 0 : bl_conn_send(ex->conn, BL_F_STDIN, ex->stream, NULL, 0);
}

BOXLITE_API int boxlite_exec_signal(boxlite_exec *ex, int signo)
{
    int rc;

    if (!ex || signo <= 0 || signo >= 65)
        return bl_err(BOXLITE_EINVAL, "exec signal: bad signal %d", signo);
    pthread_mutex_lock(&ex->conn->mu);
    rc = running_check_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    return rc ? rc : send_u32s(ex, BL_F_SIGNAL, (uint32_t)signo, 0, 0);
}

BOXLITE_API int boxlite_exec_resize(boxlite_exec *ex, unsigned rows, unsigned cols)
{
    if (!ex || rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
        return bl_err(BOXLITE_EINVAL, "exec resize: bad size %ux%u", rows, cols);
    if (!ex->tty)
        return bl_err(BOXLITE_ESTATE, "the process has no tty");
    return send_u32s(ex, BL_F_RESIZE, rows, cols, 1);
}

static void fill_result(boxlite_exec_result *out, const struct boxlite_exec *ex)
{
    memset(out, 0, sizeof(*out));
    out->version = BOXLITE_EXEC_RESULT_VERSION;
    out->exit_code = bl_exit_status(&ex->result);
    if (ex->result.kind == BL_EXIT_SIGNAL || ex->result.kind == BL_EXIT_TIMEOUT)
        out->signal = ex->result.code;
    out->timed_out = ex->result.kind == BL_EXIT_TIMEOUT;
    snprintf(out->message, sizeof(out->message), "%s",
             ex->result.message ? ex->result.message : "");
}

/* boxlite_exec_wait_v2 with timeout 0, under c->mu: the result once the process has ended,
 * else BOXLITE_ETIMEOUT with *due_out set (step_locked). */
static int wait_step_locked(boxlite_exec_result *out, struct boxlite_exec *ex, int64_t *due_out)
{
    *due_out = step_locked(ex);
    if (ex->exited) {
        fill_result(out, ex);
        return 0;
    }
    if (ex->failed)
        return bl_err(BOXLITE_EPROTO, "box %s: %s", ex->box_id, ex->fail_msg);
    return BOXLITE_ETIMEOUT;
}

BOXLITE_API int boxlite_exec_wait(boxlite_exec *ex, boxlite_exec_result *out, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : bl_now_ms() + timeout_ms, due = -1;
    int rc;

    if (!ex || !out)
        return bl_err(BOXLITE_EINVAL, "exec wait: bad arguments");
    if (bl_check_version(out->version, BOXLITE_EXEC_RESULT_VERSION, "exec result") != 0)
        return BOXLITE_EINVAL;
    pthread_mutex_lock(&ex->conn->mu);
    for (;;) {
        uint64_t gen = ex->conn->gen;
        rc = wait_step_locked(out, ex, &due);
        if (rc != BOXLITE_ETIMEOUT || (deadline >= 0 && bl_now_ms() >= deadline))
            break;
        sleep_locked(ex, gen, earlier(deadline, due));
    }
    pthread_mutex_unlock(&ex->conn->mu);
    kill_expired(ex);
    if (rc == BOXLITE_ETIMEOUT)
        return bl_err(BOXLITE_ETIMEOUT, "the process is still running");
    return rc;
}

BOXLITE_API void boxlite_exec_free(boxlite_exec *ex)
{
    int running;

    if (!ex)
        return;
    pthread_mutex_lock(&ex->conn->mu);
    running = (!ex->exited && !ex->failed && !ex->detach) || ex->expired == 1;
    unlink_locked(ex);
    pthread_mutex_unlock(&ex->conn->mu);
    if (running)
        send_u32s(ex, BL_F_SIGNAL, SIGKILL, 0, 0);
    bl_conn_unref(ex->conn);
    if (ex->efd >= 0)
        close(ex->efd);
    free(ex->out[0].data);
    free(ex->out[1].data);
    free(ex->result.message);
    free(ex);
}
