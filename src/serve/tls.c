/* tls.c — `boxlite serve --tls-cert/--tls-key`: TLS for every client on one event thread.
 *
 * libmicrohttpd's own TLS relays each upgraded connection (a WebSocket attachment, a tunnel)
 * on a thread of its own, so over TLS every attachment would cost a thread. Instead the
 * listening socket is ours: each accepted client gets a socketpair whose other end goes to
 * libmicrohttpd (MHD_add_connection, with the client's real address, so its connection
 * limits, per-address limit and timeouts apply from the first byte), and this file's one
 * epoll thread does the handshake and relays records <-> plaintext with GnuTLS, non-blocking,
 * at most 16 KiB held per direction (a client that does not read holds the daemon back, not
 * our memory). To libmicrohttpd every connection is plain HTTP, so upgrades hand the server a
 * plain socket, served by its event loops like any other.
 *
 * Threads: everything here runs on the loop thread, except tls_front_quiesce/_stop (main
 * thread). tf.mu is held around accepting and MHD_add_connection, so quiesce can promise the
 * daemon is no longer called. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUF 16384 /* per direction and connection */
#define DRAIN_S   5     /* the last bytes after the daemon closed a connection, and at stop */

struct tconn {
    struct tconn *next; /* every connection (loop thread) */
    int tcp;            /* the client */
    int plain;          /* our end of the pair libmicrohttpd holds the other end of */
    gnutls_session_t s;
    int handshaken, client_eof, plain_eof, dead;
    double deadline; /* the handshake's, or the drain's once the daemon closed; 0: none */
    size_t up_off, up_len, down_off, down_len;
    unsigned char up[RELAY_BUF];   /* from the client, for the daemon */
    unsigned char down[RELAY_BUF]; /* from the daemon, for the client */
};

static struct {
    pthread_mutex_t mu; /* accepting + handing to the daemon; quiesced */
    int started, quiesced, stopping;
    int listen_fd, ep, wake;
    unsigned handshake_s;
    pthread_t th;
    struct MHD_Daemon *d;
    gnutls_certificate_credentials_t cred;
    struct tconn *conns;
    double accept_paused_until;
} tf = {.mu = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1, .ep = -1, .wake = -1};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void close_conn(struct tconn *c)
{
    if (c->dead)
        return;
    c->dead = 1; /* freed by sweep(), after the batch of events that may still name it */
    close(c->tcp);
    close(c->plain);
    gnutls_deinit(c->s);
}

/* ---- relaying ----------------------------------------------------------------------------- */

/* Client -> daemon until one side would block. -1: the connection is broken. */
static int pump_up(struct tconn *c)
{
    for (;;) {
        if (c->up_off < c->up_len) {
            ssize_t n = send(c->plain, c->up + c->up_off, c->up_len - c->up_off, MSG_NOSIGNAL);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            c->up_off += (size_t)n;
            continue;
        }
        if (c->client_eof)
            return 0;
        ssize_t r = gnutls_record_recv(c->s, c->up, sizeof(c->up));
        if (r > 0) {
            c->up_off = 0;
            c->up_len = (size_t)r;
        } else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            return 0;
        } else if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
            c->client_eof = 1; /* the daemon sees the end of the request stream */
            shutdown(c->plain, SHUT_WR);
            return 0;
        } else {
            return -1; /* a bad record, an alert, a renegotiation attempt */
        }
    }
}

/* Daemon -> client until one side would block. 1: the daemon closed and all of it went out;
 * -1: broken. A record cut short by EAGAIN is sent again with the same bytes, as GnuTLS
 * wants. */
