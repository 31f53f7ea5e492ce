/* db.c — the runtime's state in SQLite ($BOXLITE_HOME/boxlite.db, WAL): the schema and its
 * migrations, the box rows that every process and every box's shim share, snapshot rows and
 * image records. */
#include "db.h"
#include "error.h"
#include "proto.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION  10
#define BUSY_TIMEOUT_MS 30000

struct bl_db {
    sqlite3 *db;
};

/* Migration N brings the schema from version N-1 to N. Never edit one that shipped. */
static const char *const migrations[] = {
    NULL,
    "CREATE TABLE boxes ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT UNIQUE,"
    "  image TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  cpus INTEGER NOT NULL,"
    "  memory_mib INTEGER NOT NULL,"
    "  disk_size_gb INTEGER NOT NULL DEFAULT 0,"
    "  auto_remove INTEGER NOT NULL DEFAULT 0,"
    "  detach INTEGER NOT NULL DEFAULT 0,"
    "  shim_pid INTEGER NOT NULL DEFAULT 0,"
    "  qemu_pid INTEGER NOT NULL DEFAULT 0,"
    "  env BLOB, entrypoint BLOB, cmd BLOB, workdir TEXT, user TEXT,"
    "  seq INTEGER NOT NULL DEFAULT 0"
    ");",
    "ALTER TABLE boxes ADD COLUMN network_disabled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN ports BLOB;"
    "ALTER TABLE boxes ADD COLUMN volumes BLOB;",
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY,"
    "  box_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  parent TEXT NOT NULL DEFAULT '',"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE (box_id, name)"
    ");"
    "ALTER TABLE boxes ADD COLUMN parent TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE boxes ADD COLUMN backing_box TEXT NOT NULL DEFAULT '';",
    "ALTER TABLE boxes ADD COLUMN allow_net BLOB;",
    /* 5: each box pinned to its image: config digest and the base its disk chain rests on
     * (NULL: not known yet — rows of schema 4, and imported boxes until pinned) */
    "ALTER TABLE boxes ADD COLUMN image_id TEXT;"
    "ALTER TABLE boxes ADD COLUMN image_rootfs TEXT;"
    "CREATE INDEX boxes_image_rootfs ON boxes (image_rootfs);",
    /* 6: the accelerator of the box's last boot (box info's accel) */
    "ALTER TABLE boxes ADD COLUMN accel TEXT NOT NULL DEFAULT '';",
    /* 7: image records (were images/refs/<sha256 of name>.json: bl_store_records_migrate) */
    "CREATE TABLE images ("
    "  name TEXT PRIMARY KEY,"
    "  manifest TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  rootfs TEXT NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX images_rootfs ON images (rootfs);",
    /* 8: the image reference as the box's creator wrote it, beside the name it resolved to
     * (box info's image_ref; NULL: the same as image) */
    "ALTER TABLE boxes ADD COLUMN image_ref TEXT;",
    /* 9: the main process (its exit status, NULL while none; no_main: the box runs none) and
     * auto_delete (-1: auto_remove decides; 0: kept; N: deleted N s after it stopped) */
    "ALTER TABLE boxes ADD COLUMN no_main INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN exit_code INTEGER;"
    "ALTER TABLE boxes ADD COLUMN auto_delete INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE boxes ADD COLUMN stopped_at INTEGER NOT NULL DEFAULT 0;",
    /* 10: when its state last changed (unix seconds; 0: not since it was created) */
    "ALTER TABLE boxes ADD COLUMN state_at INTEGER NOT NULL DEFAULT 0;",
};

void bl_rfc3339(char out[32], time_t secs)
{
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

void bl_rfc3339_now(char out[32])
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    bl_rfc3339(out, ts.tv_sec);
}

