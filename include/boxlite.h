/* boxlite.h — the one public C API of libboxlite: runtimes, boxes and the processes run in
 * them. Everything an application, the CLI or the Python module may call is declared here.
 *
 * Conventions (docs/conventions.md):
 *  - A fallible call returns int: 0 on success, a BOXLITE_E* code (< 0) on failure, with a
 *    message for this thread in boxlite_error_last().
 *  - Output parameters come first and are named out; they are written only on success.
 *  - An object returned through **out belongs to the caller, who releases it with the
 *    matching _free (which accepts NULL). A pointer returned by value is borrowed from the
 *    object it came from and lives as long as that object.
 *  - Every struct that crosses the API (options in, info out) begins with `unsigned version`:
 *    set it with the struct's _INIT macro or boxlite_<struct>_init(&s, BOXLITE_<STRUCT>_VERSION).
 *    The library reads and writes only the fields that version has, and refuses 0 or a
 *    version newer than itself with BOXLITE_EINVAL. Fields are only ever appended.
 *  - Timeouts are int milliseconds: < 0 waits forever, 0 polls (never waits), > 0 waits at
 *    most that long.
 *  - Threads: a runtime may be used by several threads at once. A box handle is used by one
 *    thread at a time (two handles on one box are independent). The calls on an exec handle
 *    may come from several threads at once (a reader, a writer, a waiter), but
 *    boxlite_exec_free must not overlap any other call on it. Callbacks run on the calling
 *    thread. Error messages are per thread.
 *  - Lifetimes: free each box before its runtime. An exec handle keeps its own reference to
 *    the box's agent channel: after its box is stopped or freed its calls fail cleanly
 *    (BOXLITE_EPROTO or BOXLITE_ESTATE) until it is freed, except that output already sent
 *    stays readable and a wait answers the status the guest's shutdown gave the process
 *    (SIGTERM, or SIGKILL after the grace) when the guest reported it before powering off;
 *    free it before the runtime.
 *  - One free rule: a single object from **out has its type's _free (boxlite_box_free,
 *    boxlite_exec_free, boxlite_image_info_free, ...); an array from a _list call has the
 *    type's _list_free(list, count); plain memory (bytes, strings) has boxlite_free, string
 *    vectors boxlite_strv_free. Every free accepts NULL.
 *  - Detach means one thing: the object (box or process) outlives the handle and the process
 *    that made it.
 *  - Arguments: out first, then the object acted on (the source), then what says which part
 *    of it (snapshot), then the new thing's name, then flags. (boxlite_exec_read keeps the
 *    shape of read(2): the buffer and its count beside the stream mask.)
 *  - A function that shipped never changes signature or meaning; a _v2 is added beside it.
 *    The rules and the ABI check: docs/api.md. */
#ifndef BOXLITE_H
#define BOXLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BOXLITE_BUILDING) && defined(__GNUC__)
#define BOXLITE_API __attribute__((visibility("default")))
#else
#define BOXLITE_API
#endif

/* The version of this header; boxlite_version() and boxlite_version_number() give the
 * library's (which may be newer: 1.x libraries run 1.0 binaries). */
#define BOXLITE_VERSION_MAJOR 1
#define BOXLITE_VERSION_MINOR 0
#define BOXLITE_VERSION_PATCH 0
#define BOXLITE_VERSION       "1.0.0"
/* 0xMMmmpp, comparable: #if BOXLITE_VERSION_NUMBER >= 0x010100 */
#define BOXLITE_VERSION_NUMBER                                                                     \
    ((BOXLITE_VERSION_MAJOR << 16) | (BOXLITE_VERSION_MINOR << 8) | BOXLITE_VERSION_PATCH)

/* Timeouts (int milliseconds) everywhere. */
#define BOXLITE_TIMEOUT_FOREVER         (-1)
#define BOXLITE_TIMEOUT_POLL            0
#define BOXLITE_STOP_TIMEOUT_DEFAULT_MS 10000 /* the grace the CLI gives a stopping box */

/* Result codes. Every failure also sets boxlite_error_last(). */
enum {
    BOXLITE_OK = 0,
    BOXLITE_ERROR = -1,     /* anything not listed below; see the message */
    BOXLITE_EINVAL = -2,    /* an argument or option is invalid */
    BOXLITE_ENOTFOUND = -3, /* no such box, image or file */
    BOXLITE_EEXISTS = -4,   /* the name or object already exists */
    BOXLITE_ESTATE = -5,    /* the object is not in a state that allows the call */
    BOXLITE_ETIMEOUT = -6,  /* a deadline passed */
    BOXLITE_ENOMEM = -7,
    BOXLITE_EIO = -8,     /* a host file or socket failed */
    BOXLITE_EPROTO = -9,  /* the guest agent sent something invalid or went away */
    BOXLITE_EAGAIN = -10, /* nothing available yet (non-blocking calls) */
};

/* The message of the last failure on this thread ("" when none). Borrowed: valid until
 * the next boxlite call on this thread. */
BOXLITE_API const char *boxlite_error_last(void);

/* The library's version string ("1.0.0"). Static. */
BOXLITE_API const char *boxlite_version(void);

/* The library's BOXLITE_VERSION_NUMBER. */
BOXLITE_API unsigned boxlite_version_number(void);

/* ---- Runtime: one $BOXLITE_HOME ---------------------------------------------------- */

typedef struct boxlite_runtime boxlite_runtime;

/* An OCI registry's settings (see docs/images.md). Short names ("python:slim") are tried on
 * the registries with search set, in order; without any, on docker.io. */
enum { BOXLITE_TRANSPORT_HTTPS = 0, BOXLITE_TRANSPORT_HTTP = 1 };
typedef struct boxlite_registry {
    const char *host;                /* "ghcr.io", "127.0.0.1:5000", "docker.io" */
    int transport;                   /* BOXLITE_TRANSPORT_HTTPS, or _HTTP (plain) */
    int skip_verify;                 /* accept any TLS certificate */
    int search;                      /* try short names here */
    const char *username, *password; /* basic auth (also for token requests) */
    const char *token;               /* a bearer token sent as is */
    const char *ca_file;             /* PEM CA bundle; NULL → the system's */
} boxlite_registry;

/* Log levels. */
enum { BOXLITE_LOG_DEBUG = 0, BOXLITE_LOG_INFO = 1, BOXLITE_LOG_WARN = 2, BOXLITE_LOG_ERROR = 3 };

/* "debug", "info", "warn", "error"; "unknown" for anything else. Static. */
BOXLITE_API const char *boxlite_log_level_name(int level);

/* Log sink; level is a BOXLITE_LOG_*, message borrowed for the call. It may be called from
 * any thread that calls into the library. The library never prints on its own. */
typedef void (*boxlite_log_fn)(void *ctx, int level, const char *message);

