/* fuzz_layer.c — libFuzzer target for layer tars: the input is a layer (tar, gzip or zstd)
 * scanned and, when the scan accepts it, applied to a small fresh ext4 image, which must then
 * close cleanly. Work files live in $TMPDIR (default /tmp). */
#include "ext4.h"
#include "layer.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMAGE_SIZE (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char tmpl[512], work[512], layer[512];
static char *tmpl_data;
static size_t tmpl_len;

static int write_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, n, f) == n;

    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    FILE *f;

    snprintf(tmpl, sizeof(tmpl), "%s/fuzz_layer.%d.tmpl", dir, (int)getpid());
    snprintf(work, sizeof(work), "%s/fuzz_layer.%d.ext4", dir, (int)getpid());
    snprintf(layer, sizeof(layer), "%s/fuzz_layer.%d.tar", dir, (int)getpid());
    if (bl_fs_mkfs(tmpl, IMAGE_SIZE) != 0)
        abort();
    f = fopen(tmpl, "rb");
    tmpl_data = malloc(IMAGE_SIZE);
    if (!f || !tmpl_data)
        abort();
    tmpl_len = fread(tmpl_data, 1, IMAGE_SIZE, f);
    fclose(f);
    unlink(tmpl);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_layer_scan scan;
    struct bl_fs *fs = NULL;

    if (write_file(layer, data, size) != 0)
        return 0;
    if (bl_layer_scan(&scan, layer, NULL, NULL) != 0)
        return 0;
    if (write_file(work, tmpl_data, tmpl_len) == 0 && bl_fs_open(&fs, work) == 0) {
        if (bl_layer_apply(fs, layer, &scan) == 0)
            bl_fs_close(fs);
        else
            bl_fs_abort(fs);
    }
    bl_layer_scan_clear(&scan);
    unlink(work);
    unlink(layer);
    return 0;
}