static int db_err(struct bl_db *s, const char *what)
{
    int ext = sqlite3_extended_errcode(s->db);
    int code = ext == SQLITE_CONSTRAINT_UNIQUE ? BOXLITE_EEXISTS : BOXLITE_EIO;

    return bl_err(code, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_sql(struct bl_db *s, const char *sql)
{
    char *msg = NULL;
    int rc = 0;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        rc = bl_err(BOXLITE_EIO, "state database: %s", msg ? msg : "error");
    sqlite3_free(msg);
    return rc;
}

/* Switching a new database to WAL takes an exclusive lock without calling the busy handler:
 * when several processes open a new home at once, retry for as long as the busy timeout. */
static int exec_sql_busy(struct bl_db *s, const char *sql)
{
    int rc = exec_sql(s, sql);

    for (int waited = 0; rc != 0 && waited < BUSY_TIMEOUT_MS; waited += 20) {
        int code = sqlite3_errcode(s->db);
        if (code != SQLITE_BUSY && code != SQLITE_LOCKED)
            break;
        usleep(20000);
        rc = exec_sql(s, sql);
    }
    return rc;
}

static int user_version(struct bl_db *s, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = db_err(s, "read schema version");
    else
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct bl_db *s)
{
    int version = 0;
    int rc = user_version(s, &version);

    /* the common case reads one page and takes no write lock */
    if (rc == 0 && version == SCHEMA_VERSION)
        return 0;
    rc = exec_sql(s, "BEGIN IMMEDIATE");
    if (rc != 0)
        return rc;
    rc = user_version(s, &version); /* again, under the lock: another process may have */
    if (rc == 0 && version > SCHEMA_VERSION)
        rc = bl_err(BOXLITE_ESTATE, "state database has schema %d, newer than this library's %d",
                    version, SCHEMA_VERSION);
    for (int v = version + 1; rc == 0 && v <= SCHEMA_VERSION; v++) {
        char pragma[64];
        rc = exec_sql(s, migrations[v]);
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
        if (rc == 0)
            rc = exec_sql(s, pragma);
    }
    exec_sql(s, rc == 0 ? "COMMIT" : "ROLLBACK");
    return rc;
}

int bl_db_open(struct bl_db **out, const char *home)
{
    struct bl_db *s = calloc(1, sizeof(*s));
    char *path = bl_strdupf("%s/boxlite.db", home);
    int rc = 0;

    if (!s || !path) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = bl_err(BOXLITE_EIO, "open state database %s: %s", path,
                    s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    rc = exec_sql_busy(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
    if (rc == 0)
        rc = migrate(s);
out:
    free(path);
    if (rc != 0)
        bl_db_close(s);
    else
        *out = s;
    return rc;
}

void bl_db_close(struct bl_db *s)
{
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    free(s);
}

static int bind_strv(sqlite3_stmt *st, int idx, char *const *v)
{
    struct bl_wbuf w = {0};
    size_t n = bl_strv_len((const char *const *)v);
    int rc;

    if (!v)
        return sqlite3_bind_null(st, idx);
    bl_wbuf_put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        bl_wbuf_put_str(&w, v[i]);
    rc = w.failed ? SQLITE_NOMEM
                  : sqlite3_bind_blob(st, idx, w.data ? (const void *)w.data : "", (int)w.len,
                                      SQLITE_TRANSIENT);
    bl_wbuf_free(&w);
    return rc;
}

static char **column_strv(sqlite3_stmt *st, int col)
{
    struct bl_rbuf r = {sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col), 0};
    uint32_t n = 0;
    char **v;

    if (sqlite3_column_type(st, col) == SQLITE_NULL || bl_rbuf_u32(&r, &n) != 0 || n > BL_MAX_ENV)
        return NULL;
    v = calloc(n + 1, sizeof(*v));
    for (uint32_t i = 0; v && i < n; i++) {
        if (bl_rbuf_str(&r, &v[i]) != 0) {
            bl_strv_free(v);
            v = NULL;
        }
    }
    return v;
}

static char *column_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? strdup((const char *)t) : NULL;
}

static void bind_text_or_null(sqlite3_stmt *st, int idx, const char *s)
{
    if (s)
        sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, idx);
}

/* Room for one more element of size in the array *v holding n of *cap (doubling). */
static int grow(void *v, size_t *cap, size_t n, size_t size)
{
    void **pv = v, *nv;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 8;
    nv = realloc(*pv, ncap * size);
    if (!nv)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    *pv = nv;
    *cap = ncap;
    return 0;
}

int bl_db_box_insert(struct bl_db *s, const struct bl_box_row *r)
{
    static const char sql[] =
        "INSERT INTO boxes (id, name, image, state, created_at, cpus, memory_mib, "
        "disk_size_gb, auto_remove, detach, env, entrypoint, cmd, workdir, user, "
        "network_disabled, ports, volumes, parent, backing_box, allow_net, image_id, "
        "image_rootfs, image_ref, no_main, auto_delete, seq) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
        "?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "
        "(SELECT IFNULL(MAX(seq), 0) + 1 FROM boxes))";
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare insert");
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 2, r->name);
    sqlite3_bind_text(st, 3, r->image, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->created_at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 6, (int)r->cpus);
    sqlite3_bind_int(st, 7, (int)r->memory_mib);
    sqlite3_bind_int(st, 8, (int)r->disk_size_gb);
    sqlite3_bind_int(st, 9, r->auto_remove);
    sqlite3_bind_int(st, 10, r->detach);
    bind_strv(st, 11, r->env);
    bind_strv(st, 12, r->entrypoint);
    bind_strv(st, 13, r->cmd);
    bind_text_or_null(st, 14, r->workdir);
    bind_text_or_null(st, 15, r->user);
    sqlite3_bind_int(st, 16, r->network_disabled);
    bind_strv(st, 17, r->ports);
    bind_strv(st, 18, r->volumes);
    sqlite3_bind_text(st, 19, r->parent, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 20, r->backing_box, -1, SQLITE_TRANSIENT);
    bind_strv(st, 21, r->allow_net);
    bind_text_or_null(st, 22, r->image_id);
    bind_text_or_null(st, 23, r->image_rootfs);
    bind_text_or_null(st, 24, r->image_ref);
    sqlite3_bind_int(st, 25, r->no_main);
    sqlite3_bind_int64(st, 26, r->auto_delete);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(s, "insert box");
        if (rc == BOXLITE_EEXISTS)
            rc = bl_err(BOXLITE_EEXISTS, "a box named \"%s\" already exists", r->name);
    }
    sqlite3_finalize(st);
    return rc;
}

