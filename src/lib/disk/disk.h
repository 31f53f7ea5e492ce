/* disk.h — the qcow2 chain of a box: one bounds-checked reader of qcow2 headers (hostile
 * files: imported archives), and the chain operations (overlay, rebase, flatten, convert,
 * switch the top, walk, size) done through qemu-img. In bl_core: the shim uses it too. */
#ifndef BL_DISK_H
#define BL_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define BL_QCOW2_BACKING_MAX 1023 /* QEMU's own limit on a backing file name */

/* What a qcow2 header says, as far as boxlite reads it. */
struct bl_qcow2 {
    uint32_t version;      /* 2 or 3 */
    uint32_t cluster_bits; /* 9..21 */
    uint64_t size;         /* virtual size in bytes */
    uint32_t crypt_method; /* 0: none */
    uint64_t incompatible; /* incompatible feature bits (v3; 0 for v2) */
    int data_file;         /* an external data file is named (incompatible bit 2) */
    char backing[BL_QCOW2_BACKING_MAX + 1]; /* the backing file name; "" when none */
};

/* Read the qcow2 header of the open file fd (from offset 0; the file position is not
 * used). 0, or BOXLITE_EINVAL with the reason when it is not a well-formed qcow2 header
 * (bad magic or version, a field out of range, a backing name out of the file), or
 * BOXLITE_EIO when it cannot be read. Never reads past what it checked. Thread-safe. */
int bl_qcow2_read_fd(struct bl_qcow2 *out, int fd);

/* The same for the file at path. */
int bl_qcow2_read(struct bl_qcow2 *out, const char *path);

/* The backing file named in the qcow2 header of path into out (cap bytes; "" when none).
 * 0, or -1 when path is not a readable qcow2 file or the name does not fit (no message). */
int bl_qcow2_backing(const char *path, char *out, size_t cap);

/* Write path (an old file there is replaced) as an empty qcow2 v3 image of size bytes over
 * backing (format fmt: "raw" or "qcow2"), laid out as qemu-img create lays one out (64 KiB
 * clusters, 16-bit refcounts). 0, or an error code with the message set. Any thread. */
int bl_qcow2_create_overlay(const char *path, const char *backing, const char *fmt, uint64_t size);

/* The virtual size of the qcow2 disk at path in bytes; 0 when it cannot be read. */
uint64_t bl_disk_virtual_size(const char *path);

/* The format qemu-img is told for a backing file: "raw" for an image base (*.ext4), else
 * "qcow2". */
const char *bl_disk_backing_fmt(const char *backing);

/* Create the qcow2 overlay path over backing (an absolute name: a layer can be hard-linked
 * elsewhere and still find it); size_bytes 0 keeps the backing file's size. An old file at
 * path is replaced. */
int bl_disk_overlay(const char *path, const char *backing, uint64_t size_bytes);

/* Rebase layer onto new_backing ("" : standalone), carrying the data over (qemu-img rebase,
 * safe mode). */
int bl_disk_rebase(const char *layer, const char *new_backing);

/* Make disk a copy of the chain at src that rests directly on base (NULL: standalone): an
 * empty overlay over src, rebased onto base, so every cluster where the chain differs from
 * the base is copied in (`convert -B` would copy only the top layer's). */
int bl_disk_flatten(const char *disk, const char *src, const char *base);

/* Write the whole chain at src as one standalone qcow2 file dest (qemu-img convert). */
int bl_disk_convert(const char *src, const char *dest);

/* Point dir/disk.qcow2 at layer (a name relative to dir, "layers/<id>.qcow2") atomically:
 * a symlink disk.qcow2.lnk renamed over it, then dir synced. 0 or -1 with errno set (no
 * message: the shim reports its own). */
int bl_disk_switch_top(const char *dir, const char *layer);

/* fsync a directory (after a rename or link in it); errors ignored. */
void bl_disk_sync_dir(const char *path);

/* Walk the chain from path down its backing files: fn(file, st, ctx) for each file, from
 * the top (st NULL for a file named but missing: the walk ends there); fn returns 0 to go on,
 * 1 to stop there, <0 to stop with that error. The walk ends at the raw base (*.ext4), a
 * layer without a backing name, or a header it cannot read (that error); it is bounded (a
 * chain that loops is BOXLITE_EIO). 0 or the error. */
int bl_disk_walk(const char *path, int (*fn)(const char *file, const struct stat *st, void *ctx),
                 void *ctx);

/* The <hex> of images/rootfs/<hex>.ext4 at the bottom of disk's backing chain, or "" when
 * the chain ends without one (a standalone disk). *out malloc'd. */
int bl_disk_rootfs(const char *disk, char **out);

#endif
