/* layer.c — reading layer tars with libarchive (tar; gzip, zstd or none): a verifying scan
 * pass, then OCI whiteouts and entries written into the image through ext4.c. */
#include "layer.h"
#include "error.h"
#include "bounds.h"
#include "store.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF  (256 * 1024)
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

int bl_layer_clean_path(char *out, const char *in)
{
    const char *p = in;
    size_t n = 0;

    if (!in)
        return bl_err(BOXLITE_EINVAL, "entry without a path");
    if (in[0] == '/')
        return bl_err(BOXLITE_EINVAL, "absolute path \"%.200s\" in layer", in);
    while (*p) {
        const char *c = p;
        size_t len = 0;
        while (c[len] && c[len] != '/')
            len++;
        p = c[len] ? c + len + 1 : c + len;
        if (len == 0 || (len == 1 && c[0] == '.'))
            continue;
        if (len == 2 && c[0] == '.' && c[1] == '.')
            return bl_err(BOXLITE_EINVAL, "path \"%.200s\" in layer escapes with \"..\"", in);
        if (n + len + 1 > BL_LAYER_PATH_MAX)
            return bl_err(BOXLITE_EINVAL, "path in layer longer than %d bytes", BL_LAYER_PATH_MAX);
        if (n > 0)
            out[n++] = '/';
        memcpy(out + n, c, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

void bl_layer_scan_clear(struct bl_layer_scan *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_whiteouts; i++)
        free(s->whiteouts[i].path);
    free(s->whiteouts);
    memset(s, 0, sizeof(*s));
}

/* The layer file as libarchive's input, hashed as it is read. */
struct src {
    int fd;
    struct bl_sha256 *h;
    char *buf;
    int err;
};

static la_ssize_t src_read(struct archive *a, void *ctx, const void **buf)
{
    struct src *s = ctx;
    ssize_t n;

    do {
        n = read(s->fd, s->buf, READ_BUF);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        s->err = errno;
        archive_set_error(a, errno, "read layer");
        return -1;
    }
    if (s->h)
        bl_sha256_update(s->h, s->buf, (size_t)n);
    *buf = s->buf;
    return n;
}

static int open_layer(struct archive **out, struct src *s, const char *path, int hash)
{
    struct archive *a = NULL;
    int rc = 0;

    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0)
        return bl_err_errno(bl_code_from_errno(errno), errno, "open layer %s", path);
    s->buf = malloc(READ_BUF);
    if (hash && s->buf)
        rc = bl_sha256_new(&s->h);
    a = archive_read_new();
    if (!s->buf || !a || rc != 0) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    if (archive_read_open(a, s, NULL, src_read, NULL) != ARCHIVE_OK)
        rc = bl_err(BOXLITE_EPROTO, "layer is not a tar (plain, gzip or zstd): %s",
                    archive_error_string(a));
out:
    if (rc != 0 && a)
        archive_read_free(a);
    else if (rc == 0)
        *out = a;
    return rc;
}

static void close_layer(struct archive *a, struct src *s)
{
    if (a)
        archive_read_free(a);
    if (s->fd >= 0)
        close(s->fd);
    bl_sha256_free(s->h);
    free(s->buf);
    s->fd = -1;
    s->h = NULL;
    s->buf = NULL;
}

static int add_whiteout(struct bl_layer_scan *s, const char *clean)
{
    const char *slash = strrchr(clean, '/');
    const char *base = slash ? slash + 1 : clean;
    size_t dirlen = slash ? (size_t)(slash - clean) : 0;
    struct bl_whiteout w = {0};
    struct bl_whiteout *v;

    if (strcmp(base, WH_OPAQUE) == 0) {
        w.opaque = 1;
        w.path = strndup(clean, dirlen);
    } else {
        if (!base[4] || strcmp(base + 4, ".") == 0 || strcmp(base + 4, "..") == 0)
            return bl_err(BOXLITE_EINVAL, "invalid whiteout \"%.200s\"", clean);
        w.path = slash ? bl_strdupf("%.*s/%s", (int)dirlen, clean, base + 4) : strdup(base + 4);
    }
    v = w.path ? realloc(s->whiteouts, (s->n_whiteouts + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(w.path);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    s->whiteouts = v;
    s->whiteouts[s->n_whiteouts++] = w;
    return 0;
}

static int is_whiteout(const char *clean)
{
    const char *slash = strrchr(clean, '/');
    return strncmp(slash ? slash + 1 : clean, WH_PREFIX, 4) == 0;
}

/* Drain what libarchive left unread so the digest covers the whole blob. */
static int drain(struct src *s)
{
    for (;;) {
        ssize_t n = read(s->fd, s->buf, READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bl_err_errno(BOXLITE_EIO, errno, "read layer");
        if (n == 0)
            return 0;
        bl_sha256_update(s->h, s->buf, (size_t)n);
    }
}

void bl_layer_budget_init(struct bl_layer_budget *b)
{
    b->bytes = bl_limit(BL_LIMIT_IMAGE_BYTES);
    b->file = bl_limit(BL_LIMIT_IMAGE_FILE);
    b->entries = bl_limit(BL_LIMIT_IMAGE_ENTRIES);
}

#define HEADER_COST 512 /* a tar header block: what an empty entry costs */

int bl_layer_budget_take(struct bl_layer_budget *b, int64_t size, const char *path)
{
    char lim[32];
    uint64_t sz = size > 0 ? (uint64_t)size : 0;

    if (b->entries == 0)
        return bl_err(BOXLITE_EINVAL, "image has more than %llu entries (limit %s)",
                      (unsigned long long)bl_limit(BL_LIMIT_IMAGE_ENTRIES),
                      bl_limit_env(BL_LIMIT_IMAGE_ENTRIES));
    if (sz > b->file)
        return bl_err(BOXLITE_EINVAL,
                      "file \"%.200s\" is %llu bytes, over the %s limit per file (%s)", path,
                      (unsigned long long)sz, bl_limit_bytes(lim, sizeof(lim), b->file),
                      bl_limit_env(BL_LIMIT_IMAGE_FILE));
    if (sz + HEADER_COST > b->bytes)
        return bl_err(BOXLITE_EINVAL, "image expands to more than %s (limit %s), at \"%.200s\"",
                      bl_limit_bytes(lim, sizeof(lim), bl_limit(BL_LIMIT_IMAGE_BYTES)),
                      bl_limit_env(BL_LIMIT_IMAGE_BYTES), path);
    b->entries--;
    b->bytes -= sz + HEADER_COST;
    return 0;
}

int bl_layer_scan(struct bl_layer_scan *out, const char *path, const char *digest,
                  struct bl_layer_budget *budget)
{
    struct bl_layer_budget own;
    struct bl_layer_scan sc = {0};
    struct src s = {.fd = -1};
    struct archive *a = NULL;
    struct archive_entry *e;
    char *clean = malloc(BL_LAYER_PATH_MAX + 1);
    char got[72];
    int rc = clean ? open_layer(&a, &s, path, digest != NULL) : BOXLITE_ENOMEM;

    if (!budget) {
        bl_layer_budget_init(&own);
        budget = &own;
    }
    while (rc == 0) {
        int r = archive_read_next_header(a, &e);
        const char *hl;
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = bl_err(BOXLITE_EPROTO, "corrupt layer (entry %llu): %s",
                        (unsigned long long)sc.entries, archive_error_string(a));
            break;
        }
        sc.entries++;
        rc = bl_layer_clean_path(clean, archive_entry_pathname(e));
        if (rc == 0)
            rc = bl_layer_budget_take(budget, archive_entry_size(e), clean);
        hl = archive_entry_hardlink(e);
        if (rc == 0 && hl) {
            char *t = malloc(BL_LAYER_PATH_MAX + 1);
            rc = t ? bl_layer_clean_path(t, hl) : bl_err(BOXLITE_ENOMEM, "out of memory");
            if (rc == 0 && !*t)
                rc = bl_err(BOXLITE_EINVAL, "hard link to the root directory");
            free(t);
        }
        if (rc == 0 && !*clean && archive_entry_filetype(e) != AE_IFDIR)
            rc = bl_err(BOXLITE_EINVAL, "layer entry for the root is not a directory");
        if (rc == 0 && is_whiteout(clean))
            rc = add_whiteout(&sc, clean);
        if (rc == 0 && archive_entry_filetype(e) == AE_IFREG && !hl)
            sc.bytes += (uint64_t)archive_entry_size(e);
        if (rc == 0 && archive_read_data_skip(a) < ARCHIVE_WARN)
            rc = bl_err(BOXLITE_EPROTO, "corrupt layer at %.200s: %s", clean,
                        archive_error_string(a));
    }
    if (rc == 0 && digest) {
        rc = drain(&s);
        bl_sha256_final(s.h, got);
        if (rc == 0 && strcmp(got, digest) != 0)
            rc = bl_err(BOXLITE_EIO, "layer %s: digest mismatch (content hashes to %s)", digest,
                        got);
    }
    close_layer(a, &s);
    free(clean);
    if (rc != 0)
        bl_layer_scan_clear(&sc);
    else
        *out = sc;
    return rc;
}

static int data_read(void *ctx, const void **buf, size_t *n)
{
    struct archive *a = ctx;
    la_int64_t off = 0;
    int r = archive_read_data_block(a, buf, n, &off);

    if (r == ARCHIVE_EOF) {
        *n = 0;
        return 0;
    }
    if (r < ARCHIVE_WARN)
        return bl_err(BOXLITE_EPROTO, "corrupt layer data: %s", archive_error_string(a));
    return 0;
}

static int apply_xattrs(struct bl_fs *fs, const char *path, struct archive_entry *e)
{
    const char *name;
    const void *value;
    size_t size;
    int rc = 0;

    if (archive_entry_xattr_reset(e) == 0)
        return 0;
    while (rc == 0 && archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
        rc = bl_fs_set_xattr(fs, path, name, value, size);
    return rc;
}

static int apply_entry(struct bl_fs *fs, struct archive *a, struct archive_entry *e,
                       const char *path, char *tmp)
{
    struct bl_fs_attr attr = {
        .mode = (unsigned)archive_entry_mode(e),
        .uid = (uint32_t)archive_entry_uid(e),
        .gid = (uint32_t)archive_entry_gid(e),
        .mtime = archive_entry_mtime(e),
        .dev_major = (unsigned)archive_entry_rdevmajor(e),
        .dev_minor = (unsigned)archive_entry_rdevminor(e),
    };
    const char *hl = archive_entry_hardlink(e);
    const char *target;
    int rc;

    if (hl) {
        rc = bl_layer_clean_path(tmp, hl);
        return rc == 0 ? bl_fs_hardlink(fs, path, tmp) : rc;
    }
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
        rc = bl_fs_mkdir(fs, path, &attr);
        break;
    case AE_IFREG:
        rc = bl_fs_write_file(fs, path, &attr, data_read, a);
        break;
    case AE_IFLNK:
        target = archive_entry_symlink(e);
        rc = bl_fs_symlink(fs, path, &attr, target ? target : "");
        break;
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
        rc = bl_fs_mknod(fs, path, &attr);
        break;
    default:
        return 0; /* sockets and unknown types are not part of an image */
    }
    if (rc == 0)
        rc = apply_xattrs(fs, path, e);
    return rc;
}

int bl_layer_apply(struct bl_fs *fs, const char *path, const struct bl_layer_scan *scan)
{
    struct src s = {.fd = -1};
    struct archive *a = NULL;
    struct archive_entry *e;
    char *clean = malloc(2 * (BL_LAYER_PATH_MAX + 1));
    int rc = clean ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    for (size_t i = 0; i < scan->n_whiteouts && rc == 0; i++) {
        const struct bl_whiteout *w = &scan->whiteouts[i];
        rc = w->opaque ? bl_fs_clear_dir(fs, w->path) : bl_fs_remove(fs, w->path);
        if (rc != 0)
            bl_err_wrap(rc, "whiteout %s", w->path);
    }
    if (rc == 0)
        rc = open_layer(&a, &s, path, 0);
    while (rc == 0) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = bl_err(BOXLITE_EPROTO, "corrupt layer: %s", archive_error_string(a));
            break;
        }
        rc = bl_layer_clean_path(clean, archive_entry_pathname(e));
        if (rc == 0 && !is_whiteout(clean)) {
            rc = apply_entry(fs, a, e, clean, clean + BL_LAYER_PATH_MAX + 1);
            if (rc != 0)
                bl_err_wrap(rc, "%s", *clean ? clean : "/");
        }
    }
    close_layer(a, &s);
    free(clean);
    return rc;
}
