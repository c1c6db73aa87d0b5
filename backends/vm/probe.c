/*
 * probe.c - can this host run duet's VMs, and how fast?
 */
#include <dlfcn.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/cleanup.h"
#include "guest_image.h"
#include "virtiofs.h"
#include "vm.h"


/* Runs one real-mode instruction (hlt) in a throwaway VM.  A /dev/kvm that
 * answers ioctls is not enough: under some nested hypervisors it opens and
 * then never runs a guest, and every VM would hang.  The vCPU gets 2 s,
 * enforced by a timer signal that interrupts KVM_RUN. */
static void on_alarm(int sig)
{
    (void)sig;
}

static bool kvm_runs_guest_code(int kvm)
{
    bool ok = false;
    int vm = -1, vcpu = -1;
    void *mem = MAP_FAILED, *run = MAP_FAILED;
    long run_size = 0;
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    timer_t timer = NULL;
    bool have_timer = false;
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        goto out;
    mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        goto out;
    ((unsigned char *)mem)[0] = 0xf4;   /* hlt */
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0x1000, .memory_size = 0x1000, .userspace_addr = (uint64_t)(uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        goto out;
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu < 0 || run_size <= 0)
        goto out;
    run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        goto out;
    struct kvm_sregs sregs;
    struct kvm_regs regs = {.rip = 0, .rflags = 0x2};
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        goto out;
    sregs.cs.base = 0x1000;
    sregs.cs.selector = 0x100;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        goto out;
    sigaction(SIGALRM, &sa, &old);
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM};
    sev._sigev_un._tid = gettid();
    have_timer = timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0;
    struct itimerspec its = {.it_value = {.tv_sec = 2}};
    if (have_timer)
        timer_settime(timer, 0, &its, NULL);
    int rc = ioctl(vcpu, KVM_RUN, 0);
    ok = rc == 0 && ((struct kvm_run *)run)->exit_reason == KVM_EXIT_HLT;
    if (have_timer)
        timer_delete(timer);
    sigaction(SIGALRM, &old, NULL);
out:
    if (run != MAP_FAILED)
        munmap(run, (size_t)run_size);
    if (mem != MAP_FAILED)
        munmap(mem, 0x1000);
    if (vcpu >= 0)
        close(vcpu);
    if (vm >= 0)
        close(vm);
    return ok;
}

bool vm_kvm_usable(void)
{
    _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        struct stat st;
        return errno == EACCES && stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode);
    }
    return ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION && kvm_runs_guest_code(fd);
}

bool vm_find_guest_kernel(const char *explicit_path, char *out, size_t len)
{
    if (explicit_path) {
        snprintf(out, len, "%s", explicit_path);
        return access(explicit_path, R_OK) == 0;
    }
    struct utsname u;
    char running[320] = "", exe[PATH_MAX], installed[PATH_MAX + 32] = "", built[PATH_MAX + 32] = "";
    if (uname(&u) == 0)
        snprintf(running, sizeof(running), "/boot/vmlinuz-%s", u.release);
    /* The one installed with duet (PREFIX/bin/../lib/duet/kernel), or, run
     * from a build tree, the one the build fetched beside the binaries. */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(installed, sizeof(installed), "%s/../lib/duet/kernel/vmlinuz", exe);
            snprintf(built, sizeof(built), "%s/images/kernel/vmlinuz", exe);
        }
    }
    const char *const candidates[] = {installed, built, "/var/lib/duet/kernel/vmlinuz", running, "/boot/vmlinuz",
                                      "/vmlinuz"};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (!candidates[i][0] || access(candidates[i], R_OK) < 0)
            continue;
        /* Shown to the user: the kernel's own name, not a path through bin/.. */
        char real[PATH_MAX];
        snprintf(out, len, "%s", i < 2 && realpath(candidates[i], real) ? real : candidates[i]);
        return true;
    }
    return false;
}

/* libvirt prints every error to stderr unless told otherwise; duet reports
 * them itself, once, in its own words. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

/* The probe loads libvirt when it runs instead of linking it: libvirt and
 * the ~55 libraries it pulls in cost the `duet` command 15-20 ms of start-up
 * on every invocation, most of which never talk to libvirt. */
struct libvirt_syms {
    void *dl;
    __typeof__(virConnectOpenReadOnly) *open_ro;
    __typeof__(virConnectClose) *close;
    __typeof__(virGetLastErrorMessage) *last_error;
    __typeof__(virSetErrorFunc) *set_error_func;
};

static bool libvirt_load(struct libvirt_syms *l, char *why, size_t len)
{
    l->dl = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!l->dl) {
        snprintf(why, len, "%s", dlerror());
        return false;
    }
    l->open_ro = (__typeof__(l->open_ro))dlsym(l->dl, "virConnectOpenReadOnly");
    l->close = (__typeof__(l->close))dlsym(l->dl, "virConnectClose");
    l->last_error = (__typeof__(l->last_error))dlsym(l->dl, "virGetLastErrorMessage");
    l->set_error_func = (__typeof__(l->set_error_func))dlsym(l->dl, "virSetErrorFunc");
    if (!l->open_ro || !l->close || !l->last_error || !l->set_error_func) {
        snprintf(why, len, "libvirt.so.0 lacks the functions duet needs (libvirt 1.0.6 or newer)");
        dlclose(l->dl);
        return false;
    }
    return true;
}

