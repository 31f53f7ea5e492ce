/* main.c — the boxlite CLI entry point: the verb table and dispatch. Each verb lives in its
 * own cmd_<verb>.c and uses only the public API in boxlite.h. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_verb verbs[] = {
    {"run", "run a command in a new box", cmd_run},
    {"create", "create a box (not started)", cmd_create},
    {"start", "start boxes", cmd_start},
    {"stop", "stop boxes", cmd_stop},
    {"restart", "stop and start boxes", cmd_restart},
    {"exec", "run a command in a running box", cmd_exec},
    {"cp", "copy files between the host and a box", cmd_cp},
    {"port-forward", "forward local ports to ports inside a box", cmd_port_forward},
    {"rm", "remove boxes", cmd_rm},
    {"ls", "list boxes", cmd_ls},
    {"ps", "list boxes (same as ls)", cmd_ls},
    {"inspect", "show boxes' details as JSON", cmd_inspect},
    {"logs", "show a box's console output", cmd_logs},
    {"stats", "show running boxes' resource use", cmd_stats},
    {"pull", "pull an image from a registry", cmd_pull},
    {"images", "list images", cmd_images},
    {"rmi", "remove images", cmd_rmi},
    {"import", "import an image from a file or directory", cmd_import},
    {"snapshot", "create, list, restore or remove a box's snapshots", cmd_snapshot},
    {"clone", "copy a box into a new, independent one", cmd_clone},
    {"fork", "start boxes from a full snapshot, each with a fresh identity", cmd_fork},
    {"export", "write a box to a portable .boxlite archive", cmd_export},
    {"import-box", "make a box from a .boxlite archive", cmd_import_box},
    {"serve", "serve the Box API over HTTP", cmd_serve},
    {"doctor", "check the store; --fix mends it", cmd_doctor},
    {"template", "list, remove, prune or make warm templates", cmd_template},
    {"info", "show the runtime's home, version and templates", cmd_info},
    {"version", "print the version", cmd_version},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: boxlite VERB [OPTIONS] ...\n\nverbs:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\nRun 'boxlite VERB --help' for a verb's options.\n");
}

static void log_to_stderr(void *ctx, int level, const char *message)
{
    const char *verbose = getenv("BOXLITE_VERBOSE"); /* "1": the library's notes too */

    (void)ctx;
    if (level >= 2 || (level == 1 && verbose && strcmp(verbose, "1") == 0))
        fprintf(stderr, "boxlite: %s\n", message);
}

int cli_open_runtime(boxlite_runtime **out)
{
    boxlite_runtime_options o = BOXLITE_RUNTIME_OPTIONS_INIT;

    o.log = log_to_stderr;
    o.registries = cli_registries(&o.n_registries);
    if (boxlite_runtime_open(out, &o) != 0)
        return cli_fail("open runtime");
    return 0;
}

int cli_fail(const char *context)
{
    fprintf(stderr, "boxlite: %s: ", context);
    cli_text_puts(stderr, boxlite_error_last()); /* may quote the guest's console */
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

int cli_get_box(boxlite_box **out, boxlite_runtime *rt, const char *id_or_name)
{
    if (boxlite_box_get(out, rt, id_or_name) != 0) {
        if (!*boxlite_error_last()) {
            fprintf(stderr, "boxlite: no such box: %s\n", id_or_name);
        } else {
            fputs("boxlite: ", stderr);
            cli_text_puts(stderr, boxlite_error_last());
            fputc('\n', stderr);
        }
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("boxlite %s\n", boxlite_version());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    while (argc > 3 && strcmp(argv[1], "--registry") == 0) { /* global: before the verb */
        if (cli_registry_opt(argv[2]) != 0)
            return 2;
        argc -= 2;
        argv += 2;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].name) == 0)
            return verbs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "boxlite: unknown verb \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
