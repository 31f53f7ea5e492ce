/* copy.c — files between the host and a box: copy_in writes a tar of a host path with
 * libarchive into the agent's copy-in built-in, copy_out extracts copy-out's tar (untar.c). */
#include "box.h"
#include "conn.h"
#include "error.h"
#include "untar.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES   (10ull << 30) /* docs/security.md: copy-out's size limit */
#define DEFAULT_MAX_ENTRIES 1000000ull
#define FINISH_MS           60000 /* how long a finished copy's process may take to exit */

static int check_opts(boxlite_copy_options *out, const boxlite_copy_options *o)
{
    boxlite_copy_options d = BOXLITE_COPY_OPTIONS_INIT;

    if (o && o->version != BOXLITE_COPY_OPTIONS_VERSION)
        return bl_err(BOXLITE_EINVAL, "copy options of an unknown version");
    *out = o ? *o : d;
    if (!out->max_bytes)
        out->max_bytes = DEFAULT_MAX_BYTES;
    if (!out->max_entries)
        out->max_entries = DEFAULT_MAX_ENTRIES;
    return 0;
}

/* Start a built-in ("copy-out"/"copy-in") as root in /. */
static int start_builtin(boxlite_exec **out, boxlite_box *box, const char *verb, const char *path,
                         const char *flags)
{
    const char *argv[] = {verb, path, flags, NULL};
    boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;

    eo.argv = argv;
    eo.user = "root";
    eo.cwd = "/";
    return bl_exec_start_flags(out, box, &eo, BL_EXEC_BUILTIN);
}

/* Drain what is left, wait for the exit and keep the first line(s) of stderr in msg.
 * Returns the shell status, or < 0 when the process could not be waited for. */
static int finish(boxlite_exec *ex, char *msg, size_t cap)
{
    static _Thread_local char buf[65536];
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    size_t have = 0;
    int which = 0;

    msg[0] = '\0';
    for (;;) {
        size_t n = 0;
        if (boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof(buf), &n,
                              FINISH_MS) != 0 ||
            n == 0)
            break;
        if (which == BOXLITE_STDERR && have + 1 < cap) {
            size_t k = n < cap - 1 - have ? n : cap - 1 - have;
            memcpy(msg + have, buf, k);
            have += k;
            msg[have] = '\0';
        }
    }
    while (have > 0 && (msg[have - 1] == '\n' || msg[have - 1] == '\r'))
        msg[--have] = '\0';
    for (size_t i = 0; i < have; i++)
        if (msg[i] == '\n')
            msg[i] = ';';
    if (boxlite_exec_wait(ex, &res, FINISH_MS) != 0)
        return -1;
    if (!msg[0] && res.message[0])
        snprintf(msg, cap, "%s", res.message);
    return res.exit_code;
}

static int guest_failed(int status, const char *msg)
{
    if (strstr(msg, "No such file"))
        return bl_err(BOXLITE_ENOTFOUND, "%s", msg);
    if (strstr(msg, " exists"))
        return bl_err(BOXLITE_EEXISTS, "%s", msg);
    return bl_err(BOXLITE_ERROR, "%s (status %d)", msg[0] ? msg : "the guest side failed", status);
}

/* ---- copy_out ---- */

#define RAW_HOOK "raw-tar:"

/* With BOXLITE_TEST_HOOKS=1 in the environment, copy_out of "raw-tar:PATH" extracts the
 * guest file PATH as the archive: how the tests feed crafted (hostile) archives from a real
 * guest through the real extraction path. */
static int test_hook_raw(const char *box_path)
{
    const char *v = getenv("BOXLITE_TEST_HOOKS");

    return v && strcmp(v, "1") == 0 && strncmp(box_path, RAW_HOOK, strlen(RAW_HOOK)) == 0;
}

/* The name copy-out's top entry gets inside an existing host directory: the last component of
 * the requested box path ("root" for "/"), the rule the agent names its entries by
 * (src/agent/copy.c) — taken from the request, never from the guest's archive. */
static void top_name(char *out, size_t cap, const char *box_path)
{
    size_t len = strlen(box_path);
    const char *base;

    while (len > 1 && box_path[len - 1] == '/')
        len--;
    base = box_path + len;
    while (base > box_path && base[-1] != '/')
        base--;
    len -= (size_t)(base - box_path);
    if (len == 0 || (len == 1 && base[0] == '.') || (len == 2 && base[0] == '.' && base[1] == '.'))
        snprintf(out, cap, "root");
    else
        snprintf(out, cap, "%.*s", (int)len, base);
}

struct out_src {
    boxlite_exec *ex;
    char buf[65536];
};

