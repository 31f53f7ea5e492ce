/* cmd_fork.c — `boxlite fork [-n N] [-j J] [--name PREFIX] BOX SNAPSHOT`: N running boxes
 * resumed from a full snapshot, each with its own disk layer and a fresh identity, started J
 * at a time (default: two per CPU, at most 16); prints their ids in order. */
#include "cli.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FORKS 1000
#define MAX_JOBS  64

struct fork_job {
    boxlite_runtime *rt;
    const char *box, *snapshot, *prefix;
    unsigned n, next;
    int failed;
    char **ids;     /* [n]: the forks made, in order */
    char err[1024]; /* the first failure */
    pthread_mutex_t mu;
};

/* Take the next fork to make, or n when done (or when one failed). */
static unsigned take(struct fork_job *j)
{
    unsigned i;

    pthread_mutex_lock(&j->mu);
    i = j->failed ? j->n : j->next;
    if (i < j->n)
        j->next++;
    pthread_mutex_unlock(&j->mu);
    return i;
}

static void record(struct fork_job *j, unsigned i, boxlite_box *f, const char *why)
{
    pthread_mutex_lock(&j->mu);
    if (f)
        j->ids[i] = strdup(boxlite_box_id(f));
    if (!f && !j->failed)
        snprintf(j->err, sizeof(j->err), "%s", why ? why : "");
    j->failed |= !f;
    pthread_mutex_unlock(&j->mu);
}

/* A worker: its own handle on the source box (a handle is one thread's at a time). */
static void *worker(void *arg)
{
    struct fork_job *j = arg;
    boxlite_box *src = NULL;
    unsigned i;

    if (boxlite_box_get(&src, j->rt, j->box) != 0) {
        record(j, 0, NULL, boxlite_error_last());
        return NULL;
    }
    while ((i = take(j)) < j->n) {
        boxlite_box *f = NULL;
        char name[80];
        snprintf(name, sizeof(name), "%s-%u", j->prefix ? j->prefix : "", i + 1);
        if (boxlite_box_fork(&f, src, j->snapshot, j->prefix ? name : NULL,
                             BOXLITE_SNAPSHOT_DETACH) != 0)
            record(j, i, NULL, boxlite_error_last());
        else
            record(j, i, f, NULL);
        boxlite_box_free(f);
    }
    boxlite_box_free(src);
    return NULL;
}

static unsigned default_jobs(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return cpus < 1 ? 2 : cpus > 8 ? 16 : (unsigned)(2 * cpus);
}

/* Run the workers; print what was made. */
static int run_jobs(struct fork_job *j, unsigned jobs)
{
    pthread_t th[MAX_JOBS];
    unsigned started = 0;
    int rc = 0;

    for (; started < jobs && started < j->n; started++)
        if (pthread_create(&th[started], NULL, worker, j) != 0)
            break;
    if (started == 0)
        worker(j);
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (unsigned i = 0; i < j->n; i++)
        if (j->ids[i])
            printf("%s\n", j->ids[i]);
    fflush(stdout);
    if (j->failed) {
        fprintf(stderr, "boxlite: fork: ");
        cli_text_puts(stderr, j->err);
        fputc('\n', stderr);
        rc = CLI_EXIT_FAILURE;
    }
    return rc;
}

int cmd_fork(int argc, char **argv)
{
    static const struct option longopts[] = {{"name", 1, NULL, 'N'}, {NULL, 0, NULL, 0}};
    struct fork_job j = {.n = 1, .mu = PTHREAD_MUTEX_INITIALIZER};
    boxlite_box *box = NULL;
    unsigned jobs = default_jobs();
    int c, rc = 0;

    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "+n:j:h", longopts, NULL)) != -1)
        rc = c == 'n'   ? cli_parse_uint(optarg, &j.n, "-n")
             : c == 'j' ? cli_parse_uint(optarg, &jobs, "-j")
             : c == 'N' ? (j.prefix = optarg, 0)
                        : -1;
    if (rc != 0 || argc - optind != 2 || j.n == 0 || j.n > MAX_FORKS || jobs == 0 ||
        jobs > MAX_JOBS) {
        fprintf(stderr, "usage: boxlite fork [-n N] [-j JOBS] [--name PREFIX] BOX SNAPSHOT\n");
        return 2;
    }
    j.box = argv[optind];
    j.snapshot = argv[optind + 1];
    j.ids = calloc(j.n, sizeof(*j.ids));
    rc = j.ids ? cli_open_runtime(&j.rt) : CLI_EXIT_FAILURE;
    if (rc == 0)
        rc = cli_get_box(&box, j.rt, j.box); /* says "no such box" once, before any thread */
    if (rc == 0)
        rc = run_jobs(&j, jobs);
    for (unsigned i = 0; j.ids && i < j.n; i++)
        free(j.ids[i]);
    free(j.ids);
    boxlite_box_free(box);
    boxlite_runtime_free(j.rt);
    return rc;
}
