/* snapshot.c — snapshots of a box (disk: qcow2 layers; full: plus RAM and device state),
 * restore, remove, clone and fork, and the repair of what a crash leaves half done.
 * Layout and crash rules: docs/snapshots.md. */
#include "api.h"
#include "box.h"
#include "conn.h"
#include "db.h"
#include "disk.h"
#include "error.h"
#include "image.h"
#include "monitor.h"
#include "runtime.h"
#include "secrets.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MONITOR_MS  600000
#define IDENTITY_MS 30000
#define ENTROPY_LEN 64
_Static_assert(sizeof(((struct bl_identity *)0)->entropy) == 2 * ENTROPY_LEN + 1,
               "struct bl_identity holds ENTROPY_LEN bytes in hex");

/* ---- paths and files ---- */

static int check_snap_name(const char *name)
{
    return bl_check_name("snapshot", name);
}

static char *snap_path(const boxlite_box *box, const char *name, const char *file)
{
    return bl_strdupf("%s/snapshots/%s%s%s", box->dir, name, file ? "/" : "", file ? file : "");
}

static uint64_t file_bytes(const char *path)
{
    struct stat st;

    return path && stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* ---- layers: boxes/<id>/layers/<id>.qcow2, disk.qcow2 a symlink to the top ---- */

int bl_box_layerize(boxlite_box *box)
{
    char *layers = bl_strdupf("%s/layers", box->dir);
    char *first = bl_strdupf("%s/layers/base.qcow2", box->dir);
    char *lnk = bl_strdupf("%s/disk.qcow2.lnk", box->dir);
    struct stat st;
    int rc = 0;

    if (!layers || !first || !lnk)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else if (lstat(box->disk, &st) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "stat %s", box->disk);
    if (rc != 0 || S_ISLNK(st.st_mode))
        goto out;
    /* two names for the file, then the link replaces the old name: always one valid disk */
    if (mkdir(layers, 0700) != 0 && errno != EEXIST)
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", layers);
    unlink(first);
    unlink(lnk);
    if (rc == 0 && link(box->disk, first) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "link %s", first);
    if (rc == 0 && symlink("layers/base.qcow2", lnk) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "symlink %s", lnk);
    if (rc == 0 && rename(lnk, box->disk) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", lnk);
    if (rc == 0) {
        bl_disk_sync_dir(layers);
        bl_disk_sync_dir(box->dir);
    }
out:
    free(layers);
    free(first);
    free(lnk);
    return rc;
}

/* A fresh layer name: absolute, malloc'd. */
static char *layer_name(const boxlite_box *box)
{
    char id[13];

    return bl_random_id(id) == 0 ? bl_strdupf("%s/layers/%s.qcow2", box->dir, id) : NULL;
}

/* Point disk.qcow2 at layer (absolute, inside box->dir/layers) atomically. */
static int switch_top(boxlite_box *box, const char *layer)
{
    const char *rel = strstr(layer, "/layers/");

    if (!rel)
        return bl_err(BOXLITE_EINVAL, "layer %s is not in %s/layers", layer, box->dir);
    if (bl_disk_switch_top(box->dir, rel + 1) != 0)
        return bl_err_errno(BOXLITE_EIO, errno, "switch %s to %s", box->disk, layer);
    return 0;
}

static void random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[256];
    size_t n = bytes < sizeof(b) ? bytes : sizeof(b);

    if (getrandom(b, n, 0) != (ssize_t)n)
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)(rand() ^ (int)time(NULL));
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- rows from files ---- */

static void snap_to_info(boxlite_snapshot_info *out, const struct bl_snap_row *r)
{
    memset(out, 0, sizeof(*out));
    out->version = BOXLITE_SNAPSHOT_INFO_VERSION;
    snprintf(out->id, sizeof(out->id), "%s", r->id);
    snprintf(out->box_id, sizeof(out->box_id), "%s", r->box_id);
    snprintf(out->name, sizeof(out->name), "%s", r->name);
    snprintf(out->kind, sizeof(out->kind), "%s", r->kind);
    out->kind_code = bl_snapshot_kind_code(r->kind);
    snprintf(out->parent, sizeof(out->parent), "%s", r->parent);
    out->size = r->size;
    snprintf(out->created_at, sizeof(out->created_at), "%s", r->created_at);
}

/* The snapshot whose frozen layer is layer (a real path). */
static int snap_by_layer(boxlite_box *box, const char *layer, struct bl_snap_row *out)
{
    struct bl_snap_row *rows = NULL;
    size_t n = 0;
    int found = -1;

    if (bl_db_snap_list(box->rt->db, box->row.id, &rows, &n) != 0)
        return -1;
    for (size_t i = 0; i < n && found < 0; i++) {
        char *link = snap_path(box, rows[i].name, "disk.qcow2");
        char *real = link ? realpath(link, NULL) : NULL;
        if (real && strcmp(real, layer) == 0) {
            *out = rows[i];
            found = 0;
        }
        free(link);
        free(real);
    }
    free(rows);
    return found;
}

/* Record snapshot name from its files: kind from the memory file, parent from the backing
 * file of its layer, size from what its files take. */
static int register_snapshot(boxlite_box *box, const char *name, struct bl_snap_row *out)
{
    char *disk = snap_path(box, name, "disk.qcow2");
    char *mem = snap_path(box, name, "memory");
    char *ram = snap_path(box, name, "ram");
    char backing[4096], prefix[1024];
    struct bl_snap_row r = {0}, p;
    struct stat st;
    int rc = 0;

    if (!disk || !mem || !ram) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    rc = bl_random_id(r.id);
    snprintf(r.box_id, sizeof(r.box_id), "%s", box->row.id);
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.kind, sizeof(r.kind), "%s", stat(mem, &st) == 0 ? "full" : "disk");
    bl_rfc3339_now(r.created_at);
    r.size = file_bytes(disk) + file_bytes(mem) + file_bytes(ram);
    snprintf(prefix, sizeof(prefix), "%s/layers/", box->dir);
    if (rc == 0 && bl_qcow2_backing(disk, backing, sizeof(backing)) == 0 &&
        strncmp(backing, prefix, strlen(prefix)) == 0) {
        if (snap_by_layer(box, backing, &p) == 0)
            snprintf(r.parent, sizeof(r.parent), "%s", p.id);
    } else if (rc == 0 && strstr(backing, "/layers/")) {
        snprintf(r.parent, sizeof(r.parent), "%s", box->row.parent); /* a fork's origin */
    }
    if (rc == 0)
        rc = bl_db_snap_insert(box->rt->db, &r);
    if (rc == 0 && out)
        *out = r;
out:
    free(disk);
    free(mem);
    free(ram);
    return rc;
}

