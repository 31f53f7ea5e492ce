/* cmd_create.c — `boxlite create [OPTIONS] [IMAGE] [-- CMD...]`: make a box (not started)
 * and print its id. Boxes made here stay up after `boxlite start` returns. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_BOX_LONGOPTS, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct cli_box_opts bo;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    int c, rc = 0;

    cli_box_opts_init(&bo);
    optind = 1;
    for (;;) {
        c = getopt_long(argc, argv, "+" CLI_BOX_SHORTOPTS "h", longopts, NULL);
        if (c == -1 || rc != 0)
            break;
        rc = c == 'h' ? 1 : (cli_box_opt(&bo, c, optarg) == 0 ? 0 : -1);
    }
    if (rc != 0) {
        fprintf(rc > 0 ? stdout : stderr,
                "usage: boxlite create [OPTIONS] [IMAGE] [-- CMD [ARGS...]]\n\n" CLI_BOX_HELP);
        return rc > 0 ? 0 : 2;
    }
    if (!(optind > 1 && strcmp(argv[optind - 1], "--") == 0) && optind < argc) {
        bo.box.image = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
    }
    if (optind < argc)
        bo.box.cmd = (const char *const *)(argv + optind);
    rc = cli_open_runtime(&rt);
    if (rc == 0 && boxlite_box_create(&box, rt, &bo.box) != 0)
        rc = cli_fail("create");
    if (rc == 0)
        printf("%s\n", boxlite_box_id(box));
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
