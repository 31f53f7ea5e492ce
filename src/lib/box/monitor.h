/* monitor.h — the library's side of a box's monitor (boxlite-shim): finding the binary,
 * starting it detached from the caller, reading its readiness report, telling whether it is
 * alive, and connecting to its socket. */
#ifndef BL_MONITOR_H
#define BL_MONITOR_H

struct bl_monitor_start {
    const char *home;
    const char *id;
    char **qemu_argv;
    int lifeline_fd; /* read end the shim watches (-1 for a detached box) */
    int auto_remove;
    int boot_timeout_ms;
    const char *incoming; /* a full snapshot's memory file to restore from, or NULL */
    char **jail;          /* the jail's specs (bl_vmm_jail_specs), or NULL */
};

/* Start the shim and wait for its report: 0 once the agent answered, else the shim's
 * reason as the error, with *qemu_exited_out set to 1 when QEMU ended by itself during the
 * boot (the shim's "error qemu-exited:" report: e.g. it could not run under KVM), else 0. */
int bl_monitor_start(int *qemu_exited_out, const struct bl_monitor_start *m);

/* 1 when pid is the running shim of box id. */
int bl_monitor_alive(int pid, const char *id);

/* Connect to the shim of the box in dir; *fd_out is a connected stream socket. */
int bl_monitor_connect(int *fd_out, const char *dir);

#endif