/* ---- create ---- */

/* The stopped box: a new layer over the top; the snapshot links to the old top; disk.qcow2
 * switches to the new layer. A crash before the switch leaves a snapshot that points at the
 * top: repair drops it, and the unused layer. */
static int create_offline(boxlite_box *box, const char *name)
{
    char *sdir = snap_path(box, name, NULL);
    char *link_path = snap_path(box, name, "disk.qcow2");
    char *snaps = bl_strdupf("%s/snapshots", box->dir);
    char *top = NULL, *layer = NULL;
    int rc = bl_box_layerize(box);

    if (rc == 0 && (!sdir || !link_path || !snaps))
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    if (rc == 0) {
        top = realpath(box->disk, NULL);
        layer = layer_name(box);
        if (!top || !layer)
            rc = bl_err_errno(BOXLITE_EIO, errno, "resolve %s", box->disk);
    }
    if (rc == 0 && mkdir(snaps, 0700) != 0 && errno != EEXIST)
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", snaps);
    if (rc == 0 && mkdir(sdir, 0700) != 0)
        rc =
            bl_err_errno(errno == EEXIST ? BOXLITE_EEXISTS : BOXLITE_EIO, errno, "create %s", sdir);
    if (rc == 0)
        rc = bl_disk_overlay(layer, top, 0);
    bl_test_crash("snapshot-create:layered");
    if (rc == 0 && symlink(top, link_path) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "symlink %s", link_path);
    bl_test_crash("snapshot-create:linked");
    if (rc == 0)
        rc = switch_top(box, layer);
    if (rc == 0) {
        bl_disk_sync_dir(sdir);
    } else if (sdir) {
        if (layer)
            unlink(layer);
        unlink(link_path);
        rmdir(sdir);
    }
    free(sdir);
    free(link_path);
    free(snaps);
    free(top);
    free(layer);
    return rc;
}

BOXLITE_API int boxlite_snapshot_create(boxlite_snapshot_info *out, boxlite_box *box,
                                        const char *name, int flags)
{
    struct bl_snap_row row, existing;
    struct bl_conn *c = NULL;
    int lock_fd = -1, rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "snapshot: box is NULL");
    rc = out ? bl_check_version(out->version, BOXLITE_SNAPSHOT_INFO_VERSION, "snapshot info") : 0;
    if (rc == 0)
        rc = check_snap_name(name);
    if (rc == 0)
        rc = bl_box_lock(box, &lock_fd);
    if (rc == 0)
        rc = bl_box_reload(box);
    if (rc == 0 && !bl_box_running(box))
        bl_snapshot_repair_locked(box);
    if (rc == 0 && bl_db_snap_get(box->rt->db, box->row.id, name, &existing) == 0)
        rc = bl_err(BOXLITE_EEXISTS, "box %s already has a snapshot named \"%s\"", box->row.id,
                    name);
    if (rc == 0) {
        bl_err_clear();
        if (bl_box_running(box)) {
            rc = bl_box_conn(box, &c);
            if (rc == 0)
                rc = bl_conn_monitor(c,
                                     flags & BOXLITE_SNAPSHOT_MEMORY ? BL_MON_SNAPSHOT_FULL
                                                                     : BL_MON_SNAPSHOT_DISK,
                                     name, MONITOR_MS);
        } else if (flags & BOXLITE_SNAPSHOT_MEMORY) {
            rc = bl_err(BOXLITE_ESTATE, "a full snapshot needs a running box; %s is %s",
                        box->row.id, box->row.state);
        } else {
            rc = create_offline(box, name);
        }
        bl_test_crash("snapshot-create:layer-done");
        if (rc == 0)
            rc = register_snapshot(box, name, &row);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    if (rc != 0)
        return bl_err_wrap(rc, "snapshot box %s as \"%s\"", box->row.id, name ? name : "");
    if (out)
        snap_to_info(out, &row);
    return 0;
}

