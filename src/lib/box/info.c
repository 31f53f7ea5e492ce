/* info.c — what a box shows: info and list (rows as they are now), stats from /proc and the
 * disk, the console log, the command it runs, a timed ping. */
#include "api.h"
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "disk.h"
#include "error.h"
#include "image.h"
#include "runtime.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_MAX (4u << 20)

static void row_to_info(boxlite_box_info *out, const struct bl_box_row *r)
{
    memset(out, 0, sizeof(*out));
    out->version = BOXLITE_BOX_INFO_VERSION;
    snprintf(out->id, sizeof(out->id), "%s", r->id);
    snprintf(out->name, sizeof(out->name), "%s", r->name ? r->name : "");
    snprintf(out->image, sizeof(out->image), "%s", r->image);
    snprintf(out->state, sizeof(out->state), "%s", r->state);
    out->state_code = bl_box_state_code(r->state);
    snprintf(out->created_at, sizeof(out->created_at), "%s", r->created_at);
    if (r->state_at > 0)
        bl_rfc3339(out->updated_at, (time_t)r->state_at);
    else
        snprintf(out->updated_at, sizeof(out->updated_at), "%s", r->created_at);
    snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
    out->cpus = r->cpus;
    out->memory_mib = r->memory_mib;
    out->disk_size_gb = r->disk_size_gb;
    out->pid = bl_box_live_state(r->state) ? r->shim_pid : 0;
    out->qemu_pid = bl_box_live_state(r->state) ? r->qemu_pid : 0;
    out->detach = r->detach;
    out->auto_remove = r->auto_remove;
    out->network_disabled = r->network_disabled;
    snprintf(out->accel, sizeof(out->accel), "%s", r->accel);
    snprintf(out->image_ref, sizeof(out->image_ref), "%s", r->image_ref ? r->image_ref : r->image);
    out->has_exit_code = r->has_exit_code;
    out->exit_code = r->exit_code;
    out->no_main = r->no_main;
    out->auto_delete = (long)r->auto_delete;
    snprintf(out->image_id, sizeof(out->image_id), "%s", r->image_id ? r->image_id : "");
    for (size_t i = 0; r->ports && r->ports[i] && r->ports[i + 3]; i += 4) {
        size_t n = strlen(out->ports);
        snprintf(out->ports + n, sizeof(out->ports) - n, "%s%s:%s->%s/%s", n ? ", " : "",
                 r->ports[i + 1], r->ports[i + 2], r->ports[i + 3], r->ports[i]);
    }
    for (size_t i = 0; r->allow_net && r->allow_net[i]; i++) {
        size_t n = strlen(out->allow_net);
        snprintf(out->allow_net + n, sizeof(out->allow_net) - n, "%s%s", n ? ", " : "",
                 r->allow_net[i]);
    }
    for (size_t i = 0; r->volumes && r->volumes[i] && r->volumes[i + 2]; i += 3) {
        size_t n = strlen(out->volumes);
        snprintf(out->volumes + n, sizeof(out->volumes) - n, "%s%s:%s%s", n ? ", " : "",
                 r->volumes[i + 1], r->volumes[i + 2],
                 strcmp(r->volumes[i], "ro") == 0 ? ":ro" : "");
    }
}

BOXLITE_API int boxlite_box_get_info(boxlite_box_info *out, boxlite_box *box)
{
    int rc;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box info: bad arguments");
    rc = bl_check_version(out->version, BOXLITE_BOX_INFO_VERSION, "box info");
    if (rc == 0)
        rc = box->removed ? bl_err(BOXLITE_ENOTFOUND, "box %s has been removed", box->row.id)
                          : bl_box_reload(box);
    if (rc == 0 && bl_box_repair_row(box->rt, &box->row, NULL)) /* shown as it is now */
        rc = bl_box_reload(box);
    if (rc == 0) {
        unsigned version = out->version;
        boxlite_box_info full;

        row_to_info(&full, &box->row);
        memcpy(out, &full, bl_box_info_size(version)); /* no further than the caller's struct */
        out->version = version;
    }
    return rc;
}

