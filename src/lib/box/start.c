/* start.c — booting a box: the QEMU command line from its row, the boot through the monitor
 * (with the KVM to TCG fallback), attaching to a running box, the per-box lock. */
#include "box.h"
#include "boxstate.h"
#include "bounds.h"
#include "conn.h"
#include "db.h"
#include "error.h"
#include "image.h"
#include "monitor.h"
#include "proto.h"
#include "runtime.h"
#include "secrets.h"
#include "spare.h"
#include "template.h"
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
#define MAIN_START_MS   10000 /* the shim starts a main process after a template's attach */

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

/* A box that maps saved RAM has no RAM file of its own: one an earlier boot left (a
 * template's build boot ends with its monitor killed) would only take disk space. */
static void drop_own_ram(const boxlite_box *box)
{
    char *own = bl_strdupf("%s/ram", box->dir);

    if (own)
        (void)unlink(own);
    free(own);
}

/* A spare of t's RAM file (template/spare.h) as the box's RAM file ram; 0 when taken. The old
 * file is removed first: ext4 writes a file's delayed data out before a rename replaces
 * another file (auto_da_alloc), and a 70 MiB flush then stalled the start's next fsync. */
static int take_spare(const struct bl_tmpl *t, const char *ram)
{
    (void)unlink(ram);
    return bl_spare_take(t->dir, ram);
}

/* Guest RAM (vmm.h): a cold box's own file, mapped shared. A box restored from a warm template
 * or a full snapshot maps that saved RAM file itself, copy-on-write, when its QEMU can open it
 * read-only (x-cow, our QEMU: clean pages shared by every box started from it, and no QEMU
 * can write it; a full snapshot of such a box is the file plus the pages it wrote, which the
 * shim reads from QEMU's /proc, so forks of it share again). Otherwise it gets its own sparse
 * copy (boxes/<id>/ram), mapped shared like a cold box's, the stream skipping it: stock QEMU
 * 7.2 opens even a private mapping's file read-write, so mapping the saved file itself would
 * let a compromised QEMU write what every box started from it reads — unless
 * BOXLITE_SHARED_RAM=1 asks for exactly that (docs/security.md). A template's copy is a spare
 * made ahead (template/spare.h: renamed in, t->refill asks the shim for the next), or when
 * there is none made empty here and filled by the shim while QEMU starts: *fill_out names
 * the file to fill it from. *ram_out, *fill_out malloc'd. */
static int guest_ram(boxlite_box *box, struct bl_tmpl *t, int from_template,
                     struct bl_vm_config *cfg, char **ram_out, char **fill_out)
{
    char *src = box->incoming_ram ? strdup(box->incoming_ram)
                : from_template   ? bl_strdupf("%s/ram", t->dir)
                                  : NULL;
    char *ram = NULL;
    int rc = 0, saved = box->incoming_ram != NULL || from_template;

    if (saved && !src)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else if (saved && (cfg->ram_cow = bl_vmm_qemu_has_cow(cfg->qemu)) != 0)
        ram = src, src = NULL, cfg->ram_private = 1, drop_own_ram(box);
    else if (saved && bl_limit(BL_LIMIT_SHARED_RAM) != 0)
        ram = src, src = NULL, cfg->ram_private = 1;
    else if ((ram = bl_strdupf("%s/ram", box->dir)) != NULL && saved && !from_template)
        rc = bl_copy_file_sparse(src, ram, 0600, BL_COPY_NOSYNC), cfg->ram_loaded = 1;
    else if (ram && from_template && take_spare(t, ram) == 0)
        cfg->ram_loaded = 1;
    else if (ram)
        rc = bl_vmm_ram_create(ram, box->row.memory_mib);
    if (rc == 0 && ram && from_template && !cfg->ram_private && !cfg->ram_loaded) {
        cfg->ram_loaded = 1; /* once the shim filled it */
        *fill_out = src;
        src = NULL;
    }
    if (from_template && !cfg->ram_private)
        t->refill = 1; /* the shim makes the next spare */
    if (rc == 0 && !ram)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    free(src);
    cfg->ram = ram;
    *ram_out = ram;
    return rc;
}

