/* qcow2.c — the one reader of qcow2 headers, and the writer of empty overlays. The reader's
 * input is hostile (a disk in an imported archive, a layer a crash left half written): every
 * field is range-checked before use and nothing is read past what was checked. Format: QEMU's
 * docs/interop/qcow2.txt. */
#include "disk.h"

#include "error.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HDR_V2           72  /* bytes of a version 2 header */
#define HDR_V3           104 /* bytes of a version 3 header, up to header_length */
#define INCOMPAT_DATA    (1ull << 2)
#define MAX_CLUSTER_BITS 21 /* 2 MiB, QEMU's limit */
#define MIN_CLUSTER_BITS 9

#define NEW_CLUSTER_BITS 16 /* what qemu-img create makes: 64 KiB */
#define EXT_BACKING_FMT  0xe2792acau

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Fields of the fixed header in h (len bytes read from offset 0). */
static int parse_fixed(struct bl_qcow2 *q, const unsigned char *h, size_t len)
{
    if (len < HDR_V2 || memcmp(h, "QFI\xfb", 4) != 0)
        return bl_err(BOXLITE_EINVAL, "not a qcow2 file (bad magic or too short)");
    q->version = (uint32_t)be(h + 4, 4);
    if (q->version != 2 && q->version != 3)
        return bl_err(BOXLITE_EINVAL, "qcow2 version %u is not 2 or 3", q->version);
    q->cluster_bits = (uint32_t)be(h + 20, 4);
    if (q->cluster_bits < MIN_CLUSTER_BITS || q->cluster_bits > MAX_CLUSTER_BITS)
        return bl_err(BOXLITE_EINVAL, "qcow2 cluster_bits %u out of range", q->cluster_bits);
    q->size = be(h + 24, 8);
    if (q->size > (uint64_t)INT64_MAX)
        return bl_err(BOXLITE_EINVAL, "qcow2 virtual size out of range");
    q->crypt_method = (uint32_t)be(h + 32, 4);
    if (q->version == 3) {
        uint32_t hlen = len >= HDR_V3 ? (uint32_t)be(h + 100, 4) : 0;
        if (len < HDR_V3 || hlen < HDR_V3 || hlen > (1u << q->cluster_bits))
            return bl_err(BOXLITE_EINVAL, "qcow2 v3 header length out of range");
        q->incompatible = be(h + 72, 8);
    }
    q->data_file = (q->incompatible & INCOMPAT_DATA) != 0;
    return 0;
}

/* The backing name: at most BL_QCOW2_BACKING_MAX bytes, inside the first cluster, no NUL. */
static int read_backing(struct bl_qcow2 *q, int fd, const unsigned char *h)
{
    uint64_t off = be(h + 8, 8);
    uint32_t n = (uint32_t)be(h + 16, 4);
    ssize_t got;

    if (off == 0 || n == 0)
        return 0; /* none */
    if (n > BL_QCOW2_BACKING_MAX || off > (1ull << q->cluster_bits) ||
        off < (q->version == 3 ? HDR_V3 : HDR_V2))
        return bl_err(BOXLITE_EINVAL, "qcow2 backing file name out of range (%u at %llu)", n,
                      (unsigned long long)off);
    got = pread(fd, q->backing, n, (off_t)off);
    if (got < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "read the qcow2 backing name");
    if ((size_t)got != n || memchr(q->backing, '\0', n))
        return bl_err(BOXLITE_EINVAL, "qcow2 backing file name is cut short or holds a NUL");
    q->backing[n] = '\0';
    return 0;
}

int bl_qcow2_read_fd(struct bl_qcow2 *out, int fd)
{
    unsigned char h[HDR_V3];
    struct bl_qcow2 q;
    ssize_t got = pread(fd, h, sizeof(h), 0);
    int rc;

    memset(&q, 0, sizeof(q));
    if (got < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "read the qcow2 header");
    rc = parse_fixed(&q, h, (size_t)got);
    if (rc == 0)
        rc = read_backing(&q, fd, h);
    if (rc == 0)
        *out = q;
    return rc;
}

