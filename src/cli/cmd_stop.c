/* cmd_stop.c — `boxlite stop [-t SECONDS] BOX...`: sync and power off boxes, killing them
 * after the timeout (and saying so on stderr). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_stop(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    unsigned secs = 10;
    int c, rc = 0;

    optind = 1;
    for (;;) {
        c = getopt(argc, argv, "+t:h");
        if (c == -1 || rc != 0)
            break;
        rc = c == 't' ? cli_parse_uint(optarg, &secs, "-t") : (c == 'h' ? 1 : -1);
    }
    if (rc != 0 || optind >= argc) {
        fprintf(rc > 0 ? stdout : stderr, "usage: boxlite stop [-t SECONDS] BOX...\n");
        return rc > 0 ? 0 : 2;
    }
    rc = cli_open_runtime(&rt);
    for (int i = optind; rc == 0 && i < argc; i++) {
        boxlite_box *box = NULL;
        int killed = 0;
        rc = cli_get_box(&box, rt, argv[i]);
        if (rc == 0 && boxlite_box_stop_v2(&killed, box, (int)secs * 1000) != 0)
            rc = cli_fail(argv[i]);
        if (rc == 0 && killed)
            fprintf(stderr,
                    "boxlite: %s did not power off within %u s and was killed (what it had not "
                    "synced is lost)\n",
                    argv[i], secs);
        if (rc == 0)
            printf("%s\n", argv[i]);
        boxlite_box_free(box);
    }
    boxlite_runtime_free(rt);
    return rc;
}
