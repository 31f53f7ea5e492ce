/* metrics.c — GET /boxes/{id}/metrics: the server's per-box counters, CPU and memory from
 * boxlite_box_get_stats, network counters read inside the box (/proc/net/dev, /proc/net/snmp
 * through a short exec of `cat`) and the boot timing the library measured (its stages). */
#include "serve.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_READ_CAP (64 * 1024) /* what we take of the guest's /proc output */
#define NET_EXEC_MS  10000

struct net_stats {
    uint64_t rx, tx; /* bytes over every interface but lo */
    uint64_t estab, fails;
};

/* ---- the guest's /proc text (hostile: bounded, numbers only) ---------------------------- */

/* Sum receive and transmit bytes of each "name: rx ... tx ..." line but lo. */
static void parse_net_dev(const char *text, struct net_stats *out)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n'), *colon = strchr(line, ':');
        const char *name = line;
        if (colon != NULL && (nl == NULL || colon < nl)) {
            unsigned long long f[9] = {0};
            char *end = NULL;
            const char *p = colon + 1;
            int i;
            while (*name == ' ')
                name++;
            for (i = 0; i < 9; i++) {
                f[i] = strtoull(p, &end, 10);
                if (end == p)
                    break;
                p = end;
            }
            if (i == 9 && !(colon - name == 2 && strncmp(name, "lo", 2) == 0)) {
                out->rx += f[0];
                out->tx += f[8];
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
}

/* The value under column `name` of /proc/net/snmp's two "Tcp:" lines (0 when absent). */
static uint64_t snmp_tcp(const char *text, const char *name)
{
    const char *head = strstr(text, "Tcp: "), *vals;
    size_t col = 0, nlen = strlen(name);

    if (head == NULL || (vals = strstr(head + 5, "Tcp: ")) == NULL)
        return 0;
    for (const char *p = head + 5; p < vals && *p != '\n'; col++) {
        const char *e = p;
        while (*e != ' ' && *e != '\n' && *e != '\0')
            e++;
        if ((size_t)(e - p) == nlen && strncmp(p, name, nlen) == 0) {
            const char *v = vals + 5;
            for (size_t i = 0; i < col && v != NULL; i++) {
                v = strchr(v, ' ');
                v = v != NULL ? v + 1 : NULL;
            }
            return v != NULL ? strtoull(v, NULL, 10) : 0;
        }
        p = *e == ' ' ? e + 1 : e;
    }
    return 0;
}

/* Run `cat /proc/net/dev /proc/net/snmp` in the box. -1 when the image cannot (no cat). */
static int read_guest_net(struct sbox *b, struct net_stats *out)
{
    static const char *const argv[] = {"cat", "/proc/net/dev", "/proc/net/snmp", NULL};
    boxlite_exec_options o = BOXLITE_EXEC_OPTIONS_INIT;
    boxlite_exec_result res = BOXLITE_EXEC_RESULT_INIT;
    boxlite_exec *ex = NULL;
    char *buf = calloc(1, NET_READ_CAP + 1);
    size_t len = 0, n = 0;
    int which = 0, rc = -1;
    double deadline = now_monotonic() + NET_EXEC_MS / 1000.0;

    o.argv = argv;
    o.timeout_ms = NET_EXEC_MS;
    if (buf == NULL)
        goto out;
    sbox_lock(b);
    rc = boxlite_exec_start(&ex, b->box, &o);
    sbox_unlock(b);
    if (rc != 0) {
        rc = -1;
        goto out;
    }
    rc = -1;
    while (len < NET_READ_CAP && now_monotonic() < deadline) {
        if (boxlite_exec_read(ex, BOXLITE_STDOUT, &which, buf + len, NET_READ_CAP - len, &n,
                              1000) == BOXLITE_EAGAIN)
            continue;
        if (n == 0)
            break;
        len += n;
    }
    if (boxlite_exec_wait_v2(&res, ex, 2000) != 0 || res.exit_code != 0)
        goto out;
    memset(out, 0, sizeof(*out));
    parse_net_dev(buf, out);
    out->estab = snmp_tcp(buf, "CurrEstab");
    out->fails = snmp_tcp(buf, "AttemptFails");
    rc = 0;
out:
    boxlite_exec_free(ex);
    free(buf);
    return rc;
}

/* ---- CPU: the share of the box's CPUs QEMU uses, over a CPU_WINDOW_MS sample ------------ */

#define CPU_WINDOW_MS 250

static double cpu_percent(struct sbox *b, unsigned cpus)
{
    boxlite_box_stats s1 = BOXLITE_BOX_STATS_INIT, s2 = BOXLITE_BOX_STATS_INIT;
    double t1, t2, pct = 0;
    int rc;

    sbox_lock(b);
    rc = boxlite_box_get_stats(&s1, b->box);
    sbox_unlock(b);
    if (rc != 0)
        goto out;
    t1 = now_monotonic();
    usleep(CPU_WINDOW_MS * 1000);
    sbox_lock(b);
    rc = boxlite_box_get_stats(&s2, b->box);
    sbox_unlock(b);
    if (rc != 0)
        goto out;
    t2 = now_monotonic();
    pct = (s2.cpu_seconds - s1.cpu_seconds) * 100.0 / ((t2 - t1) * (cpus ? cpus : 1));
    pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
out:
    return pct;
}

static json_t *ms_or_null(int64_t ms)
{
    return ms >= 0 ? json_integer((json_int_t)ms) : json_null();
}

/* Every stage of t not measured (-1). */
static void unmeasured(boxlite_box_timing *t)
{
    int64_t *f[] = {&t->image_prepare_ms, &t->filesystem_setup_ms, &t->box_config_ms,
                    &t->create_ms,        &t->guest_rootfs_ms,     &t->box_spawn_ms,
                    &t->guest_boot_ms,    &t->container_init_ms,   &t->start_ms,
                    &t->total_create_ms};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        *f[i] = -1;
}

/* The spec's BootTiming from the library's stage timing (boxlite_box_get_timing): the create's
 * stages from the handle that created the box (null for a box this server did not create),
 * the boot's from the last start on the server's handle (null before one, or when that start
 * only attached to a running box), total_create_ms the create plus the box's first boot when
 * this server did both. Each is null when the library did not measure it. */
static json_t *boot_timing(struct sbox *b)
{
    boxlite_box_timing boot = BOXLITE_BOX_TIMING_INIT, made;
    int64_t first, total = -1;
    json_t *o = json_object();

    sbox_lock(b);
    made = b->created;
    first = b->first_start_ms;
    if (boxlite_box_get_timing(&boot, b->box) != 0)
        boot.version = 0;
    sbox_unlock(b);
    if (made.version == 0)
        unmeasured(&made);
    if (boot.version == 0)
        unmeasured(&boot);
    if (made.create_ms >= 0 && first >= 0)
        total = made.create_ms + first;
    json_object_set_new(o, "total_create_ms", ms_or_null(total));
    json_object_set_new(o, "guest_boot_ms", ms_or_null(boot.guest_boot_ms));
    json_object_set_new(o, "filesystem_setup_ms", ms_or_null(made.filesystem_setup_ms));
    json_object_set_new(o, "image_prepare_ms", ms_or_null(made.image_prepare_ms));
    json_object_set_new(o, "guest_rootfs_ms", ms_or_null(boot.guest_rootfs_ms));
    json_object_set_new(o, "box_config_ms", ms_or_null(made.box_config_ms));
    json_object_set_new(o, "box_spawn_ms", ms_or_null(boot.box_spawn_ms));
    json_object_set_new(o, "container_init_ms", ms_or_null(boot.container_init_ms));
    return o;
}

enum MHD_Result h_box_metrics(struct req *r)
{
    struct sbox *b = sbox_get(r, r->params[0]);
    boxlite_box_stats st = BOXLITE_BOX_STATS_INIT;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    struct net_stats net = {0, 0, 0, 0};
    int running, have_net = 0;
    double cpu = 0;
    json_t *o;

    if (b == NULL)
        return MHD_YES;
    sbox_lock(b);
    running = boxlite_box_get_info(&info, b->box) == 0 && strcmp(info.state, "running") == 0 &&
              boxlite_box_get_stats(&st, b->box) == 0;
    sbox_unlock(b);
    if (running) {
        cpu = cpu_percent(b, info.cpus);
        have_net = read_guest_net(b, &net) == 0;
    }
    o = json_pack("{s:I, s:I, s:I, s:I, s:f, s:I}", "commands_executed_total",
                  (json_int_t)__atomic_load_n(&b->execs, __ATOMIC_RELAXED), "exec_errors_total",
                  (json_int_t)__atomic_load_n(&b->exec_errors, __ATOMIC_RELAXED),
                  "bytes_sent_total", (json_int_t)__atomic_load_n(&b->bytes_in, __ATOMIC_RELAXED),
                  "bytes_received_total",
                  (json_int_t)__atomic_load_n(&b->bytes_out, __ATOMIC_RELAXED), "cpu_percent", cpu,
                  "memory_bytes", (json_int_t)(running ? st.memory_bytes : 0));
    if (o != NULL) {
        /* a stopped box has no traffic now; a running one whose image lacks cat: unknown */
        json_t *(*num)(json_int_t) = json_integer;
        int known = have_net || !running;
        json_object_set_new(o, "network_bytes_sent", known ? num((json_int_t)net.rx) : json_null());
        json_object_set_new(o, "network_bytes_received",
                            known ? num((json_int_t)net.tx) : json_null());
        json_object_set_new(o, "network_tcp_connections",
                            known ? num((json_int_t)net.estab) : json_null());
        json_object_set_new(o, "network_tcp_errors",
                            known ? num((json_int_t)net.fails) : json_null());
        json_object_set_new(o, "boot_timing", boot_timing(b));
    }
    sbox_put(b);
    return reply_json(r, 200, o);
}
