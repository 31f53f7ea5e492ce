/* main.c — boxlite-agent's PID 1 life: boot-time setup, the one poll loop (signalfd,
 * timerfd, the agent channel, child fds), frame dispatch, reaping, and shutdown. */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECONNECT_POLL_MS 100  /* how often a disconnected port is probed */
#define TERM_GRACE_MS     1000 /* SHUTDOWN: SIGTERM → SIGKILL */

static int sig_fd = -1;
static int timer_fd = -1;

/* ---- children ---- */

/* Reap every child that has exited, orphans included, until none is left waiting. */
static void reap_all(void)
{
    pid_t pid;
    int status;

    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        bl_streams_reaped(pid, status);
    }
    bl_cgroup_sweep();
}

/* Wait (bounded) until no child is left, each exit told to its stream; 0 when all are gone. */
static int reap_until_echild(unsigned ms)
{
    uint64_t end = bl_now_ms() + ms;
    pid_t pid;
    int status;

    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            return 0;
        if (pid > 0)
            bl_streams_reaped(pid, status);
        if (pid > 0 || (pid < 0 && errno == EINTR))
            continue;
        if (bl_now_ms() >= end)
            return -1;
        bl_sleep_ms(10);
    }
}

/* SHUTDOWN: SIGTERM to all, SIGKILL after a grace; then every stream's real exit status goes
 * to the host (a process may trap SIGTERM and exit with its own code) before the power-off. */
static void __attribute__((noreturn)) do_shutdown(void)
{
    bl_dbg("shutdown");
    (void)kill(-1, SIGTERM);
    if (reap_until_echild(TERM_GRACE_MS) < 0) {
        bl_cgroup_kill_all();
        (void)kill(-1, SIGKILL);
        (void)reap_until_echild(TERM_GRACE_MS);
    }
    bl_streams_end_exited();
    bl_chan_flush(TERM_GRACE_MS);
    bl_poweroff();
}

/* ---- frames from the host ---- */

void bl_dispatch(const struct bl_frame *f)
{
    switch (f->type) {
    case BL_F_PING:
        bl_send(BL_F_PONG, f->stream, f->payload, f->len);
        break;
    case BL_F_SHUTDOWN:
        do_shutdown();
    case BL_F_EXEC:
        bl_exec_start(f->stream, f->payload, f->len);
        break;
    case BL_F_STDIN:
        bl_stream_stdin(f->stream, f->payload, f->len);
        break;
    case BL_F_SIGNAL:
        bl_stream_signal(f->stream, f->payload, f->len);
        break;
    case BL_F_WINDOW:
        bl_stream_window(f->stream, f->payload, f->len);
        break;
    case BL_F_RESIZE:
        bl_stream_resize(f->stream, f->payload, f->len);
        break;
    case BL_F_HELLO:
        break; /* a host may introduce itself; nothing to do */
    case BL_F_ERROR:
        bl_dbg("host sent ERROR on stream %u", f->stream);
        break;
    default:
        bl_send_error(f->stream, BL_PE_TYPE, "%s is not sent to the agent",
                      bl_frame_type_name(f->type));
        break;
    }
}

/* ---- setup ---- */

static void setup_signals(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0)
        bl_fatal("signalfd: %s", strerror(errno));
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0)
        bl_fatal("timerfd_create: %s", strerror(errno));
}

static void setup(void)
{
    char v[16];

    if (bl_mount_early() < 0)
        bl_log("early mounts incomplete");
    if (bl_cmdline_get("boxlite.debug", v, sizeof v) == 0 && strcmp(v, "0") != 0)
        bl_debug = 1;
    bl_load_modules("/lib/modules");
    bl_disk_tune();
    if (!bl_template_mode()) { /* a template does this on `attach` (template.c) */
        if (bl_mount_rootfs() < 0)
            bl_fatal("cannot mount the box disk");
        bl_set_hostname();
        bl_net_setup();
        bl_mount_volumes();
    } else {
        bl_net_loopback(); /* the same in every box: done before the template is saved */
    }
    bl_cgroup_setup();
    setup_signals();
    if (bl_chan_open() < 0)
        bl_fatal("cannot open the agent channel");
    bl_dbg("ready");
}

/* ---- the loop ---- */

static void arm_timer(uint64_t deadline_ms)
{
    struct itimerspec its;

    memset(&its, 0, sizeof its);
    if (deadline_ms != 0) {
        its.it_value.tv_sec = (time_t)(deadline_ms / 1000u);
        its.it_value.tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
    }
    (void)timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void drain_fd(int fd, size_t sz)
{
    char buf[sizeof(struct signalfd_siginfo) * 8];

    (void)sz; /* buf is a multiple of both record sizes */
    while (bl_read(fd, buf, sizeof buf) > 0)
        ;
}

static uint64_t next_deadline(void)
{
    uint64_t d = bl_streams_next_deadline();
    uint64_t probe;

    if (!bl_chan_connected()) {
        probe = bl_now_ms() + RECONNECT_POLL_MS;
        if (d == 0 || probe < d)
            d = probe;
    }
    return d;
}

/* One iteration: poll everything once and handle what is ready. */
static void loop_once(struct pollfd **pfdp, int *capp)
{
    struct pollfd *pfd = *pfdp;
    int need = 3 + 3 * bl_streams_count();
    int n, r;

    if (need > *capp) {
        pfd = realloc(*pfdp, (size_t)need * sizeof *pfd);
        if (pfd == NULL) {
            bl_sleep_ms(10);
            return;
        }
        *pfdp = pfd;
        *capp = need;
    }
    pfd[0] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = timer_fd, .events = POLLIN};
    pfd[2] = (struct pollfd){.fd = bl_chan_fd(), .events = bl_chan_events()};
    n = bl_streams_poll_fill(pfd + 3, need - 3, bl_chan_queued() < OUTQ_HIGH);
    arm_timer(next_deadline());
    r = poll(pfd, (nfds_t)(3 + n), bl_streams_work_pending() ? 0 : -1);
    if (r < 0)
        return; /* EINTR; nothing else is expected */
    if (pfd[0].revents & POLLIN) {
        drain_fd(sig_fd, sizeof(struct signalfd_siginfo));
        reap_all();
    }
    if (pfd[1].revents & POLLIN)
        drain_fd(timer_fd, sizeof(uint64_t));
    bl_chan_tick();
    if (pfd[2].fd >= 0 && pfd[2].revents != 0)
        bl_chan_on_poll(pfd[2].revents);
    bl_streams_poll_done(pfd + 3, n);
    bl_streams_timers();
    if (bl_chan_connected())
        bl_chan_on_poll(0); /* write what this iteration queued */
}

int main(void)
{
    struct pollfd *pfd = NULL;
    int cap = 0;

    setup();
    for (;;)
        loop_once(&pfd, &cap);
}
