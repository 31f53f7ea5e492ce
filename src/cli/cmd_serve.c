/* cmd_serve.c — the `boxlite-serve` program (`boxlite serve` execs it: cmd_serve_exec.c):
 * parse the options and run the Box API server (src/serve/). */
#include "cli.h"
#include "../serve/serve.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: boxlite serve [--listen ADDR:PORT] [--tls-cert FILE --tls-key FILE]\n"
    "                     [--api-key-file FILE] [--prefix PREFIX] [--volume-root DIR]\n"
    "                     [--max-body BYTES] [--max-upload BYTES] [--max-spool BYTES]\n"
    "                     [--header-timeout SECONDS] [--idle-timeout SECONDS]\n"
    "                     [--max-connections N] [--max-execs-per-key N]\n"
    "                     [--orphan-timeout SECONDS] [--max-boxes-per-key N]\n"
    "Serve the BoxLite Box API over HTTP (default 127.0.0.1:8100, /v1/...). A non-loopback\n"
    "address needs TLS and --api-key-file. SIGHUP reloads the key file; SIGTERM stops.\n";

static int parse_u64(const char *s, uint64_t *out, const char *what)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);

    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || v == 0) {
        fprintf(stderr, "boxlite serve: %s wants a positive number, not %s\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int serve_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"api-key-file", required_argument, NULL, 'a'},
        {"prefix", required_argument, NULL, 'p'},
        {"volume-root", required_argument, NULL, 'V'},
        {"max-body", required_argument, NULL, 'b'},
        {"max-upload", required_argument, NULL, 'u'},
        {"max-spool", required_argument, NULL, 'S'},
        {"header-timeout", required_argument, NULL, 'H'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-execs-per-key", required_argument, NULL, 'E'},
        {"orphan-timeout", required_argument, NULL, 'O'},
        {"max-boxes-per-key", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct serve_config cfg = {
        .listen = "127.0.0.1:8100",
        .max_json_bytes = 1 << 20,
        .max_file_bytes = (uint64_t)8 << 30,
        .max_spool_bytes = (uint64_t)16 << 30,
        .max_connections = 64,
        .header_timeout = 10,
        .idle_timeout = 60,
        .max_executions = 256,
        .max_execs_per_key = 64,
        .orphan_timeout = 300,
        .max_boxes_per_key = 64,
    };
    uint64_t v = 0;
    int c, rc = 0;

    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            cfg.listen = optarg;
            break;
        case 'c':
            cfg.tls_cert = optarg;
            break;
        case 'k':
            cfg.tls_key = optarg;
            break;
        case 'a':
            cfg.api_key_file = optarg;
            break;
        case 'p':
            cfg.prefix = optarg;
            break;
        case 'V':
            cfg.volume_root = optarg;
            break;
        case 'b':
            rc = parse_u64(optarg, &cfg.max_json_bytes, "--max-body");
            break;
        case 'u':
            rc = parse_u64(optarg, &cfg.max_file_bytes, "--max-upload");
            break;
        case 'S':
            rc = parse_u64(optarg, &cfg.max_spool_bytes, "--max-spool");
            break;
        case 'H':
            rc = parse_u64(optarg, &v, "--header-timeout");
            cfg.header_timeout = (unsigned)v;
            break;
        case 'I':
            rc = parse_u64(optarg, &v, "--idle-timeout");
            cfg.idle_timeout = (unsigned)v;
            break;
        case 'C':
            rc = parse_u64(optarg, &v, "--max-connections");
            cfg.max_connections = (unsigned)v;
            break;
        case 'E':
            rc = parse_u64(optarg, &v, "--max-execs-per-key");
            cfg.max_execs_per_key = (unsigned)v;
            break;
        case 'O':
            rc = parse_u64(optarg, &v, "--orphan-timeout");
            cfg.orphan_timeout = (unsigned)v;
            break;
        case 'B':
            rc = parse_u64(optarg, &v, "--max-boxes-per-key");
            cfg.max_boxes_per_key = (unsigned)v;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            rc = -1;
        }
    }
    if (rc != 0 || optind != argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (cfg.prefix != NULL && (cfg.prefix[0] == '/' || strlen(cfg.prefix) > 128)) {
        fprintf(stderr, "boxlite serve: --prefix is a path segment (no leading /, <= 128)\n");
        return 2;
    }
    return serve_run(&cfg);
}

int main(int argc, char **argv)
{
    return serve_main(argc, argv);
}
