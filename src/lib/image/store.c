/* store.c — the content store: verified sha256 blobs under images/blobs, temp files under
 * images/tmp, flock(2) locks under images/locks, and moving the image records older stores
 * kept under images/refs into boxlite.db. */
#include "store.h"
#include "error.h"
#include "reference.h"
#include "util.h"

#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAX (64 * 1024)

struct bl_sha256 {
    EVP_MD_CTX *ctx;
};

int bl_sha256_new(struct bl_sha256 **out)
{
    struct bl_sha256 *h = calloc(1, sizeof(*h));

    if (h)
        h->ctx = EVP_MD_CTX_new();
    if (!h || !h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        bl_sha256_free(h);
        return bl_err(BOXLITE_ENOMEM, "sha256: out of memory");
    }
    *out = h;
    return 0;
}

void bl_sha256_update(struct bl_sha256 *h, const void *buf, size_t n)
{
    EVP_DigestUpdate(h->ctx, buf, n);
}

void bl_sha256_final(struct bl_sha256 *h, char out[72])
{
    unsigned char md[32];
    unsigned len = 0;

    EVP_DigestFinal_ex(h->ctx, md, &len);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

void bl_sha256_free(struct bl_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void bl_sha256_buf(char out[72], const void *buf, size_t n)
{
    unsigned char md[32];

    EVP_Digest(buf, n, md, NULL, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int bl_store_init(const char *home)
{
    static const char *const sub[] = {"images/blobs/sha256", "images/tmp", "images/locks",
                                      "images/rootfs"};
    int rc = 0;

    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]) && rc == 0; i++) {
        char *p = bl_strdupf("%s/%s", home, sub[i]);
        rc = p ? bl_mkdir_p(p, 0700) : BOXLITE_ENOMEM;
        free(p);
    }
    return rc;
}

char *bl_store_blob_path(const char *home, const char *digest)
{
    return bl_strdupf("%s/images/blobs/sha256/%s", home, digest + 7);
}

int bl_store_has_blob(const char *home, const char *digest)
{
    char *p = bl_store_blob_path(home, digest);
    int ok = p && access(p, R_OK) == 0;

    free(p);
    return ok;
}

int bl_store_read_blob(char **out, size_t *len_out, const char *home, const char *digest,
                       size_t max)
{
    char *p = bl_store_blob_path(home, digest);
    char *buf = NULL;
    char got[72];
    size_t len = 0;
    int rc;

    if (!p)
        return BOXLITE_ENOMEM;
    rc = bl_read_file(&buf, &len, p, max);
    if (rc == 0) {
        bl_sha256_buf(got, buf, len);
        if (strcmp(got, digest) != 0)
            rc = bl_err(BOXLITE_EIO, "blob %s in the store is corrupt (its content hashes to %s)",
                        digest, got);
    }
    if (rc == 0) {
        *out = buf;
        buf = NULL;
        if (len_out)
            *len_out = len;
    }
    free(buf);
    free(p);
    return rc;
}

char *bl_store_tmp_path(const char *home, const char *suffix)
{
    char id[13];

    if (bl_random_id(id) != 0)
        return NULL;
    return bl_strdupf("%s/images/tmp/%d-%s%s", home, (int)getpid(), id, suffix);
}

struct bl_blob_writer {
    char *home;
    char *tmp;
    int fd;
    uint64_t n, max;
    struct bl_sha256 *h;
};

int bl_blob_begin(struct bl_blob_writer **out, const char *home, uint64_t max_size)
{
    struct bl_blob_writer *w = calloc(1, sizeof(*w));
    int rc = 0;

    if (!w)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    w->fd = -1;
    w->max = max_size;
    w->home = strdup(home);
    w->tmp = bl_store_tmp_path(home, ".partial");
    if (!w->home || !w->tmp) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    rc = bl_sha256_new(&w->h);
    if (rc != 0)
        goto out;
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", w->tmp);
out:
    if (rc != 0)
        bl_blob_free(w);
    else
        *out = w;
    return rc;
}

int bl_blob_write(struct bl_blob_writer *w, const void *buf, size_t n)
{
    int err;

    if (w->max && w->n + n > w->max)
        return bl_err(BOXLITE_EIO, "blob is larger than %llu bytes", (unsigned long long)w->max);
    err = bl_write_all(w->fd, buf, n);
    if (err != 0)
        return bl_err_errno(BOXLITE_EIO, -err, "write %s", w->tmp);
    bl_sha256_update(w->h, buf, n);
    w->n += n;
    return 0;
}

uint64_t bl_blob_written(const struct bl_blob_writer *w)
{
    return w->n;
}

int bl_blob_commit(struct bl_blob_writer *w, const char *expected, char digest_out[72])
{
    char got[72];
    char *dst = NULL;
    int rc = 0;

    bl_sha256_final(w->h, got);
    if (expected && strcmp(expected, got) != 0)
        return bl_err(BOXLITE_EIO, "digest mismatch: expected %s, the content hashes to %s",
                      expected, got);
    if (fsync(w->fd) != 0)
        return bl_err_errno(BOXLITE_EIO, errno, "fsync %s", w->tmp);
    dst = bl_store_blob_path(w->home, got);
    if (!dst)
        return BOXLITE_ENOMEM;
    chmod(w->tmp, 0444);
    if (rename(w->tmp, dst) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s to %s", w->tmp, dst);
    free(dst);
    if (rc == 0) {
        free(w->tmp);
        w->tmp = NULL;
        if (digest_out)
            memcpy(digest_out, got, 72);
    }
    return rc;
}

void bl_blob_free(struct bl_blob_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    bl_sha256_free(w->h);
    free(w->tmp);
    free(w->home);
    free(w);
}

static int lock_mode(int *out, const char *home, const char *name, int timeout_ms, int how)
{
    char *p = bl_strdupf("%s/images/locks/%s.lock", home, name);
    int64_t deadline = bl_now_ms() + timeout_ms;
    int fd = -1, rc = 0;

    if (!p)
        return BOXLITE_ENOMEM;
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "open lock %s", p);
        goto out;
    }
    while (flock(fd, how | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = bl_err_errno(BOXLITE_EIO, errno, "lock %s", p);
            break;
        }
        if (bl_now_ms() >= deadline) {
            rc = bl_err(BOXLITE_ETIMEOUT, "lock %s: another process holds it", p);
            break;
        }
        usleep(20000);
    }
out:
    if (rc != 0 && fd >= 0)
        close(fd);
    else if (rc == 0)
        *out = fd;
    free(p);
    return rc;
}

