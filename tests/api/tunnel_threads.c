/* tunnel_threads.c — many tunnels from one process on one relay thread (run by
 * tests/integration/test_tunnel_threads.py): NTUN tunnels open at once to an echo server in a
 * box (busybox nc -ll -e cat), driven by one poll loop here; the process's thread count may
 * grow by at most MAX_EXTRA over its count before the first tunnel (the library's relay is
 * one thread for all of them, not two per tunnel). Every tunnel sends its own bytes (BIG on
 * the first NBIG, 16 KiB on the others), half-closes, and must read back exactly those bytes
 * and then the end. Then a box that stops is the end of file on an open tunnel. Exit 0 when
 * all hold. */
#include <boxlite.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define NTUN      50
#define NBIG      4
#define BIG       (1u << 20)
#define SMALL     (16u << 10)
#define MAX_EXTRA 4
#define BOUND_MS  (300 * 1000)

static int failures;

struct peer {
    int fd;
    char *out, *in;
    size_t len, sent, got;
    int eof;
};

static int start_echo(boxlite_box *box)
{
    const char *argv[] = {"sh", "-c",
                          "(setsid nc -ll -p 7000 -e cat </dev/null >/dev/null 2>&1 &); "
                          "for i in $(seq 50); do netstat -ltn | grep -q :7000 && exit 0; "
                          "sleep 0.2; done; exit 1",
                          NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    int ok;

    eo.argv = argv;
    ok = boxlite_exec_start(&ex, box, &eo) == 0 && boxlite_exec_wait_v2(&res, ex, 60000) == 0 &&
         res.exit_code == 0;
    boxlite_exec_free(ex);
    return ok;
}

/* One turn of the poll loop for every peer: send what the socket takes, half-close after the
 * last byte, read what came. The number of peers not yet at their end. */
static int turn(struct peer *p, int n)
{
    struct pollfd pf[NTUN];
    int open = 0;

    for (int i = 0; i < n; i++) {
        pf[i].fd = p[i].eof ? -1 : p[i].fd;
        pf[i].events = POLLIN | (p[i].sent < p[i].len ? POLLOUT : 0);
    }
    if (poll(pf, (nfds_t)n, 1000) < 0)
        return n;
    for (int i = 0; i < n; i++) {
        ssize_t k;
        if ((pf[i].revents & POLLOUT) && p[i].sent < p[i].len) {
            k = send(p[i].fd, p[i].out + p[i].sent, p[i].len - p[i].sent, MSG_NOSIGNAL);
            p[i].sent += k > 0 ? (size_t)k : 0;
            if (p[i].sent == p[i].len)
                shutdown(p[i].fd, SHUT_WR); /* half-close: the echo still comes back */
        }
        if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            k = recv(p[i].fd, p[i].in + p[i].got, p[i].len + 1 - p[i].got, 0);
            if (k == 0 || (k < 0 && pf[i].revents & POLLERR))
                p[i].eof = 1;
            p[i].got += k > 0 ? (size_t)k : 0;
        }
        open += !p[i].eof;
    }
    return open;
}

static void check_many(boxlite_box *box)
{
    static struct peer p[NTUN];
    int base = threads_now(), most = 0, open = NTUN, opened = 0;
    int64_t until = now_ms() + BOUND_MS;

    for (int i = 0; i < NTUN; i++) {
        p[i].len = i < NBIG ? BIG : SMALL;
        p[i].out = malloc(p[i].len);
        p[i].in = malloc(p[i].len + 1);
        CHECK(p[i].out && p[i].in, "memory");
        if (!p[i].out || !p[i].in)
            return;
        for (size_t j = 0; j < p[i].len; j++)
            p[i].out[j] = (char)(j * 7 + j / 251 + (size_t)i * 13);
        p[i].fd = -1;
        CHECK(boxlite_box_tunnel(&p[i].fd, box, 7000) == 0, "tunnel");
        if (p[i].fd < 0)
            return;
        CHECK(fcntl(p[i].fd, F_SETFL, O_NONBLOCK) == 0, "non-blocking");
        opened++;
        most = threads_now() > most ? threads_now() : most;
    }
    while (open > 0 && now_ms() < until) {
        open = turn(p, NTUN);
        most = threads_now() > most ? threads_now() : most;
    }
    printf("threads: %d before the tunnels, at most %d with %d open\n", base, most, opened);
    CHECK(most - base <= MAX_EXTRA, "the thread count stays bounded");
    for (int i = 0; i < NTUN; i++) {
        char what[64];
        snprintf(what, sizeof what, "tunnel %d: its %zu bytes back, then the end", i, p[i].len);
        CHECK(p[i].eof && p[i].got == p[i].len && memcmp(p[i].in, p[i].out, p[i].len) == 0, what);
        close(p[i].fd);
        free(p[i].out);
        free(p[i].in);
    }
}

/* A box that stops is the end of file on its open tunnels (the relay frees them). */
static void check_box_stop(boxlite_box *box)
{
    char c = 0;
    int fd = -1;
    ssize_t k = -1;

    CHECK(boxlite_box_tunnel(&fd, box, 7000) == 0, "tunnel before the stop");
    if (fd < 0)
        return;
    CHECK(send(fd, "x", 1, MSG_NOSIGNAL) == 1 && recv(fd, &c, 1, 0) == 1 && c == 'x', "echo");
    CHECK(boxlite_box_stop(box, 20000) == 0, "stop");
    for (int64_t until = now_ms() + 60000; now_ms() < until;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) == 1) {
            k = recv(fd, &c, 1, 0);
            break;
        }
    }
    CHECK(k == 0, "the box's stop is the end of file on its tunnel");
    close(fd);
}

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;

    bo.name = "tunnel-threads";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box) == 0, "start");
    CHECK(failures == 0 && start_echo(box), "echo server");
    if (failures == 0)
        check_many(box);
    if (failures == 0)
        check_box_stop(box);
    CHECK(boxlite_box_remove(box, 1) == 0, "remove");
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
