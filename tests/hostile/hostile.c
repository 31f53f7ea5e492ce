/* hostile.c — boxlite-hostile, a hostile guest for the test suite: run as root inside a real
 * box, it takes the agent's channel from PID 1 and answers the host's next request itself.
 *
 * How: pidfd_open(1) + pidfd_getfd of the agent's virtio-serial port fd; every thread of
 * PID 1 is PTRACE_SEIZEd and PTRACE_INTERRUPTed so the agent reads nothing; the tool then
 * answers one EXEC (any verb: copy-out, a command) with the crafted frames MODE names,
 * answers PINGs, lingers a moment for the host's late frames, and detaches (the agent
 * resumes). It forks into the background first so that the `boxlite exec` that started it
 * returns; "boxlite-hostile: ready MODE" on /dev/console (the host's console.log) says the
 * channel is taken. Modes: see `modes` below. Static, musl-gcc, like the agent. */
#include "proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define SERVE_MS  120000 /* give up waiting for the host's request after this */
#define LINGER_MS 1500   /* after the answer: take the host's late frames (WINDOW, SIGNAL) */
#define MAX_TASKS 64

static int port = -1;
static pid_t tasks[MAX_TASKS];
static int ntasks;
static uint8_t in[BL_FRAME_HDR + BL_FRAME_MAX];
static size_t in_len;
static uint32_t credit;    /* stdout credit the host gave the stream we answer */
static uint32_t stream;    /* the stream we answer, 0 until the EXEC arrives */
static size_t stdin_bytes; /* STDIN data the host sent on it */
static int stdin_ended;

static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);

    if (fd < 0)
        fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (fd >= 0) {
        dprintf(fd, "\r\nboxlite-hostile: %s\r\n", buf);
        close(fd);
    }
}

static long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* ---- taking the channel ---- */

static int find_port_fd(void)
{
    char path[300], link[256];
    struct dirent *de;
    DIR *d = opendir("/proc/1/fd");
    int found = -1;

    while (d && (de = readdir(d)) != NULL) {
        ssize_t n;
        snprintf(path, sizeof(path), "/proc/1/fd/%s", de->d_name);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strstr(link, "vport")) {
            found = atoi(de->d_name);
            break;
        }
    }
    if (d)
        closedir(d);
    return found;
}

static int stop_agent(void)
{
    struct dirent *de;
    DIR *d = opendir("/proc/1/task");

    while (d && (de = readdir(d)) != NULL && ntasks < MAX_TASKS) {
        pid_t t = atoi(de->d_name);
        int st;
        if (t <= 0)
            continue;
        if (ptrace(PTRACE_SEIZE, t, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, t, 0, 0) < 0) {
            say("ptrace %d: %s", t, strerror(errno));
            closedir(d);
            return -1;
        }
        tasks[ntasks++] = t;
        if (waitpid(t, &st, __WALL) < 0)
            say("waitpid %d: %s", t, strerror(errno));
    }
    if (d)
        closedir(d);
    return ntasks > 0 ? 0 : -1;
}

static void release_agent(void)
{
    for (int i = 0; i < ntasks; i++)
        ptrace(PTRACE_DETACH, tasks[i], 0, 0);
    ntasks = 0;
}

static int take_channel(void)
{
    int pidfd = (int)syscall(SYS_pidfd_open, 1, 0);
    int target = find_port_fd();

    if (pidfd < 0 || target < 0) {
        say("no pidfd or port fd (%s)", strerror(errno));
        return -1;
    }
    port = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
    close(pidfd);
    if (port < 0) {
        say("pidfd_getfd: %s", strerror(errno));
        return -1;
    }
    return stop_agent();
}

/* ---- frames ---- */

