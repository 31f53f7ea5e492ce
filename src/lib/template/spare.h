/* spare.h — ready-made copies of a warm template's RAM file ("spares"): a start from the
 * template renames one into the box instead of copying the file while it starts, and the
 * box's monitor makes the next one once the guest runs (docs/templates.md, "Spares"). Shared
 * by the library (take) and boxlite-shim (refill). */
#ifndef BL_SPARE_H
#define BL_SPARE_H

/* Rename a spare of template directory tdir over dst (the box's RAM file). 0 when dst now
 * holds one; -1 when there is none for this template build and host boot (nothing changed).
 * Never sets the error message. Any thread. */
int bl_spare_take(const char *tdir, const char *dst);

/* Make tdir's spare when it has none: under the spares' lock (another process refilling:
 * return at once), remove what is not a usable spare, copy tdir/ram into a new one. 0 when a
 * spare exists; else an error code with the message set. Blocks for the copy (~30 ms for a
 * 512 MiB guest's ~70 MiB). Any thread. */
int bl_spare_refill(const char *tdir);

/* Bytes on disk of tdir's spares (for a template's size). */
unsigned long long bl_spare_bytes(const char *tdir);

#endif
