/* cmd_clone.c — `boxlite clone [--snapshot NAME] BOX NEW`: an independent copy of a box (its
 * current disk, stopped, or one of its snapshots), sharing the image's blocks. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_clone(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL, *nb = NULL;
    const char *snap = NULL;
    int i = 1, rc;

    if (i + 1 < argc && strcmp(argv[i], "--snapshot") == 0) {
        snap = argv[i + 1];
        i += 2;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: boxlite clone [--snapshot NAME] BOX NEW-NAME\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[i]);
    if (rc == 0 && boxlite_box_clone_v2(&nb, box, snap, argv[i + 1]) != 0)
        rc = cli_fail("clone");
    if (rc == 0)
        printf("%s\n", boxlite_box_id(nb));
    boxlite_box_free(nb);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
