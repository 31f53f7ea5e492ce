/* cli_boxopts.c — the box flags that `create` and `run` share (--name, -e, -w, -u, --cpus,
 * --memory, --disk-size, -d, --rm), parsed into boxlite_box_options. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>

void cli_box_opts_init(struct cli_box_opts *o)
{
    boxlite_box_options init = BOXLITE_BOX_OPTIONS_INIT;

    o->box = init;
    o->nenv = 0;
    o->env[0] = NULL;
    o->box.env = o->env;
}

int cli_parse_uint(const char *s, unsigned *out, const char *what)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || !end || *end != '\0' || s[0] == '-' || s[0] == '\0' || v > 1u << 24) {
        fprintf(stderr, "boxlite: %s: \"%s\" is not a number\n", what, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int cli_box_opt(struct cli_box_opts *o, int c, const char *arg)
{
    int rc = 0;

    switch (c) {
    case 'n':
        o->box.name = arg;
        break;
    case 'e':
        if (o->nenv >= CLI_MAX_ENV) {
            fprintf(stderr, "boxlite: too many -e\n");
            rc = -1;
        } else {
            o->env[o->nenv++] = arg;
            o->env[o->nenv] = NULL;
        }
        break;
    case 'w':
        o->box.working_dir = arg;
        break;
    case 'u':
        o->box.user = arg;
        break;
    case 'c':
        rc = cli_parse_uint(arg, &o->box.cpus, "--cpus");
        if (rc == 0 && o->box.cpus == 0) {
            fprintf(stderr, "boxlite: --cpus 0: a box needs at least 1 cpu\n");
            rc = -1;
        }
        break;
    case 'm':
        rc = cli_parse_uint(arg, &o->box.memory_mib, "--memory");
        break;
    case 'D':
        rc = cli_parse_uint(arg, &o->box.disk_size_gb, "--disk-size");
        break;
    case 'd':
        o->box.detach = 1;
        break;
    case 'r':
        o->box.auto_remove = 1;
        break;
    default:
        rc = 1;
        break;
    }
    return rc;
}
