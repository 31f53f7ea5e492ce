/* runtime.c — boxlite._core.Runtime: one boxlite_runtime (a $BOXLITE_HOME) and the calls made
 * on it: create, get, list and remove boxes; close stops the boxes it opened and frees it. */
#include "core.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ERRMSG 1024

static PyObject *raise_closed(void)
{
    return bp_raise(BOXLITE_ESTATE, "the boxlite runtime has been shut down");
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* One tuple → one element (zeroed before): 0, or -1 with an exception set (or none, then
 * tuples_from raises TypeError); what it allocated before failing is freed with the rest. */
typedef int (*tuple_item_fn)(PyObject *t, void *elem);

static int no_memory(void)
{
    PyErr_NoMemory();
    return -1;
}

/* obj: None or a sequence of tuples → *out, a calloc'd array of n + 1 elements of `size`
 * bytes (the last zeroed), each filled by item(). On failure the elements made so far go to
 * free_arr, *out stays NULL and an exception is set (TypeError `what` unless item set one). */
static int tuples_from(PyObject *obj, const char *what, size_t size, tuple_item_fn item,
                       void (*free_arr)(void *, size_t), void **out, size_t *n_out)
{
    PyObject *seq;
    Py_ssize_t n;
    char *v;
    int ok;

    *out = NULL;
    *n_out = 0;
    if (obj == Py_None)
        return 0;
    seq = PySequence_Fast(obj, what);
    if (!seq)
        return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    v = calloc((size_t)n + 1, size);
    ok = v != NULL;
    if (!ok)
        PyErr_NoMemory();
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        ok = PyTuple_Check(t) && item(t, v + (size_t)i * size) == 0;
        *n_out = (size_t)i + 1;
    }
    Py_DECREF(seq);
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, what);
        free_arr(v, *n_out);
        *n_out = 0;
        return -1;
    }
    *out = v;
    return 0;
}

static void regs_free(void *arr, size_t n)
{
    boxlite_registry *r = arr;

    for (size_t i = 0; r && i < n; i++) {
        free((char *)r[i].host);
        free((char *)r[i].username);
        free((char *)r[i].password);
        free((char *)r[i].token);
        free((char *)r[i].ca_file);
    }
    free(r);
}

/* (host, transport, skip_verify, search, username, password, token[, ca_file]) → *elem,
 * its strings copies. */
static int reg_item(PyObject *t, void *elem)
{
    boxlite_registry *r = elem;
    const char *host, *user = NULL, *pass = NULL, *token = NULL, *ca = NULL;
    int transport = 0, skip = 0, search = 0;

    if (!PyArg_ParseTuple(t, "si|ppzzzz:registry", &host, &transport, &skip, &search, &user, &pass,
                          &token, &ca))
        return -1;
    r->host = strdup(host);
    r->transport = transport;
    r->skip_verify = skip;
    r->search = search;
    r->username = dup_or_null(user);
    r->password = dup_or_null(pass);
    r->token = dup_or_null(token);
    r->ca_file = dup_or_null(ca);
    return r->host && (!user || r->username) && (!pass || r->password) && (!token || r->token) &&
                   (!ca || r->ca_file)
               ? 0
               : no_memory();
}

static int regs_from(PyObject *obj, boxlite_registry **out, size_t *n_out)
{
    return tuples_from(obj, "registries must be a list of tuples", sizeof(**out), reg_item,
                       regs_free, (void **)out, n_out);
}

static int rt_init(bp_runtime *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"home_dir", "registries", NULL};
    boxlite_runtime_options o = BOXLITE_RUNTIME_OPTIONS_INIT;
    const char *home = NULL;
    PyObject *regs_obj = Py_None;
    boxlite_registry *regs = NULL;
    size_t n_regs = 0;
    char err[ERRMSG], *c_home;
    boxlite_runtime *rt = NULL;
    PyThreadState *ts;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zO:Runtime", kwlist, &home, &regs_obj))
        return -1;
    if (self->rt) {
        PyErr_SetString(PyExc_RuntimeError, "Runtime already initialised");
        return -1;
    }
    if (regs_from(regs_obj, &regs, &n_regs) != 0)
        return -1;
    c_home = dup_or_null(home);
    if (home && !c_home) {
        regs_free(regs, n_regs);
        PyErr_NoMemory();
        return -1;
    }
    o.home_dir = c_home;
    o.registries = regs;
    o.n_registries = n_regs;
    ts = PyEval_SaveThread();
    rc = boxlite_runtime_open(&rt, &o);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    regs_free(regs, n_regs);
    free(c_home);
    if (rc != 0) {
        bp_raise(rc, err);
        return -1;
    }
    self->rt = rt;
    return 0;
}

