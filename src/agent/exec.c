/* exec.c — the agent's process streams: one per EXEC, tracking its pid, forwarding stdout
 * and stderr within the host's credit, feeding stdin, signals, resize, timeouts and EXIT. */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_GRACE_MS 2000 /* SIGTERM → SIGKILL after a timeout */
#define TTY_DRAIN_MS  200  /* after exit, how long a pty may stay silent before EOF */
#define STDIN_CAP     BL_WINDOW_INIT

struct stream {
    struct stream *next;
    uint32_t id;
    pid_t pid;
    int tty;
    int pty;            /* master (tty execs), for resize; -1 otherwise */
    int out_fd[3];      /* [1] stdout, [2] stderr; -1 once at end of stream */
    uint32_t credit[3]; /* bytes the host accepts on [1] and [2] */
    int eof_sent[3];
    int in_fd;    /* -1 once closed */
    uint8_t *inq; /* bytes for stdin not yet written, at most STDIN_CAP */
    size_t inq_len;
    int in_eof; /* host ended stdin; close once inq is flushed */
    int exited;
    int status;
    uint64_t drain_deadline;
    uint64_t term_at, kill_at;
    int timed_out;
    int last_sig;
    unsigned cg; /* its cgroup (cgroup.c), 0 for none of its own */
    int dead;    /* EXIT sent; freed by sweep() */
};

/* What each polled fd is, filled by bl_streams_poll_fill. */
struct pslot {
    struct stream *s;
    int which; /* 0 stdin, 1 stdout, 2 stderr */
};

static struct stream *streams;
static struct pslot *slots;
static int nslots_cap;

static struct stream *find(uint32_t id)
{
    struct stream *s;

