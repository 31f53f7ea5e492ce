/* agent.h — internal interfaces of boxlite-agent, the guest's PID 1: logging and helpers,
 * mounts, modules, the framed agent channel, process streams and the child-side setup. */
#ifndef BL_AGENT_H
#define BL_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define AGENT_VERSION "boxlite-agent 0.1.0"
#define ROOTFS        "/rootfs"
#define OUTQ_HIGH     (1u << 20) /* stop reading child output above this many queued bytes */

/* ---- util.c ---- */
extern int bl_debug;
void bl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bl_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t bl_now_ms(void);
int bl_set_nonblock(int fd);
ssize_t bl_read(int fd, void *buf, size_t n);        /* EINTR-safe */
ssize_t bl_write(int fd, const void *buf, size_t n); /* EINTR-safe, one call */
int bl_write_all(int fd, const void *buf, size_t n); /* blocking fds only */
void bl_sleep_ms(unsigned ms);
/* Value of "key=value" on the kernel command line copied into out (NUL-terminated);
 * 0 when found, -1 otherwise. */
int bl_cmdline_get(const char *key, char *out, size_t outlen);
int bl_hexval(char c);                            /* a hex digit's value, or -1 */
void bl_poweroff(void) __attribute__((noreturn)); /* sync, unmount, power off */
void bl_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ---- net.c, volumes.c ---- */
void bl_net_loopback(void);             /* lo up: the same in every box (a template's too) */
void bl_net_setup(void);                /* lo, and eth0 + resolv.conf with boxlite.net=user */
void bl_net_setup_mode(int user);       /* the box's part (no lo), told by the host (template.c) */
void bl_mount_volumes(void);            /* boxlite.volN=TAG,ro|rw,PATH */
void bl_mount_volume(const char *spec); /* one TAG,ro|rw,PATH (PATH percent-encoded) */

/* ---- mounts.c ---- */
int bl_mount_early(void);   /* /proc /sys /dev in the initramfs, console on fds 0-2 */
int bl_mount_rootfs(void);  /* wait for /dev/vda, mount it and its pseudo filesystems */
void bl_disk_tune(void);    /* /dev/vda's read-ahead (a template's before it is saved) */
void bl_set_hostname(void); /* boxlite.hostname, else "boxlite" */
void bl_set_hostname_to(const char *name);
void bl_unmount_rootfs(void);

/* ---- cgroup.c: the workload's cgroups (cgroup2 mounted by bl_mount_early) ---- */
void bl_cgroup_setup(void); /* agent and work groups, the workload's limits */
/* A new per-exec group: *id_out (0: the shared group) and an fd on its directory for
 * bl_cgroup_fork; -1 (fd -1) without cgroups. */
int bl_cgroup_new(unsigned *id_out, int *dir_fd_out);
/* fork() with the child born in the group dir_fd (*entered = 1), else in the agent's group
 * (*entered = 0: the child must bl_cgroup_enter before it execs). */
pid_t bl_cgroup_fork(int dir_fd, int *entered);
int bl_cgroup_enter(int dir_fd);     /* in the child: move itself there */
void bl_cgroup_kill(unsigned id);    /* every process of the exec's group */
void bl_cgroup_kill_all(void);       /* every process of the workload */
void bl_cgroup_release(unsigned id); /* remove the group (later, while processes remain) */
void bl_cgroup_sweep(void);          /* retry removing groups that still had processes */

/* ---- template.c: a warm template's agent (boxlite.template=1) ---- */
int bl_template_mode(void);    /* booted as a template: nothing box-specific at boot */
int bl_template_waiting(void); /* a template not attached to its box yet */
struct bl_exec_req;
/* The `attach` built-in, in PID 1: answers STARTED and EXIT on stream. */
void bl_template_attach(uint32_t stream, const struct bl_exec_req *req);

/* ---- modules.c ---- */
void bl_load_modules(const char *dir);

/* ---- channel.c ---- */
int bl_chan_open(void);     /* find and open the boxlite.agent port */
int bl_chan_fd(void);       /* -1 while disconnected (poll nothing) */
short bl_chan_events(void); /* events to poll the port for */
void bl_chan_on_poll(short revents);
void bl_chan_tick(void); /* periodic: notice a reconnected host */
int bl_chan_connected(void);
size_t bl_chan_queued(void);         /* bytes waiting to be written */
void bl_chan_flush(unsigned max_ms); /* best effort, blocking (used at shutdown) */
/* Queue one frame; payload is copied. Never fails loudly: on ENOMEM the frame is lost
 * and logged. */
