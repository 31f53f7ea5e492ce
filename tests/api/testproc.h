/* testproc.h — what the C test programs measure of themselves: a monotonic clock in ms and
 * the process's thread count (tests/api through check.h, tests/unit). Header-only. */
#ifndef BOXLITE_TESTS_API_TESTPROC_H
#define BOXLITE_TESTS_API_TESTPROC_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Threads of this process (/proc/self/status), -1 if unreadable. */
static inline int threads_now(void)
{
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

#endif
