/* lifetimes.c — handle lifetimes through the public API, run under valgrind by
 * tests/integration/test_c_api.py: an exec outlives its box's stop (and its wait has the status
 * the guest's shutdown gave the process), a second handle attaches
 * to a running box, every call on a stopped box fails cleanly, and a caller built against
 * box options version 1 (they end before allow_net) is read no further. Exit 0 when all hold. */
#include <boxlite.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL, *again = NULL;
    boxlite_exec *ex = NULL, *ex2 = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    const char *sleeper[] = {"sh", "-c", "echo started; sleep 30", NULL};
    const char *echo[] = {"echo", "second handle", NULL};
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char buf[256];
    size_t n = 0;
    int which = 0, failures = 0;

    bo.name = "lifetimes";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box) == 0, "start");
    eo.argv = sleeper;
    CHECK(boxlite_exec_start(&ex, box, &eo) == 0, "exec");
    CHECK(boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 60000) == 0 &&
              n == 8 && memcmp(buf, "started\n", 8) == 0,
          "first output");
    /* a second handle on the same running box, by name */
    CHECK(boxlite_box_get(&again, rt, "lifetimes") == 0, "get");
    eo.argv = echo;
    CHECK(boxlite_exec_start(&ex2, again, &eo) == 0, "exec on second handle");
    CHECK(boxlite_exec_wait(ex2, &res, 60000) == 0 && res.exit_code == 0, "wait second");
    boxlite_exec_free(ex2);
    boxlite_box_free(again);
    /* stop the box under a running process: the exec handle stays valid and says so */
    CHECK(boxlite_box_stop(box, 10000) == 0, "stop");
    CHECK(boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 5000) == 0 && n == 0,
          "read after stop ends");
    /* the guest's shutdown SIGTERMed it and reported that before powering off */
    CHECK(boxlite_exec_wait(ex, &res, 5000) == 0 && res.signal == 15 && res.exit_code == 143,
          "wait after stop has the status the shutdown gave it");
    CHECK(boxlite_exec_write(ex, "x", 1) != 0, "stdin after stop fails");
    CHECK(boxlite_exec_signal(ex, 15) == BOXLITE_ESTATE, "signal after stop");
    boxlite_exec_free(ex);
    ex = NULL;
    CHECK(boxlite_exec_start(&ex, box, &eo) == BOXLITE_ESTATE, "exec on a stopped box");
    CHECK(strstr(boxlite_error_last(), "stopped") != NULL, "the message says stopped");
    CHECK(boxlite_box_remove(box, 0) == 0, "remove");
    boxlite_box_free(box);
    {
        /* exactly as many bytes as a version-1 caller has: valgrind sees a read past them */
        size_t v1 = offsetof(boxlite_box_options, allow_net);
        unsigned char *old = malloc(v1);
        boxlite_box_options fresh = BOXLITE_BOX_OPTIONS_INIT;
        box = NULL;
        if (old) {
            fresh.version = 1; /* the first field */
            memcpy(old, &fresh, v1);
            CHECK(boxlite_box_create(&box, rt, (const boxlite_box_options *)(void *)old) == 0,
                  "create with version-1 options");
            CHECK(box && boxlite_box_allow_net(box) == NULL, "no allowlist from version 1");
            CHECK(box && boxlite_box_remove(box, 0) == 0, "remove the version-1 box");
        }
        boxlite_box_free(box);
        free(old);
    }
    boxlite_runtime_free(rt);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
