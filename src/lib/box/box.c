/* box.c — box lifecycle: create (store row, directory, qcow2 layer over the image's base),
 * get, start (boot through the monitor, or attach), stop, remove, info, stats and console. */
#include "api.h"
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "error.h"
#include "image.h"
#include "monitor.h"
#include "netpolicy.h"
#include "store.h"
#include "runtime.h"
#include "util.h"
#include "vmm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MEMORY_MIB 512
#define BOOT_TIMEOUT_MS    60000
#define KILL_WAIT_MS       5000
#define CONSOLE_MAX        (4u << 20)

BOXLITE_API const char *boxlite_box_id(const boxlite_box *box)
{
    return box ? box->row.id : "";
}

BOXLITE_API const char *boxlite_box_name(const boxlite_box *box)
{
    return box && box->row.name ? box->row.name : "";
}

BOXLITE_API const char *const *boxlite_box_allow_net(const boxlite_box *box)
{
    return box && box->row.allow_net && box->row.allow_net[0]
               ? (const char *const *)box->row.allow_net
               : NULL;
}

BOXLITE_API void boxlite_free(void *p)
{
    free(p);
}

BOXLITE_API void boxlite_strv_free(char **v)
{
    bl_strv_free(v);
}

static int is_live_state(const char *state)
{
    return bl_box_state_live(bl_box_state_parse(state));
}

/* ---- validation ---- */

static int check_name(const char *name)
{
    return name ? bl_check_name("box", name) : 0;
}

static int check_env(const char *const *env)
{
    for (size_t i = 0; env && env[i]; i++)
        if (!strchr(env[i], '=') || env[i][0] == '=')
            return bl_err(BOXLITE_EINVAL, "environment entry \"%s\" is not KEY=VALUE", env[i]);
    return 0;
}

static int has_dotdot(const char *path)
{
    for (const char *p = path; *p; p++)
        if (p[0] == '.' && p[1] == '.' && (p == path || p[-1] == '/') && (p[2] == '/' || !p[2]))
            return 1;
    return 0;
}

static int check_volumes(const boxlite_box_options *o)
{
    struct stat st;

    for (size_t i = 0; i < o->n_volumes; i++) {
        const boxlite_volume *v = &o->volumes[i];
        if (!v->host_path || !v->guest_path)
            return bl_err(BOXLITE_EINVAL, "volume %zu: host_path and guest_path are required", i);
        if (stat(v->host_path, &st) != 0 || !S_ISDIR(st.st_mode))
            return bl_err(BOXLITE_EINVAL, "volume %s: the host path %s", v->host_path,
                          errno == ENOENT ? "does not exist" : "is not a directory");
        if (v->guest_path[0] != '/' || strcmp(v->guest_path, "/") == 0 ||
            has_dotdot(v->guest_path) || strlen(v->guest_path) > 200)
            return bl_err(BOXLITE_EINVAL,
                          "volume %s: guest path \"%s\" must be an absolute "
                          "path below / without \"..\" (at most 200 bytes)",
                          v->host_path, v->guest_path);
    }
    return 0;
}

static int check_ports(const boxlite_box_options *o)
{
    struct in_addr a;

    for (size_t i = 0; i < o->n_ports; i++) {
        const boxlite_port *p = &o->ports[i];
        if (p->host_port == 0 || p->host_port > 65535 || p->guest_port == 0 ||
            p->guest_port > 65535)
            return bl_err(BOXLITE_EINVAL, "port %u:%u: ports are 1-65535", p->host_port,
                          p->guest_port);
        if (p->protocol && strcmp(p->protocol, "tcp") != 0 && strcmp(p->protocol, "udp") != 0)
            return bl_err(BOXLITE_EINVAL, "port %u: protocol \"%s\" is not tcp or udp",
                          p->host_port, p->protocol);
        if (p->host_ip && inet_pton(AF_INET, p->host_ip, &a) != 1)
            return bl_err(BOXLITE_EINVAL, "port %u: host_ip \"%s\" is not an IPv4 address",
                          p->host_port, p->host_ip);
        for (size_t j = 0; j < i; j++)
            if (o->ports[j].host_port == p->host_port &&
                strcmp(o->ports[j].protocol ? o->ports[j].protocol : "tcp",
                       p->protocol ? p->protocol : "tcp") == 0)
                return bl_err(BOXLITE_EINVAL, "host port %u is published twice", p->host_port);
    }
    return 0;
}

