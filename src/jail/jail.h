/* jail.h — the jail around a box's VMM (Firecracker's jailer is the model): new user, mount,
 * pid, ipc, uts (and net) namespaces, an unprivileged uid, a private root holding only what
 * the VMM needs, rlimits, a cgroup, no_new_privs and a seccomp allowlist; then exec.
 * The VMM knows nothing of it: the paths it is given are the same inside (docs/security.md). */
#ifndef BL_JAIL_H
#define BL_JAIL_H

#include <sys/types.h>

struct bl_jail;

/* A jail for box `id` whose directory is `dir` (absolute; the jail's root is dir/jail).
 * specs: what the VMM needs, each "ro:PATH" or "rw:PATH" (bind-mounted at the same path),
 * "exe:PATH" (the VMM binary), "ram:PATH" (the guest RAM file, rw), "cow-ram:PATH" (a RAM
 * file other boxes map too: rw, as QEMU 7.2 wants it, and fallocate fails with EOPNOTSUPP so
 * nothing punches holes in it), "ro-ram:PATH" (such a file that QEMU opens read-only, x-cow:
 * bound read-only), "mem:MIB" (guest memory: sizes the address-space and memory limits)
 * or "cpus:N". BOXLITE_JAIL=0 in the environment makes a jail that does nothing (for debugging).
 * share_net: keep the host's network namespace (QEMU's -netdev user needs it today).
 * *out: bl_jail_free. Returns 0, or -1 with a message in err. */
int bl_jail_new(struct bl_jail **out, const char *id, const char *dir, char *const *specs,
                int nspecs, int share_net, char *err, size_t cap);

/* 1 when the jail is on (not BOXLITE_JAIL=0). */
int bl_jail_enabled(const struct bl_jail *j);

/* Like fork(). In the child (0): inside the namespaces and the cgroup, as the jail uid, in
 * its root (cwd /); open files are kept, host paths are gone (open what the child needs
 * from the host before). In the parent: the child's pid (in the parent's pid namespace), or
 * -1 (errno set, the child gone). A failure inside the child is said by bl_jail_exec. */
pid_t bl_jail_fork(struct bl_jail *j);

/* Why the parent's side of bl_jail_fork failed (a mount it could not prepare), or NULL.
 * Borrowed from j. */
const char *bl_jail_error(const struct bl_jail *j);

/* In the child, last: set the rlimits, no_new_privs, load the seccomp filter and
 * execv(argv[0], argv) (a path valid inside). Returns only on failure, having written why
 * to stderr. */
int bl_jail_exec(struct bl_jail *j, char **argv);

/* Remove the cgroup (after the child is reaped) and free. NULL is fine. */
void bl_jail_free(struct bl_jail *j);

/* Internal to src/jail: the seccomp allowlist (seccomp.c) and the cgroup (cgroup.c). */
int bl_jail_seccomp_load(int no_punch);
int bl_jail_seccomp_no_punch(void); /* only fallocate refused: for a jail that is off */
struct bl_jail_cgroup;
struct bl_jail_cgroup *bl_jail_cgroup_new(const char *id, unsigned long long mem_bytes,
                                          unsigned cpus, unsigned pids, int caller_root);
int bl_jail_cgroup_attach(struct bl_jail_cgroup *cg, pid_t pid);
/* v1 only: move the calling thread into the cgroup (what it clones then starts inside) and
 * back out; enter answers -1 (having moved nothing) where that cannot be done, and leave
 * undoes what enter did. */
int bl_jail_cgroup_enter(struct bl_jail_cgroup *cg);
void bl_jail_cgroup_leave(struct bl_jail_cgroup *cg);
void bl_jail_cgroup_free(struct bl_jail_cgroup *cg);

#endif
