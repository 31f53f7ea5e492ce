/* cmd_run.c — `boxlite run [OPTIONS] [IMAGE] -- CMD [ARGS...]`: create a box, start it, run
 * one command with its output streamed, stop the box, and exit with the command's status. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENV 256

struct run_opts {
    boxlite_box_options box;
    boxlite_exec_options exec;
    const char *env[MAX_ENV + 1];
    int nenv;
    int interactive;
};

static volatile sig_atomic_t pending_signal;

static void on_signal(int signo)
{
    pending_signal = signo;
}

static void run_usage(FILE *f)
{
    fprintf(f, "usage: boxlite run [OPTIONS] [IMAGE] -- CMD [ARGS...]\n"
               "       boxlite run [OPTIONS] IMAGE CMD [ARGS...]\n\n"
               "Run CMD in a new box of IMAGE (default: the built-in image).\n\n"
               "  --rm               remove the box when the command ends\n"
               "  --name NAME        name the box\n"
               "  -e, --env K=V      set an environment variable (repeatable)\n"
               "  -w, --workdir DIR  working directory inside the box\n"
               "  -u, --user USER    user (name, uid or uid:gid)\n"
               "  -i, --interactive  forward stdin to the command\n"
               "  --cpus N           virtual CPUs (default 1)\n"
               "  --memory MIB       memory in MiB (default 512)\n");
}

static int parse_uint(const char *s, unsigned *out, const char *what)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || !end || *end != '\0' || s[0] == '-' || v > 1u << 20) {
        fprintf(stderr, "boxlite: %s: \"%s\" is not a number\n", what, s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Returns -1 for a usage error, 1 for --help, 0 with ro filled; *cmd_index is the first
 * argument of CMD. */
static int parse(int argc, char **argv, struct run_opts *ro, int *cmd_index)
{
    static const struct option longopts[] = {
        {"rm", no_argument, NULL, 'r'},         {"name", required_argument, NULL, 'n'},
        {"env", required_argument, NULL, 'e'},  {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'}, {"interactive", no_argument, NULL, 'i'},
        {"cpus", required_argument, NULL, 'c'}, {"memory", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    int c, rc = 0;

    optind = 1;
    while (rc == 0) {
        c = getopt_long(argc, argv, "+e:w:u:ih", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'r':
            ro->box.auto_remove = 1;
            break;
        case 'n':
            ro->box.name = optarg;
            break;
        case 'e':
            if (ro->nenv >= MAX_ENV)
                rc = -1;
            else
                ro->env[ro->nenv++] = optarg;
            break;
        case 'w':
            ro->exec.cwd = optarg;
            break;
        case 'u':
            ro->exec.user = optarg;
            break;
        case 'i':
            ro->interactive = 1;
            break;
        case 'c':
            rc = parse_uint(optarg, &ro->box.cpus, "--cpus");
            break;
        case 'm':
            rc = parse_uint(optarg, &ro->box.memory_mib, "--memory");
            break;
        case 'h':
            rc = 1;
            break;
        default:
            rc = -1;
            break;
        }
    }
    if (rc != 0)
        return rc;
    /* [IMAGE] -- CMD... or IMAGE CMD... (getopt consumes a "--" that ends the options) */
    if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
        /* no image */
    } else if (optind < argc) {
        ro->box.image = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
    }
    if (optind >= argc) {
        fprintf(stderr, "boxlite run: no command given\n");
        return -1;
    }
    *cmd_index = optind;
    return 0;
}

struct stdin_pump {
    boxlite_exec *ex;
    volatile sig_atomic_t done; /* set by the main thread once the process has ended */
};

/* stdin → the process, polling so that the main thread can stop it and join. */
static void *pump_stdin(void *arg)
{
    struct stdin_pump *p = arg;
    char buf[32768];

    while (!p->done) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t n = read(0, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || boxlite_exec_write(p->ex, buf, (size_t)n) != 0)
            break;
    }
    boxlite_exec_close_stdin(p->ex);
    return NULL;
}

static int write_out(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copy the process's output to our stdout/stderr until both end; forwards our signals. */
static int stream_output(boxlite_exec *ex)
{
    static char buf[65536];
    int broken[2] = {0, 0};

    for (;;) {
        int which = 0;
        size_t n = 0;
        int rc = boxlite_exec_read(ex, BOXLITE_STDOUT | BOXLITE_STDERR, &which, buf, sizeof(buf),
                                   &n, 200);
        if (pending_signal) {
            boxlite_exec_signal(ex, pending_signal);
            pending_signal = 0;
        }
        if (rc == BOXLITE_EAGAIN)
            continue;
        if (rc != 0)
            return cli_fail("read output");
        if (n == 0)
            break;
        int i = which == BOXLITE_STDERR;
        if (!broken[i] && write_out(i ? 2 : 1, buf, n) != 0)
            broken[i] = 1; /* keep draining so the process is not blocked */
    }
    return 0;
}

static int run_command(boxlite_box *box, struct run_opts *ro)
{
    boxlite_exec *ex = NULL;
    boxlite_exec_result res;
    struct stdin_pump pump = {0};
    pthread_t pump_thread;
    int pumping = 0;
    int status;

    if (boxlite_exec_start(&ex, box, &ro->exec) != 0)
        return cli_fail("run");
    if (ro->interactive) {
        pump.ex = ex;
        pumping = pthread_create(&pump_thread, NULL, pump_stdin, &pump) == 0;
    } else {
        boxlite_exec_close_stdin(ex);
    }
    status = stream_output(ex);
    if (status == 0 && boxlite_exec_wait(ex, &res, -1) != 0)
        status = cli_fail("wait");
    else if (status == 0) {
        status = res.exit_code;
        if (res.message[0])
            fprintf(stderr, "boxlite: %s\n", res.message);
    }
    if (pumping) {
        pump.done = 1;
        pthread_join(pump_thread, NULL);
    }
    boxlite_exec_free(ex);
    return status;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts ro = {.box = BOXLITE_BOX_OPTIONS_INIT, .exec = BOXLITE_EXEC_OPTIONS_INIT};
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;
    int cmd_index = 0;
    int status;

    status = parse(argc, argv, &ro, &cmd_index);
    if (status != 0) {
        run_usage(status > 0 ? stdout : stderr);
        return status > 0 ? 0 : 2;
    }
    ro.env[ro.nenv] = NULL;
    ro.exec.env = ro.env;
    ro.exec.argv = (const char *const *)(argv + cmd_index);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN);
    status = cli_open_runtime(&rt);
    if (status != 0)
        return status;
    if (boxlite_box_create(&box, rt, &ro.box) != 0) {
        status = cli_fail("run");
        goto out;
    }
    if (boxlite_box_start(box) != 0) {
        status = cli_fail("run");
        goto out;
    }
    status = run_command(box, &ro);
    if (boxlite_box_stop(box, -1) != 0)
        fprintf(stderr, "boxlite: stop: %s\n", boxlite_error_last());
out:
    boxlite_box_free(box);
    boxlite_runtime_free(rt);
    return status;
}