#define ROW_COLUMNS                                                                                \
    "id, name, image, state, created_at, reason, cpus, memory_mib, disk_size_gb, "                 \
    "auto_remove, detach, shim_pid, qemu_pid, env, entrypoint, cmd, workdir, user, "               \
    "network_disabled, ports, volumes, parent, backing_box, allow_net, image_id, image_rootfs, "   \
    "accel, image_ref, no_main, exit_code, auto_delete, stopped_at, state_at"

static int read_row(sqlite3_stmt *st, struct bl_box_row *r)
{
    const unsigned char *id = sqlite3_column_text(st, 0);

    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id ? (const char *)id : "");
    r->name = column_str(st, 1);
    r->image = column_str(st, 2);
    r->state = column_str(st, 3);
    r->created_at = column_str(st, 4);
    r->reason = column_str(st, 5);
    r->cpus = (unsigned)sqlite3_column_int(st, 6);
    r->memory_mib = (unsigned)sqlite3_column_int(st, 7);
    r->disk_size_gb = (unsigned)sqlite3_column_int(st, 8);
    r->auto_remove = sqlite3_column_int(st, 9);
    r->detach = sqlite3_column_int(st, 10);
    r->shim_pid = sqlite3_column_int(st, 11);
    r->qemu_pid = sqlite3_column_int(st, 12);
    r->env = column_strv(st, 13);
    r->entrypoint = column_strv(st, 14);
    r->cmd = column_strv(st, 15);
    r->workdir = column_str(st, 16);
    r->user = column_str(st, 17);
    r->network_disabled = sqlite3_column_int(st, 18);
    r->ports = column_strv(st, 19);
    r->volumes = column_strv(st, 20);
    snprintf(r->parent, sizeof(r->parent), "%s",
             sqlite3_column_text(st, 21) ? (const char *)sqlite3_column_text(st, 21) : "");
    snprintf(r->backing_box, sizeof(r->backing_box), "%s",
             sqlite3_column_text(st, 22) ? (const char *)sqlite3_column_text(st, 22) : "");
    snprintf(r->accel, sizeof(r->accel), "%s",
             sqlite3_column_text(st, 26) ? (const char *)sqlite3_column_text(st, 26) : "");
    r->allow_net = column_strv(st, 23);
    r->image_id = column_str(st, 24);
    r->image_rootfs = column_str(st, 25);
    r->image_ref = column_str(st, 27);
    r->no_main = sqlite3_column_int(st, 28);
    r->has_exit_code = sqlite3_column_type(st, 29) != SQLITE_NULL;
    r->exit_code = sqlite3_column_int(st, 29);
    r->auto_delete = sqlite3_column_int64(st, 30);
    r->stopped_at = sqlite3_column_int64(st, 31);
    r->state_at = sqlite3_column_int64(st, 32);
    if ((sqlite3_column_type(st, 24) != SQLITE_NULL && !r->image_id) ||
        (sqlite3_column_type(st, 27) != SQLITE_NULL && !r->image_ref) ||
        (sqlite3_column_type(st, 25) != SQLITE_NULL && !r->image_rootfs) || !r->image ||
        !r->state || !r->created_at || !r->reason) {
        bl_box_row_clear(r);
        return bl_err(BOXLITE_ENOMEM, "out of memory reading a box");
    }
    return 0;
}

