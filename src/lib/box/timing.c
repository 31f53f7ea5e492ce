/* timing.c — a box handle's stage timing (boxlite_box_get_timing): the stages of its last
 * create and last start, recorded by box.c and start.c where the work happens, on one clock
 * (bl_now_ms, monotonic: the monitor's timestamps are on it too). */
#include "api.h"
#include "box.h"
#include "error.h"
#include "util.h"

#include <string.h>

void bl_timing_clear(boxlite_box_timing *t, int create, int start)
{
    if (create)
        t->image_prepare_ms = t->filesystem_setup_ms = t->box_config_ms = t->create_ms = -1;
    if (start)
        t->guest_rootfs_ms = t->box_spawn_ms = t->guest_boot_ms = t->container_init_ms =
            t->start_ms = -1;
    t->total_create_ms = -1;
}

void bl_timing_add(int64_t *field, int64_t since, int64_t until)
{
    int64_t d = until >= since && since >= 0 ? until - since : -1;

    if (d >= 0)
        *field = (*field < 0 ? 0 : *field) + d;
}

BOXLITE_API int boxlite_box_get_timing(boxlite_box_timing *out, boxlite_box *box)
{
    boxlite_box_timing t;
    unsigned version;
    int rc;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box timing: bad arguments");
    version = out->version;
    rc = bl_check_version(version, BOXLITE_BOX_TIMING_VERSION, "box timing");
    if (rc != 0)
        return rc;
    t = box->timing;
    t.total_create_ms = t.create_ms >= 0 && t.start_ms >= 0 ? t.create_ms + t.start_ms : -1;
    t.version = version;
    memcpy(out, &t, bl_box_timing_size(version)); /* only that version's fields */
    return 0;
}
