/* cmd_export.c — `boxlite export [--snapshot NAME] BOX FILE` and `boxlite import-box [--name
 * NAME] [--trusted] FILE`: a box as one portable .boxlite archive, and back. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_export(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    const char *snap = NULL;
    int i = 1, rc;

    if (i + 1 < argc && strcmp(argv[i], "--snapshot") == 0) {
        snap = argv[i + 1];
        i += 2;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: boxlite export [--snapshot NAME] BOX FILE.boxlite\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[i]);
    if (rc == 0 && boxlite_box_export(box, snap, argv[i + 1]) != 0)
        rc = cli_fail("export");
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}

int cmd_import_box(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    const char *name = NULL;
    int i = 1, trusted = 0, rc;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--trusted") == 0)
            trusted = 1;
        else
            break;
    }
    if (argc - i != 1 || argv[i][0] == '-') {
        int help = i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0);
        fprintf(help ? stdout : stderr,
                "usage: boxlite import-box [--name NAME] [--trusted] FILE.boxlite\n");
        return help ? 0 : 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0 && boxlite_box_import(&box, rt, argv[i], name, !trusted) != 0)
        rc = cli_fail("import-box");
    if (rc == 0)
        printf("%s\n", boxlite_box_id(box));
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
