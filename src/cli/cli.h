/* cli.h — what the boxlite CLI's verbs share: the verb table entry, opening the runtime with
 * a stderr log sink, box options from flags, running an attached process, JSON output. */
#ifndef BL_CLI_H
#define BL_CLI_H

#include <stdio.h>

#include "boxlite.h"

#define CLI_EXIT_FAILURE 125 /* boxlite itself failed (docker's convention) */
#define CLI_MAX_ENV      256

struct cli_verb {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the verb */
};

/* Open the runtime ($BOXLITE_HOME or ~/.boxlite) with warnings printed to stderr. */
int cli_open_runtime(boxlite_runtime **out);

/* Print "boxlite: <context>: <last error>" and return CLI_EXIT_FAILURE. */
int cli_fail(const char *context);

/* Open a box by id or name, printing the failure. */
int cli_get_box(boxlite_box **out, boxlite_runtime *rt, const char *id_or_name);

/* ---- cli_boxopts.c: flags shared by create and run ---- */
struct cli_box_opts {
    boxlite_box_options box;
    const char *env[CLI_MAX_ENV + 1];
    int nenv;
    const char *entrypoint[2]; /* --entrypoint: one program, or none for "" */
    boxlite_port ports[64];
    boxlite_volume volumes[16];
    const char *allow_net[65]; /* --allow-net, NULL-terminated */
    int nallow;
    boxlite_secret secrets[32];           /* --secret */
    const char *secret_hosts[32][16 + 1]; /* each one's hosts, NULL-terminated */
};
#define CLI_BOX_SHORTOPTS "e:w:u:dp:v:"
/* clang-format off */
#define CLI_BOX_LONGOPTS                                                                           \
    {"name", 1, NULL, 'n'}, {"env", 1, NULL, 'e'}, {"workdir", 1, NULL, 'w'},                      \
    {"user", 1, NULL, 'u'}, {"cpus", 1, NULL, 'c'}, {"memory", 1, NULL, 'm'},                      \
    {"disk-size", 1, NULL, 'D'}, {"detach", 0, NULL, 'd'}, {"rm", 0, NULL, 'r'},                   \
    {"publish", 1, NULL, 'p'}, {"volume", 1, NULL, 'v'}, {"network", 1, NULL, 'N'},                \
    {"registry", 1, NULL, 'R'}, {"entrypoint", 1, NULL, 'E'}, {"allow-net", 1, NULL, 'A'},        \
    {"auto-delete", 1, NULL, 'a'}, {"no-main", 0, NULL, 'M'}, {"secret", 1, NULL, 'S'}
/* clang-format on */
#define CLI_BOX_HELP                                                                               \
    "  --name NAME        name the box\n"                                                          \
    "  -e, --env K=V      environment variable for every command (repeatable)\n"                   \
    "  -w, --workdir DIR  working directory inside the box\n"                                      \
    "  -u, --user USER    user (name, uid or uid:gid)\n"                                           \
    "  --cpus N           virtual CPUs (default 1)\n"                                              \
    "  --memory MIB       memory in MiB (default 512)\n"                                           \
    "  --disk-size GB     size of the box's filesystem in GiB (default: the image's)\n"            \
    "  -d, --detach       keep the box running after this command exits\n"                         \
    "  --rm               remove the box when it stops\n"                                          \
    "  --auto-delete S    delete the box S seconds after it stopped (0: keep it; overrides\n"      \
    "                     --rm)\n"                                                                 \
    "  --no-main          run no main process: only what is exec'd in the box (by default\n"       \
    "                     each start runs entrypoint + cmd; its exit stops the box)\n"             \
    "  -p, --publish [IP:]HOST:GUEST[/tcp|udp]  publish a guest port (IP default 127.0.0.1)\n"     \
    "  -v, --volume HOST:GUEST[:ro]  share a host directory\n"                                     \
    "  --network none|user  no network but loopback, or NAT (default)\n"                           \
    "  --allow-net SPEC   allow egress only to SPEC (repeatable): NAME, *.DOMAIN, IP or\n"         \
    "                     CIDR, each with an optional :PORT; by default the internet but\n"        \
    "                     never the host, link-local or private addresses\n"                       \
    "  --registry SPEC    registry settings for pulling the image (see boxlite pull --help)\n"     \
    "  --entrypoint PROG  override the image's entrypoint (\"\" clears it)\n"                      \
    "  --secret NAME[=VALUE][@HOST,...]  a secret the box sees only as a placeholder ($NAME\n"     \
    "                     there); the real value (without =VALUE: this command's $NAME) goes\n"    \
    "                     only into HTTP(S) requests to HOSTs (none: any host). A VALUE\n"         \
    "                     with @ in it needs a final @[HOSTS]\n"
void cli_box_opts_init(struct cli_box_opts *o);
/* 0 when c was a box flag and is applied, 1 when c is not a box flag, -1 on a bad value. */
int cli_box_opt(struct cli_box_opts *o, int c, const char *arg);
int cli_parse_uint(const char *s, unsigned *out, const char *what);

/* ---- cli_attach.c: a process attached to this terminal ---- */
/* Start argv in box with eo, forward stdin when interactive (raw mode when eo->tty), stream
 * its output, forward our signals and window size; returns its shell status or 125. */
int cli_attach(boxlite_box *box, boxlite_exec_options *eo, int interactive);

/* ---- cli_text.c: guest-originated text for a terminal ---- */
/* The next unit of s[0..n) (n > 0): its length, its code point, and *ok = 1 when it may be
 * printed as is (valid UTF-8, not a C0/C1 control or DEL; \n, \t and \r\n allowed). */
size_t cli_text_unit(const unsigned char *s, size_t n, unsigned *cp, int *ok);
/* s[0..n) with every other unit escaped (\xHH for a byte, \uHHHH for a C1 control). */
void cli_text_write(FILE *f, const char *s, size_t n);
void cli_text_puts(FILE *f, const char *s);

/* ---- cli_json.c ---- */
void cli_json_str(FILE *f, const char *s);
/* The engine that manages a box boxlite-runtime made ("podman", "containerd", "kubernetes",
 * "oci"), read from its image name (localhost/oci-<engine>:<hash>, src/oci/cmd_create.c)
 * into buf; NULL for a box of boxlite's own. */
const char *cli_oci_engine(const char *image, char *buf, size_t cap);

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_port_forward(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_fork(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import_box(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* ---- cli_registry.c: --registry SPEC (see cmd_pull.c's usage) ---- */
int cli_registry_opt(const char *spec);
const boxlite_registry *cli_registries(size_t *n_out);

#endif
