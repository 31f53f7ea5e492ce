/* keeper.c — the host process that stands for a container (or an exec'd process): forked by
 * create/exec, its pid is the one in --pid-file, and it lives exactly as long as the process
 * in the guest and exits with its status (what conmon and containerd's shim wait on). It
 * boots the box (the VM's lifeline is this process: if it dies, even by SIGKILL, the VM
 * stops), waits for `start` on <root>/<id>/ctl.sock, starts the process, pumps the caller's
 * stdio (pipes, or the pty whose master went to --console-socket) and forwards the signals
 * it receives to the guest process; in a network namespace of the container's own it relays
 * inbound TCP into the VM (inbound.c). The process's rlimits and the read-only root are the
 * guest's business (the agent sets them before the process runs), never the host's. */
#include "oci.h"

#include <boxlite.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int sig_pipe[2] = {-1, -1};
static const int forwarded[] = {SIGTERM, SIGINT,   SIGHUP,  SIGQUIT, SIGUSR1,
                                SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) { /* full: the signal is dropped */
    }
    errno = saved;
}

static int signals_setup(void)
{
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* The next pending signal, 0 when none. */
static int signal_next(void)
{
    unsigned char c;

    return read(sig_pipe[0], &c, 1) == 1 ? c : 0;
}

int bl_oci_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bl_oci_write_pid_file(const char *path, pid_t pid)
{
    char tmp[4200], buf[32];
    int n = snprintf(buf, sizeof buf, "%d", (int)pid), fd;

    if (!path)
        return 0;
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return bl_oci_fail("pid file %s: %s", tmp, strerror(errno));
    (void)bl_oci_write_all(fd, buf, (size_t)n);
    if (close(fd) != 0 || rename(tmp, path) != 0)
        return bl_oci_fail("pid file %s: %s", path, strerror(errno));
    return 0;
}

/* ---- the process and its stdio ---- */

struct pump {
    boxlite_exec *ex;
};

static void *pump_stdin(void *arg)
{
    struct pump *p = arg;
    char buf[16384];

    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || boxlite_exec_write(p->ex, buf, (size_t)n) != 0)
            break;
    }
    boxlite_exec_close_stdin(p->ex);
    return NULL;
}

static void forward(boxlite_exec *ex, int tty)
{
    struct winsize ws;
    int sig;

    while ((sig = signal_next()) != 0) {
        if (sig == SIGWINCH && tty && ioctl(0, TIOCGWINSZ, &ws) == 0)
            boxlite_exec_resize(ex, ws.ws_row, ws.ws_col);
        else if (sig != SIGWINCH)
            boxlite_exec_signal(ex, sig);
    }
}

static int exec_begin(boxlite_exec **out, boxlite_box *box, const struct bl_oci_keeper *k)
{
    const struct bl_oci_process *p = k->process;
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_rlimit lim[BL_OCI_MAX_RLIMITS];
    char user[32], **pod_argv = NULL;
    int rc = 0;

    for (size_t i = 0; i < p->n_rlimits; i++) /* set in the guest, never on the host */
        lim[i] = (boxlite_rlimit){p->rlimits[i].resource, p->rlimits[i].soft, p->rlimits[i].hard};
    o.rlimits = lim;
    o.n_rlimits = p->n_rlimits;
    o.read_only_root = k->read_only_root;

    snprintf(user, sizeof user, "%u:%u", p->uid, p->gid);
    o.argv = (const char *const *)p->args;
    o.env = (const char *const *)p->env;
    o.cwd = p->cwd;
    o.user = user;
    o.tty = p->terminal;
    if (k->pod_role == BL_OCI_POD_CONTAINER) { /* its own root, through boxlite-pod-enter */
        if (bl_oci_pod_argv(&pod_argv, p, k->id, k->read_only_root) != 0)
            return 1;
        o.argv = (const char *const *)pod_argv;
        o.user = "0:0";
        o.cwd = "/";
        o.read_only_root = 0; /* the sandbox's root is not the container's */
    }
    if (boxlite_exec_start(out, box, &o) != 0)
        rc = bl_oci_fail("exec %s: %s", p->args[0], boxlite_error_last());
    else if (p->terminal && p->rows && p->cols)
        boxlite_exec_resize(*out, p->rows, p->cols);
    bl_oci_pod_argv_free(pod_argv);
    return rc;
}

