/* box.c — boxlite._core.Box: one boxlite_box handle. Box calls run one at a time (op_mu) with
 * the GIL released; stop, remove(force) and close first drain the box's execs, so that no exec
 * handle outlives the channel the C library frees under it. */
#include "core.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define ERRMSG 1024

int bp_strv_from(PyObject *obj, char ***out, const char *what);
void bp_strv_free(char **v);
PyObject *bp_info_dict(const boxlite_box_info *i);

PyObject *bp_box_raise_closed(bp_box *b)
{
    char msg[256];

    bp_lock();
    snprintf(msg, sizeof(msg), "%s", b->closed_why[0] ? b->closed_why : "the box is closed");
    bp_unlock();
    return bp_raise(BOXLITE_ESTATE, msg);
}

/* Drain the box's execs (all, or only those whose process has ended). Without the GIL;
 * the caller is a user of the box (or closes it) and holds op_mu. */
static void drain_execs(bp_box *b, int all, const char *why)
{
    bp_exec **claimed = NULL;
    size_t n = 0, k = 0;
    bp_exec *e;

    bp_lock();
    for (e = b->execs; e; e = e->next)
        n++;
    claimed = n ? calloc(n, sizeof(*claimed)) : NULL;
    for (e = b->execs; claimed && e; e = e->next)
        if (!e->g.closing && !e->drained) {
            e->g.closing = 1;
            claimed[k++] = e;
        }
    bp_unlock();
    for (size_t i = 0; i < k; i++) {
        if (all || bp_exec_done(claimed[i])) {
            bp_exec_drain_claimed(claimed[i], why);
        } else {
            bp_lock();
            claimed[i]->g.closing = 0;
            bp_broadcast();
            bp_unlock();
        }
    }
    free(claimed);
}

void bp_box_close_claimed(bp_box *b, int stop_timeout_ms, const char *why)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    bp_box **pp;

    bp_lock();
    snprintf(b->closed_why, sizeof(b->closed_why), "%s", why);
    while (b->g.users > 0)
        bp_wait();
    bp_unlock();
    pthread_mutex_lock(&b->op_mu);
    drain_execs(b, 1, why);
    if (stop_timeout_ms != -2 && boxlite_box_booted_here(b->box) &&
        boxlite_box_get_info(&info, b->box) == 0 && !info.detach &&
        strcmp(info.state, "running") == 0)
        boxlite_box_stop(b->box, stop_timeout_ms);
    boxlite_box_free(b->box);
    b->box = NULL;
    pthread_mutex_unlock(&b->op_mu);
    bp_lock();
    for (pp = &b->owner->boxes; *pp && *pp != b; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = b->next;
    b->g.closing = 0;
    b->g.closed = 1;
    bp_broadcast();
    bp_unlock();
}

/* Claim the box for closing; 0 when this thread must close it, -1 when it is (being) closed. */
static int claim(bp_box *b)
{
    int rc = 0;

    bp_lock();
    if (b->g.closing || b->g.closed) {
        while (!b->g.closed)
            bp_wait();
        rc = -1;
    } else {
        b->g.closing = 1;
    }
    bp_unlock();
    return rc;
}

/* ---- calls ---- */

enum op {
    OP_START,
    OP_STOP,
    OP_REMOVE,
    OP_INFO,
    OP_STATS,
    OP_TIMING,
    OP_COPY_IN,
    OP_COPY_OUT,
    OP_TUNNEL
};

struct op_args {
    enum op op;
    int arg;
    char *src, *dst; /* copies: owned by the caller */
    boxlite_copy_options copt;
    boxlite_box_info info;
    boxlite_box_stats stats;
    boxlite_box_timing timing;
    int fd; /* OP_TUNNEL's result */
    char err[ERRMSG];
};

