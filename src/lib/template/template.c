/* template.c — warm templates: the key of a box shape, finding, building (under a lock, written
 * whole or not at all), restoring and attaching, discarding a bad one; and the Templates API
 * (list, remove, prune, warm). Layout and rules: docs/templates.md.
 *
 * $BOXLITE_HOME/templates/<id>/memory  device state (the shim's migration, as a full
 *                                      snapshot's memory file)
 * $BOXLITE_HOME/templates/<id>/ram     guest RAM (sparse), copied by each box restored from
 *                                      it (or mapped privately: BOXLITE_SHARED_RAM)
 * $BOXLITE_HOME/templates/<id>/key     the key text, then "bytes N" (memory's size) and
 *                                      "created T"; written last: no key, no template
 * $BOXLITE_HOME/templates/.locks/<id>  flock: one builder per template across processes
 * $BOXLITE_HOME/templates/.build/<id>.qcow2  the blank disk a template boots on while built */
#include "template.h"

#include "api.h"
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "disk.h"
#include "error.h"
#include "monitor.h"
#include "runtime.h"
#include "spare.h"
#include "store.h"
#include "util.h"
#include "vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FORMAT   "boxlite-template 2" /* 2: RAM in its own file, ram */
#define KEY_MAX      8192
#define SAVE_MS      600000
#define LOCK_WAIT_MS 300000 /* another process's cold boot and save, at worst */
#define DEAD_WAIT_MS 10000
#define PLACEHOLDER  "1M" /* any size: the attach tells the guest the box disk's */

int bl_templates_enabled(void)
{
    const char *v = getenv("BOXLITE_TEMPLATES");

    return !(v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "no") == 0));
}

/* ---- the key ---- */

/* "name path size mtime-ns inode": a rebuilt kernel, agent (initramfs) or QEMU changes it. */
static char *fingerprint(const char *name, const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return bl_strdupf("%s %s missing\n", name, path);
    return bl_strdupf("%s %s %lld %lld.%09ld %llu\n", name, path, (long long)st.st_size,
                      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                      (unsigned long long)st.st_ino);
}

static char *shape_key(const struct bl_vm_config *c)
{
    char *k = fingerprint("kernel", c->kernel);
    char *i = fingerprint("initrd", c->initrd);
    char *q = fingerprint("qemu", c->qemu);
    char *cmdline = bl_vmm_template_cmdline(c);
    size_t nvol = 0;
    char *key = NULL;

    while (c->volumes && c->volumes[3 * nvol] && c->volumes[3 * nvol + 1] &&
           c->volumes[3 * nvol + 2])
        nvol++;
    if (k && i && q && cmdline)
        key = bl_strdupf(KEY_FORMAT "\n%s%s%saccel %s\ncpus %u\nmemory %u\nnetwork %d\n"
                                    "volumes %zu\ncmdline %s\n",
                         k, i, q, c->kvm ? "kvm" : "tcg", c->cpus, c->memory_mib,
                         !c->network_disabled, nvol, cmdline);
    free(cmdline);
    free(k);
    free(i);
    free(q);
    return key;
}

static int set_key(struct bl_tmpl *t, boxlite_runtime *rt, char *key)
{
    char digest[72];

    t->key = key;
    if (!key)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    bl_sha256_buf(digest, key, strlen(key));
    snprintf(t->id, sizeof(t->id), "%s", digest + strlen("sha256:"));
    t->dir = bl_strdupf("%s/templates/%s", rt->home, t->id);
    t->memory = bl_strdupf("%s/templates/%s/memory", rt->home, t->id);
    return t->dir && t->memory ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
}

/* ---- a template on disk ---- */

