/* test_conn.c — the host end of the agent channel (src/lib/box/conn.c) on socketpairs, no VM:
 * every channel of the process is read by one thread (40 channels cost no more threads than
 * 2), HELLO and PONG reach their channel, the peer's end and an oversized frame close the
 * channel with their reasons, 200 channels whose last hold is dropped while the peer floods
 * them are freed without a race with the reader (a build with -Db_sanitize=address reports a
 * use after free when the free does not wait it out), and a forked child reads its own. */
#include "boxlite.h"
#include "conn.h"
#include "frameio.h"
#include "../api/testproc.h"
#include "tap.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MANY   40
#define ROUNDS 200

static void send_frame(int fd, uint8_t type, const void *p, uint32_t n)
{
    uint8_t hdr[BL_FRAME_HDR];
    size_t off = 0;

    bl_frame_hdr_encode(hdr, type, 0, n);
    (void)!write(fd, hdr, sizeof hdr);
    while (n > 0 && bl_frame_write_some(fd, p, n, &off) == 0)
        usleep(100);
}

static void send_hello(int fd)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, BL_PROTO_VERSION);
    bl_wbuf_put_str(&w, "test");
    send_frame(fd, BL_F_HELLO, w.data, (uint32_t)w.len);
    bl_wbuf_free(&w);
}

/* A channel and its peer's end (blocking); the peer has said HELLO. */
static struct bl_conn *open_pair(int *peer)
{
    struct bl_conn *c = NULL;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    send_hello(sv[1]);
    if (bl_conn_open(&c, sv[0], "test") != 0) {
        close(sv[1]);
        return NULL;
    }
    *peer = sv[1];
    return c;
}

static void one_thread_for_all(void)
{
    struct bl_conn *c[MANY] = {0};
    int peer[MANY], t2 = 0, tn, ok = 1;

    for (int i = 0; i < MANY; i++) {
        c[i] = open_pair(&peer[i]);
        ok &= c[i] && bl_conn_wait_hello(c[i], bl_now_ms() + 10000, NULL, NULL) == 0;
        if (i == 1)
            t2 = threads_now();
    }
    tn = threads_now();
    printf("# threads: %d with 2 channels, %d with %d\n", t2, tn, MANY);
    CHECK(ok, "HELLO on every channel");
    CHECK(tn == t2, "40 channels cost no more threads than 2");
    for (int i = 0; i < MANY; i++)
        if (c[i])
            send_frame(peer[i], BL_F_PONG, "boxlite", 7);
    for (int i = 0; i < MANY && ok; i++) {
        int64_t until = bl_now_ms() + 10000;
        pthread_mutex_lock(&c[i]->mu);
        while (c[i]->pongs == 0 && bl_now_ms() < until) {
            struct timespec ts;
            bl_deadline_ts(&ts, bl_now_ms() + 100);
            pthread_cond_timedwait(&c[i]->cond, &c[i]->mu, &ts);
        }
        ok &= c[i]->pongs == 1;
        pthread_mutex_unlock(&c[i]->mu);
    }
    CHECK(ok, "each channel's PONG reaches that channel");
    for (int i = 0; i < MANY; i++) {
        bl_conn_unref(c[i]);
        if (c[i])
            close(peer[i]);
    }
}

/* Whether c closed within 10 s (the reader marks it). */
static int closed_soon(struct bl_conn *c)
{
    int64_t until = bl_now_ms() + 10000;
    int closed;

    pthread_mutex_lock(&c->mu);
    while (!c->closed && bl_now_ms() < until) {
        struct timespec ts;
        bl_deadline_ts(&ts, bl_now_ms() + 100);
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    }
    closed = c->closed;
    pthread_mutex_unlock(&c->mu);
    return closed;
}

/* The peer's end (or an oversized frame) closes the channel with its reason. */
static void ends(void)
{
    int peer = -1;
    struct bl_conn *c = open_pair(&peer);
    uint8_t hdr[BL_FRAME_HDR];
    int ok;

    CHECK(c && bl_conn_wait_hello(c, bl_now_ms() + 10000, NULL, NULL) == 0, "HELLO");
    if (!c)
        return;
    close(peer);
    ok = closed_soon(c) && bl_conn_ping(c, 10000) == BOXLITE_EPROTO;
    CHECK(ok && strstr(c->close_reason, "the agent closed the channel"),
          "the peer's end closes the channel");
    bl_conn_unref(c);
    c = open_pair(&peer);
    if (!c)
        return;
    bl_frame_hdr_encode(hdr, BL_F_PONG, 0, BL_FRAME_MAX + 1);
    (void)!write(peer, hdr, sizeof hdr);
    ok = closed_soon(c);
    CHECK(ok && strstr(c->close_reason, "over the size limit"), "an oversized frame closes it");
    bl_conn_unref(c);
    close(peer);
}

