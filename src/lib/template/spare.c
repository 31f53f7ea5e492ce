/* spare.c — a warm template's spare RAM files (spare.h). They live in <template>/spares/,
 * named <host boot id>-<memory file's inode>-<its mtime in ns>.<random>.ram, so a spare is
 * used only by the same build of the template (a rebuilt template has a new memory file) and
 * within the host boot that made it: spares are written without fsync (as a box's RAM file
 * is), so after a crash their contents need not be whole. Anything else found there is
 * removed by the next refill, which holds spares/.lock; one spare per template at most. */
#include "spare.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

#define TAG_MAX 128

/* "<boot id>-<inode>-<mtime ns>." of tdir's current memory file; -1 when it cannot be read. */
static int spare_tag(char tag[TAG_MAX], const char *tdir)
{
    char boot[64] = "", path[4096];
    struct stat st;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, boot, sizeof(boot) - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n < 32)
        return -1;
    boot[strcspn(boot, "\n")] = '\0';
    snprintf(path, sizeof(path), "%s/memory", tdir);
    if (stat(path, &st) != 0)
        return -1;
    snprintf(tag, TAG_MAX, "%s-%llu-%lld%09ld.", boot, (unsigned long long)st.st_ino,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return 0;
}

static int is_spare(const char *name, const char *tag)
{
    size_t n = strlen(name);

    return strncmp(name, tag, strlen(tag)) == 0 && n > 4 && strcmp(name + n - 4, ".ram") == 0;
}

int bl_spare_take(const char *tdir, const char *dst)
{
    char tag[TAG_MAX], dir[4096];
    struct dirent *e;
    DIR *d;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/spares", tdir);
    if (spare_tag(tag, tdir) != 0 || !(d = opendir(dir)))
        return -1;
    while (rc != 0 && (e = readdir(d)) != NULL)
        if (is_spare(e->d_name, tag) && renameat(dirfd(d), e->d_name, AT_FDCWD, dst) == 0)
            rc = 0; /* else another start took it first */
    closedir(d);
    return rc;
}

/* Under the lock: remove all but usable spares (and the lock). The number of usable ones. */
static int sweep(DIR *d, const char *tag)
{
    struct dirent *e;
    int usable = 0;

    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, ".lock") == 0)
            continue;
        if (is_spare(e->d_name, tag))
            usable++;
        else
            (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    return usable;
}

int bl_spare_refill(const char *tdir)
{
    char tag[TAG_MAX], dir[4096], path[4096 + TAG_MAX + 32], rnd[13];
    int lock = -1, rc = 0;
    DIR *d = NULL;

    snprintf(dir, sizeof(dir), "%s/spares", tdir);
    if (spare_tag(tag, tdir) != 0)
        return bl_err(BOXLITE_ENOTFOUND, "template %s: no memory file to make a spare for", tdir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return bl_err_errno(BOXLITE_EIO, errno, "create %s", dir);
    snprintf(path, sizeof(path), "%s/.lock", dir);
    lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "open %s", path);
    if (flock(lock, LOCK_EX | LOCK_NB) != 0)
        goto out; /* another monitor refills */
    d = opendir(dir);
    if (!d) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", dir);
        goto out;
    }
    if (sweep(d, tag) > 0)
        goto out;
    rc = bl_random_id(rnd);
    snprintf(path, sizeof(path), "%s/%s%s.ram", dir, tag, rnd);
    if (rc == 0) {
        char src[4096 + 8];
        snprintf(src, sizeof(src), "%s/ram", tdir);
        rc = bl_copy_file_sparse(src, path, 0600, BL_COPY_NOSYNC);
    }
out:
    if (d)
        closedir(d);
    close(lock);
    return rc;
}

unsigned long long bl_spare_bytes(const char *tdir)
{
    char dir[4096];
    unsigned long long sum = 0;
    struct dirent *e;
    struct stat st;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/spares", tdir);
    if (!(d = opendir(dir)))
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            sum += (unsigned long long)st.st_blocks * 512;
    closedir(d);
    return sum;
}
