/* cmd_kill.c — `kill ID [SIGNAL]`: the signal goes to the container's keeper, which forwards
 * what it can catch to the guest process; SIGKILL ends the keeper and with it the VM (its
 * lifeline), so the container's status is 137 as with any killed process. */
#include "oci.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int sig;
} names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},  {"KILL", SIGKILL},
             {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},  {"CONT", SIGCONT},
             {"STOP", SIGSTOP}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}};

static int parse_signal(const char *s)
{
    char *end;
    long v;

    if (isdigit((unsigned char)s[0])) {
        v = strtol(s, &end, 10);
        return *end || v <= 0 || v >= 65 ? -1 : (int)v;
    }
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].sig;
    return -1;
}

int bl_oci_cmd_kill(int argc, char **argv)
{
    struct bl_oci_state st;
    char *pos[2];
    int n = 0, all = 0, sig;
    const struct bl_oci_opt opts[] = {{"all", 'a', NULL, &all}, {NULL, 0, NULL, NULL}};

    if (bl_oci_args(argc, argv, opts, pos, 2, &n, 0) != 0)
        return 1;
    if (n < 1)
        return bl_oci_fail("kill: usage: kill ID [SIGNAL]");
    sig = parse_signal(n > 1 ? pos[1] : "TERM");
    if (sig < 0)
        return bl_oci_fail("kill: unknown signal \"%s\"", pos[1]);
    if (bl_oci_state_load(&st, pos[0]) != 0)
        return 1;
    if (!BL_OCI_LIVE(st.status))
        return bl_oci_fail("%s: container not running (%s)", pos[0], bl_oci_status_name(st.status));
    if (kill(st.pid, sig) < 0)
        return bl_oci_fail("%s: kill %d: %s", pos[0], (int)st.pid, strerror(errno));
    return 0;
}
