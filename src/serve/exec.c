/* exec.c — the Box API's executions: start (POST /exec), status, kill, signal and resize; the
 * registry of executions; and each execution's output pump, which hands output to the
 * attached WebSocket or keeps a bounded backlog (then stops reading: the process waits)
 * while nobody is attached. The library's exec calls block, so each execution has one pump
 * thread for now (issue 16 item 2 replaces it with a pollable core). */
#include "exec.h"

#include <signal.h>
#include <stdio.h>
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

static void deliver(struct sexec *x, const unsigned char *frame, size_t len)
{
    pthread_mutex_lock(&x->dmu);
    while (!g_serve->stopping) {
        struct timespec ts;
        if (x->att != NULL && attach_send_output(x->att, frame, len) == 0)
            break;
        if (x->att == NULL && x->blen + len + 4 <= EXEC_BACKLOG_MAX) {
            uint32_t l = (uint32_t)len;
            unsigned char *grown = realloc(x->backlog, x->blen + len + 4);
            if (grown == NULL)
                break;
            x->backlog = grown;
            memcpy(x->backlog + x->blen, &l, 4);
            memcpy(x->backlog + x->blen + 4, frame, len);
            x->blen += len + 4;
            break;
        }
        /* an attachment closing, or the backlog full: wait (the process waits with us) */
        reap_if_orphaned_locked(x);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&x->dcond, &x->dmu, &ts);
    }
    pthread_mutex_unlock(&x->dmu);
}

static void *pump(void *arg)
{
    struct sexec *x = arg;
    unsigned char buf[32768];
    boxlite_exec_result res;
    int rc = 0, which = 0;
    size_t n = 0;

    for (;;) {
        rc = boxlite_exec_read(x->ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf + 1,
                               sizeof(buf) - 1, &n, 1000);
        if (rc == BOXLITE_EAGAIN && !g_serve->stopping) {
            reap_if_orphaned(x);
            continue;
        }
        if (rc != 0 || n == 0)
            break;
        buf[0] = which == BOXLITE_STDERR ? 2 : 1;
        __atomic_add_fetch(&x->box->bytes_out, n, __ATOMIC_RELAXED);
        deliver(x, buf, n + 1);
    }
    boxlite_exec_result_init(&res, BOXLITE_EXEC_RESULT_VERSION);
    rc = boxlite_exec_wait_v2(&res, x->ex, g_serve->stopping || rc != 0 ? 2000 : -1);
    pthread_mutex_lock(&x->mu);
    x->wait_rc = rc;
    x->res = res;
    x->duration_ms = (now_monotonic() - x->started_mono) * 1000;
    __atomic_store_n(&x->finished, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&x->mu);
    if (rc != 0 || res.message[0] != '\0') {
        __atomic_add_fetch(&x->box->exec_errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g_serve->counters.exec_errors, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_lock(&x->dmu);
    if (x->att != NULL)
        attach_send_exit(x->att, rc == 0 ? res.exit_code : -1);
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
    __atomic_sub_fetch(&pumps_running, 1, __ATOMIC_RELAXED);
    sexec_put(x);
    return NULL;
}

/* ---- requests ----------------------------------------------------------------------------- */

static int build_argv(struct req *r, char ***out)
{
    const char *cmd = NULL;
    json_t *args = json_object_get(r->json, "args"), *a;
    size_t i, n = json_array_size(args);
    char **v;

    if (json_get_str(r, "command", &cmd) != 0)
        return -1;
    if (cmd == NULL || cmd[0] == '\0')
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "command is required"),
               -1;
    if (args != NULL && !json_is_null(args) && !json_is_array(args))
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "args must be an array of strings"),
               -1;
    v = calloc(n + 2, sizeof(*v));
    if (v == NULL)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory"), -1;
    *out = v;
    v[0] = (char *)cmd;
    json_array_foreach(args, i, a)
    {
        if (!json_is_string(a))
            return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                               "args must be an array of strings"),
                   -1;
        v[i + 1] = (char *)json_string_value(a);
    }
    return 0;
}

