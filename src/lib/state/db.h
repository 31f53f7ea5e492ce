/* db.h — the runtime's state in SQLite ($BOXLITE_HOME/boxlite.db, WAL): the schema and its
 * migrations, the box rows that every process and every box's shim share, snapshot rows and
 * image records. Every call is safe from any thread (the connection is FULLMUTEX). */
#ifndef BL_DB_H
#define BL_DB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct bl_db;

/* What one box is, as stored. Strings are malloc'd; bl_box_row_clear frees them. */
struct bl_box_row {
    char id[13];
    char *name;       /* NULL when unnamed */
    char *image;      /* the reference the box was created from */
    char *state;      /* configured, running, stopping, stopped, failed */
    char *created_at; /* RFC 3339, UTC */
    char *reason;     /* why it stopped or failed; "" when none */
    unsigned cpus;
    unsigned memory_mib;
    unsigned disk_size_gb; /* 0 → the image's size */
    int auto_remove;
    int detach;
    int shim_pid; /* 0 when not running */
    int qemu_pid;
    char **env;        /* "K=V" NULL-terminated; box defaults over the image's */
    char **entrypoint; /* NULL when the image's */
    char **cmd;        /* NULL when the image's */
    char *workdir;     /* NULL when the image's */
    char *user;        /* NULL when the image's */
    int network_disabled;
    char **ports;         /* groups of 4: protocol, host ip, host port, guest port */
    char **volumes;       /* groups of 3: "ro"|"rw", host path, guest path */
    char parent[13];      /* the snapshot it was forked or cloned from, or "" */
    char backing_box[13]; /* the box whose snapshot layer its disk rests on, or "" */
    char **allow_net;     /* egress allowlist (netpolicy.h specs), NULL when none */
    /* The image the box was made from, pinned: start and exec never resolve the reference
     * again. NULL while not known (a row of an older schema, an imported box not yet pinned). */
    char *image_id;      /* config digest "sha256:<hex>", or "" for the built-in default */
    char *image_rootfs;  /* <hex> of images/rootfs/<hex>.ext4 under every layer of its disk
                          * (its snapshots', its forks'), or "" when its disk stands alone */
    char accel[8];       /* "kvm" or "tcg": how its last boot ran; "" before one */
    char *image_ref;     /* the reference as its creator wrote it ("python:3.11"), or NULL (the
                          * built-in image, or a row of schema 6 and before): image then */
    int no_main;         /* 1: start no main process (the CLI's run runs its own command) */
    int has_exit_code;   /* 1 once its main process of the last boot exited */
    int exit_code;       /* that exit status (a shell's: 128+signal) */
    int64_t auto_delete; /* -1: auto_remove decides; 0: kept when stopped; N: deleted N s
                          * after it stopped */
    int64_t stopped_at;  /* unix seconds of its last move to stopped, 0 before one */
    int64_t state_at;    /* unix seconds of its last change of state, 0 before one */
};

/* One snapshot of a box (fixed size, nothing to free). */
struct bl_snap_row {
    char id[13];
    char box_id[13];
    char name[65];
    char kind[8];    /* "disk" or "full" */
    char parent[13]; /* the snapshot its disk layer rests on, or "" */
    uint64_t size;   /* bytes its files take */
    char created_at[32];
};

int bl_db_snap_insert(struct bl_db *s, const struct bl_snap_row *row);
/* The box's snapshots, oldest first. *out: free(). */
int bl_db_snap_list(struct bl_db *s, const char *box_id, struct bl_snap_row **out, size_t *count);
/* By name or id. BOXLITE_ENOTFOUND when none. */
int bl_db_snap_get(struct bl_db *s, const char *box_id, const char *name, struct bl_snap_row *out);
/* Delete one; its children take new_parent as their parent. */
int bl_db_snap_delete(struct bl_db *s, const char *id, const char *new_parent);
int bl_db_snap_delete_box(struct bl_db *s, const char *box_id);
/* How many boxes rest on box_id's files (on its snapshot snap_id when not NULL); their ids
 * go to ids (cap bytes, ", "-separated). */
int bl_db_box_dependents(struct bl_db *s, const char *box_id, const char *snap_id, char *ids,
                         size_t cap);

