/* api.h — the public API's own rules, shared by every subsystem: struct versions (which
 * fields a caller's struct has) and the numbers beside state and kind names. */
#ifndef BL_API_H
#define BL_API_H

#include "boxlite.h"

#include <stddef.h>

/* 0 when version is 1..current, else BOXLITE_EINVAL naming what (the struct). */
int bl_check_version(unsigned version, unsigned current, const char *what);

/* The bytes of a boxlite_box_info of the given (checked) version: what the library writes. */
size_t bl_box_info_size(unsigned version);

/* boxlite_box_list at the given (checked) version: entries packed at that version's size,
 * one allocation (boxlite_box_list_free). */
int bl_box_list_at(boxlite_box_info **out, size_t *count_out, boxlite_runtime *rt,
                   unsigned version);

/* BOXLITE_BOX_STATE_* of a state name; BOXLITE_BOX_STATE_FAILED for an unknown one. */
int bl_box_state_code(const char *state);

/* BOXLITE_SNAPSHOT_KIND_* of a kind name ("full", else disk). */
int bl_snapshot_kind_code(const char *kind);

#endif
