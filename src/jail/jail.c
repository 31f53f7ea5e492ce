/* jail.c — the jail's steps around a box's VMM: namespaces and id maps (clone + the parent
 * writing the maps), the root (a read-only tmpfs of bind mounts at the same paths as on the
 * host, pivot_root), rlimits, the uid and no_new_privs, then exec. Design: docs/security.md. */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MOUNTS 4096 /* a box's own layers are bound one by one: grows with its snapshots */
/* Root callers: each box's VMM runs as its own uid, BASE + a hash of the box id (docs). */
#define JAIL_UID_BASE  0x60000000u
#define JAIL_UID_SLOTS 0x00100000u
#define MEM_MARGIN_MIB 1024ull /* cgroup memory: TCG's translation cache, QEMU itself */
#define AS_MARGIN_MIB  4096ull /* address space: the above plus thread stacks, libraries */
#define JAIL_NOFILE    4096
#define JAIL_NPROC     512
#define JAIL_PIDS      512
#define ID_LAST        4294967294u /* the highest valid uid/gid */
/* Root callers' VMM keeps these, in its own user namespace only (where host root is not
 * mapped): it serves volumes holding other users' files as root's QEMU did. No CAP_CHOWN:
 * a guest cannot give a host file away. */
static const int kept_caps[] = {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};

/* What the VMM process itself needs, read-only: its libraries, modules and firmware. The
 * directories stand for "the binary's shared libraries" (docs/security.md says why). */
static const char *const system_ro[] = {"/usr/lib", "/usr/lib64", "/usr/share/qemu",
                                        "/usr/share/seabios", NULL};
/* The user network (slirp) forwards DNS to the host's resolvers. */
static const char *const system_files[] = {"/etc/resolv.conf", NULL};
static const char *const system_links[] = {"/lib", "/lib64", "/bin", NULL};
static const char *const devices[] = {"/dev/null",   "/dev/zero", "/dev/urandom",
                                      "/dev/random", "/dev/kvm",  NULL};

struct jail_mount {
    char *path;
    int rw, data; /* data: the box's own files (idmapped for root callers) */
    int fd;       /* the detached tree, once opened */
};

struct bl_jail {
    int enabled, share_net, caller_root;
    char *id, *root;
    char *cwd;            /* the box directory: the VMM's working directory inside the root too */
    char failed[512];     /* a step in the child that failed, said by bl_jail_exec */
    struct jail_mount *m; /* grown as specs come */
    int n, cap;
    unsigned long long mem_mib;
    unsigned cpus;
    int no_punch; /* "cow-ram:": the RAM file is shared by other boxes, no hole punching */
    uid_t uid;
    gid_t gid;
    gid_t kvm_gid; /* root callers: /dev/kvm's group, kept as a supplementary group, or 0 */
    struct bl_jail_cgroup *cg;
};

static int set_err(char *err, size_t cap, const char *what, const char *arg)
{
    snprintf(err, cap, "jail: %s%s%s", what, arg ? " " : "", arg ? arg : "");
    return -1;
}

static int add_mount(struct bl_jail *j, const char *path, int rw, int data)
{
    if (j->n >= MAX_MOUNTS || path[0] != '/')
        return -1;
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 64;
        struct jail_mount *m = realloc(j->m, (size_t)cap * sizeof(*m));
        if (!m)
            return -1;
        j->m = m;
        j->cap = cap;
    }
    j->m[j->n] = (struct jail_mount){.path = strdup(path), .rw = rw, .data = data, .fd = -1};
    return j->m[j->n++].path ? 0 : -1;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* /dev/kvm's group when the group may use it (root:kvm 0660): the jail uid gets that one
 * group so that QEMU can still open it. Ordinary users keep their own groups. */
static gid_t kvm_group(void)
{
    struct stat st;

    if (stat("/dev/kvm", &st) != 0 || !S_ISCHR(st.st_mode) || st.st_gid == 0 ||
        (st.st_mode & 0060) != 0060)
        return 0;
    return st.st_gid;
}

