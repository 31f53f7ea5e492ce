/* exec_nonblock.c — the non-blocking exec core through the public API (run by
 * tests/integration/test_c_api.py): boxlite_exec_timeout's value, EAGAIN and ETIMEOUT from
 * the timeout-0 steps, the blocking read and wait honouring their timeouts, a wait-0 polling
 * loop, and a hung guest (QEMU stopped) whose timed process a poller ends with nothing but
 * poll(boxlite_exec_fd, boxlite_exec_timeout) and the timeout-0 calls; a tunnel's socket
 * driven by poll alone (non-blocking). Exit 0 when all hold. */
#include <boxlite.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static int failures;

static boxlite_exec *start(boxlite_box *box, const char *script, unsigned timeout_ms)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec *ex = NULL;

    eo.argv = argv;
    eo.timeout_ms = timeout_ms;
    CHECK(boxlite_exec_start(&ex, box, &eo) == 0, script);
    return ex;
}

/* The timeout-0 steps and the blocking calls on a process that outlives the test's waits. */
static void check_steps(boxlite_box *box)
{
    boxlite_exec *ex = start(box, "sleep 30", 0);
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char buf[64];
    size_t n = 1;
    int which = 0, ms = 0;
    int64_t t0;

    CHECK(boxlite_exec_timeout(&ms, ex) == 0 && ms == -1, "no deadline without timeout_ms");
    CHECK(boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof buf, &n, 0) ==
              BOXLITE_EAGAIN,
          "read 0: EAGAIN");
    CHECK(boxlite_exec_wait_v2(&res, ex, 0) == BOXLITE_ETIMEOUT, "wait 0: ETIMEOUT");
    t0 = now_ms();
    CHECK(boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 700) == BOXLITE_EAGAIN,
          "read 700: EAGAIN");
    CHECK(now_ms() - t0 >= 700 && now_ms() - t0 < 3000, "read 700 waits 700 ms");
    t0 = now_ms();
    CHECK(boxlite_exec_wait_v2(&res, ex, 700) == BOXLITE_ETIMEOUT, "wait 700: ETIMEOUT");
    CHECK(now_ms() - t0 >= 700 && now_ms() - t0 < 3000, "wait 700 waits 700 ms");
    boxlite_exec_free(ex);
}

/* wait 0 in a loop sees the end of a short process, and its output stays readable. */
static void check_wait_polling(boxlite_box *box)
{
    boxlite_exec *ex = start(box, "echo done; exit 3", 0);
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    int64_t until = now_ms() + 60000;
    char buf[64];
    size_t n = 0;
    int which = 0, rc = BOXLITE_ETIMEOUT, spins = 0;

    while (rc == BOXLITE_ETIMEOUT && now_ms() < until) {
        struct timespec pause = {0, 20 * 1000000L};
        rc = boxlite_exec_wait_v2(&res, ex, 0);
        spins++;
        nanosleep(&pause, NULL);
    }
    CHECK(rc == 0 && res.exit_code == 3, "wait 0 polling sees exit 3");
    CHECK(spins > 0, "polled");
    CHECK(boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 0) == 0 && n == 5 &&
              memcmp(buf, "done\n", 5) == 0,
          "output readable after the wait");
    boxlite_exec_free(ex);
}

/* A timed process: boxlite_exec_timeout counts down to its host-side deadline (timeout + the
 * guest's 2 s grace + the host's 3 s). */
static void check_timeout_value(boxlite_box *box)
{
    boxlite_exec *ex = start(box, "sleep 30", 1000);
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    int ms = -1, later = -1;
    struct timespec pause = {0, 300 * 1000000L};

    CHECK(boxlite_exec_timeout(&ms, ex) == 0 && ms > 5000 && ms <= 6000, "deadline 6 s ahead");
    nanosleep(&pause, NULL);
    CHECK(boxlite_exec_timeout(&later, ex) == 0 && later <= ms - 250, "it counts down");
    CHECK(boxlite_exec_wait_v2(&res, ex, 60000) == 0 && res.timed_out, "the guest ends it");
    CHECK(boxlite_exec_timeout(&ms, ex) == 0 && ms == -1, "no deadline once ended");
    boxlite_exec_free(ex);
}

/* poll on the fd for at most what boxlite_exec_timeout says, then call it again; return
 * when the fd is readable or `limit` ms passed. */
