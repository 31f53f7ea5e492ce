/* api.c — the public API's own rules: the library's version, the _init function of every
 * versioned struct (each version's size, so a struct built against an older header is
 * never written past its end), the names beside the state/kind/log-level numbers, and the
 * versioned list and clone entry points over the 1.0 ones. */
#include "api.h"
#include "box.h"

#include <stddef.h>
#include <string.h>

#include "error.h"

BOXLITE_API unsigned boxlite_version_number(void)
{
    return BOXLITE_VERSION_NUMBER;
}

int bl_check_version(unsigned version, unsigned current, const char *what)
{
    if (version < 1 || version > current)
        return bl_err(BOXLITE_EINVAL,
                      "%s of version %u: this library (%s) knows versions 1 to %u (set "
                      "version with the struct's _INIT macro or _init function)",
                      what, version, BOXLITE_VERSION, current);
    return 0;
}

/* Copy the first sizes[version - 1] bytes of tmpl (the current defaults) into p. */
static int init_struct(void *p, unsigned version, const size_t *sizes, unsigned current,
                       const void *tmpl, const char *what)
{
    int rc = bl_check_version(version, current, what);

    if (rc == 0 && !p)
        rc = bl_err(BOXLITE_EINVAL, "%s: NULL", what);
    if (rc == 0) {
        memcpy(p, tmpl, sizes[version - 1]);
        memcpy(p, &version, sizeof(version)); /* every struct begins with unsigned version */
    }
    return rc;
}

BOXLITE_API int boxlite_runtime_options_init(boxlite_runtime_options *opts, unsigned version)
{
    static const boxlite_runtime_options tmpl = BOXLITE_RUNTIME_OPTIONS_INIT;
    static const size_t sizes[] = {offsetof(boxlite_runtime_options, registries),
                                   offsetof(boxlite_runtime_options, accel),
                                   sizeof(boxlite_runtime_options)};
    return init_struct(opts, version, sizes, BOXLITE_RUNTIME_OPTIONS_VERSION, &tmpl,
                       "runtime options");
}

BOXLITE_API int boxlite_box_options_init(boxlite_box_options *opts, unsigned version)
{
    static const boxlite_box_options tmpl = BOXLITE_BOX_OPTIONS_INIT;
    static const size_t sizes[] = {
        offsetof(boxlite_box_options, allow_net), offsetof(boxlite_box_options, no_main),
        offsetof(boxlite_box_options, secrets), sizeof(boxlite_box_options)};
    return init_struct(opts, version, sizes, BOXLITE_BOX_OPTIONS_VERSION, &tmpl, "box options");
}

BOXLITE_API int boxlite_exec_options_init(boxlite_exec_options *opts, unsigned version)
{
    static const boxlite_exec_options tmpl = BOXLITE_EXEC_OPTIONS_INIT;
    static const size_t sizes[] = {offsetof(boxlite_exec_options, detach),
                                   offsetof(boxlite_exec_options, rlimits),
                                   sizeof(boxlite_exec_options)};
    return init_struct(opts, version, sizes, BOXLITE_EXEC_OPTIONS_VERSION, &tmpl, "exec options");
}

BOXLITE_API int boxlite_copy_options_init(boxlite_copy_options *opts, unsigned version)
{
    static const boxlite_copy_options tmpl = BOXLITE_COPY_OPTIONS_INIT;
    static const size_t sizes[] = {sizeof(boxlite_copy_options)};
    return init_struct(opts, version, sizes, BOXLITE_COPY_OPTIONS_VERSION, &tmpl, "copy options");
}

BOXLITE_API int boxlite_pull_options_init(boxlite_pull_options *opts, unsigned version)
{
    static const boxlite_pull_options tmpl = BOXLITE_PULL_OPTIONS_INIT;
    static const size_t sizes[] = {sizeof(boxlite_pull_options)};
    return init_struct(opts, version, sizes, BOXLITE_PULL_OPTIONS_VERSION, &tmpl, "pull options");
}

static const size_t box_info_sizes[] = {
    offsetof(boxlite_box_info, image_ref), offsetof(boxlite_box_info, has_exit_code),
    offsetof(boxlite_box_info, updated_at), sizeof(boxlite_box_info)};

size_t bl_box_info_size(unsigned version)
{
    return version >= 1 && version <= BOXLITE_BOX_INFO_VERSION ? box_info_sizes[version - 1]
                                                               : sizeof(boxlite_box_info);
}

BOXLITE_API int boxlite_box_info_init(boxlite_box_info *info, unsigned version)
{
    static const boxlite_box_info tmpl = BOXLITE_BOX_INFO_INIT;
    return init_struct(info, version, box_info_sizes, BOXLITE_BOX_INFO_VERSION, &tmpl, "box info");
}

BOXLITE_API int boxlite_box_stats_init(boxlite_box_stats *stats, unsigned version)
{
    static const boxlite_box_stats tmpl = BOXLITE_BOX_STATS_INIT;
    static const size_t sizes[] = {sizeof(boxlite_box_stats)};
    return init_struct(stats, version, sizes, BOXLITE_BOX_STATS_VERSION, &tmpl, "box stats");
}

