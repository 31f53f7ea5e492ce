/* runtime.h — the runtime object (one $BOXLITE_HOME): its directories, its log sink and
 * where the guest kernel, initramfs and default image of this build are found. */
#ifndef BL_RUNTIME_H
#define BL_RUNTIME_H

#include "boxlite.h"

struct bl_db;
struct bl_images;

struct boxlite_runtime {
    char *home;
    struct bl_db *db;
    char *guest_dir; /* kernel, initramfs, default image */
    boxlite_log_fn log;
    void *log_ctx;
    char *accel; /* the accel option: NULL (auto, or $BOXLITE_ACCEL), "kvm", "tcg" */
    int accel_noticed;
    int kvm_broken;           /* KVM opened but QEMU failed under it: use TCG */
    struct bl_images *images; /* image.c: registry settings */
};

enum { BL_LOG_DEBUG = 0, BL_LOG_INFO = 1, BL_LOG_WARN = 2, BL_LOG_ERROR = 3 };

void bl_log(boxlite_runtime *rt, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path of a file of the guest directory (e.g. "vmlinuz"); *out malloc'd. ENOTFOUND when
 * it is missing. */
int bl_runtime_guest_file(char **out, const boxlite_runtime *rt, const char *name);

/* The layout below an install root (meson passes the configured one). */
#ifndef BL_REL_PREFIX /* from the library's directory to the install prefix, e.g. "../.." */
#define BL_REL_PREFIX ".."
#endif
#ifndef BL_REL_DATADIR
#define BL_REL_DATADIR "share"
#endif
#ifndef BL_REL_LIBEXECDIR
#define BL_REL_LIBEXECDIR "libexec"
#endif

/* rel (e.g. "libexec/boxlite-shim") below the install root this library runs from, malloc'd;
 * NULL when it runs from a build tree (or out of memory). Thread-safe. */
char *bl_install_file(const char *rel);

#endif
