/* system.c — GET /v1/config (what this server supports), GET /v1/me (who the key is) and
 * GET /metrics (runtime-wide counters). */
#include "serve.h"

#include <string.h>

enum MHD_Result h_config(struct req *r)
{
    json_t *o = json_pack(
        "{s:{s:i, s:i, s:s, s:i}, s:{}, s:{s:b, s:i, s:i, s:i, s:i, s:I, s:f, s:b, s:b, s:b, "
        "s:b, s:b, s:[s], s:s}}",
        "defaults", "cpus", 1, "memory_mib", 512, "security_preset", "standard", "auto_delete", 0,
        "overrides", "capabilities", "linux_capabilities_enabled", 0, "max_cpus", 32,
        "max_memory_mib", 1 << 20, "max_disk_size_gb", 1 << 16, "max_concurrent_executions",
        (int)g_serve->cfg->max_executions, "file_transfer_max_bytes",
        (json_int_t)g_serve->cfg->max_file_bytes, "exec_timeout_max_seconds", 86400.0,
        "tty_enabled", 1, "streaming_enabled", 1, "snapshots_enabled", 1, "clone_enabled", 1,
        "export_enabled", 1, "supported_security_presets", "standard", "idempotency_key_lifetime",
        "PT24H");
    return reply_json(r, 200, o);
}

enum MHD_Result h_me(struct req *r)
{
    const char *p = g_serve->cfg->prefix;
    json_t *o = json_pack("{s:s, s:s, s:s, s:[s, s, s, s, s, s], s:n}", "sub", r->principal,
                          "principal_type", "service_account", "display_name", r->principal,
                          "scopes", "boxes:read", "boxes:write", "exec:write", "files:read",
                          "files:write", "images:write", "expires_at");

    json_object_set_new(o, "path_prefix", p != NULL && p[0] ? json_string(p) : json_null());
    return reply_json(r, 200, o);
}

enum MHD_Result h_metrics(struct req *r)
{
    boxlite_box_info *list = NULL;
    size_t n = 0, running = 0;
    struct serve_counters *c = &g_serve->counters;

    if (boxlite_box_list_v2(&list, &n, g_serve->rt, BOXLITE_BOX_INFO_VERSION) == 0)
        for (size_t i = 0; i < n; i++)
            running += strcmp(list[i].state, "running") == 0;
    boxlite_box_list_free(list, n);
    return reply_json(
        r, 200,
        json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I}", "boxes_created_total",
            (json_int_t)__atomic_load_n(&c->boxes_created, __ATOMIC_RELAXED), "boxes_failed_total",
            (json_int_t)__atomic_load_n(&c->boxes_failed, __ATOMIC_RELAXED), "boxes_stopped_total",
            (json_int_t)__atomic_load_n(&c->boxes_stopped, __ATOMIC_RELAXED), "num_running_boxes",
            (json_int_t)running, "total_commands_executed",
            (json_int_t)__atomic_load_n(&c->execs, __ATOMIC_RELAXED), "total_exec_errors",
            (json_int_t)__atomic_load_n(&c->exec_errors, __ATOMIC_RELAXED)));
}
