/* cowram.c — the pages a box's QEMU wrote into guest RAM that it maps copy-on-write from a
 * saved file (x-cow: a warm template's or a full snapshot's RAM), for a full snapshot of that
 * box: its RAM file is the saved file copied with these pages written over it, so boxes
 * restored from the snapshot map one file again and share its clean pages. The pages are
 * found in /proc/PID/pagemap (present and not a file page, or swapped out) and read through
 * /proc/PID/mem while the guest is paused (the shim is QEMU's parent and owns its user
 * namespace). Only the mapping of that file, found by device and inode, is read. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PAGE       4096u
#define BATCH      4096u /* pagemap entries read at once */
#define RUN_PAGES  256u  /* pages copied at once (1 MiB) */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)

/* Where pid maps the file (dev, ino) from offset 0 for size bytes; 0 when it does not. */
static uint64_t find_mapping(pid_t pid, dev_t dev, ino_t ino, uint64_t size)
{
    char path[64], line[1024];
    uint64_t found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        uint64_t start, end, off, inode;
        unsigned maj, min;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %x:%x %" SCNu64, &start, &end,
                   &off, &maj, &min, &inode) == 6 &&
            inode == (uint64_t)ino && makedev(maj, min) == dev && off == 0 && end > start &&
            end - start == size)
            found = start;
    }
    if (f)
        fclose(f);
    return found;
}

/* Copy pages [first, first+n) of the mapping at start from mem into out. */
static int copy_run(int mem, int out, uint64_t start, uint64_t first, uint64_t n,
                    unsigned char *buf)
{
    size_t len = (size_t)(n * PAGE);
    off_t at = (off_t)(first * PAGE);

    return pread(mem, buf, len, (off_t)(start + first * PAGE)) == (ssize_t)len &&
                   pwrite(out, buf, len, at) == (ssize_t)len
               ? 0
               : -1;
}

/* Walk the pagemap of the mapping (npages at start), copying each run of the process's own
 * pages. -1 with errno on a read or write that fails. */
static int copy_own_pages(int pm, int mem, int out, uint64_t start, uint64_t npages,
                          unsigned char *buf)
{
    static uint64_t e[BATCH];
    uint64_t run = 0, nrun = 0;

    for (uint64_t p = 0; p < npages; p += BATCH) {
        uint64_t n = npages - p < BATCH ? npages - p : BATCH;
        if (pread(pm, e, n * 8, (off_t)((start / PAGE + p) * 8)) != (ssize_t)(n * 8))
            return -1;
        for (uint64_t i = 0; i < n; i++) {
            int own = ((e[i] & PM_PRESENT) && !(e[i] & PM_FILE)) || (e[i] & PM_SWAPPED);
            if (own && nrun == 0)
                run = p + i;
            if (own)
                nrun++;
            if (nrun > 0 && (!own || nrun == RUN_PAGES)) {
                if (copy_run(mem, out, start, run, nrun, buf) != 0)
                    return -1;
                nrun = 0;
            }
        }
    }
    return nrun > 0 ? copy_run(mem, out, start, run, nrun, buf) : 0;
}

int shim_cow_pages(int out, const char *saved, pid_t qemu, char *msg, size_t cap)
{
    char path[64];
    unsigned char *buf = malloc((size_t)RUN_PAGES * PAGE);
    int pm = -1, mem = -1, rc = -1;
    uint64_t start = 0;
    struct stat st;

    if (!buf || stat(saved, &st) != 0 || st.st_size <= 0 || st.st_size % PAGE != 0) {
        snprintf(msg, cap, "the saved RAM file %.200s: %s", saved, buf ? strerror(errno) : "");
        goto out;
    }
    start = find_mapping(qemu, st.st_dev, st.st_ino, (uint64_t)st.st_size);
    if (start == 0) {
        snprintf(msg, cap, "QEMU does not map the saved RAM file %.200s", saved);
        goto out;
    }
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)qemu);
    pm = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)qemu);
    mem = pm >= 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (mem < 0 || copy_own_pages(pm, mem, out, start, (uint64_t)st.st_size / PAGE, buf) != 0)
        snprintf(msg, cap, "read the guest's written pages from QEMU: %s", strerror(errno));
    else
        rc = 0;
out:
    if (pm >= 0)
        close(pm);
    if (mem >= 0)
        close(mem);
    free(buf);
    return rc;
}