/* ---- argument conversion: Python str lists → malloc'd NULL-terminated vectors ---- */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* obj: None → *out = NULL; else a sequence of str. */
static int strv_from(PyObject *obj, char ***out, const char *what)
{
    PyObject *seq;
    Py_ssize_t n;
    char **v;

    *out = NULL;
    if (obj == Py_None)
        return 0;
    seq = PySequence_Fast(obj, what);
    if (!seq)
        return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    v = calloc((size_t)n + 1, sizeof(*v));
    for (Py_ssize_t i = 0; v && i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
        if (!s && !PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, what); /* a non-str item: say which option */
        if (!s || !(v[i] = strdup(s))) {
            strv_free(v);
            v = NULL;
        }
    }
    Py_DECREF(seq);
    if (!v) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    *out = v;
    return 0;
}

int bp_strv_from(PyObject *obj, char ***out, const char *what);
void bp_strv_free(char **v);

int bp_strv_from(PyObject *obj, char ***out, const char *what)
{
    return strv_from(obj, out, what);
}

void bp_strv_free(char **v)
{
    strv_free(v);
}

/* ---- boxes ---- */

/* Wrap a C handle (always taken over, freed on failure) and link it into the runtime. */
bp_box *bp_box_wrap(bp_runtime *self, boxlite_box *box)
{
    bp_box *b = PyObject_New(bp_box, &bp_box_type);

    if (!b) {
        boxlite_box_free(box);
        return NULL;
    }
    Py_INCREF(self);
    b->owner = self;
    b->box = box;
    memset(&b->g, 0, sizeof(b->g));
    pthread_mutex_init(&b->op_mu, NULL);
    b->execs = NULL;
    b->closed_why[0] = '\0';
    b->id = PyUnicode_FromString(boxlite_box_id(box));
    b->name = PyUnicode_FromString(boxlite_box_name(box));
    bp_lock();
    b->next = self->boxes;
    self->boxes = b;
    bp_unlock();
    if (!b->id || !b->name) {
        Py_DECREF(b);
        return NULL;
    }
    return b;
}

static void vols_free(void *arr, size_t n)
{
    boxlite_volume *v = arr;

    for (size_t i = 0; v && i < n; i++) {
        free((char *)v[i].host_path);
        free((char *)v[i].guest_path);
    }
    free(v);
}

/* (host_path, guest_path[, read_only]) → *elem. */
static int vol_item(PyObject *t, void *elem)
{
    boxlite_volume *v = elem;
    const char *host, *guest;
    int ro = 0;

    if (!PyArg_ParseTuple(t, "ss|p:volume", &host, &guest, &ro))
        return -1;
    v->host_path = strdup(host);
    v->guest_path = strdup(guest);
    v->read_only = ro;
    return v->host_path && v->guest_path ? 0 : no_memory();
}

static int vols_from(PyObject *obj, boxlite_volume **out, size_t *n_out)
{
    return tuples_from(obj, "volumes must be a list of tuples", sizeof(**out), vol_item, vols_free,
                       (void **)out, n_out);
}

static void ports_free(void *arr, size_t n)
{
    boxlite_port *p = arr;

    for (size_t i = 0; p && i < n; i++) {
        free((char *)p[i].protocol);
        free((char *)p[i].host_ip);
    }
    free(p);
}

/* (host_port, guest_port[, protocol[, host_ip]]) → *elem. */
static int port_item(PyObject *t, void *elem)
{
    boxlite_port *p = elem;
    const char *proto = NULL, *ip = NULL;
    unsigned host = 0, guest = 0;

    if (!PyArg_ParseTuple(t, "II|zz:port", &host, &guest, &proto, &ip))
        return -1;
    p->host_port = host;
    p->guest_port = guest;
    p->protocol = dup_or_null(proto);
    p->host_ip = dup_or_null(ip);
    return (!proto || p->protocol) && (!ip || p->host_ip) ? 0 : no_memory();
}

