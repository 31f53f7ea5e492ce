/* cmd_fork.c — `boxlite fork [-n N] [--name PREFIX] BOX SNAPSHOT`: N running boxes resumed
 * from a full snapshot, each with its own disk layer and a fresh identity; prints their ids. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_fork(int argc, char **argv)
{
    static const struct option longopts[] = {{"name", 1, NULL, 'N'}, {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    const char *prefix = NULL;
    unsigned n = 1;
    int c, rc = 0;

    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "+n:h", longopts, NULL)) != -1)
        rc = c == 'n' ? cli_parse_uint(optarg, &n, "-n") : c == 'N' ? (prefix = optarg, 0) : -1;
    if (rc != 0 || argc - optind != 2 || n == 0 || n > 1000) {
        fprintf(stderr, "usage: boxlite fork [-n N] [--name PREFIX] BOX SNAPSHOT\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[optind]);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        boxlite_box *f = NULL;
        char name[80];
        snprintf(name, sizeof(name), "%s-%u", prefix ? prefix : "", i + 1);
        if (boxlite_box_fork(&f, box, argv[optind + 1], prefix ? name : NULL,
                             BOXLITE_SNAPSHOT_DETACH) != 0)
            rc = cli_fail("fork");
        else
            printf("%s\n", boxlite_box_id(f));
        fflush(stdout);
        boxlite_box_free(f);
    }
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
