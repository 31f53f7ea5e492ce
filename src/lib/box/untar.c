/* untar.c — extracting an untrusted tar stream (a box's copy-out) beneath one host path with
 * libarchive: names resolved beneath the destination only, no link followed, capped sizes. */
#include "untar.h"
#include "boxlite.h"
#include "error.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct src {
    bl_untar_read_fn fn;
    void *ctx;
    uint64_t consumed, hdr_start;
    int in_header, too_big, read_failed;
};

struct dirfix {
    char *rel;
    mode_t mode;
    struct timespec mtime;
};

struct ux {
    const struct bl_untar_opts *o;
    const char *dest;
    int rootfd;
    char top[BL_UNTAR_PATH_MAX + 1];    /* the archive's first component */
    char rename[BL_UNTAR_PATH_MAX + 1]; /* what top becomes, "" → dropped */
    int decided;
    uint64_t bytes, entries;
    mode_t umask; /* the caller's, applied to every mode from the archive */
    struct dirfix *dirs;
    size_t ndirs, capdirs;
    char shown[160]; /* the current entry's name, printable, for messages */
};

static la_ssize_t src_read(struct archive *a, void *ud, const void **buf)
{
    struct src *s = ud;
    ssize_t n = s->fn(s->ctx, buf);

    if (n < 0) {
        s->read_failed = 1;
        archive_set_error(a, EIO, "reading the box's archive failed");
        return -1;
    }
    s->consumed += (uint64_t)n;
    if (s->in_header && s->consumed - s->hdr_start > BL_UNTAR_HEADER_MAX) {
        s->too_big = 1;
        archive_set_error(a, EFBIG, "an entry's headers are over %u bytes", BL_UNTAR_HEADER_MAX);
        return -1;
    }
    return n;
}

