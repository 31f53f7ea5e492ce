/* cmd_state.c — `state ID`: the runtime-spec's state JSON (ociVersion, id, status, pid,
 * bundle, annotations). */
#include "oci.h"

#include <jansson.h>
#include <stdlib.h>

int bl_oci_cmd_state(int argc, char **argv)
{
    struct bl_oci_state st;
    char *pos[1], *text;
    json_t *o;
    int n = 0;

    if (bl_oci_args(argc, argv, NULL, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("state: usage: state ID");
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:{s:s}}", "ociVersion", "1.0.2", "id", st.id,
                  "status", bl_oci_status_name(st.status), "pid",
                  st.status == BL_OCI_STOPPED ? 0 : (int)st.pid, "bundle", st.bundle, "created",
                  st.created, "annotations", "io.boxlite.box", st.box_id);
    text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text)
        return bl_oci_fail("out of memory");
    printf("%s\n", text);
    free(text);
    return 0;
}
