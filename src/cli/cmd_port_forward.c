/* cmd_port_forward.c — `boxlite port-forward BOX [LOCAL:]GUEST...` (kubectl's shape): listens
 * on 127.0.0.1:LOCAL and makes each accepted connection a tunnel (boxlite_box_tunnel) to port
 * GUEST inside the box, until SIGINT/SIGTERM. LOCAL 0 or empty picks a free port; the line
 * "Forwarding from 127.0.0.1:LOCAL -> GUEST" says which. Two threads per connection copy
 * bytes, each ending its direction with shutdown(SHUT_WR) (half-close both ways). */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FORWARDS 16
#define COPY_BUF     (32u << 10)

struct fwd {
    int listen_fd;
    unsigned guest;
};

struct conn {
    int a, b; /* the accepted client, the tunnel */
    atomic_int refs;
};

struct half {
    struct conn *c;
    int from, to;
};

static volatile sig_atomic_t stop_requested;

/* The first SIGINT/SIGTERM ends the loop; a second one (the loop may be waiting for a
 * tunnel's connect) exits at once. */
static void on_stop(int signo)
{
    if (stop_requested)
        _exit(128 + signo);
    stop_requested = 1;
}

static void conn_unref(struct conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    close(c->a);
    close(c->b);
    free(c);
}

static void *copy_half(void *arg)
{
    struct half *h = arg;
    char *buf = malloc(COPY_BUF);
    ssize_t n = 0;

    while (buf) {
        n = recv(h->from, buf, COPY_BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0, k; off < n; off += k) {
            k = send(h->to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                k = 0;
            else if (k <= 0)
                goto out;
        }
    }
out:
    if (n == 0) {
        (void)shutdown(h->to, SHUT_WR);
    } else { /* a reset or error: end the whole connection */
        (void)shutdown(h->to, SHUT_RDWR);
        (void)shutdown(h->from, SHUT_RDWR);
    }
    free(buf);
    conn_unref(h->c);
    free(h);
    return NULL;
}

/* Start the two copiers of one connection; they own c from here. */
static void start_copiers(struct conn *c)
{
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_store(&c->refs, 3); /* two copiers and this function */
    for (int i = 0; i < 2; i++) {
        struct half *h = malloc(sizeof(*h));
        pthread_t th;
        if (h)
            *h = (struct half){.c = c, .from = i ? c->b : c->a, .to = i ? c->a : c->b};
        if (!h || pthread_create(&th, &attr, copy_half, h) != 0) {
            free(h);
            (void)shutdown(c->a, SHUT_RDWR);
            (void)shutdown(c->b, SHUT_RDWR);
            conn_unref(c);
        }
    }
    pthread_attr_destroy(&attr);
    conn_unref(c);
}

static void serve_one(boxlite_box *box, const struct fwd *f)
{
    struct conn *c = NULL;
    int client = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC), tun = -1;

    if (client < 0)
        return;
    if (boxlite_box_tunnel(&tun, box, f->guest) != 0) {
        fprintf(stderr, "boxlite: port-forward: %s\n", boxlite_error_last());
        close(client);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(client);
        close(tun);
        return;
    }
    c->a = client;
    c->b = tun;
    start_copiers(c);
}

/* "LOCAL:GUEST", ":GUEST" or "PORT" (the same port on both sides). */
static int parse_spec(const char *spec, unsigned *local, unsigned *guest)
{
    const char *colon = strchr(spec, ':');
    char lbuf[16];

    if (!colon) {
        if (cli_parse_uint(spec, guest, "port") != 0)
            return -1;
        *local = *guest;
        return *guest < 1 || *guest > 65535 ? -1 : 0;
    }
    if ((size_t)(colon - spec) >= sizeof lbuf)
        return -1;
    memcpy(lbuf, spec, (size_t)(colon - spec));
    lbuf[colon - spec] = '\0';
    *local = 0;
    if (lbuf[0] && cli_parse_uint(lbuf, local, "local port") != 0)
        return -1;
    if (cli_parse_uint(colon + 1, guest, "guest port") != 0)
        return -1;
    return *local > 65535 || *guest < 1 || *guest > 65535 ? -1 : 0;
}

static int listen_local(unsigned port, unsigned *bound)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof sa;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        fprintf(stderr, "boxlite: port-forward: listen on 127.0.0.1:%u: %s\n", port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

static int forward_loop(boxlite_box *box, struct fwd *f, int n)
{
    struct sigaction sa = {.sa_handler = on_stop};

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!stop_requested) {
        struct pollfd p[MAX_FORWARDS];
        for (int i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = f[i].listen_fd, .events = POLLIN};
        if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
            return cli_fail("port-forward: poll");
        for (int i = 0; i < n && !stop_requested; i++)
            if (p[i].revents & POLLIN)
                serve_one(box, &f[i]);
    }
    return 0;
}

int cmd_port_forward(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    struct fwd f[MAX_FORWARDS];
    int n = 0, rc = 0;

    if (argc < 3 || argc - 2 > MAX_FORWARDS) {
        fprintf(stderr, "usage: boxlite port-forward BOX [LOCAL]:GUEST... (at most %d)\n",
                MAX_FORWARDS);
        return 2;
    }
    for (int i = 2; i < argc && rc == 0; i++) {
        unsigned local = 0, bound = 0;
        if (parse_spec(argv[i], &local, &f[n].guest) != 0) {
            fprintf(stderr, "boxlite: port-forward: bad port spec \"%s\"\n", argv[i]);
            rc = 2;
        } else if ((f[n].listen_fd = listen_local(local, &bound)) < 0) {
            rc = CLI_EXIT_FAILURE;
        } else {
            printf("Forwarding from 127.0.0.1:%u -> %u\n", bound, f[n].guest);
            n++;
        }
    }
    fflush(stdout);
    if (rc == 0)
        rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[1]);
    if (rc == 0)
        rc = forward_loop(box, f, n);
    for (int i = 0; i < n; i++)
        close(f[i].listen_fd);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
