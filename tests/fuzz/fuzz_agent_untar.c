/* fuzz_agent_untar.c — libFuzzer target for the agent's copy-in reader (src/agent/copy.c,
 * bl_copy_in), which extracts in the guest the tar the host sends. The first input byte picks
 * the options (overwrite, include parent, raw) and the destination (an existing directory or
 * a new name in it); the rest is the archive, read from a memfd.
 * In the guest the reader may follow links the archive made (the guest is its own), so here
 * every call it makes that creates, removes or changes a name (linked with -Wl,--wrap=NAME)
 * is held to the work directory: outside it the call fails with EACCES instead of running.
 * After each input a sentinel beside the destination must be untouched. */
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sanitizer/common_interface_defs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int __real_open(const char *path, int flags, ...);
int __real_mkdir(const char *path, mode_t mode);
int __real_symlink(const char *target, const char *path);
int __real_link(const char *old, const char *path);
int __real_unlink(const char *path);
int __real_chmod(const char *path, mode_t mode);
int __real_utimensat(int dirfd, const char *path, const struct timespec t[2], int flags);

static char base[64], dest[128], fresh[160], sentinel[128], real_dest[PATH_MAX];
static int armed, memfd = -1, devnull = -1, report = -1;

#define KEEP "keep me\n"

/* Is the real path p the destination or beneath it? */
static int beneath(const char *p)
{
    size_t n = strlen(real_dest);

    return strncmp(p, real_dest, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* May a call touch path? follow: the call follows a link at the last part (the whole path
 * must resolve inside); else the parent must (the last part is created or removed). */
static int allowed(const char *path, int follow)
{
    char copy[2 * PATH_MAX], real[PATH_MAX], *slash;

    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy) || copy[0] != '/')
        return 0;
    if (follow && realpath(copy, real))
        return beneath(real);
    slash = strrchr(copy, '/');
    if (slash == copy)
        return 0;
    *slash = '\0';
    if (!realpath(copy, real))
        return beneath(copy); /* a missing parent: the call fails by itself */
    return beneath(real) && strcmp(slash + 1, "..") != 0 && strcmp(slash + 1, ".") != 0;
}

#define GUARD(path, follow)                                                                        \
    do {                                                                                           \
        if (armed && !allowed(path, follow)) {                                                     \
            errno = EACCES;                                                                        \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    va_start(ap, flags);
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    va_end(ap);
    if (flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC))
        GUARD(path, !(flags & O_NOFOLLOW) && !(flags & O_EXCL));
    return __real_open(path, flags, mode);
}

int __wrap_mkdir(const char *path, mode_t mode)
{
    GUARD(path, 0);
    return __real_mkdir(path, mode);
}

int __wrap_symlink(const char *target, const char *path)
{
    GUARD(path, 0);
    return __real_symlink(target, path);
}

int __wrap_link(const char *old, const char *path)
{
    GUARD(old, 0);
    GUARD(path, 0);
    return __real_link(old, path);
}

int __wrap_unlink(const char *path)
{
    GUARD(path, 0);
    return __real_unlink(path);
}

int __wrap_chmod(const char *path, mode_t mode)
{
    GUARD(path, 1);
    return __real_chmod(path, mode);
}

int __wrap_utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
    if (path && dirfd == AT_FDCWD)
        GUARD(path, !(flags & AT_SYMLINK_NOFOLLOW));
    else if (armed && path)
        return errno = EACCES, -1; /* the reader only names paths from "/" */
    return __real_utimensat(dirfd, path, t, flags);
}

/* Remove what name (beneath the fd at) holds, whatever modes the archive left. */
static void rm_tree(int at, const char *name)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    int fd;

    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        (void)unlinkat(at, name, 0);
        return;
    }
    (void)fchmodat(at, name, 0700, 0);
    fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rm_tree(dirfd(d), de->d_name);
    if (d)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    (void)unlinkat(at, name, AT_REMOVEDIR);
}

static void cleanup(void)
{
    rm_tree(AT_FDCWD, base);
}

static void setup(void)
{
    char p[192];
    int fd;

    snprintf(base, sizeof(base), "/tmp/fuzz-agent-untar-XXXXXX");
    if (!mkdtemp(base))
        abort();
    snprintf(dest, sizeof(dest), "%s/dest", base);
    snprintf(fresh, sizeof(fresh), "%s/new", dest);
    snprintf(sentinel, sizeof(sentinel), "%s/sentinel", base);
    if (mkdir(dest, 0700) != 0 || !realpath(dest, real_dest) || mkdir(sentinel, 0700) != 0)
        abort();
    snprintf(p, sizeof(p), "%s/keep", sentinel);
    fd = __real_open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, KEEP, strlen(KEEP)) != (ssize_t)strlen(KEEP))
        abort();
    close(fd);
    memfd = memfd_create("fuzz-agent-untar", MFD_CLOEXEC);
    devnull = __real_open("/dev/null", O_WRONLY | O_CLOEXEC);
    report = dup(2);
    if (memfd < 0 || devnull < 0 || report < 0)
        abort();
    /* the reader's messages go to fd 2, silenced while it runs; a sanitizer's report must not */
    __sanitizer_set_report_fd((void *)(intptr_t)report);
    atexit(cleanup);
}

/* base holds dest and sentinel only; sentinel holds keep only, with its bytes. */
static void check_after(void)
{
    char p[192], buf[64];
    struct dirent *de;
    DIR *d;
    ssize_t n;
    int fd;

    d = opendir(base);
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "dest") &&
            strcmp(de->d_name, "sentinel")) {
            fprintf(stderr, "fuzz_agent_untar: %s appeared beside the destination\n", de->d_name);
            abort();
        }
    if (d)
        closedir(d);
    snprintf(p, sizeof(p), "%s/keep", sentinel);
    fd = __real_open(p, O_RDONLY | O_NOFOLLOW);
    n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    if (fd < 0 || n != (ssize_t)strlen(KEEP) || memcmp(buf, KEEP, strlen(KEEP)) != 0) {
        fprintf(stderr, "fuzz_agent_untar: the sentinel changed\n");
        abort();
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char opts[8];
    size_t k = 0;
    int err;

    if (size < 1)
        return 0;
    if (!base[0])
        setup();
    if (data[0] & 1)
        opts[k++] = 'o';
    if (data[0] & 2)
        opts[k++] = 'p';
    if (data[0] & 4)
        opts[k++] = 'x';
    if (k == 0)
        opts[k++] = '-';
    opts[k] = '\0';
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data + 1, size - 1, 0) != (ssize_t)(size - 1) ||
        lseek(memfd, 0, SEEK_SET) != 0)
        abort();
    err = dup(2);
    dup2(devnull, 2); /* the reader's messages */
    armed = 1;
    (void)bl_copy_in(memfd, data[0] & 8 ? fresh : dest, opts);
    armed = 0;
    dup2(err, 2);
    close(err);
    check_after();
    rm_tree(AT_FDCWD, dest);
    if (__real_mkdir(dest, 0700) != 0)
        abort();
    return 0;
}
