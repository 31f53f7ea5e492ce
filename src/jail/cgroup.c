/* cgroup.c — the jail's cgroup: memory, cpu and pids limits for one box's VMM. cgroup v1
 * controllers as root (/sys/fs/cgroup/<controller>/boxlite/<id>), else a child of our own
 * cgroup v2 when it is delegated to us; otherwise skipped with a one-line notice. */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT    "/sys/fs/cgroup"
#define CPU_PERIOD 100000u
#define MAX_DIRS   3

struct bl_jail_cgroup {
    char *dir[MAX_DIRS];
    char *back[MAX_DIRS]; /* v1: where the entering thread was, to return to */
    int n, v2, entered;
};

static const char *const v1_ctl[MAX_DIRS] = {"memory", "cpu", "pids"};

static int put(const char *dir, const char *file, const char *fmt, unsigned long long v)
{
    char path[512], text[64];
    int fd, rc = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    snprintf(text, sizeof(text), fmt, v, (unsigned long long)CPU_PERIOD);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        rc = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
        close(fd);
    }
    return rc;
}

/* v1, as root: one directory per controller. */
static int make_v1(struct bl_jail_cgroup *cg, const char *id, unsigned long long mem, unsigned cpus,
                   unsigned pids)
{
    char top[256];
    int rc = 0;

    for (int i = 0; i < MAX_DIRS && rc == 0; i++) {
        snprintf(top, sizeof(top), CG_ROOT "/%s/boxlite", v1_ctl[i]);
        if (mkdir(top, 0755) != 0 && errno != EEXIST)
            return -1;
        cg->dir[i] = malloc(strlen(top) + strlen(id) + 2);
        if (!cg->dir[i])
            return -1;
        sprintf(cg->dir[i], "%s/%s", top, id);
        cg->n = i + 1;
        if (mkdir(cg->dir[i], 0755) != 0 && errno != EEXIST)
            return -1;
    }
    if (mem)
        rc |= put(cg->dir[0], "memory.limit_in_bytes", "%llu", mem);
    rc |= put(cg->dir[1], "cpu.cfs_period_us", "%llu", CPU_PERIOD);
    rc |= put(cg->dir[1], "cpu.cfs_quota_us", "%llu", (unsigned long long)cpus * CPU_PERIOD);
    rc |= put(cg->dir[2], "pids.max", "%llu", pids);
    return rc;
}

/* v2: a child of the cgroup we are in, when we may write there (root, or delegated). */
static int make_v2(struct bl_jail_cgroup *cg, const char *id, unsigned long long mem, unsigned cpus,
                   unsigned pids)
{
    char line[512] = "", *nl;
    FILE *f = fopen("/proc/self/cgroup", "re");
    int rc = 0;

    while (f && fgets(line, sizeof(line), f) && strncmp(line, "0::", 3) != 0)
        line[0] = '\0';
    if (f)
        fclose(f);
    nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    if (strncmp(line, "0::/", 4) != 0)
        return -1;
    cg->dir[0] = malloc(strlen(line) + strlen(id) + 64);
    if (!cg->dir[0])
        return -1;
    sprintf(cg->dir[0], CG_ROOT "%s%sboxlite-%s", line + 3, line[4] ? "/" : "", id);
    if (mkdir(cg->dir[0], 0755) != 0 && errno != EEXIST) {
        free(cg->dir[0]);
        cg->dir[0] = NULL;
        return -1;
    }
    cg->n = 1;
    cg->v2 = 1;
    if (mem)
        rc |= put(cg->dir[0], "memory.max", "%llu", mem);
    rc |= put(cg->dir[0], "cpu.max", "%llu %llu", (unsigned long long)cpus * CPU_PERIOD);
    rc |= put(cg->dir[0], "pids.max", "%llu", pids);
    return rc;
}

struct bl_jail_cgroup *bl_jail_cgroup_new(const char *id, unsigned long long mem_bytes,
                                          unsigned cpus, unsigned pids, int caller_root)
{
    struct bl_jail_cgroup *cg = calloc(1, sizeof(*cg));
    struct stat st;
    int rc = -1;

    if (!cg)
        return NULL;
    if (stat(CG_ROOT "/cgroup.controllers", &st) == 0)
        rc = make_v2(cg, id, mem_bytes, cpus, pids);
    else if (caller_root && stat(CG_ROOT "/memory", &st) == 0)
        rc = make_v1(cg, id, mem_bytes, cpus, pids);
    if (rc != 0) {
        fprintf(stderr,
                "boxlite: no cgroup for box %s (%s): its VMM runs without memory, cpu "
                "and pids limits\n",
                id,
                caller_root ? "the cgroup controllers cannot be set up" : "no delegated cgroup v2");
        bl_jail_cgroup_free(cg);
        cg = NULL;
    }
    return cg;
}

int bl_jail_cgroup_attach(struct bl_jail_cgroup *cg, pid_t pid)
{
    for (int i = 0; i < cg->n; i++)
        if (put(cg->dir[i], "cgroup.procs", "%llu", (unsigned long long)pid) != 0)
            return -1;
    return 0;
}

/* The v1 directory of controller ctl that this thread is in (CG_ROOT/ctl + its path in
 * /proc/thread-self/cgroup, "ID:ctl[,ctl...]:/path"). Malloc'd; NULL when not found. */
static char *v1_current(const char *ctl)
{
    char line[512], *out = NULL;
    FILE *f = fopen("/proc/thread-self/cgroup", "re");

    while (f && !out && fgets(line, sizeof(line), f)) {
        char *list = strchr(line, ':'), *path = list ? strchr(list + 1, ':') : NULL, *tok, *save;
        if (!path || path[1] != '/')
            continue;
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        for (tok = strtok_r(list + 1, ",", &save); tok && !out; tok = strtok_r(NULL, ",", &save))
            if (strcmp(tok, ctl) == 0 &&
                (out = malloc(strlen(CG_ROOT) + strlen(ctl) + strlen(path) + 3)))
                sprintf(out, CG_ROOT "/%s%s", ctl, strcmp(path, "/") == 0 ? "" : path);
    }
    if (f)
        fclose(f);
    return out;
}

/* cgroup v1 moves the writing thread itself ("0" into tasks) without the global threadgroup
 * lock whose write side waits for an RCU grace period (12-16 ms measured for each
 * cgroup.procs write of another process, on every box start). */
int bl_jail_cgroup_enter(struct bl_jail_cgroup *cg)
{
    if (cg->v2)
        return -1;
    for (int i = 0; i < cg->n; i++) {
        cg->back[i] = v1_current(v1_ctl[i]);
        if (!cg->back[i] || put(cg->dir[i], "tasks", "%llu", 0) != 0) {
            bl_jail_cgroup_leave(cg);
            return -1;
        }
        cg->entered = i + 1;
    }
    return 0;
}

void bl_jail_cgroup_leave(struct bl_jail_cgroup *cg)
{
    for (int i = 0; i < MAX_DIRS; i++) {
        if (i < cg->entered && put(cg->back[i], "tasks", "%llu", 0) != 0)
            fprintf(stderr, "boxlite: cannot return to cgroup %s: %s\n", cg->back[i],
                    strerror(errno));
        free(cg->back[i]);
        cg->back[i] = NULL;
    }
    cg->entered = 0;
}

void bl_jail_cgroup_free(struct bl_jail_cgroup *cg)
{
    if (!cg)
        return;
    for (int i = 0; i < cg->n; i++) {
        if (cg->dir[i])
            rmdir(cg->dir[i]);
        free(cg->dir[i]);
    }
    free(cg);
}
