/* start.c — booting a box: the QEMU command line from its row, the boot through the monitor
 * (with the KVM to TCG fallback), attaching to a running box, the per-box lock. */
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "error.h"
#include "image.h"
#include "monitor.h"
#include "runtime.h"
#include "util.h"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS 60000

static int boot_timeout_ms(void)
{
    const char *env = getenv("BOXLITE_BOOT_TIMEOUT_MS");
    long v = env ? strtol(env, NULL, 10) : 0;

    return v > 0 && v < 3600000 ? (int)v : BOOT_TIMEOUT_MS;
}

int bl_box_attach(boxlite_box *box)
{
    char label[64];
    int fd = -1;
    int rc;

    if (box->conn && !box->conn->closed)
        return 0;
    bl_box_conn_drop(box);
    box->conn = NULL;
    rc = bl_monitor_connect(&fd, box->dir);
    snprintf(label, sizeof(label), "box %s", box->row.id);
    if (rc == 0)
        rc = bl_conn_open(&box->conn, fd, label);
    if (rc == 0)
        rc = bl_conn_wait_hello(box->conn, bl_now_ms() + 10000, NULL, NULL);
    if (rc != 0) {
        bl_box_conn_drop(box);
        box->conn = NULL;
    }
    return rc;
}

/* The jail bind-mounts the console file, so it must exist before QEMU opens it. */
static int vm_argv(boxlite_box *box, char ***out, char ***jail_out, int *kvm_out)
{
    struct bl_vm_config cfg = {0};
    char *qemu = NULL, *kernel = NULL, *initrd = NULL, *console = NULL, *disk = NULL, *ram;
    const char *why_tcg = NULL;
    char mac[18];
    int rc;

    rc = bl_vmm_pick_accel(&cfg.kvm, &why_tcg, box->rt->accel);
    if (rc == 0 && cfg.kvm && box->rt->kvm_broken) {
        cfg.kvm = 0;
        why_tcg = NULL; /* already said */
    }
    if (rc == 0)
        rc = bl_find_program(&qemu, "qemu-system-x86_64", "BOXLITE_QEMU");
    if (rc == 0)
        rc = bl_runtime_guest_file(&kernel, box->rt, "vmlinux");
    if (rc == 0)
        rc = bl_runtime_guest_file(&initrd, box->rt, "initramfs.cpio.gz");
    console = bl_strdupf("%s/console.sock", box->dir); /* the shim's: src/shim/console.c */
    if (rc == 0 && !console)
        rc = BOXLITE_ENOMEM;
    if (rc == 0 && why_tcg && !box->rt->accel_noticed) {
        box->rt->accel_noticed = 1;
        bl_log(box->rt, BL_LOG_WARN, "KVM unavailable (%s): using " BL_TCG_NOTICE, why_tcg);
    }
    cfg.qemu = qemu;
    cfg.kernel = kernel;
    cfg.initrd = initrd;
    if (rc == 0)
        rc = bl_box_layerize(box);
    disk = rc == 0 ? realpath(box->disk, NULL) : NULL;
    if (rc == 0 && !disk)
        rc = bl_err_errno(BOXLITE_EIO, errno, "resolve %s", box->disk);
    cfg.disk = disk;
    cfg.console = console;
    cfg.hostname = box->row.name ? box->row.name : box->row.id;
    bl_box_mac(box->row.id, mac);
    cfg.mac = mac;
    cfg.incoming = box->incoming != NULL;
    /* guest RAM: a full snapshot's file mapped privately, or the box's own (vmm.h) */
    cfg.ram_private = box->incoming_ram != NULL;
    ram = cfg.ram_private ? strdup(box->incoming_ram) : bl_strdupf("%s/ram", box->dir);
    cfg.ram = ram;
    if (rc == 0 && !ram)
        rc = BOXLITE_ENOMEM;
    if (rc == 0 && !cfg.ram_private)
        rc = bl_vmm_ram_create(ram, box->row.memory_mib);
    cfg.cpus = box->row.cpus;
    cfg.memory_mib = box->row.memory_mib;
    cfg.network_disabled = box->row.network_disabled;
    cfg.ports = box->row.network_disabled ? NULL : box->row.ports;
    cfg.volumes = box->row.volumes;
    if (rc == 0)
        rc = bl_box_check_ports_free(&box->row);
    if (rc == 0)
        rc = bl_box_check_volumes_exist(&box->row);
    if (rc == 0)
        rc = bl_vmm_argv(out, &cfg);
    if (rc == 0)
        rc = bl_vmm_jail_specs(jail_out, &cfg);
    *kvm_out = cfg.kvm;
    free(disk);
    free(ram);
    free(qemu);
    free(kernel);
    free(initrd);
    free(console);
    return rc;
}

/* Boot once; *kvm_out says which accelerator was tried, *code_out the monitor's report code
 * (BL_SHIM_E_QEMU_EXITED: QEMU ended by itself during the boot). The accelerator a box booted
 * with is kept in its row (box info's accel). */
