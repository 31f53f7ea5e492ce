/* util.c — small host-side helpers shared by the library: formatted strings, paths and
 * directories, atomic files, ids, clocks and running a helper program. */
#include "util.h"
#include "error.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

char *bl_strdupf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        bl_err(BOXLITE_ENOMEM, "out of memory");
        s = NULL;
    }
    return s;
}

int bl_mkdir_p(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    int rc = 0;

    if (len == 0 || len >= sizeof(buf))
        return bl_err(BOXLITE_EINVAL, "path too long: %s", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            rc = bl_err_errno(bl_code_from_errno(errno), errno, "mkdir %s", buf);
        buf[i] = (i == len) ? '\0' : '/';
    }
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int bl_rm_rf(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0 && errno == ENOENT)
        return 0;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return bl_err_errno(BOXLITE_EIO, errno, "remove %s", path);
    return 0;
}

int bl_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    int fd;

    if (n >= sizeof(dir))
        return 0;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    if (n == 0)
        strcpy(dir, "/");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

int bl_open_temp(char **path_out, const char *base, unsigned mode)
{
    char id[13], *p = NULL;
    int fd = -1, rc = 0;

    for (int i = 0; i < 8 && fd < 0 && rc == 0; i++) {
        free(p);
        rc = bl_random_id(id);
        p = rc == 0 ? bl_strdupf("%s.tmp.%s", base, id) : NULL;
        if (rc == 0 && !p)
            rc = BOXLITE_ENOMEM;
        if (rc == 0)
            fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (rc == 0 && fd < 0 && errno != EEXIST)
            rc = bl_err_errno(bl_code_from_errno(errno), errno, "create %s", p);
    }
    if (rc == 0 && fd < 0)
        rc = bl_err(BOXLITE_EIO, "create a temporary file beside %s: every name taken", base);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *path_out = p;
    return fd;
}

int bl_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    char *tmp = NULL;
    int fd = bl_open_temp(&tmp, path, mode);
    int rc = 0;
    int werr;

    if (fd < 0)
        return fd;
    werr = bl_write_all(fd, data, len);
    if (werr == 0 && fsync(fd) != 0)
        werr = -errno;
    if (werr != 0) {
        rc = bl_err_errno(BOXLITE_EIO, -werr, "write %s", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "rename %s", tmp);
        goto out;
    }
    fsync_dir_of(path);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int bl_read_file(char **out, size_t *len_out, const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    if (fd < 0)
        return bl_err_errno(bl_code_from_errno(errno), errno, "open %s", path);
    buf = malloc(max + 1);
    if (!buf) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = bl_err_errno(BOXLITE_EIO, errno, "read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = bl_err(BOXLITE_EIO, "%s is larger than %zu bytes", path, max);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    if (len_out)
        *len_out = len;
out:
    free(buf);
    close(fd);
    return rc;
}

/* copy_file_range while the kernel takes it (it copies without user buffers); *off advanced.
 * 0 at end; -1 where the kernel or filesystem cannot (then the read/write loop goes on). */
static int copy_range_kernel(int in, int out, off_t *off, off_t end)
{
    while (*off < end) {
        off_t o_in = *off, o_out = *off;
        ssize_t n = copy_file_range(in, &o_in, out, &o_out, (size_t)(end - *off), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        *off += n;
    }
    return 0;
}

static int copy_range(int in, int out, off_t off, off_t end)
{
    static const size_t chunk = 1 << 20;
    char *buf;
    int rc = 0;

    if (copy_range_kernel(in, out, &off, end) == 0)
        return 0;
    buf = malloc(chunk);
    if (!buf)
        return -ENOMEM;
    while (off < end && rc == 0) {
        size_t want = (size_t)(end - off) < chunk ? (size_t)(end - off) : chunk;
        ssize_t n = pread(in, buf, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        if (pwrite(out, buf, (size_t)n, off) != n)
            rc = -EIO;
        off += n;
    }
    free(buf);
    return rc;
}

int bl_copy_fd_sparse(int in, int out, off_t size)
{
    off_t data = 0, hole;
    int err = 0;

    while (err == 0) {
        data = lseek(in, data, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no more data */
        hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = size;
        err = copy_range(in, out, data, hole);
        data = hole;
    }
    return err;
}

int bl_copy_file_sparse(const char *src, const char *dst, unsigned mode, int flags)
{
    char *tmp = NULL;
    int in = -1, out = -1, rc = 0, err = 0;
    struct stat st;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) != 0) {
        rc = bl_err_errno(bl_code_from_errno(errno), errno, "open %s", src);
        goto out;
    }
    out = bl_open_temp(&tmp, dst, mode);
    if (out < 0) {
        rc = out;
        goto out;
    }
    if (ftruncate(out, st.st_size) != 0) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", tmp);
        goto out;
    }
    err = bl_copy_fd_sparse(in, out, st.st_size);
    if (err == 0 && !(flags & BL_COPY_NOSYNC) && fsync(out) != 0)
        err = -errno;
    if (err == 0 && rename(tmp, dst) != 0)
        err = -errno;
    if (err != 0)
        rc = bl_err_errno(BOXLITE_EIO, -err, "copy %s to %s", src, dst);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}

int bl_check_name(const char *kind, const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n ||
        name[0] == '.' || name[0] == '-')
        return bl_err(BOXLITE_EINVAL,
                      "invalid %s name \"%.80s\": use 1-64 of [A-Za-z0-9_.-], not starting "
                      "with '.' or '-'",
                      kind, name ? name : "");
    return 0;
}

