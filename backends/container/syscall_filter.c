/*
 * syscall_filter.c - deny the syscalls that reach the kernel or the host.
 *
 * The policy is "allow by default, deny what is dangerous", returning EPERM
 * as Docker's profile does.  Combined with the capability set (caps.c) it
 * gives the protection of Docker's default profile: a call the filter lets
 * through still needs a capability the container does not have when it
 * would touch the host (mount needs CAP_SYS_ADMIN, and so on).  The filter
 * is the second wall, for calls that need no capability at all (unshare of
 * a user namespace, keyctl, bpf on some kernels, io_uring) or where a
 * kernel bug would make the first wall moot.
 */
#include "syscall_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/seccomp.h>

const char *const container_seccomp_denied[] = {
    /* kernel code and the machine */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
    "get_kernel_syms", "query_module", "reboot", "swapon", "swapoff", "iopl", "ioperm", "syslog",
    "acct", "quotactl", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vhangup",
    /* mounts and roots: the container's filesystem is set up before it runs */
    "mount", "umount", "umount2", "pivot_root", "mount_setattr", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick",
    /* clocks shared with the host */
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
    /* other processes' memory and namespaces */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "setns",
    /* kernel keyrings, BPF, perf, handles that bypass path checks */
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "open_by_handle_at", "name_to_handle_at",
    "userfaultfd",
    /* io_uring: a large attack surface that bypasses this filter's view */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* 32-bit x86 only */
    "vm86", "vm86old",
    NULL,
};

int container_seccomp_build(struct seccomp_prog *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return duet_err_set(err, ENOMEM, "seccomp: cannot create a filter");
    int rc = 0, memfd = -1;
    /* The same rules for 32-bit x86 and x32 calls, which a process can make
     * from a 64-bit binary: a native-only filter would let them through. */
    if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && rc != -EEXIST)
        goto fail;
    if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && rc != -EEXIST)
        goto fail;
    for (const char *const *n = container_seccomp_denied; *n; n++) {
        int nr = seccomp_syscall_resolve_name(*n);
        if (nr == __NR_SCMP_ERROR)
            continue;   /* unknown to this libseccomp: nothing to deny */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0 && rc != -EDOM)   /* -EDOM: not a syscall on this arch */
            goto fail;
    }
    /* New user namespaces: unprivileged processes may create them, and
     * inside one they hold every capability again. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
    if (rc < 0)
        goto fail;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
    if (rc < 0)
        goto fail;
    /* clone3 passes its flags in memory the filter cannot read: ENOSYS
     * makes libc fall back to clone, which the rule above sees. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0 && rc != -EDOM)
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

int container_seccomp_apply(const struct seccomp_prog *p)
{
    struct sock_fprog prog = {.len = p->len, .filter = p->insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}
