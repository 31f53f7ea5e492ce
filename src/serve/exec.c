/* exec.c — the Box API's executions: start (POST /exec), status, kill, signal and resize; the
 * registry of executions; and the output pump, one thread that polls every running
 * execution's fd (boxlite_exec_fd) and hands output to the attached WebSocket or keeps a
 * bounded backlog while nobody is attached (then stops reading it: the process waits). */
#include "exec.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t exec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sexec *exec_head;
static unsigned exec_count, pumps_running;

void sexec_ref(struct sexec *x)
{
    pthread_mutex_lock(&exec_mu);
    x->refs++;
    pthread_mutex_unlock(&exec_mu);
}

void sexec_put(struct sexec *x)
{
    int last;

    if (x == NULL)
        return;
    pthread_mutex_lock(&exec_mu);
    last = --x->refs == 0;
    pthread_mutex_unlock(&exec_mu);
    if (!last)
        return;
    boxlite_exec_free(x->ex);
    sbox_put(x->box);
    free(x->backlog);
    pthread_mutex_destroy(&x->mu);
    pthread_mutex_destroy(&x->dmu);
    pthread_cond_destroy(&x->dcond);
    free(x);
}

struct sexec *sexec_find(const char *box_id, const char *exec_id)
{
    struct sexec *x;

    pthread_mutex_lock(&exec_mu);
    for (x = exec_head; x != NULL; x = x->next)
        if (strcmp(x->id, exec_id) == 0 && strcmp(x->box->id, box_id) == 0)
            break;
    if (x != NULL)
        x->refs++;
    pthread_mutex_unlock(&exec_mu);
    return x;
}

/* Take x out of the registry (drops the registry's reference). */
static void evict(struct sexec *x)
{
    struct sexec **pp;
    int found = 0;

    pthread_mutex_lock(&exec_mu);
    for (pp = &exec_head; *pp != NULL; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            exec_count--;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&exec_mu);
    if (found)
        sexec_put(x);
}

/* Running executions started by principal. */
static unsigned running_for(const char *principal)
{
    unsigned n = 0;

    pthread_mutex_lock(&exec_mu);
    for (struct sexec *x = exec_head; x != NULL; x = x->next)
        n += strcmp(x->principal, principal) == 0 &&
             !__atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&exec_mu);
    return n;
}

/* Room for one more: the oldest finished execution goes. 0 when there is room. */
static int make_room(void)
{
    struct sexec *victim = NULL;
    int full;

    pthread_mutex_lock(&exec_mu);
    full = exec_count >= g_serve->cfg->max_executions;
    for (struct sexec *x = exec_head; full && x != NULL; x = x->next)
        if (__atomic_load_n(&x->finished, __ATOMIC_ACQUIRE))
            victim = x; /* the list is newest first: the last finished is the oldest */
    pthread_mutex_unlock(&exec_mu);
    if (!full)
        return 0;
    if (victim == NULL)
        return -1;
    evict(victim);
    return 0;
}

/* ---- the pump ----------------------------------------------------------------------------- */

/* The spec's orphan policy: an execution nobody has attached to for orphan_timeout seconds
 * gets SIGHUP, once. Called with x->dmu held. */
static void reap_if_orphaned_locked(struct sexec *x)
{
    unsigned limit = g_serve->cfg->orphan_timeout;

    if (limit == 0 || x->att != NULL || x->reaped || now_monotonic() - x->unattached_since <= limit)
        return;
    x->reaped = 1;
    boxlite_exec_signal(x->ex, SIGHUP);
}

static void reap_if_orphaned(struct sexec *x)
{
    pthread_mutex_lock(&x->dmu);
    reap_if_orphaned_locked(x);
    pthread_mutex_unlock(&x->dmu);
}

/* Hand one frame on: to the attachment, or the backlog while nobody is attached. 1 when
 * neither has room now (the pump holds it and stops reading: the process waits with it). */
