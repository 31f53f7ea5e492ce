/* spec.c — the one parser of OCI runtime-spec documents for boxlite-runtime: config.json
 * (process, root, hostname, mounts, linux.resources, linux.namespaces), process.json and
 * update's resources document.
 * Input comes from the engine's bundle and is treated as hostile: types, counts and lengths
 * are capped, paths may not climb out with "..". Fuzzed by tests/fuzz/fuzz_oci_config.c. */
#include "spec.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS   4096
#define MAX_ENV    4096
#define MAX_MOUNTS 256
#define MAX_STR    (64u << 10)
#define MAX_PATH   4096
#define MAX_HOST   64

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A JSON string without NUL bytes, at most max bytes; NULL otherwise. */
static const char *str_ok(json_t *v, size_t max)
{
    const char *s = json_string_value(v);

    if (!s || json_string_length(v) != strlen(s) || strlen(s) > max)
        return NULL;
    return s;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* An array of strings into a NULL-terminated vector (an absent array → empty vector). */
static int strv_get(char ***out, json_t *arr, size_t max, const char *what, char *err,
                    size_t errlen)
{
    size_t n = arr ? json_array_size(arr) : 0;
    char **v = NULL;
    int rc = 0;

    if (arr && !json_is_array(arr))
        return fail(err, errlen, "%s: not an array", what);
    if (n > max)
        return fail(err, errlen, "%s: %zu entries, at most %zu", what, n, max);
    v = calloc(n + 1, sizeof *v);
    if (!v)
        return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *s = str_ok(json_array_get(arr, i), MAX_STR);
        if (!s)
            rc = fail(err, errlen, "%s[%zu]: not a string of at most %u bytes", what, i, MAX_STR);
        else if (!(v[i] = strdup(s)))
            rc = fail(err, errlen, "out of memory");
    }
    if (rc == 0)
        *out = v;
    else
        strv_free(v);
    return rc;
}

/* An absolute path with no "." or ".." component. */
static int path_clean(const char *p, int absolute)
{
    const char *c = p;

    if (!p[0] || strlen(p) > MAX_PATH || (absolute && p[0] != '/'))
        return 0;
    while (*c) {
        size_t n;
        while (*c == '/')
            c++;
        n = strcspn(c, "/");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c += n;
    }
    return 1;
}

static int u32_get(unsigned *out, json_t *v, const char *what, char *err, size_t errlen)
{
    json_int_t i;

    if (!v) {
        *out = 0;
        return 0;
    }
    i = json_is_integer(v) ? json_integer_value(v) : -1;
    if (i < 0 || i > (json_int_t)UINT32_MAX)
        return fail(err, errlen, "%s: not an integer in 0..4294967295", what);
    *out = (unsigned)i;
    return 0;
}

/* process.rlimits: [{"type":"RLIMIT_NOFILE","soft":N,"hard":N}], each type once, soft <= hard,
 * applied in the guest (keeper.c). */
static int rlimits_from(struct bl_oci_process *p, json_t *arr, char *err, size_t errlen)
{
    static const char *names[BL_OCI_MAX_RLIMITS] = {
        "CPU",     "FSIZE", "DATA",  "STACK",      "CORE",     "RSS",  "NPROC",  "NOFILE",
        "MEMLOCK", "AS",    "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"};
    unsigned seen = 0;

    if (arr && (!json_is_array(arr) || json_array_size(arr) > BL_OCI_MAX_RLIMITS))
        return fail(err, errlen, "process.rlimits: not an array of at most %d", BL_OCI_MAX_RLIMITS);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i), *soft = json_object_get(o, "soft");
        json_t *hard = json_object_get(o, "hard");
        const char *type = str_ok(json_object_get(o, "type"), 32);
        int r = -1;
        for (int k = 0; type && k < BL_OCI_MAX_RLIMITS; k++)
            if (strncmp(type, "RLIMIT_", 7) == 0 && strcmp(type + 7, names[k]) == 0)
                r = k;
        if (r < 0 || (seen & (1u << r)))
            return fail(err, errlen, "process.rlimits[%zu].type: a known RLIMIT_ name, once", i);
        /* jansson's integers are signed: 2^63 and above (unlimited) do not parse as JSON
         * here; -1 is not accepted either: soft/hard are unsigned in the spec */
        if (!json_is_integer(soft) || !json_is_integer(hard) || json_integer_value(soft) < 0 ||
            json_integer_value(hard) < json_integer_value(soft))
            return fail(err, errlen,
                        "process.rlimits[%zu]: soft and hard integers, 0 <= soft <= hard", i);
        seen |= 1u << r;
        p->rlimits[p->n_rlimits++] = (struct bl_oci_rlimit){r, (uint64_t)json_integer_value(soft),
                                                            (uint64_t)json_integer_value(hard)};
    }
    return 0;
}

