/* cmd_rm.c — `boxlite rm [-f] BOX...` and `boxlite rm [-f] --all`: remove boxes; a running
 * box only with -f. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static int remove_one(boxlite_runtime *rt, const char *key, int force)
{
    boxlite_box *box = NULL;
    int rc = cli_get_box(&box, rt, key);

    if (rc == 0 && boxlite_box_remove(box, force) != 0)
        rc = cli_fail(key);
    if (rc == 0)
        printf("%s\n", key);
    boxlite_box_free(box);
    return rc;
}

static int remove_all(boxlite_runtime *rt, int force)
{
    boxlite_box_info *list = NULL;
    size_t n = 0;
    int rc = 0;

    if (boxlite_box_list_v2(&list, &n, rt, BOXLITE_BOX_INFO_VERSION) != 0)
        return cli_fail("list");
    for (size_t i = 0; i < n; i++)
        if (remove_one(rt, list[i].id, force) != 0)
            rc = CLI_EXIT_FAILURE;
    boxlite_box_list_free(list, n);
    return rc;
}

int cmd_rm(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force", 0, NULL, 'f'}, {"all", 0, NULL, 'a'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    boxlite_runtime *rt = NULL;
    int force = 0, all = 0, c, rc = 0;

    optind = 1;
    for (;;) {
        c = getopt_long(argc, argv, "+fah", longopts, NULL);
        if (c == -1 || rc != 0)
            break;
        if (c == 'f')
            force = 1;
        else if (c == 'a')
            all = 1;
        else
            rc = c == 'h' ? 1 : -1;
    }
    if (rc != 0 || (optind >= argc && !all)) {
        fprintf(rc > 0 ? stdout : stderr, "usage: boxlite rm [-f] BOX... | --all\n");
        return rc > 0 ? 0 : 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0 && all)
        rc = remove_all(rt, force);
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = remove_one(rt, argv[i], force);
    boxlite_runtime_free(rt);
    return rc;
}
