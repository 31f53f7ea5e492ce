/* pod.c — pods in one VM (containerd's CRI annotations, spec.c): the sandbox container makes
 * the VM; each container of the pod names it by io.kubernetes.cri.sandbox-id and runs inside
 * that VM: its rootfs is copied in at /.boxlite-pod.<id> (beside the sandbox's root) and its
 * processes start through boxlite-pod-enter (pod_enter.c), which gives them that root in a
 * mount namespace of their own. The sandbox is found only under this runtime's --root, and
 * only a running sandbox takes containers. A container's directory bind mounts (emptyDir,
 * hostPath, configmaps, the service-account token) are copied into the VM once per pod, at
 * /.boxlite-pod-vol.<hash of the host source>, and bound at their destinations by
 * boxlite-pod-enter: the pod's containers naming one source share one copy; writes stay in
 * the VM. docs/kubernetes.md says why. */
#include "oci.h"

#include <boxlite.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENTER_IN_VM "/.boxlite-pod-enter"

/* A directory mount's bound: its tree, walked without following links, holds at most this many
 * bytes of regular files and this many entries; a larger source fails the container's create. */
#define VOL_MAX_BYTES   (256ull << 20)
#define VOL_MAX_ENTRIES 4096
#define MOUNTS_MAX      (1u << 20) /* bytes of <root>/<id>/mounts */

void bl_oci_pod_root(char *out, size_t cap, const char *id)
{
    snprintf(out, cap, "/.boxlite-pod.%s", id);
}

int bl_oci_pod_sandbox(struct bl_oci_state *out, const char *sandbox_id)
{
    if (!bl_oci_id_ok(sandbox_id))
        return bl_oci_fail("pod sandbox \"%.64s\": not a valid container id", sandbox_id);
    if (bl_oci_state_peek(out, sandbox_id) != 0)
        return bl_oci_fail("pod sandbox \"%s\" does not exist under --root %s", sandbox_id,
                           bl_oci_g.root);
    if (out->pod_role != BL_OCI_POD_SANDBOX)
        return bl_oci_fail("pod sandbox %s: not a pod sandbox", sandbox_id);
    if (out->status != BL_OCI_RUNNING) /* CRI starts the sandbox before its containers */
        return bl_oci_fail("pod sandbox %s: %s, not running", sandbox_id,
                           bl_oci_status_name(out->status));
    if (out->home[0] && setenv("BOXLITE_HOME", out->home, 1) != 0) /* the pod's boxlite home */
        return bl_oci_fail("%s: %s", sandbox_id, strerror(errno));
    return 0;
}

/* boxlite-pod-enter beside this program (build/src/oci/, or the install's bindir). */
static int enter_path(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash;

    if (n <= 0)
        return bl_oci_fail("/proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(out, cap, "%s/boxlite-pod-enter", self);
    if (access(out, X_OK) != 0)
        return bl_oci_fail("%s: %s (pods need it beside boxlite-runtime)", out, strerror(errno));
    return 0;
}

/* The VM's copy of a directory mount's host source: /.boxlite-pod-vol.<FNV-1a 64 of the path>.
 * Two sources with one hash are told apart by the marker (vol_copy), never merged. */
static void vol_path(char *out, size_t cap, const char *source)
{
    unsigned long long h = 0xcbf29ce484222325ull;

    for (const unsigned char *c = (const unsigned char *)source; *c; c++)
        h = (h ^ *c) * 0x100000001b3ull;
    snprintf(out, cap, "/.boxlite-pod-vol.%016llx", h);
}

/* A mount that pod_mounts copies: a bind of a regular file or directory, not under /dev. */
static int pod_mount_kind(const struct bl_oci_mount *m)
{
    struct stat sb;

    if (!m->bind || strncmp(m->destination, "/dev/", 5) == 0 || stat(m->source, &sb) < 0)
        return 0;
    return S_ISREG(sb.st_mode) ? S_IFREG : S_ISDIR(sb.st_mode) ? S_IFDIR : 0;
}

static _Thread_local unsigned long long walk_bytes, walk_entries;

static int walk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    walk_entries++;
    if (S_ISREG(sb->st_mode))
        walk_bytes += (unsigned long long)sb->st_size;
    return walk_bytes > VOL_MAX_BYTES || walk_entries > VOL_MAX_ENTRIES;
}

