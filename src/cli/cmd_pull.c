/* cmd_pull.c — `boxlite pull [-q] [--registry SPEC] IMAGE`: fetch an image into the store
 * and prepare its base filesystem, with per-layer progress on a terminal. */
#include "cli.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    int on;
    double start, last;
    unsigned lines; /* layers printed so far */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(char *buf, size_t cap, uint64_t n)
{
    if (n >= 1ull << 30)
        snprintf(buf, cap, "%.1f GiB", (double)n / (1ull << 30));
    else if (n >= 1u << 20)
        snprintf(buf, cap, "%.1f MiB", (double)n / (1u << 20));
    else if (n >= 1u << 10)
        snprintf(buf, cap, "%.1f KiB", (double)n / (1u << 10));
    else
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
}

static void on_progress(void *ctx, const boxlite_pull_progress *p)
{
    struct progress *pr = ctx;
    char done[32], total[32], rate[32];
    double t = now_s();
    double secs = t - pr->start;

    if (!pr->on)
        return;
    switch (p->phase) {
    case BOXLITE_PULL_RESOLVE:
        fprintf(stderr, "resolving %s\n", p->ref);
        break;
    case BOXLITE_PULL_CACHED:
        fprintf(stderr, "layer %u/%u %.19s: already in the store\n", p->layer, p->layers,
                p->digest);
        break;
    case BOXLITE_PULL_DOWNLOAD:
        if (p->bytes < p->total && t - pr->last < 0.2)
            return;
        pr->last = t;
        human(done, sizeof(done), p->bytes);
        human(total, sizeof(total), p->total);
        human(rate, sizeof(rate), secs > 0 ? (uint64_t)(p->bytes / secs) : 0);
        fprintf(stderr, "\rlayer %u/%u %.19s: %s / %s  %s/s\033[K%s", p->layer, p->layers,
                p->digest, done, total, rate, p->bytes >= p->total ? "\n" : "");
        break;
    case BOXLITE_PULL_UNPACK:
        fprintf(stderr, "unpacking layer %u/%u %.19s\n", p->layer, p->layers, p->digest);
        break;
    case BOXLITE_PULL_DONE:
        fprintf(stderr, "done: %s\n", p->ref);
        break;
    default:
        break;
    }
    if (p->phase != BOXLITE_PULL_DOWNLOAD)
        pr->start = t;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: boxlite pull [OPTIONS] IMAGE\n\n"
               "Pull IMAGE (e.g. alpine:3.20, ghcr.io/org/img@sha256:...) into the store.\n\n"
               "  -q, --quiet            no progress output\n"
               "  --registry SPEC        HOST[,http][,skip-verify][,search][,user=U]"
               "[,password=P][,token=T][,ca=FILE]\n"
               "                         (repeatable; also $BOXLITE_HOME/registries.json)\n");
}

int cmd_pull(int argc, char **argv)
{
    static const struct option longopts[] = {{"quiet", 0, NULL, 'q'},
                                             {"registry", 1, NULL, 'R'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    boxlite_pull_options po = BOXLITE_PULL_OPTIONS_INIT;
    struct progress pr = {0};
    boxlite_image_info *info = NULL;
    boxlite_runtime *rt = NULL;
    int c, quiet = 0, status = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        if (c == 'q') {
            quiet = 1;
        } else if (c == 'R') {
            if (cli_registry_opt(optarg) != 0)
                return 2;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    pr.on = !quiet && isatty(2);
    pr.start = now_s();
    po.progress = on_progress;
    po.progress_ctx = &pr;
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_image_pull(&info, rt, argv[optind], &po) != 0) {
        if (pr.on)
            fprintf(stderr, "\n");
        status = cli_fail("pull");
    } else {
        printf("%s\n", info->name);
        if (!quiet)
            fprintf(stderr, "id %s\n", info->id);
    }
    boxlite_image_info_free(info);
    boxlite_runtime_free(rt);
    return status;
}
