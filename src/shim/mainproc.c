/* mainproc.c — the box's main process, owned by the shim: its request (entrypoint + cmd,
 * env, cwd, user) written by the library at each start, started on the agent on a stream of
 * the shim's own once the guest answers, its stdout and stderr appended to main.log (capped:
 * a full file becomes main.log.1, one older file kept), its exit status kept for main.c. */
#include "shim.h"

#include "bounds.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAIN_LOG     "main.log"
#define MAIN_OLD     "main.log.1"
#define MAIN_REQ_MAX (BL_FRAME_MAX)

struct shim_main {
    char *req;
    size_t req_len;
    int log_fd;
    uint64_t cap, used;
    int ended, taken, status;
};

static int open_log(void)
{
    return open(MAIN_LOG, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* n guest bytes into the log; a full log becomes main.log.1 and a new one starts. */
static void put(struct shim_main *m, const uint8_t *p, size_t n)
{
    while (n > 0 && m->log_fd >= 0) {
        size_t room = m->cap > m->used ? (size_t)(m->cap - m->used) : 0;
        size_t k = n < room ? n : room;
        ssize_t w = k ? write(m->log_fd, p, k) : 0;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* a full disk: the output is dropped, the box goes on */
        m->used += (uint64_t)w;
        p += w;
        n -= (size_t)w;
        if (m->used >= m->cap) {
            close(m->log_fd);
            rename(MAIN_LOG, MAIN_OLD);
            m->log_fd = open_log();
            m->used = 0;
        }
    }
}

static void on_frame(void *ctx, const struct bl_frame *f)
{
    struct shim_main *m = ctx;
    struct bl_exit e;

    if (m->ended)
        return;
    if (f->type == BL_F_STDOUT || f->type == BL_F_STDERR) {
        put(m, f->payload, f->len);
    } else if (f->type == BL_F_EXIT) {
        m->ended = 1;
        m->status = 255;
        if (bl_exit_decode(&e, f->payload, f->len) == 0) {
            m->status = bl_exit_status(&e);
            free(e.message);
        }
    } else if (f->type == BL_F_ERROR) {
        m->ended = 1;
        m->status = 127; /* the agent refused to start it */
    }
}

struct shim_main *shim_main_open(const char *path)
{
    struct shim_main *m = calloc(1, sizeof(*m));
    struct stat st;

    if (!m)
        return NULL;
    m->log_fd = -1;
    if (bl_read_file(&m->req, &m->req_len, path, MAIN_REQ_MAX) != 0 || m->req_len == 0) {
        shim_main_close(m);
        return NULL;
    }
    m->cap = bl_limit(BL_LIMIT_MAIN_LOG);
    if (m->cap < 4096)
        m->cap = 4096;
    m->log_fd = open_log();
    m->used = m->log_fd >= 0 && fstat(m->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return m;
}

int shim_main_start(struct shim_main *m, struct shim_router *r)
{
    return m ? shim_router_start_main(r, m->req, m->req_len, on_frame, m) : -1;
}

int shim_main_take_exit(struct shim_main *m, int *status)
{
    if (!m || !m->ended || m->taken)
        return 0;
    m->taken = 1;
    *status = m->status;
    return 1;
}

void shim_main_close(struct shim_main *m)
{
    if (!m)
        return;
    if (m->log_fd >= 0)
        close(m->log_fd);
    free(m->req);
    free(m);
}