static int ports_from(PyObject *obj, boxlite_port **out, size_t *n_out)
{
    return tuples_from(obj, "ports must be a list of tuples", sizeof(**out), port_item, ports_free,
                       (void **)out, n_out);
}

static void secrets_free(void *arr, size_t n)
{
    boxlite_secret *v = arr;

    for (size_t i = 0; v && i < n; i++) {
        free((char *)v[i].name);
        if (v[i].value)
            memset((char *)v[i].value, 0, strlen(v[i].value));
        free((char *)v[i].value);
        free((char *)v[i].placeholder);
        strv_free((char **)v[i].hosts);
    }
    free(v);
}

/* (name, value[, [hosts][, placeholder or None]]) → *elem. */
static int secret_item(PyObject *t, void *elem)
{
    boxlite_secret *v = elem;
    const char *name = NULL, *value = NULL, *ph = NULL;
    PyObject *hosts = Py_None;
    char **hv = NULL;

    if (!PyArg_ParseTuple(t, "ss|Oz:secret", &name, &value, &hosts, &ph) ||
        strv_from(hosts, &hv, "secret hosts must be a list of str") != 0)
        return -1;
    *v = (boxlite_secret){strdup(name), strdup(value), (const char *const *)hv, dup_or_null(ph)};
    return v->name && v->value && (!ph || v->placeholder) ? 0 : no_memory();
}

static int secrets_from(PyObject *obj, boxlite_secret **out, size_t *n_out)
{
    return tuples_from(obj, "secrets must be a list of tuples", sizeof(**out), secret_item,
                       secrets_free, (void **)out, n_out);
}

static PyObject *rt_create(bp_runtime *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"image",
                             "name",
                             "cpus",
                             "memory_mib",
                             "disk_size_gb",
                             "env",
                             "working_dir",
                             "user",
                             "entrypoint",
                             "cmd",
                             "auto_remove",
                             "detach",
                             "network_disabled",
                             "volumes",
                             "ports",
                             "allow_net",
                             "auto_delete",
                             "secrets",
                             NULL};
    boxlite_box_options o = BOXLITE_BOX_OPTIONS_INIT;
    const char *image = NULL, *name = NULL, *wd = NULL, *user = NULL;
    PyObject *env = Py_None, *ep = Py_None, *cmd = Py_None, *vols = Py_None, *ports = Py_None;
    PyObject *allow = Py_None, *secrets = Py_None;
    boxlite_secret *c_secrets = NULL;
    size_t n_secrets = 0;
    unsigned cpus = 0, mem = 0, disk = 0;
    long auto_delete = -1;
    int auto_remove = 0, detach = 0, net_off = 0, rc = 0;
    boxlite_volume *c_vols = NULL;
    boxlite_port *c_ports = NULL;
    size_t n_vols = 0, n_ports = 0;
    char **envv = NULL, **epv = NULL, **cmdv = NULL, **allowv = NULL;
    char *c_image = NULL, *c_name = NULL, *c_wd = NULL, *c_user = NULL;
    boxlite_box *box = NULL;
    PyObject *result = NULL;
    PyThreadState *ts;
    char err[ERRMSG];

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zzIIIOzzOOpppOOOlO:create", kwlist, &image, &name,
                                     &cpus, &mem, &disk, &env, &wd, &user, &ep, &cmd, &auto_remove,
                                     &detach, &net_off, &vols, &ports, &allow, &auto_delete,
                                     &secrets))
        return NULL;
    if (strv_from(env, &envv, "env must be a list of str") != 0 ||
        strv_from(ep, &epv, "entrypoint must be a list of str") != 0 ||
        strv_from(cmd, &cmdv, "cmd must be a list of str") != 0 ||
        strv_from(allow, &allowv, "allow_net must be a list of str") != 0 ||
        vols_from(vols, &c_vols, &n_vols) != 0 || ports_from(ports, &c_ports, &n_ports) != 0 ||
        secrets_from(secrets, &c_secrets, &n_secrets) != 0)
        goto out;
    c_image = dup_or_null(image);
    c_name = dup_or_null(name);
    c_wd = dup_or_null(wd);
    c_user = dup_or_null(user);
    o.image = c_image;
    o.name = c_name;
    o.cpus = cpus;
    o.memory_mib = mem;
    o.disk_size_gb = disk;
    o.env = (const char *const *)envv;
    o.working_dir = c_wd;
    o.user = c_user;
    o.entrypoint = (const char *const *)epv;
    o.cmd = (const char *const *)cmdv;
    o.auto_remove = auto_remove;
    o.detach = detach;
    o.network_disabled = net_off;
    o.volumes = c_vols;
    o.n_volumes = n_vols;
    o.ports = c_ports;
    o.n_ports = n_ports;
    o.allow_net = (const char *const *)allowv;
    o.auto_delete = auto_delete;
    o.secrets = c_secrets;
    o.n_secrets = n_secrets;
    if (bp_guard_enter(&self->g) != 0) {
        raise_closed();
        goto out;
    }
    ts = PyEval_SaveThread();
    rc = boxlite_box_create(&box, self->rt, &o);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    if (rc != 0)
        bp_raise(rc, err);
    else
        result = (PyObject *)bp_box_wrap(self, box);
    bp_guard_leave(&self->g);
