/* image.c — the image calls of boxlite._core.Runtime: pull, import, list and remove images in
 * the runtime's store (boxlite_image_*), each with the GIL released, results as dicts. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define ERRMSG 1024

static PyObject *raise_closed(void)
{
    return bp_raise(BOXLITE_ESTATE, "the boxlite runtime has been shut down");
}

static PyObject *info_dict(const boxlite_image_info *i)
{
    return Py_BuildValue("{s:s,s:s,s:s,s:s,s:s,s:K,s:L}", "name", i->name ? i->name : "",
                         "repository", i->repository ? i->repository : "", "tag",
                         i->tag ? i->tag : "", "id", i->id ? i->id : "", "digest",
                         i->digest ? i->digest : "", "size", (unsigned long long)i->size,
                         "cached_at", (long long)i->cached_at);
}

enum img_op { IMG_PULL, IMG_IMPORT, IMG_REMOVE };

/* A pull's progress, only to learn how many layers the image has (the pulling thread). */
static void count_layers(void *ctx, const boxlite_pull_progress *p)
{
    unsigned *layers = ctx;

    if (p->layers > *layers)
        *layers = p->layers;
}

/* Run one image call on the runtime without the GIL. a and b are copied here. */
static PyObject *img_call(bp_runtime *self, enum img_op op, const char *a, const char *b, int force)
{
    char *ca = a ? strdup(a) : NULL, *cb = b ? strdup(b) : NULL;
    boxlite_pull_options po = BOXLITE_PULL_OPTIONS_INIT;
    boxlite_image_info *info = NULL;
    unsigned layers = 0;
    PyObject *result = NULL, *n;
    PyThreadState *ts;
    char err[ERRMSG];
    int rc;

    if (bp_guard_enter(&self->g) != 0) {
        free(ca);
        free(cb);
        return raise_closed();
    }
    po.progress = count_layers;
    po.progress_ctx = &layers;
    ts = PyEval_SaveThread();
    if (!ca || (b && !cb))
        rc = BOXLITE_ENOMEM;
    else if (op == IMG_PULL)
        rc = boxlite_image_pull(&info, self->rt, ca, &po);
    else if (op == IMG_IMPORT)
        rc = boxlite_image_import(&info, self->rt, ca, cb);
    else
        rc = boxlite_image_remove(self->rt, ca, force);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    bp_guard_leave(&self->g);
    free(ca);
    free(cb);
    if (rc != 0)
        bp_raise(rc, err);
    else if (info)
        result = info_dict(info);
    else
        result = Py_BuildValue("");
    if (result && info && op == IMG_PULL) {
        n = PyLong_FromUnsignedLong(layers);
        if (!n || PyDict_SetItemString(result, "layers", n) != 0)
            Py_CLEAR(result);
        Py_XDECREF(n);
    }
    boxlite_image_info_free(info);
    return result;
}

PyObject *bp_rt_image_pull(bp_runtime *self, PyObject *args)
{
    const char *ref;

    if (!PyArg_ParseTuple(args, "s:image_pull", &ref))
        return NULL;
    return img_call(self, IMG_PULL, ref, NULL, 0);
}

PyObject *bp_rt_image_import(bp_runtime *self, PyObject *args)
{
    const char *path, *name = NULL;

    if (!PyArg_ParseTuple(args, "s|z:image_import", &path, &name))
        return NULL;
    return img_call(self, IMG_IMPORT, path, name, 0);
}

PyObject *bp_rt_image_remove(bp_runtime *self, PyObject *args)
{
    const char *ref;
    int force = 0;

    if (!PyArg_ParseTuple(args, "s|p:image_remove", &ref, &force))
        return NULL;
    return img_call(self, IMG_REMOVE, ref, NULL, force);
}

PyObject *bp_rt_image_list(bp_runtime *self, PyObject *unused)
{
    boxlite_image_info *infos = NULL;
    size_t n = 0;
    PyObject *list;
    PyThreadState *ts;
    char err[ERRMSG];
    int rc;

    if (bp_guard_enter(&self->g) != 0)
        return raise_closed();
    ts = PyEval_SaveThread();
    rc = boxlite_image_list_v2(&infos, &n, self->rt, BOXLITE_IMAGE_INFO_VERSION);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    bp_guard_leave(&self->g);
    if (rc != 0)
        return bp_raise(rc, err);
    list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = info_dict(&infos[i]);
        if (!d || PyList_Append(list, d) != 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    boxlite_image_list_free(infos, n);
    return list;
}
