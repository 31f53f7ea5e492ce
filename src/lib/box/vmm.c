/* vmm.c — the VMM: choosing KVM or TCG, the qemu-system-x86_64 -M microvm command line
 * for a box (the box monitor, boxlite-shim, runs it with the agent channel on fd 3) and
 * the files that command line makes QEMU open (its jail holds only those). */
#include "vmm.h"
#include "box.h"
#include "disk.h"
#include "error.h"
#include "util.h"
#include "db.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define AGENT_FD  3 /* the channel's fd number inside QEMU */
#define NET_FD    6 /* the network stream's (src/shim/net.c) */
#define MAX_ARGS  256
#define MAX_OWNED 160
#define MAX_CHAIN 64 /* files of a chain bound into the jail one by one; below: by directory */
#define MAX_DIRS  16 /* directories bound for the layers below that */

static int kvm_usable(const char **why)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int ok = 0;

    if (fd < 0) {
        *why = errno == ENOENT ? "/dev/kvm does not exist" : "/dev/kvm cannot be opened";
        return 0;
    }
    ok = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
    if (!ok)
        *why = "/dev/kvm speaks an unknown API version";
    close(fd);
    return ok;
}

/* The accelerator asked for, and by whom (for messages). */
static const char *wanted(const char *opt, const char **who)
{
    *who = "the runtime's accel option";
    if (opt && *opt)
        return opt;
    *who = "BOXLITE_ACCEL";
    opt = getenv("BOXLITE_ACCEL");
    return opt && *opt ? opt : "auto";
}

int bl_vmm_kvm_required(const char *opt)
{
    const char *who;

    return strcmp(wanted(opt, &who), "kvm") == 0;
}

int bl_vmm_pick_accel(int *kvm_out, const char **why_tcg, const char *opt)
{
    const char *who, *want = wanted(opt, &who);
    const char *why = NULL;
    int kvm;

    *why_tcg = NULL;
    if (strcmp(want, "tcg") == 0) {
        *kvm_out = 0;
        return 0;
    }
    if (strcmp(want, "kvm") != 0 && strcmp(want, "auto") != 0)
        return bl_err(BOXLITE_EINVAL, "%s=%s: expected kvm, tcg or auto", who, want);
    kvm = kvm_usable(&why);
    if (!kvm && strcmp(want, "kvm") == 0)
        return bl_err(BOXLITE_EINVAL,
                      "%s=kvm requires hardware isolation but %s: refusing to start "
                      "(no fallback to TCG emulation)",
                      who, why);
    if (!kvm)
        *why_tcg = why;
    *kvm_out = kvm;
    return 0;
}

/* Under TCG the guest's TSC calibration against the PIT fails at random and the boot hangs
 * (DESIGN.md): tell the kernel the TSC rate instead, the host's as /proc/cpuinfo says. */
static const char *tsc_param(void)
{
    static char param[48];
    char *data = NULL, *p;
    double mhz = 0;

    if (param[0])
        return param;
    if (bl_read_file(&data, NULL, "/proc/cpuinfo", 1 << 22) == 0) {
        p = strstr(data, "cpu MHz");
        p = p ? strchr(p, ':') : NULL;
        mhz = p ? strtod(p + 1, NULL) : 0;
        free(data);
    }
    if (mhz < 100 || mhz > 10000)
        mhz = 2000;
    snprintf(param, sizeof(param), " tsc_early_khz=%lu", (unsigned long)(mhz * 1000));
    return param;
}

/* Under TCG the guest kernel's Spectre/Meltdown mitigations protect nothing: the emulated CPU
 * does not speculate, and the host CPU speculates through QEMU's translated code whatever
 * retpolines or RSB fills the guest ISA does. They only cost time (indirect calls through
 * thunks, RSB stuffing on each context switch): bench/boot measured ~10% less QEMU CPU for a
 * warm start and its first exec without them. Under KVM they stay. */
#define TCG_PARAMS " mitigations=off"

struct argv_buf {
    const char *v[MAX_ARGS];
    char *owned[MAX_OWNED];
    int n, nowned;
    int failed; /* out of memory or of slots */
};

static void add(struct argv_buf *a, const char *s)
{
    if (a->n < MAX_ARGS - 1)
        a->v[a->n++] = s;
    else
        a->failed = 1;
}

static const char *own(struct argv_buf *a, char *s)
{
    if (!s || a->nowned >= MAX_OWNED) {
        free(s);
        a->failed = 1;
        return "";
    }
    a->owned[a->nowned++] = s;
    return s;
}