/* A query with one text parameter expected to match at most one row. */
static int query_one(struct bl_db *s, const char *sql, const char *arg, struct bl_box_row *out,
                     int *found)
{
    sqlite3_stmt *st = NULL;
    struct bl_box_row tmp;
    int rc = 0, step;

    *found = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare query");
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = read_row(st, &tmp);
        if (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
            bl_box_row_clear(&tmp);
            rc = bl_err(BOXLITE_EINVAL, "\"%s\" matches more than one box", arg);
        } else if (rc == 0) {
            *out = tmp;
            *found = 1;
        }
    } else if (step != SQLITE_DONE) {
        rc = db_err(s, "query box");
    }
    sqlite3_finalize(st);
    return rc;
}

int bl_db_box_get(struct bl_db *s, const char *key, struct bl_box_row *out)
{
    static const char *const sqls[] = {
        "SELECT " ROW_COLUMNS " FROM boxes WHERE id = ?1",
        "SELECT " ROW_COLUMNS " FROM boxes WHERE name = ?1",
        "SELECT " ROW_COLUMNS " FROM boxes WHERE substr(id, 1, length(?1)) = ?1",
    };
    int found = 0, rc = 0;

    if (!key || !*key)
        return bl_err(BOXLITE_EINVAL, "box id or name is empty");
    for (size_t i = 0; i < 3 && !found && rc == 0; i++)
        rc = query_one(s, sqls[i], key, out, &found);
    if (rc == 0 && !found)
        rc = bl_err(BOXLITE_ENOTFOUND, "no such box: %s", key);
    return rc;
}

int bl_db_box_list(struct bl_db *s, struct bl_box_row **out, size_t *count)
{
    sqlite3_stmt *st = NULL;
    struct bl_box_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, "SELECT " ROW_COLUMNS " FROM boxes ORDER BY seq DESC", -1, &st,
                           NULL) != SQLITE_OK)
        return db_err(s, "prepare list");
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        rc = grow(&rows, &cap, n, sizeof(*rows));
        if (rc == 0)
            rc = read_row(st, &rows[n]);
        n += rc == 0;
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        bl_box_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *count = n;
    return 0;
}

static int changes_one(struct bl_db *s, sqlite3_stmt *st, const char *id, const char *what)
{
    int rc = 0;

    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_err(s, what);
    else if (sqlite3_changes(s->db) == 0)
        rc = bl_err(BOXLITE_ENOTFOUND, "no such box: %s", id);
    sqlite3_finalize(st);
    return rc;
}

/* Why an UPDATE guarded by the stored state matched nothing: no row, or another state. */
static int state_refused(struct bl_db *s, const char *id, const char *to)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(s->db, "SELECT state FROM boxes WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, "prepare state");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = bl_err(BOXLITE_ESTATE, "box %s is %s: it cannot become %s", id,
                    (const char *)sqlite3_column_text(st, 0), to);
    else
        rc = bl_err(BOXLITE_ENOTFOUND, "no such box: %s", id);
    sqlite3_finalize(st);
    return rc;
}