/* Pump output until the process's streams end, then wait for it: its exit status. */
static int exec_finish(boxlite_exec *ex, int tty)
{
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    struct pump pump = {ex};
    pthread_t th;
    char buf[32768];
    int rc, which = 0;
    size_t n = 0;

    if (pthread_create(&th, NULL, pump_stdin, &pump) == 0)
        pthread_detach(th);
    else
        boxlite_exec_close_stdin(ex);
    for (;;) {
        forward(ex, tty);
        rc = boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof buf, &n,
                               200);
        if (rc == BOXLITE_EAGAIN)
            continue;
        if (rc != 0 || n == 0)
            break;
        /* a reader that went away drops the output; the process goes on */
        (void)bl_oci_write_all(which == BOXLITE_STDERR ? 2 : 1, buf, n);
    }
    do {
        forward(ex, tty);
        rc = boxlite_exec_wait_v2(&res, ex, 200);
    } while (rc == BOXLITE_ETIMEOUT);
    if (rc != 0) {
        bl_oci_log("error", "process: %s", boxlite_error_last());
        return 255;
    }
    if (res.message[0])
        dprintf(2, "boxlite-runtime: %s\n", res.message);
    return res.exit_code & 0xff;
}

/* ---- created: waiting for start ---- */

static int ctl_listen(const char *id)
{
    char dir[4200], path[64];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dfd, fd = -1;

    if (bl_oci_path(dir, sizeof dir, id, NULL) < 0)
        return -1;
    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    /* through /proc/self/fd: state paths can be longer than sun_path */
    snprintf(path, sizeof path, "/proc/self/fd/%d/ctl.sock", dfd);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlinkat(dfd, "ctl.sock", 0);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0)) {
        close(fd);
        fd = -1;
    }
    close(dfd);
    return fd;
}

/* Wait for a "start" request; returns the connection to answer, or -(signal) when a signal
 * ended the container before it started. */
static int wait_start(int lfd)
{
    for (;;) {
        struct pollfd p[2] = {{lfd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
        char line[16] = "";
        int sig, c;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return -SIGKILL;
        while ((sig = signal_next()) != 0)
            if (sig != SIGWINCH && sig != SIGCONT)
                return -sig;
        if (!(p[0].revents & POLLIN))
            continue;
        c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        if (read(c, line, sizeof line - 1) > 0 && strncmp(line, "start", 5) == 0)
            return c;
        close(c);
    }
}

static void mark_started(const char *id)
{
    char path[4200];
    int fd;

    if (bl_oci_path(path, sizeof path, id, "started") == 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
}

/* ---- the keeper's life ---- */

static void report(int fd, const char *msg)
{
    (void)bl_oci_write_all(fd, msg, strlen(msg));
    close(fd);
}

/* Into spec's network namespace, if it names one; *started_in: the namespace before. */
static int enter_netns(const struct bl_oci_spec *spec, struct stat *started_in)
{
    int fd;

    if (stat("/proc/self/ns/net", started_in) != 0)
        memset(started_in, 0, sizeof *started_in);
    if (!spec || spec->netns != 2 || spec->pod_role == BL_OCI_POD_CONTAINER)
        return 0;
    fd = open(spec->netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return bl_oci_fail("network namespace %s: %s", spec->netns_path, strerror(e));
    }
    close(fd);
    return 0;
}

/* A container's own box, or (exec, a pod container) the running box it joins; a pod
 * container's rootfs goes into it now. */
static int keeper_boot(boxlite_box **box, boxlite_runtime *rt, const struct bl_oci_keeper *k)
{
    if (k->spec && k->pod_role != BL_OCI_POD_CONTAINER)
        return bl_oci_box_make(box, rt, k->spec, k->bundle, k->image_name);
    if (boxlite_box_get(box, rt, k->box_id) != 0 || boxlite_box_start(*box) != 0)
        return bl_oci_fail("box %s: %s", k->box_id, boxlite_error_last());
    if (k->spec)
        return bl_oci_pod_prepare(*box, k->id, k->spec, k->bundle);
    return 0;
}

/* A pod's sandbox runs no process: the VM holds the pod's namespaces, which is all a pause
 * process is for. It is "running" until a signal that ends a process arrives. */
static int hold_pod(void)
{
    for (;;) {
        struct pollfd p = {sig_pipe[0], POLLIN, 0};
        int sig;
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return 255;
        while ((sig = signal_next()) != 0)
            if (sig != SIGWINCH && sig != SIGCONT && sig != SIGUSR1 && sig != SIGUSR2)
                return 128 + sig;
    }
}

static int keeper_run(const struct bl_oci_keeper *k, int status_fd)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_exec *ex = NULL;
    struct bl_oci_inbound *in = NULL;
    struct stat ns0;
    char msg[64];
    int code = 255, lfd = -1, conn = -1;

    if (signals_setup() < 0 || enter_netns(k->spec, &ns0) != 0 || bl_oci_runtime_open(&rt) != 0 ||
        keeper_boot(&box, rt, k) != 0)
        goto out;
    if (k->spec && k->pod_role != BL_OCI_POD_CONTAINER &&
        bl_oci_inbound_start(&in, rt, box, k->spec, &ns0) != 0)
        goto out;
    if (k->spec && (lfd = ctl_listen(k->id)) < 0) {
        bl_oci_fail("%s: control socket: %s", k->id, strerror(errno));
        goto out;
    }
    if (!k->spec && exec_begin(&ex, box, k) != 0)
        goto out;
    snprintf(msg, sizeof msg, "ok %s\n", boxlite_box_id(box));
    report(status_fd, msg);
    status_fd = -1;
    if (k->spec) {
        conn = wait_start(lfd);
        if (conn < 0) {
            code = 128 - conn;
            goto out;
        }
        if (k->pod_role != BL_OCI_POD_SANDBOX && exec_begin(&ex, box, k) != 0) {
            report(conn, "error\n");
            goto out;
        }
        mark_started(k->id);
        report(conn, "ok\n");
    }
    code = k->spec && k->pod_role == BL_OCI_POD_SANDBOX ? hold_pod()
                                                        : exec_finish(ex, k->process->terminal);
out:
    if (status_fd >= 0)
        report(status_fd, "error\n");
    if (lfd >= 0)
        close(lfd);
    bl_oci_inbound_stop(in);
    boxlite_exec_free(ex);
    if (box && k->spec && k->pod_role != BL_OCI_POD_CONTAINER)
        boxlite_box_stop(box, 2000); /* a pod's VM goes with its sandbox only */
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return code;
}

/* In the keeper: a session of its own; with a terminal, the pty's slave as its controlling
 * terminal and stdio, raw (the guest's pty does the line discipline). */
static int keeper_stdio(int slave)
{
    struct termios t;

    setsid();
    if (slave < 0)
        return 0;
    if (ioctl(slave, TIOCSCTTY, 0) < 0 || tcgetattr(slave, &t) < 0)
        return -1;
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2)
        close(slave);
    return 0;
}

/* Send the pty master to the console socket, as runc does (SCM_RIGHTS, one fd). */
static int send_master(const char *sock_path, int master)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char data[] = "boxlite-runtime", cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {data, sizeof data - 1};
    struct msghdr mh = {0};
    struct cmsghdr *cm;
    int fd, rc = 0;

    if (strlen(sock_path) >= sizeof sa.sun_path)
        return bl_oci_fail("console socket path too long: %s", sock_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = bl_oci_fail("console socket %s: %s", sock_path, strerror(errno));
        goto out;
    }
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &master, sizeof(int));
    if (sendmsg(fd, &mh, 0) < 0)
        rc = bl_oci_fail("console socket %s: send: %s", sock_path, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int open_pty(int *master, int *slave)
{
    char *name;

    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0 || !(name = ptsname(*master)))
        return bl_oci_fail("pty: %s", strerror(errno));
    *slave = open(name, O_RDWR | O_NOCTTY);
    return *slave < 0 ? bl_oci_fail("pty %s: %s", name, strerror(errno)) : 0;
}

