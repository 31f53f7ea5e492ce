/* ports.c — what the host must offer before a boot: published host ports still free (a
 * probe bind), volume directories still there. */
#include "box.h"
#include "error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A published host port that something already holds is a clear error before booting
 * (QEMU would only say "could not set up host forwarding rule"). */
int bl_box_check_ports_free(const struct bl_box_row *r)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && r->ports && r->ports[i] && r->ports[i + 3]; i += 4) {
        int udp = strcmp(r->ports[i], "udp") == 0;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int one = 1;
        int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        sa.sin_port = htons((uint16_t)atoi(r->ports[i + 2]));
        inet_pton(AF_INET, r->ports[i + 1], &sa.sin_addr);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            rc = bl_err_errno(BOXLITE_EEXISTS, errno,
                              "publish %s:%s->%s/%s: the host port is "
                              "not available",
                              r->ports[i + 1], r->ports[i + 2], r->ports[i + 3], r->ports[i]);
        if (fd >= 0)
            close(fd);
    }
    return rc;
}

/* Every volume's host directory still exists. */
int bl_box_check_volumes_exist(const struct bl_box_row *r)
{
    struct stat st;

    for (size_t i = 0; r->volumes && r->volumes[i] && r->volumes[i + 2]; i += 3)
        if (stat(r->volumes[i + 1], &st) != 0 || !S_ISDIR(st.st_mode))
            return bl_err(BOXLITE_ENOTFOUND, "volume %s (for %s) is no longer a directory",
                          r->volumes[i + 1], r->volumes[i + 2]);
    return 0;
}