/* Can libvirt's QEMU driver run embedded in duetd here?  It needs the
 * driver module, a QEMU binary, and the accounts libvirt looks up. */
static bool embedded_possible(char *why, size_t len)
{
    glob_t g;
    bool module = glob("/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so", 0, NULL, &g) == 0;
    globfree(&g);
    if (!module) {
        snprintf(why, len, "libvirt's QEMU driver is not installed; apt-get install libvirt-daemon-driver-qemu");
        return false;
    }
    bool qemu = false;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p && !qemu;) {
        const char *colon = strchrnul(p, ':');
        char full[512];
        snprintf(full, sizeof(full), "%.*s/qemu-system-x86_64", (int)(colon - p), p);
        qemu = access(full, X_OK) == 0;
        p = *colon ? colon + 1 : colon;
    }
    if (!qemu) {
        snprintf(why, len, "QEMU is not installed; apt-get install qemu-system-x86");
        return false;
    }
    if (!getpwnam("libvirt-qemu") || !getgrnam("kvm")) {
        snprintf(why, len,
                 "libvirt's QEMU driver needs the libvirt-qemu user and kvm group (make deps creates them, or "
                 "apt-get install libvirt-daemon-system)");
        return false;
    }
    return true;
}

int vm_backend_probe(const char *uri, const char *guest_kernel, struct driver_caps *caps, struct duet_err *err)
{
    (void)err;
    memset(caps, 0, sizeof(*caps));
    bool named = uri != NULL;
    if (!uri)
        uri = VM_DEFAULT_URI;
    snprintf(caps->uri, sizeof(caps->uri), "%s", uri);
    caps->kvm = vm_kvm_usable();
    caps->attach = true;   /* through duet-vminit: a rootfs or OCI image (placement.c) */
    caps->start_ms = caps->kvm ? DRIVER_EST_VM_START_KVM_MS : DRIVER_EST_VM_START_TCG_MS;
    caps->memory_overhead = caps->kvm ? DRIVER_EST_VM_OVERHEAD_KVM : DRIVER_EST_VM_OVERHEAD_TCG;
    caps->memory_floor = VM_MEMORY_FLOOR;
    caps->guest_kernel = vm_find_guest_kernel(guest_kernel, caps->guest_kernel_path, sizeof(caps->guest_kernel_path));
    char vfsd[PATH_MAX];
    caps->virtiofs = vm_virtiofsd_find(vfsd, sizeof(vfsd));
    caps->guest_virtiofs = caps->guest_kernel && vm_kernel_has_virtiofs(caps->guest_kernel_path);

    struct libvirt_syms lv;
    char dlwhy[256];
    if (!libvirt_load(&lv, dlwhy, sizeof(dlwhy))) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason), "libvirt is not installed");
        snprintf(caps->unavailable_fix, sizeof(caps->unavailable_fix),
                 "%s; install it with: apt-get install libvirt-daemon-driver-qemu qemu-system-x86", dlwhy);
        snprintf(caps->description, sizeof(caps->description), "unavailable");
        return 0;
    }
    lv.set_error_func(NULL, quiet_errors);
    /* Unnamed, the system daemon is asked only when its socket exists:
     * a client would otherwise wait on a daemon that is not there. */
    virConnectPtr conn = NULL;
    if (named || access("/run/libvirt/libvirt-sock", F_OK) == 0)
        conn = lv.open_ro(uri);
    if (!conn && !named) {
        char why[DUET_ERR_MSG_MAX];
        if (embedded_possible(why, sizeof(why))) {
            /* duetd runs libvirt's QEMU driver in-process; VMs keep running
             * across its restarts (docs/architecture.md). */
            caps->available = true;
            snprintf(caps->uri, sizeof(caps->uri), "qemu:///embed");
            snprintf(caps->description, sizeof(caps->description), "%s, embedded libvirt",
                     caps->kvm ? "kvm" : "qemu (no kvm)");
            return 0;
        }
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                 "no libvirt daemon answers and libvirt cannot run embedded");
        snprintf(caps->unavailable_fix, sizeof(caps->unavailable_fix), "%s", why);
        snprintf(caps->description, sizeof(caps->description), "unavailable");
        return 0;
    }
    if (!conn) {
        const char *why = lv.last_error();
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason), "libvirt does not answer at %s", uri);
        snprintf(caps->unavailable_fix, sizeof(caps->unavailable_fix),
                 "%s; start it with: systemctl start libvirtd, or virtlogd -d && libvirtd -d; or name no URI to "
                 "use duet's embedded libvirt",
                 why ? why : "no error given");
        snprintf(caps->description, sizeof(caps->description), "unavailable");
        return 0;   /* libvirt stays loaded: see below */
    }
    caps->available = true;
    snprintf(caps->description, sizeof(caps->description), "%s", caps->kvm ? "kvm" : "qemu (no kvm)");
    lv.close(conn);
    /* libvirt stays loaded: it registers thread-local state and atexit
     * handlers that must not outlive their code. */
    return 0;
}
