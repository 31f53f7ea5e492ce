/* qmp.c — the shim's QMP client: QEMU's control monitor on an inherited socketpair (no socket
 * path), one command at a time with a deadline, events skipped, fds passed for getfd. */
#include "shim.h"

#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void shim_qmp_init(struct shim_qmp *q, int fd)
{
    memset(q, 0, sizeof(*q));
    q->fd = fd;
}

int shim_qmp_read_line(struct shim_qmp *q, int64_t deadline)
{
    for (;;) {
        char *nl = memchr(q->buf, '\n', q->len);
        struct pollfd p = {.fd = q->fd, .events = POLLIN};
        int64_t left = deadline - bl_now_ms();
        ssize_t n;
        if (nl) {
            size_t k = (size_t)(nl - q->buf);
            size_t keep = k < sizeof(q->line) - 1 ? k : sizeof(q->line) - 1;
            int skipped = q->skip;
            if (!skipped) {
                memcpy(q->line, q->buf, keep);
                q->line[keep] = '\0';
            }
            memmove(q->buf, nl + 1, q->len - k - 1);
            q->len -= k + 1;
            q->skip = 0;
            if (skipped) /* the tail of a line too long to hold: not a line of its own */
                continue;
            return 0;
        }
        if (q->len == sizeof(q->buf)) { /* a line longer than the buffer: drop all of it */
            q->len = 0;
            q->skip = 1;
        }
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        q->len += (size_t)n;
    }
}

static int send_all(struct shim_qmp *q, const char *cmd, int pass_fd)
{
    size_t len = strlen(cmd), off = 0;

    while (off < len) {
        struct iovec iov = {(char *)cmd + off, len - off};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;
        if (pass_fd >= 0 && off == 0) {
            struct cmsghdr *c;
            memset(&u, 0, sizeof(u));
            mh.msg_control = u.b;
            mh.msg_controllen = sizeof(u.b);
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int shim_qmp_greeting(struct shim_qmp *q, int64_t deadline)
{
    if (q->greeted)
        return 0;
    if (shim_qmp_read_line(q, deadline) != 0 || !strstr(q->line, "\"QMP\""))
        return -1;
    q->greeted = 1;
    return 0;
}

/* The greeting and capabilities negotiation, once. */
static int handshake(struct shim_qmp *q, int64_t deadline)
{
    if (q->ready)
        return 0;
    if (shim_qmp_greeting(q, deadline) != 0)
        return -1;
    q->ready = 1;
    if (shim_qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}", -1, 10000) != 0) {
        q->ready = 0;
        return -1;
    }
    return 0;
}

int shim_qmp_cmd(struct shim_qmp *q, const char *cmd, int pass_fd, int timeout_ms)
{
    int64_t deadline = bl_now_ms() + timeout_ms;

    if (q->fd < 0 || handshake(q, deadline) != 0) {
        snprintf(q->line, sizeof(q->line), "QEMU's monitor did not answer");
        return -1;
    }
    if (send_all(q, cmd, pass_fd) != 0 || send_all(q, "\n", -1) != 0) {
        snprintf(q->line, sizeof(q->line), "write to QEMU's monitor: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (shim_qmp_read_line(q, deadline) != 0) {
            snprintf(q->line, sizeof(q->line), "QEMU's monitor did not answer in time");
            return -1;
        }
        if (strncmp(q->line, "{\"return\"", 9) == 0)
            return 0;
        if (strncmp(q->line, "{\"error\"", 8) == 0)
            return -1;
        /* an event: skip it */
    }
}

void shim_qmp_drain(struct shim_qmp *q)
{
    char junk[4096];

    if (q->fd >= 0 && q->ready && q->len == 0)
        while (recv(q->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
            ;
}
