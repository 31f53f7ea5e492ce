/* test_frameio.c — the shared frame reader/writer (src/common/frameio.c) on real fds: frames
 * split across reads, several in one read, oversized and truncated input, EAGAIN, EOF. */
#include "frameio.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A frame of type PING on stream s carrying n bytes of c into out; returns its size. */
static size_t frame(uint8_t *out, uint32_t s, size_t n, int c)
{
    bl_frame_hdr_encode(out, BL_F_PING, s, (uint32_t)n);
    memset(out + BL_FRAME_HDR, c, n);
    return BL_FRAME_HDR + n;
}

static void split_reads(void)
{
    int sv[2];
    uint8_t buf[64];
    size_t len = frame(buf, 7, 20, 'x');
    struct bl_frame_reader r = {0};
    struct bl_frame f;
    int got_frame = 0, early = 0, reads = 0;

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    for (size_t i = 0; i < len; i++) { /* one byte per read */
        (void)!write(sv[0], buf + i, 1);
        reads += bl_frame_fill(&r, sv[1], 0) == BL_FIO_READ;
        int n = bl_frame_next(&r, &f);
        if (i + 1 < len && n != 0)
            early = 1;
        if (i + 1 == len)
            got_frame = n == 1;
    }
    CHECK_EQ(reads, len, "split: one read per byte");
    CHECK(!early, "split: no frame before its last byte");
    CHECK(got_frame && f.stream == 7 && f.len == 20 && f.payload[19] == 'x',
          "split: the frame whole after its last byte");
    CHECK_EQ(bl_frame_fill(&r, sv[1], 0), BL_FIO_AGAIN, "nothing to read: EAGAIN");
    close(sv[0]);
    CHECK_EQ(bl_frame_fill(&r, sv[1], 0), BL_FIO_EOF, "peer closed: EOF");
    close(sv[1]);
    bl_frame_reader_free(&r);
}

static void many_in_one(void)
{
    uint8_t buf[256];
    size_t len = 0;
    struct bl_frame_reader r = {0};
    struct bl_frame f;
    int n, count = 0, ok = 1;

    for (uint32_t s = 1; s <= 5; s++)
        len += frame(buf + len, s, s * 3, 'a' + (int)s);
    len += frame(buf + len, 9, 10, 'z') - 4; /* and part of a sixth */
    bl_frame_feed(&r, buf, len);
    while ((n = bl_frame_next(&r, &f)) == 1) {
        count++;
        ok = ok && f.stream == (uint32_t)count && f.len == (uint32_t)count * 3;
    }
    CHECK(count == 5 && ok && n == 0, "five frames from one read, the sixth waits");
    bl_frame_feed(&r, "zzzz", 4);
    CHECK(bl_frame_next(&r, &f) == 1 && f.stream == 9 && f.len == 10, "the sixth once complete");
    bl_frame_reader_free(&r);
}

static void oversized(void)
{
    uint8_t hdr[BL_FRAME_HDR];
    struct bl_frame_reader r = {0};
    struct bl_frame f;

    bl_frame_hdr_encode(hdr, BL_F_STDIN, 1, BL_FRAME_MAX + 1);
    bl_frame_feed(&r, hdr, sizeof(hdr));
    CHECK_EQ(bl_frame_next(&r, &f), -BL_PE_TOOBIG, "a header over BL_FRAME_MAX: TOOBIG at once");
    bl_frame_discard(&r);
    CHECK_EQ(bl_frame_next(&r, &f), 0, "after discard: nothing held");
    bl_frame_hdr_encode(hdr, BL_F_STDIN, 1, 0xffffffffu);
    bl_frame_feed(&r, hdr, sizeof(hdr));
    CHECK_EQ(bl_frame_next(&r, &f), -BL_PE_TOOBIG, "length 2^32-1: TOOBIG");
    bl_frame_reader_free(&r);
}

/* Two frames of exactly BL_FRAME_MAX back to back through a socket, written and read in
 * parts: the reader's room comes back after each (the buffer is compacted). */
static void largest(void)
{
    uint8_t *big = malloc(BL_FRAME_READER_CAP);
    struct bl_frame_reader r = {0};
    struct bl_frame f;
    int sv[2];
    size_t sent = 0, len = BL_FRAME_READER_CAP;
    int got = 0, ok = 1, rounds = 0, copies = 0;

    frame(big, 3, BL_FRAME_MAX, 'q');
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    while (got < 2 && rounds++ < 200000) {
        if (copies < 2 && bl_frame_write_some(sv[0], big, len, &sent) == 1) {
            copies++;
            sent = 0;
        }
        bl_frame_fill(&r, sv[1], 0);
        while (bl_frame_next(&r, &f) == 1) {
            got++;
            ok = ok && f.len == BL_FRAME_MAX && f.payload[BL_FRAME_MAX - 1] == 'q';
        }
    }
    CHECK(got == 2 && ok, "two frames of exactly BL_FRAME_MAX, each read in parts");
    CHECK_EQ(bl_frame_room(&r), (size_t)BL_FRAME_READER_CAP, "all room back once taken");
    close(sv[0]);
    close(sv[1]);
    free(big);
    bl_frame_reader_free(&r);
}

static void truncated(void)
{
    uint8_t buf[64];
    size_t len = frame(buf, 2, 30, 'm');
    struct bl_frame_reader r = {0};
    struct bl_frame f;
    int sv[2];

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    (void)!write(sv[0], buf, len - 1);
    close(sv[0]);
    CHECK_EQ(bl_frame_fill(&r, sv[1], 0), BL_FIO_READ, "truncated: the bytes read");
    CHECK_EQ(bl_frame_next(&r, &f), 0, "truncated: no frame from them");
    CHECK_EQ(bl_frame_fill(&r, sv[1], 0), BL_FIO_EOF, "truncated: then EOF");
    close(sv[1]);
    bl_frame_reader_free(&r);
}

static void writer(void)
{
    int sv[2], p[2];
    size_t off = 0;

    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    close(sv[1]);
    CHECK(bl_frame_write_some(sv[0], "abc", 3, &off) == -1 && errno == EPIPE,
          "write to a closed socket: an error, not SIGPIPE");
    close(sv[0]);
    (void)!pipe(p);
    off = 0;
    CHECK(bl_frame_write_some(p[1], "abc", 3, &off) == 1 && off == 3,
          "a pipe (not a socket) is written too");
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    split_reads();
    many_in_one();
    oversized();
    largest();
    truncated();
    writer();
    return tap_done();
}
