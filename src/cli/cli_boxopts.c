/* cli_boxopts.c — the box flags that `create` and `run` share (--name, -e, -w, -u, --cpus,
 * --memory, --disk-size, -d, --rm, --auto-delete, --no-main, -p, -v, --network, --allow-net),
 * parsed into boxlite_box_options. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cli_box_opts_init(struct cli_box_opts *o)
{
    boxlite_box_options init = BOXLITE_BOX_OPTIONS_INIT;

    memset(o, 0, sizeof(*o)); /* every port and volume slot starts zeroed (read_only too) */
    o->box = init;
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

/* --secret NAME[=VALUE][@HOST,HOST...]: the value from our env when not given (it then
 * stays out of the process list). The strings live until the CLI exits. */
static int parse_secret(struct cli_box_opts *o, const char *arg)
{
    char *s = strdup(arg), *at, *eq;
    boxlite_secret *sec;
    size_t nh = 0;

    if (!s || o->box.n_secrets >= sizeof(o->secrets) / sizeof(o->secrets[0])) {
        fprintf(stderr, "boxlite: too many --secret (at most 32)\n");
        free(s);
        return -1;
    }
    sec = &o->secrets[o->box.n_secrets];
    at = strrchr(s, '@');
    if (at)
        *at++ = '\0';
    eq = strchr(s, '=');
    if (eq)
        *eq++ = '\0';
    for (char *save = NULL, *h = at ? strtok_r(at, ",", &save) : NULL; h;
         h = strtok_r(NULL, ",", &save)) {
        if (nh >= 16) {
            fprintf(stderr, "boxlite: --secret %s: at most 16 hosts\n", s);
            return -1;
        }
        o->secret_hosts[o->box.n_secrets][nh++] = h;
    }
    *sec = (boxlite_secret){s, eq ? eq : getenv(s), o->secret_hosts[o->box.n_secrets], NULL};
    if (!sec->value) {
        fprintf(stderr, "boxlite: --secret %s: no =VALUE and no $%s to take it from\n", s, s);
        return -1;
    }
    o->box.secrets = o->secrets;
    o->box.n_secrets++;
    return 0;
}

/* [IP:]HOST:GUEST[/tcp|udp] */
static int parse_port(struct cli_box_opts *o, const char *arg)
{
    char *s = strdup(arg), *proto = NULL, *parts[3] = {NULL, NULL, NULL};
    boxlite_port *p;
    int n = 0;

    if (!s || o->box.n_ports >= sizeof(o->ports) / sizeof(o->ports[0]))
        goto bad;
    p = &o->ports[o->box.n_ports];
    proto = strchr(s, '/');
    if (proto)
        *proto++ = '\0';
    for (char *tok = s; tok && n < 3; n++) {
        parts[n] = tok;
        tok = strchr(tok, ':');
        if (tok)
            *tok++ = '\0';
    }
    if (n < 2 || (n == 3 && strchr(parts[2], ':')))
        goto bad;
    p->host_ip = n == 3 ? parts[0] : NULL;
    p->protocol = proto;
    if (cli_parse_uint(parts[n - 2], &p->host_port, "--publish") != 0 ||
        cli_parse_uint(parts[n - 1], &p->guest_port, "--publish") != 0)
        return -1;
    o->box.ports = o->ports;
    o->box.n_ports++;
    return 0;
bad:
    fprintf(stderr, "boxlite: --publish %s: expected [IP:]HOST_PORT:GUEST_PORT[/tcp|udp]\n", arg);
    return -1;
}

/* HOST:GUEST[:ro|:rw] */
static int parse_volume(struct cli_box_opts *o, const char *arg)
{
    char *s = strdup(arg), *colon, *last;
    boxlite_volume *v;

    if (!s || o->box.n_volumes >= sizeof(o->volumes) / sizeof(o->volumes[0]))
        goto bad;
    v = &o->volumes[o->box.n_volumes];
    last = strrchr(s, ':');
    if (last && (strcmp(last, ":ro") == 0 || strcmp(last, ":rw") == 0)) {
        v->read_only = last[1] == 'r' && last[2] == 'o';
        *last = '\0';
    }
    colon = strchr(s, ':');
    if (!colon || colon == s || !colon[1])
        goto bad;
    *colon = '\0';
    v->host_path = s;
    v->guest_path = colon + 1;
    o->box.volumes = o->volumes;
    o->box.n_volumes++;
    return 0;
bad:
    fprintf(stderr, "boxlite: --volume %s: expected HOST_DIR:GUEST_DIR[:ro]\n", arg);
    return -1;
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
    case 'a': { /* seconds; the library says what < 0 and 0 mean: never < 0 from here */
        unsigned secs = 0;
        rc = cli_parse_uint(arg, &secs, "--auto-delete");
        o->box.auto_delete = (long)secs;
        break;
    }
    case 'M':
        o->box.no_main = 1;
        break;
    case 'R':
        rc = cli_registry_opt(arg) == 0 ? 0 : -1;
        break;
    case 'E':
        o->entrypoint[0] = *arg ? arg : NULL;
        o->entrypoint[1] = NULL;
        o->box.entrypoint = o->entrypoint;
        break;
    case 'p':
        rc = parse_port(o, arg);
        break;
    case 'v':
        rc = parse_volume(o, arg);
        break;
    case 'A':
        if (o->nallow >= 64) {
            fprintf(stderr, "boxlite: too many --allow-net (at most 64)\n");
            rc = -1;
        } else {
            o->allow_net[o->nallow++] = arg;
            o->allow_net[o->nallow] = NULL;
            o->box.allow_net = o->allow_net;
        }
        break;
    case 'S':
        rc = parse_secret(o, arg);
        break;
    case 'N':
        o->box.network_disabled = strcmp(arg, "none") == 0;
        if (!o->box.network_disabled && strcmp(arg, "user") != 0 && strcmp(arg, "nat") != 0) {
            fprintf(stderr, "boxlite: --network %s: expected none or user\n", arg);
            rc = -1;
        }
        break;
    default:
        rc = 1;
        break;
    }
    return rc;
}