static int run_op(bp_box *b, struct op_args *a)
{
    PyThreadState *ts;
    int rc = 0;

    if (bp_guard_enter(&b->g) != 0)
        return 1;
    ts = PyEval_SaveThread();
    pthread_mutex_lock(&b->op_mu);
    switch (a->op) {
    case OP_START:
        drain_execs(b, 0, "");
        rc = boxlite_box_start(b->box);
        break;
    case OP_STOP:
        drain_execs(b, 1, "the box was stopped before the process ended");
        rc = boxlite_box_stop(b->box, a->arg);
        break;
    case OP_REMOVE:
        if (a->arg)
            drain_execs(b, 1, "the box was removed before the process ended");
        rc = boxlite_box_remove(b->box, a->arg);
        break;
    case OP_INFO:
        rc = boxlite_box_get_info(&a->info, b->box);
        break;
    case OP_STATS:
        rc = boxlite_box_get_stats(&a->stats, b->box);
        break;
    case OP_TIMING:
        rc = boxlite_box_get_timing(&a->timing, b->box);
        break;
    case OP_COPY_IN:
    case OP_COPY_OUT:
        /* like exec: a copy is a process in the box, which boots it when needed */
        drain_execs(b, 0, "");
        rc = boxlite_box_start(b->box);
        if (rc == 0 && a->op == OP_COPY_IN)
            rc = boxlite_box_copy_in(b->box, a->src, a->dst, &a->copt);
        else if (rc == 0)
            rc = boxlite_box_copy_out(b->box, a->src, a->dst, &a->copt);
        break;
    case OP_TUNNEL:
        rc = boxlite_box_tunnel(&a->fd, b->box, (unsigned)a->arg);
        break;
    }
    if (rc != 0)
        bp_copy_error(a->err, sizeof(a->err));
    pthread_mutex_unlock(&b->op_mu);
    PyEval_RestoreThread(ts);
    bp_guard_leave(&b->g);
    return rc;
}

int bp_box_run(bp_box *b, int (*fn)(bp_box *b, void *arg), void *arg, char *err, size_t cap)
{
    PyThreadState *ts;
    int rc;

    if (bp_guard_enter(&b->g) != 0)
        return 1;
    ts = PyEval_SaveThread();
    pthread_mutex_lock(&b->op_mu);
    drain_execs(b, 0, "");
    rc = fn(b, arg);
    if (rc != 0)
        bp_copy_error(err, cap);
    pthread_mutex_unlock(&b->op_mu);
    PyEval_RestoreThread(ts);
    bp_guard_leave(&b->g);
    return rc;
}

static PyObject *op_call(bp_box *b, struct op_args *a)
{
    int rc = run_op(b, a);

    if (rc == 1)
        return bp_box_raise_closed(b);
    if (rc != 0)
        return bp_raise(rc, a->err);
    Py_RETURN_NONE;
}

static PyObject *box_start(bp_box *b, PyObject *unused)
{
    struct op_args a = {.op = OP_START};

    return op_call(b, &a);
}

static PyObject *box_stop(bp_box *b, PyObject *args)
{
    struct op_args a = {.op = OP_STOP, .arg = BOXLITE_STOP_TIMEOUT_DEFAULT_MS};

    if (!PyArg_ParseTuple(args, "|i:stop", &a.arg))
        return NULL;
    return op_call(b, &a);
}

static PyObject *box_remove(bp_box *b, PyObject *args)
{
    struct op_args a = {.op = OP_REMOVE};

    if (!PyArg_ParseTuple(args, "|p:remove", &a.arg))
        return NULL;
    return op_call(b, &a);
}

static PyObject *box_info(bp_box *b, PyObject *unused)
{
    struct op_args a = {.op = OP_INFO, .info = BOXLITE_BOX_INFO_INIT};
    PyObject *r = op_call(b, &a);

    if (!r)
        return NULL;
    Py_DECREF(r);
    return bp_info_dict(&a.info);
}

static PyObject *box_tunnel(bp_box *b, PyObject *args)
{
    struct op_args a = {.op = OP_TUNNEL, .fd = -1};
    PyObject *r;

    if (!PyArg_ParseTuple(args, "i:tunnel", &a.arg))
        return NULL;
    if (a.arg < 1 || a.arg > 65535) {
        PyErr_SetString(PyExc_ValueError, "port must be an integer between 1 and 65535");
        return NULL;
    }
    r = op_call(b, &a);
    if (!r)
        return NULL;
    Py_DECREF(r);
    return PyLong_FromLong(a.fd);
}

