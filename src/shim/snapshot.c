/* snapshot.c — snapshots the shim takes of its running box: the disk cut (agent freeze, a new
 * qcow2 layer through QMP, thaw) and the full one (pause, the layer, the guest RAM file
 * copied and device state migrated to a file through an fd handed to QEMU, resume).
 * Layout: docs/snapshots.md. */
#include "shim.h"

#include "boxlite.h"
#include "disk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QMP_MS     30000
#define MIGRATE_MS 600000
#define FREEZE_MS  30000
#define MEM_TMP    "memory.tmp"
#define RAM_TMP    "ram.tmp"
#define PAGE       4096
#define CHUNK      (1 << 20)

struct snap {
    struct shim_router *r;
    struct shim_qmp *q;
    const char *dir, *name;
    char sdir[512]; /* snapshots/<name>, relative to dir (the cwd), or save_vm's directory */
    char *msg;
    size_t cap;
};

static int fail(struct snap *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct snap *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->msg, s->cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int qmp(struct snap *s, const char *cmd, int pass_fd, int timeout_ms)
{
    if (shim_qmp_cmd(s->q, cmd, pass_fd, timeout_ms) != 0) {
        snprintf(s->msg, s->cap, "QEMU: %.*s", (int)(s->cap > 64 ? s->cap - 16 : 32), s->q->line);
        return -1;
    }
    return 0;
}

/* The box's layers never move while QEMU has them open: disk.qcow2 is a symlink to the top
 * layer, layers/<id>.qcow2. Freeze the top: QEMU starts a new layer over it (its backing
 * name is the top's real path), the snapshot's disk.qcow2 links to the frozen layer, and
 * only then disk.qcow2 is switched to the new layer. A crash before the switch leaves the
 * snapshot pointing at the top: the next open drops it (and the unused new layer). */
static int new_layer(struct snap *s)
{
    char cmd[1536], top[512], link_path[600], layer[64];
    ssize_t n = readlink("disk.qcow2", top, sizeof(top) - 1);
    unsigned char rnd[8];
    int fd;

    if (n <= 0)
        return fail(s, "the box disk is not a layer link: %s", strerror(errno));
    top[n] = '\0';
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
        if (fd >= 0)
            close(fd);
        return fail(s, "no randomness");
    }
    close(fd);
    snprintf(layer, sizeof(layer), "layers/%02x%02x%02x%02x%02x%02x%02x%02x.qcow2", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    snprintf(cmd, sizeof(cmd),
             "{\"execute\":\"blockdev-snapshot-sync\",\"arguments\":{\"device\":\"disk0\","
             "\"snapshot-file\":\"%s/%s\",\"format\":\"qcow2\"}}",
             s->dir, layer);
    if (qmp(s, cmd, -1, QMP_MS) != 0)
        return -1;
    snprintf(link_path, sizeof(link_path), "%s/disk.qcow2", s->sdir);
    snprintf(cmd, sizeof(cmd), "%s%s%s", top[0] == '/' ? "" : s->dir, top[0] == '/' ? "" : "/",
             top);
    if (symlink(cmd, link_path) != 0)
        return fail(s, "link the frozen layer: %s", strerror(errno));
    if (bl_disk_switch_top(".", layer) != 0)
        return fail(s, "switch the box disk to the new layer: %s", strerror(errno));
    bl_disk_sync_dir(s->sdir);
    return 0;
}

/* 1 when the page is all zeros. */
static int zero_page(const unsigned char *p)
{
    static const unsigned char zero[PAGE];

    return memcmp(p, zero, PAGE) == 0;
}

/* Copy the pages of [off, end) of in that are not zero into out at the same offsets (holes
 * elsewhere). */
static int copy_range(int in, int out, off_t off, off_t end, unsigned char *buf)
{
    while (off < end) {
        size_t want = (size_t)(end - off < CHUNK ? end - off : CHUNK);
        ssize_t n = pread(in, buf, want, off);
        if (n <= 0)
            return -1;
        for (ssize_t p = 0; p < n; p += PAGE) {
            size_t len = (size_t)(n - p < PAGE ? n - p : PAGE);
            if ((len == PAGE && zero_page(buf + p)) ||
                pwrite(out, buf + p, len, off + p) == (ssize_t)len)
                continue;
            return -1;
        }
        off += n;
    }
    return 0;
}

/* The paused guest's RAM into sdir/ram: the pages its file holds (zero pages left out, so the
 * copy is sparse), and with ram->cow the pages QEMU wrote over that file's. Boxes restored
 * from it map it privately. */
static int copy_ram(struct snap *s, const struct shim_ram *r)
{
    const char *ram = r->own ? r->own : r->cow;
    char tmp[600], final[600];
    unsigned char *buf = malloc(CHUNK);
    int in = open(ram, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    off_t size = in >= 0 ? lseek(in, 0, SEEK_END) : -1, off = 0;

    snprintf(tmp, sizeof(tmp), "%s/" RAM_TMP, s->sdir);
    snprintf(final, sizeof(final), "%s/ram", s->sdir);
    if (buf && in >= 0 && size > 0)
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || ftruncate(out, size) != 0)
        rc = fail(s, "copy the RAM file %s: %s", ram, strerror(errno));
    while (rc == 0 && off < size) {
        off_t data = lseek(in, off, SEEK_DATA), hole;
        if (data < 0 && errno == ENXIO)
            break; /* holes to the end */
        hole = data >= 0 ? lseek(in, data, SEEK_HOLE) : -1;
        if (hole < 0 || copy_range(in, out, data, hole, buf) != 0)
            rc = fail(s, "copy the RAM file %s: %s", ram, strerror(errno));
        off = hole;
    }
    if (rc == 0 && !r->own && shim_cow_pages(out, r->cow, r->qemu, s->msg, s->cap) != 0)
        rc = -1;
    if (rc == 0 && fsync(out) != 0)
        rc = fail(s, "fsync the RAM file copy: %s", strerror(errno));
    if (rc == 0 && rename(tmp, final) != 0)
        rc = fail(s, "rename the RAM file copy: %s", strerror(errno));
    if (rc != 0)
        unlink(tmp);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    free(buf);
    return rc;
}

/* Device state, and RAM unless in_file (RAM is in sdir/ram: x-ignore-shared), through
 * `migrate fd:` into sdir/memory. */
static int save_memory(struct snap *s, int in_file)
{
    char tmp[600], final[600];
    int fd, rc = 0;
    int64_t deadline = bl_now_ms() + MIGRATE_MS;

    snprintf(tmp, sizeof(tmp), "%s/" MEM_TMP, s->sdir);
    snprintf(final, sizeof(final), "%s/memory", s->sdir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(s, "create the memory file: %s", strerror(errno));
    rc = qmp(s,
             "{\"execute\":\"migrate-set-parameters\",\"arguments\":"
             "{\"max-bandwidth\":68719476736}}",
             -1, QMP_MS);
    if (rc == 0) /* the stream's format depends on it: on iff RAM is in a file */
        rc = qmp(s, in_file ? SHIM_QMP_IGNORE_SHARED(true) : SHIM_QMP_IGNORE_SHARED(false), -1,
                 QMP_MS);
    if (rc == 0)
        rc = qmp(s, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"snapmem\"}}", fd, QMP_MS);
    if (rc == 0)
        rc = qmp(s, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:snapmem\"}}", -1, QMP_MS);
    while (rc == 0) {
        rc = qmp(s, "{\"execute\":\"query-migrate\"}", -1, QMP_MS);
        if (rc == 0 && strstr(s->q->line, "\"completed\""))
            break;
        if (rc == 0 && (strstr(s->q->line, "\"failed\"") || strstr(s->q->line, "\"cancelled\"")))
            rc = fail(s, "migration to the memory file failed: %s", s->q->line);
        if (rc == 0 && bl_now_ms() > deadline)
            rc = fail(s, "migration to the memory file took too long");
        if (rc == 0)
            usleep(10000);
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = fail(s, "fsync the memory file: %s", strerror(errno));
    close(fd);
    if (rc == 0 && rename(tmp, final) != 0)
        rc = fail(s, "rename the memory file: %s", strerror(errno));
    if (rc != 0)
        unlink(tmp);
    bl_disk_sync_dir(s->sdir);
    return rc;
}

int shim_save_vm(struct shim_qmp *q, const char *sdir, const struct shim_ram *ram, char *msg,
                 size_t cap)
{
    struct snap s = {.q = q, .msg = msg, .cap = cap};
    int in_file = ram->own || ram->cow, rc = 0;

    msg[0] = '\0';
    snprintf(s.sdir, sizeof(s.sdir), "%s", sdir);
    if (in_file)
        rc = copy_ram(&s, ram);
    if (rc == 0)
        rc = save_memory(&s, in_file);
    if (rc != 0) {
        char path[600];
        snprintf(path, sizeof(path), "%s/ram", sdir);
        unlink(path);
    }
    return rc;
}

int shim_snapshot(struct shim_router *r, struct shim_qmp *q, const char *dir, int full,
                  const struct shim_ram *ram, const char *name, char *msg, size_t cap)
{
    struct snap s = {.r = r, .q = q, .dir = dir, .name = name, .msg = msg, .cap = cap};
    const char *freeze[] = {"freeze", NULL};
    const char *thaw[] = {"thaw", NULL};
    char thaw_err[256];
    int rc = 0, held = 0;

    msg[0] = '\0';
    if (bl_check_name("snapshot", name) != 0) /* the library's rule: names become paths */
        return fail(&s, "%s", boxlite_error_last());
    snprintf(s.sdir, sizeof(s.sdir), "snapshots/%s", name);
    if (mkdir("snapshots", 0700) != 0 && errno != EEXIST)
        return fail(&s, "create snapshots/: %s", strerror(errno));
    if (mkdir(s.sdir, 0700) != 0)
        return fail(&s, errno == EEXIST ? "a snapshot named \"%s\" exists" : "create %s", name);
    if (full)
        rc = qmp(&s, "{\"execute\":\"stop\"}", -1, QMP_MS);
    else
        rc = shim_router_builtin(r, freeze, FREEZE_MS, msg, cap);
    held = rc == 0;
    if (rc == 0)
        rc = new_layer(&s);
    if (rc == 0 && full && shim_main_save(r, s.sdir) != 0) /* paused: it cannot end now */
        rc = fail(&s, "save the main process's stream: %s", boxlite_error_last());
    if (rc == 0 && full)
        rc = shim_save_vm(q, s.sdir, ram, msg, cap);
    if (held && full && shim_qmp_cmd(q, "{\"execute\":\"cont\"}", -1, QMP_MS) != 0 && rc == 0)
        rc = fail(&s, "resume the VM: %s", q->line);
    if (held && !full && shim_router_builtin(r, thaw, FREEZE_MS, thaw_err, sizeof(thaw_err)) != 0 &&
        rc == 0)
        rc = fail(&s, "%s", thaw_err);
    if (rc != 0)
        rmdir(s.sdir); /* only when nothing was made in it */
    return rc;
}

/* ---- warm templates: saved as a full snapshot's VM is, no disk layer (docs/templates.md) ---- */

int shim_template_save(struct shim_qmp *q, const char *home, const char *id, const char *ram,
                       char *msg, size_t cap)
{
    struct snap s = {.q = q, .msg = msg, .cap = cap};
    int rc, n;

    msg[0] = '\0';
    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64)
        return fail(&s, "bad template id");
    n = snprintf(s.sdir, sizeof(s.sdir), "%s/templates/%s", home, id);
    if (n < 0 || (size_t)n >= sizeof(s.sdir))
        return fail(&s, "the template path is too long");
    rc = qmp(&s, "{\"execute\":\"stop\"}", -1, QMP_MS);
    if (rc == 0) { /* its RAM file (mapped privately by every box restored from it) + devices */
        struct shim_ram own = {.own = ram};
        rc = shim_save_vm(q, s.sdir, &own, msg, cap);
    }
    if (shim_qmp_cmd(q, "{\"execute\":\"cont\"}", -1, QMP_MS) != 0 && rc == 0)
        rc = fail(&s, "resume the VM: %s", q->line);
    return rc;
}

int shim_template_disk(struct shim_qmp *q, char *msg, size_t cap)
{
    struct snap s = {.q = q, .msg = msg, .cap = cap};
    uint64_t size = bl_disk_virtual_size("disk.qcow2");
    char cmd[256];

    msg[0] = '\0';
    if (size == 0)
        return fail(&s, "cannot read the size of the box disk");
    snprintf(cmd, sizeof(cmd),
             "{\"execute\":\"block_resize\",\"arguments\":{\"device\":\"disk0\","
             "\"size\":%llu}}",
             (unsigned long long)size);
    return qmp(&s, cmd, -1, QMP_MS);
}
