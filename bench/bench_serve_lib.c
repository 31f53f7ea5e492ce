/* bench_serve_lib.c — the baseline of bench/serve: the operations the Box API benchmark makes
 * over HTTP (get a box's info; exec `true` and read it to its end), made through the C library
 * by N threads on one runtime and one box handle (as `boxlite serve` shares them) for S seconds.
 * Prints "ops N secs S ops_per_s X". */
#include "boxlite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shared {
    boxlite_runtime *rt;
    const char *box;
    int exec; /* 0: get info, 1: exec true */
    double until;
    unsigned long ops, errors; /* __atomic */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exec_true(boxlite_box *box)
{
    static const char *const argv[] = {"true", NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    char buf[4096];
    size_t n = 1;
    int which, rc;

    eo.argv = argv;
    rc = boxlite_exec_start(&ex, box, &eo);
    if (rc == 0)
        rc = boxlite_exec_close_stdin(ex);
    while (rc == 0 && n > 0)
        rc = boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof(buf), &n,
                               -1);
    if (rc == 0)
        rc = boxlite_exec_wait_v2(&res, ex, -1);
    if (rc == 0 && res.exit_code != 0)
        rc = -1;
    boxlite_exec_free(ex);
    return rc;
}

static void *worker(void *arg)
{
    struct shared *s = arg;
    boxlite_box *box = NULL;

    if (boxlite_box_get(&box, s->rt, s->box) != 0) {
        __atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    while (now_s() < s->until) {
        boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
        int rc = s->exec ? exec_true(box) : boxlite_box_get_info(&info, box);
        __atomic_add_fetch(rc == 0 ? &s->ops : &s->errors, 1, __ATOMIC_RELAXED);
    }
    boxlite_box_free(box);
    return NULL;
}

int main(int argc, char **argv)
{
    struct shared s = {0};
    pthread_t th[256];
    int n, started = 0, rc = 1;
    double secs, t0;

    if (argc != 5 || (strcmp(argv[2], "info") != 0 && strcmp(argv[2], "exec") != 0)) {
        fprintf(stderr, "usage: bench_serve_lib BOX info|exec THREADS SECONDS\n");
        return 2;
    }
    n = atoi(argv[3]);
    secs = atof(argv[4]);
    n = n < 1 ? 1 : n > 256 ? 256 : n;
    s.box = argv[1];
    if (boxlite_runtime_open(&s.rt, NULL) != 0) {
        fprintf(stderr, "bench_serve_lib: %s\n", boxlite_error_last());
        goto out;
    }
    s.exec = strcmp(argv[2], "exec") == 0;
    t0 = now_s();
    s.until = t0 + secs;
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, worker, &s) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    secs = now_s() - t0;
    printf("ops %lu errors %lu secs %.2f ops_per_s %.1f\n", s.ops, s.errors, secs,
           (double)s.ops / secs);
    rc = s.errors > 0;
out:
    boxlite_runtime_free(s.rt);
    return rc;
}
