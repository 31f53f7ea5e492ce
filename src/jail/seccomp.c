/* seccomp.c — the jail's seccomp allowlist (libseccomp): the system calls QEMU was seen to
 * make under TCG and KVM booting, exec'ing, serving 9p volumes and the user network, taking
 * disk and full snapshots and restoring them (strace -f -c); everything else fails with EPERM.
 * Threads only (clone needs CLONE_THREAD), sockets only AF_UNIX/INET/INET6, native ABI only. */
#include "jail.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/socket.h>

static const char *const allowed[] = {
    /* memory, threads, time, signals */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mbind", "get_mempolicy",
    "set_mempolicy", "membarrier", "futex", "set_robust_list", "get_robust_list", "set_tid_address",
    "rseq", "arch_prctl", "prctl", "seccomp", "sched_getaffinity", "sched_setaffinity",
    "sched_yield", "gettid", "getpid", "getppid", "tgkill", "exit", "exit_group", "restart_syscall",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "timer_create",
    "timer_settime", "timer_delete", "timerfd_create", "timerfd_settime", "getrandom", "getrlimit",
    "prlimit64", "sysinfo", "uname", "getuid", "geteuid", "getgid", "getegid", "umask", "getcwd",
    "execve",
    /* fds and events */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl", "lseek", "pipe2",
    "eventfd2", "signalfd4", "memfd_create", "poll", "ppoll", "select", "pselect6", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait",
    /* files: disks, the console, 9p volumes */
    "openat", "open", "access", "faccessat", "faccessat2", "newfstatat", "fstat", "stat", "lstat",
    "statx", "statfs", "fstatfs", "readlink", "readlinkat", "getdents64", "fchdir", "fsync",
    "fdatasync", "ftruncate", "fadvise64", "flock", "mkdirat", "unlinkat", "renameat", "renameat2",
    "linkat", "symlinkat", "mknodat", "fchmod", "fchmodat", "chmod", "fchown", "fchownat",
    "utimensat", "fgetxattr", "lgetxattr", "getxattr", "fsetxattr", "lsetxattr", "flistxattr",
    "llistxattr", "fremovexattr", "lremovexattr",
    /* sockets: the agent, QMP (fd passing), the user network and published ports */
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", NULL};

static int add_rules(scmp_filter_ctx ctx, int no_punch)
{
    static const int domains[] = {AF_UNIX, AF_INET, AF_INET6};
    int rc = 0;

    for (size_t i = 0; allowed[i] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    /* a RAM file other boxes map (jail.h "cow-ram:"): QEMU takes EOPNOTSUPP as "no
     * discard here" for its disks and leaves the file whole when the balloon reports */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, no_punch ? SCMP_ACT_ERRNO(EOPNOTSUPP) : SCMP_ACT_ALLOW,
                              SCMP_SYS(fallocate), 0);
    /* threads, never processes; clone3's flags sit in memory: ENOSYS makes glibc use clone */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)domains[i]));
    return rc;
}

int bl_jail_seccomp_load(int no_punch)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    int rc = ctx ? add_rules(ctx, no_punch) : -1;

    if (rc == 0)
        rc = seccomp_load(ctx);
    if (ctx)
        seccomp_release(ctx);
    if (rc < 0)
        errno = -rc > 0 ? -rc : EPERM;
    return rc == 0 ? 0 : -1;
}

int bl_jail_seccomp_no_punch(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = ctx ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(fallocate), 0) : -1;

    if (rc == 0)
        rc = seccomp_load(ctx);
    if (ctx)
        seccomp_release(ctx);
    if (rc < 0)
        errno = -rc > 0 ? -rc : EPERM;
    return rc == 0 ? 0 : -1;
}