static int pump_down(struct tconn *c)
{
    for (;;) {
        if (c->down_off < c->down_len) {
            ssize_t n = gnutls_record_send(c->s, c->down + c->down_off, c->down_len - c->down_off);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                return 0;
            if (n < 0)
                return -1;
            c->down_off += (size_t)n;
            continue;
        }
        if (c->plain_eof)
            return 1;
        ssize_t n = read(c->plain, c->down, sizeof(c->down));
        if (n > 0) {
            c->down_off = 0;
            c->down_len = (size_t)n;
        } else if (n == 0) {
            c->plain_eof = 1;
        } else {
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
    }
}

/* Move c on after an event on either of its sockets (both are edge-triggered: each pump goes
 * until a side would block, so the next edge comes). */
static void pump(struct tconn *c, double now)
{
    int rc;

    if (c->dead)
        return;
    if (!c->handshaken) {
        rc = gnutls_handshake(c->s);
        if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
            return;
        if (rc != GNUTLS_E_SUCCESS) {
            close_conn(c);
            return;
        }
        c->handshaken = 1;
        c->deadline = 0;
    }
    if (pump_up(c) < 0 || (rc = pump_down(c)) < 0) {
        close_conn(c);
    } else if (rc == 1) {
        gnutls_bye(c->s, GNUTLS_SHUT_WR); /* best effort: the socket may be full */
        close_conn(c);
    } else if (c->plain_eof && c->deadline == 0) {
        c->deadline = now + DRAIN_S; /* a client that never reads gets this long */
    }
}

/* ---- accepting ---------------------------------------------------------------------------- */

static int watch(struct tconn *c, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    return epoll_ctl(tf.ep, EPOLL_CTL_ADD, fd, &ev);
}

static gnutls_session_t new_session(int fd)
{
    static const gnutls_datum_t http11 = {(unsigned char *)"http/1.1", 8};
    gnutls_session_t s = NULL;

    if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK) != GNUTLS_E_SUCCESS)
        return NULL;
    if (gnutls_set_default_priority(s) != GNUTLS_E_SUCCESS ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tf.cred) != GNUTLS_E_SUCCESS ||
        gnutls_alpn_set_protocols(s, &http11, 1, 0) != GNUTLS_E_SUCCESS) {
        gnutls_deinit(s);
        return NULL;
    }
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
    gnutls_transport_set_int(s, fd);
    return s;
}

/* A new client on fd: give the daemon its plaintext end (its limits may refuse it). */
static void add_client(int fd, const struct sockaddr_storage *peer, socklen_t peer_len, double now)
{
    struct tconn *c = calloc(1, sizeof(*c));
    int sp[2];

    if (c == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        free(c);
        close(fd);
        return;
    }
    if (MHD_add_connection(tf.d, sp[1], (const struct sockaddr *)peer, peer_len) != MHD_YES) {
        close(sp[0]); /* over --max-connections or the per-address limit: sp[1] is closed */
        close(fd);
        free(c);
        return;
    }
    c->tcp = fd;
    c->plain = sp[0];
    c->deadline = now + tf.handshake_s;
    c->s = new_session(fd);
    if (c->s == NULL || fcntl(sp[0], F_SETFL, O_NONBLOCK) != 0 || watch(c, fd) != 0 ||
        watch(c, sp[0]) != 0) {
        if (c->s != NULL)
            gnutls_deinit(c->s);
        close(sp[0]);
        close(fd);
        free(c);
        return;
    }
    c->next = tf.conns;
    tf.conns = c;
}

static void pause_accepting(double until)
{
    struct epoll_event ev = {.events = until > 0 ? 0 : EPOLLIN, .data.ptr = &tf.listen_fd};
    tf.accept_paused_until = until;
    epoll_ctl(tf.ep, EPOLL_CTL_MOD, tf.listen_fd, &ev);
}