    for (s = streams; s != NULL; s = s->next)
        if (s->id == id && !s->dead)
            return s;
    return NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void stream_free(struct stream *s)
{
    if (s->out_fd[1] == s->pty)
        s->out_fd[1] = -1;
    close_fd(&s->out_fd[1]);
    close_fd(&s->out_fd[2]);
    close_fd(&s->in_fd);
    close_fd(&s->pty);
    bl_cgroup_release(s->cg);
    free(s->inq);
    free(s);
}

static void sweep(void)
{
    struct stream **pp = &streams;
    struct stream *s;

    while (*pp != NULL) {
        s = *pp;
        if (s->dead) {
            *pp = s->next;
            stream_free(s);
        } else {
            pp = &s->next;
        }
    }
}

int bl_streams_count(void)
{
    int n = 0;
    struct stream *s;

    for (s = streams; s != NULL; s = s->next)
        n++;
    return n;
}

/* ---- EXIT ---- */

static void send_exit(struct stream *s)
{
    struct bl_exit e = {.kind = BL_EXIT_CODE, .code = 0, .message = ""};
    struct bl_wbuf w = {0};

    if (WIFSIGNALED(s->status)) {
        e.kind = BL_EXIT_SIGNAL;
        e.code = WTERMSIG(s->status);
    } else {
        e.code = WEXITSTATUS(s->status);
    }
    if (s->timed_out) {
        e.kind = BL_EXIT_TIMEOUT;
        e.code = WIFSIGNALED(s->status) ? WTERMSIG(s->status) : s->last_sig;
    }
    (void)bl_exit_encode(&w, &e);
    bl_send_wbuf(BL_F_EXIT, s->id, &w);
    bl_wbuf_free(&w);
}

static void maybe_finish(struct stream *s)
{
    if (s->dead || !s->exited || !s->eof_sent[1] || !s->eof_sent[2])
        return;
    send_exit(s);
    s->dead = 1;
}

/* ---- output ---- */

static void out_eof(struct stream *s, int which)
{
    if (s->out_fd[which] != s->pty)
        close(s->out_fd[which]);
    s->out_fd[which] = -1;
    s->eof_sent[which] = 1;
    bl_send(which == 1 ? BL_F_STDOUT : BL_F_STDERR, s->id, NULL, 0);
    maybe_finish(s);
}

/* After the process exited, "nothing buffered" means end of stream: a background
 * grandchild holding the pipe must not hang the exec. A pty gets a short grace period
 * because its last output may still be on its way through the line discipline. */
static int drained(const struct stream *s)
{
    if (!s->exited)
        return 0;
    return !s->tty || bl_now_ms() >= s->drain_deadline;
}

static void read_out(struct stream *s, int which)
{
    size_t n = s->credit[which];
    uint8_t *buf;
    ssize_t r;

    if (n > BL_DATA_CHUNK)
        n = BL_DATA_CHUNK;
    if (n == 0 || s->out_fd[which] < 0)
        return;
    buf = malloc(BL_FRAME_HDR + n);
    if (buf == NULL)
        return;
    r = bl_read(s->out_fd[which], buf + BL_FRAME_HDR, n);
    if (r > 0) {
        s->credit[which] -= (uint32_t)r;
        bl_send_owned(which == 1 ? BL_F_STDOUT : BL_F_STDERR, s->id, buf, (size_t)r);
        return;
    }
    free(buf);
    if (r < 0 && errno == EAGAIN && !drained(s))
        return;
    out_eof(s, which); /* 0, EIO (pty slave closed), EAGAIN after exit, or an error */
}

/* ---- stdin ---- */

static void close_stdin(struct stream *s)
{
    static const char eot = 4; /* ^D: end of input for a pty in canonical mode */

    if (s->in_fd < 0)
        return;
    if (s->tty)
        (void)bl_write(s->in_fd, &eot, 1);
    close_fd(&s->in_fd);
}

static void flush_stdin(struct stream *s)
{
    size_t done = 0;
    ssize_t r;

    while (s->in_fd >= 0 && done < s->inq_len) {
        r = bl_write(s->in_fd, s->inq + done, s->inq_len - done);
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            close_fd(&s->in_fd); /* EPIPE: nobody reads; the rest is dropped */
            done = s->inq_len;
            break;
        }
        done += (size_t)r;
    }
    if (s->in_fd < 0)
        done = s->inq_len;
    if (done > 0) {
        memmove(s->inq, s->inq + done, s->inq_len - done);
        s->inq_len -= done;
        bl_send_u32x2(BL_F_WINDOW, s->id, 0, (uint32_t)done);
    }
    if (s->inq_len == 0 && s->in_eof)
        close_stdin(s);
}

void bl_stream_stdin(uint32_t stream, const uint8_t *data, size_t len)
{
    struct stream *s = find(stream);

    if (s == NULL) {
        bl_send_error(stream, BL_PE_STREAM, "STDIN for unknown stream %u", stream);
        return;
    }
    if (s->in_eof && len > 0) {
        bl_send_error(stream, BL_PE_STREAM, "STDIN after end of input");
        return;
    }
    if (len == 0) {
        s->in_eof = 1;
    } else if (s->in_fd < 0) {
        bl_send_u32x2(BL_F_WINDOW, s->id, 0, (uint32_t)len); /* discarded, credit back */
        return;
    } else if (s->inq_len + len > STDIN_CAP) {
        bl_send_error(stream, BL_PE_INVALID, "STDIN beyond the granted window; dropped");
        return;
    } else {
        if (s->inq == NULL)
            s->inq = malloc(STDIN_CAP);
        if (s->inq == NULL) {
            bl_send_error(stream, BL_PE_NOMEM, "no memory for stdin");
            return;
        }
        memcpy(s->inq + s->inq_len, data, len);
        s->inq_len += len;
    }
    flush_stdin(s);
}

/* ---- other stream frames ---- */

