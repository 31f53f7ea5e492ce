/* check.h — what the C test programs over the public API share (tests/api, tests/serve): the one
 * CHECK (a failed condition prints what, the condition and the library's last error, and
 * counts in the caller's `failures`, a local or a static of the including file), and
 * testproc.h's clock and thread count. Header-only. */
#ifndef BOXLITE_TESTS_API_CHECK_H
#define BOXLITE_TESTS_API_CHECK_H

#include "testproc.h"

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
