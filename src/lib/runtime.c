/* runtime.c — opening a runtime home ($BOXLITE_HOME or ~/.boxlite): its directory tree,
 * the log sink, and locating the installed files (guest files, boxlite-shim, a bundled QEMU)
 * relative to where libboxlite itself is installed, or in this build's tree. */
#include "runtime.h"
#include "image.h"
#include "store.h"
#include "box.h"
#include "db.h"
#include "error.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BL_GUEST_INSTALL_DIR
#define BL_GUEST_INSTALL_DIR "/usr/local/share/boxlite"
#endif
#ifndef BL_GUEST_BUILD_DIR
#define BL_GUEST_BUILD_DIR ""
#endif

BOXLITE_API const char *boxlite_version(void)
{
    return BOXLITE_VERSION;
}

void bl_log(boxlite_runtime *rt, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!rt || !rt->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rt->log(rt->log_ctx, level, msg);
}

static char *default_home(void)
{
    const char *env = getenv("BOXLITE_HOME");
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (env && *env)
        return strdup(env);
    if (!home || !*home) {
        pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home) { /* never a shared directory such as /tmp */
        bl_err(BOXLITE_EINVAL, "no home directory: set BOXLITE_HOME or HOME");
        return NULL;
    }
    return bl_strdupf("%s/.boxlite", home);
}

static int has_guest(const char *dir)
{
    char *p = bl_strdupf("%s/vmlinux", dir);
    int ok = p && access(p, R_OK) == 0;

    free(p);
    return ok;
}

/* ---- where the installed files are ----
 * An install root is a directory with share/boxlite/ in it: the directory of the object
 * libboxlite is part of (a wheel: boxlite/_core*.so beside share/ and libexec/), the one
 * above it (the wheel's boxlite/lib/libboxlite.so.0, which its CLI uses), or the prefix
 * above it (a C install: <prefix>/lib/<arch>/libboxlite.so). A build tree has none. */
static char *install_root;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory of the file libboxlite's code was loaded from; malloc'd, or NULL. */
static char *object_dir(void)
{
    Dl_info info;
    char *real, *slash;

    if (!dladdr((void *)boxlite_version, &info) || !info.dli_fname)
        return NULL;
    real = realpath(info.dli_fname, NULL);
    slash = real ? strrchr(real, '/') : NULL;
    if (slash)
        *slash = '\0';
    return real;
}

/* The install root's programs come before PATH's; a self-contained package (the wheel: it
 * has share/qemu, the data directory of the QEMU it carries) uses only its own QEMU and
 * qemu-img, so a missing or broken one is named rather than replaced by the machine's. */
static void set_tools(const char *root)
{
    static const char *const qemu[] = {"qemu-system-x86_64", "qemu-img", NULL};
    char *dir = bl_strdupf("%s/" BL_REL_LIBEXECDIR, root);
    char *data = bl_strdupf("%s/" BL_REL_DATADIR "/qemu", root);

    if (dir && data)
        bl_set_tool_dir(dir, is_dir(data) ? qemu : NULL);
    free(dir);
    free(data);
}

static void find_install_root(void)
{
    char *dir = object_dir();
    char *cands[3] = {dir ? strdup(dir) : NULL, dir ? bl_strdupf("%s/..", dir) : NULL,
                      dir ? bl_strdupf("%s/" BL_REL_PREFIX, dir) : NULL};

    for (size_t i = 0; i < 3 && !install_root; i++) {
        char *guest = cands[i] ? bl_strdupf("%s/" BL_REL_DATADIR "/boxlite", cands[i]) : NULL;
        if (guest && is_dir(guest))
            install_root = realpath(cands[i], NULL);
        free(guest);
    }
    if (install_root)
        set_tools(install_root);
    for (size_t i = 0; i < 3; i++)
        free(cands[i]);
    free(dir);
}

char *bl_install_file(const char *rel)
{
    pthread_once(&install_once, find_install_root);
    return install_root ? bl_strdupf("%s/%s", install_root, rel) : NULL;
}

/* $BOXLITE_GUEST_DIR, else the install root's, else the configured install directory, else
 * the build tree this was built in. */
static char *find_guest_dir(void)
{
    const char *env = getenv("BOXLITE_GUEST_DIR");
    char *installed;

    if (env && *env)
        return strdup(env);
    installed = bl_install_file(BL_REL_DATADIR "/boxlite");
    if (installed)
        return installed;
    if (has_guest(BL_GUEST_INSTALL_DIR))
        return strdup(BL_GUEST_INSTALL_DIR);
    if (BL_GUEST_BUILD_DIR[0] && has_guest(BL_GUEST_BUILD_DIR))
        return strdup(BL_GUEST_BUILD_DIR);
    return strdup(BL_GUEST_INSTALL_DIR);
}

/* path (the home, or a file in it) must be ours and writable by nobody else; a file must
 * be a regular file, not a link. A missing file is fine. */
