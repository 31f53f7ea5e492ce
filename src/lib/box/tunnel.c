/* tunnel.c — tunnels: a host socket connected to a TCP port inside a box, through the agent
 * channel (no host port is published). The agent's `tunnel PORT` built-in (docs/protocol.md)
 * connects inside the guest; its stdin/stdout carry the bytes with the exec credit windows.
 *
 * The caller gets one end of an AF_UNIX socketpair. ONE relay thread per process (epoll,
 * started with the first tunnel, ending with the last) pumps the other end of every tunnel of
 * every box: the exec's pollable fd says when the guest sent bytes, an eventfd when it
 * returned stdin credit or ended its output, the socket when the caller wrote or made room. Each
 * tunnel buffers at most PUMP_BUF bytes per direction here; past that the relay stops taking: a
 * caller that does not read leaves the guest's output unread (its credit is not returned, the guest
 * stops), a guest that returns no credit leaves the socket unread (the caller's send
 * blocks). Ends: the guest's EOF is shutdown(SHUT_WR) on the socket, the caller's
 * shutdown(SHUT_WR) is an end of input to the guest (half-close both ways); a caller that
 * closes its end (both directions) has its buffered input delivered, then the relay is
 * killed; when the relay has ended (or the box went away) the socket is shut both ways and
 * the tunnel freed. */
#include "box.h"
#include "error.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECT_MS (30 * 1000) /* the guest's connect to 127.0.0.1 (a TCG guest is slow) */

/* ---- the relay: one thread for every tunnel of the process ------------------------------- */

#define PUMP_BUF     (32u << 10) /* per direction and tunnel: the relay's whole buffering */
#define PUMP_TURNS   8           /* moves per tunnel per wake-up, so that one cannot starve all */
#define RELAY_NAP_MS 2000        /* the longest epoll wait: a tunnel added meanwhile is stepped */

enum { TAG_SOCK, TAG_EXEC, TAG_WAKE, TAG_COUNT };

struct tunnel;
struct tag {
    struct tunnel *t;
    int kind;
};

struct tunnel {
    struct tunnel *next; /* in relay.list, or relay's graveyard once over */
    boxlite_exec *ex;
    int fd;  /* the library's end of the socketpair, non-blocking */
    int efd; /* boxlite_exec_fd: output or the end; belongs to ex */
    int wfd; /* eventfd: the guest returned stdin credit (bl_exec_set_wake) */
    struct tag tags[TAG_COUNT];
    uint32_t mask[TAG_COUNT]; /* the epoll interest now; 0 for the socket: not registered */
    size_t doff, dlen;        /* guest → caller bytes in down[doff..dlen) */
    size_t uoff, ulen;        /* caller → guest bytes in up[uoff..ulen) */
    int down_eof;             /* the guest's output has ended */
    int down_shut;            /* ... and the socket was told (SHUT_WR) */
    int up_eof;               /* the caller's input has ended (or cannot go anywhere) */
    int stdin_done;           /* ... and the guest was told */
    int caller_gone;          /* the caller closed its end: nobody reads the guest's bytes */
    int over;
    char down[PUMP_BUF];
    char up[PUMP_BUF];
};

static struct {
    pthread_mutex_t mu; /* guards everything here; a tunnel's own state is the thread's alone */
    int ep;             /* created once, kept for the process */
    pthread_t th;
    int running; /* the thread runs and will look at list again before it ends */
    int joinable;
    int count;
    struct tunnel *list;
} relay = {.mu = PTHREAD_MUTEX_INITIALIZER, .ep = -1};

static void set_interest(struct tunnel *t, int kind, int fd, uint32_t want)
{
    struct epoll_event ev = {.events = want, .data.ptr = &t->tags[kind]};
    int op = EPOLL_CTL_MOD;

    if (want == t->mask[kind])
        return;
    if (kind == TAG_SOCK && t->mask[kind] == 0)
        op = EPOLL_CTL_ADD;
    else if (kind == TAG_SOCK && want == 0)
        op = EPOLL_CTL_DEL; /* a hung-up socket is reported even with no events asked */
    (void)epoll_ctl(relay.ep, op, fd, &ev);
    t->mask[kind] = want;
}

