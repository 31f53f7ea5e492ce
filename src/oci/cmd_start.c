/* cmd_start.c — `start ID`: ask the created container's keeper (over <root>/<id>/ctl.sock) to
 * start the process; returns once it runs. */
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define START_TIMEOUT_MS 120000

static int ask(const char *id)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[4200], reply[64] = "";
    struct pollfd p;
    int dfd = -1, fd = -1, rc = 1;
    ssize_t n;

    if (bl_oci_path(dir, sizeof dir, id, NULL) < 0 ||
        (dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return bl_oci_fail("%s: state directory: %s", id, strerror(errno));
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/ctl.sock", dfd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        write(fd, "start\n", 6) != 6) {
        bl_oci_fail("%s: keeper: %s", id, strerror(errno));
        goto out;
    }
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, START_TIMEOUT_MS) <= 0) {
        bl_oci_fail("%s: the process did not start within %d s", id, START_TIMEOUT_MS / 1000);
        goto out;
    }
    n = read(fd, reply, sizeof reply - 1);
    if (n < 3 || strncmp(reply, "ok\n", 3) != 0) {
        bl_oci_fail("%s: the process could not start", id);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    close(dfd);
    return rc;
}

int bl_oci_cmd_start(int argc, char **argv)
{
    struct bl_oci_state st;
    char *pos[1];
    int n = 0;

    if (bl_oci_args(argc, argv, NULL, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("start: usage: start ID");
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    if (st.status != BL_OCI_CREATED)
        return bl_oci_fail("%s: cannot start a container that is %s", pos[0],
                           bl_oci_status_name(st.status));
    return ask(pos[0]);
}
