/* cmd_snapshot.c — `boxlite snapshot create [--memory] BOX NAME | ls BOX | restore BOX NAME |
 * rm BOX NAME`: a box's disk (and, with --memory, full) snapshots. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: boxlite snapshot create [--memory] BOX NAME\n"
            "       boxlite snapshot ls [--format json] BOX\n"
            "       boxlite snapshot restore BOX NAME\n"
            "       boxlite snapshot rm BOX NAME\n"
            "A disk snapshot may be taken of a running box; --memory also saves its RAM and\n"
            "device state, and restoring it resumes the box with its processes running.\n");
    return rc;
}

static int list(boxlite_box *box, int json)
{
    boxlite_snapshot_info *s = NULL;
    size_t n = 0;

    if (boxlite_snapshot_list_v2(&s, &n, box, BOXLITE_SNAPSHOT_INFO_VERSION) != 0)
        return cli_fail("snapshot ls");
    if (!json)
        printf("%-12s  %-24s  %-4s  %-12s  %10s  %s\n", "ID", "NAME", "KIND", "PARENT", "SIZE",
               "CREATED");
    else
        printf("[");
    for (size_t i = 0; i < n; i++) {
        if (!json) {
            printf("%-12s  %-24s  %-4s  %-12s  %9.1fM  %s\n", s[i].id, s[i].name, s[i].kind,
                   s[i].parent[0] ? s[i].parent : "-", (double)s[i].size / 1048576.0,
                   s[i].created_at);
            continue;
        }
        printf("%s{\"id\":", i ? "," : "");
        cli_json_str(stdout, s[i].id);
        printf(",\"name\":");
        cli_json_str(stdout, s[i].name);
        printf(",\"kind\":");
        cli_json_str(stdout, s[i].kind);
        printf(",\"parent\":");
        cli_json_str(stdout, s[i].parent);
        printf(",\"size\":%llu,\"created_at\":", (unsigned long long)s[i].size);
        cli_json_str(stdout, s[i].created_at);
        printf("}");
    }
    if (json)
        printf("]\n");
    boxlite_snapshot_list_free(s, n);
    return 0;
}

int cmd_snapshot(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    const char *op = argc > 1 ? argv[1] : "";
    int memory = 0, json = 0, i = 2, rc = 0;

    if (argc < 2 || strcmp(op, "--help") == 0 || strcmp(op, "-h") == 0)
        return usage(argc < 2 ? 2 : 0);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--memory") == 0)
            memory = 1;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            json = strcmp(argv[++i], "json") == 0;
        else
            return usage(2);
    }
    if (i >= argc || (strcmp(op, "ls") != 0 && i + 2 != argc) ||
        (strcmp(op, "ls") == 0 && i + 1 != argc))
        return usage(2);
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, argv[i]);
    if (rc != 0) {
    } else if (strcmp(op, "create") == 0) {
        boxlite_snapshot_info s = BOXLITE_SNAPSHOT_INFO_INIT;
        if (boxlite_snapshot_create(&s, box, argv[i + 1], memory ? BOXLITE_SNAPSHOT_MEMORY : 0))
            rc = cli_fail("snapshot create");
        else
            printf("%s\n", s.id);
    } else if (strcmp(op, "ls") == 0) {
        rc = list(box, json);
    } else if (strcmp(op, "restore") == 0) {
        if (boxlite_snapshot_restore(box, argv[i + 1], BOXLITE_SNAPSHOT_DETACH) != 0)
            rc = cli_fail("snapshot restore");
    } else if (strcmp(op, "rm") == 0) {
        if (boxlite_snapshot_remove(box, argv[i + 1]) != 0)
            rc = cli_fail("snapshot rm");
    } else {
        rc = usage(2);
    }
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