static int boot_once(boxlite_box *box, int detached, int *kvm_out, enum bl_shim_code *code_out)
{
    struct bl_monitor_start m = {0};
    char **argv = NULL, **jail = NULL;
    int life[2] = {-1, -1};
    int rc;

    *code_out = BL_SHIM_E_SETUP;
    rc = vm_argv(box, &argv, &jail, kvm_out);
    if (rc == 0 && !detached && pipe2(life, O_CLOEXEC) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "pipe");
    if (rc != 0)
        goto out;
    m.home = box->rt->home;
    m.id = box->row.id;
    m.qemu_argv = argv;
    m.lifeline_fd = life[0];
    m.auto_remove = box->row.auto_remove;
    m.boot_timeout_ms = boot_timeout_ms();
    m.incoming = box->incoming;
    m.jail = jail;
    rc = bl_monitor_start(code_out, &m);
    if (rc == 0)
        rc = bl_db_box_set_accel(box->rt->db, box->row.id, *kvm_out ? "kvm" : "tcg");
    if (rc == 0) {
        box->lifeline_fd = life[1];
        life[1] = -1;
        rc = bl_box_attach(box);
    }
out:
    if (life[0] >= 0)
        close(life[0]);
    if (life[1] >= 0)
        close(life[1]);
    bl_strv_free(argv);
    bl_strv_free(jail);
    return rc;
}

/* Boot; when KVM was picked by itself and QEMU cannot run under it (a broken nested setup
 * opens /dev/kvm fine and then aborts), say so once and boot under TCG instead. When KVM is
 * required, that failure is the answer: no fallback. */
static int boot(boxlite_box *box, int detached)
{
    int required = bl_vmm_kvm_required(box->rt->accel);
    struct bl_image *img = NULL;
    int kvm = 0;
    enum bl_shim_code code = BL_SHIM_E_SETUP;
    int rc = bl_box_image(box, &img); /* the image must still be there */

    if (rc == 0)
        rc = boot_once(box, detached, &kvm, &code);
    if (rc != 0 && kvm && code == BL_SHIM_E_QEMU_EXITED && required)
        rc = bl_err_wrap(rc, "KVM is required and QEMU could not run under it (no fallback to "
                             "TCG emulation)");
    if (rc != 0 && kvm && code == BL_SHIM_E_QEMU_EXITED && !required) {
        /* Only the notice reads QEMU's words: its first message is the reason
         * ("qemu-system-x86_64: <why> qemu-system-..."). */
        const char *tag = "qemu-system-x86_64: ";
        const char *why = strstr(boxlite_error_last(), tag);
        const char *next;
        why = why ? why + strlen(tag) : boxlite_error_last();
        next = strstr(why, " qemu-system-x86_64:");
        bl_log(box->rt, BL_LOG_WARN, "KVM is unusable here (QEMU: %.*s): using " BL_TCG_NOTICE,
               (int)(next ? (size_t)(next - why) : strlen(why)), why);
        box->rt->kvm_broken = 1;
        bl_box_transition(box->rt->db, box->row.id, BL_BOX_CONFIGURED, 0, 0, "");
        rc = boot_once(box, detached, &kvm, &code);
    }
    return rc;
}

/* One starter at a time per box, across processes. */
int bl_box_lock(boxlite_box *box, int *fd_out)
{
    char *path = bl_strdupf("%s/lock", box->dir);
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    int rc = 0;

    if (fd < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", path ? path : box->dir);
    while (rc == 0 && flock(fd, LOCK_EX) != 0)
        if (errno != EINTR)
            rc = bl_err_errno(BOXLITE_EIO, errno, "lock %s", path);
    free(path);
    if (rc == 0)
        *fd_out = fd;
    else if (fd >= 0)
        close(fd);
    return rc;
}

static int start_locked(boxlite_box *box, int detached)
{
    int rc = bl_box_reload(box);

    if (rc != 0)
        return rc;
    if (bl_box_live_state(box->row.state) && bl_monitor_alive(box->rt->home, box->row.id)) {
        if (strcmp(box->row.state, "stopping") == 0)
            return bl_err(BOXLITE_ESTATE, "box %s is stopping", box->row.id);
        return bl_box_attach(box);
    }
    bl_box_repair_row(box->rt, &box->row, NULL);
    bl_snapshot_repair_locked(box); /* what a crash left in its snapshots and layers */
    return boot(box, detached || box->row.detach);
}

static int start(boxlite_box *box, int detached)
{
    int lock_fd = -1;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (box->removed)
        return bl_err(BOXLITE_ENOTFOUND, "box %s has been removed", box->row.id);
    if (box->conn && !box->conn->closed)
        return 0;
    rc = bl_box_lock(box, &lock_fd);
    if (rc == 0) {
        rc = start_locked(box, detached);
        close(lock_fd);
    }
    bl_box_reload(box);
    if (rc != 0)
        bl_err_wrap(rc, "start box %s", box->row.id);
    return rc;
}

BOXLITE_API int boxlite_box_start(boxlite_box *box)
{
    return start(box, 0);
}

BOXLITE_API int boxlite_box_start_detached(boxlite_box *box)
{
    return start(box, 1);
}

int bl_box_conn(boxlite_box *box, struct bl_conn **out)
{
    int rc = 0;

    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (!box->conn || box->conn->closed) {
        rc = bl_box_reload(box);
        if (rc == 0 && strcmp(box->row.state, "running") != 0)
            rc = bl_err(BOXLITE_ESTATE, "box %s is %s", box->row.id, box->row.state);
        if (rc == 0)
            rc = bl_box_attach(box);
    }
    if (rc == 0)
        *out = box->conn;
    return rc;
}
