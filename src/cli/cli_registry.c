/* cli_registry.c — the --registry flag (global, and on pull/run/create): registry settings
 * given on the command line, handed to the runtime through boxlite_runtime_options. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGISTRIES 16

static boxlite_registry regs[MAX_REGISTRIES];
static size_t nregs;

/* HOST[,http][,skip-verify][,search][,user=U][,password=P][,token=T][,ca=FILE] */
int cli_registry_opt(const char *spec)
{
    boxlite_registry r = {0};
    char *copy, *save = NULL, *tok;

    if (nregs >= MAX_REGISTRIES) {
        fprintf(stderr, "boxlite: too many --registry\n");
        return -1;
    }
    copy = strdup(spec); /* kept for the life of the process: the strings are borrowed */
    if (!copy)
        return -1;
    tok = strtok_r(copy, ",", &save);
    if (!tok || !*tok) {
        fprintf(stderr, "boxlite: --registry needs a host\n");
        free(copy);
        return -1;
    }
    r.host = tok;
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        if (strcmp(tok, "http") == 0)
            r.transport = BOXLITE_TRANSPORT_HTTP;
        else if (strcmp(tok, "https") == 0)
            r.transport = BOXLITE_TRANSPORT_HTTPS;
        else if (strcmp(tok, "skip-verify") == 0 || strcmp(tok, "insecure") == 0)
            r.skip_verify = 1;
        else if (strcmp(tok, "search") == 0)
            r.search = 1;
        else if (strncmp(tok, "user=", 5) == 0)
            r.username = tok + 5;
        else if (strncmp(tok, "password=", 9) == 0)
            r.password = tok + 9;
        else if (strncmp(tok, "token=", 6) == 0)
            r.token = tok + 6;
        else if (strncmp(tok, "ca=", 3) == 0)
            r.ca_file = tok + 3;
        else {
            fprintf(stderr,
                    "boxlite: --registry: unknown setting \"%s\" (expected http, https, "
                    "skip-verify, search, user=, password=, token=, ca=)\n",
                    tok);
            free(copy);
            return -1;
        }
    }
    regs[nregs++] = r;
    return 0;
}

const boxlite_registry *cli_registries(size_t *n_out)
{
    *n_out = nregs;
    return regs;
}
