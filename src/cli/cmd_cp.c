/* cmd_cp.c — `boxlite cp [-L] [--no-overwrite] SRC DST`: copy files between the host and a
 * running box (docker's BOX:PATH syntax; `-` is a tar stream on stdin or stdout). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cp_usage(FILE *f)
{
    fprintf(f, "usage: boxlite cp [OPTIONS] BOX:SRC_PATH DEST_PATH|-\n"
               "       boxlite cp [OPTIONS] SRC_PATH|- BOX:DEST_PATH\n\n"
               "Copy files and directories between the host and a running box. Modes, mtimes\n"
               "and symlinks are kept; on the host, modes lose setuid, setgid and sticky and\n"
               "are masked by the umask, devices and fifos are skipped, and files are yours.\n"
               "`-` streams a tar archive on stdout (from a box) or reads one from stdin and\n"
               "extracts it into the box directory DEST_PATH.\n\n"
               "  -L, --follow-link  copy what symlinks in SRC_PATH point to\n"
               "  --no-overwrite     fail instead of replacing existing files\n"
               "  --max-size SIZE    refuse a copy out of the box whose files (holes included)\n"
               "                     pass SIZE bytes (K, M, G, T suffixes; default 10G)\n");
}

/* "123", "10G", "512k": bytes, or 0 when s is not a size. */
static uint64_t parse_size(const char *s)
{
    static const char units[] = "KMGT";
    const char *u = NULL;
    char *end = NULL;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return 0;
    if (*end)
        u = strchr(units, *end == 'k' ? 'K' : *end);
    if (*end && (!u || !*u || end[1]))
        return 0;
    for (const char *p = units; u && p <= u; p++) {
        if (v > (UINT64_MAX >> 10))
            return 0;
        v <<= 10;
    }
    return v;
}

/* Split "BOX:PATH" (the box part has no '/' and does not start with '.'); 0 when arg names a
 * box path. */
static int box_path(char *arg, char **box, char **path)
{
    char *colon = strchr(arg, ':');

    if (arg[0] == '/' || arg[0] == '.' || !colon || colon == arg ||
        memchr(arg, '/', (size_t)(colon - arg)))
        return -1;
    *colon = '\0';
    *box = arg;
    *path = colon + 1;
    return 0;
}

static int copy(boxlite_box *box, const char *src, const char *dst, int out,
                const boxlite_copy_options *o)
{
    int rc;

    if (out && strcmp(dst, "-") == 0)
        rc = boxlite_box_copy_out_tar(box, src, 1, o);
    else if (out)
        rc = boxlite_box_copy_out(box, src, dst, o);
    else if (strcmp(src, "-") == 0)
        rc = boxlite_box_copy_in_tar(box, 0, dst, o);
    else
        rc = boxlite_box_copy_in(box, src, dst, o);
    return rc == 0 ? 0 : cli_fail("cp");
}

int cmd_cp(int argc, char **argv)
{
    static const struct option longopts[] = {{"follow-link", 0, NULL, 'L'},
                                             {"no-overwrite", 0, NULL, 'O'},
                                             {"max-size", 1, NULL, 'M'},
                                             {"help", 0, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    boxlite_copy_options o = BOXLITE_COPY_OPTIONS_INIT;
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    char *name = NULL, *src, *dst, *p = NULL;
    int rc = 0, out;

    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "Lh", longopts, NULL);
        if (c == -1 || rc != 0)
            break;
        if (c == 'L')
            o.follow_symlinks = 1;
        else if (c == 'O')
            o.overwrite = 0;
        else if (c == 'M') {
            o.max_bytes = parse_size(optarg);
            rc = o.max_bytes ? 0 : -1;
        } else
            rc = c == 'h' ? 1 : -1;
    }
    if (rc != 0 || argc - optind != 2) {
        cp_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    src = argv[optind];
    dst = argv[optind + 1];
    out = box_path(src, &name, &p) == 0;
    if (out)
        src = p;
    else if (box_path(dst, &name, &p) == 0)
        dst = p;
    if (!name || (out && box_path(dst, &name, &p) == 0) || !p[0]) {
        fprintf(stderr, "boxlite: cp: exactly one of SRC and DEST must be BOX:PATH\n");
        return 2;
    }
    rc = cli_open_runtime(&rt);
    if (rc == 0)
        rc = cli_get_box(&box, rt, name);
    if (rc == 0)
        rc = copy(box, src, dst, out, &o);
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return rc;
}