/* Guest → caller: take output when the buffer is empty, give it to the socket. The relay's
 * stderr (said only before the connect) is drained and dropped, so that the exec's fd, which
 * answers for both streams, does not stay readable for it. */
static int pump_down(struct tunnel *t)
{
    int which = 0, rc, moved = 0;
    size_t n = 0;

    if (!t->down_eof && t->dlen == 0) {
        rc = boxlite_exec_read(t->ex, BOXLITE_STDOUT, &which, t->down, PUMP_BUF, &n, 0);
        if (rc == 0 && n == 0)
            t->down_eof = 1;
        else if (rc == 0 && !t->caller_gone)
            t->dlen = n; /* a gone caller's bytes are dropped */
        else if (rc != 0 && rc != BOXLITE_EAGAIN)
            t->down_eof = 1;
        moved = rc == 0;
    }
    if (t->dlen == 0)
        (void)boxlite_exec_read(t->ex, BOXLITE_STDERR, &which, t->down, PUMP_BUF, &n, 0);
    if (t->dlen > t->doff) {
        ssize_t k = send(t->fd, t->down + t->doff, t->dlen - t->doff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            t->doff += (size_t)k;
            moved = 1;
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
            t->caller_gone = 1;
        }
        if (t->doff == t->dlen || t->caller_gone)
            t->doff = t->dlen = 0;
    }
    if (t->down_eof && t->dlen == 0 && !t->down_shut) {
        (void)shutdown(t->fd, SHUT_WR);
        t->down_shut = 1;
    }
    return moved;
}

/* Caller → guest: read the socket when the buffer is empty, send as the guest's credit allows. */
static int pump_up(struct tunnel *t)
{
    size_t n = 0;
    int moved = 0;

    if (!t->up_eof && t->ulen == 0) {
        ssize_t k = recv(t->fd, t->up, PUMP_BUF, MSG_DONTWAIT);
        if (k > 0) {
            t->uoff = 0;
            t->ulen = (size_t)k;
            moved = 1;
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
            t->up_eof = 1;
        }
    }
    if (t->ulen > t->uoff) {
        if (bl_exec_write_some(t->ex, t->up + t->uoff, t->ulen - t->uoff, &n) != 0) {
            t->up_eof = t->stdin_done = 1; /* the relay ended: nothing more goes in */
            n = t->ulen - t->uoff;
        }
        t->uoff += n;
        moved |= n > 0;
        if (t->uoff == t->ulen)
            t->uoff = t->ulen = 0;
    }
    if (t->up_eof && t->ulen == 0 && !t->stdin_done) {
        (void)boxlite_exec_close_stdin(t->ex);
        t->stdin_done = 1;
    }
    return moved;
}

/* Move what can move now, decide whether the tunnel is over, and set what to wait for. */
static void tunnel_pump(struct tunnel *t, uint32_t sock_events)
{
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    uint32_t sock = 0;

    if ((sock_events & (EPOLLHUP | EPOLLERR)) && !t->down_shut)
        t->caller_gone = 1; /* closed, not half-closed: it reads no more */
    for (int i = 0; i < PUMP_TURNS; i++)
        if (!(pump_down(t) | pump_up(t)))
            break;
    if (t->caller_gone && t->stdin_done && !t->down_eof) {
        (void)boxlite_exec_signal(t->ex, SIGKILL); /* its input is in; its answer has no reader */
        t->caller_gone = 2;
    }
    if (t->down_eof && t->dlen == 0 && boxlite_exec_wait_v2(&res, t->ex, 0) != BOXLITE_ETIMEOUT) {
        t->over = 1; /* the relay ended (or the box went away) */
        return;
    }
    if (!t->up_eof && t->ulen == 0 && t->caller_gone < 2)
        sock |= EPOLLIN;
    if (t->dlen > t->doff)
        sock |= EPOLLOUT;
    set_interest(t, TAG_SOCK, t->fd, sock);
    set_interest(t, TAG_EXEC, t->efd, t->dlen == 0 ? EPOLLIN : 0);
}

