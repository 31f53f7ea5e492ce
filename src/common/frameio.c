/* frameio.c — the frame reader and partial writer on stream fds (frameio.h). */
#include "frameio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int reserve(struct bl_frame_reader *r)
{
    if (!r->buf)
        r->buf = malloc(BL_FRAME_READER_CAP);
    if (!r->buf) {
        errno = ENOMEM;
        return -1;
    }
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    return 0;
}

size_t bl_frame_room(const struct bl_frame_reader *r)
{
    return BL_FRAME_READER_CAP - (r->len - r->off);
}

enum bl_fio bl_frame_fill(struct bl_frame_reader *r, int fd, size_t max)
{
    size_t room;
    ssize_t n;

    if (reserve(r) != 0)
        return BL_FIO_ERROR;
    room = BL_FRAME_READER_CAP - r->len;
    if (max > 0 && room > max)
        room = max;
    if (room == 0)
        return BL_FIO_AGAIN;
    do
        n = read(fd, r->buf + r->len, room);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return BL_FIO_AGAIN;
    if (n < 0)
        return BL_FIO_ERROR;
    if (n == 0)
        return BL_FIO_EOF;
    r->len += (size_t)n;
    return BL_FIO_READ;
}

enum bl_fio bl_frame_feed(struct bl_frame_reader *r, const void *p, size_t n)
{
    size_t room;

    if (reserve(r) != 0)
        return BL_FIO_ERROR;
    room = BL_FRAME_READER_CAP - r->len;
    if (n > room)
        n = room;
    if (n == 0)
        return BL_FIO_AGAIN;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return BL_FIO_READ;
}

int bl_frame_next(struct bl_frame_reader *r, struct bl_frame *f)
{
    long n;

    if (!r->buf || r->off >= r->len)
        return 0;
    n = bl_frame_split(r->buf + r->off, r->len - r->off, f);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return 0;
    r->off += (size_t)n;
    return 1;
}

void bl_frame_discard(struct bl_frame_reader *r)
{
    r->len = r->off = 0;
}

void bl_frame_reader_free(struct bl_frame_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->off = 0;
}

int bl_frame_write_some(int fd, const void *buf, size_t len, size_t *off)
{
    const uint8_t *p = buf;
    int is_sock = 1;

    while (*off < len) {
        ssize_t n = is_sock ? send(fd, p + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT)
                            : write(fd, p + *off, len - *off);
        if (n < 0 && errno == ENOTSOCK && is_sock) {
            is_sock = 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        *off += (size_t)n;
    }
    return 1;
}