BOXLITE_API int boxlite_box_list(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt)
{
    return bl_box_list_version(out, count_out, rt, 1);
}

int bl_box_list_version(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt,
                        unsigned version)
{
    size_t size = bl_box_info_size(version);
    struct bl_box_row *rows = NULL;
    char *infos = NULL;
    size_t n = 0;
    int rc;

    bl_err_clear();
    if (!out || !count_out || !rt)
        return bl_err(BOXLITE_EINVAL, "box list: bad arguments");
    bl_box_repair_new(rt, NULL); /* one readdir: boxes a crash left half made, shown whole */
    bl_box_sweep_expired(rt->db, rt->home, NULL); /* auto_delete that came due */
    rc = bl_db_box_list(rt->db, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (bl_box_repair_row(rt, &rows[i], NULL)) { /* shown as it is now */
            bl_box_rows_free(rows, n);
            rc = bl_db_box_list(rt->db, &rows, &n);
            break;
        }
    }
    if (rc != 0)
        return rc;
    infos = calloc(n ? n : 1, size);
    if (!infos)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    for (size_t i = 0; infos && i < n; i++) {
        boxlite_box_info full;

        row_to_info(&full, &rows[i]);
        full.version = version;
        memcpy(infos + i * size, &full, size);
    }
    bl_box_rows_free(rows, n);
    if (rc == 0) {
        *out = (boxlite_box_info *)infos;
        *count_out = n;
    }
    return rc;
}

static void proc_stats(int pid, boxlite_box_stats *out)
{
    char path[64], *data = NULL, *p;
    unsigned long ut = 0, st = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (bl_read_file(&data, NULL, path, 4096) == 0) {
        p = strrchr(data, ')');
        /* after ") ": state(3) ... utime is field 14, stime 15 */
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            out->cpu_seconds = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        free(data);
    }
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (bl_read_file(&data, NULL, path, 65536) == 0) {
        p = strstr(data, "VmRSS:");
        if (p)
            out->memory_bytes = strtoull(p + 6, NULL, 10) * 1024;
        free(data);
    }
}

BOXLITE_API int boxlite_box_get_stats(boxlite_box_stats *out, boxlite_box *box)
{
    struct stat st;
    int rc;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box stats: bad arguments");
    rc = bl_check_version(out->version, BOXLITE_BOX_STATS_VERSION, "box stats");
    if (rc == 0)
        rc = box->removed ? bl_err(BOXLITE_ENOTFOUND, "box %s has been removed", box->row.id)
                          : bl_box_reload(box);
    if (rc == 0 && strcmp(box->row.state, "running") != 0)
        rc = bl_err(BOXLITE_ESTATE, "box %s is %s", box->row.id, box->row.state);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->version = BOXLITE_BOX_STATS_VERSION;
    proc_stats(box->row.qemu_pid, out);
    if (stat(box->disk, &st) == 0)
        out->disk_bytes = (uint64_t)st.st_blocks * 512;
    out->disk_size_bytes = bl_disk_virtual_size(box->disk);
    return 0;
}

BOXLITE_API int boxlite_box_console(char **out, size_t *len_out, boxlite_box *box)
{
    char *path, *data = NULL;
    size_t len = 0;
    struct stat st;
    int fd, rc = 0;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box console: bad arguments");
    path = bl_strdupf("%s/console.log", box->dir);
    fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || fstat(fd, &st) != 0) {
        data = strdup(""); /* never booted */
    } else {
        off_t from = st.st_size > (off_t)CONSOLE_MAX ? st.st_size - (off_t)CONSOLE_MAX : 0;
        data = malloc((size_t)(st.st_size - from) + 1);
        ssize_t n = data ? pread(fd, data, (size_t)(st.st_size - from), from) : -1;
        len = n > 0 ? (size_t)n : 0;
        if (data)
            data[len] = '\0';
    }
    if (fd >= 0)
        close(fd);
    free(path);
    if (!data)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else {
        *out = data;
        if (len_out)
            *len_out = len;
    }
    return rc;
}

