/* fuzz_qcow2.c — libFuzzer target for the one qcow2 header reader (src/lib/disk/qcow2.c),
 * whose input is hostile (the disk of an imported archive). The bytes are the file: written
 * to a memfd and read through bl_qcow2_read_fd, the path every caller takes. Seeds: real
 * headers made by qemu-img (tests/fuzz/corpus_qcow2). */
#include "boxlite.h"
#include "disk.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    struct bl_qcow2 q;

    if (fd < 0)
        fd = memfd_create("fuzz_qcow2", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    if (bl_qcow2_read_fd(&q, fd) == 0) {
        /* what it accepted is what the format allows, and nothing past the file */
        size_t n = strlen(q.backing);
        if ((q.version != 2 && q.version != 3) || q.cluster_bits < 9 || q.cluster_bits > 21 ||
            n > BL_QCOW2_BACKING_MAX || q.size > (uint64_t)INT64_MAX || size < 72 ||
            (n && !memmem(data, size, q.backing, n)) || (q.version == 2 && q.incompatible))
            abort();
    }
    return 0;
}
