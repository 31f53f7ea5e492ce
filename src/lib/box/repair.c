/* repair.c — crash repair of boxes: a row the store calls running whose monitor is gone,
 * boxes a crash left staged (boxes/.new-<id>), and the checks of boxlite doctor over every
 * box (directory, pin, base, snapshots). */
#include "box.h"
#include "boxstate.h"
#include "db.h"
#include "error.h"
#include "monitor.h"
#include "runtime.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A box the store calls running whose monitor is gone: record it as failed. 1 when so. */
int bl_box_repair_row(boxlite_runtime *rt, const struct bl_box_row *row, struct bl_repair *rp)
{
    if (!bl_box_live_state(row->state) || bl_monitor_alive(rt->home, row->id))
        return 0;
    if (bl_repair_note(rp, 1, row->id, "recorded %s, but its monitor is gone", row->state))
        bl_box_transition(rt->db, row->id, BL_BOX_FAILED, 0, 0,
                          "the box monitor (boxlite-shim) died; the VM was stopped");
    return 1;
}

/* Everything about one box that doctor checks (box from its row, not live). */
static void doctor_box(boxlite_box *box, struct bl_repair *rp)
{
    struct stat st;

    if (stat(box->dir, &st) != 0) {
        bl_repair_note(rp, 0, box->row.id, "recorded, but its directory %s is gone", box->dir);
        return;
    }
    if ((!box->row.image_id || !box->row.image_rootfs) &&
        bl_repair_note(rp, 1, box->row.id, "not pinned to its image yet") && bl_box_pin(box) != 0)
        bl_repair_note(rp, 0, box->row.id, "cannot be pinned: %s", boxlite_error_last());
    if (box->row.image_rootfs && *box->row.image_rootfs) {
        char *base = bl_strdupf("%s/images/rootfs/%s.ext4", box->rt->home, box->row.image_rootfs);
        if (base && access(base, R_OK) != 0)
            bl_repair_note(rp, 0, box->row.id, "the image base its disk rests on is gone: %s",
                           base);
        free(base);
    }
    bl_snapshot_repair(box, rp);
}

/* A box directory no row names (not staged, not moved aside): reported, never removed — it
 * may be all that is left of a box whose record was lost. */
static void doctor_unrecorded(boxlite_runtime *rt, const struct bl_box_row *rows, size_t n,
                              struct bl_repair *rp)
{
    char *boxes = bl_strdupf("%s/boxes", rt->home);
    DIR *d = boxes ? opendir(boxes) : NULL;
    struct dirent *e;

    while (d && (e = readdir(d)) != NULL) {
        size_t i = 0;
        if (e->d_name[0] == '.')
            continue;
        while (i < n && strcmp(rows[i].id, e->d_name) != 0)
            i++;
        if (i == n)
            bl_repair_note(rp, 0, "",
                           "%s/%s: a box directory no record names (kept: move it "
                           "away or remove it by hand)",
                           boxes, e->d_name);
    }
    if (d)
        closedir(d);
    free(boxes);
}

void bl_box_doctor(boxlite_runtime *rt, struct bl_repair *rp)
{
    struct bl_box_row *rows = NULL;
    size_t n = 0;

    bl_box_repair_new(rt, rp); /* first: a half-made box may be finished */
    if (bl_db_box_list(rt->db, &rows, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        boxlite_box *box = NULL;
        bl_box_repair_row(rt, &rows[i], rp);
        if (boxlite_box_get(&box, rt, rows[i].id) == 0 && !bl_box_live_state(box->row.state))
            doctor_box(box, rp);
        boxlite_box_free(box);
    }
    doctor_unrecorded(rt, rows, n, rp);
    bl_box_rows_free(rows, n);
    bl_err_clear();
}

/* A box remove moved aside (boxes/.rm-<id>, box.c): with its row still there, the remove
 * failed before the rows went, so it moves back; without, the files go. */
static void repair_removed(boxlite_runtime *rt, const char *boxes, const char *name,
                           struct bl_repair *rp)
{
    char *dir = bl_strdupf("%s/%s", boxes, name);
    char *final = bl_strdupf("%s/%s", boxes, name + 4);
    char *lock = bl_strdupf("%s/%s/lock", boxes, name);
    int fd = lock ? open(lock, O_RDWR | O_CLOEXEC) : -1;
    struct bl_box_row row;
    int got = BOXLITE_ESTATE; /* neither found nor missing: left alone */

    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0) /* locked: a remove under way */
        got = bl_db_box_get(rt->db, name + 4, &row);
    if (got == 0) {
        bl_box_row_clear(&row);
        if (dir && final && access(final, F_OK) != 0 &&
            bl_repair_note(rp, 1, name + 4, "a failed remove left it moved aside"))
            rename(dir, final);
    } else if (got == BOXLITE_ENOTFOUND && dir &&
               bl_repair_note(rp, 1, "", "%s: left half removed", name)) {
        bl_rm_rf(dir);
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    free(final);
    free(lock);
}

/* Staged boxes (bl_box_stage) a crash left: with a row, finish the publish; without, drop
 * them. Locked ones are being made: left alone. */
void bl_box_repair_new(boxlite_runtime *rt, struct bl_repair *rp)
{
    char *boxes = bl_strdupf("%s/boxes", rt->home);
    DIR *d = boxes ? opendir(boxes) : NULL;
    struct dirent *e;

    while (d && (e = readdir(d)) != NULL) {
        char *dir, *lock, *final;
        struct bl_box_row row;
        int fd;
        if (strncmp(e->d_name, ".rm-", 4) == 0) {
            repair_removed(rt, boxes, e->d_name, rp);
            continue;
        }
        if (strncmp(e->d_name, ".new-", 5) != 0 && strncmp(e->d_name, ".export-", 8) != 0)
            continue;
        dir = bl_strdupf("%s/%s", boxes, e->d_name);
        lock = bl_strdupf("%s/%s/lock", boxes, e->d_name);
        final = bl_strdupf("%s/%s", boxes, e->d_name + 5);
        fd = lock ? open(lock, O_RDWR | O_CLOEXEC) : -1;
        if (dir && final && (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)) {
            if (e->d_name[1] == 'n' && bl_db_box_get(rt->db, e->d_name + 5, &row) == 0) {
                if (bl_repair_note(rp, 1, row.id, "made, but not moved into place"))
                    rename(dir, final); /* recorded: finish */
                bl_box_row_clear(&row);
            } else if (bl_repair_note(rp, 1, "", "%s: left half made", e->d_name)) {
                bl_rm_rf(dir);
            }
        }
        if (fd >= 0)
            close(fd);
        free(dir);
        free(lock);
        free(final);
    }
    if (d)
        closedir(d);
    free(boxes);
    bl_err_clear();
}
