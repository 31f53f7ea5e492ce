/* files.c — PUT/GET /boxes/{id}/files: tar streams between the HTTP body and the running box,
 * through a pipe each, never held whole in memory. The copies themselves block, so they run
 * on a fixed pool of XFER_WORKERS threads (started with the first transfer, kept for the
 * process) fed by a queue of at most XFER_QUEUE waiting transfers; one more than that is
 * refused with 503 ResourceExhaustedError at once. A queued upload whose request has ended is
 * dropped unrun. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define XFER_WORKERS 4
#define XFER_QUEUE   16

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
    int fd; /* the worker's end of the pipe; the worker closes it */
    int out;
    boxlite_copy_options opts;
    int req_fd; /* the request's end (upload: write end) */
};

static void xfer_put(struct xfer *t)
{
    int last;

    pthread_mutex_lock(&t->mu);
    last = --t->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (!last)
        return;
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
    int rc = 0, gone;

    pthread_mutex_lock(&t->mu);
    gone = !t->out && t->refs == 1; /* an upload nobody sends any more */
    pthread_mutex_unlock(&t->mu);
    rc = gone ? BOXLITE_ESTATE : boxlite_box_get(&h, g_serve->rt, t->b->id);

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
    close(t->fd); /* after done: the reader's hang-up means the result is there */
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

/* Queue t for the pool (starting the workers the first time). 0, or -1 when the queue is
 * full or no worker could start (t untouched). */
static int xfer_enqueue(struct xfer *t)
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
    return rc;
}

/* Check the box and path, open the pipe and queue the copy. NULL with a reply queued. */
static struct xfer *xfer_start(struct req *r, int out)
{
    const char *path = req_query(r, "path");
    int flag = req_query_bool(r, out ? "follow_symlinks" : "overwrite", out ? 0 : 1);
    struct xfer *t = NULL;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    int p[2] = {-1, -1}, rc;

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
    t->req_fd = -1;
    t->opts = (boxlite_copy_options)BOXLITE_COPY_OPTIONS_INIT;
    if (out)
        t->opts.follow_symlinks = flag;
    else
        t->opts.overwrite = flag;
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
    if (pipe2(p, O_CLOEXEC) != 0) {
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted", "pipe: %s",
                    strerror(errno));
        goto fail;
    }
    t->fd = out ? p[1] : p[0];
    t->req_fd = out ? p[0] : p[1];
    t->refs = 2;
    if (xfer_enqueue(t) != 0) {
        close(p[0]);
        close(p[1]);
        t->req_fd = -1;
        t->refs = 1;
        reply_error(r, 503, "ResourceExhaustedError", "resource_exhausted",
                    "%d file transfers run and %d wait; try again later", XFER_WORKERS, XFER_QUEUE);
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

/* ---- upload ------------------------------------------------------------------------------- */

static void upload_cleanup(struct req *r)
{
    struct xfer *t = r->stream_state;

    if (t == NULL)
        return;
    if (t->req_fd >= 0)
        close(t->req_fd);
    xfer_put(t);
    r->stream_state = NULL;
}

static int upload_begin(struct req *r)
{
    struct xfer *t = xfer_start(r, 0);

    if (t == NULL)
        return -1;
    r->stream_state = t;
    r->cleanup = upload_cleanup;
    return 0;
}

static int upload_data(struct req *r, const char *buf, size_t n)
{
    struct xfer *t = r->stream_state;

    while (n > 0) {
        ssize_t w = write(t->req_fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) { /* the box stopped reading: it says why once it is done */
            close(t->req_fd);
            t->req_fd = -1;
            wait_done(t);
            reply_xfer_error(r, t, "upload to");
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static enum MHD_Result upload_end(struct req *r)
{
    struct xfer *t = r->stream_state;

    close(t->req_fd);
    t->req_fd = -1;
    if (wait_done(t) != 0)
        return reply_xfer_error(r, t, "upload to");
    return reply_empty(r, 204);
}

const struct body_stream files_upload_stream = {upload_begin, upload_data, upload_end};

/* ---- download ----------------------------------------------------------------------------- */

enum MHD_Result h_files_download(struct req *r)
{
    struct xfer *t = xfer_start(r, 1);
    struct pollfd p;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    int avail = 0, done;

    if (t == NULL)
        return MHD_YES;
    /* the status goes out before the body: wait for the first byte or the end */
    p.fd = t->req_fd;
    p.events = POLLIN;
    poll(&p, 1, 300 * 1000);
    ioctl(t->req_fd, FIONREAD, &avail);
    pthread_mutex_lock(&t->mu);
    done = t->done;
    pthread_mutex_unlock(&t->mu);
    if (avail == 0 && done && t->rc != 0) {
        ret = reply_xfer_error(r, t, "download");
        close(t->req_fd);
        xfer_put(t);
        return ret;
    }
    resp = MHD_create_response_from_pipe(t->req_fd); /* MHD closes it */
    if (resp == NULL) {
        close(t->req_fd);
        xfer_put(t);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/x-tar");
    xfer_put(t); /* the worker ends with EPIPE if the client goes away */
    return reply_response(r, 200, resp);
}