int bl_random_id(char out[13])
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char raw[12];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bl_err_errno(BOXLITE_EIO, errno, "getrandom");
        got += (size_t)n;
    }
    /* 248 = 4 * 62: rejection-free mapping would bias; the bias of % 62 on a byte is
     * below 2% per character and ids need uniqueness, not uniformity. */
    for (size_t i = 0; i < sizeof(raw); i++)
        out[i] = alphabet[raw[i] % 62];
    out[12] = '\0';
    return 0;
}

int64_t bl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void read_tail(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        char tmp[512];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (len + 1 >= cap) {
                memmove(buf, buf + cap / 2, len - cap / 2);
                len -= cap / 2;
            }
            buf[len++] = tmp[i];
        }
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        len--;
    buf[len] = '\0';
}

static int spawn_tool(pid_t *pid, char **prog, const posix_spawn_file_actions_t *fa,
                      const char *const *argv);

int bl_run_tool(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    char errbuf[1024];
    int pipefd[2] = {-1, -1};
    pid_t pid;
    int status = 0, rc = 0;
    char *prog = NULL;

    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return bl_err_errno(BOXLITE_EIO, errno, "pipe");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    rc = spawn_tool(&pid, &prog, &fa, argv);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0)
        goto out;
    read_tail(pipefd[0], errbuf, sizeof(errbuf));
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = bl_err(BOXLITE_ERROR, "%s failed (status %d): %s", prog, status, errbuf);
out:
    close(pipefd[0]);
    free(prog);
    return rc;
}

/* The installed package's own programs (see bl_set_tool_dir); NULL when unset. */
struct tool_dir {
    char *dir;
    char **carried;
};
static struct tool_dir *tools;

void bl_set_tool_dir(const char *dir, const char *const *carried)
{
    struct tool_dir *t = calloc(1, sizeof(*t));
    struct tool_dir *expected = NULL;

    if (t) {
        t->dir = strdup(dir);
        t->carried = carried ? bl_strv_dup(carried) : NULL;
    }
    if (!t || !t->dir || (carried && !t->carried) ||
        !__atomic_compare_exchange_n(&tools, &expected, t, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        if (t) { /* set once, for the life of the process */
            free(t->dir);
            bl_strv_free(t->carried);
        }
        free(t);
    }
}

/* A program the package carries must be there and be an ELF executable: a missing or
 * corrupt one is named here rather than failing later inside the box monitor. */
static int check_carried(const char *path)
{
    char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
    int err = errno;

    if (fd >= 0)
        close(fd);
    if (fd < 0)
        return bl_err_errno(BOXLITE_ENOTFOUND, err,
                            "%s, which this package carries, cannot be opened (reinstall the "
                            "package)",
                            path);
    if (n != 4 || memcmp(magic, "\177ELF", 4) != 0 || access(path, X_OK) != 0)
        return bl_err(BOXLITE_ENOTFOUND,
                      "%s, which this package carries, is not an executable program: the "
                      "package is corrupt (reinstall it)",
                      path);
    return 0;
}

static int is_carried(const struct tool_dir *t, const char *name)
{
    for (size_t i = 0; t && t->carried && t->carried[i]; i++)
        if (strcmp(t->carried[i], name) == 0)
            return 1;
    return 0;
}

int bl_find_program(char **out, const char *name, const char *envvar)
{
    const char *env = envvar ? getenv(envvar) : NULL;
    const char *path = getenv("PATH");
    const struct tool_dir *t = __atomic_load_n(&tools, __ATOMIC_ACQUIRE);
    const char *dir = t ? t->dir : NULL;
    char *found = NULL;
    int rc;

    if (env && *env) {
        found = strdup(env);
        goto out;
    }
    found = dir ? bl_strdupf("%s/%s", dir, name) : NULL;
    if (found && is_carried(t, name)) { /* the package's own, never PATH's */
        rc = check_carried(found);
        if (rc != 0) {
            free(found);
            return rc;
        }
        goto out;
    }
    if (found && access(found, X_OK) == 0)
        goto out;
    free(found);
    found = NULL;
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path && !found) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        char *cand = bl_strdupf("%.*s/%s", (int)n, path, name);
        if (cand && access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
        path += n + (colon ? 1 : 0);
    }
out:
    if (!found)
        return bl_err(BOXLITE_ENOTFOUND, "%s not found (looked for %s%s%sin PATH%s%s%s)", name,
                      dir ? dir : "", dir ? "/" : "", dir ? name : "", envvar ? "; set " : "",
                      envvar ? envvar : "", envvar ? " to choose one" : "");
    *out = found;
    return 0;
}

