/* box.c — a box handle: the accessors, create (store row, directory, qcow2 layer over the
 * image's base), get, remove and free, and the image a box is pinned to. Options and rows:
 * options.c; start: start.c; stop: stop.c; repair: repair.c; info and stats: info.c. */
#include "api.h"
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "disk.h"
#include "error.h"
#include "image.h"
#include "monitor.h"
#include "store.h"
#include "runtime.h"
#include "secrets.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

BOXLITE_API const char *boxlite_box_id(const boxlite_box *box)
{
    return box ? box->row.id : "";
}

BOXLITE_API int boxlite_box_booted_here(const boxlite_box *box)
{
    return box && box->lifeline_fd >= 0;
}

BOXLITE_API const char *boxlite_box_name(const boxlite_box *box)
{
    return box && box->row.name ? box->row.name : "";
}

BOXLITE_API const char *const *boxlite_box_allow_net(const boxlite_box *box)
{
    return box && box->row.allow_net && box->row.allow_net[0]
               ? (const char *const *)box->row.allow_net
               : NULL;
}

BOXLITE_API void boxlite_free(void *p)
{
    free(p);
}

BOXLITE_API void boxlite_strv_free(char **v)
{
    bl_strv_free(v);
}

int bl_box_live_state(const char *state)
{
    return bl_box_state_live(bl_box_state_parse(state));
}

/* ---- handles ---- */

/* Let go of the box's channel: shut it (execs still holding it see it closed) and drop the
 * box's reference. */
void bl_box_conn_drop(boxlite_box *box)
{
    if (box->conn)
        shutdown(box->conn->fd, SHUT_RDWR);
    bl_conn_unref(box->conn);
    box->conn = NULL;
}

static void box_release(boxlite_box *box)
{
    bl_box_conn_drop(box);
    if (box->lifeline_fd >= 0)
        close(box->lifeline_fd);
    bl_box_row_clear(&box->row);
    bl_image_free(box->image);
    free(box->dir);
    free(box->disk);
    free(box);
}

