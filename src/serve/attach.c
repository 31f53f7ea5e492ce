/* attach.c — GET /executions/{id}/attach: the WebSocket upgrade (handshake through
 * libmicrohttpd, frames through wslay) and the attachments' event loop: one thread polls
 * (epoll) every attached socket plus a wake eventfd and carries output and the exit frame
 * out, with keepalive pings, a bounded send queue and the spec's single-attach rule. The same
 * loop hands stdin and control messages to the library in the order they came, stdin with
 * the non-blocking write (boxlite_exec_write_v2, timeout 0): what the guest's window does not
 * take waits in the attachment's bounded inbox (its socket is not read meanwhile) until the
 * pump sees the credit come back on the execution's fd and marks the attachment dirty. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define ATTACH_INBOX_MAX (1u << 20) /* stdin taken in and not yet written: then stop reading */
#define ATTACH_PING_S    15
#define ATTACH_SILENT_S  45 /* a peer silent this long is dropped */
#define ATTACH_CLOSE_S   5  /* a close frame unanswered this long: we stop writing */
#define ATTACH_LINGER_S  30 /* then what the peer sends is dropped until it closes, this long */

struct inmsg {
    struct inmsg *next;
    int opcode;
    size_t len;
    size_t off; /* stdin: bytes the library has taken */
    unsigned char data[];
};

struct attach {
    struct sexec *x; /* a reference, dropped with the last of refs */
    int sock;
    struct MHD_UpgradeResponseHandle *urh;
    wslay_event_context_ptr ws;
    int refs; /* atomic: the loop's */

    pthread_mutex_t mu; /* ws, closing, full, close_code */
    int closing;
    int full;       /* the pump was told the queue is full: wake it once it drains */
    int close_code; /* queue a close with it once the data queue is empty */

    /* the loop's own: */
    struct inmsg *inbox, **inbox_tail; /* stdin and control messages not yet handed on */
    size_t in_bytes;                   /* the inbox's */

    /* the loop's own: */
    struct attach *prev, *next; /* every attachment */
    unsigned events;            /* epoll interest now */
    unsigned char *pre;         /* bytes that came with the upgrade request */
    size_t pre_len, pre_off;
    double last_rx, last_ping, close_at, linger_at;
    int left; /* leave() done: the execution may be attached again */

    /* under loop_mu: */
    struct attach *dnext, *fnext; /* dirty list, new list */
    int dirty, gone;
};

static unsigned n_attached;

unsigned attach_count(void)
{
    return __atomic_load_n(&n_attached, __ATOMIC_RELAXED);
}

/* The loop: adopted attachments, and the ones others asked it to look at. */
static pthread_mutex_t loop_mu = PTHREAD_MUTEX_INITIALIZER;
static struct attach *fresh_head, *dirty_head; /* loop_mu */
static int loop_ep = -1, loop_wake = -1, loop_started, loop_stop;
static pthread_t loop_th;
static struct attach *all_head; /* the loop thread's */

static void loop_poke(void)
{
    uint64_t v = 1;

    if (loop_wake >= 0)
        (void)!write(loop_wake, &v, sizeof(v));
}

/* Ask the loop to look at a (output queued, stdin written, ...). Any thread. */
static void mark_dirty(struct attach *a)
{
    int poke = 0;

    pthread_mutex_lock(&loop_mu);
    if (!a->gone && !a->dirty) {
        a->dirty = 1;
        a->dnext = dirty_head;
        dirty_head = a;
        poke = 1;
    }
    pthread_mutex_unlock(&loop_mu);
    if (poke)
        loop_poke();
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
    im->off = 0;
    im->opcode = m->opcode;
    im->len = m->msg_length;
    memcpy(im->data, m->msg, m->msg_length);
    im->data[m->msg_length] = '\0';
    a->in_bytes += m->msg_length;
    *a->inbox_tail = im;
    a->inbox_tail = &im->next;
}

