/* ext4.h — writing an image's base filesystem without mounting it or touching the host's
 * tree: an ext4 file made by mke2fs, then entries created through libext2fs. */
#ifndef BL_EXT4_H
#define BL_EXT4_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bl_fs;

struct bl_fs_attr {
    unsigned mode; /* S_IF* type bits | 07777 */
    uint32_t uid, gid;
    int64_t mtime;
    unsigned dev_major, dev_minor; /* character and block devices */
};

/* Make an empty ext4 file of size bytes (sparse) at path with mke2fs. */
int bl_fs_mkfs(const char *path, uint64_t size);

int bl_fs_open(struct bl_fs **out, const char *path);
/* Write back bitmaps and superblock and close; the fs is freed either way. */
int bl_fs_close(struct bl_fs *fs);
/* Close without caring (after a failure); accepts NULL. */
void bl_fs_abort(struct bl_fs *fs);

/* Paths are relative to the root, '/'-separated, already free of "", "." and ".."
 * components ("" is the root itself). Parents that do not exist are created (0755 root);
 * symlinks among the parents are followed inside the image, never outside it. An entry
 * that exists is replaced, except that a directory over a directory keeps its contents. */

typedef int (*bl_fs_read_fn)(void *ctx, const void **buf, size_t *n); /* n == 0 → end */

int bl_fs_mkdir(struct bl_fs *fs, const char *path, const struct bl_fs_attr *a);
int bl_fs_write_file(struct bl_fs *fs, const char *path, const struct bl_fs_attr *a,
                     bl_fs_read_fn read, void *ctx);
int bl_fs_symlink(struct bl_fs *fs, const char *path, const struct bl_fs_attr *a,
                  const char *target);
int bl_fs_hardlink(struct bl_fs *fs, const char *path, const char *target);
int bl_fs_mknod(struct bl_fs *fs, const char *path, const struct bl_fs_attr *a);
int bl_fs_set_xattr(struct bl_fs *fs, const char *path, const char *name, const void *value,
                    size_t len);

/* Whiteouts: remove path (recursively; missing is fine), or every entry inside a
 * directory (opaque). */
int bl_fs_remove(struct bl_fs *fs, const char *path);
int bl_fs_clear_dir(struct bl_fs *fs, const char *path);

/* Bytes in use on the filesystem. */
uint64_t bl_fs_used(const struct bl_fs *fs);

#endif
