/* core.h — boxlite._core, the CPython binding over include/boxlite.h: the runtime, box and
 * exec types, and the guard that keeps a C handle alive while threads without the GIL use it.
 *
 * Every blocking C call runs with the GIL released. A handle is only freed once no thread is
 * inside a call on it: each call "enters" the object's guard and "leaves" it afterwards, and
 * closing waits for the users to leave. Exec calls wait in short slices so that a close (a box
 * stop, a runtime shutdown) never waits long for a reader. */
#ifndef BP_CORE_H
#define BP_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <boxlite.h>
#include <pthread.h>
#include <stdint.h>

/* Users of a C handle. All fields are guarded by the module's one mutex (bp_lock). */
struct bp_guard {
    int users;   /* threads inside a call on the handle */
    int closing; /* a close (or an exec drain) is in progress: no new users */
    int closed;  /* the handle is gone */
};

void bp_lock(void);
void bp_unlock(void);
void bp_wait(void);               /* wait for a bp_broadcast; bp_lock held */
int bp_wait_ms(int64_t deadline); /* the same, until a CLOCK_MONOTONIC deadline (ms) */
void bp_broadcast(void);          /* bp_lock held */
int64_t bp_now_ms(void);

int bp_guard_enter(struct bp_guard *g); /* 0, or -1 when the handle is closing or closed */
void bp_guard_leave(struct bp_guard *g);

/* Raise the exception registered for a BOXLITE_E* code with the C message. Returns NULL. */
PyObject *bp_raise(int code, const char *msg);

/* Copy this thread's boxlite_error_last() into buf (call before retaking the GIL). */
void bp_copy_error(char *buf, size_t cap);

typedef struct bp_runtime bp_runtime;
typedef struct bp_box bp_box;
typedef struct bp_exec bp_exec;

struct bp_runtime {
    PyObject_HEAD boxlite_runtime *rt;
    struct bp_guard g;
    bp_box *boxes; /* open boxes, linked through bp_box.next; under bp_lock */
    PyObject *weakrefs;
};

struct bp_box {
    PyObject_HEAD bp_runtime *owner; /* strong reference */
    boxlite_box *box;
    struct bp_guard g;
    pthread_mutex_t op_mu; /* one box call at a time (the C handle is not thread-safe) */
    bp_box *next;          /* in owner->boxes */
    bp_exec *execs;        /* linked through bp_exec.next; under bp_lock */
    PyObject *id, *name;
    char closed_why[160];
};

struct bp_buf {
    char *data;
    size_t off, len;
};

struct bp_exec {
    PyObject_HEAD bp_box *owner; /* strong reference */
    boxlite_exec *ex;            /* NULL once drained */
    struct bp_guard g;           /* closing: a drain is in progress */
    bp_exec *next;
    int drained; /* the C handle is gone; output and result were kept below */
    struct bp_buf out[2];
    int have_result;
    boxlite_exec_result result;
    char lost[256]; /* why there is no result, when !have_result */
    int pollfd;     /* fd(): a dup of boxlite_exec_fd (readable for ever once drained), or -1 */
};

extern PyTypeObject bp_runtime_type;
extern PyTypeObject bp_box_type;
extern PyTypeObject bp_exec_type;

/* Box internals shared with the runtime (all without the GIL). */
void bp_box_close_claimed(bp_box *b, int stop_timeout_ms, const char *why);

/* Run fn as one call on the box: inside its guard, without the GIL, under op_mu, after the
 * execs whose process ended were drained. Returns fn's code, with err filled when it is not 0,
 * or 1 when the handle is closed (then raise with bp_box_raise_closed). With the GIL. */
int bp_box_run(bp_box *b, int (*fn)(bp_box *b, void *arg), void *arg, char *err, size_t cap);
PyObject *bp_box_raise_closed(bp_box *b);

/* Box methods implemented in snapshot.c. */
PyObject *bp_box_snapshot_create(bp_box *b, PyObject *args, PyObject *kw);
PyObject *bp_box_snapshot_list(bp_box *b, PyObject *unused);
PyObject *bp_box_snapshot_restore(bp_box *b, PyObject *args, PyObject *kw);
PyObject *bp_box_snapshot_remove(bp_box *b, PyObject *args);
PyObject *bp_box_clone(bp_box *b, PyObject *args, PyObject *kw);
PyObject *bp_box_fork(bp_box *b, PyObject *args, PyObject *kw);
PyObject *bp_box_export(bp_box *b, PyObject *args, PyObject *kw);

/* Wrap a new C box handle (taken over; freed on failure) and link it into the runtime. With
 * the GIL, inside the runtime's guard. */
bp_box *bp_box_wrap(bp_runtime *rt, boxlite_box *box);

/* Snapshot info → {id, box_id, name, kind, parent, size, created_at}. */
PyObject *bp_snapshot_dict(const boxlite_snapshot_info *s);

/* Runtime method implemented in snapshot.c. */
PyObject *bp_rt_import_box(bp_runtime *self, PyObject *args, PyObject *kw);

/* Runtime methods implemented in image.c. */
PyObject *bp_rt_image_pull(bp_runtime *self, PyObject *args);
PyObject *bp_rt_image_import(bp_runtime *self, PyObject *args);
PyObject *bp_rt_image_remove(bp_runtime *self, PyObject *args);
PyObject *bp_rt_image_list(bp_runtime *self, PyObject *unused);

/* Exec internals shared with the box (without the GIL, bp_lock not held). */
void bp_exec_drain_claimed(bp_exec *e, const char *why);
int bp_exec_done(bp_exec *e);

#endif
