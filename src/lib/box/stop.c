/* stop.c — stopping a box: SHUTDOWN through its monitor, then SIGTERM, then SIGKILL and the
 * store fixed by hand; and pausing/resuming its VM (QMP stop/cont, done by its monitor). */
#include "box.h"
#include "boxstate.h"
#include "conn.h"
#include "db.h"
#include "error.h"
#include "monitor.h"
#include "runtime.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KILL_WAIT_MS 5000

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

    if (bl_box_attach(box) == 0 && bl_conn_send(box->conn, BL_F_SHUTDOWN, 0, NULL, 0) == 0)
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
    for (int i = 0; i < 100 && bl_box_reload(box) == 0 && bl_box_live_state(box->row.state) &&
                    bl_monitor_alive(box->rt->home, box->row.id);
         i++)
        usleep(20000);
    if (!box->removed && bl_box_live_state(box->row.state) &&
        bl_monitor_alive(box->rt->home, box->row.id))
        return bl_err(BOXLITE_ETIMEOUT, "box %s is still running after SIGKILL", box->row.id);
    return 0;
}

/* Stopping a box that never ran applies its end-of-life rule as a stop would (BoxLite):
 * auto_remove removes it now; auto_delete N > 0 records it stopped, to be deleted N s later. */
static int stop_never_started(boxlite_box *box)
{
    if (box->row.auto_delete > 0)
        return bl_box_transition(box->rt->db, box->row.id, BL_BOX_STOPPED, 0, 0, "");
    if (box->row.auto_delete < 0 && box->row.auto_remove)
        return boxlite_box_remove(box, 0);
    return 0;
}

BOXLITE_API int boxlite_box_stop_v2(int *killed_out, boxlite_box *box, int timeout_ms)
{
    int killed = 0;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    rc = box->removed ? 0 : bl_box_reload(box);
    if (rc == 0 && !box->removed && bl_box_live_state(box->row.state))
        rc = stop_running(box, timeout_ms, &killed);
    else if (rc == 0 && !box->removed && strcmp(box->row.state, "configured") == 0)
        rc = stop_never_started(box);
    if (box->lifeline_fd >= 0) {
        close(box->lifeline_fd);
        box->lifeline_fd = -1;
    }
    bl_box_conn_drop(box);
    box->conn = NULL;
    if (rc == 0 && !box->removed && bl_box_reload(box) == BOXLITE_ENOTFOUND)
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

#define PAUSE_MS 15000

static int pause_op(boxlite_box *box, uint32_t op)
{
    struct bl_conn *c = NULL;
    int rc;

    bl_err_clear();
    if (!box)
        return bl_err(BOXLITE_EINVAL, "box is NULL");
    rc = bl_box_reload(box);
    if (rc == 0 && !bl_box_running(box))
        rc = bl_err(BOXLITE_ESTATE, "box %s is %s, not running", box->row.id, box->row.state);
    if (rc == 0)
        rc = bl_box_conn(box, &c);
    if (rc == 0)
        rc = bl_conn_monitor(c, op, "", PAUSE_MS);
    if (rc != 0)
        return bl_err_wrap(rc, "%s box %s", op == BL_MON_PAUSE ? "pause" : "resume", box->row.id);
    return 0;
}

BOXLITE_API int boxlite_box_pause(boxlite_box *box)
{
    return pause_op(box, BL_MON_PAUSE);
}

BOXLITE_API int boxlite_box_resume(boxlite_box *box)
{
    return pause_op(box, BL_MON_RESUME);
}