static int try_deliver(struct sexec *x, const unsigned char *frame, size_t len)
{
    int rc = 0;

    pthread_mutex_lock(&x->dmu);
    if (g_serve->stopping) {
        rc = 0; /* dropped: the server is going */
    } else if (x->att != NULL) {
        rc = attach_send_output(x->att, frame, len) == 0 ? 0 : 1;
    } else if (x->blen + len + 4 <= EXEC_BACKLOG_MAX) {
        uint32_t l = (uint32_t)len;
        unsigned char *grown = realloc(x->backlog, x->blen + len + 4);
        if (grown != NULL) {
            x->backlog = grown;
            memcpy(x->backlog + x->blen, &l, 4);
            memcpy(x->backlog + x->blen + 4, frame, len);
            x->blen += len + 4;
        }
    } else {
        reap_if_orphaned_locked(x);
        rc = 1;
    }
    pthread_mutex_unlock(&x->dmu);
    return rc;
}

/* The process has ended (or the server stops): record it, tell the attachment. */
static void finish(struct sexec *x, int rc, const boxlite_exec_result *res)
{
    pthread_mutex_lock(&x->mu);
    x->wait_rc = rc;
    x->res = *res;
    x->duration_ms = (now_monotonic() - x->started_mono) * 1000;
    __atomic_store_n(&x->finished, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&x->mu);
    if (rc != 0 || res->message[0] != '\0') {
        __atomic_add_fetch(&x->box->exec_errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g_serve->counters.exec_errors, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_lock(&x->dmu);
    /* a process the stopping server abandons has not exited: its attachment gets 1001 */
    if (x->att != NULL && !(g_serve->stopping && rc == BOXLITE_ETIMEOUT))
        attach_send_exit(x->att, sexec_exit_code(rc, res));
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
}

/* ---- the pump: one thread polls every running execution's fd (boxlite_exec_fd) ------------ */

#define PUMP_CHUNK  32768
#define PUMP_ROUNDS 16 /* reads per execution per wake: fairness between busy ones */

static pthread_mutex_t pump_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sexec *pump_head; /* each holds a reference: the pump's */
int sexec_exit_code(int wait_rc, const boxlite_exec_result *r)
{
    if (wait_rc != 0)
        return -1;
    return r->signal > 0 ? -r->signal : r->exit_code;
}

static int pump_wake_fd = -1, pump_started;
static pthread_t pump_th;

void exec_pump_wake(void)
{
    uint64_t v = 1;

    if (pump_wake_fd >= 0)
        (void)!write(pump_wake_fd, &v, sizeof(v));
}

/* The fd was readable with no output and no end: the guest returned stdin credit to a
 * write the attachment could not finish. The attachment writes; until then the fd (which
 * stays readable) is left out of the poll. */
static void stdin_credit(struct sexec *x)
{
    pthread_mutex_lock(&x->dmu);
    if (x->att != NULL) {
        __atomic_store_n(&x->stdin_wait, 1, __ATOMIC_RELEASE);
        attach_stdin_credit(x->att);
    }
    pthread_mutex_unlock(&x->dmu);
}

/* Move x on as far as it goes without waiting (readable: the fd said so). 1 when it has
 * finished (drop it). */
static int pump_one(struct sexec *x, unsigned char *buf, int readable)
{
    boxlite_exec_result res;
    int rc = 0, which = 0;
    size_t n = 0;

    if (x->held != NULL) {
        if (try_deliver(x, x->held, x->held_len) != 0)
            return 0;
        free(x->held);
        x->held = NULL;
    }
    for (int k = 0; k < PUMP_ROUNDS && !x->streams_done; k++) {
        rc = boxlite_exec_read(x->ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf + 1,
                               PUMP_CHUNK - 1, &n, 0);
        if (rc == BOXLITE_EAGAIN && !g_serve->stopping) {
            if (readable && k == 0)
                stdin_credit(x);
            return 0;
        }
        if (rc == BOXLITE_EAGAIN)
            break;
        if (rc != 0 || n == 0) {
            x->streams_done = 1;
            break;
        }
        buf[0] = which == BOXLITE_STDERR ? 2 : 1;
        __atomic_add_fetch(&x->box->bytes_out, n, __ATOMIC_RELAXED);
        if (try_deliver(x, buf, n + 1) != 0) {
            x->held = malloc(n + 1);
            if (x->held != NULL) {
                memcpy(x->held, buf, n + 1);
                x->held_len = n + 1;
            }
            return 0;
        }
    }
    if (!x->streams_done && !g_serve->stopping)
        return 0;
    boxlite_exec_result_init(&res, BOXLITE_EXEC_RESULT_VERSION);
    rc = boxlite_exec_wait_v2(&res, x->ex, 0);
    if (rc == BOXLITE_ETIMEOUT && !g_serve->stopping)
        return 0; /* the exit is a frame away: the fd says when */
    finish(x, rc, &res);
    return 1;
}

/* Drop x from the list (only this thread removes). */
static void pump_remove(struct sexec *x)
{
    pthread_mutex_lock(&pump_mu);
    for (struct sexec **pp = &pump_head; *pp != NULL; pp = &(*pp)->pnext)
        if (*pp == x) {
            *pp = x->pnext;
            break;
        }
    pthread_mutex_unlock(&pump_mu);
    free(x->held);
    x->held = NULL;
    __atomic_sub_fetch(&pumps_running, 1, __ATOMIC_RELAXED);
    sexec_put(x);
}

static void *pump_main(void *arg)
{
    unsigned char *buf = malloc(PUMP_CHUNK);
    struct pollfd *p = NULL;
    struct sexec **xs = NULL;
    size_t cap = 0;
    double last_tick = now_monotonic();

    (void)arg;
    while (buf != NULL) {
        size_t n = 0;
        int tick;
        pthread_mutex_lock(&pump_mu);
        for (struct sexec *x = pump_head; x != NULL; x = x->pnext)
            n++;
        if (n + 1 > cap) {
            size_t nc = (n + 1) * 2;
            struct pollfd *np = realloc(p, nc * sizeof(*p));
            struct sexec **nx = np != NULL ? realloc(xs, nc * sizeof(*xs)) : NULL;
            p = np != NULL ? np : p;
            xs = nx != NULL ? nx : xs;
            cap = np != NULL && nx != NULL ? nc : cap;
        }
        n = 0;
        for (struct sexec *x = pump_head; x != NULL && n + 1 < cap; x = x->pnext) {
            xs[n] = x;
            int off = x->held != NULL || __atomic_load_n(&x->stdin_wait, __ATOMIC_ACQUIRE);
            p[n] = (struct pollfd){off ? -1 : x->efd, POLLIN, 0};
            n++;
        }
        pthread_mutex_unlock(&pump_mu);
        if (g_serve->stopping && n == 0)
            break;
        if (p == NULL) { /* no memory for the poll set yet: try again shortly */
            usleep(100 * 1000);
            continue;
        }
        p[n] = (struct pollfd){pump_wake_fd, POLLIN, 0};
        if (poll(p, n + 1, 1000) < 0 && errno != EINTR)
            continue;
        if (p[n].revents & POLLIN) {
            uint64_t v;
            (void)!read(pump_wake_fd, &v, sizeof(v));
        }
        /* once a second every execution is moved on: host deadlines, orphans, held frames */
        tick = now_monotonic() - last_tick >= 1 || (p[n].revents & POLLIN) || g_serve->stopping;
        if (now_monotonic() - last_tick >= 1)
            last_tick = now_monotonic();
        for (size_t i = 0; i < n; i++) {
            struct sexec *x = xs[i];
            if (!(p[i].revents & (POLLIN | POLLERR | POLLHUP)) && !tick)
                continue;
            if (tick)
                reap_if_orphaned(x);
            if (pump_one(x, buf, (p[i].revents & POLLIN) != 0))
                pump_remove(x);
        }
    }
    free(buf);
    free(p);
    free(xs);
    return NULL;
}

/* Give x (with the reference the caller hands over) to the pump thread, starting it first. */
static int pump_add(struct sexec *x)
{
    int rc = 0;

    pthread_mutex_lock(&pump_mu);
    if (!pump_started) {
        pump_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        rc = pump_wake_fd < 0 || pthread_create(&pump_th, NULL, pump_main, NULL) != 0 ? -1 : 0;
        pump_started = rc == 0;
    }
    if (rc == 0 && boxlite_exec_fd(&x->efd, x->ex) != 0)
        rc = -1;
    if (rc == 0) {
        x->pnext = pump_head;
        pump_head = x;
        __atomic_add_fetch(&pumps_running, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&pump_mu);
    if (rc == 0)
        exec_pump_wake();
    return rc;
}

/* ---- requests ----------------------------------------------------------------------------- */

static struct sexec *sexec_new(struct sbox *b, boxlite_exec *ex, int tty)
{
    struct sexec *x = calloc(1, sizeof(*x));
    unsigned char rnd[8] = {0};
    FILE *f = fopen("/dev/urandom", "re");

    if (x == NULL || f == NULL || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
        if (f != NULL)
            fclose(f);
        free(x);
        return NULL;
    }
    fclose(f);
    snprintf(x->id, sizeof(x->id), "exec-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    x->box = b;
    x->ex = ex;
    x->tty = tty;
    x->started_at = time(NULL);
    x->started_mono = now_monotonic();
    x->unattached_since = x->started_mono;
    x->refs = 2; /* the registry's and the pump's */
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->dmu, NULL);
    pthread_cond_init(&x->dcond, NULL);
    return x;
}

enum MHD_Result h_exec_create(struct req *r)
{
    struct dec_exec d = {0};
    struct dec_err e;
    char loc[512];
    struct sbox *b = NULL;
    boxlite_exec *ex = NULL;
    struct sexec *x = NULL;
    int rc;

    if (dec_exec_create(&d, r->json, &e) != 0) {
        reply_dec(r, &e);
        goto out;
    }
    if (running_for(r->principal) >= g_serve->cfg->max_execs_per_key) {
        reply_error(r, 429, "ResourceExhaustedError", "resource_exhausted",
                    "%u executions of this key are running", g_serve->cfg->max_execs_per_key);
        goto out;
    }
    if (make_room() != 0) {
        reply_error(r, 429, "ResourceExhaustedError", "resource_exhausted",
                    "%u executions are running", g_serve->cfg->max_executions);
        goto out;
    }
    b = sbox_get(r, r->params[0]);
    if (b == NULL)
        goto out;
    rc = sbox_ensure_running(b);
    if (rc != 0) {
        reply_boxlite(r, rc, "start box");
        goto out;
    }
    sbox_lock(b);
    rc = boxlite_exec_start(&ex, b->box, &d.o);
    sbox_unlock(b);
    __atomic_add_fetch(&g_serve->counters.execs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->execs, 1, __ATOMIC_RELAXED);
    if (rc != 0) {
        __atomic_add_fetch(&g_serve->counters.exec_errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->exec_errors, 1, __ATOMIC_RELAXED);
        reply_boxlite(r, rc, "exec");
        goto out;
    }
    x = sexec_new(b, ex, d.o.tty);
    if (x == NULL) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory");
        goto out;
    }
    snprintf(x->principal, sizeof(x->principal), "%s", r->principal);
    ex = NULL;
    b = NULL; /* the execution holds the box's reference now */
    pthread_mutex_lock(&exec_mu);
    x->next = exec_head;
    exec_head = x;
    exec_count++;
    pthread_mutex_unlock(&exec_mu);
    if (pump_add(x) != 0) {
        boxlite_exec_signal(x->ex, SIGKILL);
        evict(x);
        sexec_put(x);
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "no pump");
        goto out;
    }
    snprintf(loc, sizeof(loc), "%s/boxes/%s/executions/%s", serve_base(), x->box->id, x->id);
    reply_json_location(r, 201, json_pack("{s:s}", "execution_id", x->id), loc);
out:
    boxlite_exec_free(ex);
    sbox_put(b);
    dec_exec_free(&d);
    return MHD_YES;
}

/* The execution named by the path (box, exec), with a reference; NULL and 404 queued. */
struct sexec *exec_from_path(struct req *r)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    struct sexec *x = NULL;

    if (b == NULL)
        return NULL;
    x = sexec_find(b->id, r->params[1]);
    sbox_put(b);
    if (x == NULL)
        reply_error(r, 404, "NotFoundError", "not_found", "execution not found: %s", r->params[1]);
    return x;
}