/* Read up to cap bytes of path from offset into buf; the bytes read, 0 for none. */
static size_t read_at(const char *path, uint64_t off, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    size_t got = 0;

    while (fd >= 0 && got < cap) {
        ssize_t n = pread(fd, buf + got, cap - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    return got;
}

static uint64_t file_size(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

/* The log is main.log.1 (the older file, when the shim rotated) followed by main.log. */
BOXLITE_API int boxlite_box_logs(char **out, size_t *len_out, uint64_t *next_out, boxlite_box *box,
                                 uint64_t from)
{
    char *old = NULL, *cur = NULL, *data = NULL;
    uint64_t n_old, n_cur, total;
    size_t len = 0;
    int rc = 0;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box logs: bad arguments");
    old = bl_strdupf("%s/main.log.1", box->dir);
    cur = bl_strdupf("%s/main.log", box->dir);
    if (!old || !cur) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    n_old = file_size(old);
    n_cur = file_size(cur);
    total = n_old + n_cur;
    if (from > total) /* cut since: continue at the start of the current file */
        from = n_old;
    data = malloc((size_t)(total - from) + 1);
    if (!data) {
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        goto out;
    }
    if (from < n_old)
        len = read_at(old, from, data, (size_t)(n_old - from));
    if (len == (from < n_old ? n_old - from : 0))
        len +=
            read_at(cur, from > n_old ? from - n_old : 0, data + len, (size_t)(total - from) - len);
    data[len] = '\0';
    *out = data;
    data = NULL;
    if (len_out)
        *len_out = len;
    if (next_out)
        *next_out = from + len;
out:
    free(data);
    free(old);
    free(cur);
    return rc;
}

BOXLITE_API int boxlite_box_command(char ***out, boxlite_box *box, const char *const *user_cmd)
{
    struct bl_image *img = NULL;
    char **ep, **cmd, **v;
    size_t ne, nc, k = 0;
    int rc;

    bl_err_clear();
    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "box command: bad arguments");
    rc = bl_box_image(box, &img);
    if (rc != 0)
        return rc;
    ep = box->row.entrypoint ? box->row.entrypoint : img->entrypoint;
    cmd = user_cmd && user_cmd[0] ? (char **)user_cmd : box->row.cmd ? box->row.cmd : img->cmd;
    ne = bl_strv_len((const char *const *)ep);
    nc = bl_strv_len((const char *const *)cmd);
    if (ne + nc == 0)
        return bl_err(BOXLITE_EINVAL, "box %s: no command given and the image has none",
                      box->row.id);
    v = calloc(ne + nc + 1, sizeof(*v));
    for (size_t i = 0; v && i < ne + nc; i++) {
        v[k] = strdup(i < ne ? ep[i] : cmd[i - ne]);
        if (!v[k]) {
            bl_strv_free(v);
            v = NULL;
            break;
        }
        k++;
    }
    if (!v)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    *out = v;
    return 0;
}

/* One PING/PONG through the monitor to the agent, timed. */
BOXLITE_API int boxlite_box_ping(uint64_t *out, boxlite_box *box)
{
    struct bl_conn *c = NULL;
    struct timespec a, b;
    int rc;

    if (!out || !box)
        return bl_err(BOXLITE_EINVAL, "ping: bad arguments");
    rc = bl_box_conn(box, &c);
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (rc == 0)
        rc = bl_conn_ping(c, 10000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc != 0)
        return bl_err_wrap(rc, "ping box %s", boxlite_box_id(box));
    *out =
        (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
    return 0;
}
