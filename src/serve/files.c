/* files.c — PUT/GET /boxes/{id}/files: tar streams between the HTTP body and the running box,
 * through a spool file, never held whole in memory; and the spool's accounting (spool_*),
 * which imports share. A worker never waits on a client: an upload's body goes into the spool
 * at the client's pace on its own connection's thread and only a complete body is queued; a
 * download's tar goes from the worker through a pipe into the spool (the connection's thread
 * copies it at disk speed), and the client reads the spool at its own pace with the worker
 * already free. The copies block, so they run on a fixed pool of XFER_WORKERS threads
 * (started with the first transfer, kept for the process) fed by a queue of at most
 * XFER_QUEUE waiting transfers; one more than that is refused with 503 ResourceExhaustedError
 * at once, as is a spool that would pass --max-spool bytes in use server-wide. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XFER_WORKERS 4
#define XFER_QUEUE   16
#define SPOOL_CHUNK  ((size_t)64 << 10)

/* ---- the spool ---------------------------------------------------------------------------- */

static uint64_t spool_used; /* bytes reserved by all spools (__atomic) */

int spool_reserve(uint64_t n)
{
    uint64_t cap = g_serve->cfg->max_spool_bytes;
    uint64_t cur = __atomic_load_n(&spool_used, __ATOMIC_RELAXED);

    do {
        if (n > cap || cur > cap - n)
            return -1;
    } while (!__atomic_compare_exchange_n(&spool_used, &cur, cur + n, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return 0;
}

void spool_release(uint64_t n)
{
    __atomic_sub_fetch(&spool_used, n, __ATOMIC_RELAXED);
}

int spool_open(void)
{
    char path[4200];
    int fd = open(g_serve->tmp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    snprintf(path, sizeof(path), "%s/spool-XXXXXX", g_serve->tmp_dir); /* no O_TMPFILE */
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* ---- the pool ----------------------------------------------------------------------------- */

/* One transfer, shared by the request and its worker (two references). */
struct xfer {
    struct xfer *next; /* in the queue */
    int refs;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, rc;
    char err[512];
    struct sbox *b;
    char *path;
    int fd; /* the worker's: the spool (upload) or a pipe's write end (download); it closes it */
    int out;
    boxlite_copy_options opts;
    int spool;         /* the request's spool (-1 once handed to the worker) */
    uint64_t reserved; /* spool bytes reserved by the request */
};

static void xfer_put(struct xfer *t)
{
    int last;

    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    last = --t->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (!last)
        return;
    if (t->spool >= 0)
        close(t->spool);
    spool_release(t->reserved);
    sbox_put(t->b);
    free(t->path);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    free(t);
}

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct xfer *head, *tail;
    int queued, started;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

/* Run one transfer on a worker. */
static void xfer_run(struct xfer *t)
{
    boxlite_box *h = NULL; /* its own handle: a long copy must not hold the shared one */
    int rc = boxlite_box_get(&h, g_serve->rt, t->b->id);

    if (rc == 0)
        rc = t->out ? boxlite_box_copy_out_tar(h, t->path, t->fd, &t->opts)
                    : boxlite_box_copy_in_tar(h, t->fd, t->path, &t->opts);
    boxlite_box_free(h);

    pthread_mutex_lock(&t->mu);
    t->rc = rc;
    snprintf(t->err, sizeof(t->err), "%s", rc != 0 ? boxlite_error_last() : "");
    t->done = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    close(t->fd); /* after done: the reader's end of file means the result is there */
    xfer_put(t);
}

static void *xfer_worker(void *arg)
{
    (void)arg;
    for (;;) {
        struct xfer *t;
        pthread_mutex_lock(&pool.mu);
        while (pool.head == NULL)
            pthread_cond_wait(&pool.cond, &pool.mu);
        t = pool.head;
        pool.head = t->next;
        if (pool.head == NULL)
            pool.tail = NULL;
        pool.queued--;
        pthread_mutex_unlock(&pool.mu);
        xfer_run(t);
    }
    return NULL;
}

/* Queue t for the pool (starting the workers the first time), handing it fd and a reference.
 * 0, or a 503 queued and -1 when the queue is full or no worker could start (t untouched). */
static int xfer_enqueue(struct req *r, struct xfer *t, int fd)
{
    int rc = 0;

    pthread_mutex_lock(&pool.mu);
    for (; pool.started < XFER_WORKERS; pool.started++) {
        pthread_t th;
        if (pthread_create(&th, NULL, xfer_worker, NULL) != 0)
            break;
        pthread_detach(th);
    }
    if (pool.started == 0 || pool.queued >= XFER_QUEUE) {
        rc = -1;
    } else {
        t->fd = fd;
        t->refs++;
        t->next = NULL;
        if (pool.tail)
            pool.tail->next = t;
        else
            pool.head = t;
        pool.tail = t;
        pool.queued++;
        pthread_cond_signal(&pool.cond);
    }
    pthread_mutex_unlock(&pool.mu);
    if (rc != 0)
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted",
                    "%d file transfers run and %d wait; try again later", XFER_WORKERS, XFER_QUEUE);
    return rc;
}

static enum MHD_Result reply_spool_full(struct req *r)
{
    return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted",
                       "the server's transfer spool (%llu bytes) is full; try again later",
                       (unsigned long long)g_serve->cfg->max_spool_bytes);
}

/* Reserve n more spool bytes for t; a 503 queued and -1 when the spool is full. */
static int xfer_reserve(struct req *r, struct xfer *t, uint64_t n)
{
    if (spool_reserve(n) != 0) {
        reply_spool_full(r);
        return -1;
    }
    t->reserved += n;
    return 0;
}

/* Check the box and path and open the spool. NULL with a reply queued. */
static struct xfer *xfer_start(struct req *r, int out)
{
    const char *path = req_query(r, "path");
    int flag = req_query_bool(r, out ? "follow_symlinks" : "overwrite", out ? 0 : 1);
    struct xfer *t = NULL;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    int rc;

    if (flag < 0)
        return NULL;
    if (path == NULL || path[0] != '/') {
        reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                    "path must be an absolute path inside the box");
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->path = strdup(path)) == NULL) {
        free(t);
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory");
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->refs = 1;
    t->out = out;
    t->fd = -1;
    t->opts = (boxlite_copy_options)BOXLITE_COPY_OPTIONS_INIT;
    if (out)
        t->opts.follow_symlinks = flag;
    else
        t->opts.overwrite = flag;
    t->spool = spool_open();
    if (t->spool < 0) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "spool: %s",
                    strerror(errno));
        goto fail;
    }
    t->b = sbox_get(r, r->params[0]);
    if (t->b == NULL)
        goto fail;
    sbox_lock(t->b);
    rc = boxlite_box_get_info(&info, t->b->box);
    sbox_unlock(t->b);
    if (rc != 0 || strcmp(info.state, "running") != 0) {
        reply_error(r, 409, "InvalidStateError", "invalid_state", "box %s is not running",
                    t->b->id);
        goto fail;
    }
    return t;
