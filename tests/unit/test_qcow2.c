/* test_qcow2.c — unit tests of the disk module (src/lib/disk): the qcow2 header reader on
 * real headers made by qemu-img and on hostile ones (every field out of range, names past
 * the end of the file), the overlay writer checked by QEMU's own tools, and the chain walk
 * (down to a raw base, and a chain that loops). */
#include "boxlite.h"
#include "disk.h"
#include "error.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char dir[] = "/tmp/test_qcow2.XXXXXX";

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* A well-formed version 3 header of 512 bytes, 64 KiB clusters, 1 GiB, naming "/b/base". */
static void good_v3(unsigned char *h)
{
    memset(h, 0, 512);
    memcpy(h, "QFI\xfb", 4);
    put_be(h + 4, 3, 4);
    put_be(h + 8, 200, 8); /* backing name offset */
    put_be(h + 16, 7, 4);  /* its length */
    put_be(h + 20, 16, 4);
    put_be(h + 24, 1ull << 30, 8);
    put_be(h + 96, 4, 4);    /* refcount_order */
    put_be(h + 100, 104, 4); /* header_length */
    memcpy(h + 200, "/b/base", 7);
}

/* bl_qcow2_read_fd on the first len bytes of h. */
static int read_buf(struct bl_qcow2 *q, const unsigned char *h, size_t len)
{
    int fd = memfd_create("qcow2", MFD_CLOEXEC);
    int rc = fd >= 0 && write(fd, h, len) == (ssize_t)len ? bl_qcow2_read_fd(q, fd) : -99;

    if (fd >= 0)
        close(fd);
    return rc;
}

static void refused(const char *what, unsigned char *h, size_t len)
{
    struct bl_qcow2 q;

    CHECK_EQ(read_buf(&q, h, len), BOXLITE_EINVAL, what);
}

static void hostile_headers(void)
{
    unsigned char h[512], big[2048];
    struct bl_qcow2 q;

    good_v3(h);
    CHECK(read_buf(&q, h, sizeof(h)) == 0 && q.version == 3 && q.size == 1ull << 30 &&
              strcmp(q.backing, "/b/base") == 0 && !q.data_file,
          "a well-formed v3 header");
    good_v3(h);
    refused("too short for a header", h, 71);
    refused("a v3 header cut before header_length", h, 90);
    h[3] = 0xfa;
    refused("bad magic", h, sizeof(h));
    good_v3(h);
    put_be(h + 4, 4, 4);
    refused("version 4", h, sizeof(h));
    put_be(h + 4, 1, 4);
    refused("version 1", h, sizeof(h));
    good_v3(h);
    put_be(h + 20, 8, 4);
    refused("cluster_bits 8", h, sizeof(h));
    put_be(h + 20, 22, 4);
    refused("cluster_bits 22", h, sizeof(h));
    good_v3(h);
    put_be(h + 24, 1ull << 63, 8);
    refused("virtual size over INT64_MAX", h, sizeof(h));
    good_v3(h);
    put_be(h + 100, 100, 4);
    refused("header_length under 104", h, sizeof(h));
    put_be(h + 100, 1u << 17, 4);
    refused("header_length over a cluster", h, sizeof(h));
    good_v3(big);
    memset(big + 200, 'a', sizeof(big) - 200); /* the name is all there: only its length */
    put_be(big + 16, 1024, 4);
    refused("backing name of 1024 bytes", big, sizeof(big));
    put_be(big + 16, 0xffffffffu, 4);
    refused("backing name of 4 GiB", big, sizeof(big));
    good_v3(h);
    put_be(h + 8, (1u << 16) + 1, 8);
    refused("backing name past the first cluster", h, sizeof(h));
    put_be(h + 8, UINT64_MAX - 2, 8);
    refused("backing name offset that wraps", h, sizeof(h));
    put_be(h + 8, 16, 8);
    refused("backing name inside the header", h, sizeof(h));
    good_v3(h);
    put_be(h + 8, 508, 8);
    refused("backing name past the end of the file", h, sizeof(h));
    good_v3(h);
    h[203] = '\0';
    refused("backing name holding a NUL", h, sizeof(h));
    good_v3(h);
    put_be(h + 72, 1u << 2, 8);
    CHECK(read_buf(&q, h, sizeof(h)) == 0 && q.data_file, "external data file bit seen");
    good_v3(h);
    put_be(h + 4, 2, 4);
    put_be(h + 72, 1u << 2, 8); /* no feature bits in v2: that is the start of extensions */
    CHECK(read_buf(&q, h, sizeof(h)) == 0 && q.version == 2 && !q.data_file && q.incompatible == 0,
          "v2: no feature fields read");
    good_v3(h);
    put_be(h + 8, 0, 8);
    CHECK(read_buf(&q, h, sizeof(h)) == 0 && q.backing[0] == '\0', "offset 0: no backing");
}

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), fmt, a, b, a, b);
    return system(cmd);
}

static int count_file(const char *file, const struct stat *st, void *ctx)
{
    (void)file;
    (void)st;
    ++*(int *)ctx;
    return 0;
}

