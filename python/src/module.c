/* module.c — the boxlite._core module: the one lock and condition variable behind every
 * guard, the mapping of BOXLITE_E* codes to Python exceptions, and module initialisation. */
#include "core.h"

#include <string.h>
#include <time.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static PyObject *g_error_base; /* RuntimeError subclass for codes without their own class */
static PyObject *g_error_map;  /* {code: class} */

void bp_lock(void)
{
    pthread_mutex_lock(&g_mu);
}

void bp_unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

void bp_wait(void)
{
    pthread_cond_wait(&g_cond, &g_mu);
}

int64_t bp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bp_wait_ms(int64_t deadline)
{
    struct timespec ts;

    if (bp_now_ms() >= deadline)
        return -1;
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000;
    pthread_cond_timedwait(&g_cond, &g_mu, &ts);
    return 0;
}

void bp_broadcast(void)
{
    pthread_cond_broadcast(&g_cond);
}

int bp_guard_enter(struct bp_guard *g)
{
    int rc = 0;

    bp_lock();
    if (g->closing || g->closed)
        rc = -1;
    else
        g->users++;
    bp_unlock();
    return rc;
}

void bp_guard_leave(struct bp_guard *g)
{
    bp_lock();
    g->users--;
    bp_broadcast();
    bp_unlock();
}

void bp_copy_error(char *buf, size_t cap)
{
    const char *m = boxlite_error_last();

    snprintf(buf, cap, "%s", m && *m ? m : "boxlite call failed");
}

PyObject *bp_raise(int code, const char *msg)
{
    PyObject *cls = NULL, *key, *exc, *codeobj;

    key = PyLong_FromLong(code);
    if (key && g_error_map)
        cls = PyDict_GetItemWithError(g_error_map, key); /* borrowed */
    Py_XDECREF(key);
    if (PyErr_Occurred())
        return NULL;
    if (!cls)
        cls = g_error_base ? g_error_base : PyExc_RuntimeError;
    exc = PyObject_CallFunction(cls, "s", msg);
    if (!exc)
        return NULL;
    codeobj = PyLong_FromLong(code);
    if (codeobj) {
        PyObject_SetAttrString(exc, "code", codeobj);
        Py_DECREF(codeobj);
    }
    PyErr_Clear();
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *mod_set_errors(PyObject *self, PyObject *args)
{
    PyObject *base, *map;

    if (!PyArg_ParseTuple(args, "OO!", &base, &PyDict_Type, &map))
        return NULL;
    if (!PyType_Check(base) ||
        !PyType_IsSubtype((PyTypeObject *)base, (PyTypeObject *)PyExc_RuntimeError)) {
        PyErr_SetString(PyExc_TypeError, "the base error must subclass RuntimeError");
        return NULL;
    }
    Py_INCREF(base);
    Py_INCREF(map);
    Py_XSETREF(g_error_base, base);
    Py_XSETREF(g_error_map, map);
    Py_RETURN_NONE;
}

static PyObject *mod_version(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(boxlite_version());
}

static PyMethodDef module_methods[] = {
    {"_set_errors", mod_set_errors, METH_VARARGS,
     "_set_errors(base, {code: class}): the exceptions raised for C error codes"},
    {"version", mod_version, METH_NOARGS, "version() -> the C library's version string"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "boxlite._core",
    "CPython binding over libboxlite's public C API (include/boxlite.h).",
    -1,
    module_methods,
};

static int add_consts(PyObject *m)
{
    static const struct {
        const char *name;
        long value;
    } consts[] = {
        {"OK", BOXLITE_OK},
        {"ERROR", BOXLITE_ERROR},
        {"EINVAL", BOXLITE_EINVAL},
        {"ENOTFOUND", BOXLITE_ENOTFOUND},
        {"EEXISTS", BOXLITE_EEXISTS},
        {"ESTATE", BOXLITE_ESTATE},
        {"ETIMEOUT", BOXLITE_ETIMEOUT},
        {"ENOMEM", BOXLITE_ENOMEM},
        {"EIO", BOXLITE_EIO},
        {"EPROTO", BOXLITE_EPROTO},
        {"EAGAIN", BOXLITE_EAGAIN},
        {"STDOUT", BOXLITE_STDOUT},
        {"STDERR", BOXLITE_STDERR},
    };
    /* The C calls this build has beyond runtime, box and exec: the Python layer turns on
     * images, copies, snapshots ... when their names appear here. */
    static const char *const feature_names[] = {
        "image_pull", "image_list", "image_import", "image_remove", "registries",
        "copy",       "volumes",    "ports",        "network",      "snapshot",
        "clone",      "fork",       "export",       "import_box",
    };
    PyObject *features = NULL, *names = PyList_New(0);

    for (size_t i = 0; names && i < sizeof(feature_names) / sizeof(feature_names[0]); i++) {
        PyObject *s = PyUnicode_FromString(feature_names[i]);
        if (!s || PyList_Append(names, s) != 0)
            Py_CLEAR(names);
        Py_XDECREF(s);
    }
    if (names)
        features = PyFrozenSet_New(names);
    Py_XDECREF(names);
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value) != 0)
            return -1;
    if (!features || PyModule_AddObject(m, "features", features) != 0) {
        Py_XDECREF(features);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__core(void)
{
    PyTypeObject *types[] = {&bp_runtime_type, &bp_box_type, &bp_exec_type};
    pthread_condattr_t attr;
    PyObject *m;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < 3; i++)
        if (PyType_Ready(types[i]) != 0)
            return NULL;
    m = PyModule_Create(&core_module);
    if (!m)
        return NULL;
    if (add_consts(m) != 0)
        goto fail;
    for (size_t i = 0; i < 3; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, strrchr(types[i]->tp_name, '.') + 1, (PyObject *)types[i]) != 0) {
            Py_DECREF(types[i]);
            goto fail;
        }
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