typedef struct {
    unsigned version;     /* BOXLITE_RUNTIME_OPTIONS_VERSION */
    const char *home_dir; /* NULL → $BOXLITE_HOME, else ~/.boxlite */
    boxlite_log_fn log;   /* NULL → no logs */
    void *log_ctx;
    /* version 2: */
    const struct boxlite_registry *registries; /* tried before $BOXLITE_HOME/registries.json */
    size_t n_registries;
    /* version 3: the accelerator. "kvm": hardware isolation or refuse to start (no fallback);
     * "tcg": emulation (not a hardware boundary); NULL, "" or "auto": $BOXLITE_ACCEL, else
     * KVM when usable, TCG otherwise with a notice. */
    const char *accel;
} boxlite_runtime_options;
#define BOXLITE_RUNTIME_OPTIONS_VERSION 3 /* versions 1 and 2 are still accepted */
#define BOXLITE_RUNTIME_OPTIONS_INIT                                                               \
    {                                                                                              \
        BOXLITE_RUNTIME_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, NULL                           \
    }

/* Fill *opts with the defaults of the given version (the fields that version has; the
 * struct may be one built against an older header). BOXLITE_EINVAL for 0 or an unknown
 * version. Every options and info struct has one of these, with the same rule. */
BOXLITE_API int boxlite_runtime_options_init(boxlite_runtime_options *opts, unsigned version);

/* Open (creating if needed) a runtime home. opts may be NULL for the defaults.
 * *out belongs to the caller: release it with boxlite_runtime_free. */
BOXLITE_API int boxlite_runtime_open(boxlite_runtime **out, const boxlite_runtime_options *opts);

/* Stop every box of this runtime that is not detached and release it. Accepts NULL. */
BOXLITE_API void boxlite_runtime_free(boxlite_runtime *rt);

/* The home directory in use. Borrowed from rt. */
BOXLITE_API const char *boxlite_runtime_home(const boxlite_runtime *rt);

/* What this runtime is and where its files are (boxlite info). Fixed-size strings, nothing
 * to free. */
typedef struct {
    unsigned version; /* BOXLITE_RUNTIME_INFO_VERSION, set by the caller */
    char boxlite_version[32];
    char home[1024];      /* $BOXLITE_HOME */
    char guest_dir[1024]; /* the guest kernel, initramfs and built-in image */
    char kernel_version[64];
    char qemu[1024];        /* the qemu-system-x86_64 boxes run under ("" when not found) */
    char qemu_version[64];  /* its --version ("" when not found) */
    char shim[1024];        /* boxlite-shim ("" when not found) */
    char accel[8];          /* what a box started now gets: "kvm" or "tcg" */
    char accel_reason[256]; /* with tcg, why not KVM; "" with kvm */
    int hardware_isolated;  /* 1 with kvm: the VM is a hardware boundary; 0 under TCG */
    unsigned boxes, images, templates;
    uint64_t boxes_bytes;     /* on the host, under home/boxes */
    uint64_t images_bytes;    /* home/images */
    uint64_t templates_bytes; /* home/templates */
} boxlite_runtime_info;
#define BOXLITE_RUNTIME_INFO_VERSION 1
#define BOXLITE_RUNTIME_INFO_INIT                                                                  \
    {                                                                                              \
        .version = BOXLITE_RUNTIME_INFO_VERSION                                                    \
    }

/* Fill *out (its version set by the caller) for rt: versions, paths, the accelerator a box
 * started now would get, and what the store holds and takes on disk (walks the home: cost
 * grows with the files in it). Thread-safe like every runtime call. */
BOXLITE_API int boxlite_runtime_get_info(boxlite_runtime_info *out, boxlite_runtime *rt);

/* One finding of boxlite_runtime_doctor: the box it concerns ("" for the image store), what
 * was found (borrowed for the call), and 1 when it was mended. */
typedef void (*boxlite_doctor_fn)(void *ctx, const char *box_id, const char *what, int fixed);

/* Check the whole store, which opening a runtime does not (a box is mended when it is next
 * started or snapshotted): boxes recorded running whose monitor died, boxes and snapshots a
 * crash left half made, layers nothing rests on, boxes not yet pinned to their image, image
 * bases that no image and no box uses; and what cannot be mended (a lost layer). Each
 * finding goes to report (may be NULL); with fix, each one that can be is mended (boxes
 * another process is working on are left alone). *found_out (may be NULL) gets how many
 * findings there were. */
BOXLITE_API int boxlite_runtime_doctor(boxlite_runtime *rt, int fix, boxlite_doctor_fn report,
                                       void *ctx, unsigned *found_out);

/* ---- Boxes -------------------------------------------------------------------------- */

typedef struct boxlite_box boxlite_box;

/* A host directory shared into a box (virtio-9p). */
typedef struct {
    const char *host_path;  /* an existing directory on the host */
    const char *guest_path; /* absolute path inside the box */
    int read_only;          /* read-only even for root in the guest */
} boxlite_volume;

/* A guest port published on the host. */
typedef struct {
    unsigned host_port;   /* 1-65535 */
    unsigned guest_port;  /* 1-65535 */
    const char *protocol; /* "tcp" (NULL) or "udp" */
    const char *host_ip;  /* address to bind on the host; NULL → "127.0.0.1" */
} boxlite_port;

/* A secret that never enters the box: the guest sees only placeholder (in its env as
 * NAME=placeholder when name is an env name); the box's monitor puts value in its place in the
 * request line and headers of outbound HTTP(S) requests to hosts, through a proxy of its own
 * that intercepts TLS with a per-box CA the guest trusts (docs/security.md, Secrets). */
typedef struct boxlite_secret {
    const char *name;  /* [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes */
    const char *value; /* 1-4096 printable bytes (no control characters) */
    /* NULL-terminated host names ("api.example.com", "*.example.com"), or NULL / empty: any
     * host. */
    const char *const *hosts;
    const char *placeholder; /* NULL → "<BOXLITE_SECRET:NAME>" */
} boxlite_secret;

