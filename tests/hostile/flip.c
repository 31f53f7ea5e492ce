/* flip.c — boxlite-flip, the host-side attacker of test_copy.py's copy-in race: it swaps each
 * pair of names (A B)... with renameat2(RENAME_EXCHANGE) as fast as it can, so a name in the
 * tree being copied is by turns a file (or directory) and a symlink to a secret elsewhere.
 * Bounded: it stops after SECONDS or on SIGTERM (after a whole swap and swap back, so the
 * tree ends as it began), and prints how many exchanges it made.
 * Usage: boxlite-flip SECONDS A1 B1 [A2 B2 ...] */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long long n = 0;
    double end;

    if (argc < 4 || argc % 2 != 0) {
        fprintf(stderr, "usage: boxlite-flip SECONDS A1 B1 [A2 B2 ...]\n");
        return 2;
    }
    end = now() + atof(argv[1]);
    signal(SIGTERM, on_term);
    while (!stop && now() < end) {
        /* two rounds: every pair swapped, then swapped back, so the tree ends as it began */
        for (int round = 0; round < 2; round++)
            for (int i = 2; i + 1 < argc; i += 2) {
                if (renameat2(AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1], RENAME_EXCHANGE) != 0) {
                    perror(argv[i]);
                    return 1;
                }
                n++;
            }
    }
    printf("%llu\n", n);
    return 0;
}