static ssize_t read_stdout(void *ctx, const void **buf)
{
    struct out_src *s = ctx;
    size_t n = 0;
    int which = 0;

    if (boxlite_exec_read(s->ex, BOXLITE_STDOUT, &which, s->buf, sizeof(s->buf), &n, -1) != 0)
        return -1;
    *buf = s->buf;
    return (ssize_t)n;
}

static const char *out_flags(const boxlite_copy_options *o)
{
    if (o->recursive)
        return o->follow_symlinks ? "rL" : "r";
    return o->follow_symlinks ? "L" : "-";
}

BOXLITE_API int boxlite_box_copy_out(boxlite_box *box, const char *box_path, const char *host_path,
                                     const boxlite_copy_options *opts)
{
    boxlite_copy_options o;
    struct bl_untar_opts uo;
    struct out_src *s = NULL;
    boxlite_exec *ex = NULL;
    char msg[1024], why[1024], name[256];
    int rc, status;

    if (!box || !box_path || !box_path[0] || !host_path || !host_path[0])
        return bl_err(BOXLITE_EINVAL, "copy out: a box, a box path and a host path are needed");
    top_name(name, sizeof(name), box_path);
    rc = check_opts(&o, opts);
    if (rc == 0 && test_hook_raw(box_path)) {
        /* Test hook: extract a file of the guest as if copy-out had sent it. */
        const char *argv[] = {"cat", box_path + strlen(RAW_HOOK), NULL};
        boxlite_exec_options eo = BOXLITE_EXEC_OPTIONS_INIT;
        eo.argv = argv;
        eo.user = "root";
        rc = boxlite_exec_start(&ex, box, &eo);
    } else if (rc == 0) {
        rc = start_builtin(&ex, box, "copy-out", box_path, out_flags(&o));
    }
    s = rc == 0 ? calloc(1, sizeof(*s)) : NULL;
    if (rc == 0 && !s)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    if (rc != 0)
        goto out;
    s->ex = ex;
    uo.overwrite = o.overwrite;
    uo.include_parent = o.include_parent;
    uo.max_bytes = o.max_bytes;
    uo.max_entries = o.max_entries;
    uo.name = name;
    rc = bl_untar(host_path, &uo, read_stdout, s);
    snprintf(why, sizeof(why), "%s", rc != 0 ? boxlite_error_last() : "");
    if (rc != 0)
        (void)boxlite_exec_signal(ex, SIGKILL); /* a hostile or failed stream: stop it */
    status = finish(ex, msg, sizeof(msg));
    if (status != 0 && msg[0] && (rc == 0 || strstr(why, "empty") || strstr(why, "not a tar")))
        rc = guest_failed(status, msg); /* the guest's reason (no such file, ...) */
    else if (rc != 0)
        rc = bl_err(rc, "%s", why);
    else if (status != 0)
        rc = guest_failed(status, msg);
out:
    boxlite_exec_free(ex);
    free(s);
    if (rc != 0)
        bl_err_wrap(rc, "copy %s:%s to %s", boxlite_box_id(box), box_path, host_path);
    return rc;
}

BOXLITE_API int boxlite_box_copy_out_tar(boxlite_box *box, const char *box_path, int fd,
                                         const boxlite_copy_options *opts)
{
    boxlite_copy_options o;
    boxlite_exec *ex = NULL;
    static _Thread_local char buf[65536];
    uint64_t total = 0;
    char msg[1024];
    int rc, status;

    if (!box || !box_path || !box_path[0] || fd < 0)
        return bl_err(BOXLITE_EINVAL, "copy out: a box, a box path and a file are needed");
    rc = check_opts(&o, opts);
    if (rc == 0)
        rc = start_builtin(&ex, box, "copy-out", box_path, out_flags(&o));
    while (rc == 0) {
        size_t n = 0;
        int which = 0;
        rc = boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf, sizeof(buf), &n, -1);
        if (rc != 0 || n == 0)
            break;
        total += n;
        if (total > o.max_bytes)
            rc = bl_err(BOXLITE_EPROTO, "the archive passes the copy's byte limit");
        for (size_t off = 0; rc == 0 && off < n;) {
            ssize_t w = write(fd, buf + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                rc = bl_err_errno(BOXLITE_EIO, errno, "write the archive");
            else
                off += (size_t)w;
        }
    }
    if (ex) {
        if (rc != 0)
            boxlite_exec_signal(ex, SIGKILL);
        status = finish(ex, msg, sizeof(msg));
        if (rc == 0 && status != 0)
            rc = guest_failed(status, msg);
    }
    boxlite_exec_free(ex);
    if (rc != 0)
        bl_err_wrap(rc, "copy %s:%s", box ? boxlite_box_id(box) : "?", box_path ? box_path : "");
    return rc;
}