int bl_qcow2_read(struct bl_qcow2 *out, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "open %s", path);
    rc = bl_qcow2_read_fd(out, fd);
    close(fd);
    if (rc != 0)
        bl_err_wrap(rc, "%s", path);
    return rc;
}

int bl_qcow2_backing(const char *path, char *out, size_t cap)
{
    struct bl_qcow2 q;

    out[0] = '\0';
    if (bl_qcow2_read(&q, path) != 0 || strlen(q.backing) >= cap)
        return -1;
    memcpy(out, q.backing, strlen(q.backing) + 1);
    return 0;
}

uint64_t bl_disk_virtual_size(const char *path)
{
    struct bl_qcow2 q;

    return bl_qcow2_read(&q, path) == 0 ? q.size : 0;
}

/* ---- the writer ---- */

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* The metadata of an empty v3 image, as qemu-img create lays it out: cluster 0 the header,
 * the backing format extension and the backing name; 1 the refcount table; 2 its one
 * refcount block (16-bit counts); 3.. the L1 table, all zero. Returns its byte length. */
static size_t layout(unsigned char *m, const char *backing, const char *fmt, uint64_t size,
                     uint64_t l1_size)
{
    const uint64_t c = 1ull << NEW_CLUSTER_BITS;
    size_t flen = strlen(fmt), off = HDR_V3, name;
    uint64_t l1_clusters = (l1_size * 8 + c - 1) / c;

    memcpy(m, "QFI\xfb", 4);
    put_be(m + 4, 3, 4);
    put_be(m + 20, NEW_CLUSTER_BITS, 4);
    put_be(m + 24, size, 8);
    put_be(m + 36, l1_size, 4);
    put_be(m + 40, 3 * c, 8); /* L1 */
    put_be(m + 48, c, 8);     /* refcount table, one cluster */
    put_be(m + 56, 1, 4);
    put_be(m + 96, 4, 4); /* refcount_order: 16 bits */
    put_be(m + 100, HDR_V3, 4);
    put_be(m + off, EXT_BACKING_FMT, 4);
    put_be(m + off + 4, flen, 4);
    memcpy(m + off + 8, fmt, flen);
    off += 8 + ((flen + 7) & ~(size_t)7);
    off += 8; /* the end of the extensions: type 0, length 0 */
    name = off;
    memcpy(m + name, backing, strlen(backing));
    put_be(m + 8, name, 8);
    put_be(m + 16, strlen(backing), 4);
    put_be(m + c, 2 * c, 8); /* refcount table -> refcount block */
    for (uint64_t i = 0; i < 3 + (l1_clusters ? l1_clusters : 1); i++)
        put_be(m + 2 * c + 2 * i, 1, 2);
    return (size_t)(3 * c + l1_size * 8);
}

int bl_qcow2_create_overlay(const char *path, const char *backing, const char *fmt, uint64_t size)
{
    const uint64_t c = 1ull << NEW_CLUSTER_BITS, per_l2 = c * (c / 8);
    uint64_t l1_size;
    size_t len, blen = strlen(backing), flen = strlen(fmt);
    unsigned char *m = NULL;
    int fd = -1, rc = 0, err;

    /* one refcount block counts the first 32768 clusters: L1 tables up to ~250 TiB */
    if (size == 0 || size > (1ull << 47) || blen == 0 || blen > BL_QCOW2_BACKING_MAX || flen == 0 ||
        flen > 16)
        return bl_err(BOXLITE_EINVAL, "qcow2 overlay of %s: size %llu or names out of range",
                      backing, (unsigned long long)size);
    size = (size + 511) & ~511ull; /* whole sectors, as qemu-img rounds it */
    l1_size = (size + per_l2 - 1) / per_l2;
    m = calloc(1, (size_t)(3 * c + l1_size * 8));
    if (!m)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    len = layout(m, backing, fmt, size, l1_size);
    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    err = fd < 0 ? errno : -bl_write_all(fd, m, len);
    if (err != 0)
        rc = bl_err_errno(BOXLITE_EIO, err, "create %s", path);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        (void)unlink(path);
    free(m);
    return rc;
}