/* NULL when dir holds a whole template made for key (NULL: any key); else why not (static). */
static const char *unusable(const char *dir, const char *key, char **key_out)
{
    char *path = bl_strdupf("%s/key", dir), *mem = bl_strdupf("%s/memory", dir);
    char *ram = bl_strdupf("%s/ram", dir), *text = NULL, *bytes;
    const char *why = NULL;
    unsigned long long want = 0;
    struct stat st;

    if (!path || !mem || bl_read_file(&text, NULL, path, KEY_MAX) != 0)
        why = "not finished";
    else if (key && strncmp(text, key, strlen(key)) != 0)
        why = "made for another kernel, agent, QEMU or shape";
    else if (!(bytes = strstr(text, "\nbytes ")) || sscanf(bytes, "\nbytes %llu", &want) != 1)
        why = "its key file is damaged";
    else if (stat(mem, &st) != 0 || (unsigned long long)st.st_size != want)
        why = "its memory file is missing or truncated";
    else if (!ram || stat(ram, &st) != 0)
        why = "its RAM file is missing";
    bl_err_clear();
    if (key_out && text) {
        *key_out = text;
        text = NULL;
    }
    free(text);
    free(path);
    free(mem);
    free(ram);
    return why;
}

static int lock_path(char **out, boxlite_runtime *rt, const char *id)
{
    char *locks = bl_strdupf("%s/templates/.locks", rt->home);
    int rc = locks ? bl_mkdir_p(locks, 0700) : BOXLITE_ENOMEM;

    if (rc == 0) {
        *out = bl_strdupf("%s/%s", locks, id);
        rc = *out ? 0 : BOXLITE_ENOMEM;
    }
    free(locks);
    return rc == 0 ? 0 : bl_err(rc, "create %s/templates/.locks", rt->home);
}

