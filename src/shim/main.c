/* main.c — boxlite-shim's life: start QEMU with the agent channel, report readiness to the
 * starter, serve clients until the VM ends, stop it on request or when its owner dies, and
 * record the outcome in the store.
 *
 * usage: boxlite-shim --home H --id ID --status-fd N [--lifeline-fd N] [--boot-timeout-ms N]
 *                     [--auto-remove] [--incoming FILE] [--main FILE] [--ram-fill FILE]
 *                     [--spare-dir DIR] [--tb-idle-ms N] [--jail SPEC]... -- QEMU-ARGV...
 * --main: the box's main process (mainproc.c), started once the guest answers (a guest
 * restored with --incoming runs on the one its snapshot saved); when it exits the box stops. A
 * stopped box with auto_delete N > 0 (its row) is deleted N s later: this process waits that long
 * after recording the end, then deletes it if still due. QEMU's agent chardev is fd 3, its QMP
 * monitor fd 4, and with --incoming the saved state of a full snapshot is fd 5 (`-incoming fd:5`).
 * --tb-idle-ms (TCG): clients quiet that long, QEMU drops its translations (tb_discard_when_idle).
 * QEMU runs in the jail (src/jail) the SPECs describe. */
#include "shim.h"

#include "jail.h"

#include "boxlite.h"
#include "boxstate.h"
#include "db.h"
#include "spare.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_FD         3
#define QMP_FD           4
#define INCOMING_FD      5
#define NET_FD           6 /* the network stream (net.c), as vmm.c names it */
#define STOP_GRACE_MS    10000
#define DEFAULT_BOOT_MS  60000
#define RUN_LOCK_WAIT_MS 5000
#define QEMU_LOG_CAP     (1 << 20) /* a monitor that recorded its end exits within this */
#define POLL_MAX         (SHIM_MAX_CLIENTS + 8)
#define MAX_JAIL_SPECS   4096 /* as the jail's mounts: a box's own layers come one by one */
/* The one switch for the jail's network namespace. The guest network reaches QEMU as an fd
 * (-netdev stream, the shim's slirp behind the policy filter: net.c), so QEMU runs in an
 * empty network namespace of its own: it can open no host socket at all. */
#define JAIL_SHARE_HOST_NET 0

struct shim {
    const char *home, *id, *incoming, *main_req;
    struct shim_main *mainp; /* mainproc.c: the box's main process, NULL when none */
    const char *ram;         /* the box's own RAM file, mapped shared (jail spec "ram:"), or NULL */
    int cow_ram; /* RAM mapped privately from a saved file (jail spec "cow-ram:"/"ro-ram:") */
    const char *cow_file; /* that file when QEMU opened it read-only (x-cow, "ro-ram:") */
    int ram_loaded; /* ram (the box's own) holds the incoming RAM ("ram-loaded:"), once filled */
    const char *ram_fill;  /* a saved RAM file to copy into ram while QEMU starts, or NULL */
    pid_t fill_pid;        /* the child copying it, -1 when none */
    const char *spare_dir; /* a template to make the next spare RAM file of, or NULL */
    pthread_t spare_thread;
    int spare_started;
    int log_fd; /* qemu.log (O_APPEND, QEMU's stderr too), kept under QEMU_LOG_CAP */
    char *dir;  /* absolute box directory (the cwd) */
    struct shim_qmp qmp;
    int incoming_fd;
    char **qemu_argv;
    char *jail_specs[MAX_JAIL_SPECS];
    int njail;
    struct bl_jail *jail;
    int status_fd, lifeline_fd, boot_ms, auto_remove;
    struct bl_db *db;
    int listen_fd, sig_fd, pid_fd;
    pid_t qemu;
    struct shim_router *router;
    struct shim_console *console; /* console.c: QEMU's serial port into a capped log */
    struct shim_net *net;         /* net.c: NULL when the box has no network */
    int net_fd;                   /* QEMU's end of the network stream until QEMU has it */
    int reported;                 /* readiness (or failure) written to status_fd */
    int64_t qemu_answered_ms;     /* when QEMU's greeting came (bl_now_ms), 0 before */
    int stopping;                 /* a stop was asked for */
    int killed_by_us;             /* we sent QEMU SIGKILL */
    int user_stop;                /* the stop came from a client, the owner dying or SIGTERM */
    int qemu_exited;              /* QEMU ended by itself (reported as BL_SHIM_E_QEMU_EXITED) */
    int run_lock;                 /* boxstate.h: held for the shim's whole life (liveness) */
    int tb_idle_ms;               /* TCG: quiet time before QEMU drops its translations, 0 never */
    int64_t tb_discarded_ms;      /* when it last did (bl_now_ms), 0 never */
    int64_t stop_deadline, boot_deadline;
    char reason[512]; /* why the VM ended, when not asked to */
};