/* The jail bind-mounts the console file, so it must exist before QEMU opens it. */
static int vm_argv(boxlite_box *box, char ***out, char ***jail_out, int *kvm_out, struct bl_tmpl *t,
                   char **fill_out, int64_t *layer_ms)
{
    const char *tmpl_memory = NULL;
    struct bl_vm_config cfg = {0};
    char *qemu = NULL, *kernel = NULL, *initrd = NULL, *console = NULL, *disk = NULL, *ram = NULL;
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
    *layer_ms = bl_now_ms();
    if (rc == 0)
        rc = bl_box_layerize(box);
    *layer_ms = bl_now_ms() - *layer_ms;
    bl_timing_add(&box->timing.guest_rootfs_ms, 0, *layer_ms);
    disk = rc == 0 ? realpath(box->disk, NULL) : NULL;
    if (rc == 0 && !disk)
        rc = bl_err_errno(BOXLITE_EIO, errno, "resolve %s", box->disk);
    cfg.disk = disk;
    cfg.console = console;
    cfg.hostname = box->row.name ? box->row.name : box->row.id;
    bl_box_mac(box->row.id, mac);
    cfg.mac = mac;
    cfg.incoming = box->incoming != NULL;
    cfg.cpus = box->row.cpus;
    cfg.memory_mib = box->row.memory_mib;
    cfg.network_disabled = box->row.network_disabled;
    cfg.ports = box->row.network_disabled ? NULL : box->row.ports;
    cfg.volumes = box->row.volumes;
    if (rc == 0 && !box->incoming) /* a warm template: docs/templates.md */
        rc = bl_template_prepare(t, box, &cfg, &tmpl_memory);
    if (rc == 0 && tmpl_memory)
        box->incoming = tmpl_memory; /* for this boot only: boot_once clears it */
    if (rc == 0)
        rc = guest_ram(box, t, tmpl_memory != NULL, &cfg, &ram, fill_out);
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

/* The box's main process (entrypoint + cmd, the box's else the image's) as an EXEC request in
 * boxes/<id>/main.req for its monitor (--main). *path_out stays NULL when the box runs none:
 * created with no_main, or neither it nor its image names a command. */
static int write_main_req(boxlite_box *box, char **path_out)
{
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
    struct bl_wbuf w = {0};
    struct bl_image *img = NULL;
    char **argv = NULL;
    char *path = bl_strdupf("%s/main.req", box->dir);
    int rc = path ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    *path_out = NULL;
    if (rc == 0)
        unlink(path);
    if (rc != 0 || box->row.no_main)
        goto out;
    rc = bl_box_image(box, &img);
    if (rc == 0 && boxlite_box_command(&argv, box, NULL) != 0) {
        bl_err_clear(); /* no command: the box runs without a main process */
        goto out;
    }
    eo.argv = (const char *const *)argv;
    if (rc == 0)
        rc = bl_exec_encode(&w, &eo, 0, img, &box->row);
    if (rc == 0)
        rc = bl_write_file_atomic(path, w.data, w.len, 0600);
    if (rc == 0) {
        *path_out = path;
        path = NULL;
    }
out:
    bl_wbuf_free(&w);
    bl_strv_free(argv);
    free(path);
    return rc;
}

/* A box with secrets restored from a warm template: its guest trusts the box's CA (made by its
 * monitor as it started) once attached. A cold boot's monitor does this itself as the agent
 * first answers (docs/security.md, Secrets). */
static int trust_secrets_ca(boxlite_box *box)
{
    char *sec = bl_strdupf("%s/" BL_SECRETS_FILE, box->dir);
    char *ca = bl_strdupf("%s/secrets-ca.crt", box->dir);
    char *pem = NULL;
    size_t len = 0;
    int rc = sec && ca ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0 && access(sec, F_OK) == 0) {
        rc = bl_read_file(&pem, &len, ca, 64 * 1024);
        if (rc == 0) {
            const char *argv[] = {"trust-ca", pem, NULL};
            rc = bl_snapshot_builtin(box, argv);
        }
        if (rc != 0)
            rc = bl_err_wrap(rc, "make the box trust its secrets CA");
    }
    free(pem);
    free(sec);
    free(ca);
    return rc;
}

