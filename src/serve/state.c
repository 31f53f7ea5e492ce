/* state.c — what `boxlite serve` must remember across restarts: the Idempotency-Key results
 * (idempotency.c) and which principal made which box (boxes.c, the per-key box allowance).
 * Kept in $BOXLITE_HOME/serve.db, a server-owned SQLite file (the store's db has no public
 * API for it); every write is one SQLite transaction, so a crash leaves the old or the new
 * row, never half of one. One connection, serialised by state_mu. */
#include "serve.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static sqlite3 *state_db;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS idem (key TEXT PRIMARY KEY, fp BLOB NOT NULL, at INTEGER NOT "
    "NULL, status INTEGER NOT NULL, body BLOB, location TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS owners (box_id TEXT PRIMARY KEY, principal TEXT NOT NULL);";

int state_open(const char *home)
{
    char path[4096];
    int rc = -1;

    snprintf(path, sizeof(path), "%s/serve.db", home);
    if (sqlite3_open_v2(path, &state_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(state_db, 5000);
    if (sqlite3_exec(state_db, schema, NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        fprintf(stderr, "boxlite serve: cannot open %s: %s\n", path,
                state_db != NULL ? sqlite3_errmsg(state_db) : "out of memory");
        sqlite3_close(state_db);
        state_db = NULL;
    }
    return rc;
}

void state_close(void)
{
    pthread_mutex_lock(&state_mu);
    sqlite3_close(state_db);
    state_db = NULL;
    pthread_mutex_unlock(&state_mu);
}

/* Prepare sql, bind text/blob/int arguments by a tiny format ('t' text, 'b' blob + length,
 * 'i' int64), step it once. Under state_mu. A failure is logged: the in-memory state stays
 * right for this server's life. */
static int exec_locked(const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st = NULL;
    int rc = -1, i = 1;

    if (state_db == NULL || sqlite3_prepare_v2(state_db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    for (const char *f = fmt; *f != '\0'; f++, i++) {
        if (*f == 't') {
            sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        } else if (*f == 'b') {
            const void *p = va_arg(ap, const void *);
            int n = (int)va_arg(ap, size_t);
            sqlite3_bind_blob(st, i, p != NULL ? p : "", n, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_int64(st, i, va_arg(ap, sqlite3_int64));
        }
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc != 0 && state_db != NULL)
        fprintf(stderr, "boxlite serve: serve.db: %s\n", sqlite3_errmsg(state_db));
    sqlite3_finalize(st);
    return rc;
}

static int state_exec(const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    pthread_mutex_lock(&state_mu);
    rc = exec_locked(sql, fmt, ap);
    pthread_mutex_unlock(&state_mu);
    va_end(ap);
    return rc;
}

int state_idem_put(const char *key, const unsigned char fp[32], int64_t at, unsigned status,
                   const char *body, size_t len, const char *location)
{
    return state_exec("INSERT OR REPLACE INTO idem VALUES (?, ?, ?, ?, ?, ?)", "tbiibt", key, fp,
                      (size_t)32, (sqlite3_int64)at, (sqlite3_int64)status, body, len, location);
}

int state_idem_del(const char *key)
{
    return state_exec("DELETE FROM idem WHERE key = ?", "t", key);
}

int state_owner_put(const char *box_id, const char *principal)
{
    return state_exec("INSERT OR REPLACE INTO owners VALUES (?, ?)", "tt", box_id, principal);
}

int state_owner_del(const char *box_id)
{
    return state_exec("DELETE FROM owners WHERE box_id = ?", "t", box_id);
}

/* Column i as text, "" when NULL; a row from a file someone edited is still bounded. */
static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s != NULL ? (const char *)s : "";
}

int state_idem_load(void (*cb)(void *ctx, const struct state_idem *e), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    pthread_mutex_lock(&state_mu);
    if (state_db == NULL || sqlite3_prepare_v2(state_db,
                                               "SELECT key, fp, at, status, body, location FROM "
                                               "idem ORDER BY at",
                                               -1, &st, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct state_idem e = {0};
        if (sqlite3_column_bytes(st, 1) != 32)
            continue;
        e.key = col_text(st, 0);
        e.fp = sqlite3_column_blob(st, 1);
        e.at = sqlite3_column_int64(st, 2);
        e.status = (unsigned)sqlite3_column_int64(st, 3);
        e.body = sqlite3_column_blob(st, 4);
        e.len = (size_t)sqlite3_column_bytes(st, 4);
        e.location = col_text(st, 5);
        cb(ctx, &e);
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&state_mu);
    return rc;
}

int state_owner_load(void (*cb)(void *ctx, const char *box_id, const char *principal), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;

    pthread_mutex_lock(&state_mu);
    if (state_db == NULL || sqlite3_prepare_v2(state_db, "SELECT box_id, principal FROM owners", -1,
                                               &st, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(st) == SQLITE_ROW)
        cb(ctx, col_text(st, 0), col_text(st, 1));
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&state_mu);
    return rc;
}
