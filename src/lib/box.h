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
};

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