typedef struct {
    unsigned version;              /* BOXLITE_BOX_OPTIONS_VERSION */
    const char *image;             /* NULL or "" → the built-in default image */
    const char *name;              /* NULL → none; unique per runtime: [A-Za-z0-9_.-], ≤ 64 */
    unsigned cpus;                 /* 0 → 1 */
    unsigned memory_mib;           /* 0 → 512 */
    int auto_remove;               /* remove the box when it stops */
    unsigned disk_size_gb;         /* 0 → the image's size; else the box filesystem's size */
    const char *const *env;        /* "KEY=VALUE" defaults for every exec, over the image's */
    const char *working_dir;       /* NULL → the image's */
    const char *user;              /* NULL → the image's */
    const char *const *entrypoint; /* NULL → the image's (for boxlite_box_command) */
    const char *const *cmd;        /* NULL → the image's (for boxlite_box_command) */
    int detach;                    /* keep running after the process that started it exits */
    int network_disabled;          /* no network but loopback (default: user-mode NAT) */
    const boxlite_volume *volumes; /* n_volumes host directories to share */
    size_t n_volumes;
    const boxlite_port *ports; /* n_ports guest ports to publish on the host */
    size_t n_ports;
    /* Version 2. NULL-terminated egress allowlist: "example.com", "*.example.com",
     * "203.0.113.0/24", "198.51.100.7", each with an optional ":PORT" (at most 64). NULL:
     * the internet, never the host, link-local or private ranges (docs/security.md). */
    const char *const *allow_net;
    /* Version 3. The box's main process: unless no_main, each boot starts entrypoint + cmd
     * (the box's, else the image's; none when both are empty) as the box's main process, its
     * stdout and stderr into the box's log (boxlite_box_logs), its stdin an open pipe nothing
     * writes to; when it exits the box stops and its exit status is kept (info.exit_code).
     * no_main: the box runs only what is exec'd in it (the CLI's run, which runs its own). */
    int no_main;
    /* Seconds a stopped box is kept before it is deleted: < 0 (the default) → auto_remove
     * decides (remove at stop, or keep); 0 → kept; N > 0 → deleted N s after it stopped
     * (by its monitor as it exits, or by whichever process lists or opens boxes later). */
    long auto_delete;
    /* Version 4. n_secrets secrets that never enter the box (docs/security.md, Secrets). */
    const struct boxlite_secret *secrets;
    size_t n_secrets;
} boxlite_box_options;
#define BOXLITE_BOX_OPTIONS_VERSION 4 /* 1 to 3 are still accepted: the fields before them */
#define BOXLITE_BOX_OPTIONS_INIT                                                                   \
    {                                                                                              \
        BOXLITE_BOX_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, 0,   \
            NULL, 0, NULL, 0, NULL, 0, -1, NULL, 0                                                 \
    }
BOXLITE_API int boxlite_box_options_init(boxlite_box_options *opts, unsigned version);

/* Create a box: its own disk layered over its image, recorded in the runtime's store, not
 * yet running. *out belongs to the caller: boxlite_box_free. */
BOXLITE_API int boxlite_box_create(boxlite_box **out, boxlite_runtime *rt,
                                   const boxlite_box_options *opts);

/* Open an existing box by id, unique id prefix or name. BOXLITE_ENOTFOUND when none.
 * *out belongs to the caller: boxlite_box_free. */
BOXLITE_API int boxlite_box_get(boxlite_box **out, boxlite_runtime *rt, const char *id_or_name);

/* Boot the box (or attach to it when another process already runs it) and wait until its
 * agent answers. Unless the box was created with detach, it stops when the process that
 * booted it exits (even by SIGKILL) or frees this handle. */
BOXLITE_API int boxlite_box_start(boxlite_box *box);

/* Like boxlite_box_start, but the box keeps running after this process (the CLI's start). */
BOXLITE_API int boxlite_box_start_detached(boxlite_box *box);

#define BOXLITE_START_DETACHED 1u /* as boxlite_box_start_detached */
#define BOXLITE_START_COLD     2u /* boot cold: no warm template used or built (docs/templates.md) */

/* boxlite_box_start with flags (BOXLITE_START_*; others: BOXLITE_EINVAL). Without
 * BOXLITE_START_COLD a start restores the warm template of the box's shape when there is one
 * (saving it after a cold boot when there is not), unless $BOXLITE_TEMPLATES=0. */
BOXLITE_API int boxlite_box_start_flags(boxlite_box *box, unsigned flags);

/* Ask the guest to sync and power off; kill the VM when it has not after timeout_ms (< 0:
 * wait forever, never kill; 0: kill at once unless it is already off; the CLI gives
 * BOXLITE_STOP_TIMEOUT_DEFAULT_MS). Stopping a box that is not running succeeds. A box with
 * auto_remove is removed. */
BOXLITE_API int boxlite_box_stop(boxlite_box *box, int timeout_ms);

/* boxlite_box_stop that also says how the box stopped: *killed_out (may be NULL; written
 * only on success) is 0 when the guest powered off by itself (its writes synced), 1 when it
 * did not within timeout_ms and the VM was killed (what the guest had not synced is lost;
 * the box's reason says "killed"). BOXLITE_ETIMEOUT when the box still runs even after
 * SIGKILL. Stopping a box that is not running succeeds with *killed_out 0. */
BOXLITE_API int boxlite_box_stop_v2(int *killed_out, boxlite_box *box, int timeout_ms);

/* Delete the box and its disk. A running box is refused (BOXLITE_ESTATE) unless force,
 * which stops it first (killing it after 2 s); if even that fails, the box and its disk are
 * left as they are and the stop's error is returned. The handle must still be freed. */
BOXLITE_API int boxlite_box_remove(boxlite_box *box, int force);

/* Release the handle. If this handle booted the box and it is not detached, the box stops
 * (and auto_remove removes it). Accepts NULL. */
BOXLITE_API void boxlite_box_free(boxlite_box *box);

/* The box's id: 12 base62 characters. Borrowed from box. */
BOXLITE_API const char *boxlite_box_id(const boxlite_box *box);

/* 1 when this handle booted the box without detach, so that freeing it stops the box (a
 * handle that found the box already running, or that stopped it since, gives 0); else 0.
 * A language binding asks this before stopping "the boxes it started" at its shutdown. Same
 * thread rules as the handle's other calls. */
BOXLITE_API int boxlite_box_booted_here(const boxlite_box *box);

/* The box's name, or "" when it has none. Borrowed from box. */
BOXLITE_API const char *boxlite_box_name(const boxlite_box *box);

/* The box's egress allowlist (boxlite_box_options.allow_net), NULL-terminated, or NULL when
 * it has none (the default policy). Borrowed from box. */
BOXLITE_API const char *const *boxlite_box_allow_net(const boxlite_box *box);

/* The box's secrets without their values (docs/security.md, Secrets): *out a NULL-terminated
 * vector of "NAME" (any host) or "NAME@HOST,HOST...", empty when it has none; the caller's:
 * boxlite_strv_free. */
BOXLITE_API int boxlite_box_secrets(char ***out, boxlite_box *box);

/* A box's state: the number beside the name. */
enum {
    BOXLITE_BOX_STATE_CONFIGURED = 0, /* created, never booted */
    BOXLITE_BOX_STATE_RUNNING = 1,
    BOXLITE_BOX_STATE_STOPPING = 2,
    BOXLITE_BOX_STATE_STOPPED = 3,
    BOXLITE_BOX_STATE_FAILED = 4, /* its boot or its monitor failed; see reason */
};

/* "configured", "running", "stopping", "stopped", "failed"; "unknown" otherwise. Static. */
BOXLITE_API const char *boxlite_box_state_name(int state);

