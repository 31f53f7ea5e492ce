/* boxlite_manifest.c — the manifest of an archive exported by BoxLite (the Rust project,
 * docs/snapshots.md "BoxLite's archives") read into a manifest of ours, so that one reader
 * (archive.c) and one set of bounds (bl_box_archive_row) judge both. Hostile until checked. */
#include "boxarchive.h"
#include "error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define BOXLITE_MIN_VERSION 2 /* version 1 carried no checksum */
#define BOXLITE_MAX_VERSION 5
#define DEFAULT_CPUS        1
#define DEFAULT_MEMORY_MIB  512 /* ours (options.c): BoxLite's options leave it to the runtime */

int bl_box_archive_is_boxlite(json_t *m)
{
    return json_is_object(m) && !json_object_get(m, "format") &&
           json_object_get(m, "container_disk_checksum") != NULL;
}

static int bad(const char *what)
{
    return bl_err(BOXLITE_EINVAL, "manifest.json (a BoxLite archive): %s", what);
}

/* "sha256:" and 64 lowercase hex digits; the digits into hex[65]. */
static int parse_checksum(char hex[65], json_t *v)
{
    const char *s = json_string_value(v);

    if (!s || !*s)
        return bad("no container_disk_checksum: an archive without a checksum is refused");
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64 ||
        strspn(s + 7, "0123456789abcdef") != 64)
        return bad("container_disk_checksum is not \"sha256:\" and 64 hex digits");
    memcpy(hex, s + 7, 65);
    return 0;
}

/* null/absent or a string. */
static int opt_string(json_t *v)
{
    return !v || json_is_null(v) || json_is_string(v);
}

/* null/absent or an array of strings: a copy (json_null when none), or NULL when bad. */
static json_t *opt_strv(json_t *v)
{
    size_t i;
    json_t *e;

    if (!v || json_is_null(v))
        return json_null();
    if (!json_is_array(v))
        return NULL;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return NULL;
    }
    return json_deep_copy(v);
}

/* null/absent or an integer: *out, else dflt. */
static int opt_int(json_int_t *out, json_t *v, json_int_t dflt)
{
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

/* env: [[KEY, VALUE], ...] → ["KEY=VALUE", ...] (the key non-empty, without '='). */
static int env_list(json_t **out, json_t *v)
{
    json_t *list = json_array(), *pair;
    size_t i;

    if (!list)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    if (v && !json_is_null(v) && !json_is_array(v))
        goto bad;
    json_array_foreach(v, i, pair)
    {
        const char *k = json_string_value(json_array_get(pair, 0));
        const char *val = json_string_value(json_array_get(pair, 1));
        char *kv;

        if (!json_is_array(pair) || json_array_size(pair) != 2 || !k || !val || !*k ||
            strchr(k, '='))
            goto bad;
        kv = malloc(strlen(k) + strlen(val) + 2);
        if (!kv || json_array_append_new(
                       list, json_string(strcat(strcat(strcpy(kv, k), "="), val))) != 0) {
            free(kv);
            json_decref(list);
            return bl_err(BOXLITE_ENOMEM, "out of memory");
        }
        free(kv);
    }
    *out = list;
    return 0;
bad:
    json_decref(list);
    return bad("box_options.env is not a list of [name, value] pairs");
}

/* rootfs {"Image": ref} → the image; a host path is refused. */
static int rootfs_image(const char **image, json_t *v)
{
    const char *ref;

    if (!v || json_is_null(v))
        return 0;
    if (json_is_object(v) && json_object_get(v, "RootfsPath"))
        return bad("box_options.rootfs names a host path (RootfsPath): refused");
    ref = json_string_value(json_object_get(v, "Image"));
    if (!json_is_object(v) || json_object_size(v) != 1 || !ref || !*ref)
        return bad("box_options.rootfs is not {\"Image\": reference}");
    *image = ref;
    return 0;
}

/* network "Disabled" | {"Enabled": {"allow_net": []}}: an allowlist is not carried, so an
 * archive that has one is refused rather than imported as a box with open egress. */
static int network_disabled(int *out, json_t *v)
{
    json_t *en = json_object_get(v, "Enabled");
    json_t *allow = json_object_get(en, "allow_net");

    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "Disabled") == 0) {
        *out = 1;
        return 0;
    }
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_object(en) ||
        (allow && !json_is_null(allow) && !json_is_array(allow)))
        return bad("box_options.network is not \"Disabled\" or {\"Enabled\": {...}}");
    if (json_array_size(allow) > 0)
        return bad("box_options.network carries an egress allowlist (allow_net), which an "
                   "import does not carry: refused");
    return 0;
}