static int build_env(struct req *r, char ***out)
{
    json_t *env = json_object_get(r->json, "env"), *val;
    const char *k;
    size_t i = 0;
    char **v;

    *out = NULL;
    if (env == NULL || json_is_null(env))
        return 0;
    if (!json_is_object(env))
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "env must be an object of strings"),
               -1;
    v = calloc(json_object_size(env) + 1, sizeof(*v));
    if (v == NULL)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory"), -1;
    *out = v;
    json_object_foreach(env, k, val)
    {
        if (!json_is_string(val) || k[0] == '\0' || strchr(k, '=') != NULL ||
            asprintf(&v[i++], "%s=%s", k, json_string_value(val)) < 0)
            return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                               "env: names must be non-empty without '=', values strings"),
                   -1;
    }
    return 0;
}

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
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    json_t *t = r->json != NULL ? json_object_get(r->json, "timeout_seconds") : NULL;
    char **argv = NULL, **env = NULL, loc[512];
    struct sbox *b = NULL;
    boxlite_exec *ex = NULL;
    struct sexec *x = NULL;
    pthread_t th;
    int rc;

    if (r->json == NULL) {
        reply_error(r, 400, "InvalidArgumentError", "invalid_argument", "a JSON body is required");
        goto out;
    }
    if (build_argv(r, &argv) != 0 || build_env(r, &env) != 0 ||
        json_get_str(r, "working_dir", &o.cwd) != 0 || json_get_bool(r, "tty", &o.tty) != 0)
        goto out;
    if (t != NULL &&
        (!json_is_number(t) || json_number_value(t) < 0.1 || json_number_value(t) > 86400)) {
        reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                    "timeout_seconds must be a number from 0.1 to 86400");
        goto out;
    }
    if (t != NULL)
        o.timeout_ms = (unsigned)(json_number_value(t) * 1000);
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
    o.argv = (const char *const *)argv;
    o.env = (const char *const *)env;
    sbox_lock(b);
    rc = boxlite_exec_start(&ex, b->box, &o);
    sbox_unlock(b);
    __atomic_add_fetch(&g_serve->counters.execs, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->execs, 1, __ATOMIC_RELAXED);
    if (rc != 0) {
        __atomic_add_fetch(&g_serve->counters.exec_errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->exec_errors, 1, __ATOMIC_RELAXED);
        reply_boxlite(r, rc, "exec");
        goto out;
    }
    x = sexec_new(b, ex, o.tty);
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
    __atomic_add_fetch(&pumps_running, 1, __ATOMIC_RELAXED);
    if (pthread_create(&th, NULL, pump, x) != 0) {
        __atomic_sub_fetch(&pumps_running, 1, __ATOMIC_RELAXED);
        boxlite_exec_signal(x->ex, SIGKILL);
        evict(x);
        sexec_put(x);
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "no thread");
        goto out;
    }
    pthread_detach(th);
    snprintf(loc, sizeof(loc), "%s/boxes/%s/executions/%s", serve_base(), x->box->id, x->id);
    reply_json_location(r, 201, json_pack("{s:s}", "execution_id", x->id), loc);
out:
    boxlite_exec_free(ex);
    sbox_put(b);
    if (argv != NULL)
        free(argv); /* borrowed strings */
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        free(env[i]);
    free(env);
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
                        x->finished && x->wait_rc == 0 ? json_integer(x->res.exit_code)
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

/* The signals the spec lets a client send (SIGKILL goes through DELETE). */
int signal_allowed(int sig)
{
    return sig == SIGHUP || sig == SIGINT || sig == SIGQUIT || sig == SIGABRT || sig == SIGUSR1 ||
           sig == SIGUSR2 || sig == SIGTERM || sig == SIGWINCH;
}

enum MHD_Result h_exec_signal(struct req *r)
{
    json_int_t sig = 0;
    struct sexec *x;
    int rc, finished;

    if (r->json == NULL || json_object_get(r->json, "signal") == NULL ||
        json_get_int(r, "signal", 1, 64, &sig) != 0)
        return r->replied ? MHD_YES
                          : reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                                        "signal is required");
    if (!signal_allowed((int)sig))
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "signal %d is not allowed (HUP INT QUIT ABRT USR1 USR2 TERM WINCH; "
                           "use DELETE to kill)",
                           (int)sig);
    x = exec_from_path(r);
    if (x == NULL)
        return MHD_YES;
    finished = __atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
    rc = finished ? BOXLITE_ESTATE : boxlite_exec_signal(x->ex, (int)sig);
    sexec_put(x);
    if (finished)
        return reply_error(r, 409, "InvalidStateError", "invalid_state",
                           "the execution has finished");
    return rc == 0 ? reply_empty(r, 204) : reply_boxlite(r, rc, "signal");
}

enum MHD_Result h_exec_resize(struct req *r)
{
    json_int_t cols = 0, rows = 0;
    struct sexec *x;
    int rc, tty;

    if (r->json == NULL || json_object_get(r->json, "cols") == NULL ||
        json_object_get(r->json, "rows") == NULL || json_get_int(r, "cols", 1, 65535, &cols) ||
        json_get_int(r, "rows", 1, 65535, &rows))
        return r->replied ? MHD_YES
                          : reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                                        "cols and rows are required");
    x = exec_from_path(r);
    if (x == NULL)
        return MHD_YES;
    tty = x->tty;
    rc = tty ? boxlite_exec_resize(x->ex, (unsigned)rows, (unsigned)cols) : BOXLITE_ESTATE;
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
    /* attachments see g_serve->stopping within a second and close; pumps end their reads */
    for (int i = 0;
         i < 100 && (attach_count() > 0 || __atomic_load_n(&pumps_running, __ATOMIC_RELAXED) > 0);
         i++)
        usleep(100 * 1000);
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
