/* fuzz_untar.c — libFuzzer target for the host's extraction of a box's (hostile) tar stream.
 * Every call untar.c makes that creates, removes or re-times a name (openat, mkdirat,
 * symlinkat, unlinkat, utimensat, linkat: linked with -Wl,--wrap=NAME) is checked before it runs:
 * the name must resolve, by its real parent directory, strictly beneath the destination — an
 * absolute name, a "..", or a parent that is a link out aborts. A file it opens must also
 * turn out to be beneath it (no write through a link as the last part). After each input the
 * work directory must hold only the destination and an untouched sentinel. No shell. */
#include "untar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int __real_openat(int dirfd, const char *path, int flags, ...);
int __real_mkdirat(int dirfd, const char *path, mode_t mode);
int __real_symlinkat(const char *target, int dirfd, const char *path);
int __real_unlinkat(int dirfd, const char *path, int flags);
int __real_utimensat(int dirfd, const char *path, const struct timespec t[2], int flags);
int __real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);

static char base[64], dest[128], sentinel[128], real_dest[PATH_MAX];
static int armed; /* checks on only while bl_untar runs */

#define KEEP "keep me\n"

static void escape(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_untar: ESCAPE: %s %s (destination %s)\n", what, path, real_dest);
    abort();
}

/* Is the real path p the destination itself or beneath it? */
static int beneath(const char *p, int strictly)
{
    size_t n = strlen(real_dest);

    if (strncmp(p, real_dest, n) != 0)
        return 0;
    return p[n] == '/' || (!strictly && p[n] == '\0');
}

/* (dirfd, path) as a name a new entry would take: its parent's real path must be the
 * destination or beneath it, and its last part a plain name. */
static void check_name(const char *what, int dirfd, const char *path)
{
    char dir[PATH_MAX], proc[64], joined[2 * PATH_MAX + 2], parent[PATH_MAX];
    const char *leaf;
    char *slash;
    ssize_t n;

    if (path[0] == '/') {
        snprintf(joined, sizeof(joined), "%s", path);
    } else {
        if (dirfd == AT_FDCWD) {
            if (!getcwd(dir, sizeof(dir)))
                abort();
        } else {
            snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
            n = readlink(proc, dir, sizeof(dir) - 1);
            if (n < 0)
                escape(what, "(a directory fd that cannot be read back)");
            dir[n] = '\0';
        }
        snprintf(joined, sizeof(joined), "%s/%s", dir, path);
    }
    slash = strrchr(joined, '/');
    leaf = slash + 1;
    if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
        escape(what, joined);
    *slash = '\0';
    if (!realpath(joined[0] ? joined : "/", parent)) {
        if (beneath(joined, 0))
            return; /* a parent inside that does not exist: the call fails by itself */
        escape(what, joined);
    }
    if (!beneath(parent, 0)) {
        *slash = '/';
        escape(what, joined);
    }
}

/* An fd untar.c opened for writing must be a file beneath the destination. */
static void check_fd(int fd, const char *path)
{
    char proc[64], p[PATH_MAX];
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, p, sizeof(p) - 1);
    if (n < 0)
        escape("openat (unreadable fd)", path);
    p[n] = '\0';
    if (!beneath(p, 1))
        escape("openat wrote through a link to", p);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;
    int fd;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    if (armed && (flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC)))
        check_name("openat", dirfd, path);
    fd = __real_openat(dirfd, path, flags, mode);
    if (armed && fd >= 0 && (flags & (O_WRONLY | O_RDWR)))
        check_fd(fd, path);
    return fd;
}

int __wrap_mkdirat(int dirfd, const char *path, mode_t mode)
{
    if (armed)
        check_name("mkdirat", dirfd, path);
    return __real_mkdirat(dirfd, path, mode);
}

int __wrap_symlinkat(const char *target, int dirfd, const char *path)
{
    if (armed)
        check_name("symlinkat", dirfd, path);
    return __real_symlinkat(target, dirfd, path);
}