typedef struct {
    unsigned version; /* BOXLITE_BOX_INFO_VERSION, set by the caller (see the header's top) */
    char id[13];
    char name[65];
    char image[512];
    char state[16];      /* configured, running, stopping, stopped, failed */
    int state_code;      /* the same as a BOXLITE_BOX_STATE_* */
    char created_at[32]; /* RFC 3339, UTC */
    char reason[512];    /* why it stopped or failed, or "" */
    unsigned cpus;
    unsigned memory_mib;
    unsigned disk_size_gb;
    int pid;      /* the box monitor's pid while running, else 0 */
    int qemu_pid; /* QEMU's pid while running, else 0 */
    int detach;
    int auto_remove;
    int network_disabled;
    char ports[512];    /* published ports: "127.0.0.1:8080->80/tcp, ..." */
    char volumes[1024]; /* shared directories: "/host:/guest[:ro], ..." */
    char accel[8];      /* how its last boot ran: "kvm" (hardware-isolated), "tcg" (emulated: not a
                         * hardware boundary), "" before its first boot */
    /* version 2 */
    char image_ref[512];  /* the image reference as the box's creator wrote it ("python:3.11"),
                           * whichever registry or mirror served it; image is the name it
                           * resolved to. The same as image for the built-in image and for
                           * boxes made before version 2 */
    char image_id[72];    /* "sha256:…" of the image config, or "" (the built-in image, or an
                           * imported box not yet pinned) */
    char allow_net[1024]; /* its egress allowlist: "example.com, *.example.org:443, ...", or "" */
    /* Version 3. */
    int has_exit_code; /* 1 when the main process of its last boot ended */
    int exit_code;     /* its exit status then (128 + signal when killed; 143 when a stop
                        * ended it, 137 when the stop had to kill the VM, as Docker) */
    int no_main;       /* created with no_main */
    long auto_delete;  /* as created: < 0 auto_remove decides, 0 kept, N s after it stopped */
    /* Version 4. */
    char updated_at[32]; /* RFC 3339, UTC: its last change of state (created_at before one) */
} boxlite_box_info;
#define BOXLITE_BOX_INFO_VERSION 4
#define BOXLITE_BOX_INFO_INIT                                                                      \
    {                                                                                              \
        .version = BOXLITE_BOX_INFO_VERSION                                                        \
    }
BOXLITE_API int boxlite_box_info_init(boxlite_box_info *info, unsigned version);

/* The box's current info (re-read from the store). out->version must be set. */
BOXLITE_API int boxlite_box_get_info(boxlite_box_info *out, boxlite_box *box);

/* Every box of the runtime, newest first, as entries of the given version (each entry's
 * version says so). *out is an array of *count_out entries that belongs to the caller:
 * boxlite_box_list_free. */
BOXLITE_API int boxlite_box_list_v2(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt,
                                    unsigned version);
BOXLITE_API void boxlite_box_list_free(boxlite_box_info *list, size_t count);

/* boxlite_box_list_v2 at version 1, for ever. */
BOXLITE_API int boxlite_box_list(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt);

typedef struct {
    unsigned version;         /* BOXLITE_BOX_STATS_VERSION, set by the caller */
    double cpu_seconds;       /* CPU time QEMU has used for this boot */
    uint64_t memory_bytes;    /* resident memory of QEMU (the guest's RAM in use) */
    uint64_t disk_bytes;      /* host bytes used by the box's own disk layer */
    uint64_t disk_size_bytes; /* the box disk's virtual size */
} boxlite_box_stats;
#define BOXLITE_BOX_STATS_VERSION 1
#define BOXLITE_BOX_STATS_INIT                                                                     \
    {                                                                                              \
        .version = BOXLITE_BOX_STATS_VERSION                                                       \
    }
BOXLITE_API int boxlite_box_stats_init(boxlite_box_stats *stats, unsigned version);

/* Pause a running box's VM (its vCPUs stop through QEMU's monitor; its memory, devices and
 * connections stay) and resume it. BOXLITE_ESTATE when the box is not running. Pausing a paused
 * box, or resuming a running one, succeeds. Execs of a paused box wait until it resumes. */
BOXLITE_API int boxlite_box_pause(boxlite_box *box);
BOXLITE_API int boxlite_box_resume(boxlite_box *box);

/* Resource use of a running box (BOXLITE_ESTATE when it is not running). */
BOXLITE_API int boxlite_box_get_stats(boxlite_box_stats *out, boxlite_box *box);

/* The guest console output of the box's last boot. *out (NUL-terminated, *len_out bytes,
 * at most the last 4 MiB) belongs to the caller: boxlite_free. These are the guest's bytes as
 * it wrote them (it may be hostile: escape sequences, invalid UTF-8, NULs): sanitise them
 * before a terminal, as `boxlite logs --console` does. */
BOXLITE_API int boxlite_box_console(char **out, size_t *len_out, boxlite_box *box);

/* The box's log: what its main process wrote to stdout and stderr, across its boots (capped:
 * the box keeps its current log file and the one before, each at most BOXLITE_MAX_MAIN_LOG,
 * 4 MiB by default), from byte `from` of the log as it is now (0: the start). *out (NUL-terminated,
 * *len_out bytes: guest bytes, sanitise them before a terminal) belongs to the caller:
 * boxlite_free. *next_out (may be NULL) is where the next call continues; when the log was cut
 * since, reading restarts at its start. */
BOXLITE_API int boxlite_box_logs(char **out, size_t *len_out, uint64_t *next_out, boxlite_box *box,
                                 uint64_t from);

/* The command `run` executes: entrypoint (box's, else image's) followed by user_cmd when it
 * has arguments, else the cmd (box's, else image's). *out is a NULL-terminated vector that
 * belongs to the caller: boxlite_strv_free. BOXLITE_EINVAL when the result is empty. */
BOXLITE_API int boxlite_box_command(char ***out, boxlite_box *box, const char *const *user_cmd);

/* Free plain memory the library handed out: bytes, strings, arrays of structs that own
 * nothing (accepts NULL). */
BOXLITE_API void boxlite_free(void *p);
BOXLITE_API void boxlite_strv_free(char **v);

/* ---- Processes in a box ---------------------------------------------------------------- */

typedef struct boxlite_exec boxlite_exec;

/* A resource limit the process gets in the guest (setrlimit there, not on the host). */
typedef struct {
    int resource;  /* a Linux RLIMIT_* number (RLIMIT_NOFILE, ...), 0..15 */
    uint64_t soft; /* at most hard; UINT64_MAX: unlimited */
    uint64_t hard;
} boxlite_rlimit;