/* box_options (v3+; absent in v2) into our "box" object. */
static int box_object(json_t **out, json_t *m)
{
    json_t *o = json_object_get(m, "box_options");
    const char *image = json_string_value(json_object_get(m, "image"));
    json_t *env = NULL, *ep = NULL, *cmd = NULL, *vols = json_object_get(o, "volumes");
    json_int_t cpus, mem, disk;
    int nonet = 0, rc;

    if (o && !json_is_null(o) && !json_is_object(o))
        return bad("box_options is not an object");
    if (opt_int(&cpus, json_object_get(o, "cpus"), DEFAULT_CPUS) != 0 ||
        opt_int(&mem, json_object_get(o, "memory_mib"), DEFAULT_MEMORY_MIB) != 0 ||
        opt_int(&disk, json_object_get(o, "disk_size_gb"), 0) != 0)
        return bad("box_options.cpus, memory_mib and disk_size_gb must be integers or null");
    if (!opt_string(json_object_get(o, "working_dir")) || !opt_string(json_object_get(o, "user")))
        return bad("box_options.working_dir and user must be strings or null");
    if (vols && !json_is_null(vols) && (!json_is_array(vols) || json_array_size(vols) > 0))
        return bad("box_options.volumes names host paths or volumes: refused (an import "
                   "carries no mounts)");
    rc = rootfs_image(&image, json_object_get(o, "rootfs"));
    if (rc == 0)
        rc = network_disabled(&nonet, json_object_get(o, "network"));
    if (rc == 0)
        rc = env_list(&env, json_object_get(o, "env"));
    if (rc != 0)
        return rc;
    ep = opt_strv(json_object_get(o, "entrypoint"));
    cmd = opt_strv(json_object_get(o, "cmd"));
    if (!ep || !cmd) {
        json_decref(env);
        json_decref(ep);
        json_decref(cmd);
        return bad("box_options.entrypoint and cmd must be lists of strings or null");
    }
    *out = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:O?, s:O?, s:b}", "image", image, "cpus",
                     cpus, "memory_mib", mem, "disk_size_gb", disk, "env", env, "entrypoint", ep,
                     "cmd", cmd, "workdir", json_object_get(o, "working_dir"), "user",
                     json_object_get(o, "user"), "network_disabled", nonet);
    return *out ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory");
}

int bl_box_archive_from_boxlite(json_t **out, json_t *m)
{
    json_t *version = json_object_get(m, "version"), *box = NULL, *ours;
    const char *image = json_string_value(json_object_get(m, "image"));
    json_int_t v = json_integer_value(version);
    char hex[65];
    int rc;

    if (!json_is_integer(version) || v < 1 || v > BOXLITE_MAX_VERSION)
        return bad("version is not 1 to 5 (this reader knows BoxLite's archive versions 2-5)");
    if (v < BOXLITE_MIN_VERSION)
        return bad("version 1 carries no checksum: refused");
    if (!image || !*image)
        return bad("no image");
    if (!opt_string(json_object_get(m, "box_name")) ||
        !opt_string(json_object_get(m, "exported_at")) ||
        !opt_string(json_object_get(m, "guest_disk_checksum")))
        return bad("box_name, exported_at and guest_disk_checksum must be strings");
    rc = parse_checksum(hex, json_object_get(m, "container_disk_checksum"));
    if (rc == 0)
        rc = box_object(&box, m);
    if (rc != 0)
        return rc;
    /* the disk's size is what its tar header says (capped by the reader): 0 until read */
    ours = json_pack("{s:s, s:i, s:o, s:[{s:s, s:i, s:s}], s:b}", "format", "boxlite-box",
                     "version", 1, "box", box, "files", "name", "disk.qcow2", "size", 0, "sha256",
                     hex, "from_boxlite", 1);
    if (!ours)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    *out = ours;
    return 0;
}
