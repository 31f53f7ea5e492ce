/* cli.h — what the boxlite CLI's verbs share: the verb table entry, opening the runtime
 * with a stderr log sink, and reporting a library failure. */
#ifndef BL_CLI_H
#define BL_CLI_H

#include "boxlite.h"

#define CLI_EXIT_FAILURE 125 /* boxlite itself failed (docker's convention) */

struct cli_verb {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the verb */
};

/* Open the runtime ($BOXLITE_HOME or ~/.boxlite) with warnings printed to stderr. */
int cli_open_runtime(boxlite_runtime **out);

/* Print "boxlite: <context>: <last error>" and return CLI_EXIT_FAILURE. */
int cli_fail(const char *context);

int cmd_run(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