BOXLITE_API int boxlite_snapshot_list(boxlite_snapshot_info **out, size_t *count_out,
                                      boxlite_box *box)
{
    struct bl_snap_row *rows = NULL;
    boxlite_snapshot_info *infos;
    size_t n = 0;
    int rc;

    bl_err_clear();
    if (!out || !count_out || !box)
        return bl_err(BOXLITE_EINVAL, "snapshot list: bad arguments");
    rc = bl_box_reload(box);
    if (rc == 0 && !bl_box_running(box))
        bl_snapshot_repair(box, NULL); /* touched: list what a crash left as it ends up */
    if (rc == 0)
        rc = bl_db_snap_list(box->rt->db, box->row.id, &rows, &n);
    if (rc != 0)
        return rc;
    infos = calloc(n ? n : 1, sizeof(*infos));
    for (size_t i = 0; infos && i < n; i++)
        snap_to_info(&infos[i], &rows[i]);
    free(rows);
    if (!infos)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    *out = infos;
    *count_out = n;
    return 0;
}

/* ---- identity and resume ---- */

static int run_builtin(boxlite_box *box, const char *const *argv)
{
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    char err[512];
    size_t n = 0;
    int which = 0, rc;

    o.argv = argv;
    o.user = "root";
    o.timeout_ms = IDENTITY_MS;
    rc = bl_exec_start_flags(&ex, box, &o, BL_EXEC_BUILTIN);
    if (rc == 0)
        rc = boxlite_exec_wait(ex, &res, IDENTITY_MS + 5000);
    err[0] = '\0';
    if (rc == 0 && res.exit_code != 0) {
        boxlite_exec_read(ex, BOXLITE_STDERR, &which, err, sizeof(err) - 1, &n, 0);
        err[n] = '\0';
        err[strcspn(err, "\n")] = '\0';
        rc = bl_err(BOXLITE_ERROR, "%s: %s", argv[0], err[0] ? err : res.message);
    }
    boxlite_exec_free(ex);
    return rc;
}

/* With BOXLITE_TEST_HOOKS=1, BOXLITE_TEST_ENTROPY replaces the entropy sent: how a test sees
 * that the guest really takes the reseed part (a malformed one must fail the fix-up; forks'
 * /dev/urandom differs even without it while the guest kernel reseeds often, early in its
 * life). */
static void entropy_hex(char *out, size_t cap)
{
    const char *on = getenv("BOXLITE_TEST_HOOKS"), *v = getenv("BOXLITE_TEST_ENTROPY");

    if (on && strcmp(on, "1") == 0 && v)
        snprintf(out, cap, "%s", v);
    else
        random_hex(out, ENTROPY_LEN);
}

/* After a restore: the guest's clock is where it was at the snapshot and its RNG state is
 * the snapshot's. A fork also gets its own hostname and MAC. The identity built-in's
 * arguments (argv[1..4]) for box, held in id. */
void bl_snapshot_identity_args(struct bl_identity *id, boxlite_box *box, int fork)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(id->now, sizeof(id->now), "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    entropy_hex(id->entropy, sizeof(id->entropy));
    bl_box_mac(box->row.id, id->mac);
    id->argv[0] = "identity";
    id->argv[1] = fork ? (box->row.name ? box->row.name : box->row.id) : "-";
    id->argv[2] = fork && !box->row.network_disabled ? id->mac : "-";
    id->argv[3] = id->entropy;
    id->argv[4] = id->now;
    id->argv[5] = NULL;
}

/* The `identity` built-in: an agent of this build answers it in PID 1 (no exec child, no user
 * lookup: src/agent/identity.c); the agent of a full snapshot saved by an older build, still in
 * the snapshot's RAM, runs the same request in an exec child. One request, both agents. */
static int fix_identity(boxlite_box *box, int fork)
{
    struct bl_identity id;

    bl_snapshot_identity_args(&id, box, fork);
    return run_builtin(box, id.argv);
}

/* An agent built-in run as root, for a box started from a warm template (src/lib/template/). */
int bl_snapshot_builtin(boxlite_box *box, const char *const *argv)
{
    return run_builtin(box, argv);
}