/* Take the template's lock, waiting (bounded) for a process that builds it. */
static int take_lock(struct bl_tmpl *t, boxlite_runtime *rt)
{
    char *path = NULL;
    int64_t end = bl_now_ms() + LOCK_WAIT_MS;
    int rc = lock_path(&path, rt, t->id);
    int fd = rc == 0 ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;

    if (rc == 0 && fd < 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", path);
    while (rc == 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            rc = bl_err_errno(BOXLITE_EIO, errno, "lock %s", path);
        else if (bl_now_ms() > end)
            rc = bl_err(BOXLITE_ETIMEOUT, "template %.12s: another process builds it", t->id);
        else
            usleep(50000);
    }
    free(path);
    if (rc == 0)
        t->lock_fd = fd;
    else if (fd >= 0)
        close(fd);
    return rc;
}

static void drop_lock(struct bl_tmpl *t)
{
    if (t->lock_fd >= 0)
        close(t->lock_fd);
    t->lock_fd = -1;
}

/* ---- prepare, finish, discard ---- */

static int keep_attach_args(struct bl_tmpl *t, const struct bl_vm_config *cfg)
{
    int rc;

    bl_strv_free(t->volume_specs); /* a former try's */
    t->volume_specs = NULL;
    free(t->disk);
    rc = bl_vmm_volume_specs(&t->volume_specs, cfg);
    t->disk = strdup(cfg->disk);
    t->network = !cfg->network_disabled;
    return rc == 0 && t->disk ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
}

/* A blank qcow2 for the template's boot, so that nothing of a box (not even the sectors the
 * kernel's partition scan reads) is in a template that every box of its shape restores. */
static int make_placeholder(struct bl_tmpl *t, boxlite_runtime *rt)
{
    char *dir = bl_strdupf("%s/templates/.build", rt->home);
    int rc = dir ? bl_mkdir_p(dir, 0700) : BOXLITE_ENOMEM;

    if (t->placeholder) /* a former try's (under another accelerator) */
        unlink(t->placeholder);
    free(t->placeholder);
    t->placeholder = rc == 0 ? bl_strdupf("%s/%s.qcow2", dir, t->id) : NULL;
    if (rc == 0 && !t->placeholder)
        rc = BOXLITE_ENOMEM;
    if (rc == 0) {
        const char *argv[] = {"qemu-img", "create",       "-q",        "-f",
                              "qcow2",    t->placeholder, PLACEHOLDER, NULL};
        unlink(t->placeholder);
        rc = bl_run_tool(argv);
    }
    free(dir);
    return rc == 0 ? 0 : bl_err_wrap(rc, "make the blank disk of template %.12s", t->id);
}

int bl_template_prepare(struct bl_tmpl *t, boxlite_box *box, struct bl_vm_config *cfg,
                        const char **incoming_out)
{
    const char *why;
    char *key;
    int rc = 0;

    *incoming_out = NULL;
    t->mode = BL_TMPL_NONE;
    if (!t->wanted)
        return 0;
    key = shape_key(cfg);
    if (t->key && (!key || strcmp(key, t->key) != 0)) { /* a retry under another accelerator */
        drop_lock(t);
        free(t->key);
        free(t->dir);
        free(t->memory);
        t->key = t->dir = t->memory = NULL;
    }
    if (!t->key)
        rc = set_key(t, box->rt, key);
    else
        free(key);
    if (rc == 0 && t->lock_fd < 0) {
        why = unusable(t->dir, t->key, NULL);
        if (why && strcmp(why, "not finished") == 0)
            bl_log(box->rt, BL_LOG_INFO, "no warm template %.12s yet: cold boot, saving one",
                   t->id);
        else if (why)
            bl_log(box->rt, BL_LOG_WARN,
                   "template %.12s is not used (%s): cold boot, rebuilding it", t->id, why);
        if (why && take_lock(t, box->rt) != 0) {
            bl_log(box->rt, BL_LOG_WARN, "%s: cold boot without a template", boxlite_error_last());
            t->wanted = 0;
            bl_err_clear();
            return 0;
        }
    }
    /* holding the lock: built by the process we waited for, or ours to build */
    if (rc == 0 && t->lock_fd >= 0 && !unusable(t->dir, t->key, NULL))
        drop_lock(t);
    if (rc == 0)
        rc = keep_attach_args(t, cfg);
    if (rc != 0)
        return rc;
    t->mode = t->lock_fd >= 0 ? BL_TMPL_BUILD : BL_TMPL_RESTORE;
    if (t->mode == BL_TMPL_BUILD && !t->progress) /* ends in finish, or failed in clear */
        t->progress = bl_progress_begin("building the warm template (first start of this shape)");
    if (t->mode == BL_TMPL_BUILD)
        rc = make_placeholder(t, box->rt);
    if (rc != 0)
        return rc;
    if (t->mode == BL_TMPL_BUILD) /* no byte of any box reaches a template */
        cfg->disk = t->placeholder;
    cfg->template_mode = 1;
    cfg->incoming = t->mode == BL_TMPL_RESTORE;
    if (t->mode == BL_TMPL_RESTORE)
        *incoming_out = t->memory;
    return 0;
}

/* The memory file came from the shim (written whole, renamed); the key is written last. */
static int save(struct bl_tmpl *t, boxlite_box *box)
{
    char *keyfile = bl_strdupf("%s/key", t->dir), *text = NULL;
    char created[32];
    struct stat st;
    int rc = keyfile ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    if (rc == 0) {
        bl_rm_rf(t->dir);
        rc = bl_mkdir_p(t->dir, 0700);
    }
    if (rc == 0)
        rc = bl_conn_monitor(box->conn, BL_MON_TEMPLATE_SAVE, t->id, SAVE_MS);
    if (rc == 0 && stat(t->memory, &st) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "stat %s", t->memory);
    if (rc == 0) {
        bl_rfc3339_now(created);
        text = bl_strdupf("%sbytes %lld\ncreated %s\n", t->key, (long long)st.st_size, created);
        rc = text ? bl_write_file_atomic(keyfile, text, strlen(text), 0600)
                  : bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    if (rc != 0)
        bl_rm_rf(t->dir);
    free(keyfile);
    free(text);
    return rc;
}

/* One round trip: the agent's `attach` does the box's part and the fork's identity fix-up. */
static int attach(struct bl_tmpl *t, boxlite_box *box)
{
    size_t nvol = bl_strv_len((const char *const *)t->volume_specs);
    const char **argv = calloc(nvol + 8, sizeof(*argv));
    struct bl_identity id;
    char bytes[32];
    int rc = argv ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");

    /* the shim resized the guest's disk to this before resuming it (src/shim/main.c) */
    snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)bl_disk_virtual_size(t->disk));
    if (rc == 0) {
        bl_snapshot_identity_args(&id, box, 1); /* last: its clock is the host's now */
        argv[0] = "attach";
        argv[1] = id.argv[1]; /* hostname */
        argv[2] = t->network ? "user" : "none";
        argv[3] = bytes;
        argv[4] = id.argv[2]; /* MAC */
        argv[5] = id.argv[3]; /* entropy */
        argv[6] = id.argv[4]; /* unix ns */
        for (size_t i = 0; i < nvol; i++)
            argv[7 + i] = t->volume_specs[i];
        rc = bl_snapshot_builtin(box, argv);
    }
    free(argv);
    return rc;
}

