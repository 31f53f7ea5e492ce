/* qmp.h — the shim's QMP client (qmp.c): QEMU's control monitor on an inherited socketpair.
 * Under TCG QEMU is not a security boundary, so what it answers is read as hostile; the reader
 * is on its own here for tests/fuzz/fuzz_qmp.c. */
#ifndef BL_SHIM_QMP_H
#define BL_SHIM_QMP_H

#include <stddef.h>
#include <stdint.h>

struct shim_qmp {
    int fd;
    int ready;
    int greeted; /* QEMU's greeting read (shim_qmp_greeting or the handshake) */
    int skip;    /* dropping a line longer than buf up to its newline */
    char buf[65536];
    size_t len;
    char line[4096]; /* the last reply (or event, or what went wrong) */
};
void shim_qmp_init(struct shim_qmp *q, int fd);
/* Send one command (a JSON object, optionally with an fd for getfd) and wait for its answer;
 * 0 for {"return":...}, -1 for an error or no answer (q->line says which). */
int shim_qmp_cmd(struct shim_qmp *q, const char *cmd, int pass_fd, int timeout_ms);
/* Read QEMU's greeting (once) by deadline (bl_now_ms): 0 when it came. The capabilities
 * negotiation stays for the first command. */
int shim_qmp_greeting(struct shim_qmp *q, int64_t deadline);
/* Discard pending events (the shim is idle). */
void shim_qmp_drain(struct shim_qmp *q);

/* The reader under shim_qmp_cmd: the next line QEMU sent (a reply or an event, without its
 * newline, NUL-terminated, cut to sizeof(q->line) - 1 bytes) into q->line, reading q->fd until
 * deadline (bl_now_ms). A line longer than q->buf is dropped whole. 0, or -1 on EOF, error or
 * deadline. */
int shim_qmp_read_line(struct shim_qmp *q, int64_t deadline);

#endif
