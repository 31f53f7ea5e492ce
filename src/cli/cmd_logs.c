/* cmd_logs.c — `boxlite logs BOX`: the guest console of the box's last boot, its control
 * sequences and invalid UTF-8 escaped (cli_text.c). */
#include "cli.h"

#include <stdio.h>

int cmd_logs(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: boxlite logs BOX\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[1]);
    if (rc == 0 && boxlite_box_console(&text, &len, box) != 0)
        rc = cli_fail(argv[1]);
    if (rc == 0)
        cli_text_write(stdout, text, len); /* guest bytes: escaped for the terminal */
    boxlite_free(text);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