static void real_chain(void)
{
    char base[256], a[256], b[256], small[8];
    struct bl_qcow2 q;
    char *hex = NULL;
    int n = 0;

    if (system("qemu-img --version >/dev/null 2>&1") != 0) {
        tap_skip("real qemu-img headers", "qemu-img not installed");
        return;
    }
    snprintf(base, sizeof(base), "%s/images/rootfs", dir);
    sh("mkdir -p %s", base, NULL);
    snprintf(base, sizeof(base), "%s/images/rootfs/abc123.ext4", dir);
    snprintf(a, sizeof(a), "%s/a.qcow2", dir);
    snprintf(b, sizeof(b), "%s/b.qcow2", dir);
    sh("truncate -s 64M %s", base, NULL);
    CHECK(bl_disk_overlay(a, base, 2ull << 30) == 0, "overlay over a raw base, 2 GiB");
    CHECK(bl_disk_overlay(b, a, 0) == 0, "overlay over a layer");
    CHECK(bl_qcow2_read(&q, a) == 0 && strcmp(q.backing, base) == 0 && q.size == 2ull << 30,
          "qemu-img's header: backing name and virtual size");
    CHECK_EQ(bl_disk_virtual_size(b), 2ull << 30, "virtual size through the reader");
    CHECK_EQ(bl_qcow2_backing(b, small, sizeof(small)), -1, "a name over cap: -1");
    CHECK(bl_disk_walk(b, count_file, &n) == 0 && n == 3, "walk: top, layer, raw base");
    CHECK(bl_disk_rootfs(b, &hex) == 0 && hex && strcmp(hex, "abc123") == 0,
          "the image base at the bottom");
    free(hex);
    hex = NULL;
    CHECK(bl_disk_rebase(b, "") == 0 && bl_disk_rootfs(b, &hex) == 0 && hex && !*hex,
          "rebased standalone: no base");
    free(hex);
    sh("qemu-img create -q -f qcow2 -o data_file=%1$s.data %1$s.df 16M", b, NULL);
    snprintf(base, sizeof(base), "%s/b.qcow2.df", dir);
    CHECK(bl_qcow2_read(&q, base) == 0 && q.data_file, "qemu-img's external data file: seen");
    /* a loop: a over b, b over a (unsafe rebase writes only the name) */
    sh("qemu-img rebase -q -u -f qcow2 -F qcow2 -b %2$s %1$s", a, b);
    sh("qemu-img rebase -q -u -f qcow2 -F qcow2 -b %1$s %2$s", a, b);
    n = 0;
    CHECK_EQ(bl_disk_walk(a, count_file, &n), BOXLITE_EIO, "a chain that loops ends, EIO");
}

/* The overlays bl_qcow2_create_overlay writes are ones QEMU takes as its own: qemu-img check
 * finds no leak or corruption, before and after data is written through them, info reads the
 * size and backing, and an empty one reads as its backing file. Sizes: odd (rounded up to a
 * sector), one L1 entry, many, and an L1 table over one cluster. */
static void our_overlays(void)
{
    static const unsigned long long sizes[] = {(64ull << 20) + 1, 2ull << 30, 513ull << 30,
                                               5ull << 40};
    char base[256], ov[256], cmd[1024];
    struct bl_qcow2 q;

    if (system("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1")) {
        tap_skip("our overlays in QEMU's eyes", "qemu-img or qemu-io not installed");
        return;
    }
    snprintf(base, sizeof(base), "%s/base.ext4", dir);
    snprintf(ov, sizeof(ov), "%s/ov.qcow2", dir);
    sh("head -c 1048576 /dev/urandom > %s && truncate -s 64M %s", base, base);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned long long want = (sizes[i] + 511) & ~511ull;
        CHECK(bl_qcow2_create_overlay(ov, base, "raw", sizes[i]) == 0, "overlay written");
        CHECK(bl_qcow2_read(&q, ov) == 0 && q.size == want && strcmp(q.backing, base) == 0,
              "our reader reads our writer");
        snprintf(cmd, sizeof(cmd),
                 "qemu-img check -q %1$s && qemu-img info --output=json %1$s | "
                 "grep -q '\"virtual-size\": %2$llu,' && qemu-img info %1$s | "
                 "grep -q 'backing file format: raw'",
                 ov, want);
        CHECK_EQ(system(cmd), 0, "qemu-img check and info accept it");
        snprintf(cmd, sizeof(cmd), "qemu-img compare -q %s %s >/dev/null", base, ov);
        CHECK_EQ(system(cmd), 0, "empty, it reads as its backing file");
        snprintf(cmd, sizeof(cmd),
                 "qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 %llu 4k' %s "
                 ">/dev/null && qemu-img check -q %s",
                 want - 4096, ov, ov);
        CHECK_EQ(system(cmd), 0, "written at both ends through QEMU, still consistent");
    }
    CHECK_EQ(bl_qcow2_create_overlay(ov, base, "raw", 0), BOXLITE_EINVAL, "size 0 refused");
    CHECK_EQ(bl_qcow2_create_overlay(ov, "", "raw", 1 << 20), BOXLITE_EINVAL, "no backing");
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    hostile_headers();
    real_chain();
    our_overlays();
    sh("rm -rf %s", dir, NULL);
    return tap_done();
}