/* The destination's path in the bundle's rootfs: a symlink on it whose relative target climbs
 * with ".." is refused (it means to leave the root); absolute links are the container's own
 * (boxlite-pod-enter resolves every link inside the root, so none can lead out). */
static int dest_check(const char *rootfs, const struct bl_oci_mount *m)
{
    char path[PATH_MAX], target[PATH_MAX];
    size_t base = strlen(rootfs);
    struct stat sb;

    if (snprintf(path, sizeof path, "%s%s", rootfs, m->destination) >= (int)sizeof path)
        return bl_oci_fail("mount %s: path too long", m->destination);
    for (size_t i = base + 1; path[i - 1]; i++) {
        char keep = path[i];
        ssize_t n;
        if (keep != '/' && keep != '\0')
            continue;
        path[i] = '\0';
        n = lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) ? readlink(path, target, sizeof target - 1)
                                                         : -1;
        path[i] = keep;
        if (n < 0 || target[0] == '/')
            continue;
        target[n] = '\0';
        if (strcmp(target, "..") == 0 || strncmp(target, "../", 3) == 0 || strstr(target, "/../") ||
            (n >= 3 && strcmp(target + n - 3, "/..") == 0))
            return bl_oci_fail("mount %s: the rootfs's symlink %.*s -> %s leads out of the "
                               "container's root",
                               m->destination, (int)(i - base), path + base, target);
    }
    return 0;
}

int bl_oci_pod_check(const struct bl_oci_spec *spec, const char *bundle)
{
    char rootfs[PATH_MAX];

    if (bl_oci_rootfs_resolve(rootfs, spec, bundle) != 0)
        return 1;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct bl_oci_mount *m = &spec->mounts[i];
        int kind = pod_mount_kind(m);
        if (!kind)
            continue;
        if (dest_check(rootfs, m) != 0)
            return 1;
        if (kind != S_IFDIR)
            continue;
        walk_bytes = walk_entries = 0;
        if (nftw(m->source, walk_one, 32, FTW_PHYS) != 0)
            return bl_oci_fail("mount %s: source %s: over %llu MiB or %u entries, or unreadable "
                               "(a pod's directory mounts are copied into its VM)",
                               m->destination, m->source, VOL_MAX_BYTES >> 20, VOL_MAX_ENTRIES);
    }
    return 0;
}

/* Copy a directory source into the pod's VM once per pod: a marker in the sandbox's state
 * directory (naming the source) says it is there; a lock on it orders the pod's containers. */
static int vol_copy(boxlite_box *box, const char *sandbox, const char *source, const char *vol)
{
    char lock[PATH_MAX], marker[PATH_MAX], *have = NULL;
    size_t len = 0;
    int lfd = -1, rc = 0;

    if (bl_oci_path(lock, sizeof lock, sandbox, "volumes.lock") != 0 ||
        bl_oci_path(marker, sizeof marker, sandbox, vol + 2) != 0)
        return bl_oci_fail("pod %s: state path too long", sandbox);
    lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0)
        rc = bl_oci_fail("%s: %s", lock, strerror(errno));
    if (rc == 0 && access(marker, F_OK) == 0) { /* copied by an earlier container of the pod */
        rc = bl_oci_read_file(&have, &len, marker, PATH_MAX);
        if (rc == 0 && strcmp(have, source) != 0)
            rc = bl_oci_fail("mount source %s: its pod volume %s holds %s", source, vol, have);
        goto out;
    }
    if (rc == 0 && boxlite_box_copy_in(box, source, vol, NULL) != 0)
        rc = bl_oci_fail("mount source %s: into the pod's VM: %s", source, boxlite_error_last());
    if (rc == 0) {
        FILE *f = fopen(marker, "we");
        if (!f || fputs(source, f) < 0 || fclose(f) != 0)
            rc = bl_oci_fail("%s: %s", marker, strerror(errno));
    }