int bl_template_finish(struct bl_tmpl *t, boxlite_box *box)
{
    int rc = 0;

    if (t->mode == BL_TMPL_NONE)
        return 0;
    if (t->mode == BL_TMPL_BUILD) {
        rc = save(t, box);
        bl_progress_end(t->progress, rc);
        t->progress = 0;
        drop_lock(t);
        if (t->placeholder)
            unlink(t->placeholder);
        return rc == 0 ? BL_TMPL_BUILT : bl_err_wrap(rc, "save template %.12s", t->id);
    }
    rc = attach(t, box); /* with the identity fix-up: RNG state, MAC, hostname, clock */
    return rc == 0 ? 0 : bl_err_wrap(rc, "attach the box to template %.12s", t->id);
}

void bl_template_discard(struct bl_tmpl *t, boxlite_box *box, const char *why)
{
    bl_log(box->rt, BL_LOG_WARN, "template %.12s did not restore (%s): cold boot, rebuilding it",
           t->id, why);
    if (take_lock(t, box->rt) != 0) { /* holding it, we build next */
        t->wanted = 0;
        bl_err_clear();
        return;
    }
    bl_rm_rf(t->dir);
    t->discarded = 1;
}

void bl_template_abort_boot(boxlite_box *box)
{
    int64_t end = bl_now_ms() + DEAD_WAIT_MS;

    if (bl_box_reload(box) == 0 && box->row.shim_pid > 0)
        kill(box->row.shim_pid, SIGKILL); /* QEMU has PDEATHSIG */
    if (box->row.qemu_pid > 0)
        kill(box->row.qemu_pid, SIGKILL);
    /* until both are gone: a QEMU still holding the disk's lock would fail the next boot */
    while ((bl_monitor_alive(box->rt->home, box->row.id) ||
            (box->row.qemu_pid > 0 && kill(box->row.qemu_pid, 0) == 0)) &&
           bl_now_ms() < end)
        usleep(20000);
    if (box->lifeline_fd >= 0)
        close(box->lifeline_fd);
    box->lifeline_fd = -1;
    bl_box_conn_drop(box);
    box->conn = NULL;
    /* any state may become stopped, and a stopped box may run */
    bl_box_transition(box->rt->db, box->row.id, BL_BOX_STOPPED, 0, 0, "");
    bl_err_clear();
}

void bl_template_clear(struct bl_tmpl *t)
{
    bl_progress_end(t->progress, -1); /* a build that never reached finish */
    drop_lock(t);
    free(t->key);
    free(t->dir);
    free(t->memory);
    free(t->disk);
    if (t->placeholder)
        unlink(t->placeholder);
    free(t->placeholder);
    bl_strv_free(t->volume_specs);
    *t = (struct bl_tmpl)BL_TMPL_INIT;
}

/* ---- the Templates API ---- */

