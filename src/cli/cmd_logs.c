/* cmd_logs.c — `boxlite logs [-f] [--console] BOX`: what the box's main process wrote to
 * stdout and stderr (its log, across boots; -f follows it while the box runs), or with
 * --console the guest console of its last boot. Guest bytes are escaped (cli_text.c). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FOLLOW_POLL_US 200000

static int print_console(boxlite_box *box, const char *name)
{
    char *text = NULL;
    size_t len = 0;

    if (boxlite_box_console(&text, &len, box) != 0)
        return cli_fail(name);
    cli_text_write(stdout, text, len);
    boxlite_free(text);
    return 0;
}

/* Print the log from *pos; 0, or the CLI's failure status. */
static int print_from(boxlite_box *box, const char *name, uint64_t *pos)
{
    char *text = NULL;
    size_t len = 0;

    if (boxlite_box_logs(&text, &len, pos, box, *pos) != 0)
        return cli_fail(name);
    cli_text_write(stdout, text, len);
    fflush(stdout);
    boxlite_free(text);
    return 0;
}

static int box_live(boxlite_box *box)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;

    return boxlite_box_get_info(&info, box) == 0 && (info.state_code == BOXLITE_BOX_STATE_RUNNING ||
                                                     info.state_code == BOXLITE_BOX_STATE_STOPPING);
}

/* Follow: print what arrives until the box is no longer running (and its last words). */
static int follow(boxlite_box *box, const char *name)
{
    uint64_t pos = 0;
    int rc = print_from(box, name, &pos);

    while (rc == 0 && box_live(box)) {
        usleep(FOLLOW_POLL_US);
        rc = print_from(box, name, &pos);
    }
    return rc == 0 ? print_from(box, name, &pos) : rc;
}

int cmd_logs(int argc, char **argv)
{
    static const struct option longopts[] = {{"follow", 0, NULL, 'f'},
                                             {"console", 0, NULL, 'c'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    uint64_t pos = 0;
    int c, follow_on = 0, console = 0, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+fh", longopts, NULL)) != -1) {
        if (c == 'f')
            follow_on = 1;
        else if (c == 'c')
            console = 1;
        else
            optind = argc + 1; /* usage */
    }
    if (optind != argc - 1 || (console && follow_on)) {
        fprintf(stderr, "usage: boxlite logs [-f|--follow] [--console] BOX\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[optind]);
    if (rc == 0 && console)
        rc = print_console(box, argv[optind]);
    else if (rc == 0 && follow_on)
        rc = follow(box, argv[optind]);
    else if (rc == 0)
        rc = print_from(box, argv[optind], &pos);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
