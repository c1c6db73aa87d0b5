/*
 * The container filter is an allow-list: what reaches the host's kernel or
 * other processes is never on it, and it builds on this libseccomp.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "backends/container/syscall_filter.h"

static bool allowed(const char *name)
{
    for (const char *const *n = container_seccomp_allowed; *n; n++)
        if (strcmp(*n, name) == 0)
            return true;
    return false;
}

Test(syscall_filter, nothing_that_reaches_the_host_is_allowed)
{
    static const char *const never[] = {
        "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "mount_setattr",
        "setns", "unshare", "clone", "clone3", "personality", "socket", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "iopl", "ioperm", "syslog",
        "acct", "quotactl", "settimeofday", "clock_settime", "stime", "ptrace", "process_vm_readv",
        "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd", "keyctl", "add_key", "request_key", "bpf",
        "perf_event_open", "open_by_handle_at", "name_to_handle_at", "userfaultfd", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "fanotify_init", "set_mempolicy", "mbind", "get_mempolicy",
        "lsm_list_modules", "lsm_get_self_attr", "lsm_set_self_attr", "lookup_dcookie", "vhangup", "uselib",
        "sethostname", "setdomainname", "nfsservctl", "vm86", "vm86old", "statmount", "listmount",
    };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        cr_expect(!allowed(never[i]), "%s is on the allow-list", never[i]);
    cr_expect(allowed("read") && allowed("execve") && allowed("futex"), "the basics are allowed");
}

Test(syscall_filter, builds)
{
    struct seccomp_prog p;
    struct duet_err err = {0};
    cr_assert_eq(container_seccomp_build(&p, &err), 0, "%s", err.msg);
    cr_expect_gt(p.len, 100, "a program of %u instructions", p.len);
    container_seccomp_free(&p);
}
