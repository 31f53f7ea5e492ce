/* fault.c — SQLite-style fault injection for libboxlite's test build (boxlite-faulty): every
 * allocation, write, fsync, rename, create and SQLite/libarchive/tool call the library makes
 * is counted, and the Nth can be made to fail. See docs/testing.md.
 *
 * How it reaches the library without touching it: tests/fault/meson.build partially links
 * libboxlite.a and this file into one object with `ld -r --wrap=SYM` for each SYM below, so
 * the library's calls to SYM become calls to __wrap_SYM here, and __real_SYM is the libc (or
 * SQLite, libarchive, bl_run_tool) one. The CLI's own objects are linked outside that object:
 * their calls are neither counted nor failed. Children the library forks stop counting; the
 * programs it spawns (qemu-img, mkfs, boxlite-shim, QEMU) are other binaries, never wrapped.
 *
 * Controlled by the environment, read once at start:
 *   BOXLITE_FAULT_AT=N       the Nth counted call fails (1-based; unset or 0: none fails)
 *   BOXLITE_FAULT_PERSIST=1  ... and every counted call after it too
 *   BOXLITE_FAULT_COUNT=1    at exit, print "boxlite-fault: count N" to stderr
 *   BOXLITE_FAULT_TRACE=1    print each failed call: "boxlite-fault: fail N KIND from ADDR"
 * A failed call returns what the real one returns on failure: NULL/ENOMEM for allocations,
 * -1 with ENOSPC for writes and creates, EIO for fsync, SQLITE_FULL/SQLITE_NOMEM for SQLite,
 * ARCHIVE_FATAL for libarchive, BOXLITE_EIO for a tool run. Thread-safe (one atomic count). */
#include "boxlite.h"
#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long fault_at;         /* the call that fails; 0: none */
static int fault_persist;     /* every call from fault_at on fails */
static int fault_print_count; /* print the count at exit */
static int fault_trace;       /* print each failed call */
static atomic_int fault_armed;
static atomic_long fault_calls;

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

__attribute__((constructor)) static void fault_init(void)
{
    const char *at = getenv("BOXLITE_FAULT_AT");
    fault_at = at ? strtol(at, NULL, 10) : 0;
    fault_persist = env_flag("BOXLITE_FAULT_PERSIST");
    fault_print_count = env_flag("BOXLITE_FAULT_COUNT");
    fault_trace = env_flag("BOXLITE_FAULT_TRACE");
    atomic_store(&fault_armed, 1);
}

__attribute__((destructor)) static void fault_fini(void)
{
    if (fault_print_count && atomic_load(&fault_armed))
        fprintf(stderr, "boxlite-fault: count %ld\n", atomic_load(&fault_calls));
}

/* Count one call; 1 when it is to fail. */
static int fault_hit(const char *kind, void *from)
{
    long n;

    if (!atomic_load(&fault_armed))
        return 0;
    n = atomic_fetch_add(&fault_calls, 1) + 1;
    if (fault_at <= 0 || n < fault_at || (n > fault_at && !fault_persist))
        return 0;
    if (fault_trace)
        fprintf(stderr, "boxlite-fault: fail %ld %s from %p\n", n, kind, from);
    return 1;
}

#define HIT(kind) fault_hit(kind, __builtin_return_address(0))

/* ---- allocations ------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t n)
{
    if (HIT("malloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (HIT("calloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (HIT("realloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    if (HIT("strdup")) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    if (HIT("strndup")) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    if (HIT("vasprintf")) {
        errno = ENOMEM;
        return -1;
    }
    return __real_vasprintf(out, fmt, ap);
}

/* ---- writes, syncs and names in the file system ------------------------------------------ */