static void argv_free(struct argv_buf *a)
{
    for (int i = 0; i < a->nowned; i++)
        free(a->owned[i]);
}

/* *out = a copy of a's vector (bl_strv_free), and a freed; BOXLITE_ENOMEM (while what) when
 * a failed to grow or the copy fails. */
static int argv_finish(char ***out, struct argv_buf *a, const char *what)
{
    char **v = a->failed ? NULL : bl_strv_dup(a->v);
    int rc = v ? 0 : bl_err(BOXLITE_ENOMEM, "out of memory %s", what);

    argv_free(a);
    if (rc == 0)
        *out = v;
    return rc;
}

/* A value inside a QEMU option list: commas are doubled. malloc'd. */
static char *qemu_escape(const char *s)
{
    size_t n = strlen(s), k = 0;
    char *out = malloc(2 * n + 1);

    for (size_t i = 0; out && i < n; i++) {
        out[k++] = s[i];
        if (s[i] == ',')
            out[k++] = ',';
    }
    if (out)
        out[k] = '\0';
    return out;
}

/* A guest path on the kernel command line: anything but [A-Za-z0-9/_.-] as %XX. */
static char *percent_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), k = 0;
    char *out = malloc(3 * n + 1);

    for (size_t i = 0; out && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '/' || c == '_' || c == '.' || c == '-') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    if (out)
        out[k] = '\0';
    return out;
}

/* The network: the box monitor (boxlite-shim) runs the user-mode stack and the egress
 * policy on the other end of fd NET_FD (QEMU's stream framing: a 4-byte length, a frame);
 * QEMU itself opens no host socket for the guest. Published ports are the shim's too. */
static void add_network(struct argv_buf *a, const struct bl_vm_config *c)
{
    add(a, "-netdev");
    add(a, own(a, bl_strdupf("stream,id=net0,addr.type=fd,addr.str=%d", NET_FD)));
    add(a, "-device");
    add(a, own(a, bl_strdupf("virtio-net-device,netdev=net0,mac=%s", c->mac)));
}

/* How QEMU keeps the guest's owners, modes and special files of a volume: in user.virtfs.*
 * xattrs of the host files ("mapped-xattr") where the host filesystem has user xattrs, else in
 * .virtfs_metadata files beside them ("mapped-file"). Either way the host inode stays a plain
 * file or directory owned by QEMU's user with modes 0600/0700 for what the guest creates: a
 * guest chmod 4755, chown or mknod never reaches the host inode (docs/security.md). */
static const char *volume_model(const char *path)
{
    char v[8];

    if (getxattr(path, "user.virtfs.uid", v, sizeof(v)) >= 0 || errno == ENODATA || errno == ERANGE)
        return "mapped-xattr";
    return "mapped-file";
}

/* The agent's spec of volume n: "volN,ro|rw,PATH" (PATH percent-encoded). malloc'd. */
static char *volume_spec(size_t n, const char *mode, const char *guest_path)
{
    char *guest = percent_encode(guest_path);
    char *spec =
        guest ? bl_strdupf("vol%zu,%s,%s", n, strcmp(mode, "ro") == 0 ? "ro" : "rw", guest) : NULL;

    free(guest);
    return spec;
}

/* One -fsdev + virtio-9p-device per volume; the agent mounts them (kernel command line, or a
 * template's attach). */
static void add_volumes(struct argv_buf *a, const struct bl_vm_config *c, char **cmdline)
{
    for (size_t i = 0, n = 0; c->volumes && c->volumes[i] && c->volumes[i + 1] && c->volumes[i + 2];
         i += 3, n++) {
        int ro = strcmp(c->volumes[i], "ro") == 0;
        char *path = qemu_escape(c->volumes[i + 1]);
        char *spec = c->template_mode ? NULL : volume_spec(n, c->volumes[i], c->volumes[i + 2]);
        char *more = NULL;
        add(a, "-fsdev");
        add(a, own(a, path ? bl_strdupf("local,id=vol%zu,path=%s,security_model=%s%s", n, path,
                                        volume_model(c->volumes[i + 1]), ro ? ",readonly=on" : "")
                           : NULL));
        add(a, "-device");
        add(a, own(a, bl_strdupf("virtio-9p-device,fsdev=vol%zu,mount_tag=vol%zu", n, n)));
        if (!c->template_mode) {
            more = *cmdline && spec ? bl_strdupf("%s boxlite.vol%zu=%s", *cmdline, n, spec) : NULL;
            free(*cmdline);
            *cmdline = more;
        }
        free(path);
        free(spec);
    }
}