int bl_snapshot_resume(boxlite_box *box, const char *sdir, int flags, int fork)
{
    char *mem = bl_strdupf("%s/memory", sdir), *ram = bl_strdupf("%s/ram", sdir);
    struct stat st;
    int rc = mem && ram ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    int64_t t0 = bl_now_ms(), t1 = t0;

    if (rc == 0 && stat(mem, &st) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "the saved VM %s", mem);
    if (rc == 0) {
        box->incoming = mem;
        box->incoming_ram = stat(ram, &st) == 0 ? ram : NULL; /* else RAM is in the stream */
        rc = flags & BOXLITE_SNAPSHOT_DETACH ? boxlite_box_start_detached(box)
                                             : boxlite_box_start(box);
        box->incoming = NULL;
        box->incoming_ram = NULL;
    }
    bl_test_crash("resume:started");
    t1 = bl_now_ms();
    if (rc == 0)
        rc = fix_identity(box, fork);
    if (rc == 0) /* where a fork's time goes: bench/snapshot prints these */
        bl_log(box->rt, BL_LOG_INFO, "resumed box %s: start %lld ms (RAM %s), identity %lld ms",
               box->row.id, (long long)(t1 - t0),
               stat(ram, &st) == 0 ? "mapped from the snapshot" : "streamed",
               (long long)(bl_now_ms() - t1));
    free(mem);
    free(ram);
    return rc;
}

/* ---- restore ---- */

BOXLITE_API int boxlite_snapshot_restore(boxlite_box *box, const char *name, int flags)
{
    struct bl_snap_row s, other;
    char *layer = NULL, *sdir = NULL, *tmp = NULL, *old = NULL;
    int lock_fd = -1, rc;

    bl_err_clear();
    if (!box || !name)
        return bl_err(BOXLITE_EINVAL, "snapshot restore: bad arguments");
    rc = bl_box_lock(box, &lock_fd);
    if (rc == 0)
        rc = bl_box_reload(box);
    if (rc == 0 && bl_box_running(box))
        rc = bl_err(BOXLITE_ESTATE, "box %s is running: stop it before restoring", box->row.id);
    if (rc == 0)
        bl_snapshot_repair_locked(box);
    if (rc == 0)
        rc = bl_db_snap_get(box->rt->db, box->row.id, name, &s);
    if (rc == 0)
        rc = bl_box_layerize(box);
    if (rc == 0) {
        char *link = snap_path(box, s.name, "disk.qcow2");
        layer = link ? realpath(link, NULL) : NULL;
        free(link);
        sdir = snap_path(box, s.name, NULL);
        tmp = layer_name(box);
        old = realpath(box->disk, NULL);
        if (!layer || !sdir || !tmp || !old)
            rc = bl_err(BOXLITE_EIO, "snapshot \"%s\" has lost its disk layer", s.name);
    }
    if (rc == 0)
        rc = bl_disk_overlay(tmp, layer, 0);
    bl_test_crash("snapshot-restore:layered");
    if (rc == 0)
        rc = switch_top(box, tmp);
    bl_test_crash("snapshot-restore:switched");
    if (rc == 0 && snap_by_layer(box, old, &other) != 0)
        unlink(old); /* the dropped top: nothing rests on it */
    if (lock_fd >= 0)
        close(lock_fd);
    if (rc == 0 && strcmp(s.kind, "full") == 0)
        rc = bl_snapshot_resume(box, sdir, flags, 0);
    free(layer);
    free(sdir);
    free(tmp);
    free(old);
    if (rc != 0)
        return bl_err_wrap(rc, "restore box %s to \"%s\"", box ? box->row.id : "", name);
    return 0;
}

/* ---- remove ---- */

/* Rebase every layer of box resting on layer onto new_backing (data carried over). */
static int rebase_children(boxlite_box *box, const char *layer, const char *new_backing)
{
    char *layers = bl_strdupf("%s/layers", box->dir);
    DIR *d = layers ? opendir(layers) : NULL;
    struct dirent *e;
    char b[4096];
    int rc = d ? 0 : bl_err_errno(BOXLITE_EIO, errno, "open %s", layers ? layers : box->dir);

    while (rc == 0 && (e = readdir(d)) != NULL) {
        char *child = e->d_name[0] == '.' ? NULL : bl_strdupf("%s/%s", layers, e->d_name);
        if (e->d_name[0] != '.' && !child) /* never skip one: its backing is deleted next */
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        else if (child && bl_qcow2_backing(child, b, sizeof(b)) == 0 && strcmp(b, layer) == 0)
            rc = bl_disk_rebase(child, new_backing);
        free(child);
    }
    if (d)
        closedir(d);
    free(layers);
    return rc;
}