typedef struct {
    unsigned version;        /* BOXLITE_EXEC_OPTIONS_VERSION */
    const char *const *argv; /* argv[0] is the command; NULL-terminated; required */
    const char *const *env;  /* "KEY=VALUE" strings added to the image's env; may be NULL */
    const char *cwd;         /* NULL → the image's working directory */
    const char *user;        /* NULL → the image's user */
    int tty;                 /* give the process a pseudo-terminal */
    unsigned timeout_ms;     /* a limit on its run time, not a wait: 0 → none (the one field
                              * where 0 means "no limit": zeroed options mean defaults);
                              * SIGTERM then SIGKILL after 2 s */
    /* Version 2: */
    int detach; /* the process keeps running when this handle is freed or this process exits;
                 * its output is discarded once nobody reads it */
    /* Version 3: */
    const boxlite_rlimit *rlimits; /* n_rlimits limits (at most 16, each resource once), set in
                                    * the guest before the process runs; may be NULL */
    size_t n_rlimits;
    int read_only_root; /* the process sees the box's root filesystem read-only (volumes keep
                         * their own mode) */
} boxlite_exec_options;
#define BOXLITE_EXEC_OPTIONS_VERSION 3
#define BOXLITE_EXEC_OPTIONS_INIT                                                                  \
    {                                                                                              \
        BOXLITE_EXEC_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, 0, 0                  \
    }
BOXLITE_API int boxlite_exec_options_init(boxlite_exec_options *opts, unsigned version);

/* Start a process in a running box. *out belongs to the caller: boxlite_exec_free. */
BOXLITE_API int boxlite_exec_start(boxlite_exec **out, boxlite_box *box,
                                   const boxlite_exec_options *opts);

#define BOXLITE_STDOUT 1
#define BOXLITE_STDERR 2

/* Read output. streams is a mask of BOXLITE_STDOUT|BOXLITE_STDERR; the call returns data
 * from whichever has some, writing the stream to *which_out and the byte count to *n_out.
 * *n_out == 0 means every stream in the mask has ended. Waits up to timeout_ms (< 0 →
 * forever, 0 → poll); BOXLITE_EAGAIN when nothing came in time. */
BOXLITE_API int boxlite_exec_read(boxlite_exec *ex, int streams, int *which_out, void *buf,
                                  size_t cap, size_t *n_out, int timeout_ms);

/* A file descriptor for poll/epoll (curl-multi style: one thread watches many executions):
 * readable (POLLIN) exactly while there is unread output (boxlite_exec_read with both streams
 * and timeout_ms 0 returns it) or the process has ended (boxlite_exec_wait_v2 with 0 answers;
 * reads then drain what is left and end with n_out 0); once ended it stays readable.
 * Level-triggered: reading the output clears it. A read may report the streams' end (n_out 0)
 * a moment before the process's end makes the fd readable. The fd belongs to the
 * handle (valid until boxlite_exec_free): only poll it, never read, write or close it. A
 * process with timeout_ms also has a host-side deadline (the guest failed to end it): a
 * poller sleeps at most what boxlite_exec_timeout says, then calls in. The fd answers for
 * both streams and the end together: a poller waiting for one of them only drains the rest
 * (or stops polling), else it wakes at once. The blocking reads and waits are the
 * non-blocking step (timeout 0) repeated, sleeping in between.
 * Stdin: after a boxlite_exec_write_v2 with timeout_ms >= 0 that left bytes untaken (it
 * answered BOXLITE_EAGAIN or *n_out < len), the fd is also readable while the guest's window
 * has room again (credit came back); the next boxlite_exec_write_v2 (0 bytes will do: a
 * writer that gives up) or boxlite_exec_close_stdin clears that. A poller that wrote that
 * way writes again when the fd turns readable; one that never writes so is not disturbed. */
BOXLITE_API int boxlite_exec_fd(int *out, boxlite_exec *ex);

/* curl_multi_timeout for one execution: *ms_out is how long a poller of boxlite_exec_fd may
 * sleep before it must call in (-1: as long as it likes, the fd alone will say; 0: now).
 * Calling in means boxlite_exec_timeout again, or boxlite_exec_read/_wait_v2 with timeout
 * 0: each first runs the host-side deadlines that are due (a timed process the guest did not
 * end is then ended as timed out and sent SIGKILL, and the fd turns readable). Never waits.
 * Thread-safe like the other calls on the handle. */
BOXLITE_API int boxlite_exec_timeout(int *ms_out, boxlite_exec *ex);

/* Send bytes to the process's stdin (blocks while the guest's window is full). */
BOXLITE_API int boxlite_exec_write(boxlite_exec *ex, const void *buf, size_t len);

/* Send up to len bytes to the process's stdin, what the guest's window takes (curl-multi
 * style, like boxlite_exec_read): *n_out says how many were taken (in order; the rest is the
 * caller's to send again). Waits up to timeout_ms for room (< 0 → until all len are taken,
 * which is boxlite_exec_write; 0 → never waits): BOXLITE_EAGAIN when none was taken in time,
 * else 0 with *n_out <= len. After such a short write boxlite_exec_fd turns readable once
 * the window has room again (see there). BOXLITE_ESTATE once the process has ended or stdin
 * was closed (*n_out: what was taken before). Thread-safe like the other calls on the handle;
 * concurrent writers interleave by chunk. */
BOXLITE_API int boxlite_exec_write_v2(boxlite_exec *ex, const void *buf, size_t len, size_t *n_out,
                                      int timeout_ms);

/* End the process's stdin. */
BOXLITE_API int boxlite_exec_close_stdin(boxlite_exec *ex);

/* Send signal signo to the process group. */
BOXLITE_API int boxlite_exec_signal(boxlite_exec *ex, int signo);

/* Change the tty's size. BOXLITE_ESTATE without a tty. */
BOXLITE_API int boxlite_exec_resize(boxlite_exec *ex, unsigned rows, unsigned cols);

typedef struct {
    unsigned version;  /* BOXLITE_EXEC_RESULT_VERSION, set by the caller */
    int exit_code;     /* the status a shell reports: code, 128+signal, 127 not found */
    int signal;        /* the signal that ended it, else 0 */
    int timed_out;     /* ended by timeout_ms */
    char message[256]; /* why it could not start, or "" */
} boxlite_exec_result;
#define BOXLITE_EXEC_RESULT_VERSION 1
#define BOXLITE_EXEC_RESULT_INIT                                                                   \
    {                                                                                              \
        .version = BOXLITE_EXEC_RESULT_VERSION                                                     \
    }
BOXLITE_API int boxlite_exec_result_init(boxlite_exec_result *result, unsigned version);

/* Wait for the process to end, up to timeout_ms (< 0 → forever, 0 → poll); BOXLITE_ETIMEOUT
 * while it still runs. out->version must be set. Output not yet read is still readable
 * afterwards. */
BOXLITE_API int boxlite_exec_wait_v2(boxlite_exec_result *out, boxlite_exec *ex, int timeout_ms);

/* boxlite_exec_wait_v2 with out second (0.x order; kept). */
BOXLITE_API int boxlite_exec_wait(boxlite_exec *ex, boxlite_exec_result *out, int timeout_ms);

/* Release the handle; a process still running is killed unless it was started with
 * detach. Accepts NULL. */
BOXLITE_API void boxlite_exec_free(boxlite_exec *ex);

/* The process's pid inside the box (0 until the guest has reported it). */
BOXLITE_API int boxlite_exec_pid(const boxlite_exec *ex);

/* ---- Files between the host and a box ------------------------------------------------ */