static PyObject *box_stats(bp_box *b, PyObject *unused)
{
    struct op_args a = {.op = OP_STATS, .stats = BOXLITE_BOX_STATS_INIT};
    PyObject *r = op_call(b, &a);

    if (!r)
        return NULL;
    Py_DECREF(r);
    return Py_BuildValue("{s:d,s:K,s:K,s:K}", "cpu_seconds", a.stats.cpu_seconds, "memory_bytes",
                         (unsigned long long)a.stats.memory_bytes, "disk_bytes",
                         (unsigned long long)a.stats.disk_bytes, "disk_size_bytes",
                         (unsigned long long)a.stats.disk_size_bytes);
}

/* A stage's milliseconds, None when not measured (-1). */
static PyObject *ms_or_none(int64_t ms)
{
    if (ms < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong((long long)ms);
}

/* This handle's create and start stages (boxlite_box_get_timing): the field names, as the
 * Box API's BootTiming names them. */
static PyObject *box_timing(bp_box *b, PyObject *unused)
{
    struct op_args a = {.op = OP_TIMING, .timing = BOXLITE_BOX_TIMING_INIT};
    const boxlite_box_timing *t = &a.timing;
    PyObject *r = op_call(b, &a);

    if (!r)
        return NULL;
    Py_DECREF(r);
    return Py_BuildValue(
        "{s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N}", "image_prepare_ms",
        ms_or_none(t->image_prepare_ms), "filesystem_setup_ms", ms_or_none(t->filesystem_setup_ms),
        "box_config_ms", ms_or_none(t->box_config_ms), "create_ms", ms_or_none(t->create_ms),
        "guest_rootfs_ms", ms_or_none(t->guest_rootfs_ms), "box_spawn_ms",
        ms_or_none(t->box_spawn_ms), "guest_boot_ms", ms_or_none(t->guest_boot_ms),
        "container_init_ms", ms_or_none(t->container_init_ms), "start_ms", ms_or_none(t->start_ms),
        "total_create_ms", ms_or_none(t->total_create_ms));
}

/* copy_in(host_path, box_path, recursive=True, overwrite=True, follow_symlinks=False,
 * include_parent=True) and copy_out(box_path, host_path, ...). */
static PyObject *box_copy(bp_box *b, PyObject *args, PyObject *kw, enum op op)
{
    static char *kwlist[] = {
        "src", "dst", "recursive", "overwrite", "follow_symlinks", "include_parent", NULL};
    struct op_args a = {.op = op, .copt = BOXLITE_COPY_OPTIONS_INIT};
    const char *src, *dst;
    PyObject *r = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|pppp:copy", kwlist, &src, &dst,
                                     &a.copt.recursive, &a.copt.overwrite, &a.copt.follow_symlinks,
                                     &a.copt.include_parent))
        return NULL;
    a.src = strdup(src);
    a.dst = strdup(dst);
    if (!a.src || !a.dst)
        PyErr_NoMemory();
    else
        r = op_call(b, &a);
    free(a.src);
    free(a.dst);
    return r;
}

static PyObject *box_copy_in(bp_box *b, PyObject *args, PyObject *kw)
{
    return box_copy(b, args, kw, OP_COPY_IN);
}

static PyObject *box_copy_out(bp_box *b, PyObject *args, PyObject *kw)
{
    return box_copy(b, args, kw, OP_COPY_OUT);
}

static bp_exec *exec_new(bp_box *b)
{
    bp_exec *e = PyObject_New(bp_exec, &bp_exec_type);

    if (!e)
        return NULL;
    Py_INCREF(b);
    e->owner = b;
    e->ex = NULL;
    memset(&e->g, 0, sizeof(e->g));
    e->next = NULL;
    e->drained = 0;
    memset(e->out, 0, sizeof(e->out));
    e->have_result = 0;
    boxlite_exec_result_init(&e->result, BOXLITE_EXEC_RESULT_VERSION);
    e->lost[0] = '\0';
    e->pollfd = -1;
    return e;
}

