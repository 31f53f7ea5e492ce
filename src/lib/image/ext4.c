/* ext4.c — the image filesystem writer on libext2fs: path walking contained in the image,
 * inodes with exact mode/uid/gid/mtime, data, links, device nodes, xattrs and removal. */
#include "ext4.h"
#include "error.h"
#include "util.h"

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define WALK_DEPTH_MAX 1024
#define NAME_MAX_EXT4  255
#define LINKS_MAX      65000

struct bl_fs {
    ext2_filsys fs;
    char *path;
};

static int fserr(errcode_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fserr(errcode_t e, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (e == EXT2_ET_BLOCK_ALLOC_FAIL || e == EXT2_ET_INODE_ALLOC_FAIL || e == EXT2_ET_DIR_NO_SPACE)
        return bl_err(BOXLITE_EIO, "%s: the image filesystem is full", what);
    return bl_err(BOXLITE_EIO, "%s: %s", what, error_message(e));
}

int bl_fs_mkfs(const char *path, uint64_t size)
{
    char sz[32];
    const char *argv[] = {"mke2fs",
                          "-q",
                          "-F",
                          "-t",
                          "ext4",
                          "-b",
                          "4096",
                          "-m",
                          "0",
                          "-E",
                          "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1",
                          "-L",
                          "boxlite-image",
                          path,
                          sz,
                          NULL};
    char *mke2fs = NULL;
    int rc;

    snprintf(sz, sizeof(sz), "%lluk", (unsigned long long)(size / 1024));
    rc = bl_find_program(&mke2fs, "mke2fs", "BOXLITE_MKE2FS");
    if (rc != 0) {
        mke2fs = strdup("/sbin/mke2fs");
        if (!mke2fs)
            return BOXLITE_ENOMEM;
    }
    argv[0] = mke2fs;
    rc = bl_run_tool(argv);
    free(mke2fs);
    return rc;
}

static pthread_once_t et_once = PTHREAD_ONCE_INIT;

static void et_init(void)
{
    initialize_ext2_error_table();
}

int bl_fs_open(struct bl_fs **out, const char *path)
{
    struct bl_fs *f = calloc(1, sizeof(*f));
    errcode_t e;

    pthread_once(&et_once, et_init);

    if (!f)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    e = ext2fs_open(path, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &f->fs);
    if (e) {
        free(f);
        return fserr(e, "open %s", path);
    }
    e = ext2fs_read_bitmaps(f->fs);
    if (e) {
        ext2fs_close_free(&f->fs);
        free(f);
        return fserr(e, "read bitmaps of %s", path);
    }
    f->fs->umask = 0;
    *out = f;
    return 0;
}

int bl_fs_close(struct bl_fs *f)
{
    errcode_t e;

    if (!f)
        return 0;
    e = ext2fs_close_free(&f->fs);
    free(f);
    return e ? fserr(e, "write the image filesystem") : 0;
}

void bl_fs_abort(struct bl_fs *f)
{
    if (!f)
        return;
    ext2fs_free(f->fs);
    free(f);
}

uint64_t bl_fs_used(const struct bl_fs *f)
{
    struct ext2_super_block *sb = f->fs->super;

    return (ext2fs_blocks_count(sb) - ext2fs_free_blocks_count(sb)) * (uint64_t)f->fs->blocksize;
}

static void set_owner(struct ext2_inode *in, const struct bl_fs_attr *a)
{
    in->i_uid = (__u16)(a->uid & 0xffff);
    ext2fs_set_i_uid_high(*in, a->uid >> 16);
    in->i_gid = (__u16)(a->gid & 0xffff);
    ext2fs_set_i_gid_high(*in, a->gid >> 16);
    in->i_atime = in->i_ctime = in->i_mtime = (__u32)a->mtime;
}

static errcode_t link_expand(ext2_filsys fs, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                             int ft)
{
    errcode_t e = ext2fs_link(fs, dir, name, ino, ft);

    if (e == EXT2_ET_DIR_NO_SPACE) {
        e = ext2fs_expand_dir(fs, dir);
        if (!e)
            e = ext2fs_link(fs, dir, name, ino, ft);
    }
    return e;
}

static int ft_of(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return EXT2_FT_REG_FILE;
    case S_IFDIR:
        return EXT2_FT_DIR;
    case S_IFLNK:
        return EXT2_FT_SYMLINK;
    case S_IFCHR:
        return EXT2_FT_CHRDEV;
    case S_IFBLK:
        return EXT2_FT_BLKDEV;
    case S_IFIFO:
        return EXT2_FT_FIFO;
    case S_IFSOCK:
        return EXT2_FT_SOCK;
    default:
        return EXT2_FT_UNKNOWN;
    }
}

