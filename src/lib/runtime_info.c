/* runtime_info.c — boxlite_runtime_get_info: what a runtime is (versions, where its files are,
 * the accelerator a box started now gets) and what its store holds and takes on disk; the
 * facts behind `boxlite info` and Python's boxlite.info(). */
#include "api.h"
#include "db.h"
#include "error.h"
#include "monitor.h"
#include "runtime.h"
#include "util.h"
#include "vmm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* "7.2.19" of "QEMU emulator version 7.2.19 (Debian ...)". */
static void qemu_version(char *dst, size_t cap, const char *qemu)
{
    const char *argv[] = {qemu, "-version", NULL};
    char *text = NULL, *v;

    dst[0] = '\0';
    if (bl_run_tool_output(&text, argv, 4096) == 0 && (v = strstr(text, "version ")) != NULL)
        snprintf(dst, cap, "%.*s", (int)strcspn(v + 8, " \n"), v + 8);
    free(text);
    bl_err_clear();
}

static void paths(boxlite_runtime_info *out, boxlite_runtime *rt)
{
    char *qemu = NULL, *shim = NULL, *kv = NULL, *text = NULL;
    size_t len = 0;

    put(out->home, sizeof(out->home), rt->home);
    put(out->guest_dir, sizeof(out->guest_dir), rt->guest_dir);
    if (bl_runtime_guest_file(&kv, rt, "kernel-version") == 0 &&
        bl_read_file(&text, &len, kv, sizeof(out->kernel_version) - 1) == 0)
        snprintf(out->kernel_version, sizeof(out->kernel_version), "%.*s", (int)strcspn(text, "\n"),
                 text);
    if (bl_find_program(&qemu, "qemu-system-x86_64", "BOXLITE_QEMU") == 0 &&
        access(qemu, X_OK) == 0) { /* $BOXLITE_QEMU is taken as it is: look */
        put(out->qemu, sizeof(out->qemu), qemu);
        qemu_version(out->qemu_version, sizeof(out->qemu_version), qemu);
    }
    if (bl_monitor_find_shim(&shim) == 0)
        put(out->shim, sizeof(out->shim), shim);
    free(qemu);
    free(shim);
    free(kv);
    free(text);
    bl_err_clear(); /* what is missing stays "" */
}

static void accel(boxlite_runtime_info *out, boxlite_runtime *rt)
{
    const char *why = NULL;
    int kvm = 0;

    if (bl_vmm_pick_accel(&kvm, &why, rt->accel) != 0) {
        put(out->accel_reason, sizeof(out->accel_reason), boxlite_error_last());
        bl_err_clear();
    } else if (!kvm) {
        put(out->accel_reason, sizeof(out->accel_reason),
            why ? why : "asked for (the accel option or BOXLITE_ACCEL)");
    }
    if (kvm && rt->kvm_broken) {
        kvm = 0;
        put(out->accel_reason, sizeof(out->accel_reason), "KVM failed in this process");
    }
    put(out->accel, sizeof(out->accel), kvm ? "kvm" : "tcg");
    out->hardware_isolated = kvm;
}

static int store(boxlite_runtime_info *out, boxlite_runtime *rt)
{
    struct bl_box_row *rows = NULL;
    struct bl_image_record *images = NULL;
    boxlite_template_info *t = NULL;
    size_t nb = 0, ni = 0, nt = 0;
    char *dir;
    int rc = bl_db_box_list(rt->db, &rows, &nb);

    if (rc == 0)
        rc = bl_db_image_list(rt->db, &images, &ni);
    if (rc == 0)
        rc = boxlite_template_list(&t, &nt, rt, BOXLITE_TEMPLATE_INFO_VERSION);
    out->boxes = (unsigned)nb;
    out->images = (unsigned)ni;
    out->templates = (unsigned)nt;
    if ((dir = bl_strdupf("%s/boxes", rt->home)) != NULL)
        out->boxes_bytes = bl_du(dir);
    free(dir);
    if ((dir = bl_strdupf("%s/images", rt->home)) != NULL)
        out->images_bytes = bl_du(dir);
    free(dir);
    if ((dir = bl_strdupf("%s/templates", rt->home)) != NULL)
        out->templates_bytes = bl_du(dir);
    free(dir);
    bl_box_rows_free(rows, nb);
    bl_image_records_free(images, ni);
    boxlite_template_list_free(t, nt);
    return rc;
}

BOXLITE_API int boxlite_runtime_get_info(boxlite_runtime_info *out, boxlite_runtime *rt)
{
    unsigned version;
    int rc;

    bl_err_clear();
    if (!out || !rt)
        return bl_err(BOXLITE_EINVAL, "runtime info: out and rt are required");
    version = out->version;
    rc = bl_check_version(version, BOXLITE_RUNTIME_INFO_VERSION, "runtime info");
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->version = version;
    put(out->boxlite_version, sizeof(out->boxlite_version), boxlite_version());
    paths(out, rt);
    accel(out, rt);
    rc = store(out, rt);
    return rc == 0 ? 0 : bl_err_wrap(rc, "runtime info");
}
