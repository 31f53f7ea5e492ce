/* proto.h — the agent protocol codec: frame headers, the frame splitter and the
 * payload encoders/decoders, shared by the guest agent and the host. Spec: docs/protocol.md. */
#ifndef BL_PROTO_H
#define BL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define BL_PROTO_VERSION 3
#define BL_FRAME_HDR     12           /* le32 len, u8 version, u8 type, le16 flags, le32 stream */
#define BL_FRAME_MAX     (1u << 20)   /* largest payload either end accepts */
#define BL_DATA_CHUNK    (32u << 10)  /* largest payload of one STDIN/STDOUT/STDERR frame sent */
#define BL_WINDOW_INIT   (256u << 10) /* credit each data direction starts with, per stream */

/* Limits on decoded payload fields (a hostile peer cannot make us allocate more). */
#define BL_MAX_ARGS   4096
#define BL_MAX_ENV    4096
#define BL_MAX_STRING (128u << 10)

enum bl_frame_type {
    BL_F_HELLO = 1,         /* agent→host, stream 0: u32 version, str agent_version */
    BL_F_ERROR = 2,         /* either way: u32 code (enum bl_proto_err), str message */
    BL_F_PING = 3,          /* host→agent: any payload, echoed in PONG */
    BL_F_PONG = 4,          /* agent→host */
    BL_F_SHUTDOWN = 5,      /* host→agent, stream 0: sync filesystems and power off */
    BL_F_MONITOR = 6,       /* client→monitor only, stream 0: u32 op (BL_MON_*), str name */
    BL_F_MONITOR_REPLY = 7, /* monitor→client, stream 0: u32 status (0 ok), str message */
    BL_F_EXEC = 16,         /* host→agent, new stream: struct bl_exec_req */
    BL_F_STARTED = 17,      /* agent→host: u32 pid */
    BL_F_STDIN = 18,        /* host→agent: data; empty payload = end of input */
    BL_F_STDOUT = 19,       /* agent→host: data; empty payload = end of stream */
    BL_F_STDERR = 20,       /* agent→host: data; empty payload = end of stream */
    BL_F_EXIT = 21,         /* agent→host: struct bl_exit; last frame of a stream */
    BL_F_SIGNAL = 22,       /* host→agent: u32 signo, delivered to the process group */
    BL_F_WINDOW = 23,       /* either way: u32 fd (0,1,2), u32 bytes of extra credit */
    BL_F_RESIZE = 24,       /* host→agent: u32 rows, u32 cols (tty execs) */
    BL_F_TYPE_MAX = 24,
};

/* Codes carried by ERROR frames and returned (negated) by the decoders below. */
enum bl_proto_err {
    BL_PE_OK = 0,
    BL_PE_TRUNCATED = 1, /* payload shorter than its fields say */
    BL_PE_VERSION = 2,   /* frame version is not BL_PROTO_VERSION */
    BL_PE_TYPE = 3,      /* unknown frame type */
    BL_PE_TOOBIG = 4,    /* length over BL_FRAME_MAX: framing is lost, close the channel */
    BL_PE_INVALID = 5,   /* a field out of range (count, NUL in a string, trailing bytes) */
    BL_PE_STREAM = 6,    /* frame not valid for the stream's state (unknown id, reused id) */
    BL_PE_NOMEM = 7,
    BL_PE_INTERNAL = 8,
};

struct bl_frame {
    uint8_t type;
    uint8_t version;
    uint16_t flags;
    uint32_t stream;
    uint32_t len;
    const uint8_t *payload; /* borrowed: points into the buffer given to bl_frame_split */
};

/* Encode a header for a payload of len bytes into out[BL_FRAME_HDR]. */
void bl_frame_hdr_encode(uint8_t *out, uint8_t type, uint32_t stream, uint32_t len);

/* Find the first whole frame in buf[0..have).
 * Returns the frame's total size (> 0) and fills *out when one is complete; 0 when more bytes
 * are needed; -BL_PE_TOOBIG when the header announces more than BL_FRAME_MAX (the channel
 * must be closed). A frame of a wrong version or unknown type is still returned whole (so
 * the caller can skip it) with out->version/out->type as sent: check with bl_frame_check. */
long bl_frame_split(const uint8_t *buf, size_t have, struct bl_frame *out);

/* 0 when f has the right version and a known type, else -BL_PE_VERSION or -BL_PE_TYPE. */
int bl_frame_check(const struct bl_frame *f);

/* A growable output buffer for encoding payloads. */
struct bl_wbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed; /* set once an allocation failed or BL_FRAME_MAX was passed */
};
void bl_wbuf_put_u32(struct bl_wbuf *w, uint32_t v);
void bl_wbuf_put_bytes(struct bl_wbuf *w, const void *p, size_t n); /* le32 n + bytes */
void bl_wbuf_put_str(struct bl_wbuf *w, const char *s);             /* NULL → "" */
void bl_wbuf_reset(struct bl_wbuf *w);
void bl_wbuf_free(struct bl_wbuf *w);

/* A bounds-checked reader over one payload. */
struct bl_rbuf {
    const uint8_t *p;
    size_t len;
    size_t off;
};
int bl_rbuf_u32(struct bl_rbuf *r, uint32_t *out);
/* A string: le32 n, n bytes, no NUL inside, n <= BL_MAX_STRING. *out is malloc'd and
 * NUL-terminated; the caller frees it. */
int bl_rbuf_str(struct bl_rbuf *r, char **out);
int bl_rbuf_done(const struct bl_rbuf *r); /* -BL_PE_INVALID when bytes are left over */

