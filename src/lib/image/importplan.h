/* importplan.h — the reading half of an image import (import.c) on its own: an OCI layout
 * (directory or tarball), a `docker save` tarball or a root filesystem, read into the store
 * and resolved to one manifest, before any layer is applied. The files are hostile;
 * tests/fuzz/fuzz_import.c feeds it crafted tarballs. bl_image_import_record (image.h) is
 * this plus building the image. */
#ifndef BL_IMPORTPLAN_H
#define BL_IMPORTPLAN_H

#include "manifest.h"

struct bl_import_plan {
    char *name;               /* the canonical name to record the image under */
    char manifest_digest[72]; /* "sha256:<hex>" of the image manifest, in the store */
    struct bl_manifest m;     /* that manifest: its config and layers are in the store */
};

/* Read the image at path into the store under home (bl_store_init done; the caller holds
 * the shared "gc" lock and collects what a failure leaves): every member's bytes, counted
 * against the image limits (bounds.h), then index.json or manifest.json resolved to one
 * image manifest whose blobs all are in the store. name (may be NULL) overrides the name the
 * files give. 0 and *out (bl_import_plan_clear), or a BOXLITE_E* code with a message. */
int bl_image_import_plan(struct bl_import_plan *out, const char *home, const char *path,
                         const char *name);
void bl_import_plan_clear(struct bl_import_plan *p);

#endif
