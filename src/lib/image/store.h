/* store.h — the content store under $BOXLITE_HOME/images: sha256-verified blobs written
 * through temp files, per-name locks between processes; image records are rows of
 * boxlite.db (db.h), moved there from the files of older stores. */
#ifndef BL_STORE_H
#define BL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "boxlite.h"
#include "db.h"

#define BL_LOCK_TIMEOUT_MS (30 * 60 * 1000)

/* Create images/{blobs/sha256,tmp,locks,refs} under home. */
int bl_store_init(const char *home);

/* $home/images/blobs/sha256/<hex> for digest "sha256:<hex>" (malloc'd). */
char *bl_store_blob_path(const char *home, const char *digest);

/* 1 when the blob is in the store. */
int bl_store_has_blob(const char *home, const char *digest);

/* Read a whole blob of at most max bytes, verifying its digest. *out NUL-terminated. */
int bl_store_read_blob(char **out, size_t *len_out, const char *home, const char *digest,
                       size_t max);

/* An incremental sha256 ("sha256:<hex>" when done). */
struct bl_sha256;
int bl_sha256_new(struct bl_sha256 **out);
void bl_sha256_update(struct bl_sha256 *h, const void *buf, size_t n);
void bl_sha256_final(struct bl_sha256 *h, char out[72]);
void bl_sha256_free(struct bl_sha256 *h);
void bl_sha256_buf(char out[72], const void *buf, size_t n);

/* A blob being written: bytes go to a temp file under images/tmp and are hashed; commit
 * checks the digest (and size when known) and renames it into blobs/ — a partial download
 * never has a blob's name. */
struct bl_blob_writer;
int bl_blob_begin(struct bl_blob_writer **out, const char *home, uint64_t max_size);
int bl_blob_write(struct bl_blob_writer *w, const void *buf, size_t n);
uint64_t bl_blob_written(const struct bl_blob_writer *w);
/* expected may be NULL (import: the digest is what was written); *digest_out gets it. */
int bl_blob_commit(struct bl_blob_writer *w, const char *expected, char digest_out[72]);
/* Drop the temp file and free; accepts NULL. Also frees after commit. */
void bl_blob_free(struct bl_blob_writer *w);

/* Exclusive lock images/locks/<name>.lock, waiting up to timeout_ms. *out is the fd. */
int bl_store_lock(int *out, const char *home, const char *name, int timeout_ms);
/* The same lock shared: many holders, no exclusive one (pulls against garbage collection). */
int bl_store_lock_shared(int *out, const char *home, const char *name, int timeout_ms);
void bl_store_unlock(int fd);

/* A temp path under images/tmp (malloc'd), unique to this process and call. */
char *bl_store_tmp_path(const char *home, const char *suffix);

/* Write dst (atomically, mode 0444, sparse: zero blocks become holes) from the gzip file gz,
 * checking that what it holds hashes to hex (sha256) and is at most max bytes; a damaged or
 * oversized gz leaves no dst and an error naming it. */
int bl_store_inflate_base(const char *gz, const char *dst, const char *hex, uint64_t max);

/* Image records live in boxlite.db (db.h). A store made before schema 7 kept them as
 * images/refs/<sha256 of name>.json: move those into db (records already there win) and
 * remove the files. Cheap when there are none (one opendir). Called on runtime open. */
int bl_store_records_migrate(const char *home, struct bl_db *db);

#endif