fail:
    xfer_put(t);
    return NULL;
}

static int wait_done(struct xfer *t)
{
    int rc;

    pthread_mutex_lock(&t->mu);
    while (!t->done)
        pthread_cond_wait(&t->cond, &t->mu);
    rc = t->rc;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static enum MHD_Result reply_xfer_error(struct req *r, struct xfer *t, const char *what)
{
    if (t->rc == BOXLITE_ENOTFOUND)
        return reply_error(r, 404, "NotFoundError", "not_found", "%s %s: %s", what, t->path,
                           t->err);
    if (t->rc == BOXLITE_ESTATE)
        return reply_error(r, 409, "InvalidStateError", "invalid_state", "%s: %s", what, t->err);
    return reply_error(r, 400, "InvalidArgumentError", "invalid_argument", "%s %s: %s", what,
                       t->path, t->err);
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- upload: the body into the spool, then a worker copies the spool into the box ---------- */

static void upload_cleanup(struct req *r)
{
    xfer_put(r->stream_state); /* a body that never ended: its spool closes, nothing queued */
    r->stream_state = NULL;
}

static int upload_begin(struct req *r)
{
    const char *cl = req_header(r, "Content-Length");
    struct xfer *t = xfer_start(r, 0);

    if (t == NULL)
        return -1;
    r->stream_state = t;
    r->cleanup = upload_cleanup;
    /* the whole declared body up front, so a transfer the spool cannot hold fails at once */
    if (cl != NULL && xfer_reserve(r, t, strtoull(cl, NULL, 10)) != 0)
        return -1;
    return 0;
}

static int upload_data(struct req *r, const char *buf, size_t n)
{
    struct xfer *t = r->stream_state;

    if (r->body_bytes > t->reserved && xfer_reserve(r, t, r->body_bytes - t->reserved) != 0)
        return -1;
    if (write_all(t->spool, buf, n) != 0) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "spool: %s",
                    strerror(errno));
        return -1;
    }
    return 0;
}

