/* cmd_start.c — `boxlite start [--cold] BOX...` and `boxlite restart [--cold] BOX...`: boot
 * boxes (they keep running after the command returns) or stop and boot them again. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int each(int argc, char **argv, int restart)
{
    boxlite_runtime *rt = NULL;
    unsigned flags = BOXLITE_START_DETACHED;
    int first = 1, rc;

    if (argc > 1 && strcmp(argv[1], "--cold") == 0) { /* no warm template: docs/templates.md */
        flags |= BOXLITE_START_COLD;
        first = 2;
    }
    if (argc <= first || strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
        fprintf(argc <= first ? stderr : stdout, "usage: boxlite %s [--cold] BOX...\n", argv[0]);
        return argc <= first ? 2 : 0;
    }
    rc = cli_open_runtime(&rt);
    for (int i = first; rc == 0 && i < argc; i++) {
        boxlite_box *box = NULL;
        rc = cli_get_box(&box, rt, argv[i]);
        if (rc == 0 && restart && boxlite_box_stop(box, BOXLITE_STOP_TIMEOUT_DEFAULT_MS) != 0)
            rc = cli_fail(argv[i]);
        if (rc == 0 && boxlite_box_start_flags(box, flags) != 0)
            rc = cli_fail(argv[i]);
        if (rc == 0)
            printf("%s\n", argv[i]);
        boxlite_box_free(box);
    }
    boxlite_runtime_free(rt);
    return rc;
}

int cmd_start(int argc, char **argv)
{
    return each(argc, argv, 0);
}

int cmd_restart(int argc, char **argv)
{
    return each(argc, argv, 1);
}
