/* oci.h — boxlite-runtime's shared pieces: global options and the error log (main.c), the
 * state directory under --root (state.c), the container's host process (keeper.c) and the
 * bridge to libboxlite (bridge.c). One cmd_<verb>.c per verb (pause and resume share one). */
#ifndef BL_OCI_H
#define BL_OCI_H

#include "spec.h"

#include <stdio.h>
#include <sys/types.h>

struct boxlite_box;
struct boxlite_runtime;
struct stat;

struct bl_oci_global {
    const char *root;     /* --root: state directories, one per container */
    const char *log_path; /* --log, or NULL for stderr only */
    int log_json;         /* --log-format json */
};
extern struct bl_oci_global bl_oci_g;

/* Report an error: "boxlite-runtime: msg" on stderr and, with --log, a line in the log
 * (JSON with --log-format json, as runc writes it). Returns 1 (the exit status). */
int bl_oci_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An informational line into --log (nothing on stderr). */
void bl_oci_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A verb's flags: "--name V", "--name=V", "-s V"; boolean flags take no value. */
struct bl_oci_opt {
    const char *name;
    char short_name;
    const char **value; /* NULL for a boolean flag */
    int *flag;
};
/* Parse argv[1..]; positional arguments go to pos (at most npos; *npos_out of them); after
 * flags_until positionals (0: never) the rest are positional too (exec ID CMD -x). Unknown
 * flags and missing values are errors (reported; returns 1). */
int bl_oci_args(int argc, char **argv, const struct bl_oci_opt *opts, char **pos, int npos,
                int *npos_out, int flags_until);

/* ---- state.c: <root>/<id>/ ---- */
enum bl_oci_status {
    BL_OCI_CREATING,
    BL_OCI_CREATED,
    BL_OCI_RUNNING,
    BL_OCI_STOPPED,
    BL_OCI_PAUSED
};
/* created, running or paused: its keeper (and VM) is alive */
#define BL_OCI_LIVE(s) ((s) == BL_OCI_CREATED || (s) == BL_OCI_RUNNING || (s) == BL_OCI_PAUSED)

struct bl_oci_state {
    char id[1025];
    char bundle[4097];
    char box_id[16];
    char image[256]; /* the image the rootfs was imported as */
    char home[4097]; /* the boxlite home the box lives in ("" → the default) */
    pid_t pid;       /* the keeper */
    unsigned long long starttime;
    char created[40];
    int read_only_root; /* root.readonly, for exec's processes too */
    int pod_role;       /* BL_OCI_POD_SANDBOX, BL_OCI_POD_CONTAINER or 0 (spec.h) */
    char sandbox[1025]; /* a pod container's sandbox id ("" otherwise); box_id is its VM */
    enum bl_oci_status status;
};

int bl_oci_id_ok(const char *id);
/* <root>/<id>[/name] into buf; -1 when too long. */
int bl_oci_path(char *buf, size_t cap, const char *id, const char *name);
int bl_oci_state_save(const struct bl_oci_state *st);
/* Load and compute status; the container's boxlite home becomes this process's
 * $BOXLITE_HOME (engines do not pass --boxlite-home on every call: podman's delete).
 * -1 (with the error reported) when no such container. */
int bl_oci_state_load(struct bl_oci_state *out, const char *id);
/* The same, quietly, for scans (pod.c): no error reported, $BOXLITE_HOME untouched. */
int bl_oci_state_peek(struct bl_oci_state *out, const char *id);
/* Remove the state directory and what it holds. */
void bl_oci_state_remove(const char *id);
const char *bl_oci_status_name(enum bl_oci_status s);
unsigned long long bl_oci_proc_starttime(pid_t pid);
int bl_oci_alive(pid_t pid, unsigned long long starttime);

/* ---- bridge.c: containers as boxes ---- */
int bl_oci_runtime_open(struct boxlite_runtime **out);
/* Create and boot the box for spec (rootfs imported as image_name). */
int bl_oci_box_make(struct boxlite_box **out, struct boxlite_runtime *rt,
                    const struct bl_oci_spec *spec, const char *bundle, const char *image_name);
void bl_oci_box_remove(const char *box_id, const char *image);
/* Open the runtime and the container's box: 0, or 1 with the error reported (*rt_out and
 * *box_out then NULL). Release with boxlite_box_free and boxlite_runtime_free. */
int bl_oci_box_open(struct boxlite_runtime **rt_out, struct boxlite_box **box_out,
                    const struct bl_oci_state *st);
/* The bundle's rootfs directory, resolved (it may not lead out of the bundle) into out
 * (PATH_MAX bytes); 1 with the error reported. */
int bl_oci_rootfs_resolve(char *out, const struct bl_oci_spec *spec, const char *bundle);
/* Read a whole file of at most max bytes into a NUL-terminated buffer. */
int bl_oci_read_file(char **out, size_t *len_out, const char *path, size_t max);

