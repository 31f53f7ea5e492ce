/* boxarchive.h — the reader of a `.boxlite` archive (archive.c) on its own: the archive is
 * hostile until checked, and tests/fuzz/fuzz_boxarchive.c feeds the reader crafted ones.
 * Importing a box from it (boxlite_box_import) is the public API; this is the part before the
 * store. */
#ifndef BL_BOXARCHIVE_H
#define BL_BOXARCHIVE_H

#include <stdint.h>

#include "boxlite.h"

struct json_t;
struct bl_box_row;

/* Read the archive at path: exactly manifest.json (a boxlite-box manifest, at most 1 MiB)
 * then disk.qcow2, regular files in a plain tar; the disk's bytes go to the new file disk
 * (created with O_EXCL; the caller removes it on failure) as they are hashed, at most the size
 * the manifest states and at most cap bytes, and must match its sha256. An archive exported
 * by BoxLite (a manifest bl_box_archive_is_boxlite says is BoxLite's; plain or zstd tar; an
 * old archive's guest-rootfs.qcow2 member skipped) is read the same way, its manifest given
 * back translated into ours with the disk's size filled in. The disk's content is not
 * checked here. 0 and *manifest_out (json_decref), or BOXLITE_EINVAL/EIO/ENOMEM with a
 * message. */
int bl_box_archive_read(struct json_t **manifest_out, const char *path, const char *disk,
                        uint64_t cap);

/* The box row the manifest describes (id, name as given): image, cpus, memory, disk size,
 * env, entrypoint, cmd, workdir, user, network — bounded (64 CPUs, 1 TiB, 16384 GB, env
 * entries KEY=VALUE, absolute workdir) and, when untrusted, held to the host's limits and
 * to images the user can reach (rt is used only then). 0 and *out (bl_box_row_clear), or
 * BOXLITE_EINVAL with a message. */
int bl_box_archive_row(struct bl_box_row *out, struct json_t *manifest, const char *id,
                       const char *name, boxlite_runtime *rt, int untrusted);

/* BoxLite's manifest (boxlite_manifest.c): whether m is one (no "format", a
 * "container_disk_checksum"), and m read into a manifest of ours — format, box settings (not yet
 * bounded: bl_box_archive_row does that), files[0] disk.qcow2 with its sha256 and size 0 —
 * refusing what an import cannot carry (host rootfs paths, volumes, an egress allowlist) and
 * archives without a checksum (version 1) or of a version after 5. 0 and *out (json_decref),
 * or BOXLITE_EINVAL/ENOMEM with a message. */
int bl_box_archive_is_boxlite(struct json_t *m);
int bl_box_archive_from_boxlite(struct json_t **out, struct json_t *m);

#endif