static int box_new(boxlite_box **out, boxlite_runtime *rt, const char *id)
{
    boxlite_box *box = calloc(1, sizeof(*box));

    if (!box)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    box->rt = rt;
    box->lifeline_fd = -1;
    bl_timing_clear(&box->timing, 1, 1);
    box->dir = bl_strdupf("%s/boxes/%s", rt->home, id);
    box->disk = bl_strdupf("%s/boxes/%s/disk.qcow2", rt->home, id);
    if (!box->dir || !box->disk) {
        box_release(box);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    *out = box;
    return 0;
}

void bl_box_mac(const char *id, char out[18])
{
    uint32_t h = 2166136261u;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

int bl_box_running(boxlite_box *box)
{
    return bl_box_live_state(box->row.state) && bl_monitor_alive(box->rt->home, box->row.id);
}

int bl_box_reload(boxlite_box *box)
{
    struct bl_box_row row;
    int rc = bl_db_box_get(box->rt->db, box->row.id, &row);

    if (rc == BOXLITE_ENOTFOUND)
        box->removed = 1;
    if (rc == 0) {
        bl_box_row_clear(&box->row);
        box->row = row;
    }
    return rc;
}

/* ---- the image a box is pinned to ---- */

/* Fill in what the row does not say yet: the base from the disk chain; the config from the
 * base's digest (a pulled or imported base is named by its config digest), "" for the
 * built-in default, else the image of that name in the store (no pull). */
int bl_box_pin(boxlite_box *box)
{
    struct bl_box_row *r = &box->row;
    char *rootfs = r->image_rootfs ? strdup(r->image_rootfs) : NULL;
    char *id = r->image_id ? strdup(r->image_id) : NULL;
    int rc = 0;

    if (r->image_id && r->image_rootfs)
        goto out;
    if (!rootfs)
        rc = bl_disk_rootfs(box->disk, &rootfs);
    if (rc == 0 && !id && strcmp(r->image, "default") == 0)
        id = strdup("");
    else if (rc == 0 && !id && *rootfs) {
        char digest[72];
        snprintf(digest, sizeof(digest), "sha256:%s", rootfs);
        id = bl_store_has_blob(box->rt->home, digest) ? strdup(digest) : NULL;
    }
    if (rc == 0 && !id && bl_image_find_config(&id, box->rt, r->image) != 0)
        bl_err_clear(); /* not in the store: pinned on first use (bl_box_image) */
    if (rc == 0)
        rc = bl_db_box_set_image(box->rt->db, r->id, id, rootfs);
    if (rc == 0) {
        free(r->image_id);
        free(r->image_rootfs);
        r->image_id = id;
        r->image_rootfs = rootfs;
        id = rootfs = NULL;
    }
out:
    free(id);
    free(rootfs);
    return rc;
}

void bl_box_pin_all(boxlite_runtime *rt)
{
    char **ids = NULL;

    if (bl_db_box_unpinned(rt->db, &ids) != 0)
        return;
    for (size_t i = 0; ids[i]; i++) {
        boxlite_box *box = NULL;
        if (boxlite_box_get(&box, rt, ids[i]) == 0) /* get pins */
            boxlite_box_free(box);
    }
    bl_strv_free(ids);
    bl_err_clear();
}

int bl_box_image(boxlite_box *box, struct bl_image **out)
{
    struct bl_box_row *r = &box->row;
    struct bl_image *img = NULL;
    int rc = 0;

    if (box->image)
        goto out;
    rc = bl_box_pin(box);
    if (rc == 0 && !r->image_id) {
        /* an imported box whose image is not in the store: the one time it is resolved */
        rc = bl_image_open(&img, box->rt, r->image);
        if (rc == 0)
            rc = bl_db_box_set_image(box->rt->db, r->id, img->id, r->image_rootfs);
        if (rc == 0)
            r->image_id = strdup(img->id);
        if (rc == 0 && !r->image_id)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        bl_image_free(img);
    }
    if (rc == 0)
        rc = bl_image_open_pinned(&box->image, box->rt, r->image, r->image_id, r->image_rootfs);
out:
    if (rc == 0)
        *out = box->image;
    return rc;
}

/* ---- create / get ---- */

/* The real values live only here (mode 0600), for the box's monitor (secrets.h). */
static int write_secrets(const char *dir, const boxlite_box_options *o)
{
    char *text = bl_secrets_encode(o->secrets, o->n_secrets);
    char *path = bl_strdupf("%s/%s", dir, BL_SECRETS_FILE);
    int rc = text && path ? bl_write_file_atomic(path, text, strlen(text), 0600)
                          : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (text)
        memset(text, 0, strlen(text));
    free(text);
    free(path);
    return rc;
}

static int make_disk(const char *disk, const char *base, unsigned size_gb)
{
    struct stat st;
    int rc = 0;

    if (stat(base, &st) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "stat %s", base);
    else if (size_gb && (uint64_t)size_gb << 30 < (uint64_t)st.st_size)
        rc = bl_err(BOXLITE_EINVAL, "disk_size_gb %u is smaller than the image (%lld MiB)", size_gb,
                    (long long)(st.st_size >> 20));
    if (rc == 0)
        rc = bl_disk_overlay(disk, base, (uint64_t)size_gb << 30);
    return rc;
}

int bl_box_stage(boxlite_runtime *rt, const char *id, char **dir_out, int *lock_out)
{
    char *dir = bl_strdupf("%s/boxes/.new-%s", rt->home, id);
    int rc = dir ? bl_make_locked_dir(dir, lock_out) : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0)
        *dir_out = dir;
    else
        free(dir);
    return rc;
}

int bl_box_publish(boxlite_runtime *rt, const struct bl_box_row *row, const char *staged)
{
    char *dir = bl_strdupf("%s/boxes/%s", rt->home, row->id);
    int rc = dir ? bl_db_box_insert(rt->db, row) : bl_err(BOXLITE_ENOMEM, "out of memory");

    bl_test_crash("box-new:inserted");
    if (rc == 0 && rename(staged, dir) != 0) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", staged);
        bl_db_box_delete(rt->db, row->id); /* bl_box_abandon keeps the box should this fail */
    }
    free(dir);
    return rc;
}