enum MHD_Result h_exec_get(struct req *r)
{
    struct sexec *x = exec_from_path(r);
    char started[32];
    const char *status = "running";
    json_t *o;

    if (x == NULL)
        return MHD_YES;
    format_time(started, x->started_at);
    pthread_mutex_lock(&x->mu);
    if (x->finished)
        status = x->killed || x->res.signal == SIGKILL
                     ? "killed"
                     : (x->res.timed_out ? "timed_out" : "completed");
    o = json_pack("{s:s, s:s, s:s}", "execution_id", x->id, "status", status, "started_at",
                  started);
    json_object_set_new(o, "exit_code",
                        x->finished && x->wait_rc == 0
                            ? json_integer(sexec_exit_code(x->wait_rc, &x->res))
                            : json_null());
    json_object_set_new(o, "duration_ms",
                        x->finished ? json_integer((json_int_t)x->duration_ms) : json_null());
    json_object_set_new(o, "error_message",
                        x->finished && x->res.message[0] ? json_string(x->res.message)
                        : x->finished && x->wait_rc != 0 ? json_string("the process was lost")
                                                         : json_null());
    pthread_mutex_unlock(&x->mu);
    sexec_put(x);
    return reply_json(r, 200, o);
}

enum MHD_Result h_exec_delete(struct req *r)
{
    struct sexec *x = exec_from_path(r);

