/* cmd_run.c — `boxlite run [OPTIONS] [IMAGE] [-- CMD...]`: create a box, start it, run its
 * command (CMD, else the image's) attached to this terminal, stop the box, exit with the
 * command's status. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void run_usage(FILE *f)
{
    fprintf(f, "usage: boxlite run [OPTIONS] [IMAGE] [-- CMD [ARGS...]]\n"
               "       boxlite run [OPTIONS] IMAGE CMD [ARGS...]\n\n"
               "Run CMD (default: the image's command) in a new box of IMAGE (default: the\n"
               "built-in image), attached to this terminal.\n\n" CLI_BOX_HELP
               "  -i, --interactive  forward stdin to the command\n"
               "  -t, --tty          give the command a terminal\n"
               "  --cold             boot cold: no warm template (docs/templates.md)\n");
}

struct run_args {
    struct cli_box_opts bo;
    int interactive, tty, cold;
    char **cmd; /* NULL-terminated, may be empty */
};

/* -1 usage error, 1 help, 0 ok. */
static int parse(int argc, char **argv, struct run_args *ra)
{
    static const struct option longopts[] = {CLI_BOX_LONGOPTS,       {"interactive", 0, NULL, 'i'},
                                             {"tty", 0, NULL, 't'},  {"cold", 0, NULL, 'K'},
                                             {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c, rc = 0;

    optind = 1;
    while (rc == 0) {
        c = getopt_long(argc, argv, "+" CLI_BOX_SHORTOPTS "ith", longopts, NULL);
        if (c == -1)
            break;
        if (c == 'i')
            ra->interactive = 1;
        else if (c == 't')
            ra->tty = 1;
        else if (c == 'K')
            ra->cold = 1;
        else if (c == 'h')
            rc = 1;
        else
            rc = cli_box_opt(&ra->bo, c, optarg) == 0 ? 0 : -1;
    }
    if (rc != 0)
        return rc;
    /* [IMAGE] -- CMD... or IMAGE CMD... (getopt consumes a "--" that ends the options) */
    if (!(optind > 1 && strcmp(argv[optind - 1], "--") == 0) && optind < argc) {
        ra->bo.box.image = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
    }
    ra->cmd = argv + optind;
    return 0;
}

int cmd_run(int argc, char **argv)
{
    struct run_args ra = {0};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char **command = NULL;
    int status;

    cli_box_opts_init(&ra.bo);
    ra.bo.box.no_main = 1; /* the command run here is the box's work: never the image's twice */
    status = parse(argc, argv, &ra);
    if (status != 0) {
        run_usage(status > 0 ? stdout : stderr);
        return status > 0 ? 0 : 2;
    }
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_box_create(&box, rt, &ra.bo.box) != 0 ||
        boxlite_box_command(&command, box, (const char *const *)ra.cmd) != 0 ||
        boxlite_box_start_flags(box, ra.cold ? BOXLITE_START_COLD : 0) != 0) {
        status = cli_fail("run");
        if (box && ra.bo.box.auto_remove)
            boxlite_box_remove(box, 1);
        goto out;
    }
    eo.argv = (const char *const *)command;
    eo.tty = ra.tty;
    status = cli_attach(box, &eo, ra.interactive);
    if (!ra.bo.box.detach && boxlite_box_stop(box, BOXLITE_STOP_TIMEOUT_DEFAULT_MS) != 0)
        fprintf(stderr, "boxlite: stop: %s\n", boxlite_error_last());
out:
    boxlite_strv_free(command);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return status;
}