static int process_from(struct bl_oci_process *out, json_t *o, char *err, size_t errlen)
{
    struct bl_oci_process p = {0};
    json_t *user = json_object_get(o, "user");
    json_t *size = json_object_get(o, "consoleSize");
    json_t *term = json_object_get(o, "terminal");
    const char *cwd = str_ok(json_object_get(o, "cwd"), MAX_PATH);
    int rc = 0;

    if (!json_is_object(o))
        return fail(err, errlen, "process: not an object");
    if (!cwd || cwd[0] != '/')
        return fail(err, errlen, "process.cwd: required, an absolute path");
    if (term && !json_is_boolean(term))
        return fail(err, errlen, "process.terminal: not a boolean");
    if ((user && !json_is_object(user)) || (size && !json_is_object(size)))
        return fail(err, errlen, "process.user/consoleSize: not an object");
    rc = strv_get(&p.args, json_object_get(o, "args"), MAX_ARGS, "process.args", err, errlen);
    if (rc == 0 && !p.args[0])
        rc = fail(err, errlen, "process.args: empty");
    if (rc == 0)
        rc = strv_get(&p.env, json_object_get(o, "env"), MAX_ENV, "process.env", err, errlen);
    if (rc == 0)
        rc = u32_get(&p.uid, json_object_get(user, "uid"), "process.user.uid", err, errlen);
    if (rc == 0)
        rc = u32_get(&p.gid, json_object_get(user, "gid"), "process.user.gid", err, errlen);
    if (rc == 0)
        rc = u32_get(&p.rows, json_object_get(size, "height"), "consoleSize.height", err, errlen);
    if (rc == 0)
        rc = u32_get(&p.cols, json_object_get(size, "width"), "consoleSize.width", err, errlen);
    if (rc == 0)
        rc = rlimits_from(&p, json_object_get(o, "rlimits"), err, errlen);
    p.terminal = json_is_true(term);
    if (rc == 0 && !(p.cwd = strdup(cwd)))
        rc = fail(err, errlen, "out of memory");
    if (rc == 0)
        *out = p;
    else
        bl_oci_process_free(&p);
    return rc;
}

