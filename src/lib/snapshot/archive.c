/* archive.c — one box as a portable `.boxlite` archive (a tar: manifest.json, then disk.qcow2,
 * a standalone qcow2) and its import, which trusts nothing in the archive until checked. */
#include "box.h"
#include "bounds.h"
#include "boxarchive.h"
#include "db.h"
#include "disk.h"
#include "error.h"
#include "image.h"
#include "runtime.h"
#include "secrets.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT       "boxlite-box"
#define MANIFEST     "manifest.json"
#define DISK         "disk.qcow2"
#define GUEST        "guest-rootfs.qcow2" /* in BoxLite's older archives */
#define MANIFEST_MAX (1u << 20)
#define DISK_MAX     (1ull << 40)
#define CHUNK        (1u << 20)

/* sha256 of a file as 64 hex characters into out[65]. */
static int sha256_file(const char *path, char out[65], uint64_t *size_out)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32], *buf = malloc(CHUNK);
    unsigned mdlen = 0;
    uint64_t size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    ssize_t n;

    if (!ctx || !buf || fd < 0 || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "hash %s", path);
        goto out;
    }
    while ((n = read(fd, buf, CHUNK)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        size += (uint64_t)n;
    }
    if (n < 0 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "read %s", path);
        goto out;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    *size_out = size;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static json_t *strv_json(char **v)
{
    json_t *a;

    if (!v)
        return json_null();
    a = json_array();
    for (size_t i = 0; a && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The box's env as an archive carries it: without the secrets proxy's and CA's entries (the
 * values never leave the box's monitor, so an imported box has no proxy to point at; the
 * placeholders stay, as the box's programs may name them). */
static json_t *env_json(char **v)
{
    json_t *a = strv_json(v);
    size_t i = 0;

    while (v && json_is_array(a) && i < json_array_size(a))
        if (bl_secrets_env_is_wiring(json_string_value(json_array_get(a, i))))
            json_array_remove(a, i);
        else
            i++;
    return a;
}

static char *manifest_text(const struct bl_box_row *r, const char *sha, uint64_t size)
{
    json_t *m = json_pack("{s:s, s:i, s:{s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:s?, s:s?, s:b}, "
                          "s:[{s:s, s:I, s:s}]}",
                          "format", FORMAT, "version", 1, "box", "image", r->image, "cpus",
                          (int)r->cpus, "memory_mib", (int)r->memory_mib, "disk_size_gb",
                          (int)r->disk_size_gb, "env", env_json(r->env), "entrypoint",
                          strv_json(r->entrypoint), "cmd", strv_json(r->cmd), "workdir", r->workdir,
                          "user", r->user, "network_disabled", r->network_disabled, "files", "name",
                          DISK, "size", (json_int_t)size, "sha256", sha);
    char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

    json_decref(m);
    return text;
}

static int add_member(struct archive *a, const char *name, const char *path, const void *data,
                      size_t len)
{
    struct archive_entry *e = archive_entry_new();
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    char *buf = NULL;
    int rc = 0;
    ssize_t n;

    if (!e || (path && (fd < 0 || fstat(fd, &st) != 0))) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", path ? path : name);
        goto out;
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, path ? st.st_size : (la_int64_t)len);
    if (archive_write_header(a, e) != ARCHIVE_OK) {
        rc = bl_err(BOXLITE_EIO, "archive %s: %s", name, archive_error_string(a));
        goto out;
    }
    if (!path) {
        if (archive_write_data(a, data, len) != (la_ssize_t)len)
            rc = bl_err(BOXLITE_EIO, "archive %s: %s", name, archive_error_string(a));
        goto out;
    }
    buf = malloc(CHUNK);
    while (rc == 0 && buf && (n = read(fd, buf, CHUNK)) > 0)
        if (archive_write_data(a, buf, (size_t)n) != n)
            rc = bl_err(BOXLITE_EIO, "archive %s: %s", name, archive_error_string(a));
    if (!buf)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    archive_entry_free(e);
    return rc;
}

static int write_archive(const char *dest, const char *manifest, const char *disk)
{
    char *tmp = NULL;
    struct archive *a = archive_write_new();
    int fd = a ? bl_open_temp(&tmp, dest, 0600) : -1, rc = 0;

    if (!a || fd < 0) {
        rc = a ? fd : bl_err(BOXLITE_ENOMEM, "out of memory");
        fd = -1;
        goto out;
    }
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
        rc = bl_err(BOXLITE_EIO, "write %s: %s", tmp, archive_error_string(a));
    if (rc == 0)
        rc = add_member(a, MANIFEST, NULL, manifest, strlen(manifest));
    if (rc == 0)
        rc = add_member(a, DISK, disk, NULL, 0);
    if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
        rc = bl_err(BOXLITE_EIO, "write %s: %s", tmp, archive_error_string(a));
    if (rc == 0 && fsync(fd) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "fsync %s", tmp);
    bl_test_crash("export:written");
    if (rc == 0 && rename(tmp, dest) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", tmp);
out:
    if (a)
        archive_write_free(a);
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* A private work directory in the store (boxes/.export-<id>, locked; repair removes it). */
static int work_dir(boxlite_runtime *rt, char **out, int *lock_out)
{
    char id[13];
    char *dir = NULL;
    int rc = bl_random_id(id);

    if (rc == 0) {
        dir = bl_strdupf("%s/boxes/.export-%s", rt->home, id);
        rc = dir ? bl_make_locked_dir(dir, lock_out) : BOXLITE_ENOMEM;
    }
    if (rc == 0)
        *out = dir;
    else
        free(dir);
    return rc;
}

BOXLITE_API int boxlite_box_export(boxlite_box *box, const char *snapshot, const char *dest)
{
    struct bl_snap_row s;
    char *src = NULL, *work = NULL, *flat = NULL, *manifest = NULL;
    char sha[65];
    uint64_t size = 0;
    int lock_fd = -1, rc;

    bl_err_clear();
    if (!box || !dest)
        return bl_err(BOXLITE_EINVAL, "export: bad arguments");
    rc = bl_box_reload(box);
    if (rc == 0 && snapshot)
        rc = bl_db_snap_get(box->rt->db, box->row.id, snapshot, &s);
    else if (rc == 0 && bl_box_running(box))
        rc = bl_err(BOXLITE_ESTATE, "box %s is running: stop it, or export one of its snapshots",
                    box->row.id);
    if (rc == 0) {
        src = snapshot ? bl_strdupf("%s/snapshots/%s/disk.qcow2", box->dir, s.name)
                       : strdup(box->disk);
        rc = src ? work_dir(box->rt, &work, &lock_fd) : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        flat = bl_strdupf("%s/" DISK, work);
        rc = flat ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = bl_disk_convert(src, flat); /* the whole chain, flattened: no backing file */
    }
    bl_test_crash("export:flattened");
    if (rc == 0)
        rc = sha256_file(flat, sha, &size);
    if (rc == 0) {
        manifest = manifest_text(&box->row, sha, size);
        rc = manifest ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = write_archive(dest, manifest, flat);
    if (work)
        bl_rm_rf(work);
    if (lock_fd >= 0)
        close(lock_fd);
    free(src);
    free(work);
    free(flat);
    free(manifest);
    if (rc != 0)
        return bl_err_wrap(rc, "export box %s to %s", box->row.id, dest);
    return 0;
}

/* ---- import ---- */

struct import {
    char *dir;      /* boxes/.new-<id> (boxlite_box_import) */
    char *disk;     /* dir/disk.qcow2 */
    char *manifest; /* text (read_archive) */
    uint64_t disk_size;
    char disk_sha[65];
    int have_disk;
};

/* The member's data into a file, hashing as it goes (size capped). */
static int extract_disk(struct archive *a, struct import *im, uint64_t cap)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32], *buf = malloc(CHUNK);
    unsigned mdlen = 0;
    int fd = open(im->disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    la_ssize_t n;

    if (!ctx || !buf || fd < 0 || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", im->disk);
        goto out;
    }
    while ((n = archive_read_data(a, buf, CHUNK)) > 0) {
        im->disk_size += (uint64_t)n;
        if (im->disk_size > cap) {
            rc = bl_err(BOXLITE_EINVAL, DISK " is larger than the manifest says");
            goto out;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        if (bl_write_all(fd, buf, (size_t)n) != 0) {
            rc = bl_err_errno(BOXLITE_EIO, errno, "write %s", im->disk);
            goto out;
        }
    }
    if (n < 0) {
        rc = bl_err(BOXLITE_EINVAL, "read " DISK ": %s", archive_error_string(a));
        goto out;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned i = 0; i < 32; i++) {
        im->disk_sha[2 * i] = hex[md[i] >> 4];
        im->disk_sha[2 * i + 1] = hex[md[i] & 15];
    }
    im->disk_sha[64] = '\0';
    if (fsync(fd) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "fsync %s", im->disk);
    im->have_disk = rc == 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* The manifest's word on the disk member: its size and sha256 (*foreign: BoxLite's manifest,
 * translated; its disk's size is the tar header's, capped). */
static int manifest_disk(const char *text, uint64_t *size, const char **sha, json_t **root,
                         int *foreign)
{
    json_error_t je;
    json_t *m = json_loads(text, JSON_REJECT_DUPLICATES, &je), *t = NULL;
    json_t *files, *f, *sz;
    const char *fmt, *name;

    *foreign = bl_box_archive_is_boxlite(m);
    if (*foreign) {
        int rc = bl_box_archive_from_boxlite(&t, m);
        json_decref(m);
        if (rc != 0)
            return rc;
        m = t;
    }
    files = m ? json_object_get(m, "files") : NULL;
    f = files && json_array_size(files) == 1 ? json_array_get(files, 0) : NULL;
    fmt = m ? json_string_value(json_object_get(m, "format")) : NULL;
    name = f ? json_string_value(json_object_get(f, "name")) : NULL;
    sz = f ? json_object_get(f, "size") : NULL;
    *sha = f ? json_string_value(json_object_get(f, "sha256")) : NULL;
    if (!m || !fmt || strcmp(fmt, FORMAT) != 0 || !name || strcmp(name, DISK) != 0 ||
        !json_is_integer(sz) || json_integer_value(sz) < 0 ||
        (uint64_t)json_integer_value(sz) > DISK_MAX || !*sha || strlen(*sha) != 64 ||
        !json_is_object(json_object_get(m, "box"))) {
        json_decref(m);
        return bl_err(BOXLITE_EINVAL, MANIFEST " is not a boxlite box manifest%s%s", m ? "" : ": ",
                      m ? "" : je.text);
    }
    *size = *foreign ? UINT64_MAX : (uint64_t)json_integer_value(sz);
    *root = m;
    return 0;
}

/* A member's name, type and size against what may come at this point: manifest.json first;
 * then disk.qcow2 once; in BoxLite's archives also guest-rootfs.qcow2 once (skipped). */
static int check_member(struct archive *a, struct archive_entry *e, int idx, int foreign,
                        int *guest_seen, const struct import *im, uint64_t want, uint64_t cap)
{
    const char *name = archive_entry_pathname(e);
    la_int64_t size = archive_entry_size(e);
    int is_disk = idx > 0 && name && strcmp(name, DISK) == 0 && !im->have_disk;
    int is_guest = idx > 0 && foreign && name && strcmp(name, GUEST) == 0 && !*guest_seen;

    if (!name || strchr(name, '/') || strstr(name, "..") ||
        !((idx == 0 && strcmp(name, MANIFEST) == 0) || is_disk || is_guest))
        return bl_err(BOXLITE_EINVAL, "unexpected member \"%s\" (expected %s)", name ? name : "?",
                      idx == 0                    ? MANIFEST
                      : im->have_disk && !foreign ? "nothing more"
                                                  : DISK);
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
        archive_entry_symlink(e))
        return bl_err(BOXLITE_EINVAL, "member \"%s\" is not a regular file", name);
    if (idx == 0 && (size <= 0 || size > (la_int64_t)MANIFEST_MAX))
        return bl_err(BOXLITE_EINVAL, MANIFEST " has a bad size");
    if (idx == 1 && !foreign && archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE)
        return bl_err(BOXLITE_EINVAL,
                      "a " FORMAT " archive is a plain tar: this one is "
                      "compressed (%s)",
                      archive_filter_name(a, 0));
    if (idx > 0 && !foreign && is_disk && (size < 0 || (uint64_t)size != want))
        return bl_err(BOXLITE_EINVAL, DISK " is %lld bytes, the manifest says %llu",
                      (long long)size, (unsigned long long)want);
    if (idx > 0 && foreign && (size < 0 || (uint64_t)size > cap))
        return bl_err(
            BOXLITE_EINVAL, "%s is %lld bytes, over the %llu GiB limit for this import (%s)", name,
            (long long)size, (unsigned long long)(cap >> 30), bl_limit_env(BL_LIMIT_IMPORT_DISK));
    *guest_seen |= is_guest;
    return 0;
}

/* Member names: exactly manifest.json then disk.qcow2, regular files, nothing else (in
 * BoxLite's archives an old guest-rootfs.qcow2 besides, skipped). */
static int read_archive(const char *path, struct import *im, json_t **root, uint64_t cap)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    uint64_t want = 0;
    const char *sha = NULL;
    int rc = 0, r, idx = 0, foreign = 0, guest_seen = 0;

    if (!a)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    archive_read_support_format_tar(a);
    archive_read_support_filter_none(a);
    archive_read_support_filter_zstd(a); /* BoxLite's; ours is refused compressed */
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        rc = bl_err(BOXLITE_EIO, "open %s: %s", path, archive_error_string(a));
        goto out;
    }
    while (rc == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        la_int64_t size = archive_entry_size(e);
        const char *name = archive_entry_pathname(e);

        rc = check_member(a, e, idx, foreign, &guest_seen, im, want, cap);
        if (rc == 0 && idx == 0) {
            im->manifest = calloc(1, (size_t)size + 1);
            if (!im->manifest)
                rc = bl_err(BOXLITE_ENOMEM, "out of memory");
            else if (archive_read_data(a, im->manifest, (size_t)size) != size)
                rc = bl_err(BOXLITE_EINVAL, "read " MANIFEST ": truncated");
            else
                rc = manifest_disk(im->manifest, &want, &sha, root, &foreign);
            if (rc == 0 && want > cap && !foreign)
                rc = bl_err(BOXLITE_EINVAL,
                            DISK " is %llu bytes, over the %llu GiB limit for an untrusted "
                                 "archive (%s)",
                            (unsigned long long)want, (unsigned long long)(cap >> 30),
                            bl_limit_env(BL_LIMIT_IMPORT_DISK));
        } else if (rc == 0 && strcmp(name, GUEST) == 0) {
            if (archive_read_data_skip(a) != ARCHIVE_OK)
                rc = bl_err(BOXLITE_EINVAL, "read " GUEST ": %s", archive_error_string(a));
        } else if (rc == 0) {
            rc = extract_disk(a, im, foreign ? (uint64_t)size : want);
            if (rc == 0 && strcmp(im->disk_sha, sha) != 0)
                rc = bl_err(BOXLITE_EINVAL,
                            "checksum mismatch: " DISK " has sha256 %s, the "
                            "manifest says %s",
                            im->disk_sha, sha);
        }
        idx++;
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = bl_err(BOXLITE_EINVAL, "read %s: %s", path, archive_error_string(a));
    if (rc == 0 && !im->have_disk)
        rc = bl_err(BOXLITE_EINVAL, "the archive has no " DISK);
    if (rc == 0 && foreign) /* the size the manifest did not state: what was read */
        json_object_set_new(json_array_get(json_object_get(*root, "files"), 0), "size",
                            json_integer((json_int_t)im->disk_size));
out:
    archive_read_free(a);
    return rc;
}

int bl_box_archive_read(json_t **manifest_out, const char *path, const char *disk, uint64_t cap)
{
    struct import im = {0};
    json_t *m = NULL;
    int rc;

    im.disk = (char *)disk;
    rc = read_archive(path, &im, &m, cap);
    if (rc == 0)
        *manifest_out = m;
    else
        json_decref(m);
    free(im.manifest);
    return rc;
}

/* A qcow2 (our header reader) with no backing file and no external data file; untrusted:
 * within the size limit and passing qemu-img's own check. */
static int check_disk(const char *disk, int untrusted)
{
    const char *check[] = {"qemu-img", "check", "-q", "-f", "qcow2", disk, NULL};
    struct bl_qcow2 q;
    int rc = bl_qcow2_read(&q, disk);

    if (rc != 0)
        rc = bl_err_wrap(BOXLITE_EINVAL, DISK " is not a valid qcow2 image");
    else if (q.backing[0])
        rc = bl_err(BOXLITE_EINVAL, DISK " names a backing file (%s): refused", q.backing);
    else if (q.data_file)
        rc = bl_err(BOXLITE_EINVAL, DISK " names an external data file: refused");
    else if (untrusted && q.size > (bl_limit(BL_LIMIT_IMPORT_DISK) << 30))
        rc = bl_err(BOXLITE_EINVAL,
                    DISK " has a virtual size of %llu bytes, over the %llu GiB limit for an "
                         "untrusted archive (%s)",
                    (unsigned long long)q.size, (unsigned long long)bl_limit(BL_LIMIT_IMPORT_DISK),
                    bl_limit_env(BL_LIMIT_IMPORT_DISK));
    if (rc == 0 && untrusted && bl_run_tool(check) != 0)
        rc = bl_err_wrap(BOXLITE_EINVAL, DISK " failed qemu-img check");
    return rc;
}

static char **json_strv(json_t *a, int *ok)
{
    char **v;
    size_t n;

    if (!a || json_is_null(a))
        return NULL;
    n = json_array_size(a);
    if (!json_is_array(a) || n > 4096) {
        *ok = 0;
        return NULL;
    }
    v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        v[i] = strdup(s ? s : "");
    }
    if (!v)
        *ok = 0;
    return v;
}

/* What an untrusted archive may ask for: the host's CPUs and memory (or the limits set),
 * a disk of at most BOXLITE_MAX_IMPORT_DISK GiB, an image it cannot make us pull. */
static int check_untrusted(boxlite_runtime *rt, const char *image, json_int_t cpus, json_int_t mem,
                           json_int_t disk)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES);
    uint64_t max_cpus = bl_limit(BL_LIMIT_IMPORT_CPUS), max_mem = bl_limit(BL_LIMIT_IMPORT_MEMORY);
    uint64_t max_disk = bl_limit(BL_LIMIT_IMPORT_DISK);

    if (!max_cpus)
        max_cpus = ncpu > 0 ? (uint64_t)ncpu : 1;
    if (!max_mem)
        max_mem = pages > 0 ? (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE) >> 20 : 1024;
    if ((uint64_t)cpus > max_cpus)
        return bl_err(BOXLITE_EINVAL, MANIFEST ": %lld cpus, over the limit of %llu (%s)",
                      (long long)cpus, (unsigned long long)max_cpus,
                      bl_limit_env(BL_LIMIT_IMPORT_CPUS));
    if ((uint64_t)mem > max_mem)
        return bl_err(BOXLITE_EINVAL, MANIFEST ": %lld MiB of memory, over the limit of %llu (%s)",
                      (long long)mem, (unsigned long long)max_mem,
                      bl_limit_env(BL_LIMIT_IMPORT_MEMORY));
    if ((uint64_t)disk > max_disk)
        return bl_err(BOXLITE_EINVAL, MANIFEST ": a %lld GB disk, over the limit of %llu (%s)",
                      (long long)disk, (unsigned long long)max_disk,
                      bl_limit_env(BL_LIMIT_IMPORT_DISK));
    return bl_image_check_untrusted(rt, image);
}

