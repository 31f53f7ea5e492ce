/* attach.c — GET /executions/{id}/attach: the WebSocket upgrade (handshake through
 * libmicrohttpd, frames through wslay) and one thread per attachment that carries stdin and
 * control messages in, output and the exit frame out, with keepalive pings, a bounded send
 * queue and the spec's single-attach rule. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

struct inmsg {
    struct inmsg *next;
    int opcode;
    size_t len;
    unsigned char data[];
};

struct attach {
    struct sexec *x;
    int sock;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ws;
    pthread_mutex_t mu; /* ws, closing, inbox */
    int closing;
    int wake[2]; /* the pump pokes the thread when it queued output */
    int full;    /* the pump was told the queue is full: wake it once it drains (a->mu) */
    unsigned char *pre;
    size_t pre_len, pre_off;
    struct inmsg *inbox, **inbox_tail;
    double last_rx, close_at;
    int close_code; /* queue a close with it once the data queue is empty */
};

static unsigned n_attached;

unsigned attach_count(void)
{
    return __atomic_load_n(&n_attached, __ATOMIC_RELAXED);
}

/* ---- wslay callbacks ---------------------------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct attach *a = user;
    ssize_t n;

    (void)flags;
    if (a->pre_off < a->pre_len) {
        n = (ssize_t)(a->pre_len - a->pre_off < len ? a->pre_len - a->pre_off : len);
        memcpy(buf, a->pre + a->pre_off, (size_t)n);
        a->pre_off += (size_t)n;
        return n;
    }
    n = recv(a->sock, buf, len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    a->last_rx = now_monotonic();
    return n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct attach *a = user;
    ssize_t n = send(a->sock, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

    (void)flags;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    memset(buf, 0, len); /* servers do not mask */
    return 0;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                   void *user)
{
    struct attach *a = user;
    struct inmsg *im;

    (void)ctx;
    if (m->opcode != WSLAY_TEXT_FRAME && m->opcode != WSLAY_BINARY_FRAME)
        return; /* ping/pong/close are wslay's */
    im = malloc(sizeof(*im) + m->msg_length + 1);
    if (im == NULL)
        return;
    im->next = NULL;
    im->opcode = m->opcode;
    im->len = m->msg_length;
    memcpy(im->data, m->msg, m->msg_length);
    im->data[m->msg_length] = '\0';
    *a->inbox_tail = im;
    a->inbox_tail = &im->next;
}

/* ---- sending (pump side and this thread) --------------------------------------------------- */

static void poke(struct attach *a)
{
    char c = 1;
    ssize_t n = write(a->wake[1], &c, 1);
    (void)n;
}

static int queue_locked(struct attach *a, int opcode, const void *data, size_t len)
{
    struct wslay_event_msg msg = {(uint8_t)opcode, data, len};
    return wslay_event_queue_msg(a->ws, &msg) == 0 ? 0 : -1;
}

int attach_send_output(struct attach *a, const unsigned char *frame, size_t len)
{
    int rc = -1;

    pthread_mutex_lock(&a->mu);
    /* a client that does not read: never grow past the bound; the pump holds the frame and
     * this thread wakes it once the queue has drained */
    if (!a->closing && !g_serve->stopping &&
        wslay_event_get_queued_msg_length(a->ws) > ATTACH_QUEUE_MAX) {
        a->full = 1;
        rc = 1;
    } else if (!a->closing && !g_serve->stopping) {
        rc = queue_locked(a, WSLAY_BINARY_FRAME, frame, len);
    }
    pthread_mutex_unlock(&a->mu);
    poke(a);
    return rc;
}

int attach_send_exit(struct attach *a, int exit_code)
{
    char text[64];
    int rc = -1;

    snprintf(text, sizeof(text), "{\"type\":\"exit\",\"exit_code\":%d}", exit_code);
    pthread_mutex_lock(&a->mu);
    if (!a->closing) {
        rc = queue_locked(a, WSLAY_TEXT_FRAME, text, strlen(text));
        a->close_code = 1000; /* wslay sends control frames first: close once this is out */
    }
    pthread_mutex_unlock(&a->mu);
    poke(a);
    return rc;
}

static void send_error(struct attach *a, const char *message)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "error", "message", message);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    pthread_mutex_lock(&a->mu);
    if (text != NULL && !a->closing)
        queue_locked(a, WSLAY_TEXT_FRAME, text, strlen(text));
    pthread_mutex_unlock(&a->mu);
    free(text);
    json_decref(o);
}

/* ---- messages from the client ------------------------------------------------------------- */

