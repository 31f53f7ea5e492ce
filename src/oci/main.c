/* main.c — boxlite-runtime's entry: the global flags runc's callers pass (--root, --log,
 * --log-format, --systemd-cgroup, --debug), the verb table, flag parsing and the error log in
 * the runtime-spec callers' format (one JSON object per line with --log-format json). */
#include "oci.h"

#include <boxlite.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bl_oci_global bl_oci_g = {"/run/boxlite-runtime", NULL, 0};

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void log_line(const char *level, const char *msg)
{
    char ts[40];
    time_t now = time(NULL);
    struct tm tm;
    FILE *f;

    if (!bl_oci_g.log_path)
        return;
    f = fopen(bl_oci_g.log_path, "ae");
    if (!f)
        return;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (bl_oci_g.log_json) {
        fprintf(f, "{\"level\":\"%s\",\"msg\":\"", level);
        json_escape(f, msg);
        fprintf(f, "\",\"time\":\"%s\"}\n", ts);
    } else {
        fprintf(f, "time=\"%s\" level=%s msg=\"%s\"\n", ts, level, msg);
    }
    fclose(f);
}

int bl_oci_fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "boxlite-runtime: %s\n", msg);
    log_line("error", msg);
    return 1;
}

void bl_oci_log(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line(level, msg);
}

static const struct bl_oci_opt *find_opt(const struct bl_oci_opt *opts, const char *a,
                                         const char **inline_val)
{
    *inline_val = NULL;
    for (; opts && opts->name; opts++) {
        size_t n = strlen(opts->name);
        if (a[0] == '-' && a[1] == opts->short_name && opts->short_name && a[2] == '\0')
            return opts;
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, opts->name, n) != 0)
            continue;
        if (a[2 + n] == '\0')
            return opts;
        if (a[2 + n] == '=') {
            *inline_val = a + 3 + n;
            return opts;
        }
    }
    return NULL;
}

int bl_oci_args(int argc, char **argv, const struct bl_oci_opt *opts, char **pos, int npos,
                int *npos_out, int flags_until)
{
    int n = 0, rest = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        rest |= flags_until > 0 && n >= flags_until;
        const struct bl_oci_opt *o = rest || a[0] != '-' || !a[1] ? NULL : find_opt(opts, a, &val);
        if (!rest && strcmp(a, "--") == 0) {
            rest = 1;
            continue;
        }
        if (!o && !rest && a[0] == '-' && a[1])
            return bl_oci_fail("%s: unknown flag %s", argv[0], a);
        if (!o) {
            if (n >= npos)
                return bl_oci_fail("%s: unexpected argument \"%s\"", argv[0], a);
            pos[n++] = argv[i];
            continue;
        }
        if (o->flag)
            *o->flag = 1;
        if (o->value && !val && i + 1 >= argc)
            return bl_oci_fail("%s: %s needs a value", argv[0], a);
        if (o->value)
            *o->value = val ? val : argv[++i];
    }
    *npos_out = n;
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} verbs[] = {
    {"create", bl_oci_cmd_create}, {"start", bl_oci_cmd_start},       {"state", bl_oci_cmd_state},
    {"kill", bl_oci_cmd_kill},     {"delete", bl_oci_cmd_delete},     {"exec", bl_oci_cmd_exec},
    {"ps", bl_oci_cmd_ps},         {"features", bl_oci_cmd_features}, {"pause", bl_oci_cmd_pause},
    {"resume", bl_oci_cmd_resume}, {"events", bl_oci_cmd_events},     {"update", bl_oci_cmd_update},
};

static int usage(void)
{
    fprintf(stderr, "usage: boxlite-runtime [--root DIR] [--log FILE] [--log-format text|json] "
                    "[--systemd-cgroup] [--boxlite-home DIR] VERB ...\n"
                    "verbs: create start state kill delete exec ps features pause resume events "
                    "update\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *fmt = "text", *ignored = NULL, *home = NULL;
    int flag = 0, i = 1;
    const struct bl_oci_opt global[] = {
        {"root", 0, &bl_oci_g.root, NULL},
        {"log", 0, &bl_oci_g.log_path, NULL},
        {"log-format", 0, &fmt, NULL},
        {"systemd-cgroup", 0, NULL, &flag},
        {"debug", 0, NULL, &flag},
        {"rootless", 0, &ignored, NULL},
        {"criu", 0, &ignored, NULL},
        {"boxlite-home", 0, &home, NULL},
        {NULL, 0, NULL, NULL},
    };

    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *val;
        const struct bl_oci_opt *o = find_opt(global, argv[i], &val);
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-v") == 0) {
            printf("boxlite-runtime version %s\nspec: 1.1.0\n", boxlite_version());
            return 0;
        }
        if (!o) {
            fprintf(stderr, "boxlite-runtime: unknown global flag %s\n", argv[i]);
            return usage();
        }
        if (o->value && !val && i + 1 >= argc)
            return usage();
        if (o->value)
            *o->value = val ? val : argv[++i];
    }
    bl_oci_g.log_json = strcmp(fmt, "json") == 0;
    /* engines do not pass our environment on: podman --runtime-flag boxlite-home=DIR */
    if (home && setenv("BOXLITE_HOME", home, 1) != 0)
        return bl_oci_fail("--boxlite-home: %s", strerror(errno));
    if (i >= argc)
        return usage();
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
        if (strcmp(argv[i], verbs[v].name) == 0)
            return verbs[v].fn(argc - i, argv + i);
    return bl_oci_fail("unknown verb \"%s\"", argv[i]);
}