/* The copies block, by design, with no pollable shape: their host side is files and
 * libarchive (regular files never poll as "not ready"; the archive's read/write callbacks
 * block), the guest side is a built-in exec whose watchdog (no frame for 20 s, then 20 s
 * more after a PING) bounds a stalled box, and one copy is one bulk transfer, not a stream
 * a loop interleaves. An event loop runs a copy on one worker thread (the Python module
 * does), or streams it itself through boxlite_box_copy_in_tar/_out_tar with a pipe whose
 * other end it polls. */

typedef struct {
    unsigned version;     /* BOXLITE_COPY_OPTIONS_VERSION */
    int recursive;        /* copy directories (else a directory source is refused); default 1 */
    int overwrite;        /* replace existing files at the destination; default 1 */
    int follow_symlinks;  /* copy what symlinks in the source point to; default 0: links as links */
    int include_parent;   /* a directory source into an existing directory DST lands in
                           * DST/<name>; 0: its contents go into DST. Default 1 */
    uint64_t max_bytes;   /* copy_out: refuse archives whose entries' sizes (holes included)
                           * pass this; 0 → 10 GiB */
    uint64_t max_entries; /* copy_out: refuse archives with more entries; 0 → 1,000,000 */
} boxlite_copy_options;
#define BOXLITE_COPY_OPTIONS_VERSION 1
#define BOXLITE_COPY_OPTIONS_INIT                                                                  \
    {                                                                                              \
        BOXLITE_COPY_OPTIONS_VERSION, 1, 1, 0, 1, 0, 0                                             \
    }
BOXLITE_API int boxlite_copy_options_init(boxlite_copy_options *opts, unsigned version);

/* Copy host_path (a file, symlink or directory tree) into the running box at box_path, as
 * root, keeping modes and mtimes (to the second); symlinks are copied as links. As with
 * `docker cp`: when box_path is an existing directory the source lands inside it, else the
 * source is created as box_path. opts may be NULL for the defaults. */
BOXLITE_API int boxlite_box_copy_in(boxlite_box *box, const char *host_path, const char *box_path,
                                    const boxlite_copy_options *opts);

/* Copy box_path out of the running box to host_path, with the same rules; inside an existing
 * directory the copy is named after box_path's last component, whatever the guest's archive
 * calls it. The guest's archive is untrusted (docs/security.md): nothing is written outside
 * host_path (names with "..", absolute names, links followed while writing, oversized
 * headers and archives are refused with an error naming the entry); no setuid, setgid or
 * sticky bit, device or fifo is made; modes are masked by the umask; files are the caller's.
 * A refused copy may leave part of the tree inside host_path. */
BOXLITE_API int boxlite_box_copy_out(boxlite_box *box, const char *box_path, const char *host_path,
                                     const boxlite_copy_options *opts);

/* Extract a tar archive read from fd (to its end) into the directory box_path of the running
 * box, names as they are (`docker cp - BOX:DIR`). */
BOXLITE_API int boxlite_box_copy_in_tar(boxlite_box *box, int fd, const char *box_path,
                                        const boxlite_copy_options *opts);

/* Write a tar archive of box_path to fd, as the guest produced it (unchecked, but cut at
 * max_bytes) (`docker cp BOX:PATH -`). */
BOXLITE_API int boxlite_box_copy_out_tar(boxlite_box *box, const char *box_path, int fd,
                                         const boxlite_copy_options *opts);

/* One PING/PONG round trip through the box's monitor to its guest agent; *out is the time
 * it took in nanoseconds. */
BOXLITE_API int boxlite_box_ping(uint64_t *out, boxlite_box *box);

/* A tunnel: one TCP connection to 127.0.0.1:port inside the running box, made
 * by the guest agent and carried over the box's agent channel; no host port is published.
 * *out is the caller's end of a connected AF_UNIX stream socket (close-on-exec), which the
 * caller owns and closes; its bytes are the connection's. shutdown(*out, SHUT_WR) ends the
 * caller's direction (half-close); the guest side's end arrives as end of file; closing
 * *out ends the caller's direction too, and the guest connection is dropped at the next
 * byte the guest sends. Two threads of the library relay the other end until both
 * directions have ended or the box stops or misbehaves (that end too reads as end of file);
 * they hold their own reference to the box's channel, so the box handle may be freed first.
 * Fails when the guest cannot connect (nothing listens on the port: BOXLITE_ERROR whose
 * message carries the guest's "Connection refused"), with BOXLITE_ESTATE when the box is
 * not running, BOXLITE_EINVAL for a port outside 1..65535. Call it once per connection.
 * *out is the pollable shape: poll/epoll it like any socket (POLLIN, POLLOUT, end of file),
 * set O_NONBLOCK on it if the caller's loop wants; nothing else on the tunnel needs a call.
 * The call itself blocks until the guest has connected (at most 30 s). */
BOXLITE_API int boxlite_box_tunnel(int *out, boxlite_box *box, unsigned port);

/* ---- Snapshots, clones, forks, export ------------------------------------------------- */

/* A snapshot's kind: the number beside the name. */
enum {
    BOXLITE_SNAPSHOT_KIND_DISK = 0, /* the disk only */
    BOXLITE_SNAPSHOT_KIND_FULL = 1, /* the disk, RAM and device state */
};

/* "disk", "full"; "unknown" otherwise. Static. */
BOXLITE_API const char *boxlite_snapshot_kind_name(int kind);

typedef struct {
    unsigned version; /* BOXLITE_SNAPSHOT_INFO_VERSION, set by the caller */
    char id[13];
    char box_id[13];
    char name[65];
    char kind[8];        /* "disk" or "full" (RAM and device state too) */
    int kind_code;       /* the same as a BOXLITE_SNAPSHOT_KIND_* */
    char parent[13];     /* id of the snapshot this one's disk rests on, or "" */
    uint64_t size;       /* bytes its files take on the host */
    char created_at[32]; /* RFC 3339, UTC */
} boxlite_snapshot_info;
#define BOXLITE_SNAPSHOT_INFO_VERSION 1
#define BOXLITE_SNAPSHOT_INFO_INIT                                                                 \
    {                                                                                              \
        .version = BOXLITE_SNAPSHOT_INFO_VERSION                                                   \
    }
BOXLITE_API int boxlite_snapshot_info_init(boxlite_snapshot_info *info, unsigned version);

#define BOXLITE_SNAPSHOT_MEMORY 1 /* create: a full snapshot (the box must be running) */
#define BOXLITE_SNAPSHOT_DETACH 2 /* restore/fork: the resumed box outlives this process */

/* Snapshot the box as name (1-64 of [A-Za-z0-9_.-]). A disk snapshot works on a running box
 * (its filesystems are frozen for the instant of the cut) or a stopped one; with
 * BOXLITE_SNAPSHOT_MEMORY the running box is paused while its RAM and device state are saved
 * too. out may be NULL; else out->version must be set. */