static int mount_from(struct bl_oci_mount *m, json_t *o, size_t i, char *err, size_t errlen)
{
    const char *dest = str_ok(json_object_get(o, "destination"), MAX_PATH);
    json_t *type = json_object_get(o, "type"), *src = json_object_get(o, "source");
    json_t *opts = json_object_get(o, "options");
    size_t n = json_array_size(opts);

    if (!json_is_object(o) || !dest || !path_clean(dest, 1))
        return fail(err, errlen, "mounts[%zu].destination: required, absolute, no \"..\"", i);
    if ((type && !str_ok(type, MAX_PATH)) || (src && !str_ok(src, MAX_PATH)))
        return fail(err, errlen, "mounts[%zu]: type/source not a string", i);
    if ((opts && !json_is_array(opts)) || n > 64)
        return fail(err, errlen, "mounts[%zu].options: not an array of at most 64", i);
    m->bind = type && strcmp(json_string_value(type), "bind") == 0;
    for (size_t k = 0; k < n; k++) {
        const char *s = str_ok(json_array_get(opts, k), 256);
        if (!s)
            return fail(err, errlen, "mounts[%zu].options[%zu]: not a short string", i, k);
        m->bind |= strcmp(s, "bind") == 0 || strcmp(s, "rbind") == 0;
        m->read_only |= strcmp(s, "ro") == 0;
    }
    m->destination = strdup(dest);
    m->type = strdup(type ? json_string_value(type) : "");
    m->source = strdup(src ? json_string_value(src) : "");
    if (!m->destination || !m->type || !m->source)
        return fail(err, errlen, "out of memory");
    if (m->bind && m->source[0] != '/')
        return fail(err, errlen, "mounts[%zu].source: a bind mount needs an absolute path", i);
    return 0;
}

static int mounts_from(struct bl_oci_spec *s, json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);
    int rc = 0;

    if (arr && !json_is_array(arr))
        return fail(err, errlen, "mounts: not an array");
    if (n > MAX_MOUNTS)
        return fail(err, errlen, "mounts: %zu entries, at most %u", n, MAX_MOUNTS);
    s->mounts = calloc(n ? n : 1, sizeof *s->mounts);
    if (!s->mounts)
        return fail(err, errlen, "out of memory");
    s->n_mounts = n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mount_from(&s->mounts[i], json_array_get(arr, i), i, err, errlen);
    return rc;
}

#define MAX_MEMORY (1ULL << 50) /* 1 PiB: past any host's memory, well inside uint64 */
#define MAX_PIDS   (1LL << 32)

/* An integer field of obj, or absent; *out unchanged when absent. */
static int int_get(json_int_t *out, json_t *obj, const char *key, const char *what, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        return 0;
    if (!json_is_integer(v))
        return fail(err, errlen, "linux.resources.%s.%s: not an integer", what, key);
    *out = json_integer_value(v);
    return 0;
}

/* An object field of obj, or absent (NULL). -1 when present and not an object. */
static int obj_get(json_t **out, json_t *obj, const char *key, char *err, size_t errlen)
{
    *out = json_object_get(obj, key);
    if (*out && !json_is_object(*out))
        return fail(err, errlen, "linux.resources.%s: not an object", key);
    return 0;
}

/* linux.resources: memory.limit, cpu.quota/period, pids.limit. Negative means unlimited. */
static int resources_from(struct bl_oci_resources *r, json_t *res, char *err, size_t errlen)
{
    static const char *others[] = {"blockIO", "devices", "hugepageLimits",
                                   "network", "rdma",    "unified"};
    json_int_t mem = 0, quota = 0, period = 100000, pids = 0;
    json_t *m = NULL, *cpu = NULL, *p = NULL;

    if (res && !json_is_object(res))
        return fail(err, errlen, "linux.resources: not an object");
    if (obj_get(&m, res, "memory", err, errlen) != 0 ||
        obj_get(&cpu, res, "cpu", err, errlen) != 0 || obj_get(&p, res, "pids", err, errlen) != 0 ||
        int_get(&mem, m, "limit", "memory", err, errlen) != 0 ||
        int_get(&quota, cpu, "quota", "cpu", err, errlen) != 0 ||
        int_get(&period, cpu, "period", "cpu", err, errlen) != 0 ||
        int_get(&pids, p, "limit", "pids", err, errlen) != 0)
        return -1;
    if (mem > (json_int_t)MAX_MEMORY)
        return fail(err, errlen, "linux.resources.memory.limit %lld: more than 1 PiB",
                    (long long)mem);
    if (pids > MAX_PIDS)
        return fail(err, errlen, "linux.resources.pids.limit %lld: out of range", (long long)pids);
    if (quota > 0 && (period <= 0 || period > 1000000000 || quota > 1000000000000LL))
        return fail(err, errlen, "linux.resources.cpu: period %lld, quota %lld out of range",
                    (long long)period, (long long)quota);
    r->memory_limit = mem > 0 ? (uint64_t)mem : 0;
    r->cpus = quota > 0 ? (unsigned)((quota + period - 1) / period) : 0;
    r->pids_limit = pids > 0 ? (uint64_t)pids : 0;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        r->has_other |= json_object_get(res, others[i]) != NULL;
    return 0;
}