BOXLITE_API int boxlite_snapshot_remove(boxlite_box *box, const char *name)
{
    struct bl_snap_row s;
    char *link = NULL, *layer = NULL, *sdir = NULL, *trash = NULL;
    char backing[4096], deps[512];
    int lock_fd = -1, rc;

    bl_err_clear();
    if (!box || !name)
        return bl_err(BOXLITE_EINVAL, "snapshot remove: bad arguments");
    rc = bl_box_lock(box, &lock_fd);
    if (rc == 0)
        rc = bl_box_reload(box);
    if (rc == 0)
        rc = bl_db_snap_get(box->rt->db, box->row.id, name, &s);
    if (rc == 0 && bl_box_running(box))
        rc = bl_err(BOXLITE_ESTATE, "box %s is running: stop it before removing a snapshot",
                    box->row.id);
    if (rc == 0)
        bl_snapshot_repair_locked(box);
    if (rc == 0 && bl_db_box_dependents(box->rt->db, box->row.id, s.id, deps, sizeof(deps)) > 0)
        rc = bl_err(BOXLITE_ESTATE, "boxes %s were forked from it", deps);
    if (rc == 0) {
        link = snap_path(box, s.name, "disk.qcow2");
        layer = link ? realpath(link, NULL) : NULL;
        sdir = snap_path(box, s.name, NULL);
        trash = bl_strdupf("%s/snapshots/.trash-%s", box->dir, s.name);
        if (!layer || !sdir || !trash)
            rc = bl_err(BOXLITE_EIO, "snapshot \"%s\" has lost its disk layer", s.name);
    }
    if (rc == 0 && bl_qcow2_backing(layer, backing, sizeof(backing)) != 0)
        rc = bl_err(BOXLITE_EIO, "read the backing file of %s", layer);
    if (rc == 0)
        rc = rebase_children(box, layer, backing);
    bl_test_crash("snapshot-remove:rebased");
    if (rc == 0 && rename(sdir, trash) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", sdir);
    bl_test_crash("snapshot-remove:renamed");
    if (rc == 0)
        rc = bl_db_snap_delete(box->rt->db, s.id, s.parent);
    if (rc == 0) {
        bl_rm_rf(trash);
        unlink(layer);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    free(link);
    free(layer);
    free(sdir);
    free(trash);
    if (rc != 0)
        return bl_err_wrap(rc, "remove snapshot \"%s\" of box %s", name, box->row.id);
    return 0;
}

/* ---- new boxes from old: clone, fork ---- */

static char **dup_or_null(char **v, int *ok)
{
    char **d = v ? bl_strv_dup((const char *const *)v) : NULL;

    if (v && !d)
        *ok = 0;
    return d;
}

/* A row for a new box like src: new id, name, stopped (a copy never widens the policy). */
static int copy_row(struct bl_box_row *r, const struct bl_box_row *src, const char *id,
                    const char *name, int keep_ports)
{
    int ok = 1;
    int rc = bl_box_row_init(r, id, name, src->image);

    if (rc != 0)
        return rc;
    r->cpus = src->cpus;
    r->memory_mib = src->memory_mib;
    r->disk_size_gb = src->disk_size_gb;
    r->detach = src->detach;
    r->env = dup_or_null(src->env, &ok);
    r->entrypoint = dup_or_null(src->entrypoint, &ok);
    r->cmd = dup_or_null(src->cmd, &ok);
    r->workdir = src->workdir ? strdup(src->workdir) : NULL;
    r->user = src->user ? strdup(src->user) : NULL;
    r->network_disabled = src->network_disabled;
    if (keep_ports) {
        bl_strv_free(r->ports);
        r->ports = dup_or_null(src->ports, &ok);
    }
    bl_strv_free(r->volumes);
    r->volumes = dup_or_null(src->volumes, &ok);
    r->allow_net = dup_or_null(src->allow_net, &ok);
    r->image_id = src->image_id ? strdup(src->image_id) : NULL; /* same image, same base */
    r->image_rootfs = src->image_rootfs ? strdup(src->image_rootfs) : NULL;
    r->image_ref = src->image_ref ? strdup(src->image_ref) : NULL;
    if (!ok || (src->image_id && !r->image_id) || (src->image_rootfs && !r->image_rootfs) ||
        (src->image_ref && !r->image_ref) || (src->workdir && !r->workdir) ||
        (src->user && !r->user)) {
        bl_box_row_clear(r);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    return 0;
}

/* Make a box from src's row and a disk made by make(tmpdir disk path, ctx). */
static int make_box(boxlite_box **out, boxlite_box *src, const char *name, const char *parent,
                    int fork, int (*make)(const char *disk, void *ctx), void *ctx)
{
    struct bl_box_row row = {0};
    char id[13], *tmpdir = NULL, *disk = NULL;
    int lock_fd = -1, rc, made = 0, published = 0;

    rc = bl_random_id(id);
    if (rc == 0)
        rc = copy_row(&row, &src->row, id, name, !fork);
    if (rc == 0) {
        made = 1;
        snprintf(row.parent, sizeof(row.parent), "%s", parent ? parent : "");
        if (fork)
            snprintf(row.backing_box, sizeof(row.backing_box), "%s", src->row.id);
        rc = bl_box_stage(src->rt, id, &tmpdir, &lock_fd);
    }
    if (rc == 0) {
        disk = bl_strdupf("%s/disk.qcow2", tmpdir);
        rc = disk ? make(disk, ctx) : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0) /* the copy keeps the secrets (docs/security.md, Secrets) */
        rc = bl_secrets_copy(src->dir, tmpdir);
    bl_test_crash("box-new:disk");
    if (rc == 0) {
        published = 1;
        rc = bl_box_publish(src->rt, &row, tmpdir);
    }
    if (rc == 0) {
        rc = boxlite_box_get(out, src->rt, row.id);
        if (rc != 0) /* no handle (out of memory): a failed clone or fork leaves no box */
            bl_box_unpublish(src->rt, row.id, tmpdir);
    }
    if (rc != 0 && tmpdir)
        bl_box_abandon(src->rt, published ? id : NULL, tmpdir, rc);
    if (lock_fd >= 0)
        close(lock_fd);
    if (made)
        bl_box_row_clear(&row);
    free(tmpdir);
    free(disk);
    return rc;
}

struct flatten_ctx {
    const char *src;  /* the layer to copy */
    const char *base; /* the image's base, shared */
};

/* The source chain copied onto the image's base (bl_disk_flatten). */
static int flatten_over_base(const char *disk, void *ctx)
{
    struct flatten_ctx *f = ctx;

    return bl_disk_flatten(disk, f->src, f->base);
}

static int overlay_make(const char *disk, void *ctx)
{
    return bl_disk_overlay(disk, ctx, 0);
}

BOXLITE_API int boxlite_box_clone(boxlite_box **out, boxlite_box *box, const char *name,
                                  const char *snapshot)
{
    struct bl_image *img = NULL;
    struct bl_snap_row s = {0};
    struct flatten_ctx f = {0};
    char *layer = NULL;
    int rc;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "clone: bad arguments");
    rc = bl_box_reload(box);
    if (rc == 0 && snapshot)
        rc = bl_db_snap_get(box->rt->db, box->row.id, snapshot, &s);
    else if (rc == 0 && bl_box_running(box))
        rc = bl_err(BOXLITE_ESTATE, "box %s is running: stop it, or clone one of its snapshots",
                    box->row.id);
    if (rc == 0)
        rc = bl_box_image(box, &img);
    if (rc == 0) {
        layer = snapshot ? snap_path(box, s.name, "disk.qcow2") : strdup(box->disk);
        rc = layer ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    f.src = layer;
    f.base = img ? img->base_path : NULL;
    if (rc == 0)
        rc = make_box(out, box, name, snapshot ? s.id : NULL, 0, flatten_over_base, &f);
    free(layer);
    if (rc != 0)
        return bl_err_wrap(rc, "clone box %s", box->row.id);
    return 0;
}

BOXLITE_API int boxlite_box_fork(boxlite_box **out, boxlite_box *box, const char *snapshot,
                                 const char *name, int flags)
{
    struct bl_snap_row s = {0};
    boxlite_box *nb = NULL;
    char *layer = NULL, *sdir = NULL;
    int rc;

    bl_err_clear();
    if (!out || !box || !snapshot)
        return bl_err(BOXLITE_EINVAL, "fork: bad arguments");
    rc = bl_box_reload(box);
    if (rc == 0)
        rc = bl_db_snap_get(box->rt->db, box->row.id, snapshot, &s);
    if (rc == 0 && strcmp(s.kind, "full") != 0)
        rc = bl_err(BOXLITE_EINVAL, "snapshot \"%s\" has no memory: fork needs a full snapshot",
                    s.name);
    if (rc == 0) {
        char *link = snap_path(box, s.name, "disk.qcow2");
        layer = link ? realpath(link, NULL) : NULL;
        free(link);
        sdir = snap_path(box, s.name, NULL);
        rc = layer && sdir ? 0 : bl_err(BOXLITE_EIO, "snapshot \"%s\" has lost its layer", s.name);
    }
    if (rc == 0) {
        int64_t t0 = bl_now_ms();
        rc = make_box(&nb, box, name, s.id, 1, overlay_make, layer);
        if (rc == 0)
            bl_log(box->rt, BL_LOG_INFO, "fork %s: box and disk layer %lld ms", nb->row.id,
                   (long long)(bl_now_ms() - t0));
    }
    if (rc == 0)
        rc = bl_snapshot_resume(nb, sdir, flags, 1);
    free(layer);
    free(sdir);
    if (rc != 0) {
        char *why = strdup(boxlite_error_last()); /* the removal below clears it */
        if (nb)
            boxlite_box_remove(nb, 1);
        boxlite_box_free(nb);
        rc = bl_err(rc, "fork box %s from \"%s\": %s", box->row.id, snapshot, why ? why : "");
        free(why);
        return rc;
    }
    *out = nb;
    return 0;
}

/* ---- repair ---- */

int bl_repair_note(struct bl_repair *rp, int mendable, const char *box_id, const char *fmt, ...)
{
    char what[1024];
    va_list ap;

    if (!rp)
        return mendable; /* a box being touched: mend quietly */
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rp->found++;
    if (rp->report)
        rp->report(rp->ctx, box_id, what, mendable && rp->fix);
    return mendable && rp->fix;
}

static void repair_snapshot_dir(boxlite_box *box, const char *name, const char *top,
                                struct bl_repair *rp)
{
    char *sdir = snap_path(box, name, NULL);
    char *link = snap_path(box, name, "disk.qcow2");
    char *memtmp = snap_path(box, name, "memory.tmp");
    char *ramtmp = snap_path(box, name, "ram.tmp");
    char *layer = link ? realpath(link, NULL) : NULL;
    struct bl_snap_row r;
    struct stat st;

    if (!sdir || !link || !memtmp || !ramtmp)
        goto out;
    if (name[0] == '.') { /* .trash-*: a removal that got as far as the rename */
        if (bl_repair_note(rp, 1, box->row.id, "snapshot removal cut short: %s", name))
            bl_rm_rf(sdir);
        goto out;
    }
    if (lstat(memtmp, &st) == 0 &&
        bl_repair_note(rp, 1, box->row.id, "snapshot \"%s\": half-written memory file", name))
        unlink(memtmp);
    if (lstat(ramtmp, &st) == 0 &&
        bl_repair_note(rp, 1, box->row.id, "snapshot \"%s\": half-written RAM file", name))
        unlink(ramtmp);
    if (!layer && lstat(link, &st) == 0) {
        /* the link is there, its layer is not: data lost, not a crash mid-way; say so */
        bl_repair_note(rp, 0, box->row.id, "snapshot \"%s\" has lost its disk layer", name);
    } else if (!layer || (top && strcmp(layer, top) == 0)) {
        /* never finished: it names the live top (or nothing) */
        if (bl_repair_note(rp, 1, box->row.id, "snapshot \"%s\" never finished", name)) {
            bl_rm_rf(sdir);
            if (bl_db_snap_get(box->rt->db, box->row.id, name, &r) == 0)
                bl_db_snap_delete(box->rt->db, r.id, r.parent);
        }
    } else if (bl_db_snap_get(box->rt->db, box->row.id, name, &r) != 0) {
        if (bl_repair_note(rp, 1, box->row.id, "snapshot \"%s\" finished but not recorded", name))
            register_snapshot(box, name, NULL);
    }
out:
    bl_err_clear();
    free(sdir);
    free(link);
    free(memtmp);
    free(ramtmp);
    free(layer);
}

/* The layers some chain reaches, by device and inode (a name may be a symlink or another
 * link to the file): an open-addressing set that grows, so nothing goes unmarked. */
struct layer_set {
    struct stat *v; /* st_ino 0 = empty slot */
    size_t n, cap;
};

static size_t slot_of(const struct layer_set *s, const struct stat *st)
{
    size_t i = (size_t)((st->st_ino * 0x9e3779b97f4a7c15ull) ^ st->st_dev) & (s->cap - 1);

    while (s->v[i].st_ino && (s->v[i].st_ino != st->st_ino || s->v[i].st_dev != st->st_dev))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int set_has(const struct layer_set *s, const struct stat *st)
{
    return s->cap && s->v[slot_of(s, st)].st_ino != 0;
}

/* 1 when added, 0 when it was there, <0 on failure. */
static int set_add(struct layer_set *s, const struct stat *st)
{
    if (set_has(s, st))
        return 0;
    if (2 * (s->n + 1) > s->cap) {
        struct layer_set g = {calloc(s->cap ? 2 * s->cap : 256, sizeof(*g.v)), 0,
                              s->cap ? 2 * s->cap : 256};
        if (!g.v)
            return bl_err(BOXLITE_ENOMEM, "out of memory");
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i].st_ino)
                g.v[slot_of(&g, &s->v[i])] = s->v[i];
        g.n = s->n;
        free(s->v);
        *s = g;
    }
    s->v[slot_of(s, st)] = *st;
    s->n++;
    return 1;
}

static int mark_one(const char *file, const struct stat *st, void *ctx)
{
    int rc = st ? set_add(ctx, st) : 1;

    return rc == 0 ? 1 : rc == 1 ? 0 : rc; /* walked already: stop there */
}

/* Mark path and everything below it; a chain already walked is not walked again. A header
 * that cannot be read is an error: nothing is collected then. */
static int mark_chain(struct layer_set *set, const char *path)
{
    return bl_disk_walk(path, mark_one, set);
}

/* Mark what the box in dir reaches: dir/disk.qcow2 and every snapshots/<name>/disk.qcow2;
 * and with all_layers (a fork of the box being collected: anything of its may rest on a
 * layer of ours), every file of dir/layers too. */
static int mark_box_dir(struct layer_set *set, const char *dir, int all_layers)
{
    const char *subs[] = {"snapshots", "layers"};
    char *disk = bl_strdupf("%s/disk.qcow2", dir);
    int rc = disk ? mark_chain(set, disk) : bl_err(BOXLITE_ENOMEM, "out of memory");

    for (size_t k = 0; k < (all_layers ? 2u : 1u) && rc == 0; k++) {
        char *sub = bl_strdupf("%s/%s", dir, subs[k]);
        DIR *d = sub ? opendir(sub) : NULL;
        struct dirent *e;
        if (!sub)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        else if (!d && errno != ENOENT)
            rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", sub);
        while (rc == 0 && d && (e = readdir(d)) != NULL) {
            char *p = bl_strdupf(k == 0 ? "%s/%s/disk.qcow2" : "%s/%s", sub, e->d_name);
            rc = p ? (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0
                          ? 0
                          : mark_chain(set, p))
                   : bl_err(BOXLITE_ENOMEM, "out of memory");
            free(p);
        }
        if (d)
            closedir(d);
        free(sub);
    }
    free(disk);
    return rc;
}

/* Delete layers nothing rests on (made by an operation a crash cut short). What rests on a
 * layer: the box's top, its snapshots, every layer and snapshot of a box forked from it (a
 * fork's chain runs into this box's layers). If any of that cannot be read, nothing goes. */
static void collect_layers(boxlite_box *box, struct bl_repair *rp)
{
    char *layers = bl_strdupf("%s/layers", box->dir);
    struct layer_set set = {0};
    char **deps = NULL;
    struct dirent *e;
    DIR *d = NULL;
    int rc = layers ? mark_box_dir(&set, box->dir, 0) : BOXLITE_ENOMEM;

    if (rc == 0)
        rc = bl_db_box_forks(box->rt->db, box->row.id, &deps);
    for (size_t i = 0; rc == 0 && deps[i]; i++) {
        char *dir = bl_strdupf("%s/boxes/%s", box->rt->home, deps[i]);
        rc = dir ? mark_box_dir(&set, dir, 1) : BOXLITE_ENOMEM;
        free(dir);
    }
    d = rc == 0 ? opendir(layers) : NULL;
    while (d && (e = readdir(d)) != NULL) {
        char *path = e->d_name[0] == '.' ? NULL : bl_strdupf("%s/%s", layers, e->d_name);
        struct stat st;
        if (path && lstat(path, &st) == 0 && S_ISREG(st.st_mode) && !set_has(&set, &st) &&
            bl_repair_note(rp, 1, box->row.id, "layer %s: nothing rests on it", e->d_name))
            unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    bl_strv_free(deps);
    free(set.v);
    free(layers);
}

/* A box's RAM file outlives its monitor only when the monitor was killed: the guest's RAM,
 * up to its size on disk. Never while a monitor runs the box (QEMU maps it). */
static void drop_stale_ram(boxlite_box *box, struct bl_repair *rp)
{
    char *ram = bl_strdupf("%s/ram", box->dir);
    struct stat st;

    if (ram && lstat(ram, &st) == 0 && !bl_monitor_alive(box->rt->home, box->row.id) &&
        bl_repair_note(rp, 1, box->row.id, "the RAM file of a monitor that was killed"))
        unlink(ram);
    free(ram);
}

static void repair_locked(boxlite_box *box, struct bl_repair *rp)
{
    char *snaps = bl_strdupf("%s/snapshots", box->dir);
    char *lnk = bl_strdupf("%s/disk.qcow2.lnk", box->dir);
    char *top = NULL;
    struct bl_snap_row *rows = NULL;
    size_t n = 0;
    struct dirent *e;
    struct stat st;
    DIR *d = NULL;

    if (!snaps || !lnk)
        goto out;
    drop_stale_ram(box, rp);
    if (lstat(lnk, &st) == 0 && bl_repair_note(rp, 1, box->row.id, "a disk switch cut short"))
        unlink(lnk);
    if (lstat(box->disk, &st) != 0 || !S_ISLNK(st.st_mode))
        goto out; /* never snapshotted (or not a box we can read) */
    top = realpath(box->disk, NULL);
    if (!top) {
        bl_repair_note(rp, 0, box->row.id, "its disk layer is gone");
        goto out;
    }
    d = opendir(snaps);
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            repair_snapshot_dir(box, e->d_name, top, rp);
    if (bl_db_snap_list(box->rt->db, box->row.id, &rows, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char *sdir = snap_path(box, rows[i].name, NULL);
            if (sdir && lstat(sdir, &st) != 0 &&
                bl_repair_note(rp, 1, box->row.id, "snapshot \"%s\" recorded, its files gone",
                               rows[i].name))
                bl_db_snap_delete(box->rt->db, rows[i].id, rows[i].parent);
            free(sdir);
        }
        free(rows);
    }
    collect_layers(box, rp);
out:
    if (d)
        closedir(d);
    free(snaps);
    free(lnk);
    free(top);
    bl_err_clear();
}

void bl_snapshot_repair(boxlite_box *box, struct bl_repair *rp)
{
    int lock_fd = open(box->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (lock_fd >= 0) {
        int fd = openat(lock_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        close(lock_fd);
        lock_fd = fd;
    }
    /* another process at work on this box: leave it be */
    if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
        repair_locked(box, rp);
    if (lock_fd >= 0)
        close(lock_fd);
}

void bl_snapshot_repair_locked(boxlite_box *box)
{
    repair_locked(box, NULL);
}
