/* options.c — box options: their checks (names, env, volumes, ports, limits, network) and
 * the store row a box is created with from them. */
#include "box.h"
#include "error.h"
#include "netpolicy.h"
#include "secrets.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MEMORY_MIB 512

static int check_name(const char *name)
{
    return name ? bl_check_name("box", name) : 0;
}

static int check_env(const char *const *env)
{
    for (size_t i = 0; env && env[i]; i++)
        if (!strchr(env[i], '=') || env[i][0] == '=')
            return bl_err(BOXLITE_EINVAL, "environment entry \"%s\" is not KEY=VALUE", env[i]);
    return 0;
}

static int has_dotdot(const char *path)
{
    for (const char *p = path; *p; p++)
        if (p[0] == '.' && p[1] == '.' && (p == path || p[-1] == '/') && (p[2] == '/' || !p[2]))
            return 1;
    return 0;
}

static int check_volumes(const boxlite_box_options *o)
{
    struct stat st;

    for (size_t i = 0; i < o->n_volumes; i++) {
        const boxlite_volume *v = &o->volumes[i];
        if (!v->host_path || !v->guest_path)
            return bl_err(BOXLITE_EINVAL, "volume %zu: host_path and guest_path are required", i);
        if (stat(v->host_path, &st) != 0 || !S_ISDIR(st.st_mode))
            return bl_err(BOXLITE_EINVAL, "volume %s: the host path %s", v->host_path,
                          errno == ENOENT ? "does not exist" : "is not a directory");
        if (v->guest_path[0] != '/' || strcmp(v->guest_path, "/") == 0 ||
            has_dotdot(v->guest_path) || strlen(v->guest_path) > 200)
            return bl_err(BOXLITE_EINVAL,
                          "volume %s: guest path \"%s\" must be an absolute "
                          "path below / without \"..\" (at most 200 bytes)",
                          v->host_path, v->guest_path);
    }
    return 0;
}

static int check_ports(const boxlite_box_options *o)
{
    struct in_addr a;

    for (size_t i = 0; i < o->n_ports; i++) {
        const boxlite_port *p = &o->ports[i];
        if (p->host_port == 0 || p->host_port > 65535 || p->guest_port == 0 ||
            p->guest_port > 65535)
            return bl_err(BOXLITE_EINVAL, "port %u:%u: ports are 1-65535", p->host_port,
                          p->guest_port);
        if (p->protocol && strcmp(p->protocol, "tcp") != 0 && strcmp(p->protocol, "udp") != 0)
            return bl_err(BOXLITE_EINVAL, "port %u: protocol \"%s\" is not tcp or udp",
                          p->host_port, p->protocol);
        if (p->host_ip && inet_pton(AF_INET, p->host_ip, &a) != 1)
            return bl_err(BOXLITE_EINVAL, "port %u: host_ip \"%s\" is not an IPv4 address",
                          p->host_port, p->host_ip);
        for (size_t j = 0; j < i; j++)
            if (o->ports[j].host_port == p->host_port &&
                strcmp(o->ports[j].protocol ? o->ports[j].protocol : "tcp",
                       p->protocol ? p->protocol : "tcp") == 0)
                return bl_err(BOXLITE_EINVAL, "host port %u is published twice", p->host_port);
    }
    return 0;
}

int bl_box_options_check(const boxlite_box_options *o)
{
    if (o->version != BOXLITE_BOX_OPTIONS_VERSION)
        return bl_err(BOXLITE_EINVAL, "box options of unknown version %u", o->version);
    if (o->cpus > 64)
        return bl_err(BOXLITE_EINVAL, "cpus %u: expected 1-64", o->cpus);
    if (o->memory_mib != 0 && (o->memory_mib < 128 || o->memory_mib > 1024 * 1024))
        return bl_err(BOXLITE_EINVAL, "memory_mib %u: expected 128 MiB or more", o->memory_mib);
    if (o->disk_size_gb > 16384)
        return bl_err(BOXLITE_EINVAL, "disk_size_gb %u is too large", o->disk_size_gb);
    if ((o->auto_delete > 0 || (o->auto_delete < 0 && o->auto_remove)) && o->detach)
        return bl_err(BOXLITE_EINVAL,
                      "auto_remove or auto_delete with detach: remove-on-stop is incompatible "
                      "with a detached box (use auto_delete=0 or auto_remove=false)");
    if (o->working_dir && o->working_dir[0] != '/')
        return bl_err(BOXLITE_EINVAL, "working_dir \"%s\" is not an absolute path", o->working_dir);
    if (o->n_volumes > 16 || o->n_ports > 64)
        return bl_err(BOXLITE_EINVAL, "too many volumes (max 16) or ports (max 64)");
    if (check_env(o->env) || check_volumes(o) || check_ports(o))
        return BOXLITE_EINVAL;
    if (o->network_disabled && o->allow_net && o->allow_net[0])
        return bl_err(BOXLITE_EINVAL, "allow_net with the network disabled: choose one");
    if (bl_net_specs_check(o->allow_net) != 0)
        return BOXLITE_EINVAL;
    if (o->n_secrets && (o->network_disabled || !o->secrets))
        return bl_err(BOXLITE_EINVAL, "secrets need the network (and a secrets array)");
    if (bl_secrets_check(o->secrets, o->n_secrets) != 0)
        return BOXLITE_EINVAL;
    return check_name(o->name);
}

