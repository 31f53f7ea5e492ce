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
    const char *incoming;      /* set for the next boot only: restore this memory file */
    const char *incoming_ram;  /* with it, the snapshot's RAM file to map privately, or NULL */
    boxlite_box_timing timing; /* its last create's and start's stages (timing.c) */
};

/* Set the create's or the start's stages of t to -1 (not measured) (timing.c). */
void bl_timing_clear(boxlite_box_timing *t, int create, int start);

/* Add until - since (bl_now_ms) to *field, which -1 counts as 0; nothing when since < 0. */
void bl_timing_add(int64_t *field, int64_t since, int64_t until);

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

/* Pin the box to its image when its row does not say yet (box.c): the base from its disk
 * chain, the config from the base's digest (or the store, without pulling). */
int bl_box_pin(boxlite_box *box);

/* Pin every box not pinned yet (rows of an older schema, imported boxes). */
void bl_box_pin_all(boxlite_runtime *rt);

/* A repair pass that reports (boxlite doctor) and mends only with fix. Passes given NULL
 * mend quietly: a box being touched. */
struct bl_repair {
    int fix;
    boxlite_doctor_fn report;
    void *ctx;
    unsigned found;
};

/* Note a finding on box_id ("" for the store); 1 when it is to be mended: mendable, and rp
 * NULL or rp->fix. What cannot be mended (data already lost) is only reported. */