int bl_db_box_set_state_from(struct bl_db *s, const char *id, const char *state, const char *from,
                             int shim_pid, int qemu_pid, const char *reason)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db,
                           "UPDATE boxes SET state = ?2, shim_pid = ?3, qemu_pid = ?4, "
                           "reason = ?5, stopped_at = CASE WHEN ?2 = 'stopped' THEN "
                           "CAST(strftime('%s', 'now') AS INTEGER) ELSE stopped_at END, "
                           "state_at = CAST(strftime('%s', 'now') AS INTEGER) "
                           "WHERE id = ?1 AND instr(?6, ',' || state || ',') > 0",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare update");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, shim_pid);
    sqlite3_bind_int(st, 4, qemu_pid);
    sqlite3_bind_text(st, 5, reason ? reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, from, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_err(s, "update box state");
    else if (sqlite3_changes(s->db) == 0)
        rc = state_refused(s, id, state);
    sqlite3_finalize(st);
    return rc;
}

int bl_db_box_set_image(struct bl_db *s, const char *id, const char *image_id, const char *rootfs)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->db, "UPDATE boxes SET image_id = ?2, image_rootfs = ?3 WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare pin");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 2, image_id);
    bind_text_or_null(st, 3, rootfs);
    return changes_one(s, st, id, "pin box to its image");
}

static int box_strings(struct bl_db *s, const char *sql, const char *arg, char ***out)
{
    sqlite3_stmt *st = NULL;
    char **v = calloc(1, sizeof(*v));
    size_t n = 0;
    int rc = v ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory"), step;

    if (rc == 0 && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        rc = db_err(s, "prepare query");
    if (rc == 0 && arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        char **nv = realloc(v, (n + 2) * sizeof(*v));
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (nv)
            v = nv;
        if (!nv || !(v[n] = strdup(t ? (const char *)t : ""))) {
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
            break;
        }
        v[++n] = NULL;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(s, "query boxes");
    sqlite3_finalize(st);
    if (rc != 0)
        bl_strv_free(v);
    else
        *out = v;
    return rc;
}

int bl_db_box_on_rootfs(struct bl_db *s, const char *rootfs, char ***ids)
{
    return box_strings(s, "SELECT id FROM boxes WHERE image_rootfs = ?1 ORDER BY seq", rootfs, ids);
}

int bl_db_box_forks(struct bl_db *s, const char *box_id, char ***ids)
{
    return box_strings(s, "SELECT id FROM boxes WHERE backing_box = ?1 ORDER BY seq", box_id, ids);
}

int bl_db_box_unpinned(struct bl_db *s, char ***ids)
{
    return box_strings(s,
                       "SELECT id FROM boxes WHERE image_rootfs IS NULL OR image_id IS NULL "
                       "ORDER BY seq",
                       NULL, ids);
}

int bl_db_box_pins(struct bl_db *s, int rootfs, char ***out)
{
    return box_strings(s,
                       rootfs ? "SELECT DISTINCT image_rootfs FROM boxes WHERE image_rootfs <> ''"
                              : "SELECT DISTINCT image_id FROM boxes WHERE image_id <> ''",
                       NULL, out);
}

int bl_db_box_set_accel(struct bl_db *s, const char *id, const char *accel)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->db, "UPDATE boxes SET accel = ?2 WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, "prepare update");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, accel, -1, SQLITE_TRANSIENT);
    return changes_one(s, st, id, "record the box's accelerator");
}

int bl_db_box_set_exit(struct bl_db *s, const char *id, int has_code, int code)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->db, "UPDATE boxes SET exit_code = ?2 WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, "prepare update");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (has_code)
        sqlite3_bind_int(st, 2, code);
    else
        sqlite3_bind_null(st, 2);
    return changes_one(s, st, id, "record the main process's exit status");
}

int bl_db_box_expired(struct bl_db *s, const char *id, char ***out)
{
    return box_strings(s,
                       "SELECT id FROM boxes WHERE state = 'stopped' AND auto_delete > 0 AND "
                       "stopped_at > 0 AND stopped_at + auto_delete <= "
                       "CAST(strftime('%s', 'now') AS INTEGER) AND (?1 IS NULL OR id = ?1)",
                       id, out);
}

