/* conn.c — the host end of one agent channel: framed, locked writes, and a reader thread
 * that splits incoming frames and hands each to the exec that owns its stream. */
#include "conn.h"
#include "error.h"
#include "frameio.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void *reader_main(void *arg)
{
    struct bl_conn *c = arg;
    struct bl_frame_reader in = {0};
    const char *reason = "the agent closed the channel (the VM stopped)";
    struct bl_frame f;
    enum bl_fio got;
    int n = 0;

    /* c->fd blocks: each fill reads something or says the channel ended */
    while ((got = bl_frame_fill(&in, c->fd, 0)) >= BL_FIO_AGAIN) {
        pthread_mutex_lock(&c->mu);
        c->last_rx_ms = bl_now_ms();
        while ((n = bl_frame_next(&in, &f)) > 0)
            if (bl_frame_check(&f) == 0)
                dispatch_locked(c, &f);
        c->gen++;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->mu);
        if (n < 0)
            break;
    }
    if (n < 0)
        reason = "the agent sent a frame over the size limit";
    else if (got == BL_FIO_ERROR && errno == ENOMEM)
        reason = "out of memory";
    pthread_mutex_lock(&c->mu);
    bl_conn_mark_closed_locked(c, reason);
    pthread_mutex_unlock(&c->mu);
    bl_frame_reader_free(&in);
    return NULL;
}

int bl_conn_open(struct bl_conn **out, int fd, const char *label)
{
    struct bl_conn *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int err;

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
    err = pthread_create(&c->reader, NULL, reader_main, c);
    if (err != 0) {
        bl_conn_unref(c);
        return bl_err_errno(BOXLITE_ERROR, err, "start the reader thread");
    }
    c->reader_started = 1;
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
    if (c->reader_started) {
        shutdown(c->fd, SHUT_RDWR);
        pthread_join(c->reader, NULL);
    }
    close(c->fd);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->wmu);
    free(c);
}
