/*
 * vm.h - libvirt virtual machines behind backends/driver.h.
 */
#ifndef DUET_VM_H
#define DUET_VM_H

#include "backends/driver.h"

#define VM_DEFAULT_URI "qemu:///system"
#define VM_MEMORY_FLOOR DRIVER_VM_MEMORY_FLOOR
/* accel=auto: how long a KVM guest may stay silent before it is judged hung
 * and restarted under emulation (driver.c). */
#define VM_KVM_DEADLINE_MS 8000

enum vm_accel {
    VM_ACCEL_AUTO,                 /* KVM when /dev/kvm runs guests, else emulation */
    VM_ACCEL_KVM,
    VM_ACCEL_TCG,                  /* emulation (domain type qemu), always */
};

struct vm_driver_options {
    const char *uri;               /* NULL: qemu:///system if its daemon answers, else embedded */
    bool embedded;                 /* always libvirt's embedded driver (uri ignored) */
    const char *vminit;            /* the duet-vminit binary (rootfs images) */
    const char *virtiofsd;         /* the duet-virtiofsd binary (volumes; virtiofs.h) */
    const char *guest_kernel;      /* NULL: search the usual places */
    enum vm_accel accel;
    uint64_t kvm_deadline_ms;      /* 0: VM_KVM_DEADLINE_MS */
};

/* The VM backend's driver table (driver.c); strings are copied.  Freed with
 * vm_driver_free (which closes it). */
struct driver *vm_driver_new(const struct vm_driver_options *opt);
void vm_driver_free(struct driver *drv);
/* The libvirt URI in use; empty until the first operation connected. */
const char *vm_driver_uri(struct driver *drv);
/* A guest's console is capped at this (then rotated into console.log.1);
 * before open. */
void vm_driver_set_console_max(struct driver *drv, uint64_t bytes);
/* No volume may lead to path or into it (the daemon's state and socket);
 * before open.  Up to VM_PROTECT_MAX paths. */
#define VM_PROTECT_MAX 4
void vm_driver_protect_path(struct driver *drv, const char *path);
/* Would the next VM be a KVM guest? */
bool vm_driver_uses_kvm(struct driver *drv);

/* A kernel to boot rootfs images with: explicit_path if readable, else the
 * first of the one installed with duet (BINDIR/../lib/duet/kernel/vmlinuz),
 * a build tree's (BINDIR/images/kernel/vmlinuz), /var/lib/duet/kernel/vmlinuz,
 * the running kernel's /boot image, /boot/vmlinuz, /vmlinuz
 * (docs/install.md). */
bool vm_find_guest_kernel(const char *explicit_path, char *out, size_t len);

/* Fills caps for this host: does libvirt answer at uri, is KVM usable, is
 * there a kernel to boot rootfs images with.  guest_kernel may be NULL
 * (search the usual places).  Blocks for the libvirt round trip. */
int vm_backend_probe(const char *uri, const char *guest_kernel, struct driver_caps *caps, struct duet_err *err);

/* True when /dev/kvm answers KVM_GET_API_VERSION (or exists but only root
 * may open it: the daemon runs as root). */
bool vm_kvm_usable(void);

#endif