int bl_db_box_delete(struct bl_db *s, const char *id)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(s->db, "DELETE FROM boxes WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare delete");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return changes_one(s, st, id, "delete box");
}

void bl_box_row_clear(struct bl_box_row *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->image);
    free(r->state);
    free(r->created_at);
    free(r->reason);
    bl_strv_free(r->env);
    bl_strv_free(r->entrypoint);
    bl_strv_free(r->cmd);
    free(r->workdir);
    free(r->user);
    free(r->image_id);
    free(r->image_rootfs);
    free(r->image_ref);
    bl_strv_free(r->ports);
    bl_strv_free(r->volumes);
    bl_strv_free(r->allow_net);
    memset(r, 0, sizeof(*r));
}

void bl_box_rows_free(struct bl_box_row *rows, size_t count)
{
    for (size_t i = 0; rows && i < count; i++)
        bl_box_row_clear(&rows[i]);
    free(rows);
}

/* ---- snapshots ---- */

#define SNAP_COLUMNS "id, box_id, name, kind, parent, size, created_at"

static void col_copy(char *out, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void read_snap(sqlite3_stmt *st, struct bl_snap_row *r)
{
    memset(r, 0, sizeof(*r));
    col_copy(r->id, sizeof(r->id), st, 0);
    col_copy(r->box_id, sizeof(r->box_id), st, 1);
    col_copy(r->name, sizeof(r->name), st, 2);
    col_copy(r->kind, sizeof(r->kind), st, 3);
    col_copy(r->parent, sizeof(r->parent), st, 4);
    r->size = (uint64_t)sqlite3_column_int64(st, 5);
    col_copy(r->created_at, sizeof(r->created_at), st, 6);
}

int bl_db_snap_insert(struct bl_db *s, const struct bl_snap_row *r)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(
            s->db, "INSERT INTO snapshots (" SNAP_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare snapshot insert");
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r->box_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->parent, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->size);
    sqlite3_bind_text(st, 7, r->created_at, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(s, "insert snapshot");
        if (rc == BOXLITE_EEXISTS)
            rc = bl_err(BOXLITE_EEXISTS, "box %s already has a snapshot named \"%s\"", r->box_id,
                        r->name);
    }
    sqlite3_finalize(st);
    return rc;
}

int bl_db_snap_list(struct bl_db *s, const char *box_id, struct bl_snap_row **out, size_t *count)
{
    sqlite3_stmt *st = NULL;
    struct bl_snap_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db,
                           "SELECT " SNAP_COLUMNS " FROM snapshots WHERE box_id = ?1 "
                           "ORDER BY created_at, rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare snapshot list");
    sqlite3_bind_text(st, 1, box_id, -1, SQLITE_TRANSIENT);
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        rc = grow(&rows, &cap, n, sizeof(*rows));
        if (rc == 0)
            read_snap(st, &rows[n++]);
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        free(rows);
        return rc;
    }
    *out = rows;
    *count = n;
    return 0;
}

