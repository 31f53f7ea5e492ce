/* bench_exec.c — exec latency and throughput through the public API in one box: round trips
 * of `true` beside the protocol's own PING in the same run, stdout and copy MB/s. */
#include "boxlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    printf("%-22s p50 %8.3f ms   p99 %8.3f ms   (n=%d)\n", what, (double)v[n / 2] / 1e6,
           (double)v[(n * 99) / 100] / 1e6, n);
}

/* Run argv, discard its output; bytes of stdout read go to *bytes. */
static int run(boxlite_box *box, const char *const *argv, uint64_t *bytes)
{
    static char buf[1 << 16];
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    size_t n = 1;
    int which, rc;

    eo.argv = argv;
    rc = boxlite_exec_start(&ex, box, &eo);
    if (rc == 0)
        rc = boxlite_exec_close_stdin(ex);
    while (rc == 0 && n > 0) {
        rc = boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof(buf), &n,
                               -1);
        if (bytes && which == BOXLITE_STDOUT)
            *bytes += n;
    }
    if (rc == 0)
        rc = boxlite_exec_wait_v2(&res, ex, -1);
    if (rc == 0 && res.exit_code != 0)
        rc = -1;
    boxlite_exec_free(ex);
    return rc;
}

/* --box NAME N: N round trips of `true` in the running box NAME, in this process (what the
 * CLI's exec costs beyond loading and opening: bench/exec prints them side by side). */
static int on_box(const char *name, int n)
{
    const char *truev[] = {"true", NULL};
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    uint64_t *ex = calloc((size_t)n, sizeof(uint64_t));
    int rc = !ex || boxlite_runtime_open(&rt, NULL) != 0 || boxlite_box_get(&box, rt, name) != 0;

    for (int i = 0; rc == 0 && i < n + 10; i++) {
        double a = now_s();
        rc = run(box, truev, NULL);
        if (i >= 10) /* the first ten warm up */
            ex[i - 10] = (uint64_t)((now_s() - a) * 1e9);
    }
    if (rc == 0)
        report("library exec true", ex, n);
    else
        fprintf(stderr, "bench: %s\n", boxlite_error_last());
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    free(ex);
    return rc;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    unsigned mb = argc > 2 ? (unsigned)atoi(argv[2]) : 256;
    boxlite_box_options bo = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    uint64_t *ping = calloc((size_t)n, sizeof(uint64_t)), *ex = calloc((size_t)n, sizeof(uint64_t));
    const char *truev[] = {"true", NULL};
    char count[64], hostfile[] = "/tmp/bench-exec-XXXXXX", outdir[] = "/tmp/bench-exec-out-XXXXXX";
    char cmd[256];
    const char *headv[] = {"head", "-c", count, "/dev/zero", NULL};
    uint64_t bytes = 0;
    double t;
    int rc = 1, fd;

    if (argc > 3 && strcmp(argv[1], "--box") == 0) {
        free(ping);
        free(ex);
        return on_box(argv[2], atoi(argv[3]));
    }
    bo.disk_size_gb = 2;
    bo.auto_remove = 1;
    if (!ping || !ex || boxlite_runtime_open(&rt, NULL) != 0 ||
        boxlite_box_create(&box, rt, &bo) != 0 || boxlite_box_start(box) != 0)
        goto fail;
    for (int i = 0; i < 20; i++) /* warm up */
        if (boxlite_box_ping(&ping[0], box) != 0 || run(box, truev, NULL) != 0)
            goto fail;
    for (int i = 0; i < n; i++) {
        double a = now_s();
        if (boxlite_box_ping(&ping[i], box) != 0)
            goto fail;
        a = now_s();
        if (run(box, truev, NULL) != 0)
            goto fail;
        ex[i] = (uint64_t)((now_s() - a) * 1e9);
    }
    report("ping (PING/PONG)", ping, n);
    report("exec true", ex, n);
    printf("%-22s p50 ratio %.1fx\n", "exec/ping", (double)ex[n / 2] / (double)ping[n / 2]);
    snprintf(count, sizeof(count), "%llu", (unsigned long long)mb << 20);
    t = now_s();
    if (run(box, headv, &bytes) != 0)
        goto fail;
    printf("%-22s %8.1f MB/s  (%u MiB)\n", "stdout", (double)bytes / 1e6 / (now_s() - t), mb);
    fd = mkstemp(hostfile);
    if (fd < 0 || !mkdtemp(outdir))
        goto fail;
    for (unsigned i = 0; i < mb; i++) {
        static char block[1 << 20];
        for (size_t k = 0; k < sizeof(block); k += 64)
            block[k] = (char)(i + k);
        if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
            goto fail;
    }
    close(fd);
    t = now_s();
    if (boxlite_box_copy_in(box, hostfile, "/root/big", NULL) != 0)
        goto fail;
    printf("%-22s %8.1f MB/s  (%u MiB)\n", "copy_in", (double)mb * 1.048576 / (now_s() - t), mb);
    t = now_s();
    if (boxlite_box_copy_out(box, "/root/big", outdir, NULL) != 0)
        goto fail;
    printf("%-22s %8.1f MB/s  (%u MiB)\n", "copy_out", (double)mb * 1.048576 / (now_s() - t), mb);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", hostfile, outdir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: cleanup failed\n");
    rc = 0;
fail:
    if (rc != 0)
        fprintf(stderr, "bench: %s\n", boxlite_error_last());
    boxlite_box_stop(box, BOXLITE_STOP_TIMEOUT_DEFAULT_MS);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    free(ping);
    free(ex);
    return rc;
}
