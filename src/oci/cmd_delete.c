/* cmd_delete.c — `delete [--force] ID`: a stopped (or created) container's box and imported
 * rootfs image go, then its state directory; --force kills a running one first. A pod's
 * sandbox is not deleted while its containers run (--force kills them first); a pod
 * container's delete leaves the pod's VM alone. */
#include "oci.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int wait_gone(const struct bl_oci_state *st)
{
    for (int i = 0; i < 200 && bl_oci_alive(st->pid, st->starttime); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return bl_oci_alive(st->pid, st->starttime) ? -1 : 0;
}

int bl_oci_cmd_delete(int argc, char **argv)
{
    struct bl_oci_state st;
    char *pos[1];
    int n = 0, force = 0;
    const struct bl_oci_opt opts[] = {{"force", 'f', NULL, &force}, {NULL, 0, NULL, NULL}};

    if (bl_oci_args(argc, argv, opts, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("delete: usage: delete [--force] ID");
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    if (st.pod_role == BL_OCI_POD_SANDBOX && bl_oci_pod_members(pos[0], 0) > 0) {
        if (!force)
            return bl_oci_fail("%s: the pod's containers still run (use --force)", pos[0]);
        bl_oci_pod_members(pos[0], 1); /* their processes end with their keepers */
    }
    if ((st.status == BL_OCI_RUNNING || st.status == BL_OCI_PAUSED) && !force)
        return bl_oci_fail("%s: cannot delete a running container (use --force)", pos[0]);
    if (BL_OCI_LIVE(st.status)) {
        kill(st.pid, SIGKILL);
        if (wait_gone(&st) != 0)
            return bl_oci_fail("%s: keeper %d did not end", pos[0], (int)st.pid);
    }
    if (st.pod_role != BL_OCI_POD_CONTAINER)
        bl_oci_box_remove(st.box_id, st.image);
    else /* the VM is the sandbox's: only the container's root in it goes */
        bl_oci_pod_remove(&st);
    if (st.pod_role)
        bl_oci_pod_forget(pos[0]);
    bl_oci_state_remove(pos[0]);
    return 0;
}
