/* spec.h — the bundle's config.json and exec's process.json as boxlite-runtime reads them:
 * the one parser of the OCI runtime-spec documents (spec.c), fuzzed by fuzz_oci_config. */
#ifndef BL_OCI_SPEC_H
#define BL_OCI_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define BL_OCI_DOC_MAX (4u << 20) /* bytes of one config.json or process.json */

#define BL_OCI_MAX_RLIMITS 16 /* Linux's RLIMIT_* resources */

struct bl_oci_rlimit {
    int resource; /* RLIMIT_* number */
    uint64_t soft, hard;
};

struct bl_oci_process {
    char **args; /* NULL-terminated, at least one */
    char **env;  /* NULL-terminated, may be empty */
    char *cwd;   /* absolute */
    unsigned uid, gid;
    int terminal;
    unsigned rows, cols;                              /* consoleSize, 0 when absent */
    struct bl_oci_rlimit rlimits[BL_OCI_MAX_RLIMITS]; /* process.rlimits: each resource once */
    size_t n_rlimits;
};

struct bl_oci_mount {
    char *destination; /* absolute, no ".." */
    char *type;        /* "" when absent */
    char *source;      /* "" when absent */
    int bind;          /* type "bind" or a "bind"/"rbind" option */
    int read_only;     /* an "ro" option */
};

/* linux.resources (config.json, and update's --resources document): what a VM can be sized
 * by. Negative values in the document mean unlimited (0 here). */
struct bl_oci_resources {
    uint64_t memory_limit; /* memory.limit in bytes, 0 when none */
    unsigned cpus;         /* ceil(cpu.quota/cpu.period), 0 when none */
    uint64_t pids_limit;   /* pids.limit, 0 when none */
    int has_other;         /* fields a VM does not apply (blockIO, devices, hugepage, ...) */
};

#define BL_OCI_POD_SANDBOX   1 /* the pod's sandbox ("pause") container: it makes the VM */
#define BL_OCI_POD_CONTAINER 2 /* a container of the pod: runs inside the sandbox's VM */

struct bl_oci_spec {
    char *root_path; /* as written: absolute, or relative to the bundle (no ".." out of it) */
    int root_readonly;
    char *hostname; /* "" when absent */
    int has_process;
    struct bl_oci_process process;
    struct bl_oci_mount *mounts;
    size_t n_mounts;
    struct bl_oci_resources res; /* linux.resources */
    const char *engine;          /* from annotations: "podman" (io.container.manager libpod),
                                  * "kubernetes" (io.kubernetes.cri.*), or NULL: unknown (static) */
    int pod_role;                /* containerd's CRI io.kubernetes.cri.container-type: 0 none,
                                  * BL_OCI_POD_SANDBOX or BL_OCI_POD_CONTAINER */
    char *sandbox_id;            /* io.kubernetes.cri.sandbox-id, NULL when absent */
    int netns;                   /* 0: no network namespace (the host's), 1: a new one, 2: a path */
    char *netns_path;            /* with netns 2 */
};

/* Parse config.json text (len bytes, not NUL-terminated). 0, or -1 with err filled. Every
 * field is checked: types, counts, lengths, paths. *out is written only on success and
 * released with bl_oci_spec_free. */
int bl_oci_spec_parse(struct bl_oci_spec *out, const char *text, size_t len, char *err,
                      size_t errlen);
void bl_oci_spec_free(struct bl_oci_spec *s);

/* Parse a LinuxResources document (`update --resources`), as config.json's linux.resources. */
int bl_oci_resources_parse(struct bl_oci_resources *out, const char *text, size_t len, char *err,
                           size_t errlen);

/* Parse a process object document (exec --process). Same rules as config.json's process. */
int bl_oci_process_parse(struct bl_oci_process *out, const char *text, size_t len, char *err,
                         size_t errlen);
void bl_oci_process_free(struct bl_oci_process *p);

#endif