static int check_options(const boxlite_box_options *o)
{
    if (o->version != BOXLITE_BOX_OPTIONS_VERSION)
        return bl_err(BOXLITE_EINVAL, "box options of unknown version %u", o->version);
    if (o->cpus > 64)
        return bl_err(BOXLITE_EINVAL, "cpus %u: expected 1-64", o->cpus);
    if (o->memory_mib != 0 && (o->memory_mib < 128 || o->memory_mib > 1024 * 1024))
        return bl_err(BOXLITE_EINVAL, "memory_mib %u: expected 128 MiB or more", o->memory_mib);
    if (o->disk_size_gb > 16384)
        return bl_err(BOXLITE_EINVAL, "disk_size_gb %u is too large", o->disk_size_gb);
    if (o->auto_remove && o->detach)
        return bl_err(BOXLITE_EINVAL,
                      "auto_remove with detach: remove-on-stop is incompatible with a "
                      "detached box");
    if (o->working_dir && o->working_dir[0] != '/')
        return bl_err(BOXLITE_EINVAL, "working_dir \"%s\" is not an absolute path", o->working_dir);
    if (o->n_volumes > 16 || o->n_ports > 64)
        return bl_err(BOXLITE_EINVAL, "too many volumes (max 16) or ports (max 64)");
    if (check_env(o->env) || check_volumes(o) || check_ports(o))
        return BOXLITE_EINVAL;
    if (o->network_disabled && o->allow_net && o->allow_net[0])
        return bl_err(BOXLITE_EINVAL, "allow_net with the network disabled: choose one");
    if (bl_net_specs_check(o->allow_net) != 0)
        return BOXLITE_EINVAL;
    return check_name(o->name);
}

/* ---- handles ---- */

/* Let go of the box's channel: shut it (execs still holding it see it closed) and drop the
 * box's reference. */
static void conn_drop(boxlite_box *box)
{
    if (box->conn)
        shutdown(box->conn->fd, SHUT_RDWR);
    bl_conn_unref(box->conn);
    box->conn = NULL;
}

static void box_release(boxlite_box *box)
{
    conn_drop(box);
    if (box->lifeline_fd >= 0)
        close(box->lifeline_fd);
    bl_box_row_clear(&box->row);
    bl_image_free(box->image);
    free(box->dir);
    free(box->disk);
    free(box);
}

