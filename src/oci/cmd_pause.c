/* cmd_pause.c — `pause ID` and `resume ID`: the container's VM is stopped and continued
 * through QEMU's monitor (boxlite_box_pause/resume: QMP stop/cont), so every process in it
 * halts at once, as the freezer cgroup does for runc; the "paused" mark in the state
 * directory makes `state` say so. */
#include "oci.h"

#include <boxlite.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int mark(const char *id, int paused)
{
    char path[4200];
    int fd;

    if (bl_oci_path(path, sizeof path, id, "paused") < 0)
        return bl_oci_fail("%s: state path too long", id);
    if (!paused)
        return unlink(path) == 0 || errno == ENOENT ? 0
                                                    : bl_oci_fail("%s: %s", path, strerror(errno));
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return bl_oci_fail("%s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

static int pause_resume(int argc, char **argv, int pause)
{
    struct bl_oci_state st;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char *pos[1];
    int n = 0, rc;

    if (bl_oci_args(argc, argv, NULL, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("%s: usage: %s ID", argv[0], argv[0]);
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    if (pause && st.status != BL_OCI_RUNNING && st.status != BL_OCI_CREATED)
        return bl_oci_fail("%s: container not running (%s)", pos[0], bl_oci_status_name(st.status));
    if (!pause && st.status != BL_OCI_PAUSED)
        return bl_oci_fail("%s: container not paused (%s)", pos[0], bl_oci_status_name(st.status));
    rc = bl_oci_box_open(&rt, &box, &st);
    if (rc == 0 && (pause ? boxlite_box_pause(box) : boxlite_box_resume(box)) != 0)
        rc = bl_oci_fail("%s: %s", pos[0], boxlite_error_last());
    if (rc == 0)
        rc = mark(pos[0], pause);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}

int bl_oci_cmd_pause(int argc, char **argv)
{
    return pause_resume(argc, argv, 1);
}

int bl_oci_cmd_resume(int argc, char **argv)
{
    return pause_resume(argc, argv, 0);
}
