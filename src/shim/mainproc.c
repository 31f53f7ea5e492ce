/* mainproc.c — the box's main process, owned by the shim: its request (entrypoint + cmd,
 * env, cwd, user) written by the library at each start, started on the agent on a stream of
 * the shim's own once the guest answers, its stdout and stderr appended to main.log (capped:
 * a full file becomes main.log.1, one older file kept), its exit status kept for main.c.
 * A full snapshot saves the stream it runs on (sdir/main); a box restored or forked from it
 * takes that running process as its own main process. */
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
#define MAIN_SAVED   "main" /* in a snapshot's directory: "stream N\n" */

struct shim_main {
    char *req;
    size_t req_len;
    struct shim_caplog log;
    int ended, taken, status;
};

static void on_frame(void *ctx, const struct bl_frame *f)
{
    struct shim_main *m = ctx;
    struct bl_exit e;

    if (m->ended)
        return;
    if (f->type == BL_F_STDOUT || f->type == BL_F_STDERR) {
        shim_caplog_put(&m->log, f->payload, f->len);
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

    if (!m)
        return NULL;
    m->log.fd = -1;
    if (bl_read_file(&m->req, &m->req_len, path, MAIN_REQ_MAX) != 0 || m->req_len == 0) {
        shim_main_close(m);
        return NULL;
    }
    shim_caplog_open(&m->log, MAIN_LOG, MAIN_OLD, bl_limit(BL_LIMIT_MAIN_LOG), 1);
    return m;
}

int shim_main_start(struct shim_main *m, struct shim_router *r)
{
    return m ? shim_router_start_main(r, m->req, m->req_len, on_frame, m) : -1;
}

int shim_main_save(struct shim_router *r, const char *sdir)
{
    char path[600], line[32];
    uint32_t g = shim_router_main_stream(r);
    int n = snprintf(line, sizeof(line), "stream %u\n", g);

    if (g == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/" MAIN_SAVED, sdir);
    return bl_write_file_atomic(path, line, (size_t)n, 0600) == 0 ? 0 : -1;
}

/* The stream sdir/main names (sdir: incoming's directory), 0 when none or unreadable. */
static uint32_t saved_stream(const char *incoming)
{
    const char *slash = strrchr(incoming, '/');
    char path[600], *data = NULL, *end = NULL;
    size_t len = 0;
    unsigned long g = 0;
    int n =
        slash ? snprintf(path, sizeof(path), "%.*s/" MAIN_SAVED, (int)(slash - incoming), incoming)
              : snprintf(path, sizeof(path), MAIN_SAVED);

    if (n > 0 && (size_t)n < sizeof(path) && bl_read_file(&data, &len, path, 64) == 0 && len > 7 &&
        memcmp(data, "stream ", 7) == 0 && data[7] >= '1' && data[7] <= '9') {
        errno = 0;
        g = strtoul(data + 7, &end, 10);
        if (errno != 0 || g > UINT32_MAX || !end || (*end != '\n' && *end != '\0'))
            g = 0;
    }
    free(data);
    return (uint32_t)g;
}

int shim_main_adopt(struct shim_main *m, struct shim_router *r, const char *incoming)
{
    uint32_t g = m && incoming ? saved_stream(incoming) : 0;

    if (g == 0)
        return 0;
    return shim_router_adopt_main(r, g, on_frame, m) == 0 ? 1 : -1;
}

int shim_main_take_exit(struct shim_main *m, int *status)
{
    if (!m || !m->ended || m->taken)
        return 0;
    m->taken = 1;
    *status = m->status;
    return 1;
}

int shim_main_running(const struct shim_main *m)
{
    return m && !m->ended;
}

void shim_main_close(struct shim_main *m)
{
    if (!m)
        return;
    shim_caplog_close(&m->log);
    free(m->req);
    free(m);
}