/* exec(argv, env=None, cwd=None, user=None, tty=False, timeout_ms=0) -> Exec; starts the box
 * first when it is not running. */
static PyObject *box_exec(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"argv", "env", "cwd", "user", "tty", "timeout_ms", NULL};
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    PyObject *argv_obj, *env_obj = Py_None;
    const char *cwd = NULL, *user = NULL;
    char **argv = NULL, **env = NULL, *c_cwd = NULL, *c_user = NULL;
    unsigned timeout_ms = 0;
    int tty = 0, rc = 0;
    bp_exec *e = NULL;
    PyThreadState *ts;
    char err[ERRMSG];

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OzzpI:exec", kwlist, &argv_obj, &env_obj, &cwd,
                                     &user, &tty, &timeout_ms))
        return NULL;
    if (bp_strv_from(argv_obj, &argv, "argv must be a list of str") != 0 ||
        bp_strv_from(env_obj, &env, "env must be a list of str") != 0)
        goto out;
    if (!argv || !argv[0]) {
        PyErr_SetString(PyExc_ValueError, "exec needs a command");
        goto out;
    }
    c_cwd = cwd ? strdup(cwd) : NULL;
    c_user = user ? strdup(user) : NULL;
    o.argv = (const char *const *)argv;
    o.env = (const char *const *)env;
    o.cwd = c_cwd;
    o.user = c_user;
    o.tty = tty;
    o.timeout_ms = timeout_ms;
    e = exec_new(b);
    if (!e)
        goto out;
    if (bp_guard_enter(&b->g) != 0) {
        bp_box_raise_closed(b);
        Py_CLEAR(e);
        goto out;
    }
    ts = PyEval_SaveThread();
    pthread_mutex_lock(&b->op_mu);
    drain_execs(b, 0, "");
    rc = boxlite_box_start(b->box);
    if (rc == 0)
        rc = boxlite_exec_start(&e->ex, b->box, &o);
    if (rc != 0) {
        bp_copy_error(err, sizeof(err));
    } else {
        bp_lock();
        e->next = b->execs;
        b->execs = e;
        bp_unlock();
    }
    pthread_mutex_unlock(&b->op_mu);
    PyEval_RestoreThread(ts);
    bp_guard_leave(&b->g);
    if (rc != 0) {
        Py_CLEAR(e);
        bp_raise(rc, err);
    }
out:
    bp_strv_free(argv);
    bp_strv_free(env);
    free(c_cwd);
    free(c_user);
    return (PyObject *)e;
}

static PyObject *box_close(bp_box *b, PyObject *args)
{
    int timeout_ms = BOXLITE_STOP_TIMEOUT_DEFAULT_MS;
    PyThreadState *ts;

    if (!PyArg_ParseTuple(args, "|i:close", &timeout_ms))
        return NULL;
    ts = PyEval_SaveThread();
    if (claim(b) == 0)
        bp_box_close_claimed(b, timeout_ms, "the box handle has been closed");
    PyEval_RestoreThread(ts);
    Py_RETURN_NONE;
}

static PyObject *box_get_id(bp_box *b, void *unused)
{
    Py_INCREF(b->id);
    return b->id;
}

static PyObject *box_get_name(bp_box *b, void *unused)
{
    Py_INCREF(b->name);
    return b->name;
}

static PyObject *box_get_closed(bp_box *b, void *unused)
{
    return PyBool_FromLong(b->g.closing || b->g.closed);
}

static void box_dealloc(bp_box *b)
{
    PyThreadState *ts = PyEval_SaveThread();

    /* No exec is left (each holds a reference); a box this handle booted stops, unless it
     * is detached, when the C handle is freed. */
    if (claim(b) == 0)
        bp_box_close_claimed(b, -2, "the box handle has been closed");
    PyEval_RestoreThread(ts);
    pthread_mutex_destroy(&b->op_mu);
    Py_XDECREF(b->id);
    Py_XDECREF(b->name);
    Py_XDECREF(b->owner);
    PyObject_Free(b);
}

