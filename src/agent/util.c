/* util.c — small helpers of boxlite-agent: console logging, the monotonic clock, EINTR-safe
 * I/O, the kernel command line, and the last resort of PID 1 (sync and power off). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

int bl_debug;

static void vlog(const char *fmt, va_list ap)
{
    char buf[512];
    int n;
    int m;

    n = snprintf(buf, sizeof buf, "boxlite-agent: ");
    m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)m > sizeof buf - (size_t)n - 2)
        m = (int)(sizeof buf - (size_t)n - 2);
    n += m;
    buf[n++] = '\n';
    (void)bl_write_all(2, buf, (size_t)n);
}

void bl_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void bl_dbg(const char *fmt, ...)
{
    va_list ap;

    if (!bl_debug)
        return;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

uint64_t bl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int bl_set_nonblock(int fd)
{
    int fl;

    fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

ssize_t bl_read(int fd, void *buf, size_t n)
{
    ssize_t r;

    do
        r = read(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

ssize_t bl_write(int fd, const void *buf, size_t n)
{
    ssize_t r;

    do
        r = write(fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

int bl_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    ssize_t r;

    while (n > 0) {
        r = bl_write(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

void bl_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Copy the value of the first "key=..." word of the kernel command line. */
static int cmdline_find(const char *line, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *p = line;
    size_t n;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\n')
            p++;
        n = strcspn(p, " \n");
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            n -= klen + 1;
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, p + klen + 1, n);
            out[n] = '\0';
            return 0;
        }
        p += n;
    }
    return -1;
}

int bl_cmdline_get(const char *key, char *out, size_t outlen)
{
    char line[4096];
    ssize_t n;
    int fd;
    int ret = -1;

    fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    n = bl_read(fd, line, sizeof line - 1);
    if (n <= 0)
        goto out;
    line[n] = '\0';
    ret = cmdline_find(line, key, out, outlen);
out:
    if (fd >= 0)
        close(fd);
    return ret;
}

void bl_poweroff(void)
{
    sync();
    bl_unmount_rootfs();
    sync();
    reboot(RB_POWER_OFF);
    /* Only reached if reboot() failed: PID 1 must not return. */
    for (;;)
        pause();
}

void bl_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
    bl_log("fatal error, powering off");
    bl_poweroff();
}

int bl_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