/* The one readiness report: a code (the starter decides on it) and a message for people. */
static void report(struct shim *s, enum bl_shim_code code, const char *msg)
{
    char line[700];

    if (s->reported || s->status_fd < 0)
        return;
    s->reported = 1;
    bl_shim_report_format(line, sizeof(line), code, msg);
    (void)bl_write_all(s->status_fd, line, strlen(line));
    close(s->status_fd);
    s->status_fd = -1;
}

/* QEMU never started: say why when the jail knows (a volume it cannot mount). */
static void report_failure(struct shim *s)
{
    char msg[600];
    const char *why = bl_jail_error(s->jail);

    snprintf(msg, sizeof(msg), "the shim could not start QEMU%s%s", why ? ": " : "",
             why ? why : "");
    report(s, BL_SHIM_E_SPAWN, msg);
}

static int parse_args(struct shim *s, int argc, char **argv)
{
    s->status_fd = s->lifeline_fd = -1;
    s->boot_ms = DEFAULT_BOOT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            s->qemu_argv = argv + i + 1;
            break;
        }
        if (strcmp(a, "--auto-remove") == 0) {
            s->auto_remove = 1;
            continue;
        }
        if (!v)
            return -1;
        if (strcmp(a, "--home") == 0)
            s->home = v;
        else if (strcmp(a, "--id") == 0)
            s->id = v;
        else if (strcmp(a, "--status-fd") == 0)
            s->status_fd = atoi(v);
        else if (strcmp(a, "--lifeline-fd") == 0)
            s->lifeline_fd = atoi(v);
        else if (strcmp(a, "--incoming") == 0)
            s->incoming = v;
        else if (strcmp(a, "--main") == 0)
            s->main_req = v;
        else if (strcmp(a, "--ram-fill") == 0)
            s->ram_fill = v;
        else if (strcmp(a, "--spare-dir") == 0)
            s->spare_dir = v;
        else if (strcmp(a, "--boot-timeout-ms") == 0)
            s->boot_ms = atoi(v);
        else if (strcmp(a, "--tb-idle-ms") == 0)
            s->tb_idle_ms = atoi(v);
        else if (strcmp(a, "--jail") == 0 && s->njail < MAX_JAIL_SPECS)
            s->jail_specs[s->njail++] = (char *)v;
        else
            return -1;
        i++;
    }
    for (int i = 0; i < s->njail; i++)
        if (strncmp(s->jail_specs[i], "ram:", 4) == 0)
            s->ram = s->jail_specs[i] + 4;
        else if (strncmp(s->jail_specs[i], "ram-loaded:", 11) == 0)
            s->ram = s->jail_specs[i] + 11, s->ram_loaded = 1;
        else if (strncmp(s->jail_specs[i], "cow-ram:", 8) == 0)
            s->cow_ram = 1;
        else if (strncmp(s->jail_specs[i], "ro-ram:", 7) == 0)
            s->cow_ram = 1, s->cow_file = s->jail_specs[i] + 7;
    return s->home && s->id && s->qemu_argv && s->qemu_argv[0] && s->boot_ms > 0 ? 0 : -1;
}

static int listen_here(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    mode_t old = umask(077);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    strcpy(sa.sun_path, "shim.sock");
    unlink(sa.sun_path);
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 32) != 0)) {
        close(fd);
        fd = -1;
    }
    umask(old);
    return fd;
}

static void spawn_qemu_child(struct bl_jail *jail, char **argv, int agent_fd, int qmp_fd, int in_fd,
                             int net_fd, int log_fd, pid_t parent)
{
    int null_fd = open("/dev/null", O_RDONLY);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* in the jail's pid namespace the parent reads as 0 (and the jail waited for it) */
    if ((getppid() != parent && getppid() != 0) || null_fd < 0 || log_fd < 0)
        _exit(126);
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 ||
        dup2(agent_fd, AGENT_FD) < 0 || fcntl(AGENT_FD, F_SETFD, 0) < 0 ||
        dup2(qmp_fd, QMP_FD) < 0 || fcntl(QMP_FD, F_SETFD, 0) < 0)
        _exit(126);
    if (in_fd >= 0 && (dup2(in_fd, INCOMING_FD) < 0 || fcntl(INCOMING_FD, F_SETFD, 0) < 0))
        _exit(126);
    if (net_fd >= 0 && (dup2(net_fd, NET_FD) < 0 || fcntl(NET_FD, F_SETFD, 0) < 0))
        _exit(126);
    for (int fd = in_fd >= 0 ? INCOMING_FD + 1 : QMP_FD + 1; fd < 1024; fd++)
        if (fd != NET_FD || net_fd < 0)
            close(fd);
    bl_jail_exec(jail, argv);
    _exit(127);
}