static PyMethodDef box_methods[] = {
    {"start", (PyCFunction)box_start, METH_NOARGS, "start(): boot the box, or attach to it"},
    {"stop", (PyCFunction)box_stop, METH_VARARGS,
     "stop(timeout_ms=10000): < 0 waits for ever, 0 kills at once"},
    {"remove", (PyCFunction)box_remove, METH_VARARGS, "remove(force=False)"},
    {"info", (PyCFunction)box_info, METH_NOARGS, "info() -> dict"},
    {"stats", (PyCFunction)box_stats, METH_NOARGS, "stats() -> dict (running boxes)"},
    {"timing", (PyCFunction)box_timing, METH_NOARGS,
     "timing() -> dict: this handle's create and start stages in ms, None when not measured"},
    {"tunnel", (PyCFunction)box_tunnel, METH_VARARGS,
     "tunnel(port) -> fd: a socket connected to 127.0.0.1:port inside the running box; the "
     "caller owns and closes it"},
    {"exec", (PyCFunction)(void (*)(void))box_exec, METH_VARARGS | METH_KEYWORDS,
     "exec(argv, env=None, cwd=None, user=None, tty=False, timeout_ms=0) -> Exec"},
    {"copy_in", (PyCFunction)(void (*)(void))box_copy_in, METH_VARARGS | METH_KEYWORDS,
     "copy_in(host_path, box_path, recursive=True, overwrite=True, follow_symlinks=False, "
     "include_parent=True); boots the box when needed"},
    {"copy_out", (PyCFunction)(void (*)(void))box_copy_out, METH_VARARGS | METH_KEYWORDS,
     "copy_out(box_path, host_path, recursive=True, overwrite=True, follow_symlinks=False, "
     "include_parent=True); boots the box when needed"},
    {"snapshot_create", (PyCFunction)(void (*)(void))bp_box_snapshot_create,
     METH_VARARGS | METH_KEYWORDS,
     "snapshot_create(name, memory=False) -> snapshot dict; memory: a full snapshot"},
    {"snapshot_list", (PyCFunction)bp_box_snapshot_list, METH_NOARGS,
     "snapshot_list() -> [snapshot dict], oldest first"},
    {"snapshot_restore", (PyCFunction)(void (*)(void))bp_box_snapshot_restore,
     METH_VARARGS | METH_KEYWORDS,
     "snapshot_restore(name, detach=False): the box must be stopped; a full snapshot resumes it"},
    {"snapshot_remove", (PyCFunction)bp_box_snapshot_remove, METH_VARARGS,
     "snapshot_remove(name): the box must be stopped"},
    {"clone", (PyCFunction)(void (*)(void))bp_box_clone, METH_VARARGS | METH_KEYWORDS,
     "clone(name=None, snapshot=None) -> Box (stopped; without snapshot the box must be "
     "stopped)"},
    {"fork", (PyCFunction)(void (*)(void))bp_box_fork, METH_VARARGS | METH_KEYWORDS,
     "fork(snapshot, name=None, detach=False) -> Box resumed from a full snapshot"},
    {"export", (PyCFunction)(void (*)(void))bp_box_export, METH_VARARGS | METH_KEYWORDS,
     "export(dest, snapshot=None): write a .boxlite archive (without snapshot the box must be "
     "stopped)"},
    {"close", (PyCFunction)box_close, METH_VARARGS,
     "close(stop_timeout_ms=10000): stop the box if this handle started it, free the handle"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef box_getset[] = {
    {"id", (getter)box_get_id, NULL, "12-character id", NULL},
    {"name", (getter)box_get_name, NULL, "name, or \"\"", NULL},
    {"closed", (getter)box_get_closed, NULL, "whether the handle is closed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject bp_box_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "boxlite._core.Box",
    .tp_basicsize = sizeof(bp_box),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A box handle; made by Runtime.create and Runtime.get.",
    .tp_dealloc = (destructor)box_dealloc,
    .tp_methods = box_methods,
    .tp_getset = box_getset,
};
