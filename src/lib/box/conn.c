/* conn.c — the host end of one agent channel: framed, locked writes, and the reader (one
 * epoll thread per process for every channel) that splits incoming frames and hands each to
 * the exec that owns its stream. */
#include "conn.h"
#include "error.h"
#include "frameio.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SMALL_FRAME     4096  /* frames up to this size go out in one write */
#define SEND_TIMEOUT_MS 30000 /* a monitor that takes no bytes this long is given up on */

void bl_deadline_ts(struct timespec *ts, int64_t deadline_ms)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000);
    ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

void bl_conn_mark_closed_locked(struct bl_conn *c, const char *reason)
{
    if (!c->closed) {
        c->closed = 1;
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
        for (struct boxlite_exec *ex = c->execs; ex; ex = bl_exec_next(ex))
            bl_exec_on_close(ex);
    }
    c->gen++;
    pthread_cond_broadcast(&c->cond);
}

static void dispatch_locked(struct bl_conn *c, const struct bl_frame *f)
{
    uint32_t v = 0;
    char *msg = NULL;

    if (f->stream == 0) {
        if (f->type == BL_F_HELLO && bl_u32_str_decode(f->payload, f->len, &v, &msg) == 0) {
            c->hello = 1;
            c->agent_version = v;
        } else if (f->type == BL_F_PONG) {
            c->pongs++;
        } else if (f->type == BL_F_MONITOR_REPLY &&
                   bl_u32_str_decode(f->payload, f->len, &v, &msg) == 0) {
            c->mon_status = v;
            snprintf(c->mon_msg, sizeof(c->mon_msg), "%s", msg);
            c->mon_replies++;
        }
        free(msg);
        return;
    }
    for (struct boxlite_exec *ex = c->execs; ex; ex = bl_exec_next(ex)) {
        if (bl_exec_stream(ex) == f->stream) {
            bl_exec_on_frame(ex, f);
            return;
        }
    }
    /* A frame for a stream nobody holds any more (a freed exec): dropped. */
}

/* ---- the reader: ONE thread per process reads every channel ------------------------------
 *
 * An epoll loop (level-triggered, EPOLLIN) started with the first channel and ending with the
 * last (like the tunnel relay, which it does not share: a tunnel's pump may block in
 * bl_conn_send for up to SEND_TIMEOUT_MS, which would stall every box's reading). Each turn
 * takes one read (bl_frame_fill, the fd non-blocking) per ready channel, so that a chatty box
 * cannot starve the others, and dispatches the whole frames under that channel's mu.
 *
 * Freeing a channel: the epoll registration carries an id, never a pointer (an event already
 * taken by epoll_wait may name a channel that is gone); the thread finds the channel by id in
 * rd.list and marks it rd.busy while it reads and dispatches. bl_conn_unref's last hold takes
 * the channel off the list and out of epoll, then waits until it is not busy.
 * Lock order: rd.mu and a channel's mu are never held together; the thread takes rd.mu to
 * claim, drops it, takes c->mu to dispatch, drops it, then rd.mu to release.
 * fork(): the child gets no thread; pthread_atfork resets this state in the child so that a
 * channel opened there starts its own reader (channels inherited from the parent stay
 * unread there, as they were with a thread per channel). */

#define READER_NAP_MS 1000 /* the longest epoll wait: the thread ends soon after the last */

static struct {
    pthread_mutex_t mu;  /* guards everything here and each channel's r* fields */
    pthread_cond_t idle; /* broadcast when busy is cleared */
    int ep;
    pthread_t th;
    int running;  /* the thread runs and will look at count again before it ends */
    int joinable; /* th was started and not joined */
    int count;    /* channels registered */
    unsigned epoch;
    uint64_t next_id;
    struct bl_conn *list;
    struct bl_conn *busy; /* the channel being read and dispatched now */
} rd = {.mu = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER, .ep = -1};

