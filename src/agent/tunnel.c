/* tunnel.c — the `tunnel PORT` built-in (runs in the child, after chroot): connects to
 * 127.0.0.1:PORT inside the guest and relays bytes between that socket and its stdin/stdout.
 *
 * The host learns the connect's result from stderr: on success the built-in closes stderr
 * before any byte is relayed (an empty STDERR end-of-stream); on failure it writes a one-line
 * reason there and exits 1. End of stdin half-closes the socket (SHUT_WR); the socket's EOF
 * closes stdout. The built-in exits when both directions have ended. Non-blocking on both
 * sides with one bounded buffer per direction, so a peer that neither reads nor writes can
 * only stall its own direction, never make the relay grow. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RELAY_BUF (64u << 10)

struct dir {
    int from, to;
    char buf[RELAY_BUF];
    size_t off, len;
    int eof;  /* from has ended (or failed) */
    int done; /* to has been shut */
};

static int parse_port(const char *s)
{
    char *end = NULL;
    long v;

    if (s[0] < '1' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

static int connect_port(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = errno;
        fprintf(stderr, "tunnel: connect 127.0.0.1:%d: %s\n", port, strerror(err));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* End the writing side of d: shutdown for the socket, close for stdout. */
static void shut_to(struct dir *d, int sock)
{
    if (d->done)
        return;
    d->done = 1;
    if (d->to == sock)
        (void)shutdown(sock, SHUT_WR);
    else
        close(d->to);
}

/* One step of a direction after poll: read what fits, write what is buffered. */
static void step(struct dir *d, short rev_from, short rev_to, int sock)
{
    ssize_t n;

    if (!d->eof && d->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
        n = read(d->from, d->buf, sizeof d->buf);
        if (n > 0) {
            d->off = 0;
            d->len = (size_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            d->eof = 1;
        }
    }
    if (d->len > 0 && (rev_to & (POLLOUT | POLLERR | POLLHUP))) {
        n = d->to == sock ? send(sock, d->buf + d->off, d->len, MSG_NOSIGNAL)
                          : write(d->to, d->buf + d->off, d->len);
        if (n > 0) {
            d->off += (size_t)n;
            d->len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            d->len = 0; /* the reader is gone: drop what is left, end this direction */
            d->eof = 1;
        }
    }
    if (d->eof && d->len == 0)
        shut_to(d, sock);
}

static int relay(int sock)
{
    static struct dir up, down; /* stdin → socket, socket → stdout (the child is one-shot) */

    up.from = 0;
    up.to = sock;
    down.from = sock;
    down.to = 1;
    while (!up.done || !down.done) {
        struct pollfd p[3] = {{.fd = 0}, {.fd = sock}, {.fd = 1}};
        if (!up.eof && up.len == 0)
            p[0].events = POLLIN;
        if (!down.eof && down.len == 0)
            p[1].events |= POLLIN;
        if (up.len > 0)
            p[1].events |= POLLOUT;
        if (down.len > 0)
            p[2].events = POLLOUT;
        for (int i = 0; i < 3; i++)
            if (p[i].events == 0)
                p[i].fd = -1; /* a HUP on an fd not waited for would spin the loop */
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        step(&up, p[0].revents, p[1].revents, sock);
        step(&down, p[1].revents, p[2].revents, sock);
    }
    return 0;
}

static int tunnel(const char *port_text)
{
    int port = parse_port(port_text), sock, rc;

    if (port < 0) {
        fprintf(stderr, "tunnel: bad port \"%s\"\n", port_text);
        return 1;
    }
    /* The agent's copies of the stdio pipes are still open here (a built-in never execs):
     * an extra writer of stderr would hide its end from the host. */
    if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0) {
        fprintf(stderr, "tunnel: close_range: %s\n", strerror(errno));
        return 1;
    }
    sock = connect_port(port);
    if (sock < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    if (fcntl(0, F_SETFL, O_NONBLOCK) < 0 || fcntl(1, F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(sock, F_SETFL, O_NONBLOCK) < 0) {
        fprintf(stderr, "tunnel: O_NONBLOCK: %s\n", strerror(errno));
        close(sock);
        return 1;
    }
    close(2); /* connected: the host reads an empty stderr as success */
    rc = relay(sock);
    close(sock);
    return rc;
}

int bl_builtin_tunnel(const struct bl_exec_req *req)
{
    if (req->argc == 2 && strcmp(req->argv[0], "tunnel") == 0)
        return tunnel(req->argv[1]);
    return -1;
}