out:
    strv_free(envv);
    strv_free(epv);
    strv_free(cmdv);
    strv_free(allowv);
    free(c_image);
    free(c_name);
    free(c_wd);
    free(c_user);
    vols_free(c_vols, n_vols);
    ports_free(c_ports, n_ports);
    secrets_free(c_secrets, n_secrets);
    return result;
}

static PyObject *rt_get(bp_runtime *self, PyObject *args)
{
    const char *key;
    char *c_key;
    boxlite_box *box = NULL;
    PyObject *result = NULL;
    PyThreadState *ts;
    char err[ERRMSG];
    int rc;

    if (!PyArg_ParseTuple(args, "s:get", &key))
        return NULL;
    if (bp_guard_enter(&self->g) != 0)
        return raise_closed();
    c_key = strdup(key);
    ts = PyEval_SaveThread();
    rc = c_key ? boxlite_box_get(&box, self->rt, c_key) : BOXLITE_ENOMEM;
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    free(c_key);
    if (rc == BOXLITE_ENOTFOUND) {
        Py_INCREF(Py_None);
        result = Py_None;
    } else if (rc != 0) {
        bp_raise(rc, err);
    } else {
        result = (PyObject *)bp_box_wrap(self, box);
    }
    bp_guard_leave(&self->g);
    return result;
}

PyObject *bp_info_dict(const boxlite_box_info *i);

PyObject *bp_info_dict(const boxlite_box_info *i)
{
    PyObject *d, *code;

    d = Py_BuildValue(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i,s:i,s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:s,s:s,s:l}",
        "id", i->id, "name", i->name, "image", i->image, "state", i->state, "created_at",
        i->created_at, "reason", i->reason, "cpus", i->cpus, "memory_mib", i->memory_mib,
        "disk_size_gb", i->disk_size_gb, "pid", i->pid, "qemu_pid", i->qemu_pid, "detach",
        i->detach ? Py_True : Py_False, "auto_remove", i->auto_remove ? Py_True : Py_False,
        "network_disabled", i->network_disabled ? Py_True : Py_False, "ports", i->ports, "volumes",
        i->volumes, "accel", i->accel, "image_ref", i->image_ref, "image_id", i->image_id,
        "allow_net", i->allow_net, "auto_delete", i->auto_delete);
    code = i->has_exit_code ? PyLong_FromLong(i->exit_code) : (Py_INCREF(Py_None), Py_None);
    if (d && code && PyDict_SetItemString(d, "exit_code", code) == 0) {
        Py_DECREF(code);
        return d;
    }
    Py_XDECREF(code);
    Py_XDECREF(d);
    return NULL;
}

