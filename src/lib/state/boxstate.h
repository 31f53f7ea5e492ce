/* boxstate.h — the one model of a box's lifecycle, shared by the library and its monitor
 * (boxlite-shim): the states, the transitions between them (validated and written to
 * boxlite.db in one statement), liveness from the monitor's run lock (a flock the kernel
 * drops when the monitor dies) and the monitor's readiness report as a code + message.
 * Strings appear only at the edges: the DB column, JSON, the CLI. */
#ifndef BL_BOXSTATE_H
#define BL_BOXSTATE_H

#include <stddef.h>

struct bl_db;

enum bl_box_state {
    BL_BOX_CONFIGURED = 0, /* created, never booted (or reset for a retry) */
    BL_BOX_RUNNING,        /* its monitor runs and the guest agent answered */
    BL_BOX_STOPPING,       /* a stop was asked for; the monitor is powering it off */
    BL_BOX_STOPPED,        /* ended as asked (or the guest powered off) */
    BL_BOX_FAILED,         /* ended otherwise: the reason says how */
    BL_BOX_STATE_COUNT,
};

/* The DB/JSON word for st ("configured", ...); "unknown" when out of range. Static. */
const char *bl_box_state_name(enum bl_box_state st);
/* The state a stored word names; BL_BOX_FAILED for a word no version wrote. */
enum bl_box_state bl_box_state_parse(const char *word);
/* 1 when a monitor may be running the box (running, stopping). */
int bl_box_state_live(enum bl_box_state st);
/* 1 when the model allows from → to. */
int bl_box_transition_ok(enum bl_box_state from, enum bl_box_state to);

/* Move box id to `to`, with the monitor's and QEMU's pids (0 when none) and reason (NULL →
 * ""), in one UPDATE that only matches while the stored state may go to `to`: a writer never
 * overwrites a state it did not expect (e.g. a late "running" over "stopping").
 * BOXLITE_ESTATE when the stored state does not allow it, BOXLITE_ENOTFOUND when no such box.
 * Thread-safe as the db handle is. */
int bl_box_transition(struct bl_db *db, const char *id, enum bl_box_state to, int shim_pid,
                      int qemu_pid, const char *reason);

/* ---- liveness: the run lock ---- */

/* The monitor takes an exclusive flock on <box dir>/run.lock before it writes any state
 * and holds it until it exits; the kernel drops it when the process dies, however. Waits up
 * to wait_ms for a holder to go (a monitor that recorded its end exits right after).
 * Returns the locked fd (close-on-exec), or -1 with errno (EWOULDBLOCK: another holds it). */
int bl_run_lock_take(const char *box_dir, int wait_ms);
/* 1 when a live process holds box_dir's run lock; never reads /proc. */
int bl_run_lock_held(const char *box_dir);

/* ---- auto_delete ---- */

/* Delete every stopped box (only box id, when not NULL) whose auto_delete seconds have passed
 * since it stopped: its row and its directory, each under the box's lock taken without
 * waiting. Returns how many were deleted; errors leave a box for the next sweep. */
int bl_box_sweep_expired(struct bl_db *db, const char *home, const char *id);

/* ---- the monitor's readiness report (one line on the status pipe: "<code> <message>") ---- */

enum bl_shim_code {
    BL_SHIM_OK = 0,            /* the guest agent answered: the box runs */
    BL_SHIM_E_SETUP = 1,       /* the monitor could not set itself up (dir, db, jail, lock) */
    BL_SHIM_E_NETWORK = 2,     /* the box's network could not be set up */
    BL_SHIM_E_SPAWN = 3,       /* QEMU could not be started */
    BL_SHIM_E_QEMU_EXITED = 4, /* QEMU ended by itself during the boot (e.g. KVM unusable) */
    BL_SHIM_E_BOOT = 5,        /* the guest agent did not answer in time, or the boot was cut
                                * short (stopped, restore failed) */
    BL_SHIM_E_RUNNING = 6,     /* another monitor already runs this box */
    BL_SHIM_CODE_COUNT,
};

/* Format the report line into out (ends in '\n'). */
void bl_shim_report_format(char *out, size_t cap, enum bl_shim_code code, const char *msg);
/* Parse a report line (without its '\n'): 0 and *code, *msg (points into line) when it is
 * one, -1 when not (a monitor that died mid-write, or something else on the pipe). */
int bl_shim_report_parse(const char *line, enum bl_shim_code *code, const char **msg);

#endif