BOXLITE_API int boxlite_snapshot_create(boxlite_snapshot_info *out, boxlite_box *box,
                                        const char *name, int flags);

/* The box's snapshots, oldest first, as entries of the given version. *out (*count_out
 * entries) belongs to the caller: boxlite_snapshot_list_free. */
BOXLITE_API int boxlite_snapshot_list_v2(boxlite_snapshot_info **out, size_t *count_out,
                                         boxlite_box *box, unsigned version);
BOXLITE_API void boxlite_snapshot_list_free(boxlite_snapshot_info *list, size_t count);

/* boxlite_snapshot_list_v2 at version 1, for ever. */
BOXLITE_API int boxlite_snapshot_list(boxlite_snapshot_info **out, size_t *count_out,
                                      boxlite_box *box);

/* Bring the stopped box's disk back to snapshot name (by name or id); changes since are
 * dropped. A full snapshot also resumes the box, its processes running (like
 * boxlite_box_start, or detached with BOXLITE_SNAPSHOT_DETACH). */
BOXLITE_API int boxlite_snapshot_restore(boxlite_box *box, const char *name, int flags);

/* Delete snapshot name; layers resting on it absorb its data. The box must be stopped;
 * BOXLITE_ESTATE while forked boxes rest on it. */
BOXLITE_API int boxlite_snapshot_remove(boxlite_box *box, const char *name);

/* A new, independent box (stopped) with a copy of box's disk as of snapshot (NULL: its
 * current disk; the box must then be stopped), sharing the image's blocks. name may be NULL.
 * *out: boxlite_box_free. Arguments in the order of boxlite_box_fork. */
BOXLITE_API int boxlite_box_clone_v2(boxlite_box **out, boxlite_box *box, const char *snapshot,
                                     const char *name);

/* boxlite_box_clone_v2 with name and snapshot the other way round (0.x order; kept). */
BOXLITE_API int boxlite_box_clone(boxlite_box **out, boxlite_box *box, const char *name,
                                  const char *snapshot);

/* A new running box resumed from box's full snapshot: its own copy-on-write disk layer over
 * the snapshot's, the snapshot's memory, and a fresh identity (id, hostname, MAC, reseeded
 * RNG, clock set to now). name may be NULL. Published ports are not carried over. Flags:
 * BOXLITE_SNAPSHOT_DETACH. *out: boxlite_box_free. */
BOXLITE_API int boxlite_box_fork(boxlite_box **out, boxlite_box *box, const char *snapshot,
                                 const char *name, int flags);

/* Write box's disk (as of snapshot, or its current disk when NULL: the box must be stopped)
 * and settings to dest, one `.boxlite` archive (tar: manifest.json with sha256 of each
 * member, disk.qcow2 standalone). */
BOXLITE_API int boxlite_box_export(boxlite_box *box, const char *snapshot, const char *dest);

/* Make a new box from an archive written by boxlite_box_export, or by BoxLite's (the Rust
 * project's) export (docs/snapshots.md "BoxLite's archives"). Everything is checked before
 * anything lands in the store: member names, types and sizes, checksums, and that the disk is
 * a qcow2 with no backing or data file. untrusted adds a consistency check of the image.
 * name may be NULL. *out: boxlite_box_free. */
BOXLITE_API int boxlite_box_import(boxlite_box **out, boxlite_runtime *rt, const char *path,
                                   const char *name, int untrusted);

/* ---- Images ------------------------------------------------------------------------------ */

/* An image in the runtime's store. Made by the library (version set by it). */
typedef struct {
    unsigned version;  /* BOXLITE_IMAGE_INFO_VERSION the library wrote */
    char *name;        /* "docker.io/library/alpine:3.20" (or "…@sha256:…") */
    char *repository;  /* "docker.io/library/alpine" */
    char *tag;         /* "3.20", or "" when pulled by digest */
    char *id;          /* "sha256:…" of the image config */
    char *digest;      /* "sha256:…" of the manifest */
    uint64_t size;     /* bytes the image's base filesystem takes on disk */
    int64_t cached_at; /* unix seconds */
} boxlite_image_info;
#define BOXLITE_IMAGE_INFO_VERSION 1

enum {
    BOXLITE_PULL_RESOLVE = 0,  /* looking up the manifest (ref = the name tried) */
    BOXLITE_PULL_DOWNLOAD = 1, /* layer bytes arriving: bytes of total */
    BOXLITE_PULL_CACHED = 2,   /* layer already in the store */
    BOXLITE_PULL_UNPACK = 3,   /* writing layer into the image filesystem */
    BOXLITE_PULL_DONE = 4,
};

/* Made by the library for the call; version says which fields it has. */
typedef struct {
    unsigned version;   /* BOXLITE_PULL_PROGRESS_VERSION the library wrote */
    int phase;          /* BOXLITE_PULL_* */
    const char *ref;    /* the canonical name */
    const char *digest; /* the layer, or NULL */
    unsigned layer;     /* 1-based index of the layer */
    unsigned layers;    /* layers in the image */
    uint64_t bytes;     /* done so far */
    uint64_t total;     /* expected (0 when unknown) */
} boxlite_pull_progress;
#define BOXLITE_PULL_PROGRESS_VERSION 1

/* Called on the pulling thread; pointers are borrowed for the call. */
typedef void (*boxlite_pull_progress_fn)(void *ctx, const boxlite_pull_progress *p);

typedef struct {
    unsigned version; /* BOXLITE_PULL_OPTIONS_VERSION */
    boxlite_pull_progress_fn progress;
    void *progress_ctx;
} boxlite_pull_options;
#define BOXLITE_PULL_OPTIONS_VERSION 1
#define BOXLITE_PULL_OPTIONS_INIT                                                                  \
    {                                                                                              \
        BOXLITE_PULL_OPTIONS_VERSION, NULL, NULL                                                   \
    }
BOXLITE_API int boxlite_pull_options_init(boxlite_pull_options *opts, unsigned version);

/* Pull ref ("alpine", "ghcr.io/o/i:tag", "host/repo@sha256:…") into the store and prepare
 * its base filesystem; a cached image is not fetched again. opts may be NULL. *out (may be
 * NULL) belongs to the caller: boxlite_image_info_free. Auth failures are BOXLITE_EINVAL,
 * unknown names/tags BOXLITE_ENOTFOUND, bad content BOXLITE_EPROTO or BOXLITE_EIO. */
BOXLITE_API int boxlite_image_pull(boxlite_image_info **out, boxlite_runtime *rt, const char *ref,
                                   const boxlite_pull_options *opts);

/* Import an image from path: an OCI image layout directory, a `docker save` tarball, or a
 * plain root filesystem (directory or tarball). name NULL → the archive's own name, else
 * "localhost/<file name>:latest". *out (may be NULL): boxlite_image_info_free. */
BOXLITE_API int boxlite_image_import(boxlite_image_info **out, boxlite_runtime *rt,
                                     const char *path, const char *name);