static int box_new(boxlite_box **out, boxlite_runtime *rt, const char *id)
{
    boxlite_box *box = calloc(1, sizeof(*box));

    if (!box)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    box->rt = rt;
    box->lifeline_fd = -1;
    box->dir = bl_strdupf("%s/boxes/%s", rt->home, id);
    box->disk = bl_strdupf("%s/boxes/%s/disk.qcow2", rt->home, id);
    if (!box->dir || !box->disk) {
        box_release(box);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    *out = box;
    return 0;
}

int bl_box_reload(boxlite_box *box);

static int reload(boxlite_box *box)
{
    return bl_box_reload(box);
}

void bl_box_mac(const char *id, char out[18])
{
    uint32_t h = 2166136261u;

    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

int bl_box_running(boxlite_box *box)
{
    return is_live_state(box->row.state) && bl_monitor_alive(box->rt->home, box->row.id);
}

int bl_box_reload(boxlite_box *box)
{
    struct bl_box_row row;
    int rc = bl_db_box_get(box->rt->db, box->row.id, &row);

    if (rc == BOXLITE_ENOTFOUND)
        box->removed = 1;
    if (rc == 0) {
        bl_box_row_clear(&box->row);
        box->row = row;
    }
    return rc;
}

/* ---- the image a box is pinned to ---- */

/* Fill in what the row does not say yet: the base from the disk chain; the config from the
 * base's digest (a pulled or imported base is named by its config digest), "" for the
 * built-in default, else the image of that name in the store (no pull). */
int bl_box_pin(boxlite_box *box)
{
    struct bl_box_row *r = &box->row;
    char *rootfs = r->image_rootfs ? strdup(r->image_rootfs) : NULL;
    char *id = r->image_id ? strdup(r->image_id) : NULL;
    int rc = 0;

    if (r->image_id && r->image_rootfs)
        goto out;
    if (!rootfs)
        rc = bl_disk_rootfs(box->disk, &rootfs);
    if (rc == 0 && !id && strcmp(r->image, "default") == 0)
        id = strdup("");
    else if (rc == 0 && !id && *rootfs) {
        char digest[72];
        snprintf(digest, sizeof(digest), "sha256:%s", rootfs);
        id = bl_store_has_blob(box->rt->home, digest) ? strdup(digest) : NULL;
    }
    if (rc == 0 && !id && bl_image_find_config(&id, box->rt, r->image) != 0)
        bl_err_clear(); /* not in the store: pinned on first use (bl_box_image) */
    if (rc == 0)
        rc = bl_db_box_set_image(box->rt->db, r->id, id, rootfs);
    if (rc == 0) {
        free(r->image_id);
        free(r->image_rootfs);
        r->image_id = id;
        r->image_rootfs = rootfs;
        id = rootfs = NULL;
    }
out:
    free(id);
    free(rootfs);
    return rc;
}

void bl_box_pin_all(boxlite_runtime *rt)
{
    char **ids = NULL;

    if (bl_db_box_unpinned(rt->db, &ids) != 0)
        return;
    for (size_t i = 0; ids[i]; i++) {
        boxlite_box *box = NULL;
        if (boxlite_box_get(&box, rt, ids[i]) == 0) /* get pins */
            boxlite_box_free(box);
    }
    bl_strv_free(ids);
    bl_err_clear();
}

int bl_box_image(boxlite_box *box, struct bl_image **out)
{
    struct bl_box_row *r = &box->row;
    struct bl_image *img = NULL;
    int rc = 0;

    if (box->image)
        goto out;
    rc = bl_box_pin(box);
    if (rc == 0 && !r->image_id) {
        /* an imported box whose image is not in the store: the one time it is resolved */
        rc = bl_image_open(&img, box->rt, r->image);
        if (rc == 0)
            rc = bl_db_box_set_image(box->rt->db, r->id, img->id, r->image_rootfs);
        if (rc == 0)
            r->image_id = strdup(img->id);
        if (rc == 0 && !r->image_id)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
        bl_image_free(img);
    }
    if (rc == 0)
        rc = bl_image_open_pinned(&box->image, box->rt, r->image, r->image_id, r->image_rootfs);
out:
    if (rc == 0)
        *out = box->image;
    return rc;
}

/* ---- create / get ---- */

static int make_disk(boxlite_box *box, const char *base, unsigned size_gb)
{
    char *backing = bl_strdupf("backing_file=%s,backing_fmt=raw", base);
    char *size = size_gb ? bl_strdupf("%uG", size_gb) : NULL;
    const char *argv[] = {"qemu-img", "create", "-q",      "-f", "qcow2",
                          "-o",       backing,  box->disk, size, NULL};
    struct stat st;
    int rc = 0;

    if (!backing || (size_gb && !size))
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    else if (stat(base, &st) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "stat %s", base);
    else if (size_gb && (uint64_t)size_gb << 30 < (uint64_t)st.st_size)
        rc = bl_err(BOXLITE_EINVAL, "disk_size_gb %u is smaller than the image (%lld MiB)", size_gb,
                    (long long)(st.st_size >> 20));
    if (rc == 0)
        rc = bl_run_tool(argv);
    free(backing);
    free(size);
    return rc;
}

static char **encode_ports(const boxlite_box_options *o)
{
    char **v = calloc(4 * o->n_ports + 1, sizeof(*v));
    int ok = v != NULL;

    for (size_t i = 0; ok && i < o->n_ports; i++) {
        const boxlite_port *p = &o->ports[i];
        v[4 * i] = strdup(p->protocol ? p->protocol : "tcp");
        v[4 * i + 1] = strdup(p->host_ip ? p->host_ip : "127.0.0.1");
        v[4 * i + 2] = bl_strdupf("%u", p->host_port);
        v[4 * i + 3] = bl_strdupf("%u", p->guest_port);
        ok = v[4 * i] && v[4 * i + 1] && v[4 * i + 2] && v[4 * i + 3];
    }
    if (!ok) {
        for (size_t i = 0; v && i < 4 * o->n_ports; i++)
            free(v[i]);
        free(v);
        v = NULL;
    }
    return v;
}

static char **encode_volumes(const boxlite_box_options *o)
{
    char **v = calloc(3 * o->n_volumes + 1, sizeof(*v));
    int ok = v != NULL;

    for (size_t i = 0; ok && i < o->n_volumes; i++) {
        const boxlite_volume *vol = &o->volumes[i];
        v[3 * i] = strdup(vol->read_only ? "ro" : "rw");
        v[3 * i + 1] = realpath(vol->host_path, NULL);
        v[3 * i + 2] = strdup(vol->guest_path);
        ok = v[3 * i] && v[3 * i + 1] && v[3 * i + 2];
    }
    if (!ok) {
        for (size_t i = 0; v && i < 3 * o->n_volumes; i++)
            free(v[i]);
        free(v);
        v = NULL;
    }
    return v;
}

static int fill_row(struct bl_box_row *r, const boxlite_box_options *o, const char *image)
{
    char now[32];

    bl_rfc3339_now(now);
    r->name = o->name ? strdup(o->name) : NULL;
    r->image = strdup(image);
    r->state = strdup("configured");
    r->created_at = strdup(now);
    r->reason = strdup("");
    r->cpus = o->cpus ? o->cpus : 1;
    r->memory_mib = o->memory_mib ? o->memory_mib : DEFAULT_MEMORY_MIB;
    r->disk_size_gb = o->disk_size_gb;
    r->auto_remove = o->auto_remove;
    r->detach = o->detach;
    r->env = o->env ? bl_strv_dup(o->env) : NULL;
    r->entrypoint = o->entrypoint ? bl_strv_dup(o->entrypoint) : NULL;
    r->cmd = o->cmd ? bl_strv_dup(o->cmd) : NULL;
    r->workdir = o->working_dir ? strdup(o->working_dir) : NULL;
    r->user = o->user ? strdup(o->user) : NULL;
    r->network_disabled = o->network_disabled;
    r->ports = encode_ports(o);
    r->volumes = encode_volumes(o);
    r->allow_net = o->allow_net ? bl_strv_dup(o->allow_net) : NULL;
    if (!r->ports || !r->volumes || (o->allow_net && !r->allow_net) || (o->name && !r->name) ||
        !r->image || !r->state || !r->created_at || !r->reason || (o->env && !r->env) ||
        (o->entrypoint && !r->entrypoint) || (o->cmd && !r->cmd) ||
        (o->working_dir && !r->workdir) || (o->user && !r->user))
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}

BOXLITE_API int boxlite_box_create(boxlite_box **out, boxlite_runtime *rt,
                                   const boxlite_box_options *opts)
{
    boxlite_box_options defaults = BOXLITE_BOX_OPTIONS_INIT, v2 = BOXLITE_BOX_OPTIONS_INIT;
    struct bl_image *img = NULL;
    boxlite_box *box = NULL;
    char id[13];
    int rc, made_dir = 0;

    bl_err_clear();
    if (!out || !rt)
        return bl_err(BOXLITE_EINVAL, "box create: out and rt are required");
    opts = opts ? opts : &defaults;
    if (opts->version == 1) { /* a caller built before allow_net: its struct ends before it */
        memcpy(&v2, opts, offsetof(boxlite_box_options, allow_net));
        v2.version = BOXLITE_BOX_OPTIONS_VERSION;
        opts = &v2;
    }
    rc = check_options(opts);
    if (rc == 0)
        rc = bl_random_id(id);
    if (rc == 0)
        rc = bl_image_open(&img, rt, opts->image);
    if (rc == 0)
        rc = box_new(&box, rt, id);
    if (rc != 0)
        goto out;
    memcpy(box->row.id, id, sizeof(id));
    box->image = img;
    img = NULL;
    rc = fill_row(&box->row, opts, box->image->ref);
    if (rc == 0) {
        box->row.image_id = strdup(box->image->id);
        box->row.image_rootfs = strdup(box->image->rootfs);
        if (!box->row.image_id || !box->row.image_rootfs)
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc != 0)
        goto out;
    if (mkdir(box->dir, 0700) != 0) {
        rc = bl_err_errno(bl_code_from_errno(errno), errno, "create %s", box->dir);
        goto out;
    }
    made_dir = 1;
    rc = make_disk(box, box->image->base_path, opts->disk_size_gb);
    if (rc == 0)
        rc = bl_db_box_insert(rt->db, &box->row);
out:
    bl_image_free(img);
    if (rc != 0) {
        if (made_dir)
            bl_rm_rf(box->dir);
        if (box)
            box_release(box);
        bl_err_wrap(rc, "create box");
    } else {
        *out = box;
    }
    return rc;
}

BOXLITE_API int boxlite_box_get(boxlite_box **out, boxlite_runtime *rt, const char *id_or_name)
{
    struct bl_box_row row;
    boxlite_box *box = NULL;
    int rc;

    bl_err_clear();
    if (!out || !rt || !id_or_name)
        return bl_err(BOXLITE_EINVAL, "box get: bad arguments");
    rc = bl_db_box_get(rt->db, id_or_name, &row);
    if (rc == 0)
        rc = box_new(&box, rt, row.id);
    if (rc != 0) {
        if (rc != BOXLITE_ENOTFOUND)
            bl_err_wrap(rc, "get box %s", id_or_name);
        return rc;
    }
    box->row = row;
    if (access(box->dir, F_OK) != 0) /* a crash between its row and its directory */
        bl_box_repair_new(rt, NULL);
    if ((!row.image_id || !row.image_rootfs) && bl_box_pin(box) != 0)
        bl_err_clear(); /* retried on first use, which reports it */
    *out = box;
    return 0;
}

/* ---- repair ---- */

/* A box the store calls running whose monitor is gone: record it as failed. 1 when so. */
static int repair_row(boxlite_runtime *rt, const struct bl_box_row *row, struct bl_repair *rp)
{
    if (!is_live_state(row->state) || bl_monitor_alive(rt->home, row->id))
        return 0;
    if (bl_repair_note(rp, 1, row->id, "recorded %s, but its monitor is gone", row->state))
        bl_box_transition(rt->db, row->id, BL_BOX_FAILED, 0, 0,
                          "the box monitor (boxlite-shim) died; the VM was stopped");
    return 1;
}

/* Everything about one box that doctor checks (box from its row, not live). */
static void doctor_box(boxlite_box *box, struct bl_repair *rp)
{
    struct stat st;

    if (stat(box->dir, &st) != 0) {
        bl_repair_note(rp, 0, box->row.id, "recorded, but its directory %s is gone", box->dir);
        return;
    }
    if ((!box->row.image_id || !box->row.image_rootfs) &&
        bl_repair_note(rp, 1, box->row.id, "not pinned to its image yet") && bl_box_pin(box) != 0)
        bl_repair_note(rp, 0, box->row.id, "cannot be pinned: %s", boxlite_error_last());
    if (box->row.image_rootfs && *box->row.image_rootfs) {
        char *base = bl_strdupf("%s/images/rootfs/%s.ext4", box->rt->home, box->row.image_rootfs);
        if (base && access(base, R_OK) != 0)
            bl_repair_note(rp, 0, box->row.id, "the image base its disk rests on is gone: %s",
                           base);
        free(base);
    }
    bl_snapshot_repair(box, rp);
}

void bl_box_doctor(boxlite_runtime *rt, struct bl_repair *rp)
{
    struct bl_box_row *rows = NULL;
    size_t n = 0;

    bl_box_repair_new(rt, rp); /* first: a half-made box may be finished */
    if (bl_db_box_list(rt->db, &rows, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        boxlite_box *box = NULL;
        repair_row(rt, &rows[i], rp);
        if (boxlite_box_get(&box, rt, rows[i].id) == 0 && !is_live_state(box->row.state))
            doctor_box(box, rp);
        boxlite_box_free(box);
    }
    bl_box_rows_free(rows, n);
    bl_err_clear();
}

/* ---- start ---- */

static int boot_timeout_ms(void)
{
    const char *env = getenv("BOXLITE_BOOT_TIMEOUT_MS");
    long v = env ? strtol(env, NULL, 10) : 0;

    return v > 0 && v < 3600000 ? (int)v : BOOT_TIMEOUT_MS;
}

static int attach(boxlite_box *box)
{
    char label[64];
    int fd = -1;
    int rc;

    if (box->conn && !box->conn->closed)
        return 0;
    conn_drop(box);
    box->conn = NULL;
    rc = bl_monitor_connect(&fd, box->dir);
    snprintf(label, sizeof(label), "box %s", box->row.id);
    if (rc == 0)
        rc = bl_conn_open(&box->conn, fd, label);
    if (rc == 0)
        rc = bl_conn_wait_hello(box->conn, bl_now_ms() + 10000, NULL, NULL);
    if (rc != 0) {
        conn_drop(box);
        box->conn = NULL;
    }
    return rc;
}

/* A published host port that something already holds is a clear error before booting
 * (QEMU would only say "could not set up host forwarding rule"). */
static int check_ports_free(const struct bl_box_row *r)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && r->ports && r->ports[i] && r->ports[i + 3]; i += 4) {
        int udp = strcmp(r->ports[i], "udp") == 0;
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int one = 1;
        int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        sa.sin_port = htons((uint16_t)atoi(r->ports[i + 2]));
        inet_pton(AF_INET, r->ports[i + 1], &sa.sin_addr);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            rc = bl_err_errno(BOXLITE_EEXISTS, errno,
                              "publish %s:%s->%s/%s: the host port is "
                              "not available",
                              r->ports[i + 1], r->ports[i + 2], r->ports[i + 3], r->ports[i]);
        if (fd >= 0)
            close(fd);
    }
    return rc;
}

static int check_volumes_exist(const struct bl_box_row *r)
{
    struct stat st;

    for (size_t i = 0; r->volumes && r->volumes[i] && r->volumes[i + 2]; i += 3)
        if (stat(r->volumes[i + 1], &st) != 0 || !S_ISDIR(st.st_mode))
            return bl_err(BOXLITE_ENOTFOUND, "volume %s (for %s) is no longer a directory",
                          r->volumes[i + 1], r->volumes[i + 2]);
    return 0;
}

/* The jail bind-mounts the console file, so it must exist before QEMU opens it. */
static int vm_argv(boxlite_box *box, char ***out, char ***jail_out, int *kvm_out)
{
    struct bl_vm_config cfg = {0};
    char *qemu = NULL, *kernel = NULL, *initrd = NULL, *console = NULL, *disk = NULL;
    const char *why_tcg = NULL;
    char mac[18];
    int rc;

    rc = bl_vmm_pick_accel(&cfg.kvm, &why_tcg, box->rt->accel);
    if (rc == 0 && cfg.kvm && box->rt->kvm_broken) {
        cfg.kvm = 0;
        why_tcg = NULL; /* already said */
    }
    if (rc == 0)
        rc = bl_find_program(&qemu, "qemu-system-x86_64", "BOXLITE_QEMU");
    if (rc == 0)
        rc = bl_runtime_guest_file(&kernel, box->rt, "vmlinux");
    if (rc == 0)
        rc = bl_runtime_guest_file(&initrd, box->rt, "initramfs.cpio.gz");
    console = bl_strdupf("%s/console.sock", box->dir); /* the shim's: src/shim/console.c */
    if (rc == 0 && !console)
        rc = BOXLITE_ENOMEM;
    if (rc == 0 && why_tcg && !box->rt->accel_noticed) {
        box->rt->accel_noticed = 1;
        bl_log(box->rt, BL_LOG_WARN, "KVM unavailable (%s): using " BL_TCG_NOTICE, why_tcg);
    }
    cfg.qemu = qemu;
    cfg.kernel = kernel;
    cfg.initrd = initrd;
    if (rc == 0)
        rc = bl_box_layerize(box);
    disk = rc == 0 ? realpath(box->disk, NULL) : NULL;
    if (rc == 0 && !disk)
        rc = bl_err_errno(BOXLITE_EIO, errno, "resolve %s", box->disk);
    cfg.disk = disk;
    cfg.console = console;
    cfg.hostname = box->row.name ? box->row.name : box->row.id;
    bl_box_mac(box->row.id, mac);
    cfg.mac = mac;
    cfg.incoming = box->incoming != NULL;
    cfg.cpus = box->row.cpus;
    cfg.memory_mib = box->row.memory_mib;
    cfg.network_disabled = box->row.network_disabled;
    cfg.ports = box->row.network_disabled ? NULL : box->row.ports;
    cfg.volumes = box->row.volumes;
    if (rc == 0)
        rc = check_ports_free(&box->row);
    if (rc == 0)
        rc = check_volumes_exist(&box->row);
    if (rc == 0)
        rc = bl_vmm_argv(out, &cfg);
    if (rc == 0)
        rc = bl_vmm_jail_specs(jail_out, &cfg);
    *kvm_out = cfg.kvm;
    free(disk);
    free(qemu);
    free(kernel);
    free(initrd);
    free(console);
    return rc;
}

/* Boot once; *kvm_out says which accelerator was tried, *code_out the monitor's report code
 * (BL_SHIM_E_QEMU_EXITED: QEMU ended by itself during the boot). The accelerator a box booted
 * with is kept in its row (box info's accel). */
static int boot_once(boxlite_box *box, int detached, int *kvm_out, enum bl_shim_code *code_out)
{
    struct bl_monitor_start m = {0};
    char **argv = NULL, **jail = NULL;
    int life[2] = {-1, -1};
    int rc;

    *code_out = BL_SHIM_E_SETUP;
    rc = vm_argv(box, &argv, &jail, kvm_out);
    if (rc == 0 && !detached && pipe2(life, O_CLOEXEC) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "pipe");
    if (rc != 0)
        goto out;
    m.home = box->rt->home;
    m.id = box->row.id;
    m.qemu_argv = argv;
    m.lifeline_fd = life[0];
    m.auto_remove = box->row.auto_remove;
    m.boot_timeout_ms = boot_timeout_ms();
    m.incoming = box->incoming;
    m.jail = jail;
    rc = bl_monitor_start(code_out, &m);
    if (rc == 0)
        rc = bl_db_box_set_accel(box->rt->db, box->row.id, *kvm_out ? "kvm" : "tcg");
    if (rc == 0) {
        box->lifeline_fd = life[1];
        life[1] = -1;
        rc = attach(box);
    }
out:
    if (life[0] >= 0)
        close(life[0]);
    if (life[1] >= 0)
        close(life[1]);
    bl_strv_free(argv);
    bl_strv_free(jail);
    return rc;
}

/* Boot; when KVM was picked by itself and QEMU cannot run under it (a broken nested setup
 * opens /dev/kvm fine and then aborts), say so once and boot under TCG instead. When KVM is
 * required, that failure is the answer: no fallback. */
static int boot(boxlite_box *box, int detached)
{
    int required = bl_vmm_kvm_required(box->rt->accel);
    struct bl_image *img = NULL;
    int kvm = 0;
    enum bl_shim_code code = BL_SHIM_E_SETUP;
    int rc = bl_box_image(box, &img); /* the image must still be there */

    if (rc == 0)
        rc = boot_once(box, detached, &kvm, &code);
    if (rc != 0 && kvm && code == BL_SHIM_E_QEMU_EXITED && required)
        rc = bl_err_wrap(rc, "KVM is required and QEMU could not run under it (no fallback to "
                             "TCG emulation)");
    if (rc != 0 && kvm && code == BL_SHIM_E_QEMU_EXITED && !required) {
        /* Only the notice reads QEMU's words: its first message is the reason
         * ("qemu-system-x86_64: <why> qemu-system-..."). */
        const char *tag = "qemu-system-x86_64: ";
        const char *why = strstr(boxlite_error_last(), tag);
        const char *next;
        why = why ? why + strlen(tag) : boxlite_error_last();
        next = strstr(why, " qemu-system-x86_64:");
        bl_log(box->rt, BL_LOG_WARN, "KVM is unusable here (QEMU: %.*s): using " BL_TCG_NOTICE,
               (int)(next ? (size_t)(next - why) : strlen(why)), why);
        box->rt->kvm_broken = 1;
        bl_box_transition(box->rt->db, box->row.id, BL_BOX_CONFIGURED, 0, 0, "");
        rc = boot_once(box, detached, &kvm, &code);
    }
    return rc;
}

/* One starter at a time per box, across processes. */
int bl_box_lock(boxlite_box *box, int *fd_out)
{
    char *path = bl_strdupf("%s/lock", box->dir);
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    int rc = 0;

    if (fd < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", path ? path : box->dir);
    while (rc == 0 && flock(fd, LOCK_EX) != 0)
        if (errno != EINTR)
            rc = bl_err_errno(BOXLITE_EIO, errno, "lock %s", path);
    free(path);
    if (rc == 0)
        *fd_out = fd;
    else if (fd >= 0)
        close(fd);
    return rc;
}

static int start_locked(boxlite_box *box, int detached)
{
    int rc = reload(box);

    if (rc != 0)
        return rc;
    if (is_live_state(box->row.state) && bl_monitor_alive(box->rt->home, box->row.id)) {
        if (strcmp(box->row.state, "stopping") == 0)
            return bl_err(BOXLITE_ESTATE, "box %s is stopping", box->row.id);
        return attach(box);
    }
    repair_row(box->rt, &box->row, NULL);
    bl_snapshot_repair_locked(box); /* what a crash left in its snapshots and layers */
    return boot(box, detached || box->row.detach);
}

static int start(boxlite_box *box, int detached)
{
    int lock_fd = -1;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (box->removed)
        return bl_err(BOXLITE_ENOTFOUND, "box %s has been removed", box->row.id);
    if (box->conn && !box->conn->closed)
        return 0;
    rc = bl_box_lock(box, &lock_fd);
    if (rc == 0) {
        rc = start_locked(box, detached);
        close(lock_fd);
    }
    reload(box);
    if (rc != 0)
        bl_err_wrap(rc, "start box %s", box->row.id);
    return rc;
}

BOXLITE_API int boxlite_box_start(boxlite_box *box)
{
    return start(box, 0);
}

BOXLITE_API int boxlite_box_start_detached(boxlite_box *box)
{
    return start(box, 1);
}

int bl_box_conn(boxlite_box *box, struct bl_conn **out)
{
    int rc = 0;

    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (!box->conn || box->conn->closed) {
        rc = reload(box);
        if (rc == 0 && strcmp(box->row.state, "running") != 0)
            rc = bl_err(BOXLITE_ESTATE, "box %s is %s", box->row.id, box->row.state);
        if (rc == 0)
            rc = attach(box);
    }
    if (rc == 0)
        *out = box->conn;
    return rc;
}

/* ---- stop / remove ---- */

static int wait_closed(struct bl_conn *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : bl_now_ms() + timeout_ms;
    struct timespec ts;
    int closed;

    bl_deadline_ts(&ts, timeout_ms < 0 ? bl_now_ms() : deadline);
    pthread_mutex_lock(&c->mu);
    while (!c->closed && bl_now_ms() < deadline)
        if (timeout_ms < 0) /* the public rule: < 0 waits forever */
            pthread_cond_wait(&c->cond, &c->mu);
        else
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    closed = c->closed;
    pthread_mutex_unlock(&c->mu);
    return closed;
}

/* Stop escalation: SHUTDOWN through the monitor, then SIGTERM to the monitor (it kills
 * QEMU), then SIGKILL to both and the store fixed by hand. *killed: 1 when the guest did not
 * power off by itself. BOXLITE_ETIMEOUT when the box still runs after all that. */
static int stop_running(boxlite_box *box, int timeout_ms, int *killed)
{
    int gone = 0;

    if (attach(box) == 0 && bl_conn_send(box->conn, BL_F_SHUTDOWN, 0, NULL, 0) == 0)
        gone = wait_closed(box->conn, timeout_ms);
    if (!gone && bl_monitor_alive(box->rt->home, box->row.id)) {
        *killed = 1;
        kill(box->row.shim_pid, SIGTERM);
        gone = box->conn ? wait_closed(box->conn, KILL_WAIT_MS) : 0;
    }
    if (!gone && bl_monitor_alive(box->rt->home, box->row.id)) {
        *killed = 1;
        kill(box->row.shim_pid, SIGKILL);
        if (box->row.qemu_pid > 0)
            kill(box->row.qemu_pid, SIGKILL);
        bl_box_transition(box->rt->db, box->row.id, BL_BOX_STOPPED, 0, 0,
                          "killed: the box did not stop in time");
    }
    /* The monitor records the end before it closes its clients; wait for that briefly. */
    for (int i = 0; i < 100 && reload(box) == 0 && is_live_state(box->row.state) &&
                    bl_monitor_alive(box->rt->home, box->row.id);
         i++)
        usleep(20000);
    if (!box->removed && is_live_state(box->row.state) &&
        bl_monitor_alive(box->rt->home, box->row.id))
        return bl_err(BOXLITE_ETIMEOUT, "box %s is still running after SIGKILL", box->row.id);
    return 0;
}

BOXLITE_API int boxlite_box_stop_v2(int *killed_out, boxlite_box *box, int timeout_ms)
{
    int killed = 0;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    rc = box->removed ? 0 : reload(box);
    if (rc == 0 && !box->removed && is_live_state(box->row.state))
        rc = stop_running(box, timeout_ms, &killed);
    if (box->lifeline_fd >= 0) {
        close(box->lifeline_fd);
        box->lifeline_fd = -1;
    }
    conn_drop(box);
    box->conn = NULL;
    if (rc == 0 && !box->removed && reload(box) == BOXLITE_ENOTFOUND)
        rc = 0; /* auto_remove: removed by its monitor */
    if (rc == BOXLITE_ENOTFOUND) {
        box->removed = 1;
        rc = 0;
    }
    if (rc == 0) {
        bl_err_clear();
        if (killed_out)
            *killed_out = killed;
    } else {
        bl_err_wrap(rc, "stop box %s", box->row.id);
    }
    return rc;
}

BOXLITE_API int boxlite_box_stop(boxlite_box *box, int timeout_ms)
{
    return boxlite_box_stop_v2(NULL, box, timeout_ms);
}

BOXLITE_API int boxlite_box_remove(boxlite_box *box, int force)
{
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    if (box->removed)
        return 0;
    rc = reload(box);
    if (rc == 0 && is_live_state(box->row.state) && bl_monitor_alive(box->rt->home, box->row.id)) {
        if (!force)
            return bl_err(BOXLITE_ESTATE, "box %s is running: stop it first, or remove with force",
                          box->row.id);
        /* its disk goes next: never while a VM that did not stop may still write it */
        rc = boxlite_box_stop_v2(NULL, box, 2000);
        if (rc != 0)
            return bl_err_wrap(rc, "remove box %s", box->row.id);
    }
    if (!box->removed) {
        char deps[512];
        if (bl_db_box_dependents(box->rt->db, box->row.id, NULL, deps, sizeof(deps)) > 0)
            return bl_err(BOXLITE_ESTATE,
                          "box %s cannot be removed: the disks of boxes %s rest on its "
                          "snapshots (remove them first)",
                          box->row.id, deps);
        /* rows first: a failure leaves the box whole, or gone from the store with at worst
         * files behind, never a row whose directory is half removed */
        rc = bl_db_snap_delete_box(box->rt->db, box->row.id);
        if (rc == 0)
            rc = bl_db_box_delete(box->rt->db, box->row.id);
        if (rc == BOXLITE_ENOTFOUND)
            rc = 0;
        if (rc == 0)
            rc = bl_rm_rf(box->dir);
    }
    if (rc == 0)
        box->removed = 1;
    else
        bl_err_wrap(rc, "remove box %s", box->row.id);
    return rc;
}

BOXLITE_API void boxlite_box_free(boxlite_box *box)
{
    if (!box)
        return;
    box_release(box); /* closing the lifeline stops a box this handle booted */
}

/* ---- info, stats, console, command ---- */

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
    snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
    out->cpus = r->cpus;
    out->memory_mib = r->memory_mib;
    out->disk_size_gb = r->disk_size_gb;
    out->pid = is_live_state(r->state) ? r->shim_pid : 0;
    out->qemu_pid = is_live_state(r->state) ? r->qemu_pid : 0;
    out->detach = r->detach;
    out->auto_remove = r->auto_remove;
    out->network_disabled = r->network_disabled;
    snprintf(out->accel, sizeof(out->accel), "%s", r->accel);
    for (size_t i = 0; r->ports && r->ports[i] && r->ports[i + 3]; i += 4) {
        size_t n = strlen(out->ports);
        snprintf(out->ports + n, sizeof(out->ports) - n, "%s%s:%s->%s/%s", n ? ", " : "",
                 r->ports[i + 1], r->ports[i + 2], r->ports[i + 3], r->ports[i]);
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
                          : reload(box);
    if (rc == 0 && repair_row(box->rt, &box->row, NULL)) /* shown as it is now */
        rc = reload(box);
    if (rc == 0)
        row_to_info(out, &box->row);
    return rc;
}

BOXLITE_API int boxlite_box_list(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt)
{
    struct bl_box_row *rows = NULL;
    boxlite_box_info *infos = NULL;
    size_t n = 0;
    int rc;

    bl_err_clear();
    if (!out || !count_out || !rt)
        return bl_err(BOXLITE_EINVAL, "box list: bad arguments");
    bl_box_repair_new(rt, NULL); /* one readdir: boxes a crash left half made, shown whole */
    rc = bl_db_box_list(rt->db, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (repair_row(rt, &rows[i], NULL)) { /* shown as it is now */
            bl_box_rows_free(rows, n);
            rc = bl_db_box_list(rt->db, &rows, &n);
            break;
        }
    }
    if (rc != 0)
        return rc;
    infos = calloc(n ? n : 1, sizeof(*infos));
    if (!infos)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    for (size_t i = 0; infos && i < n; i++)
        row_to_info(&infos[i], &rows[i]);
    bl_box_rows_free(rows, n);
    if (rc == 0) {
        *out = infos;
        *count_out = n;
    }
    return rc;
}

static uint64_t qcow2_virtual_size(const char *path)
{
    unsigned char h[32];
    uint64_t size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0 && pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && memcmp(h, "QFI\xfb", 4) == 0)
        for (int i = 24; i < 32; i++)
            size = size << 8 | h[i];
    if (fd >= 0)
        close(fd);
    return size;
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
                          : reload(box);
    if (rc == 0 && strcmp(box->row.state, "running") != 0)
        rc = bl_err(BOXLITE_ESTATE, "box %s is %s", box->row.id, box->row.state);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->version = BOXLITE_BOX_STATS_VERSION;
    proc_stats(box->row.qemu_pid, out);
    if (stat(box->disk, &st) == 0)
        out->disk_bytes = (uint64_t)st.st_blocks * 512;
    out->disk_size_bytes = qcow2_virtual_size(box->disk);
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
