/* tunnel.c — tunnels: a host socket connected to a TCP port inside a box, through the agent
 * channel (no host port is published). The agent's `tunnel PORT` built-in (docs/protocol.md)
 * connects inside the guest; its stdin/stdout carry the bytes with the exec credit windows.
 *
 * The caller gets one end of an AF_UNIX socketpair; two detached threads pump the other end:
 * "down" moves the guest's bytes into the socket (blocking: a caller that never reads stops
 * returning credit, and the guest stops), "up" moves the caller's bytes to the guest. Ends:
 * the guest's EOF is shutdown(SHUT_WR) on the socket, the caller's is an end of input to the
 * guest (half-close both ways); a caller that closes its end kills the relay; when the relay
 * has ended (or the box went away) both directions of the socket are shut, which also wakes
 * "up". The last thread to finish frees the exec handle. */
#include "box.h"
#include "error.h"
#include "proto.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECT_MS (30 * 1000) /* the guest's connect to 127.0.0.1 (a TCG guest is slow) */
#define PUMP_BUF   (32u << 10)

struct tunnel {
    boxlite_exec *ex;
    int fd; /* the library's end of the socketpair */
    atomic_int refs;
};

static void tunnel_unref(struct tunnel *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    boxlite_exec_free(t->ex); /* SIGKILL to the relay if it still runs */
    close(t->fd);
    free(t);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Guest → caller. */
static void *pump_down(void *arg)
{
    struct tunnel *t = arg;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char *buf = malloc(PUMP_BUF);
    int which = 0, gone = buf == NULL;
    size_t n = 0;

    while (!gone && boxlite_exec_read(t->ex, BOXLITE_STDOUT, &which, buf, PUMP_BUF, &n, -1) == 0 &&
           n > 0)
        gone = send_all(t->fd, buf, n) != 0;
    free(buf);
    if (gone) {
        (void)boxlite_exec_signal(t->ex, SIGKILL); /* the caller closed its end */
    } else {
        (void)shutdown(t->fd, SHUT_WR);
        (void)boxlite_exec_wait_v2(&res, t->ex, -1); /* until the relay ends (or the box) */
    }
    (void)shutdown(t->fd, SHUT_RDWR);
    tunnel_unref(t);
    return NULL;
}

/* Caller → guest. */
static void *pump_up(void *arg)
{
    struct tunnel *t = arg;
    char *buf = malloc(PUMP_BUF);
    ssize_t n = 0;

    while (buf) {
        n = recv(t->fd, buf, PUMP_BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || boxlite_exec_write(t->ex, buf, (size_t)n) != 0)
            break;
    }
    if (n == 0)
        (void)boxlite_exec_close_stdin(t->ex);
    free(buf);
    tunnel_unref(t);
    return NULL;
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

/* Start both pumps. From here t is theirs, even on failure: a pump that started ends the
 * relay and frees t; with none started, t is freed here. */
static int start_pumps(struct tunnel *t)
{
    pthread_attr_t attr;
    pthread_t th;
    int rc = 0;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_store(&t->refs, 2);
    if (pthread_create(&th, &attr, pump_down, t) != 0) {
        atomic_store(&t->refs, 1);
        tunnel_unref(t);
        rc = bl_err(BOXLITE_ENOMEM, "cannot start the tunnel's thread");
    } else if (pthread_create(&th, &attr, pump_up, t) != 0) {
        (void)shutdown(t->fd, SHUT_RDWR);
        (void)boxlite_exec_signal(t->ex, SIGKILL);
        tunnel_unref(t);
        rc = bl_err(BOXLITE_ENOMEM, "cannot start the tunnel's thread");
    }
    pthread_attr_destroy(&attr);
    return rc;
}

BOXLITE_API int boxlite_box_tunnel(int *out, boxlite_box *box, unsigned port)
{
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec *ex = NULL;
    struct tunnel *t = NULL;
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
    if (rc == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        rc = bl_err(BOXLITE_EIO, "socketpair: %s", strerror(errno));
    if (rc == 0 && !(t = calloc(1, sizeof(*t))))
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    if (rc != 0)
        goto out;
    t->ex = ex;
    t->fd = sv[1];
    ex = NULL;
    sv[1] = -1;
    rc = start_pumps(t);
    if (rc == 0) {
        *out = sv[0];
        sv[0] = -1;
    }
out:
    boxlite_exec_free(ex);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (rc != 0)
        bl_err_wrap(rc, "tunnel to port %u in box %s", port, boxlite_box_id(box));
    return rc;
}
