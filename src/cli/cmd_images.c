/* cmd_images.c — `boxlite images [--format json]`: the images in the store (repository, tag,
 * id, size, cached-at). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void size_str(char *buf, size_t cap, uint64_t n)
{
    if (n >= 1ull << 30)
        snprintf(buf, cap, "%.2fGB", (double)n / 1e9);
    else if (n >= 1000000)
        snprintf(buf, cap, "%.1fMB", (double)n / 1e6);
    else
        snprintf(buf, cap, "%.1fkB", (double)n / 1e3);
}

static void print_json(const boxlite_image_info *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"name\":", i ? "," : "");
        cli_json_str(stdout, v[i].name);
        printf(",\"repository\":");
        cli_json_str(stdout, v[i].repository);
        printf(",\"tag\":");
        cli_json_str(stdout, v[i].tag);
        printf(",\"id\":");
        cli_json_str(stdout, v[i].id);
        printf(",\"digest\":");
        cli_json_str(stdout, v[i].digest);
        printf(",\"size\":%llu,\"cached_at\":%lld}", (unsigned long long)v[i].size,
               (long long)v[i].cached_at);
    }
    printf("]\n");
}

static void print_table(const boxlite_image_info *v, size_t n)
{
    printf("%-48s %-16s %-14s %-10s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CACHED");
    for (size_t i = 0; i < n; i++) {
        char size[32], when[32];
        time_t t = (time_t)v[i].cached_at;
        struct tm tm;
        size_str(size, sizeof(size), v[i].size);
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        printf("%-48s %-16s %-14.12s %-10s %s\n", v[i].repository, *v[i].tag ? v[i].tag : "<none>",
               v[i].id + 7, size, when);
    }
}

int cmd_images(int argc, char **argv)
{
    static const struct option longopts[] = {{"format", 1, NULL, 'f'},
                                             {"quiet", 0, NULL, 'q'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    boxlite_image_info *v = NULL;
    boxlite_runtime *rt = NULL;
    size_t n = 0;
    int c, json = 0, quiet = 0, status;

    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0)) {
            json = strcmp(optarg, "json") == 0;
        } else if (c == 'q') {
            quiet = 1;
        } else {
            FILE *f = c == 'h' ? stdout : stderr;
            fprintf(f, "usage: boxlite images [--format table|json] [-q]\n\n"
                       "List the images in the store. -q prints the names only.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_image_list_v2(&v, &n, rt, BOXLITE_IMAGE_INFO_VERSION) != 0) {
        status = cli_fail("images");
    } else if (json) {
        print_json(v, n);
    } else if (quiet) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", v[i].name);
    } else {
        print_table(v, n);
    }
    boxlite_image_list_free(v, n);
    boxlite_runtime_free(rt);
    return status;
}
