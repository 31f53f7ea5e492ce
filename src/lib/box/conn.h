/* conn.h — the host end of one agent channel: framed, locked writes, and the reader (one
 * epoll thread per process for every channel, conn.c) that splits incoming frames and hands
 * each to the exec that owns its stream. */
#ifndef BL_CONN_H
#define BL_CONN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "frameio.h"
#include "proto.h"

struct boxlite_exec;

struct bl_conn {
    int fd;                    /* non-blocking */
    struct bl_frame_reader in; /* the reader thread's alone while the channel is registered */
    uint64_t rid;              /* the reader's fields (conn.c's rd.mu): its epoll id, */
    int rlisted;               /* ... whether it is registered, */
    unsigned repoch;           /* ... in which process (a fork starts again), */
    struct bl_conn *rnext;     /* ... the next registered channel */
    int refs;                  /* the box's and each exec's; guarded by mu */
    pthread_mutex_t mu;        /* guards everything below and every exec's state */
    pthread_cond_t cond;       /* broadcast after every frame and on close */
    uint64_t gen;              /* counts those broadcasts: a waiter sleeps while it is unchanged */
    pthread_mutex_t wmu;       /* serialises writes to fd */
    int closed;
    char close_reason[256];
    int hello;
    uint32_t agent_version;
    uint64_t pongs;
    int64_t last_rx_ms;   /* CLOCK_MONOTONIC ms of the last frame from the box */
    int64_t last_ping_ms; /* of the last liveness PING sent (exec.c's watchdog) */
    uint32_t next_stream;
    uint64_t mon_replies; /* BL_F_MONITOR_REPLY frames seen */
    uint32_t mon_status;
    char mon_msg[512];
    struct boxlite_exec *execs; /* streams with a live handle */
    char label[64];             /* "box <id>" for messages */
};

/* Take ownership of fd (a connected stream socket), make it non-blocking and hand it to the
 * process's reader thread (started with the first channel, ending with the last).
 * *out holds one reference: bl_conn_unref. */
int bl_conn_open(struct bl_conn **out, int fd, const char *label);

/* Wait until the agent's HELLO arrives or deadline_ms (CLOCK_MONOTONIC ms) passes. alive()
 * is polled every 100 ms and aborts the wait when it returns non-zero (its error is kept). */
int bl_conn_wait_hello(struct bl_conn *c, int64_t deadline_ms, int (*alive)(void *), void *ctx);

/* Send one frame. Safe from any thread; never called with c->mu held. */
int bl_conn_send(struct bl_conn *c, uint8_t type, uint32_t stream, const void *payload, size_t len);

/* One PING/PONG round trip; waits up to timeout_ms. */
int bl_conn_ping(struct bl_conn *c, int timeout_ms);

/* Ask the box monitor for op (BL_MON_*) on name and wait up to timeout_ms for its answer;
 * a refusal is an error carrying the monitor's message. */
int bl_conn_monitor(struct bl_conn *c, uint32_t op, const char *name, int timeout_ms);

/* Mark closed with reason (first reason wins) and wake every waiter. Caller holds c->mu. */
void bl_conn_mark_closed_locked(struct bl_conn *c, const char *reason);

/* Absolute deadline → timespec for pthread_cond_timedwait on c->cond. */
void bl_deadline_ts(struct timespec *ts, int64_t deadline_ms);

/* Another holder of c (an exec handle): released with bl_conn_unref. */
void bl_conn_ref(struct bl_conn *c);

/* Drop one hold; the last one takes the channel from the reader (waiting out a dispatch in
 * progress), closes fd and frees. Never called by the reader thread.
 * Until then a closed channel stays valid memory for the execs that point into it.
 * Accepts NULL. */
void bl_conn_unref(struct bl_conn *c);

/* Implemented by exec.c: called by the reader with c->mu held. */
void bl_exec_on_frame(struct boxlite_exec *ex, const struct bl_frame *f);
void bl_exec_on_close(struct boxlite_exec *ex);
struct boxlite_exec *bl_exec_next(struct boxlite_exec *ex);
uint32_t bl_exec_stream(const struct boxlite_exec *ex);

#endif