static enum MHD_Result upload_end(struct req *r)
{
    struct xfer *t = r->stream_state;

    if (lseek(t->spool, 0, SEEK_SET) != 0)
        return reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "spool: %s",
                           strerror(errno));
    if (xfer_enqueue(r, t, t->spool) != 0)
        return MHD_YES;
    t->spool = -1; /* the worker's now */
    if (wait_done(t) != 0)
        return reply_xfer_error(r, t, "upload to");
    return reply_empty(r, 204);
}

const struct body_stream files_upload_stream = {upload_begin, upload_data, upload_end};

/* ---- download: a worker writes the tar into the spool, the client reads it at its pace ----- */

static ssize_t spool_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct xfer *t = cls;
    ssize_t n;

    do
        n = pread(t->spool, buf, max, (off_t)pos);
    while (n < 0 && errno == EINTR);
    return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void spool_done(void *cls)
{
    xfer_put(cls);
}

/* Copy the worker's tar from in into t's spool until its end; -1 with a reply queued when the
 * spool would pass its bound. */
static int download_fill(struct req *r, struct xfer *t, int in)
{
    char *buf = malloc(SPOOL_CHUNK);
    int rc = 0;

    if (buf == NULL) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory");
        return -1;
    }
    for (;;) {
        ssize_t n = read(in, buf, SPOOL_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (xfer_reserve(r, t, (uint64_t)n) != 0) {
            rc = -1;
            break;
        }
        if (write_all(t->spool, buf, (size_t)n) != 0) {
            reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "spool: %s",
                        strerror(errno));
            rc = -1;
            break;
        }
    }
    free(buf);
    return rc;
}

enum MHD_Result h_files_download(struct req *r)
{
    struct xfer *t = xfer_start(r, 1);
    struct MHD_Response *resp = NULL;
    int p[2] = {-1, -1}, rc;

    if (t == NULL)
        return MHD_YES;
    if (pipe2(p, O_CLOEXEC) != 0) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "pipe: %s",
                    strerror(errno));
        goto out;
    }
    if (xfer_enqueue(r, t, p[1]) != 0) {
        close(p[0]);
        close(p[1]);
        goto out;
    }
    rc = download_fill(r, t, p[0]);
    close(p[0]); /* a worker cut short by the spool's bound ends with EPIPE */
    if (wait_done(t) != 0 && rc == 0)
        reply_xfer_error(r, t, "download");
    if (r->replied)
        goto out;
    resp = MHD_create_response_from_callback(t->reserved, SPOOL_CHUNK, spool_read, t, spool_done);
    if (resp == NULL) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "memory");
        goto out;
    }
    t = NULL; /* the response's now: spool_done */
    MHD_add_response_header(resp, "Content-Type", "application/x-tar");
    reply_response(r, 200, resp);
out:
    xfer_put(t);
    return MHD_YES;
}
