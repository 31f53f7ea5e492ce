/* cli_attach.c — a process in a box attached to this terminal: stdin forwarded (raw mode for
 * a tty), stdout/stderr streamed as produced, our signals and window size forwarded.
 *
 * Signals: the first SIGINT/SIGTERM/SIGHUP/SIGQUIT is forwarded to the process and the box is
 * pinged; when the box does not answer within GRACE_MS, or on a second such signal, we leave
 * with 128+N (the box monitor then kills the process, as for any client that goes away). */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS 5000 /* after forwarding a signal, how long the box has to answer a PING */

static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t pending_winch;
static volatile sig_atomic_t first_signal; /* the first terminating signal, once seen */
static struct termios saved_tty;
static volatile sig_atomic_t tty_saved;

static void on_signal(int signo)
{
    if (signo == SIGWINCH) {
        pending_winch = 1;
        return;
    }
    if (first_signal) { /* the second: leave now (only async-signal-safe calls here) */
        if (tty_saved)
            tcsetattr(0, TCSANOW, &saved_tty);
        _exit(128 + signo);
    }
    first_signal = signo;
    pending_signal = signo;
}

/* Whether the box answers after we forwarded a signal: a PING on a thread of its own, so
 * that output keeps flowing meanwhile. */
struct grace {
    boxlite_box *box;
    int64_t deadline;            /* 0 until the first signal was forwarded */
    volatile sig_atomic_t state; /* 0 waiting, 1 answered, -1 failed */
    pthread_t thread;
    int started;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *grace_ping(void *arg)
{
    struct grace *g = arg;
    uint64_t ns = 0;

    g->state = boxlite_box_ping(&ns, g->box) == 0 ? 1 : -1;
    return NULL;
}

static void grace_begin(struct grace *g)
{
    if (g->deadline != 0)
        return;
    g->deadline = now_ms() + GRACE_MS;
    g->started = pthread_create(&g->thread, NULL, grace_ping, g) == 0;
    if (!g->started)
        g->state = -1;
}

/* Give up on a box that did not answer: leave at once, as on a second signal (the ping may
 * still be waiting, and the box monitor kills the process when we go). */
static void grace_check(const struct grace *g)
{
    if (g->deadline == 0 || g->state > 0 || (g->state == 0 && now_ms() < g->deadline))
        return;
    fprintf(stderr, "boxlite: the box did not answer within %d s of signal %d; leaving\n",
            GRACE_MS / 1000, (int)first_signal);
    fflush(stdout);
    fflush(stderr);
    if (tty_saved)
        tcsetattr(0, TCSANOW, &saved_tty);
    _exit(128 + first_signal);
}

struct stdin_pump {
    boxlite_exec *ex;
    volatile sig_atomic_t done; /* set by the main thread once the process has ended */
};

/* stdin → the process, polling so that the main thread can stop it and join. */
static void *pump_stdin(void *arg)
{
    struct stdin_pump *p = arg;
    char buf[32768];

    while (!p->done) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t n = read(0, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || boxlite_exec_write(p->ex, buf, (size_t)n) != 0)
            break;
    }
    boxlite_exec_close_stdin(p->ex);
    return NULL;
}

static int write_out(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void send_winsize(boxlite_exec *ex)
{
    struct winsize ws;

    if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        boxlite_exec_resize(ex, ws.ws_row, ws.ws_col);
}

/* Copy the process's output to our stdout/stderr until both end. */
static int stream_output(boxlite_exec *ex, int tty, struct grace *g)
{
    static char buf[65536];
    int broken[2] = {0, 0};

    for (;;) {
        int which = 0;
        size_t n = 0;
        int rc = boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof(buf),
                                   &n, 200);
        if (pending_signal) {
            boxlite_exec_signal(ex, pending_signal);
            pending_signal = 0;
            grace_begin(g);
        }
        grace_check(g);
        if (pending_winch && tty) {
            pending_winch = 0;
            send_winsize(ex);
        }
        if (rc == BOXLITE_EAGAIN)
            continue;
        if (rc != 0)
            return first_signal ? 128 + first_signal : cli_fail("read output");
        if (n == 0)
            break;
        int i = which == BOXLITE_STDERR;
        if (!broken[i] && write_out(i ? 2 : 1, buf, n) != 0)
            broken[i] = 1; /* keep draining so the process is not blocked */
    }
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cli_attach(boxlite_box *box, boxlite_exec_options *eo, int interactive)
{
    boxlite_exec *ex = NULL;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    struct stdin_pump pump = {0};
    struct grace grace = {.box = box};
    struct termios saved, raw;
    pthread_t pump_thread;
    int pumping = 0, rawmode = 0;
    int status;

    install_signals();
    if (eo->tty && isatty(0) && tcgetattr(0, &saved) == 0) {
        raw = saved;
        cfmakeraw(&raw);
        saved_tty = saved;
        tty_saved = 1;
        rawmode = tcsetattr(0, TCSANOW, &raw) == 0;
    }
    if (boxlite_exec_start(&ex, box, eo) != 0) {
        status = cli_fail("exec");
        goto out;
    }
    if (eo->tty)
        send_winsize(ex);
    if (interactive) {
        pump.ex = ex;
        pumping = pthread_create(&pump_thread, NULL, pump_stdin, &pump) == 0;
    } else {
        boxlite_exec_close_stdin(ex);
    }
    status = stream_output(ex, eo->tty, &grace);
    if (status == 0 && boxlite_exec_wait_v2(&res, ex, first_signal ? GRACE_MS : -1) != 0) {
        status = cli_fail("wait");
    } else if (status == 0) {
        status = res.exit_code;
        if (res.message[0])
            fprintf(stderr, "boxlite: %s\n", res.message);
        else if (res.timed_out)
            fprintf(stderr, "boxlite: the command timed out\n");
    }
    if (pumping) {
        pump.done = 1;
        pthread_join(pump_thread, NULL);
    }
    boxlite_exec_free(ex);
    if (grace.started)
        pthread_join(grace.thread, NULL); /* the box answered (or the ping gives up in 10 s) */
out:
    tty_saved = 0;
    if (rawmode)
        tcsetattr(0, TCSANOW, &saved);
    return status;
}
