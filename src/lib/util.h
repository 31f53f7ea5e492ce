/* util.h — small host-side helpers shared by the library: formatted strings, paths and
 * directories, atomic files, ids, clocks and running a helper program. */
#ifndef BL_UTIL_H
#define BL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* malloc'd formatted string, NULL on failure (error set). Caller frees. */
char *bl_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* mkdir -p with mode for every directory created. */
int bl_mkdir_p(const char *path, unsigned mode);

/* Remove a tree (like rm -rf); a missing path is fine. */
int bl_rm_rf(const char *path);

/* A new temp file "<base>.tmp.<random>" (O_EXCL|O_NOFOLLOW: never an existing file or a
 * planted link), open for writing with mode. Returns its fd (caller closes) with *path_out
 * (malloc'd, caller frees), or a negative BOXLITE_E* code. */
int bl_open_temp(char **path_out, const char *base, unsigned mode);

/* The one rule for the names users give boxes and snapshots (they reach paths and the
 * guest kernel's command line): 1-64 of [A-Za-z0-9_.-], not starting with '.' or '-'.
 * kind ("box", "snapshot") is for the message. 0 or EINVAL. */
int bl_check_name(const char *kind, const char *name);

/* Write data to path atomically: temp file, fsync, rename, fsync of the directory. */
int bl_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* Read a whole file of at most max bytes; *out is malloc'd and NUL-terminated. */
int bl_read_file(char **out, size_t *len_out, const char *path, size_t max);

/* Copy src to dst atomically (a temporary file renamed), keeping holes (SEEK_DATA/SEEK_HOLE),
 * in the kernel where it can (copy_file_range). BL_COPY_NOSYNC: no fsync before the rename,
 * for files that need not outlive the host (a box's RAM: a 73 MiB fsync cost a warm start
 * 0.4-1 s on a busy disk). */
#define BL_COPY_NOSYNC 1
int bl_copy_file_sparse(const char *src, const char *dst, unsigned mode, int flags);

/* The data of in (size bytes, holes skipped) written into out at the same offsets: out is
 * neither truncated nor synced. 0, or -errno. */
int bl_copy_fd_sparse(int in, int out, off_t size);

/* 12 random base62 characters and a NUL. */
int bl_random_id(char out[13]);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t bl_now_ms(void);

/* Run argv (argv[0] found as bl_find_program does) to completion; non-zero exit → error
 * quoting its stderr. */
int bl_run_tool(const char *const *argv);

/* Find an executable: $ENVVAR if set, else `name` in the tool directory (bl_set_tool_dir):
 * always there for a name the package carries (missing or not an ELF executable: an error
 * naming the file), else if it is there; else `name` in PATH. *out malloc'd. */
int bl_find_program(char **out, const char *name, const char *envvar);

/* The directory of programs an installed package has (dir), and the names it carries itself
 * (NULL-terminated, or NULL): those are never taken from PATH. Set once per process (later
 * calls are ignored); thread-safe. */
void bl_set_tool_dir(const char *dir, const char *const *carried);

/* NULL-terminated string vectors: length, a malloc'd deep copy (NULL when out of memory),
 * and free (accepts NULL). */
size_t bl_strv_len(const char *const *v);
char **bl_strv_dup(const char *const *v);
void bl_strv_free(char **v);

/* Create the directory dir (0700) and hold an flock on dir/lock: a work area that repair
 * leaves alone while its maker lives. *lock_out is the lock's fd (close it to release).
 * On failure nothing is left behind. */
int bl_make_locked_dir(const char *dir, int *lock_out);

/* Run argv to completion and return its stdout (at most max bytes, NUL-terminated,
 * malloc'd) in *out; non-zero exit is an error. */
int bl_run_tool_output(char **out, const char *const *argv, size_t max);

/* Test builds' crash points: when BOXLITE_TEST_HOOKS=1 and BOXLITE_TEST_CRASH_AT=step, the
 * process kills itself with SIGKILL here (as a kill -9 from outside would). */
void bl_test_crash(const char *step);

/* write() all of buf, retrying on EINTR; 0 or -errno. */
int bl_write_all(int fd, const void *buf, size_t len);

/* Bytes the files under path take on disk (st_blocks, links not followed, each hard link
 * counted); 0 when it is missing. What cannot be read is skipped. */
uint64_t bl_du(const char *path);

/* The one-time work a first use does (inflating the default image, building a warm template):
 * one line on stderr when it is a terminal ("boxlite: <what>... done"), nothing otherwise.
 * bl_progress_begin prints the start and returns 1 when it printed; bl_progress_end(shown, rc)
 * ends that line with "done" (rc 0) or "failed", and does nothing when shown is 0. */
int bl_progress_begin(const char *what);
void bl_progress_end(int shown, int rc);

#endif
