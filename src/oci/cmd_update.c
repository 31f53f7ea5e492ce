/* cmd_update.c — `update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-period N]
 * [--pids-limit N] ID`: new linux.resources for a live container, checked by spec.c's one
 * resources parser (the flags are turned into the same document). A VM's size is fixed at
 * boot: a limit at or above what the VM has already holds (the VM cannot use more) and is
 * accepted; what the VM cannot apply (less memory or CPUs than it booted with, pids, block
 * I/O, devices, ...) is named in a warning on stderr and in --log, and the update succeeds,
 * as runsc does for what it cannot enforce. */
#include "oci.h"

#include <boxlite.h>
#include <stdlib.h>
#include <string.h>

static int read_resources(char **out, size_t *len, const char *path)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (strcmp(path, "-") != 0)
        return bl_oci_read_file(out, len, path, BL_OCI_DOC_MAX);
    for (;;) {
        if (n == cap) {
            char *p = cap >= BL_OCI_DOC_MAX ? NULL : realloc(buf, cap ? cap * 2 : 4096);
            if (!p) {
                free(buf);
                return bl_oci_fail("update: resources on stdin: more than %u bytes",
                                   BL_OCI_DOC_MAX);
            }
            buf = p;
            cap = cap ? cap * 2 : 4096;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        if (r == 0)
            break;
        n += r;
    }
    *out = buf ? buf : strdup("");
    *len = n;
    return *out ? 0 : bl_oci_fail("out of memory");
}

/* The flags as a resources document: each value a JSON integer as written (the parser
 * refuses what is not one). */
static int from_flags(char **out, size_t *len, const char *mem, const char *quota,
                      const char *period, const char *pids)
{
    char *text = NULL;
    int n;

    for (const char *const *v = (const char *const[]){mem, quota, period, pids, NULL}; *v; v++)
        if ((*v)[strspn(*v, "-0123456789")] != '\0' || !(*v)[0] || strlen(*v) > 20)
            return bl_oci_fail("update: \"%s\": not an integer", *v);
    n = asprintf(&text,
                 "{\"memory\":{\"limit\":%s},\"cpu\":{\"quota\":%s,\"period\":%s},"
                 "\"pids\":{\"limit\":%s}}",
                 mem, quota, period, pids);
    if (n < 0)
        return bl_oci_fail("out of memory");
    *out = text;
    *len = (size_t)n;
    return 0;
}

static void not_applied(const char *id, const char *what)
{
    fprintf(stderr, "boxlite-runtime: %s: update: not applied: %s\n", id, what);
    bl_oci_log("warning", "%s: update: not applied: %s", id, what);
}

static int apply(const char *id, boxlite_box *box, const struct bl_oci_resources *r)
{
    boxlite_box_info info = BOXLITE_BOX_INFO_INIT;
    char what[256];

    if (boxlite_box_get_info(&info, box) != 0)
        return bl_oci_fail("%s: %s", id, boxlite_error_last());
    if (r->memory_limit && r->memory_limit < ((uint64_t)info.memory_mib << 20)) {
        snprintf(what, sizeof what,
                 "memory.limit %llu bytes: the VM booted with %u MiB, which a running VM keeps",
                 (unsigned long long)r->memory_limit, info.memory_mib);
        not_applied(id, what);
    }
    if (r->cpus && r->cpus < info.cpus) {
        snprintf(what, sizeof what, "cpu: %u CPUs: the VM booted with %u, which it keeps", r->cpus,
                 info.cpus);
        not_applied(id, what);
    }
    if (r->pids_limit)
        not_applied(id, "pids.limit: the guest has no pids limit of ours");
    if (r->has_other)
        not_applied(id, "blockIO/devices/hugepageLimits/network/rdma/unified: not a VM's");
    return 0;
}

int bl_oci_cmd_update(int argc, char **argv)
{
    const char *file = NULL, *mem = "0", *quota = "0", *period = "100000", *pids = "0";
    struct bl_oci_resources res;
    struct bl_oci_state st;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char *pos[1], *text = NULL, err[512];
    size_t len = 0;
    int n = 0, rc;
    const struct bl_oci_opt opts[] = {
        {"resources", 'r', &file, NULL}, {"memory", 'm', &mem, NULL},
        {"cpu-quota", 0, &quota, NULL},  {"cpu-period", 0, &period, NULL},
        {"pids-limit", 0, &pids, NULL},  {NULL, 0, NULL, NULL},
    };

    if (bl_oci_args(argc, argv, opts, pos, 1, &n, 0) != 0)
        return 1;
    if (n != 1)
        return bl_oci_fail("update: usage: update [--resources FILE|-] [--memory N] ID");
    rc = file ? read_resources(&text, &len, file)
              : from_flags(&text, &len, mem, quota, period, pids);
    if (rc == 0 && bl_oci_resources_parse(&res, text, len, err, sizeof err) != 0)
        rc = bl_oci_fail("update: %s", err);
    free(text);
    if (rc == 0 && bl_oci_state_load(&st, pos[0]) != 0)
        rc = 1;
    if (rc == 0 && !BL_OCI_LIVE(st.status))
        rc = bl_oci_fail("%s: container not running (%s)", pos[0], bl_oci_status_name(st.status));
    if (rc == 0)
        rc = bl_oci_box_open(&rt, &box, &st);
    if (rc == 0)
        rc = apply(pos[0], box, &res);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