/* The parent's side: the keeper's first line says "ok BOXID" once it is ready. */
static int await_ready(char box_id_out[16], int fd)
{
    char line[64] = "";
    size_t n = 0;

    while (n < sizeof line - 1) {
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = '\0';
    if (strncmp(line, "ok ", 3) != 0)
        return 1; /* the keeper reported why */
    line[strcspn(line, "\n")] = '\0';
    if (strlen(line + 3) >= 16)
        return 1;
    memcpy(box_id_out, line + 3, strlen(line + 3) + 1);
    return 0;
}

int bl_oci_keeper_spawn(pid_t *pid_out, char box_id_out[16], const struct bl_oci_keeper *k)
{
    int st[2] = {-1, -1}, master = -1, slave = -1, rc = 1;
    pid_t pid;

    if (k->process->terminal && !k->console_socket)
        return bl_oci_fail("process.terminal is set: --console-socket is required");
    if (k->process->terminal && open_pty(&master, &slave) != 0)
        goto out;
    if (pipe2(st, O_CLOEXEC) < 0) {
        bl_oci_fail("pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        bl_oci_fail("fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(st[0]);
        if (master >= 0)
            close(master);
        if (chdir("/") < 0 || keeper_stdio(slave) < 0)
            _exit(255);
        _exit(keeper_run(k, st[1]));
    }
    close(st[1]);
    st[1] = -1;
    if (await_ready(box_id_out, st[0]) != 0) {
        waitpid(pid, NULL, 0);
        goto out;
    }
    if (master >= 0 && send_master(k->console_socket, master) != 0) {
        kill(pid, SIGKILL);
        goto out;
    }
    if (bl_oci_write_pid_file(k->pid_file, pid) != 0) {
        kill(pid, SIGKILL);
        goto out;
    }
    *pid_out = pid;
    rc = 0;
out:
    for (int i = 0; i < 2; i++)
        if (st[i] >= 0)
            close(st[i]);
    if (master >= 0)
        close(master);
    if (slave >= 0)
        close(slave);
    return rc;
}