int bl_vmm_volume_specs(char ***out, const struct bl_vm_config *c)
{
    struct argv_buf a = {0};

    for (size_t i = 0, n = 0; c->volumes && c->volumes[i] && c->volumes[i + 1] && c->volumes[i + 2];
         i += 3, n++)
        add(&a, own(&a, volume_spec(n, c->volumes[i], c->volumes[i + 2])));
    a.v[a.n] = NULL;
    return argv_finish(out, &a, "listing the volumes");
}

/* Guest RAM in a file (docs/snapshots.md): the box's own mapped shared, so a full snapshot
 * copies the file and migrates only device state (x-ignore-shared); or a full snapshot's
 * mapped private, so every box restored or forked from it shares its clean pages through
 * the page cache. The backend keeps the name "-m" gives it, microvm.ram, so streams saved
 * with RAM in them still load. */
static void add_memory(struct argv_buf *a, const struct bl_vm_config *c)
{
    char *path = qemu_escape(c->ram);

    add(a, "-object");
    add(a, own(a, path ? bl_strdupf("memory-backend-file,id=microvm.ram,size=%uM,mem-path=%s,"
                                    "share=%s%s",
                                    c->memory_mib, path, c->ram_private ? "off" : "on",
                                    c->ram_private && c->ram_cow ? ",x-cow=on" : "")
                       : NULL));
    free(path);
}

static pthread_mutex_t cow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char path[4096];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int has;
} cow_seen; /* the last QEMU asked about; guarded by cow_mu */

