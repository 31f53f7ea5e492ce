/* shim.h — boxlite-shim, the per-box monitor: it owns QEMU, holds the one agent channel and
 * lets many clients share it over boxes/<id>/shim.sock, and records the box's state. */
#ifndef BL_SHIM_H
#define BL_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pollfd;

#include "frameio.h"
#include "proto.h"
#include "qmp.h"

#define SHIM_MAX_CLIENTS 64
#define SHIM_OUTQ_CAP    (64u << 20) /* a client that lets this much pile up is dropped */

/* ---- caplog.c: a log the guest fills, capped (one older file kept) ---- */

struct shim_caplog {
    const char *name, *old; /* the log and what a full one becomes (static strings) */
    int fd;
    uint64_t cap, used;
};
/* Open name for appending (keep 0: name and old removed first, a fresh log); cap at least
 * 4 KiB. -1 when it cannot be opened (puts are then dropped). Not thread-safe: one writer. */
int shim_caplog_open(struct shim_caplog *l, const char *name, const char *old, uint64_t cap,
                     int keep);
void shim_caplog_put(struct shim_caplog *l, const void *buf, size_t n);
void shim_caplog_close(struct shim_caplog *l);

/* ---- console.c: the guest console, capped ---- */

struct shim_console;
/* Listen on console.sock in the cwd (the box directory) for QEMU's serial port and drain it
 * into console.log by a thread, rotating at BOXLITE_MAX_CONSOLE. NULL on failure. */
struct shim_console *shim_console_open(void);

/* Start draining it (a thread). Only after QEMU is forked: a child forked from a process
 * with threads may only call async-signal-safe functions, and the jail's child does more. */
int shim_console_run(struct shim_console *c);
/* After QEMU ended: write what it left buffered, stop the thread, free. Accepts NULL. */
void shim_console_close(struct shim_console *c);

/* ---- router.c: connections and stream routing ---- */

/* One framed, non-blocking connection with an output queue. */
struct shim_conn {
    int fd;
    struct bl_frame_reader in; /* frameio.h */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
};

void shim_conn_init(struct shim_conn *c, int fd);
void shim_conn_close(struct shim_conn *c);
/* Queue a frame; -1 when the queue would pass SHIM_OUTQ_CAP or memory ran out. */
int shim_conn_queue(struct shim_conn *c, uint8_t type, uint32_t stream, const void *payload,
                    size_t len);
/* Write what is queued; -1 on a broken connection. */
int shim_conn_flush(struct shim_conn *c);
/* Read what is available and call fn for each whole frame; -1 at EOF or on error. */
int shim_conn_read(struct shim_conn *c, void (*fn)(void *ctx, const struct bl_frame *f), void *ctx);

struct shim_router;

/* The router: the agent connection, the clients and the stream map between them. */
struct shim_router *shim_router_new(int agent_fd);
void shim_router_free(struct shim_router *r);
/* A new client on the listening socket (fd is taken). */
void shim_router_add_client(struct shim_router *r, int fd);
/* Poll set: fills pfd (agent first, then clients); returns the count. */
int shim_router_poll_fill(struct shim_router *r, struct pollfd *pfd, int max);
/* Handle the poll results; returns -1 when the agent channel is gone. */
int shim_router_poll_done(struct shim_router *r, const struct pollfd *pfd, int n);
/* 1 once the agent's HELLO arrived. */
int shim_router_ready(const struct shim_router *r);
/* When clients last used the box (bl_now_ms): a stream frame either way or a monitor request
 * (PINGs do not count); -1 while a client's process runs (a stream of a connected client
 * not ended). The main process and detached processes whose client left never count. */
int64_t shim_router_quiet_since(const struct shim_router *r);
/* 1 when some client asked for SHUTDOWN (cleared by the call). */
int shim_router_take_shutdown(struct shim_router *r);
/* Send SHUTDOWN to the agent. */
void shim_router_shutdown_agent(struct shim_router *r);
/* Try to write everything queued to the agent within max_ms. */
void shim_router_flush_agent(struct shim_router *r, int max_ms);
/* A restored guest sends no HELLO (its agent thinks the channel never broke): ping it, and
 * on its answer announce a HELLO of our own; stream ids start high so that they cannot meet
 * the ids of processes restored with the guest. */
void shim_router_restored(struct shim_router *r);
/* A BL_F_MONITOR request some client sent (cleared by the call): 1 and *client, *op and name
 * (cap bytes) filled, or 0. */
