/* tap.h — a tiny TAP producer for the unit tests: CHECK() prints "ok N - name" or
 * "not ok N - name" (tap_skip: "ok N - name # SKIP why"), tap_done() prints the "1..N" plan and
 * returns the exit status. */
#ifndef BL_TAP_H
#define BL_TAP_H

#include <stdio.h>

static int tap_count;
static int tap_failed;

static int tap_check(int cond, const char *name, const char *file, int line)
{
    tap_count++;
    if (cond) {
        printf("ok %d - %s\n", tap_count, name);
    } else {
        tap_failed++;
        printf("not ok %d - %s\n# at %s:%d\n", tap_count, name, file, line);
    }
    fflush(stdout);
    return cond;
}

static inline void tap_skip(const char *name, const char *why)
{
    printf("ok %d - %s # SKIP %s\n", ++tap_count, name, why);
}

/* Returns what main should return: 0 when every check passed. */
static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    if (tap_failed)
        printf("# %d of %d failed\n", tap_failed, tap_count);
    return tap_failed ? 1 : 0;
}

#define CHECK(cond, name) tap_check(!!(cond), (name), __FILE__, __LINE__)
#define CHECK_EQ(a, b, name)                                                                       \
    do {                                                                                           \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                                \
        if (!CHECK(tap_a_ == tap_b_, name))                                                        \
            printf("# got %lld, want %lld\n", tap_a_, tap_b_);                                     \
    } while (0)

#endif