static int lookup(struct bl_fs *f, ext2_ino_t dir, const char *name, size_t n, ext2_ino_t *out)
{
    errcode_t e = ext2fs_lookup(f->fs, dir, name, (int)n, NULL, out);

    if (e == EXT2_ET_FILE_NOT_FOUND)
        return BOXLITE_ENOTFOUND;
    return e ? fserr(e, "look up \"%.*s\"", (int)n, name) : 0;
}

static int do_mkdir(struct bl_fs *f, ext2_ino_t parent, const char *name, ext2_ino_t *out)
{
    errcode_t e = ext2fs_mkdir(f->fs, parent, 0, name);

    if (e == EXT2_ET_DIR_NO_SPACE) {
        e = ext2fs_expand_dir(f->fs, parent);
        if (!e)
            e = ext2fs_mkdir(f->fs, parent, 0, name);
    }
    if (e)
        return fserr(e, "mkdir %s", name);
    return lookup(f, parent, name, strlen(name), out);
}

static int set_attrs(struct bl_fs *f, ext2_ino_t ino, const struct bl_fs_attr *a, int keep_mode);

/* Walk path[0..len) from the root, following symlinks inside the image and creating
 * directories that are missing when create is set. */
static int walk_dir(struct bl_fs *f, const char *path, size_t len, int create, ext2_ino_t *out)
{
    ext2_ino_t cur = EXT2_ROOT_INO;
    size_t i = 0;
    int rc = 0;

    while (i < len && rc == 0) {
        const char *c = path + i;
        size_t n = 0;
        ext2_ino_t ino = 0;
        struct ext2_inode in;
        char name[NAME_MAX_EXT4 + 1];
        while (i + n < len && c[n] != '/')
            n++;
        i += n + 1;
        if (n == 0)
            continue;
        if (n > NAME_MAX_EXT4)
            return bl_err(BOXLITE_EINVAL, "path component longer than 255 bytes");
        memcpy(name, c, n);
        name[n] = '\0';
        rc = lookup(f, cur, name, n, &ino);
        if (rc == BOXLITE_ENOTFOUND && create) {
            struct bl_fs_attr implied = {.mode = S_IFDIR | 0755, .mtime = time(NULL)};
            rc = do_mkdir(f, cur, name, &ino);
            if (rc == 0)
                rc = set_attrs(f, ino, &implied, 0);
        } else if (rc == 0) {
            errcode_t e = ext2fs_read_inode(f->fs, ino, &in);
            if (!e && LINUX_S_ISLNK(in.i_mode))
                e = ext2fs_follow_link(f->fs, EXT2_ROOT_INO, cur, ino, &ino);
            if (!e)
                e = ext2fs_read_inode(f->fs, ino, &in);
            if (e)
                rc = fserr(e, "resolve \"%.*s\"", (int)(i - 1 < len ? i - 1 : len), path);
            else if (!LINUX_S_ISDIR(in.i_mode))
                rc = bl_err(BOXLITE_EINVAL, "\"%.*s\" is not a directory",
                            (int)(i - 1 < len ? i - 1 : len), path);
        }
        cur = ino;
    }
    if (rc == 0)
        *out = cur;
    return rc;
}

/* Parent directory and last component of path. */
static int split(struct bl_fs *f, const char *path, int create, ext2_ino_t *dir_out,
                 const char **name_out)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;

    if (!*name || strlen(name) > NAME_MAX_EXT4)
        return bl_err(BOXLITE_EINVAL, "invalid path \"%.200s\"", path);
    *name_out = name;
    return walk_dir(f, path, slash ? (size_t)(slash - path) : 0, create, dir_out);
}

static int free_inode(struct bl_fs *f, ext2_ino_t ino)
{
    struct ext2_inode_large in;
    errcode_t e;

    memset(&in, 0, sizeof(in));
    e = ext2fs_read_inode_full(f->fs, ino, (struct ext2_inode *)&in, sizeof(in));
    if (!e && ext2fs_file_acl_block(f->fs, (struct ext2_inode *)&in))
        e = ext2fs_free_ext_attr(f->fs, ino, &in);
    if (!e && ext2fs_inode_has_valid_blocks2(f->fs, (struct ext2_inode *)&in))
        e = ext2fs_punch(f->fs, ino, (struct ext2_inode *)&in, NULL, 0, ~0ULL);
    if (!e) {
        in.i_links_count = 0;
        in.i_dtime = (__u32)time(NULL); /* a small value would read as an orphan list link */
        e = ext2fs_write_inode_full(f->fs, ino, (struct ext2_inode *)&in, sizeof(in));
    }
    if (e)
        return fserr(e, "free inode %u", ino);
    ext2fs_inode_alloc_stats2(f->fs, ino, -1, LINUX_S_ISDIR(in.i_mode));
    return 0;
}