void bl_send(uint8_t type, uint32_t stream, const void *payload, size_t len);
/* Queue a frame whose buffer holds BL_FRAME_HDR free bytes then len payload bytes;
 * the queue takes ownership of buf. */
void bl_send_owned(uint8_t type, uint32_t stream, uint8_t *buf, size_t len);
void bl_send_error(uint32_t stream, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bl_send_wbuf(uint8_t type, uint32_t stream, struct bl_wbuf *w);
void bl_send_u32(uint8_t type, uint32_t stream, uint32_t v);
void bl_send_u32x2(uint8_t type, uint32_t stream, uint32_t a, uint32_t b);
/* Implemented by main.c: one complete, version-checked frame from the host. */
void bl_dispatch(const struct bl_frame *f);

/* ---- exec.c ---- */
struct pollfd;
void bl_exec_start(uint32_t stream, const uint8_t *payload, size_t len);
/* A built-in answered by PID 1 itself, no child (attach, identity): STARTED (pid 1), then
 * EXIT with code and msg ("" for none) on stream. */
void bl_builtin_done(uint32_t stream, int code, const char *msg);
void bl_stream_stdin(uint32_t stream, const uint8_t *data, size_t len);
void bl_stream_signal(uint32_t stream, const uint8_t *payload, size_t len);
void bl_stream_window(uint32_t stream, const uint8_t *payload, size_t len);
void bl_stream_resize(uint32_t stream, const uint8_t *payload, size_t len);
int bl_streams_count(void);
/* Fill pfd[] (at most max entries) with the child fds to poll; returns how many. */
int bl_streams_poll_fill(struct pollfd *pfd, int max, int out_ok);
void bl_streams_poll_done(const struct pollfd *pfd, int n);
void bl_streams_reaped(pid_t pid, int status);
void bl_streams_end_exited(void);        /* shutdown: EOF + EXIT for each exited process now */
void bl_streams_timers(void);            /* deadlines (timeouts, drain grace) */
uint64_t bl_streams_next_deadline(void); /* 0 when none */
int bl_streams_work_pending(void);       /* a stream can make progress without polling */

/* ---- spawn.c (runs partly in the child) ---- */
struct bl_exec_req;
struct spawn_io {
    int in_w;  /* agent's end of the child's stdin (pty master dup for tty) */
    int out_r; /* agent's end of stdout (pty master for tty) */
    int err_r; /* agent's end of stderr (-1 for tty) */
    int pty;   /* pty master, for TIOCSWINSZ (-1 without tty) */
};
/* Fork and exec req inside ROOTFS, the child in the cgroup whose directory is cg_fd (-1:
 * stay in the agent's). Returns the pid and fills *io, or -1 with errno set
 * and a message in msg (for EXIT NOSTART). */
pid_t bl_spawn(const struct bl_exec_req *req, struct spawn_io *io, int cg_fd, char *msg,
               size_t msglen);
int bl_pty_resize(int fd, uint32_t rows, uint32_t cols);

/* ---- copy.c (runs in the child, after chroot and the user switch) ---- */
/* Run the built-in req->argv[0] names ("copy-out PATH OPTS", "copy-in DEST OPTS") on the
 * child's stdin/stdout/stderr; returns its exit status. */
int bl_builtin_main(const struct bl_exec_req *req);

/* ---- identity.c ---- */
/* In the child: "freeze", "thaw"; -1 when req names neither. */
int bl_builtin_identity(const struct bl_exec_req *req);
/* The identity fix-up itself (hostname, MAC, RNG reseed, clock; "-" skips a part): 0, or -1
 * with the reason in msg. Runs in PID 1. */
int bl_identity_apply(const char *host, const char *mac, const char *hex, const char *unix_ns,
                      char *msg, size_t cap);

/* ---- tunnel.c (runs in the child): "tunnel PORT", a relay between stdin/stdout and a TCP
 * connection to 127.0.0.1:PORT; -1 when req names something else. */
int bl_builtin_tunnel(const struct bl_exec_req *req);

/* ---- trustca.c (runs in the child): "trust-ca PEM", the box's secrets CA made trusted; -1
 * when req names something else. */
int bl_builtin_trust_ca(const struct bl_exec_req *req);

/* ---- user.c (runs in the child, after chroot) ---- */
struct bl_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
    char home[256];
};
/* Resolve "" / "root" / "uid" / "uid:gid" / "name" / "name:group" against /etc/passwd and
 * /etc/group. 0 on success; -1 with errno and msg on failure. */
int bl_user_resolve(const char *spec, struct bl_user *out, char *msg, size_t msglen);

#endif
