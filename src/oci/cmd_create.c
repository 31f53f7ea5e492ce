/* cmd_create.c — `create ID --bundle DIR [--pid-file F] [--console-socket S]`: read and check
 * config.json, make the state directory, fork the keeper (which imports the rootfs and boots
 * the box) and return once the container is created, its keeper's pid in --pid-file. */
#include "oci.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* localhost/oci-<engine>:<FNV-1a of the id>: a valid reference whatever the id's characters,
 * and the mark `boxlite ls`/`inspect` read (src/cli/cli_json.c, cli_oci_engine): the box is
 * managed by that engine. The engine: config.json's annotations (spec.c), else containerd
 * when its runc shim's --root (/run/containerd/runc/<namespace>) says so, else "oci". */
static void image_name(char *out, size_t cap, const char *id, const char *engine)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    if (!engine)
        engine = strstr(bl_oci_g.root, "/containerd/") ? "containerd" : "oci";
    snprintf(out, cap, "localhost/oci-%s:%016llx", engine, (unsigned long long)h);
}

static int load_spec(struct bl_oci_spec *out, const char *bundle)
{
    char path[PATH_MAX + 16], err[512];
    char *text = NULL;
    size_t len = 0;
    int rc;

    snprintf(path, sizeof path, "%s/config.json", bundle);
    rc = bl_oci_read_file(&text, &len, path, BL_OCI_DOC_MAX);
    if (rc == 0 && bl_oci_spec_parse(out, text, len, err, sizeof err) != 0)
        rc = bl_oci_fail("%s: %s", path, err);
    if (rc == 0 && !out->has_process) {
        bl_oci_spec_free(out);
        rc = bl_oci_fail("%s: no process to run", path);
    }
    free(text);
    return rc;
}

/* mkdir -p for --root (containerd's shim names a directory per namespace). */
static int mkdir_p(const char *dir)
{
    char path[4200];
    size_t n = strlen(dir);

    if (n >= sizeof path)
        return -1;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

static int make_state_dir(const char *id)
{
    char path[4200];

    if (mkdir_p(bl_oci_g.root) < 0)
        return bl_oci_fail("--root %s: %s", bl_oci_g.root, strerror(errno));
    if (bl_oci_path(path, sizeof path, id, NULL) < 0)
        return bl_oci_fail("%s: state path too long", id);
    if (mkdir(path, 0700) < 0)
        return bl_oci_fail(errno == EEXIST ? "container \"%s\" already exists" : "%s: %s", id,
                           strerror(errno));
    return 0;
}

int bl_oci_cmd_create(int argc, char **argv)
{
    const char *bundle = ".", *pid_file = NULL, *console = NULL, *ignored = NULL;
    struct bl_oci_state st = {0}, sandbox = {0};
    struct bl_oci_spec spec = {0};
    struct bl_oci_keeper k = {0};
    char *pos[1], real_bundle[PATH_MAX], image[128];
    int n = 0, flag = 0, have_dir = 0, rc;
    time_t now = time(NULL);
    const struct bl_oci_opt opts[] = {
        {"bundle", 'b', &bundle, NULL},
        {"pid-file", 0, &pid_file, NULL},
        {"console-socket", 0, &console, NULL},
        {"no-pivot", 0, NULL, &flag},
        {"no-new-keyring", 0, NULL, &flag},
        {"preserve-fds", 0, &ignored, NULL},
        {NULL, 0, NULL, NULL},
    };

    rc = bl_oci_args(argc, argv, opts, pos, 1, &n, 0);
    if (rc == 0 && n != 1)
        rc = bl_oci_fail("create: usage: create [--bundle DIR] [--pid-file F] ID");
    if (rc == 0 && !bl_oci_id_ok(pos[0]))
        rc = bl_oci_fail("create: invalid container id");
    if (rc == 0 && !realpath(bundle, real_bundle))
        rc = bl_oci_fail("bundle %s: %s", bundle, strerror(errno));
    if (rc == 0)
        rc = load_spec(&spec, real_bundle);
    if (rc == 0 && spec.pod_role == BL_OCI_POD_CONTAINER) /* before anything is made */
        rc = bl_oci_pod_sandbox(&sandbox, spec.sandbox_id);
    if (rc == 0 && spec.pod_role == BL_OCI_POD_CONTAINER)
        rc = bl_oci_pod_check(&spec, real_bundle);
    if (rc == 0)
        rc = make_state_dir(pos[0]);
    have_dir = rc == 0;
    image_name(image, sizeof image, rc == 0 ? pos[0] : "", rc == 0 ? spec.engine : NULL);
    k.id = rc == 0 ? pos[0] : NULL;
    k.spec = &spec;
    k.process = &spec.process;
    k.bundle = real_bundle;
    k.image_name = image;
    k.console_socket = console;
    k.pid_file = pid_file;
    k.read_only_root = spec.root_readonly;
    k.pod_role = spec.pod_role;
    k.box_id = sandbox.box_id; /* a pod container joins its sandbox's VM */
    if (rc == 0)
        rc = bl_oci_keeper_spawn(&st.pid, st.box_id, &k);
    if (rc == 0) {
        snprintf(st.id, sizeof st.id, "%s", pos[0]);
        snprintf(st.bundle, sizeof st.bundle, "%s", real_bundle);
        /* a pod container imports no image: its rootfs went into the sandbox's VM */
        snprintf(st.image, sizeof st.image, "%s",
                 spec.pod_role == BL_OCI_POD_CONTAINER ? "" : image);
        snprintf(st.sandbox, sizeof st.sandbox, "%s", sandbox.id);
        st.pod_role = spec.pod_role;
        snprintf(st.home, sizeof st.home, "%s",
                 getenv("BOXLITE_HOME") ? getenv("BOXLITE_HOME") : "");
        strftime(st.created, sizeof st.created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        st.starttime = bl_oci_proc_starttime(st.pid);
        st.read_only_root = spec.root_readonly;
        rc = bl_oci_state_save(&st);
        if (rc != 0)
            kill(st.pid, SIGKILL); /* no state, no container: its VM goes with it */
    }
    if (rc != 0 && have_dir)
        bl_oci_state_remove(pos[0]);
    bl_oci_spec_free(&spec);
    return rc;
}