/* Every image in the store, sorted by name, as entries of the given version. *out is an
 * array of *count_out entries that belongs to the caller: boxlite_image_list_free. */
BOXLITE_API int boxlite_image_list_v2(boxlite_image_info **out, size_t *count_out,
                                      boxlite_runtime *rt, unsigned version);
BOXLITE_API void boxlite_image_list_free(boxlite_image_info *list, size_t count);
BOXLITE_API void boxlite_image_info_free(boxlite_image_info *info);

/* boxlite_image_list_v2 at version 1, for ever. */
BOXLITE_API int boxlite_image_list(boxlite_image_info **out, size_t *count_out,
                                   boxlite_runtime *rt);

/* Remove the image named ref (or with that id / id prefix) from the store. Refused with
 * BOXLITE_ESTATE while a box uses it (any layer of the box, of its snapshots or of its forks
 * rests on the image's base), unless force: then only the name goes; the base and the config
 * stay while a box rests on them (the box keeps running and starting), and
 * boxlite_runtime_doctor with fix removes the base once no box does. */
BOXLITE_API int boxlite_image_remove(boxlite_runtime *rt, const char *ref, int force);

/* ---- Warm templates (docs/templates.md) ------------------------------------------------ */

typedef struct {
    unsigned version; /* BOXLITE_TEMPLATE_INFO_VERSION, set by the caller */
    char id[65];      /* sha256 of what it depends on */
    int usable;       /* 0: unfinished, or its kernel, agent or QEMU changed since (stale) */
    unsigned cpus;
    unsigned memory_mib;
    int network;      /* its box shape has a network device */
    unsigned volumes; /* ... and this many volume devices */
    char accel[8];    /* "kvm" or "tcg" */
    uint64_t size;    /* bytes its files take on the host */
    char created_at[32];
} boxlite_template_info;
#define BOXLITE_TEMPLATE_INFO_VERSION 1
#define BOXLITE_TEMPLATE_INFO_INIT                                                                 \
    {                                                                                              \
        .version = BOXLITE_TEMPLATE_INFO_VERSION                                                   \
    }

/* The runtime's templates, oldest first, as entries of the given version. *out (*count_out
 * entries) belongs to the caller: boxlite_template_list_free. */
BOXLITE_API int boxlite_template_list(boxlite_template_info **out, size_t *count_out,
                                      boxlite_runtime *rt, unsigned version);
BOXLITE_API void boxlite_template_list_free(boxlite_template_info *list, size_t count);

/* Remove the template with that id (or unique id prefix of at least 4 characters). A start
 * that uses it at the same time is not disturbed (its QEMU has the file open). */
BOXLITE_API int boxlite_template_remove(boxlite_runtime *rt, const char *id);

/* Remove templates that are unusable (stale or unfinished), or with all every one; *removed_out
 * (may be NULL) says how many went. One being built meanwhile is left alone. */
BOXLITE_API int boxlite_template_prune(size_t *removed_out, boxlite_runtime *rt, int all);

/* Make the template of a box shape now (a box of the default image with cpus and memory_mib,
 * 0 for the defaults, and a network), so later starts do not pay the cold boot. */
BOXLITE_API int boxlite_template_warm(boxlite_runtime *rt, unsigned cpus, unsigned memory_mib);

/* Where the time of a box's making and booting went: this handle's last boxlite_box_create
 * and its last start (any boxlite_box_start*, a snapshot restore or fork's start included),
 * timed where the work happens with one monotonic clock. Every field is milliseconds, -1 when
 * not measured: the handle did not create the box (boxlite_box_get), has not started it, or
 * the path had no such stage (each field says when). The stages of one call never overlap,
 * so each call's stages sum to at most its total.
 *
 * create (boxlite_box_create):
 *   image_prepare_ms     the image opened: resolved in the store, pulled with its layers
 *                        unpacked and its base ext4 built when missing (one step: a pull
 *                        builds the base, so the base's build is counted here, not in
 *                        guest_rootfs_ms); when the image is already prepared, the store
 *                        look-up it took
 *   filesystem_setup_ms  the box's directory made and its disk layer (qcow2 over the base)
 *   box_config_ms        the options checked and the box's row (resources, ports, volumes,
 *                        network policy, secrets) written and published
 *   create_ms            the whole call
 * start:
 *   guest_rootfs_ms      the guest's root disk readied for this boot: the image's base
 *                        pinned and checked present, the box disk made a layer
 *   box_spawn_ms         this boot's VM set up (command line, guest RAM file, a warm
 *                        template's disk, the main process's request), the monitor and QEMU
 *                        spawned, until QEMU answered on its control socket (for a warm
 *                        template or snapshot, after the monitor copied the saved RAM)
 *   guest_boot_ms        from QEMU's answer until the guest's agent answered: a cold boot's
 *                        kernel and agent start, or a template or snapshot's saved state
 *                        loaded until the restored guest answers
 *   container_init_ms    the box readied after its agent answered: attached, a template's
 *                        attach (disk, mounts, identity), its secrets CA, its main process
 *                        started (a cold boot's main process is started by the monitor as
 *                        the agent answers, inside guest_boot_ms)
 *   start_ms             the whole call
 *   When a start boots more than once (a template built then restored, a template that failed
 *   and was rebuilt, KVM that fell back to TCG), each stage is the sum over those boots.
 *   A start of a box that already runs only attaches: start_ms is set, the stages are -1. A
 *   start on a handle still attached to its running box does nothing and changes nothing.
 *   When the monitor could not say when QEMU answered, box_spawn_ms ends as the monitor is
 *   spawned and guest_boot_ms runs from there. A failed start leaves start_ms -1 and its
 *   stages as far as they got.
 * total_create_ms        create_ms + start_ms when this handle did both, else -1.
 * The handle's thread (like every box call); *out is the caller's. */
typedef struct {
    unsigned version; /* BOXLITE_BOX_TIMING_VERSION, set by the caller */
    int64_t image_prepare_ms;
    int64_t filesystem_setup_ms;
    int64_t box_config_ms;
    int64_t create_ms;
    int64_t guest_rootfs_ms;
    int64_t box_spawn_ms;
    int64_t guest_boot_ms;
    int64_t container_init_ms;
    int64_t start_ms;
    int64_t total_create_ms;
} boxlite_box_timing;
#define BOXLITE_BOX_TIMING_VERSION 1
#define BOXLITE_BOX_TIMING_INIT                                                                    \
    {                                                                                              \
        .version = BOXLITE_BOX_TIMING_VERSION                                                      \
    }
BOXLITE_API int boxlite_box_timing_init(boxlite_box_timing *timing, unsigned version);

/* This handle's timing (above) into out, which must have its version set; only that
 * version's fields are written. Never fails for a valid handle, running or not. */
BOXLITE_API int boxlite_box_get_timing(boxlite_box_timing *out, boxlite_box *box);

#ifdef __cplusplus
}
#endif
#endif