/* ---- sending (the pump and the loop) ----------------------------------------- */

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
     * the loop wakes it once the queue has drained */
    if (!a->closing && !g_serve->stopping &&
        wslay_event_get_queued_msg_length(a->ws) > ATTACH_QUEUE_MAX) {
        a->full = 1;
        rc = 1;
    } else if (!a->closing && !g_serve->stopping) {
        rc = queue_locked(a, WSLAY_BINARY_FRAME, frame, len);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == 0)
        mark_dirty(a);
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
    mark_dirty(a);
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
    mark_dirty(a);
    free(text);
    json_decref(o);
}

/* ---- messages from the client ------------------------------------------------------------- */

static void control(struct attach *a, const char *text)
{
    struct dec_control c;
    struct dec_err e;

    if (dec_control(&c, text, strlen(text), &e) != 0)
        send_error(a, e.msg);
    else if (c.type == DEC_CONTROL_RESIZE && !a->x->tty)
        send_error(a, "the execution has no tty");
    else if (c.type == DEC_CONTROL_RESIZE && boxlite_exec_resize(a->x->ex, c.rows, c.cols) != 0)
        send_error(a, boxlite_error_last());
    else if (c.type == DEC_CONTROL_SIGNAL && boxlite_exec_signal(a->x->ex, c.sig) != 0)
        send_error(a, boxlite_error_last());
    else if (c.type == DEC_CONTROL_STDIN_EOF)
        boxlite_exec_close_stdin(a->x->ex);
}

/* ---- stdin and control messages, in the order they came, never waiting ----------------------- */

static void attach_free(struct attach *a)
{
    struct inmsg *m;

    while ((m = a->inbox) != NULL) {
        a->inbox = m->next;
        free(m);
    }
    if (a->ws != NULL)
        wslay_event_context_free(a->ws);
    pthread_mutex_destroy(&a->mu);
    free(a->pre);
    free(a);
}

static void attach_put(struct attach *a)
{
    struct sexec *x = a->x;

    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    attach_free(a);
    sexec_put(x);
}

void attach_stdin_credit(struct attach *a)
{
    mark_dirty(a);
}

/* Hand a's inbox to the library in order, as far as the guest's window takes stdin now; a
 * message it stopped at stays first with what is left of it, and the rest waits behind it
 * (the execution's fd says when the window has room: the pump tells attach_stdin_credit).
 * The loop's thread, without a->mu (a control message may queue an error). */
static void feed(struct attach *a)
{
    struct inmsg *m;

    while ((m = a->inbox) != NULL) {
        if (m->opcode == WSLAY_BINARY_FRAME && m->off < m->len) {
            size_t n = 0;
            int rc = boxlite_exec_write_v2(a->x->ex, m->data + m->off, m->len - m->off, &n, 0);
            m->off += n;
            __atomic_add_fetch(&a->x->box->bytes_in, n, __ATOMIC_RELAXED);
            if (rc == BOXLITE_EAGAIN || (rc == 0 && m->off < m->len))
                return; /* the window is full */
            /* else written, or stdin is over (the process ended, stdin_eof): dropped */
        } else if (m->opcode == WSLAY_TEXT_FRAME) {
            control(a, (const char *)m->data);
        }
        a->inbox = m->next;
        if (a->inbox == NULL)
            a->inbox_tail = &a->inbox;
        a->in_bytes -= m->len;
        free(m);
    }
}

/* The pump stopped watching the execution's fd for the credit it saw (stdin_wait): now that
 * the write has run again (and re-armed or cleared the library's notice), it may again. */
static void stdin_rearm(struct attach *a)
{
    if (__atomic_exchange_n(&a->x->stdin_wait, 0, __ATOMIC_ACQ_REL))
        exec_pump_wake();
}

/* ---- the loop ------------------------------------------------------------------------------ */

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
        attach_send_exit(a, sexec_exit_code(x->wait_rc, &x->res));
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
    exec_pump_wake();
}

static void leave(struct attach *a)
{
    struct sexec *x = a->x;

    size_t n;

    if (a->left)
        return;
    a->left = 1;
    pthread_mutex_lock(&a->mu);
    a->closing = 1;
    pthread_mutex_unlock(&a->mu);
    (void)boxlite_exec_write_v2(x->ex, NULL, 0, &n, 0); /* no more stdin: no credit notice */
    pthread_mutex_lock(&x->dmu);
    x->att = NULL;
    x->unattached_since = now_monotonic();
    pthread_cond_broadcast(&x->dcond);
    pthread_mutex_unlock(&x->dmu);
    __atomic_store_n(&x->stdin_wait, 0, __ATOMIC_RELEASE);
    exec_pump_wake();
    pthread_mutex_lock(&x->mu);
    x->attach_reserved = 0;
    pthread_mutex_unlock(&x->mu);
}