int bl_repair_note(struct bl_repair *rp, int mendable, const char *box_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clean what a crash left in the box's snapshots and layers (snapshot.c; box not running),
 * taking the box's lock; skipped while another process holds it. */
void bl_snapshot_repair(boxlite_box *box, struct bl_repair *rp);
/* The same, the caller holding the box's lock. */
void bl_snapshot_repair_locked(boxlite_box *box);

/* A resumed box's identity fix-up (RNG, clock; with fork also hostname and MAC): the
 * agent's `identity` built-in and its arguments (snapshot.c), shared with warm templates
 * (src/lib/template/, whose `attach` takes the same four); and a built-in run as root. */
struct bl_identity {
    char entropy[129], now[32], mac[18];
    const char *argv[6]; /* "identity", HOST, MAC, ENTROPY-HEX, UNIX-NS; "-" skips a part */
};
void bl_snapshot_identity_args(struct bl_identity *id, boxlite_box *box, int fork);
int bl_snapshot_builtin(boxlite_box *box, const char *const *argv);

/* Start the stopped box from the VM saved in directory sdir (absolute: sdir/memory, the
 * device state — with RAM in it when sdir/ram is absent — and sdir/ram, the guest RAM file,
 * mapped privately: copy-on-write, clean pages shared by every box started from it; the
 * file is never written). Then its identity is fixed up (clock, RNG; with fork also hostname
 * and MAC). flags: BOXLITE_SNAPSHOT_DETACH. The saving side is the shim's shim_save_vm. */
int bl_snapshot_resume(boxlite_box *box, const char *sdir, int flags, int fork);

/* Finish or drop boxes a crash left half made (boxes/.new-<id>) (repair.c). */
void bl_box_repair_new(boxlite_runtime *rt, struct bl_repair *rp);

/* The running box's channel (borrowed), attaching to its monitor if needed, or
 * BOXLITE_ESTATE when it is not running. */
int bl_box_conn(boxlite_box *box, struct bl_conn **out);

/* The box's image (borrowed), opened on first use. */
int bl_box_image(boxlite_box *box, struct bl_image **out);

/* boxlite_exec_start with extra BL_EXEC_* flags (BL_EXEC_BUILTIN for the copy built-ins). */
int bl_exec_start_flags(boxlite_exec **out, boxlite_box *box, const boxlite_exec_options *opts,
                        uint32_t flags);

/* For the tunnel relay (tunnel.c): send what the guest's stdin credit allows of buf now,
 * never waiting for credit (*n_out may be 0); BOXLITE_ESTATE once the process ended or stdin
 * is closed. The send itself may wait for room on the channel like every write. */
int bl_exec_write_some(boxlite_exec *ex, const void *buf, size_t len, size_t *n_out);

/* Write 1 to the eventfd fd (-1: none) whenever the guest returns stdin credit or ends an
 * output stream (neither makes boxlite_exec_fd readable). The fd must outlive the handle or
 * be unset first. */
void bl_exec_set_wake(boxlite_exec *ex, int fd);

/* Check (and with rp->fix mend) every box: boxlite_runtime_doctor. */
void bl_box_doctor(boxlite_runtime *rt, struct bl_repair *rp);

/* ---- between the files of box/ (box.c, options.c, start.c, stop.c, repair.c, ports.c,
 * info.c) ---- */

/* 1 when state is one a monitor runs in ("running", "stopping"). */
int bl_box_live_state(const char *state);

/* Let go of the box's channel: shut it (execs still holding it see it closed) and drop the
 * box's reference (box.c). */
void bl_box_conn_drop(boxlite_box *box);

/* Attach to the running box's monitor unless attached: HELLO within 10 s (start.c). */
int bl_box_attach(boxlite_box *box);

/* Check the options of a box create; BOXLITE_EINVAL with the message (options.c). */
int bl_box_options_check(const boxlite_box_options *o);

/* Encode the EXEC request of o (argv, env over the image's and the box's, cwd, user) into w.
 * Used by exec and for the box's main process (start.c). */
struct bl_wbuf;
int bl_exec_encode(struct bl_wbuf *w, const boxlite_exec_options *o, uint32_t flags,
                   const struct bl_image *img, const struct bl_box_row *row);

/* boxlite_box_list with entries of the given (checked) version. */
int bl_box_list_version(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt,
                        unsigned version);

/* The one place a new box's row is born: r zeroed, then id, name (checked as a box name),
 * image, state "configured", created now, no reason, no ports, no volumes. On failure r
 * holds nothing (options.c). */
int bl_box_row_init(struct bl_box_row *r, const char *id, const char *name, const char *image);

/* A new box's row from checked options and the image reference (bl_box_row_init, then the
 * options); on failure what was filled is for bl_box_row_clear (options.c). */
int bl_box_row_fill(struct bl_box_row *r, const char *id, const boxlite_box_options *o,
                    const char *image);

/* A new box's directory is made as boxes/.new-<id>, locked (*lock_out) while it is being
 * made: repair leaves locked ones alone, and drops unlocked ones without a row (box.c). */
int bl_box_stage(boxlite_runtime *rt, const char *id, char **dir_out, int *lock_out);

/* Publish a staged box: insert its row, then give the directory its real name. A crash in
 * between is finished by repair (a row whose boxes/<id> is missing but boxes/.new-<id>
 * exists); a failed rename takes the row out again. On failure the caller calls bl_box_abandon. */
int bl_box_publish(boxlite_runtime *rt, const struct bl_box_row *row, const char *staged);

/* After a failed publish or unpublish: remove staged unless a row still names the box (or
 * the store cannot say), in which case the box is kept for repair to finish and the message
 * says so. id NULL: publish was never tried, staged simply goes. Returns rc; the thread's
 * message is the failure's, extended when kept. */
int bl_box_abandon(boxlite_runtime *rt, const char *id, const char *staged, int rc);

/* Undo bl_box_publish when its caller cannot finish (no handle): the row goes and the
 * directory back to staged (the caller then calls bl_box_abandon). */
void bl_box_unpublish(boxlite_runtime *rt, const char *id, const char *staged);

/* A box the store calls running whose monitor is gone: record it as failed; 1 when so
 * (repair.c). */
int bl_box_repair_row(boxlite_runtime *rt, const struct bl_box_row *row, struct bl_repair *rp);

/* Before a boot: every published host port can be bound, every volume directory exists
 * (ports.c). */
int bl_box_check_ports_free(const struct bl_box_row *r);
int bl_box_check_volumes_exist(const struct bl_box_row *r);

#endif