struct child {
    char *name;
    ext2_ino_t ino;
};

struct children {
    struct child *v;
    size_t n, cap;
    int failed;
};

static int collect(struct ext2_dir_entry *de, int offset, int blocksize, char *buf, void *arg)
{
    struct children *c = arg;
    size_t len = ext2fs_dirent_name_len(de);

    if ((len == 1 && de->name[0] == '.') || (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct child *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->failed = 1;
            return DIRENT_ABORT;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].name = strndup(de->name, len);
    c->v[c->n].ino = de->inode;
    if (!c->v[c->n].name) {
        c->failed = 1;
        return DIRENT_ABORT;
    }
    c->n++;
    return 0;
}

static int remove_entry(struct bl_fs *f, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                        int depth);

static int clear_children(struct bl_fs *f, ext2_ino_t dir, int depth)
{
    struct children c = {0};
    errcode_t e;
    int rc = 0;

    if (depth > WALK_DEPTH_MAX)
        return bl_err(BOXLITE_EINVAL, "directory tree deeper than %d levels", WALK_DEPTH_MAX);
    e = ext2fs_dir_iterate(f->fs, dir, 0, NULL, collect, &c);
    if (e || c.failed)
        rc = e ? fserr(e, "read directory %u", dir) : bl_err(BOXLITE_ENOMEM, "out of memory");
    for (size_t i = 0; i < c.n && rc == 0; i++)
        rc = remove_entry(f, dir, c.v[i].name, c.v[i].ino, depth + 1);
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].name);
    free(c.v);
    return rc;
}

static int adjust_links(struct bl_fs *f, ext2_ino_t ino, int delta, int *now_out)
{
    struct ext2_inode in;
    errcode_t e = ext2fs_read_inode(f->fs, ino, &in);

    if (!e) {
        if (delta > 0 && in.i_links_count >= LINKS_MAX)
            return bl_err(BOXLITE_EINVAL, "too many hard links to one file");
        in.i_links_count = (__u16)(in.i_links_count + delta > 0 ? in.i_links_count + delta : 0);
        e = ext2fs_write_inode(f->fs, ino, &in);
    }
    if (e)
        return fserr(e, "update the link count of inode %u", ino);
    if (now_out)
        *now_out = in.i_links_count;
    return 0;
}

static int remove_entry(struct bl_fs *f, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                        int depth)
{
    struct ext2_inode in;
    errcode_t e = ext2fs_read_inode(f->fs, ino, &in);
    int links = 0, rc = 0;

    if (e)
        return fserr(e, "read inode %u", ino);
    if (LINUX_S_ISDIR(in.i_mode))
        rc = clear_children(f, ino, depth);
    if (rc != 0)
        return rc;
    e = ext2fs_unlink(f->fs, dir, name, ino, 0);
    if (e)
        return fserr(e, "unlink %s", name);
    if (LINUX_S_ISDIR(in.i_mode)) {
        rc = adjust_links(f, dir, -1, NULL); /* its ".." */
        if (rc == 0)
            rc = free_inode(f, ino);
        return rc;
    }
    rc = adjust_links(f, ino, -1, &links);
    if (rc == 0 && links == 0)
        rc = free_inode(f, ino);
    return rc;
}