static int start_qemu(struct shim *s)
{
    int sv[2], qv[2];
    pid_t parent = getpid();
    int log_fd = open("qemu.log", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);

    if (log_fd < 0)
        return -1;
    s->log_fd = fcntl(log_fd, F_DUPFD_CLOEXEC, 0);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qv) != 0)
        return -1;
    s->qemu = bl_jail_fork(s->jail);
    if (s->qemu == 0) {
        /* the fds must not sit on the numbers they are moved to */
        int a = fcntl(sv[1], F_DUPFD_CLOEXEC, 16), q = fcntl(qv[1], F_DUPFD_CLOEXEC, 16);
        int in = s->incoming_fd >= 0 ? fcntl(s->incoming_fd, F_DUPFD_CLOEXEC, 16) : -1;
        int net = s->net_fd >= 0 ? fcntl(s->net_fd, F_DUPFD_CLOEXEC, 16) : -1;
        spawn_qemu_child(s->jail, s->qemu_argv, a, q, in, net, log_fd, parent);
    }
    close(log_fd);
    if (s->net_fd >= 0)
        close(s->net_fd);
    s->net_fd = -1;
    close(sv[1]);
    close(qv[1]);
    if (s->incoming_fd >= 0)
        close(s->incoming_fd);
    s->incoming_fd = -1;
    shim_qmp_init(&s->qmp, qv[0]);
    if (s->qemu < 0) {
        close(sv[0]);
        return -1;
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    s->router = shim_router_new(sv[0]);
    s->pid_fd = (int)syscall(SYS_pidfd_open, s->qemu, 0);
    if (s->router && s->incoming)
        shim_router_restored(s->router);
    return s->router && s->pid_fd >= 0 ? 0 : -1;
}

static int signals_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Record a move of the box's state; a refused one is logged (the starter reads shim.log). */
static int set_state(struct shim *s, enum bl_box_state to, int shim_pid, int qemu_pid)
{
    int rc = bl_box_transition(s->db, s->id, to, shim_pid, qemu_pid, s->reason);

    if (rc != 0)
        fprintf(stderr, "boxlite-shim: %s\n", boxlite_error_last());
    return rc;
}

static void begin_stop(struct shim *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    s->user_stop = 1;
    s->stop_deadline = bl_now_ms() + STOP_GRACE_MS;
    if (why)
        snprintf(s->reason, sizeof(s->reason), "%s", why);
    if (shim_router_ready(s->router)) {
        set_state(s, BL_BOX_STOPPING, getpid(), s->qemu);
        shim_router_shutdown_agent(s->router);
    } else {
        s->stop_deadline = 0; /* still booting: it ends as stopped, never "stopping" */
    }
}

/* Start the box's main process (--main), once. 0 when started or there is none. */
static int start_main(struct shim *s)
{
    if (!s->main_req || s->mainp)
        return 0;
    s->mainp = shim_main_open(s->main_req);
    if (s->mainp && shim_main_start(s->mainp, s->router) != 0) {
        shim_main_close(s->mainp);
        s->mainp = NULL;
    }
    return s->mainp ? 0 : -1;
}

/* A box with secrets, booted cold: its guest trusts the box's CA before anything runs there
 * (the certificate only; docs/security.md, Secrets; after a warm template's attach the
 * library does it). A failure is logged: TLS to the intercepted hosts then fails in the
 * guest, nothing else. */
static void trust_secrets_ca(struct shim *s)
{
    const char *pem = shim_net_secrets_ca(s->net);
    const char *argv[] = {"trust-ca", pem, NULL};
    char err[300];

    if (pem && shim_router_builtin(s->router, argv, 20000, err, sizeof(err)) != 0)
        fprintf(stderr, "boxlite-shim: the guest could not be made to trust the secrets CA: %s\n",
                err);
}

/* The guest's agent waits for a warm template's attach (boxlite.template=1 on its kernel
 * command line, as the agent reads it). */
static int awaits_attach(const struct shim *s)
{
    for (char **a = s->qemu_argv; *a; a++)
        if (strstr(*a, "boxlite.template=1"))
            return 1;
    return 0;
}

/* A guest restored from a full snapshot runs the main process it ran when saved: take it as
 * this box's, before any of its frames is read (mainproc.c). */
static void adopt_main(struct shim *s)
{
    if (!s->incoming || !s->main_req)
        return;
    s->mainp = shim_main_open(s->main_req);
    if (s->mainp && shim_main_adopt(s->mainp, s->router, s->incoming) != 1) {
        shim_main_close(s->mainp);
        s->mainp = NULL;
    }
}

