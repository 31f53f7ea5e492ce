/* fuzz_import.c — libFuzzer target for image import from a tarball (bl_image_import_plan,
 * src/lib/image/import.c): the input is the file `boxlite image import` is given — a `docker
 * save` tarball, an OCI layout tarball or a root filesystem tarball (tar, gzip or zstd). It is
 * read into a scratch store (under $TMPDIR, default /dev/shm where fsync is free); a plan that
 * is accepted must name blobs that are all in the store: its manifest, config and layers.
 * The store is emptied after each input. */
#include "importplan.h"
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char home[256], input[300];

static void missing(const char *what, const char *digest)
{
    fprintf(stderr, "fuzz_import: an accepted plan's %s %s is not in the store\n", what, digest);
    abort();
}

/* Empty dir (one level: the store's folders hold files only). */
static void empty_dir(const char *dir)
{
    char p[600];
    struct dirent *de;
    DIR *d = opendir(dir);

    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void cleanup(void)
{
    nftw(home, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct stat st;

    (void)argc;
    (void)argv;
    if (!tmp)
        tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(home, sizeof(home), "%s/fuzz_import.%d", tmp, (int)getpid());
    snprintf(input, sizeof(input), "%s/input.tar", home);
    if (mkdir(home, 0700) != 0 || bl_store_init(home) != 0)
        abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_import_plan p;
    char dir[600];
    FILE *f = fopen(input, "wb");

    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    if (bl_image_import_plan(&p, home, input, NULL) == 0) {
        if (!p.name || !p.name[0])
            missing("name", "(none)");
        if (!bl_store_has_blob(home, p.manifest_digest))
            missing("manifest", p.manifest_digest);
        if (!bl_store_has_blob(home, p.m.config.digest))
            missing("config", p.m.config.digest);
        for (size_t i = 0; i < p.m.n_layers; i++)
            if (!bl_store_has_blob(home, p.m.layers[i].digest))
                missing("layer", p.m.layers[i].digest);
        bl_import_plan_clear(&p);
    }
    snprintf(dir, sizeof(dir), "%s/images/blobs/sha256", home);
    empty_dir(dir);
    snprintf(dir, sizeof(dir), "%s/images/tmp", home);
    empty_dir(dir);
    unlink(input);
    return 0;
}