#define BL_EXEC_TTY     1u /* run on a pty */
#define BL_EXEC_BUILTIN 2u /* argv[0] names an agent built-in (copy-out, copy-in), not a file */
#define BL_EXEC_DETACH  4u /* for the monitor: the process outlives its client's connection */
/* BL_EXEC_RO_ROOT: the process sees the box's root filesystem read-only (a mount namespace of
 * its own; volumes keep their own mode) */
#define BL_EXEC_RO_ROOT 8u
#define BL_EXEC_FLAGS   (BL_EXEC_TTY | BL_EXEC_BUILTIN | BL_EXEC_DETACH | BL_EXEC_RO_ROOT)
#define BL_MAX_RLIMITS  16 /* RLIMIT_* resources are 0..15 */

/* A resource limit set in the guest before the process runs (setrlimit). */
struct bl_exec_rlimit {
    uint32_t resource;   /* RLIMIT_*, < BL_MAX_RLIMITS */
    uint64_t soft, hard; /* soft <= hard; UINT64_MAX is unlimited */
};

struct bl_exec_req {
    uint32_t flags; /* BL_EXEC_* */
    char **argv;    /* argc >= 1 strings, NULL-terminated */
    uint32_t argc;
    char **env; /* "KEY=VALUE" strings, NULL-terminated */
    uint32_t envc;
    char *cwd;           /* "" → the image's working directory or "/" */
    char *user;          /* "" → root; "name", "uid" or "uid:gid" */
    uint32_t timeout_ms; /* 0 → none */
    uint32_t rows, cols; /* initial tty size when BL_EXEC_TTY */
    uint32_t nrlimits;   /* at most BL_MAX_RLIMITS, each resource once */
    struct bl_exec_rlimit rlimits[BL_MAX_RLIMITS];
};
/* Payload order: u32 flags, u32 argc, argc×str, u32 envc, envc×str, str cwd, str user,
 * u32 timeout_ms, u32 rows, u32 cols, then only when nrlimits > 0 (older peers send and
 * expect nothing more): u32 nrlimits, nrlimits × (u32 resource, u32 soft lo, u32 soft hi,
 * u32 hard lo, u32 hard hi). */
int bl_exec_req_encode(struct bl_wbuf *w, const struct bl_exec_req *req);
/* Fills *out (all fields malloc'd, freed with bl_exec_req_clear) or returns -BL_PE_* and
 * leaves nothing allocated. */
int bl_exec_req_decode(struct bl_exec_req *out, const uint8_t *p, size_t len);
void bl_exec_req_clear(struct bl_exec_req *req);

enum bl_exit_kind {
    BL_EXIT_CODE = 0,    /* code = exit status */
    BL_EXIT_SIGNAL = 1,  /* code = signal number */
    BL_EXIT_NOSTART = 2, /* code = errno of the failed exec (ENOENT → shell's 127) */
    BL_EXIT_TIMEOUT = 3, /* killed by the agent after timeout_ms; code = signal number */
};

struct bl_exit {
    uint32_t kind; /* enum bl_exit_kind */
    int32_t code;
    char *message; /* "" when none; malloc'd by decode */
};
/* Payload: u32 kind, u32 code (two's complement), str message. */
int bl_exit_encode(struct bl_wbuf *w, const struct bl_exit *e);
int bl_exit_decode(struct bl_exit *out, const uint8_t *p, size_t len);

/* The status a shell would report: code, 128+signal, 127/126 for a command not found /
 * not executable. */
int bl_exit_status(const struct bl_exit *e);

/* Small fixed payloads: ERROR (u32 code, str message), HELLO (u32 version, str text),
 * WINDOW (u32 fd, u32 bytes), u32 payloads (STARTED, SIGNAL), RESIZE (u32 rows, u32 cols). */
int bl_u32_str_decode(const uint8_t *p, size_t len, uint32_t *v, char **str); /* ERROR, HELLO */
int bl_u32_decode(const uint8_t *p, size_t len, uint32_t *v);
int bl_u32x2_decode(const uint8_t *p, size_t len, uint32_t *a, uint32_t *b);

/* Operations a client asks the box monitor (boxlite-shim) for with BL_F_MONITOR; the
 * monitor does them itself (QMP, the agent's fs freeze built-ins) and answers with
 * BL_F_MONITOR_REPLY. The agent never sees these frames. */
enum bl_monitor_op {
    BL_MON_SNAPSHOT_DISK = 1, /* freeze, new qcow2 layer, thaw: snapshots/<name>/disk.qcow2 */
    BL_MON_SNAPSHOT_FULL = 2, /* pause, new layer, RAM+devices to snapshots/<name>/memory */
    BL_MON_TEMPLATE_SAVE = 3, /* name = template id: pause, RAM+devices to
                               * $BOXLITE_HOME/templates/<id>/memory, resume (no disk layer) */
    BL_MON_TEMPLATE_DISK = 4, /* name unused: tell the guest the box disk's size (block_resize
                               * to what it is), after a template restore */
    BL_MON_MAIN_START = 5,    /* name unused: start the box's main process now — after a
                               * template restore's attach (a cold boot starts it when ready) */
    BL_MON_PAUSE = 6,         /* name unused: QMP stop (the vCPUs halt; boxlite_box_pause) */
    BL_MON_RESUME = 7,        /* name unused: QMP cont */
};

const char *bl_proto_strerror(int code); /* code as in enum bl_proto_err, either sign */
const char *bl_frame_type_name(unsigned type);

#endif