static void on_ready(struct shim *s)
{
    char msg[48];

    /* a snapshot's guest trusts it already; a template's after its attach (the library) */
    if (!s->incoming && !awaits_attach(s))
        trust_secrets_ca(s);
    s->reason[0] = '\0';
    if (set_state(s, BL_BOX_RUNNING, getpid(), s->qemu) != 0) {
        snprintf(s->reason, sizeof(s->reason), "the box's state could not be recorded as running");
        s->stopping = 1;
        s->stop_deadline = 0;
        return;
    }
    /* when QEMU answered, for the starter's stage timing (monitor.c reads "ok qemu=") */
    snprintf(msg, sizeof(msg), "ok qemu=%lld", (long long)s->qemu_answered_ms);
    report(s, BL_SHIM_OK, s->qemu_answered_ms > 0 ? msg : "ok");
    /* A restored guest's main process (if any) was restored with it (adopt_main). A
     * template's box asks for its own after its attach (BL_MON_MAIN_START). */
    if (!s->incoming)
        start_main(s);
}

/* The main process ended: keep its status, and stop the box (Docker's and BoxLite's rule). */
static void on_main_exit(struct shim *s)
{
    char why[96];
    int status = 0;

    if (!shim_main_take_exit(s->mainp, &status))
        return;
    if (bl_db_box_set_exit(s->db, s->id, 1, status) != 0)
        fprintf(stderr, "boxlite-shim: %s\n", boxlite_error_last());
    snprintf(why, sizeof(why), "the main process exited with status %d", status);
    if (!s->stopping)
        begin_stop(s, why);
}

/* An idle TCG box gives back its translation cache (up to tb-size MiB, most of what an idle
 * box costs the host): once its clients have been quiet for tb_idle_ms, QEMU flushes its
 * translations and drops the code buffer's pages (x-tb-discard, scripts/qemu-patches). Once
 * per quiet spell: the next use re-arms it. A QEMU without the command says so in its answer
 * (HMP's text names it): it is not asked again. No answer in time: the next spell asks again.
 * docs/snapshots.md, "What an idle box costs". */
static void tb_discard_when_idle(struct shim *s, int64_t now)
{
    static const char cmd[] = "{\"execute\":\"human-monitor-command\","
                              "\"arguments\":{\"command-line\":\"x-tb-discard\"}}";
    int64_t quiet;
    int rc;

    if (s->tb_idle_ms <= 0 || s->stopping || !shim_router_ready(s->router))
        return;
    quiet = shim_router_quiet_since(s->router);
    if (quiet < 0 || quiet <= s->tb_discarded_ms || now - quiet < s->tb_idle_ms)
        return;
    s->tb_discarded_ms = now;
    rc = shim_qmp_cmd(&s->qmp, cmd, -1, 2000);
    if (rc == 0 && strstr(s->qmp.line, "x-tb-discard") == NULL)
        return;
    fprintf(stderr, "boxlite-shim: QEMU %s its translations (%.200s)%s\n",
            rc == 0 ? "cannot drop" : "did not drop", s->qmp.line,
            rc == 0 ? "; not asked again" : "");
    if (rc == 0)
        s->tb_idle_ms = 0;
}

static void on_timers(struct shim *s)
{
    int64_t now = bl_now_ms();

    if (!shim_router_ready(s->router) && !s->stopping && now >= s->boot_deadline) {
        snprintf(s->reason, sizeof(s->reason),
                 "the guest agent did not answer within %d ms "
                 "(see console.log)",
                 s->boot_ms);
        s->stopping = 1;
        s->stop_deadline = now;
    }
    if (s->stopping && now >= s->stop_deadline && !s->killed_by_us) {
        s->killed_by_us = 1;
        kill(s->qemu, SIGKILL);
    }
    tb_discard_when_idle(s, now);
}

static int poll_timeout(const struct shim *s)
{
    int64_t now = bl_now_ms();
    int64_t t = 1000;

    if (!shim_router_ready(s->router) && !s->stopping)
        t = s->boot_deadline - now;
    if (s->stopping)
        t = s->stop_deadline - now;
    return t < 0 ? 0 : (t > 1000 ? 1000 : (int)t);
}

/* QEMU's stderr is qemu.log, and a guest can make QEMU write to it (e.g. one line per free
 * page report a fork's jail refuses, docs/snapshots.md): past the cap, cut it back to the cap
 * (QEMU appends: its next line lands at the new end) and say so. Checked once a second. */
