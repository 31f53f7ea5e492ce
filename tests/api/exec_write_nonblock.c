/* exec_write_nonblock.c — the non-blocking stdin write through the public API (run by
 * tests/integration/test_exec_write_nonblock.py): boxlite_exec_write_v2 with timeout 0 to a
 * process that does not read yet takes what the guest's window allows, then answers
 * BOXLITE_EAGAIN at once; with a timeout it waits that long; boxlite_exec_fd turns readable
 * when the process starts reading (the credit comes back) and each wake lets bytes through
 * (no spin); the rest goes by poll alone; the process prints the checksum of what it got
 * (the caller compares). Usage: exec_write_nonblock FILE (the bytes to send). Exit 0 when
 * all hold; stdout: the process's output, then "ok". */
#include <boxlite.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "check.h"

#define WAKES_MAX 100000

static int failures;

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    long n;

    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    if (f)
        fclose(f);
    return data;
}

/* The process does not read for its first seconds: write 0 takes a window, then EAGAIN. */
static size_t fill_window(boxlite_exec *ex, const unsigned char *data, size_t len)
{
    struct timespec settle = {1, 0};
    size_t off = 0, n = 0;
    int rc = 0, partial = 0;
    int64_t t0 = now_ms();

    while (off < len && (rc = boxlite_exec_write_v2(ex, data + off, len - off, &n, 0)) == 0) {
        CHECK(n > 0 && n < len - off, "write 0 takes part, never all");
        partial += n > 0 && n < len - off;
        off += n;
    }
    CHECK(rc == BOXLITE_EAGAIN, "write 0 ends in EAGAIN while nobody reads");
    CHECK(partial >= 1 && off >= 64 * 1024 && off < len, "a window's worth went before");
    CHECK(now_ms() - t0 < 2000, "write 0 never waits");
    nanosleep(&settle, NULL); /* the agent fills the process's pipe: credit for that too */
    while (boxlite_exec_write_v2(ex, data + off, len - off, &n, 0) == 0)
        off += n;
    t0 = now_ms();
    n = 1;
    CHECK(boxlite_exec_write_v2(ex, data + off, len - off, &n, 700) == BOXLITE_EAGAIN && n == 0,
          "write 700: EAGAIN");
    CHECK(now_ms() - t0 >= 700 && now_ms() - t0 < 2000, "write 700 waits 700 ms");
    fprintf(stderr, "window: %zu bytes taken before EAGAIN\n", off);
    return off;
}

/* The rest by poll(fd) and write 0 alone; every wake takes bytes. */
static void poll_rest(boxlite_exec *ex, const unsigned char *data, size_t len, size_t off)
{
    int fd = -1, wakes = 0, idle = 0;
    int64_t until = now_ms() + 120000;

    CHECK(boxlite_exec_fd(&fd, ex) == 0, "exec fd");
    while (off < len && fd >= 0 && now_ms() < until && wakes < WAKES_MAX) {
        struct pollfd p = {fd, POLLIN, 0};
        size_t n = 0;
        int rc;
        if (poll(&p, 1, 30000) != 1) {
            CHECK(0, "the fd turns readable once the process reads");
            break;
        }
        wakes++;
        rc = boxlite_exec_write_v2(ex, data + off, len - off, &n, 0);
        CHECK(rc == 0 || rc == BOXLITE_EAGAIN, "write after the wake");
        if (rc != 0 && rc != BOXLITE_EAGAIN)
            break;
        idle += n == 0;
        off += n;
    }
    CHECK(off == len, "all bytes went by poll and write 0");
    CHECK(idle <= 2, "a wake is credit, not a spin");
    fprintf(stderr, "poll: %d wakes, %d without credit\n", wakes, idle);
}

int main(int argc, char **argv)
{
    const char *cmd[] = {"sh", "-c", "sleep 8; md5sum", NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_exec *ex = NULL;
    unsigned char *data = NULL;
    char out[256];
    size_t len = 0, n = 0, got = 0;
    int which = 0;

    data = argc == 2 ? slurp(argv[1], &len) : NULL;
    CHECK(data != NULL && len > (1u << 20), "usage: exec_write_nonblock FILE (over 1 MiB)");
    bo.name = "exec-write-nb";
    if (failures == 0) {
        CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
        CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
        CHECK(boxlite_box_start(box) == 0, "start");
        eo.argv = cmd;
        CHECK(boxlite_exec_start(&ex, box, &eo) == 0, "exec");
    }
    CHECK(boxlite_exec_write_v2(ex, NULL, 1, &n, 0) == BOXLITE_EINVAL, "NULL buffer");
    if (failures == 0) {
        poll_rest(ex, data, len, fill_window(ex, data, len));
        CHECK(boxlite_exec_close_stdin(ex) == 0, "close stdin");
        while (boxlite_exec_read(ex, BOXLITE_STDOUT, &which, out + got, sizeof(out) - 1 - got, &n,
                                 60000) == 0 &&
               n > 0 && got + 1 < sizeof(out))
            got += n;
        out[got] = '\0';
        CHECK(boxlite_exec_wait_v2(&res, ex, 60000) == 0 && res.exit_code == 0, "md5sum exits 0");
        CHECK(boxlite_exec_write_v2(ex, "x", 1, &n, 0) == BOXLITE_ESTATE, "write after the end");
        printf("%s", out);
    }
    boxlite_exec_free(ex);
    if (box)
        CHECK(boxlite_box_remove(box, 1) == 0, "remove");
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    free(data);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
