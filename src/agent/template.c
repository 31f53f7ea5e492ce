/* template.c — the agent in a warm template (boxlite.template=1 on the kernel command line):
 * the boot stops before anything box-specific (no /dev/vda mount, no hostname, network or
 * volumes), and the host later sends the one `attach` built-in, run here in PID 1, that does
 * the box's part in a restored guest. Design: docs/templates.md. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BL_BLKFLSBUF      _IO(0x12, 97)
#define BL_BLKGETSIZE64   0x80081272UL /* _IOR(0x12, 114, size_t) */
#define CAPACITY_WAIT_MS  5000
#define MAX_ATTACH_VOLUME 32

static int template_mode = -1; /* -1: not read yet */
static int attached;

int bl_template_mode(void)
{
    char v[8];

    if (template_mode < 0)
        template_mode = bl_cmdline_get("boxlite.template", v, sizeof v) == 0 && strcmp(v, "1") == 0;
    return template_mode;
}

int bl_template_waiting(void)
{
    return bl_template_mode() && !attached;
}

/* The disk QEMU now has may not be the one the template booted with: drop whatever the kernel
 * read of the old one (the partition scan at probe) and wait until the capacity the host
 * announces is the one the kernel sees (QEMU signals the change; the driver applies it). */
static int fresh_disk(uint64_t want, char *msg, size_t cap)
{
    uint64_t end = bl_now_ms() + CAPACITY_WAIT_MS, have = 0;
    int fd = open("/dev/vda", O_RDONLY | O_CLOEXEC);
    int rc = -1;

    if (fd < 0) {
        snprintf(msg, cap, "open /dev/vda: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (ioctl(fd, BL_BLKGETSIZE64, &have) != 0) {
            snprintf(msg, cap, "BLKGETSIZE64 /dev/vda: %s", strerror(errno));
            break;
        }
        if (have == want) {
            rc = 0;
            break;
        }
        if (bl_now_ms() >= end) {
            snprintf(msg, cap, "/dev/vda has %llu bytes, the box disk %llu",
                     (unsigned long long)have, (unsigned long long)want);
            break;
        }
        bl_sleep_ms(5);
    }
    if (rc == 0 && ioctl(fd, BL_BLKFLSBUF, 0) != 0) {
        snprintf(msg, cap, "BLKFLSBUF /dev/vda: %s", strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

/* attach HOSTNAME NET(user|none) DISK-BYTES MAC ENTROPY-HEX UNIX-NS [VOLUME-SPEC...]: the
 * fork's identity fix-up first (the clock is stepped to the host's as soon as it arrives; the
 * hostname is set before the network writes /etc/hosts), then the box disk, the network and
 * the volumes (specs as boxlite.volN takes them). */
static int attach(const struct bl_exec_req *req, char *msg, size_t cap)
{
    char *end = NULL, id[160] = "";
    unsigned long long bytes;

    if (!bl_template_mode() || attached) {
        snprintf(msg, cap, "attach: %s", attached ? "already attached" : "not a template");
        return -1;
    }
    if (req->argc < 7 || req->argc > 7 + MAX_ATTACH_VOLUME || req->argv[1][0] == '\0' ||
        strlen(req->argv[1]) > 64) {
        snprintf(msg, cap, "attach: bad arguments");
        return -1;
    }
    errno = 0;
    bytes = strtoull(req->argv[3], &end, 10);
    if (errno != 0 || !end || *end || bytes == 0) {
        snprintf(msg, cap, "attach: bad disk size");
        return -1;
    }
    if (bl_identity_apply(req->argv[1], req->argv[4], req->argv[5], req->argv[6], id, sizeof id) !=
        0) {
        snprintf(msg, cap, "attach: identity: %s", id);
        return -1;
    }
    if (fresh_disk(bytes, msg, cap) < 0)
        return -1;
    if (bl_mount_rootfs() < 0) {
        snprintf(msg, cap, "cannot mount the box disk (see the console)");
        return -1;
    }
    attached = 1;
    bl_net_setup_mode(strcmp(req->argv[2], "user") == 0);
    for (uint32_t i = 7; i < req->argc; i++)
        bl_mount_volume(req->argv[i]);
    return 0;
}

/* Run in PID 1 (mounts are the agent's); answered with STARTED and EXIT like any exec. */
void bl_template_attach(uint32_t stream, const struct bl_exec_req *req)
{
    char msg[240] = "";
    int code = 0;

    if (attach(req, msg, sizeof msg) < 0) {
        bl_log("%s", msg);
        code = 1;
    }
    bl_builtin_done(stream, code, msg);
}
