/* volumes.c — host directories shared into the box: each boxlite.volN=TAG,ro|rw,PATH on the
 * kernel command line (PATH percent-encoded) is a virtio-9p export mounted at PATH.
 *
 * A read-only volume is read-only three times: QEMU exports it with readonly=on, the jail
 * binds it read-only, and here its mount is locked read-only (MNT_LOCK_READONLY), so that
 * guest root's `mount -o remount,rw` fails with EPERM and /proc/mounts keeps saying ro. The
 * kernel sets that lock when it copies mounts into a mount namespace owned by a new user
 * namespace; a child makes one, clones the volume's mount there (the clone keeps the lock)
 * and hands it back to put in place of the unlocked one. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

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

/* In the child: a user + mount namespace of its own (locking every read-only mount it copies),
 * then a clone of dst sent back over sock. */
static void locked_clone_child(int sock, const char *dst)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u = {0};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    int fd;

    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        _exit(1);
    fd = (int)syscall(SYS_open_tree, AT_FDCWD, dst, OPEN_TREE_CLONE | O_CLOEXEC);
    if (fd < 0)
        _exit(2);
    u.h.cmsg_level = SOL_SOCKET;
    u.h.cmsg_type = SCM_RIGHTS;
    u.h.cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(&u.h), &fd, sizeof(int));
    _exit(sendmsg(sock, &msg, 0) == 1 ? 0 : 3);
}

static int recv_fd(int sock)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u = {0};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c;
    int fd = -1;

    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* Replace the read-only mount on dst by a clone of it whose read-only flag is locked. */
static int lock_readonly(const char *dst)
{
    int sv[2], fd = -1, rc = -1;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        locked_clone_child(sv[1], dst);
    }
    close(sv[1]);
    if (pid > 0)
        fd = recv_fd(sv[0]);
    close(sv[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    if (fd >= 0 && umount2(dst, MNT_DETACH) == 0)
        rc = (int)syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
    if (fd >= 0)
        close(fd);
    return rc < 0 ? -1 : 0;
}

static void mount_volume(const char *spec)
{
    char buf[1024], dst[1200], tag[64], mode[8];
    char *path;
    int ro;

    snprintf(buf, sizeof(buf), "%s", spec);
    path = strchr(buf, ',');
    path = path ? strchr(path + 1, ',') : NULL;
    if (!path || sscanf(buf, "%63[^,],%7[^,]", tag, mode) != 2 || percent_decode(path + 1) < 0 ||
        path[1] != '/' || has_dotdot(path + 1)) {
        bl_log("bad volume spec %s", spec);
        return;
    }
    ro = strcmp(mode, "ro") == 0;
    snprintf(dst, sizeof(dst), "%s%s", ROOTFS, path + 1);
    if (mkdir_p(dst) < 0) {
        bl_log("mkdir %s: %s", dst, strerror(errno));
        return;
    }
    if (mount(tag, dst, "9p", ro ? MS_RDONLY : 0,
              "trans=virtio,version=9p2000.L,msize=262144,access=client") < 0)
        bl_log("mount volume %s on %s: %s", tag, dst, strerror(errno));
    else if (ro && lock_readonly(dst) < 0)
        bl_log("lock volume %s read-only on %s: %s", tag, dst, strerror(errno));
}

void bl_mount_volumes(void)
{
    char key[32], spec[1024];

    for (int i = 0; i < MAX_VOLUMES; i++) {
        snprintf(key, sizeof(key), "boxlite.vol%d", i);
        if (bl_cmdline_get(key, spec, sizeof(spec)) < 0)
            break;
        mount_volume(spec);
    }
}