    if (x == NULL)
        return MHD_YES;
    pthread_mutex_lock(&x->mu);
    x->killed = !x->finished;
    pthread_mutex_unlock(&x->mu);
    boxlite_exec_signal(x->ex, SIGKILL);
    evict(x);
    sexec_put(x);
    return reply_empty(r, 204);
}

enum MHD_Result h_exec_signal(struct req *r)
{
    struct dec_err e;
    struct sexec *x;
    int sig, rc, finished;

    if (dec_exec_signal(r->json, &sig, &e) != 0)
        return reply_dec(r, &e);
    x = exec_from_path(r);
    if (x == NULL)
        return MHD_YES;
    finished = __atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
    rc = finished ? BOXLITE_ESTATE : boxlite_exec_signal(x->ex, sig);
    sexec_put(x);
    if (finished)
        return reply_error(r, 409, "InvalidStateError", "invalid_state",
                           "the execution has finished");
    return rc == 0 ? reply_empty(r, 204) : reply_boxlite(r, rc, "signal");
}

enum MHD_Result h_exec_resize(struct req *r)
{
    struct dec_err e;
    unsigned cols, rows;
    struct sexec *x;
    int rc, tty;

    if (dec_exec_resize(r->json, &cols, &rows, &e) != 0)
        return reply_dec(r, &e);
    x = exec_from_path(r);
    if (x == NULL)
        return MHD_YES;
    tty = x->tty;
    rc = tty ? boxlite_exec_resize(x->ex, rows, cols) : BOXLITE_ESTATE;
    sexec_put(x);
    if (!tty)
        return reply_error(r, 409, "InvalidStateError", "invalid_state",
                           "the execution has no tty");
    return rc == 0 ? reply_empty(r, 204) : reply_boxlite(r, rc, "resize");
}

