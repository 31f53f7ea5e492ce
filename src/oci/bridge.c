/* bridge.c — containers as boxes, through include/boxlite.h only: the bundle's rootfs
 * directory imported as an image (converted once into the store's ext4 base; the box gets its
 * own copy-on-write disk over it), linux.resources as the VM's size, bind mounts of
 * directories as virtio-9p volumes and of files as copies made at create, and removal. */
#include "oci.h"

#include <boxlite.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_MEMORY_MIB 128

int bl_oci_read_file(char **out, size_t *len_out, const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t len = 0;
    struct stat sb;
    int rc = 1;

    if (fd < 0 || fstat(fd, &sb) < 0)
        return bl_oci_fail("open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > max) {
        bl_oci_fail("%s: not a regular file of at most %zu bytes", path, max);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    while (buf && len < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)sb.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (!buf || len != (size_t)sb.st_size) {
        bl_oci_fail("read %s: %s", path, buf ? "short read" : "out of memory");
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *len_out = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

int bl_oci_runtime_open(boxlite_runtime **out)
{
    int rc = boxlite_runtime_open(out, NULL);

    return rc ? bl_oci_fail("boxlite runtime: %s", boxlite_error_last()) : 0;
}

/* The rootfs directory: absolute as given, or inside the bundle (resolved, it must stay
 * there: a symlink may not lead out). */
int bl_oci_rootfs_resolve(char *out, const struct bl_oci_spec *spec, const char *bundle)
{
    char joined[PATH_MAX * 2], real_bundle[PATH_MAX];
    struct stat sb;
    size_t n;

    if (spec->root_path[0] == '/')
        snprintf(joined, sizeof joined, "%s", spec->root_path);
    else
        snprintf(joined, sizeof joined, "%s/%s", bundle, spec->root_path);
    if (!realpath(joined, out) || stat(out, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return bl_oci_fail("root.path %s: not a directory", joined);
    if (spec->root_path[0] == '/')
        return 0;
    if (!realpath(bundle, real_bundle))
        return bl_oci_fail("bundle %s: %s", bundle, strerror(errno));
    n = strlen(real_bundle);
    if (strncmp(out, real_bundle, n) != 0 || out[n] != '/')
        return bl_oci_fail("root.path %s leads outside the bundle (to %s)", spec->root_path, out);
    return 0;
}

static int resources(boxlite_box_options *o, const struct bl_oci_spec *spec)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    uint64_t host = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (spec->res.memory_limit && host && spec->res.memory_limit > host)
        return bl_oci_fail("linux.resources.memory.limit %llu bytes: more than the host's %llu",
                           (unsigned long long)spec->res.memory_limit, (unsigned long long)host);
    if (spec->res.cpus && cpus > 0 && spec->res.cpus > (unsigned)cpus)
        return bl_oci_fail("linux.resources.cpu: %u CPUs asked, the host has %ld", spec->res.cpus,
                           cpus);
    o->cpus = spec->res.cpus;
    if (spec->res.memory_limit) {
        o->memory_mib = (unsigned)(spec->res.memory_limit >> 20);
        if (o->memory_mib < MIN_MEMORY_MIB) /* the guest kernel and agent need this much */
            o->memory_mib = MIN_MEMORY_MIB;
    }
    return 0;
}

/* Under /dev, /proc and /sys the guest kernel has its own (podman's /dev/shm tmpfs among
 * them: shared into the VM it would stay busy on the host). */
static int guest_owned(const char *dest)
{
    static const char *dirs[] = {"/dev", "/proc", "/sys"};

    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        size_t n = strlen(dirs[i]);
        if (strncmp(dest, dirs[i], n) == 0 && (dest[n] == '\0' || dest[n] == '/'))
            return 1;
    }
    return 0;
}

/* Bind mounts of directories become volumes; the others wait for copy_files. */
static int volumes(boxlite_volume **out, size_t *n_out, const struct bl_oci_spec *spec)
{
    boxlite_volume *v = calloc(spec->n_mounts + 1, sizeof *v);
    size_t n = 0;

    if (!v)
        return bl_oci_fail("out of memory");
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct bl_oci_mount *m = &spec->mounts[i];
        struct stat sb;
        if (!m->bind || guest_owned(m->destination))
            continue; /* proc, sysfs, tmpfs, devpts, mqueue, cgroup: the guest has its own */
        if (stat(m->source, &sb) < 0) {
            free(v);
            return bl_oci_fail("mount %s: source %s: %s", m->destination, m->source,
                               strerror(errno));
        }
        if (!S_ISDIR(sb.st_mode))
            continue;
        v[n].host_path = m->source;
        v[n].guest_path = m->destination;
        v[n].read_only = m->read_only;
        n++;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* Bind mounts of single files (podman's /etc/hosts, /etc/hostname, /run/.containerenv) are
 * copied in once; /etc/resolv.conf stays the VM's own (its DNS is the VM network's). */
static int copy_files(boxlite_box *box, const struct bl_oci_spec *spec)
{
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct bl_oci_mount *m = &spec->mounts[i];
        struct stat sb;
        if (!m->bind || guest_owned(m->destination) || stat(m->source, &sb) < 0 ||
            !S_ISREG(sb.st_mode) || strcmp(m->destination, "/etc/resolv.conf") == 0)
            continue;
        if (boxlite_box_copy_in(box, m->source, m->destination, NULL) != 0)
            bl_oci_log("warning", "mount %s: copy of %s not made: %s", m->destination, m->source,
                       boxlite_error_last());
    }
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i]))
            return 0;
    return 1;
}