int shim_router_take_monitor(struct shim_router *r, int *client, uint32_t *op, char *name,
                             size_t cap);
/* Answer a client's BL_F_MONITOR with BL_F_MONITOR_REPLY (status 0: done). */
void shim_router_monitor_reply(struct shim_router *r, int client, uint32_t status, const char *msg);
/* Run an agent built-in (argv NULL-terminated) on a stream of the shim's own and wait for it
 * to end, serving only the agent channel meanwhile. 0 when it exited 0; else -1 with its
 * stderr (or why) in err. */
int shim_router_builtin(struct shim_router *r, const char *const *argv, int timeout_ms, char *err,
                        size_t cap);

/* Start the box's main process: req is an encoded EXEC request (bl_exec_req). Its frames
 * (STARTED, STDOUT, STDERR, EXIT, ERROR) go to fn(ctx, f), which must not keep f; its output
 * credit is returned as soon as fn has it. -1 when out of memory. */
int shim_router_start_main(struct shim_router *r, const void *req, size_t len,
                           void (*fn)(void *ctx, const struct bl_frame *f), void *ctx);
/* A restored guest's main process, already running on agent stream g (as saved with its
 * snapshot: shim_router_main_stream): its frames go to fn(ctx, f) as above. -1 when g is 0 or
 * in use, or out of memory. */
int shim_router_adopt_main(struct shim_router *r, uint32_t g,
                           void (*fn)(void *ctx, const struct bl_frame *f), void *ctx);
/* The agent stream of the main process while it runs (its EXIT not yet seen), else 0. */
uint32_t shim_router_main_stream(struct shim_router *r);

/* ---- mainproc.c: the box's main process ---- */

struct shim_main;
/* Read the main process's request from path (written by the library at each start) and
 * open main.log (in the cwd, the box directory) to append its output to, moving a full file
 * to main.log.1 (BOXLITE_MAX_MAIN_LOG). NULL when there is none or it cannot be read. */
struct shim_main *shim_main_open(const char *path);
/* Start it on the agent through r. -1 on failure (nothing is started). */
int shim_main_start(struct shim_main *m, struct shim_router *r);
/* A full snapshot's (docs/snapshots.md): the agent stream its guest's main process ran on,
 * saved as sdir/main while the VM is paused; 0 when there was none. */
int shim_main_save(struct shim_router *r, const char *sdir);
/* In a guest restored from the saved VM whose memory file is incoming: take the main process
 * it was running (sdir/main) as this box's, its output and exit as if started here. 1 when
 * taken, 0 when the saved VM had none (or a template's), -1 on failure. */
int shim_main_adopt(struct shim_main *m, struct shim_router *r, const char *incoming);
/* 1 once, when it has ended: *status is its exit status (a shell's: 128+signal, 127 when it
 * could not start). */
int shim_main_take_exit(struct shim_main *m, int *status);
/* 1 while it runs (started or taken over, no exit told yet); 0 for NULL. */
int shim_main_running(const struct shim_main *m);
/* Close the log and free. Accepts NULL. */
void shim_main_close(struct shim_main *m);

/* ---- qmp.c: QEMU's control monitor (qmp.h) ---- */

/* ---- cowram.c: the pages a QEMU wrote into RAM it maps copy-on-write ---- */
/* Write into out (at the same offsets) every page of guest RAM that QEMU process qemu holds
 * itself in its copy-on-write mapping of the saved RAM file saved (the pages the guest wrote
 * since it was restored); the rest is saved's. The guest must be paused. 0 or -1 with msg. */
int shim_cow_pages(int out, const char *saved, pid_t qemu, char *msg, size_t cap);

/* ---- snapshot.c: snapshots taken by the shim of its running box ---- */
/* Take snapshot name of the running VM in box directory dir (absolute; the cwd): a disk
 * snapshot (agent freeze, new qcow2 layer, thaw) or, with full, a paused one that also saves
 * the VM (shim_save_vm; ram as there). 0 or -1 with msg. */
/* Where a box's guest RAM is, for a full snapshot. */
struct shim_ram {
    const char *own; /* the box's own RAM file, mapped shared, or NULL */
    const char *cow; /* else a saved RAM file QEMU maps copy-on-write (x-cow), or NULL */
    pid_t qemu;      /* that QEMU (cow: its written pages are read from /proc) */
};

