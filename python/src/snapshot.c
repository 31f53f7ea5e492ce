/* snapshot.c — boxlite._core's snapshot calls: a box's snapshots (create, list, restore,
 * remove), clone, fork and export on a Box, import on the Runtime; each one blocking C call. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define ERRMSG 1024

/* The arguments and results of one call, run by bp_box_run without the GIL. Strings are the
 * caller's copies. */
struct snap_args {
    const char *name, *snapshot, *path;
    int flags;
    boxlite_snapshot_info info;
    boxlite_snapshot_info *infos;
    size_t n;
    boxlite_box *made;
};

PyObject *bp_snapshot_dict(const boxlite_snapshot_info *s)
{
    return Py_BuildValue("{s:s,s:s,s:s,s:s,s:s,s:K,s:s}", "id", s->id, "box_id", s->box_id, "name",
                         s->name, "kind", s->kind, "parent", s->parent, "size",
                         (unsigned long long)s->size, "created_at", s->created_at);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Run fn on the box and raise its error; 0 on success, -1 with an exception set. */
static int run(bp_box *b, int (*fn)(bp_box *, void *), struct snap_args *a)
{
    char err[ERRMSG];
    int rc = bp_box_run(b, fn, a, err, sizeof(err));

    if (rc == 1) {
        bp_box_raise_closed(b);
        return -1;
    }
    if (rc != 0) {
        bp_raise(rc, err);
        return -1;
    }
    return 0;
}

static int do_create(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    boxlite_snapshot_info_init(&a->info, BOXLITE_SNAPSHOT_INFO_VERSION);
    return boxlite_snapshot_create(&a->info, b->box, a->name, a->flags);
}

/* snapshot_create(name, memory=False) -> snapshot dict */
PyObject *bp_box_snapshot_create(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "memory", NULL};
    struct snap_args a = {0};
    const char *name;
    int memory = 0;
    char *c_name;
    PyObject *r = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p:snapshot_create", kwlist, &name, &memory))
        return NULL;
    c_name = strdup(name);
    if (!c_name)
        return PyErr_NoMemory();
    a.name = c_name;
    a.flags = memory ? BOXLITE_SNAPSHOT_MEMORY : 0;
    if (run(b, do_create, &a) == 0)
        r = bp_snapshot_dict(&a.info);
    free(c_name);
    return r;
}

static int do_list(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_snapshot_list_v2(&a->infos, &a->n, b->box, BOXLITE_SNAPSHOT_INFO_VERSION);
}

/* snapshot_list() -> [snapshot dict], oldest first */
PyObject *bp_box_snapshot_list(bp_box *b, PyObject *unused)
{
    struct snap_args a = {0};
    PyObject *list;

    if (run(b, do_list, &a) != 0)
        return NULL;
    list = PyList_New(0);
    for (size_t i = 0; list && i < a.n; i++) {
        PyObject *d = bp_snapshot_dict(&a.infos[i]);
        if (!d || PyList_Append(list, d) != 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    boxlite_snapshot_list_free(a.infos, a.n);
    return list;
}

static int do_restore(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_snapshot_restore(b->box, a->name, a->flags);
}

/* snapshot_restore(name, detach=False) */
PyObject *bp_box_snapshot_restore(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "detach", NULL};
    struct snap_args a = {0};
    const char *name;
    int detach = 0, rc;
    char *c_name;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p:snapshot_restore", kwlist, &name, &detach))
        return NULL;
    c_name = strdup(name);
    if (!c_name)
        return PyErr_NoMemory();
    a.name = c_name;
    a.flags = detach ? BOXLITE_SNAPSHOT_DETACH : 0;
    rc = run(b, do_restore, &a);
    free(c_name);
    if (rc != 0)
        return NULL;
    Py_RETURN_NONE;
}

static int do_remove(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_snapshot_remove(b->box, a->name);
}

/* snapshot_remove(name) */
PyObject *bp_box_snapshot_remove(bp_box *b, PyObject *args)
{
    struct snap_args a = {0};
    const char *name;
    char *c_name;
    int rc;

    if (!PyArg_ParseTuple(args, "s:snapshot_remove", &name))
        return NULL;
    c_name = strdup(name);
    if (!c_name)
        return PyErr_NoMemory();
    a.name = c_name;
    rc = run(b, do_remove, &a);
    free(c_name);
    if (rc != 0)
        return NULL;
    Py_RETURN_NONE;
}

static int do_clone(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_box_clone_v2(&a->made, b->box, a->snapshot, a->name);
}

static int do_fork(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_box_fork(&a->made, b->box, a->snapshot, a->name, a->flags);
}

/* A call that makes a new box: run inside the runtime's guard too, so that a shutdown cannot
 * miss the new handle; the handle is wrapped before the guard is left. */
static PyObject *make_box(bp_box *b, int (*fn)(bp_box *, void *), struct snap_args *a)
{
    bp_runtime *rt = b->owner;
    PyObject *r = NULL;

    if (bp_guard_enter(&rt->g) != 0)
        return bp_raise(BOXLITE_ESTATE, "the boxlite runtime has been shut down");
    if (run(b, fn, a) == 0)
        r = (PyObject *)bp_box_wrap(rt, a->made);
    bp_guard_leave(&rt->g);
    return r;
}

/* clone(name=None, snapshot=None) -> Box (stopped) */
PyObject *bp_box_clone(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "snapshot", NULL};
    struct snap_args a = {0};
    const char *name = NULL, *snap = NULL;
    char *c_name, *c_snap;
    PyObject *r = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zz:clone", kwlist, &name, &snap))
        return NULL;
    c_name = dup_or_null(name);
    c_snap = dup_or_null(snap);
    if ((name && !c_name) || (snap && !c_snap))
        PyErr_NoMemory();
    else {
        a.name = c_name;
        a.snapshot = c_snap;
        r = make_box(b, do_clone, &a);
    }
    free(c_name);
    free(c_snap);
    return r;
}