#define FAIL_ERRNO(kind, err)                                                                      \
    do {                                                                                           \
        if (HIT(kind)) {                                                                           \
            errno = (err);                                                                         \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_writev(int fd, const struct iovec *iov, int cnt);
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __real_ftruncate(int fd, off_t len);
int __real_rename(const char *from, const char *to);
int __real_renameat(int dfrom, const char *from, int dto, const char *to);
int __real_open(const char *path, int flags, ...);
int __real_openat(int dir, const char *path, int flags, ...);
int __real_mkdir(const char *path, mode_t mode);
int __real_mkdirat(int dir, const char *path, mode_t mode);
int __real_link(const char *from, const char *to);
int __real_linkat(int dfrom, const char *from, int dto, const char *to, int flags);
int __real_symlink(const char *target, const char *path);
int __real_symlinkat(const char *target, int dir, const char *path);
int __real_unlink(const char *path);
int __real_unlinkat(int dir, const char *path, int flags);
int __real_rmdir(const char *path);
pid_t __real_fork(void);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int cnt);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_rename(const char *from, const char *to);
int __wrap_renameat(int dfrom, const char *from, int dto, const char *to);
int __wrap_open(const char *path, int flags, ...);
int __wrap_openat(int dir, const char *path, int flags, ...);
int __wrap_mkdir(const char *path, mode_t mode);
int __wrap_mkdirat(int dir, const char *path, mode_t mode);
int __wrap_link(const char *from, const char *to);
int __wrap_linkat(int dfrom, const char *from, int dto, const char *to, int flags);
int __wrap_symlink(const char *target, const char *path);
int __wrap_symlinkat(const char *target, int dir, const char *path);
int __wrap_unlink(const char *path);
int __wrap_unlinkat(int dir, const char *path, int flags);
int __wrap_rmdir(const char *path);
pid_t __wrap_fork(void);

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
    FAIL_ERRNO("write", ENOSPC);
    return __real_write(fd, buf, n);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    FAIL_ERRNO("pwrite", ENOSPC);
    return __real_pwrite(fd, buf, n, off);
}

ssize_t __wrap_writev(int fd, const struct iovec *iov, int cnt)
{
    FAIL_ERRNO("writev", ENOSPC);
    return __real_writev(fd, iov, cnt);
}

int __wrap_fsync(int fd)
{
    FAIL_ERRNO("fsync", EIO);
    return __real_fsync(fd);
}

int __wrap_fdatasync(int fd)
{
    FAIL_ERRNO("fdatasync", EIO);
    return __real_fdatasync(fd);
}

int __wrap_ftruncate(int fd, off_t len)
{
    FAIL_ERRNO("ftruncate", ENOSPC);
    return __real_ftruncate(fd, len);
}

int __wrap_rename(const char *from, const char *to)
{
    FAIL_ERRNO("rename", EIO);
    return __real_rename(from, to);
}

int __wrap_renameat(int dfrom, const char *from, int dto, const char *to)
{
    FAIL_ERRNO("renameat", EIO);
    return __real_renameat(dfrom, from, dto, to);
}

/* Only opens that create (or truncate) count: reads never fail here. */
static int open_writes(int flags)
{
    return (flags & (O_CREAT | O_TRUNC)) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    if (open_writes(flags))
        FAIL_ERRNO("open", ENOSPC);
    return __real_open(path, flags, mode);
}

int __wrap_openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    if (open_writes(flags))
        FAIL_ERRNO("openat", ENOSPC);
    return __real_openat(dir, path, flags, mode);
}

int __wrap_mkdir(const char *path, mode_t mode)
{
    FAIL_ERRNO("mkdir", ENOSPC);
    return __real_mkdir(path, mode);
}

int __wrap_mkdirat(int dir, const char *path, mode_t mode)
{
    FAIL_ERRNO("mkdirat", ENOSPC);
    return __real_mkdirat(dir, path, mode);
}

int __wrap_link(const char *from, const char *to)
{
    FAIL_ERRNO("link", ENOSPC);
    return __real_link(from, to);
}

int __wrap_linkat(int dfrom, const char *from, int dto, const char *to, int flags)
{
    FAIL_ERRNO("linkat", ENOSPC);
    return __real_linkat(dfrom, from, dto, to, flags);
}