/* One boot's stages (box.h's timing): t0 the boot began, layer_ms of it the disk's layering
 * (guest_rootfs), spawn the monitor's fork, answered QEMU's first answer as the monitor saw it
 * (-1: none; on the same monotonic clock), ready its report. */
static void boot_timing(boxlite_box *box, int64_t t0, int64_t layer_ms, int64_t spawn,
                        int64_t answered, int64_t ready)
{
    boxlite_box_timing *t = &box->timing;
    int64_t mid = answered >= spawn && answered <= ready ? answered : spawn;

    bl_timing_add(&t->box_spawn_ms, t0 + layer_ms, mid);
    bl_timing_add(&t->guest_boot_ms, mid, ready);
}

/* Boot once; *kvm_out says which accelerator was tried, *code_out the monitor's report code
 * (BL_SHIM_E_QEMU_EXITED: QEMU ended by itself during the boot). The accelerator a box booted
 * with is kept in its row (box info's accel). */
static int boot_once(boxlite_box *box, int detached, int *kvm_out, enum bl_shim_code *code_out,
                     struct bl_tmpl *t, int *started_out)
{
    struct bl_monitor_start m = {0};
    char **argv = NULL, **jail = NULL, *main_req = NULL, *ram_fill = NULL;
    const char *incoming = box->incoming;
    int life[2] = {-1, -1};
    int64_t t0 = bl_now_ms(), layer_ms = 0, spawn, ready;
    int rc;

    *code_out = BL_SHIM_E_SETUP;
    *started_out = 0;
    rc = vm_argv(box, &argv, &jail, kvm_out, t, &ram_fill, &layer_ms);
    if (rc == 0)
        rc = write_main_req(box, &main_req);
    if (rc == 0) /* this boot's main process has not exited yet */
        rc = bl_db_box_set_exit(box->rt->db, box->row.id, 0, 0);
    if (rc == 0 && !detached && pipe2(life, O_CLOEXEC) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "pipe");
    if (rc != 0)
        goto out;
    m.home = box->rt->home;
    m.id = box->row.id;
    m.qemu_argv = argv;
    m.lifeline_fd = life[0];
    m.auto_remove = box->row.auto_delete < 0 && box->row.auto_remove; /* else auto_delete rules */
    m.main_req = t->mode == BL_TMPL_BUILD ? NULL : main_req; /* a template holds no box's */
    m.boot_timeout_ms = boot_timeout_ms();
    m.incoming = box->incoming;
    m.jail = jail;
    m.ram_fill = ram_fill;
    m.spare_dir = t->mode == BL_TMPL_RESTORE && t->refill ? t->dir : NULL;
    m.tb_idle_ms = *kvm_out || t->mode == BL_TMPL_BUILD ? 0 : bl_vmm_tb_idle_ms();
    spawn = bl_now_ms();
    rc = bl_monitor_start(code_out, &m);
    ready = bl_now_ms();
    boot_timing(box, t0, layer_ms, spawn, m.answered_ms, ready);
    *started_out = 1;
    if (rc == 0)
        rc = bl_db_box_set_accel(box->rt->db, box->row.id, *kvm_out ? "kvm" : "tcg");
    if (rc == 0) {
        box->lifeline_fd = life[1];
        life[1] = -1;
        rc = bl_box_attach(box);
    }
    if (rc == 0)
        rc = bl_template_finish(t, box);
    if (rc == 0 && t->mode == BL_TMPL_RESTORE) /* before the main process, as a cold boot's */
        rc = trust_secrets_ca(box);
    if (rc == 0 && t->mode == BL_TMPL_RESTORE && main_req) /* attached: now it may run */
        rc = bl_conn_monitor(box->conn, BL_MON_MAIN_START, "", MAIN_START_MS);
    if (*started_out)
        bl_timing_add(&box->timing.container_init_ms, ready, bl_now_ms());
out:
    box->incoming = incoming; /* a template's is for this boot only */
    if (life[0] >= 0)
        close(life[0]);
    if (life[1] >= 0)
        close(life[1]);
    bl_strv_free(argv);
    bl_strv_free(jail);
    free(main_req);
    free(ram_fill);
    return rc;
}

/* After a boot that used a template (its monitor started): 1 when it is to be ended and done
 * again. A build ends in a restore; a restore that failed (a template QEMU could not load, an
 * attach that failed) rebuilds the template once, then boots cold like one whose build
 * failed. Not when KVM itself failed: boot() falls back to TCG. */