static const size_t box_timing_sizes[] = {sizeof(boxlite_box_timing)};

size_t bl_box_timing_size(unsigned version)
{
    return version >= 1 && version <= BOXLITE_BOX_TIMING_VERSION ? box_timing_sizes[version - 1]
                                                                 : sizeof(boxlite_box_timing);
}

BOXLITE_API int boxlite_box_timing_init(boxlite_box_timing *timing, unsigned version)
{
    static const boxlite_box_timing tmpl = BOXLITE_BOX_TIMING_INIT;
    return init_struct(timing, version, box_timing_sizes, BOXLITE_BOX_TIMING_VERSION, &tmpl,
                       "box timing");
}

BOXLITE_API int boxlite_exec_result_init(boxlite_exec_result *result, unsigned version)
{
    static const boxlite_exec_result tmpl = BOXLITE_EXEC_RESULT_INIT;
    static const size_t sizes[] = {sizeof(boxlite_exec_result)};
    return init_struct(result, version, sizes, BOXLITE_EXEC_RESULT_VERSION, &tmpl, "exec result");
}

BOXLITE_API int boxlite_snapshot_info_init(boxlite_snapshot_info *info, unsigned version)
{
    static const boxlite_snapshot_info tmpl = BOXLITE_SNAPSHOT_INFO_INIT;
    static const size_t sizes[] = {sizeof(boxlite_snapshot_info)};
    return init_struct(info, version, sizes, BOXLITE_SNAPSHOT_INFO_VERSION, &tmpl, "snapshot info");
}

/* ---- numbers and names ---- */

static const char *const box_states[] = {"configured", "running", "stopping", "stopped", "failed"};
static const char *const snapshot_kinds[] = {"disk", "full"};
static const char *const log_levels[] = {"debug", "info", "warn", "error"};

#define NAME_OF(table, i)                                                                          \
    ((i) >= 0 && (size_t)(i) < sizeof(table) / sizeof((table)[0]) ? (table)[i] : "unknown")

BOXLITE_API const char *boxlite_box_state_name(int state)
{
    return NAME_OF(box_states, state);
}

BOXLITE_API const char *boxlite_snapshot_kind_name(int kind)
{
    return NAME_OF(snapshot_kinds, kind);
}

BOXLITE_API const char *boxlite_log_level_name(int level)
{
    return NAME_OF(log_levels, level);
}

int bl_box_state_code(const char *state)
{
    for (int i = 0; state && i < (int)(sizeof(box_states) / sizeof(box_states[0])); i++)
        if (strcmp(state, box_states[i]) == 0)
            return i;
    return BOXLITE_BOX_STATE_FAILED;
}

int bl_snapshot_kind_code(const char *kind)
{
    return kind && strcmp(kind, "full") == 0 ? BOXLITE_SNAPSHOT_KIND_FULL
                                             : BOXLITE_SNAPSHOT_KIND_DISK;
}

/* ---- versioned lists, frees, clone in fork's order ---- */

/* An entry of a versioned list is the struct as the caller's version has it: box info's
 * entries are packed at that version's size (bl_box_list_version). */
BOXLITE_API int boxlite_box_list_v2(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt,
                                    unsigned version)
{
    int rc = bl_check_version(version, BOXLITE_BOX_INFO_VERSION, "box info");
    return rc ? rc : bl_box_list_version(out, count_out, rt, version);
}

BOXLITE_API void boxlite_box_list_free(boxlite_box_info *list, size_t count)
{
    (void)count; /* one allocation: the entries own nothing */
    boxlite_free(list);
}

BOXLITE_API int boxlite_snapshot_list_v2(boxlite_snapshot_info **out, size_t *count_out,
                                         boxlite_box *box, unsigned version)
{
    int rc = bl_check_version(version, BOXLITE_SNAPSHOT_INFO_VERSION, "snapshot info");
    return rc ? rc : boxlite_snapshot_list(out, count_out, box);
}

BOXLITE_API void boxlite_snapshot_list_free(boxlite_snapshot_info *list, size_t count)
{
    (void)count;
    boxlite_free(list);
}

BOXLITE_API int boxlite_image_list_v2(boxlite_image_info **out, size_t *count_out,
                                      boxlite_runtime *rt, unsigned version)
{
    int rc = bl_check_version(version, BOXLITE_IMAGE_INFO_VERSION, "image info");
    return rc ? rc : boxlite_image_list(out, count_out, rt);
}

BOXLITE_API int boxlite_exec_wait_v2(boxlite_exec_result *out, boxlite_exec *ex, int timeout_ms)
{
    return boxlite_exec_wait(ex, out, timeout_ms);
}

BOXLITE_API int boxlite_box_clone_v2(boxlite_box **out, boxlite_box *box, const char *snapshot,
                                     const char *name)
{
    return boxlite_box_clone(out, box, name, snapshot);
}