void bl_stream_signal(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct stream *s = find(stream);
    uint32_t sig;
    int rc;

    rc = bl_u32_decode(payload, len, &sig);
    if (rc < 0 || sig == 0 || sig >= 65) {
        bl_send_error(stream, rc < 0 ? rc : -BL_PE_INVALID, "bad SIGNAL payload");
        return;
    }
    if (s == NULL) {
        bl_send_error(stream, BL_PE_STREAM, "SIGNAL for unknown stream %u", stream);
        return;
    }
    if (s->exited)
        return;
    if (kill(-s->pid, (int)sig) < 0)
        (void)kill(s->pid, (int)sig);
    if (sig == SIGKILL) /* and whatever it started that left its process group */
        bl_cgroup_kill(s->cg);
}

void bl_stream_window(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct stream *s = find(stream);
    uint32_t fd, n;
    int rc;

    rc = bl_u32x2_decode(payload, len, &fd, &n);
    if (rc < 0 || fd > 2) {
        bl_send_error(stream, rc < 0 ? rc : -BL_PE_INVALID, "bad WINDOW payload");
        return;
    }
    if (s == NULL) {
        bl_send_error(stream, BL_PE_STREAM, "WINDOW for unknown stream %u", stream);
        return;
    }
    if (fd == 0)
        return; /* the agent sends stdin to no one: host credit for fd 0 is moot */
    s->credit[fd] = n > UINT32_MAX - s->credit[fd] ? UINT32_MAX : s->credit[fd] + n;
}

void bl_stream_resize(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct stream *s = find(stream);
    uint32_t rows, cols;
    int rc;

    rc = bl_u32x2_decode(payload, len, &rows, &cols);
    if (rc < 0) {
        bl_send_error(stream, rc, "bad RESIZE payload");
        return;
    }
    if (s == NULL || s->pty < 0) {
        bl_send_error(stream, BL_PE_STREAM, "RESIZE for a stream without a tty");
        return;
    }
    (void)bl_pty_resize(s->pty, rows, cols);
}

/* ---- starting ---- */

static struct stream *stream_new(uint32_t id, pid_t pid, const struct spawn_io *io, int tty,
                                 unsigned cg)
{
    struct stream *s;

    s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->id = id;
    s->pid = pid;
    s->tty = tty;
    s->cg = cg;
    s->pty = io->pty;
    s->out_fd[0] = -1;
    s->out_fd[1] = io->out_r;
    s->out_fd[2] = io->err_r;
    s->in_fd = io->in_w;
    s->credit[1] = BL_WINDOW_INIT;
    s->credit[2] = BL_WINDOW_INIT;
    s->next = streams;
    streams = s;
    return s;
}

static void send_nostart(uint32_t id, int err, const char *msg)
{
    struct bl_exit e = {.kind = BL_EXIT_NOSTART, .code = err, .message = (char *)msg};
    struct bl_wbuf w = {0};

    (void)bl_exit_encode(&w, &e);
    bl_send_wbuf(BL_F_EXIT, id, &w);
    bl_wbuf_free(&w);
}

void bl_builtin_done(uint32_t stream, int code, const char *msg)
{
    struct bl_exit e = {.kind = BL_EXIT_CODE, .code = code, .message = (char *)msg};
    struct bl_wbuf w = {0};

    bl_send_u32(BL_F_STARTED, stream, 1);
    (void)bl_exit_encode(&w, &e);
    bl_send_wbuf(BL_F_EXIT, stream, &w);
    bl_wbuf_free(&w);
}

/* `identity HOSTNAME MAC ENTROPY-HEX UNIX-NS` in PID 1 (identity.c does the work): EXIT code 1
 * with the failing part in the message. */
static void identity_in_pid1(uint32_t stream, const struct bl_exec_req *req)
{
    char msg[200] = "";
    int rc = -1;

    if (req->argc != 5)
        snprintf(msg, sizeof msg, "identity: %u arguments, not 4", req->argc - 1);
    else
        rc = bl_identity_apply(req->argv[1], req->argv[2], req->argv[3], req->argv[4], msg,
                               sizeof msg);
    if (rc != 0)
        bl_log("identity: %s", msg);
    bl_builtin_done(stream, rc == 0 ? 0 : 1, msg);
}

