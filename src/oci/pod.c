/* pod.c — pods in one VM (containerd's CRI annotations, spec.c): the sandbox container makes
 * the VM; each container of the pod names it by io.kubernetes.cri.sandbox-id and runs inside
 * that VM: its rootfs is copied in at /.boxlite-pod.<id> (beside the sandbox's root) and its
 * processes start through boxlite-pod-enter (pod_enter.c), which gives them that root in a
 * mount namespace of their own. The sandbox is found only under this runtime's --root, and
 * only a running sandbox takes containers. docs/kubernetes.md says why. */
#include "oci.h"

#include <boxlite.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENTER_IN_VM "/.boxlite-pod-enter"

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

/* Regular-file bind mounts (CRI's /etc/hosts, /etc/hostname, /etc/resolv.conf,
 * /dev/termination-log) are copied into the container's root; directories cannot join a
 * running VM (its volumes are fixed at boot) and are left out with a warning. */
static void pod_files(boxlite_box *box, const struct bl_oci_spec *spec, const char *root)
{
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct bl_oci_mount *m = &spec->mounts[i];
        char dest[8400];
        struct stat sb;
        if (!m->bind || stat(m->source, &sb) < 0 || strncmp(m->destination, "/dev/", 5) == 0)
            continue;
        if (!S_ISREG(sb.st_mode)) {
            bl_oci_log("warning", "mount %s: a pod container's directory mounts are not shared",
                       m->destination);
            continue;
        }
        snprintf(dest, sizeof dest, "%s%s", root, m->destination);
        if (boxlite_box_copy_in(box, m->source, dest, NULL) != 0)
            bl_oci_log("warning", "mount %s: copy of %s not made: %s", m->destination, m->source,
                       boxlite_error_last());
    }
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
    pod_files(box, spec, root);
    return 0;
}

int bl_oci_pod_argv(char ***out, const struct bl_oci_process *p, const char *id, int read_only)
{
    size_t n = 0, k = 0;
    char root[1100], uid[16], gid[16], **v;

    while (p->args[n])
        n++;
    v = calloc(n + 8, sizeof *v);
    if (!v)
        return bl_oci_fail("out of memory");
    bl_oci_pod_root(root, sizeof root, id);
    snprintf(uid, sizeof uid, "%u", p->uid);
    snprintf(gid, sizeof gid, "%u", p->gid);
    v[k++] = strdup(ENTER_IN_VM);
    v[k++] = strdup(root);
    v[k++] = strdup(uid);
    v[k++] = strdup(gid);
    v[k++] = strdup(read_only ? "1" : "0");
    v[k++] = strdup(p->cwd);
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