/* posix_spawn of argv with argv[0] looked up as bl_find_program does; *prog is the path run
 * (malloc'd, for messages). */
static int spawn_tool(pid_t *pid, char **prog, const posix_spawn_file_actions_t *fa,
                      const char *const *argv)
{
    int rc = strchr(argv[0], '/') ? ((*prog = strdup(argv[0])) ? 0 : BOXLITE_ENOMEM)
                                  : bl_find_program(prog, argv[0], NULL);
    int err;

    if (rc != 0)
        return rc;
    err = posix_spawn(pid, *prog, fa, NULL, (char *const *)argv, environ);
    return err ? bl_err_errno(BOXLITE_ENOTFOUND, err, "run %s", *prog) : 0;
}

size_t bl_strv_len(const char *const *v)
{
    size_t n = 0;

    while (v && v[n])
        n++;
    return n;
}

void bl_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char **bl_strv_dup(const char *const *v)
{
    size_t n = bl_strv_len(v);
    char **out = calloc(n + 1, sizeof(*out));

    for (size_t i = 0; out && i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            bl_strv_free(out);
            out = NULL;
        }
    }
    return out;
}

int bl_make_locked_dir(const char *dir, int *lock_out)
{
    char *lock = bl_strdupf("%s/lock", dir);
    int fd = -1, rc = 0;

    if (!lock)
        return BOXLITE_ENOMEM;
    if (mkdir(dir, 0700) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "create %s", dir);
    if (rc == 0)
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (rc == 0 && (fd < 0 || flock(fd, LOCK_EX) != 0)) {
        rc = bl_err_errno(BOXLITE_EIO, errno, "lock %s", lock);
        if (fd >= 0)
            close(fd);
        unlink(lock);
        rmdir(dir);
    }
    free(lock);
    if (rc == 0)
        *lock_out = fd;
    return rc;
}

int bl_run_tool_output(char **out, const char *const *argv, size_t max)
{
    char *path = NULL, *data = NULL, *prog = NULL;
    int fd, rc;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;

    fd = memfd_create("boxlite-tool-output", MFD_CLOEXEC); /* no file in any directory */
    if (fd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "memfd_create");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = spawn_tool(&pid, &prog, &fa, argv);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close(fd);
        free(prog);
        return rc;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    path = bl_strdupf("/proc/self/fd/%d", fd);
    rc = path ? bl_read_file(&data, NULL, path, max) : BOXLITE_ENOMEM;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = bl_err(BOXLITE_ERROR, "%s failed (status %d)", prog, status);
    free(prog);
    free(path);
    close(fd);
    if (rc == 0)
        *out = data;
    else
        free(data);
    return rc;
}

void bl_test_crash(const char *step)
{
    const char *on = getenv("BOXLITE_TEST_HOOKS");
    const char *at = getenv("BOXLITE_TEST_CRASH_AT");

    if (on && strcmp(on, "1") == 0 && at && strcmp(at, step) == 0)
        kill(getpid(), SIGKILL);
}

static _Thread_local uint64_t du_sum;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)flag, (void)ftw;
    du_sum += (uint64_t)st->st_blocks * 512;
    return 0;
}

uint64_t bl_du(const char *path)
{
    du_sum = 0;
    if (nftw(path, du_one, 16, FTW_PHYS) != 0)
        bl_err_clear(); /* what could be read is counted */
    return du_sum;
}

int bl_progress_begin(const char *what)
{
    if (!isatty(STDERR_FILENO))
        return 0;
    fprintf(stderr, "boxlite: %s...", what);
    return 1;
}

void bl_progress_end(int shown, int rc)
{
    if (shown)
        fprintf(stderr, rc == 0 ? " done\n" : " failed\n");
}
