/* volumes.c — host directories shared into the box: each boxlite.volN=TAG,ro|rw,PATH on the
 * kernel command line (PATH percent-encoded) is a virtio-9p export mounted at PATH. */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define MAX_VOLUMES 32

/* Decode %XX in place; -1 on a bad escape. */
static int percent_decode(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        if (bl_hexval(r[1]) < 0 || bl_hexval(r[2]) < 0)
            return -1;
        *w++ = (char)(bl_hexval(r[1]) * 16 + bl_hexval(r[2]));
        r += 2;
    }
    *w = '\0';
    return 0;
}

/* 1 when a component of path is "..". */
static int has_dotdot(const char *path)
{
    for (const char *p = path; *p; p++)
        if (p[0] == '.' && p[1] == '.' && (p == path || p[-1] == '/') && (p[2] == '/' || !p[2]))
            return 1;
    return 0;
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

void bl_mount_volume(const char *spec)
{
    char buf[1024], dst[1200], tag[64], mode[8];
    char *path;

    snprintf(buf, sizeof(buf), "%s", spec);
    path = strchr(buf, ',');
    path = path ? strchr(path + 1, ',') : NULL;
    if (!path || sscanf(buf, "%63[^,],%7[^,]", tag, mode) != 2 || percent_decode(path + 1) < 0 ||
        path[1] != '/' || has_dotdot(path + 1)) {
        bl_log("bad volume spec %s", spec);
        return;
    }
    snprintf(dst, sizeof(dst), "%s%s", ROOTFS, path + 1);
    if (mkdir_p(dst) < 0) {
        bl_log("mkdir %s: %s", dst, strerror(errno));
        return;
    }
    if (mount(tag, dst, "9p", strcmp(mode, "ro") == 0 ? MS_RDONLY : 0,
              "trans=virtio,version=9p2000.L,msize=262144,access=client") < 0)
        bl_log("mount volume %s on %s: %s", tag, dst, strerror(errno));
}

void bl_mount_volumes(void)
{
    char key[32], spec[1024];

    for (int i = 0; i < MAX_VOLUMES; i++) {
        snprintf(key, sizeof(key), "boxlite.vol%d", i);
        if (bl_cmdline_get(key, spec, sizeof(spec)) < 0)
            break;
        bl_mount_volume(spec);
    }
}
