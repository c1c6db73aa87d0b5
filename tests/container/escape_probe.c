/*
 * escape_probe - tries, from inside a container, the ways out of it.
 *
 * Linked statically and copied into the test rootfs.  Each attempt prints
 * one line, "BLOCKED name (why)" or "ESCAPED name (what happened)"; the
 * container tests fail on any ESCAPED.  Every attempt is harmless if it
 * did succeed on this host (reboot asks only to disable Ctrl-Alt-Del,
 * settimeofday sets the time it already is, modules are NULL images).
 *
 *   escape_probe MARKER   MARKER: a file that exists on the host only
 *   escape_probe --watch SECONDS
 *       watches for processes that appear in the container (an exec's
 *       helper, a health check) and takes what it can of them, as an
 *       attacker racing the daemon would: an fd on each /proc/PID/exe
 *       ("EXE PID DEV:INO"), and every descriptor it can open through
 *       /proc/PID/fd ("FD PID N TARGET").  The tests compare what it got
 *       with the host's binaries and the daemon's files.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <dirent.h>
#include <unistd.h>

static int escaped;

/* Blocked means refused: EPERM, EACCES, EROFS, or ENOENT where the path is
 * meant to be absent or masked.  Any other error (EINVAL, EFAULT, EBUSY)
 * means the call reached the kernel's own logic: counted as an escape. */
static int refused(int e, const char *allowed)
{
    return e == EPERM || e == EACCES || e == EROFS || (e == ENOENT && strchr(allowed, 'n'));
}

static void report(const char *name, int rc, int e, const char *allowed)
{
    if (rc < 0 && refused(e, allowed)) {
        printf("BLOCKED %s (%s)\n", name, strerror(e));
    } else {
        printf("ESCAPED %s (%s)\n", name, rc < 0 ? strerror(e) : "the call succeeded");
        escaped++;
    }
    fflush(stdout);
}

/* Runs fn in a child so that an attempt that changes this process (chroot,
 * unshare) does not affect the next one.  allowed: "n" when ENOENT is a
 * refusal (masked or absent paths), "" otherwise. */
