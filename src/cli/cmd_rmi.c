/* cmd_rmi.c — `boxlite rmi [-f] IMAGE...`: remove images from the store (refused while a box
 * uses one, unless -f). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_rmi(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", 0, NULL, 'f'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    int c, force = 0, status;

    optind = 1;
    while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
        if (c == 'f') {
            force = 1;
        } else {
            FILE *f = c == 'h' ? stdout : stderr;
            fprintf(f, "usage: boxlite rmi [-f] IMAGE...\n\nRemove images (by name or id).\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: boxlite rmi [-f] IMAGE...\n");
        return 2;
    }
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    for (int i = optind; i < argc; i++) {
        if (boxlite_image_remove(rt, argv[i], force) != 0)
            status = cli_fail("rmi");
        else
            printf("%s\n", argv[i]);
    }
    boxlite_runtime_free(rt);
    return status;
}