int bl_fs_remove(struct bl_fs *f, const char *path)
{
    ext2_ino_t dir = 0, ino = 0;
    const char *name = NULL;
    int rc = split(f, path, 0, &dir, &name);

    if (rc == BOXLITE_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = lookup(f, dir, name, strlen(name), &ino);
    if (rc == BOXLITE_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = remove_entry(f, dir, name, ino, 0);
    return rc;
}

int bl_fs_clear_dir(struct bl_fs *f, const char *path)
{
    ext2_ino_t dir = 0;
    int rc = walk_dir(f, path, strlen(path), 0, &dir);

    if (rc == BOXLITE_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = clear_children(f, dir, 0);
    return rc;
}

/* Make room for the entry at path: its parent (created if missing) and name; an entry
 * already there is removed, unless both are directories: then *existing_dir_out is it. */
static int prepare(struct bl_fs *f, const char *path, int new_is_dir, ext2_ino_t *dir_out,
                   const char **name_out, ext2_ino_t *existing_dir_out)
{
    ext2_ino_t dir = 0, ino = 0;
    const char *name = NULL;
    struct ext2_inode in;
    int rc = split(f, path, 1, &dir, &name);
    errcode_t e;

    *existing_dir_out = 0;
    if (rc == 0)
        rc = lookup(f, dir, name, strlen(name), &ino);
    if (rc == BOXLITE_ENOTFOUND) {
        ino = 0;
        rc = 0;
    } else if (rc == 0) {
        e = ext2fs_read_inode(f->fs, ino, &in);
        if (e)
            return fserr(e, "read %s", path);
        if (new_is_dir && LINUX_S_ISDIR(in.i_mode)) {
            *existing_dir_out = ino;
        } else {
            rc = remove_entry(f, dir, name, ino, 0);
            ino = 0;
        }
    }
    if (rc == 0) {
        *dir_out = dir;
        *name_out = name;
    }
    return rc;
}

static int set_attrs(struct bl_fs *f, ext2_ino_t ino, const struct bl_fs_attr *a, int keep_mode)
{
    struct ext2_inode in;
    errcode_t e = ext2fs_read_inode(f->fs, ino, &in);

    if (!e) {
        if (!keep_mode)
            in.i_mode = (__u16)((in.i_mode & LINUX_S_IFMT) | (a->mode & 07777));
        set_owner(&in, a);
        e = ext2fs_write_inode(f->fs, ino, &in);
    }
    return e ? fserr(e, "set attributes of inode %u", ino) : 0;
}

int bl_fs_mkdir(struct bl_fs *f, const char *path, const struct bl_fs_attr *a)
{
    ext2_ino_t dir = 0, ino = 0;
    const char *name = NULL;
    int rc;

    if (!*path)
        return set_attrs(f, EXT2_ROOT_INO, a, 0);
    rc = prepare(f, path, 1, &dir, &name, &ino);
    if (rc == 0 && !ino)
        rc = do_mkdir(f, dir, name, &ino);
    if (rc == 0)
        rc = set_attrs(f, ino, a, 0);
    return rc;
}

/* A new inode of the given type linked as name in dir, with a's attributes. */
static int new_inode(struct bl_fs *f, ext2_ino_t dir, const char *name, const struct bl_fs_attr *a,
                     ext2_ino_t *out)
{
    struct ext2_inode in;
    ext2_ino_t ino = 0;
    unsigned type = a->mode & S_IFMT;
    errcode_t e;

    e = ext2fs_new_inode(f->fs, dir, (int)(type | 0600), NULL, &ino);
    if (!e)
        e = link_expand(f->fs, dir, name, ino, ft_of(a->mode));
    if (e)
        return fserr(e, "create %s", name);
    ext2fs_inode_alloc_stats2(f->fs, ino, +1, 0);
    memset(&in, 0, sizeof(in));
    in.i_mode = (__u16)(type | (a->mode & 07777));
    in.i_links_count = 1;
    set_owner(&in, a);
    if (type == S_IFCHR || type == S_IFBLK) {
        if (a->dev_major < 256 && a->dev_minor < 256) {
            in.i_block[0] = a->dev_major * 256 + a->dev_minor;
        } else {
            in.i_block[1] =
                (a->dev_minor & 0xff) | (a->dev_major << 8) | ((a->dev_minor & ~0xffu) << 12);
        }
    } else if (type == S_IFREG && ext2fs_has_feature_extents(f->fs->super)) {
        ext2_extent_handle_t h;
        e = ext2fs_extent_open2(f->fs, ino, &in, &h);
        if (e)
            return fserr(e, "create %s", name);
        ext2fs_extent_free(h);
    }
    e = ext2fs_write_new_inode(f->fs, ino, &in);
    if (e)
        return fserr(e, "write inode of %s", name);
    *out = ino;
    return 0;
}

int bl_fs_write_file(struct bl_fs *f, const char *path, const struct bl_fs_attr *a,
                     bl_fs_read_fn read, void *ctx)
{
    ext2_ino_t dir = 0, ino = 0, keep = 0;
    const char *name = NULL;
    ext2_file_t file = NULL;
    errcode_t e = 0;
    int rc = prepare(f, path, 0, &dir, &name, &keep);

    if (rc == 0)
        rc = new_inode(f, dir, name, a, &ino);
    if (rc == 0) {
        e = ext2fs_file_open(f->fs, ino, EXT2_FILE_WRITE, &file);
        if (e)
            rc = fserr(e, "open %s", path);
    }
    while (rc == 0) {
        const void *buf = NULL;
        size_t n = 0;
        unsigned int wrote = 0;
        rc = read(ctx, &buf, &n);
        if (rc != 0 || n == 0)
            break;
        while (n > 0 && rc == 0) {
            unsigned chunk = n > (1u << 30) ? 1u << 30 : (unsigned)n;
            e = ext2fs_file_write(file, buf, chunk, &wrote);
            if (e || wrote == 0)
                rc = fserr(e ? e : EXT2_ET_SHORT_WRITE, "write %s", path);
            buf = (const char *)buf + wrote;
            n -= wrote;
        }
    }
    if (file) {
        e = ext2fs_file_close(file);
        if (e && rc == 0)
            rc = fserr(e, "close %s", path);
    }
    return rc;
}

int bl_fs_symlink(struct bl_fs *f, const char *path, const struct bl_fs_attr *a, const char *target)
{
    ext2_ino_t dir = 0, ino = 0, keep = 0;
    const char *name = NULL;
    errcode_t e;
    int rc;

    if (!*target || strlen(target) >= f->fs->blocksize)
        return bl_err(BOXLITE_EINVAL, "symlink %s: target empty or too long", path);
    rc = prepare(f, path, 0, &dir, &name, &keep);
    if (rc != 0)
        return rc;
    e = ext2fs_symlink(f->fs, dir, 0, name, target);
    if (e == EXT2_ET_DIR_NO_SPACE) {
        e = ext2fs_expand_dir(f->fs, dir);
        if (!e)
            e = ext2fs_symlink(f->fs, dir, 0, name, target);
    }
    if (e)
        return fserr(e, "symlink %s", path);
    rc = lookup(f, dir, name, strlen(name), &ino);
    if (rc == 0)
        rc = set_attrs(f, ino, a, 1);
    return rc;
}

int bl_fs_hardlink(struct bl_fs *f, const char *path, const char *target)
{
    ext2_ino_t tdir = 0, tino = 0, dir = 0, keep = 0;
    const char *tname = NULL, *name = NULL;
    struct ext2_inode in;
    errcode_t e;
    int rc = split(f, target, 0, &tdir, &tname);

    if (rc == 0)
        rc = lookup(f, tdir, tname, strlen(tname), &tino);
    if (rc == BOXLITE_ENOTFOUND)
        return bl_err(BOXLITE_EINVAL, "hard link %s: target %s does not exist", path, target);
    if (rc != 0)
        return rc;
    e = ext2fs_read_inode(f->fs, tino, &in);
    if (e)
        return fserr(e, "read %s", target);
    if (LINUX_S_ISDIR(in.i_mode))
        return bl_err(BOXLITE_EINVAL, "hard link %s: target %s is a directory", path, target);
    rc = adjust_links(f, tino, +1, NULL); /* held while the old name is replaced */
    if (rc == 0)
        rc = prepare(f, path, 0, &dir, &name, &keep);
    if (rc == 0) {
        e = link_expand(f->fs, dir, name, tino, ft_of(in.i_mode));
        if (e)
            rc = fserr(e, "link %s", path);
    }
    if (rc != 0)
        adjust_links(f, tino, -1, NULL);
    return rc;
}

int bl_fs_mknod(struct bl_fs *f, const char *path, const struct bl_fs_attr *a)
{
    ext2_ino_t dir = 0, ino = 0, keep = 0;
    const char *name = NULL;
    int rc = prepare(f, path, 0, &dir, &name, &keep);

    if (rc == 0)
        rc = new_inode(f, dir, name, a, &ino);
    return rc;
}

int bl_fs_set_xattr(struct bl_fs *f, const char *path, const char *name, const void *value,
                    size_t len)
{
    struct ext2_xattr_handle *h = NULL;
    ext2_ino_t ino = EXT2_ROOT_INO, dir = 0;
    const char *base = NULL;
    errcode_t e;
    int rc = 0;

    if (*path) {
        rc = split(f, path, 0, &dir, &base);
        if (rc == 0)
            rc = lookup(f, dir, base, strlen(base), &ino);
        if (rc != 0)
            return rc;
    }
    e = ext2fs_xattrs_open(f->fs, ino, &h);
    if (!e)
        e = ext2fs_xattrs_read(h);
    if (!e)
        e = ext2fs_xattr_set(h, name, value, len);
    if (h)
        ext2fs_xattrs_close(&h);
    return e ? fserr(e, "set xattr %s on %s", name, path) : 0;
}
