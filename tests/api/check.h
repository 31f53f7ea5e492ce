/* check.h — the one CHECK of the C programs over the public API (tests/api, tests/serve):
 * a failed condition prints what, the condition and the library's last error, and counts in
 * the caller's `failures` (a local or a static of the including file). Header-only. */
#ifndef BOXLITE_TESTS_API_CHECK_H
#define BOXLITE_TESTS_API_CHECK_H

#include <boxlite.h>
#include <stdio.h>

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s: %s (%s)\n", what, #cond, boxlite_error_last());              \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#endif