int __wrap_symlink(const char *target, const char *path)
{
    FAIL_ERRNO("symlink", ENOSPC);
    return __real_symlink(target, path);
}

int __wrap_symlinkat(const char *target, int dir, const char *path)
{
    FAIL_ERRNO("symlinkat", ENOSPC);
    return __real_symlinkat(target, dir, path);
}

int __wrap_unlink(const char *path)
{
    FAIL_ERRNO("unlink", EIO);
    return __real_unlink(path);
}

int __wrap_unlinkat(int dir, const char *path, int flags)
{
    FAIL_ERRNO("unlinkat", EIO);
    return __real_unlinkat(dir, path, flags);
}

int __wrap_rmdir(const char *path)
{
    FAIL_ERRNO("rmdir", EIO);
    return __real_rmdir(path);
}

/* A forked child (a jail or monitor step before exec) neither counts nor fails. */
pid_t __wrap_fork(void)
{
    pid_t pid = __real_fork();

    if (pid == 0)
        atomic_store(&fault_armed, 0);
    return pid;
}

/* ---- SQLite, libarchive and the tools (qemu-img, mkfs) the library runs ------------------- */

int __real_sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs);
int __real_sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st,
                              const char **tail);
int __real_sqlite3_step(sqlite3_stmt *st);
int __real_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **err);
int __real_archive_write_header(struct archive *a, struct archive_entry *e);
la_ssize_t __real_archive_write_data(struct archive *a, const void *buf, size_t n);
int __real_archive_write_close(struct archive *a);
int __real_bl_run_tool(const char *const *argv);
int __wrap_sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs);
int __wrap_sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st,
                              const char **tail);
int __wrap_sqlite3_step(sqlite3_stmt *st);
int __wrap_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **err);
int __wrap_archive_write_header(struct archive *a, struct archive_entry *e);
la_ssize_t __wrap_archive_write_data(struct archive *a, const void *buf, size_t n);
int __wrap_archive_write_close(struct archive *a);
int __wrap_bl_run_tool(const char *const *argv);
int bl_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* error.h */

int __wrap_sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs)
{
    if (HIT("sqlite3_open_v2")) {
        *db = NULL;
        return SQLITE_NOMEM;
    }
    return __real_sqlite3_open_v2(name, db, flags, vfs);
}

int __wrap_sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st,
                              const char **tail)
{
    if (HIT("sqlite3_prepare_v2")) {
        *st = NULL;
        return SQLITE_NOMEM;
    }
    return __real_sqlite3_prepare_v2(db, sql, n, st, tail);
}

/* As if the page write or the journal's sync had failed: SQLite rolls the statement back. */
int __wrap_sqlite3_step(sqlite3_stmt *st)
{
    if (HIT("sqlite3_step"))
        return SQLITE_FULL;
    return __real_sqlite3_step(st);
}

int __wrap_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
                        void *arg, char **err)
{
    if (HIT("sqlite3_exec")) {
        if (err)
            *err = NULL;
        return SQLITE_IOERR;
    }
    return __real_sqlite3_exec(db, sql, cb, arg, err);
}

int __wrap_archive_write_header(struct archive *a, struct archive_entry *e)
{
    if (HIT("archive_write_header"))
        return ARCHIVE_FATAL;
    return __real_archive_write_header(a, e);
}

la_ssize_t __wrap_archive_write_data(struct archive *a, const void *buf, size_t n)
{
    if (HIT("archive_write_data"))
        return -1;
    return __real_archive_write_data(a, buf, n);
}

int __wrap_archive_write_close(struct archive *a)
{
    if (HIT("archive_write_close"))
        return ARCHIVE_FATAL;
    return __real_archive_write_close(a);
}

/* As if qemu-img or mkfs had run out of space. */
int __wrap_bl_run_tool(const char *const *argv)
{
    if (HIT("bl_run_tool"))
        return bl_err(BOXLITE_ERROR, "%s failed (injected fault): No space left on device",
                      argv[0]);
    return __real_bl_run_tool(argv);
}