/* ---- pod.c: containers of one pod in the sandbox's VM ---- */
/* Load the sandbox a pod container names: 0, or 1 with the error reported (no such
 * container under --root, not a sandbox, not running). */
int bl_oci_pod_sandbox(struct bl_oci_state *out, const char *sandbox_id);
/* At create, before anything is made: each bind mount's destination may not lead out of the
 * container's root through a symlink of the rootfs, and a directory source is at most 256 MiB
 * in 16384 entries (it is copied into the VM). 0, or 1 with the error reported. */
int bl_oci_pod_check(const struct bl_oci_spec *spec, const char *bundle);
/* The container's root inside the VM: /.boxlite-pod.<id>. */
void bl_oci_pod_root(char *out, size_t cap, const char *id);
/* Copy boxlite-pod-enter, the container's rootfs and its mounts into the pod's VM. */
int bl_oci_pod_prepare(struct boxlite_box *box, const char *id, const struct bl_oci_spec *spec,
                       const char *bundle);
/* The argv that runs p in the container's root through boxlite-pod-enter (as root: the
 * helper switches to p's uid/gid). Free with bl_oci_pod_argv_free. */
int bl_oci_pod_argv(char ***out, const struct bl_oci_process *p, const char *id, int read_only);
void bl_oci_pod_argv_free(char **v);
/* At a pod container's delete: its root in the VM goes (best effort, warnings in the log),
 * while the sandbox's VM runs. */
void bl_oci_pod_remove(const struct bl_oci_state *st);
/* At a pod member's delete, before its state directory goes: the pod's bookkeeping in it (a
 * container's mounts list; a sandbox's volume markers and lock). The volumes themselves live
 * on the VM's disk and go with the sandbox's box. */
void bl_oci_pod_forget(const char *id);
/* How many live containers name sandbox_id; with kill_them, each keeper gets SIGKILL (its
 * process in the VM ends with it) and is waited for. */
int bl_oci_pod_members(const char *sandbox_id, int kill_them);

/* ---- inbound.c: inbound TCP from the container's own network namespace into its VM ---- */
struct bl_oci_inbound;
/* Called in the keeper once it is inside spec's namespace and the box runs: when that namespace
 * is a path and not the host's (pid 1's; started_in, the keeper's first namespace, when pid
 * 1's cannot be read), listen there, add the nat REDIRECT rule and relay each inbound
 * TCP connection to the same port inside box (own handle; box stays the caller's). *out is
 * NULL when there is nothing to do. 1 (reported) on failure. */
int bl_oci_inbound_start(struct bl_oci_inbound **out, struct boxlite_runtime *rt,
                         struct boxlite_box *box, const struct bl_oci_spec *spec,
                         const struct stat *started_in);
/* Stop accepting and remove the rule (NULL: nothing). */
void bl_oci_inbound_stop(struct bl_oci_inbound *in);

/* ---- keeper.c: the host process that stands for the container ---- */
struct bl_oci_keeper {
    const char *id;
    const struct bl_oci_spec *spec;       /* create: boot the box; NULL for exec */
    const struct bl_oci_process *process; /* the process to run */
    const char *bundle, *image_name;      /* create */
    const char *box_id;                   /* exec */
    const char *console_socket;           /* NULL, or where the pty master goes */
    const char *pid_file;
    int read_only_root; /* root.readonly: the process sees the container's root read-only */
    int pod_role;       /* BL_OCI_POD_SANDBOX: no process, the keeper holds the pod's VM;
                         * BL_OCI_POD_CONTAINER: box_id is the pod's VM, the process runs in
                         * the container's own root there (pod.c) */
};
/* Fork the keeper; return in the parent once it is ready (created, or the exec process
 * started): 0 with *pid_out and box_id_out filled, or 1 with the error reported. The keeper
 * itself never returns: it exits with the container process's status. */
int bl_oci_keeper_spawn(pid_t *pid_out, char box_id_out[16], const struct bl_oci_keeper *k);
/* Write all n bytes to fd (EINTR retried); -1 when the reader went away. The keeper ignores
 * SIGPIPE, so sockets are fine. */
int bl_oci_write_all(int fd, const char *p, size_t n);
int bl_oci_write_pid_file(const char *path, pid_t pid);

/* ---- verbs ---- */
int bl_oci_cmd_create(int argc, char **argv);
int bl_oci_cmd_start(int argc, char **argv);
int bl_oci_cmd_state(int argc, char **argv);
int bl_oci_cmd_kill(int argc, char **argv);
int bl_oci_cmd_delete(int argc, char **argv);
int bl_oci_cmd_exec(int argc, char **argv);
int bl_oci_cmd_ps(int argc, char **argv);
int bl_oci_cmd_features(int argc, char **argv);
int bl_oci_cmd_pause(int argc, char **argv);
int bl_oci_cmd_resume(int argc, char **argv);
int bl_oci_cmd_events(int argc, char **argv);
int bl_oci_cmd_update(int argc, char **argv);

#endif