static int template_again(boxlite_box *box, int rc, int kvm, enum bl_shim_code code,
                          struct bl_tmpl *t)
{
    char why[300];

    if (rc == 0 || t->mode == BL_TMPL_NONE || (kvm && code == BL_SHIM_E_QEMU_EXITED))
        return 0;
    snprintf(why, sizeof(why), "%s", boxlite_error_last());
    bl_template_abort_boot(box);
    if (rc == BL_TMPL_BUILT)
        return 1;
    if (t->mode == BL_TMPL_RESTORE && !t->discarded) {
        bl_template_discard(t, box, why);
        return 1;
    }
    bl_log(box->rt, BL_LOG_WARN, "template %.12s: %s: cold boot without it", t->id, why);
    t->wanted = 0;
    return 1;
}

/* boot_once, again as long as template_again says: at most build, restore (fails), rebuild,
 * restore (fails again), cold boot. */
static int boot_templated(boxlite_box *box, int detached, int *kvm, enum bl_shim_code *code,
                          struct bl_tmpl *t)
{
    int rc = 0, started = 0;

    for (int tries = 0; tries < 5; tries++) {
        rc = boot_once(box, detached, kvm, code, t, &started);
        if (!started || !template_again(box, rc, *kvm, *code, t))
            break;
    }
    return rc == BL_TMPL_BUILT ? bl_err(BOXLITE_ERROR, "the box did not boot from its template")
                               : rc;
}

/* Boot; when KVM was picked by itself and QEMU cannot run under it (a broken nested setup
 * opens /dev/kvm fine and then aborts), say so once and boot under TCG instead. When KVM is
 * required, that failure is the answer: no fallback. */
static int boot(boxlite_box *box, int detached, int cold)
{
    int required = bl_vmm_kvm_required(box->rt->accel);
    struct bl_image *img = NULL;
    struct bl_tmpl t = BL_TMPL_INIT;
    int kvm = 0;
    enum bl_shim_code code = BL_SHIM_E_SETUP;
    int64_t t0 = bl_now_ms();
    int rc = bl_box_image(box, &img); /* the image must still be there */

    bl_timing_add(&box->timing.guest_rootfs_ms, t0, bl_now_ms());
    t.wanted = !cold && !box->incoming && bl_templates_enabled();
    if (rc == 0)
        rc = boot_templated(box, detached, &kvm, &code, &t);
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
        rc = boot_templated(box, detached, &kvm, &code, &t);
    }
    bl_template_clear(&t);
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

static int start_locked(boxlite_box *box, int detached, int cold)
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
    return boot(box, detached || box->row.detach, cold);
}

static int start(boxlite_box *box, unsigned flags)
{
    int64_t t0 = bl_now_ms();
    int lock_fd = -1;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (box->removed)
        return bl_err(BOXLITE_ENOTFOUND, "box %s has been removed", box->row.id);
    if (box->conn && !box->conn->closed)
        return 0; /* already attached: no start, its timing stays */
    bl_timing_clear(&box->timing, 0, 1);
    rc = bl_box_lock(box, &lock_fd);
    if (rc == 0) {
        rc = start_locked(box, (flags & BOXLITE_START_DETACHED) != 0,
                          (flags & BOXLITE_START_COLD) != 0);
        close(lock_fd);
    }
    bl_box_reload(box);
    if (rc != 0)
        bl_err_wrap(rc, "start box %s", box->row.id);
    else
        bl_timing_add(&box->timing.start_ms, t0, bl_now_ms());
    return rc;
}

BOXLITE_API int boxlite_box_start(boxlite_box *box)
{
    return start(box, 0);
}

BOXLITE_API int boxlite_box_start_detached(boxlite_box *box)
{
    return start(box, BOXLITE_START_DETACHED);
}

BOXLITE_API int boxlite_box_start_flags(boxlite_box *box, unsigned flags)
{
    if (flags & ~(unsigned)(BOXLITE_START_DETACHED | BOXLITE_START_COLD))
        return bl_err(BOXLITE_EINVAL, "start: unknown flags 0x%x", flags);
    return start(box, flags);
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