int bl_box_abandon(boxlite_runtime *rt, const char *id, const char *staged, int rc)
{
    char msg[1024];
    struct bl_box_row row;
    int got = BOXLITE_ENOTFOUND;

    snprintf(msg, sizeof(msg), "%s", boxlite_error_last());
    if (id != NULL) /* NULL: never published, no row can name it */
        got = bl_db_box_get(rt->db, id, &row);
    if (got == 0) {
        bl_box_row_clear(&row);
        return bl_err(rc, "%s; the box is recorded and kept: doctor --fix finishes it", msg);
    }
    if (got != BOXLITE_ENOTFOUND) /* never remove what a row may name */
        return bl_err(rc, "%s; the box may be recorded: doctor --fix finishes or drops it", msg);
    bl_rm_rf(staged); /* what it leaves, repair drops: no row names it */
    return bl_err(rc, "%s", msg);
}

void bl_box_unpublish(boxlite_runtime *rt, const char *id, const char *staged)
{
    char *dir = bl_strdupf("%s/boxes/%s", rt->home, id);

    if (dir && bl_db_box_delete(rt->db, id) == 0)
        rename(dir, staged); /* then removed as staged; doctor reports it should this fail */
    free(dir);
}

BOXLITE_API int boxlite_box_create(boxlite_box **out, boxlite_runtime *rt,
                                   const boxlite_box_options *opts)
{
    boxlite_box_options defaults = BOXLITE_BOX_OPTIONS_INIT, v2 = BOXLITE_BOX_OPTIONS_INIT;
    struct bl_image *img = NULL;
    boxlite_box *box = NULL;
    char id[13], *staged = NULL, *disk = NULL;
    int rc, lock_fd = -1, published = 0;
    /* the stages' bounds (bl_now_ms): start, image opened, directory begun, disk made */
    int64_t t0 = bl_now_ms(), t_img0 = -1, t_img1 = -1, t_fs0 = -1, t_fs1 = -1;

    bl_err_clear();
    if (!out || !rt)
        return bl_err(BOXLITE_EINVAL, "box create: out and rt are required");
    opts = opts ? opts : &defaults;
    if (opts->version >= 1 && opts->version <= 3) { /* an older caller's struct ends early */
        memcpy(&v2, opts,
               opts->version == 1   ? offsetof(boxlite_box_options, allow_net)
               : opts->version == 2 ? offsetof(boxlite_box_options, no_main)
                                    : offsetof(boxlite_box_options, secrets));
        v2.version = BOXLITE_BOX_OPTIONS_VERSION;
        opts = &v2;
    }
    rc = bl_box_options_check(opts);
    if (rc == 0)
        rc = bl_random_id(id);
    t_img0 = bl_now_ms();
    if (rc == 0)
        rc = bl_image_open(&img, rt, opts->image);
    t_img1 = bl_now_ms();
    if (rc == 0)
        rc = box_new(&box, rt, id);
    if (rc != 0)
        goto out;
    memcpy(box->row.id, id, sizeof(id));
    box->image = img;
    img = NULL;
    rc = bl_box_row_fill(&box->row, id, opts, box->image->ref);
    if (rc == 0) {
        box->row.image_id = strdup(box->image->id);
        box->row.image_rootfs = strdup(box->image->rootfs);
        if (!box->row.image_id || !box->row.image_rootfs)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc != 0)
        goto out;
    t_fs0 = bl_now_ms();
    rc = bl_box_stage(rt, id, &staged, &lock_fd);
    if (rc == 0) {
        disk = bl_strdupf("%s/disk.qcow2", staged);
        rc = disk ? make_disk(disk, box->image->base_path, opts->disk_size_gb)
                  : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    t_fs1 = bl_now_ms();
    if (rc == 0 && opts->n_secrets)
        rc = write_secrets(staged, opts);
    if (rc == 0) {
        published = 1;
        rc = bl_box_publish(rt, &box->row, staged);
    }
out:
    bl_image_free(img);
    if (rc != 0 && staged)
        bl_box_abandon(rt, published ? id : NULL, staged, rc);
    if (lock_fd >= 0)
        close(lock_fd);
    free(staged);
    free(disk);
    if (rc != 0) {
        if (box)
            box_release(box);
        bl_err_wrap(rc, "create box");
    } else {
        boxlite_box_timing *t = &box->timing;
        int64_t end = bl_now_ms();
        bl_timing_add(&t->image_prepare_ms, t_img0, t_img1);
        bl_timing_add(&t->filesystem_setup_ms, t_fs0, t_fs1);
        bl_timing_add(&t->box_config_ms, t0, t_img0);    /* options checked */
        bl_timing_add(&t->box_config_ms, t_img1, t_fs0); /* the row filled */
        bl_timing_add(&t->box_config_ms, t_fs1, end);    /* secrets written, published */
        bl_timing_add(&t->create_ms, t0, end);
        *out = box;
    }
    return rc;
}

BOXLITE_API int boxlite_box_get(boxlite_box **out, boxlite_runtime *rt, const char *id_or_name)
{
    struct bl_box_row row;
    boxlite_box *box = NULL;
    int rc;

    bl_err_clear();
    if (!out || !rt || !id_or_name)
        return bl_err(BOXLITE_EINVAL, "box get: bad arguments");
    bl_box_sweep_expired(rt->db, rt->home, NULL); /* auto_delete that came due */
    rc = bl_db_box_get(rt->db, id_or_name, &row);
    if (rc == 0)
        rc = box_new(&box, rt, row.id);
    if (rc != 0) {
        if (rc != BOXLITE_ENOTFOUND)
            bl_err_wrap(rc, "get box %s", id_or_name);
        return rc;
    }
    box->row = row;
    if (access(box->dir, F_OK) != 0) /* a crash between its row and its directory */
        bl_box_repair_new(rt, NULL);
    if ((!row.image_id || !row.image_rootfs) && bl_box_pin(box) != 0)
        bl_err_clear(); /* retried on first use, which reports it */
    *out = box;
    return 0;
}

/* The directory moves aside to boxes/.rm-<id> first, then the rows go, then the files: a
 * failure before the rows are gone moves it back (the box stays whole); one after leaves a
 * .rm- directory no row names, which repair drops. Never a row whose files are half gone,
 * nor files without a row that nothing marks as removed. */
static int remove_files_and_rows(boxlite_box *box)
{
    char *aside = bl_strdupf("%s/boxes/.rm-%s", box->rt->home, box->row.id);
    int rc = aside ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory"), moved = 0, lock_fd = -1;

    if (rc == 0 && access(box->dir, F_OK) == 0) /* held while moved aside: repair waits */
        rc = bl_box_lock(box, &lock_fd);
    if (rc == 0 && rename(box->dir, aside) == 0)
        moved = 1;
    else if (rc == 0 && errno != ENOENT) /* ENOENT: its files are gone already */
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", box->dir);
    bl_test_crash("box-remove:aside");
    if (rc == 0)
        rc = bl_db_snap_delete_box(box->rt->db, box->row.id);
    if (rc == 0)
        rc = bl_db_box_delete(box->rt->db, box->row.id);
    if (rc == BOXLITE_ENOTFOUND)
        rc = 0;
    if (rc != 0 && moved)
        rename(aside, box->dir); /* should this fail too, repair moves it back */
    if (lock_fd >= 0)
        close(lock_fd);
    if (rc == 0 && moved)
        rc = bl_rm_rf(aside);
    free(aside);
    return rc;
}

BOXLITE_API int boxlite_box_remove(boxlite_box *box, int force)
{
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (box->removed)
        return 0;
    rc = bl_box_reload(box);
    if (rc == 0 && bl_box_live_state(box->row.state) &&
        bl_monitor_alive(box->rt->home, box->row.id)) {
        if (!force)
            return bl_err(BOXLITE_ESTATE, "box %s is running: stop it first, or remove with force",
                          box->row.id);
        /* its disk goes next: never while a VM that did not stop may still write it */
        rc = boxlite_box_stop_v2(NULL, box, 2000);
        if (rc != 0)
            return bl_err_wrap(rc, "remove box %s", box->row.id);
    }
    if (!box->removed) {
        char deps[512];
        if (bl_db_box_dependents(box->rt->db, box->row.id, NULL, deps, sizeof(deps)) > 0)
            return bl_err(BOXLITE_ESTATE,
                          "box %s cannot be removed: the disks of boxes %s rest on its "
                          "snapshots (remove them first)",
                          box->row.id, deps);
        rc = remove_files_and_rows(box);
    }
    if (rc == 0)
        box->removed = 1;
    else
        bl_err_wrap(rc, "remove box %s", box->row.id);
    return rc;
}

BOXLITE_API void boxlite_box_free(boxlite_box *box)
{
    if (!box)
        return;
    box_release(box); /* closing the lifeline stops a box this handle booted */
}
