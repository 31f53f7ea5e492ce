/* exec.c — boxlite._core.Exec: one process in a box. Reads and waits run without the GIL in
 * short slices, so a box stop can "drain" the exec (keep its buffered output and result, free
 * the C handle) while readers are parked; afterwards the exec answers from what was kept.
 * fd() and timeout() are the event loop's side (boxlite_exec_fd, boxlite_exec_timeout): the
 * async API waits on them and then calls read(mask, 0) / wait(0), with no thread. */
#include "core.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ERRMSG     1024
#define SLICE_MS   200
#define READ_CHUNK 65536
#define GRACE_MS   1000

static int buf_append(struct bp_buf *b, const char *data, size_t n)
{
    char *nd = realloc(b->data, b->len + n);

    if (!nd)
        return -1;
    memcpy(nd + b->len, data, n);
    b->data = nd;
    b->len += n;
    return 0;
}

/* Has the process ended (or its stream failed)? Without the GIL; the caller has claimed e. */
int bp_exec_done(bp_exec *e)
{
    boxlite_exec_result r = BOXLITE_EXEC_RESULT_INIT;

    return e->ex && boxlite_exec_wait_v2(&r, e->ex, 0) != BOXLITE_ETIMEOUT;
}

void bp_exec_drain_claimed(bp_exec *e, const char *why)
{
    int64_t grace = bp_now_ms() + GRACE_MS;
    char *chunk = malloc(READ_CHUNK);
    int killed = 0;
    bp_exec **pp;

    bp_lock();
    while (e->ex && e->g.users > 0) {
        if (!killed && bp_wait_ms(grace) != 0) {
            /* a writer blocked on a full stdin window: end the process to wake it */
            bp_unlock();
            boxlite_exec_signal(e->ex, SIGKILL);
            bp_lock();
            killed = 1;
        } else if (killed) {
            bp_wait();
        }
    }
    bp_unlock();
    for (int i = 0; i < 2 && chunk && e->ex; i++) {
        int which;
        size_t n = 0;
        while (boxlite_exec_read(e->ex, i + 1, &which, chunk, READ_CHUNK, &n, 0) == 0 && n > 0)
            buf_append(&e->out[i], chunk, n);
    }
    free(chunk);
    if (e->ex && boxlite_exec_wait_v2(&e->result, e->ex, 0) == 0)
        e->have_result = 1;
    else
        snprintf(e->lost, sizeof(e->lost), "%s: %s", why[0] ? why : "the process was lost",
                 boxlite_error_last());
    boxlite_exec_free(e->ex);
    bp_lock();
    e->ex = NULL;
    e->drained = 1;
    if (e->pollfd >= 0) { /* wake an event loop: from now on every call answers at once */
        uint64_t one = 1;
        (void)!write(e->pollfd, &one, sizeof(one));
    }
    for (pp = &e->owner->execs; *pp && *pp != e; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = e->next;
    e->g.closing = 0;
    bp_broadcast();
    bp_unlock();
}

/* Wait while a drain runs; then either become a user of the C handle (0) or find it drained
 * (1). bp_lock held. */
static int use_locked(bp_exec *e)
{
    while (e->g.closing)
        bp_wait();
    if (e->drained)
        return 1;
    e->g.users++;
    return 0;
}

static int drained_read_locked(bp_exec *e, int mask, char *buf, size_t cap, int *which, size_t *n)
{
    for (int i = 0; i < 2; i++) {
        struct bp_buf *b = &e->out[i];
        if ((mask & (i + 1)) && b->off < b->len) {
            *n = b->len - b->off < cap ? b->len - b->off : cap;
            memcpy(buf, b->data + b->off, *n);
            b->off += *n;
            *which = i + 1;
            return 0;
        }
    }
    *n = 0;
    *which = 0;
    return 0;
}

static int read_nogil(bp_exec *e, int mask, char *buf, size_t cap, int *which, size_t *n,
                      int timeout_ms, char *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : bp_now_ms() + timeout_ms;
    int rc;

    for (;;) {
        int64_t slice = SLICE_MS;
        bp_lock();
        if (use_locked(e)) {
            rc = drained_read_locked(e, mask, buf, cap, which, n);
            bp_unlock();
            return rc;
        }
        bp_unlock();
        if (deadline >= 0 && deadline - bp_now_ms() < slice)
            slice = deadline - bp_now_ms() > 0 ? deadline - bp_now_ms() : 0;
        rc = boxlite_exec_read(e->ex, mask, which, buf, cap, n, (int)slice);
        if (rc != 0 && rc != BOXLITE_EAGAIN)
            bp_copy_error(err, ERRMSG);
        bp_guard_leave(&e->g);
        if (rc != BOXLITE_EAGAIN || (deadline >= 0 && bp_now_ms() >= deadline))
            return rc;
    }
}

/* read(mask, timeout_ms=-1) -> (which, bytes); b"" once every stream in mask has ended;
 * None when nothing came within timeout_ms. */
static PyObject *exec_read(bp_exec *e, PyObject *args)
{
    int mask, timeout_ms = -1, which = 0, rc;
    char *buf, err[ERRMSG];
    PyObject *r = NULL;
    PyThreadState *ts;
    size_t n = 0;

    if (!PyArg_ParseTuple(args, "i|i:read", &mask, &timeout_ms))
        return NULL;
    buf = malloc(READ_CHUNK);
    if (!buf)
        return PyErr_NoMemory();
    ts = PyEval_SaveThread();
    rc = read_nogil(e, mask, buf, READ_CHUNK, &which, &n, timeout_ms, err);
    PyEval_RestoreThread(ts);
    if (rc == BOXLITE_EAGAIN) {
        Py_INCREF(Py_None);
        r = Py_None;
    } else if (rc != 0) {
        bp_raise(rc, err);
    } else {
        r = Py_BuildValue("(iy#)", which, buf, (Py_ssize_t)n);
    }
    free(buf);
    return r;
}

static PyObject *result_tuple(const boxlite_exec_result *r)
{
    return Py_BuildValue("(iiOs)", r->exit_code, r->signal, r->timed_out ? Py_True : Py_False,
                         r->message);
}

/* wait(timeout_ms=-1) -> (exit_code, signal, timed_out, message), or None on timeout. */
static PyObject *exec_wait(bp_exec *e, PyObject *args)
{
    int timeout_ms = -1, rc = 0, drained = 0;
    int64_t deadline;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    char err[ERRMSG];
    PyThreadState *ts;

    if (!PyArg_ParseTuple(args, "|i:wait", &timeout_ms))
        return NULL;
    deadline = timeout_ms < 0 ? -1 : bp_now_ms() + timeout_ms;
    ts = PyEval_SaveThread();
    for (;;) {
        int64_t slice = SLICE_MS;
        bp_lock();
        drained = use_locked(e);
        bp_unlock();
        if (drained)
            break;
        if (deadline >= 0 && deadline - bp_now_ms() < slice)
            slice = deadline - bp_now_ms() > 0 ? deadline - bp_now_ms() : 0;
        rc = boxlite_exec_wait_v2(&res, e->ex, (int)slice);
        if (rc != 0 && rc != BOXLITE_ETIMEOUT)
            bp_copy_error(err, sizeof(err));
        bp_guard_leave(&e->g);
        if (rc != BOXLITE_ETIMEOUT || (deadline >= 0 && bp_now_ms() >= deadline))
            break;
    }
    PyEval_RestoreThread(ts);
    if (drained) {
        if (e->have_result)
            return result_tuple(&e->result);
        return bp_raise(BOXLITE_ESTATE, e->lost);
    }
    if (rc == BOXLITE_ETIMEOUT)
        Py_RETURN_NONE;
    if (rc != 0)
        return bp_raise(rc, err);
    return result_tuple(&res);
}

/* fd() -> int: for loop.add_reader. Readable while output is unread or the process has
 * ended (boxlite_exec_fd's rule), and for ever once the exec is drained. It belongs to this
 * object (closed with it; the same fd every call): only poll it. */
static PyObject *exec_fd(bp_exec *e, PyObject *unused)
{
    PyThreadState *ts;
    char err[ERRMSG];
    int fd = -1, rc = 0, drained;

    if (e->pollfd >= 0)
        return PyLong_FromLong(e->pollfd);
    ts = PyEval_SaveThread();
    bp_lock();
    drained = use_locked(e);
    bp_unlock();
    if (drained) {
        fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    } else {
        rc = boxlite_exec_fd(&fd, e->ex);
        if (rc == 0)
            fd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* ours: outlives a drain's exec_free */
        else
            bp_copy_error(err, sizeof(err));
    }
    bp_lock();
    if (rc == 0 && fd >= 0)
        e->pollfd = fd;
    bp_unlock();
    if (!drained)
        bp_guard_leave(&e->g);
    PyEval_RestoreThread(ts);
    if (rc != 0)
        return bp_raise(rc, err);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/* timeout() -> int: how many ms an event loop may sleep on fd() before it calls in again (read
 * or wait with 0, or timeout()); -1: no limit (boxlite_exec_timeout). Never waits. */
static PyObject *exec_timeout(bp_exec *e, PyObject *unused)
{
    PyThreadState *ts = PyEval_SaveThread();
    char err[ERRMSG];
    int ms = -1, rc = 0;

    bp_lock();
    if (use_locked(e) == 0) {
        bp_unlock();
        rc = boxlite_exec_timeout(&ms, e->ex);
        if (rc != 0)
            bp_copy_error(err, sizeof(err));
        bp_guard_leave(&e->g);
    } else {
        bp_unlock();
    }
    PyEval_RestoreThread(ts);
    if (rc != 0)
        return bp_raise(rc, err);
    return PyLong_FromLong(ms);
}

enum { X_WRITE, X_WRITE_SOME, X_CLOSE_STDIN, X_SIGNAL, X_RESIZE };

/* One call on the live C handle; BOXLITE_ESTATE with a message once drained. */
static PyObject *simple_call(bp_exec *e, int what, const char *data, size_t len, int a, int b)
{
    PyThreadState *ts;
    char err[ERRMSG];
    int rc = 0, drained;
    size_t n = 0;

    ts = PyEval_SaveThread();
    bp_lock();
    drained = use_locked(e);
    bp_unlock();
    if (!drained) {
        if (what == X_WRITE)
            rc = boxlite_exec_write(e->ex, data, len);
        else if (what == X_WRITE_SOME) /* what the window takes now; EAGAIN: none */
            rc = boxlite_exec_write_v2(e->ex, data, len, &n, 0);
        else if (what == X_CLOSE_STDIN)
            rc = boxlite_exec_close_stdin(e->ex);
        else if (what == X_SIGNAL)
            rc = boxlite_exec_signal(e->ex, a);
        else
            rc = boxlite_exec_resize(e->ex, (unsigned)a, (unsigned)b);
        if (what == X_WRITE_SOME && rc == BOXLITE_EAGAIN)
            rc = 0;
        if (rc != 0)
            bp_copy_error(err, sizeof(err));
        bp_guard_leave(&e->g);
    }
    PyEval_RestoreThread(ts);
    if (drained) {
        if (what == X_CLOSE_STDIN)
            Py_RETURN_NONE;
        return bp_raise(BOXLITE_ESTATE, e->have_result ? "the process has exited" : e->lost);
    }
    if (rc != 0)
        return bp_raise(rc, err);
    if (what == X_WRITE_SOME)
        return PyLong_FromSize_t(n);
    Py_RETURN_NONE;
}

/* write_some(data) -> int: the bytes of data the guest's window takes now (0: none; then
 * fd() turns readable once it has room again). Never waits (boxlite_exec_write_v2, 0). */
static PyObject *write_op(bp_exec *e, PyObject *args, int op, const char *format)
{
    Py_buffer view;
    PyObject *r;

    if (!PyArg_ParseTuple(args, format, &view))
        return NULL;
    r = simple_call(e, op, view.buf, (size_t)view.len, 0, 0);
    PyBuffer_Release(&view);
    return r;
}

static PyObject *exec_write_some(bp_exec *e, PyObject *args)
{
    return write_op(e, args, X_WRITE_SOME, "y*:write_some");
}

/* write(data): all of data, waiting for the guest's window (boxlite_exec_write). */
static PyObject *exec_write(bp_exec *e, PyObject *args)
{
    return write_op(e, args, X_WRITE, "y*:write");
}

static PyObject *exec_close_stdin(bp_exec *e, PyObject *unused)
{
    return simple_call(e, X_CLOSE_STDIN, NULL, 0, 0, 0);
}

static PyObject *exec_signal(bp_exec *e, PyObject *args)
{
    int signo;

    if (!PyArg_ParseTuple(args, "i:signal", &signo))
        return NULL;
    return simple_call(e, X_SIGNAL, NULL, 0, signo, 0);
}

static PyObject *exec_resize(bp_exec *e, PyObject *args)
{
    int rows, cols;

    if (!PyArg_ParseTuple(args, "ii:resize", &rows, &cols))
        return NULL;
    if (rows <= 0 || cols <= 0) {
        PyErr_SetString(PyExc_ValueError, "rows and cols must be positive");
        return NULL;
    }
    return simple_call(e, X_RESIZE, NULL, 0, rows, cols);
}

static void exec_dealloc(bp_exec *e)
{
    PyThreadState *ts = PyEval_SaveThread();
    int claimed = 0;

    bp_lock();
    while (e->g.closing) /* a drain of this exec is finishing */
        bp_wait();
    if (!e->drained) {
        e->g.closing = 1;
        claimed = 1;
    }
    bp_unlock();
    if (claimed) /* nobody else holds this object: no users; free the C handle */
        bp_exec_drain_claimed(e, "");
    PyEval_RestoreThread(ts);
    if (e->pollfd >= 0)
        close(e->pollfd);
    free(e->out[0].data);
    free(e->out[1].data);
    Py_XDECREF(e->owner);
    PyObject_Free(e);
}

static PyMethodDef exec_methods[] = {
    {"read", (PyCFunction)exec_read, METH_VARARGS,
     "read(mask, timeout_ms=-1) -> (which, bytes); b'' at the end; None on timeout"},
    {"wait", (PyCFunction)exec_wait, METH_VARARGS,
     "wait(timeout_ms=-1) -> (exit_code, signal, timed_out, message) or None on timeout"},
    {"fd", (PyCFunction)exec_fd, METH_NOARGS,
     "fd() -> int: poll it (loop.add_reader); readable while output is unread or it ended"},
    {"timeout", (PyCFunction)exec_timeout, METH_NOARGS,
     "timeout() -> int: ms a poller may sleep before calling in; -1: no limit"},
    {"write", (PyCFunction)exec_write, METH_VARARGS, "write(data): send bytes to stdin"},
    {"write_some", (PyCFunction)exec_write_some, METH_VARARGS,
     "write_some(data) -> int: the bytes stdin takes now, never waiting"},
    {"close_stdin", (PyCFunction)exec_close_stdin, METH_NOARGS, "close_stdin()"},
    {"signal", (PyCFunction)exec_signal, METH_VARARGS, "signal(signo)"},
    {"resize", (PyCFunction)exec_resize, METH_VARARGS, "resize(rows, cols): tty execs"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject bp_exec_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "boxlite._core.Exec",
    .tp_basicsize = sizeof(bp_exec),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A process in a box; made by Box.exec.",
    .tp_dealloc = (destructor)exec_dealloc,
    .tp_methods = exec_methods,
    .tp_getset = NULL,
};
