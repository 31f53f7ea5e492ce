/* cmd_ls.c — `boxlite ls` / `boxlite ps` [-a] [-q] [--format table|json]: the boxes of the
 * runtime, newest first (without -a only running ones, like docker ps). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void print_json(const boxlite_box_info *b, size_t n)
{
    char engine[64];

    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"id\":", i ? "," : "");
        cli_json_str(stdout, b[i].id);
        printf(",\"name\":");
        cli_json_str(stdout, b[i].name);
        printf(",\"image\":");
        cli_json_str(stdout, b[i].image);
        printf(",\"managed_by\":");
        if (cli_oci_engine(b[i].image, engine, sizeof engine))
            cli_json_str(stdout, engine);
        else
            printf("null");
        printf(",\"status\":");
        cli_json_str(stdout, b[i].state);
        printf(",\"created_at\":");
        cli_json_str(stdout, b[i].created_at);
        printf(",\"reason\":");
        cli_json_str(stdout, b[i].reason);
        printf(",\"cpus\":%u,\"memory_mib\":%u,\"disk_size_gb\":%u,\"pid\":%d}", b[i].cpus,
               b[i].memory_mib, b[i].disk_size_gb, b[i].pid);
    }
    printf("]\n");
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {{"all", 0, NULL, 'a'},
                                             {"quiet", 0, NULL, 'q'},
                                             {"format", 1, NULL, 'f'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    boxlite_box_info *list = NULL;
    size_t n = 0, shown = 0;
    int all = 0, quiet = 0, json = 0, rc = 0;

    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "aqh", longopts, NULL);
        if (c == -1 || rc != 0)
            break;
        if (c == 'a')
            all = 1;
        else if (c == 'q')
            quiet = 1;
        else if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0))
            json = strcmp(optarg, "json") == 0;
        else
            rc = c == 'h' ? 1 : -1;
    }
    if (rc != 0 || optind < argc) {
        fprintf(rc > 0 ? stdout : stderr, "usage: boxlite ls [-a] [-q] [--format table|json]\n");
        return rc > 0 ? 0 : 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0 && boxlite_box_list_v2(&list, &n, rt, BOXLITE_BOX_INFO_VERSION) != 0)
        rc = cli_fail("list");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (all || json || strcmp(list[i].state, "running") == 0)
            list[shown++] = list[i];
    if (rc == 0 && json)
        print_json(list, shown);
    else if (rc == 0 && !quiet)
        printf("%-12s  %-24s  %-10s  %-20s  %s\n", "ID", "IMAGE", "STATUS", "CREATED", "NAMES");
    for (size_t i = 0; rc == 0 && !json && i < shown; i++) {
        if (quiet)
            printf("%s\n", list[i].id);
        else
            printf("%-12s  %-24.24s  %-10s  %-20s  %s\n", list[i].id, list[i].image, list[i].state,
                   list[i].created_at, list[i].name);
    }
    boxlite_box_list_free(list, n);
    boxlite_runtime_free(rt);
    return rc;
}