static void tunnel_close(struct tunnel *t)
{
    set_interest(t, TAG_SOCK, t->fd, 0);
    (void)epoll_ctl(relay.ep, EPOLL_CTL_DEL, t->efd, NULL);
    (void)epoll_ctl(relay.ep, EPOLL_CTL_DEL, t->wfd, NULL);
    bl_exec_set_wake(t->ex, -1);
    boxlite_exec_free(t->ex); /* SIGKILL to the relay if it still runs */
    (void)shutdown(t->fd, SHUT_RDWR);
    close(t->fd);
    close(t->wfd);
    free(t);
}

/* How long epoll may sleep: the nearest host-side deadline of any tunnel (the built-in's
 * watchdog); asking runs the ones that are due. */
static int relay_timeout(void)
{
    int best = -1, ms;

    pthread_mutex_lock(&relay.mu);
    for (struct tunnel *t = relay.list; t; t = t->next)
        if (boxlite_exec_timeout(&ms, t->ex) == 0 && ms >= 0 && (best < 0 || ms < best))
            best = ms;
    pthread_mutex_unlock(&relay.mu);
    return best;
}

/* Take the tunnels that are over off the list; the thread ends with the last one. */
static int relay_reap(void)
{
    struct tunnel *dead = NULL, **pp;
    int more;

    pthread_mutex_lock(&relay.mu);
    for (pp = &relay.list; *pp;) {
        struct tunnel *t = *pp;
        if (t->over) {
            *pp = t->next;
            t->next = dead;
            dead = t;
            relay.count--;
        } else {
            pp = &t->next;
        }
    }
    more = relay.count > 0;
    if (!more)
        relay.running = 0;
    pthread_mutex_unlock(&relay.mu);
    while (dead) {
        struct tunnel *t = dead;
        dead = t->next;
        tunnel_close(t);
    }
    return more;
}

static void *relay_main(void *arg)
{
    struct epoll_event evs[64];
    uint64_t v;

    (void)arg;
    do {
        int ms = relay_timeout();
        int n = epoll_wait(relay.ep, evs, 64, ms < 0 || ms > RELAY_NAP_MS ? RELAY_NAP_MS : ms);
        for (int i = 0; i < n; i++) {
            struct tag *g = evs[i].data.ptr;
            if (g->t->over)
                continue;
            if (g->kind == TAG_WAKE)
                (void)!read(g->t->wfd, &v, sizeof(v));
            tunnel_pump(g->t, g->kind == TAG_SOCK ? evs[i].events : 0);
        }
    } while (relay_reap());
    return NULL;
}