out:
    free(have);
    if (lfd >= 0)
        close(lfd); /* drops the lock */
    return rc;
}

/* Regular-file bind mounts (CRI's /etc/hosts, /etc/hostname, /etc/resolv.conf,
 * /dev/termination-log) are copied into the container's root; directories go to the pod's
 * volumes (vol_copy) and are listed in <root>/<id>/mounts, NUL-separated "VOL DEST RO"
 * triples that bl_oci_pod_argv hands boxlite-pod-enter for every process of the container. */
static int pod_mounts(boxlite_box *box, const char *id, const struct bl_oci_spec *spec,
                      const char *root)
{
    char path[PATH_MAX];
    FILE *list = NULL;
    int rc = 0;

    if (bl_oci_path(path, sizeof path, id, "mounts") != 0 || !(list = fopen(path, "we")))
        return bl_oci_fail("%s: mounts list: %s", id, strerror(errno));
    for (size_t i = 0; rc == 0 && i < spec->n_mounts; i++) {
        const struct bl_oci_mount *m = &spec->mounts[i];
        char dest[8400], vol[64];
        int kind = pod_mount_kind(m);
        if (kind == S_IFDIR) {
            vol_path(vol, sizeof vol, m->source);
            rc = vol_copy(box, spec->sandbox_id, m->source, vol);
            if (rc == 0 &&
                fprintf(list, "%s%c%s%c%d%c", vol, 0, m->destination, 0, m->read_only, 0) < 0)
                rc = bl_oci_fail("%s: %s", path, strerror(errno));
            continue;
        }
        if (kind != S_IFREG) {
            if (m->bind && strncmp(m->destination, "/dev/", 5) != 0)
                bl_oci_log("warning", "mount %s: source %s is not a file or directory: left out",
                           m->destination, m->source);
            continue;
        }
        snprintf(dest, sizeof dest, "%s%s", root, m->destination);
        if (boxlite_box_copy_in(box, m->source, dest, NULL) != 0)
            bl_oci_log("warning", "mount %s: copy of %s not made: %s", m->destination, m->source,
                       boxlite_error_last());
    }
    if (fclose(list) != 0 && rc == 0)
        rc = bl_oci_fail("%s: %s", path, strerror(errno));
    return rc;
}

int bl_oci_pod_prepare(boxlite_box *box, const char *id, const struct bl_oci_spec *spec,
                       const char *bundle)
{
    char rootfs[PATH_MAX], enter[PATH_MAX + 32], root[1100];

    if (bl_oci_rootfs_resolve(rootfs, spec, bundle) != 0 || enter_path(enter, sizeof enter) != 0)
        return 1;
    bl_oci_pod_root(root, sizeof root, id);
    if (boxlite_box_copy_in(box, enter, ENTER_IN_VM, NULL) != 0)
        return bl_oci_fail("%s: into the pod's VM: %s", enter, boxlite_error_last());
    if (boxlite_box_copy_in(box, rootfs, root, NULL) != 0)
        return bl_oci_fail("rootfs %s: into the pod's VM: %s", rootfs, boxlite_error_last());
    return pod_mounts(box, id, spec, root);
}

/* The container's volume binds (<root>/<id>/mounts, pod_mounts): "--bind VOL DEST RO" each. */
static size_t bind_args(char **v, const char *list, size_t len)
{
    size_t k = 0, at = 0;

    while (list && at < len) {
        v[k++] = strdup("--bind");
        for (int f = 0; f < 3 && at < len; f++) {
            v[k++] = strdup(list + at);
            at += strlen(list + at) + 1;
        }
    }
    return k;
}