int shim_snapshot(struct shim_router *r, struct shim_qmp *q, const char *dir, int full,
                  const struct shim_ram *ram, const char *name, char *msg, size_t cap);

/* QMP: turn on x-ignore-shared (RAM in a shared file is not streamed). It changes the
 * stream's format: on at both ends iff the snapshot has its RAM in a file. */
#define SHIM_QMP_IGNORE_SHARED(on)                                                                 \
    "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":"                   \
    "[{\"capability\":\"x-ignore-shared\",\"state\":" #on "}]}}"

/* Save the paused VM into directory sdir (exists; relative to the cwd or absolute): with
 * ram->own (the box's RAM file, mapped shared by QEMU) a sparse copy of it as sdir/ram and
 * the device state as sdir/memory; with ram->cow (x-cow) the saved file copied and the pages
 * QEMU wrote over it (shim_cow_pages) as sdir/ram, the device state as sdir/memory (our
 * QEMU's migration skips an x-cow block under x-ignore-shared); with neither (RAM mapped
 * privately by a QEMU without x-cow), RAM and device state both streamed into sdir/memory.
 * Restore: docs/snapshots.md. The VM stays paused. 0 or -1 with msg. */
int shim_save_vm(struct shim_qmp *q, const char *sdir, const struct shim_ram *ram, char *msg,
                 size_t cap);
/* Warm templates (docs/templates.md): pause, save the VM as shim_save_vm does into
 * home/templates/<id>/ (id: 64 hex digits; the directory exists) — its RAM file (ram: the
 * box's own, mapped shared) and device state — and resume. 0 or -1 with msg. */
int shim_template_save(struct shim_qmp *q, const char *home, const char *id, const char *ram,
                       char *msg, size_t cap);
/* After a template restore: make QEMU tell the guest the size of the disk it now has (the box
 * disk in the cwd, not the one the template was saved with). 0 or -1 with msg. */
int shim_template_disk(struct shim_qmp *q, char *msg, size_t cap);

/* ---- net.c: the box's network on the host side (libslirp behind the egress policy) ---- */
struct shim_net;
struct bl_db;
/* Read box id's network settings from db and start its network thread: *qemu_fd is the
 * stream socket end for QEMU's -netdev stream (the caller closes it once QEMU has it). A box
 * without network: 0, *out NULL, *qemu_fd -1. -1 with err filled when it cannot start (a
 * published port taken, a bad allow_net entry). *out: shim_net_free. */
int shim_net_start(struct shim_net **out, int *qemu_fd, struct bl_db *db, const char *id, char *err,
                   size_t cap);
/* Stop the thread and free everything. Accepts NULL. */
/* Start the network thread (a no-op for NULL: no network). Only after QEMU is forked, for
 * the reason shim_console_run gives. 0, or -1 with err set. */
int shim_net_run(struct shim_net *n, char *err, size_t cap);

void shim_net_free(struct shim_net *n);
/* May the box open a TCP connection to ip (host byte order) at port, asked for by name (as
 * the client wrote it: a name or an IPv4 literal)? The egress policy as for a direct
 * connection, with a name rule matching name itself. Thread-safe (reads only what set-up
 * wrote). */
int shim_net_dest_allowed(const struct shim_net *n, const char *name, uint32_t ip, uint16_t port);
/* The box's secrets CA certificate (PEM) for the guest to trust, or NULL when the box has no
 * secrets. */
const char *shim_net_secrets_ca(const struct shim_net *n);

/* ---- secrets.c: the secrets proxy (docs/security.md, Secrets) ---- */
struct shim_secrets;
/* Read the box directory's (the cwd's) secrets file and get the proxy ready: its socket
 * (shim_secrets_sock(), in the cwd), the box's CA (made once, kept in the cwd, key 0600). No
 * secrets file: 0 with *out NULL. -1 with err. Destinations are checked with
 * shim_net_dest_allowed(net, ...). *out: shim_secrets_free. */
int shim_secrets_open(struct shim_secrets **out, const struct shim_net *net, const char *id,
                      char *err, size_t cap);
const char *shim_secrets_sock(void);
const char *shim_secrets_ca_pem(const struct shim_secrets *s);
/* Start accepting (threads: only after QEMU is forked). NULL: a no-op. */
int shim_secrets_run(struct shim_secrets *s);
/* Stop, end every connection, free. Accepts NULL. */
void shim_secrets_free(struct shim_secrets *s);

#endif
