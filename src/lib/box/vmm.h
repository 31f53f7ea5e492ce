/* vmm.h — the VMM: choosing KVM or TCG and the qemu-system-x86_64 -M microvm command line
 * for a box (the box monitor, boxlite-shim, runs it with the agent channel on fd 3). */
#ifndef BL_VMM_H
#define BL_VMM_H

struct bl_vm_config {
    const char *qemu;    /* path of qemu-system-x86_64 */
    const char *kernel;  /* vmlinuz */
    const char *initrd;  /* initramfs */
    const char *disk;    /* the box's qcow2 */
    const char *console; /* console.sock: the shim listens there and writes console.log, capped */
    const char *hostname;
    const char *mac;   /* the virtio-net MAC, "52:54:00:..." */
    int incoming;      /* wait for a saved state on fd 5 (-incoming defer; the shim sends
                        * migrate-incoming fd:5 with x-ignore-shared on) */
    int template_mode; /* a warm template (docs/templates.md): the kernel command line says
                        * nothing of the box (no hostname, network or volumes); the devices
                        * are the same */
    const char *ram;   /* the guest RAM file (memory-backend-file "microvm.ram"): the box's own,
                        * mapped shared, or with ram_private a full snapshot's or a template's,
                        * mapped private */
    int ram_private;   /* map ram copy-on-write: the box's writes never reach the file */
    int ram_cow;       /* with ram_private: QEMU opens the file read-only (x-cow, our QEMU:
                        * scripts/qemu-patches/x-cow.patch), bound read-only into the jail */
    int ram_loaded;    /* ram is the box's own (shared) but already holds the saved RAM of
                        * incoming: a copy of a snapshot's or template's (x-ignore-shared) */
    unsigned cpus;
    unsigned memory_mib;
    int kvm;
    int network_disabled;
    char *const *ports;   /* unused by the command line: the shim publishes them */
    char *const *volumes; /* groups of 3: "ro"|"rw", host path, guest path */
};

/* Decide the accelerator: the runtime's accel option (opt; NULL or "" for none), else
 * $BOXLITE_ACCEL — "kvm", "tcg" or "auto" — and with auto, KVM when /dev/kvm is usable.
 * *kvm_out is 1 for KVM. When TCG is chosen without being asked for, *why_tcg points to a
 * static reason. BOXLITE_EINVAL for a bad value, or kvm required but unusable (no fallback:
 * TCG is not a hardware boundary). */
int bl_vmm_pick_accel(int *kvm_out, const char **why_tcg, const char *opt);

/* 1 when opt (else $BOXLITE_ACCEL) requires KVM: a failure under it must not fall back. */
int bl_vmm_kvm_required(const char *opt);

/* What the notice says about TCG, one phrase for every message. */
#define BL_TCG_NOTICE                                                                              \
    "TCG emulation (slower, and not a hardware boundary: the emulator is the only isolation)"

/* The TCG translation cache, MiB (-accel tcg,tb-size=): chosen by measurement (a warm start and
 * its first exec translate ~22 MB; a smaller cache is flushed and refilled), docs/snapshots.md */
#define BL_VMM_TB_MIB 32

/* How long a TCG box's clients leave it quiet before its shim has QEMU drop every translation
 * and give the code buffer's pages back (x-tb-discard, scripts/qemu-patches; a QEMU without it
 * is asked once): most of an idle box's cost, for ~0.15 s more on the next exec. The default,
 * or $BOXLITE_TB_IDLE_MS (0: never); docs/snapshots.md. Thread-safe. */
#define BL_VMM_TB_IDLE_MS 30000
int bl_vmm_tb_idle_ms(void);

/* Make path the box's own RAM file: a sparse file of mib MiB (any old one truncated first).
 * QEMU maps it shared, so a full snapshot copies it instead of streaming RAM. */
int bl_vmm_ram_create(const char *path, unsigned mib);

/* The QEMU command line for cfg; the agent chardev is fd 3, the QMP monitor fd 4, the
 * network stream fd 6 (unless network_disabled).
 * *out: bl_strv_free. */
int bl_vmm_argv(char ***out, const struct bl_vm_config *cfg);

/* A warm template's kernel command line (malloc'd; NULL: out of memory). */
char *bl_vmm_template_cmdline(const struct bl_vm_config *c);

/* The volumes as the agent takes them ("volN,ro|rw,PATH", PATH percent-encoded), for the
 * kernel command line or a template's attach. *out: bl_strv_free. */
int bl_vmm_volume_specs(char ***out, const struct bl_vm_config *cfg);

/* 1 when the QEMU at path has memory-backend-file's x-cow (scripts/qemu-patches): a saved
 * RAM file can then be mapped copy-on-write without QEMU being able to write it, so boxes
 * started from it share its clean pages safely. Read once per binary per process (keyed by
 * device, inode, size and mtime): the property's name, "x-cow" NUL-terminated, is in the
 * binary — a few ms, where asking QEMU (-object memory-backend-file,help) costs a start
 * ~50-150 ms. Thread-safe. */
int bl_vmm_qemu_has_cow(const char *qemu);

/* What that command line makes QEMU open by name, as the jail's specs (src/jail/jail.h):
 * "exe:" the binary, "ro:"/"rw:" the kernel, initrd, console, the disk's directory, the disk
 * and its backing chain (absolute names, followed from the qcow2 headers), each volume; and
 * "mem:"/"cpus:", and "ram:PATH" for the RAM file ("cow-ram:PATH" when mapped privately: the
 * jail then refuses hole punching, which QEMU 7.2 would do to the shared file when the
 * balloon reports free pages; "ro-ram:PATH" when QEMU opens it read-only, ram_cow). The files
 * must exist. *out: bl_strv_free. */
int bl_vmm_jail_specs(char ***out, const struct bl_vm_config *cfg);

#endif