static int check_owned(const char *path, int is_dir)
{
    struct stat st;

    if ((is_dir ? stat(path, &st) : lstat(path, &st)) != 0)
        return errno == ENOENT ? 0 : bl_err_errno(BOXLITE_EIO, errno, "stat %s", path);
    if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return bl_err(BOXLITE_EINVAL, "%s is not a %s: refused", path,
                      is_dir ? "directory" : "regular file");
    if (st.st_uid != geteuid())
        return bl_err(BOXLITE_EINVAL,
                      "%s is owned by uid %u, not by you (uid %u): refused (another user "
                      "could plant images, registries or boxes in it)",
                      path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return bl_err(BOXLITE_EINVAL,
                      "%s is writable by group or others (mode %04o): refused; run "
                      "chmod go-w %s",
                      path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

/* The home and the files that steer it: registries.json (where pulls go) and the store. */
static int check_home(const char *home)
{
    static const char *const files[] = {"registries.json", "boxlite.db"};
    static const char *const dirs[] = {"boxes", "images"};
    int rc = check_owned(home, 1);

    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char *p = bl_strdupf("%s/%s", home, dirs[i]);
        rc = p ? check_owned(p, 1) : BOXLITE_ENOMEM;
        free(p);
    }
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char *p = bl_strdupf("%s/%s", home, files[i]);
        rc = p ? check_owned(p, 0) : BOXLITE_ENOMEM;
        free(p);
    }
    return rc;
}

static int make_tree(const char *home)
{
    static const char *const sub[] = {"", "/boxes", "/images", "/images/rootfs"};
    int rc = 0;

    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]) && rc == 0; i++) {
        char *p = bl_strdupf("%s%s", home, sub[i]);
        rc = p ? bl_mkdir_p(p, 0700) : BOXLITE_ENOMEM;
        free(p);
    }
    return rc;
}

BOXLITE_API int boxlite_runtime_open(boxlite_runtime **out, const boxlite_runtime_options *opts)
{
    boxlite_runtime *rt = NULL;
    const char *accel;
    int rc = 0;

    bl_err_clear();
    if (!out)
        return bl_err(BOXLITE_EINVAL, "runtime open: out is NULL");
    if (opts && (opts->version < 1 || opts->version > BOXLITE_RUNTIME_OPTIONS_VERSION))
        return bl_err(BOXLITE_EINVAL, "runtime options of unknown version %u", opts->version);
    accel = opts && opts->version >= 3 ? opts->accel : NULL;
    if (accel && (!*accel || strcmp(accel, "auto") == 0))
        accel = NULL; /* then $BOXLITE_ACCEL, else auto */
    if (accel && strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0)
        return bl_err(BOXLITE_EINVAL, "accel \"%s\": expected auto, kvm or tcg", accel);
    rt = calloc(1, sizeof(*rt));
    if (!rt)
        return bl_err(BOXLITE_ENOMEM, "out of memory");
    rt->home = opts && opts->home_dir && *opts->home_dir ? strdup(opts->home_dir) : default_home();
    rt->guest_dir = find_guest_dir();
    if (opts) {
        rt->log = opts->log;
        rt->log_ctx = opts->log_ctx;
    }
    rt->accel = accel ? strdup(accel) : NULL;
    if (!rt->home || !rt->guest_dir || (accel && !rt->accel)) {
        rc = rt->home ? bl_err(BOXLITE_ENOMEM, "out of memory") : BOXLITE_EINVAL;
        goto out;
    }
    rc = check_home(rt->home);
    if (rc == 0)
        rc = make_tree(rt->home);
    if (rc == 0)
        rc = check_home(rt->home);
    if (rc == 0)
        rc = bl_images_init(rt, opts);
    if (rc == 0)
        rc = bl_db_open(&rt->db, rt->home); /* no repair here: opening stays cheap (doctor) */
    if (rc == 0)
        rc = bl_store_records_migrate(rt->home, rt->db);
    if (rc != 0)
        bl_err_wrap(rc, "open runtime home %s", rt->home);
out:
    if (rc != 0)
        boxlite_runtime_free(rt);
    else
        *out = rt;
    return rc;
}

BOXLITE_API void boxlite_runtime_free(boxlite_runtime *rt)
{
    if (!rt)
        return;
    bl_db_close(rt->db);
    bl_images_free(rt);
    free(rt->home);
    free(rt->guest_dir);
    free(rt->accel);
    free(rt);
}

BOXLITE_API int boxlite_runtime_doctor(boxlite_runtime *rt, int fix, boxlite_doctor_fn report,
                                       void *ctx, unsigned *found_out)
{
    struct bl_repair rp = {fix, report, ctx, 0};

    bl_err_clear();
    if (!rt)
        return bl_err(BOXLITE_EINVAL, "doctor: rt is NULL");
    bl_box_doctor(rt, &rp);
    bl_images_doctor(rt, &rp);
    if (found_out)
        *found_out = rp.found;
    return 0;
}

BOXLITE_API const char *boxlite_runtime_home(const boxlite_runtime *rt)
{
    return rt ? rt->home : "";
}

int bl_runtime_guest_file(char **out, const boxlite_runtime *rt, const char *name)
{
    char *p = bl_strdupf("%s/%s", rt->guest_dir, name);

    if (!p)
        return BOXLITE_ENOMEM;
    if (access(p, R_OK) != 0) {
        int rc = bl_err_errno(BOXLITE_ENOTFOUND, errno,
                              "guest file %s (build the guest, or set BOXLITE_GUEST_DIR)", p);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}