static int namespaces_from(struct bl_oci_spec *s, json_t *arr, char *err, size_t errlen)
{
    size_t n = json_array_size(arr);

    if (arr && (!json_is_array(arr) || n > 16))
        return fail(err, errlen, "linux.namespaces: not an array of at most 16");
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        const char *type = str_ok(json_object_get(o, "type"), 32);
        json_t *path = json_object_get(o, "path");
        if (!type)
            return fail(err, errlen, "linux.namespaces[%zu].type: required", i);
        if (path && (!str_ok(path, MAX_PATH) || json_string_value(path)[0] != '/'))
            return fail(err, errlen, "linux.namespaces[%zu].path: not an absolute path", i);
        if (strcmp(type, "network") != 0)
            continue;
        s->netns = path ? 2 : 1;
        free(s->netns_path);
        s->netns_path = path ? strdup(json_string_value(path)) : NULL;
        if (path && !s->netns_path)
            return fail(err, errlen, "out of memory");
    }
    return 0;
}

/* io.kubernetes.cri.container-type and io.kubernetes.cri.sandbox-id: a pod's sandbox, or a
 * container naming its sandbox (checked as a container id: it names a state directory). */
static int pod_from(struct bl_oci_spec *s, const char *key, const char *v, char *err, size_t errlen)
{
    if (strcmp(key, "io.kubernetes.cri.container-type") == 0) {
        if (strcmp(v, "sandbox") == 0)
            s->pod_role = BL_OCI_POD_SANDBOX;
        else if (strcmp(v, "container") == 0)
            s->pod_role = BL_OCI_POD_CONTAINER;
        else
            return fail(err, errlen, "annotations: container-type \"%.64s\" unknown", v);
    } else if (strcmp(key, "io.kubernetes.cri.sandbox-id") == 0) {
        free(s->sandbox_id);
        if (!(s->sandbox_id = strdup(v)))
            return fail(err, errlen, "out of memory");
    }
    return 0;
}

/* annotations: an object of strings (at most 1024); the engine and the pod are read from it. */
static int annotations_from(struct bl_oci_spec *s, json_t *o, char *err, size_t errlen)
{
    const char *key;
    json_t *v;

    if (o && (!json_is_object(o) || json_object_size(o) > 1024))
        return fail(err, errlen, "annotations: not an object of at most 1024 entries");
    json_object_foreach(o, key, v)
    {
        if (!str_ok(v, MAX_STR))
            return fail(err, errlen, "annotations: a value is not a string");
        if (strcmp(key, "io.container.manager") == 0 && strcmp(json_string_value(v), "libpod") == 0)
            s->engine = "podman";
        else if (strncmp(key, "io.kubernetes.cri.", 18) == 0)
            s->engine = "kubernetes";
        if (pod_from(s, key, json_string_value(v), err, errlen) != 0)
            return -1;
    }
    if (s->pod_role == BL_OCI_POD_CONTAINER && !s->sandbox_id)
        return fail(err, errlen,
                    "annotations: a pod container without io.kubernetes.cri.sandbox-id");
    return 0;
}