static void control(struct attach *a, const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    json_t *cols = json_object_get(o, "cols"), *rows = json_object_get(o, "rows");
    json_t *sig = json_object_get(o, "sig");

    if (type == NULL) {
        send_error(a, "control messages are JSON objects with a type");
    } else if (strcmp(type, "resize") == 0) {
        if (!json_is_integer(cols) || !json_is_integer(rows) || json_integer_value(cols) < 1 ||
            json_integer_value(rows) < 1 || json_integer_value(cols) > 65535 ||
            json_integer_value(rows) > 65535)
            send_error(a, "resize wants integer cols and rows from 1 to 65535");
        else if (!a->x->tty)
            send_error(a, "the execution has no tty");
        else if (boxlite_exec_resize(a->x->ex, (unsigned)json_integer_value(rows),
                                     (unsigned)json_integer_value(cols)) != 0)
            send_error(a, boxlite_error_last());
    } else if (strcmp(type, "signal") == 0) {
        if (!json_is_integer(sig) || !signal_allowed((int)json_integer_value(sig)))
            send_error(a, "signal not allowed (HUP INT QUIT ABRT USR1 USR2 TERM WINCH)");
        else if (boxlite_exec_signal(a->x->ex, (int)json_integer_value(sig)) != 0)
            send_error(a, boxlite_error_last());
    } else if (strcmp(type, "stdin_eof") == 0) {
        boxlite_exec_close_stdin(a->x->ex);
    } else {
        send_error(a, "unknown control message type");
    }
    json_decref(o);
}

static void drain_inbox(struct attach *a)
{
    struct inmsg *list;

    pthread_mutex_lock(&a->mu);
    list = a->inbox;
    a->inbox = NULL;
    a->inbox_tail = &a->inbox;
    pthread_mutex_unlock(&a->mu);
    while (list != NULL) {
        struct inmsg *m = list;
        list = m->next;
        if (m->opcode == WSLAY_BINARY_FRAME && m->len > 0) {
            /* outside a->mu: a full stdin window must not stop output */
            if (boxlite_exec_write(a->x->ex, m->data, m->len) == 0)
                __atomic_add_fetch(&a->x->box->bytes_in, m->len, __ATOMIC_RELAXED);
        } else if (m->opcode == WSLAY_TEXT_FRAME) {
            control(a, (const char *)m->data);
        }
        free(m);
    }
}

/* ---- the attachment's thread ---------------------------------------------------------------- */

static void attach_free(struct attach *a)
{
    struct inmsg *m;

    while ((m = a->inbox) != NULL) {
        a->inbox = m->next;
        free(m);
    }
    if (a->ws != NULL)
        wslay_event_context_free(a->ws);
    if (a->wake[0] >= 0)
        close(a->wake[0]);
    if (a->wake[1] >= 0)
        close(a->wake[1]);
    pthread_mutex_destroy(&a->mu);
    free(a->pre);
    free(a);
}

/* Attach: what was kept while nobody listened goes first, then the exit if it came. */
static void join(struct attach *a)
{
    struct sexec *x = a->x;

    pthread_mutex_lock(&x->dmu);
    pthread_mutex_lock(&a->mu);
    for (size_t off = 0; off + 4 <= x->blen;) {
        uint32_t l;
        memcpy(&l, x->backlog + off, 4);
        queue_locked(a, WSLAY_BINARY_FRAME, x->backlog + off + 4, l);
        off += 4 + l;
    }
    free(x->backlog);
    x->backlog = NULL;
    x->blen = 0;
    pthread_mutex_unlock(&a->mu);
    x->att = a;
    if (__atomic_load_n(&x->finished, __ATOMIC_ACQUIRE))
        attach_send_exit(a, x->wait_rc == 0 ? x->res.exit_code : -1);
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
    exec_pump_wake();
}

static void leave(struct attach *a)
{
    struct sexec *x = a->x;

    pthread_mutex_lock(&a->mu);
    a->closing = 1;
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&x->dmu);
    x->att = NULL;
    x->unattached_since = now_monotonic();
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
    exec_pump_wake();
    pthread_mutex_lock(&x->mu);
    x->attach_reserved = 0;
    pthread_mutex_unlock(&x->mu);
}