int bl_box_archive_row(struct bl_box_row *r, json_t *root, const char *id, const char *name,
                       boxlite_runtime *rt, int untrusted)
{
    json_t *b = json_object_get(root, "box");
    const char *image = json_string_value(json_object_get(b, "image"));
    const char *wd = json_string_value(json_object_get(b, "workdir"));
    const char *user = json_string_value(json_object_get(b, "user"));
    json_int_t cpus = json_integer_value(json_object_get(b, "cpus"));
    json_int_t mem = json_integer_value(json_object_get(b, "memory_mib"));
    json_int_t disk = json_integer_value(json_object_get(b, "disk_size_gb"));
    int ok = 1, rc;

    if (!image)
        return bl_err(BOXLITE_EINVAL, MANIFEST ": invalid box settings: no image");
    if (cpus < 1 || cpus > 64)
        return bl_err(BOXLITE_EINVAL, MANIFEST ": invalid box settings: %lld cpus (1 to 64)",
                      (long long)cpus);
    if (mem < 128 || mem > 1024 * 1024)
        return bl_err(BOXLITE_EINVAL,
                      MANIFEST ": invalid box settings: %lld MiB of memory (128 to 1048576)",
                      (long long)mem);
    if (disk < 0 || disk > 16384 || (wd && wd[0] != '/'))
        return bl_err(BOXLITE_EINVAL,
                      MANIFEST ": invalid box settings: disk_size_gb (0 to 16384) or workdir "
                               "(absolute)");
    if (untrusted && check_untrusted(rt, image, cpus, mem, disk) != 0)
        return bl_err_wrap(BOXLITE_EINVAL, "untrusted archive");
    rc = bl_box_row_init(r, id, name, image);
    if (rc != 0)
        return rc;
    r->cpus = (unsigned)cpus;
    r->memory_mib = (unsigned)mem;
    r->disk_size_gb = (unsigned)disk;
    r->env = json_strv(json_object_get(b, "env"), &ok);
    r->entrypoint = json_strv(json_object_get(b, "entrypoint"), &ok);
    r->cmd = json_strv(json_object_get(b, "cmd"), &ok);
    r->workdir = wd ? strdup(wd) : NULL;
    r->user = user ? strdup(user) : NULL;
    r->network_disabled = json_is_true(json_object_get(b, "network_disabled"));
    for (size_t i = 0; r->env && r->env[i]; i++)
        if (!strchr(r->env[i], '=') || r->env[i][0] == '=')
            ok = 0;
    if (!ok || (wd && !r->workdir) || (user && !r->user)) {
        bl_box_row_clear(r);
        return bl_err(BOXLITE_EINVAL, MANIFEST ": invalid box settings");
    }
    return 0;
}

