/* spawn.c — starting one exec request: its pipes or pty, the fork, and everything the child
 * does before execve (session, stdio, chroot, cwd, user, env, PATH search, error report). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What the child sends back through its CLOEXEC pipe when it cannot exec. */
struct spawn_err {
    int err;
    char msg[240];
};

/* The child's ends of its stdio (all -1 when unused). */
struct child_fds {
    int in, out, err;
    int tty; /* pty slave, also in/out/err */
};

/* ---- in the child ---- */

static void __attribute__((noreturn)) child_fail(int errpipe, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void child_fail(int errpipe, int err, const char *fmt, ...)
{
    struct spawn_err e;
    va_list ap;

    memset(&e, 0, sizeof e);
    e.err = err;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    (void)bl_write_all(errpipe, &e, sizeof e);
    _exit(127);
}

static int env_has(char *const *env, const char *key)
{
    size_t n = strlen(key);

    for (; *env != NULL; env++)
        if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
            return 1;
    return 0;
}

/* The request's env plus PATH, HOME (and TERM for a tty) when it lacks them. */
static char **child_env(const struct bl_exec_req *req, const struct bl_user *u)
{
    static char home[300];
    char **env;
    size_t n = 0;
    uint32_t i;

    env = calloc((size_t)req->envc + 4, sizeof *env);
    if (env == NULL)
        return NULL;
    for (i = 0; i < req->envc; i++)
        env[n++] = req->env[i];
    if (!env_has(req->env, "PATH"))
        env[n++] = DEFAULT_PATH;
    if (!env_has(req->env, "HOME")) {
        snprintf(home, sizeof home, "HOME=%s", u->home);
        env[n++] = home;
    }
    if ((req->flags & BL_EXEC_TTY) && !env_has(req->env, "TERM"))
        env[n++] = "TERM=xterm";
    env[n] = NULL;
    return env;
}

static const char *env_get(char *const *env, const char *key)
{
    size_t n = strlen(key);

    for (; *env != NULL; env++)
        if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* execve argv[0], searching PATH (inside the chroot) when it has no '/'. Returns the
 * errno of the failure that best describes it (EACCES wins over ENOENT, as in shells). */
static int exec_search(char *const *argv, char *const *env)
{
    const char *path;
    const char *p;
    char full[4096];
    size_t dlen;
    int err = ENOENT;

    if (strchr(argv[0], '/') != NULL) {
        execve(argv[0], argv, env);
        return errno;
    }
    path = env_get(env, "PATH");
    if (path == NULL)
        path = DEFAULT_PATH + 5;
    for (p = path;; p += dlen + 1) {
        dlen = strcspn(p, ":");
        if (snprintf(full, sizeof full, "%.*s%s%s", (int)dlen, dlen ? p : ".",
                     dlen && p[dlen - 1] == '/' ? "" : "/", argv[0]) < (int)sizeof full) {
            execve(full, argv, env);
            if (errno == EACCES)
                err = EACCES;
            else if (errno != ENOENT && errno != ENOTDIR)
                return errno;
        }
        if (p[dlen] == '\0')
            break;
    }
    return err;
}

static void child_stdio(const struct child_fds *c, int errpipe)
{
    if (c->tty >= 0) {
        if (ioctl(c->tty, TIOCSCTTY, 0) < 0)
            child_fail(errpipe, errno, "tty: TIOCSCTTY: %s", strerror(errno));
        if (dup2(c->tty, 0) < 0 || dup2(c->tty, 1) < 0 || dup2(c->tty, 2) < 0)
            child_fail(errpipe, errno, "tty: dup2: %s", strerror(errno));
        return;
    }
    if (dup2(c->in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0)
        child_fail(errpipe, errno, "stdio: dup2: %s", strerror(errno));
}

static void child_reset_signals(void)
{
    sigset_t all;
    int sig;

    for (sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* BL_EXEC_RO_ROOT: a mount namespace of the process's own where the box's root is a read-only
 * bind (the filesystem stays writable for the agent and other processes; volumes and the
 * guest's /proc, /dev keep their own mounts and modes). */
static int child_ro_root(void)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return mount(NULL, ROOTFS, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
}

/* The request's rlimits (the OCI process.rlimits), set as root before the user switch, so
 * limits above the agent's own are allowed; UINT64_MAX is RLIM_INFINITY. */
static void child_rlimits(const struct bl_exec_req *req, int errpipe)
{
    for (uint32_t i = 0; i < req->nrlimits; i++) {
        const struct bl_exec_rlimit *l = &req->rlimits[i];
        struct rlimit r = {l->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->soft,
                           l->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->hard};
        if (setrlimit((int)l->resource, &r) < 0)
            child_fail(errpipe, errno, "setrlimit %u (%llu/%llu) in the guest: %s", l->resource,
                       (unsigned long long)l->soft, (unsigned long long)l->hard, strerror(errno));
    }
}

static void child_user(const struct bl_user *u, int errpipe, const char *spec)
{
    if (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
        child_fail(errpipe, errno, "user \"%s\": %s", spec, strerror(errno));
}

static void __attribute__((noreturn))
child_main(const struct bl_exec_req *req, const struct child_fds *c, int cg_fd, int errpipe)
{
    char msg[200] = "";
    struct bl_user u;
    const char *cwd;
    char **env;
    int err;

    child_reset_signals();
    if (setsid() < 0)
        child_fail(errpipe, errno, "setsid: %s", strerror(errno));
    if (cg_fd >= 0 && bl_cgroup_enter(cg_fd) < 0)
        child_fail(errpipe, errno, "enter the workload's cgroup: %s", strerror(errno));
    child_stdio(c, errpipe);
    if ((req->flags & BL_EXEC_RO_ROOT) && child_ro_root() < 0)
        child_fail(errpipe, errno, "read-only root: %s", strerror(errno));
    if (chroot(ROOTFS) < 0 || chdir("/") < 0)
        child_fail(errpipe, errno, "chroot %s: %s", ROOTFS, strerror(errno));
    if (bl_user_resolve(req->user, &u, msg, sizeof msg) < 0)
        child_fail(errpipe, errno, "%s", msg);
    child_rlimits(req, errpipe);
    cwd = req->cwd != NULL && req->cwd[0] != '\0' ? req->cwd : "/";
    if (chdir(cwd) < 0)
        child_fail(errpipe, errno, "chdir \"%s\": %s", cwd, strerror(errno));
    child_user(&u, errpipe, req->user != NULL ? req->user : "");
    env = child_env(req, &u);
    if (env == NULL)
        child_fail(errpipe, ENOMEM, "out of memory");
    if (req->flags & BL_EXEC_BUILTIN) {
        close(errpipe); /* started: what fails now is reported on stderr and the exit status */
        _exit(bl_builtin_main(req));
    }
    err = exec_search(req->argv, env);
    child_fail(errpipe, err, "exec \"%s\": %s", req->argv[0], strerror(err));
}

/* ---- in the agent ---- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int bl_pty_resize(int fd, uint32_t rows, uint32_t cols)
{
    struct winsize ws;

    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)(rows > 0xffff ? 0xffff : rows);
    ws.ws_col = (unsigned short)(cols > 0xffff ? 0xffff : cols);
    return ioctl(fd, TIOCSWINSZ, &ws);
}

/* A pty of the rootfs' devpts instance (so the child sees /dev/pts/N): master into
 * io->pty/out_r/in_w, slave into c->tty. */
static int open_pty(const struct bl_exec_req *req, struct spawn_io *io, struct child_fds *c)
{
    char path[64];
    unsigned n;
    int unlock = 0;

    io->pty = open(ROOTFS "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (io->pty < 0)
        return -1;
    if (ioctl(io->pty, TIOCSPTLCK, &unlock) < 0 || ioctl(io->pty, TIOCGPTN, &n) < 0)
        return -1;
    snprintf(path, sizeof path, ROOTFS "/dev/pts/%u", n);
    c->tty = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c->tty < 0)
        return -1;
    if (req->rows > 0 && req->cols > 0)
        (void)bl_pty_resize(io->pty, req->rows, req->cols);
    io->out_r = io->pty;
    io->in_w = fcntl(io->pty, F_DUPFD_CLOEXEC, 3);
    return io->in_w < 0 ? -1 : 0;
}

static int open_pipes(struct spawn_io *io, struct child_fds *c)
{
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int i;

    for (i = 0; i < 3; i++)
        if (pipe2(p[i], O_CLOEXEC) < 0)
            goto fail;
    c->in = p[0][0];
    io->in_w = p[0][1];
    io->out_r = p[1][0];
    c->out = p[1][1];
    io->err_r = p[2][0];
    c->err = p[2][1];
    if (bl_set_nonblock(io->in_w) < 0 || bl_set_nonblock(io->out_r) < 0 ||
        bl_set_nonblock(io->err_r) < 0)
        return -1;
    return 0;
fail:
    for (i = 0; i < 3; i++) {
        close_fd(&p[i][0]);
        close_fd(&p[i][1]);
    }
    return -1;
}

static void close_child_fds(struct child_fds *c)
{
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
    close_fd(&c->tty);
}

static void close_io(struct spawn_io *io)
{
    if (io->out_r == io->pty)
        io->out_r = -1;
    close_fd(&io->in_w);
    close_fd(&io->out_r);
    close_fd(&io->err_r);
    close_fd(&io->pty);
}

/* Wait for exec (EOF on the CLOEXEC pipe) or the child's report of why it failed. */
static int wait_exec(int fd, char *msg, size_t msglen)
{
    struct spawn_err e;
    size_t got = 0;
    ssize_t r;

    while (got < sizeof e) {
        r = bl_read(fd, (char *)&e + got, sizeof e - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == 0)
        return 0;
    e.msg[sizeof e.msg - 1] = '\0';
    snprintf(msg, msglen, "%s", got == sizeof e ? e.msg : "child failed before exec");
    errno = got == sizeof e ? e.err : EIO;
    return -1;
}

pid_t bl_spawn(const struct bl_exec_req *req, struct spawn_io *io, int cg_fd, char *msg,
               size_t msglen)
{
    struct child_fds c = {-1, -1, -1, -1};
    int errpipe[2] = {-1, -1};
    pid_t pid = -1;
    int err = 0, entered;
    int rc;

    *io = (struct spawn_io){-1, -1, -1, -1};
    rc = (req->flags & BL_EXEC_TTY) ? open_pty(req, io, &c) : open_pipes(io, &c);
    if (rc < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
        err = errno;
        snprintf(msg, msglen, "%s: %s", (req->flags & BL_EXEC_TTY) ? "pty" : "pipe", strerror(err));
        goto out;
    }
    pid = bl_cgroup_fork(cg_fd, &entered);
    if (pid < 0) {
        err = errno;
        snprintf(msg, msglen, "fork: %s", strerror(err));
        goto out;
    }
    if (pid == 0) {
        close(errpipe[0]);
        child_main(req, &c, entered ? -1 : cg_fd, errpipe[1]);
    }
    close_fd(&errpipe[1]);
    if (wait_exec(errpipe[0], msg, msglen) < 0) {
        err = errno;
        pid = -1;
    }
out:
    close_fd(&errpipe[0]);
    close_fd(&errpipe[1]);
    close_child_fds(&c);
    if (pid < 0) {
        close_io(io);
        errno = err;
    }
    return pid;
}
