/* disk.c — the operations on a qcow2 chain: overlay, rebase, flatten, convert (through
 * qemu-img), switching a box's top layer, walking a chain down to its base, and the image
 * base it rests on. Layout of a box's layers: docs/snapshots.md. */
#include "disk.h"

#include "error.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_MAX 65536 /* a chain is as deep as a box has layers; deeper is a loop */

const char *bl_disk_backing_fmt(const char *backing)
{
    size_t n = strlen(backing);

    return n > 5 && strcmp(backing + n - 5, ".ext4") == 0 ? "raw" : "qcow2";
}

int bl_disk_overlay(const char *path, const char *backing, uint64_t size_bytes)
{
    const char *fmt = bl_disk_backing_fmt(backing);
    struct stat st;

    /* written here, not by qemu-img create: ~9 ms of every box creation, snapshot and fork */
    if (stat(backing, &st) != 0)
        return bl_err_errno(BOXLITE_EIO, errno, "overlay %s: backing file %s", path, backing);
    if (size_bytes == 0)
        size_bytes = strcmp(fmt, "raw") == 0 ? (uint64_t)st.st_size : bl_disk_virtual_size(backing);
    if (size_bytes == 0)
        return bl_err(BOXLITE_EIO, "overlay %s: no size for its backing file %s", path, backing);
    return bl_qcow2_create_overlay(path, backing, fmt, size_bytes);
}

int bl_disk_rebase(const char *layer, const char *new_backing)
{
    const char *onto[] = {"qemu-img",  "rebase", "-q",
                          "-f",        "qcow2",  "-b",
                          new_backing, "-F",     bl_disk_backing_fmt(new_backing),
                          layer,       NULL};
    const char *alone[] = {"qemu-img", "rebase", "-q", "-f", "qcow2", "-b", "", layer, NULL};

    return bl_run_tool(new_backing[0] ? onto : alone);
}

int bl_disk_flatten(const char *disk, const char *src, const char *base)
{
    char *real = realpath(src, NULL);
    int rc =
        real ? bl_disk_overlay(disk, real, 0) : bl_err_errno(BOXLITE_EIO, errno, "resolve %s", src);

    if (rc == 0)
        rc = bl_disk_rebase(disk, base ? base : "");
    free(real);
    return rc;
}

int bl_disk_convert(const char *src, const char *dest)
{
    const char *argv[] = {"qemu-img", "convert", "-q", "-O", "qcow2", src, dest, NULL};

    return bl_run_tool(argv);
}

void bl_disk_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int bl_disk_switch_top(const char *dir, const char *layer)
{
    char lnk[4096], disk[4096];
    int rc = 0, err;

    if ((size_t)snprintf(lnk, sizeof(lnk), "%s/disk.qcow2.lnk", dir) >= sizeof(lnk) ||
        (size_t)snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir) >= sizeof(disk)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(lnk);
    if (symlink(layer, lnk) != 0 || rename(lnk, disk) != 0)
        rc = -1;
    err = errno; /* the caller's message: why the switch failed, not the sync */
    bl_disk_sync_dir(dir);
    errno = err;
    return rc;
}

static int is_base(const char *file)
{
    return strcmp(bl_disk_backing_fmt(file), "raw") == 0;
}

int bl_disk_walk(const char *path, int (*fn)(const char *file, const struct stat *st, void *ctx),
                 void *ctx)
{
    char cur[BL_QCOW2_BACKING_MAX + 4096];
    struct bl_qcow2 q;
    struct stat st;
    int rc = 0, depth = 0;

    snprintf(cur, sizeof(cur), "%s", path);
    for (; rc == 0 && depth < WALK_MAX; depth++) {
        int gone = stat(cur, &st) != 0;
        rc = fn(cur, gone ? NULL : &st, ctx);
        if (rc != 0 || gone || is_base(cur))
            break; /* stopped, a file named but missing, or the raw base at the bottom */
        rc = bl_qcow2_read(&q, cur);
        if (rc != 0 || !q.backing[0])
            break; /* unreadable (the error), or a standalone layer */
        snprintf(cur, sizeof(cur), "%s", q.backing);
    }
    if (rc == 0 && depth >= WALK_MAX)
        rc = bl_err(BOXLITE_EIO, "the backing chain of %s loops", path);
    return rc < 0 ? rc : 0;
}

struct rootfs_walk {
    char *hex;
};

static int find_rootfs(const char *file, const struct stat *st, void *ctx)
{
    struct rootfs_walk *w = ctx;
    const char *slash = strrchr(file, '/');
    size_t n = strlen(file);

    (void)st;
    if (!is_base(file) || !strstr(file, "/images/rootfs/"))
        return 0;
    w->hex = strndup(slash + 1, n - (size_t)(slash + 1 - file) - 5);
    return w->hex ? 1 : bl_err(BOXLITE_ENOMEM, "out of memory");
}

int bl_disk_rootfs(const char *disk, char **out)
{
    struct rootfs_walk w = {0};
    int rc = bl_disk_walk(disk, find_rootfs, &w);

    if (rc == 0 && !w.hex && access(disk, F_OK) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", disk);
    if (rc == 0 && !w.hex)
        w.hex = strdup(""); /* stands alone */
    if (rc == 0 && !w.hex)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    if (rc == 0)
        *out = w.hex;
    else
        free(w.hex);
    return rc;
}
