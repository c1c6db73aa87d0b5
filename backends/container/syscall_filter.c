/*
 * syscall_filter.c - the syscalls a container may make.
 *
 * An allow-list, as Docker's default profile is: a call that is not named
 * here (a new kernel's syscall among them) fails with EPERM without
 * reaching the kernel's code for it.  The list follows Docker's, with the
 * same argument rules (personality, clone, socket), and is stricter where
 * duet needs less: no io_uring (its operations bypass this filter's view),
 * no ptrace, process_vm_* or name_to_handle_at, no user namespaces.
 * Calls that Docker allows only with a capability a container never has
 * here (mount, bpf, perf_event_open, unshare of namespaces, settimeofday,
 * modules, iopl, ...) are simply not listed.  Combined with the capability
 * set (caps.c), a call the filter lets through still needs a capability
 * the container lacks when it would touch the host.  docs/security.md
 * lists the differences.
 */
#include "syscall_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/seccomp.h>

/* Allowed with any arguments.  Names this libseccomp does not know, or
 * that are not syscalls of an architecture, are skipped (denied there). */
const char *const container_seccomp_allowed[] = {
    /* files and directories */
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "flock",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat",
    "getcwd", "getdents", "getdents64", "lchown", "lchown32", "link", "linkat", "_llseek", "lseek", "lstat",
    "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat", "openat2", "pread64",
    "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat",
    "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee",
    "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
    "vmsplice", "write", "writev", "cachestat", "chroot",
    /* extended attributes */
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr",
    "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    /* waiting for files and events */
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "_newselect", "pause", "poll", "ppoll", "ppoll_time64", "pselect6",
    "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    /* asynchronous I/O (not io_uring) */
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
    /* memory */
    "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2", "mlockall",
    "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "mseal",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "map_shadow_stack",
    /* processes, threads, signals */
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "vfork",
    "get_robust_list", "set_robust_list", "get_thread_area", "set_thread_area", "set_tid_address", "gettid",
    "getpid", "getppid", "getpgid", "getpgrp", "getsid", "setsid", "setpgid", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "kill", "tgkill", "tkill", "modify_ldt", "pidfd_open", "pidfd_send_signal",
    "prctl", "process_mrelease", "restart_syscall", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn", "wait4", "waitid", "waitpid",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self",
    /* futexes */
    "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
    /* users, groups, limits */
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
    "getrlimit", "setrlimit", "prlimit64", "ugetrlimit", "getrusage", "times",
    /* time (reading it; setting it is the host's) */
    "alarm", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "getitimer", "setitimer", "gettimeofday", "nanosleep", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    /* sockets (socket itself has a rule below) */
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
    "setsockopt", "shutdown", "socketcall", "socketpair",
    /* System V and POSIX IPC (the container's own namespace) */
    "ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    /* the rest */
    "getcpu", "getrandom", "ioctl", "pipe", "pipe2", "sysinfo", "uname", "adjtimex", "clock_adjtime",
    "clock_adjtime64",
    NULL,
};

/* Namespace flags of clone and unshare: a container makes none (a user
 * namespace would give it every capability again inside). */
#define NS_FLAGS                                                                                              \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
     CLONE_NEWTIME)

/* personality(2) values a program may set: the default, 32-bit uname,
 * 2.6-style uname and both, and the query (0xffffffff).  Turning off
 * address randomisation (ADDR_NO_RANDOMIZE) is not among them. */
static const unsigned long personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffffUL};

int container_seccomp_build(struct seccomp_prog *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return duet_err_set(err, ENOMEM, "seccomp: cannot create a filter");
    int rc = 0, memfd = -1;
    /* The same rules for 32-bit x86 and x32 calls, which a process can make
     * from a 64-bit binary: a native-only filter would let them through. */
    if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && rc != -EEXIST)
        goto fail;
    if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && rc != -EEXIST)
        goto fail;
    for (const char *const *n = container_seccomp_allowed; *n; n++) {
        int nr = seccomp_syscall_resolve_name(*n);
        if (nr == __NR_SCMP_ERROR)
            continue;   /* unknown to this libseccomp: stays denied */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc < 0 && rc != -EDOM)   /* -EDOM: not a syscall on this arch */
            goto fail;
    }
    for (size_t i = 0; i < sizeof(personalities) / sizeof(personalities[0]); i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                   SCMP_A0(SCMP_CMP_EQ, personalities[i]))) < 0)
            goto fail;
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0))) < 0)
        goto fail;
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0))) < 0)
        goto fail;
    /* clone3 passes its flags in memory the filter cannot read: ENOSYS
     * makes libc fall back to clone, which the rule above sees. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0 && rc != -EDOM)
        goto fail;
    /* Every socket family but vsock, which reaches the hypervisor's host. */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_VSOCK))) < 0)
        goto fail;

    memfd = memfd_create("duet-seccomp", MFD_CLOEXEC);
    if (memfd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = seccomp_export_bpf(ctx, memfd)) < 0)
        goto fail;
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) || size / (off_t)sizeof(struct sock_filter) > 65535) {
        rc = -EINVAL;
        goto fail;
    }
    out->insns = malloc((size_t)size);
    if (!out->insns)
        abort();
    if (pread(memfd, out->insns, (size_t)size, 0) != size) {
        rc = -EIO;
        goto fail;
    }
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    close(memfd);
    seccomp_release(ctx);
    return 0;
fail:
    if (memfd >= 0)
        close(memfd);
    seccomp_release(ctx);
    container_seccomp_free(out);
    return duet_err_set(err, -rc, "seccomp: cannot build the container filter: %s", strerror(-rc));
}

void container_seccomp_free(struct seccomp_prog *p)
{
    free(p->insns);
    p->insns = NULL;
    p->len = 0;
}

