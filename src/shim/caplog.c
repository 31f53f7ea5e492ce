/* caplog.c — a log file the guest fills, capped: bytes go into NAME until it holds CAP, then
 * NAME becomes OLD and a new NAME starts (one older file kept), so no guest can fill the host
 * disk through it. Used for console.log (console.c) and main.log (mainproc.c). */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAPLOG_MIN 4096

static int open_name(const struct shim_caplog *l)
{
    return open(l->name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
}

int shim_caplog_open(struct shim_caplog *l, const char *name, const char *old, uint64_t cap,
                     int keep)
{
    struct stat st;

    l->name = name;
    l->old = old;
    l->cap = cap < CAPLOG_MIN ? CAPLOG_MIN : cap;
    if (!keep) {
        unlink(name);
        unlink(old);
    }
    l->fd = open_name(l);
    l->used = l->fd >= 0 && fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return l->fd >= 0 ? 0 : -1;
}

void shim_caplog_put(struct shim_caplog *l, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0 && l->fd >= 0) {
        size_t room = l->cap > l->used ? (size_t)(l->cap - l->used) : 0;
        size_t k = n < room ? n : room;
        ssize_t w = k ? write(l->fd, p, k) : 0;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* a full disk: the output is dropped, the box goes on */
        l->used += (uint64_t)w;
        p += w;
        n -= (size_t)w;
        if (l->used >= l->cap) {
            close(l->fd);
            rename(l->name, l->old);
            l->fd = open_name(l);
            l->used = 0;
        }
    }
}

void shim_caplog_close(struct shim_caplog *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
