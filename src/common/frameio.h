/* frameio.h — frames on a stream fd, shared by the guest agent, the shim and the library:
 * the reader (a buffer of one largest frame, partial reads, EINTR/EAGAIN, headers decoded
 * by proto.c, BL_FRAME_MAX enforced) and the partial writer. libc only (the agent links it
 * statically with musl). Not thread-safe: one reader per fd, used by one thread at a time. */
#ifndef BL_FRAMEIO_H
#define BL_FRAMEIO_H

#include "proto.h"

#include <stddef.h>
#include <stdint.h>

#define BL_FRAME_READER_CAP (BL_FRAME_HDR + BL_FRAME_MAX) /* one largest frame */

struct bl_frame_reader {
    uint8_t *buf; /* BL_FRAME_READER_CAP bytes, allocated by the first fill */
    size_t len;   /* bytes held */
    size_t off;   /* bytes of them handed out as frames */
};

/* What bl_frame_fill did. */
enum bl_fio {
    BL_FIO_READ = 1,   /* read at least one byte */
    BL_FIO_AGAIN = 0,  /* nothing to read now (EAGAIN), or the buffer holds a whole frame */
    BL_FIO_EOF = -1,   /* the peer closed */
    BL_FIO_ERROR = -2, /* read failed (errno) or out of memory (ENOMEM) */
};

/* Read once from fd into r (at most max bytes; 0 → as much as fits), after dropping the
 * frames already handed out. EINTR is retried. The frames bl_frame_next returned before are
 * invalid afterwards. */
enum bl_fio bl_frame_fill(struct bl_frame_reader *r, int fd, size_t max);

/* Feed bytes from memory instead of an fd (tests, fuzzing): as bl_frame_fill. */
enum bl_fio bl_frame_feed(struct bl_frame_reader *r, const void *p, size_t n);

/* The next whole frame held: 1 and *f (its payload points into r's buffer, valid until the
 * next fill); 0 when more bytes are needed; -BL_PE_TOOBIG when the header announces more than
 * BL_FRAME_MAX (framing is lost: the caller closes the channel or bl_frame_discard's). A frame
 * of a wrong version or unknown type is returned whole: check it with bl_frame_check. */
int bl_frame_next(struct bl_frame_reader *r, struct bl_frame *f);

/* Room left for input (0: a whole frame waits to be taken with bl_frame_next). */
size_t bl_frame_room(const struct bl_frame_reader *r);

/* Drop everything held (a new connection: a partial frame of the old one means nothing). */
void bl_frame_discard(struct bl_frame_reader *r);
void bl_frame_reader_free(struct bl_frame_reader *r);

/* Write what fd takes now of buf[*off..len), advancing *off; EINTR retried; sockets get
 * MSG_NOSIGNAL (a closed peer is an error, never SIGPIPE). 1 when all is written, 0 when fd
 * is full (EAGAIN), -1 on error (errno). */
int bl_frame_write_some(int fd, const void *buf, size_t len, size_t *off);

#endif
