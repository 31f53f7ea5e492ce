/* cmd_ps.c — `ps [--format json] ID`: the container's host pids. The processes themselves run
 * in the guest; on the host the container is its keeper. */
#include "oci.h"

#include <string.h>

int bl_oci_cmd_ps(int argc, char **argv)
{
    struct bl_oci_state st;
    const char *format = "table";
    char *pos[1];
    int n = 0, alive;
    const struct bl_oci_opt opts[] = {{"format", 'f', &format, NULL}, {NULL, 0, NULL, NULL}};

    if (bl_oci_args(argc, argv, opts, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("ps: usage: ps [--format json] ID");
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    alive = BL_OCI_LIVE(st.status);
    if (strcmp(format, "json") == 0)
        printf(alive ? "[%d]\n" : "[]\n", (int)st.pid);
    else
        printf(alive ? "PID\n%d\n" : "PID\n", (int)st.pid);
    return 0;
}
