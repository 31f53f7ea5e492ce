/* monitor.h — the library's side of a box's monitor (boxlite-shim): finding the binary,
 * starting it detached from the caller, reading its readiness report, telling whether it is
 * alive, and connecting to its socket. */
#ifndef BL_MONITOR_H
#define BL_MONITOR_H

#include "boxstate.h"

#include <stdint.h>

struct bl_monitor_start {
    const char *home;
    const char *id;
    char **qemu_argv;
    int lifeline_fd; /* read end the shim watches (-1 for a detached box) */
    int auto_remove;
    int boot_timeout_ms;
    const char *incoming;  /* a full snapshot's memory file to restore from, or NULL */
    char **jail;           /* the jail's specs (bl_vmm_jail_specs), or NULL */
    const char *main_req;  /* the main process's request file (start.c), or NULL for none */
    const char *ram_fill;  /* a saved RAM file the shim copies into the box's own (empty, the
                            * "ram-loaded:" jail spec) before the state comes in, or NULL */
    const char *spare_dir; /* a template whose next spare RAM file the shim makes once the
                            * guest runs (template/spare.h), or NULL */
    int tb_idle_ms;        /* TCG: clients quiet this long, QEMU drops its translations
                            * (bl_vmm_tb_idle_ms); 0 never */
    int64_t answered_ms;   /* out: when QEMU first answered its control socket, as the shim's
                            * report says (bl_now_ms's clock), or -1 */
};

/* Start the shim and wait for its report: 0 once the agent answered, else the shim's
 * message as the error and *code_out the shim's code (BL_SHIM_E_QEMU_EXITED when QEMU ended
 * by itself during the boot, e.g. it could not run under KVM); decisions read the code only.
 * BL_SHIM_E_SETUP when the shim gave no report. */
int bl_monitor_start(enum bl_shim_code *code_out, struct bl_monitor_start *m);

/* 1 when box id (under home) has a live monitor: one holds its run lock (boxstate.h). The
 * kernel drops the lock when the monitor dies: no pid or /proc text is trusted. */
int bl_monitor_alive(const char *home, const char *id);

/* Connect to the shim of the box in dir; *fd_out is a connected stream socket. */
int bl_monitor_connect(int *fd_out, const char *dir);

/* boxlite-shim's path: $BOXLITE_SHIM, else the install root's, else the build tree's, else
 * the configured install path. *out malloc'd. BOXLITE_ENOTFOUND naming where it looked. */
int bl_monitor_find_shim(char **out);

#endif
