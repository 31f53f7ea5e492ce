/* test_qmp.c — unit tests of the shim's QMP line reader (src/shim/qmp.c) over a socketpair:
 * lines come out whole and in order, a long one cut to the line buffer, and one longer than the
 * 64 KiB read buffer is dropped whole — its tail is not a line (a reply could hide there). */
#include "qmp.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct shim_qmp q;

/* Feed text (len bytes) as QEMU's output, then EOF. */
static int feed(const char *text, size_t len)
{
    int sv[2];
    size_t off = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    while (off < len) {
        ssize_t w = write(sv[1], text + off, len - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    close(sv[1]);
    shim_qmp_init(&q, sv[0]);
    return 0;
}

static int next(void)
{
    return shim_qmp_read_line(&q, bl_now_ms() + 2000);
}

int main(void)
{
    static const char *tail = "{\"return\": {}}\n{\"event\": \"STOP\"}\n";
    size_t long_len = 70000, n = long_len + strlen(tail) + 5000 + 2;
    char *text = malloc(n + 1);

    if (!text)
        return 1;
    memset(text, 'x', long_len);
    strcpy(text + long_len, tail);
    memset(text + long_len + strlen(tail), 'y', 5000);
    strcpy(text + n - 2, "\n");
    n -= 1;
    CHECK(feed(text, n) == 0, "QEMU's output on a socketpair");
    CHECK(next() == 0 && strcmp(q.line, "{\"event\": \"STOP\"}") == 0,
          "a line over 64 KiB is dropped whole: the next line is the one after it");
    CHECK(next() == 0 && strlen(q.line) == sizeof(q.line) - 1 && q.line[0] == 'y',
          "a 5000-byte line is cut to the line buffer");
    CHECK(next() == -1, "EOF ends the reader");
    close(q.fd);
    free(text);
    return tap_done();
}
