/* cmd_serve_exec.c — the CLI's `serve` verb: runs `boxlite-serve` (src/cli/cmd_serve.c with
 * src/serve/), in this process (execv: same pid, so signals sent to `boxlite serve` reach the
 * server). The server's HTTP, WebSocket and TLS libraries stay out of every other verb's start
 * (issue 12: load what a verb needs). Found beside this executable (the build tree, the
 * wheel's libexec/), else at BL_SERVE_REL from its directory (an install's libexecdir). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef BL_SERVE_REL
#define BL_SERVE_REL "../libexec/boxlite-serve"
#endif

/* The directory of this executable, into dir (NUL-terminated); -1 when unknown. */
static int own_dir(char *dir, size_t cap)
{
    char *self = realpath("/proc/self/exe", NULL);
    char *slash = self ? strrchr(self, '/') : NULL;
    int rc = -1;

    if (slash && (size_t)(slash - self) < cap) {
        memcpy(dir, self, (size_t)(slash - self));
        dir[slash - self] = '\0';
        rc = 0;
    }
    free(self);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    static const char *const rel[] = {"boxlite-serve", BL_SERVE_REL};
    char dir[PATH_MAX], path[PATH_MAX + 64];

    (void)argc;
    if (own_dir(dir, sizeof(dir)) != 0) {
        fprintf(stderr, "boxlite serve: cannot find this executable (/proc/self/exe)\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, rel[i]);
        if (access(path, X_OK) == 0) {
            execv(path, argv);
            fprintf(stderr, "boxlite serve: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr,
            "boxlite serve: boxlite-serve is not installed beside %s/boxlite (nor at %s/%s)\n", dir,
            dir, BL_SERVE_REL);
    return 1;
}
