/*
 * probe.c - can this host run duet's VMs, and how fast?
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "vm.h"


bool vm_kvm_usable(void)
{
    _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        struct stat st;
        return errno == EACCES && stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode);
    }
    return ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
}

static bool find_guest_kernel(const char *explicit_path, char *out, size_t len)
{
    if (explicit_path) {
        snprintf(out, len, "%s", explicit_path);
        return access(explicit_path, R_OK) == 0;
    }
    struct utsname u;
    char running[320] = "";
    if (uname(&u) == 0)
        snprintf(running, sizeof(running), "/boot/vmlinuz-%s", u.release);
    const char *const candidates[] = {"/var/lib/duet/kernel/vmlinuz", running, "/boot/vmlinuz", "/vmlinuz"};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
        if (candidates[i][0] && access(candidates[i], R_OK) == 0) {
            snprintf(out, len, "%s", candidates[i]);
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

int vm_backend_probe(const char *uri, const char *guest_kernel, struct driver_caps *caps, struct duet_err *err)
{
    (void)err;
    memset(caps, 0, sizeof(*caps));
    if (!uri)
        uri = VM_DEFAULT_URI;
    snprintf(caps->uri, sizeof(caps->uri), "%s", uri);
    caps->kvm = vm_kvm_usable();
    caps->start_ms = caps->kvm ? DRIVER_EST_VM_START_KVM_MS : DRIVER_EST_VM_START_TCG_MS;
    caps->memory_overhead = caps->kvm ? DRIVER_EST_VM_OVERHEAD_KVM : DRIVER_EST_VM_OVERHEAD_TCG;
    caps->guest_kernel = find_guest_kernel(guest_kernel, caps->guest_kernel_path, sizeof(caps->guest_kernel_path));

    virSetErrorFunc(NULL, quiet_errors);
    virConnectPtr conn = virConnectOpenReadOnly(uri);
    if (!conn) {
        const char *why = virGetLastErrorMessage();
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason), "libvirt does not answer at %s", uri);
        snprintf(caps->unavailable_fix, sizeof(caps->unavailable_fix),
                 "%s; start it with: systemctl start libvirtd, or virtlogd -d && libvirtd -d",
                 why ? why : "no error given");
        snprintf(caps->description, sizeof(caps->description), "unavailable");
        return 0;
    }
    caps->available = true;
    snprintf(caps->description, sizeof(caps->description), "%s", caps->kvm ? "kvm" : "qemu (no kvm)");
    virConnectClose(conn);
    return 0;
}
