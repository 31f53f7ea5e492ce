/* conn_threads.c — every box channel of a process on one reader thread (run by
 * tests/integration/test_conn_threads.py): one process holds 2, then NBOX running boxes
 * (forked from one full snapshot) and runs a process in each; its thread count with NBOX must
 * not exceed its count with 2 by more than MAX_EXTRA (a reader thread per channel added one
 * per box). Then: a box whose QEMU is killed fails its running process with the closed
 * channel within KILL_MS while the others keep working; a channel whose last holder lets go
 * while the guest streams output into it is freed cleanly (run under ASan by the test too).
 * Exit 0 when all hold. */
#include <boxlite.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"

#define NBOX      6
#define MAX_EXTRA 1
#define KILL_MS   30000
#define STREAMS   4

static int failures;

static boxlite_exec *start(boxlite_box *box, const char *script)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec *ex = NULL;

    eo.argv = argv;
    if (boxlite_exec_start(&ex, box, &eo) != 0)
        return NULL;
    return ex;
}

/* Run `echo hi-I; exit I` in box i: its output and status must come back. */
static void check_exec(boxlite_box *box, int i)
{
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char script[64], want[32], got[64] = "", what[64];
    size_t have = 0, n = 1;
    int which = 0;
    boxlite_exec *ex;

    snprintf(script, sizeof script, "echo hi-%d; exit %d", i, 10 + i);
    snprintf(want, sizeof want, "hi-%d\n", i);
    snprintf(what, sizeof what, "box %d: output and status", i);
    ex = start(box, script);
    while (ex && n > 0 && have < sizeof got - 1 &&
           boxlite_exec_read(ex, BOXLITE_STDOUT, &which, got + have, sizeof got - 1 - have, &n,
                             60000) == 0)
        have += n;
    CHECK(ex && boxlite_exec_wait_v2(&res, ex, 60000) == 0 && res.exit_code == 10 + i &&
              strcmp(got, want) == 0,
          what);
    boxlite_exec_free(ex);
}

/* Every box runs a process while the threads are counted. */
static int count_with(boxlite_box **box, int n)
{
    boxlite_exec *ex[NBOX] = {0};
    int t;

    for (int i = 0; i < n; i++)
        check_exec(box[i], i);
    for (int i = 0; i < n; i++)
        ex[i] = start(box[i], "sleep 30");
    t = threads_now();
    for (int i = 0; i < n; i++) {
        CHECK(ex[i] != NULL, "a process in every box");
        boxlite_exec_free(ex[i]);
    }
    return t;
}

/* SIGKILL box k's QEMU while every box streams: k's process ends with an error soon, the
 * others still run processes. */
static void check_kill(boxlite_box **box, int k)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = start(box[k], "while :; do echo tick; sleep 0.2; done");
    char buf[256];
    size_t n = 0;
    int which = 0, rc = 0;
    int64_t t0;

    CHECK(ex && boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 60000) == 0 &&
              n > 0,
          "the box streams before the kill");
    CHECK(boxlite_box_get_info(&info, box[k]) == 0 && info.qemu_pid > 0, "QEMU's pid");
    if (!ex || info.qemu_pid <= 0) {
        boxlite_exec_free(ex);
        return;
    }
    kill(info.qemu_pid, SIGKILL);
    t0 = now_ms();
    while (now_ms() - t0 < KILL_MS &&
           (rc = boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 1000)) == 0 &&
           n > 0)
        ;
    if (rc == 0 && n == 0) /* the output ended: the wait says why */
        rc = boxlite_exec_wait_v2(&res, ex, KILL_MS);
    printf("killed QEMU of box %d: its process failed (rc %d: %s) after %lld ms\n", k, rc,
           rc ? boxlite_error_last() : "", (long long)(now_ms() - t0));
    CHECK(rc != 0 && rc != BOXLITE_ETIMEOUT && now_ms() - t0 < KILL_MS &&
              strstr(boxlite_error_last(), "closed"),
          "the killed box's process fails with the closed channel, promptly");
    boxlite_exec_free(ex);
    for (int i = 0; i < NBOX; i++)
        if (i != k)
            check_exec(box[i], i);
}

/* A second handle's channel, let go (the box handle's hold last) while `yes` streams in. */
static void check_free_while_streaming(boxlite_runtime *rt, const char *id)
{
    for (int round = 0; round < STREAMS; round++) {
        boxlite_box *h = NULL;
        boxlite_exec *ex = NULL;
        char buf[4096];
        size_t n = 0;
        int which = 0, got = 0;

        CHECK(boxlite_box_get(&h, rt, id) == 0, "a second handle");
        ex = h ? start(h, "yes boxlite") : NULL;
        CHECK(ex != NULL, "streaming process");
        for (int i = 0; ex && i < 64; i++)
            if (boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof buf, &n, 30000) == 0 &&
                n > 0)
                got++;
        CHECK(got == 64, "output streams");
        boxlite_exec_free(ex); /* frames of its output are still on their way */
        boxlite_box_free(h);   /* the last hold, while they arrive; the box runs on */
    }
}

int main(void)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box[NBOX] = {0};
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    int t2 = 0, tn = 0;

    bo.name = "conn-threads";
    CHECK(boxlite_runtime_open(&rt, NULL) == 0, "open");
    CHECK(boxlite_box_create(&box[0], rt, &bo) == 0, "create");
    CHECK(boxlite_box_start(box[0]) == 0, "start");
    CHECK(boxlite_snapshot_create(NULL, box[0], "base", BOXLITE_SNAPSHOT_MEMORY) == 0,
          "full snapshot");
    for (int i = 1; i < NBOX && failures == 0; i++) {
        CHECK(boxlite_box_fork(&box[i], box[0], "base", NULL, 0) == 0, "fork");
        if (i == 1)
            t2 = count_with(box, 2);
    }
    if (failures == 0) {
        tn = count_with(box, NBOX);
        printf("threads: %d with 2 boxes, %d with %d\n", t2, tn, NBOX);
        CHECK(tn - t2 <= MAX_EXTRA, "the thread count does not grow with the boxes");
    }
    if (failures == 0)
        check_free_while_streaming(rt, boxlite_box_id(box[1]));
    if (failures == 0)
        check_kill(box, NBOX - 1);
    for (int i = NBOX - 1; i >= 0; i--) {
        if (box[i])
            CHECK(boxlite_box_remove(box[i], 1) == 0, "remove");
        boxlite_box_free(box[i]);
    }
    boxlite_runtime_free(rt);
    if (failures == 0)
        printf("ok\n");
    return failures == 0 ? 0 : 1;
}