BOXLITE_API int boxlite_box_import(boxlite_box **out, boxlite_runtime *rt, const char *path,
                                   const char *name, int untrusted)
{
    struct import im = {0};
    struct bl_box_row row = {0};
    json_t *root = NULL;
    char id[13];
    int lock_fd = -1, rc, have_row = 0, published = 0;
    struct bl_box_row existing;

    bl_err_clear();
    if (!out || !rt || !path)
        return bl_err(BOXLITE_EINVAL, "import: bad arguments");
    if (name && bl_check_name("box", name) != 0)
        return bl_err_wrap(BOXLITE_EINVAL, "import %s", path);
    if (name && bl_db_box_get(rt->db, name, &existing) == 0) {
        bl_box_row_clear(&existing);
        return bl_err(BOXLITE_EEXISTS, "a box named \"%s\" already exists", name);
    }
    rc = bl_random_id(id);
    if (rc == 0)
        rc = bl_box_stage(rt, id, &im.dir, &lock_fd);
    if (rc == 0) {
        im.disk = bl_strdupf("%s/" DISK, im.dir);
        rc = im.disk ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = bl_box_archive_read(&root, path, im.disk,
                                 untrusted ? bl_limit(BL_LIMIT_IMPORT_DISK) << 30 : DISK_MAX);
    bl_test_crash("import:extracted");
    if (rc == 0)
        rc = check_disk(im.disk, untrusted);
    if (rc == 0)
        rc = bl_box_archive_row(&row, root, id, name, rt, untrusted);
    have_row = rc == 0;
    if (rc == 0) {
        published = 1;
        rc = bl_box_publish(rt, &row, im.dir);
    }
    if (rc == 0) {
        rc = boxlite_box_get(out, rt, id);
        if (rc != 0) /* no handle (out of memory): a failed import leaves no box */
            bl_box_unpublish(rt, id, im.dir);
    }
    if (rc != 0 && im.dir)
        bl_box_abandon(rt, published ? id : NULL, im.dir, rc);
    if (lock_fd >= 0)
        close(lock_fd);
    if (have_row)
        bl_box_row_clear(&row);
    json_decref(root);
    free(im.dir);
    free(im.disk);
    if (rc != 0)
        return bl_err_wrap(rc, "import %s", path);
    return 0;
}
