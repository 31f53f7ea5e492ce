/* identity.c — the snapshot built-ins: `freeze`/`thaw` (FIFREEZE/FITHAW on the box's root
 * filesystem for the instant of a disk cut; run in the exec child, chrooted into the box) and
 * `identity` (a restored or forked guest's fix-up: hostname, MAC, RNG reseed from host entropy,
 * clock step), answered by PID 1 itself (exec.c): a freshly restored VM under TCG would
 * otherwise first translate the fork, cgroup placement and user lookup of an exec child. The
 * fix-up is also the first part of a template's `attach` (template.c). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* From linux/fs.h and linux/random.h (not every musl toolchain carries kernel headers). */
#define BL_FIFREEZE      _IOWR('X', 119, int)
#define BL_FITHAW        _IOWR('X', 120, int)
#define BL_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define BL_RNDRESEEDCRNG _IO('R', 0x07)
#define ENTROPY_MAX      512

static int fail(const char *what, int err)
{
    dprintf(2, "%s: %s\n", what, strerror(err));
    return 1;
}

/* An identity part failed: the reason into msg, -1. */
static int id_fail(char *msg, size_t cap, const char *what, int err)
{
    snprintf(msg, cap, "%s: %s", what, strerror(err));
    return -1;
}

/* FIFREEZE or FITHAW on "/" (the box's root after the chroot). Thawing a filesystem that is
 * not frozen is not an error: thaw must be safe to repeat. */
static int freeze_root(int freeze)
{
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int arg = 0, rc = 0;

    if (fd < 0)
        return fail("open /", errno);
    if (ioctl(fd, freeze ? BL_FIFREEZE : BL_FITHAW, &arg) != 0 && !(!freeze && errno == EINVAL))
        rc = fail(freeze ? "FIFREEZE /" : "FITHAW /", errno);
    close(fd);
    return rc;
}

/* Mix hex-encoded host randomness into the kernel pool, credit it, and force the CRNG (and
 * every per-CPU CRNG) to reseed so no two forks draw the same bytes. */
static int reseed(const char *hex, char *msg, size_t cap)
{
    struct {
        int entropy_count;
        int buf_size;
        unsigned char buf[ENTROPY_MAX];
    } e;
    size_t n = strlen(hex) / 2;
    int fd, rc = 0;

    if (n == 0 || n > ENTROPY_MAX || strlen(hex) % 2)
        return id_fail(msg, cap, "entropy", EINVAL);
    for (size_t i = 0; i < n; i++) {
        int hi = bl_hexval(hex[2 * i]), lo = bl_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return id_fail(msg, cap, "entropy", EINVAL);
        e.buf[i] = (unsigned char)(hi << 4 | lo);
    }
    e.entropy_count = (int)n * 8;
    e.buf_size = (int)n;
    fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return id_fail(msg, cap, "open /dev/urandom", errno);
    if (ioctl(fd, BL_RNDADDENTROPY, &e) != 0)
        rc = id_fail(msg, cap, "RNDADDENTROPY", errno);
    if (rc == 0 && ioctl(fd, BL_RNDRESEEDCRNG) != 0)
        rc = id_fail(msg, cap, "RNDRESEEDCRNG", errno);
    close(fd);
    return rc;
}

static int set_mac(const char *mac, char *msg, size_t cap)
{
    struct ifreq ifr;
    unsigned v[6];
    int fd, rc = 0;

    if (sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return id_fail(msg, cap, "mac", EINVAL);
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    for (int i = 0; i < 6; i++)
        ifr.ifr_hwaddr.sa_data[i] = (char)v[i];
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return id_fail(msg, cap, "socket", errno);
    if (ioctl(fd, SIOCSIFHWADDR, &ifr) != 0 && errno != ENODEV)
        rc = id_fail(msg, cap, "SIOCSIFHWADDR eth0", errno);
    close(fd);
    return rc;
}

static int step_clock(const char *unix_ns, char *msg, size_t cap)
{
    long long ns = strtoll(unix_ns, NULL, 10);
    struct timeval tv;

    if (ns <= 0)
        return id_fail(msg, cap, "time", EINVAL);
    tv.tv_sec = (time_t)(ns / 1000000000LL);
    tv.tv_usec = (suseconds_t)(ns % 1000000000LL / 1000);
    return settimeofday(&tv, NULL) != 0 ? id_fail(msg, cap, "settimeofday", errno) : 0;
}

/* identity HOSTNAME MAC ENTROPY-HEX UNIX-NS; "-" leaves that part alone. */
int bl_identity_apply(const char *host, const char *mac, const char *hex, const char *unix_ns,
                      char *msg, size_t cap)
{
    int rc = 0;

    if (strcmp(host, "-") != 0 && sethostname(host, strlen(host)) != 0)
        rc = id_fail(msg, cap, "sethostname", errno);
    if (rc == 0 && strcmp(mac, "-") != 0)
        rc = set_mac(mac, msg, cap);
    if (rc == 0 && strcmp(hex, "-") != 0)
        rc = reseed(hex, msg, cap);
    if (rc == 0 && strcmp(unix_ns, "-") != 0)
        rc = step_clock(unix_ns, msg, cap);
    return rc;
}

int bl_builtin_identity(const struct bl_exec_req *req)
{
    if (req->argc == 1 && strcmp(req->argv[0], "freeze") == 0)
        return freeze_root(1);
    if (req->argc == 1 && strcmp(req->argv[0], "thaw") == 0)
        return freeze_root(0);
    return -1;
}