static void *attach_thread(void *arg)
{
    struct attach *a = arg;
    double last_ping = now_monotonic();

    join(a);
    for (;;) {
        struct pollfd p[2] = {{a->sock, 0, 0}, {a->wake[0], POLLIN, 0}};
        double now;
        int rd, wr, bad = 0, drained;
        char junk[64];

        pthread_mutex_lock(&a->mu);
        rd = wslay_event_want_read(a->ws);
        wr = wslay_event_want_write(a->ws);
        pthread_mutex_unlock(&a->mu);
        if (!rd && !wr)
            break;
        p[0].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
        if (a->pre_off < a->pre_len)
            p[0].revents = POLLIN;
        else if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            ssize_t n = read(a->wake[0], junk, sizeof(junk));
            (void)n;
        }
        now = now_monotonic();
        pthread_mutex_lock(&a->mu);
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
            bad |= wslay_event_recv(a->ws) != 0;
        if (!bad && now - last_ping >= 15) {
            struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
            wslay_event_queue_msg(a->ws, &ping);
            last_ping = now;
        }
        if (g_serve->stopping && a->close_code == 0)
            a->close_code = 1001;
        if (!bad && wslay_event_want_write(a->ws))
            bad |= wslay_event_send(a->ws) != 0;
        drained = a->full && wslay_event_get_queued_msg_length(a->ws) <= ATTACH_QUEUE_MAX;
        if (drained)
            a->full = 0;
        if (!bad && a->close_code != 0 && a->close_at == 0 &&
            wslay_event_get_queued_msg_count(a->ws) == 0) {
            wslay_event_queue_close(a->ws, (uint16_t)a->close_code, NULL, 0);
            bad |= wslay_event_send(a->ws) != 0;
            a->close_at = now;
        }
        pthread_mutex_unlock(&a->mu);
        if (drained)
            exec_pump_wake();
        if (bad || now - a->last_rx > 45 || (a->close_at != 0 && now - a->close_at > 5))
            break;
        drain_inbox(a);
    }
    leave(a);
    MHD_upgrade_action(a->urh, MHD_UPGRADE_ACTION_CLOSE);
    sexec_put(a->x);
    attach_free(a);
    __atomic_sub_fetch(&n_attached, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct sexec *x = cls;
    struct req *r = con_cls;
    struct attach *a = calloc(1, sizeof(*a));
    struct wslay_event_callbacks cb = {on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg};
    pthread_t th;

    (void)conn;
    if (r != NULL)
        r->stream_state = NULL; /* handed over: the request's cleanup leaves x alone */
    if (a == NULL)
        goto fail;
    a->x = x;
    a->sock = sock;
    a->urh = urh;
    a->wake[0] = a->wake[1] = -1;
    a->inbox_tail = &a->inbox;
    a->last_rx = now_monotonic();
    pthread_mutex_init(&a->mu, NULL);
    if (extra_len > 0) {
        a->pre = malloc(extra_len);
        if (a->pre == NULL)
            goto fail;
        memcpy(a->pre, extra, extra_len);
        a->pre_len = extra_len;
    }
    if (pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        wslay_event_context_server_init(&a->ws, &cb, a) != 0)
        goto fail;
    wslay_event_config_set_max_recv_msg_length(a->ws, 1 << 20);
    __atomic_add_fetch(&n_attached, 1, __ATOMIC_RELAXED);
    if (pthread_create(&th, NULL, attach_thread, a) != 0) {
        __atomic_sub_fetch(&n_attached, 1, __ATOMIC_RELAXED);
        goto fail;
    }
    pthread_detach(th);
    return;
fail:
    pthread_mutex_lock(&x->mu);
    x->attach_reserved = 0;
    pthread_mutex_unlock(&x->mu);
    if (a != NULL)
        attach_free(a);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    sexec_put(x);
}

/* The request ended without the switch (the client left before the 101 went out): free the
 * single-attach slot and the reference on_upgrade would have taken. Same thread as
 * on_upgrade (thread per connection). */
static void attach_abandoned(struct req *r)
{
    struct sexec *x = r->stream_state;

    if (x == NULL)
        return;
    r->stream_state = NULL;
    pthread_mutex_lock(&x->mu);
    x->attach_reserved = 0;
    pthread_mutex_unlock(&x->mu);
    sexec_put(x);
}

/* Sec-WebSocket-Accept for key (RFC 6455 §4.2.2). */
static int accept_key(char out[64], const char *key)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char d[SHA_DIGEST_LENGTH];
    char buf[256];

    if (strlen(key) > 128)
        return -1;
    snprintf(buf, sizeof(buf), "%s%s", key, guid);
    SHA1((const unsigned char *)buf, strlen(buf), d);
    EVP_EncodeBlock((unsigned char *)out, d, sizeof(d));
    return 0;
}

static int header_has_token(const char *h, const char *token)
{
    size_t n = strlen(token);

    for (const char *p = h; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

enum MHD_Result h_exec_attach(struct req *r)
{
    const char *up = req_header(r, "Upgrade"), *conn = req_header(r, "Connection");
    const char *key = req_header(r, "Sec-WebSocket-Key"),
               *ver = req_header(r, "Sec-WebSocket-Version");
    struct MHD_Response *resp;
    struct sexec *x;
    char accept[64];
    int busy;

    if (up == NULL || strcasecmp(up, "websocket") != 0 || conn == NULL ||
        !header_has_token(conn, "upgrade") || key == NULL || ver == NULL ||
        strcmp(ver, "13") != 0 || accept_key(accept, key) != 0)
        return reply_error(r, 400, "InvalidArgumentError", "invalid_argument",
                           "attach is a WebSocket (version 13) upgrade");
    x = exec_from_path(r);
    if (x == NULL)
        return MHD_YES;
    pthread_mutex_lock(&x->mu);
    busy = x->attach_reserved;
    x->attach_reserved = 1;
    pthread_mutex_unlock(&x->mu);
    if (busy) {
        enum MHD_Result ret = reply_error(r, 409, "InvalidStateError", "invalid_state",
                                          "another client is attached to %s", x->id);
        sexec_put(x);
        return ret;
    }
    resp = MHD_create_response_for_upgrade(on_upgrade, x); /* x's reference goes with it */
    if (resp == NULL) {
        pthread_mutex_lock(&x->mu);
        x->attach_reserved = 0;
        pthread_mutex_unlock(&x->mu);
        sexec_put(x);
        return MHD_NO;
    }
    r->stream_state = x;
    r->cleanup = attach_abandoned;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    return reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
}