/* Whether st is the binary cow_seen describes. Caller holds cow_mu. */
static int cow_seen_is(const char *qemu, const struct stat *st)
{
    return strcmp(cow_seen.path, qemu) == 0 && cow_seen.dev == st->st_dev &&
           cow_seen.ino == st->st_ino && cow_seen.size == st->st_size &&
           cow_seen.mtime.tv_sec == st->st_mtim.tv_sec &&
           cow_seen.mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int bl_vmm_tb_idle_ms(void)
{
    const char *env = getenv("BOXLITE_TB_IDLE_MS");
    char *end;
    long v;

    if (!env || !*env)
        return BL_VMM_TB_IDLE_MS;
    v = strtol(env, &end, 10);
    return *end == '\0' && v >= 0 && v <= 86400000 ? (int)v : BL_VMM_TB_IDLE_MS;
}

int bl_vmm_qemu_has_cow(const char *qemu)
{
    static const char prop[] = "\0x-cow"; /* the property's name, NUL-terminated, in .rodata */
    struct stat st;
    void *map;
    int has = 0, fd = open(qemu, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        goto out;
    pthread_mutex_lock(&cow_mu);
    if (cow_seen_is(qemu, &st)) {
        has = cow_seen.has;
    } else {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            has = memmem(map, (size_t)st.st_size, prop, sizeof(prop)) != NULL;
            munmap(map, (size_t)st.st_size);
        }
        snprintf(cow_seen.path, sizeof(cow_seen.path), "%s", qemu);
        cow_seen.dev = st.st_dev;
        cow_seen.ino = st.st_ino;
        cow_seen.size = st.st_size;
        cow_seen.mtime = st.st_mtim;
        cow_seen.has = has;
    }
    pthread_mutex_unlock(&cow_mu);
out:
    if (fd >= 0)
        close(fd);
    return has;
}

/* The balloon reports freed guest pages: QEMU punches them out of the shared file, or drops
 * the private copies. Last of the devices: the virtio-mmio slots of the others stay where
 * full snapshots made before it expect them. */
static void add_balloon(struct argv_buf *a)
{
    add(a, "-device");
    add(a, "virtio-balloon-device,free-page-reporting=on");
}

int bl_vmm_ram_create(const char *path, unsigned mib)
{
    int fd, rc = 0;

    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return bl_err_errno(BOXLITE_EIO, errno, "create the RAM file %s", path);
    if (ftruncate(fd, (off_t)mib << 20) != 0)
        rc = bl_err_errno(BOXLITE_EIO, errno, "size the RAM file %s", path);
    close(fd);
    return rc;
}

char *bl_vmm_template_cmdline(const struct bl_vm_config *c)
{
    return bl_strdupf("console=ttyS0 quiet panic=-1 reboot=t%s%s boxlite.template=1",
                      c->kvm ? "" : tsc_param(), c->kvm ? "" : TCG_PARAMS);
}

/* The command line. Devices: one virtio-blk (the box disk), one virtio-serial port (the
 * agent channel), virtio-net unless the network is off, a virtio-9p per volume, the ISA
 * serial console to the shim (console.sock), the balloon; nothing else. */
static void build_argv(struct argv_buf *a, const struct bl_vm_config *c)
{
    char *cmdline = c->template_mode
                        ? bl_vmm_template_cmdline(c)
                        : bl_strdupf("console=ttyS0 quiet panic=-1 reboot=t%s%s "
                                     "boxlite.hostname=%s%s",
                                     c->kvm ? "" : tsc_param(), c->kvm ? "" : TCG_PARAMS,
                                     c->hostname, c->network_disabled ? "" : " boxlite.net=user");

    add(a, c->qemu);
    add(a, "-M");
    add(a, "microvm,x-option-roms=off,pit=off,pic=off,isa-serial=on,rtc=on,acpi=on,"
           "memory-backend=microvm.ram");
    add(a, "-accel");
    add(a, c->kvm ? "kvm" : own(a, bl_strdupf("tcg,tb-size=%u", BL_VMM_TB_MIB)));
    add_memory(a, c);
    add(a, "-cpu");
    add(a, c->kvm ? "host" : "max");
    add(a, "-m");
    add(a, own(a, bl_strdupf("%u", c->memory_mib)));
    add(a, "-smp");
    add(a, own(a, bl_strdupf("%u", c->cpus)));
    add(a, "-nodefaults");
    add(a, "-no-user-config");
    add(a, "-display");
    add(a, "none");
    add(a, "-no-reboot");
    add(a, "-kernel");
    add(a, c->kernel);
    add(a, "-initrd");
    add(a, c->initrd);
    /* the shim listens on console.sock in the box directory QEMU runs in and writes
     * console.log, capped (src/shim/console.c) */
    add(a, "-chardev");
    add(a, "socket,id=console,path=console.sock");
    add(a, "-serial");
    add(a, "chardev:console");
    add(a, "-drive");
    add(a, own(a, bl_strdupf("id=disk0,if=none,format=qcow2,file=%s", c->disk)));
    add(a, "-device");
    add(a, "virtio-blk-device,drive=disk0");
    add(a, "-device");
    add(a, "virtio-serial-device,max_ports=2");
    add(a, "-chardev");
    add(a, own(a, bl_strdupf("socket,id=agent,fd=%d", AGENT_FD)));
    add(a, "-device");
    add(a, "virtserialport,chardev=agent,name=boxlite.agent");
    add(a, "-chardev");
    add(a, "socket,id=qmp,fd=4");
    add(a, "-mon");
    add(a, "chardev=qmp,mode=control");
    if (c->incoming) {
        add(a, "-incoming");
        add(a, "defer"); /* the shim sets x-ignore-shared, then migrate-incoming fd:5 */
    }
    if (!c->network_disabled)
        add_network(a, c);
    add_volumes(a, c, &cmdline);
    add_balloon(a);
    add(a, "-append");
    add(a, own(a, cmdline));
    add(a, "-sandbox");
    add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    a->v[a->n] = NULL;
}

int bl_vmm_argv(char ***out, const struct bl_vm_config *cfg)
{
    struct argv_buf a = {0};

    build_argv(&a, cfg);
    return argv_finish(out, &a, "building the QEMU command line");
}

/* ---- what QEMU opens by name: the jail's specs (src/jail/jail.h) ---- */

struct chain_walk {
    struct argv_buf *a;
    int depth;
    const char *own;      /* the box's layers directory (bound rw) */
    char *dirs[MAX_DIRS]; /* directories bound read-only for layers below MAX_CHAIN */
    int ndirs;
};

/* Below MAX_CHAIN, the directory holding file, read-only, once (none for the box's own layers
 * directory, bound rw already): the jail's mounts stay bounded however deep a chain of
 * snapshots grows, and its base still reaches QEMU. 1 to stop (too many directories). */
static int add_backing_dir(struct chain_walk *w, const char *file)
{
    const char *slash = strrchr(file, '/');
    char *dir = slash && slash != file ? strndup(file, (size_t)(slash - file)) : NULL;

    if (!dir || strcmp(dir, w->own) == 0) {
        free(dir);
        return 0;
    }
    for (int i = 0; i < w->ndirs; i++)
        if (strcmp(w->dirs[i], dir) == 0) {
            free(dir);
            return 0;
        }
    if (w->ndirs == MAX_DIRS) {
        free(dir);
        return 1;
    }
    w->dirs[w->ndirs++] = dir;
    add(w->a, own(w->a, bl_strdupf("ro:%s", dir)));
    return 0;
}

/* Whether file lies directly in the box's own layers directory (bound rw as a whole). */
static int in_own_dir(const struct chain_walk *w, const char *file)
{
    size_t n = strlen(w->own);

    return n && strncmp(file, w->own, n) == 0 && file[n] == '/' && !strchr(file + n + 1, '/');
}

/* Below the top (added rw): each backing file read-only, down to a relative name (not made
 * by us), where the jail's list ends; past MAX_CHAIN files, the directories of other boxes'
 * and images' layers. The box's own older layers are always bound read-only one by one, at
 * any depth: its directory is writable, and its snapshots rest on them. */
static int add_backing(const char *file, const struct stat *st, void *ctx)
{
    struct chain_walk *w = ctx;

    (void)st;
    if (w->depth++ == 0)
        return 0;
    if (file[0] != '/')
        return 1;
    if (w->depth > MAX_CHAIN && !in_own_dir(w, file))
        return add_backing_dir(w, file);
    add(w->a, own(w->a, bl_strdupf("ro:%s", file)));
    return 0;
}

static void add_chain(struct argv_buf *a, const char *disk)
{
    struct chain_walk w = {a, 0, "", {NULL}, 0};
    char cur[4096];
    char *slash;

    snprintf(cur, sizeof(cur), "%s", disk);
    /* QEMU writes the top and, on a snapshot, a new layer beside it */
    slash = strrchr(cur, '/');
    if (slash && slash != cur) {
        *slash = '\0';
        add(a, own(a, bl_strdupf("rw:%s", cur)));
        w.own = own(a, strdup(cur));
        *slash = '/';
    }
    add(a, own(a, bl_strdupf("rw:%s", cur)));
    if (bl_disk_walk(disk, add_backing, &w) != 0)
        bl_err_clear(); /* an unreadable layer: QEMU says so when it opens it */
    for (int i = 0; i < w.ndirs; i++)
        free(w.dirs[i]);
}

/* A relocatable QEMU (the wheel's, docs/packaging.md) loads its libraries from ../lib and its
 * firmware from ../share/qemu beside its directory: the jail needs them, read-only (the
 * system's /usr/lib and /usr/share/qemu are in every jail already). */
static void add_qemu_tree(struct argv_buf *a, const char *qemu)
{
    static const char *const sub[] = {"lib", "share/qemu"};
    const char *slash = strrchr(qemu, '/');
    struct stat st;

    for (size_t i = 0; slash && i < 2; i++) {
        char *dir = bl_strdupf("%.*s/../%s", (int)(slash - qemu), qemu, sub[i]);
        char *real = dir ? realpath(dir, NULL) : NULL;
        int system =
            real && (strcmp(real, "/usr/lib") == 0 || strcmp(real, "/usr/share/qemu") == 0);
        if (real && !system && stat(real, &st) == 0 && S_ISDIR(st.st_mode))
            add(a, own(a, bl_strdupf("exe:%s", real)));
        free(real);
        free(dir);
    }
}

int bl_vmm_jail_specs(char ***out, const struct bl_vm_config *c)
{
    struct argv_buf a = {0};

    add(&a, own(&a, bl_strdupf("exe:%s", c->qemu)));
    add_qemu_tree(&a, c->qemu);
    add(&a, own(&a, bl_strdupf("ro:%s", c->kernel)));
    add(&a, own(&a, bl_strdupf("ro:%s", c->initrd)));
    add(&a, own(&a, bl_strdupf("rw:%s", c->console)));
    add_chain(&a, c->disk);
    for (size_t i = 0; c->volumes && c->volumes[i] && c->volumes[i + 1] && c->volumes[i + 2];
         i += 3)
        add(&a, own(&a, bl_strdupf("%s:%s", strcmp(c->volumes[i], "ro") == 0 ? "ro" : "rw",
                                   c->volumes[i + 1])));
    add(&a, own(&a, bl_strdupf("%s:%s",
                               c->ram_private && c->ram_cow ? "ro-ram"
                               : c->ram_private             ? "cow-ram"
                               : c->ram_loaded              ? "ram-loaded"
                                                            : "ram",
                               c->ram)));
    add(&a, own(&a, bl_strdupf("mem:%u", c->memory_mib)));
    add(&a, own(&a, bl_strdupf("cpus:%u", c->cpus)));
    a.v[a.n] = NULL;
    return argv_finish(out, &a, "listing the VMM's files");
}
