/* fuzz_boxarchive.c — libFuzzer target for the `.boxlite` archive reader (bl_box_archive_read
 * and bl_box_archive_row, src/lib/snapshot/archive.c): the input is the archive
 * `boxlite import-box` is given. When the reader accepts it, the disk it wrote must be exactly
 * what the manifest states (size and sha256, hashed again here), and the box settings are read
 * from the manifest as a trusted import would. Work files live in $TMPDIR (default /tmp). */
#include "boxarchive.h"
#include "db.h"
#include "store.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char path[300], disk[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "%s/fuzz_boxarchive.%d.boxlite", tmp, (int)getpid());
    snprintf(disk, sizeof(disk), "%s/fuzz_boxarchive.%d.qcow2", tmp, (int)getpid());
    return 0;
}

/* The disk the reader accepted against the manifest's word on it. */
static void check_disk(json_t *m)
{
    json_t *f = json_array_get(json_object_get(m, "files"), 0);
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    json_int_t want = json_integer_value(json_object_get(f, "size"));
    char got[72], *buf = NULL;
    long n = -1;
    FILE *fp = fopen(disk, "rb");

    if (fp && fseek(fp, 0, SEEK_END) == 0)
        n = ftell(fp);
    if (n >= 0 && n < (1L << 26) && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (!buf || fread(buf, 1, (size_t)n, fp) != (size_t)n)
            n = -1;
    }
    if (fp)
        fclose(fp);
    if (n < 0 || !sha || n != (long)want) {
        fprintf(stderr, "fuzz_boxarchive: accepted disk of %ld bytes, manifest says %lld\n", n,
                (long long)want);
        abort();
    }
    bl_sha256_buf(got, buf, (size_t)n);
    if (strcmp(got + 7, sha) != 0) {
        fprintf(stderr, "fuzz_boxarchive: accepted disk hashes to %s, manifest says %s\n", got,
                sha);
        abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bl_box_row row;
    json_t *m = NULL;
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    unlink(disk);
    if (bl_box_archive_read(&m, path, disk, 1u << 26) == 0) {
        check_disk(m);
        memset(&row, 0, sizeof(row));
        if (bl_box_archive_row(&row, m, "0123456789ab", NULL, NULL, 0) == 0)
            bl_box_row_clear(&row);
        json_decref(m);
    }
    unlink(disk);
    unlink(path);
    return 0;
}