static void show(struct ux *u, const char *name)
{
    size_t i = 0;

    for (; name && name[i] && i + 4 < sizeof(u->shown); i++)
        u->shown[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
    u->shown[i] = '\0';
    if (name && name[i])
        snprintf(u->shown + i, sizeof(u->shown) - i, "...");
}

/* The process's umask without changing it (umask(2) would race other threads): the Umask
 * line of /proc/self/status, else the usual 022. */
static mode_t caller_umask(void)
{
    char line[256];
    unsigned m = 022;
    FILE *f = fopen("/proc/self/status", "re");

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Umask: %o", &m) == 1)
            break;
    if (f)
        fclose(f);
    return (mode_t)(m & 0777);
}

/* A mode from the archive as the host gets it: permission bits only, less the umask. */
static mode_t host_mode(const struct ux *u, struct archive_entry *e)
{
    return archive_entry_perm(e) & 0777 & ~u->umask;
}

static int refuse(struct ux *u, const char *why)
{
    return bl_err(BOXLITE_EPROTO, "entry \"%s\": %s", u->shown, why);
}

/* Normalise name into out: no "." components, no empty ones; refuse absolute names and
 * "..". */
static int clean_name(struct ux *u, const char *name, char *out)
{
    const char *p = name;
    size_t o = 0;

    if (!name)
        return refuse(u, "the name cannot be read");
    if (strlen(name) > BL_UNTAR_PATH_MAX)
        return refuse(u, "the name is too long");
    if (name[0] == '/')
        return refuse(u, "absolute names are refused");
    while (*p) {
        size_t k;
        while (*p == '/')
            p++;
        k = strcspn(p, "/");
        if (k == 2 && p[0] == '.' && p[1] == '.')
            return refuse(u, "names with \"..\" are refused");
        if (k > 0 && !(k == 1 && p[0] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, k);
            o += k;
        }
        p += k;
    }
    out[o] = '\0';
    return o > 0 ? 0 : refuse(u, "empty name");
}

static int open_dir_beneath(int rootfd, const char *rel)
{
    struct open_how how;

    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

/* The top's name inside an existing directory: the caller's name, one plain component. */
static int top_name(struct ux *u, int is_dir)
{
    const char *n = u->o->name ? u->o->name : u->top; /* NULL: the archive's own (fuzzing) */

    if (is_dir && !u->o->include_parent) {
        u->rename[0] = '\0';
        return 0;
    }
    if (!n[0] || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strlen(n) >= sizeof(u->rename))
        return bl_err(BOXLITE_EINVAL, "bad name \"%s\" for the copied entry", n);
    snprintf(u->rename, sizeof(u->rename), "%s", n);
    return 0;
}

static int decide(struct ux *u, const char *name, int is_dir)
{
    struct stat st;
    size_t k = strcspn(name, "/");
    char parent[BL_UNTAR_PATH_MAX + 1];
    const char *slash;
    int rc;

    snprintf(u->top, sizeof(u->top), "%.*s", (int)k, name);
    u->decided = 1;
    u->rootfd = open(u->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (u->rootfd >= 0) {
        rc = top_name(u, is_dir);
        if (rc != 0)
            return rc;
    } else {
        if (is_dir && lstat(u->dest, &st) == 0)
            return bl_err(BOXLITE_EEXISTS, "cannot copy a directory over the file %s", u->dest);
        slash = strrchr(u->dest, '/');
        if (slash && slash[1] == '\0')
            return bl_err(BOXLITE_ENOTFOUND, "%s: no such directory", u->dest);
        if (slash)
            snprintf(parent, sizeof(parent), "%.*s", slash == u->dest ? 1 : (int)(slash - u->dest),
                     u->dest);
        else
            snprintf(parent, sizeof(parent), ".");
        snprintf(u->rename, sizeof(u->rename), "%s", slash ? slash + 1 : u->dest);
        if (strcmp(u->rename, ".") == 0 || strcmp(u->rename, "..") == 0)
            return bl_err(BOXLITE_EINVAL, "bad destination %s", u->dest);
        u->rootfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (u->rootfd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "open %s", u->dest);
    return 0;
}

/* rel (relative to rootfd) for a cleaned name, or "" for the dropped top itself. */
static int map_name(struct ux *u, const char *name, char *rel)
{
    size_t k = strlen(u->top);
    const char *rest = name + k;

    if (strncmp(name, u->top, k) != 0 || (rest[0] != '\0' && rest[0] != '/'))
        return refuse(u, "outside the copied tree");
    if (u->rename[0] == '\0') {
        snprintf(rel, BL_UNTAR_PATH_MAX + 1, "%s", rest[0] ? rest + 1 : "");
        return 0;
    }
    if (strlen(u->rename) + strlen(rest) > BL_UNTAR_PATH_MAX)
        return refuse(u, "the name is too long");
    memcpy(rel, u->rename, strlen(u->rename));
    memcpy(rel + strlen(u->rename), rest, strlen(rest) + 1);
    return 0;
}

/* Open rel's parent beneath rootfd (never through a link) and point *leaf at its last part. */
static int open_parent(struct ux *u, char *rel, const char **leaf, int *pfd)
{
    char *slash = strrchr(rel, '/');

    if (!slash) {
        *leaf = rel;
        *pfd = dup(u->rootfd);
    } else {
        *slash = '\0';
        *pfd = open_dir_beneath(u->rootfd, rel);
        *slash = '/';
        *leaf = slash + 1;
    }
    if (*pfd < 0)
        return errno == ELOOP || errno == EXDEV
                   ? refuse(u, "its parent is a link")
                   : bl_err_errno(BOXLITE_EPROTO, errno, "entry \"%s\": its parent", u->shown);
    return 0;
}

/* Make leaf free for a new entry: 1 when a directory is already there and is wanted. */
static int make_room(struct ux *u, int pfd, const char *leaf, int want_dir)
{
    struct stat st;

    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    if (S_ISDIR(st.st_mode)) {
        if (want_dir)
            return 1;
        return bl_err(BOXLITE_EEXISTS, "entry \"%s\": a directory is in the way", u->shown);
    }
    if (!u->o->overwrite)
        return bl_err(BOXLITE_EEXISTS, "entry \"%s\": the destination exists", u->shown);
    if (unlinkat(pfd, leaf, 0) < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": remove the old file", u->shown);
    return 0;
}

static int remember_dir(struct ux *u, const char *rel, mode_t mode, struct timespec mt)
{
    if (u->ndirs == u->capdirs) {
        size_t ncap = u->capdirs ? u->capdirs * 2 : 64;
        struct dirfix *n = realloc(u->dirs, ncap * sizeof(*n));
        if (!n)
            return bl_err(BOXLITE_ENOMEM, "out of memory");
        u->dirs = n;
        u->capdirs = ncap;
    }
    u->dirs[u->ndirs].rel = strdup(rel);
    if (!u->dirs[u->ndirs].rel)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    u->dirs[u->ndirs].mode = mode;
    u->dirs[u->ndirs].mtime = mt;
    u->ndirs++;
    return 0;
}

static int write_at(struct ux *u, int fd, const char *p, size_t n, int64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": write", u->shown);
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* The entry's data blocks at their offsets (a sparse entry's holes stay holes), never past
 * the size it announced, which the caller has already counted against the limit. */
static int write_data(struct ux *u, struct archive *a, int fd, int64_t size)
{
    int rc = 0;

    while (rc == 0) {
        const void *buf;
        size_t n;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &n, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return bl_err(BOXLITE_EPROTO, "entry \"%s\": %s", u->shown, archive_error_string(a));
        if (off < 0 || (uint64_t)n > (uint64_t)size || off > size - (int64_t)n)
            return refuse(u, "its data lies outside the size it announced");
        rc = write_at(u, fd, buf, n, off);
    }
    if (rc == 0 && ftruncate(fd, (off_t)size) < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": set its size", u->shown);
    return rc;
}

static int put_file(struct ux *u, struct archive *a, struct archive_entry *e, int pfd,
                    const char *leaf)
{
    struct timespec ts[2];
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    int fd, rc;

    if (size < 0)
        return refuse(u, "its size cannot be read");
    if ((uint64_t)size > u->o->max_bytes - u->bytes)
        return bl_err(BOXLITE_EPROTO,
                      "entry \"%s\": %lld bytes pass the copy's size limit (%llu bytes in all)",
                      u->shown, (long long)size, (unsigned long long)u->o->max_bytes);
    u->bytes += (uint64_t)size;
    rc = make_room(u, pfd, leaf, 0);
    if (rc != 0)
        return rc;
    fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": create", u->shown);
    rc = write_data(u, a, fd, size);
    ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
    ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (rc == 0 && (fchmod(fd, host_mode(u, e)) < 0 || futimens(fd, ts) < 0))
        rc = bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": set mode and mtime", u->shown);
    close(fd);
    return rc;
}

static int put_entry(struct ux *u, struct archive *a, struct archive_entry *e)
{
    char name[BL_UNTAR_PATH_MAX + 1], rel[BL_UNTAR_PATH_MAX + 1];
    mode_t type = archive_entry_filetype(e);
    struct timespec ts[2];
    const char *leaf;
    int pfd = -1, rc;

    show(u, archive_entry_pathname(e));
    if (++u->entries > u->o->max_entries)
        return refuse(u, "the archive has more entries than the copy allows");
    rc = clean_name(u, archive_entry_pathname(e), name);
    if (rc == 0 && archive_entry_hardlink(e))
        rc = refuse(u, "hard links are refused");
    if (rc == 0 && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return 0; /* devices, fifos, sockets: not copied */
    if (rc == 0 && !u->decided)
        rc = decide(u, name, type == AE_IFDIR);
    if (rc == 0)
        rc = map_name(u, name, rel);
    if (rc != 0 || rel[0] == '\0')
        return rc;
    rc = open_parent(u, rel, &leaf, &pfd);
    if (rc != 0)
        return rc;
    ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
    ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (type == AE_IFREG) {
        rc = put_file(u, a, e, pfd, leaf);
    } else if (type == AE_IFDIR) {
        rc = make_room(u, pfd, leaf, 1);
        if (rc == 0 && mkdirat(pfd, leaf, 0700) < 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": mkdir", u->shown);
        if (rc >= 0)
            rc = remember_dir(u, rel, host_mode(u, e), ts[1]);
    } else {
        const char *target = archive_entry_symlink(e);
        rc = target ? make_room(u, pfd, leaf, 0) : refuse(u, "the link target cannot be read");
        if (rc == 0 && symlinkat(target, pfd, leaf) < 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "entry \"%s\": symlink", u->shown);
        if (rc == 0)
            (void)utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
    }
    close(pfd);
    return rc;
}

/* Directories get their mode and mtime last (deepest first), once nothing is added to them. */
static int fix_dirs(struct ux *u, int rc)
{
    for (size_t i = u->ndirs; i > 0; i--) {
        struct dirfix *d = &u->dirs[i - 1];
        struct timespec ts[2] = {d->mtime, d->mtime};
        int fd = rc == 0 ? open_dir_beneath(u->rootfd, d->rel) : -1;
        if (rc == 0 && (fd < 0 || fchmod(fd, d->mode) < 0 || futimens(fd, ts) < 0))
            rc = bl_err_errno(BOXLITE_EIO, errno, "set the mode of directory %s", d->rel);
        if (fd >= 0)
            close(fd);
        free(d->rel);
    }
    free(u->dirs);
    u->dirs = NULL;
    return rc;
}

int bl_untar(const char *dest, const struct bl_untar_opts *o, bl_untar_read_fn fn, void *ctx)
{
    struct src s = {fn, ctx, 0, 0, 0, 0, 0};
    struct ux u;
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int rc = 0;

    memset(&u, 0, sizeof(u));
    u.o = o;
    u.dest = dest;
    u.rootfd = -1;
    u.umask = caller_umask();
    if (!a)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    archive_read_support_format_tar(a);
    if (archive_read_open(a, &s, NULL, src_read, NULL) != ARCHIVE_OK) {
        rc = bl_err(BOXLITE_EPROTO, "not a tar archive: %s", archive_error_string(a));
        goto out;
    }
    while (rc == 0) {
        int r;
        s.hdr_start = s.consumed;
        s.in_header = 1;
        r = archive_read_next_header(a, &e);
        s.in_header = 0;
        if (r == ARCHIVE_EOF)
            break;
        if (s.read_failed)
            rc = bl_err_wrap(BOXLITE_EPROTO, "after entry \"%s\"", u.shown);
        else if (s.too_big)
            rc = bl_err(BOXLITE_EPROTO, "an entry after \"%s\": headers over %u bytes", u.shown,
                        BL_UNTAR_HEADER_MAX);
        else if (r < ARCHIVE_WARN)
            rc = bl_err(BOXLITE_EPROTO, "bad archive after entry \"%s\": %s", u.shown,
                        archive_error_string(a));
        else
            rc = put_entry(&u, a, e);
    }
    if (rc == 0 && !u.decided)
        rc = bl_err(BOXLITE_EPROTO, "the archive is empty");
    rc = fix_dirs(&u, rc);
out:
    if (u.rootfd >= 0)
        close(u.rootfd);
    archive_read_free(a);
    return rc;
}