/* 1 when every file the key names still has the fingerprint it had. */
static int files_unchanged(const char *key)
{
    static const char *const names[] = {"kernel", "initrd", "qemu"};
    int same = 1;

    for (size_t i = 0; i < 3 && same; i++) {
        char start[16], *line, *end, *path, *now;
        int n = snprintf(start, sizeof(start), "\n%s ", names[i]);
        line = strstr(key, start);
        end = line ? strchr(line + 1, '\n') : NULL;
        path = end ? strndup(line + n, (size_t)(end - line - n)) : NULL;
        /* the path is what comes before the last three fields */
        for (int f = 0; path && f < 3; f++) {
            char *sp = strrchr(path, ' ');
            if (sp)
                *sp = '\0';
        }
        now = path ? fingerprint(names[i], path) : NULL;
        same = now && end && strncmp(line + 1, now, (size_t)(end - line)) == 0;
        free(path);
        free(now);
    }
    return same;
}

static uint64_t dir_bytes(const char *dir)
{
    const char *files[] = {"memory", "ram", "key"};
    uint64_t sum = 0;

    for (size_t i = 0; i < 3; i++) {
        char *p = bl_strdupf("%s/%s", dir, files[i]);
        struct stat st;
        if (p && stat(p, &st) == 0)
            sum += (uint64_t)st.st_blocks * 512;
        free(p);
    }
    return sum + bl_spare_bytes(dir);
}

static void fill_info(boxlite_template_info *o, const char *home, const char *id)
{
    char *dir = bl_strdupf("%s/templates/%s", home, id), *key = NULL, *p;

    memset(o, 0, sizeof(*o));
    o->version = BOXLITE_TEMPLATE_INFO_VERSION;
    snprintf(o->id, sizeof(o->id), "%s", id);
    if (!dir)
        return;
    o->usable = !unusable(dir, NULL, &key) && key && files_unchanged(key);
    o->size = dir_bytes(dir);
    if (key && (p = strstr(key, "\ncpus ")))
        sscanf(p, "\ncpus %u", &o->cpus);
    if (key && (p = strstr(key, "\nmemory ")))
        sscanf(p, "\nmemory %u", &o->memory_mib);
    if (key && (p = strstr(key, "\nnetwork ")))
        sscanf(p, "\nnetwork %d", &o->network);
    if (key && (p = strstr(key, "\nvolumes ")))
        sscanf(p, "\nvolumes %u", &o->volumes);
    if (key && (p = strstr(key, "\naccel ")))
        sscanf(p, "\naccel %7s", o->accel);
    if (key && (p = strstr(key, "\ncreated ")))
        sscanf(p, "\ncreated %31s", o->created_at);
    free(key);
    free(dir);
}

