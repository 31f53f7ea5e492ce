/* test_import.c — unit tests of image import's reading half (bl_image_import_plan,
 * src/lib/image/import.c) on docker-save tarballs written here with libarchive: a valid one
 * is planned (its manifest, config and layer in the store), and one holding manifest.json
 * twice is refused — fuzz_import found that the first copy leaked, and which document the
 * image means is ambiguous. */
#include "boxlite.h"
#include "error.h"
#include "importplan.h"
#include "store.h"
#include "tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_import.XXXXXX";

#define CONFIG "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]}}"
#define LAYER  "not much of a layer, but import only stores it"
#define SAVE   "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"localhost/t:1\"],\"Layers\":[\"l.tar\"]}]"

static void add(struct archive *a, const char *name, const char *data)
{
    struct archive_entry *e = archive_entry_new();

    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)strlen(data));
    archive_write_header(a, e);
    archive_write_data(a, data, strlen(data));
    archive_entry_free(e);
}

/* A docker-save tarball at path: first_manifest (NULL: none) before the members, then
 * manifest.json, cfg.json and l.tar. */
static void write_save(const char *path, const char *first_manifest)
{
    struct archive *a = archive_write_new();

    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    if (first_manifest)
        add(a, "manifest.json", first_manifest);
    add(a, "manifest.json", SAVE);
    add(a, "cfg.json", CONFIG);
    add(a, "l.tar", LAYER);
    archive_write_close(a);
    archive_write_free(a);
}

int main(void)
{
    struct bl_import_plan p;
    char home[64], path[96], cfg[72], layer[72];
    int rc;

    if (!mkdtemp(dir))
        return 1;
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(path, sizeof(path), "%s/save.tar", dir);
    bl_sha256_buf(cfg, CONFIG, strlen(CONFIG));
    bl_sha256_buf(layer, LAYER, strlen(LAYER));
    CHECK(bl_store_init(home) == 0, "a scratch store");

    write_save(path, NULL);
    memset(&p, 0, sizeof(p));
    rc = bl_image_import_plan(&p, home, path, NULL);
    CHECK(rc == 0, "a docker-save tarball is planned");
    CHECK(rc == 0 && strcmp(p.name, "localhost/t:1") == 0, "named by its RepoTags");
    CHECK(rc == 0 && strcmp(p.m.config.digest, cfg) == 0 && p.m.n_layers == 1 &&
              strcmp(p.m.layers[0].digest, layer) == 0,
          "its manifest names the config and the layer");
    CHECK(rc == 0 && bl_store_has_blob(home, p.manifest_digest) && bl_store_has_blob(home, cfg) &&
              bl_store_has_blob(home, layer),
          "manifest, config and layer are in the store");
    bl_import_plan_clear(&p);

    /* a first manifest.json the valid one would silently replace (and leak) */
    write_save(path, "[{\"Config\":\"elsewhere.json\",\"Layers\":[]}]");
    memset(&p, 0, sizeof(p));
    rc = bl_image_import_plan(&p, home, path, NULL);
    CHECK(rc == BOXLITE_EPROTO, "manifest.json twice is refused");
    CHECK(strstr(boxlite_error_last(), "manifest.json twice") != NULL,
          "the message names the member");
    if (rc == 0)
        bl_import_plan_clear(&p);

    unlink(path);
    {
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return tap_done();
}
