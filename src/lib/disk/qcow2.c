/* qcow2.c — the one reader of qcow2 headers. Its input is hostile (a disk in an imported
 * archive, a layer a crash left half written): every field is range-checked before use and
 * nothing is read past what was checked. Format: QEMU's docs/interop/qcow2.txt. */
#include "disk.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define HDR_V2           72  /* bytes of a version 2 header */
#define HDR_V3           104 /* bytes of a version 3 header, up to header_length */
#define INCOMPAT_DATA    (1ull << 2)
#define MAX_CLUSTER_BITS 21 /* 2 MiB, QEMU's limit */
#define MIN_CLUSTER_BITS 9

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
