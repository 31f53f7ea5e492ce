/* monitor.c — the library's side of a box's monitor (boxlite-shim): finding the binary,
 * starting it detached from the caller, reading its readiness report, telling whether it is
 * alive, and connecting to its socket. */
#include "monitor.h"
#include "boxstate.h"
#include "db.h"
#include "error.h"
#include "runtime.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BL_SHIM_INSTALL_PATH
#define BL_SHIM_INSTALL_PATH "/usr/local/libexec/boxlite-shim"
#endif
#ifndef BL_SHIM_BUILD_PATH
#define BL_SHIM_BUILD_PATH ""
#endif

#define REPORT_MARGIN_MS 15000

/* $BOXLITE_SHIM, else the install root's (runtime.c), else the build tree this library was
 * built in, else the configured install path. */
int bl_monitor_find_shim(char **out)
{
    const char *env = getenv("BOXLITE_SHIM");
    char *installed = bl_install_file(BL_REL_LIBEXECDIR "/boxlite-shim");
    const char *cands[] = {env, installed, BL_SHIM_BUILD_PATH, BL_SHIM_INSTALL_PATH};

    for (size_t i = 0; i < 4; i++) {
        if (cands[i] && cands[i][0] && access(cands[i], X_OK) == 0) {
            *out = strdup(cands[i]);
            free(installed);
            return *out ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
        }
    }
    free(installed);
    return bl_err(BOXLITE_ENOTFOUND,
                  "boxlite-shim not found (looked at %s%s%s; set "
                  "BOXLITE_SHIM)",
                  BL_SHIM_BUILD_PATH, BL_SHIM_BUILD_PATH[0] ? ", " : "", BL_SHIM_INSTALL_PATH);
}

/* Append x (malloc'd, may be NULL) to v; returns 0 once anything failed. */
static int push(char **v, size_t *n, char *x, int ok)
{
    if (ok && x)
        v[(*n)++] = x;
    else
        free(x);
    return ok && x;
}

static char **shim_argv(const char *shim, const struct bl_monitor_start *m, int status_fd)
{
    size_t nq = bl_strv_len((const char *const *)m->qemu_argv);
    size_t nj = m->jail ? bl_strv_len((const char *const *)m->jail) : 0;
    /* the fixed options below take at most 23 slots, and one more ends the vector */
    char **v = calloc(nq + 2 * nj + 24, sizeof(*v));
    size_t n = 0;
    int ok = v != NULL;

#define ADD(x) ok = push(v, &n, (x), ok)
    ADD(strdup(shim));
    ADD(strdup("--home"));
    ADD(strdup(m->home));
    ADD(strdup("--id"));
    ADD(strdup(m->id));
    ADD(strdup("--status-fd"));
    ADD(bl_strdupf("%d", status_fd));
    ADD(strdup("--boot-timeout-ms"));
    ADD(bl_strdupf("%d", m->boot_timeout_ms));
    if (m->lifeline_fd >= 0) {
        ADD(strdup("--lifeline-fd"));
        ADD(bl_strdupf("%d", m->lifeline_fd));
    }
    if (m->auto_remove)
        ADD(strdup("--auto-remove"));
    if (m->incoming) {
        ADD(strdup("--incoming"));
        ADD(strdup(m->incoming));
    }
    if (m->main_req) {
        ADD(strdup("--main"));
        ADD(strdup(m->main_req));
    }
    if (m->ram_fill) {
        ADD(strdup("--ram-fill"));
        ADD(strdup(m->ram_fill));
    }
    if (m->spare_dir) {
        ADD(strdup("--spare-dir"));
        ADD(strdup(m->spare_dir));
    }
    if (m->tb_idle_ms > 0) {
        ADD(strdup("--tb-idle-ms"));
        ADD(bl_strdupf("%d", m->tb_idle_ms));
    }
    for (size_t i = 0; i < nj; i++) {
        ADD(strdup("--jail"));
        ADD(strdup(m->jail[i]));
    }
    ADD(strdup("--"));
    for (size_t i = 0; i < nq; i++)
        ADD(strdup(m->qemu_argv[i]));
#undef ADD
    if (!ok) {
        bl_strv_free(v);
        v = NULL;
    }
    return v;
}

/* In the forked child: only async-signal-safe calls. Double fork so the shim belongs to no
 * one's process tree but init's and outlives the caller when the box is detached. */
