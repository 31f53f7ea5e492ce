/* pod_enter.c — boxlite-pod-enter, the one program boxlite-runtime puts into a pod's VM: a
 * static (musl) binary that the guest agent runs, as root and chrooted at the sandbox's root,
 * for each process of a pod container. It gives the process the container's own root:
 *
 *   boxlite-pod-enter ROOT UID GID RO CWD [--bind SRC DEST RO]... -- ARGV...
 *   boxlite-pod-enter --remove ROOT      (at the container's delete: ROOT goes)
 *
 * a mount namespace of its own (the VM's other containers are untouched), ROOT bound onto
 * itself, each pod volume SRC (a directory the runtime copied into the VM) bound at DEST
 * inside ROOT (DEST resolved with openat2 RESOLVE_IN_ROOT: its "..", absolute and relative
 * symlinks all stay inside ROOT; missing directories are made; read-only when its RO is 1),
 * ROOT read-only when RO is 1, the guest's /proc, /sys and /dev inside it, chroot into it,
 * then the container's user (numeric, no supplementary groups) and cwd, and execvp of ARGV
 * with the environment the agent gave (the container's). Network, hostname and IPC stay the
 * VM's: a pod shares them, as Kubernetes expects. Errors go to stderr, exit status 127. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* openat2(2), which musl's headers may not carry: the kernel's ABI (linux/openat2.h). */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct pod_open_how {
    unsigned long long flags, mode, resolve;
};
#define POD_RESOLVE_NO_MAGICLINKS 0x02
#define POD_RESOLVE_IN_ROOT       0x10

static void __attribute__((noreturn)) die(const char *what, const char *arg)
{
    fprintf(stderr, "boxlite-pod-enter: %s %s: %s\n", what, arg, strerror(errno));
    _exit(127);
}

static unsigned num(const char *s)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 0xffffffffUL) {
        errno = EINVAL;
        die("bad number", s);
    }
    return (unsigned)v;
}

/* Bind the guest's dir (/proc, /sys, /dev) at ROOT/dir when the container has that dir. */
static void guest_dir(const char *root, const char *dir)
{
    char path[4200];
    struct stat sb;

    snprintf(path, sizeof path, "%s%s", root, dir);
    if (lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return;
    if (mount(dir, path, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("mount", path);
}

static int open_in_root(int rootfd, const char *path, int flags)
{
    struct pod_open_how how = {(unsigned long long)flags, 0,
                               POD_RESOLVE_IN_ROOT | POD_RESOLVE_NO_MAGICLINKS};

    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

/* The directory DEST inside the root rootfd, made when missing: an O_PATH fd. Each prefix is
 * resolved in the root, so nothing made or returned lies outside it. */
static int dest_dir(int rootfd, const char *dest)
{
    char part[4096];
    size_t n = strlen(dest);
    int fd = -1;

    if (n >= sizeof part || dest[0] != '/') {
        errno = ENAMETOOLONG;
        die("mount destination", dest);
    }
    for (size_t i = 1; i <= n; i++) {
        if (dest[i] != '/' && dest[i] != '\0')
            continue;
        memcpy(part, dest, i);
        part[i] = '\0';
        fd = open_in_root(rootfd, part, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            char *slash = strrchr(part, '/');
            int pfd;
            *slash = '\0';
            pfd = open_in_root(rootfd, part[0] ? part : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
            *slash = '/';
            if (pfd < 0 || (mkdirat(pfd, slash + 1, 0755) < 0 && errno != EEXIST))
                die("mount destination", part);
            close(pfd);
            fd = open_in_root(rootfd, part, O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
            die("mount destination", part);
        if (i < n)
            close(fd);
    }
    return fd;
}

/* Bind the pod volume src (the VM's /.boxlite-pod-vol.<hash>) at dest inside the root,
 * through the fd of the resolved destination (/proc/self/fd/N, as runc does). */
static void bind_volume(int rootfd, const char *src, const char *dest, int ro)
{
    char target[64];
    struct stat sb;
    int fd;

    if (strncmp(src, "/.boxlite-pod-vol.", 18) != 0 || strchr(src + 1, '/') ||
        lstat(src, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        errno = EINVAL;
        die("not a pod volume", src);
    }
    fd = dest_dir(rootfd, dest);
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind", dest);
    close(fd);
    if (!ro)
        return;
    fd = dest_dir(rootfd, dest); /* now the bound volume's root */
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
        die("read-only", dest);
    close(fd);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        fprintf(stderr, "boxlite-pod-enter: remove %s: %s\n", path, strerror(errno));
    return 0;
}

/* Only a container root the runtime made: /.boxlite-pod.<id>, one component, not a mount
 * crossed (FTW_MOUNT), links not followed (FTW_PHYS). */
static int remove_root(const char *root)
{
    if (strncmp(root, "/.boxlite-pod.", 14) != 0 || !root[14] || strchr(root + 1, '/') ||
        strcmp(root + 14, ".") == 0 || strcmp(root + 14, "..") == 0) {
        fprintf(stderr, "boxlite-pod-enter: --remove %s: not a pod container's root\n", root);
        return 127;
    }
    return nftw(root, remove_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT;
}

int main(int argc, char **argv)
{
    const char *root, *cwd;
    unsigned uid, gid;
    int ro, rootfd, a = 6;

    if (argc == 3 && strcmp(argv[1], "--remove") == 0)
        return remove_root(argv[2]);
    while (a + 4 < argc && strcmp(argv[a], "--bind") == 0)
        a += 4;
    if (argc < 8 || a + 1 >= argc || strcmp(argv[a], "--") != 0) {
        fprintf(stderr, "usage: boxlite-pod-enter ROOT UID GID RO CWD [--bind SRC DEST RO]... "
                        "-- ARGV...\n");
        return 127;
    }
    root = argv[1];
    uid = num(argv[2]);
    gid = num(argv[3]);
    ro = (int)num(argv[4]);
    cwd = argv[5];
    if (root[0] != '/' || cwd[0] != '/') {
        errno = EINVAL;
        die("not absolute", root);
    }
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("mount namespace", "");
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind", root);
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        die("open", root);
    for (int i = 6; i < a; i += 4)
        bind_volume(rootfd, argv[i + 1], argv[i + 2], (int)num(argv[i + 3]));
    close(rootfd);
    if (ro && mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
        die("read-only", root);
    guest_dir(root, "/proc");
    guest_dir(root, "/sys");
    guest_dir(root, "/dev");
    if (chdir(root) < 0 || chroot(".") < 0)
        die("chroot", root);
    if (chdir(cwd) < 0)
        die("chdir", cwd);
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        die("user", argv[2]);
    execvp(argv[a + 1], argv + a + 1);
    die("exec", argv[a + 1]);
}