static int poll_like_a_loop(boxlite_exec *ex, int fd, int64_t limit)
{
    int64_t until = now_ms() + limit;

    while (now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = -1;
        int64_t left = until - now_ms();
        if (boxlite_exec_timeout(&ms, ex) != 0)
            return -1;
        if (ms < 0 || ms > left)
            ms = (int)left;
        if (poll(&p, 1, ms) > 0)
            return 1;
    }
    return 0;
}

/* QEMU stopped: the guest can neither kill the process nor report anything. A poller that
 * follows boxlite_exec_timeout sees the fd turn readable at the host deadline, and wait 0 then
 * answers timed out by SIGKILL; a blocking wait on a second one returns at its deadline too. */
static void check_hung_guest(boxlite_box *box, int qemu)
{
    boxlite_exec *ex = start(box, "sleep 100", 1000), *ex2 = NULL;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    int fd = -1;
    int64_t t0;

    CHECK(kill(qemu, SIGSTOP) == 0, "SIGSTOP qemu");
    ex2 = start(box, "sleep 100", 1000);
    CHECK(boxlite_exec_fd(&fd, ex) == 0, "fd");
    t0 = now_ms();
    CHECK(poll_like_a_loop(ex, fd, 20000) == 1, "the fd turns readable at the host deadline");
    CHECK(now_ms() - t0 < 9000, "within the deadline's 6 s and some");
    CHECK(boxlite_exec_wait_v2(&res, ex, 0) == 0 && res.timed_out && res.signal == SIGKILL,
          "wait 0: timed out, SIGKILL");
    CHECK(boxlite_exec_wait_v2(&res, ex2, 20000) == 0 && res.timed_out,
          "a blocking wait returns at the host deadline");
    CHECK(kill(qemu, SIGCONT) == 0, "SIGCONT qemu");
    boxlite_exec_free(ex);
    boxlite_exec_free(ex2);
}

/* One poll-driven exchange on a non-blocking tunnel socket: send all of out (POLLOUT), then
 * half-close, then read (POLLIN) to end of file. The bytes read, or -1. */
static long poll_exchange(int fd, const char *out, size_t len, char *in, size_t cap)
{
    int64_t until = now_ms() + 60000;
    size_t sent = 0, got = 0;
    int eof = 0;

    while (!eof && now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        ssize_t k;
        if (poll(&p, 1, 1000) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < len) {
            k = send(fd, out + sent, len - sent, MSG_NOSIGNAL);
            sent += k > 0 ? (size_t)k : 0;
            if (sent == len)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            k = recv(fd, in + got, cap - got, 0);
            if (k == 0)
                eof = 1;
            got += k > 0 ? (size_t)k : 0;
        }
    }
    return eof ? (long)got : -1;
}

/* A tunnel is a connected socket: poll says when it can take bytes and when the guest's echo
 * (busybox nc -e cat) has arrived and ended. */
static void check_tunnel_polls(boxlite_box *box)
{
    static char out[300000], in[300001];
    boxlite_exec *srv = start(box,
                              "(setsid nc -ll -p 7000 -e cat </dev/null >/dev/null 2>&1 &); "
                              "for i in $(seq 50); do netstat -ltn | grep -q :7000 && exit 0; "
                              "sleep 0.2; done; exit 1",
                              0);
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    int fd = -1;
    long got;

    CHECK(boxlite_exec_wait_v2(&res, srv, 60000) == 0 && res.exit_code == 0, "echo server");
    boxlite_exec_free(srv);
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7 + i / 251);
    CHECK(boxlite_box_tunnel(&fd, box, 7000) == 0, "tunnel");
    if (fd < 0)
        return;
    CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "non-blocking");
    got = poll_exchange(fd, out, sizeof out, in, sizeof in);
    CHECK(got == (long)sizeof out && memcmp(in, out, sizeof out) == 0, "the echo, by poll alone");
    close(fd);
}

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    int ms = 0;

    bo.name = "exec-poll";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box) == 0, "start");
    CHECK(boxlite_exec_timeout(&ms, NULL) == BOXLITE_EINVAL, "NULL handle");
    if (failures == 0) {
        check_steps(box);
        check_wait_polling(box);
        check_timeout_value(box);
        check_tunnel_polls(box);
        CHECK(boxlite_box_get_info(&info, box) == 0 && info.qemu_pid > 0, "qemu pid");
        if (info.qemu_pid > 0)
            check_hung_guest(box, info.qemu_pid);
    }
    CHECK(boxlite_box_remove(box, 1) == 0, "remove");
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