static char **encode_ports(const boxlite_box_options *o)
{
    char **v = calloc(4 * o->n_ports + 1, sizeof(*v));
    int ok = v != NULL;

    for (size_t i = 0; ok && i < o->n_ports; i++) {
        const boxlite_port *p = &o->ports[i];
        v[4 * i] = strdup(p->protocol ? p->protocol : "tcp");
        v[4 * i + 1] = strdup(p->host_ip ? p->host_ip : "127.0.0.1");
        v[4 * i + 2] = bl_strdupf("%u", p->host_port);
        v[4 * i + 3] = bl_strdupf("%u", p->guest_port);
        ok = v[4 * i] && v[4 * i + 1] && v[4 * i + 2] && v[4 * i + 3];
    }
    if (!ok) {
        for (size_t i = 0; v && i < 4 * o->n_ports; i++)
            free(v[i]);
        free(v);
        v = NULL;
    }
    return v;
}

static char **encode_volumes(const boxlite_box_options *o)
{
    char **v = calloc(3 * o->n_volumes + 1, sizeof(*v));
    int ok = v != NULL;

    for (size_t i = 0; ok && i < o->n_volumes; i++) {
        const boxlite_volume *vol = &o->volumes[i];
        v[3 * i] = strdup(vol->read_only ? "ro" : "rw");
        v[3 * i + 1] = realpath(vol->host_path, NULL);
        v[3 * i + 2] = strdup(vol->guest_path);
        ok = v[3 * i] && v[3 * i + 1] && v[3 * i + 2];
    }
    if (!ok) {
        for (size_t i = 0; v && i < 3 * o->n_volumes; i++)
            free(v[i]);
        free(v);
        v = NULL;
    }
    return v;
}

int bl_box_row_init(struct bl_box_row *r, const char *id, const char *name, const char *image)
{
    char now[32];

    memset(r, 0, sizeof(*r));
    if (check_name(name) != 0)
        return BOXLITE_EINVAL;
    bl_rfc3339_now(now);
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->auto_delete = -1; /* auto_remove decides */
    r->name = name ? strdup(name) : NULL;
    r->image = strdup(image);
    r->state = strdup("configured");
    r->created_at = strdup(now);
    r->reason = strdup("");
    r->ports = calloc(1, sizeof(char *));
    r->volumes = calloc(1, sizeof(char *));
    if ((name && !r->name) || !r->image || !r->state || !r->created_at || !r->reason || !r->ports ||
        !r->volumes) {
        bl_box_row_clear(r);
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    }
    return 0;
}

int bl_box_row_fill(struct bl_box_row *r, const char *id, const boxlite_box_options *o,
                    const char *image)
{
    int rc = bl_box_row_init(r, id, o->name, image);

    if (rc != 0)
        return rc;
    r->cpus = o->cpus ? o->cpus : 1;
    r->memory_mib = o->memory_mib ? o->memory_mib : DEFAULT_MEMORY_MIB;
    r->disk_size_gb = o->disk_size_gb;
    r->auto_remove = o->auto_remove;
    r->detach = o->detach;
    r->no_main = o->no_main != 0;
    r->auto_delete = o->auto_delete < 0 ? -1 : o->auto_delete;
    r->env = o->n_secrets ? bl_secrets_env(o->env, o->secrets, o->n_secrets)
             : o->env     ? bl_strv_dup(o->env)
                          : NULL;
    r->entrypoint = o->entrypoint ? bl_strv_dup(o->entrypoint) : NULL;
    r->cmd = o->cmd ? bl_strv_dup(o->cmd) : NULL;
    r->workdir = o->working_dir ? strdup(o->working_dir) : NULL;
    r->user = o->user ? strdup(o->user) : NULL;
    r->network_disabled = o->network_disabled;
    bl_strv_free(r->ports);
    bl_strv_free(r->volumes);
    r->ports = encode_ports(o);
    r->volumes = encode_volumes(o);
    r->allow_net = o->allow_net ? bl_strv_dup(o->allow_net) : NULL;
    r->image_ref = o->image && *o->image ? strdup(o->image) : NULL; /* as written */
    if ((o->image && *o->image && !r->image_ref) || !r->ports || !r->volumes ||
        (o->allow_net && !r->allow_net) || ((o->env || o->n_secrets) && !r->env) ||
        (o->entrypoint && !r->entrypoint) || (o->cmd && !r->cmd) ||
        (o->working_dir && !r->workdir) || (o->user && !r->user))
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    return 0;
}