/* Hand t to the relay thread, starting it if none runs. */
static int relay_add(struct tunnel *t)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int rc = 0;

    pthread_mutex_lock(&relay.mu);
    if (relay.ep < 0 && (relay.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        rc = bl_err(BOXLITE_EIO, "epoll_create1: %s", strerror(errno));
    if (rc == 0 && !relay.running) {
        if (relay.joinable)
            pthread_join(relay.th, NULL); /* the last one, ended or ending (it holds nothing) */
        relay.joinable = pthread_create(&relay.th, NULL, relay_main, NULL) == 0;
        relay.running = relay.joinable;
        if (!relay.running)
            rc = bl_err(BOXLITE_ENOMEM, "cannot start the tunnel relay's thread");
    }
    for (int k = 0; k < TAG_COUNT; k++)
        t->tags[k] = (struct tag){t, k};
    ev.data.ptr = &t->tags[TAG_WAKE];
    if (rc == 0 && epoll_ctl(relay.ep, EPOLL_CTL_ADD, t->wfd, &ev) != 0)
        rc = bl_err(BOXLITE_EIO, "epoll_ctl: %s", strerror(errno));
    ev.data.ptr = &t->tags[TAG_EXEC];
    if (rc == 0 && epoll_ctl(relay.ep, EPOLL_CTL_ADD, t->efd, &ev) != 0) {
        (void)epoll_ctl(relay.ep, EPOLL_CTL_DEL, t->wfd, NULL);
        rc = bl_err(BOXLITE_EIO, "epoll_ctl: %s", strerror(errno));
    }
    if (rc == 0) {
        t->mask[TAG_WAKE] = t->mask[TAG_EXEC] = EPOLLIN;
        t->next = relay.list;
        relay.list = t;
        relay.count++;
        ev.data.ptr = &t->tags[TAG_SOCK]; /* last: from here the thread may run t */
        t->mask[TAG_SOCK] = EPOLLIN;
        if (epoll_ctl(relay.ep, EPOLL_CTL_ADD, t->fd, &ev) != 0)
            t->mask[TAG_SOCK] = 0; /* the exec fd still drives it */
    }
    pthread_mutex_unlock(&relay.mu);
    return rc;
}

/* Wait for the relay's verdict on its connect: an empty stderr that ends is success; a
 * reason there (or an end without one) is the failure, reported with it. */
static int await_connect(boxlite_exec *ex, unsigned port)
{
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char msg[256] = "";
    size_t have = 0, n = 0;
    int which = 0, rc;

    for (;;) {
        rc = boxlite_exec_read(ex, BOXLITE_STDERR, &which, msg + have, sizeof msg - 1 - have, &n,
                               CONNECT_MS);
        if (rc != 0)
            return rc == BOXLITE_EAGAIN
                       ? bl_err(BOXLITE_ETIMEOUT, "the guest did not connect in %d s",
                                CONNECT_MS / 1000)
                       : rc;
        if (n == 0)
            break;
        have += n;
        if (have == sizeof msg - 1)
            break;
    }
    msg[have] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    if (have == 0) {
        rc = boxlite_exec_wait_v2(&res, ex, 0);
        if (rc == BOXLITE_ETIMEOUT || (rc == 0 && res.exit_code == 0))
            return 0; /* connected (and perhaps already over: the socket will say so) */
        if (rc != 0)
            return rc;
        return bl_err(BOXLITE_ERROR, "the guest's relay to port %u ended with status %d", port,
                      res.exit_code);
    }
    (void)boxlite_exec_wait_v2(&res, ex, 5000);
    return bl_err(BOXLITE_ERROR, "%s", msg);
}

BOXLITE_API int boxlite_box_tunnel(int *out, boxlite_box *box, unsigned port)
{
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec *ex = NULL;
    struct tunnel *t = NULL;
    int efd = -1;
    char port_text[16];
    const char *argv[] = {"tunnel", port_text, NULL};
    int sv[2] = {-1, -1}, rc;

    if (!out || !box || port < 1 || port > 65535)
        return bl_err(BOXLITE_EINVAL, "tunnel: bad arguments (port %u)", port);
    snprintf(port_text, sizeof port_text, "%u", port);
    eo.argv = argv;
    eo.user = "root";
    eo.cwd = "/";
    rc = bl_exec_start_flags(&ex, box, &eo, BL_EXEC_BUILTIN);
    if (rc == 0)
        rc = await_connect(ex, port);
    if (rc == 0)
        rc = boxlite_exec_fd(&efd, ex);
    if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        rc = bl_err(BOXLITE_EIO, "socketpair: %s", strerror(errno));
    if (rc == 0 && fcntl(sv[1], F_SETFL, O_NONBLOCK) != 0)
        rc = bl_err(BOXLITE_EIO, "fcntl: %s", strerror(errno));
    if (rc == 0 && !(t = calloc(1, sizeof(*t))))
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    if (rc == 0 && (t->wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        rc = bl_err(BOXLITE_EIO, "eventfd: %s", strerror(errno));
    if (rc != 0)
        goto out;
    t->ex = ex;
    t->fd = sv[1];
    t->efd = efd;
    bl_exec_set_wake(ex, t->wfd);
    rc = relay_add(t);
    if (rc == 0) { /* t is the relay's now */
        *out = sv[0];
        sv[0] = sv[1] = -1;
        ex = NULL;
        t = NULL;
    }
out:
    if (t && t->wfd > 0) {
        bl_exec_set_wake(ex, -1);
        close(t->wfd);
    }
    free(t);
    boxlite_exec_free(ex);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (rc != 0)
        bl_err_wrap(rc, "tunnel to port %u in box %s", port, boxlite_box_id(box));
    return rc;
}
