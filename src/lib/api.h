/* api.h — the public API's own rules, shared by every subsystem: struct versions (which
 * fields a caller's struct has) and the numbers beside state and kind names. */
#ifndef BL_API_H
#define BL_API_H

#include "boxlite.h"

/* 0 when version is 1..current, else BOXLITE_EINVAL naming what (the struct). */
int bl_check_version(unsigned version, unsigned current, const char *what);

/* The size of a boxlite_box_info of the given version (1..current). */
size_t bl_box_info_size(unsigned version);

/* The size of a boxlite_box_timing of the given version (1..current). */
size_t bl_box_timing_size(unsigned version);

/* BOXLITE_BOX_STATE_* of a state name; BOXLITE_BOX_STATE_FAILED for an unknown one. */
int bl_box_state_code(const char *state);

/* BOXLITE_SNAPSHOT_KIND_* of a kind name ("full", else disk). */
int bl_snapshot_kind_code(const char *kind);

#endif