static PyObject *rt_list(bp_runtime *self, PyObject *unused)
{
    boxlite_box_info *infos = NULL;
    size_t n = 0;
    PyObject *list = NULL;
    PyThreadState *ts;
    char err[ERRMSG];
    int rc;

    if (bp_guard_enter(&self->g) != 0)
        return raise_closed();
    ts = PyEval_SaveThread();
    rc = boxlite_box_list_v2(&infos, &n, self->rt, BOXLITE_BOX_INFO_VERSION);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    bp_guard_leave(&self->g);
    if (rc != 0)
        return bp_raise(rc, err);
    list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = bp_info_dict(&infos[i]);
        if (!d || PyList_Append(list, d) != 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    boxlite_box_list_free(infos, n);
    return list;
}

/* boxlite_runtime_get_info as a dict (boxlite.info()). */
static PyObject *rt_info(bp_runtime *self, PyObject *unused)
{
    boxlite_runtime_info *i = calloc(1, sizeof(*i));
    PyThreadState *ts;
    PyObject *d = NULL;
    char err[ERRMSG];
    int rc;

    if (!i)
        return PyErr_NoMemory();
    if (bp_guard_enter(&self->g) != 0) {
        free(i);
        return raise_closed();
    }
    i->version = BOXLITE_RUNTIME_INFO_VERSION;
    ts = PyEval_SaveThread();
    rc = boxlite_runtime_get_info(i, self->rt);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    PyEval_RestoreThread(ts);
    bp_guard_leave(&self->g);
    if (rc == 0)
        d = Py_BuildValue(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:K, s:I, s:K, s:I, s:K}",
            "version", i->boxlite_version, "home", i->home, "guest_dir", i->guest_dir,
            "kernel_version", i->kernel_version, "qemu", i->qemu, "qemu_version", i->qemu_version,
            "shim", i->shim, "accel", i->accel, "accel_reason", i->accel_reason,
            "hardware_isolated", i->hardware_isolated ? Py_True : Py_False, "boxes", i->boxes,
            "boxes_bytes", (unsigned long long)i->boxes_bytes, "images", i->images, "images_bytes",
            (unsigned long long)i->images_bytes, "templates", i->templates, "templates_bytes",
            (unsigned long long)i->templates_bytes);
    free(i);
    return rc == 0 ? d : bp_raise(rc, err);
}

static PyObject *rt_remove(bp_runtime *self, PyObject *args)
{
    const char *key;
    char *c_key;
    boxlite_box *box = NULL;
    PyThreadState *ts;
    int force = 0, rc;
    char err[ERRMSG];

    if (!PyArg_ParseTuple(args, "s|p:remove", &key, &force))
        return NULL;
    if (bp_guard_enter(&self->g) != 0)
        return raise_closed();
    c_key = strdup(key);
    ts = PyEval_SaveThread();
    rc = c_key ? boxlite_box_get(&box, self->rt, c_key) : BOXLITE_ENOMEM;
    if (rc == 0)
        rc = boxlite_box_remove(box, force);
    if (rc != 0)
        bp_copy_error(err, sizeof(err));
    boxlite_box_free(box);
    PyEval_RestoreThread(ts);
    free(c_key);
    bp_guard_leave(&self->g);
    if (rc != 0)
        return bp_raise(rc, err);
    Py_RETURN_NONE;
}

/* Stop and free every box this runtime opened, then the runtime. Idempotent. */
static void rt_close_nogil(bp_runtime *self, int stop_timeout_ms)
{
    bp_box *b;

    bp_lock();
    if (self->g.closing || self->g.closed) {
        while (!self->g.closed)
            bp_wait();
        bp_unlock();
        return;
    }
    self->g.closing = 1;
    while (self->g.users > 0)
        bp_wait();
    for (;;) {
        for (b = self->boxes; b && (b->g.closing || b->g.closed); b = b->next)
            ;
        if (!b)
            break;
        b->g.closing = 1; /* claimed: its dealloc waits for the close to finish */
        bp_unlock();
        bp_box_close_claimed(b, stop_timeout_ms, "the boxlite runtime has been shut down");
        bp_lock();
    }
    while (self->boxes) /* boxes being closed by their own dealloc */
        bp_wait();
    bp_unlock();
    boxlite_runtime_free(self->rt);
    bp_lock();
    self->rt = NULL;
    self->g.closing = 0;
    self->g.closed = 1;
    bp_broadcast();
    bp_unlock();
}