/* fork(snapshot, name=None, detach=False) -> Box (running) */
PyObject *bp_box_fork(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"snapshot", "name", "detach", NULL};
    struct snap_args a = {0};
    const char *name = NULL, *snap;
    char *c_name, *c_snap;
    int detach = 0;
    PyObject *r = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zp:fork", kwlist, &snap, &name, &detach))
        return NULL;
    c_name = dup_or_null(name);
    c_snap = strdup(snap);
    if ((name && !c_name) || !c_snap)
        PyErr_NoMemory();
    else {
        a.name = c_name;
        a.snapshot = c_snap;
        a.flags = detach ? BOXLITE_SNAPSHOT_DETACH : 0;
        r = make_box(b, do_fork, &a);
    }
    free(c_name);
    free(c_snap);
    return r;
}

static int do_export(bp_box *b, void *arg)
{
    struct snap_args *a = arg;

    return boxlite_box_export(b->box, a->snapshot, a->path);
}

/* export(dest, snapshot=None) */
PyObject *bp_box_export(bp_box *b, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dest", "snapshot", NULL};
    struct snap_args a = {0};
    const char *dest, *snap = NULL;
    char *c_dest, *c_snap;
    int rc = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|z:export", kwlist, &dest, &snap))
        return NULL;
    c_dest = strdup(dest);
    c_snap = dup_or_null(snap);
    if (!c_dest || (snap && !c_snap))
        PyErr_NoMemory();
    else {
        a.path = c_dest;
        a.snapshot = c_snap;
        rc = run(b, do_export, &a);
    }
    free(c_dest);
    free(c_snap);
    if (rc != 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Runtime.import_box(path, name=None, untrusted=False) -> Box (stopped) */
PyObject *bp_rt_import_box(bp_runtime *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "name", "untrusted", NULL};
    const char *path, *name = NULL;
    char *c_path, *c_name, err[ERRMSG];
    boxlite_box *box = NULL;
    PyObject *r = NULL;
    PyThreadState *ts;
    int untrusted = 0, rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zp:import_box", kwlist, &path, &name, &untrusted))
        return NULL;
    c_path = strdup(path);
    c_name = dup_or_null(name);
    if (!c_path || (name && !c_name)) {
        free(c_path);
        free(c_name);
        return PyErr_NoMemory();
    }
    if (bp_guard_enter(&self->g) != 0) {
        free(c_path);
        free(c_name);
        return bp_raise(BOXLITE_ESTATE, "the boxlite runtime has been shut down");
    }
    ts = PyEval_SaveThread();
    rc = boxlite_box_import(&box, self->rt, c_path, c_name, untrusted);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    if (rc != 0)
        bp_raise(rc, err);
    else
        r = (PyObject *)bp_box_wrap(self, box);
    bp_guard_leave(&self->g);
    free(c_path);
    free(c_name);
    return r;
}