static int is_id(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int by_created(const void *a, const void *b)
{
    const boxlite_template_info *x = a, *y = b;

    return strcmp(x->created_at, y->created_at);
}

BOXLITE_API int boxlite_template_list(boxlite_template_info **out, size_t *count_out,
                                      boxlite_runtime *rt, unsigned version)
{
    boxlite_template_info *v = NULL, *nv;
    char *dir = NULL;
    size_t n = 0;
    struct dirent *e;
    DIR *d = NULL;
    int rc;

    bl_err_clear();
    if (!out || !count_out || !rt)
        return bl_err(BOXLITE_EINVAL, "template list: bad arguments");
    rc = bl_check_version(version, BOXLITE_TEMPLATE_INFO_VERSION, "template info");
    dir = rc == 0 ? bl_strdupf("%s/templates", rt->home) : NULL;
    if (rc == 0 && !dir)
        rc = bl_err(BOXLITE_ENOMEM, "out of memory");
    d = rc == 0 ? opendir(dir) : NULL;
    if (rc == 0 && !d && errno != ENOENT)
        rc = bl_err_errno(BOXLITE_EIO, errno, "open %s", dir);
    while (rc == 0 && d && (e = readdir(d)) != NULL) {
        if (!is_id(e->d_name))
            continue;
        nv = realloc(v, (n + 1) * sizeof(*v));
        if (!nv) {
            rc = bl_err(BOXLITE_ENOMEM, "out of memory");
            break;
        }
        v = nv;
        fill_info(&v[n++], rt->home, e->d_name);
    }
    if (d)
        closedir(d);
    free(dir);
    if (rc != 0) {
        free(v);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof(*v), by_created);
    *out = v ? v : calloc(1, sizeof(*v));
    *count_out = n;
    return *out ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
}

BOXLITE_API void boxlite_template_list_free(boxlite_template_info *list, size_t count)
{
    (void)count;
    free(list);
}

/* Remove one template (its lock taken without waiting: one being built stays). */
static int remove_one(boxlite_runtime *rt, const char *id)
{
    struct bl_tmpl t = BL_TMPL_INIT;
    char *path = NULL;
    int rc = lock_path(&path, rt, id);
    int fd = rc == 0 ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;

    if (rc == 0 && (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0))
        rc = bl_err(BOXLITE_ESTATE, "template %.12s is being built", id);
    t.dir = rc == 0 ? bl_strdupf("%s/templates/%s", rt->home, id) : NULL;
    if (rc == 0 && (!t.dir || bl_rm_rf(t.dir) != 0))
        rc = bl_err(BOXLITE_EIO, "remove template %.12s", id);
    if (rc == 0)
        unlink(path);
    if (fd >= 0)
        close(fd);
    free(path);
    free(t.dir);
    return rc;
}

BOXLITE_API int boxlite_template_remove(boxlite_runtime *rt, const char *id)
{
    boxlite_template_info *v = NULL;
    size_t n = 0, hit = 0, which = 0;
    int rc;

    bl_err_clear();
    if (!rt || !id || strlen(id) < 4)
        return bl_err(BOXLITE_EINVAL, "template rm: give an id (at least 4 characters)");
    rc = boxlite_template_list(&v, &n, rt, BOXLITE_TEMPLATE_INFO_VERSION);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strncmp(v[i].id, id, strlen(id)) == 0) {
            hit++;
            which = i;
        }
    if (rc == 0 && hit != 1)
        rc = bl_err(hit ? BOXLITE_EINVAL : BOXLITE_ENOTFOUND, "template %s: %s", id,
                    hit ? "more than one has that prefix" : "no such template");
    if (rc == 0)
        rc = remove_one(rt, v[which].id);
    free(v);
    return rc;
}

BOXLITE_API int boxlite_template_prune(size_t *removed_out, boxlite_runtime *rt, int all)
{
    boxlite_template_info *v = NULL;
    size_t n = 0, removed = 0;
    int rc;

    bl_err_clear();
    if (!rt)
        return bl_err(BOXLITE_EINVAL, "template prune: bad arguments");
    rc = boxlite_template_list(&v, &n, rt, BOXLITE_TEMPLATE_INFO_VERSION);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((all || !v[i].usable) && remove_one(rt, v[i].id) == 0)
            removed++;
    free(v);
    bl_err_clear();
    if (rc == 0 && removed_out)
        *removed_out = removed;
    return rc;
}

BOXLITE_API int boxlite_template_warm(boxlite_runtime *rt, unsigned cpus, unsigned memory_mib)
{
    boxlite_box_options o = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_box *box = NULL;
    int rc;

    bl_err_clear();
    if (!rt)
        return bl_err(BOXLITE_EINVAL, "template warm: runtime is NULL");
    o.cpus = cpus;
    o.memory_mib = memory_mib;
    rc = boxlite_box_create(&box, rt, &o);
    if (rc == 0)
        rc = boxlite_box_start(box); /* restores the template, or builds it */
    if (box) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", boxlite_error_last());
        boxlite_box_remove(box, 1);
        boxlite_box_free(box);
        if (rc != 0)
            bl_err(rc, "%s", msg);
    }
    return rc == 0 ? 0 : bl_err_wrap(rc, "warm a template (%u cpus, %u MiB)", cpus, memory_mib);
}
