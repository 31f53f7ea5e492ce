/* modules.c — loads the kernel modules packed into the initramfs, in the order given by
 * <dir>/order, with finit_module(2). A module that is missing or fails only logs. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void load_one(const char *dir, const char *name)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bl_log("module %s: %s", name, strerror(errno));
        return;
    }
    if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
        bl_log("module %s: %s", name, strerror(errno));
    else
        bl_dbg("module %s loaded", name);
    close(fd);
}

void bl_load_modules(const char *dir)
{
    char path[512];
    char line[256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "%s/order", dir);
    f = fopen(path, "re");
    if (f == NULL) {
        bl_dbg("no %s: %s", path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (n == 0 || line[0] == '#' || strchr(line, '/') != NULL)
            continue;
        load_one(dir, line);
    }
    fclose(f);
}
