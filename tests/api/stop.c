/* stop.c — how a box stopped, through the public API (run by tests/integration/test_store.py):
 * a clean stop says so; a guest that does not power off in time is killed and the call says
 * that; remove with force of a running box stops it first and succeeds. Exit 0 when all hold. */
#include <boxlite.h>
#include <stdio.h>
#include <string.h>
#include "check.h"

/* A process that ignores SIGTERM holds the guest's shutdown for the agent's grace (1 s).
 * *out is kept until after the stop: freeing a running exec kills its process. */
static int run_stubborn(boxlite_exec **out, boxlite_box *box)
{
    const char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec *ex = NULL;
    char buf[64];
    size_t n = 0;
    int which = 0;
    int rc;

    eo.argv = argv;
    rc = boxlite_exec_start(&ex, box, &eo);
    if (rc == 0)
        rc = boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 60000);
    *out = ex;
    return rc == 0 && n == 6 && memcmp(buf, "ready\n", 6) == 0 ? 0 : -1;
}

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    boxlite_exec *ex = NULL, *ex2 = NULL;
    int killed = -1, failures = 0;

    bo.name = "stopper";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box, rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box) == 0, "start");
    CHECK(boxlite_box_stop_v2(&killed, box, 60000) == 0 && killed == 0, "a clean stop");
    killed = -1;
    CHECK(boxlite_box_stop_v2(&killed, box, 1000) == 0 && killed == 0, "stop when stopped");
    CHECK(boxlite_box_start(box) == 0, "start again");
    CHECK(run_stubborn(&ex, box) == 0, "a process ignoring SIGTERM");
    CHECK(boxlite_box_stop_v2(&killed, box, 200) == 0 && killed == 1, "killed, and says so");
    CHECK(boxlite_box_get_info(&info, box) == 0 && strcmp(info.state, "running") != 0,
          "not running after the kill");
    CHECK(boxlite_box_start(box) == 0, "start a third time");
    CHECK(run_stubborn(&ex2, box) == 0, "stubborn again");
    CHECK(boxlite_box_remove(box, 0) == BOXLITE_ESTATE, "remove refused while running");
    CHECK(boxlite_box_remove(box, 1) == 0, "remove with force stops it first");
    CHECK(boxlite_box_get_info(&info, box) == BOXLITE_ENOTFOUND, "gone");
    boxlite_exec_free(ex);
    boxlite_exec_free(ex2);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