static void child(char **argv, int status_fd, int lifeline_fd, int log_fd)
{
    int null_fd;
    pid_t pid;

    setsid();
    pid = fork();
    if (pid != 0)
        _exit(pid < 0 ? 1 : 0);
    null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 ||
        dup2(log_fd >= 0 ? log_fd : null_fd, 2) < 0)
        _exit(1);
    fcntl(status_fd, F_SETFD, 0);
    if (lifeline_fd >= 0)
        fcntl(lifeline_fd, F_SETFD, 0);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != status_fd && fd != lifeline_fd)
            close(fd);
    execv(argv[0], argv);
    _exit(127);
}

/* Read the shim's one-line report, "<code> <message>" (boxstate.h: bl_shim_report_*). */
static int read_report(int fd, int timeout_ms, char *line, size_t cap)
{
    int64_t deadline = bl_now_ms() + timeout_ms;
    size_t len = 0;

    line[0] = '\0';
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - bl_now_ms();
        ssize_t n;
        if (left <= 0)
            return BOXLITE_ETIMEOUT;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = read(fd, line + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
        if (strchr(line, '\n'))
            break;
    }
    line[strcspn(line, "\n")] = '\0';
    return 0;
}

/* "ok qemu=<ms>": when QEMU answered (the shim's main.c), else -1. */
static int64_t answered_at(const char *msg)
{
    char *end = NULL;
    long long v = strncmp(msg, "ok qemu=", 8) == 0 ? strtoll(msg + 8, &end, 10) : -1;

    return end != NULL && end != msg + 8 && (*end == '\0' || *end == ' ') && v > 0 ? v : -1;
}

int bl_monitor_start(enum bl_shim_code *code_out, struct bl_monitor_start *m)
{
    char *shim = NULL, *logpath = NULL;
    char **argv = NULL;
    int pipefd[2] = {-1, -1};
    int log_fd = -1, rc, status;
    char line[700];
    const char *msg = NULL;
    enum bl_shim_code code = BL_SHIM_E_SETUP;
    pid_t pid;

    *code_out = BL_SHIM_E_SETUP;
    m->answered_ms = -1;
    rc = bl_monitor_find_shim(&shim);
    if (rc != 0)
        return rc;
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "pipe");
        goto out;
    }
    argv = shim_argv(shim, m, pipefd[1]);
    logpath = bl_strdupf("%s/boxes/%s/shim.log", m->home, m->id);
    if (!argv || !logpath) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    log_fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid = fork();
    if (pid < 0) {
        rc = bl_err_errno(BOXLITE_ERROR, errno, "fork");
        goto out;
    }
    if (pid == 0)
        child(argv, pipefd[1], m->lifeline_fd, log_fd);
    close(pipefd[1]);
    pipefd[1] = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    rc = read_report(pipefd[0], m->boot_timeout_ms + REPORT_MARGIN_MS, line, sizeof(line));
    if (rc == BOXLITE_ETIMEOUT)
        rc = bl_err(rc, "the box monitor did not report within %d ms",
                    m->boot_timeout_ms + REPORT_MARGIN_MS);
    else if (bl_shim_report_parse(line, &code, &msg) != 0)
        rc = bl_err(BOXLITE_ERROR, "the box monitor exited without a report (see %s)", logpath);
    else if (code == BL_SHIM_OK)
        rc = 0, m->answered_ms = answered_at(msg);
    else
        rc = bl_err(code == BL_SHIM_E_RUNNING ? BOXLITE_ESTATE : BOXLITE_ERROR, "%s", msg);
    if (rc != BOXLITE_ETIMEOUT && msg)
        *code_out = code;
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (log_fd >= 0)
        close(log_fd);
    bl_strv_free(argv);
    free(shim);
    free(logpath);
    return rc;
}

int bl_monitor_alive(const char *home, const char *id)
{
    char *dir = bl_strdupf("%s/boxes/%s", home, id);
    int alive = dir ? bl_run_lock_held(dir) : 0;

    free(dir);
    return alive;
}

int bl_monitor_connect(int *fd_out, const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dfd = -1, fd = -1, rc = 0;

    if (strlen(dir) + sizeof("/shim.sock") <= sizeof(sa.sun_path)) {
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/shim.sock", dir);
    } else {
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return bl_err_errno(BOXLITE_EIO, errno, "open %s", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/shim.sock", dfd);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = bl_err_errno(errno == ENOENT || errno == ECONNREFUSED ? BOXLITE_ESTATE : BOXLITE_EIO,
                          errno, "connect to the box monitor in %s", dir);
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (dfd >= 0)
        close(dfd);
    if (rc == 0)
        *fd_out = fd;
    return rc;
}