static void cap_qemu_log(struct shim *s)
{
    static const char note[] = "\n[boxlite-shim: qemu.log capped here; later lines dropped]\n";
    struct stat st;

    if (s->log_fd < 0 || fstat(s->log_fd, &st) != 0 || st.st_size <= QEMU_LOG_CAP)
        return;
    if (ftruncate(s->log_fd, QEMU_LOG_CAP) == 0)
        (void)bl_write_all(s->log_fd, note, sizeof(note) - 1);
}

/* QMP stop or cont: the VM's vCPUs halt or go on (the OCI runtime's pause/resume). */
static int pause_resume(struct shim *s, int pause, char *msg, size_t cap)
{
    const char *cmd = pause ? "{\"execute\":\"stop\"}" : "{\"execute\":\"cont\"}";

    if (shim_qmp_cmd(&s->qmp, cmd, -1, 10000) == 0)
        return 0;
    snprintf(msg, cap, "QEMU refused %s", pause ? "stop" : "cont");
    return -1;
}

/* A client's request for snapshot work, done here, synchronously (clients wait meanwhile). */
static void monitor_work(struct shim *s)
{
    char name[128], msg[512];
    uint32_t op = 0;
    int client = -1, rc = -1;
    struct shim_ram ram = {.own = s->ram, .cow = s->ram ? NULL : s->cow_file, .qemu = s->qemu};

    if (!s->stopping && shim_router_ready(s->router))
        shim_qmp_drain(&s->qmp);
    if (!shim_router_take_monitor(s->router, &client, &op, name, sizeof(name)))
        return;
    if (s->stopping)
        snprintf(msg, sizeof(msg), "the box is stopping");
    else if (op == BL_MON_SNAPSHOT_DISK || op == BL_MON_SNAPSHOT_FULL)
        rc = shim_snapshot(s->router, &s->qmp, s->dir, op == BL_MON_SNAPSHOT_FULL, &ram, name, msg,
                           sizeof(msg));
    else if (op == BL_MON_TEMPLATE_SAVE) /* warm templates: docs/templates.md */
        rc = shim_template_save(&s->qmp, s->home, name, s->ram, msg, sizeof(msg));
    else if (op == BL_MON_TEMPLATE_DISK)
        rc = shim_template_disk(&s->qmp, msg, sizeof(msg));
    else if (op == BL_MON_PAUSE || op == BL_MON_RESUME) /* boxlite_box_pause / _resume */
        rc = pause_resume(s, op == BL_MON_PAUSE, msg, sizeof(msg));
    else if (op == BL_MON_MAIN_START && (rc = start_main(s)) != 0)
        snprintf(msg, sizeof(msg), "the box's main process could not be started");
    else
        snprintf(msg, sizeof(msg), "unknown monitor operation %u", op);
    shim_router_monitor_reply(s->router, client, rc == 0 ? 0 : 1, msg);
}

/* QEMU waits (-incoming defer) for the saved state on fd 5: x-ignore-shared on when RAM is
 * mapped from the snapshot's RAM file or the box's own copy of it (then it is not in the
 * stream), then the stream. A full snapshot is saved paused, and QEMU keeps the state it
 * loads: once the state is in, resume the guest. A warm template's guest first gets the box
 * disk's size (block_resize: the config-change interrupt waits for it), so it has read the
 * new capacity by the time the library's attach arrives (docs/templates.md). */
static int resume_incoming(struct shim *s)
{
    int64_t deadline = bl_now_ms() + s->boot_ms;
    char why[256] = "";
    int running;

    if (((s->cow_ram || s->ram_loaded) &&
         shim_qmp_cmd(&s->qmp, SHIM_QMP_IGNORE_SHARED(true), -1, 5000) != 0) ||
        shim_qmp_cmd(&s->qmp, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:5\"}}",
                     -1, 5000) != 0)
        deadline = 0;
    while (bl_now_ms() < deadline) {
        if (shim_qmp_cmd(&s->qmp, "{\"execute\":\"query-status\"}", -1, 5000) != 0)
            break;
        if (strstr(s->qmp.line, "inmigrate")) { /* device state loads in a few ms */
            usleep(1000);
            continue;
        }
        running = strstr(s->qmp.line, "\"running\": true") != NULL;
        if (awaits_attach(s) && shim_template_disk(&s->qmp, why, sizeof(why)) != 0)
            break;
        return running ? 0 : shim_qmp_cmd(&s->qmp, "{\"execute\":\"cont\"}", -1, 5000);
    }
    snprintf(s->reason, sizeof(s->reason), "restoring the saved state failed: %.200s",
             why[0] ? why : s->qmp.line);
    return -1;
}

/* --ram-fill: the saved RAM (a warm template's) copied into the box's own RAM file, made
 * empty by the library. 0, or an errno (EINVAL: the sizes differ). */