static int add_spec(struct bl_jail *j, const char *spec)
{
    if (strncmp(spec, "ro:", 3) == 0 || strncmp(spec, "rw:", 3) == 0)
        return add_mount(j, spec + 3, spec[1] == 'w', 1);
    if (strncmp(spec, "ram:", 4) == 0)
        return add_mount(j, spec + 4, 1, 1);
    if (strncmp(spec, "ram-loaded:", 11) == 0) /* the box's own, holding saved RAM */
        return add_mount(j, spec + 11, 1, 1);
    if (strncmp(spec, "cow-ram:", 8) == 0) {
        /* QEMU 7.2 opens the file read-write even to map it privately (readonly=on would make
         * guest RAM a ROM), and punches freed pages out of it: refuse that */
        j->no_punch = 1;
        return add_mount(j, spec + 8, 1, 1);
    }
    if (strncmp(spec, "ro-ram:", 7) == 0) { /* opened read-only by our QEMU (x-cow) */
        j->no_punch = 1;
        return add_mount(j, spec + 7, 0, 1);
    }
    if (strncmp(spec, "exe:", 4) == 0)
        return add_mount(j, spec + 4, 0, 0);
    if (strncmp(spec, "mem:", 4) == 0)
        j->mem_mib = strtoull(spec + 4, NULL, 10);
    else if (strncmp(spec, "cpus:", 5) == 0)
        j->cpus = (unsigned)strtoul(spec + 5, NULL, 10);
    else
        return -1;
    return 0;
}

int bl_jail_new(struct bl_jail **out, const char *id, const char *dir, char *const *specs,
                int nspecs, int share_net, char *err, size_t cap)
{
    struct bl_jail *j = calloc(1, sizeof(*j));
    const char *env = getenv("BOXLITE_JAIL");
    char *rdir = NULL;
    int rc = -1;

    if (!j)
        return set_err(err, cap, "out of memory", NULL);
    j->enabled = !(env && strcmp(env, "0") == 0);
    j->share_net = share_net;
    j->caller_root = geteuid() == 0;
    j->id = strdup(id);
    rdir = realpath(dir, NULL);
    j->root = rdir ? malloc(strlen(rdir) + 8) : NULL;
    j->cpus = 1;
    j->uid = geteuid();
    j->gid = getegid();
    if (j->caller_root)
        j->uid = j->gid = JAIL_UID_BASE + fnv1a(id) % JAIL_UID_SLOTS;
    if (j->caller_root)
        j->kvm_gid = kvm_group();
    if (!j->id || !j->root) {
        set_err(err, cap, "no box directory or out of memory:", dir);
        goto out;
    }
    sprintf(j->root, "%s/jail", rdir);
    j->cwd = strdup(rdir);
    if (!j->cwd) {
        set_err(err, cap, "out of memory", NULL);
        goto out;
    }
    for (int i = 0; i < nspecs; i++)
        if (add_spec(j, specs[i]) != 0) {
            set_err(err, cap, "bad or too many specs at", specs[i]);
            goto out;
        }
    rc = 0;
out:
    free(rdir);
    if (rc == 0)
        *out = j;
    else
        bl_jail_free(j);
    return rc;
}

const char *bl_jail_error(const struct bl_jail *j)
{
    return j && j->failed[0] ? j->failed : NULL;
}

int bl_jail_enabled(const struct bl_jail *j)
{
    return j && j->enabled;
}

/* ---- the parent's side: the trees to mount, the id maps, the cgroup ---- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = -1;

    if (fd >= 0) {
        n = write(fd, text, strlen(text));
        close(fd);
    }
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int write_maps(pid_t pid, const char *uid_map, const char *gid_map, int deny_setgroups)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
    if (deny_setgroups && write_file(path, "deny") != 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    if (write_file(path, uid_map) != 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    return write_file(path, gid_map);
}

/* A user namespace mapping 0 to the jail uid (and the rest to itself), for idmapped mounts:
 * host files owned by the caller (root) look owned by the jail uid inside, what the VMM
 * creates is root's, and other users' files keep their owners. */