int bl_oci_box_make(boxlite_box **out, boxlite_runtime *rt, const struct bl_oci_spec *spec,
                    const char *bundle, const char *image_name)
{
    boxlite_box_options o = BOXLITE_BOX_OPTIONS_INIT;
    boxlite_volume *vols = NULL;
    boxlite_box *box = NULL;
    char rootfs[PATH_MAX];
    int rc = bl_oci_rootfs_resolve(rootfs, spec, bundle), imported = 0;

    if (rc == 0)
        rc = resources(&o, spec);
    if (rc == 0)
        rc = volumes(&vols, &o.n_volumes, spec);
    if (rc == 0 && boxlite_image_import(NULL, rt, rootfs, image_name) != 0)
        rc = bl_oci_fail("rootfs %s: %s", rootfs, boxlite_error_last());
    imported = rc == 0;
    o.image = image_name;
    o.volumes = vols;
    o.network_disabled = spec->netns == 1; /* a new, empty namespace: loopback only */
    o.no_main = 1; /* the container's process is exec'd by the keeper (keeper.c) */
    /* the guest's hostname is the box's name: the container's hostname when it is free */
    o.name = name_ok(spec->hostname) ? spec->hostname : NULL;
    if (rc == 0 && o.name && boxlite_box_create(&box, rt, &o) == BOXLITE_EEXISTS)
        o.name = NULL;
    if (rc == 0 && !box && boxlite_box_create(&box, rt, &o) != 0)
        rc = bl_oci_fail("box: %s", boxlite_error_last());
    if (rc == 0 && boxlite_box_start(box) != 0) {
        rc = bl_oci_fail("box %s: boot: %s", boxlite_box_id(box), boxlite_error_last());
        boxlite_box_remove(box, 1);
    }
    if (rc == 0)
        rc = copy_files(box, spec);
    free(vols);
    if (rc == 0)
        *out = box;
    else
        boxlite_box_free(box);
    if (rc != 0 && imported)
        boxlite_image_remove(rt, image_name, 1);
    return rc;
}

int bl_oci_box_open(boxlite_runtime **rt_out, boxlite_box **box_out, const struct bl_oci_state *st)
{
    *rt_out = NULL;
    *box_out = NULL;
    if (bl_oci_runtime_open(rt_out) != 0)
        return 1;
    if (boxlite_box_get(box_out, *rt_out, st->box_id) == 0)
        return 0;
    bl_oci_fail("%s: box %s: %s", st->id, st->box_id, boxlite_error_last());
    boxlite_runtime_free(*rt_out);
    *rt_out = NULL;
    return 1;
}

void bl_oci_box_remove(const char *box_id, const char *image)
{
    boxlite_runtime *rt = NULL;
    boxlite_box *box = NULL;

    if (boxlite_runtime_open(&rt, NULL) != 0)
        return;
    if (box_id[0] && boxlite_box_get(&box, rt, box_id) == 0 && boxlite_box_remove(box, 1) != 0)
        bl_oci_log("warning", "box %s: not removed: %s", box_id, boxlite_error_last());
    boxlite_box_free(box);
    if (image[0])
        boxlite_image_remove(rt, image, 1);
    boxlite_runtime_free(rt);
}