/* After the close grace our side is shut for writing (the FIN follows the output still in
 * the kernel's buffer) and what the peer sends is read and dropped until it closes: a late
 * pong or close reply must never meet a closed socket, whose reset would throw away the output
 * the peer has not read yet. 1 when it is over. */
static int linger(struct attach *a, unsigned revents, double now)
{
    char junk[4096];
    ssize_t n = 1;

    for (int k = 0; k < 16 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && n > 0; k++)
        n = recv(a->sock, junk, sizeof(junk), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return 1;
    return now - a->linger_at > ATTACH_LINGER_S || g_serve->stopping;
}

static int linger_start(struct attach *a, double now)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};

    if (g_serve->stopping || shutdown(a->sock, SHUT_WR) != 0 ||
        epoll_ctl(loop_ep, EPOLL_CTL_MOD, a->sock, &ev) != 0)
        return 1;
    a->events = EPOLLIN;
    a->linger_at = now;
    leave(a); /* what is left of the socket is no attachment: a reattach may come */
    return 0;
}

/* Move a on as far as it goes without waiting; revents from epoll (0: a timer or a wake).
 * 1 when it is over (the caller tears it down). */
static int step(struct attach *a, unsigned revents, double now)
{
    int rd, wr, bad = 0, drained, paused;
    unsigned want;

    if (a->linger_at != 0)
        return linger(a, revents, now);
    pthread_mutex_lock(&a->mu);
    if (a->pre_off < a->pre_len || (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        bad |= wslay_event_recv(a->ws) != 0;
    if (!bad && now - a->last_ping >= ATTACH_PING_S) {
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
        wslay_event_queue_msg(a->ws, &ping);
        a->last_ping = now;
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
    rd = wslay_event_want_read(a->ws);
    wr = wslay_event_want_write(a->ws);
    pthread_mutex_unlock(&a->mu);
    if (drained)
        exec_pump_wake();
    if (!bad)
        feed(a);
    stdin_rearm(a);
    paused = a->in_bytes > ATTACH_INBOX_MAX; /* stdin the guest has not taken yet */
    if (bad || (!rd && !wr) || now - a->last_rx > ATTACH_SILENT_S)
        return 1;
    if (a->close_at != 0 && now - a->close_at > ATTACH_CLOSE_S)
        return linger_start(a, now);
    want = (rd && !paused ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0);
    if (want != a->events) {
        struct epoll_event ev = {.events = want, .data.ptr = a};
        if (epoll_ctl(loop_ep, EPOLL_CTL_MOD, a->sock, &ev) != 0)
            return 1;
        a->events = want;
    }
    return 0;
}

static void teardown(struct attach *a)
{
    leave(a);
    epoll_ctl(loop_ep, EPOLL_CTL_DEL, a->sock, NULL);
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        all_head = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    pthread_mutex_lock(&loop_mu);
    a->gone = 1;
    if (a->dirty)
        for (struct attach **pp = &dirty_head; *pp != NULL; pp = &(*pp)->dnext)
            if (*pp == a) {
                *pp = a->dnext;
                break;
            }
    pthread_mutex_unlock(&loop_mu);
    MHD_upgrade_action(a->urh, MHD_UPGRADE_ACTION_CLOSE);
    __atomic_sub_fetch(&n_attached, 1, __ATOMIC_RELAXED);
    attach_put(a);
}

/* Take a new attachment into the loop. */
static void adopt(struct attach *a, double now)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};

    a->next = all_head;
    if (all_head != NULL)
        all_head->prev = a;
    all_head = a;
    a->last_ping = now;
    a->events = EPOLLIN;
    join(a);
    if (epoll_ctl(loop_ep, EPOLL_CTL_ADD, a->sock, &ev) != 0 || step(a, 0, now))
        teardown(a);
}

/* The lists others filled: new attachments first, then the ones that want a look. */
static void take_lists(double now)
{
    struct attach *fresh, *dirty;

    pthread_mutex_lock(&loop_mu);
    fresh = fresh_head;
    fresh_head = NULL;
    pthread_mutex_unlock(&loop_mu);
    while (fresh != NULL) {
        struct attach *a = fresh;
        fresh = a->fnext;
        adopt(a, now);
    }
    pthread_mutex_lock(&loop_mu);
    dirty = dirty_head;
    dirty_head = NULL;
    pthread_mutex_unlock(&loop_mu);
    /* each stays marked until its turn (nobody relinks it meanwhile); only this thread tears
     * down, and only the one it steps */
    while (dirty != NULL) {
        struct attach *a = dirty;
        pthread_mutex_lock(&loop_mu);
        dirty = a->dnext;
        a->dirty = 0;
        pthread_mutex_unlock(&loop_mu);
        if (step(a, 0, now))
            teardown(a);
    }
}

static void *loop_main(void *arg)
{
    struct epoll_event ev[64];
    double last_sweep = now_monotonic();

    (void)arg;
    for (;;) {
        int n = epoll_wait(loop_ep, ev, 64, 1000);
        double now = now_monotonic();
        for (int i = 0; i < n; i++) {
            struct attach *a = ev[i].data.ptr;
            if (a == NULL) {
                uint64_t v;
                (void)!read(loop_wake, &v, sizeof(v));
            } else if (step(a, ev[i].events, now)) {
                teardown(a);
            }
        }
        take_lists(now);
        /* once a second every attachment: pings, silent peers, close graces, stopping */
        if (now - last_sweep >= 1 || g_serve->stopping) {
            last_sweep = now;
            for (struct attach *a = all_head, *next; a != NULL; a = next) {
                next = a->next;
                if (step(a, 0, now))
                    teardown(a);
            }
        }
        if (__atomic_load_n(&loop_stop, __ATOMIC_ACQUIRE) && all_head == NULL)
            break;
    }
    return NULL;
}

/* The loop, started with the first attachment. Called with loop_mu held. */
static int loop_start_locked(void)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    if (loop_started)
        return 0;
    if (loop_ep >= 0)
        close(loop_ep);
    if (loop_wake >= 0)
        close(loop_wake);
    loop_ep = epoll_create1(EPOLL_CLOEXEC);
    loop_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop_ep < 0 || loop_wake < 0 || epoll_ctl(loop_ep, EPOLL_CTL_ADD, loop_wake, &ev) != 0)
        goto fail;
    if (pthread_create(&loop_th, NULL, loop_main, NULL) != 0)
        goto fail;
    loop_started = 1;
    return 0;
