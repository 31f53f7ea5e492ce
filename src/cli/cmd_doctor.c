/* cmd_doctor.c — `boxlite doctor [--fix]`: check the store (half-made boxes and snapshots,
 * layers and image bases nothing uses, dead monitors, lost layers) and with --fix mend it. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

/* ctx counts the findings left unfixed. */
static void report(void *ctx, const char *box_id, const char *what, int fixed)
{
    *(unsigned *)ctx += !fixed;
    printf("%s%s: %s%s\n", *box_id ? "box " : "store", box_id, what, fixed ? " (fixed)" : "");
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"fix", 0, NULL, 'f'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    unsigned found = 0, unfixed = 0;
    int c, fix = 0, status;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'f') {
            fix = 1;
        } else {
            FILE *f = c == 'h' ? stdout : stderr;
            fprintf(f, "usage: boxlite doctor [--fix]\n\nCheck the store; with --fix, mend what "
                       "can be mended. Exit 1 when something was found and not fixed.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_runtime_doctor(rt, fix, report, &unfixed, &found) != 0)
        status = cli_fail("doctor");
    else if (found == 0)
        printf("no problems found\n");
    else
        status = unfixed ? 1 : 0;
    boxlite_runtime_free(rt);
    return status;
}