static pthread_once_t rd_once = PTHREAD_ONCE_INIT;

static void rd_prepare(void)
{
    pthread_mutex_lock(&rd.mu);
}

static void rd_parent(void)
{
    pthread_mutex_unlock(&rd.mu);
}

static void rd_child(void)
{
    if (rd.ep >= 0)
        close(rd.ep); /* the parent's epoll instance: not ours to add to */
    rd.ep = -1;
    rd.running = rd.joinable = rd.count = 0;
    rd.list = rd.busy = NULL;
    rd.epoch++;
    pthread_mutex_init(&rd.mu, NULL);
    pthread_cond_init(&rd.idle, NULL);
}

static void rd_init(void)
{
    (void)pthread_atfork(rd_prepare, rd_parent, rd_child);
}

/* Under rd.mu: take c off the list and out of epoll (if this process's reader has it). */
static void rd_unlink_locked(struct bl_conn *c)
{
    if (!c->rlisted || c->repoch != rd.epoch)
        return;
    for (struct bl_conn **pp = &rd.list; *pp; pp = &(*pp)->rnext)
        if (*pp == c) {
            *pp = c->rnext;
            break;
        }
    (void)epoll_ctl(rd.ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->rlisted = 0;
    rd.count--;
}

/* The registered channel with this id, marked busy; NULL when it is gone. */
static struct bl_conn *rd_claim(uint64_t id)
{
    struct bl_conn *c;

    pthread_mutex_lock(&rd.mu);
    for (c = rd.list; c && c->rid != id; c = c->rnext)
        ;
    rd.busy = c;
    pthread_mutex_unlock(&rd.mu);
    return c;
}

static void rd_release(struct bl_conn *c, int over)
{
    pthread_mutex_lock(&rd.mu);
    if (over)
        rd_unlink_locked(c);
    rd.busy = NULL;
    pthread_cond_broadcast(&rd.idle);
    pthread_mutex_unlock(&rd.mu);
}

/* One read from c and the frames it completes; 1 when the channel ended. */
static int read_turn(struct bl_conn *c)
{
    const char *reason = "the agent closed the channel (the VM stopped)";
    enum bl_fio got = bl_frame_fill(&c->in, c->fd, 0);
    int err = errno, n = 0, over;
    struct bl_frame f;

    pthread_mutex_lock(&c->mu);
    if (got == BL_FIO_READ) {
        c->last_rx_ms = bl_now_ms();
        while ((n = bl_frame_next(&c->in, &f)) > 0)
            if (bl_frame_check(&f) == 0)
                dispatch_locked(c, &f);
        c->gen++;
        pthread_cond_broadcast(&c->cond);
    }
    over = n < 0 || got < BL_FIO_AGAIN;
    if (n < 0)
        reason = "the agent sent a frame over the size limit";
    else if (got == BL_FIO_ERROR && err == ENOMEM)
        reason = "out of memory";
    if (over)
        bl_conn_mark_closed_locked(c, reason);
    pthread_mutex_unlock(&c->mu);
    if (over)
        bl_frame_reader_free(&c->in);
    return over;
}

/* Whether the thread goes on: it ends (under rd.mu, so an opener restarts it) with no channel. */
static int reader_more(void)
{
    int more;

    pthread_mutex_lock(&rd.mu);
    more = rd.count > 0;
    if (!more)
        rd.running = 0;
    pthread_mutex_unlock(&rd.mu);
    return more;
}

static void *reader_main(void *arg)
{
    struct epoll_event evs[64];

    (void)arg;
    do {
        int n = epoll_wait(rd.ep, evs, 64, READER_NAP_MS);
        for (int i = 0; i < n; i++) {
            struct bl_conn *c = rd_claim(evs[i].data.u64);
            if (c)
                rd_release(c, read_turn(c));
        }
    } while (reader_more());
    return NULL;
}

/* Hand c to the reader thread, starting it if none runs. */
static int reader_add(struct bl_conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int rc = 0, err;

    (void)pthread_once(&rd_once, rd_init);
    pthread_mutex_lock(&rd.mu);
    if (rd.ep < 0 && (rd.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "epoll_create1");
    if (rc == 0 && !rd.running) {
        if (rd.joinable)
            pthread_join(rd.th, NULL); /* the last one, ended or ending (it holds nothing) */
        err = pthread_create(&rd.th, NULL, reader_main, NULL);
        rd.running = rd.joinable = err == 0;
        if (err != 0)
            rc = bl_err_errno(BOXLITE_ERROR, err, "start the channel reader thread");
    }
    c->rid = ev.data.u64 = ++rd.next_id;
    if (rc == 0 && epoll_ctl(rd.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "epoll_ctl");
    if (rc == 0) {
        c->rnext = rd.list;
        rd.list = c;
        rd.count++;
        c->rlisted = 1;
        c->repoch = rd.epoch;
    }
    pthread_mutex_unlock(&rd.mu);
    return rc;
}

/* Take c from the reader and wait until no frame of it is being dispatched. Not from the
 * reader thread (dispatch never drops a hold). */
static void reader_remove(struct bl_conn *c)
{
    pthread_mutex_lock(&rd.mu);
    rd_unlink_locked(c);
    while (rd.busy == c)
        pthread_cond_wait(&rd.idle, &rd.mu);
    pthread_mutex_unlock(&rd.mu);
}

int bl_conn_open(struct bl_conn **out, int fd, const char *label)
{
    struct bl_conn *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int flags, rc;

    if (!c) {
        close(fd);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    c->fd = fd;
    c->refs = 1;
    c->next_stream = 1;
    c->last_rx_ms = bl_now_ms();
    snprintf(c->label, sizeof(c->label), "%s", label);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* reads must not block the shared thread; writes poll with a deadline either way */
    flags = fcntl(fd, F_GETFL);
    rc = flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0
             ? bl_err_errno(BOXLITE_EIO, errno, "%s: make the channel non-blocking", c->label)
             : reader_add(c);
    if (rc != 0) {
        bl_conn_unref(c);
        return rc;
    }
    *out = c;
    return 0;
}

int bl_conn_wait_hello(struct bl_conn *c, int64_t deadline_ms, int (*alive)(void *), void *ctx)
{
    int rc = 0;

    pthread_mutex_lock(&c->mu);
    while (!c->hello && !c->closed && rc == 0) {
        int64_t now = bl_now_ms();
        struct timespec ts;
        if (now >= deadline_ms) {
            rc = bl_err(BOXLITE_ETIMEOUT, "the guest agent did not answer in time");
            break;
        }
        bl_deadline_ts(&ts, now + 100 < deadline_ms ? now + 100 : deadline_ms);
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        if (!c->hello && alive) {
            pthread_mutex_unlock(&c->mu);
            rc = alive(ctx);
            pthread_mutex_lock(&c->mu);
        }
    }
    if (rc == 0 && !c->hello)
        rc = bl_err(BOXLITE_EPROTO, "%s", c->close_reason);
    if (rc == 0 && c->agent_version != BL_PROTO_VERSION)
        rc = bl_err(BOXLITE_EPROTO, "the guest agent speaks protocol %u, this library %u",
                    c->agent_version, BL_PROTO_VERSION);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* The monitor's socket is full: wait for room until deadline, else give the channel up (a
 * frame may be half sent) so that every user of it fails instead of hanging. */
static int wait_writable(struct bl_conn *c, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int64_t left = deadline - bl_now_ms();
        int r = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (r > 0)
            return 0;
        if (left <= 0 || (r < 0 && errno != EINTR))
            break;
    }
    shutdown(c->fd, SHUT_RDWR); /* the reader sees the end and marks the channel closed */
    return bl_err(BOXLITE_ETIMEOUT, "%s: the box monitor took nothing for %d s", c->label,
                  SEND_TIMEOUT_MS / 1000);
}

int bl_conn_send(struct bl_conn *c, uint8_t type, uint32_t stream, const void *payload, size_t len)
{
    uint8_t small[SMALL_FRAME];
    const void *part[2] = {small, payload};
    size_t plen[2] = {BL_FRAME_HDR, len};
    size_t off[2] = {0, 0};
    int rc = 0;

    if (len > BL_FRAME_MAX)
        return bl_err(BOXLITE_EINVAL, "request of %zu bytes is over the protocol's limit", len);
    int64_t deadline = bl_now_ms() + SEND_TIMEOUT_MS;

    bl_frame_hdr_encode(small, type, stream, (uint32_t)len);
    if (len <= sizeof(small) - BL_FRAME_HDR) { /* one write for a small frame */
        if (len > 0)
            memcpy(small + BL_FRAME_HDR, payload, len);
        plen[0] += len;
        plen[1] = 0;
    }
    pthread_mutex_lock(&c->wmu);
    for (int i = 0; i < 2 && rc == 0;) {
        int w = bl_frame_write_some(c->fd, part[i], plen[i], &off[i]);
        if (w == 1)
            i++;
        else if (w == 0)
            rc = wait_writable(c, deadline);
        else
            rc = bl_err_errno(BOXLITE_EPROTO, errno, "%s: send to the agent", c->label);
    }
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

int bl_conn_ping(struct bl_conn *c, int timeout_ms)
{
    int64_t deadline = bl_now_ms() + timeout_ms;
    uint64_t before;
    struct timespec ts;
    int rc;

    pthread_mutex_lock(&c->mu);
    before = c->pongs;
    pthread_mutex_unlock(&c->mu);
    rc = bl_conn_send(c, BL_F_PING, 0, "boxlite", 7);
    if (rc != 0)
        return rc;
    bl_deadline_ts(&ts, deadline);
    pthread_mutex_lock(&c->mu);
    while (c->pongs == before && !c->closed && bl_now_ms() < deadline)
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    if (c->pongs == before)
        rc = c->closed ? bl_err(BOXLITE_EPROTO, "%s: %s", c->label, c->close_reason)
                       : bl_err(BOXLITE_ETIMEOUT, "%s: no answer to PING", c->label);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int bl_conn_monitor(struct bl_conn *c, uint32_t op, const char *name, int timeout_ms)
{
    int64_t deadline = bl_now_ms() + timeout_ms;
    struct bl_wbuf w = {0};
    struct timespec ts;
    uint64_t before;
    int rc;

    pthread_mutex_lock(&c->mu);
    before = c->mon_replies;
    pthread_mutex_unlock(&c->mu);
    bl_wbuf_put_u32(&w, op);
    bl_wbuf_put_str(&w, name);
    rc = w.failed ? bl_err(BOXLITE_ENOMEM, "out of memory")
                  : bl_conn_send(c, BL_F_MONITOR, 0, w.data, w.len);
    bl_wbuf_free(&w);
    if (rc != 0)
        return rc;
    bl_deadline_ts(&ts, deadline);
    pthread_mutex_lock(&c->mu);
    while (c->mon_replies == before && !c->closed && bl_now_ms() < deadline)
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    if (c->mon_replies == before)
        rc = c->closed ? bl_err(BOXLITE_EPROTO, "%s: %s", c->label, c->close_reason)
                       : bl_err(BOXLITE_ETIMEOUT, "%s: the box monitor did not answer", c->label);
    else if (c->mon_status != 0)
        rc = bl_err(BOXLITE_ERROR, "%s", c->mon_msg);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void bl_conn_ref(struct bl_conn *c)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

void bl_conn_unref(struct bl_conn *c)
{
    int last;

    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    reader_remove(c);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    bl_frame_reader_free(&c->in);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->wmu);
    free(c);
}