fail:
    return -1;
}

void attach_loop_stop(void)
{
    int started;

    pthread_mutex_lock(&loop_mu);
    started = loop_started;
    pthread_mutex_unlock(&loop_mu);
    if (!started)
        return;
    __atomic_store_n(&loop_stop, 1, __ATOMIC_RELEASE);
    loop_poke();
    pthread_join(loop_th, NULL);
}

/* ---- the upgrade ------------------------------------------------------------------------- */

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct sexec *x = cls;
    struct req *r = con_cls;
    struct attach *a = calloc(1, sizeof(*a));
    struct wslay_event_callbacks cb = {on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg};
    int rc;

    (void)conn;
    if (r != NULL)
        r->stream_state = NULL; /* handed over: the request's cleanup leaves x alone */
    if (a == NULL)
        goto fail;
    a->x = x;
    a->sock = sock;
    a->urh = urh;
    a->refs = 1;
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
    if (wslay_event_context_server_init(&a->ws, &cb, a) != 0)
        goto fail;
    wslay_event_config_set_max_recv_msg_length(a->ws, 1 << 20);
    pthread_mutex_lock(&loop_mu);
    rc = loop_start_locked();
    if (rc == 0) {
        a->fnext = fresh_head;
        fresh_head = a;
        __atomic_add_fetch(&n_attached, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&loop_mu);
    if (rc != 0)
        goto fail;
    loop_poke();
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
