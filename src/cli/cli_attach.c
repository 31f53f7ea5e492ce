/* cli_attach.c — a process in a box attached to this terminal: stdin forwarded (raw mode for
 * a tty), stdout/stderr streamed as produced, our signals and window size forwarded. */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t pending_winch;

static void on_signal(int signo)
{
    if (signo == SIGWINCH)
        pending_winch = 1;
    else
        pending_signal = signo;
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
static int stream_output(boxlite_exec *ex, int tty)
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
        }
        if (pending_winch && tty) {
            pending_winch = 0;
            send_winsize(ex);
        }
        if (rc == BOXLITE_EAGAIN)
            continue;
        if (rc != 0)
            return cli_fail("read output");
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
    boxlite_exec_result res;
    struct stdin_pump pump = {0};
    struct termios saved, raw;
    pthread_t pump_thread;
    int pumping = 0, rawmode = 0;
    int status;

    install_signals();
    if (eo->tty && isatty(0) && tcgetattr(0, &saved) == 0) {
        raw = saved;
        cfmakeraw(&raw);
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
    status = stream_output(ex, eo->tty);
    if (status == 0 && boxlite_exec_wait(ex, &res, -1) != 0) {
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
out:
    if (rawmode)
        tcsetattr(0, TCSANOW, &saved);
    return status;
}
