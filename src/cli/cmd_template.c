/* cmd_template.c — `boxlite template ls [--format json] | rm ID | prune [--all] |
 * warm [--cpus N] [--memory MIB]`: the runtime's warm templates (docs/templates.md). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: boxlite template ls [--format json]\n"
            "       boxlite template rm ID\n"
            "       boxlite template prune [--all]\n"
            "       boxlite template warm [--cpus N] [--memory MIB]\n"
            "A start saves the VM of its box shape once, just after the agent came up, and\n"
            "later starts of that shape restore it. prune removes unusable (stale or\n"
            "unfinished) templates, --all every one; warm makes one now.\n");
    return rc;
}

static void print_json(const boxlite_template_info *t, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"id\":", i ? "," : "");
        cli_json_str(stdout, t[i].id);
        printf(",\"usable\":%s,\"cpus\":%u,\"memory_mib\":%u,\"network\":%s,\"volumes\":%u,"
               "\"accel\":",
               t[i].usable ? "true" : "false", t[i].cpus, t[i].memory_mib,
               t[i].network ? "true" : "false", t[i].volumes);
        cli_json_str(stdout, t[i].accel);
        printf(",\"size\":%llu,\"created_at\":", (unsigned long long)t[i].size);
        cli_json_str(stdout, t[i].created_at);
        printf("}");
    }
    printf("]\n");
}

static int list(boxlite_runtime *rt, int json)
{
    boxlite_template_info *t = NULL;
    size_t n = 0;

    if (boxlite_template_list(&t, &n, rt, BOXLITE_TEMPLATE_INFO_VERSION) != 0)
        return cli_fail("template ls");
    if (json) {
        print_json(t, n);
    } else {
        printf("%-12s  %-8s  %4s  %7s  %-7s  %4s  %-5s  %10s  %s\n", "ID", "STATE", "CPUS",
               "MEMORY", "NETWORK", "VOLS", "ACCEL", "SIZE", "CREATED");
        for (size_t i = 0; i < n; i++)
            printf("%-12.12s  %-8s  %4u  %6uM  %-7s  %4u  %-5s  %9.1fM  %s\n", t[i].id,
                   t[i].usable ? "ready" : "unusable", t[i].cpus, t[i].memory_mib,
                   t[i].network ? "user" : "none", t[i].volumes, t[i].accel,
                   (double)t[i].size / 1048576.0, t[i].created_at[0] ? t[i].created_at : "-");
    }
    boxlite_template_list_free(t, n);
    return 0;
}

static int warm(boxlite_runtime *rt, int argc, char **argv)
{
    unsigned cpus = 0, memory = 0;

    for (int i = 0; i < argc; i++) {
        char *end = NULL;
        unsigned long v = i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
        if (!end || *end || v == 0 || v > 1u << 20)
            return usage(2);
        if (strcmp(argv[i], "--cpus") == 0)
            cpus = (unsigned)v;
        else if (strcmp(argv[i], "--memory") == 0)
            memory = (unsigned)v;
        else
            return usage(2);
        i++;
    }
    if (boxlite_template_warm(rt, cpus, memory) != 0)
        return cli_fail("template warm");
    return 0;
}

int cmd_template(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    const char *verb = argc > 1 ? argv[1] : "";
    size_t removed = 0;
    int rc;

    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0)
        return usage(0);
    if (strcmp(verb, "ls") != 0 && strcmp(verb, "rm") != 0 && strcmp(verb, "prune") != 0 &&
        strcmp(verb, "warm") != 0)
        return usage(2);
    if ((strcmp(verb, "rm") == 0 && argc != 3) ||
        (strcmp(verb, "prune") == 0 && argc > 2 && strcmp(argv[2], "--all") != 0))
        return usage(2);
    if (strcmp(verb, "ls") == 0 && argc > 2 &&
        !(argc == 4 && strcmp(argv[2], "--format") == 0 && strcmp(argv[3], "json") == 0))
        return usage(2);
    rc = cli_open_runtime(&rt);
    if (rc != 0)
        return rc;
    if (strcmp(verb, "ls") == 0)
        rc = list(rt, argc == 4);
    else if (strcmp(verb, "rm") == 0)
        rc = boxlite_template_remove(rt, argv[2]) == 0 ? 0 : cli_fail("template rm");
    else if (strcmp(verb, "prune") == 0 && boxlite_template_prune(&removed, rt, argc > 2) != 0)
        rc = cli_fail("template prune");
    else if (strcmp(verb, "prune") == 0)
        printf("%zu removed\n", removed);
    else
        rc = warm(rt, argc - 2, argv + 2);
    boxlite_runtime_free(rt);
    return rc;
}