int bl_store_lock(int *out, const char *home, const char *name, int timeout_ms)
{
    return lock_mode(out, home, name, timeout_ms, LOCK_EX);
}

int bl_store_lock_shared(int *out, const char *home, const char *name, int timeout_ms)
{
    return lock_mode(out, home, name, timeout_ms, LOCK_SH);
}

void bl_store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* ---- a base shipped gzip-compressed (the wheel's default image) ------------------------- */

/* Write buf at *off, or skip it when it is all zeros (a hole): the base stays sparse. */
static int put_sparse(int fd, const char *buf, size_t n, off_t *off)
{
    size_t z = 0;

    while (z < n && buf[z] == 0)
        z++;
    if (z < n && pwrite(fd, buf, n, *off) != (ssize_t)n)
        return -1;
    *off += (off_t)n;
    return 0;
}

static int inflate_into(struct archive *a, int fd, struct bl_sha256 *h, uint64_t max,
                        const char *gz)
{
    enum { BUF = 64 * 1024 };
    char *buf = malloc(BUF);
    off_t off = 0;
    la_ssize_t n = 0;
    int rc = buf ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    while (rc == 0 && (n = archive_read_data(a, buf, BUF)) > 0) {
        if ((uint64_t)off + (uint64_t)n > max)
            rc = bl_err(BOXLITE_EIO, "%s expands beyond %llu bytes", gz, (unsigned long long)max);
        else if (bl_sha256_update(h, buf, (size_t)n), put_sparse(fd, buf, (size_t)n, &off) != 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "write the base from %s", gz);
    }
    if (rc == 0 && n < 0)
        rc = bl_err(BOXLITE_EIO, "%s: %s", gz, archive_error_string(a));
    if (rc == 0 && (ftruncate(fd, off) != 0 || fsync(fd) != 0))
        rc = bl_err_errno(BOXLITE_EIO, errno, "write the base from %s", gz);
    free(buf);
    return rc;
}

int bl_store_inflate_base(const char *gz, const char *dst, const char *hex, uint64_t max)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    struct bl_sha256 *h = NULL;
    char *tmp = NULL, got[72];
    int fd = -1, rc = a ? bl_sha256_new(&h) : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0) {
        archive_read_support_filter_gzip(a);
        archive_read_support_format_raw(a);
        if (archive_read_open_filename(a, gz, 64 * 1024) != ARCHIVE_OK ||
            archive_read_next_header(a, &e) != ARCHIVE_OK)
            rc = bl_err(BOXLITE_EIO, "open %s: %s", gz, archive_error_string(a));
    }
    if (rc == 0 && (fd = bl_open_temp(&tmp, dst, 0444)) < 0)
        rc = fd;
    if (rc == 0)
        rc = inflate_into(a, fd, h, max, gz);
    if (rc == 0) {
        bl_sha256_final(h, got);
        if (strcmp(got + 7, hex) != 0)
            rc = bl_err(BOXLITE_EIO, "%s is damaged: it holds sha256 %s, not %s", gz, got + 7, hex);
    }
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", tmp);
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    bl_sha256_free(h);
    archive_read_free(a);
    return rc;
}

