/* console.c — the guest's serial console, capped: QEMU connects its serial port to
 * console.sock in the box directory, and a thread of the shim drains it into console.log,
 * moving a full file to console.log.1 (one older file kept), so no guest can fill the host
 * disk through its console (BOXLITE_MAX_CONSOLE, default 1 MiB per file). */
#include "shim.h"

#include "bounds.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CONSOLE_SOCK "console.sock"
#define CONSOLE_LOG  "console.log"
#define CONSOLE_OLD  "console.log.1"
#define BUF_SIZE     (64 * 1024)
#define DRAIN_MS     2000 /* after QEMU ended: what is still buffered, at most this long */

struct shim_console {
    int listen_fd, conn_fd, stop_pipe[2];
    struct shim_caplog log;
    pthread_t thread;
    int started;
    char buf[BUF_SIZE];
};

/* Read what is there; 0 at EOF or on an error, 1 otherwise. */
static int pump(struct shim_console *c)
{
    ssize_t n = read(c->conn_fd, c->buf, sizeof(c->buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (n <= 0)
        return 0;
    shim_caplog_put(&c->log, c->buf, (size_t)n);
    return 1;
}

static void *run(void *arg)
{
    struct shim_console *c = arg;
    int stopping = 0;
    int64_t until = 0;

    for (;;) {
        struct pollfd p[2] = {{.fd = c->conn_fd >= 0 ? c->conn_fd : c->listen_fd, .events = POLLIN},
                              {.fd = stopping ? -1 : c->stop_pipe[0], .events = POLLIN}};
        int r = poll(p, 2, stopping ? 100 : -1);
        if (r < 0 && errno != EINTR)
            break;
        if (p[1].revents) {
            stopping = 1;
            until = bl_now_ms() + DRAIN_MS;
        }
        if (stopping && (c->conn_fd < 0 || bl_now_ms() > until))
            break;
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (c->conn_fd < 0) {
            c->conn_fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        } else if (!pump(c)) {
            break; /* QEMU closed its end */
        }
    }
    return NULL;
}

struct shim_console *shim_console_open(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct shim_console *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->conn_fd = c->stop_pipe[0] = c->stop_pipe[1] = -1;
    strcpy(sa.sun_path, CONSOLE_SOCK);
    unlink(CONSOLE_SOCK);
    shim_caplog_open(&c->log, CONSOLE_LOG, CONSOLE_OLD, bl_limit(BL_LIMIT_CONSOLE), 0);
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->log.fd < 0 || c->listen_fd < 0 || pipe2(c->stop_pipe, O_CLOEXEC) != 0 ||
        bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(c->listen_fd, 1) != 0) {
        shim_console_close(c);
        return NULL;
    }
    return c;
}

int shim_console_run(struct shim_console *c)
{
    if (c->started)
        return 0;
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        return -1;
    c->started = 1;
    return 0;
}

void shim_console_close(struct shim_console *c)
{
    int fds[4];

    if (!c)
        return;
    if (c->started) {
        if (write(c->stop_pipe[1], "x", 1) < 0) {
            /* the thread then ends at QEMU's EOF */
        }
        pthread_join(c->thread, NULL);
    }
    fds[0] = c->listen_fd;
    fds[1] = c->conn_fd;
    fds[2] = c->stop_pipe[0];
    fds[3] = c->stop_pipe[1];
    shim_caplog_close(&c->log);
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    unlink(CONSOLE_SOCK);
    free(c);
}
