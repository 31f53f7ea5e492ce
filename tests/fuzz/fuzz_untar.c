/* fuzz_untar.c — libFuzzer target for the host's extraction of a box's (hostile) tar stream:
 * extracts each input beneath a fresh directory and aborts if anything appears beside it. */
#include "untar.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    const uint8_t *p;
    size_t left;
};

static ssize_t feed_read(void *ctx, const void **buf)
{
    struct feed *f = ctx;
    size_t n = f->left < 700 ? f->left : 700; /* odd chunks: exercise the read callback */

    *buf = f->p;
    f->p += n;
    f->left -= n;
    return (ssize_t)n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        chmod(path, 0700);
    return remove(path) < 0 ? 0 : 0;
}

static void chmod_all(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s 2>/dev/null", dir);
    (void)system(cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char base[64];
    char dest[128], sentinel[128];
    struct bl_untar_opts o = {1, data && size && (data[0] & 1), 1u << 20, 1000};
    struct feed f = {data, size};
    struct dirent *de;
    DIR *d;
    int n = 0;

    if (!base[0]) {
        snprintf(base, sizeof(base), "/tmp/fuzz-untar-XXXXXX");
        if (!mkdtemp(base))
            abort();
    }
    snprintf(dest, sizeof(dest), "%s/dest", base);
    snprintf(sentinel, sizeof(sentinel), "%s/sentinel", base);
    mkdir(dest, 0700);
    mkdir(sentinel, 0700);
    (void)bl_untar(dest, &o, feed_read, &f);
    /* Nothing but dest and sentinel may exist in base, and sentinel must stay empty. */
    d = opendir(base);
    while (d && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "dest") &&
            strcmp(de->d_name, "sentinel"))
            abort();
    if (d)
        closedir(d);
    d = opendir(sentinel);
    while (d && (de = readdir(d)) != NULL)
        n++;
    if (d)
        closedir(d);
    if (n != 2)
        abort();
    chmod_all(dest);
    nftw(dest, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
