/* cmd_events.c — `events [--stats] [--interval D] ID`: the container's resource use in runc's
 * event shape ({"type":"stats","id":…,"data":{"cpu":…,"memory":…}}, what go-runc's Stats
 * decodes). The container is its VM: CPU time is QEMU's, memory usage QEMU's resident set,
 * the limit the VM's memory. --stats prints one event; without it one every interval while
 * the container lives. */
#include "oci.h"

#include <boxlite.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INTERVAL_MS (24LL * 3600 * 1000)

/* "5s", "500ms", "1m", a bare number of seconds: milliseconds, or -1. */
static long long interval_ms(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (end == s || v <= 0 || v > MAX_INTERVAL_MS)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v;
    if (*end == '\0' || strcmp(end, "s") == 0)
        v *= 1000;
    else if (strcmp(end, "m") == 0)
        v *= 60000;
    else
        return -1;
    return v > MAX_INTERVAL_MS ? -1 : v;
}

static int print_stats(const char *id, boxlite_box *box)
{
    boxlite_box_stats s = BOXLITE_BOX_STATS_INIT;
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    json_t *o;
    char *text;

    if (boxlite_box_get_stats(&s, box) != 0 || boxlite_box_get_info(&info, box) != 0)
        return bl_oci_fail("%s: stats: %s", id, boxlite_error_last());
    o = json_pack("{s:s, s:s, s:{s:{s:{s:I}}, s:{s:{s:I, s:I}}}}", "type", "stats", "id", id,
                  "data", "cpu", "usage", "total", (json_int_t)(s.cpu_seconds * 1e9), "memory",
                  "usage", "usage", (json_int_t)s.memory_bytes, "limit",
                  (json_int_t)info.memory_mib << 20);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return bl_oci_fail("out of memory");
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    return 0;
}

int bl_oci_cmd_events(int argc, char **argv)
{
    const char *interval = "5s";
    struct bl_oci_state st;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char *pos[1];
    int n = 0, stats = 0, rc;
    long long ms;
    const struct bl_oci_opt opts[] = {
        {"stats", 0, NULL, &stats}, {"interval", 0, &interval, NULL}, {NULL, 0, NULL, NULL}};

    if (bl_oci_args(argc, argv, opts, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("events: usage: events [--stats] [--interval 5s] ID");
    if ((ms = interval_ms(interval)) < 0)
        return bl_oci_fail("events: --interval \"%s\": a duration like 5s or 500ms", interval);
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    if (!BL_OCI_LIVE(st.status))
        return bl_oci_fail("%s: container not running (%s)", pos[0], bl_oci_status_name(st.status));
    rc = bl_oci_box_open(&rt, &box, &st);
    while (rc == 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        rc = print_stats(pos[0], box);
        if (rc != 0 || stats || !bl_oci_alive(st.pid, st.starttime))
            break;
        nanosleep(&ts, NULL);
        if (!bl_oci_alive(st.pid, st.starttime))
            break; /* the container ended: so does the stream */
    }
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