int bl_db_snap_get(struct bl_db *s, const char *box_id, const char *name, struct bl_snap_row *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, step;

    if (sqlite3_prepare_v2(s->db,
                           "SELECT " SNAP_COLUMNS " FROM snapshots WHERE box_id = ?1 AND "
                           "(name = ?2 OR id = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare snapshot query");
    sqlite3_bind_text(st, 1, box_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_snap(st, out);
    else if (step == SQLITE_DONE)
        rc = bl_err(BOXLITE_ENOTFOUND, "box %s has no snapshot \"%s\"", box_id, name);
    else
        rc = db_err(s, "query snapshot");
    sqlite3_finalize(st);
    return rc;
}

static int exec_bound(struct bl_db *s, const char *sql, const char *a, const char *b,
                      const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_err(s, what);
    sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_err(s, what);
    sqlite3_finalize(st);
    return rc;
}

int bl_db_snap_delete(struct bl_db *s, const char *id, const char *new_parent)
{
    int rc = exec_bound(s, "UPDATE snapshots SET parent = ?2 WHERE parent = ?1", id, new_parent,
                        "reparent snapshots");

    if (rc == 0)
        rc = exec_bound(s, "DELETE FROM snapshots WHERE id = ?1", id, NULL, "delete snapshot");
    return rc;
}

int bl_db_snap_delete_box(struct bl_db *s, const char *box_id)
{
    return exec_bound(s, "DELETE FROM snapshots WHERE box_id = ?1", box_id, NULL,
                      "delete snapshots");
}

int bl_db_box_dependents(struct bl_db *s, const char *box_id, const char *snap_id, char *ids,
                         size_t cap)
{
    sqlite3_stmt *st = NULL;
    int n = 0;

    ids[0] = '\0';
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id FROM boxes WHERE backing_box = ?1 AND "
                           "(?2 IS NULL OR parent = ?2) ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare dependents");
    sqlite3_bind_text(st, 1, box_id, -1, SQLITE_TRANSIENT);
    if (snap_id)
        sqlite3_bind_text(st, 2, snap_id, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t k = strlen(ids);
        snprintf(ids + k, cap - k, "%s%s", n ? ", " : "", sqlite3_column_text(st, 0));
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

/* ---- image records -------------------------------------------------------------------- */

void bl_image_record_clear(struct bl_image_record *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->manifest);
    free(r->config);
    free(r->rootfs);
    memset(r, 0, sizeof(*r));
}

int bl_db_image_put(struct bl_db *s, const struct bl_image_record *r, int replace)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db,
                           replace ? "INSERT OR REPLACE INTO images VALUES (?1,?2,?3,?4,?5,?6)"
                                   : "INSERT OR IGNORE INTO images VALUES (?1,?2,?3,?4,?5,?6)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare image record");
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, r->manifest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, r->config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r->rootfs, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)r->size);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->created);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_err(s, "write image record");
    sqlite3_finalize(st);
    return rc;
}

static int read_image(sqlite3_stmt *st, struct bl_image_record *r)
{
    memset(r, 0, sizeof(*r));
    r->name = column_str(st, 0);
    r->manifest = column_str(st, 1);
    r->config = column_str(st, 2);
    r->rootfs = column_str(st, 3);
    r->size = (uint64_t)sqlite3_column_int64(st, 4);
    r->created = sqlite3_column_int64(st, 5);
    if (r->name && r->manifest && r->config && r->rootfs)
        return 0;
    bl_image_record_clear(r);
    return bl_err(BOXLITE_ENOMEM, "out of memory");
}

int bl_db_image_get(struct bl_db *s, const char *name, struct bl_image_record *out)
{
    sqlite3_stmt *st = NULL;
    int rc, step;

    if (sqlite3_prepare_v2(s->db, "SELECT * FROM images WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, "prepare image get");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = read_image(st, out);
    else if (step == SQLITE_DONE)
        rc = bl_err(BOXLITE_ENOTFOUND, "image %s is not in the store", name);
    else
        rc = db_err(s, "read image record");
    sqlite3_finalize(st);
    return rc;
}

int bl_db_image_remove(struct bl_db *s, const char *name)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(s->db, "DELETE FROM images WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare image remove");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_err(s, "remove image record");
    else if (sqlite3_changes(s->db) == 0)
        rc = bl_err(BOXLITE_ENOTFOUND, "no image %s", name);
    sqlite3_finalize(st);
    return rc;
}

void bl_image_records_free(struct bl_image_record *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        bl_image_record_clear(&v[i]);
    free(v);
}

int bl_db_image_list(struct bl_db *s, struct bl_image_record **out, size_t *n_out)
{
    sqlite3_stmt *st = NULL;
    struct bl_image_record *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step = SQLITE_DONE;

    if (sqlite3_prepare_v2(s->db, "SELECT * FROM images ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        return db_err(s, "prepare image list");
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow(&v, &cap, n, sizeof(*v));
        if (rc == 0)
            rc = read_image(st, &v[n]);
        n += rc == 0;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_err(s, "list images");
    sqlite3_finalize(st);
    if (rc != 0) {
        bl_image_records_free(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}
