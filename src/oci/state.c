/* state.c — a container's state directory <root>/<id>/: state.json (keeper pid and start
 * time, bundle, box, image), the "started" and "paused" marks and the keeper's ctl socket; and
 * the status the runtime-spec defines, derived from the keeper's life: no state.json yet →
 * creating, keeper alive → created or (after start) running, or paused (pause), keeper gone →
 * stopped. */
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bl_oci_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.", id[i]))
            return 0;
    return 1;
}

int bl_oci_path(char *buf, size_t cap, const char *id, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s%s%s", bl_oci_g.root, id, name ? "/" : "", name ? name : "");

    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

const char *bl_oci_status_name(enum bl_oci_status s)
{
    static const char *names[] = {"creating", "created", "running", "stopped", "paused"};

    return names[s];
}

/* Field 22 of /proc/PID/stat (after the command's closing parenthesis), 0 when gone. A
 * zombie counts as gone: the container has exited, its waiter has not reaped it yet. */
unsigned long long bl_oci_proc_starttime(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    p += 2; /* field 3 */
    for (int f = 3; f < 22 && p; f++) {
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    if (p)
        v = strtoull(p, NULL, 10);
    return v;
}

int bl_oci_alive(pid_t pid, unsigned long long starttime)
{
    return pid > 0 && starttime != 0 && bl_oci_proc_starttime(pid) == starttime;
}

int bl_oci_state_save(const struct bl_oci_state *st)
{
    char path[4200], tmp[4200];
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:b, s:i, s:s}", "id", st->id, "bundle",
                  st->bundle, "box", st->box_id, "image", st->image, "pid", (int)st->pid,
                  "starttime", (json_int_t)st->starttime, "created", st->created, "home", st->home,
                  "readonly", st->read_only_root, "pod_role", st->pod_role, "sandbox", st->sandbox);
    int rc = 1;

    if (!o || bl_oci_path(path, sizeof path, st->id, "state.json") < 0 ||
        bl_oci_path(tmp, sizeof tmp, st->id, "state.json.tmp") < 0)
        goto out;
    if (json_dump_file(o, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    json_decref(o);
    return rc ? bl_oci_fail("%s: cannot write its state", st->id) : 0;
}

static int copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);

    if (!s || strlen(s) >= cap)
        return -1;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* quiet: no error reported, $BOXLITE_HOME left alone (bl_oci_state_peek). */
static int state_load(struct bl_oci_state *out, const char *id, int quiet)
{
    char path[4200];
    struct bl_oci_state st = {0};
    json_t *o = NULL;
    struct stat sb;
    int rc = 1;

    if (!bl_oci_id_ok(id) || bl_oci_path(path, sizeof path, id, NULL) < 0 || stat(path, &sb) < 0)
        return quiet ? 1 : bl_oci_fail("container \"%s\" does not exist", id);
    snprintf(st.id, sizeof st.id, "%s", id);
    bl_oci_path(path, sizeof path, id, "state.json");
    o = json_load_file(path, 0, NULL);
    if (!o) {
        st.status = BL_OCI_CREATING;
        *out = st;
        return 0;
    }
    if (copy_str(st.bundle, sizeof st.bundle, json_object_get(o, "bundle")) < 0 ||
        copy_str(st.box_id, sizeof st.box_id, json_object_get(o, "box")) < 0 ||
        copy_str(st.image, sizeof st.image, json_object_get(o, "image")) < 0 ||
        copy_str(st.created, sizeof st.created, json_object_get(o, "created")) < 0 ||
        copy_str(st.home, sizeof st.home, json_object_get(o, "home")) < 0 ||
        copy_str(st.sandbox, sizeof st.sandbox, json_object_get(o, "sandbox")) < 0) {
        if (!quiet)
            bl_oci_fail("%s: state.json is damaged", id);
        goto out;
    }
    if (!quiet && st.home[0] && setenv("BOXLITE_HOME", st.home, 1) != 0) {
        bl_oci_fail("%s: %s", id, strerror(errno));
        goto out;
    }
    st.pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
    st.read_only_root = json_is_true(json_object_get(o, "readonly"));
    st.pod_role = (int)json_integer_value(json_object_get(o, "pod_role"));
    st.starttime = (unsigned long long)json_integer_value(json_object_get(o, "starttime"));
    bl_oci_path(path, sizeof path, id, "started");
    if (!bl_oci_alive(st.pid, st.starttime))
        st.status = BL_OCI_STOPPED;
    else
        st.status = access(path, F_OK) == 0 ? BL_OCI_RUNNING : BL_OCI_CREATED;
    bl_oci_path(path, sizeof path, id, "paused");
    if (st.status != BL_OCI_STOPPED && access(path, F_OK) == 0)
        st.status = BL_OCI_PAUSED;
    *out = st;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int bl_oci_state_load(struct bl_oci_state *out, const char *id)
{
    return state_load(out, id, 0);
}

int bl_oci_state_peek(struct bl_oci_state *out, const char *id)
{
    return state_load(out, id, 1);
}

void bl_oci_state_remove(const char *id)
{
    static const char *files[] = {"state.json", "state.json.tmp", "started", "paused", "ctl.sock"};
    char path[4200];

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (bl_oci_path(path, sizeof path, id, files[i]) == 0)
            unlink(path);
    if (bl_oci_path(path, sizeof path, id, NULL) == 0)
        rmdir(path);
}