/* ---- copy_in ---- */

#define WALK_DEPTH 256 /* directories open at once while sending a tree */

struct walk {
    struct archive *a;
    struct archive_entry *e;
    char name[8192]; /* the current entry's name in the archive */
    size_t nlen;
    unsigned depth;
    int follow;
};

static la_ssize_t to_stdin(struct archive *a, void *ud, const void *buf, size_t n)
{
    (void)a;
    return boxlite_exec_write(ud, buf, n) == 0 ? (la_ssize_t)n : -1;
}

static int put_contents(struct walk *w, int fd)
{
    static _Thread_local char buf[65536];
    int64_t left = archive_entry_size(w->e);

    while (left > 0) {
        ssize_t n = read(fd, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* shrank while copied: the archive still needs the announced size */
            memset(buf, 0, sizeof(buf));
            n = (ssize_t)((size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
        }
        if (archive_write_data(w->a, buf, (size_t)n) != n)
            return bl_err(BOXLITE_EIO, "send %s: %s", w->name, archive_error_string(w->a));
        left -= n;
    }
    return 0;
}

static int put_node(struct walk *w, int dfd, const char *leaf);

/* The entries of the directory open as fd (taken), each opened beneath it, never through a
 * link unless follow. */
static int put_children(struct walk *w, int fd)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    size_t keep = w->nlen;
    int rc = 0;

    if (!d) {
        close(fd);
        return bl_err_errno(BOXLITE_EIO, errno, "read %s", w->name);
    }
    if (++w->depth > WALK_DEPTH)
        rc = bl_err(BOXLITE_EINVAL, "%s: more than %u directories deep", w->name, WALK_DEPTH);
    while (rc == 0) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                rc = bl_err_errno(BOXLITE_EIO, errno, "read %s", w->name);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (keep + 1 + strlen(de->d_name) >= sizeof(w->name)) {
            rc = bl_err(BOXLITE_EINVAL, "%s/%s: the name is too long", w->name, de->d_name);
            break;
        }
        w->nlen =
            keep + (size_t)snprintf(w->name + keep, sizeof(w->name) - keep, "/%s", de->d_name);
        rc = put_node(w, dirfd(d), de->d_name);
        w->nlen = keep;
        w->name[keep] = '\0';
    }
    w->depth--;
    closedir(d);
    return rc;
}

/* Open leaf beneath dfd as the thing fstatat saw (a swap in between is refused). */
static int open_same(struct walk *w, int dfd, const char *leaf, const struct stat *st)
{
    struct stat now;
    int fd = openat(dfd, leaf,
                    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (w->follow ? 0 : O_NOFOLLOW) |
                        (S_ISDIR(st->st_mode) ? O_DIRECTORY : 0));

    if (fd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "open %s", w->name);
    if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        close(fd);
        return bl_err(BOXLITE_EIO, "%s changed while it was copied", w->name);
    }
    return fd;
}

