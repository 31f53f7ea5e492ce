/* cgroup.c — the guest's cgroup v2 tree, so that a workload cannot starve its own agent:
 * the agent in "agent" (high cpu.weight), every exec'd process in its own "work/eN" under
 * "work" (pids.max and memory.max below the guest's RAM), and the per-exec kill and cleanup.
 *
 *   /sys/fs/cgroup/agent     PID 1 and the built-ins it runs (copy, freeze, identity)
 *   /sys/fs/cgroup/work      memory.max = RAM - reserve, pids.max = threads-max / 2
 *   /sys/fs/cgroup/work/eN   one exec: pids.max = half of work's; cgroup.kill on timeout
 *
 * The child is born in its group (clone3 CLONE_INTO_CGROUP): moving a process by writing
 * cgroup.procs takes the kernel's cgroup_threadgroup_rwsem for writing, which waits for an
 * RCU grace period — ~10 ms per exec under TCG, most of an exec's round trip. Where the
 * kernel refuses (no clone3, or the groups' pids.max is full: a fork counts against it, a
 * move does not) the child forks in the agent's group and moves itself as before.
 *
 * Without cgroup2 (an older kernel) processes run unconfined and a line says so. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CG_ROOT      "/sys/fs/cgroup"
#define CG_AGENT     CG_ROOT "/agent"
#define CG_WORK      CG_ROOT "/work"
#define CG_SHARED    CG_WORK "/shared" /* when a per-exec group cannot be made */
#define AGENT_WEIGHT "10000"           /* cpu.weight: the workload's default is 100 */
#define RESERVE_MIN  (64ull << 20)     /* memory kept out of the workload's reach */
#define RESERVE_MAX  (256ull << 20)
#define MIN_PIDS     256
#define LINGER_MAX   1024 /* per-exec groups left with processes in them (daemons) */

static int cg_ok;
static unsigned long work_pids;
static unsigned next_id = 1;
static unsigned linger[LINGER_MAX];
static size_t nlinger;

static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = -1;

    if (fd >= 0) {
        rc = bl_write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
        close(fd);
    }
    if (rc < 0)
        bl_log("cgroup: write %s to %s: %s", s, path, strerror(errno));
    return rc;
}