void bl_exec_start(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct bl_exec_req req;
    struct spawn_io io;
    struct stream *s;
    char msg[240] = "";
    unsigned cg = 0;
    int cg_fd = -1, err;
    pid_t pid;
    int rc;

    if (stream == 0 || find(stream) != NULL) {
        bl_send_error(stream, BL_PE_STREAM, "EXEC on stream %u: %s", stream,
                      stream == 0 ? "stream 0 is the control stream" : "stream in use");
        return;
    }
    rc = bl_exec_req_decode(&req, payload, len);
    if (rc < 0) {
        bl_send_error(stream, rc, "EXEC: %s", bl_proto_strerror(rc));
        return;
    }
    if ((req.flags & BL_EXEC_BUILTIN) && strcmp(req.argv[0], "attach") == 0) {
        bl_template_attach(stream, &req); /* in PID 1: its mounts are the agent's */
        goto out;
    }
    if ((req.flags & BL_EXEC_BUILTIN) && strcmp(req.argv[0], "identity") == 0) {
        identity_in_pid1(stream, &req); /* in PID 1: no child to fork, no user to look up */
        goto out;
    }
    if (bl_template_waiting()) {
        send_nostart(stream, EAGAIN, "the box's disk is not attached yet");
        goto out;
    }
    /* The workload goes into a cgroup of its own; the agent's built-ins stay with the agent. */
    if (!(req.flags & BL_EXEC_BUILTIN))
        (void)bl_cgroup_new(&cg, &cg_fd);
    pid = bl_spawn(&req, &io, cg_fd, msg, sizeof msg);
    err = errno;
    if (cg_fd >= 0)
        close(cg_fd);
    if (pid < 0) {
        bl_cgroup_release(cg); /* (its unreaped child may still be in it: then later) */
        send_nostart(stream, err, msg);
        goto out;
    }
    s = stream_new(stream, pid, &io, (req.flags & BL_EXEC_TTY) != 0, cg);
    if (s == NULL) {
        /* Cannot track it: kill it (reaped as an orphan) and say so. */
        kill(-pid, SIGKILL);
        bl_cgroup_kill(cg);
        bl_cgroup_release(cg);
        send_nostart(stream, ENOMEM, "out of memory");
        goto out;
    }
    bl_send_u32(BL_F_STARTED, stream, (uint32_t)pid);
    if (req.timeout_ms > 0)
        s->term_at = bl_now_ms() + req.timeout_ms;
    if (s->tty) {
        s->eof_sent[2] = 1;
        bl_send(BL_F_STDERR, stream, NULL, 0);
    }
out:
    bl_exec_req_clear(&req);
}

/* ---- the poll loop's view ---- */

static int ensure_slots(int n)
{
    struct pslot *p;

    if (n <= nslots_cap)
        return 0;
    p = realloc(slots, (size_t)n * sizeof *p);
    if (p == NULL)
        return -1;
    slots = p;
    nslots_cap = n;
    return 0;
}

static int add_slot(struct pollfd *pfd, int n, struct stream *s, int which, short ev)
{
    pfd[n].fd = which == 0 ? s->in_fd : s->out_fd[which];
    pfd[n].events = ev;
    pfd[n].revents = 0;
    slots[n].s = s;
    slots[n].which = which;
    return n + 1;
}

int bl_streams_poll_fill(struct pollfd *pfd, int max, int out_ok)
{
    struct stream *s;
    int n = 0;
    int w;

    if (ensure_slots(max) < 0)
        return 0;
    for (s = streams; s != NULL && n + 3 <= max; s = s->next) {
        for (w = 1; w <= 2; w++)
            if (out_ok && s->out_fd[w] >= 0 && s->credit[w] > 0)
                n = add_slot(pfd, n, s, w, POLLIN);
        if (s->in_fd >= 0 && s->inq_len > 0)
            n = add_slot(pfd, n, s, 0, POLLOUT);
    }
    return n;
}

