/* channel.c — the agent channel: the virtio-serial port named boxlite.agent, its bounded
 * queue of outgoing frames, the input buffer split into frames, and host (re)connection. */
#include "agent.h"
#include "frameio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PORT_NAME    "boxlite.agent"
#define PORT_WAIT_MS 10000
#define READ_CHUNK   (64u << 10)

struct qbuf {
    struct qbuf *next;
    size_t len; /* bytes in data */
    size_t off; /* bytes already written */
    uint8_t *data;
};

static struct {
    int fd;
    int connected;
    struct qbuf *head;
    struct qbuf *tail;
    size_t queued;
    struct bl_frame_reader in; /* frameio.h */
} ch = {.fd = -1};

/* ---- finding the port ---- */

static int port_name_is(const char *dir)
{
    char path[300];
    char name[64];
    ssize_t n;
    int fd;
    int ret = 0;

    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    n = bl_read(fd, name, sizeof name - 1);
    if (n <= 0)
        goto out;
    name[n] = '\0';
    name[strcspn(name, "\n")] = '\0';
    ret = strcmp(name, PORT_NAME) == 0;
out:
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Try once: the /dev path of the named port into out, 0 when found. */
static int port_find(char *out, size_t outlen)
{
    struct dirent *de;
    DIR *d;
    int ret = -1;

    d = opendir("/sys/class/virtio-ports");
    if (d == NULL)
        return -1;
    for (de = readdir(d); de != NULL; de = readdir(d)) {
        if (de->d_name[0] == '.' || !port_name_is(de->d_name))
            continue;
        snprintf(out, outlen, "/dev/%s", de->d_name);
        ret = 0;
        break;
    }
    closedir(d);
    return ret;
}

int bl_chan_open(void)
{
    uint64_t end = bl_now_ms() + PORT_WAIT_MS;
    char path[300];
    int ret = -1;

    if (bl_frame_feed(&ch.in, "", 0) == BL_FIO_ERROR) /* its buffer, now, not mid-session */
        goto out;
    for (;;) {
        if (port_find(path, sizeof path) == 0) {
            ch.fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            if (ch.fd >= 0)
                break;
        }
        if (bl_now_ms() >= end) {
            bl_log("no virtio-serial port named %s within %u ms", PORT_NAME, PORT_WAIT_MS);
            goto out;
        }
        bl_sleep_ms(5);
    }
    bl_dbg("agent channel %s", path);
    bl_chan_tick();
    ret = 0;
out:
    return ret;
}

/* ---- output queue ---- */

static void q_push(struct qbuf *q, int front)
{
    if (front) {
        q->next = ch.head;
        ch.head = q;
        if (ch.tail == NULL)
            ch.tail = q;
    } else {
        q->next = NULL;
        if (ch.tail != NULL)
            ch.tail->next = q;
        else
            ch.head = q;
        ch.tail = q;
    }
    ch.queued += q->len - q->off;
}

static void q_pop(void)
{
    struct qbuf *q = ch.head;

    ch.head = q->next;
    if (ch.head == NULL)
        ch.tail = NULL;
    ch.queued -= q->len - q->off;
    free(q->data);
    free(q);
}

static void enqueue(uint8_t type, uint32_t stream, uint8_t *buf, size_t len, int front)
{
    struct qbuf *q;

    q = malloc(sizeof *q);
    if (q == NULL) {
        bl_log("out of memory: %s frame on stream %u lost", bl_frame_type_name(type), stream);
        free(buf);
        return;
    }
    bl_frame_hdr_encode(buf, type, stream, (uint32_t)len);
    q->data = buf;
    q->len = BL_FRAME_HDR + len;
    q->off = 0;
    q_push(q, front);
}

void bl_send_owned(uint8_t type, uint32_t stream, uint8_t *buf, size_t len)
{
    enqueue(type, stream, buf, len, 0);
}

static void send_copy(uint8_t type, uint32_t stream, const void *payload, size_t len, int front)
{
    uint8_t *buf;

    buf = malloc(BL_FRAME_HDR + len);
    if (buf == NULL) {
        bl_log("out of memory: %s frame on stream %u lost", bl_frame_type_name(type), stream);
        return;
    }
    if (len > 0)
        memcpy(buf + BL_FRAME_HDR, payload, len);
    enqueue(type, stream, buf, len, front);
}

void bl_send(uint8_t type, uint32_t stream, const void *payload, size_t len)
{
    send_copy(type, stream, payload, len, 0);
}

void bl_send_wbuf(uint8_t type, uint32_t stream, struct bl_wbuf *w)
{
    if (w->failed) {
        bl_log("cannot encode %s frame on stream %u", bl_frame_type_name(type), stream);
        return;
    }
    bl_send(type, stream, w->data, w->len);
}

void bl_send_u32(uint8_t type, uint32_t stream, uint32_t v)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, v);
    bl_send_wbuf(type, stream, &w);
    bl_wbuf_free(&w);
}

