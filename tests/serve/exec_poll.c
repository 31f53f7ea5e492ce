/* exec_poll.c — boxlite_exec_fd through the public API, run by test_serve_exec_poll.py: one
 * thread polls three executions of one box and reads each with boxlite_exec_read(…, 0) only
 * when its fd says so. Checks that an fd is not readable before output, is readable when
 * output or the end arrives, is cleared by reading, stays readable once the process has
 * ended, and that every byte and every end is seen. Exit 0 when all hold. */
#include <boxlite.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "../api/check.h"

#define N 3

static int failures;
static int readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

int main(void)
{
    static const char *const argv[N][4] = {{"sh", "-c", "sleep 2; echo a", NULL},
                                           {"sh", "-c", "echo b; sleep 3; echo c", NULL},
                                           {"cat", NULL, NULL, NULL}};
    static const char *const want[N] = {"a\n", "b\nc\n", "xyz"};
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_exec *ex[N] = {NULL};
    struct pollfd p[N];
    char got[N][64] = {{0}};
    size_t len[N] = {0};
    int ended = 0, saw_b_cleared = 0;
    time_t until;

    bo.name = "exec-poll";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box) == 0, "start");
    for (int i = 0; i < N && failures == 0; i++) {
        boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
        eo.argv = argv[i];
        CHECK(boxlite_exec_start(&ex[i], box, &eo) == 0, "exec");
        CHECK(boxlite_exec_fd(&p[i].fd, ex[i]) == 0, "fd");
        p[i].events = POLLIN;
    }
    if (failures)
        goto out;
    CHECK(!readable(p[0].fd), "no output yet: not readable");
    CHECK(boxlite_exec_write(ex[2], "xyz", 3) == 0 && boxlite_exec_close_stdin(ex[2]) == 0,
          "stdin");
    until = time(NULL) + 120;
    while (ended < N && time(NULL) < until) {
        if (poll(p, N, 1000) < 0)
            break;
        for (int i = 0; i < N; i++) {
            int which = 0;
            size_t n = 0;
            if (p[i].fd < 0 || !(p[i].revents & POLLIN))
                continue;
            if (boxlite_exec_read(ex[i], BOXLITE_STDOUT | BOXLITE_STDERR, &which, got[i] + len[i],
                                  sizeof(got[i]) - 1 - len[i], &n, 0) != 0) {
                CHECK(0, "readable but nothing to read");
                continue;
            }
            len[i] += n;
            if (n == 0) { /* the end: once the exit is in it stays readable; stop watching */
                boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
                CHECK(boxlite_exec_wait_v2(&res, ex[i], 30000) == 0 && res.exit_code == 0, "exit");
                CHECK(readable(p[i].fd), "ended: still readable");
                p[i].fd = -1;
                ended++;
            } else if (i == 1 && strcmp(got[1], "b\n") == 0) {
                saw_b_cleared = !readable(p[1].fd); /* "c" is 3 s away */
            }
        }
    }
    CHECK(ended == N, "every execution ended within 120 s");
    CHECK(saw_b_cleared, "reading the output cleared the fd");
    for (int i = 0; i < N; i++)
        CHECK(strcmp(got[i], want[i]) == 0, want[i]);
out:
    for (int i = 0; i < N; i++)
        boxlite_exec_free(ex[i]);
    if (box != NULL)
        boxlite_box_remove(box, 1);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    printf("%s\n", failures ? "FAILED" : "OK");
    return failures ? 1 : 0;
}