static PyObject *rt_close(bp_runtime *self, PyObject *args)
{
    int timeout_ms = BOXLITE_STOP_TIMEOUT_DEFAULT_MS;
    PyThreadState *ts;

    if (!PyArg_ParseTuple(args, "|i:close", &timeout_ms))
        return NULL;
    if (!self->rt && !self->g.closed)
        Py_RETURN_NONE;
    ts = PyEval_SaveThread();
    rt_close_nogil(self, timeout_ms);
    PyEval_RestoreThread(ts);
    Py_RETURN_NONE;
}

static PyObject *rt_home(bp_runtime *self, void *unused)
{
    if (!self->rt)
        return raise_closed();
    return PyUnicode_FromString(boxlite_runtime_home(self->rt));
}

static PyObject *rt_closed(bp_runtime *self, void *unused)
{
    return PyBool_FromLong(self->g.closed || self->g.closing);
}

static void rt_dealloc(bp_runtime *self)
{
    /* Every box holds a reference to its runtime: none is left here. */
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->rt) {
        PyThreadState *ts = PyEval_SaveThread();
        rt_close_nogil(self, -1);
        PyEval_RestoreThread(ts);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef rt_methods[] = {
    {"create", (PyCFunction)(void (*)(void))rt_create, METH_VARARGS | METH_KEYWORDS,
     "create(image=None, name=None, cpus=0, memory_mib=0, disk_size_gb=0, env=None, "
     "working_dir=None, user=None, entrypoint=None, cmd=None, auto_remove=False, "
     "detach=False, network_disabled=False, volumes=None, ports=None, allow_net=None) -> Box; "
     "volumes: "
     "[(host_path, guest_path, read_only)], ports: [(host_port, guest_port, protocol, host_ip)]"},
    {"get", (PyCFunction)rt_get, METH_VARARGS, "get(id_or_name) -> Box or None"},
    {"list", (PyCFunction)rt_list, METH_NOARGS, "list() -> [info dict], newest first"},
    {"info", (PyCFunction)rt_info, METH_NOARGS,
     "info() -> dict: versions, paths, accel, what the store holds and takes on disk"},
    {"remove", (PyCFunction)rt_remove, METH_VARARGS, "remove(id_or_name, force=False)"},
    {"close", (PyCFunction)rt_close, METH_VARARGS,
     "close(stop_timeout_ms=10000): stop the boxes this runtime started and free it"},
    {"import_box", (PyCFunction)(void (*)(void))bp_rt_import_box, METH_VARARGS | METH_KEYWORDS,
     "import_box(path, name=None, untrusted=False) -> Box from a .boxlite archive"},
    {"image_pull", (PyCFunction)bp_rt_image_pull, METH_VARARGS,
     "image_pull(ref) -> image dict (name, repository, tag, id, digest, size, cached_at)"},
    {"image_import", (PyCFunction)bp_rt_image_import, METH_VARARGS,
     "image_import(path, name=None) -> image dict"},
    {"image_list", (PyCFunction)bp_rt_image_list, METH_NOARGS, "image_list() -> [image dict]"},
    {"image_remove", (PyCFunction)bp_rt_image_remove, METH_VARARGS,
     "image_remove(ref, force=False)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef rt_getset[] = {
    {"home", (getter)rt_home, NULL, "the runtime's home directory", NULL},
    {"closed", (getter)rt_closed, NULL, "whether close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject bp_runtime_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "boxlite._core.Runtime",
    .tp_basicsize = sizeof(bp_runtime),
    .tp_weaklistoffset = offsetof(bp_runtime, weakrefs),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Runtime(home_dir=None, registries=None): an open boxlite runtime home; "
              "registries: [(host, transport, skip_verify, search, username, password, token"
              "[, ca_file])], transport 0 https, 1 http.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rt_init,
    .tp_dealloc = (destructor)rt_dealloc,
    .tp_methods = rt_methods,
    .tp_getset = rt_getset,
};
