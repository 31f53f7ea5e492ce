/* cmd_stats.c — `boxlite stats BOX...`: CPU time, memory and disk use of running boxes. */
#include "cli.h"

#include <stdio.h>

int cmd_stats(int argc, char **argv)
{
    boxlite_runtime *rt = NULL;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: boxlite stats BOX...\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        printf("%-14s  %10s  %12s  %12s  %12s\n", "BOX", "CPU (s)", "MEM (MiB)", "DISK (MiB)",
               "SIZE (MiB)");
    for (int i = 1; rc == 0 && i < argc; i++) {
        boxlite_box *box = NULL;
        boxlite_box_stats st = BOXLITE_BOX_STATS_INIT;
        rc = cli_get_box(&box, rt, argv[i]);
        if (rc == 0 && boxlite_box_get_stats(&st, box) != 0)
            rc = cli_fail(argv[i]);
        if (rc == 0)
            printf("%-14s  %10.2f  %12.1f  %12.1f  %12.1f\n", argv[i], st.cpu_seconds,
                   (double)st.memory_bytes / 1048576.0, (double)st.disk_bytes / 1048576.0,
                   (double)st.disk_size_bytes / 1048576.0);
        boxlite_box_free(box);
    }
    boxlite_runtime_free(rt);
    return rc;
}
