/* copy.c — the agent's copy built-ins, run in an exec child after chroot and user switch:
 * copy-out writes a ustar+pax stream of a path to stdout, copy-in extracts one from stdin. */
#include "agent.h"
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK        512
#define WBUF_SIZE  (64u << 10)
#define PAX_MAX    (1u << 20) /* largest pax / GNU long-name body copy-in accepts */
#define NAME_MAX_T 4096       /* longest entry name either direction handles */

static void cp_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void cp_err(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    (void)bl_write_all(2, buf, (size_t)n);
}

/* ---- copy-out: the writer ---- */

struct tw {
    uint8_t *buf;
    size_t len;
    int follow, recursive;
};

static int tw_put(struct tw *w, const void *p, size_t n)
{
    const uint8_t *s = p;

    while (n > 0) {
        size_t k = WBUF_SIZE - w->len < n ? WBUF_SIZE - w->len : n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
        if (w->len == WBUF_SIZE) {
            if (bl_write_all(1, w->buf, w->len) < 0)
                return -1;
            w->len = 0;
        }
    }
    return 0;
}

static int tw_pad(struct tw *w, uint64_t size)
{
    static const uint8_t zero[BLK];
    size_t r = (size_t)(size % BLK);

    return r ? tw_put(w, zero, BLK - r) : 0;
}

static void octal(char *dst, size_t width, uint64_t v)
{
    /* width-1 digits and a NUL */
    dst[width - 1] = '\0';
    for (size_t i = width - 1; i > 0; i--) {
        dst[i - 1] = (char)('0' + (v & 7));
        v >>= 3;
    }
}

static void checksum(uint8_t *h)
{
    unsigned sum = 0;

    memset(h + 148, ' ', 8);
    for (int i = 0; i < BLK; i++)
        sum += h[i];
    octal((char *)h + 148, 7, sum);
    h[155] = ' ';
}

static int raw_header(struct tw *w, const char *name, char type, unsigned mode, uint64_t size,
                      int64_t mtime, unsigned uid, unsigned gid, const char *link)
{
    uint8_t h[BLK];

    memset(h, 0, sizeof h);
    memcpy(h, name, strnlen(name, 100));
    octal((char *)h + 100, 8, mode & 07777);
    octal((char *)h + 108, 8, uid & 07777777);
    octal((char *)h + 116, 8, gid & 07777777);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, mtime < 0 ? 0 : (uint64_t)mtime);
    h[156] = (uint8_t)type;
    if (link)
        memcpy(h + 157, link, strnlen(link, 100));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    checksum(h);
    return tw_put(w, h, sizeof h);
}

/* Append one pax record "LEN key=value\n" to rec (the length counts itself). */
static size_t pax_record(char *rec, size_t cap, const char *key, const char *val)
{
    size_t body = 1 + strlen(key) + 1 + strlen(val) + 1, n = body + 1, digits;

    for (;;) {
        digits = (size_t)snprintf(NULL, 0, "%zu", n);
        if (body + digits == n)
            break;
        n = body + digits;
    }
    if (n >= cap)
        return 0;
    snprintf(rec, cap, "%zu %s=%s\n", n, key, val);
    return n;
}

static int header(struct tw *w, const char *name, const struct stat *st, char type,
                  const char *link)
{
    static char pax[3 * NAME_MAX_T];
    uint64_t size = type == '0' ? (uint64_t)st->st_size : 0;
    size_t plen = 0;
    char num[32];

    if (strlen(name) > 99)
        plen += pax_record(pax + plen, sizeof pax - plen, "path", name);
    if (link && strlen(link) > 99)
        plen += pax_record(pax + plen, sizeof pax - plen, "linkpath", link);
    if (size > 077777777777ULL) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)size);
        plen += pax_record(pax + plen, sizeof pax - plen, "size", num);
    }
    if (plen > 0 &&
        (raw_header(w, "././@PaxHeader", 'x', 0644, plen, st->st_mtime, 0, 0, NULL) < 0 ||
         tw_put(w, pax, plen) < 0 || tw_pad(w, plen) < 0))
        return -1;
    return raw_header(w, name, type, st->st_mode, size > 077777777777ULL ? 0 : size, st->st_mtime,
                      st->st_uid, st->st_gid, link);
}