struct flood {
    int fd;
    atomic_int stop;
};

static void *flood_main(void *arg)
{
    struct flood *fl = arg;
    uint8_t frames[64 * (BL_FRAME_HDR + 7)];
    size_t len = 0;

    for (int i = 0; i < 64; i++) {
        bl_frame_hdr_encode(frames + len, BL_F_PONG, 0, 7);
        memcpy(frames + len + BL_FRAME_HDR, "boxlite", 7);
        len += BL_FRAME_HDR + 7;
    }
    while (!atomic_load(&fl->stop))
        if (send(fl->fd, frames, len, MSG_NOSIGNAL) < 0)
            break;
    return NULL;
}

/* Whether c has seen n PONGs within 10 s. */
static int pongs_soon(struct bl_conn *c, uint64_t n)
{
    int64_t until = bl_now_ms() + 10000;
    int ok;

    pthread_mutex_lock(&c->mu);
    while (c->pongs < n && bl_now_ms() < until) {
        struct timespec ts;
        bl_deadline_ts(&ts, bl_now_ms() + 100);
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    }
    ok = c->pongs >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

/* The last hold dropped while frames pour in: the reader may be dispatching for it. An older
 * channel then gets a frame, so that the reader looks past where the freed one was. */
static void free_while_flooded(void)
{
    int ok = 1, flooded = 0, old_peer = -1;
    struct bl_conn *old = open_pair(&old_peer);

    CHECK(old != NULL, "an older channel");
    for (int r = 0; r < ROUNDS && ok && old; r++) {
        struct flood fl = {.fd = -1};
        struct bl_conn *c = open_pair(&fl.fd);
        pthread_t th;

        ok = c != NULL && pthread_create(&th, NULL, flood_main, &fl) == 0;
        if (!ok)
            break;
        flooded = pongs_soon(c, (uint64_t)(r % 7) * 50 + 1);
        bl_conn_unref(c); /* no shutdown first: the reader is mid-stream */
        atomic_store(&fl.stop, 1);
        shutdown(fl.fd, SHUT_RDWR);
        pthread_join(th, NULL);
        close(fl.fd);
        send_frame(old_peer, BL_F_PONG, "boxlite", 7);
        ok = flooded && pongs_soon(old, (uint64_t)r + 1);
    }
    CHECK(ok, "200 channels freed while flooded (ASan: no use after free)");
    bl_conn_unref(old);
    if (old)
        close(old_peer);
}

/* A child forked while the reader runs gets its own reader for the channels it opens. */
static void after_fork(void)
{
    int peer = -1, status = -1;
    struct bl_conn *c = open_pair(&peer);
    pid_t pid;

    CHECK(c && bl_conn_wait_hello(c, bl_now_ms() + 10000, NULL, NULL) == 0, "a channel before");
    pid = fork();
    if (pid == 0) {
        int p2 = -1;
        struct bl_conn *c2 = open_pair(&p2);
        int ok = c2 && bl_conn_wait_hello(c2, bl_now_ms() + 5000, NULL, NULL) == 0;
        bl_conn_unref(c2); /* (not c: its free would shut the socket it shares with us) */
        _exit(ok ? 0 : 1);
    }
    for (int64_t until = bl_now_ms() + 20000; pid > 0 && bl_now_ms() < until; usleep(10000))
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
    if (pid > 0 && status == -1) { /* hung: killed, and a failure */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a channel opened in a forked child is read there");
    send_frame(peer, BL_F_PONG, "boxlite", 7);
    CHECK(c && pongs_soon(c, 1), "the parent's channel is still read");
    bl_conn_unref(c);
    close(peer);
}

int main(void)
{
    one_thread_for_all();
    ends();
    free_while_flooded();
    after_fork();
    return tap_done();
}
