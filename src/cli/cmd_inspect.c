/* cmd_inspect.c — `boxlite inspect BOX...`: a JSON array with each box's info (its secrets
 * by name and hosts only, never their values). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* "secrets": [{"name": N, "hosts": [...]}]: names and hosts only, never a value. */
static void print_secrets(char **sec)
{
    printf(",\n    \"secrets\": [");
    for (size_t i = 0; sec && sec[i]; i++) {
        char *at = strchr(sec[i], '@'), *save = NULL;
        if (at)
            *at++ = '\0';
        printf("%s{\"name\": ", i ? ", " : "");
        cli_json_str(stdout, sec[i]);
        printf(", \"hosts\": [");
        int k = 0;
        for (char *h = at ? strtok_r(at, ",", &save) : NULL; h; h = strtok_r(NULL, ",", &save)) {
            printf("%s", k++ ? ", " : "");
            cli_json_str(stdout, h);
        }
        printf("]}");
    }
    printf("]");
}

static void print_info(const boxlite_box_info *b, const char *const *allow_net, char **sec)
{
    printf("  {\n    \"id\": ");
    cli_json_str(stdout, b->id);
    printf(",\n    \"name\": ");
    cli_json_str(stdout, b->name);
    char engine[64];

    printf(",\n    \"image\": ");
    cli_json_str(stdout, b->image);
    printf(",\n    \"managed_by\": "); /* an engine's container (boxlite-runtime), else null */
    if (cli_oci_engine(b->image, engine, sizeof engine))
        cli_json_str(stdout, engine);
    else
        printf("null");
    printf(",\n    \"state\": {\"status\": ");
    cli_json_str(stdout, b->state);
    printf(", \"running\": %s, \"pid\": %d, \"qemu_pid\": %d, \"reason\": ",
           b->pid > 0 ? "true" : "false", b->pid, b->qemu_pid);
    cli_json_str(stdout, b->reason);
    if (b->has_exit_code)
        printf(", \"exit_code\": %d", b->exit_code);
    else
        printf(", \"exit_code\": null");
    printf("},\n    \"accel\": ");
    cli_json_str(stdout, b->accel);
    printf(",\n    \"network\": \"%s\",\n    \"published_ports\": ",
           b->network_disabled ? "disabled" : "enabled");
    cli_json_str(stdout, b->ports);
    printf(",\n    \"allow_net\": [");
    for (size_t i = 0; allow_net && allow_net[i]; i++) {
        printf("%s", i ? ", " : "");
        cli_json_str(stdout, allow_net[i]);
    }
    printf("]");
    print_secrets(sec);
    printf(",\n    \"volumes\": ");
    cli_json_str(stdout, b->volumes);
    printf(",\n    \"created_at\": ");
    cli_json_str(stdout, b->created_at);
    printf(",\n    \"cpus\": %u,\n    \"memory_mib\": %u,\n    \"disk_size_gb\": %u,\n"
           "    \"detach\": %s,\n    \"auto_remove\": %s,\n    \"auto_delete\": %ld,\n"
           "    \"main_process\": %s\n  }",
           b->cpus, b->memory_mib, b->disk_size_gb, b->detach ? "true" : "false",
           b->auto_remove ? "true" : "false", b->auto_delete, b->no_main ? "false" : "true");
}

int cmd_inspect(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: boxlite inspect BOX...\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        printf("[\n");
    for (int i = 1; rc == 0 && i < argc; i++) {
        boxlite_box *box = NULL;
        boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
        char **sec = NULL;
        rc = cli_get_box(&box, rt, argv[i]);
        if (rc == 0 &&
            (boxlite_box_get_info(&info, box) != 0 || boxlite_box_secrets(&sec, box) != 0))
            rc = cli_fail(argv[i]);
        if (rc == 0) {
            printf("%s", i > 1 ? ",\n" : "");
            print_info(&info, boxlite_box_allow_net(box), sec);
        }
        boxlite_strv_free(sec);
        boxlite_box_free(box);
    }
    if (rc == 0)
        printf("\n]\n");
    boxlite_runtime_free(rt);
    return rc;
}