/* A number from a /proc file ("MemTotal:" line when key is set); 0 when unreadable. */
static unsigned long long read_num(const char *path, const char *key)
{
    char buf[4096];
    const char *p = buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? bl_read(fd, buf, sizeof buf - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (key != NULL) {
        p = strstr(buf, key);
        if (p == NULL)
            return 0;
        p += strlen(key);
    }
    return strtoull(p, NULL, 10);
}

static int make_group(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        bl_log("cgroup: mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The workload's limits from the guest's size. */
static int limit_work(void)
{
    unsigned long long total = read_num("/proc/meminfo", "MemTotal:") << 10;
    unsigned long long reserve = total / 8;
    unsigned long threads = (unsigned long)read_num("/proc/sys/kernel/threads-max", NULL);
    char v[32];

    if (reserve < RESERVE_MIN)
        reserve = RESERVE_MIN;
    if (reserve > RESERVE_MAX)
        reserve = RESERVE_MAX;
    work_pids = threads / 2 > MIN_PIDS ? threads / 2 : MIN_PIDS;
    snprintf(v, sizeof v, "%lu", work_pids);
    if (write_str(CG_WORK "/pids.max", v) < 0)
        return -1;
    if (total > reserve * 2) {
        snprintf(v, sizeof v, "%llu", total - reserve);
        if (write_str(CG_WORK "/memory.max", v) < 0)
            return -1;
    }
    bl_dbg("cgroup: work pids.max %lu, memory.max %llu of %llu", work_pids, total - reserve, total);
    return 0;
}

void bl_cgroup_setup(void)
{
    int ok;

    if (access(CG_ROOT "/cgroup.controllers", F_OK) < 0) {
        bl_log("cgroup2 is not mounted: processes run without limits");
        return;
    }
    ok = write_str(CG_ROOT "/cgroup.subtree_control", "+cpu +memory +pids") == 0 &&
         make_group(CG_AGENT) == 0 && write_str(CG_AGENT "/cgroup.procs", "0") == 0 &&
         write_str(CG_AGENT "/cpu.weight", AGENT_WEIGHT) == 0 && make_group(CG_WORK) == 0 &&
         limit_work() == 0 &&
         write_str(CG_WORK "/cgroup.subtree_control", "+cpu +memory +pids") == 0 &&
         make_group(CG_SHARED) == 0;
    cg_ok = ok;
    if (!ok)
        bl_log("cgroups incomplete: processes may starve the agent");
}

/* The per-exec group's path; id 0 is the shared one. */
static void group_path(char *out, size_t cap, unsigned id, const char *file)
{
    if (id == 0)
        snprintf(out, cap, CG_SHARED "%s%s", file ? "/" : "", file ? file : "");
    else
        snprintf(out, cap, CG_WORK "/e%u%s%s", id, file ? "/" : "", file ? file : "");
}

int bl_cgroup_new(unsigned *id_out, int *dir_fd_out)
{
    char path[128], v[32];
    unsigned id = next_id;

    *id_out = 0;
    *dir_fd_out = -1;
    if (!cg_ok)
        return -1;
    next_id = next_id == 0xffffffffu ? 1 : next_id + 1;
    group_path(path, sizeof path, id, NULL);
    if (mkdir(path, 0755) == 0) {
        snprintf(v, sizeof v, "%lu", work_pids / 2);
        group_path(path, sizeof path, id, "pids.max");
        (void)write_str(path, v);
        *id_out = id;
    }
    group_path(path, sizeof path, *id_out, NULL);
    *dir_fd_out = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *dir_fd_out >= 0 ? 0 : -1;
}

/* struct clone_args up to its cgroup field (CLONE_ARGS_SIZE_VER2); musl has no linux/sched.h. */
struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};
#define BL_CLONE_INTO_CGROUP 0x200000000ull

pid_t bl_cgroup_fork(int dir_fd, int *entered)
{
    struct clone_args_v2 ca;
    long pid;

    *entered = 0;
    if (dir_fd >= 0) {
        memset(&ca, 0, sizeof ca);
        ca.flags = BL_CLONE_INTO_CGROUP;
        ca.exit_signal = SIGCHLD;
        ca.cgroup = (uint64_t)dir_fd;
        pid = syscall(SYS_clone3, &ca, sizeof ca);
        if (pid >= 0) {
            *entered = 1; /* (the agent is single-threaded: a raw clone is a fork) */
            return (pid_t)pid;
        }
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EAGAIN &&
            errno != EOPNOTSUPP)
            bl_log("cgroup: clone3 into the exec's group: %s (forking)", strerror(errno));
    }
    return fork();
}

int bl_cgroup_enter(int dir_fd)
{
    int fd, rc;

    if (dir_fd < 0)
        return 0;
    fd = openat(dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = bl_write(fd, "0", 1) == 1 ? 0 : -1;
    close(fd);
    return rc;
}

void bl_cgroup_kill(unsigned id)
{
    char path[128];

    if (!cg_ok || id == 0)
        return;
    group_path(path, sizeof path, id, "cgroup.kill");
    (void)write_str(path, "1");
}

void bl_cgroup_kill_all(void)
{
    if (cg_ok)
        (void)write_str(CG_WORK "/cgroup.kill", "1");
}

/* Remove the group; one still holding processes is retried on later calls. */
static int try_remove(unsigned id)
{
    char path[128];

    group_path(path, sizeof path, id, NULL);
    return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

void bl_cgroup_release(unsigned id)
{
    if (!cg_ok || id == 0 || try_remove(id) == 0)
        return;
    if (nlinger < LINGER_MAX)
        linger[nlinger++] = id;
}

void bl_cgroup_sweep(void)
{
    size_t k = 0;

    for (size_t i = 0; i < nlinger; i++)
        if (try_remove(linger[i]) < 0)
            linger[k++] = linger[i];
    nlinger = k;
}