/* Open (creating/migrating) the database of home. *out: bl_db_close. */
int bl_db_open(struct bl_db **out, const char *home);
void bl_db_close(struct bl_db *s);

/* Insert a new box. BOXLITE_EEXISTS when the name is taken. */
int bl_db_box_insert(struct bl_db *s, const struct bl_box_row *row);

/* Find by exact id, else name, else unique id prefix. BOXLITE_ENOTFOUND otherwise. */
int bl_db_box_get(struct bl_db *s, const char *id_or_name, struct bl_box_row *out);

/* All boxes, newest first. *out: array of *count rows; free with bl_box_rows_free. */
int bl_db_box_list(struct bl_db *s, struct bl_box_row **out, size_t *count);

/* Set state, pids and reason of box id (reason NULL → "") when its stored state is one of
 * from (",a,b,": each word between commas). Only boxstate.c calls it: every other writer goes
 * through bl_box_transition, which validates the move. BOXLITE_ESTATE when the stored state
 * is not in from. */
int bl_db_box_set_state_from(struct bl_db *s, const char *id, const char *state, const char *from,
                             int shim_pid, int qemu_pid, const char *reason);

/* Record the accelerator ("kvm" or "tcg") box id booted with. */
int bl_db_box_set_accel(struct bl_db *s, const char *id, const char *accel);

int bl_db_box_delete(struct bl_db *s, const char *id);

/* Ids of the stopped boxes whose auto_delete time has come (only id's, when not NULL).
 * *out: NULL-terminated, bl_strv_free. */
int bl_db_box_expired(struct bl_db *s, const char *id, char ***out);

/* Record the main process's exit status (has_code 0: clear it, at the start of a boot). */
int bl_db_box_set_exit(struct bl_db *s, const char *id, int has_code, int code);

/* Pin box id to its image (NULL → not known). */
int bl_db_box_set_image(struct bl_db *s, const char *id, const char *image_id, const char *rootfs);

/* Lists below are NULL-terminated string vectors: bl_strv_free. */
/* The ids of the boxes whose disks rest on images/rootfs/<rootfs>.ext4. */
int bl_db_box_on_rootfs(struct bl_db *s, const char *rootfs, char ***ids);
/* The ids of the boxes whose disks rest on box_id's layers (forks). */
int bl_db_box_forks(struct bl_db *s, const char *box_id, char ***ids);
/* The ids of the boxes not pinned to their image yet. */
int bl_db_box_unpinned(struct bl_db *s, char ***ids);
/* Every base (rootfs != 0) or image config digest some box is pinned to. */
int bl_db_box_pins(struct bl_db *s, int rootfs, char ***out);

void bl_box_row_clear(struct bl_box_row *row);
void bl_box_rows_free(struct bl_box_row *rows, size_t count);

/* secs (unix time) as RFC 3339, UTC, into out[32] ("" if it cannot be written). */
void bl_rfc3339(char out[32], time_t secs);
/* Current UTC time as RFC 3339 into out[32]. */
void bl_rfc3339_now(char out[32]);

/* One image in the store, by the name it was pulled or imported as. Strings malloc'd. */
struct bl_image_record {
    char *name;     /* canonical reference, "registry/repo:tag" or "registry/repo@digest" */
    char *manifest; /* manifest digest */
    char *config;   /* config digest = image id */
    char *rootfs;   /* hex of the rootfs file images/rootfs/<hex>.ext4 */
    uint64_t size;  /* bytes of the base file */
    int64_t created;
};
void bl_image_record_clear(struct bl_image_record *r);
/* Free n records and the array (NULL accepted). */
void bl_image_records_free(struct bl_image_record *v, size_t n);
/* Write r under r->name: replace 1 overwrites a record of that name, 0 keeps it. */
int bl_db_image_put(struct bl_db *s, const struct bl_image_record *r, int replace);
/* BOXLITE_ENOTFOUND when no record has that name. *out: bl_image_record_clear. */
int bl_db_image_get(struct bl_db *s, const char *name, struct bl_image_record *out);
int bl_db_image_remove(struct bl_db *s, const char *name);
/* Every record by name; *out: bl_image_records_free(*out, *n_out). */
int bl_db_image_list(struct bl_db *s, struct bl_image_record **out, size_t *n_out);

#endif
