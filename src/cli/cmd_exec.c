/* cmd_exec.c — `boxlite exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] [--timeout S] BOX --
 * CMD...`: a command in a running box, attached (exit with its status) or detached. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void exec_usage(FILE *f)
{
    fprintf(f, "usage: boxlite exec [OPTIONS] BOX [--] CMD [ARGS...]\n\n"
               "  -i, --interactive  forward stdin to the command\n"
               "  -t, --tty          give the command a terminal\n"
               "  -d, --detach       start the command, print its pid in the box and return\n"
               "  -e, --env K=V      environment variable (repeatable)\n"
               "  -w, --workdir DIR  working directory\n"
               "  -u, --user USER    user (name, uid or uid:gid)\n"
               "  --timeout SECONDS  SIGTERM after this long, SIGKILL 2 s later\n");
}

/* Start the command, wait until it runs, print its pid in the box; it outlives us. */
static int start_detached(boxlite_box *box, const boxlite_exec_options *eo)
{
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    int rc = 0, pid = 0;

    if (boxlite_exec_start(&ex, box, eo) != 0)
        return cli_fail("exec");
    boxlite_exec_close_stdin(ex);
    for (int i = 0; i < 600 && pid == 0; i++) {
        pid = boxlite_exec_pid(ex);
        if (pid == 0 && boxlite_exec_wait_v2(&res, ex, 50) == 0) {
            if (res.message[0])
                fprintf(stderr, "boxlite: %s\n", res.message);
            rc = res.exit_code; /* it ended (or never started) already */
            break;
        }
    }
    if (pid > 0)
        printf("%d\n", pid);
    boxlite_exec_free(ex);
    return rc;
}

int cmd_exec(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"interactive", 0, NULL, 'i'}, {"tty", 0, NULL, 't'},     {"env", 1, NULL, 'e'},
        {"detach", 0, NULL, 'd'},      {"workdir", 1, NULL, 'w'}, {"user", 1, NULL, 'u'},
        {"timeout", 1, NULL, 'T'},     {"help", 0, NULL, 'h'},    {NULL, 0, NULL, 0}};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    const char *env[CLI_MAX_ENV + 1];
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    int nenv = 0, interactive = 0, rc = 0;
    unsigned timeout = 0;

    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "+itde:w:u:h", longopts, NULL);
        if (c == -1 || rc != 0)
            break;
        if (c == 'i')
            interactive = 1;
        else if (c == 't')
            eo.tty = 1;
        else if (c == 'd')
            eo.detach = 1;
        else if (c == 'e' && nenv < CLI_MAX_ENV)
            env[nenv++] = optarg;
        else if (c == 'w')
            eo.cwd = optarg;
        else if (c == 'u')
            eo.user = optarg;
        else if (c == 'T')
            rc = cli_parse_uint(optarg, &timeout, "--timeout");
        else
            rc = c == 'h' ? 1 : -1;
    }
    env[nenv] = NULL;
    if (rc == 0 && optind < argc && strcmp(argv[optind - 1], "--") != 0) {
        const char *name = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
        rc = optind < argc ? 0 : -1;
        if (rc == 0) {
            eo.argv = (const char *const *)(argv + optind);
            eo.env = env;
            eo.timeout_ms = timeout * 1000;
            rc = cli_open_runtime(&rt);
            if (rc == 0)
                rc = cli_get_box(&box, rt, name);
            if (rc == 0 && eo.detach)
                rc = start_detached(box, &eo);
            else if (rc == 0)
                rc = cli_attach(box, &eo, interactive);
            boxlite_box_free(box);
            boxlite_runtime_free(rt);
            return rc;
        }
    }
    exec_usage(rc > 0 ? stdout : stderr);
    return rc > 0 ? 0 : 2;
}