static int idmap_userns(const struct bl_jail *j)
{
    char map[160], path[64];
    unsigned u = (unsigned)j->uid;
    int go[2], fd = -1;
    pid_t pid;

    if (pipe2(go, O_CLOEXEC) != 0)
        return -1;
    pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        (void)read(go[0], &c, 1); /* held until the parent has what it needs */
        _exit(0);
    }
    close(go[0]);
    /* host root -> the jail uid; every other id to itself but the jail uid */
    snprintf(map, sizeof(map), "0 %u 1\n1 1 %u\n%u %u %u\n", u, u - 1, u + 1, u + 1, ID_LAST - u);
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
    if (pid > 0 && write_maps(pid, map, map, 0) == 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    close(go[1]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return fd;
}

/* Detached copies of every tree to mount, read-only unless rw; for a root caller the box's
 * own files are idmapped. Runs where the caller may clone mounts: in the parent for root,
 * in the child (its own mount namespace) otherwise. */
static int open_trees(struct bl_jail *j, int idmap_fd)
{
    for (int i = 0; i < j->n; i++) {
        struct jail_mount *m = &j->m[i];
        struct mount_attr a = {0};
        m->fd = open_tree(AT_FDCWD, m->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (m->fd < 0) {
            snprintf(j->failed, sizeof(j->failed), "cannot open %s for the jail: %s", m->path,
                     strerror(errno));
            return -1;
        }
        if (!m->rw)
            a.attr_set |= MOUNT_ATTR_RDONLY;
        if (m->data && idmap_fd >= 0) {
            a.attr_set |= MOUNT_ATTR_IDMAP;
            a.userns_fd = (uint64_t)idmap_fd;
        }
        a.attr_set |= MOUNT_ATTR_NOSUID;
        if (a.attr_set && mount_setattr(m->fd, "", AT_EMPTY_PATH, &a, sizeof(a)) != 0) {
            int e = errno;
            snprintf(j->failed, sizeof(j->failed), "cannot mount %s in the jail: %s%s", m->path,
                     strerror(e),
                     e == EINVAL && (a.attr_set & MOUNT_ATTR_IDMAP)
                         ? " (its filesystem has no idmapped mounts, which a root caller's jail "
                           "needs: use a directory on ext4/xfs/btrfs, or BOXLITE_JAIL=0)"
                         : "");
            errno = e;
            return -1;
        }
    }
    return 0;
}

static int add_system_mounts(struct bl_jail *j)
{
    struct stat st;

    for (int i = 0; system_ro[i]; i++)
        if (lstat(system_ro[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            add_mount(j, system_ro[i], 0, 0) != 0)
            return -1;
    for (int i = 0; system_files[i]; i++)
        if (stat(system_files[i], &st) == 0 && S_ISREG(st.st_mode) &&
            add_mount(j, system_files[i], 0, 0) != 0)
            return -1;
    for (int i = 0; devices[i]; i++)
        if (stat(devices[i], &st) == 0 && S_ISCHR(st.st_mode) &&
            add_mount(j, devices[i], 1, 0) != 0)
            return -1;
    return 0;
}

static int by_depth(const void *a, const void *b)
{
    size_t la = strlen(((const struct jail_mount *)a)->path);
    size_t lb = strlen(((const struct jail_mount *)b)->path);

    return la < lb ? -1 : la > lb;
}

static int ready_parent(struct bl_jail *j)
{
    unsigned long long mem = (j->mem_mib + MEM_MARGIN_MIB) << 20;

    if (add_system_mounts(j) != 0)
        return -1;
    /* a parent before what lies inside it: a volume of /home (or /tmp) holding the box's own
     * files must not cover the box's layers mounted before it */
    qsort(j->m, (size_t)j->n, sizeof(j->m[0]), by_depth);
    if (mkdir(j->root, 0700) != 0 && errno != EEXIST)
        return -1;
    j->cg = bl_jail_cgroup_new(j->id, j->mem_mib ? mem : 0, j->cpus, JAIL_PIDS, j->caller_root);
    if (j->caller_root) {
        int idmap = idmap_userns(j);
        int rc = idmap >= 0 ? open_trees(j, idmap) : -1;
        if (idmap >= 0)
            close(idmap);
        return rc;
    }
    return 0;
}

/* ---- the child's side: the root ---- */

/* The parents of rel (a path relative to the root fd), made 0755. */
static int mkdirs(int root, char *rel)
{
    for (char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdirat(root, rel, 0755) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return 0;
}

/* The tree m at its own path under the root (fd). */
static int mount_one(int root, const struct jail_mount *m)
{
    char at[PATH_MAX];
    struct stat st, st2;
    int fd;

    if (snprintf(at, sizeof(at), "%s", m->path + 1) >= (int)sizeof(at) || !at[0] ||
        fstat(m->fd, &st) != 0 || mkdirs(root, at) != 0)
        return -1;
    if (fstatat(root, at, &st2, AT_SYMLINK_NOFOLLOW) == 0) {
        /* a path inside an earlier mount (a frozen layer in the layers directory) */
    } else if (S_ISDIR(st.st_mode)) {
        if (mkdirat(root, at, 0755) != 0)
            return -1;
    } else {
        fd = openat(root, at, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return move_mount(m->fd, "", root, at, MOVE_MOUNT_F_EMPTY_PATH);
}

/* A fresh tmpfs on the box's jail directory (at_fd), as the jail uid; *out: its root. */
static int new_tmpfs(int at_fd, int *out)
{
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC), mnt = -1;

    if (fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) == 0 &&
        fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0) == 0 &&
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        mnt =
            fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (fs >= 0)
        close(fs);
    if (mnt >= 0 &&
        move_mount(mnt, "", at_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
        close(mnt);
        mnt = -1;
    }
    *out = mnt;
    return mnt >= 0 ? 0 : -1;
}

/* /proc of the jail's own pid namespace, processes only (subset=pid: no /proc/sys, no
 * kcore): QEMU's 9p server changes modes through /proc/self/fd. */
static int mount_proc(int root)
{
    int fs = fsopen("proc", FSOPEN_CLOEXEC), mnt = -1, rc = -1;

    if (fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "subset", "pid", 0) == 0 &&
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        mnt =
            fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (mnt >= 0 && mkdirat(root, "proc", 0555) == 0)
        rc = move_mount(mnt, "", root, "proc", MOVE_MOUNT_F_EMPTY_PATH);
    if (fs >= 0)
        close(fs);
    if (mnt >= 0)
        close(mnt);
    return rc;
}

/* Build the root in the tmpfs on at_fd and pivot into it. Everything by fd: as the jail
 * uid, the host path to the box directory may not be searchable. */
static int build_root(struct bl_jail *j, int at_fd)
{
    char target[PATH_MAX];
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
    int root = -1, rc = -1;

    umask(022); /* the skeleton must be traversable by the jail uid */
    if (new_tmpfs(at_fd, &root) != 0)
        return -1;
    if (!j->caller_root && open_trees(j, -1) != 0)
        goto out;
    for (int i = 0; i < j->n; i++)
        if (mount_one(root, &j->m[i]) != 0)
            goto out;
    if (mount_proc(root) != 0)
        goto out;
    for (int i = 0; system_links[i]; i++) {
        ssize_t n = readlink(system_links[i], target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (symlinkat(target, root, system_links[i] + 1) != 0 && errno != EEXIST)
            goto out;
    }
    /* nothing more is created in the root: the VMM writes only into its rw mounts */
    if (mount_setattr(root, "", AT_EMPTY_PATH, &ro, sizeof(ro)) != 0 || fchdir(root) != 0 ||
        syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        goto out;
    /* relative names on the VMM's command line (console.sock) resolve as outside: the box
     * directory exists inside as the parent of its mounted files */
    if (j->cwd && chdir(j->cwd) != 0)
        goto out;
    rc = 0;
out:
    close(root);
    return rc;
}

static void close_trees(struct bl_jail *j)
{
    for (int i = 0; i < j->n; i++)
        if (j->m[i].fd >= 0) {
            close(j->m[i].fd);
            j->m[i].fd = -1;
        }
}

static void child_side(struct bl_jail *j, int go_fd)
{
    char c;
    int at_fd;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (read(go_fd, &c, 1) != 1) /* the parent died or gave up */
        _exit(126);
    close(go_fd);
    at_fd = open(j->root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (at_fd < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        snprintf(j->failed, sizeof(j->failed), "opening %s: %s", j->root, strerror(errno));
        return;
    }
    /* root callers become the jail uid first (keeping their capabilities over the new
     * namespaces until exec): the root's files must be made by a mapped uid */
    /* raw syscalls: this child of a raw clone is one thread, but glibc's setxid wrappers
     * still see the shim's other threads and wait forever on one that had not started */
    if (j->caller_root && (syscall(SYS_setgroups, j->kvm_gid ? 1 : 0, &j->kvm_gid) != 0 ||
                           syscall(SYS_setresgid, j->gid, j->gid, j->gid) != 0 ||
                           syscall(SYS_setresuid, j->uid, j->uid, j->uid) != 0))
        snprintf(j->failed, sizeof(j->failed), "becoming uid %u: %s", (unsigned)j->uid,
                 strerror(errno));
    else if (sethostname("boxlite", 7) != 0 || build_root(j, at_fd) != 0)
        snprintf(j->failed, sizeof(j->failed), "building the root at %s: %s", j->root,
                 strerror(errno));
    close(at_fd);
    close_trees(j);
}

pid_t bl_jail_fork(struct bl_jail *j)
{
    unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    char uid_map[64], gid_map[64];
    int go[2] = {-1, -1}, saved, entered;
    pid_t pid = -1;

    if (!j->enabled)
        return fork();
    if (!j->share_net)
        flags |= CLONE_NEWNET;
    if (ready_parent(j) != 0 || pipe2(go, O_CLOEXEC) != 0)
        goto out;
    entered = j->cg && bl_jail_cgroup_enter(j->cg) == 0; /* the child is born inside */
    pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        close(go[1]);
        child_side(j, go[0]);
        return 0;
    }
    saved = errno;
    if (entered)
        bl_jail_cgroup_leave(j->cg);
    errno = saved;
    if (pid < 0)
        goto out;
    /* an ordinary user: its own ids alone. Root: every id but host root (so that files of
     * other users on volumes keep their owners), the VMM as the jail uid. */
    if (j->caller_root) {
        snprintf(uid_map, sizeof(uid_map), "1 1 %u\n", ID_LAST);
        snprintf(gid_map, sizeof(gid_map), "1 1 %u\n", ID_LAST);
    } else {
        snprintf(uid_map, sizeof(uid_map), "%u %u 1\n", (unsigned)j->uid, (unsigned)j->uid);
        snprintf(gid_map, sizeof(gid_map), "%u %u 1\n", (unsigned)j->gid, (unsigned)j->gid);
    }
    if (write_maps(pid, uid_map, gid_map, !j->caller_root) != 0 ||
        (j->cg && !entered && bl_jail_cgroup_attach(j->cg, pid) != 0) ||
        write(go[1], "g", 1) != 1) {
        saved = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        errno = saved;
        pid = -1;
    }
out:
    saved = errno;
    if (go[0] >= 0)
        close(go[0]);
    if (go[1] >= 0)
        close(go[1]);
    close_trees(j);
    errno = saved;
    return pid;
}

/* ---- the child's last steps ---- */

/* Root callers: keep kept_caps across exec (ambient), drop the rest from the bounding set. */
static int keep_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {{0}};
    int last = CAP_LAST_CAP;

    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    d[0].inheritable = d[1].inheritable = 0;
    for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++)
        d[kept_caps[i] / 32].inheritable |= 1u << (kept_caps[i] % 32);
    if (syscall(SYS_capset, &h, d) != 0)
        return -1;
    for (int c = 0; c <= last; c++) {
        int keep = 0;
        for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++)
            keep |= kept_caps[i] == c;
        if (keep && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0)
            return -1;
        if (!keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
            return -1;
    }
    return 0;
}

static int set_limits(const struct bl_jail *j)
{
    struct rlimit nofile = {JAIL_NOFILE, JAIL_NOFILE}, nproc = {JAIL_NPROC, JAIL_NPROC};
    struct rlimit core = {0, 0};
    rlim_t as = (rlim_t)((j->mem_mib + AS_MARGIN_MIB) << 20);
    struct rlimit asl = {as, as};

    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0 || setrlimit(RLIMIT_NPROC, &nproc) != 0 ||
        setrlimit(RLIMIT_CORE, &core) != 0)
        return -1;
    return j->mem_mib ? setrlimit(RLIMIT_AS, &asl) : 0;
}

int bl_jail_exec(struct bl_jail *j, char **argv)
{
    if (!j->enabled) {
        if (j->no_punch &&
            (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || bl_jail_seccomp_no_punch() != 0)) {
            dprintf(2, "boxlite jail: seccomp: %s\n", strerror(errno));
            return -1;
        }
        execv(argv[0], argv);
        return -1;
    }
    if (!j->failed[0] && set_limits(j) != 0)
        snprintf(j->failed, sizeof(j->failed), "setting rlimits: %s", strerror(errno));
    if (!j->failed[0] && j->caller_root && keep_caps() != 0)
        snprintf(j->failed, sizeof(j->failed), "capabilities: %s", strerror(errno));
    if (!j->failed[0] &&
        (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || bl_jail_seccomp_load(j->no_punch) != 0))
        snprintf(j->failed, sizeof(j->failed), "no_new_privs or seccomp: %s", strerror(errno));
    if (!j->failed[0])
        execv(argv[0], argv);
    if (!j->failed[0])
        snprintf(j->failed, sizeof(j->failed), "exec %s: %s", argv[0], strerror(errno));
    dprintf(2, "boxlite jail: %s\n", j->failed);
    return -1;
}

void bl_jail_free(struct bl_jail *j)
{
    if (!j)
        return;
    bl_jail_cgroup_free(j->cg);
    close_trees(j);
    for (int i = 0; i < j->n; i++)
        free(j->m[i].path);
    free(j->m);
    free(j->id);
    free(j->cwd);
    free(j->root);
    free(j);
}