static int put_file(struct tw *w, const char *path, const char *name, const struct stat *st)
{
    static uint8_t buf[WBUF_SIZE];
    uint64_t left = (uint64_t)st->st_size;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | (w->follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        cp_err("copy-out: open %s: %s", path, strerror(errno));
        return -1;
    }
    if (header(w, name, st, '0', NULL) < 0)
        goto out;
    while (left > 0) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        ssize_t n = bl_read(fd, buf, want);
        if (n < 0) {
            cp_err("copy-out: read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) { /* shrank while copied: pad with zeros to the announced size */
            memset(buf, 0, want);
            n = (ssize_t)want;
        }
        if (tw_put(w, buf, (size_t)n) < 0)
            goto out;
        left -= (uint64_t)n;
    }
    rc = tw_pad(w, (uint64_t)st->st_size);
out:
    close(fd);
    return rc;
}

static int put_tree(struct tw *w, char *path, size_t plen, char *name, size_t nlen, int top);

static int put_dir(struct tw *w, char *path, size_t plen, char *name, size_t nlen)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int rc = 0;

    if (!d) {
        cp_err("copy-out: open directory %s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0) {
        errno = 0;
        de = readdir(d);
        if (!de)
            break;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t k = strlen(de->d_name);
        if (plen + k + 2 >= NAME_MAX_T || nlen + k + 2 >= NAME_MAX_T) {
            cp_err("copy-out: %s/%s: path too long", path, de->d_name);
            rc = -1;
            break;
        }
        path[plen] = '/';
        memcpy(path + plen + 1, de->d_name, k + 1);
        name[nlen] = '/';
        memcpy(name + nlen + 1, de->d_name, k + 1);
        rc = put_tree(w, path, plen + 1 + k, name, nlen + 1 + k, 0);
        path[plen] = '\0';
        name[nlen] = '\0';
    }
    if (rc == 0 && errno != 0) {
        cp_err("copy-out: read directory %s: %s", path, strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

static int put_tree(struct tw *w, char *path, size_t plen, char *name, size_t nlen, int top)
{
    char link[NAME_MAX_T];
    struct stat st;
    ssize_t n;
    int rc;

    rc = w->follow ? stat(path, &st) : lstat(path, &st);
    if (rc < 0) {
        cp_err("copy-out: %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode))
        return put_file(w, path, name, &st);
    if (S_ISLNK(st.st_mode)) {
        n = readlink(path, link, sizeof link - 1);
        if (n < 0) {
            cp_err("copy-out: readlink %s: %s", path, strerror(errno));
            return -1;
        }
        link[n] = '\0';
        return header(w, name, &st, '2', link);
    }
    if (!S_ISDIR(st.st_mode))
        return 0; /* devices, fifos and sockets are not copied */
    if (top && !w->recursive) {
        cp_err("copy-out: %s is a directory (copy needs recursive)", path);
        return -1;
    }
    name[nlen] = '/';
    name[nlen + 1] = '\0';
    rc = header(w, name, &st, '5', NULL);
    name[nlen] = '\0';
    return rc < 0 ? -1 : put_dir(w, path, plen, name, nlen);
}

/* copy-out PATH OPTS: OPTS letters r (recursive), L (follow symlinks). Entry names start with
 * the last component of PATH ("root" for "/"). */
static int copy_out(const char *src, const char *opts)
{
    static char path[NAME_MAX_T], name[NAME_MAX_T];
    static uint8_t buf[WBUF_SIZE];
    static const uint8_t zero[2 * BLK];
    struct tw w = {buf, 0, strchr(opts, 'L') != NULL, strchr(opts, 'r') != NULL};
    const char *base;
    size_t plen;

    plen = strlen(src);
    while (plen > 1 && src[plen - 1] == '/')
        plen--;
    if (plen == 0 || plen >= sizeof path) {
        cp_err("copy-out: bad path \"%s\"", src);
        return 1;
    }
    memcpy(path, src, plen);
    path[plen] = '\0';
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(name, sizeof name, "%s",
             base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ? "root" : base);
    if (put_tree(&w, path, plen, name, strlen(name), 1) < 0 || tw_put(&w, zero, sizeof zero) < 0)
        return 1;
    if (w.len > 0 && bl_write_all(1, w.buf, w.len) < 0)
        return 1;
    return 0;
}

/* ---- copy-in: the reader ---- */

struct dirfix {
    char *path;
    unsigned mode;
    int64_t mtime;
};

struct tr {
    int in; /* the archive */
    const char *dest;
    int overwrite, include_parent, raw;
    char root[NAME_MAX_T];   /* directory entries are created under */
    char top[NAME_MAX_T];    /* the archive's first component */
    char rename[NAME_MAX_T]; /* what top becomes ("" → dropped: contents go into root) */
    int decided;
    struct dirfix *dirs;
    size_t ndirs, capdirs;
};

static int read_full(const struct tr *t, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = bl_read(t->in, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int skip_data(const struct tr *t, uint64_t n)
{
    static uint8_t buf[WBUF_SIZE];

    n = (n + BLK - 1) / BLK * BLK;
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (read_full(t, buf, k) < 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* A numeric field: octal, or base-256 when the high bit of the first byte is set. */
static uint64_t num_field(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;

    if (p[0] & 0x80) {
        v = p[0] & 0x3f;
        for (i = 1; i < n; i++)
            v = (v << 8) | p[i];
        return v;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\0'))
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
        v = (v << 3) | (uint64_t)(p[i] - '0');
    return v;
}

static int header_ok(const uint8_t *h)
{
    unsigned sum = 0;

    for (int i = 0; i < BLK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == (unsigned)num_field(h + 148, 8);
}

/* Clean an entry name in place: no leading "/" or "./", no "." components, no trailing
 * "/"; -1 when it is empty or has a ".." component. */
static int clean_name(char *s)
{
    char out[NAME_MAX_T];
    size_t o = 0;
    const char *p = s;

    while (*p) {
        size_t k;
        while (*p == '/')
            p++;
        k = strcspn(p, "/");
        if (k == 0)
            break;
        if (k == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (!(k == 1 && p[0] == '.')) {
            if (o + k + 2 >= sizeof out)
                return -1;
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, k);
            o += k;
        }
        p += k;
    }
    out[o] = '\0';
    memcpy(s, out, o + 1);
    return o > 0 ? 0 : -1;
}

/* Decide, from the first entry, where the tree goes (docker cp's rules):
 *  DEST is a directory: a directory source without include_parent → its contents into DEST;
 *    else DEST/<top>.
 *  DEST is missing (or a file, for a file source): <top> is renamed to DEST. */
static int decide(struct tr *t, const char *name, int is_dir)
{
    struct stat st;
    size_t k = strcspn(name, "/");
    const char *slash;

    snprintf(t->top, sizeof t->top, "%.*s", (int)k, name);
    t->decided = 1;
    if (t->raw || (stat(t->dest, &st) == 0 && S_ISDIR(st.st_mode))) {
        snprintf(t->root, sizeof t->root, "%s", t->dest);
        snprintf(t->rename, sizeof t->rename, "%s",
                 is_dir && !t->include_parent && !t->raw ? "" : t->top);
        if (t->raw)
            t->top[0] = '\0';
        return 0;
    }
    if (t->raw) {
        cp_err("copy-in: %s is not a directory", t->dest);
        return -1;
    }
    if (is_dir && lstat(t->dest, &st) == 0) {
        cp_err("copy-in: cannot copy a directory over the file %s", t->dest);
        return -1;
    }
    slash = strrchr(t->dest, '/');
    if (!slash || slash[1] == '\0') {
        cp_err("copy-in: %s: No such file or directory", t->dest);
        return -1;
    }
    snprintf(t->root, sizeof t->root, "%.*s", slash == t->dest ? 1 : (int)(slash - t->dest),
             t->dest);
    snprintf(t->rename, sizeof t->rename, "%s", slash + 1);
    return 0;
}

/* The path an entry is created at, or "" for the stripped top itself. */
static int target(struct tr *t, const char *name, char *out, size_t cap)
{
    size_t k = strlen(t->top);
    int n;

    if (k == 0) {
        n = snprintf(out, cap, "%s/%s", t->root, name);
    } else if (strncmp(name, t->top, k) != 0 || (name[k] != '\0' && name[k] != '/')) {
        cp_err("copy-in: entry \"%s\" is outside the copied tree \"%s\"", name, t->top);
        return -1;
    } else if (t->rename[0] == '\0' && name[k] == '\0') {
        out[0] = '\0';
        return 0;
    } else {
        n = snprintf(out, cap, "%s/%s%s", t->root, t->rename, name + k);
    }
    if (n < 0 || (size_t)n >= cap) {
        cp_err("copy-in: entry \"%s\": path too long", name);
        return -1;
    }
    return 0;
}

/* Make room for a new non-directory at path: 0 when free (removed if overwrite). */
static int make_room(struct tr *t, const char *path, int for_dir)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return 0;
    if (for_dir && S_ISDIR(st.st_mode))
        return 1; /* exists already */
    if (S_ISDIR(st.st_mode)) {
        cp_err("copy-in: %s is a directory", path);
        return -1;
    }
    if (!t->overwrite) {
        cp_err("copy-in: %s exists", path);
        return -1;
    }
    if (unlink(path) < 0) {
        cp_err("copy-in: remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int extract_file(struct tr *t, const char *path, unsigned mode, uint64_t size, int64_t mtime)
{
    static uint8_t buf[WBUF_SIZE];
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    uint64_t left = (size + BLK - 1) / BLK * BLK, data = size;
    int fd = -1, rc = -1;

    if (make_room(t, path, 0) < 0)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        cp_err("copy-in: create %s: %s", path, strerror(errno));
        return -1;
    }
    while (left > 0) {
        size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
        size_t wk = data < k ? (size_t)data : k;
        if (read_full(t, buf, k) < 0) {
            cp_err("copy-in: %s: the archive ended early", path);
            goto out;
        }
        if (wk > 0 && bl_write_all(fd, buf, wk) < 0) {
            cp_err("copy-in: write %s: %s", path, strerror(errno));
            goto out;
        }
        left -= k;
        data -= wk;
    }
    if (fchmod(fd, mode & 07777) < 0 || futimens(fd, ts) < 0) {
        cp_err("copy-in: set mode/mtime of %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

static int remember_dir(struct tr *t, const char *path, unsigned mode, int64_t mtime)
{
    if (t->ndirs == t->capdirs) {
        size_t ncap = t->capdirs ? t->capdirs * 2 : 64;
        struct dirfix *n = realloc(t->dirs, ncap * sizeof *n);
        if (!n)
            return -1;
        t->dirs = n;
        t->capdirs = ncap;
    }
    t->dirs[t->ndirs].path = strdup(path);
    if (!t->dirs[t->ndirs].path)
        return -1;
    t->dirs[t->ndirs].mode = mode;
    t->dirs[t->ndirs].mtime = mtime;
    t->ndirs++;
    return 0;
}

/* Create the missing directories above path (an archive may name a file before, or
 * without, its directory). */
static void make_parents(const struct tr *t, char *path)
{
    size_t skip = strlen(t->root);

    for (char *p = path + skip + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        (void)mkdir(path, 0755);
        *p = '/';
    }
}

static int extract_one(struct tr *t, char type, char *name, const char *linkname, unsigned mode,
                       uint64_t size, int64_t mtime)
{
    static char path[2 * NAME_MAX_T], lpath[2 * NAME_MAX_T];
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    int rc;

    if (type != '0' && type != '\0' && type != '5' && type != '2' && type != '1' && type != '7')
        return skip_data(t, size);
    if (clean_name(name) < 0) {
        cp_err("copy-in: refusing entry name \"%s\"", name);
        return -1;
    }
    if (!t->decided && decide(t, name, type == '5') < 0)
        return -1;
    if (target(t, name, path, sizeof path) < 0)
        return -1;
    if (path[0] == '\0')
        return skip_data(t, size);
    make_parents(t, path);
    if (type == '5') {
        rc = make_room(t, path, 1);
        if (rc == 0 && mkdir(path, 0700) < 0) {
            cp_err("copy-in: mkdir %s: %s", path, strerror(errno));
            return -1;
        }
        return rc < 0 || remember_dir(t, path, mode, mtime) < 0 ? -1 : skip_data(t, size);
    }
    if (type == '2') {
        if (make_room(t, path, 0) < 0 || symlink(linkname, path) < 0) {
            cp_err("copy-in: symlink %s: %s", path, strerror(errno));
            return -1;
        }
        (void)utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
        return skip_data(t, size);
    }
    if (type == '1') {
        char lname[NAME_MAX_T];
        snprintf(lname, sizeof lname, "%s", linkname);
        if (clean_name(lname) < 0 || target(t, lname, lpath, sizeof lpath) < 0 ||
            lpath[0] == '\0' || make_room(t, path, 0) < 0 || link(lpath, path) < 0) {
            cp_err("copy-in: hard link %s to %s failed", path, linkname);
            return -1;
        }
        return skip_data(t, size);
    }
    return extract_file(t, path, mode, size, mtime);
}

/* Parse a pax body: path, linkpath, size, mtime are used; other keys are ignored. */
static int parse_pax(char *body, size_t n, char *path, char *link, uint64_t *size, int *has_size,
                     int64_t *mtime, int *has_mtime)
{
    size_t off = 0;

    while (off < n) {
        char *end;
        unsigned long len = strtoul(body + off, &end, 10);
        char *kv, *eq, *val;
        if (end == body + off || *end != ' ' || len == 0 || len > n - off ||
            body[off + len - 1] != '\n')
            return -1;
        body[off + len - 1] = '\0';
        kv = end + 1;
        eq = strchr(kv, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        val = eq + 1;
        if (strcmp(kv, "path") == 0)
            snprintf(path, NAME_MAX_T, "%s", val);
        else if (strcmp(kv, "linkpath") == 0)
            snprintf(link, NAME_MAX_T, "%s", val);
        else if (strcmp(kv, "size") == 0) {
            *size = strtoull(val, NULL, 10);
            *has_size = 1;
        } else if (strcmp(kv, "mtime") == 0) {
            *mtime = strtoll(val, NULL, 10);
            *has_mtime = 1;
        }
        off += len;
    }
    return 0;
}

static int read_body(const struct tr *t, uint64_t size, char **out)
{
    char *b;

    if (size > PAX_MAX) {
        cp_err("copy-in: extended header of %llu bytes is too large", (unsigned long long)size);
        return -1;
    }
    b = malloc((size_t)size + BLK + 1);
    if (!b || read_full(t, b, (size_t)((size + BLK - 1) / BLK * BLK)) < 0) {
        free(b);
        cp_err("copy-in: the archive ended early");
        return -1;
    }
    b[size] = '\0';
    *out = b;
    return 0;
}

static int copy_in_loop(struct tr *t)
{
    static char name[NAME_MAX_T], link[NAME_MAX_T], xname[NAME_MAX_T], xlink[NAME_MAX_T];
    uint8_t h[BLK];
    uint64_t xsize = 0;
    int64_t xmtime = 0;
    int has_size = 0, has_mtime = 0, zeros = 0;

    xname[0] = xlink[0] = '\0';
    for (;;) {
        char type, *body = NULL;
        uint64_t size;
        int rc = 0;
        if (read_full(t, h, BLK) < 0)
            return zeros > 0 ? 0 : (cp_err("copy-in: the archive ended early"), -1);
        if (h[0] == 0 && memcmp(h, h + 1, BLK - 1) == 0) {
            if (++zeros == 2)
                return 0;
            continue;
        }
        zeros = 0;
        if (!header_ok(h)) {
            cp_err("copy-in: not a tar archive (bad header checksum)");
            return -1;
        }
        type = (char)h[156];
        size = num_field(h + 124, 12);
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
            if (read_body(t, size, &body) < 0)
                return -1;
            if (type == 'x')
                rc = parse_pax(body, (size_t)size, xname, xlink, &xsize, &has_size, &xmtime,
                               &has_mtime);
            else if (type == 'L')
                snprintf(xname, sizeof xname, "%s", body);
            else if (type == 'K')
                snprintf(xlink, sizeof xlink, "%s", body);
            free(body);
            if (rc < 0) {
                cp_err("copy-in: bad pax header");
                return -1;
            }
            continue;
        }
        if (xname[0])
            snprintf(name, sizeof name, "%s", xname);
        else if (h[345])
            snprintf(name, sizeof name, "%.155s/%.100s", (char *)h + 345, (char *)h);
        else
            snprintf(name, sizeof name, "%.100s", (char *)h);
        if (xlink[0])
            snprintf(link, sizeof link, "%s", xlink);
        else
            snprintf(link, sizeof link, "%.100s", (char *)h + 157);
        if (extract_one(t, type, name, link, (unsigned)num_field(h + 100, 8),
                        has_size ? xsize : size,
                        has_mtime ? xmtime : (int64_t)num_field(h + 136, 12)) < 0)
            return -1;
        xname[0] = xlink[0] = '\0';
        has_size = has_mtime = 0;
    }
}

int bl_copy_in(int in, const char *dest, const char *opts)
{
    static struct tr t;
    int rc;

    memset(&t, 0, sizeof t);
    t.in = in;
    t.dest = dest;
    t.overwrite = strchr(opts, 'o') != NULL;
    t.include_parent = strchr(opts, 'p') != NULL;
    t.raw = strchr(opts, 'x') != NULL;
    rc = copy_in_loop(&t);
    for (size_t i = t.ndirs; i > 0; i--) {
        struct dirfix *d = &t.dirs[i - 1];
        struct timespec ts[2] = {{d->mtime, 0}, {d->mtime, 0}};
        if (rc == 0 &&
            (chmod(d->path, d->mode & 07777) < 0 || utimensat(AT_FDCWD, d->path, ts, 0) < 0)) {
            cp_err("copy-in: set mode/mtime of %s: %s", d->path, strerror(errno));
            rc = -1;
        }
        free(d->path);
    }
    free(t.dirs);
    if (rc == 0 && !t.decided && !t.raw) {
        cp_err("copy-in: the archive is empty");
        rc = -1;
    }
    return rc < 0 ? 1 : 0;
}

int bl_builtin_main(const struct bl_exec_req *req)
{
    int rc = bl_builtin_identity(req);

    if (rc < 0)
        rc = bl_builtin_tunnel(req);
    if (rc < 0)
        rc = bl_builtin_trust_ca(req);
    if (rc >= 0)
        return rc;
    if (req->argc == 3 && strcmp(req->argv[0], "copy-out") == 0)
        return copy_out(req->argv[1], req->argv[2]);
    if (req->argc == 3 && strcmp(req->argv[0], "copy-in") == 0)
        return bl_copy_in(0, req->argv[1], req->argv[2]);
    cp_err("no built-in \"%s\" with %u arguments", req->argv[0], req->argc - 1);
    return 127;
}