void bl_send_u32x2(uint8_t type, uint32_t stream, uint32_t a, uint32_t b)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, a);
    bl_wbuf_put_u32(&w, b);
    bl_send_wbuf(type, stream, &w);
    bl_wbuf_free(&w);
}

void bl_send_error(uint32_t stream, int code, const char *fmt, ...)
{
    struct bl_wbuf w = {0};
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bl_dbg("error on stream %u: %s", stream, msg);
    bl_wbuf_put_u32(&w, (uint32_t)(code < 0 ? -code : code));
    bl_wbuf_put_str(&w, msg);
    bl_send_wbuf(BL_F_ERROR, stream, &w);
    bl_wbuf_free(&w);
}

static void send_hello(int front)
{
    struct bl_wbuf w = {0};

    bl_wbuf_put_u32(&w, BL_PROTO_VERSION);
    bl_wbuf_put_str(&w, AGENT_VERSION);
    if (!w.failed)
        send_copy(BL_F_HELLO, 0, w.data, w.len, front);
    bl_wbuf_free(&w);
}

size_t bl_chan_queued(void)
{
    return ch.queued;
}

/* ---- connection state ---- */

static void set_disconnected(void)
{
    if (!ch.connected)
        return;
    bl_dbg("host disconnected");
    ch.connected = 0;
    bl_frame_discard(&ch.in); /* a partial frame from the old connection is meaningless */
}

/* A frame half written to the old connection cannot be finished on the new one. */
static void drop_partial_head(void)
{
    if (ch.head != NULL && ch.head->off > 0)
        q_pop();
}

static void set_connected(void)
{
    if (ch.connected)
        return;
    bl_dbg("host connected");
    ch.connected = 1;
    bl_frame_discard(&ch.in);
    drop_partial_head();
    send_hello(1);
}

/* The port reports POLLHUP while no host is attached to its chardev. Polling it then
 * would spin, so while disconnected it is only probed from bl_chan_tick. */
void bl_chan_tick(void)
{
    struct pollfd p = {.fd = ch.fd, .events = POLLIN};
    int r;

    if (ch.fd < 0 || ch.connected)
        return;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r >= 0 && !(p.revents & POLLHUP))
        set_connected();
}

int bl_chan_connected(void)
{
    return ch.connected;
}

int bl_chan_fd(void)
{
    return ch.connected ? ch.fd : -1;
}

short bl_chan_events(void)
{
    short ev = 0;

    if (bl_frame_room(&ch.in) > 0)
        ev |= POLLIN;
    if (ch.head != NULL)
        ev |= POLLOUT;
    return ev;
}

/* ---- I/O ---- */

static void flush_out(void)
{
    struct qbuf *q;
    size_t before;
    int r;

    while (ch.head != NULL) {
        q = ch.head;
        before = q->off;
        r = bl_frame_write_some(ch.fd, q->data, q->len, &q->off);
        ch.queued -= q->off - before;
        if (r < 0)
            set_disconnected();
        if (r <= 0)
            return;
        q_pop();
    }
}

/* Split and dispatch every whole frame in the input buffer. */
static void split_input(void)
{
    struct bl_frame f;
    int n, rc;

    for (;;) {
        n = bl_frame_next(&ch.in, &f);
        if (n == 0)
            break;
        if (n < 0) {
            bl_send_error(0, BL_PE_TOOBIG, "frame too big; input discarded");
            bl_frame_discard(&ch.in);
            break;
        }
        rc = bl_frame_check(&f);
        if (rc < 0)
            bl_send_error(f.stream, rc, "%s (version %u, type %u)", bl_proto_strerror(rc),
                          f.version, f.type);
        else
            bl_dispatch(&f);
    }
}

static void read_in(void)
{
    enum bl_fio got = bl_frame_fill(&ch.in, ch.fd, READ_CHUNK);

    if (got == BL_FIO_EOF || got == BL_FIO_ERROR) {
        set_disconnected();
        return;
    }
    split_input();
}

void bl_chan_on_poll(short revents)
{
    if (!ch.connected)
        return;
    if (revents & POLLIN)
        read_in();
    if (ch.connected && (revents & (POLLHUP | POLLERR)) && !(revents & POLLIN))
        set_disconnected();
    if (ch.connected)
        flush_out();
}

void bl_chan_flush(unsigned max_ms)
{
    uint64_t end = bl_now_ms() + max_ms;
    struct pollfd p;

    while (ch.head != NULL && ch.connected && bl_now_ms() < end) {
        p.fd = ch.fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, 10) > 0)
            flush_out();
        if (p.revents & POLLHUP)
            break;
    }
}
