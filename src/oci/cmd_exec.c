/* cmd_exec.c — `exec ID --process FILE [--detach] [--pid-file F] [--console-socket S]` (or
 * `exec [-t] ID CMD ARGS...`): another process in the running container's box, with its own
 * keeper (the pid in --pid-file) that exits with the process's status. */
#include "oci.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int load_process(struct bl_oci_process *out, const char *path)
{
    char err[512], *text = NULL;
    size_t len = 0;
    int rc = bl_oci_read_file(&text, &len, path, BL_OCI_DOC_MAX);

    if (rc == 0 && bl_oci_process_parse(out, text, len, err, sizeof err) != 0)
        rc = bl_oci_fail("%s: %s", path, err);
    free(text);
    return rc;
}

/* exec ID CMD ARGS...: a process with cwd "/" and no environment of its own. */
static int process_from_args(struct bl_oci_process *out, char **args, int n, int tty)
{
    out->args = calloc((size_t)n + 1, sizeof(char *));
    out->env = calloc(1, sizeof(char *));
    out->cwd = strdup("/");
    for (int i = 0; out->args && i < n; i++)
        out->args[i] = strdup(args[i]);
    out->terminal = tty;
    return out->args && out->env && out->cwd ? 0 : bl_oci_fail("out of memory");
}

int bl_oci_cmd_exec(int argc, char **argv)
{
    const char *process = NULL, *pid_file = NULL, *console = NULL, *ignored = NULL;
    struct bl_oci_process proc = {0};
    struct bl_oci_keeper k = {0};
    struct bl_oci_state st;
    char *pos[256], box_id[16];
    int n = 0, detach = 0, tty = 0, flag = 0, rc, status = 0;
    pid_t pid = 0;
    const struct bl_oci_opt opts[] = {
        {"process", 'p', &process, NULL},
        {"detach", 'd', NULL, &detach},
        {"pid-file", 0, &pid_file, NULL},
        {"console-socket", 0, &console, NULL},
        {"tty", 't', NULL, &tty},
        {"preserve-fds", 0, &ignored, NULL},
        {"no-new-privs", 0, NULL, &flag},
        {"cwd", 0, &ignored, NULL},
        {"process-label", 0, &ignored, NULL},
        {"apparmor", 0, &ignored, NULL},
        {NULL, 0, NULL, NULL},
    };

    rc = bl_oci_args(argc, argv, opts, pos, 256, &n, 1);
    if (rc == 0 && (n < 1 || (!process && n < 2)))
        rc = bl_oci_fail("exec: usage: exec ID --process FILE | exec ID CMD [ARGS...]");
    if (rc == 0)
        rc = bl_oci_state_load(&st, pos[0]);
    if (rc == 0 && st.status != BL_OCI_RUNNING)
        rc = bl_oci_fail("%s: cannot exec in a container that is %s", pos[0],
                         bl_oci_status_name(st.status));
    if (rc == 0)
        rc = process ? load_process(&proc, process) : process_from_args(&proc, pos + 1, n - 1, tty);
    k.id = pos[0];
    k.process = &proc;
    k.box_id = st.box_id;
    k.read_only_root = st.read_only_root;
    k.pod_role = st.pod_role == BL_OCI_POD_CONTAINER ? BL_OCI_POD_CONTAINER : 0;
    k.console_socket = console;
    k.pid_file = pid_file;
    if (rc == 0)
        rc = bl_oci_keeper_spawn(&pid, box_id, &k);
    if (rc == 0 && !detach) {
        while (waitpid(pid, &status, 0) < 0)
            ;
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    bl_oci_process_free(&proc);
    return rc;
}
