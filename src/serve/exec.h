/* exec.h — executions as exec.c and attach.c share them: one process started through the API,
 * its output pump, its backlog while nobody is attached, and the attachment slot. */
#ifndef BOXLITE_SERVE_EXEC_H
#define BOXLITE_SERVE_EXEC_H

#include "serve.h"

#define EXEC_BACKLOG_MAX (1u << 20) /* output kept while nobody is attached */
#define ATTACH_QUEUE_MAX (1u << 20) /* output queued towards one WebSocket */

struct attach; /* attach.c */

struct sexec {
    struct sexec *next;
    char id[40];
    char principal[32]; /* who started it (per-key limits) */
    struct sbox *box;
    boxlite_exec *ex;
    int tty;
    int64_t started_at; /* unix seconds */
    double started_mono;
    int refs; /* guarded by the registry lock */

    pthread_mutex_t mu; /* state below */
    int finished, killed, attach_reserved;
    int wait_rc;
    boxlite_exec_result res;
    double duration_ms;

    pthread_mutex_t dmu; /* delivery: att and the backlog */
    pthread_cond_t dcond;
    struct attach *att;
    double unattached_since; /* monotonic; while att is NULL */
    int reaped;
    unsigned char *backlog; /* frames: [u32 len][channel][bytes] */
    size_t blen;

    /* the pump thread's own (exec.c): */
    struct sexec *pnext; /* in its list */
    int efd;             /* boxlite_exec_fd */
    int streams_done;    /* the output has ended; the exit is awaited */
    unsigned char *held; /* a frame neither the attachment nor the backlog had room for */
    size_t held_len;
    /* atomic; set under dmu: the fd said stdin credit came back; the pump leaves the fd alone
     * until the attachment has written again (attach.c clears it and wakes the pump) */
    int stdin_wait;
};

/* Find an execution of box_id (box id as the registry knows it) and take a reference. */
struct sexec *sexec_find(const char *box_id, const char *exec_id);
void sexec_put(struct sexec *x);
void sexec_ref(struct sexec *x);
/* The execution named by the request path (box, exec) with a reference; NULL (404 queued). */
struct sexec *exec_from_path(struct req *r);

/* attach.c: send output, the exit frame, to an attachment. -1 when it is closing; output
 * also 1 when its queue is full (try again after exec_pump_wake). Called with x->dmu held. */
int attach_send_output(struct attach *a, const unsigned char *frame, size_t len);
/* The exit code the Box API reports for a wait that answered wait_rc with *r: as BoxLite's
 * core, the process's code, or minus the signal that ended it (-9 for SIGKILL); -1 when the
 * wait failed. */
int sexec_exit_code(int wait_rc, const boxlite_exec_result *r);
int attach_send_exit(struct attach *a, int exit_code);
/* The execution's fd told of stdin credit: the loop writes a's pending stdin again. Called
 * with x->dmu held, after setting x->stdin_wait. */
void attach_stdin_credit(struct attach *a);
/* Wake the pump thread: an attachment came, went or drained its queue. Any thread. */
void exec_pump_wake(void);
/* signal_allowed: the signals a client may send (decode.h). */
/* The number of WebSocket attachments open. */
unsigned attach_count(void);
/* End the attachments' loop thread once none is left (shutdown). */
void attach_loop_stop(void);

#endif
