/* fuzz_layer.c — libFuzzer target for layer tars: the input is a layer (tar, gzip or zstd)
 * scanned and, when the scan accepts it, applied to a small fresh ext4 image, which must then
 * close cleanly (a failed close aborts); the first image written and every 64th after it
 * must pass `e2fsck -fn` (run with posix_spawnp, not a shell). Work files live in $TMPDIR
 * (default /tmp). */
#include "ext4.h"
#include "layer.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

/* e2fsck -fn on the image just closed; anything but a clean exit aborts. */
static void fsck_image(void)
{
    char *argv[] = {"e2fsck", "-fn", work, NULL};
    posix_spawn_file_actions_t fa;
    int status = -1;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, "e2fsck", &fa, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid)
        abort();
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fuzz_layer: e2fsck -fn found errors (status %d) in the image\n", status);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned applied;
    struct bl_layer_scan scan;
    struct bl_fs *fs = NULL;

    if (write_file(layer, data, size) != 0)
        return 0;
    if (bl_layer_scan(&scan, layer, NULL, NULL) != 0)
        return 0;
    if (write_file(work, tmpl_data, tmpl_len) == 0 && bl_fs_open(&fs, work) == 0) {
        if (bl_layer_apply(fs, layer, &scan) == 0) {
            if (bl_fs_close(fs) != 0) {
                fprintf(stderr, "fuzz_layer: close failed after an accepted layer\n");
                abort();
            }
            if (applied++ % 64 == 0)
                fsck_image();
        } else {
            bl_fs_abort(fs);
        }
    }
    bl_layer_scan_clear(&scan);
    unlink(work);
    unlink(layer);
    return 0;
}