int bl_oci_pod_argv(char ***out, const struct bl_oci_process *p, const char *id, int read_only)
{
    size_t n = 0, k = 0, len = 0, fields = 0;
    char root[1100], uid[16], gid[16], path[PATH_MAX], **v, *list = NULL;

    while (p->args[n])
        n++;
    if (bl_oci_path(path, sizeof path, id, "mounts") != 0)
        return bl_oci_fail("%s: state path too long", id);
    if (access(path, F_OK) == 0 && bl_oci_read_file(&list, &len, path, MOUNTS_MAX) != 0)
        return 1;
    for (size_t i = 0; i < len; i++)
        fields += list[i] == '\0';
    if (fields % 3 != 0 || (len && list[len - 1] != '\0')) {
        free(list);
        return bl_oci_fail("%s: a damaged mounts list", path);
    }
    v = calloc(n + 8 + fields / 3 * 4, sizeof *v);
    if (!v) {
        free(list);
        return bl_oci_fail("out of memory");
    }
    bl_oci_pod_root(root, sizeof root, id);
    snprintf(uid, sizeof uid, "%u", p->uid);
    snprintf(gid, sizeof gid, "%u", p->gid);
    v[k++] = strdup(ENTER_IN_VM);
    v[k++] = strdup(root);
    v[k++] = strdup(uid);
    v[k++] = strdup(gid);
    v[k++] = strdup(read_only ? "1" : "0");
    v[k++] = strdup(p->cwd);
    k += bind_args(v + k, list, len);
    free(list);
    v[k++] = strdup("--");
    for (size_t i = 0; i < n; i++)
        v[k++] = strdup(p->args[i]);
    for (size_t i = 0; i < k; i++)
        if (!v[i]) {
            bl_oci_pod_argv_free(v);
            return bl_oci_fail("out of memory");
        }
    *out = v;
    return 0;
}

/* boxlite-pod-enter --remove ROOT in the pod's VM, waited for at most REMOVE_MS. */
#define REMOVE_MS 60000
static void remove_in_vm(boxlite_box *box, const char *root)
{
    const char *argv[] = {ENTER_IN_VM, "--remove", root, NULL};
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;

    o.argv = argv;
    o.user = "0:0";
    o.cwd = "/";
    if (boxlite_exec_start(&ex, box, &o) != 0 || boxlite_exec_wait_v2(&res, ex, REMOVE_MS) != 0 ||
        res.exit_code != 0)
        bl_oci_log("warning", "%s: not removed from the pod's VM: %s", root,
                   ex ? "boxlite-pod-enter --remove failed" : boxlite_error_last());
    boxlite_exec_free(ex);
}

void bl_oci_pod_remove(const struct bl_oci_state *st)
{
    struct bl_oci_state sb;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char root[1100];

    if (bl_oci_state_peek(&sb, st->sandbox) != 0 || !BL_OCI_LIVE(sb.status) ||
        strcmp(sb.box_id, st->box_id) != 0)
        return; /* the VM is gone, or going: its disk takes the copy with it */
    bl_oci_pod_root(root, sizeof root, st->id);
    if (boxlite_runtime_open(&rt, NULL) == 0 && boxlite_box_get(&box, rt, st->box_id) == 0 &&
        boxlite_box_start(box) == 0)
        remove_in_vm(box, root);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
}

void bl_oci_pod_forget(const char *id)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *e;

    if (bl_oci_path(path, sizeof path, id, NULL) != 0 || !(d = opendir(path)))
        return;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, "mounts") == 0 || strcmp(e->d_name, "volumes.lock") == 0 ||
            strncmp(e->d_name, "boxlite-pod-vol.", 16) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

void bl_oci_pod_argv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void wait_gone(const struct bl_oci_state *st)
{
    for (int i = 0; i < 200 && bl_oci_alive(st->pid, st->starttime); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int bl_oci_pod_members(const char *sandbox_id, int kill_them)
{
    DIR *d = opendir(bl_oci_g.root);
    struct dirent *e;
    int live = 0;

    while (d && (e = readdir(d)) != NULL) {
        struct bl_oci_state st;
        if (e->d_name[0] == '.' || strcmp(e->d_name, sandbox_id) == 0 || !bl_oci_id_ok(e->d_name) ||
            bl_oci_state_peek(&st, e->d_name) != 0 || strcmp(st.sandbox, sandbox_id) != 0 ||
            !BL_OCI_LIVE(st.status))
            continue;
        live++;
        if (kill_them) {
            kill(st.pid, SIGKILL);
            wait_gone(&st);
        }
    }
    if (d)
        closedir(d);
    return live;
}