/* One entry at (dfd, leaf): its header, then its data or its children. */
static int put_node(struct walk *w, int dfd, const char *leaf)
{
    struct stat st;
    char link[4096];
    ssize_t n;
    int fd = -1, rc = 0;

    if (fstatat(dfd, leaf, &st, w->follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "cannot read %s", w->name);
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
        return 0; /* devices, fifos, sockets: not copied */
    archive_entry_clear(w->e);
    archive_entry_copy_stat(w->e, &st);
    archive_entry_set_pathname(w->e, w->name);
    archive_entry_set_nlink(w->e, 1);
    if (!S_ISREG(st.st_mode))
        archive_entry_set_size(w->e, 0);
    if (S_ISLNK(st.st_mode)) {
        n = readlinkat(dfd, leaf, link, sizeof(link) - 1);
        if (n < 0)
            return bl_err_errno(BOXLITE_EIO, errno, "readlink %s", w->name);
        link[n] = '\0';
        archive_entry_set_symlink(w->e, link);
    } else {
        fd = open_same(w, dfd, leaf, &st);
        if (fd < 0)
            return fd;
    }
    if (archive_write_header(w->a, w->e) < ARCHIVE_WARN)
        rc = bl_err(BOXLITE_EIO, "send %s: %s", w->name, archive_error_string(w->a));
    if (rc == 0 && S_ISREG(st.st_mode))
        rc = put_contents(w, fd);
    if (rc == 0 && S_ISDIR(st.st_mode))
        return put_children(w, fd); /* takes fd */
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Send host_path as a tar whose top entry is its last component. The path to the source is
 * the caller's; beneath it every entry is opened relative to its directory's fd with
 * O_NOFOLLOW (unless follow_symlinks) and checked to be what was stat'ed, so a link swapped
 * into the tree while it is read cannot pull in a file from elsewhere on the host. */
static int send_tree(boxlite_exec *ex, const char *host_path, const boxlite_copy_options *o)
{
    struct walk *w = calloc(1, sizeof(*w));
    char *copy = strdup(host_path);
    size_t len = strlen(host_path);
    const char *base;
    int rc = 0;

    if (!copy || !w) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    base = basename(copy);
    if (!base[0] || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        base = "root";
    w->nlen = (size_t)snprintf(w->name, sizeof(w->name), "%s", base);
    w->follow = o->follow_symlinks;
    w->a = archive_write_new();
    w->e = archive_entry_new();
    if (!w->a || !w->e) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    archive_write_set_format_pax_restricted(w->a);
    archive_write_set_bytes_per_block(w->a, 32768);
    archive_write_set_bytes_in_last_block(w->a, 1);
    if (archive_write_open(w->a, ex, NULL, to_stdin, NULL) != ARCHIVE_OK) {
        rc = bl_err(BOXLITE_EIO, "%s", archive_error_string(w->a));
        goto out;
    }
    rc = put_node(w, AT_FDCWD, copy);
    if (archive_write_close(w->a) != ARCHIVE_OK && rc == 0)
        rc = bl_err(BOXLITE_EIO, "%s", archive_error_string(w->a));
out:
    if (w) {
        archive_entry_free(w->e);
        archive_write_free(w->a);
    }
    free(w);
    free(copy);
    return rc;
}

static const char *in_flags(const boxlite_copy_options *o, int raw)
{
    if (raw)
        return o->overwrite ? "xo" : "x";
    if (o->overwrite)
        return o->include_parent ? "op" : "o";
    return o->include_parent ? "p" : "-";
}

BOXLITE_API int boxlite_box_copy_in(boxlite_box *box, const char *host_path, const char *box_path,
                                    const boxlite_copy_options *opts)
{
    boxlite_copy_options o;
    boxlite_exec *ex = NULL;
    struct stat st;
    char msg[1024];
    int rc, status;

    if (!box || !box_path || !box_path[0] || !host_path || !host_path[0])
        return bl_err(BOXLITE_EINVAL, "copy in: a box, a host path and a box path are needed");
    rc = check_opts(&o, opts);
    if (rc == 0 && (o.follow_symlinks ? stat(host_path, &st) : lstat(host_path, &st)) < 0)
        rc = bl_err_errno(bl_code_from_errno(errno), errno, "%s", host_path);
    if (rc == 0 && S_ISDIR(st.st_mode) && !o.recursive)
        rc = bl_err(BOXLITE_EINVAL, "%s is a directory (copy needs recursive)", host_path);
    if (rc == 0)
        rc = start_builtin(&ex, box, "copy-in", box_path, in_flags(&o, 0));
    if (rc != 0)
        goto out;
    rc = send_tree(ex, host_path, &o);
    boxlite_exec_close_stdin(ex);
    status = finish(ex, msg, sizeof(msg));
    if (status != 0) /* the guest's reason beats "the process has exited" */
        rc = guest_failed(status, msg);
out:
    boxlite_exec_free(ex);
    if (rc != 0)
        bl_err_wrap(rc, "copy %s to %s:%s", host_path ? host_path : "",
                    box ? boxlite_box_id(box) : "?", box_path ? box_path : "");
    return rc;
}

BOXLITE_API int boxlite_box_copy_in_tar(boxlite_box *box, int fd, const char *box_path,
                                        const boxlite_copy_options *opts)
{
    static _Thread_local char buf[65536];
    boxlite_copy_options o;
    boxlite_exec *ex = NULL;
    char msg[1024];
    int rc, status;

    if (!box || !box_path || !box_path[0] || fd < 0)
        return bl_err(BOXLITE_EINVAL, "copy in: a box, a file and a box path are needed");
    rc = check_opts(&o, opts);
    if (rc == 0)
        rc = start_builtin(&ex, box, "copy-in", box_path, in_flags(&o, 1));
    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = bl_err_errno(BOXLITE_EIO, errno, "read the archive");
        if (n <= 0)
            break;
        rc = boxlite_exec_write(ex, buf, (size_t)n);
    }
    if (ex) {
        boxlite_exec_close_stdin(ex);
        status = finish(ex, msg, sizeof(msg));
        if (status != 0)
            rc = guest_failed(status, msg);
    }
    boxlite_exec_free(ex);
    if (rc != 0)
        bl_err_wrap(rc, "copy to %s:%s", box ? boxlite_box_id(box) : "?", box_path ? box_path : "");
    return rc;
}
