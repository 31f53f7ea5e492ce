/* boxstate.c — the box lifecycle model: state names, the transition table, the one writer
 * of a box's state, the monitor's run lock and its readiness report (boxstate.h). */
#include "boxstate.h"
#include "db.h"
#include "error.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *const names[BL_BOX_STATE_COUNT] = {
    [BL_BOX_CONFIGURED] = "configured", [BL_BOX_RUNNING] = "running",
    [BL_BOX_STOPPING] = "stopping",     [BL_BOX_STOPPED] = "stopped",
    [BL_BOX_FAILED] = "failed",
};

#define BIT(s) (1u << (s))
/* allowed[to]: the states a box may be in to move to `to`.
 * - running: only from a state with no monitor (the monitor's first report); never over a
 *   stopping box.
 * - stopping: only a running box is stopped (a box still booting ends as stopped/failed).
 * - stopped, failed: from anything (the monitor's last word, the library's repair/kill).
 * - configured: a box that ended is reset (the KVM → TCG retry); never a live one. */
static const unsigned allowed[BL_BOX_STATE_COUNT] = {
    [BL_BOX_CONFIGURED] = BIT(BL_BOX_CONFIGURED) | BIT(BL_BOX_STOPPED) | BIT(BL_BOX_FAILED),
    [BL_BOX_RUNNING] = BIT(BL_BOX_CONFIGURED) | BIT(BL_BOX_STOPPED) | BIT(BL_BOX_FAILED),
    [BL_BOX_STOPPING] = BIT(BL_BOX_RUNNING) | BIT(BL_BOX_STOPPING),
    [BL_BOX_STOPPED] = ~0u,
    [BL_BOX_FAILED] = ~0u,
};

const char *bl_box_state_name(enum bl_box_state st)
{
    return (unsigned)st < BL_BOX_STATE_COUNT ? names[st] : "unknown";
}

enum bl_box_state bl_box_state_parse(const char *word)
{
    for (unsigned i = 0; word && i < BL_BOX_STATE_COUNT; i++)
        if (strcmp(word, names[i]) == 0)
            return (enum bl_box_state)i;
    return BL_BOX_FAILED;
}

int bl_box_state_live(enum bl_box_state st)
{
    return st == BL_BOX_RUNNING || st == BL_BOX_STOPPING;
}

int bl_box_transition_ok(enum bl_box_state from, enum bl_box_state to)
{
    if ((unsigned)from >= BL_BOX_STATE_COUNT || (unsigned)to >= BL_BOX_STATE_COUNT)
        return 0;
    return (allowed[to] & BIT(from)) != 0;
}

int bl_box_transition(struct bl_db *db, const char *id, enum bl_box_state to, int shim_pid,
                      int qemu_pid, const char *reason)
{
    char from[96] = ",";
    size_t len = 1;

    if ((unsigned)to >= BL_BOX_STATE_COUNT)
        return bl_err(BOXLITE_EINVAL, "box %s: no such state %d", id, (int)to);
    for (unsigned i = 0; i < BL_BOX_STATE_COUNT; i++)
        if (allowed[to] & BIT(i))
            len += (size_t)snprintf(from + len, sizeof(from) - len, "%s,", names[i]);
    return bl_db_box_set_state_from(db, id, names[to], from, shim_pid, qemu_pid, reason);
}

/* ---- the run lock ---- */

int bl_run_lock_take(const char *box_dir, int wait_ms)
{
    char *path = bl_strdupf("%s/run.lock", box_dir);
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    int64_t deadline = bl_now_ms() + wait_ms;

    free(path);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK && bl_now_ms() < deadline) {
            usleep(10000);
            continue;
        }
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

int bl_run_lock_held(const char *box_dir)
{
    char *path = bl_strdupf("%s/run.lock", box_dir);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    int held = 0, r;

    free(path);
    if (fd < 0)
        return 0; /* never booted by a monitor of this version, or removed */
    while ((r = flock(fd, LOCK_SH | LOCK_NB)) != 0 && errno == EINTR)
        ;
    held = r != 0 && errno == EWOULDBLOCK;
    close(fd); /* drops our shared lock, if we got it */
    return held;
}

/* ---- auto_delete ---- */

/* Delete box id when it is still due, under its box lock taken without waiting (a process
 * starting or removing it now goes first; the next sweep looks again). */
static int sweep_one(struct bl_db *db, const char *home, const char *id)
{
    char *dir = bl_strdupf("%s/boxes/%s", home, id);
    char *lock = dir ? bl_strdupf("%s/lock", dir) : NULL;
    int fd = lock ? open(lock, O_RDWR | O_CLOEXEC) : -1;
    char **still = NULL, deps[64];
    int done = 0;

    /* boxes whose disks rest on its snapshots keep it (as boxlite_box_remove would refuse) */
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && !bl_run_lock_held(dir) &&
        bl_db_box_expired(db, id, &still) == 0 && still[0] &&
        bl_db_box_dependents(db, id, NULL, deps, sizeof(deps)) == 0 &&
        bl_db_snap_delete_box(db, id) == 0 && bl_db_box_delete(db, id) == 0) {
        bl_rm_rf(dir);
        done = 1;
    }
    bl_strv_free(still);
    if (fd >= 0)
        close(fd);
    free(lock);
    free(dir);
    return done;
}

int bl_box_sweep_expired(struct bl_db *db, const char *home, const char *id)
{
    char **ids = NULL;
    int n = 0;

    if (bl_db_box_expired(db, id, &ids) != 0)
        return 0;
    for (size_t i = 0; ids[i]; i++)
        n += sweep_one(db, home, ids[i]);
    bl_strv_free(ids);
    return n;
}

/* ---- the readiness report ---- */

void bl_shim_report_format(char *out, size_t cap, enum bl_shim_code code, const char *msg)
{
    snprintf(out, cap, "%d %s\n", (int)code, msg && msg[0] ? msg : "-");
}

int bl_shim_report_parse(const char *line, enum bl_shim_code *code, const char **msg)
{
    int c = 0, digits = 0;

    while (line[digits] >= '0' && line[digits] <= '9' && digits < 3)
        c = c * 10 + (line[digits++] - '0');
    if (digits == 0 || line[digits] != ' ' || c >= BL_SHIM_CODE_COUNT)
        return -1;
    *code = (enum bl_shim_code)c;
    *msg = line + digits + 1;
    return 0;
}