static void in_child(const char *name, int (*fn)(const char *), const char *arg, const char *allowed)
{
    pid_t p = fork();
    if (p == 0) {
        errno = 0;
        int rc = fn(arg);
        int e = errno;
        report(name, rc, e, allowed);
        _exit(rc < 0 && refused(e, allowed) ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
        escaped++;
}

static int try_mount(const char *a) { (void)a; return mount("tmpfs", "/mnt", "tmpfs", 0, NULL); }
static int try_umount_proc(const char *a) { (void)a; return umount2("/proc", MNT_DETACH); }
static int try_pivot(const char *a)
{
    (void)a;
    mkdir("/tmp/newroot", 0755);
    return (int)syscall(SYS_pivot_root, "/tmp", "/tmp/newroot");
}
static int try_reboot(const char *a) { (void)a; return reboot(RB_DISABLE_CAD); }
static int try_kexec(const char *a) { (void)a; return (int)syscall(SYS_kexec_load, 0, 0, NULL, 0); }
static int try_init_module(const char *a) { (void)a; return (int)syscall(SYS_init_module, NULL, 0, ""); }
static int try_finit_module(const char *a)
{
    (void)a;
    int fd = open("/bin/busybox", O_RDONLY);
    return (int)syscall(SYS_finit_module, fd, "", 0);
}
static int try_delete_module(const char *a) { (void)a; return (int)syscall(SYS_delete_module, "duet_absent_module", O_NONBLOCK); }
static int try_unshare_user(const char *a) { (void)a; return unshare(CLONE_NEWUSER); }
static int try_clone_user(const char *a)
{
    (void)a;
    pid_t p = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid(p, NULL, 0);
    return p < 0 ? -1 : 0;
}
static int try_unshare_mnt(const char *a) { (void)a; return unshare(CLONE_NEWNS); }
static int try_ptrace_init(const char *a)
{
    (void)a;
    int rc = (int)ptrace(PTRACE_ATTACH, 1, NULL, NULL);
    if (rc == 0) {
        /* It worked (protection off): let pid 1 go again, or the container hangs. */
        int e = errno;
        waitpid(1, NULL, __WALL);
        ptrace(PTRACE_DETACH, 1, NULL, NULL);
        errno = e;
    }
    return rc;
}
static int try_proc1_mem(const char *a) { (void)a; return open("/proc/1/mem", O_RDONLY); }
static int try_proc_sys(const char *a)
{
    (void)a;
    int fd = open("/proc/sys/kernel/hostname", O_WRONLY);
    if (fd < 0)
        return -1;
    return (int)write(fd, "pwned\n", 6);
}
static int try_sysrq(const char *a)
{
    (void)a;
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    return fd;   /* opening for write is already too much */
}
static int try_sys_write(const char *a)
{
    (void)a;
    int fd = open("/sys/kernel/uevent_helper", O_WRONLY);
    if (fd < 0)
        fd = open("/sys/kernel/profiling", O_WRONLY);
    return fd;
}
static int try_kcore(const char *a)
{
    (void)a;
    int fd = open("/proc/kcore", O_RDONLY);
    if (fd < 0)
        return -1;
    char buf[64];
    errno = ENOENT;   /* masked by /dev/null: reads nothing */
    return read(fd, buf, sizeof(buf)) > 0 ? 0 : -1;
}
static int try_mknod_block(const char *a) { (void)a; return mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)); }
static int try_dev_mem(const char *a) { (void)a; return open("/dev/mem", O_RDONLY); }
static int try_raw_socket(const char *a) { (void)a; return socket(AF_INET, SOCK_RAW, IPPROTO_ICMP); }
static int try_packet_socket(const char *a) { (void)a; return socket(AF_PACKET, SOCK_RAW, 0); }
static int try_settime(const char *a)
{
    (void)a;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return settimeofday(&tv, NULL);
}
static int try_clock_settime(const char *a)
{
    (void)a;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return clock_settime(CLOCK_REALTIME, &ts);
}
static int try_host_procs(const char *a)
{
    (void)a;
    /* Any process beyond our own few means the host's are visible. */
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
            n++;
    if (d)
        closedir(d);
    errno = EPERM;
    return n > 10 ? 0 : -1;
}
static int try_chroot_escape(const char *marker)
{
    /* The classic: chroot into a subdirectory, climb past it, chroot back. */
    mkdir("/tmp/jail", 0755);
    if (chroot("/tmp/jail") < 0)
        return -1;
    for (int i = 0; i < 64; i++)
        if (chdir("..") < 0)
            break;
    if (chroot(".") < 0)
        return -1;
    errno = ENOENT;
    return access(marker, F_OK);
}
static int try_marker(const char *marker) { errno = ENOENT; return access(marker, F_OK); }
static int try_keyctl(const char *a) { (void)a; return (int)syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0); }
static int try_add_key(const char *a) { (void)a; return (int)syscall(SYS_add_key, "user", "duet", "x", 1, KEY_SPEC_PROCESS_KEYRING); }
static int try_bpf(const char *a)
{
    (void)a;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return (int)syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
}
static int try_perf(const char *a)
{
    (void)a;
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof(pe));
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof(pe);
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    return (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}
static int try_open_by_handle(const char *a)
{
    (void)a;
    char buf[sizeof(struct file_handle) + 8];
    struct file_handle *h = (struct file_handle *)buf;
    h->handle_bytes = 8;
    h->handle_type = 1;
    memset(h->f_handle, 0, 8);
    return (int)syscall(SYS_open_by_handle_at, AT_FDCWD, h, O_RDONLY);
}
static int try_setns(const char *a)
{
    (void)a;
    int fd = open("/proc/1/ns/mnt", O_RDONLY);
    if (fd < 0)
        return -1;
    return setns(fd, 0);
}
static int try_swapon(const char *a) { (void)a; return swapon("/tmp/swap", 0); }
static int try_acct(const char *a) { (void)a; return acct("/tmp/acct"); }
static int try_iopl(const char *a) { (void)a; return (int)syscall(SYS_iopl, 3); }
static int try_userfaultfd(const char *a) { (void)a; return (int)syscall(SYS_userfaultfd, 0); }
static int try_io_uring(const char *a)
{
    (void)a;
    char params[120];
    memset(params, 0, sizeof(params));
    return (int)syscall(SYS_io_uring_setup, 1, params);
}
static int try_fsopen(const char *a) { (void)a; return (int)syscall(SYS_fsopen, "tmpfs", 0); }
/* Calls a deny-list lets through (Docker's allow-list refuses them). */
static int try_no_randomize(const char *a) { (void)a; return (int)syscall(SYS_personality, 0x0040000UL); }
static int try_fanotify(const char *a) { (void)a; return (int)syscall(SYS_fanotify_init, 0x200 /* FAN_REPORT_FID */, 0); }
static int try_set_mempolicy(const char *a) { (void)a; return (int)syscall(SYS_set_mempolicy, 0, NULL, 0); }
static int try_lsm_list(const char *a)
{
    (void)a;
    uint64_t ids[16];
    uint32_t size = sizeof(ids);
    return (int)syscall(461 /* lsm_list_modules, x86_64 */, ids, &size, 0);
}
/* A syscall number no kernel has yet: an allow-list refuses what it does
 * not know (EPERM); a deny-list passes it to the kernel (ENOSYS). */
static int try_future_syscall(const char *a) { (void)a; return (int)syscall(1000); }
static int try_sys_admin_cap(const char *a)
{
    (void)a;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long eff = 0;
    while (f && fgets(line, sizeof(line), f))
        sscanf(line, "CapEff: %llx", &eff);
    if (f)
        fclose(f);
    errno = EPERM;
    /* CAP_SYS_ADMIN (21), CAP_NET_RAW (13), CAP_MKNOD (27), CAP_SYS_PTRACE (19), CAP_SYS_MODULE (16) */
    unsigned long long bad = (1ULL << 21) | (1ULL << 13) | (1ULL << 27) | (1ULL << 19) | (1ULL << 16);
    return (eff & bad) ? 0 : -1;
}

