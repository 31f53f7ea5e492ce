/* mounts.c — the guest's filesystems: /proc, /sys and /dev of the initramfs, the box disk
 * (/dev/vda, ext4) at /rootfs with its pseudo filesystems, cgroup2 (the agent's only), the
 * hostname, and unmounting. */
#include "agent.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_DEV     "/dev/vda"
#define ROOT_WAIT_MS 10000
#define ROOT_RA      "/sys/block/vda/queue/read_ahead_kb"
#define ROOT_RA_KB   "1024" /* a first exec faults its binary in: fewer, larger reads */
/* No ext4lazyinit thread behind the first exec: noinit_itable leaves the inode tables mke2fs
 * did not zero (lazy_itable_init=1) as they are, flagged so; no_prefetch_block_bitmaps reads
 * block bitmaps when allocation needs them instead of all of them at mount. The journal and
 * its crash safety are untouched. */
#define ROOT_OPTS "noinit_itable,no_prefetch_block_bitmaps"

struct mnt {
    const char *src;
    const char *dst;
    const char *type;
    unsigned long flags;
    const char *data;
    mode_t mode; /* of the mount point when created */
};

/* Mounted in order; unmounted in reverse. The devpts line is retried without newinstance
 * by mount_one when the kernel rejects it. */
static const struct mnt rootfs_mnts[] = {
    {"proc", ROOTFS "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555},
    {"sysfs", ROOTFS "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555},
    {"devtmpfs", ROOTFS "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755},
    {"devpts", ROOTFS "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
     "newinstance,ptmxmode=0666,mode=0620,gid=5", 0755},
    {"tmpfs", ROOTFS "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777},
};
#define N_ROOTFS_MNTS (sizeof rootfs_mnts / sizeof rootfs_mnts[0])

static int rootfs_mounted;

static int ensure_dir(const char *path, mode_t mode)
{
    struct stat st;

    if (lstat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -1;
    return chmod(path, mode);
}

static int mount_one(const struct mnt *m)
{
    if (ensure_dir(m->dst, m->mode) < 0) {
        bl_log("mkdir %s: %s", m->dst, strerror(errno));
        return -1;
    }
    if (mount(m->src, m->dst, m->type, m->flags, m->data) == 0)
        return 0;
    if (strcmp(m->type, "devpts") == 0 &&
        mount(m->src, m->dst, m->type, m->flags, "ptmxmode=0666,mode=0620,gid=5") == 0)
        return 0;
    bl_log("mount %s on %s: %s", m->type, m->dst, strerror(errno));
    return -1;
}

/* Put /dev/console on fds 0, 1 and 2 (the kernel found no console node in the
 * initramfs, so they start closed). */
static void open_console(void)
{
    int fd;

    fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return;
    while (fd >= 0 && fd < 2)
        fd = dup(fd);
    if (fd > 2)
        close(fd);
}

int bl_mount_early(void)
{
    int ret = 0;

    /* The initramfs may already have the kernel's /dev (CONFIG_DEVTMPFS_MOUNT). */
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
        ret = -1;
    open_console();
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        bl_log("mount /proc: %s", strerror(errno));
        ret = -1;
    }
    if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        bl_log("mount /sys: %s", strerror(errno));
        ret = -1;
    }
    /* cgroup.c builds the workload's limits here; the workload's own /sys does not show it. */
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        bl_log("mount cgroup2: %s", strerror(errno));
    return ret;
}

static int wait_for(const char *path, unsigned ms)
{
    uint64_t end = bl_now_ms() + ms;

    while (access(path, F_OK) < 0) {
        if (bl_now_ms() >= end)
            return -1;
        bl_sleep_ms(5);
    }
    return 0;
}

/* The box disk may be bigger than the image's filesystem (disk_size_gb): grow the mounted
 * ext4 to fill it. The kernel resizes online; the same size is a no-op. */
#define BLKGETSIZE64_IOCTL 0x80081272UL /* _IOR(0x12, 114, size_t) */
#define EXT4_IOC_RESIZE_FS 0x40086610UL /* _IOW('f', 16, __u64) */

static void grow_rootfs(void)
{
    struct statvfs sv;
    uint64_t bytes = 0, blocks;
    int dev = open(ROOT_DEV, O_RDONLY | O_CLOEXEC);
    int dir = open(ROOTFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dev >= 0 && dir >= 0 && ioctl(dev, BLKGETSIZE64_IOCTL, &bytes) == 0 &&
        fstatvfs(dir, &sv) == 0 && sv.f_bsize > 0) {
        blocks = bytes / sv.f_bsize;
        if (ioctl(dir, EXT4_IOC_RESIZE_FS, &blocks) < 0)
            bl_log("grow %s to %llu blocks: %s", ROOTFS, (unsigned long long)blocks,
                   strerror(errno));
    }
    if (dev >= 0)
        close(dev);
    if (dir >= 0)
        close(dir);
}

/* The box disk's read-ahead: a property of the guest's queue, not of the disk, so a template
 * sets it before it is saved and every box restored from it keeps it. */
void bl_disk_tune(void)
{
    int fd = wait_for(ROOT_DEV, ROOT_WAIT_MS) == 0 ? open(ROOT_RA, O_WRONLY | O_CLOEXEC) : -1;

    if (fd < 0 || bl_write_all(fd, ROOT_RA_KB, strlen(ROOT_RA_KB)) < 0)
        bl_log("%s: %s", ROOT_RA, strerror(errno));
    if (fd >= 0)
        close(fd);
}

int bl_mount_rootfs(void)
{
    size_t i;
    int ret = -1;

    if (wait_for(ROOT_DEV, ROOT_WAIT_MS) < 0) {
        bl_log("%s did not appear within %u ms", ROOT_DEV, ROOT_WAIT_MS);
        goto out;
    }
    if (mount(ROOT_DEV, ROOTFS, "ext4", MS_NOATIME, ROOT_OPTS) < 0) {
        bl_log("mount %s (ext4) on %s: %s", ROOT_DEV, ROOTFS, strerror(errno));
        goto out;
    }
    rootfs_mounted = 1;
    grow_rootfs();
    for (i = 0; i < N_ROOTFS_MNTS; i++)
        (void)mount_one(&rootfs_mnts[i]);
    if (ensure_dir(ROOTFS "/tmp", 01777) < 0)
        bl_log("mkdir %s/tmp: %s", ROOTFS, strerror(errno));
    ret = 0;
out:
    return ret;
}

void bl_set_hostname(void)
{
    char name[65];

    if (bl_cmdline_get("boxlite.hostname", name, sizeof name) < 0 || name[0] == '\0')
        snprintf(name, sizeof name, "boxlite");
    if (sethostname(name, strlen(name)) < 0)
        bl_log("sethostname %s: %s", name, strerror(errno));
}

static void unmount_one(const char *path)
{
    if (umount2(path, 0) == 0)
        return;
    if (errno == EINVAL || errno == ENOENT)
        return; /* not mounted */
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        bl_dbg("remount %s read-only: %s", path, strerror(errno));
    (void)umount2(path, MNT_DETACH);
}

void bl_unmount_rootfs(void)
{
    size_t i;

    if (!rootfs_mounted)
        return;
    for (i = N_ROOTFS_MNTS; i > 0; i--)
        unmount_one(rootfs_mnts[i - 1].dst);
    if (umount2(ROOTFS, 0) < 0 && mount(NULL, ROOTFS, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
        bl_log("unmount %s: %s", ROOTFS, strerror(errno));
    rootfs_mounted = 0;
}