void bl_streams_poll_done(const struct pollfd *pfd, int n)
{
    struct stream *s;
    int i;

    for (i = 0; i < n; i++) {
        s = slots[i].s;
        if (pfd[i].revents == 0 || s->dead)
            continue;
        if (slots[i].which == 0)
            flush_stdin(s);
        else
            read_out(s, slots[i].which);
    }
    sweep();
}

/* Streams whose process has exited: read what is left without waiting for POLLIN. */
int bl_streams_work_pending(void)
{
    struct stream *s;
    int w;

    if (bl_chan_queued() >= OUTQ_HIGH)
        return 0;
    for (s = streams; s != NULL; s = s->next)
        for (w = 1; w <= 2; w++)
            if (s->exited && !s->tty && s->out_fd[w] >= 0 && s->credit[w] > 0)
                return 1;
    return 0;
}

static void drain_exited(void)
{
    struct stream *s;
    int w;

    if (bl_chan_queued() >= OUTQ_HIGH)
        return;
    for (s = streams; s != NULL; s = s->next)
        for (w = 1; w <= 2; w++)
            if (s->exited && !s->dead && s->out_fd[w] >= 0 && drained(s))
                read_out(s, w);
}

void bl_streams_reaped(pid_t pid, int status)
{
    struct stream *s;

    for (s = streams; s != NULL; s = s->next) {
        if (s->pid != pid || s->exited)
            continue;
        s->exited = 1;
        s->status = status;
        if (s->timed_out) { /* what is left of a timed-out exec goes too (a child that trapped
                             * TERM, one that left the process group) */
            (void)kill(-s->pid, SIGKILL);
            bl_cgroup_kill(s->cg);
        }
        s->drain_deadline = bl_now_ms() + TTY_DRAIN_MS;
        s->term_at = 0;
        s->kill_at = 0;
        maybe_finish(s);
        break;
    }
    sweep();
}

/* Shutdown: each exited process's stream ends now — what its pipes hold within credit, EOF,
 * EXIT with its real status — whatever else still holds the pipes, so the host records how
 * each process ended (a main process that trapped SIGTERM: its own code) before the VM goes. */
void bl_streams_end_exited(void)
{
    struct stream *s;

    for (s = streams; s != NULL; s = s->next) {
        if (!s->exited || s->dead)
            continue;
        for (int w = 1; w <= 2; w++) {
            for (int i = 0; i < 16 && s->out_fd[w] >= 0 && s->credit[w] > 0; i++)
                read_out(s, w);
            if (s->out_fd[w] >= 0)
                out_eof(s, w);
        }
    }
    sweep();
}

static void timeout_step(struct stream *s, uint64_t now)
{
    if (s->exited)
        return;
    if (s->term_at != 0 && now >= s->term_at) {
        s->term_at = 0;
        s->timed_out = 1;
        s->last_sig = SIGTERM;
        s->kill_at = now + KILL_GRACE_MS;
        (void)kill(-s->pid, SIGTERM);
        (void)kill(s->pid, SIGTERM);
    }
    if (s->kill_at != 0 && now >= s->kill_at) {
        s->kill_at = 0;
        s->last_sig = SIGKILL;
        (void)kill(-s->pid, SIGKILL);
        (void)kill(s->pid, SIGKILL);
        bl_cgroup_kill(s->cg);
    }
}

void bl_streams_timers(void)
{
    uint64_t now = bl_now_ms();
    struct stream *s;

    for (s = streams; s != NULL; s = s->next)
        timeout_step(s, now);
    drain_exited();
    sweep();
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

uint64_t bl_streams_next_deadline(void)
{
    uint64_t d = 0;
    struct stream *s;

    for (s = streams; s != NULL; s = s->next) {
        d = earlier(d, s->term_at);
        d = earlier(d, s->kill_at);
        if (s->exited && s->tty && s->out_fd[1] >= 0)
            d = earlier(d, s->drain_deadline);
    }
    return d;
}