/* ---- records of stores made before schema 7: images/refs/<sha256 of name>.json ---------- */

static char *dup_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static int record_load(struct bl_image_record *out, const char *path)
{
    struct bl_image_record r = {0};
    char *text = NULL;
    size_t len = 0;
    json_t *o = NULL;
    int rc = bl_read_file(&text, &len, path, RECORD_MAX);

    if (rc != 0)
        return rc;
    o = json_loadb(text, len, 0, NULL);
    r.name = dup_field(o, "name");
    r.manifest = dup_field(o, "manifest");
    r.config = dup_field(o, "config");
    r.rootfs = dup_field(o, "rootfs");
    r.size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    r.created = json_integer_value(json_object_get(o, "created"));
    if (!r.name || !bl_digest_valid(r.manifest) || !bl_digest_valid(r.config) || !r.rootfs ||
        strspn(r.rootfs, "0123456789abcdef") != 64 || strlen(r.rootfs) != 64) {
        rc = bl_err(BOXLITE_EIO, "image record %s is damaged", path);
        bl_image_record_clear(&r);
    } else {
        *out = r;
    }
    json_decref(o);
    free(text);
    return rc;
}

int bl_store_records_migrate(const char *home, struct bl_db *db)
{
    char *dir = bl_strdupf("%s/images/refs", home);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    int rc = dir ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0 && !d && errno != ENOENT)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", dir);
    while (rc == 0 && d && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct bl_image_record r;
        char *p;
        if (len != 69 || strcmp(de->d_name + 64, ".json") != 0)
            continue;
        p = bl_strdupf("%s/%s", dir, de->d_name);
        if (p && record_load(&r, p) == 0) { /* a damaged record is left out, as before */
            rc = bl_db_image_put(db, &r, 0);
            bl_image_record_clear(&r);
        }
        free(p);
    }
    if (d)
        closedir(d);
    if (rc == 0 && d) /* every record is in the database: the files go */
        bl_rm_rf(dir);
    if (rc != 0)
        bl_err_wrap(rc, "move the image records of %s into boxlite.db", home);
    free(dir);
    return rc;
}