static int spec_from(struct bl_oci_spec *s, json_t *root, char *err, size_t errlen)
{
    json_t *r = json_object_get(root, "root"), *linux_ = json_object_get(root, "linux");
    json_t *proc = json_object_get(root, "process"), *host = json_object_get(root, "hostname");
    const char *path = str_ok(json_object_get(r, "path"), MAX_PATH);
    int rc;

    if (!json_is_object(root))
        return fail(err, errlen, "config.json: not a JSON object");
    if (!str_ok(json_object_get(root, "ociVersion"), 64))
        return fail(err, errlen, "ociVersion: required, a string");
    if (!path || !path_clean(path, 0))
        return fail(err, errlen, "root.path: required, with no \".\" or \"..\" component");
    if (host && (!str_ok(host, MAX_HOST) || strchr(json_string_value(host), '/')))
        return fail(err, errlen, "hostname: not a string of at most %d bytes", MAX_HOST);
    if (linux_ && !json_is_object(linux_))
        return fail(err, errlen, "linux: not an object");
    if (json_object_get(r, "readonly") && !json_is_boolean(json_object_get(r, "readonly")))
        return fail(err, errlen, "root.readonly: not a boolean");
    s->root_readonly = json_is_true(json_object_get(r, "readonly"));
    s->root_path = strdup(path);
    s->hostname = strdup(host ? json_string_value(host) : "");
    if (!s->root_path || !s->hostname)
        return fail(err, errlen, "out of memory");
    s->has_process = proc != NULL;
    rc = proc ? process_from(&s->process, proc, err, errlen) : 0;
    if (rc == 0)
        rc = mounts_from(s, json_object_get(root, "mounts"), err, errlen);
    if (rc == 0)
        rc = resources_from(&s->res, json_object_get(linux_, "resources"), err, errlen);
    if (rc == 0)
        rc = namespaces_from(s, json_object_get(linux_, "namespaces"), err, errlen);
    if (rc == 0)
        rc = annotations_from(s, json_object_get(root, "annotations"), err, errlen);
    return rc;
}

static json_t *load(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;

    if (len > BL_OCI_DOC_MAX) {
        fail(err, errlen, "document of %zu bytes, at most %u", len, BL_OCI_DOC_MAX);
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        fail(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
    return root;
}

int bl_oci_spec_parse(struct bl_oci_spec *out, const char *text, size_t len, char *err,
                      size_t errlen)
{
    struct bl_oci_spec s = {0};
    json_t *root = load(text, len, err, errlen);
    int rc = root ? spec_from(&s, root, err, errlen) : -1;

    json_decref(root);
    if (rc == 0)
        *out = s;
    else
        bl_oci_spec_free(&s);
    return rc;
}

int bl_oci_resources_parse(struct bl_oci_resources *out, const char *text, size_t len, char *err,
                           size_t errlen)
{
    struct bl_oci_resources r = {0};
    json_t *root = load(text, len, err, errlen);
    int rc = -1;

    if (root && !json_is_object(root))
        fail(err, errlen, "resources: not a JSON object");
    else if (root)
        rc = resources_from(&r, root, err, errlen);
    json_decref(root);
    if (rc == 0)
        *out = r;
    return rc;
}

int bl_oci_process_parse(struct bl_oci_process *out, const char *text, size_t len, char *err,
                         size_t errlen)
{
    json_t *root = load(text, len, err, errlen);
    int rc = root ? process_from(out, root, err, errlen) : -1;

    json_decref(root);
    return rc;
}

void bl_oci_process_free(struct bl_oci_process *p)
{
    if (!p)
        return;
    strv_free(p->args);
    strv_free(p->env);
    free(p->cwd);
    memset(p, 0, sizeof *p);
}

void bl_oci_spec_free(struct bl_oci_spec *s)
{
    if (!s)
        return;
    free(s->root_path);
    free(s->hostname);
    bl_oci_process_free(&s->process);
    for (size_t i = 0; s->mounts && i < s->n_mounts; i++) {
        free(s->mounts[i].destination);
        free(s->mounts[i].type);
        free(s->mounts[i].source);
    }
    free(s->mounts);
    free(s->netns_path);
    free(s->sandbox_id);
    memset(s, 0, sizeof *s);
}