static int fill_ram_err(const struct shim *s)
{
    int in = open(s->ram_fill, O_RDONLY | O_CLOEXEC);
    int out = s->ram && s->ram_loaded ? open(s->ram, O_WRONLY | O_CLOEXEC) : -1;
    struct stat si, so;
    int err = in < 0 || out < 0 ? errno : 0;

    if (err == 0 && (fstat(in, &si) != 0 || fstat(out, &so) != 0))
        err = errno;
    if (err == 0 && si.st_size != so.st_size)
        err = EINVAL;
    if (err == 0)
        err = -bl_copy_fd_sparse(in, out, si.st_size);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return err;
}

/* The copy runs in a child of the monitor from as soon as the box is ours (run.lock), while
 * the monitor sets up the network, the jail and QEMU: QEMU touches no guest RAM before the
 * incoming state (-incoming defer), so the copy only has to end before migrate-incoming. A
 * child, not a thread: the jail's child must be forked from a single-threaded monitor. */
static void fill_ram_start(struct shim *s)
{
    s->fill_pid = s->incoming && s->ram_fill ? fork() : -1;
    if (s->fill_pid == 0) {
        if (s->status_fd >= 0)
            close(s->status_fd);
        if (s->lifeline_fd >= 0)
            close(s->lifeline_fd);
        _exit(fill_ram_err(s) & 0xff);
    }
}

/* The copy's end (made here when its child could not be forked). 0 when the RAM is whole. */
static int fill_ram_wait(struct shim *s)
{
    int status = 0, err;

    if (!s->incoming || !s->ram_fill)
        return 0;
    if (s->fill_pid < 0)
        err = fill_ram_err(s);
    else if (waitpid(s->fill_pid, &status, 0) != s->fill_pid)
        err = errno;
    else
        err = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
    s->fill_pid = -1;
    if (err != 0)
        snprintf(s->reason, sizeof(s->reason), "copy the saved RAM %.200s: %s", s->ram_fill,
                 err == EINVAL ? "not the size of the box's RAM" : strerror(err));
    return err == 0 ? 0 : -1;
}

/* The template's next spare RAM file (template/spare.h), made once this box's guest runs, on
 * idle CPU time only (SCHED_IDLE: it copies ~70 MiB while the box attaches). */
static void *spare_main(void *arg)
{
    struct shim *s = arg;
    struct sched_param sp = {0};

    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    if (bl_spare_refill(s->spare_dir) != 0)
        fprintf(stderr, "boxlite-shim: spare RAM file: %s\n", boxlite_error_last());
    return NULL;
}

static void spare_start(struct shim *s)
{
    if (s->spare_dir && pthread_create(&s->spare_thread, NULL, spare_main, s) == 0)
        s->spare_started = 1;
}

/* At exit: a copy still running gets ordinary priority first, so a busy host (where an idle
 * thread may not run at all) cannot hold the monitor's exit. */
static void spare_join(struct shim *s)
{
    struct sched_param sp = {0};

    if (!s->spare_started)
        return;
    (void)pthread_setschedparam(s->spare_thread, SCHED_OTHER, &sp);
    pthread_join(s->spare_thread, NULL);
    s->spare_started = 0;
}

/* Wait for QEMU's QMP greeting (the guest runs meanwhile; what it sends waits in its socket)
 * and note when it came: the end of the box's spawn in its start's timing (boxlite.h). A QEMU
 * that ends or stays silent until the boot's deadline is left to serve() to report. */
static void greet_qemu(struct shim *s)
{
    if (shim_qmp_greeting(&s->qmp, s->boot_deadline) == 0)
        s->qemu_answered_ms = bl_now_ms();
}

/* Serve until QEMU exits. */
static void serve(struct shim *s)
{
    struct pollfd pfd[POLL_MAX];
    int was_ready = 0;

    for (;;) {
        int n = 0, base;
        pfd[n++] = (struct pollfd){.fd = s->pid_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->sig_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->stopping ? -1 : s->lifeline_fd, .events = POLLIN};
        base = n;
        n += shim_router_poll_fill(s->router, pfd + n, POLL_MAX - n);
        if (poll(pfd, (nfds_t)n, poll_timeout(s)) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        cap_qemu_log(s);
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(s->sig_fd, &si, sizeof(si)) > 0)
                ;
            snprintf(s->reason, sizeof(s->reason), "killed: the guest did not power off in time");
            s->stopping = 1;
            s->user_stop = 1;
            s->stop_deadline = 0;
        }
        if (pfd[2].revents & POLLIN) {
            int c = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0)
                shim_router_add_client(s->router, c);
        }
        if (pfd[3].revents)
            begin_stop(s, "");
        if (shim_router_poll_done(s->router, pfd + base, n - base) != 0 && !s->stopping) {
            /* Usually QEMU is going away: give it a moment to say how before killing it. */
            snprintf(s->reason, sizeof(s->reason), "the agent channel broke");
            s->stopping = 1;
            s->stop_deadline = bl_now_ms() + 2000;
        }
        if (!was_ready && shim_router_ready(s->router)) {
            was_ready = 1;
            on_ready(s);
        }
        if (shim_router_take_shutdown(s->router))
            begin_stop(s, "");
        on_main_exit(s);
        monitor_work(s);
        on_timers(s);
    }
}