/* --fork-bomb: fork until the kernel refuses, forever; every child sleeps.
 * Stopped only by the pids limit and, in the end, by destroy. */
static _Noreturn void fork_bomb(void)
{
    for (;;) {
        pid_t p = fork();
        if (p == 0)
            for (;;)
                pause();
        if (p < 0)
            usleep(10000);
    }
}

/* Each pid is taken once (reused pids are rare in a short watch); one
 * that refused is tried again on every pass, as it may change (a fork
 * that is about to exec is still its parent's image). */
#define WATCH_MAX 4096
static int watch_seen[WATCH_MAX];
static size_t watch_n;

static int watch_seen_pid(int pid)
{
    for (size_t i = 0; i < watch_n; i++)
        if (watch_seen[i] == pid)
            return 1;
    return 0;
}

static void watch_take(int pid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/exe", pid);
    int fd = open(p, O_PATH | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0)
            printf("EXE %d %llu:%llu\n", pid, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        /* Kept open, as the attack keeps it to write the file later. */
        if (watch_n < WATCH_MAX)
            watch_seen[watch_n++] = pid;
    }
    snprintf(p, sizeof(p), "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char fp[320], target[256];
            snprintf(fp, sizeof(fp), "/proc/%d/fd/%s", pid, e->d_name);
            ssize_t n = readlink(fp, target, sizeof(target) - 1);
            target[n > 0 ? n : 0] = '\0';
            int o = open(fp, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
            if (o >= 0 || errno == ENXIO || errno == ELOOP)
                printf("FD %d %s %s\n", pid, e->d_name, target);
            if (o >= 0)
                close(o);
        }
        closedir(d);
    }
    fflush(stdout);
}

static int watch(int seconds)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int self = getpid();
    printf("WATCHING\n");
    fflush(stdout);
    do {
        DIR *d = opendir("/proc");
        if (!d)
            return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == self || watch_seen_pid(pid))
                continue;
            watch_take(pid);
        }
        closedir(d);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < seconds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fork-bomb") == 0)
        fork_bomb();
    if (argc > 2 && strcmp(argv[1], "--watch") == 0)
        return watch(atoi(argv[2]));
    const char *marker = argc > 1 ? argv[1] : "/nonexistent-marker";
    struct {
        const char *name;
        int (*fn)(const char *);
        const char *allowed;
    } tries[] = {
        {"mount", try_mount, ""},
        {"umount-proc", try_umount_proc, ""},
        {"pivot_root", try_pivot, ""},
        {"reboot", try_reboot, ""},
        {"kexec_load", try_kexec, ""},
        {"init_module", try_init_module, ""},
        {"finit_module", try_finit_module, ""},
        {"delete_module", try_delete_module, ""},
        {"unshare-user-ns", try_unshare_user, ""},
        {"clone-user-ns", try_clone_user, ""},
        {"unshare-mount-ns", try_unshare_mnt, ""},
        {"ptrace-pid-1", try_ptrace_init, ""},
        {"read-pid-1-memory", try_proc1_mem, "n"},
        {"write-proc-sys", try_proc_sys, "n"},
        {"open-sysrq-trigger", try_sysrq, "n"},
        {"write-sys", try_sys_write, "n"},
        {"read-proc-kcore", try_kcore, "n"},
        {"mknod-block-device", try_mknod_block, ""},
        {"open-dev-mem", try_dev_mem, "n"},
        {"raw-socket", try_raw_socket, ""},
        {"packet-socket", try_packet_socket, ""},
        {"settimeofday", try_settime, ""},
        {"clock_settime", try_clock_settime, ""},
        {"see-host-processes", try_host_procs, ""},
        {"see-host-files", try_marker, "n"},
        {"chroot-escape", try_chroot_escape, "n"},
        {"keyctl", try_keyctl, ""},
        {"add_key", try_add_key, ""},
        {"bpf", try_bpf, ""},
        {"perf_event_open", try_perf, ""},
        {"open_by_handle_at", try_open_by_handle, ""},
        {"setns", try_setns, "n"},
        {"swapon", try_swapon, ""},
        {"acct", try_acct, ""},
        {"iopl", try_iopl, ""},
        {"userfaultfd", try_userfaultfd, ""},
        {"io_uring_setup", try_io_uring, ""},
        {"fsopen", try_fsopen, ""},
        {"personality-no-randomize", try_no_randomize, ""},
        {"fanotify_init", try_fanotify, ""},
        {"set_mempolicy", try_set_mempolicy, ""},
        {"lsm_list_modules", try_lsm_list, ""},
        {"future-syscall", try_future_syscall, ""},
        {"dangerous-capabilities", try_sys_admin_cap, ""},
    };
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
        in_child(tries[i].name, tries[i].fn, marker, tries[i].allowed);
    printf("DONE %d escaped of %zu\n", escaped, sizeof(tries) / sizeof(tries[0]));
    return escaped ? 1 : 0;
}