unsigned execs_running(void)
{
    unsigned n = 0;

    pthread_mutex_lock(&exec_mu);
    for (struct sexec *x = exec_head; x != NULL; x = x->next)
        n += !__atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&exec_mu);
    return n;
}

void execs_shutdown(void)
{
    /* attachments see g_serve->stopping within a second and close; the pump finishes every
     * execution and ends */
    exec_pump_wake();
    for (int i = 0;
         i < 100 && (attach_count() > 0 || __atomic_load_n(&pumps_running, __ATOMIC_RELAXED) > 0);
         i++)
        usleep(100 * 1000);
    if (attach_count() == 0)
        attach_loop_stop();
    pthread_mutex_lock(&pump_mu);
    if (pump_started && __atomic_load_n(&pumps_running, __ATOMIC_RELAXED) == 0) {
        pthread_mutex_unlock(&pump_mu);
        pthread_join(pump_th, NULL);
        pthread_mutex_lock(&pump_mu);
        pump_started = 0;
    }
    pthread_mutex_unlock(&pump_mu);
    pthread_mutex_lock(&exec_mu);
    while (exec_head != NULL) {
        struct sexec *x = exec_head;
        exec_head = x->next;
        exec_count--;
        pthread_mutex_unlock(&exec_mu);
        sexec_put(x);
        pthread_mutex_lock(&exec_mu);
    }
    pthread_mutex_unlock(&exec_mu);
}