static void tail_of(const char *path, char *out, size_t cap)
{
    char *data = NULL;
    size_t len = 0;

    out[0] = '\0';
    if (bl_read_file(&data, &len, path, 1 << 20) != 0)
        return;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    snprintf(out, cap, "%s", len > cap - 1 ? data + len - (cap - 1) : data);
    for (char *p = out; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    free(data);
}

/* The box stopped: on a stop the agent ends the main process (SIGTERM, SIGKILL after a grace)
 * and tells its real exit, recorded as it was. Where none was told (the guest died, QEMU had
 * to be killed) record what Docker reports: 143 (128 + SIGTERM), 137 when QEMU was killed. */
static void main_stopped(struct shim *s)
{
    int status = s->killed_by_us ? 128 + SIGKILL : 128 + SIGTERM;

    if (!shim_main_take_exit(s->mainp, &status) && !shim_main_running(s->mainp))
        return;
    if (bl_db_box_set_exit(s->db, s->id, 1, status) != 0)
        fprintf(stderr, "boxlite-shim: %s\n", boxlite_error_last());
}

/* The final state and reason from how QEMU ended. */
static enum bl_box_state outcome(struct shim *s, int status, int was_ready)
{
    int by_us = s->killed_by_us && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    char tail[300];
    char how[48];

    if (s->user_stop && (by_us || WIFEXITED(status)))
        return BL_BOX_STOPPED;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && was_ready) {
        snprintf(s->reason, sizeof(s->reason), "the guest powered off");
        return BL_BOX_STOPPED;
    }
    if (by_us)
        return BL_BOX_FAILED; /* s->reason says why we killed it */
    s->qemu_exited = 1;
    tail_of("qemu.log", tail, sizeof(tail));
    if (!tail[0] && !was_ready)
        tail_of("console.log", tail, sizeof(tail));
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        snprintf(how, sizeof(how), "QEMU was killed by signal 9");
    else if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "QEMU failed (signal %d)", WTERMSIG(status));
    else
        snprintf(how, sizeof(how), "QEMU failed (exit status %d)", WEXITSTATUS(status));
    snprintf(s->reason, sizeof(s->reason), "%s%s%s%s", how, was_ready ? "" : " during boot",
             tail[0] ? ": " : "", tail);
    return BL_BOX_FAILED;
}

static void finish(struct shim *s)
{
    int status = 0;
    int was_ready = shim_router_ready(s->router);
    enum bl_box_state state;

    kill(s->qemu, SIGKILL); /* no-op when it is gone; sure when we left serve() early */
    while (waitpid(s->qemu, &status, 0) < 0 && errno == EINTR)
        ;
    if (s->ram)
        unlink(s->ram);             /* the guest's RAM: a full snapshot keeps its own copy */
    shim_console_close(s->console); /* console.log complete before its tail is read */
    s->console = NULL;
    bl_jail_free(s->jail); /* its cgroup goes once QEMU is reaped */
    s->jail = NULL;
    state = outcome(s, status, was_ready);
    unlink("shim.sock");
    if (state == BL_BOX_STOPPED)
        main_stopped(s);
    shim_main_close(s->mainp);
    s->mainp = NULL;
    if (s->auto_remove && state == BL_BOX_STOPPED) {
        char *dir = bl_strdupf("%s/boxes/%s", s->home, s->id);
        if (bl_db_box_delete(s->db, s->id) == 0 && dir)
            bl_rm_rf(dir);
        free(dir);
    } else {
        set_state(s, state, 0, 0);
    }
    /* The state is final: the box's monitor is gone from here on (the next one may take the
     * lock at once). Last: a starter that reads this may start the next monitor of this box
     * at once (the KVM→TCG retry), which must find neither our shim.sock unlinked under it
     * nor its state overwritten by ours. */
    if (s->run_lock >= 0)
        close(s->run_lock);
    s->run_lock = -1;
    report(s, s->qemu_exited ? BL_SHIM_E_QEMU_EXITED : BL_SHIM_E_BOOT, s->reason);
}

