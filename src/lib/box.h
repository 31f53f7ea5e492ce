/* box.h — a box as the library holds it: its stored row, its image, its directory and disk,
 * and while it runs the channel to its monitor (and the lifeline if this handle booted it). */
#ifndef BL_BOX_H
#define BL_BOX_H

#include "boxlite.h"
#include "db.h"

struct bl_conn;
struct bl_image;

struct boxlite_box {
    boxlite_runtime *rt;
    struct bl_box_row row;  /* as last read from the store */
    struct bl_image *image; /* opened on first start/exec: base and config */
    char *dir;              /* $HOME/boxes/<id> */
    char *disk;             /* dir/disk.qcow2 */
    struct bl_conn *conn;   /* to the monitor, while attached */
    int lifeline_fd;        /* write end held while this handle's boot is not detached */
    int removed;
    const char *incoming; /* set for the next boot only: restore this memory file */
};

/* One starter (or snapshot operation) at a time per box, across processes: *fd_out holds
 * the lock until closed. */
int bl_box_lock(boxlite_box *box, int *fd_out);

/* Reload the row from the store. */
int bl_box_reload(boxlite_box *box);

/* 1 when the box runs (its monitor is alive). */
int bl_box_running(boxlite_box *box);

/* The box's MAC address (from its id) into out[18]. */
void bl_box_mac(const char *id, char out[18]);

/* Make disk.qcow2 a symlink to layers/<id>.qcow2 if it is still a plain file (box stopped,
 * locked): layers keep their names while QEMU runs on them (snapshot.c). */
int bl_box_layerize(boxlite_box *box);

/* The backing file name in a qcow2 header ("" when none); -1 when not a readable qcow2
 * (snapshot.c). */
int bl_qcow2_backing(const char *path, char *out, size_t cap);

/* Clean what a crash left in the box's snapshots (snapshot.c; box not running). */
void bl_snapshot_repair(boxlite_box *box);

/* Finish or drop boxes a crash left half made (boxes/.new-<id>) (snapshot.c). */
void bl_box_repair_new(boxlite_runtime *rt);

/* The running box's channel (borrowed), attaching to its monitor if needed, or
 * BOXLITE_ESTATE when it is not running. */
int bl_box_conn(boxlite_box *box, struct bl_conn **out);

/* The box's image (borrowed), opened on first use. */
int bl_box_image(boxlite_box *box, struct bl_image **out);

/* boxlite_exec_start with extra BL_EXEC_* flags (BL_EXEC_BUILTIN for the copy built-ins). */
int bl_exec_start_flags(boxlite_exec **out, boxlite_box *box, const boxlite_exec_options *opts,
                        uint32_t flags);

/* Mark boxes whose monitor died as failed (runtime open). */
void bl_box_repair_all(boxlite_runtime *rt);

#endif