static void accept_all(double now)
{
    struct sockaddr_storage peer;
    socklen_t len;
    int fd;

    pthread_mutex_lock(&tf.mu);
    while (!tf.quiesced) {
        len = sizeof(peer);
        fd = accept4(tf.listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            add_client(fd, &peer, len, now);
            continue;
        }
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            pause_accepting(now + 0.25); /* out of fds: no busy loop, try again soon */
        if (errno != EINTR && errno != ECONNABORTED)
            break;
    }
    pthread_mutex_unlock(&tf.mu);
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Deadlines, and freeing the connections closed in the last batch. */
static void sweep(double now, double drain_until)
{
    struct tconn **pp = &tf.conns;

    while (*pp != NULL) {
        struct tconn *c = *pp;
        if (c->deadline != 0 && now > c->deadline)
            close_conn(c);
        if (drain_until != 0 && now > drain_until)
            close_conn(c);
        if (c->dead) {
            *pp = c->next;
            free(c);
            continue;
        }
        pp = &c->next;
    }
    pthread_mutex_lock(&tf.mu);
    if (!tf.quiesced && tf.accept_paused_until != 0 && now > tf.accept_paused_until)
        pause_accepting(0);
    pthread_mutex_unlock(&tf.mu);
}

static void *loop_main(void *arg)
{
    struct epoll_event ev[64];
    double drain_until = 0;

    (void)arg;
    for (;;) {
        int n = epoll_wait(tf.ep, ev, 64, 250);
        double now = now_s();
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &tf.listen_fd) {
                accept_all(now);
            } else if (p == &tf.wake) {
                uint64_t v;
                if (read(tf.wake, &v, sizeof(v)) < 0)
                    continue;
            } else {
                pump(p, now);
            }
        }
        if (drain_until == 0 && __atomic_load_n(&tf.stopping, __ATOMIC_ACQUIRE))
            drain_until = now + DRAIN_S;
        sweep(now, drain_until);
        if (drain_until != 0 && tf.conns == NULL)
            break;
    }
    return NULL;
}

/* ---- starting and stopping ---------------------------------------------------------------- */

static int listen_on(const struct sockaddr_storage *sa)
{
    socklen_t len =
        sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1, fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)sa, len) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int watch_plain(int fd, void *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    return epoll_ctl(tf.ep, EPOLL_CTL_ADD, fd, &ev);
}

int tls_front_start(struct MHD_Daemon *d, const struct sockaddr_storage *sa, const char *cert_pem,
                    const char *key_pem, unsigned handshake_s)
{
    gnutls_datum_t cert = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t key = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    int rc;

    tf.d = d;
    tf.handshake_s = handshake_s;
    if ((rc = gnutls_certificate_allocate_credentials(&tf.cred)) != GNUTLS_E_SUCCESS ||
        (rc = gnutls_certificate_set_x509_key_mem(tf.cred, &cert, &key, GNUTLS_X509_FMT_PEM)) !=
            GNUTLS_E_SUCCESS) {
        fprintf(stderr, "boxlite serve: --tls-cert/--tls-key: %s\n", gnutls_strerror(rc));
        errno = 0; /* said */
        return -1;
    }
    if ((tf.listen_fd = listen_on(sa)) < 0)
        return -1; /* errno says why */
    tf.ep = epoll_create1(EPOLL_CLOEXEC);
    tf.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (tf.ep < 0 || tf.wake < 0 || watch_plain(tf.listen_fd, &tf.listen_fd) ||
        watch_plain(tf.wake, &tf.wake) || pthread_create(&tf.th, NULL, loop_main, NULL) != 0) {
        return -1;
    }
    tf.started = 1;
    return 0;
}

void tls_front_quiesce(void)
{
    if (!tf.started)
        return;
    pthread_mutex_lock(&tf.mu);
    tf.quiesced = 1;
    if (tf.listen_fd >= 0)
        close(tf.listen_fd); /* leaves the epoll set too; new clients are refused */
    tf.listen_fd = -1;
    pthread_mutex_unlock(&tf.mu);
}

void tls_front_stop(void)
{
    uint64_t one = 1;

    if (!tf.started)
        return;
    tls_front_quiesce();
    __atomic_store_n(&tf.stopping, 1, __ATOMIC_RELEASE);
    if (write(tf.wake, &one, sizeof(one)) < 0)
        perror("boxlite serve: tls wake");
    pthread_join(tf.th, NULL);
    close(tf.ep);
    close(tf.wake);
    gnutls_certificate_free_credentials(tf.cred);
    tf.started = 0;
}