/* auto_delete N > 0: the box is deleted N s after it stopped. Without a daemon, the monitor
 * that recorded the stop waits that long (it holds no lock meanwhile: the box may be started
 * again, and then it is no longer due) and sweeps it; any process that lists boxes sweeps too
 * (a long N, a reboot). */
#define AUTO_DELETE_WAIT_MAX (24 * 3600)
static void auto_delete_later(struct shim *s)
{
    struct bl_box_row row;
    int64_t wait_s = 0;

    if (bl_db_box_get(s->db, s->id, &row) != 0)
        return;
    if (strcmp(row.state, "stopped") == 0 && row.auto_delete > 0)
        wait_s = row.auto_delete;
    bl_box_row_clear(&row);
    if (wait_s <= 0 || wait_s > AUTO_DELETE_WAIT_MAX)
        return;
    for (int64_t end = bl_now_ms() + wait_s * 1000 + 200; bl_now_ms() < end;)
        usleep(100000);
    bl_box_sweep_expired(s->db, s->home, s->id);
}

int main(int argc, char **argv)
{
    struct shim s = {0};
    char *dir = NULL;
    int fill_failed;

    if (parse_args(&s, argc, argv) != 0) {
        fprintf(stderr, "usage: boxlite-shim --home H --id ID --status-fd N [--lifeline-fd N] "
                        "[--boot-timeout-ms N] [--auto-remove] -- QEMU-ARGV...\n");
        return 2;
    }
    dir = bl_strdupf("%s/boxes/%s", s.home, s.id);
    s.dir = dir;
    s.incoming_fd = -1;
    s.log_fd = -1;
    s.run_lock = -1;
    s.qmp.fd = -1;
    s.fill_pid = -1;
    if (dir && bl_jail_new(&s.jail, s.id, dir, s.jail_specs, s.njail, JAIL_SHARE_HOST_NET, s.reason,
                           sizeof(s.reason)) != 0) {
        fprintf(stderr, "boxlite-shim: %s\n", s.reason);
        report(&s, BL_SHIM_E_SETUP, "the shim could not set up the jail");
        return 1;
    }
    if (s.incoming)
        s.incoming_fd = open(s.incoming, O_RDONLY | O_CLOEXEC);
    if (!dir || chdir(dir) != 0 || bl_db_open(&s.db, s.home) != 0 ||
        (s.incoming && s.incoming_fd < 0)) {
        report(&s, BL_SHIM_E_SETUP, "the shim cannot open its box directory or the state database");
        return 1;
    }
    /* before any state is written, held until exit: "is the box's monitor alive" */
    s.run_lock = bl_run_lock_take(dir, RUN_LOCK_WAIT_MS);
    if (s.run_lock < 0) {
        report(&s, errno == EWOULDBLOCK ? BL_SHIM_E_RUNNING : BL_SHIM_E_SETUP,
               errno == EWOULDBLOCK ? "another monitor runs this box" : "cannot take run.lock");
        return 1;
    }
    fill_ram_start(&s);
    s.sig_fd = signals_fd(); /* before any thread starts: they inherit the mask */
    if (shim_net_start(&s.net, &s.net_fd, s.db, s.id, s.reason, sizeof(s.reason)) != 0) {
        report(&s, BL_SHIM_E_NETWORK, s.reason);
        return 1;
    }
    s.listen_fd = listen_here();
    s.console = shim_console_open();
    if (s.sig_fd < 0 || s.listen_fd < 0 || !s.console || start_qemu(&s) != 0) {
        snprintf(s.reason, sizeof(s.reason), "the shim could not set up: %s", strerror(errno));
        if (s.qemu > 0)
            finish(&s);
        else
            report_failure(&s);
        return 1;
    }
    /* the threads start only now: the jail's child was forked from a single-threaded shim
     * (it allocates and formats before exec, which a fork of a threaded process may not) */
    if (shim_console_run(s.console) != 0 || shim_net_run(s.net, s.reason, sizeof(s.reason)) != 0) {
        if (!s.reason[0])
            snprintf(s.reason, sizeof(s.reason), "the shim could not start its console thread");
        finish(&s);
        return 1;
    }
    s.boot_deadline = bl_now_ms() + s.boot_ms;
    adopt_main(&s);
    fill_failed = fill_ram_wait(&s) != 0;
    if (!fill_failed)
        greet_qemu(&s);
    if (s.incoming && (fill_failed || resume_incoming(&s) != 0)) {
        s.stopping = 1;
        s.stop_deadline = 0;
    } else {
        spare_start(&s);
    }
    serve(&s);
    finish(&s);
    spare_join(&s);
    shim_net_free(s.net);
    shim_router_free(s.router);
    close(s.listen_fd);
    auto_delete_later(&s);
    bl_db_close(s.db);
    free(dir);
    return 0;
}
