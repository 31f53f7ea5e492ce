/* fuzz_qmp.c — libFuzzer target for the shim's QMP reader (src/shim/qmp.c): the input, after
 * its first byte, is what QEMU writes on the monitor socket (a socketpair here, closed after
 * it). First byte even: shim_qmp_read_line until the end, each line checked against the lines
 * of the input (newline-split; one of 65536 bytes or more is dropped whole, others cut to
 * 4095 bytes; an unterminated tail is not a line). Odd: shim_qmp_cmd, as the shim calls it,
 * until it fails. */
#include "qmp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shim_qmp q;

static void fail(const char *what, size_t at)
{
    fprintf(stderr, "fuzz_qmp: %s (input line at byte %zu)\n", what, at);
    abort();
}

/* The next line shim_qmp_read_line must return from s[*at..n): 1 and its bounds, or 0. */
static int next_expected(const uint8_t *s, size_t n, size_t *at, size_t *start, size_t *len)
{
    while (*at < n) {
        const uint8_t *nl = memchr(s + *at, '\n', n - *at);
        size_t k;
        if (!nl)
            return 0;
        k = (size_t)(nl - (s + *at));
        *start = *at;
        *at += k + 1;
        if (k < sizeof(q.buf)) {
            *len = k < sizeof(q.line) - 1 ? k : sizeof(q.line) - 1;
            return 1;
        }
    }
    return 0;
}

static void read_lines(const uint8_t *s, size_t n)
{
    size_t at = 0, start = 0, len = 0;

    while (shim_qmp_read_line(&q, bl_now_ms() + 2000) == 0) {
        if (!next_expected(s, n, &at, &start, &len))
            fail("a line the input does not hold", at);
        if (memcmp(q.line, s + start, len) != 0 || q.line[len] != '\0')
            fail("a line that differs from the input's", start);
        if (q.len > sizeof(q.buf))
            fail("the buffer's length passed its size", start);
    }
    if (next_expected(s, n, &at, &start, &len))
        fail("a line of the input was never read", start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    size_t off = 1;

    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    while (off < size) { /* 200 KiB of socket buffer take any input libFuzzer makes */
        ssize_t w = write(sv[1], data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    shim_qmp_init(&q, sv[0]);
    if (data[0] % 2 == 0) {
        read_lines(data + 1, size - 1);
    } else {
        for (int i = 0; i < 64; i++)
            if (shim_qmp_cmd(&q, "{\"execute\":\"query-status\"}", -1, 2000) != 0 &&
                q.line[0] == '\0')
                fail("a failed command without a reason", 0);
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