int __wrap_unlinkat(int dirfd, const char *path, int flags)
{
    if (armed)
        check_name("unlinkat", dirfd, path);
    return __real_unlinkat(dirfd, path, flags);
}

int __wrap_utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
    if (armed && path)
        check_name("utimensat", dirfd, path);
    return __real_utimensat(dirfd, path, t, flags);
}

/* untar.c refuses hard links today; were it to make one, both names must be beneath. */
int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
    if (armed) {
        check_name("linkat (target)", olddirfd, oldpath);
        check_name("linkat", newdirfd, newpath);
    }
    return __real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

struct feed {
    const uint8_t *p;
    size_t left;
};

static ssize_t feed_read(void *ctx, const void **buf)
{
    struct feed *f = ctx;
    size_t n = f->left < 700 ? f->left : 700; /* odd chunks: exercise the read callback */

    *buf = f->p;
    f->p += n;
    f->left -= n;
    return (ssize_t)n;
}

/* Remove name (beneath dirfd) and all it holds, whatever modes the archive left. */
static void rm_tree(int at, const char *name)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    int fd;

    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        (void)fchmodat(at, name, 0700, 0);
        fd = __real_openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        while (d && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                rm_tree(dirfd(d), de->d_name);
        if (d)
            closedir(d);
        else if (fd >= 0)
            close(fd);
        (void)__real_unlinkat(at, name, AT_REMOVEDIR);
    } else {
        (void)__real_unlinkat(at, name, 0);
    }
}

static void cleanup(void)
{
    rm_tree(AT_FDCWD, base);
}

static void setup(void)
{
    char p[192];
    int fd;

    snprintf(base, sizeof(base), "/tmp/fuzz-untar-XXXXXX");
    if (!mkdtemp(base))
        abort();
    snprintf(dest, sizeof(dest), "%s/dest", base);
    snprintf(sentinel, sizeof(sentinel), "%s/sentinel", base);
    if (mkdir(dest, 0700) != 0 || !realpath(dest, real_dest) || mkdir(sentinel, 0700) != 0)
        abort();
    snprintf(p, sizeof(p), "%s/keep", sentinel);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, KEEP, strlen(KEEP)) != (ssize_t)strlen(KEEP))
        abort();
    close(fd);
    atexit(cleanup);
}

/* base holds dest and sentinel only; sentinel holds keep only, with its bytes. */
static void check_after(void)
{
    char p[192], buf[64];
    struct dirent *de;
    struct stat st;
    DIR *d;
    ssize_t n;
    int fd;

    d = opendir(base);
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "dest") &&
            strcmp(de->d_name, "sentinel"))
            escape("appeared beside the destination:", de->d_name);
    if (d)
        closedir(d);
    d = opendir(sentinel);
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "keep"))
            escape("appeared in the sentinel:", de->d_name);
    if (d)
        closedir(d);
    snprintf(p, sizeof(p), "%s/keep", sentinel);
    fd = open(p, O_RDONLY | O_NOFOLLOW);
    n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (fd < 0 || fstat(fd, &st) != 0 || n != (ssize_t)strlen(KEEP) ||
        memcmp(buf, KEEP, strlen(KEEP)) != 0 || st.st_nlink != 1)
        escape("the sentinel changed:", p);
    close(fd);
    if (lstat(dest, &st) != 0 || !S_ISDIR(st.st_mode))
        escape("the destination was replaced:", dest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_untar_opts o = {1, data && size && (data[0] & 1), 1u << 20, 1000};
    struct feed f = {data, size};
    struct dirent *de;
    DIR *d;
    int fd;

    if (!base[0])
        setup();
    armed = 1;
    (void)bl_untar(dest, &o, feed_read, &f);
    armed = 0;
    check_after();
    fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rm_tree(dirfd(d), de->d_name);
    if (d)
        closedir(d);
    return 0;
}
