/* pod_enter.c — boxlite-pod-enter, the one program boxlite-runtime puts into a pod's VM: a
 * static (musl) binary that the guest agent runs, as root and chrooted at the sandbox's root,
 * for each process of a pod container. It gives the process the container's own root:
 *
 *   boxlite-pod-enter ROOT UID GID RO CWD -- ARGV...
 *   boxlite-pod-enter --remove ROOT      (at the container's delete: ROOT goes)
 *
 * a mount namespace of its own (the VM's other containers are untouched), ROOT bound onto
 * itself (read-only when RO is 1), the guest's /proc, /sys and /dev inside it, chroot into it,
 * then the container's user (numeric, no supplementary groups) and cwd, and execvp of ARGV
 * with the environment the agent gave (the container's). Network, hostname and IPC stay the
 * VM's: a pod shares them, as Kubernetes expects. Errors go to stderr, exit status 127. */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

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
    int ro;

    if (argc == 3 && strcmp(argv[1], "--remove") == 0)
        return remove_root(argv[2]);
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        fprintf(stderr, "usage: boxlite-pod-enter ROOT UID GID RO CWD -- ARGV...\n");
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
    execvp(argv[7], argv + 7);
    die("exec", argv[7]);
}
