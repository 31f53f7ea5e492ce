/* cmd_import.c — `boxlite import PATH [NAME]`: an OCI image layout directory, a docker-save
 * tarball, or a plain root filesystem (directory or tarball) into the store. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    boxlite_image_info *info = NULL;
    boxlite_runtime *rt = NULL;
    int c, status;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        FILE *f = c == 'h' ? stdout : stderr;
        fprintf(f, "usage: boxlite import PATH [NAME]\n\n"
                   "Import an OCI image layout (directory or tar), a `docker save` tarball, or a\n"
                   "root filesystem (directory or tarball) as image NAME (default: the archive's\n"
                   "own name, else localhost/<file name>:latest).\n");
        return c == 'h' ? 0 : 2;
    }
    if (optind >= argc || argc - optind > 2) {
        fprintf(stderr, "usage: boxlite import PATH [NAME]\n");
        return 2;
    }
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_image_import(&info, rt, argv[optind],
                             optind + 1 < argc ? argv[optind + 1] : NULL) != 0)
        status = cli_fail("import");
    else
        printf("%s\n", info->name);
    boxlite_image_info_free(info);
    boxlite_runtime_free(rt);
    return status;
}