static void put_all(const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = write(port, b, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {port, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

/* A frame as the protocol has it, or with a header of our own choosing. */
static void raw_frame(uint32_t len, uint8_t version, uint8_t type, uint32_t sid, const void *p,
                      size_t n)
{
    uint8_t h[BL_FRAME_HDR];

    bl_frame_hdr_encode(h, type, sid, len);
    h[4] = version;
    put_all(h, sizeof(h));
    put_all(p, n);
}

static void frame(uint8_t type, uint32_t sid, const void *p, size_t n)
{
    raw_frame((uint32_t)n, BL_PROTO_VERSION, type, sid, p, n);
}

static void frame_u32(uint8_t type, uint32_t sid, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    frame(type, sid, b, 4);
}

static void send_exit(uint32_t kind, int32_t code, const char *msg)
{
    struct bl_wbuf w = {0};
    struct bl_exit e = {kind, code, (char *)msg};

    bl_exit_encode(&w, &e);
    frame(BL_F_EXIT, stream, w.data, w.len);
    bl_wbuf_free(&w);
}

/* Handle the host's frames already buffered: the first EXEC becomes our stream; WINDOW adds
 * credit; PING is answered. */
static void handle(const struct bl_frame *f)
{
    uint32_t fd = 0, n = 0;

    if (f->type == BL_F_PING)
        frame(BL_F_PONG, 0, f->payload, f->len);
    else if (f->type == BL_F_EXEC && stream == 0) {
        stream = f->stream;
        credit = BL_WINDOW_INIT;
    } else if (f->type == BL_F_WINDOW && f->stream == stream &&
               bl_u32x2_decode(f->payload, f->len, &fd, &n) == 0 && fd == 1)
        credit += n;
    else if (f->type == BL_F_STDIN && f->stream == stream) {
        stdin_bytes += f->len;
        stdin_ended |= f->len == 0;
    }
}

/* Read and handle frames until `until` says stop or ms pass; 0 when it said stop. */
static int pump(int (*until)(void), long ms)
{
    long end = now_ms() + ms;

    while (!until()) {
        struct pollfd pf = {port, POLLIN, 0};
        struct bl_frame f;
        long k, left = end - now_ms();
        ssize_t r;
        if (left <= 0)
            return -1;
        if (poll(&pf, 1, (int)(left < 200 ? left : 200)) <= 0)
            continue;
        r = read(port, in + in_len, sizeof(in) - in_len);
        if (r <= 0)
            continue;
        in_len += (size_t)r;
        while ((k = bl_frame_split(in, in_len, &f)) > 0) {
            handle(&f);
            memmove(in, in + k, in_len - (size_t)k);
            in_len -= (size_t)k;
        }
    }
    return 0;
}

static int have_exec(void)
{
    return stream != 0;
}

static int never(void)
{
    return 0;
}

static size_t want;
static int have_credit(void)
{
    return credit >= want;
}

/* STDOUT data within the credit the host gives, in protocol-sized chunks. */
static void send_stdout(const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n < BL_DATA_CHUNK ? n : BL_DATA_CHUNK;
        want = k;
        if (pump(have_credit, 30000) < 0)
            return;
        frame(BL_F_STDOUT, stream, p, k);
        credit -= (uint32_t)k;
        p += k;
        n -= k;
    }
}

static void end_streams(void)
{
    frame(BL_F_STDOUT, stream, NULL, 0);
    frame(BL_F_STDERR, stream, NULL, 0);
}

/* ---- tars ---- */

static uint8_t tar[1 << 20];
static size_t tar_len;

static void octal(uint8_t *f, size_t w, uint64_t v)
{
    if (v >> (3 * (w - 1))) { /* base-256, as GNU tar writes big numbers */
        memset(f, 0, w);
        f[0] = 0x80;
        for (size_t i = w - 1; i > 0 && v; i--, v >>= 8)
            f[i] = (uint8_t)v;
        return;
    }
    for (size_t i = w - 1; i > 0; i--, v >>= 3) /* w-1 octal digits and a NUL */
        f[i - 1] = (uint8_t)('0' + (v & 7));
    f[w - 1] = '\0';
}

/* One header block: type '0' file, '5' dir, '2' symlink, '1' hard link, '3' chr, '4' blk,
 * '6' fifo, 'S' GNU sparse (realsize and one chunk at chunk_off of `size` bytes). */
static uint8_t *header(const char *name, char type, unsigned mode, uint64_t size, const char *link)
{
    uint8_t *h = tar + tar_len;

    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    octal(h + 100, 8, mode);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, 1500000000);
    h[156] = (uint8_t)type;
    if (link)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    if (type == '3' || type == '4') {
        octal(h + 329, 8, type == '3' ? 1 : 8);
        octal(h + 337, 8, type == '3' ? 3 : 0);
    }
    tar_len += 512;
    return h;
}

static void checksum(uint8_t *h)
{
    unsigned sum = 0;

    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static void entry(const char *name, char type, unsigned mode, const char *data, const char *link)
{
    size_t n = data ? strlen(data) : 0;
    uint8_t *h = header(name, type, mode, n, link);

    checksum(h);
    memcpy(tar + tar_len, data ? data : "", n);
    tar_len += (n + 511) / 512 * 512;
}

/* A GNU sparse file of realsize bytes whose only data is 512 bytes at chunk_off. */
static void sparse(const char *name, uint64_t realsize, uint64_t chunk_off)
{
    uint8_t *h = header(name, 'S', 0644, 512, NULL);

    memcpy(h + 257, "ustar  ", 8); /* GNU magic: the sparse fields below are read */
    octal(h + 386, 12, chunk_off);
    octal(h + 398, 12, 512);
    octal(h + 483, 12, realsize);
    checksum(h);
    memset(tar + tar_len, 'S', 512);
    tar_len += 512;
}

/* A regular file whose header claims size bytes; only `have` of them follow. */
static void liar(const char *name, uint64_t size, size_t have)
{
    uint8_t *h = header(name, '0', 0644, size, NULL);

    checksum(h);
    memset(tar + tar_len, 'L', have);
    tar_len += have;
}

static void end_tar(void)
{
    memset(tar + tar_len, 0, 1024);
    tar_len += 1024;
}

/* ---- modes ---- */

static void tar_reply(void)
{
    frame_u32(BL_F_STARTED, stream, 4242);
    send_stdout(tar, tar_len);
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

static void m_beside(void)
{
    entry(".bashrc", '0', 0644, "pwned-bashrc\n", NULL);
    entry(".ssh/authorized_keys", '0', 0600, "pwned-key\n", NULL);
    end_tar();
    tar_reply();
}

static void m_dotdot(void)
{
    entry("x", '5', 0755, NULL, NULL);
    entry("x/../../escaped", '0', 0644, "pwned\n", NULL);
    end_tar();
    tar_reply();
}

static void m_abs(void)
{
    entry("/tmp/boxlite-hostile-abs", '0', 0644, "pwned\n", NULL);
    end_tar();
    tar_reply();
}

static void m_setuid(void)
{
    entry("x", '5', 07777, NULL, NULL);
    entry("x/suid", '0', 04755, "#!/bin/sh\n", NULL);
    entry("x/sgid", '0', 02777, "g\n", NULL);
    entry("x/sticky", '5', 01777, NULL, NULL);
    end_tar();
    tar_reply();
}

static void m_device(void)
{
    entry("x", '5', 0755, NULL, NULL);
    entry("x/null", '3', 0666, NULL, NULL);
    entry("x/sda", '4', 0666, NULL, NULL);
    entry("x/fifo", '6', 0666, NULL, NULL);
    entry("x/ok", '0', 0644, "ok\n", NULL);
    end_tar();
    tar_reply();
}

static void m_links(void)
{
    entry("x", '5', 0755, NULL, NULL);
    entry("x/l", '2', 0777, NULL, "/tmp");
    entry("x/l/boxlite-hostile-pwned", '0', 0644, "pwned\n", NULL);
    end_tar();
    tar_reply();
}

static void m_hardlink(void)
{
    entry("x", '5', 0755, NULL, NULL);
    entry("x/h", '1', 0644, NULL, "/etc/passwd");
    end_tar();
    tar_reply();
}

static void m_sparse1t(void)
{
    sparse("big", 1ull << 40, 0);
    end_tar();
    tar_reply();
}

static void m_sparse2g(void)
{
    sparse("big", 2ull << 30, (2ull << 30) - 512);
    end_tar();
    tar_reply();
}

static void m_size1t(void)
{
    liar("big", 1ull << 40, 4096);
    tar_reply();
}

static void m_short(void)
{
    liar("short", 100000, 1024);
    tar_reply();
}

static void m_exitcode(void)
{
    frame_u32(BL_F_STARTED, stream, 4242);
    send_stdout((const uint8_t *)"lies\n", 5);
    end_streams();
    send_exit(BL_EXIT_CODE, 123456789, "\x1b[2Jbogus");
}

static void m_exitkind(void)
{
    frame_u32(BL_F_STARTED, stream, 4242);
    end_streams();
    send_exit(77, -9, "");
}

static void m_malformed(void)
{
    static const uint8_t junk[7] = {1, 2, 3, 4, 5, 6, 7};

    frame(BL_F_STARTED, stream, junk, 3);             /* truncated */
    raw_frame(4, 9, BL_F_STDOUT, stream, "v9!\n", 4); /* wrong version */
    frame(200, stream, junk, sizeof(junk));           /* unknown type */
    frame(BL_F_STDOUT, 0x7fffffff, "nobody\n", 7);    /* unknown stream */
    frame(BL_F_EXIT, stream, junk, 5);                /* bad EXIT */
    frame_u32(BL_F_STARTED, stream, 4242);
    send_stdout((const uint8_t *)"after-junk\n", 11);
    end_streams();
    send_exit(BL_EXIT_CODE, 3, "");
}

/* A HELLO of another version in the middle of the connection: the host must not take the
 * box for one that speaks it (nor hang on it). */
static void m_badhello(void)
{
    static const uint8_t hello[] = {99, 0, 0, 0, 4, 0, 0, 0, 'e', 'v', 'i', 'l'};

    frame(BL_F_HELLO, 0, hello, sizeof(hello));
    frame_u32(BL_F_STARTED, stream, 4242);
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

static void m_overcredit(void)
{
    static uint8_t blob[BL_DATA_CHUNK];

    memset(blob, 'A', sizeof(blob));
    frame_u32(BL_F_STARTED, stream, 4242);
    for (int i = 0; i < 64; i++) /* 2 MiB against 256 KiB of credit */
        frame(BL_F_STDOUT, stream, blob, sizeof(blob));
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

static void m_hugechunk(void)
{
    static uint8_t blob[BL_FRAME_MAX]; /* a legal frame size, 4 windows of data at once */

    memset(blob, 'B', sizeof(blob));
    frame_u32(BL_F_STARTED, stream, 4242);
    frame(BL_F_STDOUT, stream, blob, sizeof(blob));
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

/* ---- tunnels (the `tunnel PORT` built-in): what a hostile relay can send ---- */

static void tunnel_connected(void)
{
    frame_u32(BL_F_STARTED, stream, 4242);
    frame(BL_F_STDERR, stream, NULL, 0); /* an empty stderr: "connected" */
}

/* Data on stream ids the host never opened, around our own. */
static void m_tstray(void)
{
    tunnel_connected();
    frame(BL_F_STDOUT, stream + 2, "stray-next\n", 11);
    frame(BL_F_STDOUT, 0x7fffffff, "stray-far\n", 10);
    frame(BL_F_STDOUT, 0, "stray-zero\n", 11);
    send_stdout((const uint8_t *)"mine\n", 5);
    frame(BL_F_STDOUT, stream + 4, "stray-late\n", 11);
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

/* 16 MiB without waiting for credit, then the ends. */
static void m_tflood(void)
{
    static uint8_t blob[BL_DATA_CHUNK];

    memset(blob, 'F', sizeof(blob));
    tunnel_connected();
    for (int i = 0; i < 512; i++)
        frame(BL_F_STDOUT, stream, blob, sizeof(blob));
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

static int stdin_done(void)
{
    return stdin_ended;
}

/* Never reads: no WINDOW for stdin; count what the host sends anyway for 8 s. */
static void m_tnoread(void)
{
    tunnel_connected();
    pump(stdin_done, 8000);
    say("stdin %zu", stdin_bytes);
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

/* Sends as fast as the host's credit allows for 8 s (its reader reads nothing). */
static void m_thoard(void)
{
    static uint8_t blob[BL_DATA_CHUNK];
    size_t sent = 0;
    long end = now_ms() + 8000;

    memset(blob, 'H', sizeof(blob));
    tunnel_connected();
    while (now_ms() < end && sent < (64u << 20)) {
        want = BL_DATA_CHUNK;
        if (pump(have_credit, end - now_ms()) < 0)
            break;
        frame(BL_F_STDOUT, stream, blob, sizeof(blob));
        credit -= BL_DATA_CHUNK;
        sent += BL_DATA_CHUNK;
    }
    say("sent %zu", sent);
    end_streams();
    send_exit(BL_EXIT_CODE, 0, "");
}

/* Says nothing at all about the connect (no STARTED, no stderr). */
static void m_tsilent(void)
{
    pump(never, 5000);
}

static void m_bigframe(void)
{
    frame_u32(BL_F_STARTED, stream, 4242);
    raw_frame(0xfffffff0u, BL_PROTO_VERSION, BL_F_STDOUT, stream, "x", 1);
}

static const struct {
    const char *name;
    void (*run)(void);
} modes[] = {
    {"beside", m_beside},     {"dotdot", m_dotdot},       {"abs", m_abs},
    {"setuid", m_setuid},     {"device", m_device},       {"links", m_links},
    {"hardlink", m_hardlink}, {"sparse1t", m_sparse1t},   {"sparse2g", m_sparse2g},
    {"size1t", m_size1t},     {"short", m_short},         {"exitcode", m_exitcode},
    {"exitkind", m_exitkind}, {"malformed", m_malformed}, {"overcredit", m_overcredit},
    {"bigframe", m_bigframe}, {"badhello", m_badhello},   {"hugechunk", m_hugechunk},
    {"t-stray", m_tstray},    {"t-flood", m_tflood},      {"t-noread", m_tnoread},
    {"t-hoard", m_thoard},    {"t-silent", m_tsilent},
};

/* --tar MODE: write the mode's archive to stdout (seed files for the untar fuzzer). */
static int dump_tar(void (*run)(void))
{
    port = open("/dev/null", O_WRONLY);
    stream = 1;
    credit = 1u << 30;
    run();
    return write(1, tar, tar_len) == (ssize_t)tar_len ? 0 : 1;
}

static int serve(void (*run)(void), const char *name)
{
    int devnull = open("/dev/null", O_RDWR);
    pid_t parent = getpid();

    if (fork() != 0) /* the parent returns at once: its exec must end before we stop the agent */
        return 0;
    setsid();
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    /* The agent reports the parent's exit once it has reaped it: wait for that, then a
     * moment for the frames to leave. */
    for (int i = 0; i < 300 && kill(parent, 0) == 0; i++)
        usleep(100000);
    usleep(500000);
    if (take_channel() < 0) {
        say("failed %s", name);
        return 1;
    }
    say("ready %s", name);
    if (pump(have_exec, SERVE_MS) == 0) {
        run();
        pump(never, LINGER_MS);
    }
    release_agent();
    say("done %s", name);
    return 0;
}

int main(int argc, char **argv)
{
    int dump = argc == 3 && strcmp(argv[1], "--tar") == 0;
    const char *m = dump ? argv[2] : argc == 2 ? argv[1] : "";

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(m, modes[i].name) == 0)
            return dump ? dump_tar(modes[i].run) : serve(modes[i].run, m);
    fprintf(stderr, "usage: boxlite-hostile [--tar] MODE\nmodes:");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        fprintf(stderr, " %s", modes[i].name);
    fprintf(stderr, "\n");
    return 2;
}
